"""The SoC's blocks by name, each exactly as the SoC instantiates it.

``dmabuf-soc verilog --block NAME``, ``dmabuf-soc synth --block NAME`` and the tests that take
a block on its own (third-party VIP, port names, combinational paths) all take it from here:
the SoC is built from the configuration and the block is taken out of it, so a block alone
has the parameters the SoC gives it. The SoC is :class:`~.soc.Soc` with its DDR model, or for
an FPGA build :class:`~.synth.soc.SynthSoc`, which has a memory port instead (and so no
``ddr`` block).
"""

from .config import SocConfig
from .unused import never_elaborated

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

# Each block of a SoC, smallest first (the order FPGA builds take them in).
_BLOCKS = {
    "ident":        lambda soc: soc.ident,
    "ddr":          lambda soc: soc.ddr,
    "interconnect": lambda soc: soc.interconnect,
    "dma":          lambda soc: soc.dma[0],
    "smmu":         lambda soc: soc.smmu,
    "cache":        lambda soc: soc.cache,
    "soc":          lambda soc: soc,
}


def _top(config, synth):
    if config is not None and not isinstance(config, SocConfig):
        raise TypeError(f"Configuration must be a SocConfig, not {config!r}")
    if synth:
        from .synth.soc import SynthSoc
        return SynthSoc(config)
    from .soc import Soc
    return Soc(config)


def available(*, synth=False):
    """Names of the blocks, smallest first; with ``synth``, those of the FPGA top (no
    ``ddr``)."""
    return [name for name in _BLOCKS if not (synth and name == "ddr")]


def build(name, config=None, *, synth=False):
    """Block ``name`` of the SoC built for ``config``, as a
    :class:`~amaranth.lib.wiring.Component`.

    Parameters
    ----------
    name : str
        One of :func:`available`.
    config : SocConfig or None
        The SoC's configuration: the default one if ``None`` (for ``synth``, the FPGA top's,
        :data:`~.synth.soc.SYNTH_CONFIG`).
    synth : bool
        Take the block from the FPGA top instead of the simulated SoC.

    Raises
    ------
    KeyError
        If there is no block ``name``; the message names the known blocks.
    TypeError
        If ``config`` is not a :class:`SocConfig`.
    """
    if name not in available(synth=synth):
        raise KeyError(f"Unknown block {name!r}; known: {', '.join(available(synth=synth))}")
    top = _top(config, synth)
    block = _BLOCKS[name](top)
    if block is not top:
        # The rest of the SoC is built only to give the block its parameters.
        never_elaborated(top)
    return block


def standard_ports(name, config=None, *, synth=False):
    """Block ``name`` built as :func:`build` builds it, wrapped in
    :class:`~.bus.ports.StandardPorts`: one port per AXI field, named as AMBA IP names it."""
    from .bus.ports import StandardPorts
    return StandardPorts(build(name, config, synth=synth), prefixes=PORT_PREFIXES.get(name))
