"""``sync_file``: a fence as a file descriptor (``drivers/dma-buf/sync_file.c``)."""

import errno

from ..errors import KernelError
from .fence import DmaFence
from .fence_unwrap import dma_fence_unwrap, dma_fence_unwrap_merge
from .fs import O_CLOEXEC, O_RDONLY, POLLIN, File, FileOperations
from .ioctl import SYNC_IOC_FILE_INFO, SYNC_IOC_MERGE, SyncFenceInfo

__all__ = ["SyncFile", "sync_file_create", "sync_file_get_fence"]


class _SyncFileOps(FileOperations):
    def release(self, file):
        file.private_data.fence.put()

    def poll(self, file, events):
        return POLLIN & events if file.private_data.fence.is_signaled() else 0

    async def ioctl(self, file, cmd, arg, task):
        sync_file = file.private_data
        if cmd == SYNC_IOC_MERGE:
            return sync_file.merge(arg, task)
        if cmd == SYNC_IOC_FILE_INFO:
            return sync_file.fill_info(arg)
        raise KernelError(errno.ENOTTY, f"inappropriate ioctl {cmd:#x} for a sync_file")


_sync_file_fops = _SyncFileOps()


class SyncFile:
    """A sync_file: holds one fence reference."""

    def __init__(self, fence, name=""):
        self.fence = fence
        self.user_name = name
        self.file = File(_sync_file_fops, self, O_RDONLY, "sync_file")

    def get_name(self):
        """``sync_file_get_name()``: the user name, else driver-timeline-seqno."""
        if self.user_name:
            return self.user_name
        f = self.fence
        return f"{f.driver_name}-{f.timeline_name}-{f.context}-{f.seqno}"

    def merge(self, data, task):
        """``SYNC_IOC_MERGE``: a new sync_file (``O_CLOEXEC``) signaling when both did."""
        other = sync_file_get_fence(task, data.fd2)
        if other is None:
            raise KernelError(errno.ENOENT, f"fd2 {data.fd2} is not a sync_file")
        try:
            merged = dma_fence_unwrap_merge(self.fence, other)
        finally:
            other.put()
        result = SyncFile(merged, data.name[:31])
        data.fence = task.fd_install(result.file, O_CLOEXEC)
        return 0

    def fill_info(self, info):
        """``SYNC_IOC_FILE_INFO``: flags and pad must be zero."""
        if info.flags or info.pad:
            raise KernelError(errno.EINVAL, "sync_file_info flags and pad must be zero")
        leaves = list(dma_fence_unwrap(self.fence))
        info.name = self.get_name()
        info.status = self.fence.get_status()
        info.num_fences = len(leaves)
        info.fences = [SyncFenceInfo(f.timeline_name, f.driver_name, f.get_status(), 0,
                                     f.timestamp or 0) for f in leaves]
        return 0


def sync_file_create(fence):
    """A new sync_file holding a new reference to ``fence`` (``sync_file_create()``)."""
    if not isinstance(fence, DmaFence):
        raise KernelError(errno.EINVAL, f"fence must be a DmaFence, not {fence!r}")
    return SyncFile(fence.get())


def sync_file_get_fence(task, fd):
    """A new reference to the fence behind sync_file descriptor ``fd``, or ``None`` when
    ``fd`` is not one (``sync_file_get_fence()``)."""
    try:
        file = task.fget(fd)
    except KernelError:
        return None
    try:
        if not isinstance(file.private_data, SyncFile):
            return None
        return file.private_data.fence.get()
    finally:
        file.put()
