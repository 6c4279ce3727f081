"""The SoC's MMIO map, compiled from ``hw/soc.rdl``: its blocks and their address windows."""

from pathlib import Path

from systemrdl.node import AddrmapNode

from .compile import compile_rdl
from .spec import address_windows, block_spec

__all__ = ["SOC_RDL", "soc_rdl", "soc_windows", "soc_block", "soc_block_spec"]

#: The top-level SystemRDL file of the MMIO space.
SOC_RDL = Path(__file__).resolve().parent.parent / "soc.rdl"


def soc_rdl():
    """The compiled top-level addrmap ``dmabuf_soc`` (cached)."""
    return compile_rdl(SOC_RDL, top="dmabuf_soc")


def soc_windows():
    """``Window(name, base, size)`` for every block of the MMIO space, in address order."""
    return address_windows(soc_rdl())


def soc_block(name):
    """The compiled addrmap node of block instance ``name`` of the MMIO space."""
    for child in soc_rdl().children():
        if isinstance(child, AddrmapNode) and child.inst_name == name:
            return child
    raise KeyError(f"The MMIO map has no block {name!r}; its blocks are "
                   f"{', '.join(window.name for window in soc_windows())}")


def soc_block_spec(name):
    """The :class:`~.spec.BlockSpec` of block ``name``, at its base in the MMIO space."""
    return block_spec(soc_block(name))
