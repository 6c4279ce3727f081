"""A userspace process fills and reads dma-bufs through mmap, bracketing each access with DMA_BUF_IOCTL_SYNC, around a DMA copy.

The process allocates two buffers from the system heap (``DMA_HEAP_IOCTL_ALLOC``), maps them
with ``mmap``, writes the source between ``SYNC_START|SYNC_WRITE`` and ``SYNC_END|SYNC_WRITE``,
hands both descriptors to the DMA driver, polls the destination until the copy's fence has
signaled, and reads it between ``SYNC_START|SYNC_READ`` and ``SYNC_END|SYNC_READ`` while the
device still has it mapped. A SYNC with invalid flags is refused with EINVAL. Every byte read
is checked against the reference.
"""

import errno

from ..dma.copy_engine import CopyEngine
from ..dmabuf.dma_buf import dma_buf_get
from ..dmabuf.fs import MAP_SHARED, POLLIN, PROT_READ, PROT_WRITE
from ..dmabuf.ioctl import (DMA_BUF_IOCTL_SYNC, DMA_BUF_SYNC_END, DMA_BUF_SYNC_READ,
                           DMA_BUF_SYNC_START, DMA_BUF_SYNC_WRITE, DmaBufSync)
from ..errors import KernelError
from ._e2e import pattern, session
from ._run import run_scenario

__all__ = ["run", "user_access"]


async def user_access(machine, *, progress=None, size=4096, **boot_args):
    report = {"buffer_bytes": size}
    async with session(machine, progress, steps=3, **boot_args) as s:
        p, app = s.platform, s.app
        reference = pattern(size, seed=6)
        src_fd, dst_fd = await s.alloc("system", size), await s.alloc("system", size)
        src_map = app.mmap(size, PROT_READ | PROT_WRITE, MAP_SHARED, src_fd)
        dst_map = app.mmap(size, PROT_READ, MAP_SHARED, dst_fd)
        try:
            await app.ioctl(src_fd, DMA_BUF_IOCTL_SYNC, DmaBufSync(0x80))
        except KernelError as error:
            report["bad_sync_flags"] = error.name
            if error.errno != errno.EINVAL:
                raise
        with s.stage("user_write"):
            await app.ioctl(src_fd, DMA_BUF_IOCTL_SYNC,
                            DmaBufSync(DMA_BUF_SYNC_START | DMA_BUF_SYNC_WRITE))
            await app.write(src_map, reference)
            await app.ioctl(src_fd, DMA_BUF_IOCTL_SYNC,
                            DmaBufSync(DMA_BUF_SYNC_END | DMA_BUF_SYNC_WRITE))
        with s.stage("dma_copy"):
            # The driver's ioctl: it takes its own references from the descriptors.
            src, dst = dma_buf_get(app, src_fd), dma_buf_get(app, dst_fd)
            engine = CopyEngine(p.devices["dma0"], p.channels["dma0"])
            job = await engine.copy(src, dst)
            report["poll_before"] = app.poll(dst_fd, POLLIN)
            report["poll_after"] = await app.poll_wait(dst_fd, POLLIN, 1_000_000)
        with s.stage("user_read"):
            await app.ioctl(dst_fd, DMA_BUF_IOCTL_SYNC,
                            DmaBufSync(DMA_BUF_SYNC_START | DMA_BUF_SYNC_READ))
            seen = await app.read(dst_map, size)
            await app.ioctl(dst_fd, DMA_BUF_IOCTL_SYNC,
                            DmaBufSync(DMA_BUF_SYNC_END | DMA_BUF_SYNC_READ))
        report["bytes_checked"] = s.check("user view of the copy", seen, reference)
        report["status"] = await job.finish()
        src.put()
        dst.put()
        app.munmap(src_map, size)
        app.munmap(dst_map, size)
    report["stage_cycles"] = s.stages
    report["ok"] = report["poll_after"] == POLLIN and report["status"] == 1
    return report


def run(*, config, backend="pysim", vcd=None, progress=None):
    return run_scenario(user_access, config=config, backend=backend, vcd=vcd,
                        progress=progress)
