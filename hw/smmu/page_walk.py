"""The translation of one request whose stream context is known: the IOTLB, then the walk
cache and the page tables."""

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ..one_hot import one_hot_fsm
from .arbiter import TranslationStatus
from .caches import (TLBEntryLayout, TLBLookupSignature, WalkCacheEntryLayout,
                     WalkCacheLookupSignature, leaf_address)
from .format import (ASID_BITS, GRANULE_SHIFT, IA_BITS, OA_BITS, DescriptorLayout,
                     EventType, StreamConfig)
from .reader import TableReadLayout

__all__ = ["WALK_COUNTERS", "PageWalk"]

#: The walk's pulses for the SMMU's counters: a walk for a client starts; a cycle is spent
#: walking for a client; a descriptor read is issued for a client; a prefetch walk starts.
WALK_COUNTERS = ("walk_start", "walk_busy", "walk_read", "prefetch_start")


class PageWalk(wiring.Component):
    """Translates one request: from the IOTLB, else by walking the page tables.

    ::

        IDLE ─▶ TLB_LOOKUP ─▶ TLB_MATCH ─▶ TLB_READ ─▶ CONFIG ─┬─────────────────▶ IDLE
                                                                └▶ READ ─▶ DECODE ─┤ (leaf, fault)
                                                                    ▲ table ◀──────┘

    The IOTLB and the walk cache are looked up with ``asid`` and ``addr`` all the time; their
    compares take two cycles (``TLB_LOOKUP``, ``TLB_MATCH``), and ``TLB_READ`` registers
    their results for ``CONFIG``, which decides from them and the stream's ``config``. A walk
    starts below the deepest table descriptor the walk cache has, and reads one descriptor a
    level (``READ``, ``DECODE``); each table descriptor fills the walk cache, the leaf the
    IOTLB (fills are registered, and dropped unless ``may_fill``).

    ``CONFIG`` and ``DECODE`` decide (``deciding``): the walk ends with an answer, a fault or,
    for a prefetch, nothing (``dropped``), or goes on. A prefetch is dropped as ``CONFIG``
    finds that it does not translate, is out of range or hits the IOTLB, and whenever
    ``give_up`` (at ``CONFIG``, or after a table descriptor).

    Members
    -------
    start : ``In(1)``
        Translate the request (``addr``, ``write``, ``instr``, ``prefetching``) in the
        stream context (``config``, ``asid``, ``ttb``), all held until the walk ends.
    give_up, may_fill : ``In(1)``
    tlb : ``Out(TLBLookupSignature())``, walk_cache : ``Out(WalkCacheLookupSignature())``
    tlb_fill, walk_fill : ``Out(1)`` with ``tlb_fill_entry``, ``walk_fill_entry``
    read : ``Out(stream.Signature(TableReadLayout()))``
        Descriptor reads, answered by ``read_done`` with ``read_data`` and ``read_error``.
    deciding : ``Out(1)``
        The walk decides this cycle: it ends with ``answer`` (``status``: OK or ABORT),
        ``fault`` (``fault_type``; ``status`` FAULT) or ``dropped``, or goes on. ``pa`` and
        ``fetch_addr`` (of a descriptor whose read failed, else 0) go with it.
    walk_start, walk_busy, walk_read, prefetch_start : ``Out(1)``
        For the counters (:data:`WALK_COUNTERS`).
    """
    def __init__(self):
        super().__init__({
            "start": In(1),
            "addr": In(OA_BITS),
            "write": In(1),
            "instr": In(1),
            "prefetching": In(1),
            "config": In(StreamConfig),
            "asid": In(ASID_BITS),
            "ttb": In(OA_BITS - GRANULE_SHIFT),
            "give_up": In(1),
            "may_fill": In(1),
            "tlb": Out(TLBLookupSignature()),
            "tlb_fill": Out(1),
            "tlb_fill_entry": Out(TLBEntryLayout()),
            "walk_cache": Out(WalkCacheLookupSignature()),
            "walk_fill": Out(1),
            "walk_fill_entry": Out(WalkCacheEntryLayout()),
            "read": Out(stream.Signature(TableReadLayout())),
            "read_data": In(DescriptorLayout()),
            "read_error": In(1),
            "read_done": In(1),
            "deciding": Out(1),
            "answer": Out(1),
            "fault": Out(1),
            "dropped": Out(1),
            "status": Out(TranslationStatus),
            "fault_type": Out(EventType, init=EventType.TRANSLATION),
            "pa": Out(OA_BITS),
            "fetch_addr": Out(OA_BITS),
            **{name: Out(1) for name in WALK_COUNTERS},
        })

    def elaborate(self, platform):
        m = Module()
        addr, config, desc = self.addr, self.config, self.read_data
        prefetching = self.prefetching
        level = Signal(range(4))
        table = Signal(OA_BITS - GRANULE_SHIFT)
        desc_addr = Signal(OA_BITS)         # of the descriptor read last
        m.d.comb += [
            self.tlb.asid.eq(self.asid), self.tlb.va.eq(addr),
            self.walk_cache.asid.eq(self.asid), self.walk_cache.va.eq(addr),
        ]

        # The IOTLB and walk cache results, registered for CONFIG.
        tlb_hit = Signal()
        tlb_pa = Signal(OA_BITS)
        tlb_read_only = Signal()
        tlb_xn = Signal()
        wc_l1_hit = Signal()
        wc_l1_table = Signal.like(self.walk_cache.l1_table)
        wc_l2_hit = Signal()
        wc_l2_table = Signal.like(self.walk_cache.l2_table)
        m.d.sync += [
            tlb_hit.eq(self.tlb.hit), tlb_pa.eq(self.tlb.pa),
            tlb_read_only.eq(self.tlb.read_only), tlb_xn.eq(self.tlb.xn),
            wc_l1_hit.eq(self.walk_cache.l1_hit), wc_l1_table.eq(self.walk_cache.l1_table),
            wc_l2_hit.eq(self.walk_cache.l2_hit), wc_l2_table.eq(self.walk_cache.l2_table),
        ]

        # The fills, registered; their entries are taken from the walk every cycle.
        m.d.sync += [
            self.tlb_fill.eq(0), self.walk_fill.eq(0),
            self.walk_fill_entry.asid.eq(self.asid),
            self.walk_fill_entry.level.eq(level),
            self.walk_fill_entry.vpn.eq(addr[21:IA_BITS]),
            self.walk_fill_entry.table.eq(desc.oa),
            self.tlb_fill_entry.asid.eq(self.asid),
            self.tlb_fill_entry.level.eq(level),
            self.tlb_fill_entry.vpn.eq(addr[GRANULE_SHIFT:IA_BITS]),
            self.tlb_fill_entry.ppn.eq(desc.oa),
            self.tlb_fill_entry.read_only.eq(desc.ap[1]),
            self.tlb_fill_entry.xn.eq(desc.xn),
        ]

        index = Signal(9)               # of the descriptor in its table
        with m.Switch(level):
            with m.Case(1):
                m.d.comb += index.eq(addr[30:39])
            with m.Case(2):
                m.d.comb += index.eq(addr[21:30])
            with m.Default():
                m.d.comb += index.eq(addr[12:21])

        def fault(kind):
            m.d.comb += [self.fault.eq(1), self.fault_type.eq(kind),
                         self.status.eq(TranslationStatus.FAULT)]
            m.next = "IDLE"

        def answer(status):
            m.d.comb += [self.answer.eq(1), self.status.eq(status)]
            m.next = "IDLE"

        def drop():
            m.d.comb += self.dropped.eq(1)
            m.next = "IDLE"

        with one_hot_fsm(m, name="walk"):
            with m.State("IDLE"):
                with m.If(self.start):
                    m.next = "TLB_LOOKUP"

            with m.State("TLB_LOOKUP"):
                m.next = "TLB_MATCH"

            with m.State("TLB_MATCH"):
                m.next = "TLB_READ"

            with m.State("TLB_READ"):
                m.next = "CONFIG"

            with m.State("CONFIG"):
                m.d.comb += [self.deciding.eq(1),
                             self.pa.eq(Mux(config == StreamConfig.BYPASS, addr, tlb_pa))]
                # The walk's start, taken whatever the outcome.
                with m.If(wc_l2_hit):
                    m.d.sync += [level.eq(3), table.eq(wc_l2_table)]
                with m.Elif(wc_l1_hit):
                    m.d.sync += [level.eq(2), table.eq(wc_l1_table)]
                with m.Else():
                    m.d.sync += [level.eq(1), table.eq(self.ttb)]
                with m.If(prefetching & (self.give_up | (config != StreamConfig.TRANSLATE) |
                                         (addr[IA_BITS:] != 0) | tlb_hit)):
                    drop()
                with m.Elif(config == StreamConfig.ABORT):
                    answer(TranslationStatus.ABORT)
                with m.Elif(config == StreamConfig.BYPASS):
                    answer(TranslationStatus.OK)
                with m.Elif(addr[IA_BITS:] != 0):
                    fault(EventType.TRANSLATION)
                with m.Elif(tlb_hit):
                    with m.If(self.write & tlb_read_only | self.instr & tlb_xn):
                        fault(EventType.PERMISSION)
                    with m.Else():
                        answer(TranslationStatus.OK)
                with m.Else():
                    m.d.comb += [self.walk_start.eq(~prefetching),
                                 self.prefetch_start.eq(prefetching)]
                    m.next = "READ"

            with m.State("READ"):
                m.d.comb += [
                    self.walk_busy.eq(~prefetching),
                    self.read.valid.eq(1),
                    self.read.payload.addr.eq(Cat(Const(0, 3), index, table)),
                    self.read.payload.len.eq(0),
                ]
                with m.If(self.read.ready):
                    m.d.comb += self.walk_read.eq(~prefetching)
                    m.d.sync += desc_addr.eq(Cat(Const(0, 3), index, table))
                with m.If(self.read_done):
                    m.next = "DECODE"

            with m.State("DECODE"):
                error = self.read_error
                m.d.comb += [
                    self.walk_busy.eq(~prefetching), self.deciding.eq(1),
                    self.pa.eq(leaf_address(level, addr, desc.oa)),
                    self.fetch_addr.eq(Mux(error, desc_addr, 0)),
                ]
                # The next level, taken whatever the outcome.
                m.d.sync += [level.eq(level + 1), table.eq(desc.oa)]
                with m.If(error):
                    fault(EventType.WALK_EABT)
                with m.Elif(~desc.valid | (level == 3) & ~desc.table):
                    fault(EventType.TRANSLATION)
                with m.Elif(desc.oa[OA_BITS - GRANULE_SHIFT:] != 0):
                    fault(EventType.ADDR_SIZE)
                with m.Elif((level != 3) & desc.table):
                    m.d.sync += self.walk_fill.eq(self.may_fill)
                    with m.If(self.give_up):
                        drop()
                    with m.Else():
                        m.next = "READ"
                with m.Elif(~desc.af):
                    fault(EventType.ACCESS)
                with m.Else():
                    m.d.sync += self.tlb_fill.eq(self.may_fill)
                    with m.If(self.write & desc.ap[1] | self.instr & desc.xn):
                        fault(EventType.PERMISSION)
                    with m.Else():
                        answer(TranslationStatus.OK)
        return m
