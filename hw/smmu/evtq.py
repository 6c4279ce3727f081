"""The producer side of the SMMU's event queue: fault records written to memory."""

from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..bus.axi import AXI4Signature, Burst, Resp, Size
from ..one_hot import one_hot_fsm
from .format import EVENT_BYTES, EventLayout
from .queue import QUEUE_INDEX_WIDTH, QueueConfigLayout, QueueMask, aligned, hold_while_waiting

__all__ = ["EventWriter"]


class EventWriter(wiring.Component):
    """Writes event records into the event queue, and keeps its producer index.

    ::

        AW ─(aw handshake)─▶ W ─(last beat)─▶ B ─(response)─▶ AW

    A record whose write is answered with an error is lost (the producer index stays).
    A record that finds the queue full is lost too: ``lost`` counts it, and ``overflow``
    toggles if it equals ``ovack`` (once per overflow episode, as SMMUv3 specifies: the
    episode ends when software acknowledges it by making ``ovack`` equal to ``overflow``).

    Parameters
    ----------
    bus_signature : AXI4Signature
        Of the memory port, 64 bits wide; only its write channels are used.

    Members
    -------
    evtq : ``In(QueueConfigLayout())``
    cons : ``In(QUEUE_INDEX_WIDTH)``
    prod : ``Out(QUEUE_INDEX_WIDTH)``
        Producer index with its wrap bit; reset to 0 while ``evtq.enable`` is clear.
    full : ``Out(1)``
        The queue is full, as of the previous cycle.
    lose : ``In(1)``
        A record is lost to a full queue.
    ovack : ``In(1)``
        The overflow software has acknowledged.
    overflow : ``Out(1)``
        Reset to 0 while ``evtq.enable`` is clear.
    lost : ``Out(32)``
        Records lost to a full queue (a cycle after ``lose``), wrapping; reset to 0 while
        ``evtq.enable`` is clear.
    write : ``In(1)``
        Held until ``done``: write ``record`` at the producer index.
    record : ``In(EventLayout())``
    done : ``Out(1)``
        The write is answered.
    written : ``Out(1)``
        The record is in the queue (with ``done``, unless the write failed).
    aw, w : ``Out(...)``, b : ``In(...)``
        The write channels of ``bus_signature``.
    """
    def __init__(self, bus_signature):
        if not isinstance(bus_signature, AXI4Signature) or bus_signature.data_width != 64:
            raise ValueError(f"Bus signature must be a 64-bit AXI4Signature, "
                             f"not {bus_signature!r}")
        super().__init__({
            "evtq": In(QueueConfigLayout()),
            "cons": In(QUEUE_INDEX_WIDTH),
            "prod": Out(QUEUE_INDEX_WIDTH),
            "full": Out(1),
            "lose": In(1),
            "ovack": In(1),
            "overflow": Out(1),
            "lost": Out(32),
            "write": In(1),
            "record": In(EventLayout()),
            "done": Out(1),
            "written": Out(1),
            "aw": Out(bus_signature.members["aw"].signature),
            "w": Out(bus_signature.members["w"].signature),
            "b": In(bus_signature.members["b"].signature.flip()),
        })

    def elaborate(self, platform):
        m = Module()
        aw, w, b = self.aw, self.w, self.b
        evtq, prod = self.evtq, self.prod
        m.submodules.mask = queue_mask = QueueMask()
        m.d.comb += queue_mask.log2size.eq(evtq.log2size)
        mask = queue_mask.mask
        index_mask = mask >> 1
        m.d.sync += self.full.eq(((prod - self.cons) & mask) == (index_mask + 1))
        with m.If(self.lose & (self.overflow == self.ovack)):
            m.d.sync += self.overflow.eq(~self.overflow)
        # Counted from a register, so that the walker's state reaches no carry chain.
        lose = Signal()
        m.d.sync += lose.eq(self.lose)
        with m.If(lose):
            m.d.sync += self.lost.eq(self.lost + 1)
        with m.If(~evtq.enable):
            m.d.sync += [prod.eq(0), self.overflow.eq(0), self.lost.eq(0)]

        m.d.comb += [
            aw.payload.size.eq(Size.from_bytes(8)),
            aw.payload.burst.eq(Burst.INCR),
            aw.payload.len.eq(EVENT_BYTES // 8 - 1),
            aw.payload.addr.eq(hold_while_waiting(
                m, aw, aligned(evtq.base, EVENT_BYTES) + ((prod & index_mask) * EVENT_BYTES))),
            w.payload.strb.eq(0xff),
            b.ready.eq(1),
        ]
        beat = Signal(range(EVENT_BYTES // 8))
        with one_hot_fsm(m, name="write"):
            with m.State("AW"):
                m.d.comb += aw.valid.eq(self.write)
                m.d.sync += beat.eq(0)
                with m.If(self.write & aw.ready):
                    m.next = "W"
            with m.State("W"):
                m.d.comb += [
                    w.valid.eq(1),
                    w.payload.data.eq(self.record.as_value().word_select(beat, 64)),
                    w.payload.last.eq(beat == EVENT_BYTES // 8 - 1),
                ]
                with m.If(w.ready):
                    m.d.sync += beat.eq(beat + 1)
                    with m.If(w.payload.last):
                        m.next = "B"
            with m.State("B"):
                with m.If(b.valid):
                    with m.If(b.payload.resp == Resp.OKAY):
                        m.d.sync += prod.eq((prod + 1) & mask)
                        m.d.comb += self.written.eq(1)
                    m.d.comb += self.done.eq(1)
                    m.next = "AW"
        return m
