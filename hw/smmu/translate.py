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

The stage keeps ``s1`` and its micro-TLB compare; its parts have their own signatures:
:class:`~.micro_tlb.MicroTLB` (the micro-TLB's registers and the lookups that refill them),
:class:`~.responses.StageResponses` (R or B, the SLVERR answers and the W routing) and
:class:`NextPagePrefetch`.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out, connect

from ..bus.axi import AddrLayout
from ..parameters import check_integer
from .caches import StreamLookupSignature, TLBLookupSignature, leaf_address, leaf_covers
from .format import GRANULE_SHIFT, IA_BITS, OA_BITS, StreamConfig
from .micro_tlb import MicroPageLayout, MicroTLB
from .responses import StageResponses
from .walker import PrefetchRequestSignature, TranslationClientSignature, TranslationStatus

__all__ = ["TranslationStage", "NextPagePrefetch"]


class NextPagePrefetch(wiring.Component):
    """Asks for the page after each page the micro-TLB takes from the IOTLB.

    No request is made when the leaf is a block that covers that page too, or the page is
    the last of the input address space, or the request would repeat the last one. A
    request is held until the walker takes it, and replaced by the next one. It is decided
    a cycle after the page is taken, from registers (the micro-TLB holds the page and its
    stream until its next lookup starts).

    Parameters
    ----------
    sid_width : int
    addr_width : int

    Members
    -------
    filled : ``In(1)``
        The micro-TLB takes ``page`` for stream ``sid``.
    sid : ``In(sid_width)``
    page : ``In(MicroPageLayout())``
    request : ``Out(PrefetchRequestSignature(...))``
    """
    def __init__(self, *, sid_width, addr_width=OA_BITS):
        check_integer("Stream ID width", sid_width, minimum=1)
        check_integer("Address width", addr_width, minimum=IA_BITS)
        super().__init__({
            "filled": In(1),
            "sid": In(sid_width),
            "page": In(MicroPageLayout()),
            "request": Out(PrefetchRequestSignature(sid_width=sid_width,
                                                    addr_width=addr_width)),
        })

    def elaborate(self, platform):
        m = Module()
        request = self.request
        filled = Signal()
        m.d.sync += filled.eq(self.filled)
        sid, page, level = self.sid, self.page.vpn, self.page.level
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
        return m


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
        self._responses = StageResponses(bus_signature, write=write,
                                         max_outstanding=max_outstanding)
        channels = self._responses.signature.members      # R or B, and W
        sig = bus_signature
        addr_layout = AddrLayout(addr_width=sig.addr_width, id_width=sig.id_width,
                                 sid_width=sig.sid_width)
        self._write = bool(write)
        self._prefetch = bool(prefetch)
        members = {
            "up_addr": In(stream.Signature(addr_layout)),
            "down_addr": Out(stream.Signature(addr_layout)),
            "up_resp": channels["up_resp"],
            "down_resp": channels["down_resp"],
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
            members["up_w"] = channels["up_w"]
            members["down_w"] = channels["down_w"]
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        up, down = self.up_addr, self.down_addr
        walk = self.walk
        sid_width = len(up.payload.sid)
        m.submodules.micro_tlb = micro_tlb = MicroTLB(sid_width=sid_width)
        m.submodules.responses = responses = self._responses
        connect(m, micro_tlb.ste, wiring.flipped(self.ste))
        connect(m, micro_tlb.tlb, wiring.flipped(self.tlb))
        connect(m, wiring.flipped(self.down_resp), responses.down_resp)
        connect(m, responses.up_resp, wiring.flipped(self.up_resp))
        if self._write:
            connect(m, wiring.flipped(self.up_w), responses.up_w)
            connect(m, responses.down_w, wiring.flipped(self.down_w))
        if self._prefetch:
            m.submodules.prefetch = prefetch = NextPagePrefetch(sid_width=sid_width,
                                                                addr_width=len(up.payload.addr))
            connect(m, prefetch.request, wiring.flipped(self.prefetch))
            m.d.comb += [prefetch.filled.eq(micro_tlb.filled),
                         prefetch.sid.eq(micro_tlb.refill_sid),
                         prefetch.page.eq(micro_tlb.refill)]

        s1 = Signal.like(up.payload)
        s1_valid = Signal()
        s1_looked = Signal()        # the caches were looked up for it (the micro-TLB filled)
        s1_asking = Signal()        # the walker has (or may have) taken the request
        s1_resolved = Signal()      # s1_status / s1_pa hold the answer
        s1_status = Signal(TranslationStatus)
        s1_pass = Signal()          # resolved OK: s1_valid & s1_resolved & (s1_status == OK)
        s1_open = Signal()          # s1_valid & ~s1_resolved & ~s1_asking
        s1_pa = Signal.like(s1.addr)

        ctx, pages = micro_tlb.context, micro_tlb.pages
        page_fill, changed = micro_tlb.page_fill, micro_tlb.changed

        # Whether an address hits the micro-TLB: in a bypass context, or on a page that
        # gives the access. Made for the transaction coming in and for the one in s1, and
        # registered; the micro-TLB changes at the same edge clear a registered hit (so a
        # registered hit is always good), and a miss is trusted only a cycle after them.
        # The page that hits is the first that covers the address; each page's permission
        # check is made beside its compare rather than after the choice, to keep it shallow.
        def probe(payload):
            vpn = payload.addr[GRANULE_SHIFT:IA_BITS]
            ctx_hit = ctx.valid & (ctx.sid == payload.sid)
            hits = [entry.valid & leaf_covers(entry.level, entry.vpn, vpn) for entry in pages]
            permitted = [~(self._write & entry.read_only) & ~(payload.prot[2] & entry.xn)
                         for entry in pages]
            ctx_bypass = ctx_hit & (ctx.config == StreamConfig.BYPASS)
            in_space = ctx_hit & ~payload.addr[IA_BITS]
            page_ok = Cat(in_space & hits[0] & permitted[0],
                          in_space & ~hits[0] & hits[1] & permitted[1])
            return ctx_bypass, page_ok, ~hits[0]

        flush = self.flush | ~self.enable
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
        kept = ~flush & ~micro_tlb.context_load
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
        page = Signal(MicroPageLayout())
        m.d.comb += page.eq(Mux(s1_way, pages[1], pages[0]))
        page_pa = leaf_address(page.level, s1.addr, page.ppn)
        translated = Signal.like(s1.addr)
        m.d.comb += translated.eq(Mux(s1_resolved, s1_pa, Mux(s1_bypass, s1.addr, page_pa)))

        # (s1_pass and s1_open, registers of their own, keep this one LUT deep: it starts the
        # downstream handshake, which decides whether s1 takes the next transaction.)
        ok = s1_pass | (s1_open & s1_ok)
        m.d.comb += [
            down.valid.eq(ok & responses.accept),
            down.payload.eq(s1),
            down.payload.addr.eq(translated),
        ]
        take = down.valid & down.ready
        m.d.comb += [
            s1_free.eq(~s1_valid | take),
            self.issued.eq(take),
            self.hit.eq(down.valid & ~s1_resolved & ~s1_bypass),
            micro_tlb.used.eq(take & ~s1_resolved & ~s1_bypass),
            micro_tlb.used_way.eq(s1_way),
        ]
        with m.If(down.valid & ~down.ready & ~s1_resolved):
            # Presented: keep the address even if the entry it came from goes away.
            m.d.sync += [s1_resolved.eq(1), s1_open.eq(0), s1_pass.eq(1),
                         s1_status.eq(TranslationStatus.OK),
                         s1_pa.eq(translated)]

        # A transaction that misses the micro-TLB is looked up in the shared caches, and
        # goes to the walker if they do not have it either.
        m.d.comb += [
            micro_tlb.flush.eq(flush),
            micro_tlb.sid.eq(s1.sid), micro_tlb.addr.eq(s1.addr),
            micro_tlb.next_va.eq(Mux(capture, incoming.addr, s1.addr)),
            micro_tlb.need.eq(s1_valid & ~s1_resolved & ~s1_asking & ~s1_looked & ~s1_ok &
                              ~changed),
            micro_tlb.walk_done.eq(walk.done),
        ]
        with m.If(micro_tlb.looked):
            m.d.sync += s1_looked.eq(1)

        m.d.comb += [
            walk.valid.eq(s1_asking),
            walk.sid.eq(s1.sid),
            walk.addr.eq(s1.addr),
            walk.write.eq(self._write),
            walk.instr.eq(s1.prot[2]),
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

        # Responses: passed through, or the SLVERR answer of a failed transaction.
        m.d.comb += [
            responses.capture.eq(capture), responses.issued.eq(take),
            responses.valid.eq(s1_valid),
            responses.failed.eq(s1_valid & s1_resolved & (s1_status != TranslationStatus.OK)),
            responses.id.eq(s1.id), responses.len.eq(s1.len),
            self.completed.eq(responses.completed),
        ]

        with m.If(capture):
            m.d.sync += [s1.eq(incoming), s1_valid.eq(1),
                         s1_looked.eq(0), s1_asking.eq(0), s1_resolved.eq(0), s1_pass.eq(0),
                         s1_open.eq(1)]
        with m.Elif(take):
            m.d.sync += [s1_valid.eq(0), s1_pass.eq(0), s1_open.eq(0)]
        with m.Elif(responses.answered):
            m.d.sync += s1_valid.eq(0)
        return m
