"""SMMU cost on DMA: a 1 MiB copy between buffers of scattered 4 KiB pages, each mapped contiguously in IOVA space and copied with one descriptor, against bypass on contiguous buffers.

Issue 4's copies run on the whole SoC through the driver stack, on the chosen backend: boot
with 4 MiB DDR banks, channel ``dma0`` driven as a
:class:`~dmabuf_soc.sw.dma.copy_engine.CopyEngine` importing dma-bufs; first in bypass (its
stream's state after boot) between two physically contiguous buffers, then in a DMA domain
(:meth:`~dmabuf_soc.sw.platform.boot.SocPlatform.attach_iommu`) between two buffers whose
pages interleave, each mapped as one contiguous IOVA range and copied with one descriptor.
A copy's cycles run from the descriptor and register writes to its fence (the completion
interrupt served), so both sides of a ratio carry the same driver overhead. The copies
through the SMMU run with its next-page prefetch on (``CR0.prefetch_en``, the reset value),
then again with it off. Every copy is checked byte by byte. The built-in simulator needs
hours for 1 MiB copies, ``backend="cxxrtl"`` seconds; ``copy_bytes`` sets the size
(``--set copy_bytes=...``; the banks grow beyond 1 MiB).

The figures that need the SMMU's bus handshakes, and its walk costs, come from a rig on the
built-in simulator whatever the backend: a DMA engine (register mode) whose port goes through
the SMMU, the SMMU's downstream and table ports into the interconnect and the DDR model
(``SocConfig`` defaults), with protocol checkers on the SMMU's ports, copying
``rig_copy_bytes`` (32 KiB) between scattered pages mapped by the same driver stack.

================================================== ==== =========================================
Figure                                             On   What
================================================== ==== =========================================
``copy_bytes``                                     SoC  size of the scattered and bypass copies
``bypass_copy_cycles``                             SoC  the copy in bypass on contiguous buffers,
                                                        repeated (its first run also fetches the
                                                        stream table entry)
``cold_copy_cycles``                               SoC  the copy through the SMMU, IOTLB and walk
                                                        cache invalidated (``TLBI_ASID``) before
``warm_copy_cycles``                               SoC  the same copy repeated
``scattered_copy_ratio_cold``, ``_warm``           SoC  bypass cycles over cold (warm) cycles:
                                                        throughput through the SMMU over
                                                        throughput in bypass (goals 0.90, 0.99)
``walks_cold_copy``, ``prefetches_cold_copy``      SoC  demand and prefetch walks of the cold copy
``tlb_resident_copy_bytes``                        SoC  a copy (24 KiB) whose pages, the ring's
                                                        and the ones prefetched past them fit the
                                                        16-entry IOTLB
``tlb_resident_copy_ratio``                        SoC  its bypass cycles over its cycles through
                                                        the SMMU, repeated after a ``TLBI_ASID``
``tlb_resident_copy_misses``                       SoC  IOTLB misses of that repeated copy
``*_no_prefetch``                                  SoC  the same, with ``CR0.prefetch_en`` 0
``hit_added_latency_cycles`` (``_median``)         rig  cycles from the upstream to the
                                                        downstream AR/AW handshake, min (median),
                                                        in a repeated 16 KiB copy (IOTLB hits)
``added_latency_cycles_median_warm_copy``          rig  the median over a repeated 32 KiB copy
``walk_memory_reads_per_miss``                     rig  table descriptor reads per demand walk, a
                                                        cold 32 KiB copy without prefetch
``walk_memory_reads_per_miss_without_walk_cache``  rig  the same, 16 KiB, ``CR0.walk_cache_en`` 0
``rig_copy_bytes``                                 rig  size of the rig's cold and warm copies
``backend``                                        SoC  the backend of the SoC's copies
``data_correct``                                   both every copy delivered the source's bytes
================================================== ==== =========================================
"""

import statistics

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.sim import Simulator

from ...sim.bus.checker import AXI4Checker
from ...hw.bus.interconnect import Interconnect, Window
from ...hw.config import Parameter, SocConfig
from ...sim.ddr.backdoor import peek as ddr_peek, poke as ddr_poke
from ...sim.ddr.model import DDRModel
from ...hw.dma.engine import DMAEngine
from ...hw.regs import block_spec, compile_rdl
from ...hw.smmu.smmu import SMMU, SMMU_RDL
from ..dma.copy_engine import CopyEngine
from ..device import Device
from ..dma.testing import ChannelMachine
from ..dma_mapping.direction import DMA_BIT_MASK, DmaDirection
from ..dma_mapping.mapping import DmaPlatform, dma_map_sgtable
from ..iommu.arm_smmu import ArmSmmu
from ..iommu.iommu import IOMMU_DOMAIN_DMA, iommu_attach_device, iommu_domain_alloc
from ..machine.backends import CHOICES, choose, simulate
from ..mm.kmem import KernelMemory
from ..mm.memblock import Memblock
from ..mm.page_alloc import GFP_KERNEL, PAGE_SIZE, PageAllocator
from ..mm.scatterlist import SgTable
from ..regs import RegisterBank
from ..scenarios._e2e import counter_delta, pattern, session
from ._copy import MiB, bench_config, clear, contiguous_pair, fill, scattered_pair, timed_run

__all__ = ["run", "measure_soc", "measure_rig"]

COPY_BYTES = MiB
#: 6 + 6 pages, the descriptor ring's page, and with prefetch the page after each of those
#: three ranges: the 16 entries of the IOTLB.
RESIDENT_BYTES = 24 * 1024
RIG_COPY_BYTES = 32 * 1024
RIG_RESIDENT_BYTES = 16 * 1024

_SOC_STEPS = 3
_RIG_STEPS = 4
_STEPS = _SOC_STEPS + _RIG_STEPS


def _ratio(bypass, cycles):
    return round(bypass / cycles, 4)


async def _soc_copies(machine, *, progress, size, resident, steps):
    correct = []
    async with session(machine, progress, steps=steps) as s:
        p = s.platform
        smmu, device = p.iommu, p.devices["dma0"]
        engine = CopyEngine(device, p.channels["dma0"])
        await engine.channel.configure()
        reference = pattern(max(size, resident), seed=4)
        contiguous, contiguous_resident = contiguous_pair(s, size), contiguous_pair(s, resident)
        scattered, scattered_resident = scattered_pair(s, size), scattered_pair(s, resident)
        for src, _ in (contiguous, contiguous_resident, scattered, scattered_resident):
            await fill(machine, src, reference[:src.size])

        async def copy(job):
            """One checked copy: its cycles and how the SMMU's counters moved."""
            await clear(machine, job.dst)
            before = await smmu.counters()
            status, cycles = await timed_run(job)
            counts = counter_delta(await smmu.counters(), before)
            correct.append(status == 1 and
                           await s.memory_of(job.dst) == reference[:job.dst.size])
            return cycles, counts

        async def copies(big, small, asid=None):
            """The big copy, with the IOTLB of ``asid`` invalidated, and repeated; the small
            one, with it invalidated again so that the small one's pages fill it, repeated."""
            if asid is not None:
                await smmu.tlb_inv_asid(asid)
            cold = await copy(big)
            warm, _ = await copy(big)
            if asid is not None:
                await smmu.tlb_inv_asid(asid)
            await copy(small)
            return cold, warm, await copy(small)

        with s.stage("bypass copies on contiguous buffers"):
            big, small = (await engine.prepare(*contiguous),
                          await engine.prepare(*contiguous_resident))
            # The repeated copies: the first fetches the stream's table entry.
            _, bypass, (resident_bypass, _) = await copies(big, small)
            await big.finish()
            await small.finish()

        domain = await p.attach_iommu(device)
        big, small = await engine.prepare(*scattered), await engine.prepare(*scattered_resident)
        figures = {}
        for prefetch, suffix in ((1, ""), (0, "_no_prefetch")):
            with s.stage(f"copies through the SMMU, prefetch {('off', 'on')[prefetch]}"):
                await smmu.regs.modify("CR0", prefetch_en=prefetch)
                (cold, counts), warm, (repeated, resident_counts) = \
                    await copies(big, small, domain.asid)
            figures |= {
                f"cold_copy_cycles{suffix}": cold,
                f"warm_copy_cycles{suffix}": warm,
                f"scattered_copy_ratio_cold{suffix}": _ratio(bypass, cold),
                f"scattered_copy_ratio_warm{suffix}": _ratio(bypass, warm),
                f"tlb_resident_copy_ratio{suffix}": _ratio(resident_bypass, repeated),
                f"tlb_resident_copy_misses{suffix}": resident_counts["misses"],
                f"walks_cold_copy{suffix}": counts["walks"],
            }
            if prefetch:
                figures["prefetches_cold_copy"] = counts["prefetches"]
        await smmu.regs.modify("CR0", prefetch_en=1)
        await big.finish()
        await small.finish()
        await p.detach_iommu(device)
        for buffer in (*contiguous, *contiguous_resident, *scattered, *scattered_resident):
            buffer.put()
    return {"copy_bytes": size, "bypass_copy_cycles": bypass,
            "tlb_resident_copy_bytes": resident, **figures, "data_correct": all(correct)}


def measure_soc(*, backend="pysim", progress=None, copy_bytes=COPY_BYTES,
                resident_bytes=RESIDENT_BYTES, steps=_SOC_STEPS):
    """The copies on the SoC (see the module docstring): their figures.

    ``progress(done, steps, what)`` is called after each of the three stages."""
    config = bench_config(max(copy_bytes, resident_bytes))
    backend = choose(backend, config)
    return {"backend": backend, **simulate(
        lambda machine: _soc_copies(machine, progress=progress, size=copy_bytes,
                                    resident=resident_bytes, steps=steps),
        backend=backend, config=config)}


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


def measure_rig(*, progress=None, copy_bytes=RIG_COPY_BYTES, resident_bytes=RIG_RESIDENT_BYTES,
                first_step=0, steps=_RIG_STEPS):
    """The rig's copies (see the module docstring): their figures.

    ``progress(first_step + done, steps, what)`` is called after each of its four steps."""
    if not 0 < resident_bytes <= copy_bytes or (copy_bytes | resident_bytes) % PAGE_SIZE:
        raise ValueError(f"Copy sizes must be multiples of {PAGE_SIZE} bytes, the resident "
                         f"copy no longer than the other; not {copy_bytes!r} and "
                         f"{resident_bytes!r}")
    rig = _Rig(SocConfig())
    reference = pattern(copy_bytes, seed=4)
    result = {}

    def step(done, what):
        if progress is not None:
            progress(first_step + done, steps, what)

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

        count = copy_bytes // PAGE_SIZE
        pages = [mm.alloc_pages(GFP_KERNEL, 0, owner="bench") for _ in range(2 * count)]
        src_pages, dst_pages = pages[0::2], pages[1::2]
        for n, page in enumerate(src_pages):
            await poke(ctx, page.phys, reference[n * PAGE_SIZE:(n + 1) * PAGE_SIZE])
        src_sgt = SgTable.from_blocks([(page, PAGE_SIZE) for page in src_pages])
        dst_sgt = SgTable.from_blocks([(page, PAGE_SIZE) for page in dst_pages])
        await dma_map_sgtable(dev, src_sgt, DmaDirection.TO_DEVICE)
        await dma_map_sgtable(dev, dst_sgt, DmaDirection.FROM_DEVICE)
        assert src_sgt.nents == dst_sgt.nents == 1
        src, dst = src_sgt.sgl[0].dma_address, dst_sgt.sgl[0].dma_address
        correct = []

        async def copy(length, *, cold=False):
            """A checked copy: its cycles, the cycle it began, and how the SMMU's counters
            moved."""
            if cold:
                await smmu.tlb_inv_asid(domain.asid)
            for page in dst_pages:
                await poke(ctx, page.phys, bytes(PAGE_SIZE))
            before = await smmu.counters()
            since = rig.cycle
            cycles = await rig.copy(ctx, src, dst, length)
            counts = counter_delta(await smmu.counters(), before)
            got = b"".join([await peek(ctx, page.phys, PAGE_SIZE)
                            for page in dst_pages[:length // PAGE_SIZE]])
            correct.append(got == reference[:length])
            return cycles, since, counts

        await copy(copy_bytes, cold=True)
        _, since, _ = await copy(copy_bytes)
        warm_latencies = _hit_latencies(rig, since)
        step(1, "rig: cold and warm copies, prefetch on")

        await copy(resident_bytes)
        _, since, _ = await copy(resident_bytes)
        hit_latencies = _hit_latencies(rig, since)
        step(2, "rig: TLB-resident copies")

        await regs.modify("CR0", prefetch_en=0)
        _, _, counts = await copy(copy_bytes, cold=True)
        step(3, "rig: cold copy, prefetch off")

        await regs.modify("CR0", walk_cache_en=0)
        _, _, counts_uncached = await copy(resident_bytes, cold=True)
        await regs.modify("CR0", walk_cache_en=1, prefetch_en=1)
        step(4, "rig: cold copy without the walk cache, prefetch off")

        result.update(
            rig_copy_bytes=copy_bytes,
            hit_added_latency_cycles=min(hit_latencies),
            hit_added_latency_cycles_median=statistics.median(hit_latencies),
            added_latency_cycles_median_warm_copy=statistics.median(warm_latencies),
            walk_memory_reads_per_miss=round(counts["walk_reads"] / counts["walks"], 3),
            walk_memory_reads_per_miss_without_walk_cache=round(
                counts_uncached["walk_reads"] / counts_uncached["walks"], 3),
            data_correct=all(correct),
        )

    rig.sim.add_testbench(testbench)
    rig.sim.run()
    for checker in rig.checkers.values():
        checker.assert_clean(idle=True)
    return result


#: The backends this benchmark runs on.
BACKENDS = CHOICES
#: What ``--set`` takes: the keyword arguments of :func:`run` and their ranges.
PARAMETERS = {p.name: p for p in (
    Parameter("copy_bytes", PAGE_SIZE, 4 * MiB, "size of the SoC's copies, in bytes",
              "whole pages; the DDR banks are four times the copy (at least 4 MiB), and "
              "larger banks take minutes and gigabytes to build", unit="bytes",
              multiple_of=PAGE_SIZE),
)}


def run(*, backend="pysim", progress=None, copy_bytes=COPY_BYTES):
    """The benchmark: the SoC's copies of ``copy_bytes`` (a multiple of 4 KiB, see
    :data:`PARAMETERS`) on ``backend``, and the rig's on the built-in simulator; returns the
    figures of both."""
    PARAMETERS["copy_bytes"].check(copy_bytes)
    soc = measure_soc(backend=backend, progress=progress, copy_bytes=copy_bytes, steps=_STEPS)
    rig = measure_rig(progress=progress, first_step=_SOC_STEPS, steps=_STEPS)
    return {"backend": backend, **soc, **rig,
            "data_correct": soc["data_correct"] and rig["data_correct"]}
