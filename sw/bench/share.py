"""Sharing a 1 MiB dma-buf: the cycles of each stage of the demo, and three ways of moving a scattered buffer (IOMMU + one descriptor, scatter-gather descriptors, per-segment register programming).

Two runs on a SoC with 4 MiB DDR banks (room for two 1 MiB buffers in the high bank):

* the demo's story (:func:`~dmabuf_soc.sw.scenarios.demo.story`) for a 1 MiB buffer, every
  page zeroed by the CPU as a kernel would (no reset-zero shortcut), with its stage cycles;
* a copy between two 1 MiB buffers of 256 pages each, no two of them adjacent, so that
  without an IOMMU every page is a segment of its own: the cycles from the first register
  write to the fence, and the MMIO writes, for each way the SoC offers: through the SMMU
  (the channel's device in a DMA domain, each buffer one contiguous IOVA range, one
  descriptor, IOTLB cold), with one scatter-gather descriptor per page, and with one
  register programming per page. Each also gives the cycles its mapping took
  (``map_cycles``: page-table writes for the IOMMU, none of them for the other two).

Every copy is checked byte by byte. On the built-in simulator (a few hundred cycles per
second) this takes hours; ``backend="cxxrtl"`` runs the compiled model.
"""

from ...hw.config import Bank, SocConfig
from ..copy_engine import CopyEngine
from ..heaps.buffer import HeapBuffer, export_heap_buffer
from ..dmabuf.fs import O_RDWR
from ..mm.page_alloc import GFP_KERNEL, PAGE_SIZE
from ..scenarios._e2e import counter_delta, pattern, session
from ..scenarios._run import run_scenario
from ..scenarios.demo import story

__all__ = ["run", "measure", "bench_config"]

MiB = 1 << 20


def bench_config():
    return SocConfig(banks=(Bank("low", base=0x8000_0000, size=4 * MiB),
                            Bank("high", base=0x1_0000_0000, size=4 * MiB)))


def _scattered_pair(s, size):
    """Two buffers of ``size`` bytes whose pages interleave: no page of either is next to
    another page of the same buffer."""
    platform = s.platform
    heap = platform.heaps.find("system")
    pages = [platform.mm.alloc_pages(GFP_KERNEL, 0, owner="bench")
             for _ in range(2 * size // PAGE_SIZE)]
    buffers = []
    for half in (pages[0::2], pages[1::2]):
        blocks = [(page, PAGE_SIZE) for page in half]
        buffers.append(export_heap_buffer(HeapBuffer(heap, blocks, platform.kmem,
                                                     lambda b: heap.free_blocks(b.blocks)),
                                          O_RDWR))
    return buffers


async def _transfers(machine, *, progress=None, size):
    results = {}
    async with session(machine, progress, steps=3, ring_descriptors=2 * size // PAGE_SIZE) as s:
        p = s.platform
        src, dst = _scattered_pair(s, size)
        reference = pattern(size, seed=8)
        for (page, length), offset in zip(src.priv.blocks, range(0, size, PAGE_SIZE)):
            await machine.poke(page.phys, reference[offset:offset + length])
        device = p.devices["dma0"]
        engine = CopyEngine(device, p.channels["dma0"])
        await engine.channel.configure()        # once, not on the first way measured
        for name, mode, iommu in (("iommu_one_descriptor", "sg", True),
                                  ("sg_descriptors", "sg", False),
                                  ("register_per_segment", "register", False)):
            for page, length in dst.priv.blocks:
                await machine.poke(page.phys, bytes(length))
            with s.stage(name):
                if iommu:
                    await p.attach_iommu(device)
                start = machine.cycle
                job = await engine.prepare(src, dst, mode=mode)
                map_cycles = machine.cycle - start
                iotlb = await p.iommu.counters()
                writes = engine.channel.mmio_writes
                start = machine.cycle
                await job.start()
                status = await job.wait()
                cycles = machine.cycle - start
                writes = engine.channel.mmio_writes - writes
                pieces = len(job.pieces)
                iotlb = counter_delta(await p.iommu.counters(), iotlb)
                await job.finish()
                if iommu:
                    await p.detach_iommu(device)
            if status != 1:
                raise AssertionError(f"{name}: the copy failed with {status}")
            s.check(name, await s.memory_of(dst), reference)
            results[name] = {"cycles": cycles, "mmio_writes": writes, "segments": pieces,
                             "map_cycles": map_cycles}
            if iommu:
                results[name]["iotlb"] = iotlb
        src.put()
        dst.put()
    return results


def measure(*, backend="pysim", progress=None, size=MiB, config=None):
    """Both runs for buffers of ``size`` bytes; returns the figures."""
    config = bench_config() if config is None else config
    demo = run_scenario(story, config=config, backend=backend, vcd=None, progress=progress,
                        size=size, reset_zeroed=False, ring_descriptors=size // PAGE_SIZE + 2)
    transfers = run_scenario(_transfers, config=config, backend=backend, vcd=None,
                             progress=progress, size=size)
    return {
        "backend": backend,
        "buffer_bytes": size,
        "demo_stage_cycles": demo["stage_cycles"],
        "demo_total_cycles": demo["total_cycles"],
        "demo_iotlb": demo["iotlb"],
        "demo_cache": demo["cache"],
        "transfers": transfers,
    }


def run(*, backend="pysim", progress=None):
    return measure(backend=backend, progress=progress)
