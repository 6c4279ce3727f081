"""Boot-time memory map: the DDR banks and the ranges reserved before the page allocator
starts (``mm/memblock.c``): the swiotlb pool, CMA areas and carveouts."""

from .page_alloc import PAGE_SIZE

__all__ = ["Memblock"]


class Memblock:
    """The banks of physical memory and the reservations carved out of them.

    Parameters
    ----------
    banks : iterable of Bank
        DDR banks (``SocConfig.banks``).

    Attributes
    ----------
    reserved : list of (int, int, str)
        ``(base, size, name)`` of every reservation, in the order they were made.
    """

    def __init__(self, banks):
        self.memory = sorted((bank.base, bank.end) for bank in banks)
        if not self.memory:
            raise ValueError("Memblock needs at least one bank of memory")
        self.reserved = []

    def _overlaps_reserved(self, base, end):
        return any(base < r_base + r_size and r_base < end for r_base, r_size, _ in self.reserved)

    def _in_memory(self, base, end):
        return any(lo <= base and end <= hi for lo, hi in self.memory)

    def reserve(self, base, size, name):
        """Reserve ``[base, base + size)`` (``memblock_reserve()``)."""
        if size <= 0 or base % PAGE_SIZE or size % PAGE_SIZE:
            raise ValueError(f"Reservation {name!r} must be whole pages, not base {base:#x} "
                             f"size {size:#x}")
        if not self._in_memory(base, base + size):
            raise ValueError(f"Reservation {name!r} [{base:#x}, {base + size:#x}) is not "
                             f"inside one bank of memory")
        if self._overlaps_reserved(base, base + size):
            raise ValueError(f"Reservation {name!r} [{base:#x}, {base + size:#x}) overlaps "
                             f"an earlier reservation")
        self.reserved.append((base, size, name))
        return base

    def alloc(self, size, name, *, align=PAGE_SIZE, limit=None):
        """Reserve ``size`` bytes aligned to ``align`` ending below ``limit``, searching
        top-down as ``memblock_phys_alloc_range()`` does. Returns the base."""
        if align <= 0 or align & (align - 1) or align % PAGE_SIZE:
            raise ValueError(f"Alignment of {name!r} must be a power-of-two number of pages, "
                             f"not {align!r}")
        for lo, hi in reversed(self.memory):
            top = hi if limit is None else min(hi, limit)
            base = (top - size) & ~(align - 1)
            while base >= lo:
                clash = [r for r in self.reserved
                         if base < r[0] + r[1] and r[0] < base + size]
                if not clash:
                    return self.reserve(base, size, name)
                base = (min(r[0] for r in clash) - size) & ~(align - 1)
        raise ValueError(f"No room for {name!r}: {size:#x} bytes aligned to {align:#x}"
                         + ("" if limit is None else f" below {limit:#x}"))

    def free_ranges(self):
        """``[(start, end)]`` of memory not reserved, what the page allocator receives."""
        ranges = []
        for lo, hi in self.memory:
            cuts = sorted((b, b + s) for b, s, _ in self.reserved if b < hi and lo < b + s)
            cursor = lo
            for start, end in cuts:
                if start > cursor:
                    ranges.append((cursor, start))
                cursor = max(cursor, end)
            if cursor < hi:
                ranges.append((cursor, hi))
        return ranges
