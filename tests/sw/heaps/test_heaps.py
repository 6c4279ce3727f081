"""dma-heaps: system, CMA and carveout heaps, the allocation ioctl's validation, the query,
and heap buffers through attach/map, CPU access, vmap and mmap."""

import asyncio
import errno

import pytest

from dmabuf_soc.sw.device import Device
from dmabuf_soc.sw.dma_mapping.direction import DMA_BIT_MASK, DmaDirection
from dmabuf_soc.sw.dmabuf.dma_buf import (dma_buf_attach, dma_buf_begin_cpu_access,
                                          dma_buf_detach, dma_buf_end_cpu_access, dma_buf_get,
                                          dma_buf_list, dma_buf_map_attachment,
                                          dma_buf_unmap_attachment, dma_buf_vmap,
                                          dma_buf_vunmap)
from dmabuf_soc.sw.dmabuf.fs import (MAP_SHARED, O_CLOEXEC, O_RDWR, PROT_READ, PROT_WRITE,
                                     Process)
from dmabuf_soc.sw.dmabuf.ioctl import DMA_BUF_IOCTL_SYNC, DMA_BUF_SYNC_END, DMA_BUF_SYNC_RW, DmaBufSync
from dmabuf_soc.sw.errors import KernelError
from dmabuf_soc.sw.heaps.carveout import CarveoutHeap
from dmabuf_soc.sw.heaps.cma import CmaHeap
from dmabuf_soc.sw.heaps.heap import DMA_HEAP_IOCTL_ALLOC, DmaHeapAllocationData, HeapRegistry
from dmabuf_soc.sw.heaps.system import SystemHeap
from dmabuf_soc.sw.mm.page_alloc import PAGE_SIZE

from sw_doubles import System

KiB = 1024


def run(coro):
    return asyncio.run(coro)


class World:
    def __init__(self):
        self.system = System()
        s = self.system
        self.heaps = HeapRegistry()
        self.heaps.add(SystemHeap(s.mm, s.kmem))
        self.heaps.add(CmaHeap(s.cma, s.kmem))
        self.heaps.add(CarveoutHeap(s.carveout, s.kmem))
        self.proc = Process("app", kmem=s.kmem)

    async def alloc(self, heap, length, fd_flags=O_RDWR | O_CLOEXEC, heap_flags=0, fd=0):
        data = DmaHeapAllocationData(length, fd_flags, heap_flags, fd)
        await self.heaps.ioctl(heap, DMA_HEAP_IOCTL_ALLOC, data, self.proc)
        return data.fd

    def assert_all_returned(self):
        s = self.system
        assert s.mm.nr_allocated_pages == 0
        assert s.cma.nr_allocated_pages == 0
        assert s.carveout.avail() == s.carveout.size
        assert s.kmem.nr_vmap_areas == 0
        assert dma_buf_list() == []


def test_system_heap_takes_large_orders_first_and_zeroes():
    async def main():
        w = World()
        # The pools took part of both banks: no order-8 block is left, order 4 comes first.
        fd = await w.alloc("system", 136 * KiB + 100)
        buf = dma_buf_get(w.proc, fd)
        sizes = [size for _, size in buf.priv.blocks]
        assert sizes == [64 * KiB, 64 * KiB, 4 * KiB, 4 * KiB, 4 * KiB]
        assert buf.size == 140 * KiB and w.proc.cloexec(fd)
        for page, size in buf.priv.blocks:
            assert await w.system.machine.peek(page.phys, size) == bytes(size)
        buf.put()
        w.proc.close(fd)
        w.assert_all_returned()
    run(main())


def test_system_heap_enomem_gives_everything_back():
    async def main():
        w = World()
        with pytest.raises(KernelError) as exc:
            await w.alloc("system", 2048 * KiB)      # more than all memory
        assert exc.value.errno == errno.ENOMEM
        fd = await w.alloc("system", 1000 * KiB)
        with pytest.raises(KernelError) as exc:
            await w.alloc("system", 1000 * KiB)      # runs out half way
        assert exc.value.errno == errno.ENOMEM
        assert w.system.mm.nr_allocated_pages == 250
        w.proc.close(fd)
        w.assert_all_returned()
    run(main())


def test_cma_and_carveout_heaps_are_contiguous():
    async def main():
        w = World()
        first = await w.alloc("reserved", 4 * KiB)
        fd = await w.alloc("reserved", 64 * KiB)
        buf = dma_buf_get(w.proc, fd)
        (page, size), = buf.priv.blocks
        assert size == 64 * KiB and page.pfn % 16 == 0 and w.system.cma.contains(page.phys)
        buf.put()
        with pytest.raises(KernelError) as exc:
            await w.alloc("reserved", 256 * KiB)
        assert exc.value.errno == errno.ENOMEM
        co = await w.alloc("carveout", 12 * KiB)
        buf = dma_buf_get(w.proc, co)
        (page, size), = buf.priv.blocks
        assert w.system.carveout.contains(page.phys) and size == 12 * KiB
        assert await w.system.machine.peek(page.phys, size) == bytes(size)
        buf.put()
        info = {h.name: h for h in w.heaps.query()}
        assert info["reserved"].type == "cma"
        assert info["reserved"].free_bytes == 256 * KiB - 68 * KiB
        assert info["carveout"].free_bytes == 128 * KiB - 12 * KiB
        assert info["system"].type == "system"
        w.proc.exit()
        w.assert_all_returned()
    run(main())


@pytest.mark.parametrize("kwargs, code", [
    (dict(length=0), errno.EINVAL),
    (dict(length=4096, fd=3), errno.EINVAL),
    (dict(length=4096, fd_flags=0o4000), errno.EINVAL),
    (dict(length=4096, heap_flags=1), errno.EINVAL),
])
def test_allocation_validation(kwargs, code):
    async def main():
        w = World()
        with pytest.raises(KernelError) as exc:
            await w.alloc("system", **kwargs)
        assert exc.value.errno == code
        w.assert_all_returned()
    run(main())


def test_registry_errors():
    async def main():
        w = World()
        with pytest.raises(KernelError) as exc:
            w.heaps.add(SystemHeap(w.system.mm, w.system.kmem))
        assert exc.value.errno == errno.EINVAL
        with pytest.raises(KernelError) as exc:
            await w.heaps.ioctl("nope", DMA_HEAP_IOCTL_ALLOC, None, w.proc)
        assert exc.value.errno == errno.ENOENT
        # Number 0 with no argument: dma_heap_ioctl() zeroes the structure, so len 0.
        with pytest.raises(KernelError) as exc:
            await w.heaps.ioctl("system", 0x4800, None, w.proc)
        assert exc.value.errno == errno.EINVAL
    run(main())


def test_emfile_drops_the_buffer():
    async def main():
        w = World()
        w.proc.nofile = 0
        with pytest.raises(KernelError) as exc:
            await w.alloc("system", 4096)
        assert exc.value.errno == errno.EMFILE
        w.assert_all_returned()
    run(main())


def test_attach_map_and_cpu_access_sync_the_mapped_attachments():
    async def main():
        w = World()
        s = w.system
        fd = await w.alloc("system", 72 * KiB)
        buf = dma_buf_get(w.proc, fd)
        dev = s.platform.add_device(Device("importer"))
        dev.dma_set_mask(DMA_BIT_MASK(40))
        idle = s.platform.add_device(Device("idle"))
        attach = dma_buf_attach(buf, dev)
        dma_buf_attach(buf, idle)
        await dma_buf_begin_cpu_access(buf, DmaDirection.FROM_DEVICE)
        assert s.cache.ops == []       # nothing mapped: nothing to maintain
        sgt = await dma_buf_map_attachment(attach, DmaDirection.BIDIRECTIONAL)
        blocks = [(page.phys, size) for page, size in buf.priv.blocks]
        assert sgt.dma_segments() == blocks
        # Mapped bidirectional: cleaned and invalidated (arch.py), so the CPU cannot keep
        # reading lines the device is about to change.
        assert s.cache.ops == [("clean_invalidate", pa, size) for pa, size in blocks]
        s.cache.ops.clear()
        await dma_buf_begin_cpu_access(buf, DmaDirection.FROM_DEVICE)
        await dma_buf_end_cpu_access(buf, DmaDirection.TO_DEVICE)
        assert s.cache.ops == ([("invalidate", pa, size) for pa, size in blocks]
                               + [("clean", pa, size) for pa, size in blocks])
        s.cache.ops.clear()
        await w.proc.ioctl(fd, DMA_BUF_IOCTL_SYNC, DmaBufSync(DMA_BUF_SYNC_RW | DMA_BUF_SYNC_END))
        assert s.cache.ops == [("clean_invalidate", pa, size) for pa, size in blocks]
        await dma_buf_unmap_attachment(attach, sgt, DmaDirection.BIDIRECTIONAL)
        for a in list(buf.attachments):
            await dma_buf_detach(buf, a)
        buf.put()
        w.proc.exit()
        w.assert_all_returned()
        assert s.platform.debug.entries() == []
    run(main())


def test_32bit_device_bounces_high_pages():
    async def main():
        w = World()
        s = w.system
        fd = await w.alloc("system", 8 * KiB)
        buf = dma_buf_get(w.proc, fd)
        assert all(page.phys >= 1 << 32 for page, _ in buf.priv.blocks)
        dev = s.platform.add_device(Device("dev32"))
        attach = dma_buf_attach(buf, dev)
        sgt = await dma_buf_map_attachment(attach, DmaDirection.TO_DEVICE)
        assert all(s.swiotlb.is_swiotlb_buffer(addr) for addr, _ in sgt.dma_segments())
        await dma_buf_unmap_attachment(attach, sgt, DmaDirection.TO_DEVICE)
        await dma_buf_detach(buf, attach)
        assert s.swiotlb.used == 0
        buf.put()
        w.proc.exit()
        w.assert_all_returned()
    run(main())


def test_vmap_and_mmap_reach_the_scattered_pages():
    async def main():
        w = World()
        s = w.system
        fd = await w.alloc("system", 72 * KiB)
        buf = dma_buf_get(w.proc, fd)
        vaddr = dma_buf_vmap(buf)
        assert dma_buf_vmap(buf) == vaddr and s.kmem.nr_vmap_areas == 1
        pattern = bytes(range(256)) * (72 * KiB // 256)
        await s.kmem.write(vaddr, pattern)
        (big, _), (small, _), *_ = buf.priv.blocks
        assert await s.machine.peek(small.phys, 16) == pattern[64 * KiB:64 * KiB + 16]
        dma_buf_vunmap(buf, vaddr)
        dma_buf_vunmap(buf, vaddr)
        assert s.kmem.nr_vmap_areas == 0
        user = w.proc.mmap(8 * KiB, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 64 * KiB)
        assert await w.proc.read(user, 16) == pattern[64 * KiB:64 * KiB + 16]
        await w.proc.write(user + 4 * KiB, b"hello")
        assert await s.machine.peek(buf.priv.pages()[17].phys, 5) == b"hello"
        with pytest.raises(KernelError) as exc:
            await w.proc.read(user + 8 * KiB, 1)
        assert exc.value.errno == errno.EFAULT
        buf.put()
        w.proc.exit()
        w.assert_all_returned()
    run(main())
