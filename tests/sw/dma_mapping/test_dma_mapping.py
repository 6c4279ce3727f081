"""The DMA mapping API: masks, direct mapping with arm64 cache maintenance, swiotlb,
coherent allocations, the IOMMU seam and the DMA-API debug checker."""

import errno

import pytest

from dmabuf_soc.sw.device import Device
from dmabuf_soc.sw.dma_mapping import mapping as dma
from dmabuf_soc.sw.dma_mapping.debug import DmaApiDebugError
from dmabuf_soc.sw.dma_mapping.direction import (DMA_ATTR_SKIP_CPU_SYNC, DMA_BIT_MASK,
                                                 DMA_MAPPING_ERROR, DmaDirection)
from dmabuf_soc.sw.errors import KernelBug, KernelError
from dmabuf_soc.sw.mm.page_alloc import GFP_DMA32, GFP_KERNEL, Page
from dmabuf_soc.sw.mm.scatterlist import SgTable

from sw_doubles import BIDI, FROM, TO, run, setup

def test_set_mask_rules():
    system, dev = setup()
    dev.dma_set_mask_and_coherent(DMA_BIT_MASK(40))
    assert dev.dma_mask == dev.coherent_dma_mask == DMA_BIT_MASK(40)
    with pytest.raises(KernelError) as exc:
        dev.dma_set_mask(DMA_BIT_MASK(31))
    assert exc.value.errno == errno.EIO and dev.dma_mask == DMA_BIT_MASK(40)
    nodma = system.platform.add_device(Device("nodma", dma_capable=False))
    with pytest.raises(KernelError) as exc:
        nodma.dma_set_mask(DMA_BIT_MASK(32))
    assert exc.value.errno == errno.EIO
    smmu = system.platform.add_device(Device("smmu", stream_id=3))
    smmu.dma_set_mask(DMA_BIT_MASK(20))     # any mask behind an IOMMU
    with pytest.raises(KernelError) as exc:
        dev.dma_set_max_seg_size(0)
    assert exc.value.errno == errno.EINVAL


def test_device_behind_smmu_without_domain_cannot_map():
    system, _ = setup()
    dev = system.platform.add_device(Device("smmu", stream_id=3))
    with pytest.raises(KernelError, match="no IOMMU domain") as exc:
        run(dma.dma_map_page(dev, Page.from_phys(0x1_0000_0000), 0, 4096, TO))
    assert exc.value.errno == errno.ENODEV


def test_unregistered_device_is_enodev():
    with pytest.raises(KernelError) as exc:
        run(dma.dma_map_page(Device("x"), Page(1), 0, 4096, TO))
    assert exc.value.errno == errno.ENODEV


def test_direct_map_follows_arm64_cache_rules():
    async def main():
        system, dev = setup()
        dev.dma_set_mask(DMA_BIT_MASK(40))
        page = system.mm.alloc_pages(GFP_KERNEL, 0)
        for direction, before, after_unmap in (
                (TO, "clean", []), (FROM, "clean", [("invalidate", page.phys + 16, 64)]),
                (BIDI, "clean_invalidate", [("invalidate", page.phys + 16, 64)])):
            system.cache.ops.clear()
            addr = await dma.dma_map_page(dev, page, 16, 64, direction)
            assert addr == page.phys + 16 and not dma.dma_mapping_error(dev, addr)
            assert system.cache.ops == [(before, addr, 64)]
            await dma.dma_unmap_page(dev, addr, 64, direction)
            assert system.cache.ops[1:] == after_unmap
        system.cache.ops.clear()
        addr = await dma.dma_map_page(dev, page, 0, 64, FROM, DMA_ATTR_SKIP_CPU_SYNC)
        dma.dma_mapping_error(dev, addr)
        await dma.dma_sync_single_for_cpu(dev, addr, 64, FROM)
        await dma.dma_sync_single_for_device(dev, addr, 64, FROM)
        await dma.dma_unmap_page(dev, addr, 64, FROM, DMA_ATTR_SKIP_CPU_SYNC)
        assert system.cache.ops == [("invalidate", addr, 64), ("clean", addr, 64)]
        coherent = system.platform.add_device(Device("coh", coherent=True))
        system.cache.ops.clear()
        addr = await dma.dma_map_page(coherent, page, 0, 64, BIDI)
        dma.dma_mapping_error(coherent, addr)
        await dma.dma_unmap_page(coherent, addr, 64, BIDI)
        assert system.cache.ops == []
        with pytest.raises(KernelBug):
            await dma.dma_map_page(dev, page, 0, 64, DmaDirection.NONE)
    run(main())


def test_unreachable_memory_without_swiotlb_fails():
    async def main():
        system, dev = setup(swiotlb_size=0)
        page = system.mm.alloc_pages(GFP_KERNEL, 0)
        assert page.phys >= 1 << 32
        addr = await dma.dma_map_page(dev, page, 0, 4096, TO)
        assert addr == DMA_MAPPING_ERROR and dma.dma_mapping_error(dev, addr) == -errno.ENOMEM
        assert "overflow" in system.platform.warnings[0]
        sgt = SgTable.from_blocks([(page, 4096)])
        with pytest.raises(KernelError) as exc:
            await dma.dma_map_sgtable(dev, sgt, TO)
        assert exc.value.errno == errno.EIO
        assert await dma.dma_map_sg(dev, sgt.sgl, 1, TO) == 0
    run(main())


def test_swiotlb_bounces_both_ways():
    async def main():
        system, dev = setup()
        page = system.mm.alloc_pages(GFP_KERNEL, 0)
        machine = system.machine
        await machine.poke(page.phys, b"original" * 4)
        addr = await dma.dma_map_page(dev, page, 0, 32, BIDI)
        dma.dma_mapping_error(dev, addr)
        assert system.swiotlb.is_swiotlb_buffer(addr) and addr < 1 << 32
        assert await machine.peek(addr, 32) == b"original" * 4
        assert system.cache.ops == [("clean_invalidate", addr, 32)]
        await machine.poke(addr, b"device!!" * 4)              # the device writes
        await dma.dma_sync_single_for_cpu(dev, addr, 32, BIDI)
        assert await machine.peek(page.phys, 32) == b"device!!" * 4
        await machine.poke(page.phys, b"cpu-side" * 4)
        await dma.dma_sync_single_for_device(dev, addr, 32, BIDI)
        assert await machine.peek(addr, 32) == b"cpu-side" * 4
        await machine.poke(addr, b"final..." * 4)
        await dma.dma_unmap_page(dev, addr, 32, BIDI)
        assert await machine.peek(page.phys, 32) == b"final..." * 4
        assert system.swiotlb.used == 0
        # TO_DEVICE unmaps copy nothing back.
        addr = await dma.dma_map_page(dev, page, 0, 32, TO)
        dma.dma_mapping_error(dev, addr)
        await machine.poke(addr, b"ignored!" * 4)
        await dma.dma_unmap_page(dev, addr, 32, TO)
        assert await machine.peek(page.phys, 32) == b"final..." * 4
    run(main())


def test_swiotlb_full():
    async def main():
        system, dev = setup(swiotlb_size=8192)
        block = system.mm.alloc_pages(GFP_KERNEL, 2)
        first = await dma.dma_map_page(dev, block, 0, 8192, TO)
        dma.dma_mapping_error(dev, first)
        second = await dma.dma_map_page(dev, block, 8192, 4096, TO)
        assert second == DMA_MAPPING_ERROR
        assert "swiotlb buffer is full" in system.swiotlb.warnings[0]
        await dma.dma_unmap_page(dev, first, 8192, TO)
        assert dma.dma_max_mapping_size(dev) == 256 * 1024
    run(main())


def test_map_sg_and_sync():
    async def main():
        system, dev = setup()
        dev.dma_set_mask(DMA_BIT_MASK(40))
        a, b = system.mm.alloc_pages(GFP_KERNEL, 1), system.mm.alloc_pages(GFP_DMA32, 0)
        sgt = SgTable.from_blocks([(a, 8192), (b, 4096)])
        await dma.dma_map_sgtable(dev, sgt, FROM)
        assert sgt.nents == 2 and sgt.dma_segments() == [(a.phys, 8192), (b.phys, 4096)]
        await dma.dma_sync_sgtable_for_cpu(dev, sgt, FROM)
        await dma.dma_unmap_sgtable(dev, sgt, FROM)
        assert system.cache.ops == [("clean", a.phys, 8192), ("clean", b.phys, 4096),
                                    ("invalidate", a.phys, 8192), ("invalidate", b.phys, 4096),
                                    ("invalidate", a.phys, 8192), ("invalidate", b.phys, 4096)]
        assert system.platform.debug.entries() == []
    run(main())


def test_coherent_alloc_is_zeroed_uncached_and_freed():
    async def main():
        system, dev = setup()
        before = system.mm.nr_allocated_pages, system.cma.nr_allocated_pages
        cpu_addr, handle = await dma.dma_alloc_coherent(dev, 3 * 4096)
        assert not system.cma.contains(handle)   # the CMA area is above the 32-bit mask
        assert handle + 3 * 4096 - 1 <= dev.coherent_dma_mask
        assert system.cache.ops == [("clean_invalidate", handle, 3 * 4096)]
        assert await system.machine.peek(handle, 3 * 4096) == bytes(3 * 4096)
        stores = [a for a in system.machine.accesses if a[0] == "store"]
        assert stores and all(not cacheable for *_, cacheable in stores)
        assert system.kmem.is_vmalloc_addr(cpu_addr)
        with pytest.raises(DmaApiDebugError, match="different CPU address"):
            await dma.dma_free_coherent(dev, 3 * 4096, cpu_addr + 4096, handle)
        system.platform.debug.alloc_coherent(dev, 3 * 4096, handle, cpu_addr, handle)
        await dma.dma_free_coherent(dev, 3 * 4096, cpu_addr, handle)
        assert (system.mm.nr_allocated_pages, system.cma.nr_allocated_pages) == before
        assert system.kmem.nr_vmap_areas == 0
    run(main())


async def mapped(system, dev, size=64, direction=TO):
    page = system.mm.alloc_pages(GFP_DMA32, 0)
    addr = await dma.dma_map_page(dev, page, 0, size, direction)
    dma.dma_mapping_error(dev, addr)
    return addr


@pytest.mark.parametrize("misuse, message", [
    (lambda d, a: dma.dma_unmap_page(d, a, 32, TO), "different size"),
    (lambda d, a: dma.dma_unmap_page(d, a, 64, FROM), "different direction"),
    (lambda d, a: dma.dma_unmap_page(d, a + 4096, 64, TO), "has not allocated"),
    (lambda d, a: dma.dma_sync_single_for_cpu(d, a + 8192, 4, TO), "has not allocated"),
    (lambda d, a: dma.dma_sync_single_for_cpu(d, a + 32, 64, TO), "outside allocated range"),
    (lambda d, a: dma.dma_sync_single_for_device(d, a, 64, FROM), "different direction"),
])
def test_debug_catches_misuse(misuse, message):
    async def main():
        system, dev = setup(swiotlb_size=0)
        addr = await mapped(system, dev)
        with pytest.raises(DmaApiDebugError, match=message):
            await misuse(dev, addr)
    run(main())


def test_debug_unchecked_map_error_double_unmap_and_leaks():
    async def main():
        system, dev = setup(swiotlb_size=0, strict_debug=False)
        page = system.mm.alloc_pages(GFP_DMA32, 0)
        addr = await dma.dma_map_page(dev, page, 0, 64, TO)
        await dma.dma_unmap_page(dev, addr, 64, TO)
        await dma.dma_unmap_page(dev, addr, 64, TO)
        await mapped(system, dev)
        sgt = SgTable.from_blocks([(page, 4096), (page, 4096)])
        await dma.dma_map_sgtable(dev, sgt, TO)
        await dma.dma_unmap_sg(dev, sgt.sgl, 1, TO)
        system.platform.remove_device(dev)
        errors = system.platform.debug.errors
        assert "failed to check map error" in errors[0]
        assert "has not allocated" in errors[1]
        assert "different entry count [map count=2] [unmap count=1]" in errors[2]
        assert "pending DMA allocations while released from device [count=2]" in errors[3]
    run(main())


def test_debug_segment_limits():
    async def main():
        system, dev = setup(swiotlb_size=0)
        dev.dma_set_max_seg_size(4096)
        block = system.mm.alloc_pages(GFP_DMA32, 1)
        sgt = SgTable.from_blocks([(block, 8192)])
        with pytest.raises(DmaApiDebugError, match="longer than device claims"):
            await dma.dma_map_sgtable(dev, sgt, TO)
    run(main())
