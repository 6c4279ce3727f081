"""The CMA heap (``drivers/dma-buf/heaps/cma_heap.c``): one contiguous range from a CMA
area, aligned to its size (up to ``CONFIG_CMA_ALIGNMENT``), zeroed."""

import errno

from ..dmabuf.fs import MAP_SHARED
from ..errors import KernelError
from ..mm.page_alloc import PAGE_SHIFT, PAGE_SIZE, get_order
from .buffer import HeapBuffer, HeapBufferOps, export_heap_buffer
from .heap import DmaHeap

__all__ = ["CmaHeap", "CMA_ALIGNMENT"]

CMA_ALIGNMENT = 8


class _CmaHeapBufferOps(HeapBufferOps):
    def mmap(self, dmabuf, vma):
        """``cma_heap_mmap()``: only shared mappings (``VM_SHARED | VM_MAYSHARE``)."""
        if not vma.flags & MAP_SHARED:
            raise KernelError(errno.EINVAL, f"{dmabuf.exp_name}: CMA heap buffers can only "
                                            f"be mapped MAP_SHARED")
        super().mmap(dmabuf, vma)


_cma_heap_buffer_ops = _CmaHeapBufferOps()


class CmaHeap(DmaHeap):
    """A heap over one :class:`~dmabuf_soc.sw.mm.cma.Cma` area, named after it."""

    type = "cma"

    def __init__(self, cma, kmem, name=None):
        super().__init__(cma.name if name is None else name)
        self.cma = cma
        self.kmem = kmem

    async def allocate(self, len, fd_flags, heap_flags):
        count = len >> PAGE_SHIFT
        align = min(get_order(len), CMA_ALIGNMENT)
        page = self.cma.alloc(count, align, owner=f"heap:{self.name}")
        if page is None:
            raise KernelError(errno.ENOMEM, f"CMA area {self.cma.name!r} has no free "
                                            f"{len}-byte range aligned to order {align}")
        await self.kmem.clear_pages(page, count)
        buffer = HeapBuffer(self, [(page, len)], self.kmem, self._free)
        return export_heap_buffer(buffer, fd_flags, _cma_heap_buffer_ops)

    def _free(self, buffer):
        (page, size), = buffer.blocks
        self.cma.release(page, size >> PAGE_SHIFT)

    @property
    def total_bytes(self):
        return self.cma.size

    @property
    def free_bytes(self):
        return self.cma.size - self.cma.nr_allocated_pages * PAGE_SIZE
