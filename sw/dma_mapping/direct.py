"""Direct mapping (``kernel/dma/direct.c``): the device uses physical addresses.

A buffer the device cannot reach goes through the swiotlb pool if the device has one, else
the mapping fails. For a non-coherent device each map, unmap and sync does the arm64 cache
maintenance through the platform's :class:`~.arch.ArchDmaSync`.
"""

import errno

from ..errors import KernelBug, KernelError
from ..mm.page_alloc import GFP_DMA32, GFP_KERNEL, PAGE_SHIFT, Gfp, Page, get_order, page_align
from .direction import (DMA_ATTR_SKIP_CPU_SYNC, DMA_BIT_MASK, DMA_MAPPING_ERROR,
                        DmaDirection)
from .ops import DmaMapOps

__all__ = ["DirectOps", "dma_capable"]

CMA_ALIGNMENT = 8


def dma_capable(dev, addr, size):
    """Whether ``[addr, addr + size)`` is inside the device's DMA limit (``dma_capable()``)."""
    if addr == DMA_MAPPING_ERROR:
        return False
    return addr + size - 1 <= dev.dma_limit


class DirectOps(DmaMapOps):
    """Direct-mapping operations; one instance serves every device without an IOMMU."""

    name = "dma-direct"

    def dma_supported(self, dev, mask):
        """``dma_direct_supported()``: the mask must cover ``ZONE_DMA32`` or all memory."""
        top_page = (dev.platform.mm.max_pfn - 1) << PAGE_SHIFT
        return mask >= min(DMA_BIT_MASK(32), top_page)

    def max_mapping_size(self, dev):
        """``dma_direct_max_mapping_size()``: the swiotlb limit only for a device that may
        bounce (``dma_addressing_limited()`` or forced bouncing), else ``SIZE_MAX``."""
        swiotlb = dev.dma_io_tlb_mem
        if swiotlb is not None and (swiotlb.force_bounce or self.addressing_limited(dev)):
            return swiotlb.max_mapping_size()
        return (1 << 64) - 1

    @staticmethod
    def addressing_limited(dev):
        """``dma_addressing_limited()``: the device's limit is below the mask that covers
        all memory (``dma_direct_get_required_mask()``)."""
        top = (dev.platform.mm.max_pfn - 1) << PAGE_SHIFT
        required = (1 << top.bit_length()) - 1
        limit = dev.dma_limit
        return limit is not None and limit < required

    def _arch(self, dev):
        return None if dev.dma_coherent else dev.platform.arch

    async def map_page(self, dev, page, offset, size, direction, attrs):
        phys = page.phys + offset
        swiotlb = dev.dma_io_tlb_mem
        if swiotlb is not None and swiotlb.force_bounce:
            return await self._swiotlb_map(dev, phys, size, direction, attrs)
        if not dma_capable(dev, phys, size):
            if swiotlb is not None:
                return await self._swiotlb_map(dev, phys, size, direction, attrs)
            dev.platform.warn(dev, f"DMA addr {phys:#x}+{size} overflow (mask "
                                   f"{dev.dma_mask:#x}, bus limit {dev.bus_dma_limit:#x})")
            return DMA_MAPPING_ERROR
        arch = self._arch(dev)
        if arch is not None and not attrs & DMA_ATTR_SKIP_CPU_SYNC:
            await arch.for_device(phys, size, direction)
        return phys

    async def _swiotlb_map(self, dev, phys, size, direction, attrs):
        """``swiotlb_map()``."""
        swiotlb = dev.dma_io_tlb_mem
        tlb_addr = await swiotlb.map_single(dev, phys, size, size, direction, attrs)
        if tlb_addr == DMA_MAPPING_ERROR:
            return DMA_MAPPING_ERROR
        if not dma_capable(dev, tlb_addr, size):
            await swiotlb.unmap_single(dev, tlb_addr, size, direction, attrs, sync=False)
            dev.platform.warn(dev, f"swiotlb addr {tlb_addr:#x}+{size} overflow (mask "
                                   f"{dev.dma_mask:#x}, bus limit {dev.bus_dma_limit:#x})")
            return DMA_MAPPING_ERROR
        arch = self._arch(dev)
        if arch is not None and not attrs & DMA_ATTR_SKIP_CPU_SYNC:
            await arch.for_device(tlb_addr, size, direction)
        return tlb_addr

    async def unmap_page(self, dev, dma_addr, size, direction, attrs):
        if not attrs & DMA_ATTR_SKIP_CPU_SYNC:
            await self.sync_single_for_cpu(dev, dma_addr, size, direction)
        swiotlb = dev.dma_io_tlb_mem
        if swiotlb is not None and swiotlb.is_swiotlb_buffer(dma_addr):
            await swiotlb.unmap_single(dev, dma_addr, size, direction, attrs, sync=False)

    async def sync_single_for_cpu(self, dev, dma_addr, size, direction):
        arch = self._arch(dev)
        if arch is not None:
            await arch.for_cpu(dma_addr, size, direction)
        swiotlb = dev.dma_io_tlb_mem
        if swiotlb is not None and swiotlb.is_swiotlb_buffer(dma_addr):
            await swiotlb.sync_for_cpu(dma_addr, size, direction)

    async def sync_single_for_device(self, dev, dma_addr, size, direction):
        swiotlb = dev.dma_io_tlb_mem
        if swiotlb is not None and swiotlb.is_swiotlb_buffer(dma_addr):
            await swiotlb.sync_for_device(dma_addr, size, direction)
        arch = self._arch(dev)
        if arch is not None:
            await arch.for_device(dma_addr, size, direction)

    async def map_sg(self, dev, sgl, nents, direction, attrs):
        for index, sg in enumerate(sgl[:nents]):
            sg.dma_address = await self.map_page(dev, sg.page, sg.offset, sg.length,
                                                 direction, attrs)
            if sg.dma_address == DMA_MAPPING_ERROR:
                await self.unmap_sg(dev, sgl, index, direction,
                                    attrs | DMA_ATTR_SKIP_CPU_SYNC)
                raise KernelError(errno.EIO, f"{dev.name}: segment {index} at "
                                             f"{sg.phys:#x}+{sg.length} cannot be mapped")
            sg.dma_length = sg.length
        return nents

    async def unmap_sg(self, dev, sgl, nents, direction, attrs):
        for sg in sgl[:nents]:
            await self.unmap_page(dev, sg.dma_address, sg.dma_length, direction, attrs)

    async def sync_sg_for_cpu(self, dev, sgl, nents, direction):
        for sg in sgl[:nents]:
            await self.sync_single_for_cpu(dev, sg.dma_address, sg.length, direction)

    async def sync_sg_for_device(self, dev, sgl, nents, direction):
        for sg in sgl[:nents]:
            await self.sync_single_for_device(dev, sg.dma_address, sg.length, direction)

    def _alloc_pages(self, dev, size):
        """``__dma_direct_alloc_pages()``: the default CMA area first, then the zone the
        coherent mask allows, retrying in ``ZONE_DMA32`` if the page is out of reach."""
        platform = dev.platform
        count = page_align(size) >> PAGE_SHIFT
        limit = dev.coherent_dma_mask
        if platform.cma is not None and count > 1:
            page = platform.cma.alloc(count, min(get_order(size), CMA_ALIGNMENT),
                                      owner=dev.name)
            if page is not None:
                if page.phys + page_align(size) - 1 <= limit:
                    return page, "cma"
                platform.cma.release(page, count)
        gfp = GFP_DMA32 if limit <= DMA_BIT_MASK(32) else GFP_KERNEL
        while True:
            page = platform.mm.alloc_pages(gfp, get_order(size), owner=dev.name)
            if page is None:
                return None, None
            if page.phys + page_align(size) - 1 <= limit:
                return page, "buddy"
            platform.mm.free_pages(page, get_order(size))
            if gfp & Gfp.DMA32:
                return None, None
            gfp = GFP_DMA32

    async def alloc(self, dev, size, gfp, attrs):
        """``dma_direct_alloc()``: zeroed pages; for a non-coherent device, its cacheable
        alias cleaned and invalidated and an uncached mapping returned."""
        size = page_align(size)
        page, source = self._alloc_pages(dev, size)
        if page is None:
            return None
        platform = dev.platform
        pages = [page + n for n in range(size >> PAGE_SHIFT)]
        if dev.dma_coherent:
            cpu_addr = platform.kmem.phys_to_virt(page.phys)
        else:
            await platform.arch.prep_coherent(page.phys, size)
            cpu_addr = platform.kmem.vmap(pages, cached=False)
        await platform.kmem.memset(cpu_addr, 0, size)
        platform.coherent[cpu_addr] = (page, size, source)
        return cpu_addr, page.phys

    async def free(self, dev, size, cpu_addr, dma_handle, attrs):
        platform = dev.platform
        if cpu_addr not in platform.coherent:
            raise KernelBug(f"dma_free_coherent({cpu_addr!r}): not a coherent allocation")
        page, size, source = platform.coherent.pop(cpu_addr)
        if not dev.dma_coherent:
            platform.kmem.vunmap(cpu_addr)
        if source == "cma":
            platform.cma.release(page, size >> PAGE_SHIFT)
        else:
            platform.mm.free_pages(page, get_order(size))
