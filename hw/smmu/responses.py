"""The response side of a translation stage: R or B responses passed up, the error answer
of a transaction that failed translation, and (for writes) the routing of W beats."""

from amaranth.hdl import Module, Signal
from amaranth.lib import fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from ..bus.axi import AXI4Signature, ReadDataLayout, Resp, WriteDataLayout, WriteRespLayout
from ..parameters import check_integer

__all__ = ["StageResponses"]


class StageResponses(wiring.Component):
    """Responses of one translation stage, and the error answers of its failed transactions.

    Downstream responses pass up unchanged. A transaction that failed translation never goes
    downstream; its answer waits until every transaction the stage sent before it has been
    answered (AXI orders same-ID responses), and for a write until its data beats have been
    taken and dropped; then a read gets ``len + 1`` SLVERR beats and a write one SLVERR
    response.

    A write's data beats follow the order of the addresses: for each, a route FIFO holds
    whether its beats go downstream (it was issued) or are dropped (it failed).

    Parameters
    ----------
    bus_signature : AXI4Signature
        Of the port.
    write : bool
        The B channel and W routing, rather than the R channel.
    max_outstanding : int
        Writes whose W routing is queued (the depth of the route FIFO).

    Members
    -------
    up_resp : ``Out(stream)``, down_resp : ``In(stream)``
        The R or B channel.
    up_w : ``In(stream)``, down_w : ``Out(stream)``
        The W channel (``write`` only).
    capture : ``In(1)``
        The stage takes a new transaction.
    issued : ``In(1)``
        Its transaction goes downstream.
    accept : ``Out(1)``
        A transaction may go downstream (a write needs room in the route FIFO).
    valid, failed : ``In(1)``
        The stage holds a transaction; it failed translation.
    id, len : ``In``
        Of the transaction held.
    answered : ``Out(1)``
        The failed transaction's answer is taken, to its last beat.
    completed : ``Out(1)``
        A downstream transaction was answered in full.
    """
    def __init__(self, bus_signature, *, write, max_outstanding=8):
        if not isinstance(bus_signature, AXI4Signature):
            raise TypeError(f"Bus signature must be an AXI4Signature, not {bus_signature!r}")
        check_integer("Maximum of outstanding writes", max_outstanding, minimum=1)
        sig = bus_signature
        if write:
            resp_signature = stream.Signature(WriteRespLayout(id_width=sig.id_width))
        else:
            resp_signature = stream.Signature(ReadDataLayout(data_width=sig.data_width,
                                                             id_width=sig.id_width))
        self._write = bool(write)
        self._max_outstanding = max_outstanding
        members = {
            "up_resp": Out(resp_signature),
            "down_resp": In(resp_signature),
            "capture": In(1),
            "issued": In(1),
            "accept": Out(1),
            "valid": In(1),
            "failed": In(1),
            "id": In(sig.id_width),
            "len": In(8),
            "answered": Out(1),
            "completed": Out(1),
        }
        if write:
            w_signature = stream.Signature(WriteDataLayout(data_width=sig.data_width))
            members["up_w"] = In(w_signature)
            members["down_w"] = Out(w_signature)
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        resp_up, resp_down, failed = self.up_resp, self.down_resp, self.failed
        outstanding = Signal(range(256))
        routed = Signal()           # a failed write's drop route is queued
        beats = Signal(9)           # SLVERR beats of a failed read sent so far
        # Whether the failed transaction may be answered: worked out a cycle late, from
        # registers, so that the responses' ready downstream (and the register slice's
        # enables behind it) wait on this register and ``valid`` alone. Once true it stays
        # true for as long as the stage holds the failed transaction: it takes no other
        # meanwhile, the transactions in flight only complete, and a failed write's route
        # only drains.
        answerable = Signal()
        inject = Signal()
        m.d.comb += inject.eq(self.valid & answerable)
        last = 1 if self._write else resp_down.payload.last
        m.d.comb += self.completed.eq(resp_down.valid & resp_down.ready & last)
        m.d.sync += outstanding.eq(outstanding + self.issued - self.completed)

        if self._write:
            m.submodules.routes = routes = fifo.SyncFIFO(width=1, depth=self._max_outstanding)
            m.d.comb += self.accept.eq(routes.w_rdy)
            # The failed write's data beats are dropped before it is answered.
            m.d.sync += answerable.eq(failed & (outstanding == 0) & routed &
                                      (routes.level == 0))
            with m.If(failed & ~routed & routes.w_rdy):
                m.d.comb += [routes.w_en.eq(1), routes.w_data.eq(1)]
                m.d.sync += routed.eq(1)
            with m.If(self.issued):
                m.d.comb += [routes.w_en.eq(1), routes.w_data.eq(0)]
            drop = routes.r_data[0]
            w_up, w_down = self.up_w, self.down_w
            m.d.comb += [
                w_down.payload.eq(w_up.payload),
                w_down.valid.eq(w_up.valid & routes.r_rdy & ~drop),
                w_up.ready.eq(routes.r_rdy & (drop | w_down.ready)),
                routes.r_en.eq(w_up.valid & w_up.ready & w_up.payload.last),
            ]
        else:
            m.d.comb += self.accept.eq(1)
            m.d.sync += answerable.eq(failed & (outstanding == 0))

        final = 1 if self._write else beats == self.len
        with m.If(inject):
            m.d.comb += [
                resp_up.valid.eq(1),
                resp_up.payload.id.eq(self.id),
                resp_up.payload.resp.eq(Resp.SLVERR),
                self.answered.eq(resp_up.ready & final),
            ]
            if not self._write:
                m.d.comb += resp_up.payload.last.eq(final)
        with m.Else():
            m.d.comb += [
                resp_up.valid.eq(resp_down.valid),
                resp_up.payload.eq(resp_down.payload),
                resp_down.ready.eq(resp_up.ready),
            ]

        with m.If(self.capture):
            m.d.sync += [routed.eq(0), beats.eq(0)]
        with m.Elif(~self.issued & inject & resp_up.ready):
            m.d.sync += beats.eq(beats + 1)
        return m
