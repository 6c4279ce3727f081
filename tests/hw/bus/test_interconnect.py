# amaranth: UnusedElaboratable=no
"""The AXI4 interconnect (hw/bus/interconnect.py), against ReferenceMemory through the
subordinate model, with a protocol checker on every manager and subordinate port."""

import random

import pytest
from amaranth.sim import Simulator

from dmabuf_soc.hw.bus.axi import AXI4Signature, Burst, Resp
from dmabuf_soc.sim.bus.checker import AXI4Checker
from dmabuf_soc.hw.bus.interconnect import Interconnect, Window
from dmabuf_soc.sim.bus.manager import AXI4Manager
from dmabuf_soc.sim.bus.subordinate import AXI4Subordinate
from dmabuf_soc.sim.bus.memory import ReferenceMemory, burst_beats
from dmabuf_soc.hw.config import SocConfig

SIG = AXI4Signature(addr_width=40, data_width=64, id_width=2, sid_width=3)
WINDOWS = [("low", 0x8000_0000, 0x10_0000), ("high", 0x1_0000_0000, 0x10_0000)]
UNMAPPED = 0x4000_0000
REGION = 0x4000         # bytes of each window (and of the unmapped space) per manager
SLOT = 256              # bursts stay inside one slot, so no burst crosses 4 KiB
TIMEOUT = 5000          # cycles any wait in these tests may take


class Bench:
    """An interconnect with manager models, memory models and checkers on every port."""
    def __init__(self, n_managers, *, rng, windows=WINDOWS, max_outstanding=4, gap=0.0,
                 latencies=(1, 1), reorder=False, record=False):
        self.dut = Interconnect(SIG, n_managers, windows, max_outstanding=max_outstanding)
        self.sim = Simulator(self.dut)
        self.sim.add_clock(1e-6)
        self.memory = ReferenceMemory()
        self.managers = [AXI4Manager(port, rng=rng, valid_gap=gap, ready_gap=gap)
                         for port in self.dut.managers]
        self.subordinates = [
            AXI4Subordinate(port, self.memory, rng=rng, read_latency=rng.randint(*latencies),
                            write_latency=rng.randint(*latencies), ready_gap=gap,
                            valid_gap=gap, reorder=reorder)
            for port in self.dut.subordinates]
        self.manager_checkers = [AXI4Checker(port, name=f"manager {i}", record=record)
                                 for i, port in enumerate(self.dut.managers)]
        self.subordinate_checkers = [AXI4Checker(port, name=f"subordinate {w.name}",
                                                 record=record)
                                     for w, port in zip(self.dut.windows, self.dut.subordinates)]
        for model in (*self.managers, *self.subordinates, *self.manager_checkers,
                      *self.subordinate_checkers):
            model.add_to(self.sim)

    def run(self, *testbenches):
        for testbench in testbenches:
            self.sim.add_testbench(testbench)
        self.sim.run()
        for checker in (*self.manager_checkers, *self.subordinate_checkers):
            checker.assert_clean(idle=True)


def lane_mask(lanes):
    return int.from_bytes(bytes(0xFF * (lanes >> i & 1) for i in range(8)), "little")


def random_traffic(seed, *, n_managers, batches, batch_size, gap, max_outstanding=4):
    """Each manager, concurrently, issues batches of random reads and writes to distinct
    slots of its own regions (so their order within a batch does not matter), checks every
    read against the reference and every response code; at the end memory must match it."""
    rng = random.Random(seed)
    bench = Bench(n_managers, rng=rng, gap=gap, latencies=(1, 12), reorder=True,
                  max_outstanding=max_outstanding, record=True)
    reference = ReferenceMemory()
    bases = [base for _, base, _ in WINDOWS] + [UNMAPPED]
    stats = {"reads": 0, "writes": 0, "decerr": 0}

    def sid_of(manager, addr):
        return (manager + (addr >> 8)) & 7

    def make_testbench(index, manager):
        slots = [base + index * REGION + slot * SLOT
                 for base in bases for slot in range(REGION // SLOT)]

        async def testbench(ctx):
            for _ in range(batches):
                batch = []
                for slot in rng.sample(slots, batch_size):
                    size = rng.choice([3, 3, 2, 1, 0])
                    nbytes = 1 << size
                    length = rng.randrange(min(32, SLOT // nbytes))
                    offset = rng.randrange(0, SLOT - (length + 1) * nbytes + 1, nbytes)
                    addr = slot + offset + rng.randrange(nbytes)
                    kwargs = dict(size=size, id=rng.randrange(4), sid=sid_of(index, addr))
                    mapped = slot < UNMAPPED or slot >= UNMAPPED + REGION * n_managers
                    if rng.random() < 0.5:
                        data = [rng.getrandbits(64) for _ in range(length + 1)]
                        strb = [rng.getrandbits(8) for _ in range(length + 1)]
                        txn = manager.write(addr, data, strb=strb, **kwargs)
                        batch.append((txn, mapped, None))
                    else:
                        txn = manager.read(addr, len=length, **kwargs)
                        batch.append((txn, mapped, reference.read_burst(addr, length, size, 8)))
                await manager.wait(ctx, *(txn for txn, _, _ in batch), timeout=TIMEOUT)
                for txn, mapped, expected in batch:
                    resp = Resp.OKAY if mapped else Resp.DECERR
                    stats["decerr"] += not mapped
                    if expected is None:
                        stats["writes"] += 1
                        assert txn.resp == resp, txn
                        if mapped:
                            reference.write_burst(txn.addr, txn.data, txn.strb, txn.size, 8)
                        continue
                    stats["reads"] += 1
                    assert txn.resp == [resp] * (txn.len + 1), txn
                    if mapped:
                        beats = burst_beats(txn.addr, txn.len, txn.size, Burst.INCR, 8)
                        for n, (got, want, (_, lanes)) in enumerate(zip(txn.data, expected,
                                                                        beats)):
                            assert got & lane_mask(lanes) == want & lane_mask(lanes), \
                                f"{txn}: beat {n}: {got:#x} != {want:#x}"
        return testbench

    bench.run(*(make_testbench(i, manager) for i, manager in enumerate(bench.managers)))

    for base in bases[:-1]:
        for index in range(n_managers):
            start = base + index * REGION
            assert bench.memory.read(start, REGION) == reference.read(start, REGION)
    # Subordinate-side IDs carry the manager index on top; the stream ID passes through.
    for checker in bench.subordinate_checkers:
        requests = [f for _, channel, f in checker.log if channel in ("ar", "aw")]
        assert requests
        for fields in requests:
            assert fields["sid"] == sid_of(fields["id"] >> 2, fields["addr"])
    # Traffic overlapped: transactions of one manager were outstanding together.
    for manager in bench.managers:
        done = manager.completed
        assert any(later.issued_at < earlier.done_at
                   for earlier, later in zip(done, done[1:]))
    return bench, stats


def test_random_multi_manager_traffic():
    _, stats = random_traffic(1, n_managers=3, batches=12, batch_size=6, gap=0.3)
    assert stats["reads"] > 50 and stats["writes"] > 50 and stats["decerr"] > 5


def test_random_traffic_single_manager_no_gaps():
    random_traffic(2, n_managers=1, batches=10, batch_size=8, gap=0.0, max_outstanding=2)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(4))
def test_random_traffic_soak(seed):
    random_traffic(100 + seed, n_managers=4, batches=60, batch_size=8, gap=0.4,
                   max_outstanding=1 + seed % 4)


def test_unmapped_gets_decode_error():
    bench = Bench(2, rng=random.Random(3))
    manager = bench.managers[1]

    async def testbench(ctx):
        read = manager.read(UNMAPPED + 0x100, len=7, id=2)
        write = manager.write(0x1000, [1, 2, 3], id=2)
        single = manager.read(0x8010_0000, id=1)          # just past the "low" window
        mapped = manager.read(0x8000_0000, len=3, id=3)
        await manager.wait(ctx, timeout=TIMEOUT)
        assert read.resp == [Resp.DECERR] * 8 and len(read.data) == 8
        assert write.resp == Resp.DECERR
        assert single.resp == [Resp.DECERR]
        assert mapped.resp == [Resp.OKAY] * 4
    bench.run(testbench)
    assert bench.subordinate_checkers[0].transfers["ar"] == 1
    assert sum(c.transfers["aw"] for c in bench.subordinate_checkers) == 0
    assert bench.manager_checkers[1].transfers["r"] == 8 + 1 + 4


@pytest.mark.parametrize("n_managers", [2, 3])
def test_round_robin_is_fair(n_managers):
    bench = Bench(n_managers, rng=random.Random(4))
    port = bench.dut.subordinates[0]
    bench.subordinates[0].ready_gap = 0     # always ready: arbitration alone decides
    cycles = 300

    async def testbench(ctx):
        for manager in bench.managers:
            for n in range(cycles):
                manager.read(0x8000_0000 + 8 * n, id=n % 4)
        await ctx.tick().repeat(cycles)
    bench.sim.add_testbench(testbench)
    bench.sim.run()
    grants = [0] * n_managers
    for _, id, _, _ in bench.subordinates[0].reads:
        grants[id >> 2] += 1
    assert sum(grants) > cycles * 0.8
    assert max(grants) - min(grants) <= 1, grants
    assert port.signature.id_width == 2 + (n_managers - 1).bit_length()


def stream_bench(latency):
    bench = Bench(1, rng=random.Random(5), max_outstanding=4, latencies=(latency, latency),
                  record=True)
    return bench, bench.managers[0], bench.manager_checkers[0].log


def beat_cycles(log, channel):
    return [cycle for cycle, ch, _ in log if ch == channel]


def test_full_bandwidth_and_latency():
    bench, manager, log = stream_bench(latency=4)
    sub_log = bench.subordinate_checkers[0].log

    async def testbench(ctx):
        manager.read(0x8000_0000, len=255)
        await manager.wait(ctx, timeout=TIMEOUT)
        for n in range(8):      # back-to-back reads and writes, at the same time
            manager.read(0x8000_1000 + 128 * n, len=15, id=n % 4)
            manager.write(0x8000_2000 + 128 * n, range(16), id=n % 4)
        await manager.wait(ctx, timeout=TIMEOUT)
    bench.run(testbench)

    r = beat_cycles(log, "r")
    assert len(r) == 256 + 128
    assert r[255] - r[0] == 255                       # one long burst: a beat per cycle
    assert r[-1] - r[256] == 127                      # eight bursts back to back: no bubble
    w = beat_cycles(log, "w")
    assert w[-1] - w[0] == 127
    assert set(r[256:]) & set(w)                      # reads and writes flow together
    # Added latency: one cycle on the address channels (while fewer than max_outstanding
    # are in flight; later requests wait in s1), none on data and responses.
    ar, sub_ar = beat_cycles(log, "ar"), beat_cycles(sub_log, "ar")
    assert [s - m for m, s in zip(ar, sub_ar)][:5] == [1] * 5
    assert beat_cycles(sub_log, "r") == r and beat_cycles(sub_log, "b") == beat_cycles(log, "b")
    # A write presenting AW and W together: its first W beat reaches the subordinate three
    # cycles after the AW is accepted (s1, then the buffered W routing queues).
    aw, sub_w = beat_cycles(log, "aw"), beat_cycles(sub_log, "w")
    assert sub_w[0] - aw[0] == 3


def response_wait(channel, *, after_decode_error, port="manager"):
    """Cycles from a mapped request's address handshake at the subordinate to its response's
    first handshake at ``port`` (``"manager"`` or ``"subordinate"``), and from the first to
    the last response handshake there."""
    bench = Bench(1, rng=random.Random(6), latencies=(4, 4), record=True)
    manager = bench.managers[0]

    async def testbench(ctx):
        for addr in [UNMAPPED] * after_decode_error + [0x8000_0000]:
            if channel == "r":
                manager.read(addr, len=3)
            else:
                manager.write(addr, range(4))
            await manager.wait(ctx, timeout=TIMEOUT)
    bench.run(testbench)
    request = beat_cycles(bench.subordinate_checkers[0].log, "ar" if channel == "r" else "aw")
    checker = (bench.manager_checkers if port == "manager" else bench.subordinate_checkers)[0]
    response = [cycle for cycle in beat_cycles(checker.log, channel) if cycle > request[0]]
    return response[0] - request[0], response[-1] - response[0]


@pytest.mark.parametrize("channel", ["r", "b"])
def test_response_grant_is_a_register(channel):
    # Each manager's R and B grant is a register: it stays on the target that answered
    # last, so memory's responses pass without delay, and the first one after a decode
    # error waits a cycle for the grant to come back. A burst still streams.
    first, burst = response_wait(channel, after_decode_error=False)
    assert response_wait(channel, after_decode_error=True) == (first + 1, burst)
    assert burst == (3 if channel == "r" else 0)
    # Memory sees its first response taken at once all the same, into the skid register (its
    # ready is a register): the beat after it waits for the cycle instead.
    assert response_wait(channel, after_decode_error=False, port="subordinate") == (first, burst)
    assert (response_wait(channel, after_decode_error=True, port="subordinate") ==
            (first, burst + (channel == "r")))


@pytest.mark.parametrize("channel", ["ar", "aw"])
def test_manager_ready_is_a_register(channel):
    # A request arriving while s1's waits is held in a skid register: the manager's ready
    # falls only when both are full, never in the cycle the target stops being ready, and
    # the two requests leave back to back once it is ready again.
    dut = Interconnect(SIG, 1, WINDOWS)
    manager, target = getattr(dut.managers[0], channel), getattr(dut.subordinates[0], channel)
    sim = Simulator(dut)
    sim.add_clock(1e-6)

    async def testbench(ctx):
        readies, sent = [], []
        ctx.set(manager.payload.addr, 0x8000_0000)
        ctx.set(manager.valid, 1)
        for n in range(4):
            ctx.set(manager.payload.id, n)
            readies.append(ctx.get(manager.ready))
            ctx.set(target.ready, n == 3)       # the target is ready only in the last cycle
            assert ctx.get(manager.ready) == readies[-1]
            if ctx.get(target.valid & target.ready):
                sent.append((n, ctx.get(target.payload.id)))
            await ctx.tick()
        assert readies == [1, 1, 0, 0]
        ctx.set(manager.valid, 0)
        for n in range(4, 8):
            if ctx.get(target.valid & target.ready):
                sent.append((n, ctx.get(target.payload.id)))
            await ctx.tick()
        assert sent == [(3, 0), (4, 1)]
    sim.add_testbench(testbench)
    sim.run()


@pytest.mark.parametrize("same_id", [True, False])
def test_same_id_order_across_subordinates(same_id):
    bench = Bench(1, rng=random.Random(6), record=True)
    slow, fast = bench.subordinates
    slow.read_latency, fast.read_latency = 30, 1
    manager = bench.managers[0]

    async def testbench(ctx):
        first = manager.read(0x8000_0000, len=3, id=1)
        second = manager.read(0x1_0000_0000, len=3, id=1 if same_id else 2)
        await manager.wait(ctx, timeout=TIMEOUT)
        assert (first.done_at < second.done_at) == same_id
    bench.run(testbench)
    slow_last_r = beat_cycles(bench.subordinate_checkers[0].log, "r")[-1]
    fast_ar = beat_cycles(bench.subordinate_checkers[1].log, "ar")[0]
    assert (fast_ar > slow_last_r) == same_id


def test_write_data_waits_for_its_address_order():
    # Two managers write to the same subordinate; W beats must reach it in AW order.
    bench = Bench(2, rng=random.Random(7), gap=0.5, record=True)

    async def testbench(ctx):
        for n in range(20):
            for index, manager in enumerate(bench.managers):
                manager.write(0x8000_0000 + 0x1000 * index + 64 * n,
                              [index << 32 | n << 8 | beat for beat in range(4)], id=n % 4)
        for manager in bench.managers:
            await manager.wait(ctx, timeout=TIMEOUT)
    bench.run(testbench)
    log = bench.subordinate_checkers[0].log
    owners = [f["id"] >> 2 for _, ch, f in log if ch == "aw"]
    bursts = [f["data"] >> 32 for _, ch, f in log if ch == "w" and f["last"]]
    assert owners == bursts and len(set(owners)) == 2


def test_constructor_checks():
    config = SocConfig()
    dut = Interconnect(AXI4Signature(id_width=4, sid_width=8), 5, config.banks)
    assert dut.subordinate_signature.id_width == 7
    assert dut.subordinate("high") is dut.subordinates[1]
    assert [w.name for w in dut.windows] == ["low", "high"]
    with pytest.raises(KeyError, match="'nope'"):
        dut.subordinate("nope")
    with pytest.raises(TypeError, match="AXI4Signature"):
        Interconnect(object(), 1, WINDOWS)
    with pytest.raises(ValueError, match="Number of managers"):
        Interconnect(SIG, 0, WINDOWS)
    with pytest.raises(ValueError, match="overlap"):
        Interconnect(SIG, 1, [("a", 0, 0x2000), ("b", 0x1000, 0x1000)])
    with pytest.raises(ValueError, match="multiple of 4096"):
        Interconnect(SIG, 1, [("a", 0x800, 0x1000)])
    with pytest.raises(ValueError, match="max_outstanding"):
        Interconnect(SIG, 1, WINDOWS, max_outstanding=0)
    with pytest.raises(TypeError, match="tuple"):
        Window.cast(3)
