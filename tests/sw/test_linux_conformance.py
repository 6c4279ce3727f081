"""Issue 29: Linux conformance and misuse safety of the driver layers.

A refused call changes nothing; every caller mistake carries Linux's errno (or Linux's
NULL / ``DMA_MAPPING_ERROR``); a wait nothing can ever satisfy is reported as a deadlock;
and the rules of ``drivers/dma-buf``, ``drivers/dma-buf/heaps`` and ``kernel/dma`` where the
model used to differ. All on the flat-memory set-up of :mod:`sw_doubles` (no RTL).
"""

import asyncio
import errno
import struct
import warnings

import pytest

from dmabuf_soc.sw.device import Device
from dmabuf_soc.sw.dma_mapping import mapping as dma
from dmabuf_soc.sw.dma_mapping.debug import DmaApiDebugError
from dmabuf_soc.sw.dma_mapping.direction import DMA_BIT_MASK, DmaDirection
from dmabuf_soc.sw.dmabuf.dma_buf import (dma_buf_attach, dma_buf_begin_cpu_access,
                                          dma_buf_detach, dma_buf_export, dma_buf_fd,
                                          dma_buf_list, dma_buf_map_attachment,
                                          dma_buf_put, dma_buf_vmap, dma_buf_vunmap)
from dmabuf_soc.sw.dmabuf.fence import DmaFence, DmaFenceOps, dma_fence_context_alloc
from dmabuf_soc.sw.dmabuf.fence_array import DmaFenceArray
from dmabuf_soc.sw.dmabuf.fence_chain import DmaFenceChain
from dmabuf_soc.sw.dmabuf.fence_unwrap import dma_fence_unwrap_merge
from dmabuf_soc.sw.dmabuf.fs import MAP_PRIVATE, MAP_SHARED, O_RDWR, PROT_READ, Process
from dmabuf_soc.sw.dmabuf.ioctl import IOC, IOWR, DMA_BUF_IOCTL_SYNC, DMA_BUF_SYNC_RW, DmaBufSync
from dmabuf_soc.sw.dmabuf.resv import DmaResv, DmaResvUsage, WwAcquireCtx
from dmabuf_soc.sw.errors import KernelBug, KernelError
from dmabuf_soc.sw.heaps.carveout import CarveoutHeap
from dmabuf_soc.sw.heaps.cma import CmaHeap
from dmabuf_soc.sw.heaps.heap import DMA_HEAP_IOCTL_ALLOC, DmaHeapAllocationData, HeapRegistry
from dmabuf_soc.sw.heaps.system import SystemHeap
from dmabuf_soc.sw.iommu.iommu import IOMMU_DOMAIN_DMA, iommu_attach_device, iommu_domain_alloc
from dmabuf_soc.sw.iommu.iova import IovaDomain
from dmabuf_soc.sw.mm.page_alloc import GFP_DMA32, GFP_KERNEL, MAX_PAGE_ORDER, PAGE_SIZE, Page

from sw_doubles import FlatSmmu, System
from sw_doubles import BIDI, FROM, TO, run, setup


async def iommu_setup(*, strict_debug=True):
    system = System(swiotlb_size=0, strict_debug=strict_debug)
    smmu = FlatSmmu(system.mm)
    domain = await iommu_domain_alloc(smmu, IOMMU_DOMAIN_DMA, kmem=system.kmem)
    dev = system.platform.add_device(Device("smmu-dev", stream_id=3))
    await iommu_attach_device(domain, dev)
    return system, domain, dev


class Ops(DmaFenceOps):
    def get_driver_name(self, fence):
        return "test"

    def get_timeline_name(self, fence):
        return "timeline"


def new_fence(context=None, seqno=1):
    return DmaFence(Ops(), dma_fence_context_alloc() if context is None else context, seqno)


# A refused call changes nothing.


@pytest.mark.parametrize("unmap", [dma.dma_unmap_page, dma.dma_unmap_single])
def test_unmap_with_wrong_size_changes_nothing(unmap):
    async def main():
        system, dev = setup(swiotlb_size=0)
        page = system.mm.alloc_pages(GFP_DMA32, 0)
        addr = await dma.dma_map_page(dev, page, 0, 64, FROM)
        assert not dma.dma_mapping_error(dev, addr)
        ops = list(system.cache.ops)
        entries = system.platform.debug.entries()
        with pytest.raises(DmaApiDebugError, match="different size"):
            await unmap(dev, addr, 4096, FROM)
        assert system.cache.ops == ops, "invalidated the cache before refusing"
        assert system.platform.debug.entries() == entries
        await unmap(dev, addr, 64, FROM)
        assert system.platform.debug.entries() == []
        system.mm.free_pages(page, 0)
        assert system.mm.nr_allocated_pages == 0
    run(main())


@pytest.mark.parametrize("sync", [dma.dma_sync_single_for_cpu, dma.dma_sync_single_for_device])
def test_sync_of_unmapped_memory_changes_nothing(sync):
    async def main():
        system, dev = setup(swiotlb_size=0)
        page = system.mm.alloc_pages(GFP_DMA32, 0)
        with pytest.raises(DmaApiDebugError, match="has not allocated"):
            await sync(dev, page.phys, 64, FROM)
        assert system.cache.ops == []
    run(main())


@pytest.mark.parametrize("iommu", [False, True])
def test_map_sg_refused_by_the_checker_leaves_nothing_mapped(iommu):
    async def main():
        if iommu:
            system, domain, dev = await iommu_setup()
        else:
            system, dev = setup(swiotlb_size=0)
        dev.dma_set_max_seg_size(4096)
        block = system.mm.alloc_pages(GFP_DMA32, 1)
        from dmabuf_soc.sw.mm.scatterlist import SgTable
        sgt = SgTable.from_blocks([(block, 8192)])
        with pytest.raises(DmaApiDebugError, match="longer than device claims"):
            await dma.dma_map_sgtable(dev, sgt, TO)
        assert system.platform.debug.entries() == []
        if iommu:
            assert domain.iovad.allocations == []
            assert await domain.pgtbl.iova_to_phys(sgt.sgl[0].dma_address) == 0
    run(main())


@pytest.mark.parametrize("wrong", [4096, 3 * 4096])
@pytest.mark.parametrize("strict", [True, False])
def test_dma_iommu_unmap_with_wrong_size_changes_nothing(wrong, strict):
    async def main():
        system, domain, dev = await iommu_setup(strict_debug=strict)
        block = system.mm.alloc_pages(GFP_KERNEL, 1)
        neighbour = system.mm.alloc_pages(GFP_KERNEL, 1)
        addr = await dma.dma_map_page(dev, block, 0, 8192, BIDI)
        other = await dma.dma_map_page(dev, neighbour, 0, 8192, BIDI)
        dma.dma_mapping_error(dev, addr)
        dma.dma_mapping_error(dev, other)
        iovas = domain.iovad.allocations
        entries = system.platform.debug.entries()
        with pytest.raises(KernelBug):
            await dma.dma_unmap_page(dev, addr, wrong, BIDI)
        assert domain.iovad.allocations == iovas
        assert system.platform.debug.entries() == entries
        for base, phys in ((addr, block.phys), (other, neighbour.phys)):
            for off in (0, 4096):
                assert await domain.pgtbl.iova_to_phys(base + off) == phys + off
        await dma.dma_unmap_page(dev, addr, 8192, BIDI)
        await dma.dma_unmap_page(dev, other, 8192, BIDI)
        assert domain.iovad.allocations == [] and system.platform.debug.entries() == []
        assert await domain.pgtbl.iova_to_phys(addr) == 0
    run(main())


@pytest.mark.parametrize("iommu", [False, True])
def test_free_coherent_with_wrong_size_then_correct_free(iommu):
    async def main():
        if iommu:
            system, _, dev = await iommu_setup()
        else:
            system, dev = setup()
        def pages():
            return system.mm.nr_allocated_pages + system.cma.nr_allocated_pages
        before = pages()
        cpu_addr, handle = await dma.dma_alloc_coherent(dev, 3 * 4096)
        allocated = pages()    # with the page-table pages the IOMMU mapping needed
        with pytest.raises(DmaApiDebugError, match="different size"):
            await dma.dma_free_coherent(dev, 4096, cpu_addr, handle)
        with pytest.raises(DmaApiDebugError, match="different CPU address"):
            await dma.dma_free_coherent(dev, 3 * 4096, cpu_addr + 4096, handle)
        await dma.dma_free_coherent(dev, 3 * 4096, cpu_addr, handle)
        assert pages() == (allocated - 3 if iommu else before)
        assert system.kmem.nr_vmap_areas == 0 and system.platform.coherent == {}
        assert system.platform.debug.entries() == []
    run(main())


class Exporter:
    @staticmethod
    def make():
        from dmabuf_soc.sw.dmabuf.dma_buf import DmaBufOps
        from dmabuf_soc.sw.mm.scatterlist import SgTable

        class _Ops(DmaBufOps):
            released = 0

            async def map_dma_buf(self, attach, direction):
                return SgTable.from_blocks([(Page(1), 4096)])

            async def unmap_dma_buf(self, attach, sgt, direction):
                pass

            def release(self, dmabuf):
                self.released += 1

            def vmap(self, dmabuf):
                return 0xffff_8000_0000_0000

            def mmap(self, dmabuf, vma):
                vma.pages = [Page(1)] * vma.npages
        ops = _Ops()
        return ops, dma_buf_export(ops=ops, size=4 * 4096, priv=object(), exp_name="t")


def test_last_put_while_vmapped_or_attached_keeps_the_buffer_whole():
    async def main():
        ops, buf = Exporter.make()
        addr = dma_buf_vmap(buf)
        with pytest.raises(KernelBug, match="vmapped"):
            dma_buf_put(buf)
        assert buf.file.f_count == 1 and buf in dma_buf_list() and not ops.released
        dma_buf_vunmap(buf, addr)
        attach = dma_buf_attach(buf, Device("importer"))
        proc = Process("p")
        fd = dma_buf_fd(buf, proc)
        with pytest.raises(KernelBug, match="attachment"):
            proc.close(fd)
        assert proc.fds() == [fd] and buf.file.f_count == 1
        await dma_buf_detach(buf, attach)
        proc.close(fd)
        assert ops.released == 1 and buf not in dma_buf_list()
    run(main())


# Every caller mistake carries an errno.


def test_dma_alloc_coherent_of_absurd_size_is_null():
    async def main():
        system, dev = setup()
        for size in (1 << 62, -4096, 0):
            assert await dma.dma_alloc_coherent(dev, size) is None
        assert system.mm.nr_allocated_pages == 0
    run(main())


def test_begin_cpu_access_bad_direction_is_einval():
    async def main():
        _, buf = Exporter.make()
        for bad in (7, -1, "x", DmaDirection.NONE):
            with pytest.raises(KernelError) as exc:
                await dma_buf_begin_cpu_access(buf, bad)
            assert exc.value.errno == errno.EINVAL
        buf.put()
    run(main())


def test_bad_masks_orders_and_iova_sizes():
    system, dev = setup()
    for mask in (-1, "x", 1 << 64):
        with pytest.raises(KernelError) as exc:
            dev.dma_set_mask(mask)
        assert exc.value.errno == errno.EINVAL
    for order in (-1, MAX_PAGE_ORDER + 1, 1.5):
        assert system.mm.alloc_pages(GFP_KERNEL, order) is None
    iovad = IovaDomain(4096, 1)
    for size in (0, -3):
        assert iovad.alloc_iova(size, 1 << 20) is None
    assert iovad.allocations == []


def test_mmap_with_negative_or_overflowing_offset_is_einval():
    _, buf = Exporter.make()
    proc = Process("p")
    fd = dma_buf_fd(buf, proc)
    for offset in (-4096, -(1 << 40), 1 << 63, (1 << 64) - 4096):
        with pytest.raises(KernelError) as exc:
            proc.mmap(4096, PROT_READ, MAP_SHARED, fd, offset)
        assert exc.value.errno in (errno.EINVAL, errno.EOVERFLOW)
    assert proc.vmas == [] and buf.file.f_count == 1
    proc.close(fd)


def test_map_after_detach_is_einval():
    async def main():
        _, buf = Exporter.make()
        attach = dma_buf_attach(buf, Device("importer"))
        await dma_buf_detach(buf, attach)
        with pytest.raises(KernelError) as exc:
            await dma_buf_map_attachment(attach, TO)
        assert exc.value.errno == errno.EINVAL
        buf.put()
    run(main())


def heap_world():
    system = System()
    heaps = HeapRegistry()
    heaps.add(SystemHeap(system.mm, system.kmem))
    heaps.add(CmaHeap(system.cma, system.kmem))
    heaps.add(CarveoutHeap(system.carveout, system.kmem))
    return system, heaps, Process("app", kmem=system.kmem)


@pytest.mark.parametrize("heap", ["system", "reserved", "carveout"])
def test_heap_allocation_larger_than_memory_is_enomem(heap):
    async def main():
        system, heaps, proc = heap_world()
        for length in (1 << 50, system.cma.size + PAGE_SIZE if heap == "reserved" else 1 << 40):
            data = DmaHeapAllocationData(length, O_RDWR)
            with pytest.raises(KernelError) as exc:
                await heaps.ioctl(heap, DMA_HEAP_IOCTL_ALLOC, data, proc)
            assert exc.value.errno == errno.ENOMEM and data.fd == 0
        assert proc.fds() == [] and system.mm.nr_allocated_pages == 0
    run(main())


def test_more_caller_mistakes_carry_an_errno_or_null():
    from dmabuf_soc.sw.dmabuf.sync_file import sync_file_create

    async def main():
        system = System()
        resv = DmaResv()
        await resv.lock()
        resv.reserve_fences(1)
        fence = new_fence()
        for bad, usage in ((None, DmaResvUsage.WRITE), ("fence", DmaResvUsage.READ),
                           (fence, 9)):
            with pytest.raises(KernelError) as exc:
                resv.add_fence(bad, usage)
            assert exc.value.errno == errno.EINVAL
        assert fence.refcount == 1
        resv.unlock()
        with pytest.raises(KernelError) as exc:
            sync_file_create(None)
        assert exc.value.errno == errno.EINVAL
        assert system.kmem.vmap([]) is None and system.kmem.nr_vmap_areas == 0
        assert system.cma.alloc(0, 0) is None
        assert system.cma.alloc(system.cma.count + 1, 0) is None
        assert system.carveout.alloc(0) == 0
        assert system.carveout.alloc(system.carveout.size + 4096) == 0
        assert system.cma.nr_allocated_pages == 0
        assert system.carveout.avail() == system.carveout.size
    run(main())


# Nothing waits forever.


def test_wait_on_a_fence_nobody_signals_is_edeadlk():
    async def main():
        fence = new_fence()
        with pytest.raises(KernelError) as exc:
            await fence.wait()
        assert exc.value.errno == errno.EDEADLK
    run(main())


def test_sync_ioctl_behind_a_fence_nobody_signals_is_edeadlk():
    async def main():
        _, buf = Exporter.make()
        fence = new_fence()
        await buf.resv.lock()
        buf.resv.reserve_fences(1)
        buf.resv.add_fence(fence, DmaResvUsage.WRITE)
        buf.resv.unlock()
        proc = Process("p")
        fd = dma_buf_fd(buf, proc)
        with pytest.raises(KernelError) as exc:
            await proc.ioctl(fd, DMA_BUF_IOCTL_SYNC, DmaBufSync(DMA_BUF_SYNC_RW))
        assert exc.value.errno == errno.EDEADLK
        proc.close(fd)
        fence.signal()
        fence.put()
    run(main())


def test_a_fence_another_task_signals_is_no_deadlock():
    async def main():
        fence = new_fence()

        async def signaller():
            for _ in range(5000):
                await asyncio.sleep(0)
            fence.signal()
        task = asyncio.create_task(signaller())
        assert await fence.wait() == 0
        await task
    run(main())


def test_relocking_a_reservation_is_edeadlk_or_ealready():
    async def main():
        resv = DmaResv()
        await resv.lock()
        with pytest.raises(KernelError) as exc:
            await resv.lock()
        assert exc.value.errno == errno.EDEADLK
        resv.unlock()
        ctx = WwAcquireCtx()
        await resv.lock(ctx)
        with pytest.raises(KernelError) as exc:
            await resv.lock(ctx)
        assert exc.value.errno == errno.EALREADY
        resv.unlock()
        ctx.fini()

        # Two tasks waiting on each other's lock (ABBA without a transaction).
        a, b = DmaResv(), DmaResv()

        async def take(first, second):
            await first.lock()
            await asyncio.sleep(0)
            await second.lock()
        results = await asyncio.gather(take(a, b), take(b, a), return_exceptions=True)
        assert any(isinstance(r, KernelError) and r.errno == errno.EDEADLK for r in results)
    run(main())


# Linux's rules where the model used to differ.


def test_fence_chain_walk_drops_signaled_links():
    f1, f2, f3 = new_fence(), new_fence(), new_fence()
    c1 = DmaFenceChain(None, f1, 1)
    c2 = DmaFenceChain(c1, f2, 2)
    c3 = DmaFenceChain(c2, f3, 3)
    from dmabuf_soc.sw.dmabuf.fence_chain import dma_fence_chain_walk
    f1.signal()
    f2.signal()
    # dma_fence_chain_walk(c3): c2 and c1 signaled, so c3's prev becomes NULL.
    assert dma_fence_chain_walk(c3.get()) is None
    assert c3.prev is None
    assert c3.find_seqno(1) is None and c3.find_seqno(3) is c3
    c3.put()


def test_fence_chain_find_seqno_after_gc():
    fences = [new_fence() for _ in range(5)]
    chain = None
    for seqno, fence in enumerate(fences, 1):
        chain = DmaFenceChain(chain, fence, seqno)
    fences[2].signal()
    fences[3].signal()
    # Linux: from point 5, links 4 and 3 are dropped; the walk answers link 2.
    node = chain.find_seqno(4)
    assert node is not None and node.seqno == 2
    assert chain.prev.seqno == 2
    chain.put()


def test_long_fence_chain_releases_iteratively():
    fences = [new_fence() for _ in range(4096)]
    chain = None
    for seqno, fence in enumerate(fences, 1):
        chain = DmaFenceChain(chain, fence.get(), seqno)
    chain.put()
    assert all(f.refcount == 1 for f in fences)


def test_unwrap_merge_sorts_by_context():
    contexts = [dma_fence_context_alloc() for _ in range(4)]
    a, b, c, d = (new_fence(ctx) for ctx in contexts)
    merged = dma_fence_unwrap_merge(d, b, DmaFenceArray([c.get(), a.get()],
                                                        dma_fence_context_alloc(), 1))
    assert [f.context for f in merged.fences] == sorted(contexts)


def test_fence_array_enables_signaling_lazily_and_release_never_force_signals():
    enabled = []

    class Lazy(Ops):
        def enable_signaling(self, fence):
            enabled.append(fence)
            return True
    member = DmaFence(Lazy(), dma_fence_context_alloc(), 1)
    array = DmaFenceArray([member.get()], dma_fence_context_alloc(), 1)
    assert enabled == [] and not array.is_signaled()
    array.put()
    assert not member.is_signaled() and member.refcount == 1

    array = DmaFenceArray([member.get()], dma_fence_context_alloc(), 1)
    seen = []
    array.add_callback(lambda f, cb: seen.append(f))
    assert enabled == [member]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        array.put()
    assert not member.is_signaled() and not seen
    member.signal()
    assert seen == [array] and member.refcount == 1


def test_heap_ioctl_struct_sizes_and_unknown_command():
    async def main():
        system, heaps, proc = heap_world()
        # The newer struct is larger: the kernel copies what it knows.
        data = bytearray(struct.pack("<QIIQQ", 4096, 0, O_RDWR, 0, 0xdead))
        await heaps.ioctl("system", IOWR("H", 0, 32), data, proc)
        length, fd, fd_flags, heap_flags, extra = struct.unpack("<QIIQQ", data)
        assert fd in proc.fds() and extra == 0xdead
        # An older, shorter struct: the missing heap_flags read as zero.
        data = bytearray(struct.pack("<QII", 4096, 0, O_RDWR))
        await heaps.ioctl("system", IOWR("H", 0, 16), data, proc)
        assert struct.unpack("<QII", data)[1] in proc.fds()
        # The full-size structure object works as before.
        alloc = DmaHeapAllocationData(4096, O_RDWR)
        await heaps.ioctl("system", DMA_HEAP_IOCTL_ALLOC, alloc, proc)
        assert alloc.fd in proc.fds()
        for cmd in (IOWR("H", 1, 24), IOC(3, "H", 7, 24)):
            with pytest.raises(KernelError) as exc:
                await heaps.ioctl("system", cmd, DmaHeapAllocationData(4096, O_RDWR), proc)
            assert exc.value.errno == errno.EINVAL
        proc.exit()
        assert system.mm.nr_allocated_pages == 0
    run(main())


def test_cma_heap_refuses_map_private():
    async def main():
        system, heaps, proc = heap_world()
        for heap in ("reserved", "system"):
            data = DmaHeapAllocationData(4096, O_RDWR)
            await heaps.ioctl(heap, DMA_HEAP_IOCTL_ALLOC, data, proc)
            if heap == "reserved":
                with pytest.raises(KernelError) as exc:
                    proc.mmap(4096, PROT_READ, MAP_PRIVATE, data.fd)
                assert exc.value.errno == errno.EINVAL
            else:
                addr = proc.mmap(4096, PROT_READ, MAP_PRIVATE, data.fd)
                proc.munmap(addr, 4096)
        proc.exit()
        assert system.mm.nr_allocated_pages == 0 and system.cma.nr_allocated_pages == 0
    run(main())


def test_dma_max_mapping_size_only_limits_devices_that_may_bounce():
    system, dev = setup()
    dev.dma_set_mask(DMA_BIT_MASK(40))
    assert dma.dma_max_mapping_size(dev) == (1 << 64) - 1
    dev.dma_set_mask(DMA_BIT_MASK(32))
    assert dma.dma_max_mapping_size(dev) == system.swiotlb.max_mapping_size()
    system.swiotlb.force_bounce = True
    dev.dma_set_mask(DMA_BIT_MASK(40))
    assert dma.dma_max_mapping_size(dev) == system.swiotlb.max_mapping_size()
    nobounce, dev = setup(swiotlb_size=0)
    dev.dma_set_mask(DMA_BIT_MASK(32))
    assert dma.dma_max_mapping_size(dev) == (1 << 64) - 1


def test_machine_scheduler_reports_a_wait_the_idle_hardware_cannot_end():
    from dmabuf_soc.sw.dmabuf.sched import MachineScheduler, use_scheduler
    from sw_doubles import FlatMachine

    async def main():
        machine = FlatMachine()
        scheduler = MachineScheduler(machine, deadlock_cycles=1024)
        in_flight = []
        scheduler.add_busy(lambda: bool(in_flight))
        with use_scheduler(scheduler):
            fence = new_fence()
            with pytest.raises(KernelError) as exc:
                await fence.wait()
            assert exc.value.errno == errno.EDEADLK
            assert 1024 <= machine.cycle <= 1024 + 2 * scheduler.quantum

            # Work in flight, completing (by interrupt) long after the idle limit.
            in_flight.append(fence)

            async def complete():
                in_flight.clear()
                machine.irq_lines.discard("dma0")
                fence.signal()
            scheduler.request_irq("dma0", complete)
            start = machine.cycle
            original_tick = machine.tick

            async def tick(n=1):
                await original_tick(n)
                if machine.cycle >= start + 5000:
                    machine.irq_lines.add("dma0")
            machine.tick = tick
            assert await fence.wait() == 0
            assert machine.cycle >= start + 5000
    run(main())
