"""The machine on Amaranth's built-in simulator (the default backend, no compiler needed).

The driver runs as the simulator's testbench: every awaited machine call drives the SoC's
ports through ``ctx`` and lets the clock run, so the hardware that works on its own (a DMA
transfer, a page walk, a cache clean) advances exactly as many cycles as the driver waits.
"""

import contextlib

from amaranth.sim import Simulator

from ...hw.config import SocConfig
from ...sim.ddr.backdoor import peek as ddr_peek, poke as ddr_poke
from ...hw.soc import Soc
from .base import BusError, Machine, MachineTimeout, check_resp
from .access import split_words
from ..trace import spans

__all__ = ["PysimMachine", "simulate", "wait_irq_sampled"]

#: Simulated clock period: 100 MHz. Only VCD time stamps depend on it.
CLOCK_PERIOD = 10e-9


class PysimMachine(Machine):
    """:class:`Machine` on a running Amaranth simulation.

    Made by :func:`simulate`, which hands it to the scenario; not made directly.

    Parameters
    ----------
    ctx : amaranth.sim.SimulatorContext
        The testbench context the driver runs in.
    soc : Soc
        The simulated SoC top.
    """
    def __init__(self, ctx, soc):
        self._ctx = ctx
        self.soc = soc
        self.config = soc.config

    @property
    def ctx(self):
        """The simulator context, for testbenches that reach past the machine interface."""
        return self._ctx

    @property
    def cycle(self):
        return self._ctx.get(self.soc.cycle)

    async def _drive_error_window(self, index, value):
        window = self.soc.ddr_ctrl.windows[index]
        if value is None:
            self._ctx.set(window.enable, 0)
        else:
            self._ctx.set(window, value)

    async def tick(self, n=1):
        if not isinstance(n, int) or n < 0:
            raise ValueError(f"Cycle count must be a non-negative integer, not {n!r}")
        if n:
            await self._ctx.tick().repeat(n)

    async def mmio_read(self, addr):
        self._check_mmio(addr)
        ctx, port = self._ctx, self.soc.mmio
        await _put(ctx, port.ar, {"addr": addr, "prot": 0})
        payload = await _get(ctx, port.r)
        check_resp(payload.resp, "MMIO read", addr)
        return payload.data

    async def mmio_write(self, addr, value):
        self._check_mmio(addr)
        if not isinstance(value, int) or not 0 <= value < 1 << 32:
            raise ValueError(f"MMIO value must be a 32-bit unsigned integer, not {value!r}")
        ctx, port = self._ctx, self.soc.mmio
        # AW and W offered together, each withdrawn once taken, as a real manager does.
        ctx.set(port.aw.payload, {"addr": addr, "prot": 0})
        ctx.set(port.w.payload, {"data": value, "strb": 0xF})
        ctx.set(port.aw.valid, 1)
        ctx.set(port.w.valid, 1)
        pending = {port.aw, port.w}
        while pending:
            _, _, aw_ready, w_ready = await ctx.tick().sample(port.aw.ready, port.w.ready)
            for channel, ready in ((port.aw, aw_ready), (port.w, w_ready)):
                if channel in pending and ready:
                    ctx.set(channel.valid, 0)
                    pending.discard(channel)
        payload = await _get(ctx, port.b)
        check_resp(payload.resp, "MMIO write", addr)

    async def load(self, addr, size, *, cacheable=True):
        self._check_range(addr, size)
        run = spans.current_run()
        start = self.cycle if run is not None else 0
        out = bytearray()
        for word_addr, offset, length in split_words(addr, size, self.config.bytes_per_beat):
            strb = ((1 << length) - 1) << offset
            data = await self._cpu_access(word_addr, write=False, data=0, strb=strb,
                                          cacheable=cacheable)
            out += data.to_bytes(self.config.bytes_per_beat, "little")[offset:offset + length]
        if run is not None:
            run.cpu("load", addr, size, bool(cacheable), start, self.cycle)
        return bytes(out)

    async def store(self, addr, data, *, cacheable=True):
        data = bytes(data)
        self._check_range(addr, len(data))
        run = spans.current_run()
        start = self.cycle if run is not None else 0
        pos = 0
        for word_addr, offset, length in split_words(addr, len(data), self.config.bytes_per_beat):
            strb = ((1 << length) - 1) << offset
            word = int.from_bytes(bytes(offset) + data[pos:pos + length], "little")
            await self._cpu_access(word_addr, write=True, data=word, strb=strb,
                                   cacheable=cacheable)
            pos += length
        if run is not None:
            run.cpu("store", addr, len(data), bool(cacheable), start, self.cycle)

    async def _cpu_access(self, addr, *, write, data, strb, cacheable):
        ctx, port = self._ctx, self.soc.cpu
        await _put(ctx, port.req, {"addr": addr, "write": int(write), "data": data,
                                   "strb": strb, "cacheable": int(cacheable)})
        payload = await _get(ctx, port.rsp)
        if payload.error:
            raise BusError(f"CPU {'store' if write else 'load'} at {addr:#x} was answered with "
                           f"a bus error")
        return payload.data

    def irq_pending(self, line):
        self._check_irq_line(line)
        return bool(self._ctx.get(self.soc.irq[line]))

    async def wait_irq(self, line, *, timeout_cycles):
        self._check_irq_line(line)
        if not isinstance(timeout_cycles, int) or timeout_cycles < 0:
            raise ValueError(f"Timeout must be a non-negative number of cycles, "
                             f"not {timeout_cycles!r}")
        await wait_irq_sampled(self._ctx, self.soc.irq[line], line=line,
                               timeout_cycles=timeout_cycles, cycle=lambda: self.cycle)

    async def peek(self, addr, n):
        return await ddr_peek(self._ctx, self.soc.ddr, addr, n)

    async def poke(self, addr, data):
        await ddr_poke(self._ctx, self.soc.ddr, addr, bytes(data))


async def wait_irq_sampled(ctx, irq, *, line, timeout_cycles, cycle=None):
    """:meth:`Machine.wait_irq` on a simulator context: return after the first of the next
    ``timeout_cycles`` clock edges that samples the signal ``irq`` (interrupt ``line``)
    asserted, or raise :class:`MachineTimeout` (``cycle()`` gives the cycle to report)."""
    for _ in range(timeout_cycles):
        _, _, asserted = await ctx.tick().sample(irq)
        if asserted:
            return
    at = f" (cycle {cycle()})" if cycle is not None else ""
    raise MachineTimeout(f"IRQ {line} not raised within {timeout_cycles} cycles{at}")


async def _put(ctx, stream, payload):
    """Offer one payload on a stream this side drives, and wait until it is taken."""
    ctx.set(stream.payload, payload)
    ctx.set(stream.valid, 1)
    await ctx.tick().until(stream.ready)
    ctx.set(stream.valid, 0)


async def _get(ctx, stream):
    """Take one payload from a stream the other side drives."""
    ctx.set(stream.ready, 1)
    payload, = await ctx.tick().sample(stream.payload).until(stream.valid)
    ctx.set(stream.ready, 0)
    return payload


def monitor_process(soc, run):
    """The testbench that records the probes of ``soc`` (built with ``probes=True``) into
    ``run``: after each clock edge, from the ``probe`` port's registers, the handshakes of
    its channels (and the payload of each that fired) and the changes of its levels, as the
    edge sampled them (:mod:`~dmabuf_soc.sim.trace.probes`), as the compiled models' monitor
    reads them. (Sampling the probes before the edge would evaluate an expression of them all
    at every edge: half as long again as the simulation.)"""
    from ...sim.trace.probes import payload_member, probe_port_layout
    from ..trace.record import BeatFilter
    _, level_places, _ = probe_port_layout(run.channels, run.levels)
    base = level_places[0][0] if level_places else 0
    levels = [(offset - base, (1 << width) - 1) for offset, width in level_places]
    payloads = [getattr(soc.probe, payload_member(channel)) if channel.fields else None
                for channel in run.channels]
    level_base = len(run.channels)
    beats = BeatFilter(run.channels)
    events = run.events

    async def testbench(ctx):
        before = None
        # The SoC's cycle counter as the next edge takes it: it counts every edge (nothing
        # resets it), so it is read once. One trigger serves every edge.
        cycle = ctx.get(soc.cycle)
        async for _ in ctx.tick():
            fire = ctx.get(soc.probe.handshake)
            while fire:
                low = fire & -fire
                index = low.bit_length() - 1
                fire ^= low
                payload = 0 if payloads[index] is None else ctx.get(payloads[index])
                if beats.keep(index, payload):
                    events.append((cycle, index, payload))
            now = ctx.get(soc.probe.levels)
            if now != before:
                for index, (shift, mask) in enumerate(levels):
                    value = (now >> shift) & mask
                    if before is None or value != (before >> shift) & mask:
                        events.append((cycle, level_base + index, value))
                before = now
            cycle += 1
    return testbench


def simulate(scenario, *, config=None, soc=None, models=(), vcd=None, gtkw=None, traces=(),
             trace=None):
    """Run ``async def scenario(machine)`` on a simulated SoC and return what it returns.

    Parameters
    ----------
    scenario : async callable
        Receives a :class:`PysimMachine`; the simulation ends when it returns.
    config : SocConfig, optional
        Parameters of the SoC to build (the defaults if omitted). Ignored when ``soc`` is
        given.
    soc : Soc, optional
        A SoC top already built (e.g. with extra test hooks).
    models : callable or iterable
        Bus-functional models and protocol checkers (anything with ``add_to(sim)``) to run
        alongside; a callable receives the SoC and returns them, for models that attach to
        the SoC's ports.
    vcd : str or path, optional
        Write a VCD waveform of the whole run there.
    trace : Trace, optional
        Trace the run's transactions into a new run of this
        :class:`~dmabuf_soc.sw.trace.record.Trace` (:func:`monitor_process`); the SoC is
        then built with ``probes=True`` (a ``soc`` given must have been).
    """
    if soc is None:
        soc = Soc(config if config is not None else SocConfig(), probes=trace is not None)
    elif trace is not None and soc.probes is None:
        raise ValueError("A traced simulation needs a SoC built with probes=True")
    sim = Simulator(soc)
    sim.add_clock(CLOCK_PERIOD)
    for model in (models(soc) if callable(models) else models):
        model.add_to(sim)
    run = None
    if trace is not None:
        run = trace.begin_run("pysim", *soc.probes, bytes_per_beat=soc.config.bytes_per_beat)
        sim.add_testbench(monitor_process(soc, run), background=True)
    outcome = {}

    async def testbench(ctx):
        machine = PysimMachine(ctx, soc)
        if run is None:
            outcome["result"] = await scenario(machine)
            return
        run.cycle = lambda: machine.cycle
        run.start = machine.cycle
        with spans.running(run):
            try:
                outcome["result"] = await scenario(machine)
            finally:
                run.end = machine.cycle

    sim.add_testbench(testbench)
    with (sim.write_vcd(vcd, gtkw, traces=traces) if vcd is not None
          else contextlib.nullcontext()):
        sim.run()
    return outcome["result"]
