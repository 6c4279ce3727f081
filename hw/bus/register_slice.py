"""Register slices: registers that cut every combinational path through a stream or an AXI4
port, at full throughput.

A slice sits between two blocks that are far apart on the chip. Neither block's valid,
payload or ready then reaches the other in the same cycle: every path ends at the slice's
registers, which the placer can put halfway::

    upstream ──valid/payload──▶ [entry 0] ─┬─(read)──valid/payload──▶ downstream
                                [entry 1] ─┘
             ◀──────ready────── (not both held)  ◀──────ready───────

Each channel costs one cycle of latency and none of throughput: a transfer a cycle passes
while the downstream side is ready. When it stops being ready, the one transfer the upstream
side already sent (its ready was a register) waits in the other entry.
"""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out, connect, flipped

from .axi import AXI4Signature

__all__ = ["StreamRegisterSlice", "AXI4RegisterSlice"]


class StreamRegisterSlice(wiring.Component):
    """A stream through two registers, used in turn.

    ``downstream.valid`` and ``upstream.ready`` are registers, and ``downstream.payload`` is
    the register read next, chosen by a register. Transfers keep their order; each takes one
    cycle more than on a wire. A register takes upstream's payload in every cycle it is free,
    so the payload's enables are registers too: neither side's valid or ready reaches more
    than the few registers that count the transfers held.

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
        entries = [Signal.like(up.payload, name=f"entry{i}") for i in range(2)]
        held = Signal(2)            # which entries hold a transfer
        write = Signal()            # the entry the next transfer goes to
        read = Signal()             # the entry downstream sees
        push = Signal()
        pop = Signal()
        m.d.comb += [
            push.eq(up.valid & up.ready),
            pop.eq(down.valid & down.ready),
            down.payload.eq(Mux(read, entries[1], entries[0])),
        ]
        for index, entry in enumerate(entries):
            with m.If(~held[index]):
                m.d.sync += entry.eq(up.payload)
        with m.If(push):
            m.d.sync += [held.bit_select(write, 1).eq(1), write.eq(~write)]
        with m.If(pop):
            m.d.sync += [held.bit_select(read, 1).eq(0), read.eq(~read)]
        valid = Signal()
        ready = Signal(init=1)
        next_count = held[0] + held[1] + push - pop
        m.d.sync += [valid.eq(next_count != 0), ready.eq(next_count != 2)]
        m.d.comb += [down.valid.eq(valid), up.ready.eq(ready)]
        return m


class AXI4RegisterSlice(wiring.Component):
    """An AXI4 port through a :class:`StreamRegisterSlice` on each of its five channels (the
    "fully registered" slice of AXI interconnects).

    Every signal of ``downstream`` driven by the slice, and every one of ``upstream``, comes
    from registers (a payload through a choice of two made by a register). A read or a write
    response takes two cycles more than on a wire (one each way); bursts stream at a beat per
    cycle.

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
