"""Boot: the kernel-side objects of one simulated SoC, built from its configuration.

:func:`boot` does what early boot and device probing do on a Linux system: it takes the DDR
banks into memblock, reserves the DMA descriptor rings, the swiotlb pool, a CMA area and a
carveout, hands the rest to the page allocator, sets up arm64 cache maintenance over the
:class:`~dmabuf_soc.sw.cpu.cache.DataCache` driver, probes the DMA channels (their drivers,
interrupt handlers on the lines of :data:`~dmabuf_soc.hw.soc.IRQ_LINES`, and a
:class:`~dmabuf_soc.sw.device.Device` each) and registers the dma-heaps. The result,
:class:`SocPlatform`, is what scenarios and tests drive, and what they check for leaks at the
end with :meth:`SocPlatform.check_clean`.
"""

import contextlib

from ..hw.soc import IRQ_LINES
from .cpu.cache import DataCache
from .device import Device
from .dma.channel import DmaChannel
from .dma_mapping.arch import ArchDmaSync
from .dma_mapping.debug import DmaDebug
from .dma_mapping.direction import DMA_BIT_MASK
from .dma_mapping.mapping import DmaPlatform
from .dma_mapping.swiotlb import Swiotlb
from .dmabuf.dma_buf import dma_buf_list
from .dmabuf.sched import MachineScheduler, use_scheduler
from .heaps.carveout import CarveoutHeap
from .heaps.cma import CmaHeap
from .heaps.heap import HeapRegistry
from .heaps.placement import PlacementHeap
from .heaps.system import SystemHeap
from .mm.cma import Cma, GenPool
from .mm.kmem import KernelMemory
from .mm.memblock import Memblock
from .mm.page_alloc import PAGE_SIZE, ZONE_DMA32_LIMIT, PageAllocator
from .regs.bank import RegisterBank

__all__ = ["SocPlatform", "boot"]

KiB = 1024
#: Bytes of one DMA descriptor.
_DESCRIPTOR_BYTES = 64
#: The DMA engine's LEN register is 32 bits wide; segments stay below 2 GiB.
DMA_MAX_SEGMENT = 1 << 31


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
        One device per DMA channel, same names; stream IDs are their channel numbers.
    heaps : HeapRegistry
        ``"system"``, ``"reserved"`` (CMA), ``"carveout"`` and ``"placement"``.
    iommu : None
        The SoC has no SMMU between the DMA channels and memory yet: every device maps
        directly (physical addresses).
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
        self.scheduler = MachineScheduler(machine)
        self.iommu = None
        self.channels = {}
        self.devices = {}
        for name, base in self.rings.items():
            line = IRQ_LINES[name]
            channel = DmaChannel(machine, RegisterBank(machine, name), desc_base=base,
                                 desc_count=ring_descriptors, irq_line=line)
            self.scheduler.request_irq(line, channel.poll)
            self.channels[name] = channel
            device = self.dma.add_device(Device(name, max_segment_size=DMA_MAX_SEGMENT))
            device.dma_set_mask_and_coherent(DMA_BIT_MASK(config.addr_width))
            self.devices[name] = device
        self.heaps = HeapRegistry()
        self.heaps.add(SystemHeap(self.mm, self.kmem))
        self.heaps.add(CmaHeap(self.cma, self.kmem))
        self.heaps.add(CarveoutHeap(self.carveout, self.kmem))
        self.heaps.add(PlacementHeap(self.mm, self.kmem))

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
        if self.mm.nr_allocated_pages:
            owners = sorted({str(owner) for _, _, owner in self.mm.live_allocations()})
            found.append(f"{self.mm.nr_allocated_pages} pages still allocated "
                         f"(owners: {', '.join(owners)})")
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

    def accounting(self):
        """Page and pool counters, for reports."""
        return {
            "pages_allocated": self.mm.nr_allocated_pages,
            "cma_pages_allocated": self.cma.nr_allocated_pages,
            "carveout_bytes_used": self.carveout.size - self.carveout.avail(),
            "swiotlb_slots_used": self.swiotlb.used,
            "vmap_areas": self.kmem.nr_vmap_areas,
            "dma_mappings": len(self.dma.debug.entries()),
        }


def _ring_bytes(descriptors):
    size = descriptors * _DESCRIPTOR_BYTES
    return (size + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1)


def boot(machine, *, swiotlb_size=64 * KiB, cma_size=64 * KiB, carveout_size=32 * KiB,
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
    return SocPlatform(machine, swiotlb_size=swiotlb_size, cma_size=cma_size,
                       carveout_size=carveout_size, ring_descriptors=ring_descriptors,
                       strict_debug=strict_debug, reset_zeroed=reset_zeroed)
