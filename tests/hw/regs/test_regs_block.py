# amaranth: UnusedElaboratable=no
"""The generated RegisterBlock: every access type through its AXI4-Lite port, and random
traffic checked access by access against RegisterBlockModel."""

import random
from pathlib import Path

import pytest
from amaranth.back import rtlil
from amaranth.sim import Simulator

from dmabuf_soc.hw.bus.axi import Resp
from dmabuf_soc.sim.bus.checker import AXI4LiteChecker
from dmabuf_soc.sim.bus.lite import lite_read, lite_write
from dmabuf_soc.hw.regs import RegisterBlock, block_spec, compile_rdl
from dmabuf_soc.sim.regs.model import RegisterBlockModel

FIXTURE = Path(__file__).resolve().parents[2] / "rdl" / "access_types.rdl"


@pytest.fixture(scope="module")
def spec():
    return block_spec(compile_rdl(FIXTURE))


def simulate(dut, bench, *, processes=()):
    """Run ``bench(ctx)`` against ``dut`` with a protocol checker on its bus."""
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    checker = AXI4LiteChecker(dut.bus, name="regs")
    checker.add_to(sim)
    for process in processes:
        sim.add_process(process)
    sim.add_testbench(bench)
    sim.run()
    checker.assert_clean(idle=True)


async def pulse(ctx, signal, value=1):
    ctx.set(signal, value)
    await ctx.tick()
    ctx.set(signal, 0)


def test_signature_mirrors_the_rdl(spec):
    dut = RegisterBlock(spec)
    assert dut.bus.signature.addr_width == 12
    assert dut.irq.shape().width == 1
    assert len(dut.f.ch) == 2 and len(dut.f.ARR) == 3
    assert dut.f.HWWE.count.d.shape().width == 16
    assert {"hwset", "hwclr", "q"} == set(dut.f.HWSC.flags.signature.members.keys())
    # hw=na fields (RW.top) and registers without hardware ports (IRQ_ENABLE) have no port.
    assert not hasattr(dut.f.RW, "top")
    assert not hasattr(dut.f, "IRQ_ENABLE")
    assert dut.register_interface("ch[1].POS") is dut.f.ch[1].POS
    with pytest.raises(KeyError, match="IRQ_MASK"):
        dut.register_interface("IRQ_MASK")
    with pytest.raises(ValueError, match="reaching every register"):
        RegisterBlock(spec, addr_width=6)
    rtlil.convert(dut)


def test_reset_values_and_rw_with_strobes(spec):
    dut = RegisterBlock(spec)

    async def bench(ctx):
        assert await lite_read(ctx, dut.bus, 0x00) == (0x901234A5, Resp.OKAY)
        assert ctx.get(dut.f.RW.lo.q) == 0xA5 and ctx.get(dut.f.RW.hi.q) == 0x1234
        assert await lite_write(ctx, dut.bus, 0x00, 0xFEDCBA98, strb=0b0101) == Resp.OKAY
        assert (await lite_read(ctx, dut.bus, 0x00))[0] == 0x90DC34_98
        assert await lite_write(ctx, dut.bus, 0x02, 0x11223344, strb=0b1000) == Resp.OKAY
        assert (await lite_read(ctx, dut.bus, 0x01))[0] == 0x10DC3498   # addr[1:0] ignored
        assert await lite_write(ctx, dut.bus, 0x00, 0xFFFFFFFF, strb=0) == Resp.OKAY
        assert (await lite_read(ctx, dut.bus, 0x00))[0] == 0x10DC3498
        assert ctx.get(dut.f.RW.hi.q) == 0xDC34

    simulate(dut, bench)


def test_unmapped_offsets_answer_slverr(spec):
    dut = RegisterBlock(spec)

    async def bench(ctx):
        for offset in (0x30, 0x3C, 0x48, 0x8C, 0xFFC):
            assert await lite_read(ctx, dut.bus, offset) == (0, Resp.SLVERR)
            assert await lite_write(ctx, dut.bus, offset, 0xFFFFFFFF) == Resp.SLVERR
        # The failed writes changed nothing.
        assert (await lite_read(ctx, dut.bus, 0x00))[0] == 0x901234A5

    simulate(dut, bench)


def test_hw_status_constant_and_we(spec):
    dut = RegisterBlock(spec)

    async def bench(ctx):
        ctx.set(dut.f.STATUS.live.d, 0xABC)
        assert (await lite_read(ctx, dut.bus, 0x04))[0] == 0x05C00ABC
        ctx.set(dut.f.STATUS.live.d, 0x123)
        await ctx.tick()
        assert (await lite_read(ctx, dut.bus, 0x04))[0] == 0x05C00123
        await lite_write(ctx, dut.bus, 0x04, 0)         # read-only: ignored
        assert (await lite_read(ctx, dut.bus, 0x04))[0] == 0x05C00123

        assert (await lite_read(ctx, dut.bus, 0x08))[0] == 0x11000000
        ctx.set(dut.f.HWWE.count.d, 0x7777)
        ctx.set(dut.f.HWWE.snap.d, 0x99)
        await ctx.tick().repeat(3)                      # no we: nothing loads
        assert (await lite_read(ctx, dut.bus, 0x08))[0] == 0x11000000
        ctx.set(dut.f.HWWE.count.we, 1)
        ctx.set(dut.f.HWWE.snap.we, 1)
        await ctx.tick()
        ctx.set(dut.f.HWWE.count.we, 0)
        ctx.set(dut.f.HWWE.snap.we, 0)
        assert (await lite_read(ctx, dut.bus, 0x08))[0] == 0x99007777
        await lite_write(ctx, dut.bus, 0x08, 0x0000BEEF)
        assert ctx.get(dut.f.HWWE.count.q) == 0xBEEF and ctx.get(dut.f.HWWE.snap.q) == 0x99

    simulate(dut, bench)


def test_hw_write_every_cycle(spec):
    dut = RegisterBlock(spec)

    async def bench(ctx):
        await ctx.tick()
        assert (await lite_read(ctx, dut.bus, 0x90))[0] == 0       # d = 0 loaded at once
        ctx.set(dut.f.ALWAYS.follow.d, 0x5A)
        await ctx.tick()
        assert ctx.get(dut.f.ALWAYS.follow.q) == 0x5A
        await lite_write(ctx, dut.bus, 0x90, 0x77)
        assert (await lite_read(ctx, dut.bus, 0x90))[0] == 0x5A

    simulate(dut, bench)


def test_hwset_hwclr(spec):
    dut = RegisterBlock(spec)

    async def bench(ctx):
        await pulse(ctx, dut.f.HWSC.flags.hwset)
        await pulse(ctx, dut.f.HWSC.sticky.hwset)
        assert (await lite_read(ctx, dut.bus, 0x0C))[0] == 0x10F
        await pulse(ctx, dut.f.HWSC.flags.hwclr)
        assert (await lite_read(ctx, dut.bus, 0x0C))[0] == 0x100
        ctx.set(dut.f.HWSC.flags.hwset, 1)                  # both at once: clear wins
        ctx.set(dut.f.HWSC.flags.hwclr, 1)
        await ctx.tick()
        ctx.set(dut.f.HWSC.flags.hwset, 0)
        ctx.set(dut.f.HWSC.flags.hwclr, 0)
        assert ctx.get(dut.f.HWSC.flags.q) == 0
        await lite_write(ctx, dut.bus, 0x0C, 0x005)
        assert (await lite_read(ctx, dut.bus, 0x0C))[0] == 0x005

    simulate(dut, bench)


def test_write_side_effects(spec):
    dut = RegisterBlock(spec)

    async def bench(ctx):
        assert (await lite_read(ctx, dut.bus, 0x10))[0] == 0x30F300FF
        # woclr clears the ones; woset sets them; wot toggles; wzc clears where 0 is
        # written; wzs sets where 0 is written; wclr clears and wset sets on any write.
        await lite_write(ctx, dut.bus, 0x10, 0x000F_81_0F)
        value = (await lite_read(ctx, dut.bus, 0x10))[0]
        assert value & 0xFF == 0xF0                 # clr: 0xFF & ~0x0F
        assert value >> 8 & 0xFF == 0x81            # set: 0 | 0x81
        assert value >> 16 & 0xF == 0x3 ^ 0xF       # tog: 0x3 ^ 0xF
        assert value >> 20 & 0xF == 0xF & 0x0       # zc: written 0 -> all cleared
        assert value >> 24 & 0xF == 0xF             # zs: written 0 -> all set
        assert value >> 28 & 0x3 == 0               # wc: cleared by the write
        assert value >> 30 & 0x3 == 0x3             # ws: set by the write
        # A write whose strobes miss a byte leaves that byte's side effects out.
        await pulse(ctx, dut.f.W1.clr.hwset)
        await lite_write(ctx, dut.bus, 0x10, 0xFFFFFFFF, strb=0b0010)
        value = (await lite_read(ctx, dut.bus, 0x10))[0]
        assert value & 0xFF == 0xFF and value >> 8 & 0xFF == 0xFF
        assert ctx.get(dut.f.W1.set.q) == 0xFF and ctx.get(dut.f.W1.tog.q) == 0xC

    simulate(dut, bench)


def test_singlepulse_swmod_swacc_rclr(spec):
    dut = RegisterBlock(spec)
    seen = []
    watched = {"go": dut.f.PULSE.go.q, "kick": dut.f.PULSE.kick.q,
               "tail.swmod": dut.f.STROBES.tail.swmod, "head.swacc": dut.f.STROBES.head.swacc,
               "events.swmod": dut.f.RCLR.events.swmod}

    async def monitor(ctx):
        async for _, _, *values in ctx.tick().sample(*watched.values()):
            seen.append({name for name, value in zip(watched, values) if value})

    async def bench(ctx):
        assert await lite_write(ctx, dut.bus, 0x14, 0x00FF0001) == Resp.OKAY
        await ctx.tick()
        assert [s for s in seen if s] == [{"go"}]
        assert ctx.get(dut.f.PULSE.go.q) == 0 and ctx.get(dut.f.PULSE.wonly.q) == 0xFF
        assert await lite_read(ctx, dut.bus, 0x14) == (0, Resp.OKAY)   # write-only reads 0
        seen.clear()
        await lite_write(ctx, dut.bus, 0x14, 0x10, strb=0b0001)
        await lite_write(ctx, dut.bus, 0x14, 0x11, strb=0b0000)        # strobed off
        await lite_write(ctx, dut.bus, 0x18, 0x12345)
        await ctx.tick()
        assert [s for s in seen if s] == [{"kick"}, {"tail.swmod"}]
        assert ctx.get(dut.f.STROBES.tail.q) == 0x12345
        seen.clear()
        ctx.set(dut.f.STROBES.head.d, 0x5A)
        assert (await lite_read(ctx, dut.bus, 0x18))[0] == 0x5A012345
        await pulse(ctx, dut.f.RCLR.events.hwset)
        await pulse(ctx, dut.f.RCLR.armed.hwclr)
        assert (await lite_read(ctx, dut.bus, 0x1C))[0] == 0x00F   # events set, armed clear
        assert (await lite_read(ctx, dut.bus, 0x1C))[0] == 0x100   # rclr / rset took effect
        await ctx.tick()
        assert [s for s in seen if s] == [{"head.swacc"}, {"events.swmod"}, {"events.swmod"}]

    simulate(dut, bench, processes=[monitor])


def test_interrupts_enables_and_masks(spec):
    dut = RegisterBlock(spec)
    status, raw = dut.f.IRQ_STATUS, dut.f.IRQ_RAW

    async def bench(ctx):
        await pulse(ctx, status.done.d)
        assert (await lite_read(ctx, dut.bus, 0x28))[0] == 0b1
        assert not ctx.get(dut.irq) and not ctx.get(status.intr)      # not enabled
        await lite_write(ctx, dut.bus, 0x20, 0b1)
        assert ctx.get(status.intr) and ctx.get(dut.irq)
        await lite_write(ctx, dut.bus, 0x28, 0b0)                     # writing 0: no effect
        assert ctx.get(dut.irq)
        await lite_write(ctx, dut.bus, 0x28, 0b1)                     # write 1 to clear
        assert not ctx.get(dut.irq)
        assert (await lite_read(ctx, dut.bus, 0x28))[0] == 0

        # posedge: a level held high sets the status once.
        ctx.set(status.edge.d, 0b10)
        await ctx.tick().repeat(3)
        await lite_write(ctx, dut.bus, 0x28, 0b1000)
        assert (await lite_read(ctx, dut.bus, 0x28))[0] == 0
        ctx.set(status.edge.d, 0b11)
        await ctx.tick().repeat(2)
        ctx.set(status.edge.d, 0)
        assert (await lite_read(ctx, dut.bus, 0x28))[0] == 0b0100
        await lite_write(ctx, dut.bus, 0x20, 0b1000)
        assert not ctx.get(dut.irq)                                   # enable bit 1 only
        await lite_write(ctx, dut.bus, 0x20, 0b0100)
        assert ctx.get(dut.irq)
        await lite_write(ctx, dut.bus, 0x28, 0b1100)

        # mask: a masked interrupt does not reach intr; negedge / bothedge inputs.
        await pulse(ctx, raw.wake.hwset)
        assert ctx.get(raw.intr)
        await lite_write(ctx, dut.bus, 0x24, 1)
        assert not ctx.get(raw.intr) and not ctx.get(dut.irq)
        await lite_write(ctx, dut.bus, 0x2C, 1)
        ctx.set(raw.fall.d, 1)
        ctx.set(raw.any.d, 1)
        await ctx.tick().repeat(2)
        assert (await lite_read(ctx, dut.bus, 0x2C))[0] == 0b100      # any rose; fall did not
        await lite_write(ctx, dut.bus, 0x2C, 0b100)
        ctx.set(raw.fall.d, 0)
        ctx.set(raw.any.d, 0)
        await ctx.tick().repeat(2)
        assert (await lite_read(ctx, dut.bus, 0x2C))[0] == 0b110
        assert ctx.get(raw.intr) and ctx.get(dut.irq)

    simulate(dut, bench)


def test_interrupt_precedence(spec):
    dut = RegisterBlock(spec)
    status = dut.f.IRQ_STATUS

    async def bench(ctx):
        # An event in the very cycle software clears the bit: with precedence = hw (done)
        # the event survives, with the default precedence = sw (error) it is lost.
        await pulse(ctx, status.done.d)
        await pulse(ctx, status.error.d)
        ctx.set(dut.bus.aw.payload.addr, 0x28)
        ctx.set(dut.bus.w.payload, {"data": 0b11, "strb": 0xF})
        ctx.set(dut.bus.aw.valid, 1)
        ctx.set(dut.bus.w.valid, 1)
        await ctx.tick()                                   # AW and W accepted
        ctx.set(dut.bus.aw.valid, 0)
        ctx.set(dut.bus.w.valid, 0)
        ctx.set(status.done.d, 1)
        ctx.set(status.error.d, 1)
        await ctx.tick()                                   # commit cycle
        ctx.set(status.done.d, 0)
        ctx.set(status.error.d, 0)
        ctx.set(dut.bus.b.ready, 1)
        await ctx.tick().until(dut.bus.b.valid)
        ctx.set(dut.bus.b.ready, 0)
        assert (await lite_read(ctx, dut.bus, 0x28))[0] == 0b01

    simulate(dut, bench)


async def back_to_back(ctx, requests, response, count=8):
    """Hold the ``requests`` streams valid for ``count`` transfers; the cycles until the
    ``count``-th ``response`` (whose ready the caller holds high)."""
    for stream in requests:
        ctx.set(stream.valid, 1)
    issued = done = cycles = 0
    while done < count:
        _, _, ready, valid = await ctx.tick().sample(requests[0].ready, response.valid)
        cycles += 1
        issued += ready
        done += valid
        if issued == count:
            for stream in requests:
                ctx.set(stream.valid, 0)
    return cycles


def test_aw_w_in_any_order_and_throughput(spec):
    dut = RegisterBlock(spec)

    async def write_split(ctx, addr, data, *, first, gap):
        bus = dut.bus
        ctx.set(bus.aw.payload.addr, addr)
        ctx.set(bus.w.payload, {"data": data, "strb": 0xF})
        leading, trailing = (bus.aw, bus.w) if first == "aw" else (bus.w, bus.aw)
        ctx.set(leading.valid, 1)
        await ctx.tick().until(leading.ready)
        ctx.set(leading.valid, 0)
        if gap:
            await ctx.tick().repeat(gap)
        assert not ctx.get(bus.b.valid)
        ctx.set(trailing.valid, 1)
        await ctx.tick().until(trailing.ready)
        ctx.set(trailing.valid, 0)
        ctx.set(bus.b.ready, 1)
        resp, = await ctx.tick().sample(bus.b.payload.resp).until(bus.b.valid)
        ctx.set(bus.b.ready, 0)
        return resp

    async def bench(ctx):
        assert await write_split(ctx, 0x80, 0x1111, first="aw", gap=3) == Resp.OKAY
        assert await write_split(ctx, 0x84, 0x2222, first="w", gap=5) == Resp.OKAY
        assert await write_split(ctx, 0x30, 0x3333, first="w", gap=0) == Resp.SLVERR
        assert ctx.get(dut.f.ARR[0].v.q) == 0x1111 and ctx.get(dut.f.ARR[1].v.q) == 0x2222

        # Back-to-back accesses with ready held high: a read every 2 cycles, a write every 3.
        bus = dut.bus
        ctx.set(bus.r.ready, 1)
        ctx.set(bus.ar.payload.addr, 0x80)
        assert await back_to_back(ctx, [bus.ar], bus.r) <= 8 * 2 + 1
        ctx.set(bus.b.ready, 1)
        ctx.set(bus.aw.payload.addr, 0x88)
        cycles = await back_to_back(ctx, [bus.aw, bus.w], bus.b)
        await ctx.tick().repeat(3)
        assert cycles <= 8 * 3 + 2

    simulate(dut, bench)


def _hw_ports(spec, dut):
    """Per field: its hardware interface, for the random test."""
    for reg in spec.registers:
        for f in reg.fields:
            if f.hw_ports():
                yield reg, f, getattr(dut.register_interface(reg.name), f.name)


def run_random(spec, seed, steps):
    rng = random.Random(seed)
    dut = RegisterBlock(spec)
    model = RegisterBlockModel(spec)
    ports = list(_hw_ports(spec, dut))
    offsets = [reg.offset for reg in spec.registers] + [0x30, 0x38, 0x4C, 0x60, 0xFFC]
    events = []
    watched = []
    for reg, f, port in ports:
        if f.singlepulse:
            watched.append((("pulse", reg.name, f.name), port.q))
        if f.swmod:
            watched.append((("swmod", reg.name, f.name), port.swmod))
        if f.swacc:
            watched.append((("swacc", reg.name, f.name), port.swacc))

    async def monitor(ctx):
        async for _, _, *values in ctx.tick().sample(*(signal for _, signal in watched)):
            for (event, _), value in zip(watched, values):
                if value:
                    events.append(event + ((value,) if event[0] == "pulse" else ()))

    hw_actions = []
    for reg, f, port in ports:
        if f.intr and f.hw_writable:
            hw_actions.append(("intr", reg, f, port))
        elif f.hw_writable and not f.storage:
            hw_actions.append(("live", reg, f, port))
        elif f.hw_writable and f.we:
            hw_actions.append(("we", reg, f, port))
        elif f.hw_loads_every_cycle:
            hw_actions.append(("always", reg, f, port))
        if f.hwset:
            hw_actions.append(("hwset", reg, f, port))
        if f.hwclr:
            hw_actions.append(("hwclr", reg, f, port))

    async def bench(ctx):
        for step in range(steps):
            kind = rng.choice(["read", "read", "write", "write", "write", "hw"])
            if kind == "read":
                offset = rng.choice(offsets) | rng.randrange(4)
                assert await lite_read(ctx, dut.bus, offset) == model.read(offset), \
                    f"step {step}: read {offset:#x}"
            elif kind == "write":
                offset = rng.choice(offsets)
                data = rng.getrandbits(32)
                strb = rng.choice([0xF, 0xF, rng.randrange(16)])
                assert await lite_write(ctx, dut.bus, offset, data, strb) == \
                    model.write(offset, data, strb), f"step {step}: write {offset:#x}"
            else:
                action, reg, f, port = rng.choice(hw_actions)
                value = rng.getrandbits(f.width)
                if action == "intr":
                    await pulse(ctx, port.d, value)
                    model.interrupt(reg.name, f.name, value)
                elif action == "live":
                    ctx.set(port.d, value)
                    model.set_input(reg.name, f.name, value)
                elif action == "always":
                    ctx.set(port.d, value)
                    model.hw_write(reg.name, f.name, value)
                elif action == "we":
                    ctx.set(port.d, value)
                    await pulse(ctx, port.we)
                    model.hw_write(reg.name, f.name, value)
                else:
                    await pulse(ctx, getattr(port, action))
                    getattr(model, f"hw_{action[2:]}")(reg.name, f.name)
            await ctx.tick().repeat(2)
            assert events == model.events, f"step {step}"
            events.clear()
            model.events.clear()
            assert ctx.get(dut.irq) == model.irq, f"step {step}"
            for reg, f, port in ports:
                if "q" in f.hw_ports() and not f.singlepulse:
                    assert ctx.get(port.q) == model.value(reg.name, f.name), \
                        f"step {step}: {reg.name}.{f.name}"
                if f.intr:
                    assert ctx.get(dut.register_interface(reg.name).intr) == \
                        model.intr(reg.name), f"step {step}: {reg.name}.intr"

    simulate(dut, bench, processes=[monitor])


def test_random_against_model(spec):
    run_random(spec, seed=1, steps=500)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(2, 8))
def test_random_against_model_soak(spec, seed):
    run_random(spec, seed=seed, steps=3000)
