"""The SMMU's caches, all fully associative: the IOTLB, the walk cache and the STE cache.

Each holds entries in registers and answers a lookup in the next cycle: the compare of
every entry is registered, and the matching entry is read out of that mask (so a lookup
costs two short paths, not one long one, at any clock rate the rest of the SoC runs at).
The IOTLB, the widest compare (ASID and page number, against every entry, for five ports),
answers in the second cycle: it registers the compares of the page number's three parts
first, and combines them with the entry's level the cycle after. An entry filled at a clock
edge hits the lookups made from then on. Each cache takes one fill per cycle (the IOTLB one
every four cycles), into an invalid entry, else a round-robin victim, and applies one
invalidation per cycle, pipelined as its lookups are: the entries it removes (and the fills
made meanwhile, whatever they map, if the invalidation is of a kind the cache holds) are
worked out in one cycle (two in the IOTLB) and cleared in the next, over a fill in the same
cycle. A lookup whose entry is replaced or invalidated during its compare misses.

The IOTLB's victim is chosen with more care, because prefetch fills it ahead of use: among
valid entries, it takes the next one round-robin that no translation stage is using (the
entry its last hit came from) and that is not a fill still waiting for its first use;
failing that, the next one not in use. It is chosen three cycles ahead, from registers. The
pages a read and a write stream are on, and the next pages prefetched for them, stay while
any other entry can go. An unused fill is passed over once only (the pointer clears its mark
as it passes), so a prefetch that is never used does not hold its entry for ever.

* :class:`IOTLB` — ASID-tagged translations of 4 KiB pages, 2 MiB and 1 GiB blocks.
* :class:`WalkCache` — level-1 and level-2 table descriptors, so a walk can start lower.
* :class:`StreamCache` — decoded stream table entries, by stream ID.
"""

import operator
from functools import reduce

from amaranth.hdl import Cat, Module, Mux, Signal, unsigned
from amaranth.lib import data, enum, wiring
from amaranth.lib.wiring import In, Out

from .format import ASID_BITS, GRANULE_SHIFT, IA_BITS, OA_BITS, StreamConfig

__all__ = [
    "InvalidateKind", "InvalidateLayout",
    "TLBEntryLayout", "TLBLookupSignature", "IOTLB", "leaf_covers", "leaf_address",
    "WalkCacheEntryLayout", "WalkCacheLookupSignature", "WalkCache",
    "StreamEntryLayout", "StreamLookupSignature", "StreamCache",
]

_VPN_BITS = IA_BITS - GRANULE_SHIFT     # 27
_PPN_BITS = OA_BITS - GRANULE_SHIFT     # 28


class InvalidateKind(enum.Enum, shape=3):
    """What an invalidation removes."""
    NONE        = 0
    TLB_ALL     = 1   # every IOTLB and walk cache entry
    TLB_ASID    = 2   # IOTLB and walk cache entries of ``asid``
    TLB_VA      = 3   # IOTLB and walk cache entries of ``asid`` covering ``va``
    TLB_VA_LEAF = 4   # IOTLB entries of ``asid`` covering ``va``
    STE         = 5   # the STE cache entry of ``sid``
    STE_ALL     = 6   # every STE cache entry


class InvalidateLayout(data.StructLayout):
    """An invalidation request (``kind`` NONE: none this cycle)."""
    def __init__(self, *, sid_width=32):
        super().__init__({
            "kind": InvalidateKind,
            "asid": unsigned(ASID_BITS),
            "va":   unsigned(IA_BITS + 1),
            "sid":  unsigned(sid_width),
        })


class _Store:
    """Registers of ``count`` entries of ``layout`` with fills, invalidations and lookups.

    A lookup takes two cycles: :meth:`compare` registers the mask of the entries that match,
    and :meth:`select` reads them out of it the next cycle. An entry that is replaced or
    cleared at the clock edge between the two is dropped from the mask, so a lookup never
    returns an entry other than the one it compared."""
    def __init__(self, m, layout, count, name):
        self.entries = [Signal(layout, name=f"{name}{n}") for n in range(count)]
        self.filled = Signal(count, name=f"{name}_filled")
        self.cleared = Signal(count, name=f"{name}_cleared")
        self._kept = None           # entries neither replaced nor cleared at the last edge
        self._m = m
        self._name = name

    def round_robin(self, enable):
        """The entry a fill goes to: the lowest invalid one, else the next one round-robin
        (the pointer moves on with each fill while ``enable``)."""
        m, count = self._m, len(self.entries)
        pointer = Signal(range(count), name=f"{self._name}_pointer")
        chosen = Signal.like(pointer, name=f"{self._name}_chosen")
        m.d.comb += chosen.eq(pointer)
        for n in reversed(range(count)):
            with m.If(~self.entries[n].valid):
                m.d.comb += chosen.eq(n)
        with m.If(enable):
            m.d.sync += pointer.eq(_next(pointer, count))
        return chosen

    def fill(self, enable, value, chosen):
        """Write ``value`` into entry ``chosen`` while ``enable``."""
        self.fill_one_hot(enable, value, Cat(chosen == n for n in range(len(self.entries))))

    def fill_one_hot(self, enable, value, chosen):
        """Write ``value`` into the entry whose bit is set in ``chosen`` while ``enable``."""
        m = self._m
        m.d.comb += self.filled.eq(Mux(enable, chosen, 0))
        for n, entry in enumerate(self.entries):
            with m.If(self.filled[n]):
                m.d.sync += [entry.eq(value), entry.valid.eq(1)]

    def invalidate_in_two(self, applies, parts, combine):
        """:meth:`invalidate` with its compare over two cycles, as :meth:`compare_in_two`:
        the entries are cleared at the third edge, and fills in the first two cycles of an
        invalidation of a kind this cache holds are dropped (each over the entry it wrote)."""
        m = self._m
        registered = self._registered_parts(parts, f"{self._name}_inv")
        applied = Signal(name=f"{self._name}_inv_applies")
        dropped = Signal(len(self.entries), name=f"{self._name}_inv_dropped")
        m.d.sync += [applied.eq(applies), dropped.eq(Mux(applies, self.filled, 0))]
        self._clear(Cat(entry.valid & combine(entry, registered[n]) |
                        dropped[n] | self.filled[n] & applied
                        for n, entry in enumerate(self.entries)))

    def invalidate(self, applies, predicate):
        """Clear every entry for which ``predicate(entry)`` holds this cycle, at the edge
        after the next one: the predicate's compares are registered (in :attr:`cleared`,
        which also drops them from the lookups compared meanwhile). ``applies`` is whether
        this cycle's invalidation is of a kind this cache holds: an entry filled in the same
        cycle is then cleared whatever it maps (a cache may always drop an entry; comparing
        the fill too would spread one compare over every entry's clear), so no fill escapes
        an invalidation. A fill in the second cycle loses to it as well."""
        self._clear(Cat(entry.valid & predicate(entry) | self.filled[n] & applies
                        for n, entry in enumerate(self.entries)))

    def _clear(self, marked):
        """Register ``marked`` in :attr:`cleared`, and clear those entries at the next edge."""
        m = self._m
        m.d.sync += self.cleared.eq(marked)
        for n, entry in enumerate(self.entries):
            with m.If(self.cleared[n]):
                m.d.sync += entry.valid.eq(0)

    def compare(self, predicate, name):
        """The registered mask of the valid entries that satisfy ``predicate`` this cycle
        and are neither replaced nor cleared at the clock edge."""
        matches = Signal(len(self.entries), name=f"{name}_match")
        self._m.d.sync += matches.eq(Cat(entry.valid & predicate(entry)
                                         for entry in self.entries) &
                                     ~self.filled & ~self.cleared)
        return matches

    def _registered_parts(self, parts, name):
        """Per entry, the values of ``parts(entry)`` this cycle, registered."""
        registered = []
        for n, entry in enumerate(self.entries):
            values = parts(entry)
            part_regs = [Signal(name=f"{name}{n}_part{k}") for k in range(len(values))]
            self._m.d.sync += [reg.eq(value) for reg, value in zip(part_regs, values)]
            registered.append(part_regs)
        return registered

    def compare_in_two(self, parts, combine, name):
        """:meth:`compare` over two cycles, for wide compares: the one-bit ``parts(entry)``
        are registered in the first, and ``combine(entry, parts)`` of them (and of the
        entry's fields then) is the registered mask of the second. Entries replaced or
        cleared at either edge are dropped."""
        if self._kept is None:      # one register for every lookup port
            self._kept = Signal(len(self.entries), name=f"{self._name}_kept")
            self._m.d.sync += self._kept.eq(~self.filled & ~self.cleared)
        kept = self._kept
        matches = Signal(len(self.entries), name=f"{name}_match")
        registered = self._registered_parts(parts, f"{name}_entry")
        self._m.d.sync += matches.eq(Cat(entry.valid & kept[n] & combine(entry, registered[n])
                                         for n, entry in enumerate(self.entries)) &
                                     ~self.filled & ~self.cleared)
        return matches

    def select(self, matches, name):
        """``(hit, entry)``: whether ``matches`` has an entry, and (the OR of) those it has."""
        chosen = Signal.like(self.entries[0], name=f"{name}_entry")
        self._m.d.comb += chosen.as_value().eq(reduce(operator.or_, (
            Mux(matches[n], entry.as_value(), 0) for n, entry in enumerate(self.entries))))
        return matches.any(), chosen


def _victim_candidates(m, valid, pointer, spare):
    """The masks :func:`_choose_victim` chooses from, registered: the invalid entries, and
    for each mask of ``spare`` (masks of entries to keep, most important first) the entries
    it allows and those of them at or after ``pointer``."""
    count = len(valid)
    holes = Signal(count, name="victim_holes")
    m.d.sync += holes.eq(~valid)
    candidates = []
    for k, keep in enumerate(spare):
        allowed = Signal(count, name=f"victim_allowed{k}")
        after = Signal(count, name=f"victim_after{k}")
        m.d.sync += [allowed.eq(~keep),
                     after.eq(~keep & Cat(pointer <= n for n in range(count)))]
        candidates.append((allowed, after))
    return holes, candidates


def _choose_victim(m, holes, candidates, pointer):
    """The entry to replace, as ``(index, one_hot, replacing)``, in two registered steps:
    the first registers the mask to choose from (``holes`` if any; else, of the first of
    ``candidates`` that allows any, its entries at or after ``pointer`` or failing that all
    it allows; else ``pointer``), the second that mask's lowest entry, and whether it is
    not a hole."""
    count = len(holes)
    choices = Cat(pointer == n for n in range(count))
    for allowed, after in reversed(candidates):
        # Applied least important first, so the most important choice stands.
        choices = Mux(allowed.any(), Mux(after.any(), after, allowed), choices)
    picked = Signal(count, name="victim_picked")
    picked_valid = Signal(name="victim_picked_valid")
    m.d.sync += [picked.eq(Mux(holes.any(), holes, choices)), picked_valid.eq(~holes.any())]

    lowest = Cat(picked[n] & ~picked[:n].any() if n else picked[0] for n in range(count))
    index = Signal(range(count), name="victim")
    one_hot = Signal(count, name="victim_mask")
    replacing = Signal(name="victim_replacing")
    m.d.sync += [index.eq(reduce(operator.or_, (Mux(lowest[n], n, 0) for n in range(count)))),
                 one_hot.eq(lowest), replacing.eq(picked_valid)]
    return index, one_hot, replacing


def _next(counter, count):
    """``counter + 1`` wrapping at ``count``."""
    return Mux(counter == count - 1, 0, counter + 1)


def _check_count(name, value, minimum=1):
    if not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer of at least {minimum}, not {value!r}")


# IOTLB -----------------------------------------------------------------------------------------

class TLBEntryLayout(data.StructLayout):
    """An IOTLB entry: ``vpn`` and ``ppn`` are address bits [38:12] and [39:12]; a block's
    low page-number bits are ignored. ``level`` is that of the leaf: 1 (1 GiB), 2 (2 MiB)
    or 3 (4 KiB)."""
    def __init__(self):
        super().__init__({
            "valid":     unsigned(1),
            "asid":      unsigned(ASID_BITS),
            "level":     unsigned(2),
            "vpn":       unsigned(_VPN_BITS),
            "ppn":       unsigned(_PPN_BITS),
            "read_only": unsigned(1),
            "xn":        unsigned(1),
        })


class TLBLookupSignature(wiring.Signature):
    """One IOTLB lookup port, from the requester's side: ``asid`` and ``va`` out, the
    result back two cycles later (``pa`` is ``va``'s output address, ``ppn`` the entry's
    output page or block number)."""
    def __init__(self):
        super().__init__({
            "asid":      Out(ASID_BITS),
            "va":        Out(IA_BITS + 1),
            "hit":       In(1),
            "pa":        In(OA_BITS),
            "ppn":       In(_PPN_BITS),
            "level":     In(2),
            "read_only": In(1),
            "xn":        In(1),
        })


def _page_parts(leaf_vpn, vpn):
    """Whether the three level-sized parts (high, middle, low) of two input page numbers
    are equal."""
    return [leaf_vpn[bits] == vpn[bits] for bits in (slice(18, None), slice(9, 18), slice(0, 9))]


def _leaf_of_parts(level, high, middle, low):
    """Whether a leaf of ``level`` covers a page whose parts compare as given."""
    return high & ((level == 1) | middle & ((level == 2) | low & (level == 3)))


def leaf_covers(level, leaf_vpn, vpn):
    """Whether the leaf of ``level`` (1, 2 or 3) made for input page ``leaf_vpn`` covers
    input page ``vpn`` (address bits [38:12]; a block's low bits are ignored)."""
    # The three parts of the page number compared once each, so the compare stays shallow.
    return _leaf_of_parts(level, *_page_parts(leaf_vpn, vpn))


def leaf_address(level, va, ppn):
    """The output address of ``va`` through the leaf of ``level`` whose output page number
    (address bits [39:12]) is ``ppn``."""
    return Mux(level == 1, Cat(va[:30], ppn[18:_PPN_BITS]),
               Mux(level == 2, Cat(va[:21], ppn[9:_PPN_BITS]),
                   Cat(va[:GRANULE_SHIFT], ppn[:_PPN_BITS])))


def _covers_parts(entry, asid, va):
    """Whether TLB ``entry`` matches ``va`` for ``asid``, in parts for a compare over two
    cycles: the ASID with the high part of the page number, the middle part, the low part."""
    high, middle, low = _page_parts(entry.vpn, va[GRANULE_SHIFT:IA_BITS])
    return [(entry.asid == asid) & ~va[IA_BITS] & high, middle, low]


def _covers_of_parts(entry, parts):
    """Whether TLB ``entry`` covers the address whose :func:`_covers_parts` are ``parts``."""
    return _leaf_of_parts(entry.level, *parts)


class IOTLB(wiring.Component):
    """Fully associative, ASID-tagged IOTLB of 4 KiB, 2 MiB and 1 GiB translations.

    Parameters
    ----------
    entries : int
        Number of entries.
    lookups : int
        Number of lookup ports.
    users : int or None
        The first ``users`` lookup ports (all by default) are those of translation stages:
        the entry each one hits is in use, and a fill counts as used once one of them hits
        it. Both are kept from replacement while another entry can go. The other ports
        (the walker's) only look.

    Members
    -------
    lookup : ``In(TLBLookupSignature()).array(lookups)``
    fill : ``In(1)``
        Write ``fill_entry`` this cycle; fills are at least four cycles apart (the victim
        is chosen in the three cycles after the last one).
    fill_entry : ``In(TLBEntryLayout())``
    invalidate : ``In(InvalidateLayout())``
        ``TLB_*`` kinds apply.
    """
    def __init__(self, *, entries=16, lookups=1, users=None):
        _check_count("Number of IOTLB entries", entries, 2)
        _check_count("Number of lookup ports", lookups)
        users = lookups if users is None else users
        if not isinstance(users, int) or not 0 <= users <= lookups:
            raise ValueError(f"Number of user ports must be an integer from 0 to {lookups}, "
                             f"not {users!r}")
        self.entries = entries
        self.users = users
        super().__init__({
            "lookup": In(TLBLookupSignature()).array(lookups),
            "fill": In(1),
            "fill_entry": In(TLBEntryLayout()),
            "invalidate": In(InvalidateLayout()),
        })

    def elaborate(self, platform):
        m = Module()
        count = self.entries
        store = _Store(m, TLBEntryLayout(), count, "tlb")
        held = []                               # per stage port: the entry it hit last
        for n, port in enumerate(self.lookup):
            matches = store.compare_in_two(lambda e: _covers_parts(e, port.asid, port.va),
                                           _covers_of_parts, f"lookup{n}")
            hit, entry = store.select(matches, f"lookup{n}")
            compared_va = Signal.like(port.va, name=f"lookup{n}_compared_va")
            va = Signal.like(port.va, name=f"lookup{n}_va")
            m.d.sync += [compared_va.eq(port.va), va.eq(compared_va)]
            if n < self.users:
                last = Signal(count, name=f"lookup{n}_last")
                with m.If(hit):
                    m.d.sync += last.eq(matches)
                held.append(last)
            m.d.comb += [
                port.hit.eq(hit),
                port.pa.eq(leaf_address(entry.level, va, entry.ppn)),
                port.level.eq(entry.level),
                port.ppn.eq(entry.ppn),
                port.read_only.eq(entry.read_only),
                port.xn.eq(entry.xn),
            ]

        in_use = Signal(count)                  # the entries the stages hit last
        unused_fill = Signal(count)             # filled, and not hit by a stage since
        m.d.comb += in_use.eq(reduce(operator.or_, held, 0))
        # The victim is chosen three cycles ahead, in three registered steps: fills are
        # many cycles apart (each ends a walk), so it is always up to date.
        pointer = Signal(range(count))
        valid = Cat(entry.valid for entry in store.entries)
        holes, candidates = _victim_candidates(m, valid, pointer,
                                               (in_use | unused_fill, in_use))
        candidates_pointer = Signal.like(pointer)
        m.d.sync += candidates_pointer.eq(pointer)
        # One-hot victim_mask; replacing: the victim holds a valid entry.
        victim, victim_mask, replacing = _choose_victim(m, holes, candidates,
                                                        candidates_pointer)
        store.fill_one_hot(self.fill, self.fill_entry, victim_mask)
        with m.If(self.fill & replacing):
            m.d.sync += pointer.eq(_next(victim, count))
        # The entries from the pointer up to the victim, passed over by this replacement.
        index = range(count)
        from_pointer = Cat(pointer <= n for n in index)
        before_victim = Cat(n < victim for n in index)
        passed = Mux(pointer <= victim, from_pointer & before_victim,
                     from_pointer | before_victim)
        m.d.sync += unused_fill.eq(
            (unused_fill & ~in_use & ~Mux(self.fill & replacing, passed, 0)) | store.filled)
        inv = self.invalidate
        by_va = (inv.kind == InvalidateKind.TLB_VA) | (inv.kind == InvalidateKind.TLB_VA_LEAF)
        whole = (inv.kind == InvalidateKind.TLB_ALL) | (inv.kind == InvalidateKind.TLB_ASID)

        def invalidated_parts(e):
            high, middle, low = _covers_parts(e, inv.asid, inv.va)
            return [(inv.kind == InvalidateKind.TLB_ALL) |
                    (inv.kind == InvalidateKind.TLB_ASID) & (e.asid == inv.asid),
                    by_va & high, middle, low]

        store.invalidate_in_two(
            whole | by_va, invalidated_parts,
            lambda e, parts: parts[0] | _covers_of_parts(e, parts[1:]))
        return m


# Walk cache ------------------------------------------------------------------------------------

class WalkCacheEntryLayout(data.StructLayout):
    """A cached table descriptor: the level-``level`` descriptor for ``vpn`` (address
    bits [38:21]; a level-1 entry uses bits [38:30]) points at ``table`` (bits [39:12])."""
    def __init__(self):
        super().__init__({
            "valid": unsigned(1),
            "asid":  unsigned(ASID_BITS),
            "level": unsigned(2),
            "vpn":   unsigned(IA_BITS - 21),
            "table": unsigned(_PPN_BITS),
        })


class WalkCacheLookupSignature(wiring.Signature):
    """The walk cache lookup port, from the walker's side: the level-1 and level-2
    descriptors cached for ``asid`` and ``va``, in the second cycle (``asid`` and ``va``
    held for the first)."""
    def __init__(self):
        super().__init__({
            "asid":     Out(ASID_BITS),
            "va":       Out(IA_BITS + 1),
            "l1_hit":   In(1),
            "l1_table": In(_PPN_BITS),
            "l2_hit":   In(1),
            "l2_table": In(_PPN_BITS),
        })


def _walk_parts(entry, asid, va):
    """Whether the ASID (and the address is in range), the high and the middle part of
    the address match the entry."""
    return [(entry.asid == asid) & ~va[IA_BITS], entry.vpn[9:] == va[30:IA_BITS],
            entry.vpn[:9] == va[21:30]]


def _walk_of_parts(entry, parts):
    """Whether the entry covers an address whose parts compare as given."""
    context, high, middle = parts
    return context & high & ((entry.level == 1) | middle & (entry.level == 2))


def _walk_covers(entry, asid, va):
    return _walk_of_parts(entry, _walk_parts(entry, asid, va))


class WalkCache(wiring.Component):
    """Fully associative cache of level-1 and level-2 table descriptors.

    Parameters
    ----------
    entries : int

    Members
    -------
    enable : ``In(1)``
        When clear, lookups miss and fills are dropped.
    lookup : ``In(WalkCacheLookupSignature())``
    fill : ``In(1)``
    fill_entry : ``In(WalkCacheEntryLayout())``
    invalidate : ``In(InvalidateLayout())``
        ``TLB_ALL``, ``TLB_ASID`` and ``TLB_VA`` apply (not ``TLB_VA_LEAF``).
    """
    def __init__(self, *, entries=8):
        _check_count("Number of walk cache entries", entries, 2)
        self.entries = entries
        super().__init__({
            "enable": In(1),
            "lookup": In(WalkCacheLookupSignature()),
            "fill": In(1),
            "fill_entry": In(WalkCacheEntryLayout()),
            "invalidate": In(InvalidateLayout()),
        })

    def elaborate(self, platform):
        m = Module()
        store = _Store(m, WalkCacheEntryLayout(), self.entries, "walk")
        port = self.lookup
        # Over two cycles, as the IOTLB's, so that the compare stays a few LUTs deep.
        matches = store.compare_in_two(lambda e: _walk_parts(e, port.asid, port.va),
                                       _walk_of_parts, "lookup")
        for level in (1, 2):
            hit, entry = store.select(Cat(matches[n] & (e.level == level)
                                          for n, e in enumerate(store.entries)), f"l{level}")
            m.d.comb += [
                getattr(port, f"l{level}_hit").eq(hit & self.enable),
                getattr(port, f"l{level}_table").eq(entry.table),
            ]
        fill = self.fill & self.enable
        store.fill(fill, self.fill_entry, store.round_robin(fill))
        inv = self.invalidate
        store.invalidate(
            (inv.kind == InvalidateKind.TLB_ALL) | (inv.kind == InvalidateKind.TLB_ASID) |
            (inv.kind == InvalidateKind.TLB_VA),
            lambda e: (inv.kind == InvalidateKind.TLB_ALL) |
                      (inv.kind == InvalidateKind.TLB_ASID) & (e.asid == inv.asid) |
                      (inv.kind == InvalidateKind.TLB_VA) & _walk_covers(e, inv.asid, inv.va))
        return m


# STE cache -------------------------------------------------------------------------------------

class StreamEntryLayout(data.StructLayout):
    """A decoded, valid stream table entry."""
    def __init__(self, *, sid_width):
        super().__init__({
            "valid":  unsigned(1),
            "sid":    unsigned(sid_width),
            "config": StreamConfig,
            "record": unsigned(1),
            "asid":   unsigned(ASID_BITS),
            "ttb":    unsigned(_PPN_BITS),
        })


class StreamLookupSignature(wiring.Signature):
    """One STE cache lookup port, from the requester's side: the entry of ``sid`` in the
    next cycle."""
    def __init__(self, *, sid_width):
        self.sid_width = sid_width
        super().__init__({
            "sid":    Out(sid_width),
            "hit":    In(1),
            "config": In(StreamConfig),
            "record": In(1),
            "asid":   In(ASID_BITS),
            "ttb":    In(_PPN_BITS),
        })


class StreamCache(wiring.Component):
    """Fully associative cache of stream table entries.

    Parameters
    ----------
    entries : int
    sid_width : int
    lookups : int

    Members
    -------
    lookup : ``In(StreamLookupSignature(sid_width)).array(lookups)``
    fill : ``In(1)``
    fill_entry : ``In(StreamEntryLayout(sid_width))``
    invalidate : ``In(InvalidateLayout())``
        ``STE`` and ``STE_ALL`` apply.
    """
    def __init__(self, *, entries=4, sid_width=8, lookups=1):
        _check_count("Number of STE cache entries", entries, 2)
        _check_count("Stream ID width", sid_width)
        _check_count("Number of lookup ports", lookups)
        self.entries = entries
        self.sid_width = sid_width
        super().__init__({
            "lookup": In(StreamLookupSignature(sid_width=sid_width)).array(lookups),
            "fill": In(1),
            "fill_entry": In(StreamEntryLayout(sid_width=sid_width)),
            "invalidate": In(InvalidateLayout()),
        })

    def elaborate(self, platform):
        m = Module()
        store = _Store(m, StreamEntryLayout(sid_width=self.sid_width), self.entries, "ste")
        for n, port in enumerate(self.lookup):
            matches = store.compare(lambda e: e.sid == port.sid, f"lookup{n}")
            hit, entry = store.select(matches, f"lookup{n}")
            m.d.comb += [
                port.hit.eq(hit),
                port.config.eq(entry.config),
                port.record.eq(entry.record),
                port.asid.eq(entry.asid),
                port.ttb.eq(entry.ttb),
            ]
        store.fill(self.fill, self.fill_entry, store.round_robin(self.fill))
        inv = self.invalidate
        store.invalidate(
            (inv.kind == InvalidateKind.STE_ALL) | (inv.kind == InvalidateKind.STE),
            lambda e: (inv.kind == InvalidateKind.STE_ALL) |
                      (inv.kind == InvalidateKind.STE) & (e.sid == inv.sid))
        return m
