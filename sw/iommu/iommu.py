"""The IOMMU API (``drivers/iommu/iommu.c``) on the SMMU: domains, attach, map and unmap.

A domain is one address space (an io-pgtable with its own ASID). Attaching a device points
its stream table entry at the domain's tables (STE + ``CFGI_STE`` + ``SYNC``); detaching
makes the stream abort. Unmap is strict: the gathered leaves are invalidated and synced
before :func:`iommu_unmap` returns, so the pages can be reused at once.
"""

import errno

from ...hw.smmu.format import IA_BITS, GRANULE, StreamConfig
from ..errors import KernelBug, KernelError
from .arm_smmu import SmmuFlushOps
from .io_pgtable import ArmLpaeS1Pgtable, IommuIotlbGather

__all__ = [
    "IOMMU_DOMAIN_UNMANAGED", "IOMMU_DOMAIN_DMA", "IOMMU_FAULT_READ", "IOMMU_FAULT_WRITE",
    "IommuDomain", "iommu_domain_alloc", "iommu_domain_free", "iommu_attach_device",
    "iommu_detach_device", "iommu_pgsize", "iommu_map", "iommu_unmap", "iommu_map_sg",
    "iommu_iova_to_phys", "iommu_iova_to_phys_hw", "iommu_set_fault_handler",
]

IOMMU_DOMAIN_UNMANAGED = "unmanaged"
IOMMU_DOMAIN_DMA = "dma"
IOMMU_FAULT_READ = 0
IOMMU_FAULT_WRITE = 1


class IommuDomain:
    """``struct iommu_domain`` of the SMMU.

    Attributes
    ----------
    type : str
    asid : int
    pgtbl : ArmLpaeS1Pgtable
    aperture_start, aperture_end : int
        The IOVA range the hardware translates (``geometry``); enforced.
    pgsize_bitmap : int
    devices : list of Device
    iovad : IovaDomain or None
        For a DMA domain, set up by :mod:`.dma_iommu`.
    faults : list
        ``(device, event)`` of every fault reported, whether a handler took it or not.
    """

    def __init__(self, smmu, type, asid, pgtbl):
        self.smmu = smmu
        self.type = type
        self.asid = asid
        self.pgtbl = pgtbl
        self.flush_ops = pgtbl.flush_ops
        self.aperture_start = 0
        self.aperture_end = (1 << IA_BITS) - 1
        self.pgsize_bitmap = pgtbl.pgsize_bitmap
        self.devices = []
        self.iovad = None
        self.handler = None
        self.handler_token = None
        self.faults = []

    def __repr__(self):
        return f"<IommuDomain {self.type} asid={self.asid}>"

    async def report_fault(self, dev, event):
        """``report_iommu_fault()``: call the handler with the event record's address and
        direction; returns its result, or ``-ENOSYS`` without a handler."""
        self.faults.append((dev, event))
        if self.handler is None:
            return -errno.ENOSYS
        flags = IOMMU_FAULT_WRITE if event.write else IOMMU_FAULT_READ
        return await self.handler(self, dev, event.addr, flags, self.handler_token, event)


async def iommu_domain_alloc(smmu, type=IOMMU_DOMAIN_UNMANAGED, *, cache=None, kmem=None):
    """A new domain with an empty address space on ``smmu``.

    Parameters
    ----------
    cache : CacheMaintenance or None
        Cleans the page tables for the non-coherent walk (``None``: coherent walk).
    kmem : KernelMemory
        CPU access to the page tables.
    """
    if type not in (IOMMU_DOMAIN_UNMANAGED, IOMMU_DOMAIN_DMA):
        raise KernelError(errno.EINVAL, f"iommu: unsupported domain type {type!r}")
    if kmem is None:
        raise TypeError("iommu_domain_alloc needs the kernel memory (kmem) for page tables")
    asid = smmu.alloc_asid()
    pgtbl = ArmLpaeS1Pgtable(smmu.mm, kmem, cache=cache, flush_ops=SmmuFlushOps(smmu, asid),
                             owner=f"io-pgtable asid {asid}")
    try:
        await pgtbl.alloc()
    except KernelError:
        smmu.free_asid(asid)
        raise
    return IommuDomain(smmu, type, asid, pgtbl)


async def iommu_domain_free(domain):
    """Free the tables and the ASID; the domain must have no device attached (``EBUSY``)."""
    if domain.devices:
        raise KernelError(errno.EBUSY, f"iommu: {domain} still has devices attached: "
                                       f"{domain.devices}")
    await domain.pgtbl.free()
    await domain.smmu.tlb_inv_asid(domain.asid)
    domain.smmu.free_asid(domain.asid)


async def iommu_attach_device(domain, dev):
    """Translate ``dev``'s stream through ``domain``: STE, ``CFGI_STE``, ``SYNC``.

    Raises ``ENODEV`` for a device not behind the SMMU and ``EBUSY`` for one already
    attached to a domain.
    """
    if not dev.behind_iommu:
        raise KernelError(errno.ENODEV, f"{dev.name} is not behind the SMMU")
    if dev.iommu_domain is not None:
        raise KernelError(errno.EBUSY, f"{dev.name} is already attached to "
                                       f"{dev.iommu_domain}")
    smmu = domain.smmu
    await smmu.write_ste(dev.stream_id, StreamConfig.TRANSLATE, asid=domain.asid,
                         ttb=domain.pgtbl.ttbr)
    smmu.masters[dev.stream_id] = (dev, domain)
    domain.devices.append(dev)
    dev.iommu_domain = domain
    if domain.type == IOMMU_DOMAIN_DMA:
        from .dma_iommu import IommuDmaOps
        dev.dma_ops = IommuDmaOps(domain)


async def iommu_detach_device(domain, dev, *, bypass=False):
    """Make ``dev``'s stream abort again (the blocking domain), or with ``bypass`` pass
    through untranslated (the identity domain)."""
    if dev.iommu_domain is not domain:
        raise KernelError(errno.EINVAL, f"{dev.name} is not attached to {domain}")
    await domain.smmu.write_ste(dev.stream_id,
                                StreamConfig.BYPASS if bypass else StreamConfig.ABORT)
    domain.smmu.masters.pop(dev.stream_id, None)
    domain.devices.remove(dev)
    dev.iommu_domain = None
    dev.dma_ops = None


def iommu_pgsize(domain, iova, paddr, size):
    """``(pgsize, count)``: the largest page size that fits the alignment of ``iova`` and
    ``paddr`` and the size, and how many of them to map before a larger size could take
    over (``iommu_pgsize()``)."""
    addr_merge = iova | paddr
    pgsizes = domain.pgsize_bitmap & ((1 << size.bit_length()) - 1)
    if addr_merge:
        pgsizes &= (addr_merge & -addr_merge) * 2 - 1
    if not pgsizes:
        raise KernelBug(f"iommu_pgsize: no page size fits {iova:#x} -> {paddr:#x} + {size:#x}")
    pgsize_idx = pgsizes.bit_length() - 1
    pgsize = 1 << pgsize_idx
    larger = domain.pgsize_bitmap & ~((1 << (pgsize_idx + 1)) - 1)
    if larger:
        pgsize_next = larger & -larger
        if not (iova ^ paddr) & (pgsize_next - 1):
            offset = pgsize_next - (addr_merge & (pgsize_next - 1))
            if offset + pgsize_next <= size:
                size = offset
    return pgsize, size >> pgsize_idx


def _check_range(domain, iova, size, what):
    min_pagesz = domain.pgsize_bitmap & -domain.pgsize_bitmap
    if not isinstance(size, int) or size <= 0 or (iova | size) & (min_pagesz - 1):
        raise KernelError(errno.EINVAL, f"iommu: {what} of {iova:#x}+{size!r} is not aligned "
                                        f"to the minimum page size {min_pagesz:#x}")
    if iova < domain.aperture_start or iova + size - 1 > domain.aperture_end:
        raise KernelError(errno.EFAULT, f"iommu: {what} of {iova:#x}+{size:#x} is outside "
                                        f"the aperture")


async def iommu_map(domain, iova, paddr, size, prot):
    """Map ``size`` bytes at ``iova`` to ``paddr`` with the largest page sizes that fit;
    on failure what was mapped is unmapped again and the error raised (``EINVAL``,
    ``EEXIST``, ``ENOMEM``, ``EFAULT``)."""
    _check_range(domain, iova, size, "map")
    if paddr & (GRANULE - 1):
        raise KernelError(errno.EINVAL, f"iommu: physical address {paddr:#x} is not aligned")
    mapped = 0
    try:
        while mapped < size:
            pgsize, count = iommu_pgsize(domain, iova + mapped, paddr + mapped, size - mapped)
            done = await domain.pgtbl.map_pages(iova + mapped, paddr + mapped, pgsize, count,
                                                prot)
            mapped += done
            if done < pgsize * count:
                raise KernelError(errno.ENOMEM, "iommu: short map")
    except KernelError:
        if mapped:
            await iommu_unmap(domain, iova, mapped)
        raise


async def iommu_unmap(domain, iova, size):
    """Unmap up to ``size`` bytes at ``iova``; returns the bytes unmapped (stopping at the
    first hole or partial block). Strict: the IOTLB is invalidated and synced before
    returning."""
    _check_range(domain, iova, size, "unmap")
    gather = IommuIotlbGather()
    unmapped = 0
    while unmapped < size:
        pgsize, count = iommu_pgsize(domain, iova + unmapped, iova + unmapped, size - unmapped)
        done = await domain.pgtbl.unmap_pages(iova + unmapped, pgsize, count, gather)
        if not done:
            break
        unmapped += done
    await domain.flush_ops.iotlb_sync(gather)
    return unmapped


async def iommu_map_sg(domain, iova, sgl, nents, prot):
    """Map the segments one after the other from ``iova``; returns the bytes mapped. Each
    segment must start and end on page boundaries except at the ends of the range."""
    mapped = 0
    try:
        for sg in sgl[:nents]:
            start = sg.phys & ~(GRANULE - 1)
            length = ((sg.phys + sg.length + GRANULE - 1) & ~(GRANULE - 1)) - start
            await iommu_map(domain, iova + mapped, start, length, prot)
            mapped += length
    except KernelError:
        if mapped:
            await iommu_unmap(domain, iova, mapped)
        raise
    return mapped


async def iommu_iova_to_phys(domain, iova):
    """The physical address ``iova`` maps to, or 0: a software walk of the tables."""
    return await domain.pgtbl.iova_to_phys(iova)


async def iommu_iova_to_phys_hw(domain, dev, iova):
    """The same through the SMMU's ATOS registers, for a device attached to ``domain``;
    0 if the translation faults."""
    if dev.iommu_domain is not domain:
        raise KernelError(errno.EINVAL, f"{dev.name} is not attached to {domain}")
    try:
        return await domain.smmu.atos(dev.stream_id, iova)
    except KernelError as error:
        if error.errno == errno.EFAULT:
            return 0
        raise


def iommu_set_fault_handler(domain, handler, token=None):
    """``async handler(domain, dev, iova, flags, token, event)`` is called for each fault
    record of a device attached to ``domain``."""
    domain.handler = handler
    domain.handler_token = token
