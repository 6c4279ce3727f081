# amaranth: UnusedElaboratable=no
"""Register slices (hw/bus/register_slice.py): order, latency, throughput and that no signal
passes through combinationally; the AXI4 slice under random traffic with protocol checkers on
both ports, against ReferenceMemory."""

import random

import pytest
from amaranth.sim import Simulator

from dmabuf_soc.hw.bus.axi import AXI4Signature, Burst, Resp
from dmabuf_soc.sim.bus.checker import AXI4Checker
from dmabuf_soc.hw.bus.register_slice import AXI4RegisterSlice, StreamRegisterSlice
from dmabuf_soc.sim.bus.manager import AXI4Manager
from dmabuf_soc.sim.bus.subordinate import AXI4Subordinate
from dmabuf_soc.sim.bus.memory import ReferenceMemory, burst_beats

SIG = AXI4Signature(addr_width=40, data_width=64, id_width=3, sid_width=2)
BASE = 0x8000_0000


def run_stream(*, items, up_gap, down_gap, seed):
    """Random upstream valid and downstream ready; returns ``(sent, received)``, each a list
    of ``(cycle, payload)``."""
    rng = random.Random(seed)
    dut = StreamRegisterSlice(16)
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sent, received = [], []

    async def producer(ctx):
        cycle = 0
        for item in items:
            while rng.random() < up_gap:
                ctx.set(dut.upstream.valid, 0)
                await ctx.tick()
                cycle += 1
            ctx.set(dut.upstream.valid, 1)
            ctx.set(dut.upstream.payload, item)
            while True:
                _, _, ready = await ctx.tick().sample(dut.upstream.ready)
                cycle += 1
                if ready:
                    sent.append((cycle, item))
                    break
        ctx.set(dut.upstream.valid, 0)

    async def consumer(ctx):
        cycle = 0
        while len(received) < len(items):
            ctx.set(dut.downstream.ready, rng.random() >= down_gap)
            _, _, valid, ready, payload = await ctx.tick().sample(
                dut.downstream.valid, dut.downstream.ready, dut.downstream.payload)
            cycle += 1
            if valid and ready:
                received.append((cycle, payload))
            assert cycle < 20 * len(items) + 100, "stream stalled"

    sim.add_testbench(producer)
    sim.add_testbench(consumer)
    sim.run()
    return sent, received


@pytest.mark.parametrize("up_gap,down_gap", [(0, 0), (0.3, 0), (0, 0.4), (0.5, 0.5)])
def test_stream_slice_keeps_order_and_adds_one_cycle(up_gap, down_gap):
    items = [random.Random(up_gap + down_gap).getrandbits(16) for _ in range(300)]
    sent, received = run_stream(items=items, up_gap=up_gap, down_gap=down_gap, seed=1)
    assert [payload for _, payload in received] == items
    assert all(out > into for (into, _), (out, _) in zip(sent, received))
    if up_gap == down_gap == 0:
        # Full throughput: a transfer every cycle, each one cycle after it was accepted.
        assert [out - into for (into, _), (out, _) in zip(sent, received)] == [1] * len(items)
        assert received[-1][0] - received[0][0] == len(items) - 1


def test_stream_slice_has_no_combinational_path():
    dut = StreamRegisterSlice(8)
    sim = Simulator(dut)
    sim.add_clock(1e-6)

    async def testbench(ctx):
        # Fill the output and the skid register while downstream is not ready.
        ctx.set(dut.upstream.valid, 1)
        for value in (1, 2):
            ctx.set(dut.upstream.payload, value)
            await ctx.tick()
        assert ctx.get(dut.downstream.valid) and ctx.get(dut.downstream.payload) == 1
        assert not ctx.get(dut.upstream.ready)
        for valid in (0, 1):
            ctx.set(dut.upstream.valid, valid)
            for ready in (0, 1, 0):
                ctx.set(dut.downstream.ready, ready)
                assert not ctx.get(dut.upstream.ready)
                assert ctx.get(dut.downstream.valid) and ctx.get(dut.downstream.payload) == 1
        # Drain: the skid register's transfer follows, then upstream's again.
        ctx.set(dut.upstream.valid, 0)
        ctx.set(dut.downstream.ready, 1)
        await ctx.tick()
        assert ctx.get(dut.downstream.payload) == 2 and ctx.get(dut.upstream.ready)
        await ctx.tick()
        assert not ctx.get(dut.downstream.valid)
    sim.add_testbench(testbench)
    sim.run()


def lane_mask(lanes):
    return int.from_bytes(bytes(0xFF * (lanes >> i & 1) for i in range(8)), "little")


@pytest.mark.parametrize("seed,gap", [(1, 0.0), (2, 0.3), (3, 0.6)])
def test_axi_slice_random_traffic(seed, gap):
    rng = random.Random(seed)
    dut = AXI4RegisterSlice(SIG)
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    memory, reference = ReferenceMemory(), ReferenceMemory()
    manager = AXI4Manager(dut.upstream, rng=rng, valid_gap=gap, ready_gap=gap)
    subordinate = AXI4Subordinate(dut.downstream, memory, rng=rng, read_latency=3,
                                  write_latency=2, ready_gap=gap, valid_gap=gap, reorder=True)
    checkers = [AXI4Checker(dut.upstream, name="upstream", record=True),
                AXI4Checker(dut.downstream, name="downstream", record=True)]
    for model in (manager, subordinate, *checkers):
        model.add_to(sim)

    async def testbench(ctx):
        for _ in range(8):
            batch = []
            for slot in rng.sample(range(64), 8):      # distinct 256-byte slots per batch
                size = rng.choice([3, 3, 2, 0])
                length = rng.randrange(256 // (1 << size))
                addr = BASE + slot * 256
                kwargs = dict(size=size, id=rng.randrange(8), sid=rng.randrange(4))
                if rng.random() < 0.5:
                    data = [rng.getrandbits(64) for _ in range(length + 1)]
                    strb = [rng.getrandbits(8) for _ in range(length + 1)]
                    batch.append((manager.write(addr, data, strb=strb, **kwargs), None))
                else:
                    batch.append((manager.read(addr, len=length, **kwargs),
                                  reference.read_burst(addr, length, size, 8)))
            await manager.wait(ctx, *(txn for txn, _ in batch), timeout=20_000)
            for txn, expected in batch:
                if expected is None:
                    assert txn.resp == Resp.OKAY
                    reference.write_burst(txn.addr, txn.data, txn.strb, txn.size, 8)
                    continue
                assert txn.resp == [Resp.OKAY] * (txn.len + 1)
                beats = burst_beats(txn.addr, txn.len, txn.size, Burst.INCR, 8)
                for got, want, (_, lanes) in zip(txn.data, expected, beats):
                    assert got & lane_mask(lanes) == want & lane_mask(lanes), txn
    sim.add_testbench(testbench)
    sim.run()
    for checker in checkers:
        checker.assert_clean(idle=True)
    assert memory.read(BASE, 64 * 256) == reference.read(BASE, 64 * 256)
    upstream, downstream = (checker.log for checker in checkers)
    # Every channel's transfers pass unchanged and in order, each at least a cycle later.
    for channel, (later, earlier) in {"aw": (downstream, upstream), "w": (downstream, upstream),
                                      "ar": (downstream, upstream), "b": (upstream, downstream),
                                      "r": (upstream, downstream)}.items():
        into = [(cycle, fields) for cycle, ch, fields in earlier if ch == channel]
        out = [(cycle, fields) for cycle, ch, fields in later if ch == channel]
        assert [fields for _, fields in out] == [fields for _, fields in into], channel
        assert all(b > a for (a, _), (b, _) in zip(into, out)), channel
        if gap == 0:
            assert min(b - a for (a, _), (b, _) in zip(into, out)) == 1, channel


def test_axi_slice_checks_its_signature():
    with pytest.raises(TypeError, match="AXI4Signature"):
        AXI4RegisterSlice(object())
