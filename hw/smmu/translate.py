"""One translation stage: the AR or AW channel of an SMMU port, with its responses.

::

    up addr ──▶ s1 register ──(STE cache + IOTLB lookup)──▶ down addr (translated)
                     │ miss, fault, abort
                     └──▶ walker ──▶ answer (output address, or fault: SLVERR upstream)
    up R/B ◀── down R/B, or the SLVERR response of a faulting transaction
    up W ──(route FIFO: forward or drop, in AW order)──▶ down W            (write stage)

A transaction spends one cycle in ``s1`` when the STE cache and IOTLB hit, so a hit adds one
cycle and a new transaction is taken every cycle while hits continue (``up.ready`` follows
``down.ready``). On a miss it waits for the walker. Once presented downstream its address
no longer changes, even if an invalidation removes the entry it came from.

With ``prefetch``, a stage that uses a page translation from the IOTLB (on a hit, or once
the walk it waited for has filled the IOTLB) asks the walker to prefetch the next page of
its stream, unless the leaf is a block that covers that page too or the page is the last of
the input address space. The request is held until the walker takes it, and replaced by the
next one; it is made once per page the stream moves to.

A faulting (or aborted) transaction never goes downstream. Its response waits until every
transaction this stage sent before it has been answered (AXI orders same-ID responses), and
for a write until its data beats have been taken and dropped; then a read gets ``len + 1``
SLVERR beats and a write one SLVERR response.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from ..bus.axi import AddrLayout, ReadDataLayout, Resp, WriteDataLayout, WriteRespLayout
from .caches import StreamLookupSignature, TLBLookupSignature
from .format import GRANULE_SHIFT, IA_BITS, StreamConfig
from .walker import PrefetchRequestSignature, TranslationClientSignature, TranslationStatus

__all__ = ["TranslationStage"]


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
        s1_asked = Signal()         # the walker has (or may have) taken the request
        s1_resolved = Signal()      # s1_status / s1_pa hold the answer
        s1_status = Signal(TranslationStatus)
        s1_pa = Signal.like(s1.addr)
        s1_routed = Signal()        # a failed write's drop route is queued
        s1_beats = Signal(9)        # SLVERR beats of a failed read sent so far
        outstanding = Signal(range(256))

        instr = s1.prot[2]
        m.d.comb += [ste.sid.eq(s1.sid), tlb.asid.eq(ste.asid), tlb.va.eq(s1.addr)]
        bypass = ~self.enable | ste.hit & (ste.config == StreamConfig.BYPASS)
        permitted = ~(self._write & tlb.read_only) & ~(instr & tlb.xn)
        fast_ok = bypass | (ste.hit & (ste.config == StreamConfig.TRANSLATE) & tlb.hit &
                            permitted)
        translated = Signal.like(s1.addr)
        m.d.comb += translated.eq(Mux(s1_resolved, s1_pa, Mux(bypass, s1.addr, tlb.pa)))

        route_space = 1
        if self._write:
            m.submodules.routes = routes = fifo.SyncFIFO(width=1, depth=self._max_outstanding)
            route_space = routes.w_rdy

        ok = s1_valid & Mux(s1_resolved, s1_status == TranslationStatus.OK,
                            ~s1_asked & fast_ok)
        m.d.comb += [
            down.valid.eq(ok & route_space),
            down.payload.eq(s1),
            down.payload.addr.eq(translated),
        ]
        take = down.valid & down.ready
        m.d.comb += [
            up.ready.eq(~s1_valid | take),
            self.issued.eq(take),
            self.hit.eq(down.valid & ~s1_resolved & ~bypass),
        ]
        with m.If(down.valid & ~down.ready & ~s1_resolved):
            # Presented: keep the address even if the entry it came from goes away.
            m.d.sync += [s1_resolved.eq(1), s1_status.eq(TranslationStatus.OK),
                         s1_pa.eq(translated)]

        m.d.comb += [
            walk.valid.eq(s1_valid & ~s1_resolved & (s1_asked | ~fast_ok)),
            walk.sid.eq(s1.sid),
            walk.addr.eq(s1.addr),
            walk.write.eq(self._write),
            walk.instr.eq(instr),
        ]
        with m.If(walk.valid):
            m.d.sync += s1_asked.eq(1)
        with m.If(walk.done):
            m.d.comb += self.miss.eq(1)
            m.d.sync += [s1_resolved.eq(1), s1_status.eq(walk.status), s1_pa.eq(walk.pa)]

        if self._prefetch:
            self._elaborate_prefetch(m, s1, s1_valid, bypass,
                                     ste.hit & (ste.config == StreamConfig.TRANSLATE) &
                                     tlb.hit & permitted)

        # Responses: passed through, or the SLVERR answer of a failed transaction.
        failed = s1_valid & s1_resolved & (s1_status != TranslationStatus.OK)
        resp_up, resp_down = self.up_resp, self.down_resp
        inject = Signal()
        last = 1 if self._write else resp_down.payload.last
        m.d.comb += self.completed.eq(resp_down.valid & resp_down.ready & last)
        m.d.sync += outstanding.eq(outstanding + take - self.completed)

        if self._write:
            # The failed write's data beats are dropped before it is answered.
            m.d.comb += inject.eq(failed & (outstanding == 0) & s1_routed & (routes.level == 0))
            with m.If(failed & ~s1_routed & routes.w_rdy):
                m.d.comb += [routes.w_en.eq(1), routes.w_data.eq(1)]
                m.d.sync += s1_routed.eq(1)
            with m.If(take):
                m.d.comb += [routes.w_en.eq(1), routes.w_data.eq(0)]
            drop = routes.r_data[0]
            w_up, w_down = self.up_w, self.down_w
        else:
            m.d.comb += inject.eq(failed & (outstanding == 0))
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

        with m.If(up.valid & up.ready):
            m.d.sync += [s1.eq(up.payload), s1_valid.eq(1), s1_asked.eq(0), s1_resolved.eq(0),
                         s1_routed.eq(0), s1_beats.eq(0)]
        with m.Elif(take):
            m.d.sync += s1_valid.eq(0)
        with m.Elif(inject & resp_up.ready):
            m.d.sync += s1_beats.eq(s1_beats + 1)
            if self._write:
                m.d.sync += s1_valid.eq(0)
            else:
                with m.If(s1_beats == s1.len):
                    m.d.sync += s1_valid.eq(0)
        return m

    def _elaborate_prefetch(self, m, s1, s1_valid, bypass, translated):
        request = self.prefetch
        page = s1.addr[GRANULE_SHIFT:IA_BITS]
        level = self.tlb.level
        covered = (((level == 1) & ~page[:18].all()) |
                   ((level == 2) & ~page[:9].all()))
        next_addr = Cat(Const(0, GRANULE_SHIFT), page + 1)
        asked_sid = Signal.like(request.sid)
        asked_addr = Signal.like(request.addr)
        new = (s1_valid & ~bypass & translated & ~covered & ~page.all() &
               ((next_addr != asked_addr) | (s1.sid != asked_sid)))
        m.d.comb += [request.sid.eq(asked_sid), request.addr.eq(asked_addr)]
        with m.If(new):
            m.d.sync += [asked_sid.eq(s1.sid), asked_addr.eq(next_addr), request.valid.eq(1)]
        with m.Elif(request.ready):
            m.d.sync += request.valid.eq(0)
