"""The host bridge alone on the built-in simulator, its ports answered by Python models, its
UART served through a :class:`PipeTransport` (:func:`bridge_sim`)."""

import contextlib
import threading

from amaranth.hdl import Elaboratable, Module, Mux, Signal
from amaranth.sim import Simulator

from dmabuf_soc.hw.board.board import BOARD_CONFIG
from dmabuf_soc.hw.board.bridge import HostBridge
from dmabuf_soc.sw.machine.serial.pysim_board import add_uart
from dmabuf_soc.sw.machine.serial.transport import PipeTransport

__all__ = ["DIVISOR", "bridge_sim"]

DIVISOR = 4


class _Harness(Elaboratable):
    """The bridge with the SoC's cycle counter (zeroed by ``soc_reset``) and a count of the
    cycles of that reset."""
    def __init__(self, bridge):
        self.bridge = bridge
        self.irq = Signal(8)
        self.resets = Signal(16)

    def elaborate(self, platform):
        m = Module()
        m.submodules.bridge = bridge = self.bridge
        m.d.sync += [bridge.cycle.eq(Mux(bridge.soc_reset, 0, bridge.cycle + 1)),
                     self.resets.eq(self.resets + bridge.soc_reset)]
        m.d.comb += bridge.irq.eq(self.irq)
        return m


class _Models:
    """What the bridge's ports reach: registers, the CPU's memory, the backdoor memory."""
    def __init__(self):
        self.regs = {}
        self.cpu = {}
        self.mem = {}
        self.cpu_requests = []
        self.mmio_writes = 0
        self.resets = 0
        self.irq = 0


def _merge(old, data, strb):
    mask = sum(0xFF << 8 * i for i in range(8) if strb >> i & 1)
    return (old & ~mask) | (data & mask)


def _processes(sim, bridge, models, done):
    def axi(port, read, write):
        """A responder on AXI port ``port``: ``read(ar)`` gives the R payload,
        ``write(aw, w)`` the B payload."""
        async def respond(ctx):
            while True:
                for channel in (port.ar, port.aw, port.w):
                    ctx.set(channel.ready, 1)
                ar_valid, ar, aw_valid, aw, w_valid, w, end = await ctx.tick().sample(
                    port.ar.valid, port.ar.payload, port.aw.valid, port.aw.payload,
                    port.w.valid, port.w.payload, done).until(
                    port.ar.valid | port.aw.valid | done)
                if end:
                    return
                if ar_valid:
                    ctx.set(port.ar.ready, 0)
                    ctx.set(port.r.payload, read(ar))
                    ctx.set(port.r.valid, 1)
                    await ctx.tick().until(port.r.ready)
                    ctx.set(port.r.valid, 0)
                if aw_valid:
                    ctx.set(port.aw.ready, 0)
                    ctx.set(port.w.ready, 0)
                    if not w_valid:
                        w, = await ctx.tick().sample(port.w.payload).until(port.w.valid)
                    ctx.set(port.b.payload, write(aw, w))
                    ctx.set(port.b.valid, 1)
                    await ctx.tick().until(port.b.ready)
                    ctx.set(port.b.valid, 0)
        return respond

    def mmio_write(aw, w):
        models.regs[aw.addr] = w.data
        models.mmio_writes += 1
        return {"resp": 0}

    def mem_read(ar):
        assert ar.len == 0 and ar.size == 3
        return {"data": models.mem.get(ar.addr, 0), "resp": 0, "last": 1, "id": ar.id}

    def mem_write(aw, w):
        models.mem[aw.addr] = _merge(models.mem.get(aw.addr, 0), w.data, w.strb)
        return {"resp": 0, "id": aw.id}

    mmio = axi(bridge.mmio, lambda ar: {"data": models.regs.get(ar.addr, 0),
                                        "resp": 2 if ar.addr >= 0x8000 else 0}, mmio_write)
    mem = axi(bridge.mem, mem_read, mem_write)

    async def cpu(ctx):
        port = bridge.cpu
        while True:
            ctx.set(port.req.ready, 1)
            req, end = await ctx.tick().sample(port.req.payload, done).until(
                port.req.valid | done)
            if end:
                return
            ctx.set(port.req.ready, 0)
            models.cpu_requests.append((req.addr, req.write, req.strb, req.cacheable))
            old = models.cpu.get(req.addr, 0)
            if req.write:
                models.cpu[req.addr] = _merge(old, req.data, req.strb)
            ctx.set(port.rsp.payload, {"data": 0 if req.write else old,
                                       "error": int(req.addr >= 1 << 39)})
            ctx.set(port.rsp.valid, 1)
            await ctx.tick().until(port.rsp.ready)
            ctx.set(port.rsp.valid, 0)

    for process in (mmio, cpu, mem):
        sim.add_testbench(process)


@contextlib.contextmanager
def bridge_sim():
    """Run the bridge in a thread; yields ``(transport, models)``."""
    dut = HostBridge(BOARD_CONFIG, divisor=DIVISOR, clock_hz=1234, frame_timeout=400)
    models = _Models()
    transport = PipeTransport()
    stop = threading.Event()
    harness = _Harness(dut)
    sim = Simulator(harness)
    sim.add_clock(1e-8)

    def poll(ctx):
        ctx.set(harness.irq, models.irq)
        models.resets = ctx.get(harness.resets)

    done = add_uart(sim, rx=dut.rx, tx=dut.tx, divisor=DIVISOR, transport=transport,
                    stop=stop, poll=poll)
    _processes(sim, dut, models, done)
    errors = []

    def run():
        try:
            sim.run()
        except BaseException as error:
            errors.append(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield transport, models
    finally:
        stop.set()
        thread.join()
    if errors:
        raise errors[0]
