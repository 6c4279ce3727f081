"""A dma-buf descriptor passed from a producer process to a consumer process, which has it copied by DMA and reads the copy.

The producer allocates a buffer, fills it through ``mmap`` with SYNC ioctls, and sends the
descriptor over a Unix socket (``SCM_RIGHTS``); then it closes its own descriptor and exits.
The buffer lives on through the consumer's descriptor (the file's reference count says so at
each step); the consumer has the DMA engine copy it into a buffer of its own and reads the
copy. Every byte is checked against the reference; the last close releases both buffers.
"""

from ..dma.copy_engine import CopyEngine
from ..dmabuf.dma_buf import dma_buf_get
from ..dmabuf.fs import MAP_SHARED, O_CLOEXEC, PROT_READ, PROT_WRITE, Process
from ..dmabuf.ioctl import (DMA_BUF_IOCTL_SYNC, DMA_BUF_SYNC_END, DMA_BUF_SYNC_START,
                           DMA_BUF_SYNC_WRITE, DmaBufSync)
from ._e2e import pattern, session
from ._run import run_scenario

__all__ = ["run", "pass_fd"]


async def pass_fd(machine, *, progress=None, size=4096, **boot_args):
    report = {"buffer_bytes": size}
    async with session(machine, progress, steps=2, **boot_args) as s:
        p = s.platform
        producer = Process("producer", kmem=p.kmem)
        consumer = s.app
        reference = pattern(size, seed=7)
        with s.stage("produce"):
            fd = await s.alloc("system", size, producer)
            addr = producer.mmap(size, PROT_READ | PROT_WRITE, MAP_SHARED, fd)
            await producer.ioctl(fd, DMA_BUF_IOCTL_SYNC,
                                 DmaBufSync(DMA_BUF_SYNC_START | DMA_BUF_SYNC_WRITE))
            await producer.write(addr, reference)
            await producer.ioctl(fd, DMA_BUF_IOCTL_SYNC,
                                 DmaBufSync(DMA_BUF_SYNC_END | DMA_BUF_SYNC_WRITE))
            received = producer.send_fd(fd, consumer, flags=O_CLOEXEC)
            shared = dma_buf_get(consumer, received)
            counts = {"after_send": shared.file.f_count - 1}
            producer.close(fd)
            counts["after_producer_close"] = shared.file.f_count - 1
            producer.exit()                      # drops its mapping too
            counts["after_producer_exit"] = shared.file.f_count - 1
            shared.put()
            report["file_references"] = counts
            report["consumer_fdinfo"] = consumer.fdinfo(received).splitlines()[:5]
        with s.stage("consume"):
            own = await s.alloc("system", size)
            src, dst = dma_buf_get(consumer, received), dma_buf_get(consumer, own)
            job = await CopyEngine(p.devices["dma1"], p.channels["dma1"]).copy(src, dst)
            report["status"] = await job.finish()
            report["bytes_checked"] = s.check("consumer's copy", await s.cpu_read(dst),
                                              reference)
            src.put()
            dst.put()
        # The producer's descriptor, its mapping (a vma holds the file) and the consumer's.
        expected = {"after_send": 3, "after_producer_close": 2, "after_producer_exit": 1}
        if counts != expected:
            raise AssertionError(f"file references {counts}, expected {expected}")
    report["stage_cycles"] = s.stages
    report["ok"] = report["status"] == 1
    return report


def run(*, config, backend="pysim", vcd=None, progress=None):
    return run_scenario(pass_fd, config=config, backend=backend, vcd=vcd, progress=progress)
