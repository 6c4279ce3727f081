"""A skid register: a stream's ready from a register, at no cost in latency."""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["StreamSkid"]


class StreamSkid(wiring.Component):
    """A stream on a wire, with a register for a transfer the downstream side refuses.

    ``upstream.ready`` is a register: low while a transfer waits in the skid register, so it
    depends on nothing offered in the same cycle. That is what a receiver whose ready depends
    on the payload (a response routed by its ID) needs, for an upstream side that leaves the
    payload undefined while ``valid`` is low, as AXI allows. Transfers pass in the cycle they
    are offered; one that ``downstream`` does not take is taken from ``upstream`` all the
    same, and offered from the register until it is. So ``downstream`` sees every transfer in
    the cycles it would see it on a wire, and ``upstream`` sees it taken when first offered.

    Its parameter (``payload_shape``) and ports (``upstream``, ``downstream``) are those of a
    :class:`~.register_slice.StreamRegisterSlice`.
    """
    def __init__(self, payload_shape):
        signature = stream.Signature(payload_shape)
        super().__init__({"upstream": In(signature), "downstream": Out(signature)})

    def elaborate(self, platform):
        m = Module()
        up, down = self.upstream, self.downstream
        held = Signal()
        skid = Signal.like(up.payload)
        m.d.comb += [
            up.ready.eq(~held),
            down.valid.eq(held | up.valid),
            down.payload.eq(Mux(held, skid, up.payload)),
        ]
        # The register follows the payload while it is free, so its enable is a register.
        with m.If(~held):
            m.d.sync += skid.eq(up.payload)
        m.d.sync += held.eq(down.valid & ~down.ready)
        return m
