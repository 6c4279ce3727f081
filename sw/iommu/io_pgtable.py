"""io-pgtable-arm (``drivers/iommu/io-pgtable-arm.c``): AArch64 stage-1 translation tables
with a 4 KiB granule, 39-bit input and 40-bit output addresses, in the format the SMMU walks
(:mod:`dmabuf_soc.hw.smmu.format`).

Tables live in pages from the page allocator and are written by CPU stores through the
kernel's linear map. The SMMU's walk is not coherent with the CPU cache, so every table page
and every descriptor written is cleaned to memory before the SMMU may read it
(``coherent_walk`` false, ``__arm_lpae_sync_pte``). Linux's rules:

* map with the page size the caller picked (:func:`~.iommu.iommu_pgsize` picks the largest
  that fits); mapping over a live leaf fails with ``EEXIST``;
* unmap whole leaves only: unmapping part of a block is refused (0 bytes unmapped);
* unmapping a range that a whole table covers clears the table entry, flushes the walk
  caches for that range, then frees the table's pages.

Unlike Linux, which silently tears down a table to put a block in its place, a block is
mapped over a table only if no leaf below it is live (else ``EEXIST``).
"""

import errno

from ...hw.smmu.format import (GRANULE, GRANULE_SHIFT, IA_BITS, LEVELS, OA_BITS,
                               DescriptorLayout, level_shift, table_index)
from ..errors import KernelError
from ..mm.page_alloc import GFP_KERNEL

__all__ = [
    "IOMMU_READ", "IOMMU_WRITE", "IOMMU_CACHE", "IOMMU_NOEXEC", "IOMMU_PRIV",
    "SZ_4K", "SZ_2M", "SZ_1G", "ARM_LPAE_S1_PGSIZES", "IommuFlushOps", "IommuIotlbGather",
    "ArmLpaeS1Pgtable",
]

IOMMU_READ = 1 << 0
IOMMU_WRITE = 1 << 1
IOMMU_CACHE = 1 << 2
IOMMU_NOEXEC = 1 << 3
IOMMU_PRIV = 1 << 5

SZ_4K, SZ_2M, SZ_1G = 1 << 12, 1 << 21, 1 << 30
ARM_LPAE_S1_PGSIZES = SZ_4K | SZ_2M | SZ_1G

_D = DescriptorLayout()


def _bit(name):
    return 1 << _D[name].offset


PTE_VALID = _bit("valid")
PTE_TYPE_TABLE_OR_PAGE = _bit("table")
PTE_TYPE_MASK = PTE_VALID | PTE_TYPE_TABLE_OR_PAGE
PTE_TYPE_BLOCK = PTE_VALID
PTE_TYPE_TABLE = PTE_TYPE_PAGE = PTE_VALID | PTE_TYPE_TABLE_OR_PAGE
PTE_AF = _bit("af")
PTE_NG = _bit("ng")
PTE_SH_IS = 0b11 << _D["sh"].offset
PTE_AP_UNPRIV = 0b01 << _D["ap"].offset
PTE_AP_RDONLY = 0b10 << _D["ap"].offset
PTE_XN = _bit("xn")
PTE_ATTRINDX_SHIFT = _D["attr_index"].offset
MAIR_IDX_NC, MAIR_IDX_CACHE = 0, 1
PTE_ADDR_MASK = ((1 << _D["oa"].width) - 1) << GRANULE_SHIFT
PTES_PER_TABLE = GRANULE // 8


def block_size(level):
    return 1 << level_shift(level)


class IommuFlushOps:
    """TLB maintenance io-pgtable asks of the IOMMU driver (``struct iommu_flush_ops``)."""

    async def tlb_flush_all(self):
        raise NotImplementedError

    async def tlb_flush_walk(self, iova, size, granule):
        """Invalidate walk caches and leaves for ``[iova, iova + size)`` and wait."""
        raise NotImplementedError

    def tlb_add_page(self, gather, iova, granule):
        """Queue the invalidation of one leaf in ``gather``."""
        gather.add_page(iova, granule)


class IommuIotlbGather:
    """Pending leaf invalidations of an unmap (``struct iommu_iotlb_gather``)."""

    def __init__(self):
        self.start = None
        self.end = 0
        self.pgsize = 0

    @property
    def empty(self):
        return self.start is None

    def add_page(self, iova, size):
        """``iommu_iotlb_gather_add_page()`` without the early sync of disjoint ranges: the
        range grows to cover every page (a superset is still exact for correctness)."""
        self.start = iova if self.start is None else min(self.start, iova)
        self.end = max(self.end, iova + size - 1)
        self.pgsize = max(self.pgsize, size)


class ArmLpaeS1Pgtable:
    """One stage-1 address space: its tables and the map/unmap/iova_to_phys operations.

    Parameters
    ----------
    mm : PageAllocator
    kmem : KernelMemory
        Table reads and writes go through its linear map (CPU, cacheable).
    cache : CacheMaintenance or None
        Cleans written tables for the non-coherent walk; ``None`` for a coherent walk.
    flush_ops : IommuFlushOps
    owner : str
        Owner name of the table pages in the page allocator.

    Attributes
    ----------
    ttbr : int
        Physical address of the level-1 table, after :meth:`alloc`.
    table_pages : int
        Table pages currently allocated.
    """
    pgsize_bitmap = ARM_LPAE_S1_PGSIZES
    ias = IA_BITS
    oas = OA_BITS

    def __init__(self, mm, kmem, *, cache=None, flush_ops=None, owner="io-pgtable"):
        self.mm = mm
        self.kmem = kmem
        self.cache = cache
        self.flush_ops = flush_ops if flush_ops is not None else IommuFlushOps()
        self.owner = owner
        self.ttbr = None
        self.table_pages = 0
        self._tables = set()

    # Memory.

    async def _sync(self, pa, size):
        if self.cache is not None:
            await self.cache.clean(pa, size)

    async def _alloc_table(self):
        page = self.mm.alloc_pages(GFP_KERNEL, 0, owner=self.owner)
        if page is None:
            raise KernelError(errno.ENOMEM, "io-pgtable: out of memory for a table page")
        if not self.mm.is_fresh(page):
            await self.kmem.clear_pages(page, 1)
            await self._sync(page.phys, GRANULE)
        self.table_pages += 1
        self._tables.add(page.phys)
        return page.phys

    def _free_table_page(self, pa):
        from ..mm.page_alloc import Page
        self.mm.free_pages(Page.from_phys(pa), 0)
        self.table_pages -= 1
        self._tables.discard(pa)

    async def _read_pte(self, pa):
        return int.from_bytes(await self.kmem.read(self.kmem.phys_to_virt(pa), 8), "little")

    async def _write_ptes(self, pa, ptes):
        data = b"".join(pte.to_bytes(8, "little") for pte in ptes)
        await self.kmem.write(self.kmem.phys_to_virt(pa), data)
        await self._sync(pa, len(data))

    @staticmethod
    def _is_leaf(pte, level):
        if level == LEVELS[-1]:
            return pte & PTE_TYPE_MASK == PTE_TYPE_PAGE
        return pte & PTE_TYPE_MASK == PTE_TYPE_BLOCK

    @staticmethod
    def _is_table(pte, level):
        return level != LEVELS[-1] and pte & PTE_TYPE_MASK == PTE_TYPE_TABLE

    @staticmethod
    def _deref(pte):
        return pte & PTE_ADDR_MASK

    # Operations.

    async def alloc(self):
        """Allocate the level-1 table (``alloc_io_pgtable_ops()``); returns ``ttbr``."""
        if self.ttbr is not None:
            raise KernelError(errno.EBUSY, "io-pgtable: already allocated")
        self.ttbr = await self._alloc_table()
        return self.ttbr

    @staticmethod
    def prot_to_pte(prot, level):
        """``arm_lpae_prot_to_pte()`` for stage 1, plus the leaf type."""
        pte = PTE_NG | PTE_AF | PTE_SH_IS
        if not prot & IOMMU_WRITE and prot & IOMMU_READ:
            pte |= PTE_AP_RDONLY
        if not prot & IOMMU_PRIV:
            pte |= PTE_AP_UNPRIV
        pte |= (MAIR_IDX_CACHE if prot & IOMMU_CACHE else MAIR_IDX_NC) << PTE_ATTRINDX_SHIFT
        if prot & IOMMU_NOEXEC:
            pte |= PTE_XN
        return pte | (PTE_TYPE_PAGE if level == LEVELS[-1] else PTE_TYPE_BLOCK)

    async def map_pages(self, iova, paddr, pgsize, pgcount, prot):
        """Map ``pgcount`` pages of ``pgsize`` from ``iova`` to ``paddr``; returns the bytes
        mapped (those before an error stay mapped, as in Linux).

        Raises
        ------
        KernelError
            ``EINVAL`` (unsupported or misaligned size), ``ERANGE`` (address beyond IAS or
            OAS), ``EEXIST`` (already mapped), ``ENOMEM``.
        """
        if pgsize not in (SZ_4K, SZ_2M, SZ_1G) or pgcount < 1 or (iova | paddr) % pgsize:
            raise KernelError(errno.EINVAL, f"io-pgtable: cannot map {pgcount} x {pgsize:#x} "
                                            f"at {iova:#x} -> {paddr:#x}")
        if (iova + pgsize * pgcount - 1) >> self.ias or (paddr + pgsize * pgcount - 1) >> self.oas:
            raise KernelError(errno.ERANGE, f"io-pgtable: {iova:#x} -> {paddr:#x} is beyond "
                                            f"the {self.ias}/{self.oas}-bit address spaces")
        if not prot & (IOMMU_READ | IOMMU_WRITE):
            return 0
        target = {SZ_1G: 1, SZ_2M: 2, SZ_4K: 3}[pgsize]
        mapped = 0
        while mapped < pgcount * pgsize:
            table = await self._table_for(iova + mapped, target)
            index = table_index(target, iova + mapped)
            count = min(pgcount - mapped // pgsize, PTES_PER_TABLE - index)
            await self._init_ptes(table, index, iova + mapped, paddr + mapped, prot, target,
                                  count)
            mapped += count * pgsize
        return mapped

    async def _table_for(self, iova, target):
        """The table at level ``target`` for ``iova``, allocating tables above it."""
        table = self.ttbr
        for level in LEVELS[:LEVELS.index(target)]:
            addr = table + 8 * table_index(level, iova)
            pte = await self._read_pte(addr)
            if not pte & PTE_VALID:
                new = await self._alloc_table()
                await self._write_ptes(addr, [new | PTE_TYPE_TABLE])
                table = new
            elif self._is_table(pte, level):
                table = self._deref(pte)
            else:
                raise KernelError(errno.EEXIST, f"io-pgtable: {iova:#x} is inside a "
                                                f"{block_size(level):#x} block")
        return table

    async def _init_ptes(self, table, index, iova, paddr, prot, level, count):
        """``arm_lpae_init_pte()``."""
        size = block_size(level)
        for i in range(count):
            pte = await self._read_pte(table + 8 * (index + i))
            if self._is_leaf(pte, level):
                raise KernelError(errno.EEXIST, f"io-pgtable: {iova + i * size:#x} is "
                                                f"already mapped")
            if self._is_table(pte, level):
                if await self._live_below(self._deref(pte), level + 1):
                    raise KernelError(errno.EEXIST, f"io-pgtable: part of the {size:#x} "
                                                    f"block at {iova + i * size:#x} is mapped")
                await self._write_ptes(table + 8 * (index + i), [0])
                await self.flush_ops.tlb_flush_walk(iova + i * size, size, GRANULE)
                await self._free_tables(self._deref(pte), level + 1)
        proto = self.prot_to_pte(prot, level)
        await self._write_ptes(table + 8 * index,
                               [proto | (paddr + i * size) for i in range(count)])

    async def _live_below(self, table, level):
        for index in range(PTES_PER_TABLE):
            pte = await self._read_pte(table + 8 * index)
            if self._is_leaf(pte, level):
                return True
            if self._is_table(pte, level) and await self._live_below(self._deref(pte),
                                                                     level + 1):
                return True
        return False

    async def _free_tables(self, table, level):
        """``__arm_lpae_free_pgtable()``."""
        if level < LEVELS[-1]:
            for index in range(PTES_PER_TABLE):
                pte = await self._read_pte(table + 8 * index)
                if self._is_table(pte, level):
                    await self._free_tables(self._deref(pte), level + 1)
        self._free_table_page(table)

    async def unmap_pages(self, iova, pgsize, pgcount, gather):
        """Unmap ``pgcount`` leaves of ``pgsize`` from ``iova``; returns the bytes unmapped
        (0 when nothing is mapped there or when the range is part of a larger block)."""
        if pgsize not in (SZ_4K, SZ_2M, SZ_1G) or pgcount < 1 or iova % pgsize:
            raise KernelError(errno.EINVAL, f"io-pgtable: cannot unmap {pgcount} x "
                                            f"{pgsize:#x} at {iova:#x}")
        if (iova + pgsize * pgcount - 1) >> self.ias:
            return 0
        table = self.ttbr
        for level in LEVELS:
            index = table_index(level, iova)
            pte = await self._read_pte(table + 8 * index)
            if not pte & PTE_VALID:
                return 0
            if pgsize == block_size(level):
                count = min(pgcount, PTES_PER_TABLE - index)
                done = 0
                for i in range(count):
                    pte = await self._read_pte(table + 8 * (index + i))
                    if not pte & PTE_VALID:
                        break
                    await self._write_ptes(table + 8 * (index + i), [0])
                    if self._is_table(pte, level):
                        await self.flush_ops.tlb_flush_walk(iova + i * pgsize, pgsize, GRANULE)
                        await self._free_tables(self._deref(pte), level + 1)
                    else:
                        self.flush_ops.tlb_add_page(gather, iova + i * pgsize, pgsize)
                    done += 1
                return done * pgsize
            if self._is_leaf(pte, level):
                return 0        # "Unmap of a partial large IOPTE is not allowed"
            table = self._deref(pte)
        return 0

    async def iova_to_phys(self, iova):
        """The physical address ``iova`` maps to, or 0 (``arm_lpae_iova_to_phys()``)."""
        if iova >> self.ias or self.ttbr is None:
            return 0
        table = self.ttbr
        for level in LEVELS:
            pte = await self._read_pte(table + 8 * table_index(level, iova))
            if not pte & PTE_VALID:
                return 0
            if self._is_leaf(pte, level):
                size = block_size(level)
                return (self._deref(pte) & ~(size - 1)) | (iova & (size - 1))
            if not self._is_table(pte, level):
                return 0
            table = self._deref(pte)
        return 0

    async def free(self):
        """Free every table page (``free_io_pgtable_ops()``). The whole tree goes, so the
        pages are taken from the list of tables allocated rather than found by reading
        every descriptor as Linux does: the same pages, without 512 loads per table."""
        if self.ttbr is not None:
            for pa in sorted(self._tables):
                self._free_table_page(pa)
            self.ttbr = None
