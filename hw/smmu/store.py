"""The entries of the SMMU's fully associative caches, in registers, with their fills,
invalidations and lookup compares."""

import operator
from functools import reduce

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ..parameters import check_integer

__all__ = ["Compare", "EntryStore", "RoundRobin", "selected", "next_index"]


class Compare:
    """How a key is compared with an entry: in one cycle, with ``predicate(entry, key)``, or
    in two, for wide compares, with the one-bit ``parts(entry, key)`` registered in the first
    and ``combine(entry, parts)`` of them (and of the entry's fields then) in the second.

    Parameters
    ----------
    key : Layout
        Of the key.
    predicate : callable or None
    parts, combine : callable or None
        Both or neither, and not with ``predicate``.
    """
    def __init__(self, key, *, predicate=None, parts=None, combine=None):
        if not isinstance(key, data.Layout):
            raise TypeError(f"Key must be a data.Layout, not {key!r}")
        if (predicate is None) == (parts is None) or (parts is None) != (combine is None):
            raise ValueError(f"A compare takes a predicate, or parts and combine, not "
                             f"predicate={predicate!r}, parts={parts!r}, combine={combine!r}")
        self.key = key
        self.predicate = predicate
        self.parts = parts
        self.combine = combine

    @property
    def cycles(self):
        return 1 if self.predicate is not None else 2


class EntryStore(wiring.Component):
    """``count`` entries of ``layout`` in registers, with fills, invalidations and lookups.

    A fill writes ``fill_entry`` into the entry set in ``fill``, valid, at the clock edge.

    A lookup's compare is registered: ``lookup_match`` is the mask of the valid entries that
    matched ``lookup_key`` one cycle (or two, for a compare in two cycles) before and have
    been neither replaced nor cleared since, so a lookup never returns an entry other than
    the one it compared.

    An invalidation's compare is registered too, and its entries are cleared at the edge
    after (over a fill in the same cycle). ``invalidate_applies`` says the invalidation is
    of a kind the store holds: an entry filled in the same cycle (and, with a compare in two
    cycles, the next) is then cleared whatever it maps (a cache may always drop an entry;
    comparing the fill too would spread one compare over every entry's clear), so no fill
    escapes an invalidation.

    Parameters
    ----------
    layout : data.Layout
        Of an entry; it has a ``valid`` field.
    count : int
    lookup : Compare
    lookups : int
    invalidation : Compare

    Members
    -------
    entries : ``Out(layout).array(count)``
    fill : ``In(count)``
        One-hot (or 0): the entry that takes ``fill_entry``.
    fill_entry : ``In(layout)``
    lookup_key : ``In(lookup.key).array(lookups)``
    lookup_match : ``Out(count).array(lookups)``
    invalidate : ``In(invalidation.key)``
    invalidate_applies : ``In(1)``
    """
    def __init__(self, layout, count, *, lookup, lookups=1, invalidation):
        if not isinstance(layout, data.Layout) or "valid" not in dict(layout):
            raise TypeError(f"Entry layout must be a data.Layout with a valid field, "
                            f"not {layout!r}")
        check_integer("Number of entries", count, minimum=2)
        check_integer("Number of lookups", lookups, minimum=1)
        for name, compare in (("Lookup", lookup), ("Invalidation", invalidation)):
            if not isinstance(compare, Compare):
                raise TypeError(f"{name} must be a Compare, not {compare!r}")
        self._lookup = lookup
        self._invalidation = invalidation
        super().__init__({
            "entries": Out(layout).array(count),
            "fill": In(count),
            "fill_entry": In(layout),
            "lookup_key": In(lookup.key).array(lookups),
            "lookup_match": Out(count).array(lookups),
            "invalidate": In(invalidation.key),
            "invalidate_applies": In(1),
        })

    def elaborate(self, platform):
        m = Module()
        entries, filled = self.entries, self.fill
        count = len(entries)
        cleared = Signal(count)     # the entries cleared at the next edge
        for n, entry in enumerate(entries):
            with m.If(filled[n]):
                m.d.sync += [entry.eq(self.fill_entry), entry.valid.eq(1)]

        def registered_parts(parts, key):
            registered = []
            for entry in entries:
                values = parts(entry, key)
                part_regs = [Signal(name=f"part{k}") for k in range(len(values))]
                m.d.sync += [reg.eq(value) for reg, value in zip(part_regs, values)]
                registered.append(part_regs)
            return registered

        lookup = self._lookup
        if lookup.cycles == 2:
            kept = Signal(count)    # neither replaced nor cleared at the last edge
            m.d.sync += kept.eq(~filled & ~cleared)
        for key, matches in zip(self.lookup_key, self.lookup_match):
            if lookup.cycles == 1:
                compared = Cat(entry.valid & lookup.predicate(entry, key) for entry in entries)
            else:
                registered = registered_parts(lookup.parts, key)
                compared = Cat(entry.valid & kept[n] & lookup.combine(entry, registered[n])
                               for n, entry in enumerate(entries))
            m.d.sync += matches.eq(compared & ~filled & ~cleared)

        inv, applies = self._invalidation, self.invalidate_applies
        if inv.cycles == 1:
            marked = Cat(entry.valid & inv.predicate(entry, self.invalidate) |
                         filled[n] & applies
                         for n, entry in enumerate(entries))
        else:
            registered = registered_parts(inv.parts, self.invalidate)
            applied = Signal()
            dropped = Signal(count)     # filled in the invalidation's first cycle
            m.d.sync += [applied.eq(applies), dropped.eq(Mux(applies, filled, 0))]
            marked = Cat(entry.valid & inv.combine(entry, registered[n]) |
                         dropped[n] | filled[n] & applied
                         for n, entry in enumerate(entries))
        m.d.sync += cleared.eq(marked)
        for n, entry in enumerate(entries):
            with m.If(cleared[n]):
                m.d.sync += entry.valid.eq(0)
        return m


class RoundRobin(wiring.Component):
    """The entry a fill goes to: the lowest invalid one, else the next one round-robin.

    Parameters
    ----------
    count : int

    Members
    -------
    valid : ``In(count)``
        The entries' valid bits.
    advance : ``In(1)``
        A fill is made: the pointer moves on.
    chosen : ``Out(range(count))``
    fill : ``Out(count)``
        ``chosen``, one-hot, while ``advance`` (else 0).
    """
    def __init__(self, count):
        check_integer("Number of entries", count, minimum=2)
        super().__init__({
            "valid": In(count),
            "advance": In(1),
            "chosen": Out(range(count)),
            "fill": Out(count),
        })

    def elaborate(self, platform):
        m = Module()
        count = len(self.valid)
        pointer = Signal(range(count))
        m.d.comb += self.chosen.eq(pointer)
        for n in reversed(range(count)):
            with m.If(~self.valid[n]):
                m.d.comb += self.chosen.eq(n)
        one_hot = Cat(self.chosen == n for n in range(count))
        m.d.comb += self.fill.eq(Mux(self.advance, one_hot, 0))
        with m.If(self.advance):
            m.d.sync += pointer.eq(next_index(pointer, count))
        return m


def selected(entries, matches):
    """The OR of the ``entries`` set in ``matches`` (the one, if one is), as a value."""
    return reduce(operator.or_, (Mux(matches[n], entry.as_value(), 0)
                                 for n, entry in enumerate(entries)))


def next_index(counter, count):
    """``counter + 1`` wrapping at ``count``."""
    return Mux(counter == count - 1, 0, counter + 1)
