"""The SMMU's translation server: stream table fetch, page-table walk and fault records.

Clients (the translation stages of each port, and the ATOS register) ask for the
translation of one transaction they could not translate from the caches; the walker serves
one request at a time, chosen round-robin, and answers with the output address, a fault
(after writing its event record, if the stream records faults) or an abort::

    IDLE ─▶ LOOKUP ─▶ START ─┬─▶ STE_READ ─▶ STE_DECODE ─┬─▶ TRANSLATE ─┬──────────▶ RESPOND
                             └───────────────────────────┘              └─▶ FAULT ─▶ EVENT ─┘

It is made of parts with their own signatures:

* :class:`~.arbiter.ClientArbiter` chooses the request (a client's, else a prefetch), holds
  it and answers its client;
* :class:`~.reader.TableReader` reads stream table entries (``STE_READ``) and descriptors;
* :class:`~.page_walk.PageWalk` translates the request in its stream's context
  (``TRANSLATE``): from the IOTLB, else by walking the page tables through the walk cache;
* :class:`~.evtq.EventWriter` writes the fault record (``EVENT``) and keeps the event
  queue's producer index.

The STE cache's lookup takes a cycle: ``LOOKUP`` looks the stream up, for ``START``.

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

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out, connect

from ..bus.axi import AXI4Signature
from ..one_hot import one_hot_fsm
from .arbiter import (ClientArbiter, PrefetchRequestSignature, TranslationClientSignature,
                      TranslationStatus)
from .caches import StreamEntryLayout, StreamLookupSignature
from .evtq import EventWriter
from .format import (GRANULE_SHIFT, OA_BITS, STE_BYTES, EventLayout, EventType,
                     StreamConfig, StreamTableEntryLayout)
from .queue import QUEUE_INDEX_WIDTH, QueueConfigLayout, aligned
from .page_walk import WALK_COUNTERS, PageWalk
from .reader import TableReader

__all__ = ["TranslationStatus", "TranslationClientSignature", "PrefetchRequestSignature",
           "Walker"]

_WALK_FILLS = ("tlb_fill", "tlb_fill_entry", "walk_fill", "walk_fill_entry")


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
    evtq_ovack : ``In(1)``
        ``EVTQ_CONS.ovackflg``.
    evtq_overflow : ``Out(1)``
        Toggles once per overflow episode (see :class:`~.evtq.EventWriter`).
    evtq_lost : ``Out(32)``
        Records lost to a full queue.
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
        self._page_walk = PageWalk()
        walk = self._page_walk.signature.members   # the IOTLB's and walk cache's side
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
            "evtq_ovack": In(1),
            "evtq_overflow": Out(1),
            "evtq_lost": Out(32),
            "event": Out(1),
            "ste": Out(StreamLookupSignature(sid_width=sid_width)),
            "ste_fill": Out(1),
            "ste_fill_entry": Out(StreamEntryLayout(sid_width=sid_width)),
            **{name: walk[name] for name in ("tlb", *_WALK_FILLS[:2], "walk_cache",
                                              *_WALK_FILLS[2:])},
            "invalidating": In(1),
            **{name: walk[name] for name in WALK_COUNTERS},
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.arbiter = arbiter = ClientArbiter(
            clients=self.n_clients, prefetchers=self.n_prefetchers, sid_width=self.sid_width)
        m.submodules.page_walk = walk = self._page_walk
        m.submodules.reader = reader = TableReader(self.bus.signature, words=STE_BYTES // 8)
        m.submodules.events = events = EventWriter(self.bus.signature)
        for ours, theirs in [*zip(self.clients, arbiter.clients),
                             *zip(self.prefetch, arbiter.prefetch)]:
            connect(m, wiring.flipped(ours), theirs)
        connect(m, walk.tlb, wiring.flipped(self.tlb))
        connect(m, walk.walk_cache, wiring.flipped(self.walk_cache))
        memory = wiring.flipped(self.bus)   # reads are the reader's, writes the events'
        for source, sink in [(reader.ar, memory.ar), (memory.r, reader.r),
                             (events.aw, memory.aw), (events.w, memory.w), (memory.b, events.b)]:
            connect(m, source, sink)

        # The request being served.
        sid, addr, write, instr = arbiter.sid, arbiter.addr, arbiter.write, arbiter.instr
        prefetching = arbiter.prefetching   # a prefetch: dropped rather than answered
        # Its context.
        config = Signal(StreamConfig)
        record = Signal()
        asid = Signal(16)
        ttb = Signal(OA_BITS - GRANULE_SHIFT)
        bad_sid = Signal()          # the stream ID is outside the stream table
        ste_addr = Signal(OA_BITS)  # of the stream's STE
        ste_raw = data.View(StreamTableEntryLayout(), reader.data)
        # The answer.
        status = Signal(TranslationStatus)
        pa = Signal(OA_BITS)
        event = Signal(EventLayout())
        event_written = Signal()
        stale = Signal()

        m.d.comb += [
            arbiter.prefetch_enable.eq(self.enable),
            arbiter.status.eq(status), arbiter.pa.eq(pa),
            walk.addr.eq(addr), walk.write.eq(write), walk.instr.eq(instr),
            walk.prefetching.eq(prefetching),
            walk.config.eq(config), walk.asid.eq(asid), walk.ttb.eq(ttb),
            walk.read_data.eq(reader.data[:64]), walk.read_error.eq(reader.error),
            self.ste.sid.eq(sid),
            *(getattr(self, name).eq(getattr(walk, name))
              for name in (*_WALK_FILLS, *WALK_COUNTERS)),
            events.evtq.eq(self.evtq), events.cons.eq(self.evtq_cons), events.record.eq(event),
            events.ovack.eq(self.evtq_ovack), self.evtq_lost.eq(events.lost),
            self.evtq_prod.eq(events.prod), self.evtq_overflow.eq(events.overflow),
            self.event.eq(events.written),
        ]
        # Fills are registered: one decided as an invalidation arrives is dropped, and the
        # caches drop one made in the cycle an invalidation of their kind arrives.
        m.d.comb += walk.may_fill.eq(~stale & ~self.invalidating)
        # A prefetch gives way to clients, and to an invalidation (it is never restarted).
        m.d.comb += walk.give_up.eq(prefetching & (arbiter.asking | stale | self.invalidating))
        m.d.sync += [
            self.ste_fill.eq(0),
            self.ste_fill_entry.sid.eq(sid),
            self.ste_fill_entry.config.eq(ste_raw.config),
            self.ste_fill_entry.record.eq(ste_raw.record),
            self.ste_fill_entry.asid.eq(ste_raw.asid),
            self.ste_fill_entry.ttb.eq(ste_raw.ttb),
        ]

        # The answer and the fault record are written in every cycle of the states that
        # decide (so that their enables are the state alone), with what was decided.
        next_status = Signal(TranslationStatus)
        next_pa = Signal(OA_BITS)
        next_type = Signal(EventType, init=EventType.TRANSLATION)
        next_fetch_addr = Signal(OA_BITS)

        def fault(kind):
            m.d.comb += [next_type.eq(kind), next_status.eq(TranslationStatus.FAULT)]
            m.next = "FAULT"

        # RESPOND answers the client, unless the request starts over.
        restart = (stale | self.invalidating) & ~event_written
        m.d.comb += arbiter.withhold.eq(restart)

        def respond():
            m.d.comb += arbiter.respond.eq(1)
            m.next = "RESPOND"

        def answer(answer_status):
            m.d.comb += next_status.eq(answer_status)
            respond()

        with one_hot_fsm(m) as fsm:
            with m.State("IDLE"):
                m.d.comb += arbiter.take.eq(1)
                with m.If(arbiter.taken):
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
                with m.If(prefetching & (arbiter.asking | ~self.enable | ~self.ste.hit |
                                         bad_sid)):
                    m.next = "IDLE"
                with m.Elif(~self.enable):
                    answer(TranslationStatus.OK)
                with m.Elif(bad_sid):
                    fault(EventType.BAD_STREAMID)
                with m.Elif(self.ste.hit):
                    m.d.comb += walk.start.eq(1)
                    m.next = "TRANSLATE"
                with m.Else():
                    m.d.sync += ste_addr.eq(aligned(self.strtab_base, STE_BYTES) +
                                            sid * STE_BYTES)
                    m.next = "STE_READ"

            with m.State("STE_READ"):
                m.d.comb += [reader.read.valid.eq(1), reader.read.payload.addr.eq(ste_addr),
                             reader.read.payload.len.eq(STE_BYTES // 8 - 1)]
                with m.If(reader.done):
                    m.next = "STE_DECODE"

            with m.State("STE_DECODE"):
                bus_error = reader.error
                config_valid = ((ste_raw.config == StreamConfig.ABORT) |
                                (ste_raw.config == StreamConfig.BYPASS) |
                                (ste_raw.config == StreamConfig.TRANSLATE))
                ste_bad = bus_error | ~ste_raw.valid | ~config_valid
                m.d.sync += [config.eq(ste_raw.config), record.eq(ste_bad | ste_raw.record),
                             asid.eq(ste_raw.asid), ttb.eq(ste_raw.ttb)]
                m.d.comb += next_fetch_addr.eq(Mux(bus_error, ste_addr, 0))
                with m.If(stale | self.invalidating):
                    m.next = "LOOKUP"
                with m.Elif(bus_error):
                    fault(EventType.STE_FETCH)
                with m.Elif(ste_bad):
                    fault(EventType.BAD_STE)
                with m.Else():
                    m.d.sync += self.ste_fill.eq(1)
                    m.d.comb += walk.start.eq(1)
                    m.next = "TRANSLATE"

            with m.State("TRANSLATE"):
                # The descriptor reads are the walk's, and its decisions the walker's.
                m.d.comb += [
                    reader.read.valid.eq(walk.read.valid),
                    reader.read.payload.eq(walk.read.payload),
                    walk.read.ready.eq(reader.read.ready),
                    walk.read_done.eq(reader.done),
                    next_status.eq(walk.status), next_pa.eq(walk.pa),
                    next_type.eq(walk.fault_type), next_fetch_addr.eq(walk.fetch_addr),
                ]
                with m.If(walk.fault):
                    m.next = "FAULT"
                with m.Elif(walk.answer):
                    respond()
                with m.Elif(walk.dropped):
                    m.next = "IDLE"

            with m.State("FAULT"):
                with m.If(prefetching):
                    m.next = "IDLE"
                with m.Elif(stale | self.invalidating):
                    m.next = "LOOKUP"
                with m.Elif(~record | ~self.evtq.enable):
                    respond()
                with m.Elif(events.full):
                    m.d.comb += events.lose.eq(1)
                    respond()
                with m.Else():
                    m.next = "EVENT"

            with m.State("EVENT"):
                m.d.comb += events.write.eq(1)
                with m.If(events.done):
                    m.d.sync += event_written.eq(1)
                    respond()

            with m.State("RESPOND"):
                with m.If(prefetching):
                    m.next = "IDLE"
                with m.Elif(restart):
                    m.next = "LOOKUP"
                with m.Else():
                    m.next = "IDLE"

        with m.If(fsm.ongoing("START") | fsm.ongoing("STE_DECODE") | walk.deciding):
            m.d.sync += [status.eq(next_status), pa.eq(next_pa),
                         event.type.eq(next_type), event.fetch_addr.eq(next_fetch_addr)]

        with m.If(self.invalidating):
            m.d.sync += stale.eq(1)

        return m
