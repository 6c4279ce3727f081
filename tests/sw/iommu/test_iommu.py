"""The IOMMU layer (sw/iommu) on the SMMU RTL: io-pgtable (Linux's self-test cases), the
IOVA allocator, the IOMMU API, dma-iommu, stale-TLB and isolation cases."""

import errno
import logging
import random

import pytest

from dmabuf_soc.hw.bus.axi import Resp
from dmabuf_soc.hw.config import SocConfig
from dmabuf_soc.hw.smmu.format import EventType
from dmabuf_soc.sim.smmu.harness import SmmuHarness
from dmabuf_soc.sw.device import Device
from dmabuf_soc.sw.dma.testing import ChannelMachine
from dmabuf_soc.sw.dma_mapping.arch import ArchDmaSync, CacheMaintenance
from dmabuf_soc.sw.dma_mapping.direction import DMA_BIT_MASK, DmaDirection
from dmabuf_soc.sw.dma_mapping.mapping import DmaPlatform, dma_map_sgtable, dma_unmap_sgtable
from dmabuf_soc.sw.errors import KernelError
from dmabuf_soc.sw.iommu.arm_smmu import ArmSmmu
from dmabuf_soc.sw.iommu.io_pgtable import (IOMMU_NOEXEC, IOMMU_READ, IOMMU_WRITE, SZ_1G,
                                             SZ_2M, SZ_4K, IommuIotlbGather)
from dmabuf_soc.sw.iommu.iommu import (IOMMU_DOMAIN_DMA, iommu_attach_device,
                                       iommu_detach_device, iommu_domain_alloc,
                                       iommu_domain_free, iommu_iova_to_phys,
                                       iommu_iova_to_phys_hw, iommu_map, iommu_map_sg,
                                       iommu_set_fault_handler, iommu_unmap)
from dmabuf_soc.sw.iommu.iova import IovaDomain
from dmabuf_soc.sw.mm.kmem import KernelMemory
from dmabuf_soc.sw.mm.memblock import Memblock
from dmabuf_soc.sw.mm.page_alloc import GFP_KERNEL, PAGE_SIZE, PageAllocator
from dmabuf_soc.sw.mm.scatterlist import SgTable
from dmabuf_soc.sw.regs import RegisterBank

RW = IOMMU_READ | IOMMU_WRITE


class WriteBackMachine(ChannelMachine):
    """Cacheable stores stay in a CPU-side write-back buffer until cleaned: the SMMU's
    walk (which reads memory) sees them only after :meth:`WriteBackCache.clean`."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.dirty = {}

    async def store(self, addr, data, *, cacheable=True):
        if not cacheable:
            return await super().store(addr, data)
        for n, byte in enumerate(bytes(data)):
            self.dirty[addr + n] = byte

    async def load(self, addr, size, *, cacheable=True):
        data = bytearray(await super().load(addr, size))
        if cacheable:
            for n in range(size):
                if addr + n in self.dirty:
                    data[n] = self.dirty[addr + n]
        return bytes(data)


class WriteBackCache(CacheMaintenance):
    def __init__(self, machine):
        self.machine = machine
        self.cleans = 0

    async def clean(self, pa, size):
        self.cleans += 1
        for addr in range(pa, pa + size):
            if addr in self.machine.dirty:
                await self.machine.poke(addr, bytes([self.machine.dirty.pop(addr)]))

    async def invalidate(self, pa, size):
        for addr in range(pa, pa + size):
            self.machine.dirty.pop(addr, None)

    async def clean_invalidate(self, pa, size):
        await self.clean(pa, size)


def run_driver(scenario, *, seed=0, smmu_params=None, **params):
    harness = SmmuHarness(rng=random.Random(seed), **params)
    memory = harness.memory
    result = {}

    async def testbench(ctx):
        async def peek(ctx, addr, n):
            return memory.read(addr, n)

        async def poke(ctx, addr, data):
            memory.write(addr, data)

        machine = WriteBackMachine(ctx, harness.smmu, peek=peek, poke=poke,
                                   clock=lambda: harness.checkers["table"].cycle)
        cache = WriteBackCache(machine)
        mm = PageAllocator(Memblock(SocConfig().banks))
        kmem = KernelMemory(machine)
        smmu = ArmSmmu(machine, RegisterBank(machine, harness.spec), mm, **(smmu_params or {}))
        await smmu.probe()
        env = dict(ctx=ctx, machine=machine, cache=cache, mm=mm, kmem=kmem, smmu=smmu,
                   harness=harness, manager=harness.managers[0])
        result["value"] = await scenario(**env)

    harness.run(testbench)
    harness.assert_clean()
    return result["value"]


async def attached_domain(smmu, kmem, cache, sid=3, type="unmanaged"):
    domain = await iommu_domain_alloc(smmu, type, cache=cache, kmem=kmem)
    dev = Device(f"dev{sid}", stream_id=sid)
    await iommu_attach_device(domain, dev)
    return domain, dev


async def dma_read(ctx, manager, addr, sid, beats=1):
    txn = manager.read(addr, len=beats - 1, sid=sid)
    await manager.wait(ctx, txn)
    return txn


def test_io_pgtable_selftest():
    """Linux's arm_lpae_run_tests: each page size at 1 GiB strides, overlapping map fails,
    iova_to_phys (software and hardware), partial block unmap refused, unmap then remap."""
    async def scenario(smmu, kmem, cache, **_):
        domain, dev = await attached_domain(smmu, kmem, cache)
        pgtbl = domain.pgtbl
        iova = 0
        for size in (SZ_4K, SZ_2M, SZ_1G):
            assert await pgtbl.map_pages(iova, iova, size, 1, RW | IOMMU_NOEXEC) == size
            with pytest.raises(KernelError) as info:
                await pgtbl.map_pages(iova, iova + size, size, 1, IOMMU_READ | IOMMU_NOEXEC)
            assert info.value.errno == errno.EEXIST
            assert await pgtbl.iova_to_phys(iova + 42) == iova + 42
            assert await iommu_iova_to_phys_hw(domain, dev, iova + 42) == iova + 42
            iova += SZ_1G
        gather = IommuIotlbGather()
        assert await pgtbl.unmap_pages(SZ_1G + SZ_4K, SZ_4K, 1, gather) == 0
        iova = 0
        for size in (SZ_4K, SZ_2M, SZ_1G):
            assert await iommu_unmap(domain, iova, size) == size
            assert await pgtbl.iova_to_phys(iova + 42) == 0
            assert await iommu_iova_to_phys_hw(domain, dev, iova + 42) == 0
            await iommu_map(domain, iova, iova, size, IOMMU_WRITE)
            assert await iommu_iova_to_phys_hw(domain, dev, iova + 42) == iova + 42
            iova += SZ_1G
        assert cache.cleans > 0
        events = await smmu.read_events()
        assert [e.type for e in events] == [EventType.TRANSLATION] * 3
        await iommu_detach_device(domain, dev)
        await iommu_domain_free(domain)
    run_driver(scenario)


def test_largest_page_size_and_table_free():
    async def scenario(smmu, kmem, cache, mm, **_):
        domain, dev = await attached_domain(smmu, kmem, cache)
        pages_before = mm.nr_free_pages
        # 2 MiB-aligned IOVA and PA: one block, no level-3 table.
        await iommu_map(domain, 0x4000_0000, 0x4020_0000, SZ_2M + SZ_4K, RW)
        assert domain.pgtbl.table_pages == 3      # L1, L2, and L3 for the tail page
        assert await iommu_iova_to_phys_hw(domain, dev, 0x4000_1008) == 0x4020_1008
        assert await iommu_iova_to_phys_hw(domain, dev, 0x4020_0008) == 0x4040_0008
        # Unmapping part of the block is refused.
        assert await iommu_unmap(domain, 0x4000_1000, SZ_4K) == 0
        # A 2 MiB range of 4 KiB pages: unmapping it frees its table, with a walk flush.
        await iommu_map(domain, 0x8000_0000, 0x1000, 4 * SZ_4K, RW)
        assert await iommu_iova_to_phys_hw(domain, dev, 0x8000_3000) == 0x4000
        tables = domain.pgtbl.table_pages
        assert await iommu_unmap(domain, 0x8000_0000, SZ_2M) == SZ_2M
        assert domain.pgtbl.table_pages == tables - 1
        assert await iommu_iova_to_phys_hw(domain, dev, 0x8000_3000) == 0
        assert await iommu_unmap(domain, 0x4000_0000, SZ_2M + SZ_4K) == SZ_2M + SZ_4K
        await iommu_detach_device(domain, dev)
        await iommu_domain_free(domain)
        assert mm.nr_free_pages == pages_before + 1      # the L1 table, allocated before
    run_driver(scenario)


def test_stale_tlb_and_fault_handler():
    """Unmap (strict TLBI + SYNC), then the device's access faults: SLVERR, an event, and
    the fault handler called with the address and direction."""
    async def scenario(ctx, smmu, kmem, cache, mm, manager, harness, **_):
        domain, dev = await attached_domain(smmu, kmem, cache, sid=5)
        page = mm.alloc_pages(GFP_KERNEL, 0)
        harness.memory.write(page.phys, bytes(range(256)) * 16)
        reported = []

        async def handler(domain, dev, iova, flags, token, event):
            reported.append((dev.name, iova, flags, token, event.type))
            return 0
        iommu_set_fault_handler(domain, handler, token="tok")
        await iommu_map(domain, 0x10_0000, page.phys, SZ_4K, RW)
        txn = await dma_read(ctx, manager, 0x10_0008, 5)
        assert txn.resp == [Resp.OKAY] and txn.data == [int.from_bytes(bytes(range(8, 16)),
                                                                        "little")]
        hits = (await smmu.counters())["hits"]
        txn = await dma_read(ctx, manager, 0x10_0010, 5)        # now from the IOTLB
        assert (await smmu.counters())["hits"] == hits + 1
        assert await iommu_unmap(domain, 0x10_0000, SZ_4K) == SZ_4K
        txn = await dma_read(ctx, manager, 0x10_0010, 5)
        assert txn.resp == [Resp.SLVERR]
        write = manager.write(0x10_0000, [1], sid=5)
        await manager.wait(ctx, write)
        assert write.resp == Resp.SLVERR
        assert harness.memory.read(page.phys, 1) == b"\x00"
        await smmu.handle_events()
        assert reported == [("dev5", 0x10_0010, 0, "tok", EventType.TRANSLATION),
                            ("dev5", 0x10_0000, 1, "tok", EventType.TRANSLATION)]
    run_driver(scenario)


def test_event_queue_overflow_reported_and_acknowledged(caplog):
    """Records lost to a full event queue (3, then an even 2 in a second episode) are
    reported with their number, counted in ``events_lost``, and acknowledged
    (EVTQ_CONS.ovackflg = EVTQ_PROD.ovflg), so that the next episode is seen again."""
    async def scenario(ctx, smmu, kmem, cache, manager, **_):
        domain, dev = await attached_domain(smmu, kmem, cache, sid=5)
        seen = []
        for episode, lost in enumerate((3, 2)):
            for n in range(2 + lost):
                txn = await dma_read(ctx, manager, (episode << 24) + n * SZ_4K, 5)
                assert txn.resp == [Resp.SLVERR]
            events = await smmu.handle_events()
            prod = await smmu.regs.read_fields("EVTQ_PROD")
            cons = await smmu.regs.read_fields("EVTQ_CONS")
            seen.append((len(events), smmu.events_lost, smmu.evtq_overflows, prod["ovflg"],
                         cons["ovackflg"], cons["index"] == prod["index"]))
        assert len(domain.faults) == 4
        return seen
    with caplog.at_level(logging.ERROR, logger="dmabuf_soc.sw.iommu.arm_smmu"):
        seen = run_driver(scenario, smmu_params=dict(evtq_log2size=1))
    assert seen == [(2, 3, 1, 1, 1, True), (2, 5, 2, 0, 0, True)]
    messages = [r.getMessage() for r in caplog.records]
    assert messages == [f"arm-smmu-v3: EVTQ overflow detected -- {lost} event records lost "
                        f"(the 2-entry queue was full)" for lost in (3, 2)]


def test_iova_allocator_linux_behaviour():
    iovad = IovaDomain(4096, 1)
    a = iovad.alloc_iova(4, 0xfffff)
    assert (a.pfn_lo, a.pfn_hi) == (0xffffc, 0xfffff)
    b = iovad.alloc_iova(3, 0xfffff)              # size-aligned: to 4 pages
    assert b.pfn_lo == 0xffff8 and b.pfn_lo % 4 == 0
    c = iovad.alloc_iova(16, 0xffff0)
    assert c.pfn_lo == 0xfffe0
    iovad.free_iova(a.pfn_lo + 2)
    assert iovad.alloc_iova(2, 0xfffff).pfn_lo == 0xffffe
    small = IovaDomain(4096, 1)
    assert small.alloc_iova(1, 3).pfn_lo == 3
    assert small.alloc_iova(2, 3) is None         # [2, 3] is taken, [0, 1] holds pfn 0
    tiny = IovaDomain(4096, 1)
    assert tiny.alloc_iova(1, 0) is None          # pfn 0 is never handed out
    assert tiny.alloc_iova(2, 1) is None
    with pytest.raises(Exception):
        tiny.free_iova(5)


def test_dma_map_sg_one_contiguous_range_and_isolation():
    """dma_map_sgtable of scattered pages on a device behind the SMMU: one DMA segment;
    the device reads the pages through it, and nothing outside its domain."""
    async def scenario(ctx, smmu, kmem, cache, mm, manager, harness, **_):
        platform = DmaPlatform(mm, kmem, arch=ArchDmaSync(cache))
        dev = platform.add_device(Device("gpu", stream_id=7, max_segment_size=1 << 20))
        dev.dma_set_mask(DMA_BIT_MASK(32))
        domain = await iommu_domain_alloc(smmu, IOMMU_DOMAIN_DMA, cache=cache, kmem=kmem)
        await iommu_attach_device(domain, dev)
        rng = random.Random(3)
        pages = [mm.alloc_pages(GFP_KERNEL, 0) for _ in range(12)]
        rng.shuffle(pages)
        for page in pages:
            harness.memory.write(page.phys, rng.randbytes(PAGE_SIZE))
        sgt = SgTable.from_blocks([(page, PAGE_SIZE) for page in pages])
        await dma_map_sgtable(dev, sgt, DmaDirection.TO_DEVICE)
        assert sgt.nents == 1
        iova, length = sgt.dma_segments()[0]
        assert length == 12 * PAGE_SIZE and iova + length - 1 <= DMA_BIT_MASK(32)
        assert iova % (16 * PAGE_SIZE) == 0              # rounded to 16 pages, aligned
        for n, page in enumerate(pages):
            offset = rng.randrange(0, PAGE_SIZE, 8)
            txn = await dma_read(ctx, manager, iova + n * PAGE_SIZE + offset, 7)
            assert txn.data[0] == int.from_bytes(harness.memory.read(page.phys + offset, 8),
                                                 "little")
            assert await iommu_iova_to_phys(domain, iova + n * PAGE_SIZE) == page.phys
        # Isolation: random addresses outside the mapping never reach memory.
        down = harness.checkers["downstream0"]
        seen = len(down.log)
        for _ in range(12):
            addr = rng.randrange(0, 1 << 39, 8)
            if iova <= addr < iova + length:
                continue
            assert (await dma_read(ctx, manager, addr, 7)).resp == [Resp.SLVERR]
        assert len(down.log) == seen
        await dma_unmap_sgtable(dev, sgt, DmaDirection.TO_DEVICE)
        assert domain.iovad.allocations == []
        assert (await dma_read(ctx, manager, iova, 7)).resp == [Resp.SLVERR]
    run_driver(scenario)


def test_invalidation_during_walk_does_not_refill_stale():
    """A TLBI that arrives while a walk is in flight: the walk restarts and the transaction
    (and later ones) use the new descriptor, never the old one."""
    async def scenario(ctx, smmu, kmem, cache, mm, manager, harness, **_):
        domain, dev = await attached_domain(smmu, kmem, cache, sid=2)
        await iommu_map(domain, 0x20_0000, 0x8008_0000, SZ_4K, RW)
        pte_addr = None
        walks = (await smmu.counters())["walks"]
        txn = manager.read(0x20_0000, sid=2)
        # Let the walk start, then remap the page behind its back and invalidate.
        await ctx.tick().repeat(12)
        gather = IommuIotlbGather()
        await domain.pgtbl.unmap_pages(0x20_0000, SZ_4K, 1, gather)
        await domain.pgtbl.map_pages(0x20_0000, 0x8009_0000, SZ_4K, 1, RW)
        await domain.flush_ops.iotlb_sync(gather)
        await manager.wait(ctx, txn)
        again = await dma_read(ctx, manager, 0x20_0000, 2)
        addrs = [f["addr"] for _, ch, f in harness.checkers["downstream0"].log if ch == "ar"]
        assert addrs == [0x8009_0000, 0x8009_0000]
        assert (await smmu.counters())["walks"] >= walks + 2
    run_driver(scenario, read_latency=40)


def test_api_errors():
    async def scenario(smmu, kmem, cache, **_):
        domain, dev = await attached_domain(smmu, kmem, cache)
        for call, code in ((iommu_map(domain, 0x1001, 0, SZ_4K, RW), errno.EINVAL),
                           (iommu_map(domain, 1 << 39, 0, SZ_4K, RW), errno.EFAULT),
                           (iommu_attach_device(domain, dev), errno.EBUSY),
                           (iommu_attach_device(domain, Device("plain")), errno.ENODEV),
                           (iommu_domain_free(domain), errno.EBUSY)):
            with pytest.raises(KernelError) as info:
                await call
            assert info.value.errno == code
        await iommu_map(domain, 0x20_0000, 0x40_0000, SZ_2M, RW)
        with pytest.raises(KernelError) as info:
            await iommu_map(domain, 0x20_1000, 0x1000, SZ_4K, RW)
        assert info.value.errno == errno.EEXIST
    run_driver(scenario)
