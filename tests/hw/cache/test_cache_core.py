"""The cache core (hw/cache/core.py) against its reference model (sim/cache/model.py).

The core sits between a :class:`CpuPortDriver` and an :class:`AXI4Subordinate`, with the
AXI4 protocol checker and a burst monitor on its memory port. Every CPU access and every
maintenance operation is replayed on the model in the order the core took them (by cycle),
and the load data, the bursts on the bus (addresses and write data), the counters and, at
the end, memory must all agree.
"""

import random

import pytest
from amaranth.hdl import ClockDomain, Module, Signal
from amaranth.sim import Simulator

from dmabuf_soc.hw.bus.axi import Resp
from dmabuf_soc.sim.bus.checker import AXI4Checker
from dmabuf_soc.sim.bus.subordinate import AXI4Subordinate
from dmabuf_soc.sim.bus.memory import ReferenceMemory
from dmabuf_soc.hw.cache import plru
from dmabuf_soc.hw.cache.core import CacheCore, MaintenanceOp, MaintenanceScope
from dmabuf_soc.hw.cache.geometry import CacheGeometry
from dmabuf_soc.sim.cache.model import CacheModel
from dmabuf_soc.sim.cache.cpu_port import BurstMonitor, CpuPortDriver

BASE = 0x8000_0000
COUNTERS = ("hits", "misses", "writebacks", "lines_cleaned", "lines_invalidated")


class CoreBench:
    """A :class:`CacheCore` wired to simulation models, and its reference model."""

    def __init__(self, geometry=None, *, seed=0, read_latency=3, write_latency=2,
                 bus_gap=0.0, cpu_gap=0.0, error=None):
        self.geometry = geometry = geometry or CacheGeometry()
        self.dut = dut = CacheCore(geometry)
        m = Module()
        m.submodules.dut = dut
        m.domains.sync = self.domain = ClockDomain("sync")
        # The cycle count goes on through a reset, so that events before and after it order.
        self.cycle = Signal(32, reset_less=True)
        m.d.sync += self.cycle.eq(self.cycle + 1)
        self.sim = Simulator(m)
        self.sim.add_clock(1e-8)
        rng = random.Random(seed)
        self.memory = ReferenceMemory()
        self.subordinate = AXI4Subordinate(dut.bus, self.memory, rng=rng,
                                           read_latency=read_latency,
                                           write_latency=write_latency, ready_gap=bus_gap,
                                           valid_gap=bus_gap, error=error)
        self.checker = AXI4Checker(dut.bus, name="cache")
        self.monitor = BurstMonitor(dut.bus)
        self.cpu = CpuPortDriver(dut.cpu, self.cycle, rng=rng, valid_gap=cpu_gap,
                                 ready_gap=cpu_gap)
        for model in (self.subordinate, self.checker, self.monitor, self.cpu):
            model.add_to(self.sim)
        self.model = CacheModel(geometry, ReferenceMemory())
        self.expected_reads = []
        self.expected_writes = []

    def dma_write(self, addr, data):
        """A device writes memory behind the cache's back."""
        self.memory.write(addr, data)
        self.model.memory.write(addr, data)

    async def start_maintenance(self, ctx, op, scope, *, start=0, end=0, set=0, way=0):
        """Pulse ``go``; returns the cycle number of the edge that took it."""
        maint = self.dut.maint
        ctx.set(maint.op, op)
        ctx.set(maint.scope, scope)
        ctx.set(maint.start, start)
        ctx.set(maint.end, end)
        ctx.set(maint.set, set)
        ctx.set(maint.way, way)
        ctx.set(maint.go, 1)
        _, _, cycle = await ctx.tick().sample(self.cycle)
        ctx.set(maint.go, 0)
        return cycle

    async def wait_maintenance(self, ctx):
        """Wait for ``done``; returns the cycle number of the edge after it."""
        cycle, = await ctx.tick().sample(self.cycle).until(self.dut.maint.done)
        return cycle

    def replay(self, events):
        """Run ``events`` on the model in the order the core took them and check the CPU's
        answers. ``events`` are accesses (:class:`CpuAccess`) and ``(cycle, kwargs)`` pairs
        of maintenance operations."""
        def key(event):
            return (event[0], 1) if isinstance(event, tuple) else (event.accepted_at, 0)
        for event in sorted(events, key=key):
            if isinstance(event, tuple):
                outcome = self.model.maintain(**event[1])
            else:
                outcome = self.model.access(event.addr, write=event.write, data=event.data,
                                            strb=event.strb, cacheable=event.cacheable)
                assert not event.error, f"unexpected bus error for {event}"
                if not event.write:
                    assert event.rsp_data == outcome.data, \
                        f"load {event.addr:#x}: cache {event.rsp_data:#x}, model {outcome.data:#x}"
            self.expected_reads += outcome.reads
            self.expected_writes += outcome.writes

    async def reset(self, ctx, cycles=1):
        """Hold ``rst`` for ``cycles`` edges (with the bus quiet); the model is reset too.
        Returns the cycle number of the first edge out of reset."""
        ctx.set(self.domain.rst, 1)
        for _ in range(cycles):
            await ctx.tick()
        ctx.set(self.domain.rst, 0)
        self.model.reset()
        return ctx.get(self.cycle)

    def check_bus_and_counters(self, ctx):
        assert self.monitor.reads == self.expected_reads
        assert self.monitor.writes == self.expected_writes
        assert {name: ctx.get(getattr(self.dut.counters, name)) for name in COUNTERS} == \
            self.model.counters

    def run(self, testbench):
        self.sim.add_testbench(testbench)
        self.sim.run()
        self.checker.assert_clean(idle=True)


def line_addr(geometry, tag, index, word=0):
    return BASE + geometry.line_addr(tag, index) + word * geometry.bytes_per_word


# Geometry and PLRU ---------------------------------------------------------------------------

def test_geometry_defaults():
    g = CacheGeometry()
    assert (g.sets, g.words_per_line, g.offset_bits, g.index_bits, g.tag_bits) == \
        (32, 8, 6, 5, 29)
    assert g.split(0x8000_1234 + 8) == (0x8000_1234 >> 11, (0x123C >> 6) % 32, 7)


@pytest.mark.parametrize("kwargs, error", [
    (dict(size=6000), ValueError),
    (dict(ways=3), ValueError),
    (dict(line_size=8), ValueError),
    (dict(size=128, ways=4, line_size=64), ValueError),
    (dict(data_width=128), ValueError),
    (dict(ways="4"), TypeError),
])
def test_geometry_checks(kwargs, error):
    with pytest.raises(error):
        CacheGeometry(**kwargs)


def test_core_rejects_non_geometry():
    with pytest.raises(TypeError, match="CacheGeometry"):
        CacheCore(8192)


@pytest.mark.parametrize("ways", [2, 4, 8])
def test_plru_victim_is_least_recent_after_touching_all(ways):
    bits = 0
    order = list(range(ways))
    random.Random(ways).shuffle(order)
    for way in order:
        bits = plru.touch(bits, way, ways)
    # A tree PLRU always spares the most recent way; touching all ways in order leaves the
    # first one touched as the victim.
    assert plru.victim(bits, ways) == order[0]
    assert plru.victim(bits, ways) != order[-1]


# Hits ----------------------------------------------------------------------------------------

def test_hits_one_cycle_latency_one_per_cycle():
    bench = CoreBench()
    g = bench.geometry

    async def testbench(ctx):
        first = bench.cpu.issue(line_addr(g, 5, 3))
        await bench.cpu.wait(ctx, first)
        hits = [bench.cpu.issue(line_addr(g, 5, 3, word), write=word % 2, data=word)
                for _ in range(4) for word in range(g.words_per_line)]
        await bench.cpu.wait(ctx)
        accepted = [a.accepted_at for a in hits]
        assert accepted == list(range(accepted[0], accepted[0] + len(hits)))
        assert all(a.responded_at == a.accepted_at + 1 for a in hits)
        bench.replay([first] + hits)
        bench.check_bus_and_counters(ctx)

    bench.run(testbench)


@pytest.mark.parametrize("gap", [0.0, 0.5])
def test_back_to_back_stores_and_loads_of_one_word(gap):
    # Each load is looked up while the store before it is still on its way to the memories.
    bench = CoreBench(seed=7, cpu_gap=gap)
    g = bench.geometry
    rng = random.Random(7)

    async def testbench(ctx):
        addrs = [line_addr(g, 5, 3, 2), line_addr(g, 6, 3, 2)]
        events = [bench.cpu.issue(addr) for addr in addrs]
        for _ in range(40):
            addr = rng.choice(addrs)
            events += [bench.cpu.issue(addr, write=True, data=rng.getrandbits(64),
                                       strb=rng.getrandbits(8)),
                       bench.cpu.issue(addr)]
        await bench.cpu.wait(ctx)
        bench.replay(events)
        bench.check_bus_and_counters(ctx)

    bench.run(testbench)


def test_miss_right_behind_a_store_hit_writes_the_stored_line_back():
    # The store's dirty bit and data land a cycle after its lookup, as the miss looks up.
    bench = CoreBench(CacheGeometry(size=256, ways=1, line_size=16))
    g = bench.geometry

    async def testbench(ctx):
        first = bench.cpu.issue(line_addr(g, 5, 3))
        await bench.cpu.wait(ctx, first)
        store = bench.cpu.issue(line_addr(g, 5, 3, 1), write=True, data=0x1234_5678_9abc_def0)
        evict = bench.cpu.issue(line_addr(g, 6, 3))
        await bench.cpu.wait(ctx)
        assert evict.accepted_at == store.accepted_at + 1
        bench.replay([first, store, evict])
        assert bench.expected_writes, "the stored line must be written back"
        bench.check_bus_and_counters(ctx)

    bench.run(testbench)


def test_refill_error_answers_error_and_installs_nothing():
    bad = line_addr(CacheGeometry(), 7, 2)
    bench = CoreBench(error=lambda write, addr: Resp.SLVERR if addr == bad else None)

    async def testbench(ctx):
        failed = bench.cpu.issue(bad + 8)
        await bench.cpu.wait(ctx)
        assert failed.error
        again = bench.cpu.issue(bad + 16)
        good = bench.cpu.issue(line_addr(bench.geometry, 8, 2), write=True, data=5)
        await bench.cpu.wait(ctx)
        assert again.error and not good.error
        assert ctx.get(bench.dut.counters.misses) == 3
        assert ctx.get(bench.dut.counters.hits) == 0

    bench.run(testbench)


# Reset -------------------------------------------------------------------------------------

@pytest.mark.parametrize("geometry, rst_cycles", [
    (CacheGeometry(), 1),
    (CacheGeometry(), 3),
    (CacheGeometry(size=512, ways=2, line_size=32), 1),
    (CacheGeometry(size=256, ways=1, line_size=16), 2),
])
def test_warm_reset_empties_the_cache(geometry, rst_cycles):
    # Clean and dirty lines in every way of a few sets, then a reset in mid-run: no hit is
    # served from a stale line, dirty data is gone (the memory's is read), the counters and
    # the model start over, and accesses made during the reset sweep wait for it.
    bench = CoreBench(geometry, seed=11)
    g = bench.geometry
    dut = bench.dut
    indices = [0, 3 % g.sets, g.sets - 1]
    lines = [(0x40 + way, index) for index in indices for way in range(g.ways)]

    async def testbench(ctx):
        events = []
        for n, (tag, index) in enumerate(lines):
            events.append(bench.cpu.issue(line_addr(g, tag, index), write=n % 2, data=n))
        await bench.cpu.wait(ctx)
        await ctx.tick().repeat(4 * g.words_per_line)        # write-backs done
        bench.replay(events)
        bench.check_bus_and_counters(ctx)
        assert any(line.dirty for set_lines in bench.model.lines for line in set_lines)
        assert all(line.valid for index in indices for line in bench.model.lines[index])
        # A device rewrites every line the cache holds, so a stale hit would answer old data.
        for n, (tag, index) in enumerate(lines):
            bench.dma_write(line_addr(g, tag, index), bytes([0xa0 + n % 32]) * g.line_size)

        out_of_reset = await bench.reset(ctx, rst_cycles)
        bench.expected_reads, bench.expected_writes = [], []
        bench.monitor.reads.clear()
        bench.monitor.writes.clear()
        assert bench.model.counters == dict.fromkeys(COUNTERS, 0)
        assert all(not line.valid and not line.dirty
                   for set_lines in bench.model.lines for line in set_lines)
        after = [bench.cpu.issue(line_addr(g, tag, index, 1)) for tag, index in lines]
        # The sweep: busy, no access taken, for one cycle per set.
        busy = []
        for _ in range(g.sets):
            busy.append(ctx.get(dut.maint.busy))
            assert not ctx.get(dut.cpu.req.ready)
            await ctx.tick()
        assert all(busy)
        await bench.cpu.wait(ctx)
        assert ctx.get(dut.maint.busy) == 0
        assert after[0].accepted_at >= out_of_reset + g.sets
        await ctx.tick().repeat(4 * g.words_per_line)
        bench.replay(after)
        # Every access after the reset missed, and read what memory holds.
        assert bench.model.counters["misses"] == len(after)
        assert bench.model.counters["hits"] == 0
        assert bench.monitor.writes == []
        bench.check_bus_and_counters(ctx)

    bench.run(testbench)


def test_no_sweep_at_power_up():
    # The memories start invalid: the first access is taken at once, nothing is busy.
    bench = CoreBench()

    async def testbench(ctx):
        assert ctx.get(bench.dut.maint.busy) == 0
        first = bench.cpu.issue(line_addr(bench.geometry, 5, 3))
        await bench.cpu.wait(ctx, first)
        assert first.accepted_at <= 1
        bench.replay([first])
        bench.check_bus_and_counters(ctx)

    bench.run(testbench)


def test_maintenance_started_during_the_reset_sweep_runs_after_it():
    bench = CoreBench()
    g = bench.geometry

    async def testbench(ctx):
        events = [bench.cpu.issue(line_addr(g, 5, 3), write=True, data=1)]
        await bench.cpu.wait(ctx)
        await ctx.tick().repeat(8)
        bench.replay(events)
        out_of_reset = await bench.reset(ctx)
        kwargs = dict(op=MaintenanceOp.CLEAN_INVALIDATE, scope=MaintenanceScope.ALL)
        go_at = await bench.start_maintenance(ctx, **kwargs)
        assert ctx.get(bench.dut.maint.busy)
        done_at = await bench.wait_maintenance(ctx)
        assert done_at > out_of_reset + g.sets
        bench.replay([(go_at, kwargs)])
        # The reset emptied the cache: nothing left to clean, nothing invalidated.
        assert bench.expected_writes == []
        assert ctx.get(bench.dut.counters.lines_invalidated) == 0
        bench.check_bus_and_counters(ctx)

    bench.run(testbench)


def test_model_reset():
    memory = ReferenceMemory()
    model = CacheModel(CacheGeometry(), memory)
    model.access(BASE, write=True, data=7)
    model.access(BASE + 0x800)
    model.reset()
    assert model.counters == dict.fromkeys(COUNTERS, 0)
    assert model.lru == [0] * model.geometry.sets
    assert not any(line.valid or line.dirty for lines in model.lines for line in lines)
    # The dirty store is lost: memory never saw it.
    outcome = model.access(BASE)
    assert outcome.data == 0 and outcome.reads == [(BASE, model.geometry.words_per_line)]


# Random traffic against the model ------------------------------------------------------------

def random_traffic(bench, rng, steps):
    g = bench.geometry
    # A few tags per set over a few sets: plenty of conflicts, evictions and hits.
    tags = [0x40 + n for n in range(g.ways + 2)]
    indices = rng.sample(range(g.sets), min(g.sets, 3))
    region_end = line_addr(g, max(tags) + 1, 0)

    def random_addr():
        return line_addr(g, rng.choice(tags), rng.choice(indices),
                         rng.randrange(g.words_per_line))

    def random_maintenance():
        op = rng.choice(list(MaintenanceOp))
        scope = rng.choice([MaintenanceScope.RANGE] * 4 + [MaintenanceScope.SET_WAY] * 2 +
                           [MaintenanceScope.ALL])
        start = random_addr() + rng.randrange(-16, 16)
        end = start + rng.choice([0, 1, g.line_size, rng.randrange(1, 4 * g.line_size),
                                  rng.randrange(g.sets * g.line_size * 2)])
        return dict(op=op, scope=scope, start=start, end=end,
                    set=rng.choice(indices), way=rng.randrange(g.ways))

    async def testbench(ctx):
        for step in range(steps):
            kind = rng.choices(["accesses", "dma"], [6, 1])[0]
            if kind == "dma":
                await ctx.tick().repeat(bench.subordinate.write_latency + 4)
                addr = random_addr() + rng.randrange(8)
                bench.dma_write(addr, rng.randbytes(rng.randrange(1, 24)))
                continue
            events = []
            go_at = float("inf")
            for _ in range(rng.randrange(1, 12)):
                write = rng.random() < 0.4
                events.append(bench.cpu.issue(
                    random_addr(), write=write, data=rng.getrandbits(g.data_width),
                    strb=rng.getrandbits(g.bytes_per_word) if write else None,
                    cacheable=rng.random() < 0.85))
            if rng.random() < 0.5:
                # Maintenance while accesses are queued: they wait, before or after it.
                await ctx.tick().repeat(rng.randrange(1, 6))
                kwargs = random_maintenance()
                go_at = await bench.start_maintenance(ctx, **kwargs)
                done_at = await bench.wait_maintenance(ctx)
                events.append((go_at, kwargs))
            await bench.cpu.wait(ctx)
            for access in events:
                if not isinstance(access, tuple) and access.accepted_at > go_at:
                    assert access.accepted_at >= done_at, "access taken during maintenance"
            await ctx.tick().repeat(2 * g.words_per_line)
            bench.replay(events)
            bench.check_bus_and_counters(ctx)
        # Write everything back and compare all of memory.
        kwargs = dict(op=MaintenanceOp.CLEAN_INVALIDATE, scope=MaintenanceScope.ALL)
        events = [(await bench.start_maintenance(ctx, **kwargs), kwargs)]
        await bench.wait_maintenance(ctx)
        bench.replay(events)
        bench.check_bus_and_counters(ctx)
        assert bench.memory.read(BASE, region_end - BASE) == \
            bench.model.memory.read(BASE, region_end - BASE)

    bench.run(testbench)


@pytest.mark.parametrize("geometry, seed, gap", [
    (CacheGeometry(), 1, 0.0),
    (CacheGeometry(), 2, 0.3),
    (CacheGeometry(size=512, ways=2, line_size=32), 3, 0.2),
    (CacheGeometry(size=256, ways=1, line_size=16), 4, 0.2),
    (CacheGeometry(size=1024, ways=8, line_size=32), 5, 0.1),
    (CacheGeometry(size=256, ways=4, line_size=64), 6, 0.1),
])
def test_random_against_model(geometry, seed, gap):
    rng = random.Random(seed)
    bench = CoreBench(geometry, seed=seed, read_latency=rng.randrange(1, 8),
                      write_latency=rng.randrange(1, 12), bus_gap=gap, cpu_gap=gap)
    random_traffic(bench, rng, steps=25)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(10, 18))
def test_random_against_model_soak(seed):
    rng = random.Random(seed)
    geometry = rng.choice([CacheGeometry(), CacheGeometry(size=512, ways=2, line_size=32),
                           CacheGeometry(size=1024, ways=8, line_size=32)])
    bench = CoreBench(geometry, seed=seed, read_latency=rng.randrange(1, 25),
                      write_latency=rng.randrange(1, 25), bus_gap=rng.random() * 0.4,
                      cpu_gap=rng.random() * 0.4)
    random_traffic(bench, rng, steps=300)
