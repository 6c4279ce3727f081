"""The cache behind its registers (hw/cache/cache.py) driven by its driver (sw/cpu/cache.py).

A small machine holds just the cache, its memory (an AXI4 subordinate model with the protocol
checker on the cache's port) and the register block's AXI4-Lite port. DMA is modelled by the
memory's backdoor: ``poke`` is a device writing memory, ``peek`` a device reading it; neither
looks in the cache, which is what makes these hazards real.
"""

import random

import pytest
from amaranth.hdl import Module, Signal
from amaranth.sim import Simulator

from dmabuf_soc.hw.bus.axi import Resp
from dmabuf_soc.sim.bus.checker import AXI4Checker
from dmabuf_soc.sim.bus.subordinate import AXI4Subordinate
from dmabuf_soc.sim.bus.memory import ReferenceMemory
from dmabuf_soc.sim.bus.lite import lite_read, lite_write
from dmabuf_soc.hw.cache.cache import RDL_PATH, Cache
from dmabuf_soc.hw.cache.core import MaintenanceOp, MaintenanceScope
from dmabuf_soc.sim.cache.cpu_port import CpuPortDriver
from dmabuf_soc.hw.config import SocConfig
from dmabuf_soc.hw.regs.compile import compile_rdl
from dmabuf_soc.hw.regs.spec import block_spec
from dmabuf_soc.sw.cpu.cache import DataCache
from dmabuf_soc.sw.dma_mapping.arch import ArchDmaSync
from dmabuf_soc.sw.dma_mapping.direction import DmaDirection
from dmabuf_soc.sw.machine.access import split_words
from dmabuf_soc.sw.machine.base import BusError, Machine
from dmabuf_soc.sw.machine.pysim import wait_irq_sampled

BUF = 0x8000_4000


class CacheMachine(Machine):
    """A :class:`Machine` made of the cache alone: MMIO reaches its registers, loads and
    stores its CPU port, peek/poke the memory behind it. IRQ line 0 is the cache's."""

    def __init__(self, ctx, cache, cycle, memory, cpu):
        self.config = SocConfig()
        self._ctx, self._cache, self._cycle, self._memory = ctx, cache, cycle, memory
        self._cpu = cpu

    @property
    def cycle(self):
        return self._ctx.get(self._cycle)

    async def tick(self, n=1):
        if n:
            await self._ctx.tick().repeat(n)

    async def mmio_read(self, addr):
        data, resp = await lite_read(self._ctx, self._cache.regs, addr)
        if resp != Resp.OKAY:
            raise BusError(f"MMIO read at {addr:#x}: {resp.name}")
        return data

    async def mmio_write(self, addr, value):
        resp = await lite_write(self._ctx, self._cache.regs, addr, value)
        if resp != Resp.OKAY:
            raise BusError(f"MMIO write at {addr:#x}: {resp.name}")

    async def _access(self, addr, *, write, data, strb, cacheable):
        access = self._cpu.issue(addr, write=write, data=data, strb=strb, cacheable=cacheable)
        await self._cpu.wait(self._ctx, access)
        if access.error:
            raise BusError(f"CPU access at {addr:#x} erred")
        return access.rsp_data

    async def load(self, addr, size, *, cacheable=True):
        out = bytearray()
        for word_addr, offset, length in split_words(addr, size, 8):
            data = await self._access(word_addr, write=False, data=0,
                                      strb=((1 << length) - 1) << offset, cacheable=cacheable)
            out += data.to_bytes(8, "little")[offset:offset + length]
        return bytes(out)

    async def store(self, addr, data, *, cacheable=True):
        data, pos = bytes(data), 0
        for word_addr, offset, length in split_words(addr, len(data), 8):
            word = int.from_bytes(bytes(offset) + data[pos:pos + length], "little")
            await self._access(word_addr, write=True, data=word,
                               strb=((1 << length) - 1) << offset, cacheable=cacheable)
            pos += length

    def irq_pending(self, line):
        return bool(self._ctx.get(self._cache.irq))

    async def wait_irq(self, line, *, timeout_cycles):
        await wait_irq_sampled(self._ctx, self._cache.irq, line=line,
                               timeout_cycles=timeout_cycles)

    async def peek(self, addr, n):
        return self._memory.read(addr, n)

    async def poke(self, addr, data):
        self._memory.write(addr, data)


def run_on_cache(scenario, *, seed=0):
    """Run ``async def scenario(machine, cache_driver)`` on a :class:`CacheMachine`."""
    cache = Cache()
    m = Module()
    m.submodules.cache = cache
    cycle = Signal(32)
    m.d.sync += cycle.eq(cycle + 1)
    sim = Simulator(m)
    sim.add_clock(1e-8)
    memory = ReferenceMemory()
    AXI4Subordinate(cache.bus, memory, rng=random.Random(seed), read_latency=20,
                    write_latency=10, ready_gap=0.1, valid_gap=0.1).add_to(sim)
    checker = AXI4Checker(cache.bus, name="cache")
    checker.add_to(sim)
    cpu = CpuPortDriver(cache.cpu, cycle)
    cpu.add_to(sim)
    block = block_spec(compile_rdl(RDL_PATH))

    async def testbench(ctx):
        machine = CacheMachine(ctx, cache, cycle, memory, cpu)
        await scenario(machine, DataCache(machine, block))
        await ctx.tick().repeat(40)

    sim.add_testbench(testbench)
    sim.run()
    checker.assert_clean(idle=True)


OLD = bytes(range(64))
NEW = bytes(0xA0 + n % 16 for n in range(64))
CPU = b"CPU data " * 7 + b"!"


def test_rdl_enums_match_the_core():
    spec = block_spec(compile_rdl(RDL_PATH))
    ctrl = spec.register("MAINT_CTRL")
    assert (ctrl.field("op").width, ctrl.field("scope").width) == (2, 2)
    assert ctrl.field("op").reset == MaintenanceOp.CLEAN.value
    assert ctrl.field("scope").reset == MaintenanceScope.RANGE.value


def test_geometry_and_counters_registers():
    async def scenario(machine, cache):
        assert await cache.geometry() == {"line_size": 64, "ways": 4, "sets": 32}
        await machine.store(BUF, CPU)
        assert await machine.load(BUF, 64) == CPU
        await cache.clean(BUF, 64)
        assert await cache.counters() == {"hits": 15, "misses": 1, "writebacks": 1,
                                          "lines_cleaned": 1, "lines_invalidated": 0}

    run_on_cache(scenario)


def test_completion_irq():
    async def scenario(machine, cache):
        await cache.regs.write("IRQ_ENABLE", done=1)
        await cache.regs.write("MAINT_CTRL", op=MaintenanceOp.CLEAN.value,
                               scope=MaintenanceScope.ALL.value)
        assert not machine.irq_pending(0)
        await cache.regs.write("MAINT_GO", go=1)
        await machine.wait_irq(0, timeout_cycles=500)
        await cache.regs.write("IRQ_STATUS", done=1)
        await machine.tick(2)
        assert not machine.irq_pending(0)

    run_on_cache(scenario)


# The hazards of a cache DMA does not snoop, each shown without and with the rule that
# prevents it.

@pytest.mark.parametrize("sync", [False, True])
def test_device_write_then_cpu_read(sync):
    async def scenario(machine, cache):
        arch = ArchDmaSync(cache)
        await machine.poke(BUF, OLD)
        assert await machine.load(BUF, 64) == OLD         # the line is now cached
        await arch.for_device(BUF, 64, DmaDirection.FROM_DEVICE)
        await machine.poke(BUF, NEW)                       # the device writes memory
        if sync:
            await arch.for_cpu(BUF, 64, DmaDirection.FROM_DEVICE)   # invalidate
            assert await machine.load(BUF, 64) == NEW
        else:
            # No dma_sync_*_for_cpu: the CPU reads its stale cached copy.
            assert await machine.load(BUF, 64) == OLD

    run_on_cache(scenario)


@pytest.mark.parametrize("sync", [False, True])
def test_cpu_write_then_device_read(sync):
    async def scenario(machine, cache):
        await machine.poke(BUF, OLD)
        await machine.store(BUF, CPU)
        if sync:
            await ArchDmaSync(cache).for_device(BUF, 64, DmaDirection.TO_DEVICE)   # clean
            assert await machine.peek(BUF, 64) == CPU
        else:
            # No dma_sync_*_for_device: the device reads memory the CPU's data never reached.
            assert await machine.peek(BUF, 64) == OLD

    run_on_cache(scenario)


def test_invalidate_of_dirty_line_drops_cpu_data():
    # Invalidating a line the CPU has written, without cleaning it first, throws the CPU's
    # data away. Linux's rules forbid it: a buffer the CPU wrote is cleaned
    # (dma_sync_*_for_device) before the device owns it, and dcache_inval_poc cleans the
    # partial lines at the ends of a range, so a plain invalidate only ever meets clean lines.
    async def scenario(machine, cache):
        await machine.poke(BUF, OLD)
        await machine.store(BUF, CPU)
        await cache.invalidate_range_unsafe(BUF, 64)
        assert await machine.load(BUF, 64) == OLD
        assert await machine.peek(BUF, 64) == OLD

    run_on_cache(scenario)


def test_invalidate_keeps_bytes_outside_the_range():
    # A 32-byte buffer in the middle of lines the CPU also wrote elsewhere: the partial lines
    # are cleaned and invalidated, the whole lines inside are only invalidated.
    async def scenario(machine, cache):
        await machine.poke(BUF, bytes(256))
        await machine.store(BUF, CPU * 4)
        await cache.invalidate(BUF + 48, 96)
        memory = await machine.peek(BUF, 256)
        # The head line (BUF..BUF+63) and tail line (BUF+128..) were written back...
        assert memory[:64] == (CPU * 4)[:64]
        assert memory[128:192] == (CPU * 4)[128:192]
        # ...the line wholly inside the range was dropped without write-back...
        assert memory[64:128] == bytes(64)
        # ...and the line past the range is still cached and dirty.
        assert memory[192:] == bytes(64)
        assert await machine.load(BUF + 192, 64) == (CPU * 4)[192:]
        assert (await cache.counters())["lines_invalidated"] == 3

    run_on_cache(scenario)
