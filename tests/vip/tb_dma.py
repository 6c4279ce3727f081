"""The DMA channel's Verilog under cocotb and cocotbext-axi, against the reference model.

The registers are programmed through cocotbext-axi's AXI4-Lite manager by the driver's own
register bank; memory is cocotbext-axi's ``AxiRam`` or :class:`~harness.AxiMemory` (random
pauses, read beats of different IDs interleaved, write responses reordered, error windows).
Every run is compared with :class:`~dmabuf_soc.sim.dma.model.DMAModel`: memory byte for byte,
the status registers, the completed count and the faulting descriptor.
"""

import os

import cocotb
from cocotb.triggers import ClockCycles, RisingEdge
from cocotbext.axi import AxiBus, AxiRam

from dmabuf_soc.hw.bus.axi import Resp
from dmabuf_soc.hw.dma.descriptor import (DESCRIPTOR_BYTES, STATUS_OFFSET, ErrorCode,
                                          pack_descriptor)
from dmabuf_soc.sim.dma.model import DMAModel

from harness import AxiMemory, Memory, RegisterPort, quiet, seeded_rng, start

BASE = 0x8000_0000
SIZE = 0x10000
DESCRIPTORS = BASE                       # 64 descriptors at most
DATA = BASE + 0x1000                     # buffers from here on
ROUNDS = int(os.environ.get("VIP_ROUNDS", "3"))


def _random_memory(rng):
    memory = Memory(BASE, SIZE)
    memory.write(DATA, rng.randbytes(SIZE - 0x1000))
    return memory


def _segments(rng, count):
    """``count`` copies between disjoint random ranges of the data area (sources and
    destinations never overlap, as the model requires of one chain)."""
    slots = rng.sample(range((SIZE - 0x1000) // 0x800), 2 * count)
    segments = []
    for index in range(count):
        src = DATA + slots[2 * index] * 0x800 + rng.randrange(0x100)
        dst = DATA + slots[2 * index + 1] * 0x800 + rng.randrange(0x100)
        segments.append((src, dst, rng.randrange(1, 0x700)))
    return segments


def _write_chain(memory, segments):
    addrs = [DESCRIPTORS + DESCRIPTOR_BYTES * index for index in range(len(segments))]
    for index, (addr, (src, dst, length)) in enumerate(zip(addrs, segments)):
        last = index == len(segments) - 1
        memory.write(addr, pack_descriptor(next=0 if last else addrs[index + 1], src=src,
                                           dst=dst, length=length, irq_on_complete=last))
    return addrs


async def _wait_irq(dut, cycles=200_000):
    for _ in range(cycles):
        await RisingEdge(dut.clk)
        if dut.irq.value == 1:
            return
    raise AssertionError(f"no interrupt in {cycles} cycles")


async def _run_chain(dut, regs, addrs, rules):
    await regs.write("COALESCE", threshold=1, delay=0)
    await regs.write("INTR_EN", done=1, error=1)
    for name, addr in (("CURDESC", addrs[0]), ("TAILDESC", addrs[-1])):
        await regs.write(f"{name}_HI", addr >> 32)
        await regs.write(f"{name}_LO", addr & 0xffff_ffff)
    await _wait_irq(dut)
    while (await regs.read_fields("STATUS"))["busy"]:
        await ClockCycles(dut.clk, 8)
    # The error interrupt comes before the faulting descriptor's status write-back, which
    # waits for the bursts in flight to drain.
    await quiet(dut, rules)


async def _check_against_model(regs, memory, expected, outcome, segments, addrs):
    """Compare the channel's registers and memory with the model's ``outcome``.

    After a READ or WRITE error the engine may halt with fewer transfers completed than the
    model, which runs them one at a time: the completed ones are a prefix of the chain, and
    the destinations and status words of those after it are left open, as the engine's
    own tests (``tests/hw/dma/test_dma_errors.py``) allow."""
    status = await regs.read_fields("STATUS")
    assert ErrorCode(status["err_code"]) == outcome.error, status
    assert bool(status["halted"]) == (outcome.error != ErrorCode.NONE), status
    done = await regs.read("COMPLETED")
    open_ranges = list(outcome.undefined)
    if outcome.error != ErrorCode.NONE:
        assert Resp(status["err_resp"]) == outcome.resp, status
        err_desc = await regs.read("ERR_DESC_HI") << 32 | await regs.read("ERR_DESC_LO")
        assert err_desc == outcome.err_desc
    if outcome.error in (ErrorCode.READ, ErrorCode.WRITE):
        fault = addrs.index(outcome.err_desc)
        assert done <= len(outcome.completed) == fault
        open_ranges += [(dst, length) for _, dst, length in segments[done:]]
        open_ranges += [(addr + STATUS_OFFSET, 8) for addr in addrs[done:fault]]
    else:
        assert done == len(outcome.completed)
    for addr, length in open_ranges:
        offset = addr - BASE
        expected.data[offset:offset + length] = memory.data[offset:offset + length]
    mismatches = [hex(BASE + i) for i, (a, b) in enumerate(zip(memory.data, expected.data))
                  if a != b]
    assert not mismatches, f"{len(mismatches)} bytes differ from the model, first at " \
                           f"{mismatches[:8]}"


async def _soft_reset(dut, regs):
    await regs.write("CTRL", soft_reset=1)
    while (await regs.read_fields("STATUS"))["resetting"]:
        await ClockCycles(dut.clk, 4)
    await regs.write("INTR", done=1, error=1)


@cocotb.test()
async def descriptor_chains_out_of_order_memory(dut):
    """Random descriptor chains; memory answers interleaved, reordered, with random pauses."""
    rng = seeded_rng()
    rules = await start(dut)
    memory = _random_memory(rng)
    AxiMemory(dut, "m_axi", memory, rng=rng, pause=0.3, interleave=True)
    regs = RegisterPort(dut, "dma0").bank
    for _ in range(ROUNDS):
        segments = _segments(rng, rng.randrange(1, 9))
        addrs = _write_chain(memory, segments)
        expected = memory.copy()
        outcome = DMAModel(expected).chain(addrs[0], addrs[-1])
        await _run_chain(dut, regs, addrs, rules)
        await _check_against_model(regs, memory, expected, outcome, segments, addrs)
        await _soft_reset(dut, regs)         # COMPLETED counts from zero again
    for rule in rules:
        rule.assert_clean()


@cocotb.test()
async def register_mode_on_vip_ram(dut):
    """Register-mode copies into cocotbext-axi's own AxiRam, unmodified."""
    rng = seeded_rng()
    rules = await start(dut)
    ram = AxiRam(AxiBus.from_prefix(dut, "m_axi"), dut.clk, dut.rst, size=2 ** 32)
    image = _random_memory(rng)
    ram.write(BASE, image.data)
    regs = RegisterPort(dut, "dma0").bank
    await regs.write("INTR_EN", done=1, error=1)
    for src, dst, length in _segments(rng, ROUNDS + 2):
        for name, addr in (("SRC", src), ("DST", dst)):
            await regs.write(f"{name}_HI", addr >> 32)
            await regs.write(f"{name}_LO", addr & 0xffff_ffff)
        await regs.write("LEN", length)
        await regs.write("CTRL", go=1)
        await _wait_irq(dut)
        await regs.write("INTR", done=1, error=1)
        DMAModel(image).register_transfer(src, dst, length)
        assert ram.read(BASE, SIZE) == bytes(image.data)
    status = await regs.read_fields("STATUS")
    assert not status["halted"] and ErrorCode(status["err_code"]) == ErrorCode.NONE
    for rule in rules:
        rule.assert_clean()


@cocotb.test()
async def bus_errors_halt_as_the_model_says(dut):
    """A page of the data area answers SLVERR (reads or writes, by round) and addresses
    outside memory DECERR: the channel halts with the model's error code, faulting
    descriptor and completed count, and memory outside the failed transfer is untouched."""
    rng = seeded_rng()
    rules = await start(dut)
    memory = _random_memory(rng)
    failing = {"write": None, "page": None}

    def error(write, addr):
        if failing["page"] is not None and write == failing["write"] \
                and addr // 0x1000 == failing["page"]:
            return Resp.SLVERR
        return None

    AxiMemory(dut, "m_axi", memory, rng=rng, pause=0.2, error=error)
    regs = RegisterPort(dut, "dma0").bank
    for round in range(ROUNDS + 1):
        segments = _segments(rng, rng.randrange(2, 7))
        if round == ROUNDS:                  # a source outside memory: DECERR
            src, dst, length = segments[-1]
            segments[-1] = (BASE + SIZE + 0x1000, dst, length)
            failing["page"] = None
        else:
            victim = rng.choice(segments)
            failing["write"] = bool(round % 2)
            failing["page"] = (victim[1] if failing["write"] else victim[0]) // 0x1000
        addrs = _write_chain(memory, segments)
        expected = memory.copy()
        outcome = DMAModel(expected, error=lambda write, addr: (
            Resp.DECERR if not expected.contains(addr) else error(write, addr))).chain(
            addrs[0], addrs[-1])
        assert outcome.error != ErrorCode.NONE
        await _run_chain(dut, regs, addrs, rules)
        await _check_against_model(regs, memory, expected, outcome, segments, addrs)
        await _soft_reset(dut, regs)
    for rule in rules:
        rule.assert_clean()
