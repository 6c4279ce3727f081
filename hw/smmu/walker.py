"""The SMMU's translation server: stream table fetch, page-table walk and fault records.

Clients (the translation stages of each port, and the ATOS register) ask for the
translation of one transaction they could not translate from the caches; the walker serves
one request at a time, chosen round-robin, and answers with the output address, a fault
(after writing its event record, if the stream records faults) or an abort::

    IDLE ─▶ LOOKUP ─▶ START ─┬─▶ STE_AR ─▶ STE_R ─▶ STE_DECODE ─┐
                             └──────────────────────────────────┴─▶ TLB_LOOKUP ─▶ TLB_MATCH ─┐
          ┌─────────────────────────────────────────────────────────────── TLB_READ ◀──────────┘
          └─▶ CONFIG ─▶ WALK_AR ─▶ WALK_R ─▶ WALK_DECODE ─┐ (table: back to WALK_AR)
       RESPOND ◀── EVENT_B ◀── EVENT_W ◀── EVENT_AW ◀── FAULT ◀─────┘ (fault)

The STE cache's lookup takes a cycle, the IOTLB's and the walk cache's two: ``LOOKUP``
looks the stream up in the STE cache, for ``START``; ``TLB_LOOKUP`` looks the address up in
the IOTLB and the walk cache, ``TLB_MATCH`` waits for their second compare cycle, and
``TLB_READ`` registers their results for ``CONFIG``.

What fans out widely comes from registers: the client to serve next is chosen a cycle
ahead (so a request is taken a cycle after it is made), a client's ``done`` is registered
as ``RESPOND`` is entered, and the cache fills are written a cycle after they are decided
(an IOTLB fill at the end of ``RESPOND``, as its answer is given).

An invalidation that arrives while a request is being served marks it stale: nothing it
read is put in a cache any more, and instead of answering, the walker starts the request
over from ``LOOKUP`` (unless its fault record is already written), so no stale translation
is ever used or cached.

**Prefetch.** While no client asks, the walker takes a prefetch request (the next page of
a stream a translation stage is on) and walks it in the background, to fill the IOTLB
before the stream gets there. A prefetch answers no one and records nothing: it is dropped
without a fill if the stream's STE is not in the STE cache, the stream does not translate,
the IOTLB already holds the page, the walk faults (whatever the fault) or an invalidation
arrives during it (then not even the walk cache is filled from then on). It yields to
clients: it is dropped as soon as one asks, except that a descriptor read already issued
is waited for (its table descriptor still fills the walk cache, its leaf the IOTLB). So a
client that asks during a prefetch starts at most one descriptor read (from its address
being presented on the table port to its data) and two cycles later than it would have.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, enum, wiring
from amaranth.lib.wiring import In, Out

from ..bus.axi import AXI4Signature, Burst, Resp, Size
from ..one_hot import one_hot_fsm
from .caches import (StreamEntryLayout, StreamLookupSignature, TLBEntryLayout,
                     TLBLookupSignature, WalkCacheEntryLayout, WalkCacheLookupSignature,
                     leaf_address)
from .format import (EVENT_BYTES, GRANULE_SHIFT, IA_BITS, OA_BITS, STE_BYTES,
                     DescriptorLayout, EventLayout, EventType, StreamConfig,
                     StreamTableEntryLayout)

__all__ = ["TranslationStatus", "TranslationClientSignature", "PrefetchRequestSignature",
           "QueueConfigLayout", "Walker", "QUEUE_INDEX_WIDTH"]

#: Width of queue producer/consumer registers: index and wrap bit of queues of up to
#: ``2**15`` entries.
QUEUE_INDEX_WIDTH = 16


class TranslationStatus(enum.Enum, shape=2):
    OK    = 0
    FAULT = 1
    ABORT = 2


class TranslationClientSignature(wiring.Signature):
    """A client of the walker, from the client's side: ``valid`` is held with the request
    until ``done`` pulses with the answer."""
    def __init__(self, *, sid_width, addr_width=OA_BITS):
        super().__init__({
            "valid":  Out(1),
            "sid":    Out(sid_width),
            "addr":   Out(addr_width),
            "write":  Out(1),
            "instr":  Out(1),
            "done":   In(1),
            "status": In(TranslationStatus),
            "pa":     In(addr_width),
        })


class PrefetchRequestSignature(wiring.Signature):
    """A prefetch request to the walker, from the requester's side: ``valid`` with the
    stream and the page address (``addr`` with bits [11:0] clear), until ``ready``."""
    def __init__(self, *, sid_width, addr_width=OA_BITS):
        super().__init__({
            "valid": Out(1),
            "sid":   Out(sid_width),
            "addr":  Out(addr_width),
            "ready": In(1),
        })


class QueueConfigLayout(data.StructLayout):
    """Base, size and enable of an in-memory queue."""
    def __init__(self):
        super().__init__({
            "enable":   1,
            "base":     OA_BITS,
            "log2size": 5,
        })


def _first_ready(requests):
    """``ready`` for the lowest-numbered valid one of ``requests``."""
    statements = []
    earlier = Const(0)
    for request in requests:
        statements.append(request.ready.eq(request.valid & ~earlier))
        earlier = earlier | request.valid
    return statements


def queue_mask(m, log2size):
    """All-ones over the index bits and the wrap bit of a queue of ``2**log2size``; a
    register, a cycle behind ``log2size`` (which software sets while the queue is disabled),
    so that the paths through a queue's indices do not start at the shift."""
    mask = Signal(QUEUE_INDEX_WIDTH + 1)
    m.d.sync += mask.eq((Const(2, QUEUE_INDEX_WIDTH + 1) << log2size) - 1)
    return mask


class Walker(wiring.Component):
    """Serves translation requests that missed the caches.

    Parameters
    ----------
    clients : int
    sid_width : int
    bus_signature : AXI4Signature
        Of the memory port (descriptor, STE and event traffic).
    prefetchers : int
        Prefetch request ports (0: the walker never prefetches).

    Members
    -------
    clients : ``In(TranslationClientSignature(...)).array(clients)``
    prefetch : ``In(PrefetchRequestSignature(...)).array(prefetchers)``
        Taken while no client asks, the lowest-numbered first.
    bus : ``Out(bus_signature)``
    enable : ``In(1)``
        ``CR0.smmuen``; when clear, requests are answered OK with the input address.
    strtab_base : ``In(40)``, strtab_log2size : ``In(5)``
    evtq : ``In(QueueConfigLayout())``
    evtq_cons : ``In(QUEUE_INDEX_WIDTH)``
    evtq_prod : ``Out(QUEUE_INDEX_WIDTH)``
        Producer index with its wrap bit; reset to 0 while ``evtq.enable`` is clear.
    evtq_overflow : ``Out(1)``
        Toggles each time a record is lost to a full queue.
    event : ``Out(1)``
        Pulses when a record has been written.
    ste, tlb, walk_cache : lookup ports (``Out``)
    ste_fill, tlb_fill, walk_fill : ``Out(1)`` with ``*_entry`` values
        Registered: a fill is written a cycle after the walk decided it.
    invalidating : ``In(1)``
        An invalidation of any kind applies this cycle.
    walk_start, walk_busy, walk_read : ``Out(1)``
        For the counters: a table walk for a client starts; a cycle is spent walking for a
        client; a descriptor read is issued for a client.
    prefetch_start : ``Out(1)``
        A prefetch walk starts (the IOTLB misses the page).
    """
    def __init__(self, *, clients, sid_width, bus_signature, prefetchers=0):
        if not isinstance(bus_signature, AXI4Signature) or bus_signature.data_width != 64:
            raise ValueError(f"The walker's bus must be a 64-bit AXI4Signature, "
                             f"not {bus_signature!r}")
        if not isinstance(clients, int) or clients < 1:
            raise ValueError(f"Number of clients must be a positive integer, not {clients!r}")
        if not isinstance(prefetchers, int) or prefetchers < 0:
            raise ValueError(f"Number of prefetchers must be a non-negative integer, "
                             f"not {prefetchers!r}")
        self.n_clients = clients
        self.n_prefetchers = prefetchers
        self.sid_width = sid_width
        super().__init__({
            "clients": In(TranslationClientSignature(sid_width=sid_width)).array(clients),
            "prefetch": In(PrefetchRequestSignature(sid_width=sid_width)).array(prefetchers),
            "bus": Out(bus_signature),
            "enable": In(1),
            "strtab_base": In(OA_BITS),
            "strtab_log2size": In(5),
            "evtq": In(QueueConfigLayout()),
            "evtq_cons": In(QUEUE_INDEX_WIDTH),
            "evtq_prod": Out(QUEUE_INDEX_WIDTH),
            "evtq_overflow": Out(1),
            "event": Out(1),
            "ste": Out(StreamLookupSignature(sid_width=sid_width)),
            "ste_fill": Out(1),
            "ste_fill_entry": Out(StreamEntryLayout(sid_width=sid_width)),
            "tlb": Out(TLBLookupSignature()),
            "tlb_fill": Out(1),
            "tlb_fill_entry": Out(TLBEntryLayout()),
            "walk_cache": Out(WalkCacheLookupSignature()),
            "walk_fill": Out(1),
            "walk_fill_entry": Out(WalkCacheEntryLayout()),
            "invalidating": In(1),
            "walk_start": Out(1),
            "walk_busy": Out(1),
            "walk_read": Out(1),
            "prefetch_start": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        bus = self.bus
        n = self.n_clients

        # The request being served.
        grant = Signal(range(n))
        sid = Signal(self.sid_width)
        addr = Signal(OA_BITS)
        write = Signal()
        instr = Signal()
        # Its context.
        config = Signal(StreamConfig)
        record = Signal()
        asid = Signal(16)
        ttb = Signal(OA_BITS - GRANULE_SHIFT)
        # The walk.
        level = Signal(range(4))
        table = Signal(OA_BITS - GRANULE_SHIFT)
        desc = Signal(DescriptorLayout())
        desc_addr = Signal(OA_BITS)
        bus_error = Signal()
        ste_raw = Signal(StreamTableEntryLayout())
        beat = Signal(2)
        # The answer.
        status = Signal(TranslationStatus)
        pa = Signal(OA_BITS)
        event = Signal(EventLayout())
        event_written = Signal()
        stale = Signal()
        prefetching = Signal()      # the request is a prefetch: drop it rather than answer
        bad_sid = Signal()          # the stream ID is outside the stream table

        for client in self.clients:
            m.d.comb += [client.status.eq(status), client.pa.eq(pa)]

        # Round-robin choice among the clients asking, made a cycle ahead from registers. A
        # client holds ``valid`` until ``done``, so only the one answered this cycle is left
        # out; a client that starts asking is seen a cycle later.
        pick = Signal(range(n))
        asking = Signal()
        next_pick = Signal(range(n))
        next_asking = Signal()
        for last in range(n):
            with m.If(grant == last):
                for k in reversed(range(n)):
                    index = (last + 1 + k) % n
                    client = self.clients[index]
                    with m.If(client.valid & ~client.done):
                        m.d.comb += [next_pick.eq(index), next_asking.eq(1)]
        m.d.sync += [pick.eq(next_pick), asking.eq(next_asking)]

        # Lookups are made with the latched request; their results come a cycle later.
        m.d.comb += [
            self.ste.sid.eq(sid),
            self.tlb.asid.eq(asid), self.tlb.va.eq(addr),
            self.walk_cache.asid.eq(asid), self.walk_cache.va.eq(addr),
        ]
        # Fills are registered: one decided as an invalidation arrives is dropped, and the
        # caches drop one made in the cycle an invalidation of their kind arrives.
        may_fill = ~stale & ~self.invalidating
        # A prefetch gives way to clients, and to an invalidation (it is never restarted).
        give_up = prefetching & (asking | stale | self.invalidating)

        # Event queue.
        evtq = self.evtq
        mask = queue_mask(m, evtq.log2size)
        index_mask = mask >> 1
        prod = self.evtq_prod
        evtq_full = Signal()        # as of the previous cycle (FAULT never follows EVENT_B)
        m.d.sync += evtq_full.eq(((prod - self.evtq_cons) & mask) == (index_mask + 1))
        with m.If(~evtq.enable):
            m.d.sync += prod.eq(0)

        index = Signal(9)
        with m.Switch(level):
            with m.Case(1):
                m.d.comb += index.eq(addr[30:39])
            with m.Case(2):
                m.d.comb += index.eq(addr[21:30])
            with m.Default():
                m.d.comb += index.eq(addr[12:21])
        leaf_pa = leaf_address(level, addr, desc.oa)

        # The answer and the fault record are written in every cycle of the states that
        # decide (so that their enables are the state alone), with what was decided.
        next_status = Signal(TranslationStatus)
        next_pa = Signal(OA_BITS)
        next_type = Signal(EventType, init=EventType.TRANSLATION)
        next_fetch_addr = Signal(OA_BITS)

        def fault(kind):
            m.d.comb += [next_type.eq(kind), next_status.eq(TranslationStatus.FAULT)]
            m.next = "FAULT"

        # RESPOND answers the client in ``answering`` (one-hot, none for a prefetch), unless
        # the request starts over: ``done`` comes from registers, for the stages' wide enables.
        answering = Signal(n)
        restart = (stale | self.invalidating) & ~event_written
        m.d.sync += answering.eq(0)
        for k, client in enumerate(self.clients):
            m.d.comb += client.done.eq(answering[k] & ~restart)

        def respond():
            m.d.sync += answering.eq(Mux(prefetching, 0, Cat(grant == k for k in range(n))))
            m.next = "RESPOND"

        def answer(answer_status):
            m.d.comb += next_status.eq(answer_status)
            respond()

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
            self.ste_fill.eq(0), self.tlb_fill.eq(0), self.walk_fill.eq(0),
            self.ste_fill_entry.sid.eq(sid),
            self.ste_fill_entry.config.eq(ste_raw.config),
            self.ste_fill_entry.record.eq(ste_raw.record),
            self.ste_fill_entry.asid.eq(ste_raw.asid),
            self.ste_fill_entry.ttb.eq(ste_raw.ttb),
            self.walk_fill_entry.asid.eq(asid),
            self.walk_fill_entry.level.eq(level),
            self.walk_fill_entry.vpn.eq(addr[21:IA_BITS]),
            self.walk_fill_entry.table.eq(desc.oa),
            self.tlb_fill_entry.asid.eq(asid),
            self.tlb_fill_entry.level.eq(level),
            self.tlb_fill_entry.vpn.eq(addr[GRANULE_SHIFT:IA_BITS]),
            self.tlb_fill_entry.ppn.eq(desc.oa),
            self.tlb_fill_entry.read_only.eq(desc.ap[1]),
            self.tlb_fill_entry.xn.eq(desc.xn),
        ]

        m.d.comb += [
            bus.ar.payload.size.eq(Size.from_bytes(8)),
            bus.ar.payload.burst.eq(Burst.INCR),
            bus.aw.payload.size.eq(Size.from_bytes(8)),
            bus.aw.payload.burst.eq(Burst.INCR),
            bus.aw.payload.len.eq(EVENT_BYTES // 8 - 1),
            bus.aw.payload.addr.eq(evtq.base + ((prod & index_mask) * EVENT_BYTES)),
            bus.w.payload.strb.eq(0xff),
            bus.b.ready.eq(1),
        ]

        with one_hot_fsm(m) as fsm:
            with m.State("IDLE"):
                # The request is taken in every cycle of IDLE, a client's if one asks, else
                # the first prefetch's, so that its registers' enables are the state alone
                # (they feed the caches' lookups); only the state waits on the requests.
                m.d.sync += [write.eq(0), instr.eq(0)]
                if self.n_prefetchers:
                    m.d.sync += [sid.eq(self.prefetch[-1].sid), addr.eq(self.prefetch[-1].addr)]
                for request in reversed(self.prefetch):
                    with m.If(request.valid):
                        m.d.sync += [sid.eq(request.sid), addr.eq(request.addr)]
                with m.If(asking):
                    for k, client in enumerate(self.clients):
                        with m.If(pick == k):
                            m.d.sync += [sid.eq(client.sid), addr.eq(client.addr),
                                         write.eq(client.write), instr.eq(client.instr)]
                    m.d.sync += [grant.eq(pick), prefetching.eq(0)]
                    m.next = "LOOKUP"
                if self.n_prefetchers:
                    with m.Elif(self.enable &
                                Cat(request.valid for request in self.prefetch).any()):
                        m.d.comb += _first_ready(self.prefetch)
                        m.d.sync += prefetching.eq(1)
                        m.next = "LOOKUP"

            with m.State("LOOKUP"):
                m.d.sync += [
                    stale.eq(0), event_written.eq(0),
                    event.sid.eq(sid), event.rnw.eq(~write), event.input_addr.eq(addr),
                    bad_sid.eq((sid >> self.strtab_log2size) != 0),
                ]
                m.next = "START"

            with m.State("START"):
                # Taken whatever the outcome: STE_DECODE replaces them after a fetch.
                m.d.sync += [config.eq(self.ste.config), record.eq(bad_sid | self.ste.record),
                             asid.eq(self.ste.asid), ttb.eq(self.ste.ttb)]
                m.d.comb += next_pa.eq(addr)
                with m.If(prefetching & (asking | ~self.enable | ~self.ste.hit | bad_sid)):
                    m.next = "IDLE"
                with m.Elif(~self.enable):
                    answer(TranslationStatus.OK)
                with m.Elif(bad_sid):
                    fault(EventType.BAD_STREAMID)
                with m.Elif(self.ste.hit):
                    m.next = "TLB_LOOKUP"
                with m.Else():
                    m.d.sync += [desc_addr.eq(self.strtab_base + sid * STE_BYTES),
                                 bus_error.eq(0), beat.eq(0)]
                    m.next = "STE_AR"

            with m.State("STE_AR"):
                m.d.comb += [bus.ar.valid.eq(1), bus.ar.payload.addr.eq(desc_addr),
                             bus.ar.payload.len.eq(STE_BYTES // 8 - 1)]
                with m.If(bus.ar.ready):
                    m.next = "STE_R"

            with m.State("STE_R"):
                m.d.comb += bus.r.ready.eq(1)
                # The data is taken whether valid or not (so the enables are the state and
                # the beat alone): the valid beat is the last one taken into its half.
                with m.If(beat == 0):
                    m.d.sync += ste_raw.as_value()[:64].eq(bus.r.payload.data)
                with m.Else():
                    m.d.sync += ste_raw.as_value()[64:].eq(bus.r.payload.data)
                with m.If(bus.r.valid):
                    m.d.sync += beat.eq(beat + 1)
                    with m.If(bus.r.payload.resp != Resp.OKAY):
                        m.d.sync += bus_error.eq(1)
                    with m.If(bus.r.payload.last):
                        m.next = "STE_DECODE"

            with m.State("STE_DECODE"):
                config_valid = ((ste_raw.config == StreamConfig.ABORT) |
                                (ste_raw.config == StreamConfig.BYPASS) |
                                (ste_raw.config == StreamConfig.TRANSLATE))
                ste_bad = bus_error | ~ste_raw.valid | ~config_valid
                m.d.sync += [config.eq(ste_raw.config), record.eq(ste_bad | ste_raw.record),
                             asid.eq(ste_raw.asid), ttb.eq(ste_raw.ttb)]
                m.d.comb += next_fetch_addr.eq(Mux(bus_error, desc_addr, 0))
                with m.If(stale | self.invalidating):
                    m.next = "LOOKUP"
                with m.Elif(bus_error):
                    fault(EventType.STE_FETCH)
                with m.Elif(ste_bad):
                    fault(EventType.BAD_STE)
                with m.Else():
                    m.d.sync += self.ste_fill.eq(1)
                    m.next = "TLB_LOOKUP"

            with m.State("TLB_LOOKUP"):
                m.next = "TLB_MATCH"

            with m.State("TLB_MATCH"):
                # The IOTLB's and the walk cache's compares take two cycles.
                m.next = "TLB_READ"

            with m.State("TLB_READ"):
                m.next = "CONFIG"

            with m.State("CONFIG"):
                # The walk's start, taken whatever the outcome.
                with m.If(wc_l2_hit):
                    m.d.sync += [level.eq(3), table.eq(wc_l2_table)]
                with m.Elif(wc_l1_hit):
                    m.d.sync += [level.eq(2), table.eq(wc_l1_table)]
                with m.Else():
                    m.d.sync += [level.eq(1), table.eq(ttb)]
                m.d.comb += next_pa.eq(Mux(config == StreamConfig.BYPASS, addr, tlb_pa))
                with m.If(prefetching & (give_up | (config != StreamConfig.TRANSLATE) |
                                         (addr[IA_BITS:] != 0) | tlb_hit)):
                    m.next = "IDLE"
                with m.Elif(config == StreamConfig.ABORT):
                    answer(TranslationStatus.ABORT)
                with m.Elif(config == StreamConfig.BYPASS):
                    answer(TranslationStatus.OK)
                with m.Elif(addr[IA_BITS:] != 0):
                    fault(EventType.TRANSLATION)
                with m.Elif(tlb_hit):
                    with m.If(write & tlb_read_only | instr & tlb_xn):
                        fault(EventType.PERMISSION)
                    with m.Else():
                        answer(TranslationStatus.OK)
                with m.Else():
                    m.d.comb += [self.walk_start.eq(~prefetching),
                                 self.prefetch_start.eq(prefetching)]
                    m.next = "WALK_AR"

            with m.State("WALK_AR"):
                m.d.comb += [
                    self.walk_busy.eq(~prefetching),
                    bus.ar.valid.eq(1),
                    bus.ar.payload.addr.eq(Cat(Const(0, 3), index, table)),
                    bus.ar.payload.len.eq(0),
                ]
                with m.If(bus.ar.ready):
                    m.d.comb += self.walk_read.eq(~prefetching)
                    m.d.sync += desc_addr.eq(Cat(Const(0, 3), index, table))
                    m.next = "WALK_R"

            with m.State("WALK_R"):
                m.d.comb += [self.walk_busy.eq(~prefetching), bus.r.ready.eq(1)]
                # Taken whether valid or not, as in STE_R.
                m.d.sync += [desc.eq(bus.r.payload.data),
                             bus_error.eq(bus.r.payload.resp != Resp.OKAY)]
                with m.If(bus.r.valid):
                    m.next = "WALK_DECODE"

            with m.State("WALK_DECODE"):
                m.d.comb += self.walk_busy.eq(~prefetching)
                is_table = (level != 3) & desc.table
                # The next level, taken whatever the outcome.
                m.d.sync += [level.eq(level + 1), table.eq(desc.oa)]
                m.d.comb += [next_pa.eq(leaf_pa), next_fetch_addr.eq(Mux(bus_error, desc_addr, 0))]
                with m.If(bus_error):
                    fault(EventType.WALK_EABT)
                with m.Elif(~desc.valid | (level == 3) & ~desc.table):
                    fault(EventType.TRANSLATION)
                with m.Elif(desc.oa[OA_BITS - GRANULE_SHIFT:] != 0):
                    fault(EventType.ADDR_SIZE)
                with m.Elif(is_table):
                    m.d.sync += self.walk_fill.eq(may_fill)
                    with m.If(give_up):
                        m.next = "IDLE"
                    with m.Else():
                        m.next = "WALK_AR"
                with m.Elif(~desc.af):
                    fault(EventType.ACCESS)
                with m.Else():
                    m.d.sync += self.tlb_fill.eq(may_fill)
                    with m.If(write & desc.ap[1] | instr & desc.xn):
                        fault(EventType.PERMISSION)
                    with m.Else():
                        answer(TranslationStatus.OK)

            with m.State("FAULT"):
                with m.If(prefetching):
                    m.next = "IDLE"
                with m.Elif(stale | self.invalidating):
                    m.next = "LOOKUP"
                with m.Elif(~record | ~evtq.enable):
                    respond()
                with m.Elif(evtq_full):
                    m.d.sync += self.evtq_overflow.eq(~self.evtq_overflow)
                    respond()
                with m.Else():
                    m.next = "EVENT_AW"

            with m.State("EVENT_AW"):
                m.d.comb += bus.aw.valid.eq(1)
                m.d.sync += beat.eq(0)
                with m.If(bus.aw.ready):
                    m.next = "EVENT_W"

            with m.State("EVENT_W"):
                words = event.as_value()
                m.d.comb += [
                    bus.w.valid.eq(1),
                    bus.w.payload.data.eq(words.word_select(beat, 64)),
                    bus.w.payload.last.eq(beat == EVENT_BYTES // 8 - 1),
                ]
                with m.If(bus.w.ready):
                    m.d.sync += beat.eq(beat + 1)
                    with m.If(bus.w.payload.last):
                        m.next = "EVENT_B"

            with m.State("EVENT_B"):
                with m.If(bus.b.valid):
                    # A record whose write failed is lost; the transaction still faults.
                    with m.If(bus.b.payload.resp == Resp.OKAY):
                        m.d.sync += prod.eq((prod + 1) & mask)
                        m.d.comb += self.event.eq(1)
                    m.d.sync += event_written.eq(1)
                    respond()

            with m.State("RESPOND"):
                with m.If(prefetching):
                    m.next = "IDLE"
                with m.Elif(restart):
                    m.next = "LOOKUP"
                with m.Else():
                    m.next = "IDLE"

        with m.If(fsm.ongoing("START") | fsm.ongoing("STE_DECODE") | fsm.ongoing("CONFIG") |
                  fsm.ongoing("WALK_DECODE")):
            m.d.sync += [status.eq(next_status), pa.eq(next_pa),
                         event.type.eq(next_type), event.fetch_addr.eq(next_fetch_addr)]

        with m.If(self.invalidating):
            m.d.sync += stale.eq(1)

        return m
