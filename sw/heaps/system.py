"""The system heap (``drivers/dma-buf/heaps/system_heap.c``): scattered pages, the largest
blocks first, zeroed."""

import errno

from ..errors import KernelError
from ..mm.page_alloc import GFP_KERNEL, PAGE_SHIFT, PAGE_SIZE, Gfp
from .buffer import HeapBuffer, export_heap_buffer
from .heap import DmaHeap

__all__ = ["SystemHeap", "SYSTEM_HEAP_ORDERS"]

#: 1 MiB, 64 KiB and 4 KiB blocks: the sizes the IOMMU and the TLBs like.
SYSTEM_HEAP_ORDERS = (8, 4, 0)


class SystemHeap(DmaHeap):
    """Heap ``"system"``.

    Parameters
    ----------
    mm : PageAllocator
    kmem : KernelMemory
        For zeroing the pages through the CPU.
    """

    type = "system"

    def __init__(self, mm, kmem, name="system"):
        super().__init__(name)
        self.mm = mm
        self.kmem = kmem

    def _alloc_largest_available(self, size_remaining, max_order):
        for order in SYSTEM_HEAP_ORDERS:
            if size_remaining < PAGE_SIZE << order or max_order < order:
                continue
            gfp = GFP_KERNEL | (Gfp.COMP if order else Gfp(0))
            page = self.mm.alloc_pages(gfp, order, owner=f"heap:{self.name}")
            if page is not None:
                return page, order
        return None, None

    async def allocate(self, len, fd_flags, heap_flags):
        if len // PAGE_SIZE > self.mm.total_pages:
            raise KernelError(errno.ENOMEM, f"{len} bytes is more than all memory")
        blocks = []
        size_remaining = len
        max_order = SYSTEM_HEAP_ORDERS[0]
        while size_remaining > 0:
            page, order = self._alloc_largest_available(size_remaining, max_order)
            if page is None:
                for block, size in blocks:
                    self.mm.free_pages(block, (size >> PAGE_SHIFT).bit_length() - 1)
                raise KernelError(errno.ENOMEM, f"system heap: out of pages with "
                                                f"{size_remaining} of {len} bytes to go")
            blocks.append((page, PAGE_SIZE << order))
            size_remaining -= PAGE_SIZE << order
            max_order = order
        for page, size in blocks:
            await self.kmem.clear_pages(page, size >> PAGE_SHIFT)
        buffer = HeapBuffer(self, blocks, self.kmem, self._free)
        return export_heap_buffer(buffer, fd_flags)

    def _free(self, buffer):
        for page, size in buffer.blocks:
            self.mm.free_pages(page, (size >> PAGE_SHIFT).bit_length() - 1)

    @property
    def total_bytes(self):
        return self.mm.total_pages * PAGE_SIZE

    @property
    def free_bytes(self):
        return self.mm.nr_free_pages * PAGE_SIZE
