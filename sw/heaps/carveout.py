"""A carveout heap: contiguous buffers from memory set aside at boot and never given to the
page allocator (ION's ``ION_HEAP_TYPE_CARVEOUT``), managed by a gen_pool."""

import errno

from ..errors import KernelError
from ..mm.page_alloc import PAGE_SHIFT, Page
from .buffer import HeapBuffer, export_heap_buffer
from .heap import DmaHeap

__all__ = ["CarveoutHeap"]


class CarveoutHeap(DmaHeap):
    """A heap over one :class:`~dmabuf_soc.sw.mm.cma.GenPool`, named after it."""

    type = "carveout"

    def __init__(self, pool, kmem, name=None):
        super().__init__(pool.name if name is None else name)
        self.pool = pool
        self.kmem = kmem

    async def allocate(self, len, fd_flags, heap_flags):
        addr = self.pool.alloc(len, owner=f"heap:{self.name}")
        if not addr:
            raise KernelError(errno.ENOMEM, f"carveout {self.pool.name!r} has no free "
                                            f"{len}-byte range")
        page = Page.from_phys(addr)
        await self.kmem.clear_pages(page, len >> PAGE_SHIFT)
        buffer = HeapBuffer(self, [(page, len)], self.kmem, self._free)
        return export_heap_buffer(buffer, fd_flags)

    def _free(self, buffer):
        (page, size), = buffer.blocks
        self.pool.free(page.phys, size)

    @property
    def total_bytes(self):
        return self.pool.size

    @property
    def free_bytes(self):
        return self.pool.avail()
