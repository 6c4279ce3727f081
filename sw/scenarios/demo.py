"""The main job: a scattered system-heap buffer filled by the CPU, copied by a DMA engine into a second dma-buf, read back and checked.

The seeds' story on the simulated SoC: the exporter (the system heap) allocates a scattered,
zeroed buffer; the CPU fills it through ``vmap`` between begin/end_cpu_access; the DMA
engine's device attaches to it and to a second buffer and maps both (through the SMMU as one
contiguous IOVA range each when the SoC has one, else by physical address, one segment per
block); the engine copies the buffer, the fence signals on its interrupt; the CPU reads the
copy after begin_cpu_access(FROM_DEVICE) and every byte is checked against the reference.
The report gives the cycles of each stage, the cache's counters and where the data went.
"""

from ..dma_mapping.direction import DmaDirection
from ..dmabuf.dma_buf import dma_buf_begin_cpu_access, dma_buf_end_cpu_access
from ..copy_engine import CopyEngine
from ._e2e import counter_delta, describe_segments, pattern, session
from ._run import run_scenario

__all__ = ["run", "story", "DEMO_BYTES"]

#: Two scattered pages: the whole story runs in about 20 000 cycles on the built-in simulator.
DEMO_BYTES = 8 * 1024


async def story(machine, *, progress=None, size=DEMO_BYTES, **boot_args):
    """The demo's body on any machine, for a buffer of ``size`` bytes; returns the report."""
    report = {"buffer_bytes": size}
    async with session(machine, progress, steps=6, **boot_args) as s:
        p = s.platform
        report["iommu"] = (p.iommu is not None)
        if p.iommu is None:
            report["note"] = ("the SoC has no SMMU yet: the DMA device maps the buffers by "
                              "physical address, one descriptor per contiguous piece")
        s.fragment()
        reference = pattern(size, seed=1)
        counters = await s.cache_counters()
        with s.stage("allocate"):
            src = s.get(await s.alloc("system", size))
            dst = s.get(await s.alloc("system", size))
        with s.stage("cpu_fill"):
            await s.cpu_fill(src, reference)
        engine = CopyEngine(p.devices["dma0"], p.channels["dma0"])
        with s.stage("attach_map_issue"):
            job = await engine.copy(src, dst, mode="sg")
        with s.stage("dma_until_fence"):
            await job.fence.wait()
        report["fence"] = repr(job.fence)
        report["fence_status"] = job.fence.get_status()
        report["where"] = {
            "source_pages": describe_segments((pg.phys, ln) for pg, ln in src.priv.blocks),
            "destination_pages": describe_segments((pg.phys, ln) for pg, ln in dst.priv.blocks),
            "source_dma": describe_segments(job.src_sgt.dma_segments()),
            "destination_dma": describe_segments(job.dst_sgt.dma_segments()),
            "descriptors": len(job.pieces),
        }
        report["dma_mmio_writes"] = job.mmio_writes
        with s.stage("unmap_detach"):
            status = await job.finish()
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
        src.put()
        dst.put()
    report["stage_cycles"] = s.stages
    report["total_cycles"] = machine.cycle
    report["accounting_after"] = p.accounting()
    report["ok"] = status == 1
    return report


def run(*, config, backend="pysim", vcd=None, progress=None):
    return run_scenario(story, config=config, backend=backend, vcd=vcd, progress=progress)
