"""The SMMU's caches, all fully associative: the IOTLB, the walk cache and the STE cache.

Each holds entries in registers, answers lookups combinationally (an entry filled at a
clock edge hits from the next cycle), takes one fill per cycle (into an invalid entry,
else a round-robin victim) and applies one invalidation per cycle (after a fill in the
same cycle, so an invalidation always wins).

The IOTLB's victim is chosen with more care, because prefetch fills it ahead of use: among
valid entries, it takes the next one round-robin that no translation stage is using (the
entry its lookup hit in the previous cycle) and that is not a fill still waiting for its
first use; failing that, the next one not in use. The pages a read and a write stream are
on, and the next pages prefetched for them, stay while any other entry can go. An unused
fill is passed over once only (the pointer clears its mark as it passes), so a prefetch that
is never used does not hold its entry for ever.

* :class:`IOTLB` — ASID-tagged translations of 4 KiB pages, 2 MiB and 1 GiB blocks.
* :class:`WalkCache` — level-1 and level-2 table descriptors, so a walk can start lower.
* :class:`StreamCache` — decoded stream table entries, by stream ID.
"""

import operator
from functools import reduce

from amaranth.hdl import Cat, Module, Mux, Signal, unsigned
from amaranth.lib import data, enum, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from .format import ASID_BITS, GRANULE_SHIFT, IA_BITS, OA_BITS, StreamConfig

__all__ = [
    "InvalidateKind", "InvalidateLayout",
    "TLBEntryLayout", "TLBLookupSignature", "IOTLB",
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
    """Registers of ``count`` entries of ``layout`` with fill and invalidation."""
    def __init__(self, m, layout, count, name):
        self.entries = [Signal(layout, name=f"{name}{n}") for n in range(count)]
        self._m = m
        self._name = name

    def fill(self, enable, value, *, spare=()):
        """Write ``value`` into an invalid entry, else into a victim: the round-robin one,
        or with ``spare`` (masks of entries to keep, most important first) the first one at
        or after the round-robin pointer (:attr:`victim`) outside the first mask that leaves
        a choice. Returns ``(chosen, replacing)``: the index written (while ``enable``), and
        whether it holds a valid entry (every entry does)."""
        m, entries = self._m, self.entries
        count = len(entries)
        self.victim = victim = Signal(range(count), name=f"{self._name}_victim")
        chosen = Signal.like(victim, name=f"{self._name}_chosen")
        m.d.comb += chosen.eq(victim)
        for keep in reversed(spare):
            # Applied least important first, so the most important choice stands.
            allowed = Signal(count, name=f"{self._name}_allowed")
            after = Signal(count, name=f"{self._name}_after")
            m.d.comb += [allowed.eq(~keep),
                         after.eq(allowed & Cat(victim <= n for n in range(count)))]
            with m.If(allowed.any()):
                m.d.comb += chosen.eq(_first_set(m, Mux(after.any(), after, allowed),
                                                 f"{self._name}_pick"))
        replacing = Signal(name=f"{self._name}_replacing")
        m.d.comb += replacing.eq(Cat(entry.valid for entry in entries).all())
        for n in reversed(range(count)):
            with m.If(~entries[n].valid):
                m.d.comb += chosen.eq(n)
        with m.If(enable):
            if spare:
                # The pointer moves past each replaced entry; filling a hole keeps it.
                with m.If(replacing):
                    m.d.sync += victim.eq(_next(chosen, count))
            else:
                m.d.sync += victim.eq(_next(victim, count))
            for n, entry in enumerate(entries):
                with m.If(chosen == n):
                    m.d.sync += [entry.eq(value), entry.valid.eq(1)]
        return chosen, replacing

    def invalidate(self, predicate):
        """Clear every entry for which ``predicate(entry)`` holds this cycle (applied
        after :meth:`fill`, so it wins)."""
        for entry in self.entries:
            with self._m.If(predicate(entry)):
                self._m.d.sync += entry.valid.eq(0)

    def select(self, predicate, name):
        """``(hit, entry, matches)``: whether some valid entry satisfies ``predicate``, (the
        OR of) those that do, and the mask of them."""
        m = self._m
        matches = Signal(len(self.entries), name=f"{name}_match")
        chosen = Signal.like(self.entries[0], name=f"{name}_entry")
        m.d.comb += matches.eq(Cat(entry.valid & predicate(entry) for entry in self.entries))
        m.d.comb += chosen.as_value().eq(0)
        for n, entry in enumerate(self.entries):
            with m.If(matches[n]):
                m.d.comb += chosen.eq(entry)
        return matches.any(), chosen, matches


def _first_set(m, mask, name):
    """Index of the lowest set bit of ``mask`` (0 if none)."""
    index = Signal(range(len(mask)), name=name)
    for n in reversed(range(len(mask))):
        with m.If(mask[n]):
            m.d.comb += index.eq(n)
    return index


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
    result back in the same cycle."""
    def __init__(self):
        super().__init__({
            "asid":      Out(ASID_BITS),
            "va":        Out(IA_BITS + 1),
            "hit":       In(1),
            "pa":        In(OA_BITS),
            "level":     In(2),
            "read_only": In(1),
            "xn":        In(1),
        })


def _covers(entry, asid, va):
    """Whether TLB ``entry`` of any level translates ``va`` for ``asid``."""
    vpn = va[GRANULE_SHIFT:IA_BITS]
    return ((entry.asid == asid) & ~va[IA_BITS] &
            (((entry.level == 1) & (entry.vpn[18:] == vpn[18:])) |
             ((entry.level == 2) & (entry.vpn[9:] == vpn[9:])) |
             ((entry.level == 3) & (entry.vpn == vpn))))


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
        Write ``fill_entry`` this cycle.
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
        store = _Store(m, TLBEntryLayout(), self.entries, "tlb")
        in_use = Signal(self.entries)           # hit by a stage's lookup in the last cycle
        unused_fill = Signal(self.entries)      # filled, and not hit by a stage since
        used = []
        for n, port in enumerate(self.lookup):
            hit, entry, matches = store.select(lambda e: _covers(e, port.asid, port.va),
                                               f"lookup{n}")
            if n < self.users:
                used.append(matches)
            va = port.va
            m.d.comb += [
                port.hit.eq(hit),
                port.level.eq(entry.level),
                port.read_only.eq(entry.read_only),
                port.xn.eq(entry.xn),
            ]
            with m.Switch(entry.level):
                with m.Case(1):
                    m.d.comb += port.pa.eq(Cat(va[:30], entry.ppn[18:]))
                with m.Case(2):
                    m.d.comb += port.pa.eq(Cat(va[:21], entry.ppn[9:]))
                with m.Default():
                    m.d.comb += port.pa.eq(Cat(va[:12], entry.ppn))
        # Registered: the lookups' compares stay off the victim choice (a clock-rate path).
        m.d.sync += in_use.eq(reduce(operator.or_, used, 0))
        chosen, replacing = store.fill(self.fill, self.fill_entry,
                                       spare=(in_use | unused_fill, in_use))
        # The entries from the pointer up to the victim, passed over by this replacement.
        pointer, index = store.victim, range(self.entries)
        from_pointer = Cat(pointer <= n for n in index)
        before_victim = Cat(n < chosen for n in index)
        passed = Mux(pointer <= chosen, from_pointer & before_victim,
                     from_pointer | before_victim)
        m.d.sync += unused_fill.eq(
            (unused_fill & ~in_use & ~Mux(self.fill & replacing, passed, 0)) |
            Mux(self.fill, 1 << chosen, 0))
        inv = self.invalidate
        store.invalidate(lambda e:
            (inv.kind == InvalidateKind.TLB_ALL) |
            (inv.kind == InvalidateKind.TLB_ASID) & (e.asid == inv.asid) |
            ((inv.kind == InvalidateKind.TLB_VA) | (inv.kind == InvalidateKind.TLB_VA_LEAF)) &
            _covers(e, inv.asid, inv.va))
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
    descriptors cached for ``asid`` and ``va``."""
    def __init__(self):
        super().__init__({
            "asid":     Out(ASID_BITS),
            "va":       Out(IA_BITS + 1),
            "l1_hit":   In(1),
            "l1_table": In(_PPN_BITS),
            "l2_hit":   In(1),
            "l2_table": In(_PPN_BITS),
        })


def _walk_covers(entry, asid, va):
    return ((entry.asid == asid) & ~va[IA_BITS] &
            (((entry.level == 1) & (entry.vpn[9:] == va[30:IA_BITS])) |
             ((entry.level == 2) & (entry.vpn == va[21:IA_BITS]))))


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
        for level in (1, 2):
            hit, entry, _ = store.select(
                lambda e: (e.level == level) & _walk_covers(e, port.asid, port.va),
                f"l{level}")
            m.d.comb += [
                getattr(port, f"l{level}_hit").eq(hit & self.enable),
                getattr(port, f"l{level}_table").eq(entry.table),
            ]
        store.fill(self.fill & self.enable, self.fill_entry)
        inv = self.invalidate
        store.invalidate(lambda e:
            (inv.kind == InvalidateKind.TLB_ALL) |
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
    """One STE cache lookup port, from the requester's side."""
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
            hit, entry, _ = store.select(lambda e: e.sid == port.sid, f"lookup{n}")
            m.d.comb += [
                port.hit.eq(hit),
                port.config.eq(entry.config),
                port.record.eq(entry.record),
                port.asid.eq(entry.asid),
                port.ttb.eq(entry.ttb),
            ]
        store.fill(self.fill, self.fill_entry)
        inv = self.invalidate
        store.invalidate(lambda e:
            (inv.kind == InvalidateKind.STE_ALL) |
            (inv.kind == InvalidateKind.STE) & (e.sid == inv.sid))
        return m
