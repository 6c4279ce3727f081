"""IOVA allocator (``drivers/iommu/iova.c``): ranges of I/O virtual page frames.

As Linux: a domain has a granule and a first usable page frame (``start_pfn``; dma-iommu
uses 1 so that IOVA 0 is never handed out); ranges are allocated top-down, below a limit,
each placed in the highest gap under the limit that fits it (walking down from the top, as
``__alloc_and_insert_iova_range`` does), and with ``size_aligned`` naturally aligned to the
power of two covering their size. The per-CPU range caches (``rcache``) are not modelled.
"""

import bisect
from dataclasses import dataclass

from ..errors import KernelBug

__all__ = ["Iova", "IovaDomain"]


@dataclass(frozen=True, order=True)
class Iova:
    """An allocated range of page frames, both ends inclusive (``struct iova``)."""
    pfn_lo: int
    pfn_hi: int

    @property
    def size(self):
        return self.pfn_hi - self.pfn_lo + 1


class IovaDomain:
    """``struct iova_domain`` with ``init_iova_domain(iovad, granule, start_pfn)``.

    Parameters
    ----------
    granule : int
        Bytes per IOVA page frame, a power of two.
    start_pfn : int
        Lowest page frame that may be allocated.
    """

    def __init__(self, granule, start_pfn):
        if not isinstance(granule, int) or granule <= 0 or granule & (granule - 1):
            raise ValueError(f"IOVA granule must be a power of two, not {granule!r}")
        if not isinstance(start_pfn, int) or start_pfn < 0:
            raise ValueError(f"start_pfn must be a non-negative integer, not {start_pfn!r}")
        self.granule = granule
        self.start_pfn = start_pfn
        self._ranges = []       # sorted by pfn_lo

    @property
    def shift(self):
        """``iova_shift()``."""
        return self.granule.bit_length() - 1

    def offset(self, addr):
        """``iova_offset()``."""
        return addr & (self.granule - 1)

    def align(self, size):
        """``iova_align()``."""
        return (size + self.granule - 1) & ~(self.granule - 1)

    def alloc_iova(self, size, limit_pfn, size_aligned=True):
        """Allocate ``size`` page frames ending at or below ``limit_pfn``; returns the
        :class:`Iova` or ``None`` (``alloc_iova()``)."""
        if not isinstance(size, int) or size <= 0:
            return None     # nothing to allocate: NULL, as for any failed allocation
        align_mask = ~0
        if size_aligned:
            align_mask <<= (size - 1).bit_length()
        high_pfn = limit_pfn + 1
        new_pfn = (high_pfn - size) & align_mask
        for existing in reversed(self._ranges):
            if existing.pfn_lo >= high_pfn and existing.pfn_hi >= high_pfn:
                continue
            if not (new_pfn <= existing.pfn_hi and new_pfn >= self.start_pfn):
                break
            high_pfn = min(high_pfn, existing.pfn_lo)
            new_pfn = (high_pfn - size) & align_mask
        if high_pfn < size or new_pfn < self.start_pfn:
            return None
        iova = Iova(new_pfn, new_pfn + size - 1)
        bisect.insort(self._ranges, iova)
        return iova

    def reserve_iova(self, pfn_lo, pfn_hi):
        """Keep ``[pfn_lo, pfn_hi]`` from being allocated (``reserve_iova()``)."""
        iova = Iova(pfn_lo, pfn_hi)
        if any(r.pfn_lo <= pfn_hi and pfn_lo <= r.pfn_hi for r in self._ranges):
            raise KernelBug(f"reserve_iova({pfn_lo:#x}, {pfn_hi:#x}) overlaps an allocation")
        bisect.insort(self._ranges, iova)
        return iova

    def find_iova(self, pfn):
        """The allocated range containing ``pfn``, or ``None``."""
        index = bisect.bisect_right(self._ranges, Iova(pfn, 1 << 64)) - 1
        if index >= 0 and self._ranges[index].pfn_lo <= pfn <= self._ranges[index].pfn_hi:
            return self._ranges[index]
        return None

    def free_iova(self, pfn):
        """Free the range containing ``pfn`` (``free_iova()``); a pfn in no range is a bug."""
        iova = self.find_iova(pfn)
        if iova is None:
            raise KernelBug(f"free_iova({pfn:#x}): not allocated")
        self._ranges.remove(iova)

    @property
    def allocations(self):
        return list(self._ranges)
