"""A DMA channel as a dma-buf importer: it copies one dma-buf into another, and its
completions are ``dma_fence`` signals.

:meth:`CopyEngine.copy` does what an importing driver does: attach its device to both
buffers, map the source ``DMA_TO_DEVICE`` and the destination ``DMA_FROM_DEVICE`` (the
exporters do the cache maintenance), wait for the fences already on the buffers (implicit
synchronisation), hand the channel the transfer, and publish a :class:`DmaFence` on both
reservation objects (a writer on the destination, a reader on the source). The fence is
signaled by the channel's completion interrupt; when the engine reports an error the fence
signals with ``-EIO``. :meth:`CopyJob.finish` waits for it, unmaps and detaches.

How the channel is programmed follows the mapped segments: in ``"sg"`` mode one descriptor
per piece contiguous on both sides (a single descriptor when an IOMMU made both buffers
contiguous in IOVA space), in ``"register"`` mode one register programming per piece.
"""

import errno

from .channel import DmaError
from ..dma_mapping.direction import DmaDirection
from ..dmabuf.dma_buf import (dma_buf_attach, dma_buf_detach, dma_buf_map_attachment,
                              dma_buf_unmap_attachment)
from ..dmabuf.fence import DmaFence, DmaFenceOps, dma_fence_context_alloc
from ..dmabuf.resv import DmaResvUsage
from ..errors import KernelError

__all__ = ["CopyEngine", "CopyJob", "MODES"]

MODES = ("sg", "register")


class _EngineFenceOps(DmaFenceOps):
    use_64bit_seqno = True

    def get_driver_name(self, fence):
        return "dmabuf-soc-dma"

    def get_timeline_name(self, fence):
        return fence.timeline


_engine_fence_ops = _EngineFenceOps()


def engine_fence(tx, context, seqno, timeline):
    """A :class:`DmaFence` signaled when the channel completes ``tx`` (before it is issued),
    with ``-errno`` of the channel's :class:`DmaError` when the transfer failed."""
    fence = DmaFence(_engine_fence_ops, context, seqno)
    fence.timeline = timeline

    def completed(hw_fence):
        if hw_fence.error is not None:
            code = hw_fence.error.errno if isinstance(hw_fence.error, DmaError) else errno.EIO
            fence.set_error(-code)
        fence.signal()

    tx.completion.add_callback(completed)
    return fence


class CopyJob:
    """A copy between two mapped dma-bufs; :meth:`start` may run it again and again on the
    same mappings, as a driver that keeps its buffers mapped does.

    Attributes
    ----------
    fence : DmaFence or None
        The fence of the last :meth:`start`.
    src_sgt, dst_sgt : SgTable
        The importer's mappings (DMA addresses of the device).
    pieces : list of (src, dst, length)
        What the channel was given: one descriptor, or one register programming, each.
    mmio_writes : int
        Register writes made to issue the last transfer.
    issue_cycle : int
        Machine cycle when the last issue began.
    """

    def __init__(self, engine, src, dst, attachments, src_sgt, dst_sgt, mode):
        self.engine = engine
        self.src, self.dst = src, dst
        self._attachments = attachments
        self.src_sgt, self.dst_sgt = src_sgt, dst_sgt
        self.mode = mode
        self.fence = None
        self.pieces = []
        self.mmio_writes = 0
        self.issue_cycle = None

    async def start(self):
        """Wait for the fences already on the buffers (implicit synchronisation: a writer
        waits for every earlier access of the destination, a reader for the earlier
        writers of the source), issue the transfer and publish its fence on both
        reservation objects. Returns the fence."""
        engine, channel = self.engine, self.engine.channel
        await self.dst.resv.wait_timeout(DmaResvUsage.READ)
        await self.src.resv.wait_timeout(DmaResvUsage.WRITE)
        if self.fence is not None:
            self.fence.put()
        channel.use_descriptors = self.mode == "sg"
        tx = channel.prep_sg(self.dst_sgt.dma_segments(), self.src_sgt.dma_segments())
        engine._seqno += 1
        self.fence = engine_fence(tx, engine.context, engine._seqno, engine.device.name)
        self.pieces = list(tx.segments)
        for buf, usage in ((self.dst, DmaResvUsage.WRITE), (self.src, DmaResvUsage.READ)):
            await buf.resv.lock()
            try:
                buf.resv.reserve_fences(1)
                buf.resv.add_fence(self.fence, usage)
            finally:
                buf.resv.unlock()
        self.issue_cycle = channel.machine.cycle
        writes = channel.mmio_writes
        channel.submit(tx)
        await channel.issue_pending()
        self.mmio_writes = channel.mmio_writes - writes
        return self.fence

    async def wait(self):
        """Wait for the last transfer; returns its status (1, or ``-errno``)."""
        await self.fence.wait()
        return self.fence.get_status()

    async def finish(self):
        """Wait for the last transfer, unmap and detach. Returns the fence status (1, or the
        negative errno of a failed transfer; ``None`` if the job was never started)."""
        status = None if self.fence is None else await self.wait()
        src_attach, dst_attach = self._attachments
        await dma_buf_unmap_attachment(dst_attach, self.dst_sgt, DmaDirection.FROM_DEVICE)
        await dma_buf_unmap_attachment(src_attach, self.src_sgt, DmaDirection.TO_DEVICE)
        await dma_buf_detach(self.dst, dst_attach)
        await dma_buf_detach(self.src, src_attach)
        self.engine._jobs.remove(self)
        if self.fence is not None:
            self.fence.put()
        return status


class CopyEngine:
    """A DMA channel's driver, importing dma-bufs.

    Parameters
    ----------
    device : Device
        The channel's device (mask, stream ID, DMA ops).
    channel : DmaChannel
        The channel's low-level driver.
    """

    def __init__(self, device, channel):
        self.device = device
        self.channel = channel
        self.context = dma_fence_context_alloc()
        self._seqno = 0
        self._jobs = []

    def __repr__(self):
        return f"<CopyEngine {self.device.name}>"

    async def prepare(self, src, dst, *, mode="sg"):
        """Attach to both buffers and map them (source ``DMA_TO_DEVICE``, destination
        ``DMA_FROM_DEVICE``); returns the :class:`CopyJob`, not started. Errors of attach
        and map (``EBUSY``, ``EIO``, ...) pass through with everything undone."""
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
        if src.size != dst.size:
            raise KernelError(errno.EINVAL, f"copy of {src.size:#x} bytes into a "
                                            f"{dst.size:#x}-byte buffer")
        if any(job.mode != mode for job in self._jobs):
            raise KernelError(errno.EBUSY, f"{self.device.name}: cannot use {mode} mode "
                                           f"while jobs of the other mode are live")
        src_attach = dma_buf_attach(src, self.device)
        dst_attach = dma_buf_attach(dst, self.device)
        try:
            src_sgt = await dma_buf_map_attachment(src_attach, DmaDirection.TO_DEVICE)
            try:
                dst_sgt = await dma_buf_map_attachment(dst_attach, DmaDirection.FROM_DEVICE)
            except KernelError:
                await dma_buf_unmap_attachment(src_attach, src_sgt, DmaDirection.TO_DEVICE)
                raise
        except KernelError:
            await dma_buf_detach(dst, dst_attach)
            await dma_buf_detach(src, src_attach)
            raise
        job = CopyJob(self, src, dst, (src_attach, dst_attach), src_sgt, dst_sgt, mode)
        self._jobs.append(job)
        return job

    async def copy(self, src, dst, *, mode="sg"):
        """:meth:`prepare` and :meth:`CopyJob.start`: returns the started job."""
        job = await self.prepare(src, dst, mode=mode)
        await job.start()
        return job
