"""Simulation harness for one DMA channel: the engine, a memory, a protocol checker.

Used by the tests and by ``dmabuf-soc bench dma``. The memory is either the bus-functional
:class:`~dmabuf_soc.sim.bus.subordinate.AXI4Subordinate` over a
:class:`~dmabuf_soc.sim.bus.memory.ReferenceMemory` (random latencies, gaps, reordering, injected
errors) or the gateware :class:`~dmabuf_soc.sim.ddr.model.DDRModel` (the SoC's memory timing)::

    harness = EngineHarness(memory="ddr")

    async def testbench(ctx):
        await harness.poke(ctx, 0x8000_0000, b"hello")
        await harness.register_transfer(ctx, 0x8000_0000, 0x8000_1003, 5)

    harness.run(testbench)
    harness.checker.assert_clean(idle=True)
"""

import random

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.sim import Simulator

from ..harness import Harness
from ..bus.checker import AXI4Checker
from ..bus.subordinate import AXI4Subordinate
from ..bus.memory import ReferenceMemory
from ...hw.config import SocConfig
from ..ddr.backdoor import peek as ddr_peek, poke as ddr_poke
from ..ddr.model import DDRModel
from ...hw.dma.engine import DMAEngine

__all__ = ["EngineHarness"]


class EngineHarness(Harness):
    """A :class:`DMAEngine` on a memory, with an :class:`AXI4Checker` recording its port; a run
    fails if the engine's data buffer or a transfer queue is ever overrun
    (``DMAEngine.buffer_overrun``, ``DMAEngine.queue_overrun``).

    Parameters
    ----------
    memory : ``"reference"`` or ``"ddr"``
    config : SocConfig
        Bus widths, banks and (for ``"ddr"``) latencies.
    rng : random.Random
        For the reference memory's gaps and reordering.
    read_latency, write_latency : int
        Reference memory latencies (``"ddr"`` takes them from ``config``).
    ready_gap, valid_gap : float
        Reference memory stall probabilities.
    reorder : bool
        Reference memory answers different IDs out of order.
    error : callable or None
        ``error(write, addr)`` for the reference memory.
    **engine_params
        Passed to :class:`DMAEngine`.
    """
    def __init__(self, *, memory="reference", config=None, rng=None, read_latency=20,
                 write_latency=10, ready_gap=0.0, valid_gap=0.0, reorder=False, error=None,
                 **engine_params):
        if memory not in ("reference", "ddr"):
            raise ValueError(f"Memory must be 'reference' or 'ddr', not {memory!r}")
        self.config = config = config or SocConfig()
        self.engine = DMAEngine(addr_width=config.addr_width, data_width=config.data_width,
                                id_width=config.id_width, sid_width=config.sid_width,
                                **engine_params)
        m = Module()
        m.submodules.engine = self.engine
        self.ddr = None
        self.memory = None
        if memory == "ddr":
            self.ddr = DDRModel(config)
            m.submodules.ddr = self.ddr
            wiring.connect(m, self.engine.bus, self.ddr.bus)
        self.sim = Simulator(m)
        self.sim.add_clock(1e-8)
        if memory == "reference":
            self.memory = ReferenceMemory()
            self.subordinate = AXI4Subordinate(
                self.engine.bus, self.memory, rng=rng or random.Random(0),
                read_latency=read_latency, write_latency=write_latency, ready_gap=ready_gap,
                valid_gap=valid_gap, reorder=reorder, error=error,
                max_outstanding=config.max_outstanding)
            self.subordinate.add_to(self.sim)
        self.checker = AXI4Checker(self.engine.bus, name="dma", record=True)
        self.checker.add_to(self.sim)
        #: ``(checker cycle, name)`` of each ``done``, ``done_irq`` and ``error`` pulse.
        self.events = []
        self.sim.add_process(self._watch)

    async def _watch(self, ctx):
        e = self.engine
        cycle = 0
        async for _, _, done, done_irq, error, overrun, queue_overrun in ctx.tick().sample(
                e.done, e.done_irq, e.error, e.buffer_overrun, e.queue_overrun):
            cycle += 1
            if overrun:
                raise AssertionError(f"DMA data buffer overrun at cycle {cycle}: the read "
                                     f"credits let the realigner write a beat with no room")
            if queue_overrun:
                raise AssertionError(f"DMA transfer queue overrun at cycle {cycle}: a transfer "
                                     f"was dispatched to a full queue")
            for name, value in (("done", done), ("done_irq", done_irq), ("error", error)):
                if value:
                    self.events.append((cycle, name))

    def count(self, name):
        """How many ``name`` pulses were seen."""
        return sum(1 for _, event in self.events if event == name)

    async def poke(self, ctx, addr, data):
        """Write memory without bus cycles."""
        if self.ddr is not None:
            await ddr_poke(ctx, self.ddr, addr, data)
        else:
            self.memory.write(addr, data)

    async def peek(self, ctx, addr, n):
        """Read memory without bus cycles."""
        if self.ddr is not None:
            return await ddr_peek(ctx, self.ddr, addr, n)
        return self.memory.read(addr, n)

    @staticmethod
    async def pulse(ctx, signal):
        ctx.set(signal, 1)
        await ctx.tick()
        ctx.set(signal, 0)

    async def register_transfer(self, ctx, src, dst, length, *, timeout=1_000_000):
        """Program one register-mode transfer, start it and wait until the channel is idle."""
        e = self.engine
        ctx.set(e.src, src)
        ctx.set(e.dst, dst)
        ctx.set(e.length, length)
        await self.pulse(ctx, e.go)
        await self.wait_idle(ctx, timeout=timeout)

    async def start_chain(self, ctx, cur_desc, tail_desc):
        """Write the current-descriptor pointer, then the tail pointer."""
        e = self.engine
        ctx.set(e.cur_desc, cur_desc)
        await self.pulse(ctx, e.cur_desc_write)
        await self.extend_chain(ctx, tail_desc)

    async def extend_chain(self, ctx, tail_desc):
        """Write the tail pointer."""
        ctx.set(self.engine.tail_desc, tail_desc)
        await self.pulse(ctx, self.engine.tail_write)

    async def wait_idle(self, ctx, *, timeout=1_000_000):
        """Wait until the channel is neither busy nor resetting, and the bus is quiet."""
        e = self.engine
        for _ in range(timeout):
            if not ctx.get(e.busy) and not ctx.get(e.resetting) and ctx.get(e.quiet):
                return
            await ctx.tick()
        raise TimeoutError(f"DMA channel still busy after {timeout} cycles")

    def bursts(self, channel, *, id=0, since=0):
        """``(address, beats)`` of the bursts on ``"ar"`` or ``"aw"`` with ``id``, accepted
        at or after checker cycle ``since``."""
        return [(fields["addr"], fields["len"] + 1) for cycle, ch, fields in self.checker.log
                if ch == channel and fields["id"] == id and cycle >= since]
