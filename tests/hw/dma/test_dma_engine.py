"""The DMA engine against its reference model, with the AXI4 protocol checker on its port."""

import random

import pytest

from dmabuf_soc.hw.bus.axi import AXI4Signature
from dmabuf_soc.sim.bus.memory import ReferenceMemory
from dmabuf_soc.hw.dma.cursor import BurstCursor
from dmabuf_soc.hw.dma.descriptor import (DESCRIPTOR_BYTES, ErrorCode,
                                          pack_descriptor, unpack_descriptor)
from dmabuf_soc.hw.dma.engine import DMAEngine, READ_ID_DATA, WRITE_ID_DATA
from dmabuf_soc.sim.dma.model import DMAModel, bursts
from dmabuf_soc.hw.dma.reader import DMAReader
from dmabuf_soc.sim.dma.harness import EngineHarness
from dmabuf_soc.hw.dma.writer import Completer, DMAWriter

SRC = 0x8000_0000           # source area (low bank)
DESC = 0x800C_0000          # descriptors (low bank)
DST = 0x1_0000_0000         # destination area (high bank)
AREA = 0x40000              # bytes of each area the tests use


def random_harness(rng, **kwargs):
    return EngineHarness(memory="reference", rng=rng,
                         read_latency=rng.choice([1, 2, 7, 20, 33]),
                         write_latency=rng.choice([1, 3, 10, 25]),
                         ready_gap=rng.choice([0.0, 0.1, 0.4]),
                         valid_gap=rng.choice([0.0, 0.1, 0.4]),
                         reorder=rng.random() < 0.5, **kwargs)


def fill(harness, rng):
    """Random source bytes, and a recognisable pattern everywhere a write must not land."""
    harness.memory.write(SRC, rng.randbytes(AREA))
    harness.memory.write(DST, bytes([0xa5]) * AREA)


def snapshot(memory):
    copy = ReferenceMemory()
    for base in (SRC, DESC, DST):
        copy.write(base, memory.read(base, AREA))
    return copy


def assert_memory_equal(actual, expected, *, skip=()):
    """Every byte of the three areas equal, except in the ``(addr, length)`` ranges ``skip``."""
    for base in (SRC, DESC, DST):
        a, e = bytearray(actual.read(base, AREA)), bytearray(expected.read(base, AREA))
        for addr, length in skip:
            lo, hi = max(addr, base), min(addr + length, base + AREA)
            if lo < hi:
                a[lo - base:hi - base] = e[lo - base:hi - base]
        if a != e:
            first = next(i for i in range(AREA) if a[i] != e[i])
            raise AssertionError(f"memory differs first at {base + first:#x}: "
                                 f"{a[first]:#04x} != {e[first]:#04x}")


def random_segments(rng, count, *, max_length):
    """``count`` non-overlapping ``(src, dst, length)`` in the source and destination areas,
    with random alignments; now and then ending just past a 4 KiB boundary."""
    segments = []
    slot = AREA // count
    for index in range(count):
        length = rng.randint(1, min(max_length, slot - 64))
        src = SRC + index * slot + rng.randrange(slot - length)
        dst = DST + index * slot + rng.randrange(slot - length)
        if rng.random() < 0.3:
            dst = (dst | 0xfff) + 1 - rng.randrange(1, 40)
            dst = min(dst, DST + (index + 1) * slot - length)
        segments.append((src, dst, length))
    return segments


def write_chain(memory, segments, *, irq=lambda index: True, base=DESC, cyclic=False):
    """Descriptors for ``segments``, scattered in the descriptor area; returns their addresses."""
    slots = random.Random(len(segments)).sample(range(AREA // DESCRIPTOR_BYTES // 2),
                                                len(segments))
    addrs = [base + slot * DESCRIPTOR_BYTES for slot in slots]
    for index, (addr, (src, dst, length)) in enumerate(zip(addrs, segments)):
        following = addrs[(index + 1) % len(addrs)] if cyclic or index + 1 < len(addrs) else 0
        memory.write(addr, pack_descriptor(next=following, src=src, dst=dst, length=length,
                                           irq_on_complete=irq(index), user=index))
    return addrs


def assert_bursts(harness, outcome):
    assert harness.bursts("ar", id=READ_ID_DATA) == outcome.reads
    assert harness.bursts("aw", id=WRITE_ID_DATA) == outcome.writes


def test_parameters_are_checked():
    with pytest.raises(ValueError, match="Maximum burst"):
        DMAEngine(max_burst_beats=0)
    with pytest.raises(ValueError, match="Buffer depth"):
        DMAEngine(max_burst_beats=16, buffer_depth=32)
    with pytest.raises(ValueError, match="Stream ID"):
        DMAEngine(sid_width=2, stream_id=4)
    with pytest.raises(ValueError, match="Data width"):
        DMAEngine(data_width=32)


def test_components_check_their_arguments():
    bus = AXI4Signature(sid_width=2)
    with pytest.raises(TypeError, match="not 'axi'"):
        DMAReader(bus_signature="axi")
    with pytest.raises(ValueError, match="Stream ID must be from 0 to 3, not 4"):
        DMAWriter(bus_signature=bus, stream_id=4)
    with pytest.raises(ValueError, match="Buffer depth must be at least 33, not 32"):
        DMAReader(bus_signature=bus, buffer_depth=32)
    with pytest.raises(TypeError, match="Queue depth must be an integer, not 1.5"):
        Completer(addr_width=40, queue_depth=1.5)
    with pytest.raises(ValueError, match="Bytes per beat must be a power of two"):
        BurstCursor(addr_width=40, bytes_per_beat=6, max_beats=4)
    with pytest.raises(ValueError, match="Maximum burst must be from 1 to 512, not 513"):
        BurstCursor(addr_width=40, bytes_per_beat=8, max_beats=513)


def test_burst_split_never_crosses_4k():
    rng = random.Random(3)
    for _ in range(2000):
        addr, length = rng.randrange(1 << 20), rng.randint(1, 20000)
        split = bursts(addr, length, max_burst_beats=rng.choice([1, 4, 16, 256]))
        assert split[0][0] == addr & ~7
        for (a, n), (b, _) in zip(split, split[1:]):
            assert a + 8 * n == b
        for a, n in split:
            assert a // 4096 == (a + 8 * n - 1) // 4096
        assert sum(n for _, n in split) == -(-(addr % 8 + length) // 8)


@pytest.mark.parametrize("seed", range(3))
def test_register_mode_random(seed):
    rng = random.Random(seed)
    harness = random_harness(rng)
    fill(harness, rng)
    expected = snapshot(harness.memory)
    model = DMAModel(expected)
    segments = random_segments(rng, 4, max_length=1500)

    async def testbench(ctx):
        for src, dst, length in segments:
            await harness.register_transfer(ctx, src, dst, length)
            outcome = model.register_transfer(src, dst, length)
            assert outcome.error == ErrorCode.NONE
            assert not ctx.get(harness.engine.halted)
        assert ctx.get(harness.engine.completed) == len(segments)
        assert ctx.get(harness.engine.bytes_moved) == sum(s[2] for s in segments)

    harness.run(testbench)
    harness.checker.assert_clean(idle=True)
    assert_memory_equal(harness.memory, expected)
    assert harness.count("done_irq") == len(segments)
    reads = [b for s in segments for b in bursts(s[0], s[2])]
    writes = [b for s in segments for b in bursts(s[1], s[2])]
    assert harness.bursts("ar", id=READ_ID_DATA) == reads
    assert harness.bursts("aw", id=WRITE_ID_DATA) == writes


@pytest.mark.parametrize("seed", range(3))
def test_sg_chain_random(seed):
    rng = random.Random(100 + seed)
    harness = random_harness(rng)
    fill(harness, rng)
    segments = random_segments(rng, rng.randint(1, 6), max_length=2500)
    irq = [rng.random() < 0.5 for _ in segments]
    addrs = write_chain(harness.memory, segments, irq=lambda i: irq[i])
    expected = snapshot(harness.memory)
    outcome = DMAModel(expected).chain(addrs[0], addrs[-1])
    assert outcome.completed == addrs

    async def testbench(ctx):
        await harness.start_chain(ctx, addrs[0], addrs[-1])
        await harness.wait_idle(ctx)
        assert ctx.get(harness.engine.completed) == len(segments)
        assert not ctx.get(harness.engine.halted)

    harness.run(testbench)
    harness.checker.assert_clean(idle=True)
    assert_memory_equal(harness.memory, expected)
    assert_bursts(harness, outcome)
    assert harness.count("done") == len(segments)
    assert harness.count("done_irq") == sum(irq)
    for addr, (_, _, length) in zip(addrs, segments):
        desc = unpack_descriptor(harness.memory.read(addr, DESCRIPTOR_BYTES))
        assert desc["completed"] and desc["bytes_moved"] == length


def test_bursts_near_4k_boundaries():
    rng = random.Random(7)
    harness = EngineHarness(memory="reference", rng=rng, read_latency=3, write_latency=2)
    fill(harness, rng)
    segments = []
    for index in range(6):
        src = SRC + 0x4000 * index + 0x1000 - rng.randint(1, 130)
        dst = DST + 0x4000 * index + 0x2000 - rng.randint(1, 130)
        segments.append((src, dst, rng.randint(100, 400)))
    addrs = write_chain(harness.memory, segments)
    expected = snapshot(harness.memory)
    outcome = DMAModel(expected).chain(addrs[0], addrs[-1])

    async def testbench(ctx):
        await harness.start_chain(ctx, addrs[0], addrs[-1])
        await harness.wait_idle(ctx)

    harness.run(testbench)
    harness.checker.assert_clean(idle=True)
    assert_memory_equal(harness.memory, expected)
    assert_bursts(harness, outcome)


def test_tail_write_extends_running_chain():
    rng = random.Random(11)
    harness = random_harness(rng)
    fill(harness, rng)
    segments = random_segments(rng, 5, max_length=2000)
    addrs = write_chain(harness.memory, segments)
    # The chain first ends at descriptor 1, whose next pointer is not yet valid.
    first = unpack_descriptor(harness.memory.read(addrs[1], DESCRIPTOR_BYTES))
    harness.memory.write(addrs[1], (0).to_bytes(8, "little"))
    expected = snapshot(harness.memory)
    expected.write(addrs[1], first["next"].to_bytes(8, "little"))
    outcome = DMAModel(expected).chain(addrs[0], addrs[-1])

    async def testbench(ctx):
        await harness.start_chain(ctx, addrs[0], addrs[1])
        await ctx.tick().repeat(rng.randint(0, 300))
        # Link the rest, then move the tail: while running or after stopping at the tail.
        harness.memory.write(addrs[1], first["next"].to_bytes(8, "little"))
        await harness.extend_chain(ctx, addrs[3])
        await ctx.tick().repeat(rng.randint(0, 300))
        await harness.extend_chain(ctx, addrs[4])
        await harness.wait_idle(ctx)
        assert ctx.get(harness.engine.completed) == 5

    harness.run(testbench)
    harness.checker.assert_clean(idle=True)
    assert_memory_equal(harness.memory, expected)
    assert_bursts(harness, outcome)


def test_new_chain_after_idle_starts_at_cur_desc():
    rng = random.Random(12)
    harness = random_harness(rng)
    fill(harness, rng)
    segments = random_segments(rng, 4, max_length=500)
    addrs = write_chain(harness.memory, segments)
    expected = snapshot(harness.memory)
    model = DMAModel(expected)
    model.chain(addrs[0], addrs[1])
    model.chain(addrs[2], addrs[3])

    async def testbench(ctx):
        await harness.start_chain(ctx, addrs[0], addrs[1])
        await harness.wait_idle(ctx)
        await harness.start_chain(ctx, addrs[2], addrs[3])
        await harness.wait_idle(ctx)

    harness.run(testbench)
    harness.checker.assert_clean(idle=True)
    assert_memory_equal(harness.memory, expected)


def test_cyclic_mode_loops_until_reset():
    rng = random.Random(13)
    harness = random_harness(rng)
    fill(harness, rng)
    segments = random_segments(rng, 3, max_length=300)
    addrs = write_chain(harness.memory, segments, cyclic=True)
    expected = snapshot(harness.memory)
    DMAModel(expected).chain(addrs[0], addrs[0], cyclic=True, limit=3)

    async def testbench(ctx):
        e = harness.engine
        ctx.set(e.cyclic, 1)
        await harness.start_chain(ctx, addrs[0], addrs[0])
        await ctx.tick().until(e.completed == 8)
        assert ctx.get(e.busy)
        await harness.pulse(ctx, e.soft_reset)
        await harness.wait_idle(ctx)
        assert ctx.get(e.completed) == 0 and not ctx.get(e.busy)

    harness.run(testbench)
    harness.checker.assert_clean(idle=True)
    assert harness.count("done") >= 8
    assert_memory_equal(harness.memory, expected)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(4))
def test_sg_chain_soak_up_to_256k(seed):
    rng = random.Random(1000 + seed)
    harness = random_harness(rng)
    fill(harness, rng)
    segments = random_segments(rng, rng.choice([1, 2, 8]), max_length=AREA - 64)
    addrs = write_chain(harness.memory, segments)
    expected = snapshot(harness.memory)
    outcome = DMAModel(expected).chain(addrs[0], addrs[-1])

    async def testbench(ctx):
        await harness.start_chain(ctx, addrs[0], addrs[-1])
        await harness.wait_idle(ctx, timeout=5_000_000)

    harness.run(testbench)
    harness.checker.assert_clean(idle=True)
    assert_memory_equal(harness.memory, expected)
    assert_bursts(harness, outcome)
