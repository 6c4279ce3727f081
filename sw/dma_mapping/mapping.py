"""The DMA mapping API (``kernel/dma/mapping.c``) and the platform it runs on.

The functions dispatch per device: direct mapping (with swiotlb bouncing) for a device that
reaches memory by physical address, ``Device.dma_ops`` for a device behind the SMMU once the
IOMMU layer installed them. Every call is reported to the DMA-API debug checker.
"""

import errno

from ..errors import KernelBug, KernelError
from ..mm.kmem import KernelMemory
from ..mm.page_alloc import PAGE_SIZE, Page
from .arch import ArchDmaSync
from .debug import DmaDebug
from .direct import DirectOps
from .direction import (DMA_ATTR_SKIP_CPU_SYNC, DMA_MAPPING_ERROR, DmaDirection,
                        check_direction)

__all__ = [
    "DmaPlatform", "get_dma_ops", "dma_supported", "dma_max_mapping_size",
    "dma_get_max_seg_size", "dma_mapping_error",
    "dma_map_page", "dma_unmap_page", "dma_map_single", "dma_unmap_single",
    "dma_map_sg", "dma_unmap_sg", "dma_map_sgtable", "dma_unmap_sgtable",
    "dma_sync_single_for_cpu", "dma_sync_single_for_device",
    "dma_sync_sg_for_cpu", "dma_sync_sg_for_device",
    "dma_sync_sgtable_for_cpu", "dma_sync_sgtable_for_device",
    "dma_alloc_coherent", "dma_free_coherent",
]

_direct_ops = DirectOps()


class DmaPlatform:
    """What the DMA mapping layer of one system needs: memory, caches, pools, debug.

    Parameters
    ----------
    mm : PageAllocator
    kmem : KernelMemory
    arch : ArchDmaSync or None
        Cache maintenance; required as soon as a non-coherent device maps memory.
    swiotlb : Swiotlb or None
        The default bounce pool, given to every device added.
    cma : Cma or None
        The default CMA area for coherent allocations (``dma_contiguous_default_area``).
    debug : DmaDebug or None
        The DMA-API checker; a strict one by default.

    Attributes
    ----------
    warnings : list of str
        ``dev_warn`` output: failed mappings and the like.
    devices : list of Device
    """

    def __init__(self, mm, kmem, *, arch=None, swiotlb=None, cma=None, debug=None):
        if not isinstance(kmem, KernelMemory):
            raise TypeError(f"kmem must be a KernelMemory, not {kmem!r}")
        if arch is not None and not isinstance(arch, ArchDmaSync):
            raise TypeError(f"arch must be an ArchDmaSync or None, not {arch!r}")
        self.mm = mm
        self.kmem = kmem
        self.arch = arch
        self.swiotlb = swiotlb
        self.cma = cma
        self.debug = DmaDebug() if debug is None else debug
        self.warnings = []
        self.devices = []
        self.coherent = {}

    def add_device(self, dev):
        """Register ``dev`` (``device_add()`` + ``of_dma_configure()``)."""
        if dev.platform is not None:
            raise KernelError(errno.EEXIST, f"{dev.name} is already registered")
        if not dev.dma_coherent and self.arch is None:
            raise ValueError(f"{dev.name} is not DMA-coherent but the platform has no cache "
                             f"maintenance (arch=None)")
        dev.platform = self
        dev.dma_io_tlb_mem = self.swiotlb
        self.devices.append(dev)
        return dev

    def remove_device(self, dev):
        """Unregister ``dev``; the debug checker reports mappings it leaked."""
        if dev.platform is not self:
            raise KernelError(errno.ENODEV, f"{dev.name} is not registered on this platform")
        self.devices.remove(dev)
        dev.platform = None
        self.debug.device_removed(dev)

    def warn(self, dev, message):
        self.warnings.append(f"{dev.name}: {message}")


def _platform(dev):
    if dev.platform is None:
        raise KernelError(errno.ENODEV, f"{dev.name} is not registered on a DMA platform")
    return dev.platform


def get_dma_ops(dev):
    """The mapping operations for ``dev``: direct, or the IOMMU's for a device behind the
    SMMU. A device behind the SMMU without a domain cannot do DMA: ``ENODEV``."""
    if dev.behind_iommu:
        if dev.dma_ops is None:
            raise KernelError(errno.ENODEV,
                              f"{dev.name} sits behind the SMMU (stream ID {dev.stream_id}) "
                              f"but no IOMMU domain is attached to it")
        return dev.dma_ops
    return _direct_ops if dev.dma_ops is None else dev.dma_ops


def _require_mask(dev):
    # WARN_ON_ONCE(!dev->dma_mask): the device never declared it can do DMA.
    if dev.dma_mask is None:
        raise KernelError(errno.EIO, f"{dev.name} cannot do DMA (no dma_mask)")


def dma_supported(dev, mask):
    if dev.behind_iommu and dev.dma_ops is None:
        return True   # dma-iommu has no dma_supported hook: any mask is fine.
    return get_dma_ops(dev).dma_supported(dev, mask)


def dma_max_mapping_size(dev):
    return get_dma_ops(dev).max_mapping_size(dev)


def dma_get_max_seg_size(dev):
    return dev.max_segment_size


def dma_mapping_error(dev, dma_addr):
    """``-ENOMEM`` (as a truthy int) when ``dma_addr`` is the mapping-error cookie, else 0.
    Calling it marks the mapping as checked for the debug checker."""
    _platform(dev).debug.mapping_error(dev, dma_addr)
    return -errno.ENOMEM if dma_addr == DMA_MAPPING_ERROR else 0


async def dma_map_page(dev, page, offset, size, direction, attrs=0):
    """Map part of a page for streaming DMA; returns the DMA address or
    :data:`DMA_MAPPING_ERROR` (check with :func:`dma_mapping_error`)."""
    direction = check_direction(direction)
    platform = _platform(dev)
    _require_mask(dev)
    if not isinstance(page, Page) or size <= 0 or offset < 0:
        raise KernelBug(f"dma_map_page({page!r}, offset={offset}, size={size})")
    dma_addr = await get_dma_ops(dev).map_page(dev, page, offset, size, direction, attrs)
    platform.debug.map_single(dev, dma_addr, page.phys + offset, size, direction)
    return dma_addr


async def dma_unmap_page(dev, dma_addr, size, direction, attrs=0):
    """Undo :func:`dma_map_page`; with the strict checker a wrong address, size or
    direction is refused before any cache line is touched."""
    direction = check_direction(direction)
    platform = _platform(dev)
    platform.debug.refuse("unmap_single", dev, dma_addr, size, direction)
    await get_dma_ops(dev).unmap_page(dev, dma_addr, size, direction, attrs)
    platform.debug.unmap_single(dev, dma_addr, size, direction)


async def dma_map_single(dev, cpu_addr, size, direction, attrs=0):
    """Map a linear-map kernel address; vmalloc/vmap addresses are refused as in Linux."""
    kmem = _platform(dev).kmem
    if kmem.is_vmalloc_addr(cpu_addr):
        dev.platform.warn(dev, f"rejecting DMA map of vmalloc memory {cpu_addr:#x}")
        return DMA_MAPPING_ERROR
    phys = kmem.virt_to_phys(cpu_addr)
    return await dma_map_page(dev, Page.from_phys(phys), phys % PAGE_SIZE, size, direction,
                              attrs)


dma_unmap_single = dma_unmap_page


async def _map_sg(dev, sgl, nents, direction, attrs):
    direction = check_direction(direction)
    platform = _platform(dev)
    _require_mask(dev)
    if not 0 < nents <= len(sgl):
        raise KernelBug(f"dma_map_sg with {nents} entries of a {len(sgl)}-entry list")
    ops = get_dma_ops(dev)
    ents = await ops.map_sg(dev, sgl, nents, direction, attrs)
    try:
        platform.debug.refuse("map_sg", dev, sgl, nents, ents, direction)
    except KernelBug:
        # Refused: nothing stays mapped (the cache clean already done is harmless).
        await ops.unmap_sg(dev, sgl, nents, direction, attrs | DMA_ATTR_SKIP_CPU_SYNC)
        raise
    platform.debug.map_sg(dev, sgl, nents, ents, direction)
    return ents


async def dma_map_sg(dev, sgl, nents, direction, attrs=0):
    """Map ``nents`` segments; returns the number of DMA segments, ``0`` on failure."""
    try:
        return await _map_sg(dev, sgl, nents, direction, attrs)
    except KernelError:
        return 0


async def dma_map_sgtable(dev, sgt, direction, attrs=0):
    """Map a whole :class:`SgTable`, setting ``sgt.nents``; raises :class:`KernelError`
    (``EINVAL``, ``ENOMEM``, ``EIO``) on failure."""
    sgt.nents = await _map_sg(dev, sgt.sgl, sgt.orig_nents, direction, attrs)


async def dma_unmap_sg(dev, sgl, nents, direction, attrs=0):
    """Unmap; ``nents`` must be the count given to :func:`dma_map_sg`."""
    direction = check_direction(direction)
    platform = _platform(dev)
    platform.debug.refuse("unmap_sg", dev, sgl, nents, direction)
    await get_dma_ops(dev).unmap_sg(dev, sgl, nents, direction, attrs)
    platform.debug.unmap_sg(dev, sgl, nents, direction)


async def dma_unmap_sgtable(dev, sgt, direction, attrs=0):
    await dma_unmap_sg(dev, sgt.sgl, sgt.orig_nents, direction, attrs)
    sgt.nents = 0


async def _sync(dev, direction, operation, check, *args, to_cpu):
    direction = check_direction(direction)
    platform = _platform(dev)
    platform.debug.refuse(check, dev, *args, direction, to_cpu=to_cpu)
    await getattr(get_dma_ops(dev), operation)(dev, *args, direction)
    getattr(platform.debug, check)(dev, *args, direction, to_cpu=to_cpu)


async def dma_sync_single_for_cpu(dev, dma_addr, size, direction):
    """Give the CPU the memory of a mapping back (invalidate, copy back from swiotlb)."""
    await _sync(dev, direction, "sync_single_for_cpu", "sync_single", dma_addr, size,
                to_cpu=True)


async def dma_sync_single_for_device(dev, dma_addr, size, direction):
    """Hand the memory of a mapping to the device again (clean, copy into swiotlb)."""
    await _sync(dev, direction, "sync_single_for_device", "sync_single", dma_addr, size,
                to_cpu=False)


async def dma_sync_sg_for_cpu(dev, sgl, nents, direction):
    await _sync(dev, direction, "sync_sg_for_cpu", "sync_sg", sgl, nents, to_cpu=True)


async def dma_sync_sg_for_device(dev, sgl, nents, direction):
    await _sync(dev, direction, "sync_sg_for_device", "sync_sg", sgl, nents, to_cpu=False)


async def dma_sync_sgtable_for_cpu(dev, sgt, direction):
    await dma_sync_sg_for_cpu(dev, sgt.sgl, sgt.orig_nents, direction)


async def dma_sync_sgtable_for_device(dev, sgt, direction):
    await dma_sync_sg_for_device(dev, sgt.sgl, sgt.orig_nents, direction)


async def dma_alloc_coherent(dev, size, gfp=0):
    """Allocate a zeroed buffer both the CPU (uncached, for a non-coherent device) and the
    device see; returns ``(cpu_addr, dma_handle)``, or ``None`` when memory is short."""
    platform = _platform(dev)
    if not dev.coherent_dma_mask:
        platform.warn(dev, "dma_alloc_coherent without a coherent DMA mask")
        return None
    if not isinstance(size, int):
        raise KernelError(errno.EINVAL, f"dma_alloc_coherent of {size!r} bytes")
    if not 0 < size <= platform.mm.total_pages * PAGE_SIZE:
        # size_t: a negative size is a huge one. No memory could back it: NULL.
        platform.warn(dev, f"dma_alloc_coherent of {size} bytes: more than all memory")
        return None
    result = await get_dma_ops(dev).alloc(dev, size, gfp, 0)
    if result is not None:
        cpu_addr, dma_handle = result
        platform.debug.alloc_coherent(dev, size, dma_handle, cpu_addr, dma_handle)
    return result


async def dma_free_coherent(dev, size, cpu_addr, dma_handle):
    """Free a buffer from :func:`dma_alloc_coherent`; the checker looks first, as Linux's
    ``debug_dma_free_coherent`` does, so a bad free is reported before anything is freed;
    with the strict checker it is refused and the record stays, so the correct free still
    works afterwards."""
    platform = _platform(dev)
    platform.debug.refuse("free_coherent", dev, size, cpu_addr, dma_handle)
    platform.debug.free_coherent(dev, size, cpu_addr, dma_handle)
    await get_dma_ops(dev).free(dev, size, cpu_addr, dma_handle, 0)
