"""The SMMU's caches, all fully associative: the IOTLB, the walk cache and the STE cache.

Each holds entries in registers, answers lookups combinationally (an entry filled at a
clock edge hits from the next cycle), takes one fill per cycle (into an invalid entry,
else a round-robin victim) and applies one invalidation per cycle (after a fill in the
same cycle, so an invalidation always wins).

* :class:`IOTLB` — ASID-tagged translations of 4 KiB pages, 2 MiB and 1 GiB blocks.
* :class:`WalkCache` — level-1 and level-2 table descriptors, so a walk can start lower.
* :class:`StreamCache` — decoded stream table entries, by stream ID.
"""

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

    def fill(self, enable, value):
        m, entries = self._m, self.entries
        victim = Signal(range(len(entries)), name=f"{self._name}_victim")
        chosen = Signal.like(victim, name=f"{self._name}_chosen")
        m.d.comb += chosen.eq(victim)
        for n in reversed(range(len(entries))):
            with m.If(~entries[n].valid):
                m.d.comb += chosen.eq(n)
        with m.If(enable):
            m.d.sync += victim.eq(_next(victim, len(entries)))
            for n, entry in enumerate(entries):
                with m.If(chosen == n):
                    m.d.sync += [entry.eq(value), entry.valid.eq(1)]

    def invalidate(self, predicate):
        """Clear every entry for which ``predicate(entry)`` holds this cycle (applied
        after :meth:`fill`, so it wins)."""
        for entry in self.entries:
            with self._m.If(predicate(entry)):
                self._m.d.sync += entry.valid.eq(0)

    def select(self, predicate, name):
        """``(hit, entry)``: whether some valid entry satisfies ``predicate``, and (the OR
        of) those that do."""
        m = self._m
        matches = Signal(len(self.entries), name=f"{name}_match")
        chosen = Signal.like(self.entries[0], name=f"{name}_entry")
        m.d.comb += matches.eq(Cat(entry.valid & predicate(entry) for entry in self.entries))
        m.d.comb += chosen.as_value().eq(0)
        for n, entry in enumerate(self.entries):
            with m.If(matches[n]):
                m.d.comb += chosen.eq(entry)
        return matches.any(), chosen


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

    Members
    -------
    lookup : ``In(TLBLookupSignature()).array(lookups)``
    fill : ``In(1)``
        Write ``fill_entry`` this cycle.
    fill_entry : ``In(TLBEntryLayout())``
    invalidate : ``In(InvalidateLayout())``
        ``TLB_*`` kinds apply.
    """
    def __init__(self, *, entries=16, lookups=1):
        _check_count("Number of IOTLB entries", entries, 2)
        _check_count("Number of lookup ports", lookups)
        self.entries = entries
        super().__init__({
            "lookup": In(TLBLookupSignature()).array(lookups),
            "fill": In(1),
            "fill_entry": In(TLBEntryLayout()),
            "invalidate": In(InvalidateLayout()),
        })

    def elaborate(self, platform):
        m = Module()
        store = _Store(m, TLBEntryLayout(), self.entries, "tlb")
        for n, port in enumerate(self.lookup):
            hit, entry = store.select(lambda e: _covers(e, port.asid, port.va), f"lookup{n}")
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
        store.fill(self.fill, self.fill_entry)
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
            hit, entry = store.select(
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
            hit, entry = store.select(lambda e: e.sid == port.sid, f"lookup{n}")
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
