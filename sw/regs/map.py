"""The register map of the MMIO space, as the driver sees it: compiled from ``hw/soc.rdl``."""

from ...hw.regs.soc_map import soc_rdl
from ...hw.regs.spec import address_windows, block_spec

__all__ = ["RegisterMap", "register_map"]


class RegisterMap:
    """Every block of the MMIO space, its registers and their fields.

    ``regmap["ident"]`` is the block's :class:`~dmabuf_soc.hw.regs.spec.BlockSpec`;
    ``regmap["ident"].register("SCRATCH")`` a
    :class:`~dmabuf_soc.hw.regs.spec.RegisterSpec` whose ``address`` is its absolute
    offset in the MMIO space; its ``fields`` are
    :class:`~dmabuf_soc.hw.regs.spec.FieldSpec` (``lsb``, ``width``, ``access``,
    ``reset``, ...), and ``encode``/``decode`` assemble and split register values.

    Parameters
    ----------
    top : :class:`systemrdl.node.AddrmapNode`
        The compiled top-level addrmap.
    """
    def __init__(self, top):
        self._blocks = {}
        by_name = {child.inst_name: child for child in top.children()}
        for window in address_windows(top):
            self._blocks[window.name] = block_spec(by_name[window.name])

    def __getitem__(self, name):
        try:
            return self._blocks[name]
        except KeyError:
            raise KeyError(f"The MMIO map has no block {name!r}; its blocks are "
                           f"{', '.join(self._blocks)}") from None

    def __iter__(self):
        return iter(self._blocks.values())

    def __contains__(self, name):
        return name in self._blocks

    def __len__(self):
        return len(self._blocks)

    def register(self, path):
        """The register at ``"block.REGISTER"`` (e.g. ``"ident.SCRATCH"``)."""
        block, sep, register = path.partition(".")
        if not sep:
            raise KeyError(f"Register path {path!r} is not of the form 'block.REGISTER'")
        return self[block].register(register)

    def at(self, address):
        """``(block, register)`` at absolute MMIO ``address``, or ``None``."""
        for block in self._blocks.values():
            if block.base <= address < block.base + block.size:
                register = block.at(address - block.base)
                return None if register is None else (block, register)
        return None


_maps = {}     # id(compiled top) -> (compiled top, RegisterMap)


def register_map():
    """The :class:`RegisterMap` of ``hw/soc.rdl`` (cached, and rebuilt if the file
    changes)."""
    top = soc_rdl()
    cached = _maps.get(id(top))
    if cached is None or cached[0] is not top:
        cached = _maps[id(top)] = (top, RegisterMap(top))
    return cached[1]
