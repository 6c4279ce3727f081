"""Tree pseudo-LRU replacement, as hardware and as the Python rule the reference model uses.

The ``ways - 1`` bits of a set form a binary tree: node ``n`` (numbered from 1, children
``2n`` and ``2n + 1``) is bit ``n - 1``. A bit points to the half of its subtree that holds
the victim (0: left, 1: right); an access turns every bit on its way's path to point away
from it.
"""

from amaranth.hdl import Cat, Const, Mux
from amaranth.utils import exact_log2

__all__ = ["victim", "touch", "victim_value", "touch_value"]


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
