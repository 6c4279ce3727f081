"""A device with a 32-bit DMA mask and no IOMMU reaching buffers in the high bank: swiotlb bouncing, then constraint-driven placement by the exporter.

Part one: system-heap buffers land above 4 GiB; the 32-bit device's mappings bounce through
the swiotlb pool (device addresses below 4 GiB, CPU copies in and out). Part two: the
placement exporter puts a buffer where every attached device reaches it: first touched by the
CPU with only a 40-bit device attached it lives in the high bank; when the 32-bit device maps
it while the 40-bit device still has it mapped, the map fails with EBUSY; once that mapping is
gone the storage migrates below 4 GiB and the 32-bit device maps it without bouncing. Every
copy is checked byte by byte against the reference.
"""

import errno

from ..dma.copy_engine import CopyEngine
from ..dma_mapping.direction import DMA_BIT_MASK, DmaDirection
from ..dmabuf.dma_buf import dma_buf_attach, dma_buf_detach, dma_buf_map_attachment, \
    dma_buf_unmap_attachment
from ..errors import KernelError
from ._e2e import describe_segments, pattern, session
from ._run import run_scenario

__all__ = ["run", "reach_high_memory"]

FOUR_GIB = 1 << 32


async def reach_high_memory(machine, *, progress=None, size=4096, **boot_args):
    report = {"buffer_bytes": size}
    async with session(machine, progress, steps=2, **boot_args) as s:
        p = s.platform
        dev32 = p.devices["dma1"]
        dev32.dma_set_mask_and_coherent(DMA_BIT_MASK(32))
        engine32 = CopyEngine(dev32, p.channels["dma1"])
        reference = pattern(size, seed=5)

        with s.stage("swiotlb_bounce"):
            src = s.get(await s.alloc("system", size))
            dst = s.get(await s.alloc("system", size))
            await s.cpu_fill(src, reference)
            pages = [pg.phys for pg, _ in src.priv.blocks + dst.priv.blocks]
            if min(pages) < FOUR_GIB:
                raise AssertionError("the system heap was expected to use the high bank")
            job = await engine32.copy(src, dst)
            dma = job.src_sgt.dma_segments() + job.dst_sgt.dma_segments()
            if not all(p.swiotlb.is_swiotlb_buffer(addr) for addr, _ in dma):
                raise AssertionError("the 32-bit device's mappings did not bounce")
            slots = p.swiotlb.used
            status = await job.finish()
            s.check("bounced copy", await s.cpu_read(dst), reference)
            report["bounce"] = {"pages": describe_segments((a, 4096) for a in pages),
                                "device_addresses": describe_segments(dma),
                                "swiotlb_slots_while_mapped": slots, "status": status}
            src.put()
            dst.put()

        with s.stage("placement"):
            heap = p.heaps.find("placement")
            buf = s.get(await s.alloc("placement", size))
            wide = dma_buf_attach(buf, p.devices["dma0"])
            await s.cpu_fill(buf, reference)           # placed for the 40-bit device
            placed = buf.priv.history[-1]
            sgt = await dma_buf_map_attachment(wide, DmaDirection.TO_DEVICE)
            out = s.get(await s.alloc("placement", size))
            try:
                await engine32.copy(buf, out)
            except KernelError as error:
                if error.errno != errno.EBUSY:
                    raise
                refused = error.name
            else:
                raise AssertionError("a live high mapping did not stop the migration")
            await dma_buf_unmap_attachment(wide, sgt, DmaDirection.TO_DEVICE)
            await dma_buf_detach(buf, wide)
            job = await engine32.copy(buf, out)
            dma = job.src_sgt.dma_segments() + job.dst_sgt.dma_segments()
            bounced = p.swiotlb.used
            status = await job.finish()
            s.check("copy of the migrated buffer", await s.cpu_read(out), reference)
            s.check("migrated buffer", await s.cpu_read(buf), reference)
            if bounced or max(addr + n for addr, n in dma) > FOUR_GIB:
                raise AssertionError("placement below 4 GiB still bounced")
            report["placement"] = {
                "first_placement": f"{placed['lowest']:#x}",
                "while_mapped_high": refused,
                "after_migration": describe_segments(dma),
                "history": [h["event"] for h in buf.priv.history],
                "swiotlb_slots_while_mapped": bounced, "status": status,
                "pages_zeroed_by_cpu": heap.pages_cleared}
            buf.put()
            out.put()
        report["bytes_checked"] = 4 * size
    report["stage_cycles"] = s.stages
    report["ok"] = True
    return report


def run(*, config, backend="pysim", vcd=None, progress=None):
    return run_scenario(reach_high_memory, config=config, backend=backend, vcd=vcd,
                        progress=progress)
