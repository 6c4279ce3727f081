"""The physical page allocator: a buddy allocator per zone, as in ``mm/page_alloc.c``.

Memory below 4 GiB forms ``ZONE_DMA32`` and memory above it ``ZONE_NORMAL`` (arm64 has no
``ZONE_DMA`` here). ``GFP_KERNEL`` allocations try ``ZONE_NORMAL`` first and fall back to
``ZONE_DMA32``; ``GFP_DMA32`` allocations stay below 4 GiB. Every live block is tracked with
its owner, so tests can check that all pages came back.
"""

import enum
from dataclasses import dataclass

from ..errors import KernelBug

__all__ = [
    "PAGE_SHIFT", "PAGE_SIZE", "MAX_PAGE_ORDER", "ZONE_DMA32_LIMIT",
    "Gfp", "GFP_KERNEL", "GFP_DMA32", "ZoneType", "Page", "PageAllocator",
    "get_order", "page_align",
]

PAGE_SHIFT = 12
PAGE_SIZE = 1 << PAGE_SHIFT
MAX_PAGE_ORDER = 10
ZONE_DMA32_LIMIT = 1 << 32


def get_order(size):
    """The smallest order whose block holds ``size`` bytes (``get_order()``)."""
    if not isinstance(size, int) or size <= 0:
        raise ValueError(f"size must be a positive integer, not {size!r}")
    return max(0, ((size - 1) >> PAGE_SHIFT).bit_length())


def page_align(size):
    """``size`` rounded up to a whole number of pages (``PAGE_ALIGN()``)."""
    return (size + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1)


class Gfp(enum.IntFlag):
    """Allocation flags. Only the bits that change where or how pages are taken exist."""
    DMA32 = 1 << 0
    #: Allocate a compound page: the block is one unit and is freed with its order.
    COMP = 1 << 1


GFP_KERNEL = Gfp(0)
GFP_DMA32 = Gfp.DMA32


class ZoneType(enum.Enum):
    DMA32 = "DMA32"
    NORMAL = "Normal"


@dataclass(frozen=True, order=True)
class Page:
    """A physical page frame (``struct page``), named by its page frame number."""
    pfn: int

    @property
    def phys(self):
        """Physical address of the first byte (``page_to_phys()``)."""
        return self.pfn << PAGE_SHIFT

    def __add__(self, n):
        return Page(self.pfn + n)

    @classmethod
    def from_phys(cls, addr):
        """The page holding physical address ``addr`` (``phys_to_page()``)."""
        return cls(addr >> PAGE_SHIFT)

    def __repr__(self):
        return f"Page(pfn={self.pfn:#x})"


class _Zone:
    def __init__(self, zone_type):
        self.type = zone_type
        self.free_area = [set() for _ in range(MAX_PAGE_ORDER + 1)]
        self.managed_pages = 0
        self.free_pages = 0
        self.spans = []

    def contains(self, pfn):
        return any(start <= pfn < end for start, end in self.spans)


class PageAllocator:
    """Buddy allocator over the free ranges that :class:`~.memblock.Memblock` left.

    Parameters
    ----------
    memblock : Memblock
        Boot-time memory map; its free (unreserved) ranges become the zones' pages.
    reset_zeroed : bool
        Memory reads as zero out of reset and nothing has written it before boot (the SoC's
        DDR model without initial contents). The allocator then knows which blocks have
        never been handed out since boot, see :meth:`is_fresh`.

    Attributes
    ----------
    zones : dict of ZoneType to zone
        ``ZONE_DMA32`` and ``ZONE_NORMAL``; a zone without memory has no pages.
    """

    def __init__(self, memblock, *, reset_zeroed=False):
        self.zones = {zone_type: _Zone(zone_type) for zone_type in ZoneType}
        self._live = {}   # head pfn -> (order, zone, owner)
        self.alloc_failures = 0
        self.reset_zeroed = bool(reset_zeroed)
        self._handed_out = set()   # pfns allocated at least once since boot
        self._fresh = set()        # head pfns of live blocks never handed out before
        for start, end in memblock.free_ranges():
            for lo, hi, zone_type in _split_by_zone(start, end):
                zone = self.zones[zone_type]
                zone.spans.append((lo >> PAGE_SHIFT, hi >> PAGE_SHIFT))
                self._seed(zone, lo >> PAGE_SHIFT, hi >> PAGE_SHIFT)

    def _seed(self, zone, pfn, end_pfn):
        while pfn < end_pfn:
            order = MAX_PAGE_ORDER
            while order and (pfn & ((1 << order) - 1) or pfn + (1 << order) > end_pfn):
                order -= 1
            zone.free_area[order].add(pfn)
            zone.managed_pages += 1 << order
            zone.free_pages += 1 << order
            pfn += 1 << order

    def zonelist(self, gfp):
        """Zones tried for ``gfp``, preferred first."""
        if gfp & Gfp.DMA32:
            return [self.zones[ZoneType.DMA32]]
        return [self.zones[ZoneType.NORMAL], self.zones[ZoneType.DMA32]]

    def alloc_pages(self, gfp, order, *, owner=None):
        """Allocate ``2**order`` contiguous, naturally aligned pages (``alloc_pages()``).

        Returns the head :class:`Page`, or ``None`` when no zone allowed by ``gfp`` has a
        free block of that order, as Linux returns ``NULL``.
        """
        gfp = Gfp(gfp)
        if not isinstance(order, int) or not 0 <= order <= MAX_PAGE_ORDER:
            # WARN_ON_ONCE(order > MAX_PAGE_ORDER): NULL (a negative order is a huge
            # unsigned one in C).
            self.alloc_failures += 1
            return None
        for zone in self.zonelist(gfp):
            pfn = self._take(zone, order)
            if pfn is not None:
                self._live[pfn] = (order, zone, owner)
                pfns = range(pfn, pfn + (1 << order))
                if self.reset_zeroed and self._handed_out.isdisjoint(pfns):
                    self._fresh.add(pfn)
                self._handed_out.update(pfns)
                return Page(pfn)
        self.alloc_failures += 1
        return None

    def _take(self, zone, order):
        for current in range(order, MAX_PAGE_ORDER + 1):
            if zone.free_area[current]:
                pfn = min(zone.free_area[current])
                zone.free_area[current].remove(pfn)
                while current > order:
                    current -= 1
                    zone.free_area[current].add(pfn + (1 << current))
                zone.free_pages -= 1 << order
                return pfn
        return None

    def free_pages(self, page, order):
        """Give back a block from :meth:`alloc_pages` (``__free_pages()``).

        Raises :class:`KernelBug` for a page that is not the head of a live block of that
        order: Linux reports such a free as "Bad page state".
        """
        live = self._live.get(page.pfn)
        if live is None:
            raise KernelBug(f"Bad page state: freeing {page!r}, which is not allocated "
                            f"(double free, or not the head page)")
        if live[0] != order:
            raise KernelBug(f"Bad page state: freeing {page!r} with order {order}, but it "
                            f"was allocated with order {live[0]}")
        del self._live[page.pfn]
        self._fresh.discard(page.pfn)
        zone = live[1]
        zone.free_pages += 1 << order
        pfn = page.pfn
        while order < MAX_PAGE_ORDER:
            buddy = pfn ^ (1 << order)
            if buddy not in zone.free_area[order]:
                break
            zone.free_area[order].remove(buddy)
            pfn = min(pfn, buddy)
            order += 1
        zone.free_area[order].add(pfn)

    def is_fresh(self, page):
        """Whether the live block headed by ``page`` is still as reset left it: zero in
        memory and in no cache line, because no page of it was handed out before since
        boot. Only with ``reset_zeroed``; lets a heap skip zeroing what is zero (a shortcut
        of the simulation: a kernel cannot know this and zeroes every page)."""
        return page.pfn in self._fresh

    def compound_order(self, page):
        """Order of the live block headed by ``page``."""
        live = self._live.get(page.pfn)
        if live is None:
            raise KernelBug(f"{page!r} is not the head of an allocated block")
        return live[0]

    def zone_of(self, page):
        """The :class:`ZoneType` of a managed page."""
        for zone in self.zones.values():
            if zone.contains(page.pfn):
                return zone.type
        raise KernelBug(f"{page!r} is not managed by the page allocator")

    @property
    def total_pages(self):
        """Pages managed by the allocator (``totalram_pages()``)."""
        return sum(zone.managed_pages for zone in self.zones.values())

    @property
    def max_pfn(self):
        """One past the highest managed page frame."""
        return max((end for zone in self.zones.values() for _, end in zone.spans), default=0)

    @property
    def nr_free_pages(self):
        return sum(zone.free_pages for zone in self.zones.values())

    @property
    def nr_allocated_pages(self):
        return self.total_pages - self.nr_free_pages

    def live_allocations(self):
        """``[(Page, order, owner)]`` of every block not yet freed, lowest address first."""
        return [(Page(pfn), order, owner)
                for pfn, (order, _, owner) in sorted(self._live.items())]

    def free_area_counts(self, zone_type):
        """Free blocks per order in one zone (``/proc/buddyinfo``)."""
        return [len(blocks) for blocks in self.zones[zone_type].free_area]


def _split_by_zone(start, end):
    if start < ZONE_DMA32_LIMIT:
        yield start, min(end, ZONE_DMA32_LIMIT), ZoneType.DMA32
    if end > ZONE_DMA32_LIMIT:
        yield max(start, ZONE_DMA32_LIMIT), end, ZoneType.NORMAL
