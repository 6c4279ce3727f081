"""Heap registry and the allocation interface of ``/dev/dma_heap/<name>``
(``drivers/dma-buf/dma-heap.c``), plus a heap query in the manner of ION's."""

import errno
from dataclasses import dataclass

from ..dmabuf.dma_buf import dma_buf_fd
from ..dmabuf.fs import O_ACCMODE, O_CLOEXEC
from ..dmabuf.ioctl import IOWR
from ..errors import KernelError
from ..mm.page_alloc import page_align

__all__ = ["DMA_HEAP_VALID_FD_FLAGS", "DMA_HEAP_VALID_HEAP_FLAGS", "DMA_HEAP_IOCTL_ALLOC",
           "DmaHeapAllocationData", "HeapInfo", "DmaHeap", "HeapRegistry"]

DMA_HEAP_VALID_FD_FLAGS = O_CLOEXEC | O_ACCMODE
DMA_HEAP_VALID_HEAP_FLAGS = 0
DMA_HEAP_IOCTL_ALLOC = IOWR("H", 0x0, 24)


@dataclass
class DmaHeapAllocationData:
    """``struct dma_heap_allocation_data``; ``fd`` must be 0 and is filled in."""
    len: int
    fd_flags: int
    heap_flags: int = 0
    fd: int = 0


@dataclass(frozen=True)
class HeapInfo:
    """One heap in a query: its name, kind and memory."""
    name: str
    type: str
    total_bytes: int
    free_bytes: int


class DmaHeap:
    """A heap. Subclasses implement :meth:`allocate` (returning a dma-buf with one
    reference) and the accounting properties."""

    type = "?"

    def __init__(self, name):
        if not isinstance(name, str) or not name:
            raise ValueError(f"heap name must be a non-empty string, not {name!r}")
        self.name = name

    async def allocate(self, len, fd_flags, heap_flags):
        raise NotImplementedError

    @property
    def total_bytes(self):
        raise NotImplementedError

    @property
    def free_bytes(self):
        raise NotImplementedError


class HeapRegistry:
    """The registered heaps (``dma_heap_add()``), reached by name as the
    ``/dev/dma_heap`` nodes are."""

    def __init__(self):
        self._heaps = {}

    def add(self, heap):
        """``dma_heap_add()``: a name may be registered once (``EINVAL``)."""
        if not isinstance(heap, DmaHeap):
            raise TypeError(f"heap must be a DmaHeap, not {heap!r}")
        if heap.name in self._heaps:
            raise KernelError(errno.EINVAL, f"Already registered heap named {heap.name}")
        self._heaps[heap.name] = heap
        return heap

    def find(self, name):
        """The heap behind ``/dev/dma_heap/<name>``; ``ENOENT`` if none."""
        heap = self._heaps.get(name)
        if heap is None:
            raise KernelError(errno.ENOENT, f"no dma-heap named {name!r}")
        return heap

    def query(self):
        """Every heap with its kind and memory, as ``ION_IOC_HEAP_QUERY`` reports."""
        return [HeapInfo(h.name, h.type, h.total_bytes, h.free_bytes)
                for h in self._heaps.values()]

    async def ioctl(self, name, cmd, data, task):
        """``ioctl()`` on ``/dev/dma_heap/<name>``: only ``DMA_HEAP_IOCTL_ALLOC``."""
        heap = self.find(name)
        if cmd != DMA_HEAP_IOCTL_ALLOC:
            raise KernelError(errno.ENOTTY, f"inappropriate ioctl {cmd:#x} for a dma-heap")
        return await self.allocate(heap, data, task)

    async def allocate(self, heap, data, task):
        """``dma_heap_ioctl_allocate()``: validate, allocate, install the fd in ``task``.

        ``EINVAL`` for a non-zero ``fd`` on input, ``fd_flags`` beyond ``O_CLOEXEC`` and
        the access mode, any ``heap_flags``, or a zero length; the heap's own errors
        (``ENOMEM``) pass through.
        """
        if data.fd:
            raise KernelError(errno.EINVAL, f"allocation data fd must be 0 on input, "
                                            f"not {data.fd}")
        if data.fd_flags & ~DMA_HEAP_VALID_FD_FLAGS:
            raise KernelError(errno.EINVAL, f"fd_flags {data.fd_flags:#o} beyond O_CLOEXEC "
                                            f"and the access mode")
        if data.heap_flags & ~DMA_HEAP_VALID_HEAP_FLAGS:
            raise KernelError(errno.EINVAL, f"heap_flags {data.heap_flags:#x}: no heap "
                                            f"flags are defined")
        if not isinstance(data.len, int) or data.len < 0:
            raise KernelError(errno.EINVAL, f"len {data.len!r} must be a size")
        length = page_align(data.len)
        if not length:
            raise KernelError(errno.EINVAL, "len 0: allocations are whole pages, at least one")
        dmabuf = await heap.allocate(length, data.fd_flags, data.heap_flags)
        try:
            data.fd = dma_buf_fd(dmabuf, task, data.fd_flags)
        except KernelError:
            dmabuf.put()
            raise
        return 0
