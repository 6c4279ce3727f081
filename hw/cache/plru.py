"""Tree pseudo-LRU replacement, as hardware and as the Python rule the reference model uses.

The ``ways - 1`` bits of a set form a binary tree: node ``n`` (numbered from 1, children
``2n`` and ``2n + 1``) is bit ``n - 1``. A bit points to the half of its subtree that holds
the victim (0: left, 1: right); an access turns every bit on its way's path to point away
from it.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import exact_log2

from .geometry import check_geometry

__all__ = ["victim", "touch", "victim_value", "touch_value", "PseudoLRU"]


def victim(bits, ways):
    """The way the tree ``bits`` (an integer) points to."""
    node = 1
    while node < ways:
        node = 2 * node + ((bits >> (node - 1)) & 1)
    return node - ways


def touch(bits, way, ways):
    """The tree ``bits`` (an integer) after an access to ``way``."""
    node = way + ways
    while node > 1:
        parent = node // 2
        away = 1 if node % 2 == 0 else 0
        bits = (bits & ~(1 << (parent - 1))) | (away << (parent - 1))
        node = parent
    return bits


def victim_value(bits, ways):
    """Hardware :func:`victim`: a value of ``exact_log2(ways)`` bits."""
    levels = exact_log2(ways)
    if levels == 0:
        return Const(0, 0)
    # Walk from the root: at each level the chosen path so far selects the next node's bit.
    path = Const(0, 0)
    for level in range(levels):
        first_node = 1 << level
        node_bits = bits[first_node - 1:2 * first_node - 1]
        step = node_bits.bit_select(path, 1) if level else node_bits[0]
        path = Cat(step, path)
    return path


def touch_value(bits, way, ways):
    """Hardware :func:`touch`: ``bits`` after an access to way ``way`` (a value)."""
    levels = exact_log2(ways)
    new_bits = []
    for node in range(1, ways):
        depth = node.bit_length() - 1
        # The node is on the way's path when the way's top ``depth`` bits name it.
        prefix = way[levels - depth:] if depth else Const(0, 0)
        on_path = prefix == node - (1 << depth)
        away = ~way[levels - depth - 1]
        new_bits.append(Mux(on_path, away, bits[node - 1]))
    return Cat(*new_bits)


class PseudoLRU(wiring.Component):
    """The pseudo-LRU bits of every set of a cache, and the choice of a victim.

    A hit touches its set's bits a cycle after its lookup, from registers, so that the tag
    compare never drives their enables; a lookup of the same set in that cycle sees the touch
    already.

    Parameters
    ----------
    geometry : CacheGeometry

    Members
    -------
    lookup_set : ``In(index_bits)``
    touch : ``In(1)``
        Way ``touch_way`` of set ``lookup_set`` is accessed in this cycle.
    touch_way : ``In(range(ways))``
    invalid_ways : ``In(ways)``
        The ways of set ``lookup_set`` that hold no line.
    victim : ``Out(range(ways))``
        The way of set ``lookup_set`` to replace: the first invalid way, if any, else the
        least recently used one as the tree sees it.
    """
    def __init__(self, geometry):
        self._geometry = g = check_geometry(geometry)
        super().__init__({
            "lookup_set":   In(g.index_bits),
            "touch":        In(1),
            "touch_way":    In(range(g.ways)),
            "invalid_ways": In(g.ways),
            "victim":       Out(range(g.ways)),
        })

    geometry = property(lambda self: self._geometry)

    def elaborate(self, platform):
        m = Module()
        g = self._geometry

        bits          = Signal(g.sets * (g.ways - 1))
        touched       = Signal()
        touched_way   = Signal(range(g.ways))
        touched_set   = Signal(g.index_bits)
        m.d.sync += [
            touched.eq(self.touch),
            touched_way.eq(self.touch_way),
            touched_set.eq(self.lookup_set),
        ]
        if g.ways > 1:
            touched_bits = bits.word_select(touched_set, g.ways - 1)
            touched_bits_next = touch_value(touched_bits, touched_way, g.ways)
            with m.If(touched):
                m.d.sync += touched_bits.eq(touched_bits_next)
            lookup_bits = Mux(touched & (touched_set == self.lookup_set), touched_bits_next,
                              bits.word_select(self.lookup_set, g.ways - 1))
        else:
            lookup_bits = Const(0, 0)
        m.d.comb += self.victim.eq(victim_value(lookup_bits, g.ways))
        for way in reversed(range(g.ways)):
            with m.If(self.invalid_ways[way]):
                m.d.comb += self.victim.eq(way)

        return m
