"""The DDR model against the reference memory, beat by beat, under random AXI4 traffic.

Every bus test runs the AXI4 protocol checker on the port and a :class:`TimingMonitor` that
predicts, from the configured latencies and outstanding limit, on which cycle each
AWREADY/WREADY/ARREADY/RVALID/BVALID must be high: exact latency, no bubble once a burst
streams, and back-to-back bursts without a gap are checked on every cycle of every run.
"""

import collections
import random
import time

import pytest
from amaranth.hdl import Fragment
from amaranth.sim import Simulator

from dmabuf_soc.hw.bus.axi import BOUNDARY, Burst, Resp
from dmabuf_soc.sim.bus.checker import AXI4Checker
from dmabuf_soc.sim.bus.manager import AXI4Manager
from dmabuf_soc.sim.bus.memory import ReferenceMemory, burst_beats
from dmabuf_soc.sim.bus.port import channel_signals
from dmabuf_soc.hw.config import MAX_LATENCY, Bank, SocConfig
from dmabuf_soc.sim.ddr.backdoor import (RowSpan, clear_error_window, peek, poke, row_spans,
                                         set_error_window)
from dmabuf_soc.sim.ddr.model import DDRModel

KiB = 1024

LOW  = 0x8000_0000
HIGH = 0x1_0000_0000
SMALL_BANKS = (Bank("low", base=LOW, size=16 * KiB), Bank("high", base=HIGH, size=8 * KiB))


def small_config(**changes):
    return SocConfig(banks=SMALL_BANKS).replace(**changes)


# Expected behaviour --------------------------------------------------------------------------

class Window:
    """Python twin of one error window."""
    def __init__(self, base, size, resp, read=True, write=True):
        self.base, self.limit, self.resp = base, base + size - 1, resp
        self.read, self.write = read, write


def expected_beats(config, windows, addr, length, size, burst, *, write):
    """``(beat address, lanes, response)`` of each beat of a legal burst."""
    beats = []
    for beat_addr, lanes in burst_beats(addr, length, size, burst, config.bytes_per_beat):
        last_byte = beat_addr | ((1 << size) - 1)
        resp = Resp.OKAY if config.bank_at(beat_addr) else Resp.DECERR
        for window in windows:
            if ((window.write if write else window.read) and
                    beat_addr <= window.limit and last_byte >= window.base):
                resp = window.resp
                break
        beats.append((beat_addr, lanes, resp))
    return beats


def lane_bits(lanes, bytes_per_beat):
    return sum(0xff << 8 * lane for lane in range(bytes_per_beat) if lanes >> lane & 1)


def check_read(config, memory, windows, txn):
    """Compare a completed read transaction with the reference memory, beat by beat."""
    beats = expected_beats(config, windows, txn.addr, txn.len, txn.size, txn.burst, write=False)
    assert len(txn.data) == len(beats)
    for n, ((beat_addr, lanes, resp), data, got_resp) in enumerate(
            zip(beats, txn.data, txn.resp)):
        where = f"read {txn.addr:#x} len {txn.len} size {txn.size} {txn.burst.name} beat {n}"
        assert got_resp == resp, where
        if resp == Resp.OKAY:
            mask = lane_bits(lanes, config.bytes_per_beat)
            expected = memory.read_beat(beat_addr, config.bytes_per_beat)
            assert data & mask == expected & mask, f"{where}: {data:#x} != {expected:#x}"
        else:
            assert data == 0, where


def apply_write(config, memory, windows, txn):
    """Apply a completed write transaction to the reference memory; check its B response."""
    beats = expected_beats(config, windows, txn.addr, txn.len, txn.size, txn.burst, write=True)
    errors = [resp for _, _, resp in beats if resp != Resp.OKAY]
    assert txn.resp == (errors[0] if errors else Resp.OKAY), \
        f"write {txn.addr:#x} len {txn.len} {txn.burst.name}"
    for (beat_addr, lanes, resp), data, strb in zip(beats, txn.data, txn.strb):
        if resp == Resp.OKAY:
            memory.write_beat(beat_addr, data, strb & lanes, config.bytes_per_beat)


class TimingMonitor:
    """Predicts every ready and valid the DDR model drives, cycle by cycle, and raises
    :exc:`AssertionError` from the simulation on the first mismatch."""
    def __init__(self, ddr, config=None):
        self.ddr = ddr
        self.config = ddr.config if config is None else config  # the latencies it runs with
        self.cycle = 0
        self.r_beats = []        # cycles of R handshakes
        self.w_beats = []        # cycles of W handshakes

    def add_to(self, sim):
        sim.add_process(self._process)

    async def _process(self, ctx):
        bus, config = self.ddr.bus, self.config
        signals = [bus.aw.valid, bus.aw.ready, bus.aw.payload.len,
                   bus.w.valid, bus.w.ready,
                   bus.b.valid, bus.b.ready,
                   bus.ar.valid, bus.ar.ready, bus.ar.payload.len,
                   bus.r.valid, bus.r.ready, bus.r.payload.last]
        reads = collections.deque()          # [AR cycle, beats] of reads not fully answered
        r_seen, r_free = 0, 0                # beats of the oldest read seen; R idle from
        writes = collections.deque()         # beats of writes whose data is incomplete
        w_seen = 0
        responses = collections.deque()      # cycles of the last W beat of writes awaiting B
        b_free = 0
        writes_pending = 0                   # AW accepted, B not yet
        async for (_, _, aw_valid, aw_ready, aw_len, w_valid, w_ready, b_valid, b_ready,
                   ar_valid, ar_ready, ar_len, r_valid, r_ready, r_last) in \
                ctx.tick().sample(*signals):
            self.cycle = cycle = self.cycle + 1

            def expect(name, got, wanted):
                if bool(got) != bool(wanted):
                    raise AssertionError(f"cycle {cycle}: {name} is {int(got)}, "
                                         f"expected {int(wanted)}")

            expect("ARREADY", ar_ready, len(reads) < config.max_outstanding)
            expect("RVALID", r_valid, reads and (r_seen or cycle >= max(
                reads[0][0] + config.read_latency, r_free)))
            expect("AWREADY", aw_ready, writes_pending < config.max_outstanding)
            expect("WREADY", w_ready, writes)
            expect("BVALID", b_valid, responses and cycle >= max(
                responses[0] + config.write_latency, b_free))
            if r_valid and r_ready:
                self.r_beats.append(cycle)
                r_seen += 1
                if r_seen == reads[0][1]:
                    expect("RLAST", r_last, 1)
                    reads.popleft()
                    r_seen, r_free = 0, cycle + 1
            if ar_valid and ar_ready:
                reads.append([cycle, ar_len + 1])
            if b_valid and b_ready:
                responses.popleft()
                b_free = cycle + 1
                writes_pending -= 1
            if w_valid and w_ready:
                self.w_beats.append(cycle)
                w_seen += 1
                if w_seen == writes[0]:
                    writes.popleft()
                    responses.append(cycle)
                    w_seen = 0
            if aw_valid and aw_ready:
                writes.append(aw_len + 1)
                writes_pending += 1


def simulate(ddr, testbench, *, manager=None, checker=True, monitor=True, timing_config=None):
    """Run ``testbench(ctx)`` against ``ddr`` with the protocol checker and timing monitor
    (which predicts the latencies of ``timing_config``, by default ``ddr``'s)."""
    sim = Simulator(ddr)
    sim.add_clock(1e-6)
    axi_checker = AXI4Checker(ddr.bus, name="ddr") if checker else None
    timing = TimingMonitor(ddr, timing_config) if monitor else None
    for model in (manager, axi_checker, timing):
        if model is not None:
            model.add_to(sim)
    sim.add_testbench(testbench)
    sim.run()
    if axi_checker is not None:
        axi_checker.assert_clean(idle=True)
    return timing


# Random traffic ------------------------------------------------------------------------------

def random_burst(rng, config):
    """A legal random burst: ``(addr, len, size, burst)``, now and then outside the banks."""
    bpb = config.bytes_per_beat
    size = rng.randint(0, bpb.bit_length() - 1)
    nbytes = 1 << size
    bank = rng.choice(config.banks)
    page = bank.base + rng.randrange(bank.size // BOUNDARY) * BOUNDARY
    if rng.random() < 0.05:
        page = rng.choice([bank.end, bank.base - BOUNDARY])
    kind = rng.choices([Burst.INCR, Burst.FIXED, Burst.WRAP], weights=[8, 1, 1])[0]
    if kind == Burst.INCR:
        beats = rng.randint(1, min(256, BOUNDARY // nbytes) if rng.random() < 0.3 else 16)
        first = rng.randrange(BOUNDARY // nbytes - beats + 1) * nbytes
        addr = page + first + rng.randrange(nbytes)
    elif kind == Burst.FIXED:
        beats = rng.randint(1, 16)
        addr = page + rng.randrange(BOUNDARY)
    else:
        beats = rng.choice([2, 4, 8, 16])
        addr = page + rng.randrange(BOUNDARY // nbytes) * nbytes
    return addr, beats - 1, size, kind


def burst_span(config, addr, length, size, burst):
    beats = burst_beats(addr, length, size, burst, config.bytes_per_beat)
    return min(a for a, _ in beats), max(a | ((1 << size) - 1) for a, _ in beats)


def random_window(rng, config):
    bank = rng.choice(config.banks)
    base = bank.base + rng.randrange(bank.size)
    return Window(base, rng.randint(1, 2 * KiB), rng.choice([Resp.SLVERR, Resp.DECERR]),
                  read=rng.random() < 0.7, write=rng.random() < 0.7)


def run_random_traffic(seed, *, rounds, bursts_per_round, data_width=64):
    rng = random.Random(seed)
    config = small_config(data_width=data_width, read_latency=rng.randint(1, 24),
                          write_latency=rng.randint(1, 16), max_outstanding=rng.randint(1, 8))
    ddr = DDRModel(config, id_width=rng.randint(1, 6), sid_width=rng.choice([0, 8]))
    id_limit = (1 << ddr.bus.signature.id_width) - 1
    full_strobe = (1 << data_width // 8) - 1
    manager = AXI4Manager(ddr.bus, rng=random.Random(seed + 1),
                          valid_gap=rng.choice([0.0, 0.1, 0.4]),
                          ready_gap=rng.choice([0.0, 0.2, 0.5]),
                          max_outstanding=rng.randint(1, 10))
    memory = ReferenceMemory()
    totals = collections.Counter()

    async def testbench(ctx):
        windows = []
        for _ in range(rounds):
            for index in range(len(ddr.ctrl.windows)):
                await clear_error_window(ctx, ddr, index)
            windows = [random_window(rng, config) for _ in range(rng.choice([0, 0, 1, 2]))]
            for index, window in enumerate(windows):
                await set_error_window(ctx, ddr, index, base=window.base,
                                       size=window.limit - window.base + 1, resp=window.resp,
                                       read=window.read, write=window.write)
            bursts = [(rng.random() < 0.5, *random_burst(rng, config))
                      for _ in range(bursts_per_round)]
            written = [burst_span(config, *burst) for write, *burst in bursts if write]
            writes, reads = [], []
            for write, addr, length, size, burst in bursts:
                if write:
                    data = [rng.getrandbits(data_width) for _ in range(length + 1)]
                    strb = [rng.choice([full_strobe, rng.getrandbits(data_width // 8)])
                            for _ in range(length + 1)]
                    writes.append(manager.write(addr, data, strb=strb, size=size, burst=burst,
                                                id=rng.randint(0, id_limit)))
                else:
                    # Reads never overlap this round's writes: their data is then exact.
                    lo, hi = burst_span(config, addr, length, size, burst)
                    if not any(lo <= end and start <= hi for start, end in written):
                        reads.append(manager.read(addr, len=length, size=size, burst=burst,
                                                  id=rng.randint(0, id_limit)))
            await manager.wait(ctx)
            for txn in reads:
                check_read(config, memory, windows, txn)
            for txn in writes:
                apply_write(config, memory, windows, txn)
            totals["reads"] += len(reads)
            totals["writes"] += len(writes)
            totals["read_beats"] += sum(txn.len + 1 for txn in reads)
            totals["write_beats"] += sum(txn.len + 1 for txn in writes)
        for bank in config.banks:
            assert await peek(ctx, ddr, bank.base, bank.size) == memory.read(bank.base, bank.size)
        assert ctx.get(ddr.stats.read_bursts) == totals["reads"]
        assert ctx.get(ddr.stats.write_bursts) == totals["writes"]
        assert ctx.get(ddr.stats.read_beats) == totals["read_beats"]
        assert ctx.get(ddr.stats.write_beats) == totals["write_beats"]

    simulate(ddr, testbench, manager=manager)
    assert totals["reads"] and totals["writes"]


@pytest.mark.parametrize("seed", range(4))
def test_random_traffic(seed):
    run_random_traffic(seed, rounds=3, bursts_per_round=10)


@pytest.mark.parametrize("data_width", [32, 128])
def test_random_traffic_other_widths(data_width):
    run_random_traffic(100 + data_width, rounds=2, bursts_per_round=8, data_width=data_width)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(1000, 1016))
def test_random_traffic_soak(seed):
    run_random_traffic(seed, rounds=10, bursts_per_round=24,
                       data_width=random.Random(seed).choice([32, 64, 64, 128]))


# Timing ------------------------------------------------------------------------------------

async def drive_read(ctx, bus, addr, *, len=0, size=3, burst=Burst.INCR, id=0):
    """Issue one read and take its beats with RREADY high; returns ``(AR cycle, [(cycle,
    data, resp)])``, counting cycles from the call."""
    ctx.set(bus.ar.payload, {"id": id, "addr": addr, "len": len, "size": size})
    ctx.set(bus.ar.payload.burst.as_value(), getattr(burst, "value", burst))    # may be the reserved type
    ctx.set(bus.ar.valid, 1)
    ctx.set(bus.r.ready, 1)
    cycle, ar_cycle, beats = 0, None, []
    while True:
        _, _, ar_ready, r_valid, r = await ctx.tick().sample(bus.ar.ready, bus.r.valid,
                                                             bus.r.payload)
        cycle += 1
        if ar_cycle is None and ar_ready:
            ar_cycle = cycle
            ctx.set(bus.ar.valid, 0)
        if r_valid:
            assert r.id == id
            beats.append((cycle, r.data, r.resp))
            if r.last:
                ctx.set(bus.r.ready, 0)
                return ar_cycle, beats


async def drive_write(ctx, bus, addr, data, *, strb=None, size=3, burst=Burst.INCR, id=0):
    """Issue one write (AW, then W beats back to back) and wait for B; returns
    ``(cycle of the last W beat, cycle of BVALID, resp)``, counting cycles from the call."""
    strb = [(1 << len(bus.w.payload.strb)) - 1] * len(data) if strb is None else strb
    ctx.set(bus.aw.payload, {"id": id, "addr": addr, "len": len(data) - 1, "size": size})
    ctx.set(bus.aw.payload.burst.as_value(), getattr(burst, "value", burst))
    ctx.set(bus.aw.valid, 1)
    ctx.set(bus.b.ready, 1)
    cycle, beat, last_w = 0, 0, None
    ctx.set(bus.w.payload, {"data": data[0], "strb": strb[0], "last": len(data) == 1})
    ctx.set(bus.w.valid, 1)
    while True:
        _, _, aw_ready, w_ready, b_valid, b = await ctx.tick().sample(
            bus.aw.ready, bus.w.ready, bus.b.valid, bus.b.payload)
        cycle += 1
        if aw_ready:
            ctx.set(bus.aw.valid, 0)
        if w_ready and last_w is None:
            beat += 1
            if beat == len(data):
                last_w = cycle
                ctx.set(bus.w.valid, 0)
            else:
                ctx.set(bus.w.payload, {"data": data[beat], "strb": strb[beat],
                                        "last": beat == len(data) - 1})
        if b_valid:
            assert b.id == id
            ctx.set(bus.b.ready, 0)
            return last_w, cycle, b.resp


@pytest.mark.parametrize("read_latency,write_latency", [(1, 1), (2, 3), (20, 10), (37, 29)])
@pytest.mark.parametrize("at_run_time", [False, True], ids=["configured", "controlled"])
def test_latency_is_exact(read_latency, write_latency, at_run_time):
    # Controlled: the model is elaborated with other latencies and told these on ctrl.
    config = small_config(read_latency=read_latency, write_latency=write_latency)
    ddr = DDRModel(config.replace(read_latency=5, write_latency=MAX_LATENCY) if at_run_time
                   else config)

    async def testbench(ctx):
        if at_run_time:
            ctx.set(ddr.ctrl.read_latency, read_latency)
            ctx.set(ddr.ctrl.write_latency, write_latency)
        words = [0x1111 * n for n in range(1, 5)]
        last_w, b_cycle, resp = await drive_write(ctx, ddr.bus, LOW + 0x40, words, id=5)
        assert resp == Resp.OKAY
        assert b_cycle - last_w == write_latency
        ar_cycle, beats = await drive_read(ctx, ddr.bus, LOW + 0x40, len=3, id=9)
        assert beats[0][0] - ar_cycle == read_latency
        assert [cycle for cycle, _, _ in beats] == list(range(beats[0][0], beats[0][0] + 4))
        assert [data for _, data, _ in beats] == words

    simulate(ddr, testbench, timing_config=config)


def test_latency_is_bounded():
    for name in ("read_latency", "write_latency"):
        with pytest.raises(ValueError, match=f"{name} must be an integer from 1 to "
                                             f"{MAX_LATENCY}, not {MAX_LATENCY + 1}"):
            small_config(**{name: MAX_LATENCY + 1})


@pytest.mark.parametrize("beats,bursts", [(16, 48), (256, 4)])
def test_throughput(beats, bursts):
    """Concurrent read and write streams of long bursts move 8 bytes per cycle each."""
    config = small_config(read_latency=20, write_latency=10, max_outstanding=8)
    ddr = DDRModel(config)
    manager = AXI4Manager(ddr.bus, max_outstanding=8)
    bpb = config.bytes_per_beat
    rng = random.Random(beats)

    async def testbench(ctx):
        for n in range(bursts):
            base = LOW + (n * beats * bpb) % config.banks[0].size
            manager.write(base, [rng.getrandbits(64) for _ in range(beats)], id=n % 16)
            manager.read(base ^ 0x2000, len=beats - 1, id=n % 16)
        await manager.wait(ctx)

    timing = simulate(ddr, testbench, manager=manager)
    for name, cycles in (("read", timing.r_beats), ("write", timing.w_beats)):
        assert len(cycles) == beats * bursts
        rate = len(cycles) * bpb / (cycles[-1] - cycles[0] + 1)
        assert rate >= 7.5, f"{name}: {rate:.2f} bytes per cycle"


def test_max_outstanding_stops_addresses():
    config = small_config(max_outstanding=3, read_latency=2, write_latency=2)
    ddr = DDRModel(config)

    async def testbench(ctx):
        bus = ddr.bus
        ctx.set(bus.ar.payload, {"addr": LOW, "len": 1, "size": 3, "burst": Burst.INCR})
        ctx.set(bus.aw.payload, {"addr": LOW, "len": 0, "size": 3, "burst": Burst.INCR})
        ctx.set(bus.w.payload, {"data": 0, "strb": 0, "last": 1})
        streams = {"ar": bus.ar, "aw": bus.aw, "w": bus.w}
        for stream in streams.values():
            ctx.set(stream.valid, 1)
        accepted = collections.Counter()

        async def run(cycles):
            for _ in range(cycles):
                _, _, *readies = await ctx.tick().sample(*(s.ready for s in streams.values()))
                for (name, stream), ready in zip(streams.items(), readies):
                    accepted[name] += ready and accepted[name] < 4
                    ctx.set(stream.valid, accepted[name] < 4)

        await run(20)             # RREADY and BREADY low: responses pile up, 3 per direction
        assert accepted == {"ar": 3, "aw": 3, "w": 3}
        ctx.set(bus.r.ready, 1)
        ctx.set(bus.b.ready, 1)
        await run(20)
        assert accepted == {"ar": 4, "aw": 4, "w": 4}

    simulate(ddr, testbench)


# Errors --------------------------------------------------------------------------------------

def test_error_windows():
    config = small_config(read_latency=3, write_latency=2)
    ddr = DDRModel(config, error_windows=2)
    pattern = bytes(range(256)) * 4

    async def testbench(ctx):
        bus = ddr.bus
        await poke(ctx, ddr, LOW, pattern)
        # Window 0: 16 bytes at LOW + 0x108, writes only, SLVERR; it touches beats 1 to 3 of a
        # burst at LOW + 0x100 (beat 3 by its first byte only).
        await set_error_window(ctx, ddr, 0, base=LOW + 0x10c, size=13, resp=Resp.SLVERR,
                               read=False)
        _, _, resp = await drive_write(ctx, bus, LOW + 0x100, [0xaa] * 6)
        assert resp == Resp.SLVERR
        after = await peek(ctx, ddr, LOW + 0x100, 48)
        assert after[0:8] == (0xaa).to_bytes(8, "little")
        assert after[8:32] == pattern[0x108:0x120]                 # beats 1-3 untouched
        assert after[32:48] == (0xaa).to_bytes(8, "little") * 2
        _, beats = await drive_read(ctx, bus, LOW + 0x100, len=5)   # read is not affected
        assert [resp for _, _, resp in beats] == [Resp.OKAY] * 6
        # Window 1: reads only, DECERR, over a whole page of the high bank.
        await set_error_window(ctx, ddr, 1, base=HIGH, size=BOUNDARY, resp=Resp.DECERR,
                               write=False)
        _, _, resp = await drive_write(ctx, bus, HIGH + 8, [0x55, 0x66])
        assert resp == Resp.OKAY
        _, beats = await drive_read(ctx, bus, HIGH + 8, len=1)
        assert [(data, resp) for _, data, resp in beats] == [(0, Resp.DECERR)] * 2
        await clear_error_window(ctx, ddr, 1)
        _, beats = await drive_read(ctx, bus, HIGH + 8, len=1)
        assert [(data, resp) for _, data, resp in beats] == [(0x55, Resp.OKAY),
                                                              (0x66, Resp.OKAY)]
        # Both windows on the same beat: the lower-numbered one answers.
        await set_error_window(ctx, ddr, 1, base=LOW + 0x108, size=8, resp=Resp.DECERR)
        _, _, resp = await drive_write(ctx, bus, LOW + 0x108, [0x77])
        assert resp == Resp.SLVERR
        _, beats = await drive_read(ctx, bus, LOW + 0x108)
        assert beats[0][2] == Resp.DECERR
        assert await peek(ctx, ddr, LOW + 0x108, 8) == pattern[0x108:0x110]

    simulate(ddr, testbench)


def test_error_window_arguments():
    ddr = DDRModel(small_config(), error_windows=1)

    async def testbench(ctx):
        with pytest.raises(ValueError, match="index"):
            await set_error_window(ctx, ddr, 1, base=LOW, size=8)
        with pytest.raises(ValueError, match="SLVERR or DECERR"):
            await set_error_window(ctx, ddr, 0, base=LOW, size=8, resp=Resp.OKAY)
        with pytest.raises(ValueError, match="size"):
            await set_error_window(ctx, ddr, 0, base=LOW, size=0)

    simulate(ddr, testbench, checker=False, monitor=False)


def test_decerr_outside_banks():
    config = small_config(read_latency=2, write_latency=2)
    ddr = DDRModel(config)

    async def testbench(ctx):
        bus = ddr.bus
        _, beats = await drive_read(ctx, bus, 0x1000, len=2)
        assert [resp for _, _, resp in beats] == [Resp.DECERR] * 3
        _, _, resp = await drive_write(ctx, bus, 0x1000, [1, 2])
        assert resp == Resp.DECERR
        before = await peek(ctx, ddr, HIGH, config.banks[1].size)
        _, _, resp = await drive_write(ctx, bus, HIGH + config.banks[1].size, [1, 2])
        assert resp == Resp.DECERR
        assert await peek(ctx, ddr, HIGH, config.banks[1].size) == before

    simulate(ddr, testbench)


def test_burst_running_off_a_bank():
    """A burst crossing the end of a bank (which only an illegal, 4 KiB-crossing INCR can) is
    answered DECERR on the beats past the end; the others are served."""
    config = small_config(read_latency=2, write_latency=2)
    ddr = DDRModel(config)
    end = LOW + config.banks[0].size

    async def testbench(ctx):
        bus = ddr.bus
        _, _, resp = await drive_write(ctx, bus, end - 16, [0x10, 0x20, 0x30, 0x40])
        assert resp == Resp.DECERR
        assert await peek(ctx, ddr, end - 16, 16) == (0x10).to_bytes(8, "little") + \
            (0x20).to_bytes(8, "little")
        _, beats = await drive_read(ctx, bus, end - 16, len=3)
        assert [(data, resp) for _, data, resp in beats] == [
            (0x10, Resp.OKAY), (0x20, Resp.OKAY), (0, Resp.DECERR), (0, Resp.DECERR)]

    sim = Simulator(ddr)
    sim.add_clock(1e-6)
    checker = AXI4Checker(ddr.bus)
    checker.add_to(sim)
    sim.add_testbench(testbench)
    sim.run()
    assert {v.rule for v in checker.violations} == {"4k-boundary"}


@pytest.mark.parametrize("kind", ["wrap-length", "wrap-alignment", "size", "reserved"])
def test_forbidden_bursts_answer_slverr(kind):
    config = small_config(read_latency=2, write_latency=2, data_width=32)
    ddr = DDRModel(config)
    addr, length, size, burst = {
        "wrap-length":    (LOW + 0x40, 2, 2, Burst.WRAP),
        "wrap-alignment": (LOW + 0x42, 3, 2, Burst.WRAP),
        "size":           (LOW + 0x40, 1, 3, Burst.INCR),
        "reserved":       (LOW + 0x40, 1, 2, 0b11),
    }[kind]

    async def testbench(ctx):
        bus = ddr.bus
        before = await peek(ctx, ddr, LOW, 0x100)
        _, _, resp = await drive_write(ctx, bus, addr, [0xdeadbeef] * (length + 1), size=size,
                                       burst=burst)
        assert resp == Resp.SLVERR
        assert await peek(ctx, ddr, LOW, 0x100) == before
        _, beats = await drive_read(ctx, bus, addr, len=length, size=size, burst=burst)
        assert [(data, resp) for _, data, resp in beats] == [(0, Resp.SLVERR)] * (length + 1)

    simulate(ddr, testbench, checker=False)


# Backdoor ------------------------------------------------------------------------------------

def test_row_spans():
    config = small_config()
    assert row_spans(config, LOW + 5, 0) == []
    assert row_spans(config, LOW + 5, 13) == [
        RowSpan(config.banks[0], 0, 5, 8, 0),
        RowSpan(config.banks[0], 1, 0, 8, 3),
        RowSpan(config.banks[0], 2, 0, 2, 11),
    ]
    span = RowSpan(config.banks[1], 3, 2, 5, 1)
    assert span.mask == 0xffffff << 16
    assert span.extract(0x0011223344556677) == bytes([0x55, 0x44, 0x33])
    assert span.insert(0x0011223344556677, b"\x00\xaa\xbb\xcc") == 0x001122ccbbaa6677
    with pytest.raises(ValueError, match=r"0x80004000 .* in no DDR bank"):
        row_spans(config, LOW + 16 * KiB - 4, 8)
    with pytest.raises(ValueError, match="in no DDR bank"):
        row_spans(config, 0x1000, 1)
    with pytest.raises(ValueError, match="non-negative"):
        row_spans(config, -1, 1)
    with pytest.raises(TypeError, match="SocConfig"):
        row_spans(None, LOW, 1)
    # Adjacent banks: a range may span both.
    adjacent = SocConfig(banks=(Bank("a", base=0x1_0000, size=0x1_0000),
                                Bank("b", base=0x2_0000, size=0x1_0000)))
    spans = row_spans(adjacent, 0x1_fffc, 8)
    assert [(s.bank.name, s.row, s.start, s.stop) for s in spans] == [
        ("a", 0x1fff, 4, 8), ("b", 0, 0, 4)]


def test_peek_poke_and_bus_agree():
    config = small_config(read_latency=2, write_latency=2)
    ddr = DDRModel(config, init={"high": b"\x01\x02\x03"})
    rng = random.Random(7)

    async def testbench(ctx):
        bus = ddr.bus
        assert await peek(ctx, ddr, HIGH, 4) == b"\x01\x02\x03\x00"
        memory = ReferenceMemory()
        for bank in config.banks:
            memory.write(bank.base, await peek(ctx, ddr, bank.base, bank.size))
        for _ in range(40):
            bank = rng.choice(config.banks)
            addr = bank.base + rng.randrange(bank.size - 64)
            data = rng.randbytes(rng.randint(1, 64))
            await poke(ctx, ddr, addr, data)
            memory.write(addr, data)
            start = addr - rng.randrange(8)
            assert await peek(ctx, ddr, start, 80) == memory.read(start, 80)
        # Poked bytes come out of the bus...
        _, beats = await drive_read(ctx, bus, LOW, len=7)
        assert [data for _, data, _ in beats] == [memory.read_beat(LOW + 8 * n, 8)
                                                  for n in range(8)]
        # ... and bus writes (narrow, unaligned, strobed) come out of peek.
        data = [0x1111111111111111 * n for n in range(1, 5)]
        strb = [0xff, 0xff, 0x0f, 0xff]
        _, _, resp = await drive_write(ctx, bus, HIGH + 0x203, data, strb=strb, size=1)
        assert resp == Resp.OKAY
        memory.write_burst(HIGH + 0x203, data, strb, 1, 8)
        assert memory.read(HIGH + 0x203, 7) == bytes([0x11, 0x22, 0x22, 0, 0, 0x44, 0x44])
        assert await peek(ctx, ddr, HIGH + 0x200, 16) == memory.read(HIGH + 0x200, 16)
        # Out of the banks: nothing read or written.
        with pytest.raises(ValueError, match="in no DDR bank"):
            await peek(ctx, ddr, HIGH + config.banks[1].size - 2, 4)
        with pytest.raises(ValueError, match="in no DDR bank"):
            await poke(ctx, ddr, HIGH + config.banks[1].size - 2, b"\xff" * 4)
        assert await peek(ctx, ddr, HIGH + config.banks[1].size - 2, 2) == \
            memory.read(HIGH + config.banks[1].size - 2, 2)

    simulate(ddr, testbench)


def test_default_config_elaborates_quickly():
    """1 MiB banks (128 K rows each) in the built-in simulator: elaboration, start, a MiB of
    backdoor traffic and a few bus cycles."""
    start = time.perf_counter()
    config = SocConfig()
    ddr = DDRModel(config, init={"low": b"\x5a" * 4096})

    async def testbench(ctx):
        assert await peek(ctx, ddr, LOW + 4094, 4) == b"\x5a\x5a\x00\x00"
        await poke(ctx, ddr, HIGH + config.banks[1].size - 8, b"\xee" * 8)
        _, beats = await drive_read(ctx, ddr.bus, HIGH + config.banks[1].size - 8)
        assert beats[0][1] == 0xeeeeeeeeeeeeeeee

    simulate(ddr, testbench)
    assert time.perf_counter() - start < 30     # generous: a sanity bound, not a benchmark


# Arguments -----------------------------------------------------------------------------------

@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
def test_arguments():
    with pytest.raises(TypeError, match="SocConfig"):
        DDRModel({"banks": ()})
    with pytest.raises(ValueError, match="No bank named 'mid'"):
        DDRModel(small_config(), init={"mid": b""})
    with pytest.raises(ValueError, match="more than its 8192 bytes"):
        DDRModel(small_config(), init={"high": bytes(8193)})
    with pytest.raises(TypeError, match="non-negative integer"):
        DDRModel(small_config(), error_windows=-1)
    ddr = DDRModel(small_config(), id_width=7, sid_width=0, error_windows=0)
    assert ddr.bus.signature.id_width == 7
    assert ddr.bus.signature.sid_width == 0
    assert len(ddr.ctrl.windows) == 0
    with pytest.raises(ValueError, match="No bank named 'mid'"):
        ddr.memory_data("mid")
    assert ddr.memory_data(ddr.config.banks[1]).depth == 1024
    Fragment.get(ddr, None)
