"""AXI4-Lite: one access awaited from a testbench, and a subordinate model backed by a
:class:`~.memory.ReferenceMemory`."""

from amaranth.hdl import Value

from ...hw.bus.axi import Resp
from .port import PortModel, error_response

__all__ = ["lite_write", "lite_read", "AXI4LiteSubordinate"]


async def lite_write(ctx, port, addr, data, strb=0xF):
    """Write ``data`` at ``addr`` through the AXI4-Lite manager-side ``port``; returns the
    :class:`Resp`. AW and W are presented together and may be accepted in either order."""
    ctx.set(port.aw.payload, {"addr": addr, "prot": 0})
    ctx.set(port.w.payload, {"data": data, "strb": strb})
    ctx.set(port.aw.valid, 1)
    ctx.set(port.w.valid, 1)
    ctx.set(port.b.ready, 1)
    aw_pending = w_pending = True
    try:
        while True:
            _, _, aw_ready, w_ready, b_valid, b_payload = \
                await ctx.tick().sample(port.aw.ready, port.w.ready, port.b.valid, port.b.payload)
            if b_valid and not (aw_pending or w_pending):
                return Resp(b_payload.resp)
            if aw_pending and aw_ready:
                aw_pending = False
                ctx.set(port.aw.valid, 0)
            if w_pending and w_ready:
                w_pending = False
                ctx.set(port.w.valid, 0)
    finally:
        ctx.set(port.b.ready, 0)


async def lite_read(ctx, port, addr):
    """Read ``addr`` through the AXI4-Lite manager-side ``port``; returns ``(data, resp)``."""
    ctx.set(port.ar.payload, {"addr": addr, "prot": 0})
    ctx.set(port.ar.valid, 1)
    await ctx.tick().until(port.ar.ready)
    ctx.set(port.ar.valid, 0)
    ctx.set(port.r.ready, 1)
    payload, = await ctx.tick().sample(port.r.payload).until(port.r.valid)
    ctx.set(port.r.ready, 0)
    return payload.data, Resp(payload.resp)


class AXI4LiteSubordinate(PortModel):
    """AXI4-Lite subordinate bus-functional model backed by a :class:`ReferenceMemory`.

    Answers one read and one write at a time, ``latency`` cycles after accepting them.

    Parameters
    ----------
    port : interface
        The AXI4-Lite port to answer.
    memory : ReferenceMemory
        Backing store.
    latency : int
        Cycles from the request accepted to its response being presented.
    error : callable or None
        As for :class:`AXI4Subordinate`.
    """
    def __init__(self, port, memory, *, latency=1, error=None):
        if not isinstance(latency, int) or latency < 1:
            raise ValueError(f"latency must be a positive integer, not {latency!r}")
        super().__init__(port)
        self.memory = memory
        self.latency = latency
        self.error = error
        self.bytes_per_beat = port.signature.data_width // 8

    async def _process(self, ctx):
        port, codecs = self.port, self._codecs
        aw = w = None
        b_due = r_due = None        # (cycle, payload bits)
        aw_ready = w_ready = ar_ready = False
        cycle = 0
        async for _, _, aw_vld, aw_bits, w_vld, w_bits, b_rdy, ar_vld, ar_bits, r_rdy in \
                ctx.tick().sample(port.aw.valid, Value.cast(port.aw.payload),
                                  port.w.valid, Value.cast(port.w.payload), port.b.ready,
                                  port.ar.valid, Value.cast(port.ar.payload), port.r.ready):
            cycle += 1
            if aw_vld and aw_ready:
                aw = codecs["aw"].unpack(aw_bits)
            if w_vld and w_ready:
                w = codecs["w"].unpack(w_bits)
            if b_due is not None and b_due[0] <= cycle and b_rdy:
                b_due = None
            if aw is not None and w is not None:
                resp = error_response(self.error, True, aw["addr"])
                if resp == Resp.OKAY:
                    self.memory.write_beat(aw["addr"], w["data"], w["strb"], self.bytes_per_beat)
                b_due = (cycle + self.latency, codecs["b"].pack(resp=resp.value))
                aw = w = None
            if r_due is not None and r_due[0] <= cycle and r_rdy:
                r_due = None
            elif ar_vld and ar_ready:
                addr = codecs["ar"].unpack(ar_bits)["addr"]
                resp = error_response(self.error, False, addr)
                data = self.memory.read_beat(addr, self.bytes_per_beat)
                r_due = (cycle + self.latency, codecs["r"].pack(data=data, resp=resp.value))
            aw_ready = aw is None and b_due is None
            w_ready = w is None and b_due is None
            ar_ready = r_due is None
            ctx.set(port.aw.ready, aw_ready)
            ctx.set(port.w.ready, w_ready)
            ctx.set(port.ar.ready, ar_ready)
            for stream, due in ((port.b, b_due), (port.r, r_due)):
                presented = due is not None and due[0] <= cycle + 1
                if presented:
                    ctx.set(Value.cast(stream.payload), due[1])
                ctx.set(stream.valid, presented)
