"""DMA engine bus efficiency: 64 KiB copies in one descriptor, in 16 scattered 4 KiB descriptors, and programmed segment by segment in register mode.

All figures are measured on the RTL with the DDR model as memory (``SocConfig`` latencies:
read 20 cycles, write 10; bursts of 16 beats of 8 bytes), with the AXI4 protocol checker on the
engine's port. Efficiency is bytes per cycle over the bus limit (8 bytes per cycle on 64 bits),
counted from the tail-pointer write (or the first MMIO write, in driver runs) to the
completion of the last transfer.
"""

import random

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.sim import Simulator

from ...sim.bus.checker import AXI4Checker
from ...hw.config import SocConfig
from ...sim.ddr.backdoor import peek as ddr_peek, poke as ddr_poke
from ...sim.ddr.model import DDRModel
from ...hw.dma.channel import DMA_RDL, DMAChannel
from ...hw.dma.descriptor import pack_descriptor
from ...hw.dma.engine import READ_ID_DATA
from ...sim.dma.harness import EngineHarness
from ...hw.regs import block_spec, compile_rdl
from ..dma.channel import DmaChannel
from ..dma.testing import ChannelMachine
from ..regs import RegisterBank

COPY_BYTES = 64 * 1024
SEGMENT = 4096
SRC, DST, DESC = 0x8000_0000, 0x1_0000_0000, 0x800F_0000


def _scattered_segments(rng):
    """16 pairs of 4 KiB source and destination pages, shuffled."""
    count = COPY_BYTES // SEGMENT
    srcs = rng.sample(range(2 * count), count)
    dsts = rng.sample(range(2 * count), count)
    return [(SRC + SEGMENT * s, DST + SEGMENT * d) for s, d in zip(srcs, dsts)]


def _engine_run(segments, data):
    """Run a chain of ``segments`` on the bare engine; returns (cycles, first read latency,
    correct)."""
    harness = EngineHarness(memory="ddr")
    result = {}

    async def testbench(ctx):
        e = harness.engine
        addrs = [DESC + 64 * index for index in range(len(segments))]
        for index, (addr, (src, dst, length)) in enumerate(zip(addrs, segments)):
            await harness.poke(ctx, src, data[:length])
            following = addrs[index + 1] if index + 1 < len(addrs) else 0
            await harness.poke(ctx, addr, pack_descriptor(next=following, src=src, dst=dst,
                                                         length=length, irq_on_complete=True))
        ctx.set(e.cur_desc, addrs[0])
        await harness.pulse(ctx, e.cur_desc_write)
        ctx.set(e.tail_desc, addrs[-1])
        ctx.set(e.tail_write, 1)
        start = harness.checker.cycle + 1        # the edge that takes the tail write
        await ctx.tick()
        ctx.set(e.tail_write, 0)
        await ctx.tick().until(e.completed == len(segments))
        result["cycles"] = harness.checker.cycle - start
        result["first_read"] = min(c for c, ch, f in harness.checker.log
                                   if ch == "ar" and f["id"] == READ_ID_DATA) - start
        await harness.wait_idle(ctx)
        result["correct"] = all([
            await harness.peek(ctx, dst, length) == data[:length]
            for _, dst, length in segments])

    harness.run(testbench)
    harness.checker.assert_clean(idle=True)
    return result


def _driver_run(segments, data, *, use_descriptors):
    """Move ``segments`` with the driver through the channel's registers; returns (cycles,
    MMIO writes, correct)."""
    config = SocConfig()
    channel = DMAChannel(stream_id=0)
    ddr = DDRModel(config)
    m = Module()
    m.submodules.channel = channel
    m.submodules.ddr = ddr
    wiring.connect(m, channel.bus, ddr.bus)
    sim = Simulator(m)
    sim.add_clock(1e-8)
    checker = AXI4Checker(channel.bus, name="dma")
    checker.add_to(sim)
    spec = block_spec(compile_rdl(DMA_RDL, top="dma_channel"))
    result = {}

    async def peek(ctx, addr, n):
        return await ddr_peek(ctx, ddr, addr, n)

    async def poke(ctx, addr, data):
        await ddr_poke(ctx, ddr, addr, data)

    async def testbench(ctx):
        machine = ChannelMachine(ctx, channel, peek=peek, poke=poke,
                                 clock=lambda: checker.cycle)
        chan = DmaChannel(machine, RegisterBank(machine, spec), desc_base=DESC,
                          desc_count=32, irq_line=0, use_descriptors=use_descriptors)
        for src, _, length in segments:
            await machine.poke(src, data[:length])
        await chan.configure()
        tx = chan.prep_sg([(dst, n) for _, dst, n in segments],
                          [(src, n) for src, _, n in segments])
        chan.submit(tx)
        writes, start = chan.mmio_writes, machine.cycle
        await chan.issue_pending()
        await tx.completion.wait()
        result["cycles"] = machine.cycle - start
        result["mmio_writes"] = chan.mmio_writes - writes
        result["correct"] = all([await machine.peek(dst, n) == data[:n]
                                 for _, dst, n in segments])

    sim.add_testbench(testbench)
    sim.run()
    checker.assert_clean(idle=True)
    return result


#: The backends this benchmark runs on.
BACKENDS = ("pysim",)


def run(*, backend="pysim", progress=None):
    if backend != "pysim":
        raise ValueError(f"The DMA benchmark runs on the 'pysim' backend, not {backend!r}")
    config = SocConfig()
    rng = random.Random(2024)
    data = rng.randbytes(COPY_BYTES)
    bus_limit = config.bytes_per_beat
    steps = 4

    def step(done, what):
        if progress is not None:
            progress(done, steps, what)

    step(0, "64 KiB copy, one descriptor")
    copy = _engine_run([(SRC, DST, COPY_BYTES)], data)
    step(1, "64 KiB copy, 16 scattered 4 KiB descriptors")
    pages = _scattered_segments(rng)
    sg = _engine_run([(src, dst, SEGMENT) for src, dst in pages], data)
    step(2, "16 scattered 4 KiB segments, driver, scatter-gather mode")
    sg_driver = _driver_run([(src, dst, SEGMENT) for src, dst in pages], data,
                            use_descriptors=True)
    step(3, "16 scattered 4 KiB segments, driver, register mode")
    register = _driver_run([(src, dst, SEGMENT) for src, dst in pages], data,
                           use_descriptors=False)
    step(4, "done")

    def efficiency(cycles):
        return round(COPY_BYTES / cycles / bus_limit, 4)

    return {
        "bus_bytes_per_cycle": bus_limit,
        "read_latency": config.read_latency,
        "write_latency": config.write_latency,
        "max_burst_beats": 16,
        "copy_bytes": COPY_BYTES,
        "copy_cycles": copy["cycles"],
        "copy_efficiency": efficiency(copy["cycles"]),
        "sg_4k_cycles": sg["cycles"],
        "sg_4k_efficiency": efficiency(sg["cycles"]),
        "first_read_latency_cycles": copy["first_read"],
        "first_read_latency_goal": 2 * config.read_latency + 10,
        "sg_driver_cycles": sg_driver["cycles"],
        "sg_driver_efficiency": efficiency(sg_driver["cycles"]),
        "sg_mode_mmio_writes": sg_driver["mmio_writes"],
        "register_mode_cycles": register["cycles"],
        "register_mode_efficiency": efficiency(register["cycles"]),
        "register_mode_mmio_writes": register["mmio_writes"],
        "data_correct": all(r["correct"] for r in (copy, sg, sg_driver, register)),
    }
