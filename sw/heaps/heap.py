"""Heap registry and the allocation interface of ``/dev/dma_heap/<name>``
(``drivers/dma-buf/dma-heap.c``), plus a heap query in the manner of ION's."""

import errno
import struct
from dataclasses import dataclass

from ..dmabuf.dma_buf import dma_buf_fd
from ..dmabuf.fs import O_ACCMODE, O_CLOEXEC
from ..dmabuf.ioctl import IOC_IN, IOC_OUT, IOWR, _IOC_NR, _IOC_SIZE
from ..errors import KernelError
from ..mm.page_alloc import page_align

__all__ = ["DMA_HEAP_VALID_FD_FLAGS", "DMA_HEAP_VALID_HEAP_FLAGS", "DMA_HEAP_IOCTL_ALLOC",
           "DmaHeapAllocationData", "HeapInfo", "DmaHeap", "HeapRegistry"]

DMA_HEAP_VALID_FD_FLAGS = O_CLOEXEC | O_ACCMODE
DMA_HEAP_VALID_HEAP_FLAGS = 0
DMA_HEAP_IOCTL_ALLOC = IOWR("H", 0x0, 24)
_DMA_HEAP_IOCTL_CMDS = (DMA_HEAP_IOCTL_ALLOC,)
#: ``struct dma_heap_allocation_data``: __u64 len; __u32 fd; __u32 fd_flags; __u64 heap_flags.
_ALLOC_FORMAT = "<QIIQ"
_ALLOC_FIELDS = (("len", 0, 8), ("fd", 8, 4), ("fd_flags", 12, 4), ("heap_flags", 16, 8))


def _user_bytes(data):
    """The caller's structure as the bytes of ``struct dma_heap_allocation_data``."""
    return struct.pack(_ALLOC_FORMAT, *(getattr(data, name) & ((1 << (8 * size)) - 1)
                                        for name, _, size in _ALLOC_FIELDS))


def _copy_from_user(data, size):
    """``copy_from_user()`` of ``size`` bytes: ``EFAULT`` past the caller's memory."""
    if not size:
        return b""
    if isinstance(data, DmaHeapAllocationData):
        if not all(isinstance(getattr(data, name), int) for name, _, _ in _ALLOC_FIELDS):
            raise KernelError(errno.EFAULT, f"allocation data {data!r} has non-integer fields")
        memory = _user_bytes(data)
    elif isinstance(data, (bytes, bytearray, memoryview)):
        memory = bytes(data)
    else:
        raise KernelError(errno.EFAULT, f"ioctl argument {data!r} is not user memory")
    if len(memory) < size:
        raise KernelError(errno.EFAULT, f"ioctl argument of {len(memory)} bytes, the command "
                                        f"copies {size}")
    return memory[:size]


def _copy_to_user(data, kdata):
    """``copy_to_user()``: the fields (or bytes) that ``kdata`` covers."""
    if not kdata:
        return
    if isinstance(data, DmaHeapAllocationData):
        full = bytearray(_user_bytes(data))
        full[:len(kdata)] = kdata
        for name, offset, size in _ALLOC_FIELDS:
            if offset + size <= len(kdata):
                setattr(data, name, int.from_bytes(full[offset:offset + size], "little"))
    elif isinstance(data, (bytearray, memoryview)) and len(data) >= len(kdata):
        data[:len(kdata)] = kdata
    else:
        raise KernelError(errno.EFAULT, f"ioctl argument {data!r} is not writable user memory")


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
        """``ioctl()`` on ``/dev/dma_heap/<name>`` (``dma_heap_ioctl()``).

        The command is chosen by its number alone: a number past the known commands is
        ``EINVAL``; otherwise the argument is copied in for the size and direction the
        caller's command number gives, the rest of the kernel's structure zeroed (an older,
        shorter ``struct dma_heap_allocation_data`` has no ``heap_flags``: they read as 0),
        and copied back out for that size. ``data`` is the caller's memory: a
        :class:`DmaHeapAllocationData` (the full structure) or a writable bytes buffer of at
        least the command's size; ``None`` is a NULL pointer (``EFAULT`` if read).
        """
        heap = self.find(name)
        if not isinstance(cmd, int) or _IOC_NR(cmd) >= len(_DMA_HEAP_IOCTL_CMDS):
            raise KernelError(errno.EINVAL, f"unknown dma-heap ioctl {cmd!r}")
        kcmd = _DMA_HEAP_IOCTL_CMDS[_IOC_NR(cmd)]
        out_size = in_size = _IOC_SIZE(cmd)
        if not cmd & kcmd & IOC_IN:
            in_size = 0
        if not cmd & kcmd & IOC_OUT:
            out_size = 0
        ksize = max(in_size, out_size, _IOC_SIZE(kcmd))
        kdata = bytearray(ksize)
        kdata[:in_size] = _copy_from_user(data, in_size)
        length, fd, fd_flags, heap_flags = struct.unpack_from(_ALLOC_FORMAT, kdata)
        request = DmaHeapAllocationData(length, fd_flags, heap_flags, fd)
        try:
            return await self.allocate(heap, request, task)
        finally:
            struct.pack_into(_ALLOC_FORMAT, kdata, 0, request.len, request.fd,
                             request.fd_flags, request.heap_flags)
            _copy_to_user(data, kdata[:out_size])

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
