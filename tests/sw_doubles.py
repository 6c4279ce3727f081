"""Test doubles for the driver-layer tests that need memory but not the simulated SoC:
a flat-memory :class:`Machine` (no cache, no devices), a cache-maintenance recorder, and the
kernel-side set-ups built on them (:class:`System`, :func:`setup`, :class:`HeapSystem`)."""

import asyncio

from dmabuf_soc.hw.config import SocConfig
from dmabuf_soc.sw.device import Device
from dmabuf_soc.sw.dma_mapping.direction import DMA_BIT_MASK, DmaDirection
from dmabuf_soc.sw.dma_mapping.arch import ArchDmaSync, CacheMaintenance
from dmabuf_soc.sw.dma_mapping.mapping import DmaPlatform
from dmabuf_soc.sw.dma_mapping.swiotlb import Swiotlb
from dmabuf_soc.sw.dmabuf.dma_buf import dma_buf_list
from dmabuf_soc.sw.dmabuf.fs import O_RDWR
from dmabuf_soc.sw.heaps.placement import PlacementHeap
from dmabuf_soc.sw.iommu.arm_smmu import ArmSmmu
from dmabuf_soc.sw.machine.base import BusError, Machine
from dmabuf_soc.sw.mm.cma import Cma, GenPool
from dmabuf_soc.sw.mm.kmem import KernelMemory
from dmabuf_soc.sw.mm.memblock import Memblock
from dmabuf_soc.sw.mm.page_alloc import PageAllocator


class FlatMachine(Machine):
    """DDR banks as byte arrays; every access is recorded as ``(kind, addr, size,
    cacheable)``. Memory starts filled with ``0xa5`` so that zeroing is visible."""

    def __init__(self, config=None):
        self.config = config or SocConfig()
        self.mem = {bank.base: bytearray(b"\xa5" * bank.size) for bank in self.config.banks}
        self.accesses = []
        self._cycle = 0
        self.irq_lines = set()

    def _bank(self, addr, size):
        for base, data in self.mem.items():
            if base <= addr and addr + size <= base + len(data):
                return data, addr - base
        raise BusError(f"no memory at {addr:#x}+{size}")

    @property
    def cycle(self):
        return self._cycle

    async def tick(self, n=1):
        self._cycle += n

    async def mmio_read(self, addr):
        raise BusError("FlatMachine has no registers")

    async def mmio_write(self, addr, value):
        raise BusError("FlatMachine has no registers")

    async def load(self, addr, size, *, cacheable=True):
        self.accesses.append(("load", addr, size, cacheable))
        data, offset = self._bank(addr, size)
        return bytes(data[offset:offset + size])

    async def store(self, addr, data, *, cacheable=True):
        self.accesses.append(("store", addr, len(data), cacheable))
        mem, offset = self._bank(addr, len(data))
        mem[offset:offset + len(data)] = bytes(data)

    async def wait_irq(self, line, *, timeout_cycles):
        raise NotImplementedError

    def irq_pending(self, line):
        return line in self.irq_lines

    async def peek(self, addr, n):
        data, offset = self._bank(addr, n)
        return bytes(data[offset:offset + n])

    async def poke(self, addr, data):
        mem, offset = self._bank(addr, len(data))
        mem[offset:offset + len(data)] = bytes(data)


class RecordingCache(CacheMaintenance):
    """Records ``(op, pa, size)`` of every maintenance operation."""

    def __init__(self):
        self.ops = []

    async def clean(self, pa, size):
        self.ops.append(("clean", pa, size))

    async def invalidate(self, pa, size):
        self.ops.append(("invalidate", pa, size))

    async def clean_invalidate(self, pa, size):
        self.ops.append(("clean_invalidate", pa, size))


class System:
    """Memory, a DMA platform and pools as the kernel would set them up at boot."""

    def __init__(self, *, swiotlb_size=64 * 1024, cma_size=256 * 1024,
                 carveout_size=128 * 1024, strict_debug=True, machine=True):
        from dmabuf_soc.sw.dma_mapping.debug import DmaDebug
        self.machine = FlatMachine() if machine else None
        self.memblock = Memblock(SocConfig().banks)
        self.kmem = KernelMemory(self.machine)
        self.swiotlb = (Swiotlb.reserve(self.memblock, self.kmem, swiotlb_size)
                        if swiotlb_size else None)
        self.cma = Cma.reserve(self.memblock, cma_size, "reserved") if cma_size else None
        self.carveout = None
        if carveout_size:
            base = self.memblock.alloc(carveout_size, "carveout", limit=1 << 32)
            self.carveout = GenPool("carveout", base, carveout_size)
        self.mm = PageAllocator(self.memblock)
        self.cache = RecordingCache()
        self.platform = DmaPlatform(self.mm, self.kmem, arch=ArchDmaSync(self.cache),
                                    swiotlb=self.swiotlb, cma=self.cma,
                                    debug=DmaDebug(strict=strict_debug))


class FlatSmmu:
    """The part of :class:`~dmabuf_soc.sw.iommu.arm_smmu.ArmSmmu` the IOMMU API uses, with
    no hardware behind it: ASIDs, stream table entries and TLB invalidations are recorded,
    so that domains, io-pgtable and dma-iommu run on a :class:`FlatMachine`."""

    def __init__(self, mm):
        self.mm = mm
        self.masters = {}
        self.stes = {}
        self.invalidations = []
        self._asids = set()

    alloc_asid = ArmSmmu.alloc_asid
    free_asid = ArmSmmu.free_asid

    async def write_ste(self, sid, config, *, asid=0, ttb=0, record=True):
        self.stes[sid] = (config, asid, ttb)

    async def tlb_inv_asid(self, asid):
        self.invalidations.append(("asid", asid))

    async def tlb_inv_range(self, asid, iova, size, granule, *, leaf):
        self.invalidations.append(("range", asid, iova, size))


TO, FROM, BIDI = DmaDirection.TO_DEVICE, DmaDirection.FROM_DEVICE, DmaDirection.BIDIRECTIONAL


def run(coro):
    """Run a coroutine to its end."""
    return asyncio.run(coro)


def setup(**kw):
    """A :class:`System` (``kw``: its arguments) and a device ``dev`` on its platform."""
    system = System(**kw)
    dev = system.platform.add_device(Device("dev"))
    return system, dev


FOUR_GIB = 1 << 32
SIZE = 3 * 4096


class HeapSystem:
    """A :class:`System` with a placement heap and three devices: ``wide`` (40-bit mask),
    ``narrow`` (32 bits, no IOMMU) and ``iommu_dev`` (behind the SMMU, not yet added)."""
    def __init__(self):
        self.system = s = System()
        self.heap = PlacementHeap(s.mm, s.kmem)
        self.wide = s.platform.add_device(Device("wide"))
        self.wide.dma_set_mask_and_coherent(DMA_BIT_MASK(40))
        self.narrow = s.platform.add_device(Device("narrow"))      # 32 bits, no IOMMU
        self.iommu_dev = Device("behind-smmu", stream_id=3)

    async def buffer(self):
        return await self.heap.allocate(SIZE, O_RDWR, 0)

    def assert_all_returned(self):
        s = self.system
        assert s.mm.nr_allocated_pages == 0
        assert s.kmem.nr_vmap_areas == 0
        assert s.swiotlb.used == 0
        assert s.platform.debug.entries() == []
        assert dma_buf_list() == []


def highest(buf):
    return max(page.phys + size - 1 for page, size in buf.priv.blocks)
