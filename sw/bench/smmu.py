"""SMMU cost on DMA: 128 KiB copies through the SMMU, scattered 4 KiB pages mapped contiguously in IOVA space, against bypass on contiguous buffers.

Measured on the RTL: a DMA channel (register mode: one transfer) whose port goes through
the SMMU, the SMMU's downstream and table ports into the interconnect, and the DDR model
(``SocConfig`` defaults), with protocol checkers on the SMMU's ports. The driver stack sets
it up: the SMMU driver, a DMA domain, ``dma_map_sgtable`` of 32 scattered pages per buffer
(one contiguous IOVA range each). The copy is 128 KiB rather than the 1 MiB of issue 4: the
built-in simulator needs about 10 minutes per 1 MiB copy of this design; 32 pages per
buffer already exceed the 16-entry IOTLB fourfold, so without prefetch every page misses
as it would in a 1 MiB copy. ``run(copy_bytes=1 << 20)`` runs the 1 MiB copy (the DDR banks
are then made large enough for it).

The copies run with the SMMU's next-page prefetch on (``CR0.prefetch_en``, the reset
value), then again with it off (the ``_no_prefetch`` figures).

* ``hit_added_latency_cycles``: for AR and AW handshakes that hit in the IOTLB, cycles
  from the upstream to the downstream handshake (minimum and median).
* ``scattered_copy_ratio_cold``: copy throughput with a cold IOTLB and walk cache over the
  throughput of the same copy with the stream in bypass on physically contiguous buffers;
  ``_warm``: the copy repeated (the walk cache is warm; the 16-entry IOTLB reaches only 64
  KiB of the 256 KiB touched, so each new page misses it unless prefetched);
  ``tlb_resident_copy_ratio``: a 32 KiB copy whose 16 pages all stay in the IOTLB, repeated
  (with prefetch, the page after each buffer is prefetched too, so 18 pages compete for the
  16 entries and some miss again: ``_no_prefetch`` is the copy without).
* ``walks_cold_copy``, ``prefetches_cold_copy``: demand and prefetch walks of the cold copy.
* ``walk_memory_reads_per_miss``: descriptor reads per (demand) page-table walk of the cold
  copy without prefetch, with the walk cache and with it disabled.
"""

import dataclasses
import random
import statistics

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.sim import Simulator

from ...hw.bus.checker import AXI4Checker
from ...hw.bus.interconnect import Interconnect, Window
from ...hw.config import Bank, SocConfig
from ...hw.ddr.backdoor import peek as ddr_peek, poke as ddr_poke
from ...hw.ddr.model import DDRModel
from ...hw.dma.engine import DMAEngine
from ...hw.regs import block_spec, compile_rdl
from ...hw.smmu.format import StreamConfig
from ...hw.smmu.smmu import SMMU, SMMU_RDL
from ..device import Device
from ..dma.testing import ChannelMachine
from ..dma_mapping.direction import DMA_BIT_MASK, DmaDirection
from ..dma_mapping.mapping import DmaPlatform, dma_map_sgtable
from ..iommu.arm_smmu import ArmSmmu
from ..iommu.iommu import IOMMU_DOMAIN_DMA, iommu_attach_device, iommu_domain_alloc
from ..mm.kmem import KernelMemory
from ..mm.memblock import Memblock
from ..mm.page_alloc import GFP_KERNEL, PAGE_SIZE, PageAllocator
from ..mm.scatterlist import SgTable
from ..regs import RegisterBank

COPY_BYTES = 128 * 1024
RESIDENT_BYTES = 32 * 1024
NO_WALK_CACHE_BYTES = 64 * 1024


def _config(copy_bytes):
    """The default SoC, with banks large enough for scattered and contiguous buffers (and
    page tables) of two ``copy_bytes`` copies."""
    config = SocConfig()
    size = max(bank.size for bank in config.banks)
    while size < 4 * copy_bytes:
        size *= 2
    banks = tuple(Bank(bank.name, base=-(-bank.base // size) * size, size=size)
                  for bank in config.banks)
    return dataclasses.replace(config, banks=banks)


class _Rig:
    """DMA engine → SMMU → interconnect → DDR, and the driver stack on top."""

    def __init__(self, config):
        self.config = config
        sig = config.manager_signature
        self.engine = DMAEngine(addr_width=40, data_width=64, id_width=sig.id_width,
                                sid_width=sig.sid_width, stream_id=0)
        self.smmu = SMMU(config)
        base, size = config.ddr_span
        self.interconnect = Interconnect(sig, 2, [Window("ddr", base, size)],
                                         max_outstanding=config.max_outstanding)
        self.ddr = DDRModel(config, id_width=self.interconnect.subordinate_signature.id_width)
        m = Module()
        for name in ("engine", "smmu", "interconnect", "ddr"):
            m.submodules[name] = getattr(self, name)
        wiring.connect(m, self.engine.bus, self.smmu.upstream[0])
        wiring.connect(m, self.smmu.downstream[0], self.interconnect.managers[0])
        wiring.connect(m, self.smmu.table, self.interconnect.managers[1])
        wiring.connect(m, self.interconnect.subordinates[0], self.ddr.bus)
        self.sim = Simulator(m)
        self.sim.add_clock(1e-8)
        self.checkers = {name: AXI4Checker(port, name=name, record=True) for name, port in
                         (("upstream", self.smmu.upstream[0]),
                          ("downstream", self.smmu.downstream[0]),
                          ("table", self.smmu.table))}
        for checker in self.checkers.values():
            checker.add_to(self.sim)

    @property
    def cycle(self):
        return self.checkers["upstream"].cycle

    async def copy(self, ctx, src, dst, length):
        """One register-mode transfer; returns the cycles from start to completion."""
        e = self.engine
        ctx.set(e.src, src)
        ctx.set(e.dst, dst)
        ctx.set(e.length, length)
        ctx.set(e.go, 1)
        start = self.cycle
        await ctx.tick()
        ctx.set(e.go, 0)
        done = e.completed
        target = ctx.get(done) + 1
        while ctx.get(done) != target:
            await ctx.tick()
        cycles = self.cycle - start
        while not ctx.get(e.quiet):
            await ctx.tick()
        return cycles


def _hit_latencies(rig, since):
    """Cycles from upstream to downstream handshake of each AR/AW accepted at or after
    ``since``, in order (each channel is in order through the SMMU)."""
    latencies = []
    up, down = rig.checkers["upstream"].log, rig.checkers["downstream"].log
    for channel in ("ar", "aw"):
        ups = [cycle for cycle, ch, _ in up if ch == channel and cycle >= since]
        downs = [cycle for cycle, ch, _ in down if ch == channel and cycle >= since]
        latencies += [d - u for u, d in zip(ups, downs)]
    return latencies


def run(*, backend="pysim", progress=None, copy_bytes=COPY_BYTES):
    """Run the benchmark; ``copy_bytes`` (a multiple of 4 KiB, at least 64 KiB) is the size
    of the scattered copies."""
    if backend != "pysim":
        raise ValueError(f"The SMMU benchmark runs on the 'pysim' backend, not {backend!r}")
    if (not isinstance(copy_bytes, int) or copy_bytes % PAGE_SIZE or
            copy_bytes < NO_WALK_CACHE_BYTES):
        raise ValueError(f"Copy size must be a multiple of {PAGE_SIZE} bytes of at least "
                         f"{NO_WALK_CACHE_BYTES}, not {copy_bytes!r}")
    rig = _Rig(_config(copy_bytes))
    rng = random.Random(4)
    result = {}
    steps = 8

    def step(done, what):
        if progress is not None:
            progress(done, steps, what)

    async def testbench(ctx):
        async def peek(ctx, addr, n):
            return await ddr_peek(ctx, rig.ddr, addr, n)

        async def poke(ctx, addr, data):
            await ddr_poke(ctx, rig.ddr, addr, data)

        machine = ChannelMachine(ctx, rig.smmu, peek=peek, poke=poke, clock=lambda: rig.cycle,
                                 config=rig.config)
        mm = PageAllocator(Memblock(rig.config.banks))
        kmem = KernelMemory(machine)
        regs = RegisterBank(machine, block_spec(compile_rdl(SMMU_RDL, top="smmu")))
        smmu = ArmSmmu(machine, regs, mm)
        await smmu.probe()
        platform = DmaPlatform(mm, kmem)
        dev = platform.add_device(Device("dma0", coherent=True, stream_id=0,
                                         max_segment_size=copy_bytes))
        dev.dma_set_mask(DMA_BIT_MASK(40))
        domain = await iommu_domain_alloc(smmu, IOMMU_DOMAIN_DMA, kmem=kmem)
        await iommu_attach_device(domain, dev)

        data = rng.randbytes(copy_bytes)
        count = copy_bytes // PAGE_SIZE
        pages = [mm.alloc_pages(GFP_KERNEL, 0, owner="bench") for _ in range(2 * count)]
        rng.shuffle(pages)
        src_pages, dst_pages = pages[:count], pages[count:]
        for n, page in enumerate(src_pages):
            await poke(ctx, page.phys, data[n * PAGE_SIZE:(n + 1) * PAGE_SIZE])
        src_sgt = SgTable.from_blocks([(page, PAGE_SIZE) for page in src_pages])
        dst_sgt = SgTable.from_blocks([(page, PAGE_SIZE) for page in dst_pages])
        await dma_map_sgtable(dev, src_sgt, DmaDirection.TO_DEVICE)
        await dma_map_sgtable(dev, dst_sgt, DmaDirection.FROM_DEVICE)
        assert src_sgt.nents == dst_sgt.nents == 1
        src, dst = src_sgt.sgl[0].dma_address, dst_sgt.sgl[0].dma_address

        async def check_dst(length):
            got = b"".join([await peek(ctx, page.phys, PAGE_SIZE)
                            for page in dst_pages[:length // PAGE_SIZE]])
            return got == data[:length]

        async def counted_copy(length):
            """A copy: its cycles, and how the SMMU's counters moved."""
            before = await smmu.counters()
            cycles = await rig.copy(ctx, src, dst, length)
            after = await smmu.counters()
            return cycles, {name: after[name] - before[name] for name in after}

        async def cold_and_warm():
            await smmu.tlb_inv_asid(domain.asid)
            cold, cold_counts = await counted_copy(copy_bytes)
            correct.append(await check_dst(copy_bytes))
            since = rig.cycle
            warm, _ = await counted_copy(copy_bytes)
            correct.append(await check_dst(copy_bytes))
            return cold, cold_counts, warm, _hit_latencies(rig, since)

        correct = []
        step(1, "cold and warm copies through the SMMU, prefetch on")
        cold, counts, warm, latencies = await cold_and_warm()

        async def resident_copy():
            await rig.copy(ctx, src, dst, RESIDENT_BYTES)
            since = rig.cycle
            cycles = await rig.copy(ctx, src, dst, RESIDENT_BYTES)
            correct.append(await check_dst(RESIDENT_BYTES))
            return cycles, _hit_latencies(rig, since)

        step(3, "TLB-resident copies")
        resident, hit_latencies = await resident_copy()

        step(4, "cold, warm and TLB-resident copies through the SMMU, prefetch off")
        await regs.modify("CR0", prefetch_en=0)
        cold_off, counts_off, warm_off, _ = await cold_and_warm()
        resident_off, _ = await resident_copy()

        step(6, "cold copy without the walk cache, prefetch off")
        await regs.modify("CR0", walk_cache_en=0)
        await smmu.tlb_inv_asid(domain.asid)
        _, counts_uncached = await counted_copy(NO_WALK_CACHE_BYTES)
        await regs.modify("CR0", walk_cache_en=1, prefetch_en=1)

        step(7, "bypass copy on contiguous buffers")
        order = (count - 1).bit_length()
        src_block = mm.alloc_pages(GFP_KERNEL, order, owner="bench")
        dst_block = mm.alloc_pages(GFP_KERNEL, order, owner="bench")
        await poke(ctx, src_block.phys, data)
        await smmu.write_ste(0, StreamConfig.BYPASS)
        bypass = await rig.copy(ctx, src_block.phys, dst_block.phys, copy_bytes)
        await rig.copy(ctx, src_block.phys, dst_block.phys, RESIDENT_BYTES)
        resident_bypass = await rig.copy(ctx, src_block.phys, dst_block.phys, RESIDENT_BYTES)
        correct.append(await peek(ctx, dst_block.phys, copy_bytes) == data)

        result.update(
            copy_bytes=copy_bytes,
            bypass_copy_cycles=bypass,
            cold_copy_cycles=cold,
            warm_copy_cycles=warm,
            scattered_copy_ratio_cold=round(bypass / cold, 4),
            scattered_copy_ratio_warm=round(bypass / warm, 4),
            cold_copy_cycles_no_prefetch=cold_off,
            warm_copy_cycles_no_prefetch=warm_off,
            scattered_copy_ratio_cold_no_prefetch=round(bypass / cold_off, 4),
            scattered_copy_ratio_warm_no_prefetch=round(bypass / warm_off, 4),
            tlb_resident_copy_bytes=RESIDENT_BYTES,
            tlb_resident_copy_ratio=round(resident_bypass / resident, 4),
            tlb_resident_copy_ratio_no_prefetch=round(resident_bypass / resident_off, 4),
            hit_added_latency_cycles=min(hit_latencies),
            hit_added_latency_cycles_median=statistics.median(hit_latencies),
            added_latency_cycles_median_warm_copy=statistics.median(latencies),
            walks_cold_copy=counts["walks"],
            prefetches_cold_copy=counts["prefetches"],
            walks_cold_copy_no_prefetch=counts_off["walks"],
            walk_memory_reads_per_miss=round(
                counts_off["walk_reads"] / counts_off["walks"], 3),
            walk_memory_reads_per_miss_without_walk_cache=round(
                counts_uncached["walk_reads"] / counts_uncached["walks"], 3),
            data_correct=all(correct),
        )

    rig.sim.add_testbench(testbench)
    rig.sim.run()
    for checker in rig.checkers.values():
        checker.assert_clean(idle=True)
    step(steps, "done")
    return result
