"""ioctl command numbers and argument structures of ``include/uapi/linux/dma-buf.h``,
``sync_file.h`` and ``dma-heap.h``."""

from dataclasses import dataclass, field

__all__ = [
    "IOC", "IOW", "IOR", "IOWR", "IOC_IN", "IOC_OUT",
    "DMA_BUF_SYNC_READ", "DMA_BUF_SYNC_WRITE", "DMA_BUF_SYNC_RW", "DMA_BUF_SYNC_START",
    "DMA_BUF_SYNC_END", "DMA_BUF_SYNC_VALID_FLAGS_MASK", "DMA_BUF_NAME_LEN",
    "DmaBufSync", "DmaBufExportSyncFile", "DmaBufImportSyncFile",
    "DMA_BUF_IOCTL_SYNC", "DMA_BUF_SET_NAME_A", "DMA_BUF_SET_NAME_B",
    "DMA_BUF_IOCTL_EXPORT_SYNC_FILE", "DMA_BUF_IOCTL_IMPORT_SYNC_FILE",
    "SyncMergeData", "SyncFileInfo", "SyncFenceInfo", "SYNC_IOC_MERGE", "SYNC_IOC_FILE_INFO",
]

_IOC_WRITE, _IOC_READ = 1, 2
#: The direction bits of a command: the caller writes the argument (copied in) / reads it.
IOC_IN, IOC_OUT = _IOC_WRITE << 30, _IOC_READ << 30


def _IOC_NR(cmd):
    return cmd & 0xff


def _IOC_SIZE(cmd):
    return (cmd >> 16) & 0x3fff


def IOC(direction, kind, nr, size):
    return (direction << 30) | (size << 16) | (ord(kind) << 8) | nr


def IOW(kind, nr, size):
    return IOC(_IOC_WRITE, kind, nr, size)


def IOR(kind, nr, size):
    return IOC(_IOC_READ, kind, nr, size)


def IOWR(kind, nr, size):
    return IOC(_IOC_READ | _IOC_WRITE, kind, nr, size)


DMA_BUF_SYNC_READ = 1 << 0
DMA_BUF_SYNC_WRITE = 2 << 0
DMA_BUF_SYNC_RW = DMA_BUF_SYNC_READ | DMA_BUF_SYNC_WRITE
DMA_BUF_SYNC_START = 0 << 2
DMA_BUF_SYNC_END = 1 << 2
DMA_BUF_SYNC_VALID_FLAGS_MASK = DMA_BUF_SYNC_RW | DMA_BUF_SYNC_END
DMA_BUF_NAME_LEN = 32


@dataclass
class DmaBufSync:
    """``struct dma_buf_sync``."""
    flags: int


@dataclass
class DmaBufExportSyncFile:
    """``struct dma_buf_export_sync_file``; ``fd`` is filled in."""
    flags: int
    fd: int = -1


@dataclass
class DmaBufImportSyncFile:
    """``struct dma_buf_import_sync_file``."""
    flags: int
    fd: int


DMA_BUF_IOCTL_SYNC = IOW("b", 0, 8)
DMA_BUF_SET_NAME_A = IOW("b", 1, 4)
DMA_BUF_SET_NAME_B = IOW("b", 1, 8)
DMA_BUF_IOCTL_EXPORT_SYNC_FILE = IOWR("b", 2, 8)
DMA_BUF_IOCTL_IMPORT_SYNC_FILE = IOW("b", 3, 8)


@dataclass
class SyncMergeData:
    """``struct sync_merge_data``; ``fence`` is filled in."""
    name: str
    fd2: int
    fence: int = -1
    flags: int = 0
    pad: int = 0


@dataclass
class SyncFenceInfo:
    """``struct sync_fence_info``."""
    obj_name: str
    driver_name: str
    status: int
    flags: int
    timestamp_ns: int


@dataclass
class SyncFileInfo:
    """``struct sync_file_info``; filled in."""
    flags: int = 0
    pad: int = 0
    name: str = ""
    status: int = 0
    num_fences: int = 0
    fences: list = field(default_factory=list)


SYNC_IOC_MERGE = IOWR(">", 3, 48)
SYNC_IOC_FILE_INFO = IOWR(">", 4, 56)
