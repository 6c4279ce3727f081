"""The blocks ``dmabuf-soc verilog --block NAME`` can emit, each built from a SocConfig."""

__all__ = ["available", "build"]


def _soc(config):
    from .soc import Soc
    return Soc(config)


def _ident(config):
    from .ident.ident import Ident
    return Ident(config)


def _ddr(config):
    from .ddr.model import DDRModel
    return DDRModel(config)


def _interconnect(config):
    from .bus.interconnect import Interconnect
    return Interconnect(config.manager_signature, 2, config.banks)


_BUILDERS = {
    "soc": _soc,
    "ident": _ident,
    "ddr": _ddr,
    "interconnect": _interconnect,
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
