"""The micro-TLB of a translation stage: its stream context and two pages, in registers,
refilled from the shared STE cache and IOTLB."""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ..one_hot import one_hot_fsm
from ..parameters import check_integer
from .caches import StreamLookupSignature, TLBLookupSignature
from .format import ASID_BITS, GRANULE_SHIFT, IA_BITS, OA_BITS, StreamConfig

__all__ = ["MicroPageLayout", "MicroContextLayout", "MicroTLB"]


class MicroPageLayout(data.StructLayout):
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


class MicroContextLayout(data.StructLayout):
    """The stream context of the micro-TLB: the last stream looked up in the STE cache."""
    def __init__(self, *, sid_width):
        super().__init__({
            "valid":  1,
            "sid":    sid_width,
            "config": StreamConfig,
            "asid":   ASID_BITS,
        })


class MicroTLB(wiring.Component):
    """The stream context and the pages of the last two IOTLB lookups of a stage, and the
    lookups that refill them.

    ::

        IDLE ─┬─▶ STE ─▶ CONTEXT ─┬─▶ TLB ─▶ MATCH ─▶ ANSWER ─▶ PAGE ─▶ IDLE
              │                    └─▶ IDLE (a stream that does not translate)
              └─▶ MATCH (the stream is the context's)

    A lookup is made for the transaction in the stage (``need``), and again, in the
    background, a cycle after each walk (``walk_done``), when the walker's IOTLB fill has
    been written: in the STE cache (unless the context is that stream), answering in the
    next cycle, then in the IOTLB, answering in the third. Its page replaces the one not
    used last; a new context empties both pages. ``flush`` empties everything and abandons
    the lookup.

    The IOTLB compares ``next_va`` (registered) while ``IDLE`` and the lookup's address from
    ``TLB`` on (other states ignore its answer), so the address it compares is a register.

    Parameters
    ----------
    sid_width : int

    Members
    -------
    ste : ``Out(StreamLookupSignature(sid_width))``, tlb : ``Out(TLBLookupSignature())``
    flush : ``In(1)``
    sid, addr : ``In``
        Of the transaction in the stage.
    next_va : ``In(OA_BITS)``
        The address the stage holds from the next cycle.
    need : ``In(1)``
        The transaction in the stage missed the micro-TLB and has not been looked up.
    walk_done : ``In(1)``
        The walker answered the transaction in the stage.
    looked : ``Out(1)``
        The lookup for the transaction in the stage is over (or it needs none: only the
        walker answers an abort): it goes to the walker unless the micro-TLB now has it.
    used, used_way : ``In(1)``
        A translated transaction leaves with page ``used_way``.
    context : ``Out(MicroContextLayout(sid_width))``
    pages : ``Out(MicroPageLayout()).array(2)``
    context_load : ``Out(1)``
        The context is replaced at this edge.
    page_fill : ``Out(2)``
        These pages are replaced at this edge.
    changed : ``Out(1)``
        The micro-TLB changed at the last edge (flushed, or a context or page replaced).
    filled : ``Out(1)``
        A page from the IOTLB is taken this cycle: ``refill`` (held until the next lookup
        starts), looked up for stream ``refill_sid``.
    refill : ``Out(MicroPageLayout())``
    refill_sid : ``Out(sid_width)``
    """
    def __init__(self, *, sid_width):
        check_integer("Stream ID width", sid_width, minimum=1)
        super().__init__({
            "ste": Out(StreamLookupSignature(sid_width=sid_width)),
            "tlb": Out(TLBLookupSignature()),
            "flush": In(1),
            "sid": In(sid_width),
            "addr": In(OA_BITS),
            "next_va": In(OA_BITS),
            "need": In(1),
            "walk_done": In(1),
            "looked": Out(1),
            "used": In(1),
            "used_way": In(1),
            "context": Out(MicroContextLayout(sid_width=sid_width)),
            "pages": Out(MicroPageLayout()).array(2),
            "context_load": Out(1),
            "page_fill": Out(2),
            "changed": Out(1),
            "filled": Out(1),
            "refill": Out(MicroPageLayout()),
            "refill_sid": Out(sid_width),
        })

    def elaborate(self, platform):
        m = Module()
        ste, tlb, ctx, pages, flush = self.ste, self.tlb, self.context, self.pages, self.flush
        answer = self.refill
        m.d.sync += self.changed.eq(flush | self.context_load | self.page_fill.any())
        page_used = Signal()        # the page that hit last (or was filled last)
        with m.If(self.used):
            m.d.sync += page_used.eq(self.used_way)

        lookup_sid = self.refill_sid
        lookup_addr = Signal.like(self.addr)
        lookup_for_s1 = Signal()    # it was started for the transaction in the stage
        finish = Signal()           # the lookup ends this cycle
        walked = Signal()
        m.d.sync += walked.eq(self.walk_done)
        tlb_va = Signal.like(self.addr)
        tlb_va_next = Signal.like(self.addr)
        m.d.comb += tlb_va_next.eq(self.next_va)
        m.d.sync += tlb_va.eq(tlb_va_next)
        m.d.comb += [ste.sid.eq(lookup_sid), tlb.asid.eq(ctx.asid), tlb.va.eq(tlb_va)]
        with one_hot_fsm(m, name="lookup"):
            with m.State("IDLE"):
                with m.If(~flush & (self.need | walked)):
                    m.d.sync += [lookup_sid.eq(self.sid), lookup_addr.eq(self.addr),
                                 lookup_for_s1.eq(~walked)]
                    with m.If(~ctx.valid | (ctx.sid != self.sid)):
                        m.next = "STE"
                    with m.Elif(ctx.config == StreamConfig.TRANSLATE):
                        m.next = "MATCH"
                    with m.Elif(~walked):
                        # Abort: only the walker answers it.
                        m.d.comb += self.looked.eq(1)
            with m.State("STE"):
                m.next = "CONTEXT"
                with m.If(flush):
                    m.next = "IDLE"
            with m.State("CONTEXT"):
                with m.If(ste.hit):
                    m.d.comb += self.context_load.eq(~flush)
                    m.d.sync += [ctx.valid.eq(1), ctx.sid.eq(lookup_sid),
                                 ctx.config.eq(ste.config), ctx.asid.eq(ste.asid)]
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
                m.d.comb += [self.filled.eq(answer.valid & ~flush), finish.eq(1)]
                with m.If(answer.valid):
                    m.d.comb += self.page_fill.eq(Mux(flush, 0, Mux(page_used, 0b01, 0b10)))
                    for n, entry in enumerate(pages):
                        with m.If(page_used != n):
                            m.d.sync += entry.eq(answer)
                    m.d.sync += page_used.eq(~page_used)
                m.next = "IDLE"
        with m.If(flush):
            m.d.sync += ctx.valid.eq(0)
            m.d.sync += [entry.valid.eq(0) for entry in pages]
        with m.If(finish & lookup_for_s1 & ~flush):
            m.d.comb += self.looked.eq(1)
        return m
