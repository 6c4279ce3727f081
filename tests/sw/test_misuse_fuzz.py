"""Misuse fuzzing (issue 29): random sequences of dma-buf, DMA-mapping, IOMMU and heap calls
on the flat-memory set-up, good calls building state and bad calls with random wrong
arguments. After every refused call: the errno (or Linux's NULL / ``DMA_MAPPING_ERROR`` /
0, or a :class:`KernelBug` for Linux's BUG/WARN cases) is the expected one, and memory
contents, page / CMA / carveout / vmap / swiotlb / IOVA / DMA-API-debug accounting, the
descriptor table and the buffers are exactly as before. At the end everything is released
and every count is back to where it started.

A few examples run in the default suite; ``--run-slow`` runs many more, longer ones.
"""

import asyncio
import errno
import hashlib
import inspect

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dmabuf_soc.sw.device import Device
from dmabuf_soc.sw.dma_mapping import mapping as dma
from dmabuf_soc.sw.dmabuf import dma_buf as dma_buf_module
from dmabuf_soc.sw.dma_mapping.direction import DMA_BIT_MASK, DMA_MAPPING_ERROR, DmaDirection
from dmabuf_soc.sw.dmabuf.dma_buf import (dma_buf_attach, dma_buf_begin_cpu_access,
                                          dma_buf_detach, dma_buf_get, dma_buf_list,
                                          dma_buf_map_attachment, dma_buf_unmap_attachment,
                                          dma_buf_vmap, dma_buf_vunmap)
from dmabuf_soc.sw.dmabuf.fs import (MAP_PRIVATE, MAP_SHARED, O_CLOEXEC, O_RDWR, PROT_READ,
                                     PROT_WRITE, Process)
from dmabuf_soc.sw.dmabuf.ioctl import IOWR, DMA_BUF_IOCTL_SYNC, DmaBufSync
from dmabuf_soc.sw.errors import KernelBug, KernelError
from dmabuf_soc.sw.heaps.carveout import CarveoutHeap
from dmabuf_soc.sw.heaps.cma import CmaHeap
from dmabuf_soc.sw.heaps.heap import DMA_HEAP_IOCTL_ALLOC, DmaHeapAllocationData, HeapRegistry
from dmabuf_soc.sw.heaps.system import SystemHeap
from dmabuf_soc.sw.iommu.io_pgtable import IOMMU_READ, IOMMU_WRITE
from dmabuf_soc.sw.iommu.iommu import (IOMMU_DOMAIN_DMA, IOMMU_DOMAIN_UNMANAGED,
                                       iommu_attach_device, iommu_domain_alloc, iommu_map,
                                       iommu_unmap)
from dmabuf_soc.sw.mm.page_alloc import GFP_KERNEL, MAX_PAGE_ORDER, PAGE_SIZE

from sw_doubles import FlatSmmu, System

TO, FROM, BIDI = DmaDirection.TO_DEVICE, DmaDirection.FROM_DEVICE, DmaDirection.BIDIRECTIONAL
DIRECTIONS = (TO, FROM, BIDI)
HEAPS = ("system", "reserved", "carveout")

BUG = "BUG"                 # KernelBug: Linux's BUG_ON / WARN_ON cases


class Returns:
    """A refusal Linux reports by return value (NULL, DMA_MAPPING_ERROR, 0)."""

    def __init__(self, value):
        self.value = value

    def __repr__(self):
        return f"Returns({self.value!r})"


class World:
    """The flat-memory system, a direct-mapped and an SMMU-translated device, an unmanaged
    IOMMU domain, the three heaps, one process, and everything the good calls made."""

    async def setup(self):
        self.system = s = System()
        self.direct = s.platform.add_device(Device("direct"))
        self.direct.dma_set_mask_and_coherent(DMA_BIT_MASK(32))
        self.smmu = FlatSmmu(s.mm)
        self.dma_domain = await iommu_domain_alloc(self.smmu, IOMMU_DOMAIN_DMA, kmem=s.kmem)
        self.translated = s.platform.add_device(Device("translated", stream_id=5))
        await iommu_attach_device(self.dma_domain, self.translated)
        self.domain = await iommu_domain_alloc(self.smmu, IOMMU_DOMAIN_UNMANAGED, kmem=s.kmem)
        self.heaps = HeapRegistry()
        self.heaps.add(SystemHeap(s.mm, s.kmem))
        self.heaps.add(CmaHeap(s.cma, s.kmem))
        self.heaps.add(CarveoutHeap(s.carveout, s.kmem))
        self.proc = Process("fuzz", kmem=s.kmem)
        self.maps = []          # (dev, dma_addr, size, direction, page)
        self.coherent = []      # (dev, size, cpu_addr, handle)
        self.fds = []           # (fd, heap)
        self.attachments = []   # (buf, attach, sgt, direction), buf referenced
        self.detached = []      # (buf, attach), buf referenced
        self.vmaps = []         # (buf, addr), buf referenced
        self.mmaps = []         # (addr, length, heap)
        self.iommu_maps = []    # (iova, size) in the unmanaged domain
        self.baseline = self.accounting()
        self.refusals = 0

    @property
    def devices(self):
        return (self.direct, self.translated)

    def accounting(self):
        s = self.system
        # io-pgtable keeps its table pages once made (as Linux does): not a leak.
        pages = sum(1 << order for _, order, owner in s.mm.live_allocations()
                    if not str(owner).startswith("io-pgtable"))
        return dict(pages=pages, cma=s.cma.nr_allocated_pages,
                    carveout=s.carveout.avail(), vmaps=s.kmem.nr_vmap_areas,
                    swiotlb=s.swiotlb.used, debug=len(s.platform.debug.entries()),
                    iova=len(self.dma_domain.iovad.allocations), coherent=len(s.platform.coherent),
                    fds=len(self.proc.fds()), vmas=len(self.proc.vmas), bufs=len(dma_buf_list()))

    def snapshot(self):
        s = self.system
        memory = hashlib.sha1()
        for base in sorted(s.machine.mem):
            memory.update(s.machine.mem[base])
        return dict(
            self.accounting(), memory=memory.hexdigest(), cache_ops=len(s.cache.ops),
            debug_entries=[(e.dev.name, e.type, e.dev_addr, e.size, e.direction)
                           for e in s.platform.debug.entries()],
            iovas=list(self.dma_domain.iovad.allocations),
            fd_table=self.proc.fds(), vma_list=[(v.start, v.end) for v in self.proc.vmas],
            buffers=[(id(b), b.file.f_count, b.vmapping_counter, len(b.attachments))
                     for b in dma_buf_list()],
            masks=[(d.dma_mask, d.coherent_dma_mask) for d in self.devices],
            invalidations=len(self.smmu.invalidations))

    async def refused(self, expect, call, *args):
        """Run ``call(*args)``, which must be refused as ``expect`` says, changing nothing."""
        before = self.snapshot()
        try:
            result = call(*args)
            if inspect.isawaitable(result):
                result = await result
        except KernelError as exc:
            assert expect == exc.errno, f"{call.__name__}{args}: {exc!r}, expected {expect}"
        except KernelBug as exc:
            assert expect == BUG, f"{call.__name__}{args}: {exc!r}, expected {expect}"
        else:
            assert isinstance(expect, Returns) and result == expect.value, \
                f"{call.__name__}{args} returned {result!r}, expected {expect}"
        after = self.snapshot()
        changed = {k: (before[k], after[k]) for k in before if before[k] != after[k]}
        assert not changed, f"{call.__name__}{args} was refused but changed {changed}"
        self.refusals += 1

    # Good calls: they build the state the bad calls get wrong.

    async def map_page(self, data):
        dev = data.draw(st.sampled_from(self.devices))
        page = self.system.mm.alloc_pages(GFP_KERNEL, 0)
        if page is None:
            return
        size = data.draw(st.integers(1, PAGE_SIZE))
        direction = data.draw(st.sampled_from(DIRECTIONS))
        addr = await dma.dma_map_page(dev, page, 0, size, direction)
        if dma.dma_mapping_error(dev, addr):
            self.system.mm.free_pages(page, 0)
            return
        self.maps.append((dev, addr, size, direction, page))

    async def alloc_coherent(self, data):
        dev = data.draw(st.sampled_from(self.devices))
        size = data.draw(st.integers(1, 3 * PAGE_SIZE))
        result = await dma.dma_alloc_coherent(dev, size)
        if result is not None:
            self.coherent.append((dev, size, *result))

    async def heap_alloc(self, data):
        heap = data.draw(st.sampled_from(HEAPS))
        alloc = DmaHeapAllocationData(data.draw(st.integers(1, 4)) * PAGE_SIZE,
                                      O_RDWR | O_CLOEXEC)
        try:
            await self.heaps.ioctl(heap, DMA_HEAP_IOCTL_ALLOC, alloc, self.proc)
        except KernelError as exc:
            assert exc.errno == errno.ENOMEM
            return
        self.fds.append((alloc.fd, heap))

    async def attach_map(self, data):
        if not self.fds:
            return
        fd, _ = data.draw(st.sampled_from(self.fds))
        buf = dma_buf_get(self.proc, fd)
        attach = dma_buf_attach(buf, data.draw(st.sampled_from(self.devices)))
        direction = data.draw(st.sampled_from(DIRECTIONS))
        try:
            sgt = await dma_buf_map_attachment(attach, direction)
        except KernelError as exc:
            assert exc.errno in (errno.EIO, errno.ENOMEM)
            sgt = None
        self.attachments.append((buf, attach, sgt, direction))

    async def vmap(self, data):
        if not self.fds:
            return
        fd, _ = data.draw(st.sampled_from(self.fds))
        buf = dma_buf_get(self.proc, fd)
        self.vmaps.append((buf, dma_buf_vmap(buf)))

    async def mmap(self, data):
        if not self.fds:
            return
        fd, heap = data.draw(st.sampled_from(self.fds))
        buf = dma_buf_get(self.proc, fd)
        pages = buf.size // PAGE_SIZE
        buf.put()
        offset = data.draw(st.integers(0, pages - 1))
        length = data.draw(st.integers(1, pages - offset)) * PAGE_SIZE
        addr = self.proc.mmap(length, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
                              offset * PAGE_SIZE)
        await self.proc.write(addr, bytes([data.draw(st.integers(0, 255))]) * 8)
        self.mmaps.append((addr, length, heap))

    async def iommu_map_good(self, data):
        iova = data.draw(st.integers(1, 255)) * PAGE_SIZE * 16
        if any(i == iova for i, _ in self.iommu_maps):
            return
        page = self.system.mm.alloc_pages(GFP_KERNEL, 0)
        if page is None:
            return
        self.system.mm.free_pages(page, 0)      # any physical page will do for the tables
        await iommu_map(self.domain, iova, page.phys, PAGE_SIZE, IOMMU_READ | IOMMU_WRITE)
        self.iommu_maps.append((iova, PAGE_SIZE))

    async def release_one(self, data):
        kinds = [k for k in ("maps", "coherent", "attachments", "detached", "vmaps", "mmaps",
                             "fds", "iommu_maps") if getattr(self, k)]
        if kinds:
            kind = data.draw(st.sampled_from(kinds))
            items = getattr(self, kind)
            await self.release(kind, items.pop(data.draw(st.integers(0, len(items) - 1))),
                               keep_detached=True)

    async def release(self, kind, item, *, keep_detached=False):
        if kind == "maps":
            dev, addr, size, direction, page = item
            await dma.dma_unmap_page(dev, addr, size, direction)
            self.system.mm.free_pages(page, 0)
        elif kind == "coherent":
            dev, size, cpu_addr, handle = item
            await dma.dma_free_coherent(dev, size, cpu_addr, handle)
        elif kind == "attachments":
            buf, attach, sgt, direction = item
            if sgt is not None:
                await dma_buf_unmap_attachment(attach, sgt, direction)
            await dma_buf_detach(buf, attach)
            if keep_detached:
                self.detached.append((buf, attach))
            else:
                buf.put()
        elif kind == "detached":
            item[0].put()
        elif kind == "vmaps":
            buf, addr = item
            dma_buf_vunmap(buf, addr)
            buf.put()
        elif kind == "mmaps":
            self.proc.munmap(item[0], item[1])
        elif kind == "fds":
            self.proc.close(item[0])
        elif kind == "iommu_maps":
            assert await iommu_unmap(self.domain, *item) == item[1]

    async def release_all(self):
        for kind in ("maps", "coherent", "attachments", "detached", "vmaps", "mmaps", "fds",
                     "iommu_maps"):
            items = getattr(self, kind)
            while items:
                await self.release(kind, items.pop())
        assert self.accounting() == self.baseline

    # Bad calls.

    async def bad_unmap(self, data):
        if not self.maps:
            return await self.refused(BUG, dma.dma_unmap_page, self.direct, 0x1000, 64, TO)
        dev, addr, size, direction, _ = data.draw(st.sampled_from(self.maps))
        mistake = data.draw(st.sampled_from(["size", "direction", "address", "error"]))
        if mistake == "size":
            wrong = data.draw(st.integers(1, 4 * PAGE_SIZE).filter(lambda n: n != size))
            await self.refused(BUG, dma.dma_unmap_page, dev, addr, wrong, direction)
        elif mistake == "direction":
            wrong = data.draw(st.sampled_from([d for d in DIRECTIONS if d != direction]))
            await self.refused(BUG, dma.dma_unmap_single, dev, addr, size, wrong)
        elif mistake == "address":
            await self.refused(BUG, dma.dma_unmap_page, dev, addr + 0x10_0000, size,
                               direction)
        else:
            await self.refused(BUG, dma.dma_unmap_page, dev, DMA_MAPPING_ERROR, size,
                               direction)

    async def bad_sync(self, data):
        sync = data.draw(st.sampled_from([dma.dma_sync_single_for_cpu,
                                          dma.dma_sync_single_for_device]))
        if not self.maps or data.draw(st.booleans()):
            dev = data.draw(st.sampled_from(self.devices))
            return await self.refused(BUG, sync, dev, 0x1000, 64,
                                      data.draw(st.sampled_from(DIRECTIONS)))
        dev, addr, size, direction, _ = data.draw(st.sampled_from(self.maps))
        await self.refused(BUG, sync, dev, addr, size + data.draw(st.integers(1, 4096)),
                           direction)

    async def bad_free_coherent(self, data):
        if not self.coherent:
            return await self.refused(BUG, dma.dma_free_coherent, self.direct, 4096,
                                      0xffff_0000_0000_0000, 0x1000)
        dev, size, cpu_addr, handle = data.draw(st.sampled_from(self.coherent))
        if data.draw(st.booleans()):
            wrong = data.draw(st.integers(1, 8 * PAGE_SIZE).filter(lambda n: n != size))
            await self.refused(BUG, dma.dma_free_coherent, dev, wrong, cpu_addr, handle)
        else:
            await self.refused(BUG, dma.dma_free_coherent, dev, size, cpu_addr + PAGE_SIZE,
                               handle)

    async def bad_alloc(self, data):
        mistake = data.draw(st.sampled_from(["coherent", "order", "mask", "iova", "map0"]))
        dev = data.draw(st.sampled_from(self.devices))
        if mistake == "coherent":
            size = data.draw(st.sampled_from([0, -1, -4096, 1 << 40, 1 << 63]))
            await self.refused(Returns(None), dma.dma_alloc_coherent, dev, size)
        elif mistake == "order":
            order = data.draw(st.sampled_from([-1, MAX_PAGE_ORDER + 1, 64]))
            await self.refused(Returns(None), self.system.mm.alloc_pages, GFP_KERNEL, order)
        elif mistake == "mask":
            mask = data.draw(st.sampled_from([-1, 1 << 64, "all", None]))
            await self.refused(errno.EINVAL, dev.dma_set_mask, mask)
        elif mistake == "iova":
            await self.refused(Returns(None), self.dma_domain.iovad.alloc_iova,
                               data.draw(st.integers(-4, 0)), 1 << 20)
        else:
            page = self.system.mm.alloc_pages(GFP_KERNEL, 0)
            await self.refused(BUG, dma.dma_map_page, dev, page, 0, 0, TO)
            self.system.mm.free_pages(page, 0)

    async def bad_heap_alloc(self, data):
        heap = data.draw(st.sampled_from(HEAPS))
        mistake = data.draw(st.sampled_from(["len0", "fd", "fd_flags", "heap_flags", "huge",
                                             "cmd", "heap"]))
        alloc = DmaHeapAllocationData(PAGE_SIZE, O_RDWR)
        cmd, expect = DMA_HEAP_IOCTL_ALLOC, errno.EINVAL
        if mistake == "len0":
            alloc.len = 0
        elif mistake == "fd":
            alloc.fd = data.draw(st.integers(1, 100))
        elif mistake == "fd_flags":
            alloc.fd_flags = O_RDWR | data.draw(st.sampled_from([0o100, 0o4000, 1 << 30]))
        elif mistake == "heap_flags":
            alloc.heap_flags = data.draw(st.integers(1, (1 << 64) - 1))
        elif mistake == "huge":
            alloc.len, expect = data.draw(st.sampled_from([1 << 40, 1 << 63, -4096])), \
                errno.ENOMEM
        elif mistake == "cmd":
            cmd = IOWR("H", data.draw(st.integers(1, 255)), 24)
        else:
            heap, expect = "nope", errno.ENOENT
        before = alloc.fd
        await self.refused(expect, self.heaps.ioctl, heap, cmd, alloc, self.proc)
        assert alloc.fd == before

    async def bad_mmap(self, data):
        if not self.fds:
            return await self.refused(errno.EBADF, self.proc.mmap, PAGE_SIZE, PROT_READ,
                                      MAP_SHARED, 99)
        fd, heap = data.draw(st.sampled_from(self.fds))
        mistake = data.draw(st.sampled_from(["negative", "beyond", "unaligned", "length",
                                             "private", "munmap", "close"]))
        if mistake == "negative":
            offset = -PAGE_SIZE * data.draw(st.integers(1, 1 << 40))
            await self.refused(errno.EINVAL, self.proc.mmap, PAGE_SIZE, PROT_READ,
                               MAP_SHARED, fd, offset)
        elif mistake == "beyond":
            offset = PAGE_SIZE * data.draw(st.integers(4, 1 << 50))
            await self.refused(errno.EINVAL, self.proc.mmap, PAGE_SIZE, PROT_READ,
                               MAP_SHARED, fd, offset)
        elif mistake == "unaligned":
            await self.refused(errno.EINVAL, self.proc.mmap, PAGE_SIZE, PROT_READ,
                               MAP_SHARED, fd, data.draw(st.integers(1, PAGE_SIZE - 1)))
        elif mistake == "length":
            await self.refused(errno.EINVAL, self.proc.mmap, data.draw(st.integers(-8, 0)),
                               PROT_READ, MAP_SHARED, fd)
        elif mistake == "private":
            if heap == "reserved":
                await self.refused(errno.EINVAL, self.proc.mmap, PAGE_SIZE, PROT_READ,
                                   MAP_PRIVATE, fd)
        elif mistake == "munmap":
            if self.mmaps:
                addr, length, _ = data.draw(st.sampled_from(self.mmaps))
                await self.refused(errno.EINVAL, self.proc.munmap, addr, length + PAGE_SIZE)
        else:
            await self.refused(errno.EBADF, self.proc.close,
                               data.draw(st.integers(200, 1 << 20)))

    async def bad_dmabuf(self, data):
        if not self.fds:
            return
        fd, _ = data.draw(st.sampled_from(self.fds))
        buf = dma_buf_get(self.proc, fd)
        try:
            mistake = data.draw(st.sampled_from(["cpu_access", "sync", "ioctl", "relock",
                                                 "map_dir", "after_detach", "vunmap"]))
            if mistake == "cpu_access":
                await self.refused(errno.EINVAL, dma_buf_begin_cpu_access, buf,
                                   data.draw(st.sampled_from([3, 4, -1, "x"])))
            elif mistake == "sync":
                await self.refused(errno.EINVAL, self.proc.ioctl, fd, DMA_BUF_IOCTL_SYNC,
                                   DmaBufSync(data.draw(st.sampled_from([0, 4, 8, 0x100]))))
            elif mistake == "ioctl":
                await self.refused(errno.ENOTTY, self.proc.ioctl, fd,
                                   IOWR("b", data.draw(st.integers(4, 255)), 8), None)
            elif mistake == "relock":
                await buf.resv.lock()
                try:
                    await self.refused(errno.EDEADLK, buf.resv.lock)
                finally:
                    buf.resv.unlock()
            elif mistake == "map_dir" and self.attachments:
                _, attach, _, _ = data.draw(st.sampled_from(self.attachments))
                await self.refused(BUG, dma_buf_map_attachment, attach,
                                   data.draw(st.sampled_from([DmaDirection.NONE, 7])))
            elif mistake == "after_detach" and self.detached:
                _, attach = data.draw(st.sampled_from(self.detached))
                await self.refused(errno.EINVAL, dma_buf_map_attachment, attach, TO)
            elif mistake == "vunmap" and self.vmaps:
                vbuf, addr = data.draw(st.sampled_from(self.vmaps))
                await self.refused(BUG, dma_buf_vunmap, vbuf, addr + PAGE_SIZE)
        finally:
            buf.put()

    async def bad_iommu(self, data):
        mistake = data.draw(st.sampled_from(["map_unaligned", "map_outside", "unmap_hole",
                                             "unmap_unaligned"]))
        prot = IOMMU_READ | IOMMU_WRITE
        if mistake == "map_unaligned":
            iova = data.draw(st.integers(1, 1 << 20)) * PAGE_SIZE + data.draw(
                st.integers(1, PAGE_SIZE - 1))
            await self.refused(errno.EINVAL, iommu_map, self.domain, iova, 0x8000_0000,
                               PAGE_SIZE, prot)
        elif mistake == "map_outside":
            await self.refused(errno.EFAULT, iommu_map, self.domain, 1 << 60, 0x8000_0000,
                               PAGE_SIZE, prot)
        elif mistake == "unmap_hole":
            iova = (data.draw(st.integers(1, 255)) * 16 + 8) * PAGE_SIZE
            await self.refused(Returns(0), iommu_unmap, self.domain, iova, PAGE_SIZE)
        else:
            await self.refused(errno.EINVAL, iommu_unmap, self.domain, PAGE_SIZE + 8,
                               PAGE_SIZE)


GOOD = ("map_page", "alloc_coherent", "heap_alloc", "attach_map", "vmap", "mmap",
        "iommu_map_good", "release_one")
BAD = ("bad_unmap", "bad_sync", "bad_free_coherent", "bad_alloc", "bad_heap_alloc",
       "bad_mmap", "bad_dmabuf", "bad_iommu")


def fuzz(data, steps):
    async def main():
        world = World()
        await world.setup()
        for _ in range(data.draw(st.integers(1, steps), label="steps")):
            op = data.draw(st.sampled_from(GOOD + BAD + BAD), label="op")
            await getattr(world, op)(data)
        await world.release_all()
        return world.refusals

    existing = dma_buf_list()
    try:
        return asyncio.run(main())
    finally:
        # An example hypothesis cut short (or one that failed) leaves its buffers behind;
        # they must not count as leaks of the tests that run after this one.
        for buf in dma_buf_list():
            if buf not in existing:
                dma_buf_module._live_buffers.remove(buf)


@settings(max_examples=30, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.data())
def test_misuse_is_refused_without_side_effects(data):
    fuzz(data, 25)


@pytest.mark.slow
@settings(max_examples=1500, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.data())
def test_misuse_is_refused_without_side_effects_soak(data):
    fuzz(data, 120)
