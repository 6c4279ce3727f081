"""DMA engine error handling: each error kind halts the channel with its code and faulting
descriptor, issues no further bursts, and a soft reset recovers."""

import random

import pytest

from dmabuf_soc.hw.bus.axi import Resp
from dmabuf_soc.hw.dma.descriptor import (DESCRIPTOR_BYTES, STATUS_OFFSET, ErrorCode,
                                          pack_descriptor, unpack_descriptor)
from dmabuf_soc.hw.dma.engine import READ_ID_DATA, READ_ID_DESC, WRITE_ID_DATA, WRITE_ID_STATUS
from dmabuf_soc.sim.dma.model import DMAModel, bursts
from dmabuf_soc.sim.dma.harness import EngineHarness

from test_dma_engine import (DST, SRC, assert_memory_equal, fill, random_harness,
                             random_segments, snapshot, write_chain)


class Injector:
    """``error(write, addr)`` for the memory and the model: one burst address answers
    ``resp`` while armed."""
    def __init__(self, write, addr, resp):
        self.write, self.addr, self.resp, self.armed = write, addr, resp, True

    def __call__(self, write, addr):
        if self.armed and write == self.write and addr == self.addr:
            return self.resp
        return None


async def wait_halted(harness, ctx):
    e = harness.engine
    await ctx.tick().until(e.halted)
    await ctx.tick().until(e.quiet)


async def record_halt(harness, ctx, state):
    """Wait for the halt, then record into ``state`` what the channel reports and (50 cycles
    later) the memory."""
    e = harness.engine
    await wait_halted(harness, ctx)
    assert not ctx.get(e.busy)
    state["completed"] = ctx.get(e.completed)
    state["code"], state["resp"] = ctx.get(e.err_code), ctx.get(e.err_resp)
    state["desc"] = ctx.get(e.err_desc)
    await ctx.tick().repeat(50)
    state["memory"] = snapshot(harness.memory)


async def recover_and_copy(harness, ctx, rng):
    """Soft reset, then check that a register-mode transfer works again."""
    e = harness.engine
    await harness.pulse(ctx, e.soft_reset)
    await harness.wait_idle(ctx)
    assert not ctx.get(e.halted) and ctx.get(e.err_code) == ErrorCode.NONE
    src, dst, length = SRC + 0x3f000 + rng.randrange(8), DST + 0x3f000 + rng.randrange(8), 700
    await harness.register_transfer(ctx, src, dst, length)
    assert not ctx.get(e.halted)
    assert harness.memory.read(dst, length) == harness.memory.read(src, length)


KINDS = [ErrorCode.READ, ErrorCode.WRITE, ErrorCode.DESC_FETCH, ErrorCode.STATUS_WB,
         ErrorCode.ZERO_LEN, ErrorCode.STALE]


# Two random chains per kind; WRITE-4 is one where a completed descriptor's status write-back
# still waits for the AW channel when the error arrives.
SG_ERROR_CASES = [(kind, seed) for kind in KINDS for seed in range(2)] + [(ErrorCode.WRITE, 4)]


@pytest.mark.parametrize(("kind", "seed"), SG_ERROR_CASES,
                         ids=[f"{kind.name}-{seed}" for kind, seed in SG_ERROR_CASES])
def test_sg_error(kind, seed):
    rng = random.Random(f"{kind.name}-{seed}")
    resp = rng.choice([Resp.SLVERR, Resp.DECERR])
    segments = random_segments(rng, 4, max_length=1500)
    fault = rng.randrange(4)
    # The addresses are known once the chain is written; the injector is aimed afterwards.
    injector = Injector(False, -1, resp)
    harness = random_harness(rng, error=injector)
    fill(harness, rng)
    addrs = write_chain(harness.memory, segments)
    src, dst, length = segments[fault]
    if kind == ErrorCode.READ:
        injector.write, injector.addr = False, rng.choice(bursts(src, length))[0]
    elif kind == ErrorCode.WRITE:
        injector.write, injector.addr = True, rng.choice(bursts(dst, length))[0]
    elif kind == ErrorCode.DESC_FETCH:
        injector.write, injector.addr = False, addrs[fault]
    elif kind == ErrorCode.STATUS_WB:
        injector.write, injector.addr = True, addrs[fault] + STATUS_OFFSET
    else:
        raw = unpack_descriptor(harness.memory.read(addrs[fault], DESCRIPTOR_BYTES))
        if kind == ErrorCode.ZERO_LEN:
            raw["length"] = 0
        else:
            raw["completed"] = True
        harness.memory.write(addrs[fault], pack_descriptor(**raw))
    expected = snapshot(harness.memory)
    outcome = DMAModel(expected, error=injector).chain(addrs[0], addrs[-1])
    assert (outcome.error, outcome.err_desc) == (kind, addrs[fault])
    state = {}

    async def testbench(ctx):
        await harness.start_chain(ctx, addrs[0], addrs[-1])
        await record_halt(harness, ctx, state)
        injector.armed = False
        await recover_and_copy(harness, ctx, rng)

    harness.run(testbench)
    harness.checker.assert_clean(idle=True)
    assert state["code"] == kind
    assert state["desc"] == addrs[fault]
    if kind in (ErrorCode.READ, ErrorCode.WRITE, ErrorCode.DESC_FETCH, ErrorCode.STATUS_WB):
        assert state["resp"] == resp
    error_cycle, = [cycle for cycle, name in harness.events if name == "error"]

    # Completed descriptors form a prefix, all of it when the fault was in a descriptor.
    done = state["completed"]
    if kind in (ErrorCode.READ, ErrorCode.WRITE):
        assert done <= fault
    else:
        assert done == fault
    memory = state["memory"]
    for index, addr in enumerate(addrs):
        desc = unpack_descriptor(memory.read(addr, DESCRIPTOR_BYTES))
        stale = index == fault and kind == ErrorCode.STALE
        assert desc["completed"] == (index < done or stale)
        if index == fault and kind in (ErrorCode.READ, ErrorCode.WRITE, ErrorCode.ZERO_LEN):
            assert (desc["error"], desc["bytes_moved"]) == (kind, 0)
    # Not one byte changes outside the destinations (and status words) the model leaves open.
    skip = [(dst, length) for _, dst, length in segments[done:]]
    skip += [(addr + STATUS_OFFSET, 8) for addr in addrs[done:fault]]
    assert_memory_equal(memory, expected, skip=skip)

    # No further bursts until the recovery: at most the one already waiting on each address
    # channel, no descriptor read, and on AW only status write-backs, once each: the faulting
    # descriptor's, and those of descriptors whose data had all landed before the error (the
    # write-back may still be waiting for the AW channel when the error arrives).
    recovery = min(c for c, ch, f in harness.checker.log if ch == "ar" and c > error_cycle
                   and f["addr"] >= SRC + 0x3f000)
    halted = [(ch, f) for c, ch, f in harness.checker.log if error_cycle < c < recovery]
    assert len([f for ch, f in halted if ch == "ar" and f["id"] == READ_ID_DATA]) <= 1
    assert len([f for ch, f in halted if ch == "aw" and f["id"] == WRITE_ID_DATA]) <= 1
    assert not [f for ch, f in halted if ch == "ar" and f["id"] == READ_ID_DESC]
    status_writes = [f["addr"] - STATUS_OFFSET for ch, f in halted
                     if ch == "aw" and f["id"] == WRITE_ID_STATUS]
    assert len(status_writes) == len(set(status_writes))
    assert set(status_writes) <= {addrs[fault], *addrs[:done]}


@pytest.mark.parametrize("kind", [ErrorCode.READ, ErrorCode.WRITE], ids=["READ", "WRITE"])
def test_register_mode_bus_error(kind):
    rng = random.Random(kind.value)
    src, dst, length = SRC + 5, DST + 0x1003, 900
    target = bursts(src, length)[1][0] if kind == ErrorCode.READ else bursts(dst, length)[2][0]
    injector = Injector(kind == ErrorCode.WRITE, target, Resp.SLVERR)
    harness = random_harness(rng, error=injector)
    fill(harness, rng)
    expected = snapshot(harness.memory)

    async def testbench(ctx):
        e = harness.engine
        ctx.set(e.src, src)
        ctx.set(e.dst, dst)
        ctx.set(e.length, length)
        await harness.pulse(ctx, e.go)
        await wait_halted(harness, ctx)
        assert (ctx.get(e.err_code), ctx.get(e.err_desc)) == (kind, 0)
        assert ctx.get(e.completed) == 0
        assert_memory_equal(harness.memory, expected, skip=[(dst, length)])
        injector.armed = False
        await recover_and_copy(harness, ctx, rng)

    harness.run(testbench)
    harness.checker.assert_clean(idle=True)
    assert harness.count("error") == 1
    assert not [f for c, ch, f in harness.checker.log if ch == "aw" and f["id"] == WRITE_ID_STATUS]


def test_register_mode_zero_length():
    harness = EngineHarness(memory="reference", read_latency=2, write_latency=2)

    async def testbench(ctx):
        e = harness.engine
        ctx.set(e.length, 0)
        await harness.pulse(ctx, e.go)
        await wait_halted(harness, ctx)
        assert (ctx.get(e.err_code), ctx.get(e.err_desc)) == (ErrorCode.ZERO_LEN, 0)
        await recover_and_copy(harness, ctx, random.Random(0))

    harness.run(testbench)
    harness.checker.assert_clean(idle=True)
    assert harness.count("error") == 1


def test_soft_reset_mid_transfer_waits_for_bus():
    rng = random.Random(5)
    harness = random_harness(rng)
    fill(harness, rng)

    async def testbench(ctx):
        e = harness.engine
        ctx.set(e.src, SRC)
        ctx.set(e.dst, DST)
        ctx.set(e.length, 20000)
        await harness.pulse(ctx, e.go)
        await ctx.tick().repeat(400)
        await harness.pulse(ctx, e.soft_reset)
        await harness.wait_idle(ctx)
        assert ctx.get(e.completed) == 0
        await recover_and_copy(harness, ctx, rng)

    harness.run(testbench)
    harness.checker.assert_clean(idle=True)


# ---- Misaligned descriptor pointers (issue 29) ----

# `curdesc`, `taildesc`: the registers, before the chain starts; `next`: a descriptor's next
# pointer; `extend`: a misaligned tail written after the chain stopped at its (aligned) tail.
MISALIGNED_CASES = [(which, seed) for which in ("curdesc", "taildesc", "next", "extend")
                    for seed in range(2)]


@pytest.mark.parametrize(("which", "seed"), MISALIGNED_CASES,
                         ids=[f"{which}-{seed}" for which, seed in MISALIGNED_CASES])
def test_misaligned_pointer_halts_before_any_fetch(which, seed):
    rng = random.Random(f"misaligned-{which}-{seed}")
    harness = random_harness(rng)
    fill(harness, rng)
    segments = random_segments(rng, 4, max_length=1500)
    addrs = write_chain(harness.memory, segments)
    offset = rng.choice([1, 8, 0x20, DESCRIPTOR_BYTES - 1, rng.randrange(1, DESCRIPTOR_BYTES)])
    cur, tail = addrs[0], addrs[-1]
    if which == "curdesc":
        cur = bad = addrs[0] + offset
        done = 0
    elif which == "taildesc":
        tail = bad = addrs[-1] + offset
        done = 0
    elif which == "next":
        index = rng.randrange(3)
        raw = unpack_descriptor(harness.memory.read(addrs[index], DESCRIPTOR_BYTES))
        raw["next"] = bad = addrs[index + 1] + offset
        harness.memory.write(addrs[index], pack_descriptor(**raw))
        done = index + 1
    else:
        tail = addrs[1]
        bad = addrs[3] + offset
        done = 2
    expected = snapshot(harness.memory)
    model = DMAModel(expected)
    outcome = model.chain(cur, tail)
    reads = outcome.reads
    if which == "extend":
        assert outcome.completed == addrs[:2] and outcome.error == ErrorCode.NONE
        outcome = model.chain(addrs[2], bad)
        reads += outcome.reads
    else:
        assert outcome.completed == addrs[:done]
    assert (outcome.error, outcome.err_desc, outcome.resp) == (ErrorCode.MISALIGNED, bad,
                                                                Resp.OKAY)
    state = {}

    async def testbench(ctx):
        e = harness.engine
        if which == "extend":
            await harness.start_chain(ctx, cur, tail)
            await harness.wait_idle(ctx)
            assert ctx.get(e.completed) == 2
            state["extended"] = harness.checker.cycle
            await harness.extend_chain(ctx, bad)
        else:
            await harness.start_chain(ctx, cur, tail)
        await record_halt(harness, ctx, state)
        await recover_and_copy(harness, ctx, rng)

    harness.run(testbench)
    harness.checker.assert_clean(idle=True)
    assert (state["code"], state["resp"], state["desc"]) == (ErrorCode.MISALIGNED, Resp.OKAY,
                                                             bad)
    assert state["completed"] == done
    assert harness.count("error") == 1
    # Nothing is written but the completed descriptors' data and status words.
    assert_memory_equal(state["memory"], expected)
    error_cycle, = [cycle for cycle, name in harness.events if name == "error"]
    before = [(ch, f) for c, ch, f in harness.checker.log if c <= error_cycle]
    desc_reads = [f["addr"] for ch, f in before if ch == "ar" and f["id"] == READ_ID_DESC]
    if which == "extend":
        # The old tail's next pointer is not read again: the new tail is refused first.
        desc_reads = [f["addr"] for c, ch, f in harness.checker.log
                      if state["extended"] <= c <= error_cycle and ch == "ar"]
        assert desc_reads == []
    else:
        # Exactly the descriptors that ran were fetched, each once; never the bad pointer.
        assert desc_reads == addrs[:done]
    assert [(f["addr"], f["len"] + 1) for ch, f in before
            if ch == "ar" and f["id"] == READ_ID_DATA] == reads


# ---- A next pointer back to a completed (or in-flight) descriptor (issue 29) ----

# (descriptor whose next is redirected, the descriptor it points back to) in a chain of 5
# whose tail is the last one, never reached.
LOOPS = [(0, 0), (2, 2), (3, 0), (3, 2), (2, 1)]
STALE_CASES = [(source, target, seed) for source, target in LOOPS for seed in range(2)]


@pytest.mark.parametrize(("source", "target", "seed"), STALE_CASES,
                         ids=[f"{s}to{t}-{seed}" for s, t, seed in STALE_CASES])
def test_next_to_completed_descriptor_runs_once_then_stale(source, target, seed):
    rng = random.Random(f"loop-{source}-{target}-{seed}")
    harness = random_harness(rng)
    fill(harness, rng)
    # Short transfers, so that the descriptor pointed back to is still in flight when its
    # address is fetched again.
    segments = random_segments(rng, 5, max_length=rng.choice([16, 64, 600]))
    addrs = write_chain(harness.memory, segments)
    raw = unpack_descriptor(harness.memory.read(addrs[source], DESCRIPTOR_BYTES))
    raw["next"] = addrs[target]
    harness.memory.write(addrs[source], pack_descriptor(**raw))
    expected = snapshot(harness.memory)
    outcome = DMAModel(expected).chain(addrs[0], addrs[-1])
    assert outcome.completed == addrs[:source + 1]
    assert (outcome.error, outcome.err_desc) == (ErrorCode.STALE, addrs[target])
    state = {}

    async def testbench(ctx):
        await harness.start_chain(ctx, addrs[0], addrs[-1])
        await record_halt(harness, ctx, state)
        await recover_and_copy(harness, ctx, rng)

    harness.run(testbench)
    harness.checker.assert_clean(idle=True)
    assert (state["code"], state["desc"]) == (ErrorCode.STALE, addrs[target])
    assert state["completed"] == source + 1
    assert harness.count("error") == 1
    assert_memory_equal(state["memory"], expected)
    error_cycle, = [cycle for cycle, name in harness.events if name == "error"]
    before = [(ch, f) for c, ch, f in harness.checker.log if c <= error_cycle]
    # Each descriptor's data moved once, and each status was written back once.
    assert [(f["addr"], f["len"] + 1) for ch, f in before
            if ch == "ar" and f["id"] == READ_ID_DATA] == outcome.reads
    assert [(f["addr"], f["len"] + 1) for ch, f in before
            if ch == "aw" and f["id"] == WRITE_ID_DATA] == outcome.writes
    assert [f["addr"] - STATUS_OFFSET for ch, f in before
            if ch == "aw" and f["id"] == WRITE_ID_STATUS] == addrs[:source + 1]


@pytest.mark.parametrize("ring", [1, 2], ids=["self-loop", "misaligned-tail"])
def test_cyclic_mode_ignores_completion_and_tail(ring):
    """In cyclic mode a descriptor pointing to itself runs again and again (it is not stale),
    and TAILDESC is not looked at, aligned or not."""
    rng = random.Random(30 + ring)
    harness = random_harness(rng)
    fill(harness, rng)
    addrs = write_chain(harness.memory, random_segments(rng, ring, max_length=200), cyclic=True)
    tail = addrs[0] + (4 if ring > 1 else 0)

    async def testbench(ctx):
        e = harness.engine
        ctx.set(e.cyclic, 1)
        await harness.start_chain(ctx, addrs[0], tail)
        await ctx.tick().until(e.completed == 6)
        assert ctx.get(e.busy) and not ctx.get(e.halted)
        await harness.pulse(ctx, e.soft_reset)
        await harness.wait_idle(ctx)

    harness.run(testbench)
    harness.checker.assert_clean(idle=True)
