"""The main job: a scattered system-heap buffer filled by the CPU, mapped through the SMMU as one contiguous IOVA range, copied by a DMA engine with one descriptor into a second dma-buf, read back and checked.

The seeds' story on the simulated SoC: the exporter (the system heap) allocates a scattered,
zeroed buffer; the CPU fills it through ``vmap`` between begin/end_cpu_access; a second
device, DMA channel ``dma1`` behind the SMMU (stream ID 1, in a DMA domain of its own),
attaches to it and to a second buffer and maps both: each becomes one contiguous IOVA range
over its scattered pages. The engine copies the buffer with a single descriptor, the SMMU
walking the page tables the driver wrote; the fence signals on the completion interrupt; the
CPU reads the copy after begin_cpu_access(FROM_DEVICE) and every byte is checked against the
reference. The report gives the cycles of each stage, the IOTLB's and the cache's counters,
and where the data went: each IOVA page and the physical page the SMMU translated it to (read
back through its ATOS registers and checked against the buffers' pages).
"""

from ..dma_mapping.direction import DmaDirection
from ..dmabuf.dma_buf import dma_buf_begin_cpu_access, dma_buf_end_cpu_access
from ..dma.copy_engine import CopyEngine
from ..iommu.iommu import iommu_iova_to_phys_hw
from ..mm.page_alloc import PAGE_SIZE
from ._e2e import counter_delta, describe_segments, pattern, session
from ._run import run_scenario

__all__ = ["run", "story", "tell", "translations", "DEMO_BYTES", "DEMO_DEVICE"]

#: Two scattered pages: the whole story runs in about 16 000 cycles on the built-in simulator.
DEMO_BYTES = 8 * 1024
#: The importing device: DMA channel 1, stream ID 1.
DEMO_DEVICE = "dma1"


async def translations(domain, device, dmabuf, sgt):
    """Where ``dmabuf`` is for ``device``: its IOVA range and, page by page, the physical page
    the SMMU translates it to (ATOS), checked against the buffer's own pages."""
    (iova, length), = sgt.dma_segments()
    pages = [page.phys for page in dmabuf.priv.pages()]
    found = []
    for n, expected in enumerate(pages):
        phys = await iommu_iova_to_phys_hw(domain, device, iova + n * PAGE_SIZE)
        if phys != expected:
            raise AssertionError(f"{device.name}: IOVA {iova + n * PAGE_SIZE:#x} translates "
                                 f"to {phys:#x}, not to the buffer's page {expected:#x}")
        found.append(f"{iova + n * PAGE_SIZE:#x} -> {phys:#x}")
    return {"iova": describe_segments([(iova, length)])[0], "pages": found}


async def story(machine, *, progress=None, size=DEMO_BYTES, device=DEMO_DEVICE, **boot_args):
    """The demo's body on any machine, for a buffer of ``size`` bytes; returns the report."""
    async with session(machine, progress, steps=8, **boot_args) as s:
        report = await tell(s, size=size, device=device)
    report["total_cycles"] = machine.cycle
    report["accounting_after"] = s.platform.accounting()
    return report


async def tell(s, *, size=DEMO_BYTES, device=DEMO_DEVICE):
    """The story in a booted :class:`~._e2e.Session` ``s``, leaving nothing allocated, mapped
    or attached; returns the report (its stage cycles are those of ``s`` so far)."""
    report = {"buffer_bytes": size, "device": device, "boot_cycles": s.boot_cycles}
    p = s.platform
    dev = p.devices[device]
    s.fragment(used=False)
    reference = pattern(size, seed=1)
    counters = await s.cache_counters()
    with s.stage("allocate"):
        src = s.get(await s.alloc("system", size))
        dst = s.get(await s.alloc("system", size))
    with s.stage("cpu_fill"):
        await s.cpu_fill(src, reference)
    with s.stage("iommu_attach"):
        domain = await p.attach_iommu(dev)
    report["stream_id"] = dev.stream_id
    engine = CopyEngine(dev, p.channels[device])
    with s.stage("attach_map_issue"):
        job = await engine.copy(src, dst, mode="sg")
    iotlb = await p.iommu.counters()
    with s.stage("dma_until_fence"):
        await job.fence.wait()
    report["iotlb"] = counter_delta(await p.iommu.counters(), iotlb)
    report["fence"] = repr(job.fence)
    report["fence_status"] = job.fence.get_status()
    report["where"] = {
        "source": await translations(domain, dev, src, job.src_sgt),
        "destination": await translations(domain, dev, dst, job.dst_sgt),
        "descriptors": len(job.pieces),
        "page_table_pages": domain.pgtbl.table_pages,
    }
    report["dma_mmio_writes"] = job.mmio_writes
    with s.stage("unmap_detach"):
        status = await job.finish()
    with s.stage("iommu_detach"):
        await p.detach_iommu(dev)
    with s.stage("cpu_read_back"):
        await dma_buf_begin_cpu_access(dst, DmaDirection.FROM_DEVICE)
        copy = await s.cpu_read(dst, sync=False)
        await dma_buf_end_cpu_access(dst, DmaDirection.FROM_DEVICE)
    report["bytes_checked"] = s.check("CPU view of the copy", copy, reference)
    s.check("DDR content of the copy", await s.memory_of(dst), reference)
    system = p.heaps.find("system")
    report["pages_zeroed"] = {"by_cpu": system.pages_cleared,
                              "still_zero_from_reset": system.pages_fresh}
    report["cache"] = counter_delta(await s.cache_counters(), counters)
    report["cache_maintenance_ops"] = dict(p.arch.counts)
    report["smmu_commands"] = p.iommu.commands_issued
    report["smmu_events"] = len(p.iommu.events)
    src.put()
    dst.put()
    s.release_tenants()
    report["stage_cycles"] = dict(s.stages)
    report["ok"] = status == 1 and len(job.pieces) == 1 and not p.iommu.events
    return report


def run(*, config, backend="pysim", vcd=None, progress=None):
    return run_scenario(story, config=config, backend=backend, vcd=vcd, progress=progress)
