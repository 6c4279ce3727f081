"""Boot: the kernel-side objects of one simulated SoC, built from its configuration.

:func:`boot` does what early boot and device probing do on a Linux system: it takes the DDR
banks into memblock, reserves the DMA descriptor rings, the swiotlb pool, a CMA area and a
carveout, hands the rest to the page allocator, sets up arm64 cache maintenance over the
:class:`~dmabuf_soc.sw.cpu.cache.DataCache` driver, probes the DMA channels (their drivers,
interrupt handlers on the lines of :data:`~dmabuf_soc.hw.soc.IRQ_LINES`, and a
:class:`~dmabuf_soc.sw.device.Device` each), probes the SMMU in front of them and registers
the dma-heaps. The result, :class:`SocPlatform`, is what scenarios and tests drive, and what
they check for leaks at the end with :meth:`SocPlatform.check_clean`.

Every DMA channel sits behind the SMMU, with its channel number as stream ID. At boot each
stream is in bypass (an identity default domain, as with ``iommu.passthrough=1``): the
device maps memory directly by physical address, and its :attr:`Device.stream_id` is
``None``, which is what the DMA mapping layer reads as "not translated".
:meth:`SocPlatform.attach_iommu` moves a device into a DMA domain of its own (stream ID set,
``dma-iommu`` operations, a scattered buffer maps as one contiguous IOVA range);
:meth:`SocPlatform.detach_iommu` puts it back in bypass. The channel's descriptor ring,
reserved at boot and known to the engine by its physical address, stays reachable in the
domain as a reserved direct region (``IOMMU_RESV_DIRECT``): identity-mapped, and its IOVA
range reserved so that no mapping is placed over it.
"""

import contextlib
import errno

from ...hw.smmu.format import StreamConfig
from ...hw.soc import IRQ_LINES
from ..cpu.cache import DataCache
from ..device import Device
from ..dma.channel import DmaChannel
from ..dma_mapping.arch import ArchDmaSync
from ..dma_mapping.debug import DmaDebug
from ..dma_mapping.direction import DMA_BIT_MASK
from ..dma_mapping.mapping import DmaPlatform
from ..dma_mapping.swiotlb import Swiotlb
from ..dmabuf.dma_buf import dma_buf_list
from ..dmabuf.sched import MachineScheduler, use_scheduler
from ..errors import KernelError
from ..heaps.carveout import CarveoutHeap
from ..heaps.cma import CmaHeap
from ..heaps.heap import HeapRegistry
from ..heaps.placement import PlacementHeap
from ..heaps.system import SystemHeap
from ..iommu.arm_smmu import ArmSmmu
from ..iommu.io_pgtable import IOMMU_READ, IOMMU_WRITE
from ..iommu.iommu import (IOMMU_DOMAIN_DMA, iommu_attach_device, iommu_detach_device,
                           iommu_domain_alloc, iommu_domain_free, iommu_map)
from ..iommu.iova import IovaDomain
from ..mm.cma import Cma, GenPool
from ..mm.kmem import KernelMemory
from ..mm.memblock import Memblock
from ..mm.page_alloc import PAGE_SIZE, ZONE_DMA32_LIMIT, PageAllocator
from ..regs.bank import RegisterBank

__all__ = ["SocPlatform", "boot"]

KiB = 1024
#: Bytes of one DMA descriptor.
_DESCRIPTOR_BYTES = 64
#: The DMA engine's LEN register is 32 bits wide; segments stay below 2 GiB.
DMA_MAX_SEGMENT = 1 << 31
#: Owner of the SMMU driver's stream table and queue pages, which live as long as the SoC.
_SMMU_OWNER = "arm-smmu-v3"

#: Cycles of complete hardware idleness (no DMA in flight, no interrupt pending) after which
#: an unbounded wait of the driver is reported as a deadlock (``EDEADLK``).
DEADLOCK_CYCLES = 16384


class SocPlatform:
    """Everything :func:`boot` set up for one machine.

    Attributes
    ----------
    machine : Machine
    memblock : Memblock
    mm : PageAllocator
    kmem : KernelMemory
    cache : DataCache
        The data cache's driver (maintenance and event counters).
    arch : ArchDmaSync
    swiotlb : Swiotlb
    cma : Cma
        The default CMA area (``"reserved"``), also behind the ``"reserved"`` heap.
    carveout : GenPool
    dma : DmaPlatform
        The DMA mapping layer (devices, debug checker, warnings).
    scheduler : MachineScheduler
        Sleeps in machine cycles and runs the interrupt handlers.
    channels : dict of str to DmaChannel
        The DMA channels' drivers, ``"dma0"`` and ``"dma1"``.
    devices : dict of str to Device
        One device per DMA channel, same names.
    stream_ids : dict of str to int
        The SMMU stream ID of each device: its channel number.
    heaps : HeapRegistry
        ``"system"``, ``"reserved"`` (CMA), ``"carveout"`` and ``"placement"``.
    iommu : ArmSmmu
        The SMMU's driver, probed by :func:`boot` (translation on, every stream in bypass);
        its event interrupt reports faults to the domain of the faulting stream.
    """

    def __init__(self, machine, *, swiotlb_size, cma_size, carveout_size, ring_descriptors,
                 strict_debug, reset_zeroed):
        config = machine.config
        self.machine = machine
        self.memblock = Memblock(config.banks)
        self.kmem = KernelMemory(machine)
        self.rings = {name: self.memblock.alloc(_ring_bytes(ring_descriptors), f"{name}-ring",
                                                limit=ZONE_DMA32_LIMIT)
                      for name in ("dma0", "dma1")}
        self.swiotlb = Swiotlb.reserve(self.memblock, self.kmem, swiotlb_size,
                                       limit=ZONE_DMA32_LIMIT)
        self.cma = Cma.reserve(self.memblock, cma_size, "reserved", limit=ZONE_DMA32_LIMIT)
        carveout_base = self.memblock.alloc(carveout_size, "carveout", limit=ZONE_DMA32_LIMIT)
        self.carveout = GenPool("carveout", carveout_base, carveout_size)
        self.mm = PageAllocator(self.memblock, reset_zeroed=reset_zeroed)
        self.cache = DataCache(machine)
        self.arch = ArchDmaSync(self.cache)
        self.dma = DmaPlatform(self.mm, self.kmem, arch=self.arch, swiotlb=self.swiotlb,
                               cma=self.cma, debug=DmaDebug(strict=strict_debug))
        self.scheduler = MachineScheduler(machine, deadlock_cycles=DEADLOCK_CYCLES)
        self.iommu = ArmSmmu(machine, RegisterBank(machine, "smmu"), self.mm,
                             strtab_log2size=1, cmdq_log2size=4, evtq_log2size=5)
        self.stream_ids = {}
        self.channels = {}
        self.devices = {}
        for name, base in self.rings.items():
            line = IRQ_LINES[name]
            channel = DmaChannel(machine, RegisterBank(machine, name), desc_base=base,
                                 desc_count=ring_descriptors, irq_line=line)
            self.scheduler.request_irq(line, channel.poll)
            self.scheduler.add_busy(channel.busy)
            self.channels[name] = channel
            device = self.dma.add_device(Device(name, max_segment_size=DMA_MAX_SEGMENT))
            device.dma_set_mask_and_coherent(DMA_BIT_MASK(config.addr_width))
            self.devices[name] = device
            self.stream_ids[name] = int(name[len("dma"):])
        self.heaps = HeapRegistry()
        self.heaps.add(SystemHeap(self.mm, self.kmem))
        self.heaps.add(CmaHeap(self.cma, self.kmem))
        self.heaps.add(CarveoutHeap(self.carveout, self.kmem))
        self.heaps.add(PlacementHeap(self.mm, self.kmem))

    async def _probe_iommu(self):
        """``arm_smmu_device_probe()``, then every stream into bypass (identity domains)."""
        await self.iommu.probe()
        for sid in self.stream_ids.values():
            await self.iommu.write_ste(sid, StreamConfig.BYPASS)
        self.scheduler.request_irq(IRQ_LINES["smmu"], self.iommu.handle_events)

    async def attach_iommu(self, device):
        """Put ``device`` behind the SMMU in a new DMA domain (``iommu_setup_dma_ops()``
        with a ``IOMMU_DOMAIN_DMA`` default domain): its stream translates through the
        domain's page tables and its mappings go through ``dma-iommu``. Returns the domain.

        Raises ``ENODEV`` for a device that is not one of the SoC's DMA channels, ``EBUSY``
        if it is already attached; nothing is left behind on failure.
        """
        if self.devices.get(getattr(device, "name", None)) is not device:
            raise KernelError(errno.ENODEV, f"{device!r} is not a DMA channel of this SoC")
        if device.iommu_domain is not None:
            raise KernelError(errno.EBUSY, f"{device.name} is already attached to "
                                           f"{device.iommu_domain}")
        live = self.dma.debug.entries(device)
        if live:
            raise KernelError(errno.EBUSY, f"{device.name} has {len(live)} live direct "
                                           f"mappings; unmap them before attaching")
        domain = await iommu_domain_alloc(self.iommu, IOMMU_DOMAIN_DMA, cache=self.cache,
                                          kmem=self.kmem)
        ring, ring_size = self._ring_region(device)
        try:
            # iommu_create_device_direct_mappings(), before the stream starts translating.
            await iommu_map(domain, ring, ring, ring_size, IOMMU_READ | IOMMU_WRITE)
            domain.iovad = IovaDomain(PAGE_SIZE, 1)
            domain.iovad.reserve_iova(ring // PAGE_SIZE, (ring + ring_size) // PAGE_SIZE - 1)
            device.stream_id = self.stream_ids[device.name]
            await iommu_attach_device(domain, device)
        except Exception:
            device.stream_id = None
            await iommu_domain_free(domain)
            raise
        return domain

    def _ring_region(self, device):
        """The reserved direct region of ``device``: its channel's descriptor ring."""
        channel = self.channels[device.name]
        return channel.desc_base, _ring_bytes(channel.desc_count)

    async def detach_iommu(self, device):
        """Take ``device`` out of its DMA domain (``EINVAL`` if it has none; ``EBUSY`` while
        it has live mappings), free the domain and put its stream back in bypass."""
        domain = device.iommu_domain
        if domain is None or device.stream_id is None:
            raise KernelError(errno.EINVAL, f"{device!r} is not attached to an IOMMU domain")
        ring, _ = self._ring_region(device)
        mapped = [iova for iova in domain.iovad.allocations if iova.pfn_lo != ring // PAGE_SIZE]
        if mapped:
            raise KernelError(errno.EBUSY, f"{device.name}: {len(mapped)} IOVA ranges are "
                                           f"still mapped")
        await iommu_detach_device(domain, device, bypass=True)
        device.stream_id = None
        # The ring's direct mapping goes with the tables, and the domain's TLB entries with
        # its ASID.
        domain.iovad.free_iova(ring // PAGE_SIZE)
        await iommu_domain_free(domain)

    @contextlib.contextmanager
    def running(self):
        """Inside the block, waits (fences, reservation locks) sleep in machine cycles and
        serve the DMA interrupts."""
        with use_scheduler(self.scheduler):
            yield self

    def leaks(self):
        """What is still allocated, mapped or referenced, as a list of sentences (empty
        when everything came back)."""
        found = []
        if self.nr_allocated_pages:
            owners = sorted({str(owner) for _, _, owner in self.mm.live_allocations()
                             if owner != _SMMU_OWNER})
            found.append(f"{self.nr_allocated_pages} pages still allocated "
                         f"(owners: {', '.join(owners)})")
        attached = [name for name, dev in self.devices.items() if dev.iommu_domain is not None]
        if attached:
            found.append(f"devices still attached to IOMMU domains: {', '.join(attached)}")
        if self.cma.nr_allocated_pages:
            found.append(f"{self.cma.nr_allocated_pages} CMA pages still allocated")
        if self.carveout.avail() != self.carveout.size:
            found.append(f"{self.carveout.size - self.carveout.avail()} carveout bytes in use")
        if self.swiotlb.used:
            found.append(f"{self.swiotlb.used} swiotlb slots in use")
        if self.kmem.nr_vmap_areas:
            found.append(f"{self.kmem.nr_vmap_areas} vmap areas still mapped")
        if self.dma.coherent:
            found.append(f"{len(self.dma.coherent)} coherent allocations not freed")
        if self.dma.debug.entries():
            found.append(f"{len(self.dma.debug.entries())} DMA mappings not unmapped")
        mine = [buf for buf in dma_buf_list() if getattr(buf.priv, "kmem", None) is self.kmem]
        if mine:
            found.append(f"dma-bufs not released: {mine}")
        return found

    def check_clean(self):
        """Raise :class:`AssertionError` listing every leak (see :meth:`leaks`)."""
        found = self.leaks()
        if found:
            raise AssertionError("Resources leaked: " + "; ".join(found))

    @property
    def nr_allocated_pages(self):
        """Pages allocated since boot: all but the SMMU driver's stream table and queues."""
        driver = sum(1 << order for _, order, owner in self.mm.live_allocations()
                     if owner == _SMMU_OWNER)
        return self.mm.nr_allocated_pages - driver

    def accounting(self):
        """Page and pool counters, for reports."""
        return {
            "pages_allocated": self.nr_allocated_pages,
            "cma_pages_allocated": self.cma.nr_allocated_pages,
            "carveout_bytes_used": self.carveout.size - self.carveout.avail(),
            "swiotlb_slots_used": self.swiotlb.used,
            "vmap_areas": self.kmem.nr_vmap_areas,
            "dma_mappings": len(self.dma.debug.entries()),
        }


def _ring_bytes(descriptors):
    size = descriptors * _DESCRIPTOR_BYTES
    return (size + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1)


async def boot(machine, *, swiotlb_size=64 * KiB, cma_size=64 * KiB, carveout_size=32 * KiB,
         ring_descriptors=64, strict_debug=True, reset_zeroed=True):
    """Build the kernel-side objects of ``machine``'s SoC (see the module docstring).

    Parameters
    ----------
    machine : Machine
    swiotlb_size, cma_size, carveout_size : int
        Bytes reserved below 4 GiB for the bounce pool, the default CMA area and the
        carveout heap.
    ring_descriptors : int
        Descriptors in each DMA channel's ring (a transfer of ``n`` segments needs ``n``).
    strict_debug : bool
        Whether the DMA-API checker raises on its first finding.
    reset_zeroed : bool
        The DDR is as reset left it (zero, nothing cached): heaps may skip zeroing pages
        never handed out since boot (:meth:`PageAllocator.is_fresh`). Pass ``False`` when
        memory was written before boot, or to measure zeroing every page.
    """
    for name, value in (("swiotlb_size", swiotlb_size), ("cma_size", cma_size),
                        ("carveout_size", carveout_size)):
        if not isinstance(value, int) or value <= 0 or value % PAGE_SIZE:
            raise ValueError(f"{name} must be a positive number of whole pages, not {value!r}")
    if not isinstance(ring_descriptors, int) or ring_descriptors < 2:
        raise ValueError(f"ring_descriptors must be an integer of at least 2, "
                         f"not {ring_descriptors!r}")
    platform = SocPlatform(machine, swiotlb_size=swiotlb_size, cma_size=cma_size,
                           carveout_size=carveout_size, ring_descriptors=ring_descriptors,
                           strict_debug=strict_debug, reset_zeroed=reset_zeroed)
    await platform._probe_iommu()
    return platform
