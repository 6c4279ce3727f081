"""DMA mapping through the SMMU (``drivers/iommu/dma-iommu.c``): the DMA API for a device
attached to a DMA domain.

IOVAs come from the domain's :class:`~.iova.IovaDomain` (granule 4 KiB, IOVA 0 never used,
top-down below the device's DMA limit and the aperture, sizes under 32 pages rounded up to a
power of two and naturally aligned). ``map_sg`` maps a whole scatterlist into one contiguous
IOVA range and merges the segments into as few DMA segments as the device's maximum segment
size and boundary allow (``__finalise_sg``). Cache maintenance for a non-coherent device is
the arm64 one, on the physical pages.
"""

import errno

from ...hw.smmu.format import GRANULE
from ..dma_mapping.direction import DMA_ATTR_SKIP_CPU_SYNC, DMA_MAPPING_ERROR, DmaDirection
from ..dma_mapping.ops import DmaMapOps
from ..errors import KernelBug, KernelError
from ..mm.page_alloc import GFP_KERNEL, PAGE_SHIFT, Page, page_align
from .io_pgtable import IOMMU_CACHE, IOMMU_READ, IOMMU_WRITE
from .iommu import iommu_iova_to_phys, iommu_map, iommu_map_sg, iommu_unmap
from .iova import IovaDomain

__all__ = ["IOVA_RANGE_CACHE_MAX_SIZE", "dma_info_to_prot", "IommuDmaOps"]

IOVA_RANGE_CACHE_MAX_SIZE = 6


def dma_info_to_prot(direction, coherent):
    """``dma_info_to_prot()``."""
    prot = IOMMU_CACHE if coherent else 0
    direction = DmaDirection(direction)
    if direction is DmaDirection.BIDIRECTIONAL:
        return prot | IOMMU_READ | IOMMU_WRITE
    if direction is DmaDirection.TO_DEVICE:
        return prot | IOMMU_READ
    if direction is DmaDirection.FROM_DEVICE:
        return prot | IOMMU_WRITE
    return 0


class IommuDmaOps(DmaMapOps):
    """The DMA operations of one DMA domain (``iommu_dma_ops``)."""

    name = "dma-iommu"

    def __init__(self, domain):
        self.domain = domain
        if domain.iovad is None:
            # iommu_dma_init_domain(): base_pfn = max(1, aperture_start >> shift).
            domain.iovad = IovaDomain(GRANULE, max(1, domain.aperture_start >> PAGE_SHIFT))
        self.iovad = domain.iovad
        # IOVA range start -> bytes mapped there: what an unmap must match. Linux WARNs
        # when it unmaps a different amount and goes on; here a mismatch is refused
        # before the page table or the IOVA allocator is touched.
        self._mapped = {}

    def _range(self, dma_addr, size):
        """The granule-aligned range ``__iommu_dma_unmap()`` would unmap."""
        if not isinstance(dma_addr, int) or not isinstance(size, int) or size <= 0:
            raise KernelBug(f"dma-iommu: unmap of {dma_addr!r}+{size!r}")
        offset = self.iovad.offset(dma_addr)
        return dma_addr - offset, self.iovad.align(size + offset)

    def check_unmap(self, dma_addr, size):
        """Refuse, before any side effect, an unmap that does not match a mapping."""
        base, length = self._range(dma_addr, size)
        mapped = self._mapped.get(base)
        if mapped is None:
            raise KernelBug(f"dma-iommu: no mapping at IOVA {base:#x} to unmap")
        if mapped != length:
            raise KernelBug(f"dma-iommu: unmap of {length:#x} bytes at IOVA {base:#x}, "
                            f"mapped {mapped:#x}: refused (the page table and the IOVA "
                            f"range stay as they are)")

    def dma_supported(self, dev, mask):
        return True

    def max_mapping_size(self, dev):
        return (1 << 64) - 1

    def _arch(self, dev):
        return None if dev.dma_coherent else dev.platform.arch

    # IOVA space.

    def alloc_iova(self, dev, size):
        """``iommu_dma_alloc_iova()``: returns the IOVA or 0."""
        iovad = self.iovad
        iova_len = size >> iovad.shift
        if iova_len < 1 << (IOVA_RANGE_CACHE_MAX_SIZE - 1):
            iova_len = 1 << (iova_len - 1).bit_length()
        dma_limit = dev.dma_limit
        dma_limit = min(dma_limit, self.domain.aperture_end)
        iova = iovad.alloc_iova(iova_len, dma_limit >> iovad.shift, True)
        return 0 if iova is None else iova.pfn_lo << iovad.shift

    def free_iova(self, iova):
        self.iovad.free_iova(iova >> self.iovad.shift)

    async def _unmap(self, dma_addr, size):
        """``__iommu_dma_unmap()``."""
        self.check_unmap(dma_addr, size)
        dma_addr, size = self._range(dma_addr, size)
        del self._mapped[dma_addr]
        unmapped = await iommu_unmap(self.domain, dma_addr, size)
        if unmapped != size:
            raise KernelBug(f"dma-iommu: unmapped {unmapped:#x} of {size:#x} at {dma_addr:#x}")
        self.free_iova(dma_addr)

    async def _map(self, dev, phys, size, prot):
        """``__iommu_dma_map()``: returns the DMA address or :data:`DMA_MAPPING_ERROR`."""
        offset = self.iovad.offset(phys)
        size = self.iovad.align(size + offset)
        iova = self.alloc_iova(dev, size)
        if not iova:
            return DMA_MAPPING_ERROR
        try:
            await iommu_map(self.domain, iova, phys - offset, size, prot)
        except KernelError:
            self.free_iova(iova)
            return DMA_MAPPING_ERROR
        self._mapped[iova] = size
        return iova + offset

    # Single pages.

    async def map_page(self, dev, page, offset, size, direction, attrs):
        phys = page.phys + offset
        arch = self._arch(dev)
        if arch is not None and not attrs & DMA_ATTR_SKIP_CPU_SYNC:
            await arch.for_device(phys, size, direction)
        return await self._map(dev, phys, size, dma_info_to_prot(direction, dev.dma_coherent))

    async def unmap_page(self, dev, dma_addr, size, direction, attrs):
        self.check_unmap(dma_addr, size)
        if not attrs & DMA_ATTR_SKIP_CPU_SYNC:
            await self.sync_single_for_cpu(dev, dma_addr, size, direction)
        await self._unmap(dma_addr, size)

    async def sync_single_for_cpu(self, dev, dma_addr, size, direction):
        arch = self._arch(dev)
        if arch is not None:
            phys = await iommu_iova_to_phys(self.domain, dma_addr)
            await arch.for_cpu(phys, size, direction)

    async def sync_single_for_device(self, dev, dma_addr, size, direction):
        arch = self._arch(dev)
        if arch is not None:
            phys = await iommu_iova_to_phys(self.domain, dma_addr)
            await arch.for_device(phys, size, direction)

    # Scatterlists.

    async def map_sg(self, dev, sgl, nents, direction, attrs):
        """``iommu_dma_map_sg()``: one IOVA allocation for the whole list."""
        iovad = self.iovad
        arch = self._arch(dev)
        if arch is not None and not attrs & DMA_ATTR_SKIP_CPU_SYNC:
            for sg in sgl[:nents]:
                await arch.for_device(sg.phys, sg.length, direction)
        mask = dev.segment_boundary_mask
        layout = []         # (iova offset in first page, length, IOVA length) per segment
        iova_len = 0
        for sg in sgl[:nents]:
            s_iova_off = iovad.offset(sg.offset)
            s_iova_len = iovad.align(sg.length + s_iova_off)
            pad_len = (mask - iova_len + 1) & mask
            if layout and pad_len and pad_len < s_iova_len - 1:
                off, length, prev_len = layout[-1]
                layout[-1] = (off, length, prev_len + pad_len)
                iova_len += pad_len
            layout.append((s_iova_off, sg.length, s_iova_len))
            iova_len += s_iova_len
        iova = self.alloc_iova(dev, iova_len)
        if not iova:
            raise KernelError(errno.ENOMEM, f"{dev.name}: no IOVA space for {iova_len:#x} bytes")
        prot = dma_info_to_prot(direction, dev.dma_coherent)
        cursor = iova
        try:
            for sg, (off, length, s_iova_len) in zip(sgl[:nents], layout):
                start = sg.phys - off
                await iommu_map(self.domain, cursor, start, iovad.align(length + off), prot)
                cursor += s_iova_len
        except KernelError:
            if cursor > iova:
                await iommu_unmap(self.domain, iova, cursor - iova)
            self.free_iova(iova)
            raise
        self._mapped[iova] = iova_len
        return self._finalise_sg(dev, sgl, nents, iova, layout)

    @staticmethod
    def _finalise_sg(dev, sgl, nents, dma_addr, layout):
        """``__finalise_sg()``: merge the segments into DMA segments."""
        seg_mask = dev.segment_boundary_mask
        max_len = dev.max_segment_size
        for sg in sgl[:nents]:
            sg.dma_address, sg.dma_length = DMA_MAPPING_ERROR, 0
        cur = -1
        cur_len = 0
        count = 0
        for s_iova_off, s_length, s_iova_len in layout:
            if cur_len and not s_iova_off and dma_addr & seg_mask and \
                    max_len - cur_len >= s_length:
                cur_len += s_length
            else:
                cur += 1
                cur_len = s_length
                count += 1
                sgl[cur].dma_address = dma_addr + s_iova_off
            sgl[cur].dma_length = cur_len
            dma_addr += s_iova_len
            if s_length + s_iova_off < s_iova_len:
                cur_len = 0
        return count

    async def unmap_sg(self, dev, sgl, nents, direction, attrs):
        if not sgl or not nents:
            raise KernelBug(f"dma-iommu: unmap_sg of {nents!r} entries")
        start = sgl[0].dma_address
        end = start
        for sg in sgl[:nents]:
            if not sg.dma_length:
                break
            end = sg.dma_address + sg.dma_length
        self.check_unmap(start, end - start)
        if not attrs & DMA_ATTR_SKIP_CPU_SYNC:
            await self.sync_sg_for_cpu(dev, sgl, nents, direction)
        await self._unmap(start, end - start)

    async def sync_sg_for_cpu(self, dev, sgl, nents, direction):
        arch = self._arch(dev)
        if arch is not None:
            for sg in sgl[:nents]:
                await arch.for_cpu(sg.phys, sg.length, direction)

    async def sync_sg_for_device(self, dev, sgl, nents, direction):
        arch = self._arch(dev)
        if arch is not None:
            for sg in sgl[:nents]:
                await arch.for_device(sg.phys, sg.length, direction)

    # Coherent buffers.

    async def alloc(self, dev, size, gfp, attrs):
        """``iommu_dma_alloc()``: scattered pages, one contiguous IOVA range; an uncached
        CPU mapping for a non-coherent device."""
        platform = dev.platform
        size = page_align(size)
        pages = []
        for _ in range(size >> PAGE_SHIFT):
            page = platform.mm.alloc_pages(GFP_KERNEL, 0, owner=dev.name)
            if page is None:
                for p in pages:
                    platform.mm.free_pages(p, 0)
                return None
            pages.append(page)
        iova = self.alloc_iova(dev, size)
        if not iova:
            for p in pages:
                platform.mm.free_pages(p, 0)
            return None
        prot = dma_info_to_prot(DmaDirection.BIDIRECTIONAL, dev.dma_coherent)
        for n, page in enumerate(pages):
            if not dev.dma_coherent:
                await platform.arch.prep_coherent(page.phys, GRANULE)
            await iommu_map(self.domain, iova + n * GRANULE, page.phys, GRANULE, prot)
        self._mapped[iova] = size
        cpu_addr = platform.kmem.vmap(pages, cached=dev.dma_coherent)
        await platform.kmem.memset(cpu_addr, 0, size)
        platform.coherent[cpu_addr] = (pages, size, "iommu")
        return cpu_addr, iova

    async def free(self, dev, size, cpu_addr, dma_handle, attrs):
        platform = dev.platform
        if cpu_addr not in platform.coherent:
            raise KernelBug(f"dma_free_coherent({cpu_addr!r}): not a coherent allocation")
        pages, size, _ = platform.coherent[cpu_addr]
        self.check_unmap(dma_handle, size)
        del platform.coherent[cpu_addr]
        await self._unmap(dma_handle, size)
        platform.kmem.vunmap(cpu_addr)
        for page in pages:
            platform.mm.free_pages(page, 0)
