"""What goes wrong when a sync is omitted: stale data, shown byte by byte, then the synced access.

The cache is not coherent with DMA. Two mistakes, each followed by the correct access:

* the CPU reads a destination the device has just written without begin_cpu_access: it sees
  the lines it had cached before the transfer, not what the device wrote to DDR;
* the CPU writes a source that a device keeps mapped without end_cpu_access: the device copies
  what DDR holds, the old data, while the new data sits dirty in the cache.

Every view is checked against the reference model: stale line by stale line (each line is
either all old or all new data) and exactly after the sync.
"""

from ..dma.copy_engine import CopyEngine
from ..dma_mapping.direction import DmaDirection
from ..dmabuf.dma_buf import (dma_buf_begin_cpu_access, dma_buf_end_cpu_access, dma_buf_vmap,
                              dma_buf_vunmap)
from ._e2e import pattern, session
from ._run import run_scenario

__all__ = ["run", "omit_syncs", "stale_lines"]

LINE = 64


def stale_lines(view, old, new):
    """Indices of the cache lines where ``view`` shows ``old``; raises if a line is neither
    all ``old`` nor all ``new`` (which no cache could produce)."""
    stale = []
    for start in range(0, len(view), LINE):
        line = view[start:start + LINE]
        if line == old[start:start + LINE] and line != new[start:start + LINE]:
            stale.append(start // LINE)
        elif line != new[start:start + LINE]:
            raise AssertionError(f"line at {start:#x} is neither the old nor the new data")
    return stale


async def omit_syncs(machine, *, progress=None, size=4096, **boot_args):
    report = {"buffer_bytes": size}
    async with session(machine, progress, steps=4, **boot_args) as s:
        p = s.platform
        kmem = p.kmem
        old, new = pattern(size, seed=3), pattern(size, seed=4)
        src = s.get(await s.alloc("system", size))
        dst = s.get(await s.alloc("system", size))
        engine = CopyEngine(p.devices["dma0"], p.channels["dma0"])

        with s.stage("read_without_begin_cpu_access"):
            await s.cpu_fill(src, new)
            zeros = bytes(size)
            s.check("destination before the copy", await s.cpu_read(dst), zeros)
            job = await engine.copy(src, dst)         # dst stays mapped: no unmap to save us
            await job.wait()
            vaddr = dma_buf_vmap(dst)
            unsynced = await kmem.read(vaddr, size)
            stale = stale_lines(unsynced, zeros, new)
            s.check("DDR after the copy", await s.memory_of(dst), new)
            await dma_buf_begin_cpu_access(dst, DmaDirection.FROM_DEVICE)
            synced = await kmem.read(vaddr, size)
            await dma_buf_end_cpu_access(dst, DmaDirection.FROM_DEVICE)
            dma_buf_vunmap(dst, vaddr)
            s.check("CPU view after begin_cpu_access", synced, new)
            report["missing_begin_cpu_access"] = {
                "stale_lines": len(stale), "lines": size // LINE,
                "first_stale_bytes": unsynced[:8].hex(), "device_wrote": new[:8].hex()}
            if not stale:
                raise AssertionError("reading without begin_cpu_access showed no stale line")

        with s.stage("write_without_end_cpu_access"):
            # The job keeps both buffers mapped; the CPU now changes the source.
            vaddr = dma_buf_vmap(src)
            await dma_buf_begin_cpu_access(src, DmaDirection.TO_DEVICE)
            await kmem.write(vaddr, old)
            await job.start()
            await job.wait()
            await dma_buf_begin_cpu_access(dst, DmaDirection.FROM_DEVICE)
            copied = await s.cpu_read(dst, sync=False)
            stale = stale_lines(copied, new, old)
            report["missing_end_cpu_access"] = {"stale_lines": len(stale),
                                                "lines": size // LINE}
            if not stale:
                raise AssertionError("writing without end_cpu_access showed no stale line")
            await dma_buf_end_cpu_access(src, DmaDirection.TO_DEVICE)
            dma_buf_vunmap(src, vaddr)
            await job.start()
            await job.wait()
            await dma_buf_begin_cpu_access(dst, DmaDirection.FROM_DEVICE)
            s.check("copy after end_cpu_access", await s.cpu_read(dst, sync=False), old)
            report["bytes_checked"] = size
            await job.finish()
        src.put()
        dst.put()
    report["stage_cycles"] = s.stages
    report["ok"] = True
    return report


def run(*, config, backend="pysim", vcd=None, progress=None):
    return run_scenario(omit_syncs, config=config, backend=backend, vcd=vcd, progress=progress)
