"""The cache's memory port, shared by its own bursts and the uncached accesses."""

from amaranth.hdl import Module, Mux
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out, connect, flipped

from ..bus.axi import AXI4Signature
from ..bus.register_slice import StreamRegisterSlice
from ..cpu.bridge import UncachedBridge
from ..cpu.port import CpuPortSignature

__all__ = ["BusSwitch"]


class BusSwitch(wiring.Component):
    """One AXI4 port for the cache's own bursts (write-backs and refills) and for uncached
    accesses, which go through an :class:`~dmabuf_soc.hw.cpu.bridge.UncachedBridge`.

    The two never overlap: the cache gives the bridge an access only once every write-back
    has completed, and starts none of its own until the bridge has answered. So each request
    channel carries the bridge's request while the bridge offers one, chosen by the bridge's
    own valid (from its registers), and the cache's otherwise: the cache's control stays off
    the bus's wide multiplexers, which sit by the bus, far from the tag compare. Responses are
    offered to both; each takes those it waits for, and B goes to the bridge while
    ``uncached_active``.

    W beats leave through a register slice, a cycle after the cache offers them, so that a
    write-back's way choice ends in the cache rather than in the next block.

    Parameters
    ----------
    bus_signature : AXI4Signature
        Signature of the memory port.

    Members
    -------
    own : ``In(bus_signature)``
        The cache's own bursts. Its B channel is valid only while not ``uncached_active``.
    uncached : ``In(CpuPortSignature(addr_width, data_width))``
    uncached_active : ``In(1)``
        An uncached access waits for its response: B goes to the bridge.
    bus : ``Out(bus_signature)``
    """
    def __init__(self, bus_signature):
        if not isinstance(bus_signature, AXI4Signature):
            raise TypeError(f"Bus signature must be an AXI4Signature, not {bus_signature!r}")
        self._bus_signature = bus_signature
        super().__init__({
            "own":             In(bus_signature),
            "uncached":        In(CpuPortSignature(addr_width=bus_signature.addr_width,
                                                   data_width=bus_signature.data_width)),
            "uncached_active": In(1),
            "bus":             Out(bus_signature),
        })

    def elaborate(self, platform):
        m = Module()
        bus, own = self.bus, self.own

        m.submodules.bridge = bridge = UncachedBridge(self._bus_signature)
        connect(m, flipped(self.uncached), bridge.cpu)
        m.submodules.w_slice = w_slice = StreamRegisterSlice(bus.w.payload.shape())
        connect(m, w_slice.downstream, flipped(bus.w))

        requests = {"aw": bus.aw, "w": w_slice.upstream, "ar": bus.ar}
        for name, stream in requests.items():
            ours, theirs = getattr(own, name), getattr(bridge.bus, name)
            m.d.comb += [
                stream.valid.eq(ours.valid | theirs.valid),
                stream.payload.eq(Mux(theirs.valid, theirs.payload, ours.payload)),
                theirs.ready.eq(stream.ready),
                ours.ready.eq(stream.ready),
            ]
        for name in ("b", "r"):
            ours, theirs = getattr(own, name), getattr(bridge.bus, name)
            m.d.comb += [theirs.valid.eq(getattr(bus, name).valid),
                         theirs.payload.eq(getattr(bus, name).payload),
                         ours.payload.eq(getattr(bus, name).payload)]
        m.d.comb += [
            own.b.valid.eq(bus.b.valid & ~self.uncached_active),
            own.r.valid.eq(bus.r.valid),
            bus.b.ready.eq(Mux(self.uncached_active, bridge.bus.b.ready, own.b.ready)),
            bus.r.ready.eq(own.r.ready | bridge.bus.r.ready),
        ]

        return m
