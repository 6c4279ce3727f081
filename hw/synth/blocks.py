"""The blocks an FPGA build can take: each block exactly as the SoC instantiates it."""

from ..config import SocConfig
from ..unused import never_elaborated
from .soc import SYNTH_CONFIG, SynthSoc

__all__ = ["available", "build"]

# Each builder takes the SynthSoc of the configuration and returns one of its blocks, so an
# out-of-context build has the parameters the SoC gives that block.
_BLOCKS = {
    "ident":        lambda top: top.soc.ident,
    "interconnect": lambda top: top.soc.interconnect,
    "dma":          lambda top: top.soc.dma[0],
    "smmu":         lambda top: getattr(top.soc, "smmu", None) or _smmu(top),
    "cache":        lambda top: top.soc.cache,
    "soc":          lambda top: top,
}


def _smmu(top):
    # Until the SoC instantiates the SMMU, build it as the SoC will: one port per DMA channel.
    from ..smmu.smmu import SMMU
    return SMMU(top.config, ports=len(top.soc.dma))


def _has_smmu(top):
    if hasattr(top.soc, "smmu"):
        return True
    try:
        from ..smmu import smmu
    except ImportError:
        return False
    return hasattr(smmu, "SMMU")


def available(config=None):
    """Names of the blocks the SoC of ``config`` has, in build order (smallest first)."""
    top = SynthSoc(_checked(config))
    never_elaborated(top)       # built only to list its blocks
    return [name for name, block in _BLOCKS.items()
            if name != "smmu" or _has_smmu(top)]


def _checked(config):
    config = SYNTH_CONFIG if config is None else config
    if not isinstance(config, SocConfig):
        raise TypeError(f"Configuration must be a SocConfig, not {config!r}")
    return config


def build(name, config=None):
    """Block ``name`` of the SoC built for ``config`` (:data:`SYNTH_CONFIG` if ``None``), as a
    :class:`~amaranth.lib.wiring.Component`; raises ``KeyError`` naming the known blocks."""
    top = SynthSoc(_checked(config))
    if name == "soc":
        return top
    # A block taken out of the SoC leaves the rest unelaborated; that is intended.
    never_elaborated(top)
    if name not in _BLOCKS or (name == "smmu" and not _has_smmu(top)):
        raise KeyError(f"Unknown block {name!r}; known: {', '.join(available(config))}")
    return _BLOCKS[name](top)
