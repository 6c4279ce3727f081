"""CPU data cache: hit latency and throughput, miss penalty, cost of cleaning 4 KiB.

Measured on the cache core's RTL in simulation, in front of the DDR model (read latency 20,
write latency 10, one beat per cycle each way). Cycle counts are edges of the clock between
a request being taken and its answer (for accesses), or between ``maint.go`` being taken and
``maint.done`` (for maintenance, so they include the wait for the last write response).
"""

from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.sim import Simulator

from ...hw.cache.core import CacheCore, MaintenanceOp, MaintenanceScope
from ...hw.cache.geometry import CacheGeometry
from ...sim.cache.cpu_port import CpuPortDriver
from ...hw.config import Bank, SocConfig
from ...sim.ddr.model import DDRModel

__all__ = ["run"]

PAGE = 4096
STREAM_HITS = 64


def _build(geometry, config):
    m = Module()
    m.submodules.cache = cache = CacheCore(geometry, id_width=config.id_width)
    m.submodules.ddr = ddr = DDRModel(config, sid_width=0)
    wiring.connect(m, cache.bus, ddr.bus)
    cycle = Signal(32)
    m.d.sync += cycle.eq(cycle + 1)
    return m, cache, cycle


#: The backends this benchmark runs on.
BACKENDS = ("pysim",)


def run(*, backend="pysim", progress=None):
    if backend != "pysim":
        raise ValueError(f"The cache benchmark runs on the 'pysim' backend only, "
                         f"not {backend!r}")
    geometry = CacheGeometry()
    # One small bank keeps elaboration quick; latencies are the SoC's defaults.
    config = SocConfig(banks=(Bank("low", base=0x8000_0000, size=64 * 1024),))
    base = config.banks[0].base
    m, cache, cycle = _build(geometry, config)
    sim = Simulator(m)
    sim.add_clock(1e-8)
    cpu = CpuPortDriver(cache.cpu, cycle)
    cpu.add_to(sim)
    line = geometry.line_size
    results = {}
    steps = 5

    def report(done, what):
        if progress is not None:
            progress(done, steps, what)

    async def maintain(ctx, op, start, end):
        ctx.set(cache.maint.op, op)
        ctx.set(cache.maint.scope, MaintenanceScope.RANGE)
        ctx.set(cache.maint.start, start)
        ctx.set(cache.maint.end, end)
        ctx.set(cache.maint.go, 1)
        _, _, go_at = await ctx.tick().sample(cycle)
        ctx.set(cache.maint.go, 0)
        done_at, = await ctx.tick().sample(cycle).until(cache.maint.done)
        # ``done`` was high in the cycle before the edge numbered ``done_at``.
        return done_at - go_at

    async def testbench(ctx):
        # A miss on a set with a free way (clean victim): refill, then replay.
        miss = cpu.issue(base)
        await cpu.wait(ctx, miss)
        hit = cpu.issue(base + 8)
        await cpu.wait(ctx, hit)
        results["hit_latency_cycles"] = hit.responded_at - hit.accepted_at
        results["miss_latency_cycles"] = miss.responded_at - miss.accepted_at
        results["miss_penalty_cycles"] = (results["miss_latency_cycles"] -
                                          results["hit_latency_cycles"])
        report(1, "hit and miss latency")

        stream = [cpu.issue(base + 8 * (n % geometry.words_per_line), write=n % 3 == 0,
                            data=n) for n in range(STREAM_HITS)]
        await cpu.wait(ctx)
        span = stream[-1].responded_at - stream[0].accepted_at
        results["hits_per_cycle_streaming"] = round(STREAM_HITS / span, 3)
        report(2, "streaming hits")

        # 4 KiB of clean lines, all present: every line is checked, none written back.
        page = base + PAGE
        for addr in range(page, page + PAGE, line):
            cpu.issue(addr)
        await cpu.wait(ctx)
        results["clean_4k_cycles_no_dirty"] = await maintain(ctx, MaintenanceOp.CLEAN,
                                                             page, page + PAGE)
        report(3, "clean 4 KiB, no dirty line")

        for addr in range(page, page + PAGE, line):
            cpu.issue(addr, write=True, data=addr)
        await cpu.wait(ctx)
        results["clean_4k_cycles_all_dirty"] = await maintain(ctx, MaintenanceOp.CLEAN,
                                                              page, page + PAGE)
        report(4, "clean 4 KiB, all lines dirty")

        bursts = PAGE // line
        reference = bursts * geometry.words_per_line   # one W beat per cycle
        results["clean_4k_reference_cycles"] = reference
        results["clean_4k_all_dirty_ratio"] = round(
            results["clean_4k_cycles_all_dirty"] / reference, 3)
        report(5, "done")

    sim.add_testbench(testbench)
    sim.run()
    results["config"] = {
        "cache_size": geometry.size,
        "ways": geometry.ways,
        "line_size": geometry.line_size,
        "data_width": geometry.data_width,
        "memory_read_latency": config.read_latency,
        "memory_write_latency": config.write_latency,
        "memory_beats_per_cycle": 1,
        "reference": f"{PAGE // line} write-back bursts of {geometry.words_per_line} beats at one "
                     f"beat per cycle",
    }
    return results
