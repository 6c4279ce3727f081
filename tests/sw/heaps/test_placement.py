"""The placement exporter: storage allocated at first use in the intersection of the attached
devices' reach, migrated (content kept) when a device it cannot serve maps it and nothing pins
it, EBUSY when something does; and the page allocator's knowledge of pages still zero from
reset. On the flat test machine (no SoC), so every rule is checked quickly."""

import asyncio
import errno

import pytest

from dmabuf_soc.sw.device import Device
from dmabuf_soc.sw.dma_mapping.direction import DmaDirection
from dmabuf_soc.sw.dmabuf.dma_buf import (dma_buf_attach, dma_buf_begin_cpu_access,
                                          dma_buf_detach, dma_buf_end_cpu_access,
                                          dma_buf_map_attachment,
                                          dma_buf_unmap_attachment, dma_buf_vmap,
                                          dma_buf_vunmap)
from dmabuf_soc.sw.dmabuf.fs import MAP_SHARED, PROT_READ, Process
from dmabuf_soc.sw.errors import KernelError
from dmabuf_soc.sw.mm.memblock import Memblock
from dmabuf_soc.sw.mm.page_alloc import GFP_KERNEL, PageAllocator
from dmabuf_soc.hw.config import SocConfig

from sw_doubles import FOUR_GIB, SIZE, HeapSystem, highest

TO, FROM = DmaDirection.TO_DEVICE, DmaDirection.FROM_DEVICE


def test_storage_is_allocated_at_first_map_in_the_intersection():
    async def main():
        w = HeapSystem()
        buf = await w.buffer()
        a_wide = dma_buf_attach(buf, w.wide)
        a_narrow = dma_buf_attach(buf, w.narrow)
        assert buf.priv.blocks is None and w.system.mm.nr_allocated_pages == 0
        sgt = await dma_buf_map_attachment(a_wide, TO)
        # The 40-bit device maps first, but the 32-bit one is attached: below 4 GiB.
        assert highest(buf) < FOUR_GIB
        assert sgt.dma_segments() == [(pg.phys, n) for pg, n in buf.priv.blocks]
        sgt2 = await dma_buf_map_attachment(a_narrow, TO)
        assert w.system.swiotlb.used == 0             # reachable: no bouncing
        assert [h["event"] for h in buf.priv.history] == ["allocated"]
        await dma_buf_unmap_attachment(a_narrow, sgt2, TO)
        await dma_buf_unmap_attachment(a_wide, sgt, TO)
        await dma_buf_detach(buf, a_narrow)
        await dma_buf_detach(buf, a_wide)
        buf.put()
        w.assert_all_returned()
    asyncio.run(main())


def test_migration_keeps_the_content_when_nothing_is_mapped():
    async def main():
        w = HeapSystem()
        buf = await w.buffer()
        a_wide = dma_buf_attach(buf, w.wide)
        await dma_buf_begin_cpu_access(buf, TO)       # placed for the wide device: high
        assert highest(buf) >= FOUR_GIB
        old_blocks = list(buf.priv.blocks)
        vaddr = dma_buf_vmap(buf)
        content = bytes(range(256)) * (SIZE // 256)
        await w.system.kmem.write(vaddr, content)
        dma_buf_vunmap(buf, vaddr)
        await dma_buf_end_cpu_access(buf, TO)
        a_narrow = dma_buf_attach(buf, w.narrow)
        sgt = await dma_buf_map_attachment(a_narrow, FROM)
        assert highest(buf) < FOUR_GIB and buf.priv.blocks != old_blocks
        assert [h["event"] for h in buf.priv.history] == ["allocated", "migrated"]
        assert w.system.mm.nr_allocated_pages == SIZE // 4096   # the old pages were freed
        for (page, size), offset in zip(buf.priv.blocks, range(0, SIZE, 4096)):
            assert await w.system.machine.peek(page.phys, size) == content[offset:offset + size]
        await dma_buf_unmap_attachment(a_narrow, sgt, FROM)
        await dma_buf_detach(buf, a_narrow)
        await dma_buf_detach(buf, a_wide)
        buf.put()
        w.assert_all_returned()
    asyncio.run(main())


@pytest.mark.parametrize("pin", ["mapping", "vmap", "mmap"])
def test_a_pinned_storage_out_of_reach_is_ebusy(pin):
    async def main():
        w = HeapSystem()
        buf = await w.buffer()
        a_wide = dma_buf_attach(buf, w.wide)
        sgt = await dma_buf_map_attachment(a_wide, TO)
        assert highest(buf) >= FOUR_GIB
        proc = Process("app", kmem=w.system.kmem)
        if pin != "mapping":
            await dma_buf_unmap_attachment(a_wide, sgt, TO)
        if pin == "vmap":
            vaddr = dma_buf_vmap(buf)
        if pin == "mmap":
            fd = proc.fd_install(buf.get().file)
            addr = proc.mmap(SIZE, PROT_READ, MAP_SHARED, fd)
        a_narrow = dma_buf_attach(buf, w.narrow)
        with pytest.raises(KernelError) as exc:
            await dma_buf_map_attachment(a_narrow, TO)
        assert exc.value.errno == errno.EBUSY
        assert {"mapping": "mapped by wide", "vmap": "vmapped",
                "mmap": "mapped into a process"}[pin] in str(exc.value)
        assert [h["event"] for h in buf.priv.history] == ["allocated"]
        if pin == "mapping":
            await dma_buf_unmap_attachment(a_wide, sgt, TO)
            sgt = await dma_buf_map_attachment(a_narrow, TO)      # now it may move
            assert highest(buf) < FOUR_GIB
            await dma_buf_unmap_attachment(a_narrow, sgt, TO)
        if pin == "vmap":
            dma_buf_vunmap(buf, vaddr)
        if pin == "mmap":
            proc.munmap(addr, SIZE)
            proc.exit()
            # A user mapping once made pins the storage for good.
            with pytest.raises(KernelError):
                await dma_buf_map_attachment(a_narrow, TO)
        await dma_buf_detach(buf, a_narrow)
        await dma_buf_detach(buf, a_wide)
        buf.put()
        w.assert_all_returned()
    asyncio.run(main())


def test_devices_behind_the_smmu_do_not_constrain_and_cpu_maps_need_storage():
    async def main():
        w = HeapSystem()
        buf = await w.buffer()
        proc = Process("p", kmem=w.system.kmem)
        fd = proc.fd_install(buf.get().file)
        for what in (lambda: dma_buf_vmap(buf),
                     lambda: proc.mmap(SIZE, PROT_READ, MAP_SHARED, fd)):
            with pytest.raises(KernelError) as exc:
                what()
            assert exc.value.errno == errno.ENOMEM
        proc.exit()
        attach = dma_buf_attach(buf, w.iommu_dev)
        assert buf.priv.limit() == (1 << 64) - 1
        await dma_buf_detach(buf, attach)
        with pytest.raises(KernelError) as exc:
            dma_buf_attach(buf, Device("no-dma", dma_capable=False))
        assert exc.value.errno == errno.EINVAL
        buf.put()
        w.assert_all_returned()
    asyncio.run(main())


def test_pages_never_handed_out_since_reset_are_known_zero():
    mm = PageAllocator(Memblock(SocConfig().banks), reset_zeroed=True)
    first = mm.alloc_pages(GFP_KERNEL, 1)
    assert mm.is_fresh(first)
    mm.free_pages(first, 1)
    again = mm.alloc_pages(GFP_KERNEL, 0)
    assert again == first and not mm.is_fresh(again)      # it was used: no longer known
    other = mm.alloc_pages(GFP_KERNEL, 0)
    assert other == first + 1 and not mm.is_fresh(other)  # part of the used block
    third = mm.alloc_pages(GFP_KERNEL, 0)
    assert mm.is_fresh(third)
    plain = PageAllocator(Memblock(SocConfig().banks))
    assert not plain.is_fresh(plain.alloc_pages(GFP_KERNEL, 0))
