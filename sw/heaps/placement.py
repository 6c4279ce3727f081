"""A constraint-driven, dynamic exporter: the backing storage goes where every attached
device can reach it, decided at first use, and moves when a newly attached device cannot.

The policy of the seeds (the "another strategy" of the dma-buf exporter notes):

* allocation is deferred: :meth:`PlacementHeap.allocate` only creates the dma-buf; the pages
  are taken at the first ``map_dma_buf`` or ``pin`` (or first ``begin_cpu_access``) in the
  *intersection of the attached devices' constraints* — here the DMA address limit of every
  attached device that maps directly; a device behind the SMMU reaches any page;
* the exporter is dynamic (it has ``pin`` and ``unpin``): a static importer pins the storage
  while it has it mapped, a dynamic importer pins it only with ``dma_buf_pin``;
* at each map or pin the storage is checked against the device; if it cannot serve it, the
  storage is *migrated* into the current intersection provided nothing pins it: no pinned
  attachment (so no mapping of a static importer), no kernel ``vmap`` and no user ``mmap``
  ever made (a user mapping cannot be revoked here, so it pins the storage for the buffer's
  life). Otherwise the map fails with ``EBUSY``. Mappings of unpinned dynamic importers do
  not stop a move: the move waits for every fence on the buffer (DMA in flight), takes the
  content back from those devices, copies it through the CPU into new pages, publishes the
  move as a ``KERNEL`` fence, and calls ``dma_buf_move_notify``. Their old mappings stay
  valid, on the old pages, which are freed when the last of them is unmapped.

Without storage there is nothing to ``vmap`` or ``mmap`` (``ENOMEM``: the pages, which must be
zeroed through the simulated CPU, are only allocated on the asynchronous paths); begin CPU
access first, or map an attachment.
"""

import errno

from ..dma_mapping.mapping import (dma_map_sgtable, dma_sync_sgtable_for_cpu,
                                   dma_sync_sgtable_for_device, dma_unmap_sgtable)
from ..dmabuf.dma_buf import dma_buf_attachment_is_dynamic, dma_buf_export, dma_buf_move_notify
from ..dmabuf.fence import DmaFence, DmaFenceOps, dma_fence_context_alloc
from ..dmabuf.resv import DmaResvUsage
from ..dmabuf.sched import MAX_SCHEDULE_TIMEOUT
from ..errors import KernelBug, KernelError
from ..mm.page_alloc import GFP_DMA32, GFP_KERNEL, ZONE_DMA32_LIMIT
from ..mm.scatterlist import SgTable
from .buffer import HeapBufferOps
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


class _Storage:
    """Pages holding the content, and how many device mappings use them."""

    def __init__(self, blocks):
        self.blocks = blocks
        self.mappings = 0


class _Mapping:
    def __init__(self, table, direction, storage):
        self.table = table
        self.direction = direction
        self.storage = storage


class _PlacementAttachment:
    """Per-attachment state: the device, its pins and its live mappings."""

    def __init__(self, attach):
        self.dev = attach.dev
        self.dynamic = dma_buf_attachment_is_dynamic(attach)
        self.pins = 0
        self.mappings = []

    @property
    def mapped(self):
        return bool(self.mappings)

    def take(self, table):
        for mapping in self.mappings:
            if mapping.table is table:
                self.mappings.remove(mapping)
                return mapping
        raise KernelBug(f"unmap of a table {self.dev.name} never mapped")


class _MoveFenceOps(DmaFenceOps):
    def get_driver_name(self, fence):
        return "placement"

    def get_timeline_name(self, fence):
        return "move"


_move_fence_ops = _MoveFenceOps()


class PlacementBuffer:
    """The storage of one placement dma-buf.

    Attributes
    ----------
    len : int
    blocks : list of (Page, int) or None
        The current storage, ``None`` until placed.
    retired : list of list of (Page, int)
        Storage left behind by moves and still mapped by a dynamic importer.
    attachments : list
        Per-attachment state (device, pins, mappings).
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
        self.storage = None
        self._retired = []
        self.attachments = []
        self.vmap_cnt = 0
        self.vaddr = None
        self.user_mapped = False
        self.history = []

    @property
    def blocks(self):
        return None if self.storage is None else self.storage.blocks

    @property
    def retired(self):
        return [storage.blocks for storage in self._retired]

    def pages(self):
        return SgTable.from_blocks(self.blocks).pages()

    def limit(self):
        """The intersection of the attached devices' reach."""
        return min((device_dma_limit(a.dev) for a in self.attachments), default=NO_LIMIT)

    def fits(self, limit):
        return all(page.phys + size - 1 <= limit for page, size in self.blocks)

    def pinned_by(self):
        """Why the storage may not move now, or ``None``. A static importer's pin is its
        mapping; mappings of unpinned dynamic importers do not count."""
        reasons = [f"{'pinned' if a.dynamic else 'mapped'} by {a.dev.name}"
                   for a in self.attachments if a.pins]
        if self.vmap_cnt:
            reasons.append("vmapped by the kernel")
        if self.user_mapped:
            reasons.append("mapped into a process")
        return ", ".join(reasons) or None

    def _record(self, event, limit):
        self.history.append({"event": event, "limit": limit,
                             "lowest": min(page.phys for page, _ in self.blocks),
                             "highest": max(page.phys + size - 1 for page, size in self.blocks)})

    async def place(self, limit):
        """Allocate the storage below ``limit`` (zeroed)."""
        self.storage = _Storage(await self.heap.alloc_blocks_below(self.len, limit, zero=True))
        self._record("allocated", limit)

    async def migrate(self, dmabuf, limit):
        """Move the content into new storage below ``limit`` (reservation lock held): wait
        for the fences, take the content back from the devices mapping it, copy it through
        the CPU under a ``KERNEL`` move fence, then tell the dynamic importers."""
        resv = dmabuf.resv
        await resv.wait_timeout(DmaResvUsage.BOOKKEEP, True, MAX_SCHEDULE_TIMEOUT)
        new = await self.heap.alloc_blocks_below(self.len, limit, zero=False)
        self.heap.move_seqno += 1
        fence = DmaFence(_move_fence_ops, self.heap.move_context, self.heap.move_seqno)
        resv.reserve_fences(1)
        resv.add_fence(fence, DmaResvUsage.KERNEL)
        try:
            for a in self.attachments:
                for mapping in a.mappings:
                    if mapping.storage is self.storage:
                        await dma_sync_sgtable_for_cpu(a.dev, mapping.table,
                                                       mapping.direction)
            kmem = self.kmem
            old_va = kmem.vmap(self.pages())
            new_va = kmem.vmap(SgTable.from_blocks(new).pages())
            try:
                await kmem.memcpy(new_va, old_va, self.len)
            finally:
                kmem.vunmap(old_va)
                kmem.vunmap(new_va)
        except BaseException:
            self.heap.free_blocks(new)
            fence.set_error(-errno.EIO)
            raise
        else:
            old, self.storage = self.storage, _Storage(new)
            self._retired.append(old)
            self._record("migrated", limit)
        finally:
            fence.signal()
            fence.put()
        await dma_buf_move_notify(dmabuf)
        self._free_unused()

    def _free_unused(self):
        for storage in [s for s in self._retired if not s.mappings]:
            self._retired.remove(storage)
            self.heap.free_blocks(storage.blocks)

    async def ensure_serves(self, dmabuf, dev):
        """Storage ``dev`` can reach: allocate it, keep it, or migrate it; ``EBUSY`` when it
        must move but is pinned, ``ENOMEM`` when no memory satisfies every device."""
        limit = self.limit()
        if self.storage is None:
            await self.place(limit)
        elif dev is not None and not self.fits(device_dma_limit(dev)):
            reason = self.pinned_by()
            if reason is not None:
                raise KernelError(errno.EBUSY, f"{self.heap.name}: storage at "
                                               f"{self.history[-1]['lowest']:#x} is out of "
                                               f"{dev.name}'s reach (limit {limit:#x}) and "
                                               f"cannot move: {reason}")
            await self.migrate(dmabuf, limit)


class PlacementOps(HeapBufferOps):
    """dma-buf operations over a :class:`PlacementBuffer`."""

    def attach(self, dmabuf, attach):
        device_dma_limit(attach.dev)
        attach.priv = _PlacementAttachment(attach)
        dmabuf.priv.attachments.append(attach.priv)

    async def pin(self, attach):
        await attach.dmabuf.priv.ensure_serves(attach.dmabuf, attach.dev)
        attach.priv.pins += 1

    def unpin(self, attach):
        if attach.priv.pins == 0:
            raise KernelBug(f"unpin of {attach!r}, which is not pinned")
        attach.priv.pins -= 1

    async def map_dma_buf(self, attach, direction):
        buffer, a = attach.dmabuf.priv, attach.priv
        await buffer.ensure_serves(attach.dmabuf, a.dev)
        table = SgTable.from_blocks(buffer.blocks)
        await dma_map_sgtable(a.dev, table, direction)
        buffer.storage.mappings += 1
        a.mappings.append(_Mapping(table, direction, buffer.storage))
        return table

    async def unmap_dma_buf(self, attach, sgt, direction):
        buffer, a = attach.dmabuf.priv, attach.priv
        mapping = a.take(sgt)
        await dma_unmap_sgtable(a.dev, sgt, direction)
        mapping.storage.mappings -= 1
        buffer._free_unused()

    async def begin_cpu_access(self, dmabuf, direction):
        resv = dmabuf.resv
        if dmabuf.priv.storage is None:
            take_lock = not resv.held_by_current
            if take_lock:
                await resv.lock()
            try:
                await dmabuf.priv.ensure_serves(dmabuf, None)
            finally:
                if take_lock:
                    resv.unlock()
        await self._sync_current(dmabuf, direction, dma_sync_sgtable_for_cpu)

    async def end_cpu_access(self, dmabuf, direction):
        await self._sync_current(dmabuf, direction, dma_sync_sgtable_for_device)

    @staticmethod
    async def _sync_current(dmabuf, direction, sync):
        # Mappings of retired storage do not see what the CPU writes now.
        buffer = dmabuf.priv
        for a in buffer.attachments:
            for mapping in a.mappings:
                if mapping.storage is buffer.storage:
                    await sync(a.dev, mapping.table, direction)

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
        if buffer.storage is not None:
            buffer.heap.free_blocks(buffer.storage.blocks)
        for storage in buffer._retired:
            buffer.heap.free_blocks(storage.blocks)


_placement_ops = PlacementOps()


class PlacementHeap(SystemHeap):
    """Heap ``"placement"``: scattered pages as the system heap takes them, placed by the
    attached devices (see the module docstring)."""

    type = "placement"

    def __init__(self, mm, kmem, name="placement"):
        super().__init__(mm, kmem, name)
        self.move_context = dma_fence_context_alloc()
        self.move_seqno = 0

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
