"""The blocks ``dmabuf-soc verilog --block NAME`` can emit, each built from a SocConfig."""

__all__ = ["PORT_PREFIXES", "MMIO_BLOCKS", "available", "build", "standard_ports"]

#: Prefixes of the AXI ports that :class:`~.bus.ports.StandardPorts` cannot name by role
#: alone, by block and member.
PORT_PREFIXES = {
    "smmu": {"table": "m_axi_table"},
}

#: The MMIO block (of ``hw/soc.rdl``) whose registers each block's AXI4-Lite port serves.
MMIO_BLOCKS = {
    "ident": "ident",
    "dma":   "dma0",
    "cache": "cache",
    "smmu":  "smmu",
}


def _soc(config):
    from .soc import Soc
    return Soc(config)


def _ident(config):
    from .ident.ident import Ident
    return Ident(config)


def _ddr(config):
    from .ddr.model import DDRModel
    return DDRModel(config)


def _cache(config):
    from .cache.cache import Cache
    from .cache.geometry import CacheGeometry
    return Cache(CacheGeometry(size=config.cache_size, ways=config.cache_ways,
                               line_size=config.cache_line_size, addr_width=config.addr_width,
                               data_width=config.data_width),
                 id_width=config.id_width, sid_width=config.sid_width)


def _dma(config):
    from .dma.channel import DMAChannel
    return DMAChannel(stream_id=0, addr_width=config.addr_width, data_width=config.data_width,
                      id_width=config.id_width, sid_width=config.sid_width,
                      max_burst_beats=config.dma_max_burst_beats)


def _smmu(config):
    from .smmu.smmu import SMMU
    return SMMU(config, ports=2)


def _interconnect(config):
    from .bus.interconnect import Interconnect
    return Interconnect(config.manager_signature, 2, config.banks)


_BUILDERS = {
    "soc": _soc,
    "ident": _ident,
    "ddr": _ddr,
    "interconnect": _interconnect,
    "cache": _cache,
    "dma": _dma,
    "smmu": _smmu,
}


def available():
    """Names of the blocks, sorted."""
    return sorted(_BUILDERS)


def build(name, config):
    """Block ``name`` built for ``config``; raises ``KeyError`` naming the known blocks."""
    try:
        builder = _BUILDERS[name]
    except KeyError:
        raise KeyError(f"Unknown block {name!r}; known: {', '.join(available())}") from None
    return builder(config)


def standard_ports(name, config):
    """Block ``name`` built for ``config``, wrapped in
    :class:`~.bus.ports.StandardPorts`: one port per AXI field, named as AMBA IP names it."""
    from .bus.ports import StandardPorts
    return StandardPorts(build(name, config), prefixes=PORT_PREFIXES.get(name))
