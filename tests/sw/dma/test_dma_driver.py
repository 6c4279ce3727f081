"""The DMA driver and the channel's registers, on a simulated channel and memory."""

import errno
import random

import pytest
from amaranth.sim import Simulator

from dmabuf_soc.hw.bus.axi import Resp
from dmabuf_soc.sim.bus.checker import AXI4Checker
from dmabuf_soc.sim.bus.subordinate import AXI4Subordinate
from dmabuf_soc.sim.bus.memory import ReferenceMemory
from dmabuf_soc.hw.dma.channel import DMA_RDL, DMAChannel
from dmabuf_soc.hw.dma.coalesce import IrqCoalescer
from dmabuf_soc.hw.dma.descriptor import (DESCRIPTOR_BYTES, ErrorCode, pack_descriptor,
                                          unpack_descriptor)
from dmabuf_soc.sim.dma.model import bursts
from dmabuf_soc.hw.regs import block_spec, compile_rdl
from dmabuf_soc.sw.dma.channel import DmaChannel, DmaError
from dmabuf_soc.sw.dma.testing import ChannelMachine
from dmabuf_soc.sw.regs import RegisterBank

SRC, DST, RING = 0x8000_0000, 0x1_0000_0000, 0x800F_0000


def run_driver(scenario, *, error=None, seed=0, **channel_params):
    rng = random.Random(seed)
    channel = DMAChannel(stream_id=5, **channel_params)
    memory = ReferenceMemory()
    memory.write(SRC, rng.randbytes(0x20000))
    sim = Simulator(channel)
    sim.add_clock(1e-8)
    subordinate = AXI4Subordinate(channel.bus, memory, rng=rng, read_latency=12,
                                  write_latency=6, ready_gap=0.1, valid_gap=0.1, error=error)
    subordinate.add_to(sim)
    checker = AXI4Checker(channel.bus, name="dma")
    checker.add_to(sim)
    spec = block_spec(compile_rdl(DMA_RDL, top="dma_channel"))

    async def peek(ctx, addr, n):
        return memory.read(addr, n)

    async def poke(ctx, addr, data):
        memory.write(addr, data)

    async def testbench(ctx):
        machine = ChannelMachine(ctx, channel, peek=peek, poke=poke,
                                 clock=lambda: checker.cycle)
        bank = RegisterBank(machine, spec)
        await scenario(machine, bank, memory, rng)

    sim.add_testbench(testbench)
    sim.run()
    checker.assert_clean(idle=True)
    return subordinate


@pytest.mark.parametrize("use_descriptors", [True, False], ids=["sg", "register"])
def test_driver_memcpy_and_sg(use_descriptors):
    async def scenario(machine, bank, memory, rng):
        chan = DmaChannel(machine, bank, desc_base=RING, desc_count=8, irq_line=0,
                          use_descriptors=use_descriptors)
        copy = chan.prep_memcpy(DST + 3, SRC + 1, 1000)
        dst_list = [(DST + 0x2000 + 0x300 * i + rng.randrange(8), rng.randint(1, 200))
                    for i in range(5)]
        total = sum(n for _, n in dst_list)
        src_list = [(SRC + 0x8000, total // 2), (SRC + 0x9005, total - total // 2)]
        sg = chan.prep_sg(dst_list, src_list)
        assert await chan.residue(copy) == 1000
        chan.submit(copy)
        chan.submit(sg)
        await chan.issue_pending()
        await copy.completion.wait()
        await sg.completion.wait()
        assert await chan.residue(sg) == 0
        assert memory.read(DST + 3, 1000) == memory.read(SRC + 1, 1000)
        source = memory.read(SRC + 0x8000, total // 2) + memory.read(SRC + 0x9005,
                                                                      total - total // 2)
        assert b"".join(memory.read(a, n) for a, n in dst_list) == source
        # Registers: counters and the completed count.
        assert await bank.read("BYTES") == 1000 + total
        assert await bank.read("BUSY_CYCLES") > 0
        if use_descriptors:
            assert await bank.read("COMPLETED") == len(copy.segments) + len(sg.segments)
        assert not machine.irq_pending(0)

    run_driver(scenario)


def test_driver_chain_extended_while_running():
    async def scenario(machine, bank, memory, rng):
        chan = DmaChannel(machine, bank, desc_base=RING, desc_count=6, irq_line=0)
        txs = [chan.prep_memcpy(DST + 0x1000 * i + i, SRC + 0x1000 * i, 3000 + i)
               for i in range(8)]
        for tx in txs:
            chan.submit(tx)
            await chan.issue_pending()
        for tx in txs:
            await tx.completion.wait()
        for i in range(8):
            assert memory.read(DST + 0x1000 * i + i, 3000 + i) == \
                memory.read(SRC + 0x1000 * i, 3000 + i)

    run_driver(scenario)


def test_driver_error_recovery():
    bad = bursts(SRC + 0x4000, 2000)[3][0]

    def error(write, addr):
        return Resp.SLVERR if not write and addr == bad else None

    async def scenario(machine, bank, memory, rng):
        chan = DmaChannel(machine, bank, desc_base=RING, desc_count=8, irq_line=0)
        good1 = chan.prep_memcpy(DST, SRC, 2000)
        failing = chan.prep_memcpy(DST + 0x4000, SRC + 0x4000, 2000)
        good2 = chan.prep_memcpy(DST + 0x8000, SRC + 0x8000, 2000)
        for tx in (good1, failing, good2):
            chan.submit(tx)
        await chan.issue_pending()
        await good1.completion.wait()
        with pytest.raises(DmaError) as info:
            await failing.completion.wait()
        assert info.value.errno == errno.EIO and info.value.code == ErrorCode.READ
        assert info.value.desc == failing.descs[0]
        await good2.completion.wait()
        assert memory.read(DST + 0x8000, 2000) == memory.read(SRC + 0x8000, 2000)
        assert memory.read(DST, 2000) == memory.read(SRC, 2000)
        assert await chan.residue(failing) == 2000

    run_driver(scenario, error=error)


def test_driver_terminate_all():
    async def scenario(machine, bank, memory, rng):
        chan = DmaChannel(machine, bank, desc_base=RING, desc_count=8, irq_line=0)
        tx = chan.prep_memcpy(DST, SRC, 60000)
        chan.submit(tx)
        await chan.issue_pending()
        await machine.tick(300)
        await chan.terminate_all()
        with pytest.raises(DmaError) as info:
            await tx.completion.wait()
        assert info.value.errno == errno.ECANCELED
        after = chan.prep_memcpy(DST + 0x10000, SRC + 7, 500)
        chan.submit(after)
        await chan.issue_pending()
        await after.completion.wait()
        assert memory.read(DST + 0x10000, 500) == memory.read(SRC + 7, 500)

    run_driver(scenario)


def test_error_interrupt_follows_enable():
    async def scenario(machine, bank, memory, rng):
        await bank.write("LEN", 0)
        await bank.write("CTRL", go=1)
        await machine.tick(5)
        status = await bank.read_fields("STATUS")
        assert status["halted"] and status["err_code"] == ErrorCode.ZERO_LEN.value
        assert (await bank.read_fields("INTR"))["error"] == 1
        assert not machine.irq_pending(0)          # not enabled
        await bank.write("INTR_EN", error=1)
        await machine.tick(1)
        assert machine.irq_pending(0)
        await bank.write("INTR", error=1)          # write 1 to clear
        await machine.tick(1)
        assert not machine.irq_pending(0)
        await bank.write("CTRL", soft_reset=1)
        await machine.tick(5)
        assert not (await bank.read_fields("STATUS"))["halted"]

    run_driver(scenario)


@pytest.mark.parametrize("seed", range(3))
def test_coalescer_against_model(seed):
    rng = random.Random(seed)
    dut = IrqCoalescer()
    threshold, delay = rng.choice([0, 1, 3, 5]), rng.choice([0, 4, 17])
    events = [rng.random() < 0.15 for _ in range(400)]
    idles = [rng.random() < 0.05 for _ in range(400)]
    fired = []

    async def testbench(ctx):
        ctx.set(dut.threshold, threshold)
        ctx.set(dut.delay, delay)
        for event, idle in zip(events, idles):
            ctx.set(dut.event, event)
            ctx.set(dut.idle, idle)
            fired.append(ctx.get(dut.fire))
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(testbench)
    sim.run()
    # Model: fire on the threshold, on the delay since the last event, or when idle.
    pending, timer, expected = 0, 0, []
    for event, idle in zip(events, idles):
        count = pending + event
        timed_out = delay and timer == delay and pending
        fire = bool(count and (count >= threshold or timed_out or idle))
        expected.append(fire)
        timer = 0 if event or fire else (timer + 1 if pending and timer != delay else timer)
        pending = 0 if fire else count
    assert fired == expected
    assert sum(events) == 0 or any(fired)


# ---- Misaligned descriptor pointers (issue 29) ----

def test_misaligned_curdesc_through_registers():
    """The channel's registers written directly (no driver): a misaligned CURDESC halts the
    channel with MISALIGNED and ERR_DESC the pointer, before any bus access."""
    async def scenario(machine, bank, memory, rng):
        memory.write(RING, pack_descriptor(next=0, src=SRC, dst=DST, length=64))
        await bank.write("CURDESC_HI", (RING + 0x10) >> 32)
        await bank.write("CURDESC_LO", (RING + 0x10) & 0xffff_ffff)
        await bank.write("TAILDESC_HI", RING >> 32)
        await bank.write("TAILDESC_LO", RING & 0xffff_ffff)
        await machine.tick(20)
        status = await bank.read_fields("STATUS")
        assert status["halted"] and not status["busy"]
        assert status["err_code"] == ErrorCode.MISALIGNED.value
        assert status["err_resp"] == Resp.OKAY.value
        assert await bank.read("ERR_DESC_LO") == (RING + 0x10) & 0xffff_ffff
        assert await bank.read("ERR_DESC_HI") == (RING + 0x10) >> 32
        assert await bank.read("COMPLETED") == 0
        assert (await bank.read_fields("INTR"))["error"] == 1
        assert not unpack_descriptor(memory.read(RING, DESCRIPTOR_BYTES))["completed"]
        assert memory.read(DST, 64) == bytes(64)
        await bank.write("CTRL", soft_reset=1)
        await machine.tick(10)
        assert not (await bank.read_fields("STATUS"))["halted"]

    run_driver(scenario)


def test_driver_reports_misaligned_next_as_einval():
    """A descriptor whose next pointer is corrupted (misaligned) in memory: the transaction
    fails with EINVAL and code MISALIGNED; the channel recovers for the next one."""
    async def scenario(machine, bank, memory, rng):
        store = machine.store

        async def corrupting_store(addr, data, **kwargs):
            if addr == RING and len(data) == DESCRIPTOR_BYTES:
                raw = unpack_descriptor(data)
                raw["next"] += 8
                data = pack_descriptor(**raw)
            await store(addr, data, **kwargs)

        machine.store = corrupting_store
        chan = DmaChannel(machine, bank, desc_base=RING, desc_count=8, irq_line=0)
        tx = chan.prep_sg([(DST, 300), (DST + 0x1000, 300)], [(SRC, 300), (SRC + 0x1000, 300)])
        chan.submit(tx)
        await chan.issue_pending()
        with pytest.raises(DmaError) as info:
            await tx.completion.wait()
        assert info.value.errno == errno.EINVAL
        assert info.value.code == ErrorCode.MISALIGNED
        assert info.value.desc == RING + DESCRIPTOR_BYTES + 8
        assert "aligned" in str(info.value)
        machine.store = store
        after = chan.prep_memcpy(DST + 0x2000, SRC + 0x2000, 500)
        chan.submit(after)
        await chan.issue_pending()
        await after.completion.wait()
        assert memory.read(DST + 0x2000, 500) == memory.read(SRC + 0x2000, 500)
        assert memory.read(DST + 0x1000, 300) != memory.read(SRC + 0x1000, 300)

    run_driver(scenario)


def test_driver_refuses_misaligned_ring():
    with pytest.raises(OSError) as info:
        DmaChannel(None, None, desc_base=0x8000_0010)
    assert info.value.errno == errno.EINVAL
