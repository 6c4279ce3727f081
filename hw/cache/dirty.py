"""The dirty bits of every line of the cache, kept in flip-flops beside the tag memories."""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .geometry import CacheGeometry

__all__ = ["DirtyBits"]


class DirtyBits(wiring.Component):
    """A dirty bit for each way of each set, marked by store hits and cleared as lines are
    refilled or cleaned.

    Only a valid line is ever dirty. A store hit marks its line dirty without writing the
    tag memory, in the cycle after its lookup (with its data). Each set ORs in the marked ways
    if it is the marked set: the marked set follows the lookup's in every cycle, also while
    the lookup holds no access (a request payload without its valid), and a set's own bits,
    unlike a read of the bits at that set, stay known in a Verilog simulation when the set is
    unknown.

    Parameters
    ----------
    geometry : CacheGeometry

    Members
    -------
    mark_set : ``In(index_bits)``
    mark_ways : ``In(ways)``
        Ways of set ``mark_set`` made dirty in this cycle.
    clear_set : ``In(index_bits)``
    clear_ways : ``In(ways)``
        Ways of set ``clear_set`` made clean in this cycle; for that set, this takes the
        place of any mark.
    lookup_set : ``In(index_bits)``
    lookup : ``Out(ways)``
        Dirty bits of set ``lookup_set``, with those marked in this cycle.
    walk_set : ``In(index_bits)``
    walk : ``Out(ways)``
        Dirty bits of set ``walk_set``.
    """
    def __init__(self, geometry):
        if not isinstance(geometry, CacheGeometry):
            raise TypeError(f"Geometry must be a CacheGeometry, not {geometry!r}")
        self._geometry = g = geometry
        super().__init__({
            "mark_set":   In(g.index_bits),
            "mark_ways":  In(g.ways),
            "clear_set":  In(g.index_bits),
            "clear_ways": In(g.ways),
            "lookup_set": In(g.index_bits),
            "lookup":     Out(g.ways),
            "walk_set":   In(g.index_bits),
            "walk":       Out(g.ways),
        })

    geometry = property(lambda self: self._geometry)

    def elaborate(self, platform):
        m = Module()
        g = self._geometry

        dirty = Signal(g.sets * g.ways)
        for index in range(g.sets):
            set_dirty = dirty.word_select(index, g.ways)
            with m.If(self.mark_set == index):
                m.d.sync += set_dirty.eq(set_dirty | self.mark_ways)
        with m.If(self.clear_ways.any()):
            cleared = dirty.word_select(self.clear_set, g.ways)
            m.d.sync += cleared.eq(cleared & ~self.clear_ways)

        m.d.comb += [
            self.lookup.eq(dirty.word_select(self.lookup_set, g.ways) |
                           Mux(self.mark_set == self.lookup_set, self.mark_ways, 0)),
            self.walk.eq(dirty.word_select(self.walk_set, g.ways)),
        ]

        return m
