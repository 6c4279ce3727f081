"""CPU port to AXI4: each access becomes one single-beat transaction, in order."""

from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..bus.axi import AXI4Signature, Burst, Resp, Size
from ..one_hot import one_hot_fsm
from .port import CpuPortSignature

__all__ = ["UncachedBridge"]


class UncachedBridge(wiring.Component):
    """Takes the CPU port straight onto AXI4, one access at a time.

    Every access is a single full-width beat (``AxLEN`` = 0, ``AxSIZE`` = the bus width) at
    the word address of the request; a store carries the request's byte enables as write
    strobes. The next request is accepted only once the previous one has its response, so
    accesses reach memory in program order, as uncached (device or coherent DMA) memory needs.

    Parameters
    ----------
    bus_signature : AXI4Signature
        Signature of the AXI4 manager port. Its data width is the CPU port's.

    Members
    -------
    cpu : ``In(CpuPortSignature(...))``
    bus : ``Out(bus_signature)``
    """
    def __init__(self, bus_signature):
        if not isinstance(bus_signature, AXI4Signature):
            raise TypeError(f"Bus signature must be an AXI4Signature, not {bus_signature!r}")
        if bus_signature.data_width not in (32, 64):
            raise ValueError(f"Bus data width must be 32 or 64 to match the CPU port, "
                             f"not {bus_signature.data_width!r}")
        self._bus_signature = bus_signature
        super().__init__({
            "cpu": In(CpuPortSignature(addr_width=bus_signature.addr_width,
                                       data_width=bus_signature.data_width)),
            "bus": Out(bus_signature),
        })

    def elaborate(self, platform):
        m = Module()

        req = Signal.like(self.cpu.req.payload)
        word_mask = ~(self._bus_signature.bytes_per_beat - 1)

        for ax in (self.bus.aw.payload, self.bus.ar.payload):
            m.d.comb += [
                ax.addr.eq(req.addr & word_mask),
                ax.len.eq(0),
                ax.size.eq(Size.from_bytes(self._bus_signature.bytes_per_beat)),
                ax.burst.eq(Burst.INCR),
            ]
        m.d.comb += [
            self.bus.w.payload.data.eq(req.data),
            self.bus.w.payload.strb.eq(req.strb),
            self.bus.w.payload.last.eq(1),
        ]

        aw_done = Signal()
        w_done  = Signal()

        with one_hot_fsm(m):
            with m.State("IDLE"):
                m.d.comb += self.cpu.req.ready.eq(1)
                with m.If(self.cpu.req.valid):
                    m.d.sync += req.eq(self.cpu.req.payload)
                    with m.If(self.cpu.req.payload.write):
                        m.d.sync += [aw_done.eq(0), w_done.eq(0)]
                        m.next = "WRITE"
                    with m.Else():
                        m.next = "READ"

            with m.State("WRITE"):
                m.d.comb += [
                    self.bus.aw.valid.eq(~aw_done),
                    self.bus.w.valid.eq(~w_done),
                ]
                with m.If(self.bus.aw.valid & self.bus.aw.ready):
                    m.d.sync += aw_done.eq(1)
                with m.If(self.bus.w.valid & self.bus.w.ready):
                    m.d.sync += w_done.eq(1)
                m.d.comb += self.bus.b.ready.eq(aw_done & w_done)
                with m.If(self.bus.b.valid & self.bus.b.ready):
                    m.d.sync += [
                        self.cpu.rsp.payload.data.eq(0),
                        self.cpu.rsp.payload.error.eq(self.bus.b.payload.resp != Resp.OKAY),
                    ]
                    m.next = "RESPOND"

            with m.State("READ"):
                m.d.comb += self.bus.ar.valid.eq(1)
                with m.If(self.bus.ar.ready):
                    m.next = "READ_DATA"

            with m.State("READ_DATA"):
                m.d.comb += self.bus.r.ready.eq(1)
                with m.If(self.bus.r.valid):
                    m.d.sync += [
                        self.cpu.rsp.payload.data.eq(self.bus.r.payload.data),
                        self.cpu.rsp.payload.error.eq(self.bus.r.payload.resp != Resp.OKAY),
                    ]
                    m.next = "RESPOND"

            with m.State("RESPOND"):
                m.d.comb += self.cpu.rsp.valid.eq(1)
                with m.If(self.cpu.rsp.ready):
                    m.next = "IDLE"

        return m
