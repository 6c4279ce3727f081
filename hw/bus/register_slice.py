"""Register slices: registers that cut every combinational path through a stream or an AXI4
port, at full throughput.

A slice sits between two blocks that are far apart on the chip. Neither block's valid,
payload or ready then reaches the other in the same cycle: every path ends at the slice's
registers, which the placer can put halfway::

    upstream ──valid/payload──▶ [skid] ──▶ [output] ──valid/payload──▶ downstream
             ◀──────ready───── (skid empty)   ◀───────────ready────────

Each channel costs one cycle of latency and none of throughput: a transfer a cycle passes
while the downstream side is ready. When it stops being ready, the one transfer the upstream
side already sent (its ready was a register) waits in the skid register.
"""

from amaranth.hdl import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out, connect, flipped

from .axi import AXI4Signature

__all__ = ["StreamRegisterSlice", "AXI4RegisterSlice"]


class StreamRegisterSlice(wiring.Component):
    """A stream through an output register and a skid register.

    ``downstream.valid`` and ``downstream.payload`` are the output register;
    ``upstream.ready`` is set while the skid register is empty. Transfers keep their order;
    each takes one cycle more than on a wire.

    Parameters
    ----------
    payload_shape : shape-like
        Shape of the stream's payload.

    Members
    -------
    upstream : ``In(stream.Signature(payload_shape))``
    downstream : ``Out(stream.Signature(payload_shape))``
    """
    def __init__(self, payload_shape):
        signature = stream.Signature(payload_shape)
        super().__init__({"upstream": In(signature), "downstream": Out(signature)})

    def elaborate(self, platform):
        m = Module()
        up, down = self.upstream, self.downstream
        skid = Signal.like(up.payload)
        skid_valid = Signal()

        m.d.comb += up.ready.eq(~skid_valid)
        # The skid register takes upstream's payload whenever it is empty, so that its
        # enable is a register (the other side's valid and ready reach only ``skid_valid``).
        with m.If(~skid_valid):
            m.d.sync += skid.eq(up.payload)
        with m.If(~down.valid | down.ready):
            # The output register is free: it takes the waiting transfer, else upstream's.
            with m.If(skid_valid):
                m.d.sync += [down.payload.eq(skid), down.valid.eq(1), skid_valid.eq(0)]
            with m.Else():
                m.d.sync += [down.payload.eq(up.payload), down.valid.eq(up.valid)]
        with m.Elif(up.valid & ~skid_valid):
            m.d.sync += skid_valid.eq(1)
        return m


class AXI4RegisterSlice(wiring.Component):
    """An AXI4 port through a :class:`StreamRegisterSlice` on each of its five channels (the
    "fully registered" slice of AXI interconnects).

    Every signal of ``downstream`` driven by the slice, and every one of ``upstream``, is a
    register. A read or a write response takes two cycles more than on a wire (one each
    way); bursts stream at a beat per cycle.

    Parameters
    ----------
    signature : AXI4Signature
        Of both ports, from the manager's side.

    Raises
    ------
    TypeError
        If ``signature`` is not an :class:`AXI4Signature`.

    Members
    -------
    upstream : ``In(signature)``
        Where the manager connects.
    downstream : ``Out(signature)``
        Towards the subordinate.
    """
    def __init__(self, signature):
        if not isinstance(signature, AXI4Signature):
            raise TypeError(f"Signature must be an AXI4Signature, not {signature!r}")
        super().__init__({"upstream": In(signature), "downstream": Out(signature)})

    def elaborate(self, platform):
        m = Module()
        for name in ("aw", "w", "ar", "b", "r"):
            # Requests flow from the upstream port to the downstream one, responses back.
            source, sink = ((self.downstream, self.upstream) if name in ("b", "r") else
                            (self.upstream, self.downstream))
            channel = getattr(source, name)
            m.submodules[name] = slice = StreamRegisterSlice(channel.payload.shape())
            connect(m, flipped(channel), slice.upstream)
            connect(m, slice.downstream, flipped(getattr(sink, name)))
        return m
