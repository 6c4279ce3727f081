"""One translation stage: the AR or AW channel of an SMMU port, with its responses.

::

    up addr ──▶ s1 register ──(micro-TLB compare)──▶ down addr (translated)
                     │ micro-TLB miss
                     ├──▶ lookup: STE cache ─▶ IOTLB ─▶ micro-TLB (one, three, one cycles)
                     │ IOTLB miss, fault, abort
                     └──▶ walker ──▶ answer (output address, or fault: SLVERR upstream)
    up R/B ◀── down R/B, or the SLVERR response of a faulting transaction
    up W ──(route FIFO: forward or drop, in AW order)──▶ down W            (write stage)

Each stage keeps a **micro-TLB** in registers: the stream context (stream ID, config, ASID)
of its last STE cache lookup and the pages (or blocks) of its last two IOTLB lookups. A
transaction spends one cycle in ``s1`` when it hits there, so a hit adds one cycle and a new
transaction is taken every cycle while hits continue (a skid register in front of ``s1``
takes the one that arrives as downstream stalls, so ``up.ready`` is a register); the compare
is a few LUTs deep, which is what lets the SMMU run at the SoC's clock. On a micro-TLB miss
the stage looks the transaction up in the shared caches: the STE cache (skipped when the
micro-TLB has its stream), answering in the next cycle, then the IOTLB, answering in the
third (its compare is registered twice, and its answer once more, in the stage); a hit there
refills the micro-TLB (over its less recently used page), so a transaction on a page the
micro-TLB does not have reaches downstream six cycles after it is taken, five more than a
hit (``test_stage_latency``). Any other outcome (a miss, a permission the page does not
give, an abort) goes to the walker, and after each walk the stage looks the page up again in
the background, for the transactions that follow. Any invalidation empties the micro-TLB.
Once presented downstream an address no longer changes, even if an invalidation removes its
entry.

With ``prefetch``, each time the micro-TLB takes a page from the IOTLB the stage asks the
walker to prefetch the next page of its stream, unless the leaf is a block that covers that
page too or the page is the last of the input address space. The request is held until the
walker takes it, and replaced by the next one; it is made once per page the stream moves to.

A faulting (or aborted) transaction never goes downstream. Its response waits until every
transaction this stage sent before it has been answered (AXI orders same-ID responses), and
for a write until its data beats have been taken and dropped; then a read gets ``len + 1``
SLVERR beats and a write one SLVERR response.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from ..bus.axi import AddrLayout, ReadDataLayout, Resp, WriteDataLayout, WriteRespLayout
from ..one_hot import one_hot_fsm
from .caches import StreamLookupSignature, TLBLookupSignature, leaf_address, leaf_covers
from .format import ASID_BITS, GRANULE_SHIFT, IA_BITS, OA_BITS, StreamConfig
from .walker import PrefetchRequestSignature, TranslationClientSignature, TranslationStatus

__all__ = ["TranslationStage"]


class _MicroPageLayout(data.StructLayout):
    """A page (or block) of the micro-TLB: input page number, output page number and leaf
    level as in :class:`~.caches.TLBEntryLayout`, and the permissions."""
    def __init__(self):
        super().__init__({
            "valid":     1,
            "vpn":       IA_BITS - GRANULE_SHIFT,
            "ppn":       OA_BITS - GRANULE_SHIFT,
            "level":     2,
            "read_only": 1,
            "xn":        1,
        })


class TranslationStage(wiring.Component):
    """Address translation of one AXI4 address channel.

    Parameters
    ----------
    bus_signature : AXI4Signature
        Of the port (upstream and downstream alike).
    write : bool
        The AW stage (with the W routing and B responses) rather than the AR stage.
    max_outstanding : int
        Writes whose W routing is queued (the depth of the route FIFO).
    prefetch : bool
        Ask for the next page of the stream to be prefetched (the ``prefetch`` member).

    Members
    -------
    up_addr : ``In(stream)``, down_addr : ``Out(stream)``
        The AR or AW channel.
    up_resp : ``Out(stream)``, down_resp : ``In(stream)``
        The R or B channel.
    up_w : ``In(stream)``, down_w : ``Out(stream)``
        The W channel (write stage only).
    enable : ``In(1)``
        ``CR0.smmuen``; when clear everything bypasses.
    flush : ``In(1)``
        An invalidation applies this cycle: the micro-TLB forgets its stream and page.
    ste : ``Out(StreamLookupSignature)``, tlb : ``Out(TLBLookupSignature)``
    walk : ``Out(TranslationClientSignature)``
    prefetch : ``Out(PrefetchRequestSignature)``
        The next page to prefetch (with ``prefetch`` only).
    issued, completed : ``Out(1)``
        A transaction went downstream; a downstream transaction was answered in full.
    hit, miss : ``Out(1)``
        A translated transaction hit in the IOTLB; a transaction needed the walker.
    """
    def __init__(self, bus_signature, *, write, max_outstanding=8, prefetch=False):
        sig = bus_signature
        addr_layout = AddrLayout(addr_width=sig.addr_width, id_width=sig.id_width,
                                 sid_width=sig.sid_width)
        if write:
            resp_signature = stream.Signature(WriteRespLayout(id_width=sig.id_width))
        else:
            resp_signature = stream.Signature(ReadDataLayout(data_width=sig.data_width,
                                                             id_width=sig.id_width))
        self._write = bool(write)
        self._max_outstanding = max_outstanding
        self._prefetch = bool(prefetch)
        members = {
            "up_addr": In(stream.Signature(addr_layout)),
            "down_addr": Out(stream.Signature(addr_layout)),
            "up_resp": Out(resp_signature),
            "down_resp": In(resp_signature),
            "enable": In(1),
            "flush": In(1),
            "ste": Out(StreamLookupSignature(sid_width=sig.sid_width)),
            "tlb": Out(TLBLookupSignature()),
            "walk": Out(TranslationClientSignature(sid_width=sig.sid_width,
                                                   addr_width=sig.addr_width)),
            "issued": Out(1),
            "completed": Out(1),
            "hit": Out(1),
            "miss": Out(1),
        }
        if prefetch:
            members["prefetch"] = Out(PrefetchRequestSignature(sid_width=sig.sid_width,
                                                               addr_width=sig.addr_width))
        if write:
            w_signature = stream.Signature(WriteDataLayout(data_width=sig.data_width))
            members["up_w"] = In(w_signature)
            members["down_w"] = Out(w_signature)
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        up, down = self.up_addr, self.down_addr
        ste, tlb, walk = self.ste, self.tlb, self.walk

        s1 = Signal.like(up.payload)
        s1_valid = Signal()
        s1_looked = Signal()        # the caches were looked up for it (the micro-TLB filled)
        s1_asking = Signal()        # the walker has (or may have) taken the request
        s1_resolved = Signal()      # s1_status / s1_pa hold the answer
        s1_status = Signal(TranslationStatus)
        s1_pass = Signal()          # resolved OK: s1_valid & s1_resolved & (s1_status == OK)
        s1_open = Signal()          # s1_valid & ~s1_resolved & ~s1_asking
        s1_pa = Signal.like(s1.addr)
        s1_routed = Signal()        # a failed write's drop route is queued
        s1_beats = Signal(9)        # SLVERR beats of a failed read sent so far
        outstanding = Signal(range(256))

        # The micro-TLB: the stream context of the last STE cache lookup, and the pages of
        # the last two IOTLB lookups (two, so that a channel's descriptor page and its data
        # page can both stay), the most recently used one kept on a refill.
        ctx_valid = Signal()
        ctx_sid = Signal.like(s1.sid)
        ctx_config = Signal(StreamConfig)
        ctx_asid = Signal(ASID_BITS)
        pages = [Signal(_MicroPageLayout(), name=f"page{n}") for n in range(2)]
        page_used = Signal()        # the page that hit last (or was filled last)

        # Whether an address hits the micro-TLB: in a bypass context, or on a page that
        # gives the access. Made for the transaction coming in and for the one in s1, and
        # registered; the micro-TLB changes at the same edge clear a registered hit (so a
        # registered hit is always good), and a miss is trusted only a cycle after them.
        # The page that hits is the first that covers the address; each page's permission
        # check is made beside its compare rather than after the choice, to keep it shallow.
        def probe(payload):
            vpn = payload.addr[GRANULE_SHIFT:IA_BITS]
            ctx_hit = ctx_valid & (ctx_sid == payload.sid)
            hits = [entry.valid & leaf_covers(entry.level, entry.vpn, vpn) for entry in pages]
            permitted = [~(self._write & entry.read_only) & ~(payload.prot[2] & entry.xn)
                         for entry in pages]
            ctx_bypass = ctx_hit & (ctx_config == StreamConfig.BYPASS)
            in_space = ctx_hit & ~payload.addr[IA_BITS]
            page_ok = Cat(in_space & hits[0] & permitted[0],
                          in_space & ~hits[0] & hits[1] & permitted[1])
            return ctx_bypass, page_ok, ~hits[0]

        flush = self.flush | ~self.enable
        ctx_load = Signal()         # the context is replaced at this edge
        page_fill = Signal(2)       # these pages are replaced at this edge
        changed = Signal()          # the micro-TLB changed at the last edge
        m.d.sync += changed.eq(flush | ctx_load | page_fill.any())
        s1_bypass = Signal()
        s1_ok = Signal()            # s1 hits the micro-TLB (or bypasses)
        s1_way = Signal()           # the page it hits
        # A skid register in front of s1 takes the transaction that arrives while s1 cannot
        # move, so that ``up.ready`` is a register and no downstream ready reaches upstream.
        skid = Signal.like(up.payload)
        skid_valid = Signal()
        s1_free = Signal()          # s1 is empty or its transaction leaves
        capture = Signal()          # s1 takes the skid register's or the upstream transaction
        incoming = Signal.like(up.payload)
        m.d.comb += [up.ready.eq(~skid_valid), capture.eq(s1_free & (skid_valid | up.valid)),
                     incoming.eq(Mux(skid_valid, skid, up.payload))]
        with m.If(up.valid & up.ready & ~s1_free):
            m.d.sync += [skid.eq(up.payload), skid_valid.eq(1)]
        with m.Elif(s1_free):
            m.d.sync += skid_valid.eq(0)

        up_probe, skid_probe, s1_probe = probe(up.payload), probe(skid), probe(s1)
        in_bypass, in_page_ok, in_way = (Mux(skid_valid, from_skid, from_up)
                                         for from_skid, from_up in zip(skid_probe, up_probe))
        s1_probe_bypass, s1_probe_page_ok, s1_probe_way = s1_probe
        # Worked out for either transaction before ``capture`` (which comes late) picks one;
        # kept as nets, so that synthesis leaves that choice last.
        kept = ~flush & ~ctx_load
        in_bypass_kept, in_ok_kept, stay_bypass_kept, stay_ok_kept = (
            Signal(name=name, attrs={"keep": 1})
            for name in ("in_bypass", "in_ok", "stay_bypass", "stay_ok"))
        m.d.comb += [
            in_bypass_kept.eq(~self.enable | (in_bypass & kept)),
            in_ok_kept.eq(~self.enable |
                          ((in_bypass | (in_page_ok & ~page_fill).any()) & kept)),
            stay_bypass_kept.eq(~self.enable | (s1_probe_bypass & kept)),
            stay_ok_kept.eq(~self.enable |
                            ((s1_probe_bypass | (s1_probe_page_ok & ~page_fill).any()) & kept)),
        ]
        m.d.sync += [
            s1_bypass.eq(Mux(capture, in_bypass_kept, stay_bypass_kept)),
            s1_ok.eq(Mux(capture, in_ok_kept, stay_ok_kept)),
            s1_way.eq(Mux(capture, in_way, s1_probe_way)),
        ]
        instr = s1.prot[2]
        page = Signal(_MicroPageLayout())
        m.d.comb += page.eq(Mux(s1_way, pages[1], pages[0]))
        page_pa = leaf_address(page.level, s1.addr, page.ppn)
        translated = Signal.like(s1.addr)
        m.d.comb += translated.eq(Mux(s1_resolved, s1_pa, Mux(s1_bypass, s1.addr, page_pa)))

        route_space = 1
        if self._write:
            m.submodules.routes = routes = fifo.SyncFIFO(width=1, depth=self._max_outstanding)
            route_space = routes.w_rdy

        # (s1_pass and s1_open, registers of their own, keep this one LUT deep: it starts the
        # downstream handshake, which decides whether s1 takes the next transaction.)
        ok = s1_pass | (s1_open & s1_ok)
        m.d.comb += [
            down.valid.eq(ok & route_space),
            down.payload.eq(s1),
            down.payload.addr.eq(translated),
        ]
        take = down.valid & down.ready
        m.d.comb += [
            s1_free.eq(~s1_valid | take),
            self.issued.eq(take),
            self.hit.eq(down.valid & ~s1_resolved & ~s1_bypass),
        ]
        with m.If(take & ~s1_resolved & ~s1_bypass):
            m.d.sync += page_used.eq(s1_way)
        with m.If(down.valid & ~down.ready & ~s1_resolved):
            # Presented: keep the address even if the entry it came from goes away.
            m.d.sync += [s1_resolved.eq(1), s1_open.eq(0), s1_pass.eq(1),
                         s1_status.eq(TranslationStatus.OK),
                         s1_pa.eq(translated)]

        # The lookup of a transaction that misses the micro-TLB: in the STE cache (unless
        # the micro-TLB has its stream), answering in the next cycle, and then in the IOTLB,
        # answering in the third; and again, in the background, after each walk, for the
        # transactions that follow. The IOTLB compare of a known stream starts straight from s1.
        lookup_sid = Signal.like(s1.sid)
        lookup_addr = Signal.like(s1.addr)
        lookup_for_s1 = Signal()    # it was started for the transaction in s1
        finish = Signal()           # the lookup ends this cycle
        page_filled = Signal()      # with a page from the IOTLB
        answer = Signal(_MicroPageLayout())     # the IOTLB's answer, as a micro-TLB page
        need_lookup = s1_valid & ~s1_resolved & ~s1_asking & ~s1_looked & ~s1_ok & ~changed
        # The lookup after a walk starts a cycle after the answer, when the walker's IOTLB fill
        # (registered) has been written; the answered transaction is still in s1.
        walked = Signal()
        m.d.sync += walked.eq(walk.done)
        # The IOTLB compares s1's address while IDLE and the lookup's in TLB (other states
        # ignore its answer). The choice is made a cycle ahead, from the next state and the
        # next s1, so the address the IOTLB compares is a register.
        tlb_va = Signal.like(s1.addr)
        tlb_va_next = Signal.like(s1.addr)
        m.d.comb += tlb_va_next.eq(Mux(capture, incoming.addr, s1.addr))
        m.d.sync += tlb_va.eq(tlb_va_next)
        m.d.comb += [ste.sid.eq(lookup_sid), tlb.asid.eq(ctx_asid), tlb.va.eq(tlb_va)]
        with one_hot_fsm(m, name="lookup"):
            with m.State("IDLE"):
                with m.If(~flush & (need_lookup | walked)):
                    m.d.sync += [lookup_sid.eq(s1.sid), lookup_addr.eq(s1.addr),
                                 lookup_for_s1.eq(~walked)]
                    with m.If(~ctx_valid | (ctx_sid != s1.sid)):
                        m.next = "STE"
                    with m.Elif(ctx_config == StreamConfig.TRANSLATE):
                        m.next = "MATCH"
                    with m.Elif(~walked):
                        # Abort: only the walker answers it.
                        m.d.sync += s1_looked.eq(1)
            with m.State("STE"):
                m.next = "CONTEXT"
                with m.If(flush):
                    m.next = "IDLE"
            with m.State("CONTEXT"):
                with m.If(ste.hit):
                    m.d.comb += ctx_load.eq(~flush)
                    m.d.sync += [ctx_valid.eq(1), ctx_sid.eq(lookup_sid),
                                 ctx_config.eq(ste.config), ctx_asid.eq(ste.asid)]
                    m.d.sync += [entry.valid.eq(0) for entry in pages]
                with m.If(ste.hit & (ste.config == StreamConfig.TRANSLATE)):
                    with m.If(~flush):
                        m.d.comb += tlb_va_next.eq(lookup_addr)
                    m.next = "TLB"
                with m.Else():
                    m.d.comb += finish.eq(1)
                    m.next = "IDLE"
                with m.If(flush):
                    m.next = "IDLE"
            with m.State("TLB"):
                m.next = "MATCH"
                with m.If(flush):
                    m.next = "IDLE"
            with m.State("MATCH"):
                # The IOTLB's compare takes two cycles; its answer comes in ANSWER.
                m.next = "ANSWER"
                with m.If(flush):
                    m.next = "IDLE"
            with m.State("ANSWER"):
                # Registered, so that the IOTLB's hit reaches no further than here.
                m.d.sync += [answer.valid.eq(tlb.hit),
                             answer.vpn.eq(lookup_addr[GRANULE_SHIFT:IA_BITS]),
                             answer.ppn.eq(tlb.ppn), answer.level.eq(tlb.level),
                             answer.read_only.eq(tlb.read_only), answer.xn.eq(tlb.xn)]
                m.next = "PAGE"
                with m.If(flush):
                    m.next = "IDLE"
            with m.State("PAGE"):
                m.d.comb += [page_filled.eq(answer.valid & ~flush), finish.eq(1)]
                with m.If(answer.valid):
                    m.d.comb += page_fill.eq(Mux(flush, 0, Mux(page_used, 0b01, 0b10)))
                    for n, entry in enumerate(pages):
                        with m.If(page_used != n):
                            m.d.sync += entry.eq(answer)
                    m.d.sync += page_used.eq(~page_used)
                m.next = "IDLE"
        with m.If(flush):
            m.d.sync += ctx_valid.eq(0)
            m.d.sync += [entry.valid.eq(0) for entry in pages]
        with m.If(finish & lookup_for_s1 & ~flush):
            m.d.sync += s1_looked.eq(1)

        m.d.comb += [
            walk.valid.eq(s1_asking),
            walk.sid.eq(s1.sid),
            walk.addr.eq(s1.addr),
            walk.write.eq(self._write),
            walk.instr.eq(instr),
        ]
        with m.If(s1_valid & ~s1_resolved & s1_looked & ~s1_ok & ~changed):
            m.d.sync += [s1_asking.eq(1), s1_open.eq(0)]
        with m.If(s1_asking):
            # The walker's answer registers, taken in every cycle of the request: its done
            # (which fans out less that way) only sets the flags.
            m.d.sync += [s1_status.eq(walk.status), s1_pa.eq(walk.pa)]
        with m.If(walk.done):
            m.d.comb += self.miss.eq(1)
            m.d.sync += [s1_resolved.eq(1), s1_asking.eq(0), s1_open.eq(0),
                         s1_pass.eq(walk.status == TranslationStatus.OK)]

        if self._prefetch:
            self._elaborate_prefetch(m, lookup_sid, answer, page_filled)

        # Responses: passed through, or the SLVERR answer of a failed transaction.
        failed = s1_valid & s1_resolved & (s1_status != TranslationStatus.OK)
        resp_up, resp_down = self.up_resp, self.down_resp
        # Whether s1's failed transaction may be answered: worked out a cycle late, from
        # registers, so that the responses' ready downstream (and the register slice's
        # enables behind it) wait on this register and `s1_valid` alone. Once true it stays
        # true for as long as s1 holds the failed transaction: s1 takes no other meanwhile,
        # the transactions in flight only complete, and a failed write's route only drains.
        answerable = Signal()
        inject = Signal()
        m.d.comb += inject.eq(s1_valid & answerable)
        last = 1 if self._write else resp_down.payload.last
        m.d.comb += self.completed.eq(resp_down.valid & resp_down.ready & last)
        m.d.sync += outstanding.eq(outstanding + take - self.completed)

        if self._write:
            # The failed write's data beats are dropped before it is answered.
            m.d.sync += answerable.eq(failed & (outstanding == 0) & s1_routed &
                                      (routes.level == 0))
            with m.If(failed & ~s1_routed & routes.w_rdy):
                m.d.comb += [routes.w_en.eq(1), routes.w_data.eq(1)]
                m.d.sync += s1_routed.eq(1)
            with m.If(take):
                m.d.comb += [routes.w_en.eq(1), routes.w_data.eq(0)]
            drop = routes.r_data[0]
            w_up, w_down = self.up_w, self.down_w
        else:
            m.d.sync += answerable.eq(failed & (outstanding == 0))
        if self._write:
            m.d.comb += [
                w_down.payload.eq(w_up.payload),
                w_down.valid.eq(w_up.valid & routes.r_rdy & ~drop),
                w_up.ready.eq(routes.r_rdy & (drop | w_down.ready)),
                routes.r_en.eq(w_up.valid & w_up.ready & w_up.payload.last),
            ]

        with m.If(inject):
            m.d.comb += [
                resp_up.valid.eq(1),
                resp_up.payload.id.eq(s1.id),
                resp_up.payload.resp.eq(Resp.SLVERR),
            ]
            if not self._write:
                m.d.comb += resp_up.payload.last.eq(s1_beats == s1.len)
        with m.Else():
            m.d.comb += [
                resp_up.valid.eq(resp_down.valid),
                resp_up.payload.eq(resp_down.payload),
                resp_down.ready.eq(resp_up.ready),
            ]

        with m.If(capture):
            m.d.sync += [s1.eq(incoming), s1_valid.eq(1),
                         s1_looked.eq(0), s1_asking.eq(0), s1_resolved.eq(0), s1_pass.eq(0),
                         s1_open.eq(1), s1_routed.eq(0), s1_beats.eq(0)]
        with m.Elif(take):
            m.d.sync += [s1_valid.eq(0), s1_pass.eq(0), s1_open.eq(0)]
        with m.Elif(inject & resp_up.ready):
            m.d.sync += s1_beats.eq(s1_beats + 1)
            if self._write:
                m.d.sync += s1_valid.eq(0)
            else:
                with m.If(s1_beats == s1.len):
                    m.d.sync += s1_valid.eq(0)
        return m

    def _elaborate_prefetch(self, m, lookup_sid, answer, page_filled):
        request = self.prefetch
        # Decided a cycle after the micro-TLB takes the page, from registers (the lookup's
        # stream and the IOTLB's answer stay until the next lookup starts).
        filled = Signal()
        m.d.sync += filled.eq(page_filled)
        sid, page, level = lookup_sid, answer.vpn, answer.level
        covered = (((level == 1) & ~page[:18].all()) |
                   ((level == 2) & ~page[:9].all()))
        next_addr = Cat(Const(0, GRANULE_SHIFT), page + 1)
        asked_sid = Signal.like(request.sid)
        asked_addr = Signal.like(request.addr)
        # The page the last request was made from: comparing it, not the address asked
        # for, keeps the increment off the decision. (Its reset value is the page before
        # address 0, the reset value of ``asked_addr``.)
        asked_from = Signal.like(page, init=(1 << len(page)) - 1)
        new = (filled & ~covered & ~page.all() &
               ((page != asked_from) | (sid != asked_sid)))
        m.d.comb += [request.sid.eq(asked_sid), request.addr.eq(asked_addr)]
        with m.If(new):
            m.d.sync += [asked_sid.eq(sid), asked_addr.eq(next_addr), asked_from.eq(page),
                         request.valid.eq(1)]
        with m.Elif(request.ready):
            m.d.sync += request.valid.eq(0)
