"""Bounce buffering (``kernel/dma/swiotlb.c``).

A pool of 2 KiB slots in memory every device can reach. When a device without an IOMMU
cannot address a buffer, the mapping copies it into slots of the pool and hands the device
the slots' address; syncs and unmaps copy the data back. The copies are CPU copies through
the cacheable linear map, with the cache maintenance of the slots done by the caller.
"""

import errno

from ..errors import KernelBug, KernelError
from ..mm.page_alloc import PAGE_SIZE
from .direction import DMA_ATTR_NO_WARN, DMA_MAPPING_ERROR, DmaDirection

__all__ = ["IO_TLB_SHIFT", "IO_TLB_SIZE", "IO_TLB_SEGSIZE", "Swiotlb"]

IO_TLB_SHIFT = 11
IO_TLB_SIZE = 1 << IO_TLB_SHIFT
IO_TLB_SEGSIZE = 128
_INVALID_PHYS_ADDR = None


def _nr_slots(size):
    return (size + IO_TLB_SIZE - 1) >> IO_TLB_SHIFT


class Swiotlb:
    """A bounce-buffer pool (``struct io_tlb_mem``).

    Parameters
    ----------
    kmem : KernelMemory
        For the bounce copies.
    base, size : int
        The pool's physical range, reserved at boot below every device's limit.
    force_bounce : bool
        Bounce every mapping (``swiotlb=force``).
    """

    def __init__(self, kmem, base, size, *, force_bounce=False):
        if base % PAGE_SIZE or size <= 0 or size % PAGE_SIZE:
            raise ValueError(f"swiotlb pool base {base:#x} size {size:#x} must be whole pages")
        self.kmem = kmem
        self.start = base
        self.end = base + size
        self.nslabs = size >> IO_TLB_SHIFT
        self.force_bounce = force_bounce
        self._orig_addr = [_INVALID_PHYS_ADDR] * self.nslabs
        self._alloc_size = [0] * self.nslabs
        self._mapping_size = [0] * self.nslabs
        self.used = 0
        self.warnings = []

    @classmethod
    def reserve(cls, memblock, kmem, size, *, limit=1 << 32, force_bounce=False):
        """Reserve the pool from boot memory below ``limit`` (``swiotlb_init()``)."""
        base = memblock.alloc(size, "swiotlb", align=PAGE_SIZE, limit=limit)
        return cls(kmem, base, size, force_bounce=force_bounce)

    def is_swiotlb_buffer(self, paddr):
        return self.start <= paddr < self.end

    def max_mapping_size(self):
        """``swiotlb_max_mapping_size()``: one contiguous run of slots."""
        return IO_TLB_SIZE * IO_TLB_SEGSIZE

    def _find_slots(self, alloc_size):
        nslots = _nr_slots(alloc_size)
        stride = PAGE_SIZE // IO_TLB_SIZE if alloc_size >= PAGE_SIZE else 1
        for index in range(0, self.nslabs - nslots + 1, stride):
            if index // IO_TLB_SEGSIZE != (index + nslots - 1) // IO_TLB_SEGSIZE:
                continue   # a run never crosses an IO_TLB_SEGSIZE segment
            if all(self._orig_addr[index + i] is _INVALID_PHYS_ADDR
                   and not self._alloc_size[index + i] for i in range(nslots)):
                return index
        return None

    async def map_single(self, dev, orig_addr, mapping_size, alloc_size, direction, attrs):
        """Take slots for ``orig_addr`` and copy the original into them
        (``swiotlb_tbl_map_single()``); returns the slots' physical address or
        :data:`DMA_MAPPING_ERROR`."""
        if mapping_size > alloc_size:
            self._warn(dev, f"Invalid sizes (mapping: {mapping_size} bytes, "
                            f"alloc: {alloc_size} bytes)")
            return DMA_MAPPING_ERROR
        index = self._find_slots(alloc_size)
        if index is None:
            if not attrs & DMA_ATTR_NO_WARN:
                self._warn(dev, f"swiotlb buffer is full (sz: {alloc_size} bytes), total "
                                f"{self.nslabs} (slots), used {self.used} (slots)")
            return DMA_MAPPING_ERROR
        nslots = _nr_slots(alloc_size)
        for i in range(nslots):
            self._orig_addr[index + i] = orig_addr + (i << IO_TLB_SHIFT)
            self._alloc_size[index + i] = alloc_size - (i << IO_TLB_SHIFT)
            self._mapping_size[index + i] = mapping_size
        self.used += nslots
        tlb_addr = self.start + (index << IO_TLB_SHIFT)
        # Copy in whatever the direction: a device that writes only part of the buffer
        # must not expose stale slot contents when the data is copied back.
        await self.bounce(tlb_addr, mapping_size, DmaDirection.TO_DEVICE)
        return tlb_addr

    async def unmap_single(self, dev, tlb_addr, mapping_size, direction, attrs, *, sync=True):
        """Copy back for ``DMA_FROM_DEVICE``/``DMA_BIDIRECTIONAL`` (unless ``sync`` is
        false) and free the slots (``swiotlb_tbl_unmap_single()``)."""
        index = self._index(tlb_addr)
        if sync and direction in (DmaDirection.FROM_DEVICE, DmaDirection.BIDIRECTIONAL):
            await self.bounce(tlb_addr, mapping_size, DmaDirection.FROM_DEVICE)
        nslots = _nr_slots(self._alloc_size[index])
        for i in range(nslots):
            self._orig_addr[index + i] = _INVALID_PHYS_ADDR
            self._alloc_size[index + i] = 0
            self._mapping_size[index + i] = 0
        self.used -= nslots

    async def sync_for_device(self, tlb_addr, size, direction):
        """``swiotlb_sync_single_for_device()``."""
        if direction in (DmaDirection.TO_DEVICE, DmaDirection.BIDIRECTIONAL):
            await self.bounce(tlb_addr, size, DmaDirection.TO_DEVICE)
        elif direction is not DmaDirection.FROM_DEVICE:
            raise KernelBug(f"swiotlb sync for device with direction {direction}")

    async def sync_for_cpu(self, tlb_addr, size, direction):
        """``swiotlb_sync_single_for_cpu()``."""
        if direction in (DmaDirection.FROM_DEVICE, DmaDirection.BIDIRECTIONAL):
            await self.bounce(tlb_addr, size, DmaDirection.FROM_DEVICE)
        elif direction is not DmaDirection.TO_DEVICE:
            raise KernelBug(f"swiotlb sync for cpu with direction {direction}")

    def _index(self, tlb_addr):
        if not self.is_swiotlb_buffer(tlb_addr):
            raise KernelBug(f"{tlb_addr:#x} is not in the swiotlb pool")
        index = (tlb_addr - self.start) >> IO_TLB_SHIFT
        if self._orig_addr[index] is _INVALID_PHYS_ADDR:
            raise KernelBug(f"swiotlb slot at {tlb_addr:#x} is not mapped")
        return index

    def orig_addr(self, tlb_addr):
        """The original physical address bounced at ``tlb_addr``."""
        index = self._index(tlb_addr)
        return self._orig_addr[index] + ((tlb_addr - self.start) & (IO_TLB_SIZE - 1))

    async def bounce(self, tlb_addr, size, direction):
        """Copy between the original buffer and the slots (``swiotlb_bounce()``)."""
        orig = self.orig_addr(tlb_addr)
        index = self._index(tlb_addr)
        if size > self._alloc_size[index]:
            raise KernelError(errno.EINVAL, f"swiotlb bounce of {size} bytes at {tlb_addr:#x}"
                                            f" beyond the {self._alloc_size[index]}-byte "
                                            f"mapping")
        tlb_va = self.kmem.phys_to_virt(tlb_addr)
        orig_va = self.kmem.phys_to_virt(orig)
        if direction is DmaDirection.TO_DEVICE:
            await self.kmem.memcpy(tlb_va, orig_va, size)
        else:
            await self.kmem.memcpy(orig_va, tlb_va, size)

    def _warn(self, dev, message):
        self.warnings.append(f"{dev.name}: {message}")
