"""Cache maintenance for streaming DMA on a non-coherent arm64 system
(``arch/arm64/mm/dma-mapping.c``).

The cache driver provides the maintenance operations by physical range; this module decides
which one each DMA-mapping event needs, with arm64's rules:

* before the device accesses memory (map, sync for device): clean to the point of coherency,
  so no dirty line can later be evicted over what the device writes; for
  ``DMA_BIDIRECTIONAL`` clean *and invalidate*, as issue 5 specifies (a safe superset of
  arm64's clean: the CPU cannot keep reading a line the device is about to change);
* after the device accessed memory (unmap, sync for CPU): invalidate, except for
  ``DMA_TO_DEVICE`` where the device only read;
* before a page becomes an uncached coherent buffer: clean and invalidate its cacheable alias.
"""

import abc

from .direction import DmaDirection

__all__ = ["CacheMaintenance", "ArchDmaSync"]


class CacheMaintenance(abc.ABC):
    """Data-cache maintenance by physical address range, to the point of coherency."""

    @abc.abstractmethod
    async def clean(self, pa, size):
        """Write dirty lines of ``[pa, pa + size)`` back to memory; keep them valid."""

    @abc.abstractmethod
    async def invalidate(self, pa, size):
        """Drop the lines of ``[pa, pa + size)`` (partial lines at the ends are cleaned
        first, as ``dcache_inval_poc`` does)."""

    @abc.abstractmethod
    async def clean_invalidate(self, pa, size):
        """Write back and drop the lines of ``[pa, pa + size)``."""


class ArchDmaSync:
    """arm64's ``arch_sync_dma_for_device`` / ``arch_sync_dma_for_cpu`` /
    ``arch_dma_prep_coherent`` over a :class:`CacheMaintenance`.

    Attributes
    ----------
    counts : dict of str to int
        Maintenance operations issued, by name, for reports.
    """

    def __init__(self, cache):
        if not isinstance(cache, CacheMaintenance):
            raise TypeError(f"cache must be a CacheMaintenance, not {cache!r}")
        self.cache = cache
        self.counts = {"clean": 0, "invalidate": 0, "clean_invalidate": 0}

    async def for_device(self, paddr, size, direction):
        if DmaDirection(direction) is DmaDirection.BIDIRECTIONAL:
            self.counts["clean_invalidate"] += 1
            await self.cache.clean_invalidate(paddr, size)
            return
        self.counts["clean"] += 1
        await self.cache.clean(paddr, size)

    async def for_cpu(self, paddr, size, direction):
        if DmaDirection(direction) is DmaDirection.TO_DEVICE:
            return
        self.counts["invalidate"] += 1
        await self.cache.invalidate(paddr, size)

    async def prep_coherent(self, paddr, size):
        self.counts["clean_invalidate"] += 1
        await self.cache.clean_invalidate(paddr, size)
