# amaranth: UnusedElaboratable=no
"""LiteDecoder: argument checks, routing to windows, DECERR elsewhere, independent paths."""

import random

import pytest
from amaranth.back import rtlil
from amaranth.sim import Simulator

from dmabuf_soc.hw.bus.axi import Resp
from dmabuf_soc.sim.bus.checker import AXI4LiteChecker
from dmabuf_soc.hw.bus.lite_decoder import LiteDecoder
from dmabuf_soc.sim.bus.lite import AXI4LiteSubordinate, lite_read, lite_write
from dmabuf_soc.sim.bus.memory import ReferenceMemory
from dmabuf_soc.hw.regs import soc_windows

WINDOWS = [("ident", 0x0000, 0x1000), ("dma", 0x1000, 0x1000), ("big", 0x8000, 0x4000)]


@pytest.mark.parametrize("windows, message", [
    ([("a", 0, 0x1000), ("b", 0x800, 0x1000)], "base 0x800 is not a non-negative multiple"),
    ([("a", 0, 0x2000), ("b", 0x1000, 0x1000)], "Windows 'a' .* and 'b' .* overlap"),
    ([("a", 0, 0x1800)], "size must be a power of two"),
    ([("a", 0, 2)], "size must be a power of two"),
    ([("a", 0x10000, 0x1000)], "beyond the 16-bit address space"),
    ([("a", 0, 0x1000), ("a", 0x1000, 0x1000)], "'a' is already used"),
    ([("bus", 0, 0x1000)], "'bus' is already used"),
    ([("elaborate", 0, 0x1000)], "'elaborate' is already used"),
    ([("2x", 0, 0x1000)], "must be an identifier"),
    ([("a", -4096, 0x1000)], "base -0x1000 is not a non-negative multiple"),
])
def test_bad_windows(windows, message):
    with pytest.raises(ValueError, match=message):
        LiteDecoder(windows, addr_width=16)


def test_bad_arguments():
    with pytest.raises(TypeError, match="name, base, size"):
        LiteDecoder([("a", 0)])
    with pytest.raises(ValueError, match="Address width"):
        LiteDecoder([], addr_width=1)


def test_ports():
    decoder = LiteDecoder(WINDOWS, addr_width=16)
    assert decoder.windows == tuple(WINDOWS)
    assert decoder.bus.signature.addr_width == 16
    assert decoder.ident.signature.addr_width == 12
    assert decoder.big.signature.addr_width == 14
    soc = LiteDecoder(soc_windows(), addr_width=16)
    assert soc.ident.signature.addr_width == 12
    rtlil.convert(decoder)
    rtlil.convert(soc)


def harness(latencies, bench):
    decoder = LiteDecoder(WINDOWS, addr_width=16)
    memories = {name: ReferenceMemory() for name, _, _ in WINDOWS}
    sim = Simulator(decoder)
    sim.add_clock(1e-6)
    checkers = [AXI4LiteChecker(decoder.bus, name="bus")]
    for name, _, _ in WINDOWS:
        port = getattr(decoder, name)
        AXI4LiteSubordinate(port, memories[name], latency=latencies[name]).add_to(sim)
        checkers.append(AXI4LiteChecker(port, name=name))
    for checker in checkers:
        checker.add_to(sim)
    async def testbench(ctx):
        await bench(ctx, decoder, memories)

    sim.add_testbench(testbench)
    sim.run()
    for checker in checkers:
        checker.assert_clean(idle=True)


def window_of(addr):
    for name, base, size in WINDOWS:
        if base <= addr < base + size:
            return name, addr - base
    return None, None


def test_random_routing_against_model():
    rng = random.Random(7)
    reference = {name: ReferenceMemory() for name, _, _ in WINDOWS}

    async def bench(ctx, decoder, memories):
        for step in range(300):
            addr = rng.choice([rng.randrange(0, 1 << 16, 4),
                               rng.choice([0x0FFC, 0x1000, 0x1FFC, 0x2000, 0x7FFC, 0x8000,
                                           0xBFFC, 0xC000, 0xFFFC])])
            name, offset = window_of(addr)
            if rng.random() < 0.5:
                data, strb = rng.getrandbits(32), rng.randrange(16)
                resp = await lite_write(ctx, decoder.bus, addr, data, strb)
                if name is None:
                    assert resp == Resp.DECERR, f"step {step}: write {addr:#x}"
                else:
                    assert resp == Resp.OKAY, f"step {step}: write {addr:#x}"
                    reference[name].write_beat(offset, data, strb, 4)
            else:
                data, resp = await lite_read(ctx, decoder.bus, addr)
                if name is None:
                    assert (data, resp) == (0, Resp.DECERR), f"step {step}: read {addr:#x}"
                else:
                    assert (data, resp) == (reference[name].read_beat(offset, 4), Resp.OKAY), \
                        f"step {step}: read {addr:#x}"
        for name, _, size in WINDOWS:
            assert memories[name].read(0, size) == reference[name].read(0, size)

    harness({"ident": 1, "dma": 3, "big": 2}, bench)


def test_subordinate_sees_window_offset_and_errors_pass_through():
    async def bench(ctx, decoder, memories):
        assert await lite_write(ctx, decoder.bus, 0x8124, 0xCAFEF00D) == Resp.OKAY
        assert memories["big"].read_beat(0x124, 4) == 0xCAFEF00D
        assert memories["ident"].read_beat(0x124, 4) == 0

    harness({"ident": 1, "dma": 1, "big": 1}, bench)

    decoder = LiteDecoder([("a", 0x1000, 0x1000)], addr_width=16)
    sim = Simulator(decoder)
    sim.add_clock(1e-6)
    AXI4LiteSubordinate(decoder.a, ReferenceMemory(),
                        error=lambda write, addr: Resp.SLVERR if addr == 8 else None).add_to(sim)

    async def errors(ctx):
        assert await lite_write(ctx, decoder.bus, 0x1008, 1) == Resp.SLVERR
        assert await lite_read(ctx, decoder.bus, 0x1008) == (0, Resp.SLVERR)
        assert await lite_read(ctx, decoder.bus, 0x100C) == (0, Resp.OKAY)

    sim.add_testbench(errors)
    sim.run()


def test_write_data_before_address_and_independent_reads():
    async def bench(ctx, decoder, memories):
        memories["ident"].write_beat(0x10, 0x12345678, 0xF, 4)
        bus = decoder.bus
        # W presented long before AW; then, while the slow write is outstanding, a read
        # to another window completes.
        ctx.set(bus.w.payload, {"data": 0xA5A5A5A5, "strb": 0xF})
        ctx.set(bus.w.valid, 1)
        await ctx.tick().repeat(3)
        assert not ctx.get(bus.w.ready)
        ctx.set(bus.aw.payload.addr, 0x1040)
        ctx.set(bus.aw.valid, 1)
        await ctx.tick().until(bus.aw.ready)
        ctx.set(bus.aw.valid, 0)
        await ctx.tick().until(bus.w.ready)
        ctx.set(bus.w.valid, 0)
        assert await lite_read(ctx, bus, 0x0010) == (0x12345678, Resp.OKAY)
        assert not ctx.get(bus.b.valid)
        ctx.set(bus.b.ready, 1)
        resp, = await ctx.tick().sample(bus.b.payload.resp).until(bus.b.valid)
        ctx.set(bus.b.ready, 0)
        assert resp == Resp.OKAY
        assert memories["dma"].read_beat(0x40, 4) == 0xA5A5A5A5

    harness({"ident": 1, "dma": 12, "big": 1}, bench)
