"""Page allocator, memblock, CMA, gen_pool, scatterlists and kernel mappings."""

import errno

import pytest

from dmabuf_soc.hw.config import SocConfig
from dmabuf_soc.sw.errors import KernelBug, KernelError
from dmabuf_soc.sw.mm.cma import Cma, GenPool
from dmabuf_soc.sw.mm.kmem import PAGE_OFFSET, KernelMemory
from dmabuf_soc.sw.mm.memblock import Memblock
from dmabuf_soc.sw.mm.page_alloc import (GFP_DMA32, GFP_KERNEL, PAGE_SIZE, Page, PageAllocator,
                                         ZoneType, get_order)
from dmabuf_soc.sw.mm.scatterlist import SgTable

LOW, HIGH = 0x8000_0000, 0x1_0000_0000


def fresh():
    return PageAllocator(Memblock(SocConfig().banks))


def test_zones_split_at_4g():
    mm = fresh()
    assert mm.total_pages == 512
    assert mm.zones[ZoneType.DMA32].managed_pages == 256
    assert mm.zones[ZoneType.NORMAL].managed_pages == 256
    assert mm.free_area_counts(ZoneType.NORMAL)[8] == 1


def test_gfp_kernel_prefers_normal_then_falls_back():
    mm = fresh()
    first = mm.alloc_pages(GFP_KERNEL, 8)
    assert first.phys == HIGH
    second = mm.alloc_pages(GFP_KERNEL, 0)
    assert LOW <= second.phys < HIGH
    mm.free_pages(first, 8)
    mm.free_pages(second, 0)
    assert mm.nr_allocated_pages == 0


def test_gfp_dma32_stays_low_and_fails_when_low_is_full():
    mm = fresh()
    low = mm.alloc_pages(GFP_DMA32, 8)
    assert low.phys == LOW
    assert mm.alloc_pages(GFP_DMA32, 0) is None
    assert mm.alloc_failures == 1
    assert mm.alloc_pages(GFP_KERNEL, 0).phys >= HIGH


def test_buddies_merge_back():
    mm = fresh()
    before = mm.free_area_counts(ZoneType.NORMAL)
    pages = [mm.alloc_pages(GFP_KERNEL, 0) for _ in range(37)]
    assert len({p.pfn for p in pages}) == 37
    for page in reversed(pages[::2]):
        mm.free_pages(page, 0)
    for page in pages[1::2]:
        mm.free_pages(page, 0)
    assert mm.free_area_counts(ZoneType.NORMAL) == before
    assert mm.live_allocations() == []


def test_bad_frees_are_bugs():
    mm = fresh()
    page = mm.alloc_pages(GFP_KERNEL, 2, owner="t")
    assert mm.live_allocations() == [(page, 2, "t")]
    with pytest.raises(KernelBug, match="order 1"):
        mm.free_pages(page, 1)
    with pytest.raises(KernelBug, match="not allocated"):
        mm.free_pages(page + 1, 0)
    mm.free_pages(page, 2)
    with pytest.raises(KernelBug, match="double free"):
        mm.free_pages(page, 2)


def test_alloc_order_checked():
    # Linux: WARN_ON_ONCE(order > MAX_PAGE_ORDER) and NULL.
    assert fresh().alloc_pages(GFP_KERNEL, 11) is None
    assert fresh().alloc_pages(GFP_KERNEL, -1) is None


def test_get_order():
    assert [get_order(s) for s in (1, 4096, 4097, 8192, 1 << 20)] == [0, 0, 1, 1, 8]


def test_memblock_top_down_and_errors():
    mb = Memblock(SocConfig().banks)
    base = mb.alloc(0x10000, "a", limit=1 << 32)
    assert base == LOW + 0xf_0000                 # the top of the low bank
    assert mb.alloc(0x1000, "b") == HIGH + 0xf_f000   # no limit: the top of memory
    with pytest.raises(ValueError, match="overlaps"):
        mb.reserve(base, 0x1000, "c")
    with pytest.raises(ValueError, match="No room"):
        mb.alloc(2 << 20, "d")
    ranges = mb.free_ranges()
    assert sum(end - start for start, end in ranges) == (2 << 20) - 0x11000


def test_cma_alignment_release_and_accounting():
    mb = Memblock(SocConfig().banks)
    cma = Cma.reserve(mb, 64 * PAGE_SIZE, "cma", limit=1 << 32)
    one = cma.alloc(1, 0)
    aligned = cma.alloc(8, 3)
    assert aligned.pfn % 8 == 0 and aligned.pfn != one.pfn
    assert cma.nr_allocated_pages == 9
    assert cma.alloc(64, 0) is None
    assert cma.release(Page(0), 1) is False
    with pytest.raises(KernelBug, match="exactly 4"):
        cma.release(aligned, 4)
    assert cma.release(aligned, 8) and cma.release(one, 1)
    assert cma.nr_allocated_pages == 0
    assert cma.alloc(64, 0) is not None


def test_gen_pool():
    pool = GenPool("co", LOW, 16 * PAGE_SIZE)
    a = pool.alloc(3 * PAGE_SIZE)
    b = pool.alloc(100)
    assert (a, b) == (LOW, LOW + 3 * PAGE_SIZE)
    assert pool.avail() == 12 * PAGE_SIZE
    assert pool.alloc(13 * PAGE_SIZE) == 0
    with pytest.raises(KernelBug):
        pool.free(a, PAGE_SIZE)
    pool.free(a, 3 * PAGE_SIZE)
    pool.free(b, 100)
    assert pool.avail() == pool.size


def test_sg_table_merges_consecutive_pages_up_to_max_segment():
    pages = [Page(1), Page(2), Page(3), Page(7), Page(8)]
    sgt = SgTable.from_pages(pages, 0, 5 * PAGE_SIZE, max_segment=2 * PAGE_SIZE)
    assert [(sg.page.pfn, sg.offset, sg.length) for sg in sgt.sgl] == [
        (1, 0, 8192), (3, 0, 4096), (7, 0, 8192)]
    sgt = SgTable.from_pages(pages, 100, 5 * PAGE_SIZE - 200)
    assert [(sg.page.pfn, sg.offset, sg.length) for sg in sgt.sgl] == [
        (1, 100, 3 * PAGE_SIZE - 100), (7, 0, 2 * PAGE_SIZE - 100)]
    assert sgt.pages() == pages
    with pytest.raises(KernelError) as exc:
        SgTable.from_pages(pages, 0, PAGE_SIZE, max_segment=100)
    assert exc.value.errno == errno.EINVAL


def test_vmap_contiguous_over_scattered_pages():
    kmem = KernelMemory()
    va = kmem.vmap([Page.from_phys(HIGH + 0x5000), Page.from_phys(LOW)], cached=False)
    assert kmem.translate(va + 0xff0, 0x20) == [(HIGH + 0x5ff0, 0x10, False), (LOW, 0x10, False)]
    assert kmem.translate(PAGE_OFFSET + LOW, 0x3000) == [(LOW, 0x3000, True)]
    assert kmem.is_vmalloc_addr(va)
    kmem.vunmap(va)
    with pytest.raises(KernelBug, match="nonexistent"):
        kmem.vunmap(va)
    with pytest.raises(KernelBug, match="paging request"):
        kmem.translate(va, 4)
