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
        self.pages_cleared = 0
        self.pages_fresh = 0

    def _alloc_largest_available(self, size_remaining, max_order, gfp):
        for order in SYSTEM_HEAP_ORDERS:
            if size_remaining < PAGE_SIZE << order or max_order < order:
                continue
            page = self.mm.alloc_pages(gfp | (Gfp.COMP if order else Gfp(0)), order,
                                       owner=f"heap:{self.name}")
            if page is not None:
                return page, order
        return None, None

    async def alloc_blocks(self, len, gfp=GFP_KERNEL, *, zero=True):
        """Scattered blocks of ``len`` bytes in total from the zones ``gfp`` allows, largest
        orders first, zeroed unless ``zero`` is false: ``[(Page, size)]``. ``ENOMEM`` when
        the pages run out (nothing stays allocated then)."""
        if len // PAGE_SIZE > self.mm.total_pages:
            raise KernelError(errno.ENOMEM, f"{len} bytes is more than all memory")
        blocks = []
        size_remaining = len
        max_order = SYSTEM_HEAP_ORDERS[0]
        while size_remaining > 0:
            page, order = self._alloc_largest_available(size_remaining, max_order, gfp)
            if page is None:
                self.free_blocks(blocks)
                raise KernelError(errno.ENOMEM, f"{self.name} heap: out of pages with "
                                                f"{size_remaining} of {len} bytes to go")
            blocks.append((page, PAGE_SIZE << order))
            size_remaining -= PAGE_SIZE << order
            max_order = order
        if zero:
            await self.clear_blocks(blocks)
        return blocks

    async def clear_blocks(self, blocks):
        """Zero the blocks through the CPU, except those the page allocator knows are
        still zero from reset (:meth:`~dmabuf_soc.sw.mm.page_alloc.PageAllocator.is_fresh`);
        counts both in :attr:`pages_cleared` and :attr:`pages_fresh`."""
        for page, size in blocks:
            if self.mm.is_fresh(page):
                self.pages_fresh += size >> PAGE_SHIFT
            else:
                self.pages_cleared += size >> PAGE_SHIFT
                await self.kmem.clear_pages(page, size >> PAGE_SHIFT)

    def free_blocks(self, blocks):
        """Give back blocks from :meth:`alloc_blocks`."""
        for page, size in blocks:
            self.mm.free_pages(page, (size >> PAGE_SHIFT).bit_length() - 1)

    async def allocate(self, len, fd_flags, heap_flags):
        blocks = await self.alloc_blocks(len)
        buffer = HeapBuffer(self, blocks, self.kmem, self._free)
        return export_heap_buffer(buffer, fd_flags)

    def _free(self, buffer):
        self.free_blocks(buffer.blocks)

    @property
    def total_bytes(self):
        return self.mm.total_pages * PAGE_SIZE

    @property
    def free_bytes(self):
        return self.mm.nr_free_pages * PAGE_SIZE
