"""The dirty bits of every line of the cache, kept in flip-flops beside the tag memories."""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .geometry import check_geometry

__all__ = ["DirtyBits"]


class DirtyBits(wiring.Component):
    """A dirty bit for each way of each set, marked by store hits and cleared as lines are
    refilled or cleaned.

    Only a valid line is ever dirty. A store hit marks its line dirty without writing the
    tag memory, in the cycle after its lookup (with its data), from registers. Each set ORs in
    the marked ways if it is the marked set: the marked set follows the lookup's in every
    cycle, also while the lookup holds no access (a request payload without its valid), and a
    set's own bits, unlike a read of the bits at that set, stay known in a Verilog simulation
    when the set is unknown.

    Parameters
    ----------
    geometry : CacheGeometry

    Members
    -------
    lookup_set : ``In(index_bits)``
    lookup : ``Out(ways)``
        Dirty bits of set ``lookup_set``, with those of a store hit still on its way.
    store_ways : ``In(ways)``
        The way of set ``lookup_set`` that a store hit looked up in this cycle writes (none if
        there is no store): marked dirty in the next cycle.
    clear_set : ``In(index_bits)``
    clear_ways : ``In(ways)``
        Ways of set ``clear_set`` made clean in this cycle; for that set, this takes the
        place of any mark.
    walk_set : ``In(index_bits)``
    walk : ``Out(ways)``
        Dirty bits of set ``walk_set``.
    """
    def __init__(self, geometry):
        self._geometry = g = check_geometry(geometry)
        super().__init__({
            "lookup_set": In(g.index_bits),
            "lookup":     Out(g.ways),
            "store_ways": In(g.ways),
            "clear_set":  In(g.index_bits),
            "clear_ways": In(g.ways),
            "walk_set":   In(g.index_bits),
            "walk":       Out(g.ways),
        })

    geometry = property(lambda self: self._geometry)

    def elaborate(self, platform):
        m = Module()
        g = self._geometry

        mark_set  = Signal.like(self.lookup_set)
        mark_ways = Signal.like(self.store_ways)
        m.d.sync += [mark_set.eq(self.lookup_set), mark_ways.eq(self.store_ways)]

        dirty = Signal(g.sets * g.ways)
        for index in range(g.sets):
            set_dirty = dirty.word_select(index, g.ways)
            with m.If(mark_set == index):
                m.d.sync += set_dirty.eq(set_dirty | mark_ways)
        with m.If(self.clear_ways.any()):
            cleared = dirty.word_select(self.clear_set, g.ways)
            m.d.sync += cleared.eq(cleared & ~self.clear_ways)

        m.d.comb += [
            self.lookup.eq(dirty.word_select(self.lookup_set, g.ways) |
                           Mux(mark_set == self.lookup_set, mark_ways, 0)),
            self.walk.eq(dirty.word_select(self.walk_set, g.ways)),
        ]

        return m
