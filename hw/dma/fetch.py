"""Descriptor fetcher: walks a descriptor chain from the current to the tail pointer."""

from amaranth.hdl import Cat, Module, Mux, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import exact_log2

from ..bus.axi import Resp
from ..one_hot import one_hot_fsm
from ..parameters import check_integer
from .descriptor import DESCRIPTOR_BYTES, DescriptorLayout, ErrorCode

__all__ = ["TransferLayout", "FetchRequestLayout", "DescriptorFetcher"]


class TransferLayout(data.StructLayout):
    """One transfer handed to the data path (from a descriptor or from register mode)."""
    def __init__(self, *, addr_width):
        super().__init__({
            "src":    unsigned(addr_width),
            "dst":    unsigned(addr_width),
            "length": unsigned(32),
            "desc":   unsigned(addr_width),
            "irq":    unsigned(1),
            "sg":     unsigned(1),
        })


class FetchRequestLayout(data.StructLayout):
    """A descriptor read: ``beats`` beats (minus one, as ``AxLEN``) at ``addr``."""
    def __init__(self, *, addr_width):
        super().__init__({
            "addr": unsigned(addr_width),
            "len":  unsigned(8),
        })


class DescriptorFetcher(wiring.Component):
    """Fetches descriptors and turns them into transfers, one ahead of the data path.

    Writing the tail pointer (``tail_write``) starts the walk at ``cur_desc`` (or, when the
    chain has already reached its tail, resumes it after re-reading the old tail's ``next``
    pointer, so that software may link new descriptors to the tail at any time). The walk stops
    after the descriptor at the tail pointer captured when that descriptor's fetch was issued;
    in ``cyclic`` mode it follows ``next`` forever and the tail is not consulted. Writing
    ``cur_desc`` (``cur_desc_write``) while stopped at the tail makes the next tail write start a
    new chain there.

    A descriptor with ``length`` 0, one already completed (unless cyclic) or an error response
    while fetching it stops the fetcher in a fault that only a reset clears. A descriptor counts
    as completed when its ``status.completed`` bit is set, or when it is one of the transfers
    dispatched and not yet completed (``dispatch``, ``complete``): its status write-back is
    still to come, so a ``next`` pointing back into the chain is refused as stale whether or
    not the descriptor it points to has been written back yet, and each descriptor runs once.

    A pointer not aligned to the descriptor size is a fault (MISALIGNED) before anything is
    fetched: the address about to be fetched (``cur_desc``, or a ``next`` followed) and,
    outside cyclic mode, ``tail_desc``, checked before every descriptor read. ``fault_desc``
    is then the misaligned pointer.

    Parameters
    ----------
    addr_width : int
        Address width.
    data_width : int
        Bus width in bits.
    queue_depth : int
        Transfers dispatched and not completed, at most (:class:`~.engine.DMAEngine`).

    Members
    -------
    cur_desc, tail_desc : ``In(addr_width)``
    cur_desc_write, tail_write : ``In(1)``
        Pulses when software writes the corresponding pointer.
    cyclic : ``In(1)``
    halt : ``In(1)``
        Holds back new descriptor reads.
    dispatch : ``In(1)``
        A transfer is dispatched to the data path (this fetcher's, or register mode's).
    complete : ``In(1)``
        A transfer completes (in the order they were dispatched).
    ar : ``Out(stream.Signature(FetchRequestLayout))``
        Descriptor read requests.
    r : ``In(stream.Signature({data, resp}))``
        The beats answering them.
    transfers : ``Out(stream.Signature(TransferLayout))``
    active : ``Out(1)``
        Walking a chain, or about to (not idle or stopped at the tail with no tail pointer
        written since, not faulted).
    in_flight : ``Out(1)``
        A descriptor read has been issued and not fully answered.
    fault : ``Out(1)``
    fault_code : ``Out(ErrorCode)``
    fault_resp : ``Out(Resp)``
    fault_desc : ``Out(addr_width)``
    """
    def __init__(self, *, addr_width=40, data_width=64, queue_depth=4):
        check_integer("Queue depth", queue_depth, minimum=1, maximum=64)
        self._addr_width = addr_width
        self._data_width = data_width
        self._queue_depth = queue_depth
        super().__init__({
            "cur_desc": In(addr_width),
            "cur_desc_write": In(1),
            "tail_desc": In(addr_width),
            "tail_write": In(1),
            "cyclic": In(1),
            "halt": In(1),
            "dispatch": In(1),
            "complete": In(1),
            "ar": Out(stream.Signature(FetchRequestLayout(addr_width=addr_width))),
            "r": In(stream.Signature(data.StructLayout({"data": data_width, "resp": Resp}))),
            "transfers": Out(stream.Signature(TransferLayout(addr_width=addr_width))),
            "active": Out(1),
            "in_flight": Out(1),
            "fault": Out(1),
            "fault_code": Out(ErrorCode),
            "fault_resp": Out(Resp),
            "fault_desc": Out(addr_width),
        })

    def elaborate(self, platform):
        m = Module()
        aw = self._addr_width
        align_bits = exact_log2(DESCRIPTOR_BYTES)
        beats = DESCRIPTOR_BYTES * 8 // self._data_width

        cur        = Signal(aw)
        offer_desc = Signal(aw)     # the address of the descriptor offered, `cur` until OFFER
        tail_seen  = Signal(aw)     # tail pointer when the current descriptor's read was issued
        tail_moved = Signal()       # tail written since then
        restart    = Signal()       # cur_desc written while stopped at the tail
        raw        = Signal(DESCRIPTOR_BYTES * 8)
        desc       = data.View(DescriptorLayout(), raw)
        beat       = Signal(range(beats))
        beat_error = Signal(Resp)

        # Every beat answering a descriptor read goes in, whatever the state: `raw` is only
        # looked at after RECEIVE, which shifts all of a descriptor in. So the enable of this
        # wide register does not wait on the state.
        with m.If(self.r.valid):
            m.d.sync += raw.eq(Cat(raw[self._data_width:], self.r.payload.data))

        with m.If(self.tail_write):
            m.d.sync += tail_moved.eq(1)
        with m.If(self.cur_desc_write):
            m.d.sync += restart.eq(1)

        m.d.comb += [
            self.r.ready.eq(1),
            self.fault_desc.eq(cur),
            self.transfers.payload.src.eq(desc.src),
            self.transfers.payload.dst.eq(desc.dst),
            self.transfers.payload.length.eq(desc.length),
            self.transfers.payload.desc.eq(offer_desc),
            self.transfers.payload.irq.eq(desc.control.irq_on_complete),
            self.transfers.payload.sg.eq(1),
        ]

        # ---- Transfers dispatched and not completed ----
        # A ring with an entry per transfer in flight (at most `queue_depth`, plus one spare so
        # that a dispatch and a completion never meet at one entry): the descriptor's address,
        # and whether it is one (a transfer this fetcher offered, not register mode's).
        entries = self._queue_depth + 1
        ring_desc = [Signal(aw, name=f"ring_desc{i}") for i in range(entries)]
        ring_valid = Signal(entries)
        ring_w = Signal(range(entries))
        ring_r = Signal(range(entries))
        with m.If(self.dispatch):
            for i in range(entries):
                with m.If(ring_w == i):
                    m.d.sync += [
                        ring_desc[i].eq(offer_desc),
                        ring_valid[i].eq(self.transfers.valid & self.transfers.ready),
                    ]
            m.d.sync += ring_w.eq(Mux(ring_w == entries - 1, 0, ring_w + 1))
        with m.If(self.complete):
            for i in range(entries):
                with m.If(ring_r == i):
                    m.d.sync += ring_valid[i].eq(0)
            m.d.sync += ring_r.eq(Mux(ring_r == entries - 1, 0, ring_r + 1))
        # `cur` is a descriptor in flight: taken as its read is issued. One that completes after
        # that has been counted; one that completed before has its status in memory.
        in_ring = Signal()
        m.d.comb += in_ring.eq(Cat(ring_valid[i] & (ring_desc[i] == cur)
                                   for i in range(entries)).any())
        cur_in_flight = Signal()

        # ---- Misaligned pointers: refused before the read that would follow them ----
        cur_misaligned = Signal()
        tail_misaligned = Signal()
        m.d.comb += [
            cur_misaligned.eq(cur[:align_bits] != 0),
            tail_misaligned.eq(~self.cyclic & (self.tail_desc[:align_bits] != 0)),
        ]

        def refuse_misaligned(check_cur):
            bad = (cur_misaligned | tail_misaligned) if check_cur else tail_misaligned
            with m.If(bad):
                # `fault_desc` is `cur`: the misaligned pointer, the tail's if `cur` is fine.
                if check_cur:
                    with m.If(~cur_misaligned):
                        m.d.sync += cur.eq(self.tail_desc)
                else:
                    m.d.sync += cur.eq(self.tail_desc)
                fail(ErrorCode.MISALIGNED)
            return bad

        # `cur == tail_seen`, taken in CHECK (the only state OFFER is entered from), where
        # neither changes, and kept in OFFER, where it counts.
        at_tail = Signal()

        def issued():
            # The read of `cur` goes out: the tail it is compared against is the one seen now.
            m.d.sync += tail_seen.eq(self.tail_desc)
            m.d.sync += tail_moved.eq(self.tail_write)

        def fail(code, resp=Resp.OKAY):
            m.d.sync += [
                self.fault_code.eq(code),
                self.fault_resp.eq(resp),
            ]
            m.next = "FAULT"

        with one_hot_fsm(m):
            with m.State("IDLE"):
                m.d.comb += self.active.eq(tail_moved)
                with m.If(tail_moved):
                    m.d.sync += [
                        cur.eq(self.cur_desc),
                        restart.eq(self.cur_desc_write),
                    ]
                    m.next = "FETCH"

            with m.State("FETCH"):
                bad = refuse_misaligned(check_cur=True)
                m.d.comb += [
                    self.active.eq(1),
                    self.ar.valid.eq(~self.halt & ~bad),
                    self.ar.payload.addr.eq(cur),
                    self.ar.payload.len.eq(beats - 1),
                ]
                with m.If(self.ar.valid & self.ar.ready):
                    issued()
                    m.d.sync += [
                        beat.eq(0),
                        beat_error.eq(Resp.OKAY),
                        cur_in_flight.eq(in_ring),
                    ]
                    m.next = "RECEIVE"

            with m.State("RECEIVE"):
                m.d.comb += [
                    self.active.eq(1),
                    self.in_flight.eq(1),
                ]
                with m.If(self.r.valid):
                    m.d.sync += beat.eq(beat + 1)
                    with m.If(self.r.payload.resp != Resp.OKAY):
                        m.d.sync += beat_error.eq(self.r.payload.resp)
                    with m.If(beat == beats - 1):
                        with m.If((self.r.payload.resp != Resp.OKAY) |
                                  (beat_error != Resp.OKAY)):
                            fail(ErrorCode.DESC_FETCH,
                                 Mux(self.r.payload.resp != Resp.OKAY,
                                     self.r.payload.resp, beat_error))
                        with m.Else():
                            m.next = "CHECK"

            with m.State("CHECK"):
                m.d.comb += self.active.eq(1)
                m.d.sync += [at_tail.eq(cur == tail_seen), offer_desc.eq(cur)]
                with m.If((desc.status.completed | cur_in_flight) & ~self.cyclic):
                    fail(ErrorCode.STALE)
                with m.Elif(desc.length == 0):
                    fail(ErrorCode.ZERO_LEN)
                with m.Else():
                    m.next = "OFFER"

            with m.State("OFFER"):
                m.d.comb += [
                    self.active.eq(1),
                    self.transfers.valid.eq(1),
                ]
                # `cur` moves on to the next descriptor while the transfer is offered, not as
                # it is taken, so that its enable does not wait on the data path's `ready`.
                # At the tail it stays: AT_TAIL may read the tail's next pointer again.
                with m.If(self.cyclic | ~at_tail):
                    m.d.sync += cur.eq(desc.next)
                with m.If(self.transfers.ready):
                    with m.If(~self.cyclic & at_tail):
                        m.next = "AT_TAIL"
                    with m.Else():
                        m.next = "FETCH"

            with m.State("AT_TAIL"):
                m.d.comb += self.active.eq(tail_moved)
                with m.If(tail_moved & restart):
                    m.d.sync += [
                        cur.eq(self.cur_desc),
                        restart.eq(self.cur_desc_write),
                    ]
                    m.next = "FETCH"
                with m.Elif(tail_moved):
                    m.next = "FETCH_NEXT"

            with m.State("FETCH_NEXT"):
                # Re-read the old tail's next pointer: software may have linked it since. The
                # old tail is aligned (it was fetched); the new tail is checked first.
                bad = refuse_misaligned(check_cur=False)
                m.d.comb += [
                    self.active.eq(1),
                    self.ar.valid.eq(~self.halt & ~bad),
                    self.ar.payload.addr.eq(cur),
                    self.ar.payload.len.eq(0),
                ]
                with m.If(self.ar.valid & self.ar.ready):
                    m.next = "RECEIVE_NEXT"

            with m.State("RECEIVE_NEXT"):
                m.d.comb += [
                    self.active.eq(1),
                    self.in_flight.eq(1),
                ]
                with m.If(self.r.valid):
                    with m.If(self.r.payload.resp != Resp.OKAY):
                        fail(ErrorCode.DESC_FETCH, self.r.payload.resp)
                    with m.Else():
                        m.d.sync += cur.eq(self.r.payload.data[:aw])
                        m.next = "FETCH"

            with m.State("FAULT"):
                m.d.comb += self.fault.eq(1)

        return m
