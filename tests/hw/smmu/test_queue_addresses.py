"""The SMMU's own reads and writes keep the AXI rules whatever software does to the queue and
table registers: counterexamples of the formal proofs (dmabuf-soc formal --block
smmu_walker), replayed in simulation."""

from amaranth.sim import Simulator

from dmabuf_soc.hw.bus.axi import AXI4Signature, BOUNDARY
from dmabuf_soc.hw.smmu.cmdq import CommandQueue
from dmabuf_soc.hw.smmu.evtq import EventWriter
from dmabuf_soc.hw.smmu.walker import Walker
from dmabuf_soc.sim.bus.checker import AXI4Checker

BUS = AXI4Signature(addr_width=40, data_width=64, id_width=1, sid_width=1)


def _run(dut, bench, port=None):
    """Run ``bench`` on ``dut``, with a protocol checker on its AXI4 ``port`` if given."""
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    checker = None if port is None else AXI4Checker(port, name="bus")
    if checker is not None:
        checker.add_to(sim)
    sim.add_testbench(bench)
    sim.run()
    if checker is not None:
        checker.assert_clean()


def _ends_within_4k(addr, beats):
    return addr // BOUNDARY == (addr + beats * 8 - 1) // BOUNDARY


def test_stream_table_base_low_bits_ignored():
    # A base 8 bytes short of a 4 KiB boundary made the 16-byte STE read cross it.
    dut = Walker(clients=1, sid_width=1, bus_signature=BUS)

    async def bench(ctx):
        ctx.set(dut.enable, 1)
        ctx.set(dut.strtab_base, 0xFF8)
        ctx.set(dut.clients[0].valid, 1)
        for _ in range(20):
            await ctx.tick()
            if ctx.get(dut.bus.ar.valid):
                break
        assert ctx.get(dut.bus.ar.valid)
        assert ctx.get(dut.bus.ar.payload.addr) == 0xFF0
        assert _ends_within_4k(0xFF0, ctx.get(dut.bus.ar.payload.len) + 1)
        await ctx.tick()

    _run(dut, bench, dut.bus)


def test_event_address_held_while_waiting():
    # The event queue disabled and its base rewritten while a record's AW waited for
    # AWREADY changed the AW address before it was taken.
    dut = EventWriter(BUS)

    async def bench(ctx):
        ctx.set(dut.evtq.enable, 1)
        ctx.set(dut.evtq.base, 0xFE0)
        ctx.set(dut.write, 1)
        await ctx.tick()
        assert ctx.get(dut.aw.valid) and ctx.get(dut.aw.payload.addr) == 0xFE0
        await ctx.tick()                                # offered, not taken
        ctx.set(dut.evtq.enable, 0)
        ctx.set(dut.evtq.base, 0x7F_FFFF_FFE0)
        for _ in range(3):
            await ctx.tick()
            assert ctx.get(dut.aw.valid) and ctx.get(dut.aw.payload.addr) == 0xFE0
        ctx.set(dut.aw.ready, 1)
        await ctx.tick()
        ctx.set(dut.aw.ready, 0)
        ctx.set(dut.write, 0)
        await ctx.tick()

    _run(dut, bench)


def test_event_base_low_bits_ignored():
    dut = EventWriter(BUS)

    async def bench(ctx):
        ctx.set(dut.evtq.enable, 1)
        ctx.set(dut.evtq.base, 0xFE8)
        ctx.set(dut.write, 1)
        await ctx.tick()
        assert ctx.get(dut.aw.payload.addr) == 0xFE0

    _run(dut, bench)


def test_command_fetch_address_held_while_waiting():
    dut = CommandQueue(bus_signature=BUS)

    async def bench(ctx):
        ctx.set(dut.cmdq.enable, 1)
        ctx.set(dut.cmdq.base, 0xFF8)
        ctx.set(dut.prod, 1)
        for _ in range(5):
            await ctx.tick()
            if ctx.get(dut.bus.ar.valid):
                break
        assert ctx.get(dut.bus.ar.payload.addr) == 0xFF0
        await ctx.tick()                                # offered, not taken
        ctx.set(dut.cmdq.base, 0x2000)
        for _ in range(3):
            await ctx.tick()
            assert ctx.get(dut.bus.ar.valid) and ctx.get(dut.bus.ar.payload.addr) == 0xFF0

    _run(dut, bench, dut.bus)
