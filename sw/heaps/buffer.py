"""The buffer object and dma-buf operations the heaps share (the common part of
``system_heap.c`` and ``cma_heap.c``).

Each attachment gets its own copy of the buffer's sg_table, mapped with the DMA API for its
device. CPU access syncs every mapped attachment: ``begin_cpu_access`` for the CPU,
``end_cpu_access`` for the devices. Kernel (vmap) and user (mmap) CPU mappings are
cacheable, so those syncs are what keeps the CPU and the devices in agreement.
"""

import warnings

from ..dma_mapping.mapping import (dma_map_sgtable, dma_sync_sgtable_for_cpu,
                                   dma_sync_sgtable_for_device, dma_unmap_sgtable)
from ..dmabuf.dma_buf import DmaBufOps, dma_buf_export
from ..mm.scatterlist import SgTable

__all__ = ["HeapBuffer", "HeapBufferOps", "export_heap_buffer"]


class _HeapAttachment:
    def __init__(self, dev, table):
        self.dev = dev
        self.table = table
        self.mapped = False


class HeapBuffer:
    """Pages from a heap.

    Parameters
    ----------
    heap : DmaHeap
    blocks : list of (Page, int)
        Physically contiguous blocks and their sizes in bytes, in buffer order.
    kmem : KernelMemory
    free : callable
        ``free(buffer)`` gives the blocks back to where they came from.
    """

    def __init__(self, heap, blocks, kmem, free):
        self.heap = heap
        self.sg_table = SgTable.from_blocks(blocks)
        self.len = self.sg_table.size
        self.kmem = kmem
        self._free = free
        self.attachments = []
        self.vmap_cnt = 0
        self.vaddr = None

    @property
    def blocks(self):
        return [(sg.page, sg.length) for sg in self.sg_table.sgl]

    def pages(self):
        return self.sg_table.pages()


class HeapBufferOps(DmaBufOps):
    """dma-buf operations over a :class:`HeapBuffer`."""

    def attach(self, dmabuf, attach):
        buffer = dmabuf.priv
        attach.priv = _HeapAttachment(attach.dev, buffer.sg_table.dup())
        buffer.attachments.append(attach.priv)

    def detach(self, dmabuf, attach):
        dmabuf.priv.attachments.remove(attach.priv)

    async def map_dma_buf(self, attach, direction):
        a = attach.priv
        await dma_map_sgtable(a.dev, a.table, direction)
        a.mapped = True
        return a.table

    async def unmap_dma_buf(self, attach, sgt, direction):
        a = attach.priv
        a.mapped = False
        await dma_unmap_sgtable(a.dev, sgt, direction)

    async def begin_cpu_access(self, dmabuf, direction):
        # invalidate_kernel_vmap_range() is a no-op on arm64's PIPT data cache.
        for a in dmabuf.priv.attachments:
            if a.mapped:
                await dma_sync_sgtable_for_cpu(a.dev, a.table, direction)

    async def end_cpu_access(self, dmabuf, direction):
        for a in dmabuf.priv.attachments:
            if a.mapped:
                await dma_sync_sgtable_for_device(a.dev, a.table, direction)

    def mmap(self, dmabuf, vma):
        pages = dmabuf.priv.pages()
        vma.pages = pages[vma.vm_pgoff:vma.vm_pgoff + vma.npages]
        vma.cached = True

    def vmap(self, dmabuf):
        buffer = dmabuf.priv
        if buffer.vmap_cnt:
            buffer.vmap_cnt += 1
            return buffer.vaddr
        buffer.vaddr = buffer.kmem.vmap(buffer.pages(), cached=True)
        buffer.vmap_cnt = 1
        return buffer.vaddr

    def vunmap(self, dmabuf, addr):
        buffer = dmabuf.priv
        buffer.vmap_cnt -= 1
        if buffer.vmap_cnt == 0:
            buffer.kmem.vunmap(buffer.vaddr)
            buffer.vaddr = None

    def release(self, dmabuf):
        buffer = dmabuf.priv
        if buffer.vmap_cnt > 0:
            warnings.warn(f"{buffer.heap.name}: buffer still mapped in the kernel",
                          RuntimeWarning, stacklevel=2)
            buffer.kmem.vunmap(buffer.vaddr)
        buffer._free(buffer)


_heap_buffer_ops = HeapBufferOps()


def export_heap_buffer(buffer, fd_flags, ops=None):
    """Export ``buffer`` as a dma-buf with the heap's name as exporter (and the heap's
    own ``ops``, a :class:`HeapBufferOps`, if it has some)."""
    ops = _heap_buffer_ops if ops is None else ops
    return dma_buf_export(ops=ops, size=buffer.len, priv=buffer,
                          exp_name=buffer.heap.name, flags=fd_flags)
