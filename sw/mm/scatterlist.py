"""Scatter-gather tables (``lib/scatterlist.c``): the pages of a buffer, and once mapped for
a device, the DMA addresses and lengths the device uses."""

from dataclasses import dataclass

from ..errors import KernelError
from .page_alloc import PAGE_SHIFT, PAGE_SIZE, Page
import errno

__all__ = ["Scatterlist", "SgTable"]


@dataclass
class Scatterlist:
    """One segment: ``length`` bytes from ``offset`` into ``page`` and the pages after it.

    ``dma_address``/``dma_length`` are filled by ``dma_map_sg``; a mapping may merge
    segments, so only the first ``SgTable.nents`` entries carry DMA fields.
    """
    page: Page
    offset: int
    length: int
    dma_address: int = None
    dma_length: int = 0

    @property
    def phys(self):
        """``sg_phys()``."""
        return self.page.phys + self.offset

    def pages(self):
        """The page frames the segment touches."""
        first = self.offset >> PAGE_SHIFT
        last = (self.offset + self.length - 1) >> PAGE_SHIFT
        return [self.page + n for n in range(first, last + 1)]


class SgTable:
    """A scatter-gather table (``struct sg_table``).

    Attributes
    ----------
    sgl : list of Scatterlist
        The CPU segments (``orig_nents`` of them).
    nents : int
        Segments holding DMA addresses after mapping (``0`` while unmapped).
    """

    def __init__(self, entries=()):
        self.sgl = list(entries)
        self.nents = 0

    @property
    def orig_nents(self):
        return len(self.sgl)

    @classmethod
    def from_blocks(cls, blocks):
        """One segment per ``(page, length)`` block (``sg_alloc_table()`` +
        ``sg_set_page()`` as the heaps build it)."""
        return cls(Scatterlist(page, 0, length) for page, length in blocks)

    @classmethod
    def from_pages(cls, pages, offset, size, *, max_segment=None):
        """Segments over ``pages`` (single frames) merging physically consecutive ones, up to
        ``max_segment`` bytes each (``sg_alloc_table_from_pages_segment()``)."""
        pages = list(pages)
        if max_segment is None:
            max_segment = 1 << 32   # UINT_MAX rounded down to pages.
        if max_segment < PAGE_SIZE or max_segment % PAGE_SIZE:
            raise KernelError(errno.EINVAL, f"max_segment {max_segment:#x} must be a whole "
                                            f"number of pages, at least one")
        if not 0 <= offset < PAGE_SIZE or size <= 0 or offset + size > len(pages) * PAGE_SIZE:
            raise KernelError(errno.EINVAL, f"offset {offset:#x} size {size:#x} do not fit "
                                            f"{len(pages)} pages")
        entries = []
        cursor = offset
        end = offset + size
        while cursor < end:
            index = cursor >> PAGE_SHIFT
            first = pages[index]
            in_page = cursor & (PAGE_SIZE - 1)
            length = min(PAGE_SIZE - in_page, end - cursor)
            while (cursor + length < end and length + in_page < max_segment
                   and pages[(cursor + length) >> PAGE_SHIFT]
                   == first + (((cursor + length) >> PAGE_SHIFT) - index)):
                length += min(PAGE_SIZE, end - cursor - length)
            length = min(length, max_segment - in_page)
            entries.append(Scatterlist(first, in_page, length))
            cursor += length
        return cls(entries)

    def dup(self):
        """A copy of the CPU segments, unmapped (the heaps' ``dup_sg_table()``)."""
        return SgTable(Scatterlist(sg.page, sg.offset, sg.length) for sg in self.sgl)

    def dma_segments(self):
        """``[(dma_address, dma_length)]`` of the mapped segments
        (``for_each_sgtable_dma_sg``)."""
        return [(sg.dma_address, sg.dma_length) for sg in self.sgl[:self.nents]]

    def pages(self):
        """Every page frame, in buffer order (``for_each_sgtable_page``)."""
        return [page for sg in self.sgl for page in sg.pages()]

    @property
    def size(self):
        return sum(sg.length for sg in self.sgl)

    def __repr__(self):
        return f"<SgTable orig_nents={self.orig_nents} nents={self.nents}>"
