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

Each keeps its entries in an :class:`~.store.EntryStore`, which registers their compares.
"""

import operator
from functools import reduce

from amaranth.hdl import Cat, Module, Mux, Signal, unsigned
from amaranth.lib import data, enum, wiring
from amaranth.lib.wiring import In, Out

from ..parameters import check_integer
from .format import ASID_BITS, GRANULE_SHIFT, IA_BITS, OA_BITS, StreamConfig
from .store import Compare, EntryStore, RoundRobin, next_index, selected

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


class _VictimChoice(wiring.Component):
    """The IOTLB entry the next fill replaces, chosen in three registered steps.

    The first registers the masks to choose from: the invalid entries and, for each mask of
    ``spare`` (entries to keep, most important first), the entries it allows and those of
    them at or after ``pointer``. The second registers the mask chosen: the invalid entries
    if any; else, of the first spare mask that allows any, its entries at or after the
    pointer or failing that all it allows; else the pointer. The third registers that
    mask's lowest entry, and whether it is not a hole.

    Parameters
    ----------
    count : int
    spares : int

    Members
    -------
    valid : ``In(count)``
    pointer : ``In(range(count))``
    spare : ``In(count).array(spares)``
    victim : ``Out(range(count))``
    victim_mask : ``Out(count)``
        ``victim``, one-hot.
    replacing : ``Out(1)``
        The victim holds a valid entry.
    """
    def __init__(self, count, *, spares):
        check_integer("Number of entries", count, minimum=2)
        check_integer("Number of spare masks", spares, minimum=0)
        super().__init__({
            "valid": In(count),
            "pointer": In(range(count)),
            "spare": In(count).array(spares),
            "victim": Out(range(count)),
            "victim_mask": Out(count),
            "replacing": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        count = len(self.valid)
        holes = Signal(count)
        pointer = Signal.like(self.pointer)     # the pointer the candidates were made with
        m.d.sync += [holes.eq(~self.valid), pointer.eq(self.pointer)]
        candidates = []
        for k, keep in enumerate(self.spare):
            allowed = Signal(count, name=f"allowed{k}")
            after = Signal(count, name=f"after{k}")
            m.d.sync += [allowed.eq(~keep),
                         after.eq(~keep & Cat(self.pointer <= n for n in range(count)))]
            candidates.append((allowed, after))

        choices = Cat(pointer == n for n in range(count))
        for allowed, after in reversed(candidates):
            # Applied least important first, so the most important choice stands.
            choices = Mux(allowed.any(), Mux(after.any(), after, allowed), choices)
        picked = Signal(count)
        picked_valid = Signal()
        m.d.sync += [picked.eq(Mux(holes.any(), holes, choices)), picked_valid.eq(~holes.any())]

        lowest = Cat(picked[n] & ~picked[:n].any() if n else picked[0] for n in range(count))
        m.d.sync += [
            self.victim.eq(reduce(operator.or_, (Mux(lowest[n], n, 0) for n in range(count)))),
            self.victim_mask.eq(lowest), self.replacing.eq(picked_valid),
        ]
        return m


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


class _AddressKeyLayout(data.StructLayout):
    """What an IOTLB or walk cache lookup compares: the ASID and the input address."""
    def __init__(self):
        super().__init__({
            "asid": unsigned(ASID_BITS),
            "va":   unsigned(IA_BITS + 1),
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
        check_integer("Number of IOTLB entries", entries, minimum=2)
        check_integer("Number of lookup ports", lookups, minimum=1)
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
        inv = self.invalidate
        by_va = (inv.kind == InvalidateKind.TLB_VA) | (inv.kind == InvalidateKind.TLB_VA_LEAF)
        whole = (inv.kind == InvalidateKind.TLB_ALL) | (inv.kind == InvalidateKind.TLB_ASID)

        def invalidated_parts(e, inv):
            high, middle, low = _covers_parts(e, inv.asid, inv.va)
            by_va = ((inv.kind == InvalidateKind.TLB_VA) |
                     (inv.kind == InvalidateKind.TLB_VA_LEAF))
            return [(inv.kind == InvalidateKind.TLB_ALL) |
                    (inv.kind == InvalidateKind.TLB_ASID) & (e.asid == inv.asid),
                    by_va & high, middle, low]

        m.submodules.store = store = EntryStore(
            TLBEntryLayout(), count, lookups=len(self.lookup),
            lookup=Compare(_AddressKeyLayout(), combine=_covers_of_parts,
                           parts=lambda e, key: _covers_parts(e, key.asid, key.va)),
            invalidation=Compare(InvalidateLayout(), parts=invalidated_parts,
                                 combine=lambda e, parts: (parts[0] |
                                                           _covers_of_parts(e, parts[1:]))))
        m.d.comb += [store.invalidate.eq(inv), store.invalidate_applies.eq(whole | by_va)]
        held = []                               # per stage port: the entry it hit last
        for n, port in enumerate(self.lookup):
            key = store.lookup_key[n]
            m.d.comb += [key.asid.eq(port.asid), key.va.eq(port.va)]
            matches = store.lookup_match[n]
            entry = Signal(TLBEntryLayout(), name=f"lookup{n}_entry")
            m.d.comb += entry.as_value().eq(selected(store.entries, matches))
            hit = matches.any()
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
        m.submodules.victim = choice = _VictimChoice(count, spares=2)
        m.d.comb += [
            choice.valid.eq(Cat(entry.valid for entry in store.entries)),
            choice.pointer.eq(pointer),
            choice.spare[0].eq(in_use | unused_fill),
            choice.spare[1].eq(in_use),
        ]
        victim, victim_mask, replacing = choice.victim, choice.victim_mask, choice.replacing
        m.d.comb += [store.fill.eq(Mux(self.fill, victim_mask, 0)),
                     store.fill_entry.eq(self.fill_entry)]
        with m.If(self.fill & replacing):
            m.d.sync += pointer.eq(next_index(victim, count))
        # The entries from the pointer up to the victim, passed over by this replacement.
        index = range(count)
        from_pointer = Cat(pointer <= n for n in index)
        before_victim = Cat(n < victim for n in index)
        passed = Mux(pointer <= victim, from_pointer & before_victim,
                     from_pointer | before_victim)
        m.d.sync += unused_fill.eq(
            (unused_fill & ~in_use & ~Mux(self.fill & replacing, passed, 0)) | store.fill)
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


def _walk_invalidated(entry, inv):
    """Whether invalidation ``inv`` removes walk cache ``entry``."""
    return ((inv.kind == InvalidateKind.TLB_ALL) |
            (inv.kind == InvalidateKind.TLB_ASID) & (entry.asid == inv.asid) |
            (inv.kind == InvalidateKind.TLB_VA) & _walk_covers(entry, inv.asid, inv.va))


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
        check_integer("Number of walk cache entries", entries, minimum=2)
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
        count = self.entries
        port, inv = self.lookup, self.invalidate
        # Over two cycles, as the IOTLB's, so that the compare stays a few LUTs deep.
        m.submodules.store = store = EntryStore(
            WalkCacheEntryLayout(), count,
            lookup=Compare(_AddressKeyLayout(), combine=_walk_of_parts,
                           parts=lambda e, key: _walk_parts(e, key.asid, key.va)),
            invalidation=Compare(InvalidateLayout(), predicate=_walk_invalidated))
        m.d.comb += [store.lookup_key[0].asid.eq(port.asid), store.lookup_key[0].va.eq(port.va)]
        matches = store.lookup_match[0]
        for level in (1, 2):
            entry = Signal(WalkCacheEntryLayout(), name=f"l{level}_entry")
            at_level = Cat(matches[n] & (e.level == level) for n, e in enumerate(store.entries))
            m.d.comb += [
                entry.as_value().eq(selected(store.entries, at_level)),
                getattr(port, f"l{level}_hit").eq(at_level.any() & self.enable),
                getattr(port, f"l{level}_table").eq(entry.table),
            ]
        m.submodules.victim = victim = RoundRobin(count)
        m.d.comb += [
            victim.valid.eq(Cat(e.valid for e in store.entries)),
            victim.advance.eq(self.fill & self.enable),
            store.fill.eq(victim.fill), store.fill_entry.eq(self.fill_entry),
            store.invalidate.eq(inv),
            store.invalidate_applies.eq((inv.kind == InvalidateKind.TLB_ALL) |
                                        (inv.kind == InvalidateKind.TLB_ASID) |
                                        (inv.kind == InvalidateKind.TLB_VA)),
        ]
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
        check_integer("Number of STE cache entries", entries, minimum=2)
        check_integer("Stream ID width", sid_width, minimum=1)
        check_integer("Number of lookup ports", lookups, minimum=1)
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
        count, inv = self.entries, self.invalidate
        layout = StreamEntryLayout(sid_width=self.sid_width)
        m.submodules.store = store = EntryStore(
            layout, count, lookups=len(self.lookup),
            lookup=Compare(data.StructLayout({"sid": self.sid_width}),
                           predicate=lambda e, key: e.sid == key.sid),
            invalidation=Compare(InvalidateLayout(), predicate=lambda e, inv: (
                (inv.kind == InvalidateKind.STE_ALL) |
                (inv.kind == InvalidateKind.STE) & (e.sid == inv.sid))))
        for n, port in enumerate(self.lookup):
            matches = store.lookup_match[n]
            entry = Signal(layout, name=f"lookup{n}_entry")
            m.d.comb += [
                store.lookup_key[n].sid.eq(port.sid),
                entry.as_value().eq(selected(store.entries, matches)),
                port.hit.eq(matches.any()),
                port.config.eq(entry.config),
                port.record.eq(entry.record),
                port.asid.eq(entry.asid),
                port.ttb.eq(entry.ttb),
            ]
        m.submodules.victim = victim = RoundRobin(count)
        m.d.comb += [
            victim.valid.eq(Cat(e.valid for e in store.entries)), victim.advance.eq(self.fill),
            store.fill.eq(victim.fill), store.fill_entry.eq(self.fill_entry),
            store.invalidate.eq(inv),
            store.invalidate_applies.eq((inv.kind == InvalidateKind.STE_ALL) |
                                        (inv.kind == InvalidateKind.STE)),
        ]
        return m
