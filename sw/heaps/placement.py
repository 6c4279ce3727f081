"""A constraint-driven exporter: the backing storage goes where every attached device can
reach it, decided at first use, and moves when a newly attached device cannot.

The policy of the seeds (the "another strategy" of the dma-buf exporter notes):

* allocation is deferred: :meth:`PlacementHeap.allocate` only creates the dma-buf; the pages
  are taken at the first ``map_dma_buf`` (or first ``begin_cpu_access``) in the
  *intersection of the attached devices' constraints* — here the DMA address limit of every
  attached device that maps directly; a device behind the SMMU reaches any page;
* at each map the storage is checked against the mapping device; if it cannot serve it, the
  storage is *migrated* into the current intersection (new pages, a CPU copy of the content,
  the old pages freed), provided nothing pins it: no live device mapping, no kernel ``vmap``
  and no user ``mmap`` ever made (a user mapping cannot be revoked here, so it pins the
  storage for the buffer's life). Otherwise the map fails with ``EBUSY``.

Without storage there is nothing to ``vmap`` or ``mmap`` (``ENOMEM``: the pages, which must be
zeroed through the simulated CPU, are only allocated on the asynchronous paths); begin CPU
access first, or map an attachment.
"""

import errno

from ..dma_mapping.mapping import dma_map_sgtable
from ..dmabuf.dma_buf import dma_buf_export
from ..errors import KernelError
from ..mm.page_alloc import GFP_DMA32, GFP_KERNEL, ZONE_DMA32_LIMIT
from ..mm.scatterlist import SgTable
from .buffer import HeapBufferOps, _HeapAttachment
from .system import SystemHeap

__all__ = ["PlacementHeap", "PlacementBuffer", "device_dma_limit"]

NO_LIMIT = (1 << 64) - 1


def device_dma_limit(dev):
    """Highest physical address ``dev`` reaches: its DMA limit when it maps directly, no
    limit behind the SMMU (the IOMMU maps any page below its IOVA limit)."""
    if dev.behind_iommu:
        return NO_LIMIT
    if dev.dma_limit is None:
        raise KernelError(errno.EINVAL, f"{dev.name} cannot do DMA (no dma_mask)")
    return dev.dma_limit


class PlacementBuffer:
    """The storage of one placement dma-buf.

    Attributes
    ----------
    len : int
    blocks : list of (Page, int) or None
        The storage, ``None`` until placed.
    attachments : list
        Per-attachment state (device, table, mapped).
    history : list of dict
        Each placement: ``{"event": "allocated" | "migrated", "limit": ..., "lowest":
        ..., "highest": ...}``, for reports and tests.
    user_mapped : bool
        A user mapping was made: the storage may no longer move.
    """

    def __init__(self, heap, len):
        self.heap = heap
        self.len = len
        self.kmem = heap.kmem
        self.blocks = None
        self.attachments = []
        self.vmap_cnt = 0
        self.vaddr = None
        self.user_mapped = False
        self.history = []

    def pages(self):
        return SgTable.from_blocks(self.blocks).pages()

    def limit(self):
        """The intersection of the attached devices' reach."""
        return min((device_dma_limit(a.dev) for a in self.attachments), default=NO_LIMIT)

    def fits(self, limit):
        return all(page.phys + size - 1 <= limit for page, size in self.blocks)

    def pinned_by(self):
        """Why the storage may not move now, or ``None``."""
        mapped = [a.dev.name for a in self.attachments if a.mapped]
        if mapped:
            return f"mapped by {', '.join(mapped)}"
        if self.vmap_cnt:
            return "vmapped by the kernel"
        if self.user_mapped:
            return "mapped into a process"
        return None

    def _record(self, event, limit):
        self.history.append({"event": event, "limit": limit,
                             "lowest": min(page.phys for page, _ in self.blocks),
                             "highest": max(page.phys + size - 1 for page, size in self.blocks)})

    async def place(self, limit):
        """Allocate the storage below ``limit`` (zeroed)."""
        self.blocks = await self.heap.alloc_blocks_below(self.len, limit, zero=True)
        self._record("allocated", limit)

    async def migrate(self, limit):
        """Move the content into new storage below ``limit``: allocate, copy through the
        CPU (the caches are consistent: nothing is mapped for a device), free the old."""
        new = await self.heap.alloc_blocks_below(self.len, limit, zero=False)
        kmem = self.kmem
        old_va = kmem.vmap(self.pages())
        new_va = kmem.vmap(SgTable.from_blocks(new).pages())
        try:
            await kmem.memcpy(new_va, old_va, self.len)
        finally:
            kmem.vunmap(old_va)
            kmem.vunmap(new_va)
        self.heap.free_blocks(self.blocks)
        self.blocks = new
        self._record("migrated", limit)

    async def ensure_serves(self, dev):
        """Storage ``dev`` can reach: allocate it, keep it, or migrate it; ``EBUSY`` when it
        must move but is pinned, ``ENOMEM`` when no memory satisfies every device."""
        limit = self.limit()
        if self.blocks is None:
            await self.place(limit)
        elif dev is not None and not self.fits(device_dma_limit(dev)):
            reason = self.pinned_by()
            if reason is not None:
                raise KernelError(errno.EBUSY, f"{self.heap.name}: storage at "
                                               f"{self.history[-1]['lowest']:#x} is out of "
                                               f"{dev.name}'s reach (limit {limit:#x}) and "
                                               f"cannot move: {reason}")
            await self.migrate(limit)


class PlacementOps(HeapBufferOps):
    """dma-buf operations over a :class:`PlacementBuffer`."""

    def attach(self, dmabuf, attach):
        device_dma_limit(attach.dev)
        attach.priv = _HeapAttachment(attach.dev, None)
        dmabuf.priv.attachments.append(attach.priv)

    async def map_dma_buf(self, attach, direction):
        buffer, a = attach.dmabuf.priv, attach.priv
        await buffer.ensure_serves(a.dev)
        a.table = SgTable.from_blocks(buffer.blocks)
        await dma_map_sgtable(a.dev, a.table, direction)
        a.mapped = True
        return a.table

    async def unmap_dma_buf(self, attach, sgt, direction):
        await super().unmap_dma_buf(attach, sgt, direction)
        attach.priv.table = None

    async def begin_cpu_access(self, dmabuf, direction):
        await dmabuf.priv.ensure_serves(None)
        await super().begin_cpu_access(dmabuf, direction)

    def _require_storage(self, dmabuf, what):
        if dmabuf.priv.blocks is None:
            raise KernelError(errno.ENOMEM, f"{dmabuf.exp_name}: no storage to {what} yet; "
                                            f"begin CPU access or map an attachment first")

    def mmap(self, dmabuf, vma):
        self._require_storage(dmabuf, "mmap")
        super().mmap(dmabuf, vma)
        dmabuf.priv.user_mapped = True

    def vmap(self, dmabuf):
        self._require_storage(dmabuf, "vmap")
        return super().vmap(dmabuf)

    def release(self, dmabuf):
        buffer = dmabuf.priv
        if buffer.vmap_cnt:
            buffer.kmem.vunmap(buffer.vaddr)
        if buffer.blocks is not None:
            buffer.heap.free_blocks(buffer.blocks)


_placement_ops = PlacementOps()


class PlacementHeap(SystemHeap):
    """Heap ``"placement"``: scattered pages as the system heap takes them, placed by the
    attached devices (see the module docstring)."""

    type = "placement"

    def __init__(self, mm, kmem, name="placement"):
        super().__init__(mm, kmem, name)

    async def alloc_blocks_below(self, len, limit, *, zero):
        """Scattered blocks whose every byte is at or below ``limit``; ``ENOMEM`` if the
        zones that ``limit`` allows cannot supply them."""
        gfp = GFP_DMA32 if limit < ZONE_DMA32_LIMIT else GFP_KERNEL
        blocks = await self.alloc_blocks(len, gfp, zero=False)
        if not all(page.phys + size - 1 <= limit for page, size in blocks):
            self.free_blocks(blocks)
            raise KernelError(errno.ENOMEM, f"{self.name}: no {len}-byte storage below "
                                            f"{limit:#x}")
        if zero:
            await self.clear_blocks(blocks)
        return blocks

    async def allocate(self, len, fd_flags, heap_flags):
        return dma_buf_export(ops=_placement_ops, size=len, priv=PlacementBuffer(self, len),
                              exp_name=self.name, flags=fd_flags)
