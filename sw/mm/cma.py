"""Contiguous memory areas (``mm/cma.c``) and carveout pools (``lib/genalloc.c``).

Both hand out physically contiguous ranges from memory reserved at boot. Unlike Linux's CMA,
an area here is not lent to movable page allocations while it is free: its pages are only
ever given out by :meth:`Cma.alloc`, so an allocation never has to migrate anything.
"""

from ..errors import KernelBug
from .page_alloc import PAGE_SHIFT, PAGE_SIZE, Page

__all__ = ["Cma", "GenPool"]


class _RangeBitmap:
    """One bit per unit of a range: which units are handed out, and to whom."""

    def __init__(self, nbits):
        self.used = bytearray(nbits)
        self.live = {}   # first bit -> (count, owner)

    def find(self, count, align_mask, bias):
        """First free run of ``count`` bits starting at a bit ``b`` with
        ``(b + bias) & align_mask == 0``; ``None`` when there is none."""
        start = (-bias) & align_mask
        while start + count <= len(self.used):
            busy = self.used.find(1, start, start + count)
            if busy < 0:
                return start
            start = ((busy + 1 + bias + align_mask) & ~align_mask) - bias
        return None

    def take(self, start, count, owner):
        self.used[start:start + count] = b"\1" * count
        self.live[start] = (count, owner)

    def give_back(self, start, count, what):
        live = self.live.get(start)
        if live is None or live[0] != count:
            raise KernelBug(f"{what}: no allocation of exactly {count} units starts there"
                            + ("" if live is None else f" (it has {live[0]})"))
        del self.live[start]
        self.used[start:start + count] = bytes(count)

    @property
    def nr_used(self):
        return sum(count for count, _ in self.live.values())


class Cma:
    """A contiguous memory area.

    Parameters
    ----------
    name : str
    base, size : int
        Physical range, whole pages, already reserved in memblock.

    Create areas with :meth:`reserve`, which takes the range from memblock as
    ``cma_declare_contiguous()`` does.
    """

    def __init__(self, name, base, size):
        if base % PAGE_SIZE or size <= 0 or size % PAGE_SIZE:
            raise ValueError(f"CMA area {name!r} must be whole pages, not base {base:#x} "
                             f"size {size:#x}")
        self.name = name
        self.base = base
        self.size = size
        self._bitmap = _RangeBitmap(size >> PAGE_SHIFT)

    @classmethod
    def reserve(cls, memblock, size, name, *, align=PAGE_SIZE, limit=None):
        """Reserve a new area of ``size`` bytes in ``memblock``."""
        base = memblock.alloc(size, f"cma:{name}", align=align, limit=limit)
        return cls(name, base, size)

    @property
    def base_pfn(self):
        return self.base >> PAGE_SHIFT

    @property
    def count(self):
        """Pages in the area."""
        return self.size >> PAGE_SHIFT

    def alloc(self, count, align, *, owner=None):
        """``count`` contiguous pages whose first pfn is a multiple of ``2**align``
        (``cma_alloc()``); ``None`` when no such run is free."""
        if (not isinstance(count, int) or count <= 0 or count > self.count
                or not isinstance(align, int) or align < 0):
            return None         # cma_alloc(): nothing for no pages, or more than the area
        start = self._bitmap.find(count, (1 << align) - 1, self.base_pfn)
        if start is None:
            return None
        self._bitmap.take(start, count, owner)
        return Page(self.base_pfn + start)

    def release(self, page, count):
        """Give back ``count`` pages from :meth:`alloc` (``cma_release()``). Returns
        ``False`` for pages outside the area, as Linux does; a wrong count is a bug."""
        if not self.base_pfn <= page.pfn < self.base_pfn + self.count:
            return False
        self._bitmap.give_back(page.pfn - self.base_pfn, count,
                               f"cma_release({page!r}, {count}) in area {self.name!r}")
        return True

    def contains(self, addr):
        return self.base <= addr < self.base + self.size

    @property
    def nr_allocated_pages(self):
        return self._bitmap.nr_used


class GenPool:
    """A pool of special memory handed out in ``2**min_alloc_order``-byte units, first fit
    (``gen_pool_create()`` + ``gen_pool_add()``), as carveout heaps use.

    Parameters
    ----------
    name : str
    base, size : int
        The range the pool manages.
    min_alloc_order : int
        Log2 of the allocation unit.
    """

    def __init__(self, name, base, size, *, min_alloc_order=PAGE_SHIFT):
        unit = 1 << min_alloc_order
        if base % unit or size <= 0 or size % unit:
            raise ValueError(f"Pool {name!r} range base {base:#x} size {size:#x} is not a "
                             f"whole number of {unit}-byte units")
        self.name = name
        self.base = base
        self.size = size
        self.order = min_alloc_order
        self._bitmap = _RangeBitmap(size >> min_alloc_order)

    def _units(self, size):
        return (size + (1 << self.order) - 1) >> self.order

    def alloc(self, size, *, align=None, owner=None):
        """Address of ``size`` free bytes (rounded up to units, aligned to ``align`` bytes if
        given), or ``0`` when none are free (``gen_pool_alloc()``)."""
        if not isinstance(size, int) or size <= 0 or size > self.size:
            return 0            # gen_pool_alloc(): 0 for size 0, or more than the pool
        align_units = 1 if align is None else max(1, align >> self.order)
        if align_units & (align_units - 1):
            return 0
        start = self._bitmap.find(self._units(size), align_units - 1, self.base >> self.order)
        if start is None:
            return 0
        self._bitmap.take(start, self._units(size), owner)
        return self.base + (start << self.order)

    def free(self, addr, size):
        """Give back what :meth:`alloc` returned (``gen_pool_free()``); a wrong address or
        size is a bug, as Linux's ``BUG_ON`` says."""
        if not self.base <= addr < self.base + self.size or (addr - self.base) >> self.order << self.order != addr - self.base:
            raise KernelBug(f"gen_pool_free({addr:#x}) outside pool {self.name!r}")
        self._bitmap.give_back((addr - self.base) >> self.order, self._units(size),
                               f"gen_pool_free({addr:#x}, {size:#x}) in pool {self.name!r}")

    def avail(self):
        """Free bytes (``gen_pool_avail()``)."""
        return self.size - (self._bitmap.nr_used << self.order)

    def contains(self, addr):
        return self.base <= addr < self.base + self.size
