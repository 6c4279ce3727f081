"""Files, file descriptors and processes: the part of the VFS dma-buf and sync_file use.

A :class:`File` is reference counted (``f_count``) and released through its
:class:`FileOperations` when the last reference goes. Each :class:`Process` has its own
descriptor table with close-on-exec flags and ``RLIMIT_NOFILE``; descriptors are duplicated,
closed, inherited across ``exec`` unless ``O_CLOEXEC``, and passed between processes as
``SCM_RIGHTS`` does.
"""

import errno
import itertools

from ..errors import KernelBug, KernelError
from ..mm.page_alloc import PAGE_SHIFT, PAGE_SIZE
from .sched import current_scheduler

__all__ = [
    "O_RDONLY", "O_WRONLY", "O_RDWR", "O_ACCMODE", "O_NONBLOCK", "O_CLOEXEC",
    "FD_CLOEXEC", "F_GETFD", "F_SETFD", "SEEK_SET", "SEEK_CUR", "SEEK_END",
    "POLLIN", "POLLOUT", "POLLERR", "PROT_READ", "PROT_WRITE", "MAP_SHARED", "MAP_PRIVATE",
    "FileOperations", "File", "Vma", "Process",
]

O_RDONLY, O_WRONLY, O_RDWR, O_ACCMODE = 0, 1, 2, 3
O_NONBLOCK = 0o4000
O_CLOEXEC = 0o2000000
FD_CLOEXEC = 1
F_GETFD, F_SETFD = 1, 2
SEEK_SET, SEEK_CUR, SEEK_END = 0, 1, 2
POLLIN, POLLOUT, POLLERR = 0x1, 0x4, 0x8
PROT_READ, PROT_WRITE = 0x1, 0x2
MAP_SHARED, MAP_PRIVATE = 0x1, 0x2
TASK_SIZE = 1 << 48
_MMAP_BASE = 0x7f00_0000_0000

_inode_numbers = itertools.count(1)


class FileOperations:
    """What a kind of file does (``struct file_operations``); missing operations give the
    errno the VFS gives."""

    def release(self, file):
        pass

    def check_release(self, file):
        """Raise if dropping the last reference now would hit a ``BUG_ON`` in
        :meth:`release`; called before the count drops, so a refused put changes nothing
        and the file can still be released correctly later."""

    def llseek(self, file, offset, whence):
        raise KernelError(errno.ESPIPE, "file is not seekable")

    def poll(self, file, events):
        return events & (POLLIN | POLLOUT)

    async def ioctl(self, file, cmd, arg, task):
        raise KernelError(errno.ENOTTY, f"inappropriate ioctl {cmd:#x} for this file")

    def mmap(self, file, vma):
        raise KernelError(errno.ENODEV, "file does not support mmap")

    def show_fdinfo(self, file):
        return ""


class File:
    """An open file (``struct file``).

    Attributes
    ----------
    f_count : int
        References: descriptors in any process, plus kernel references.
    private_data : object
        The object behind the file (a dma-buf, a sync_file).
    """

    def __init__(self, f_op, private_data, flags, name):
        self.f_op = f_op
        self.private_data = private_data
        self.f_flags = flags & ~O_CLOEXEC
        self.f_pos = 0
        self.f_count = 1
        self.name = name
        self.ino = next(_inode_numbers)

    def __repr__(self):
        return f"<File {self.name} count={self.f_count}>"

    @property
    def readable(self):
        return (self.f_flags & O_ACCMODE) in (O_RDONLY, O_RDWR)

    @property
    def writable(self):
        return (self.f_flags & O_ACCMODE) in (O_WRONLY, O_RDWR)

    def get(self):
        """``get_file()``."""
        if self.f_count <= 0:
            raise KernelBug(f"get_file on released {self!r}")
        self.f_count += 1
        return self

    def put(self):
        """``fput()``: the last reference releases the file."""
        if self.f_count <= 0:
            raise KernelBug(f"fput underflow on {self!r}")
        if self.f_count == 1:
            self.f_op.check_release(self)
        self.f_count -= 1
        if self.f_count == 0:
            self.f_op.release(self)


class Vma:
    """A user mapping of a file (``struct vm_area_struct``); the file's ``mmap`` fills
    ``pages`` (``remap_pfn_range``) and may make it uncached."""

    def __init__(self, file, start, length, prot, flags, pgoff):
        self.file = file
        self.start = start
        self.end = start + length
        self.prot = prot
        self.flags = flags
        self.vm_pgoff = pgoff
        self.pages = []
        self.cached = True

    @property
    def npages(self):
        return (self.end - self.start) >> PAGE_SHIFT


class Process:
    """A process: a descriptor table and user mappings.

    Parameters
    ----------
    name : str
    kmem : KernelMemory or None
        For the process's loads and stores through its mappings.
    nofile : int
        ``RLIMIT_NOFILE``.
    """

    _pids = itertools.count(100)

    def __init__(self, name, *, kmem=None, nofile=1024):
        self.name = name
        self.pid = next(self._pids)
        self.kmem = kmem
        self.nofile = nofile
        self._fds = {}        # fd -> [File, cloexec]
        self.vmas = []
        self._next_map = _MMAP_BASE

    def __repr__(self):
        return f"<Process {self.name} pid={self.pid}>"

    # Descriptor table.

    def _unused_fd(self, lowest=0):
        fd = lowest
        while fd in self._fds:
            fd += 1
        if fd >= self.nofile:
            raise KernelError(errno.EMFILE, f"{self.name}: too many open files "
                                            f"(RLIMIT_NOFILE {self.nofile})")
        return fd

    def fd_install(self, file, flags=0):
        """Give ``file`` (consuming one reference) the lowest free descriptor
        (``get_unused_fd_flags()`` + ``fd_install()``)."""
        fd = self._unused_fd()
        self._fds[fd] = [file, bool(flags & O_CLOEXEC)]
        return fd

    def fget(self, fd):
        """The file behind ``fd`` with a new reference (``fget()``); ``EBADF`` if none."""
        return self._lookup(fd).get()

    def _lookup(self, fd):
        entry = self._fds.get(fd) if isinstance(fd, int) else None
        if entry is None:
            raise KernelError(errno.EBADF, f"{self.name}: bad file descriptor {fd!r}")
        return entry[0]

    def close(self, fd):
        """``close()``."""
        file = self._lookup(fd)
        file.put()          # a refused last put leaves the descriptor open
        del self._fds[fd]

    def dup(self, fd):
        """``dup()``: the copy does not have close-on-exec."""
        file = self._lookup(fd)
        new = self._unused_fd()
        self._fds[new] = [file.get(), False]
        return new

    def dup3(self, oldfd, newfd, flags=0):
        """``dup3()``: ``EINVAL`` for equal descriptors or flags other than
        ``O_CLOEXEC``; an open ``newfd`` is closed first."""
        if flags & ~O_CLOEXEC:
            raise KernelError(errno.EINVAL, f"dup3 flags {flags:#o}: only O_CLOEXEC allowed")
        if oldfd == newfd:
            raise KernelError(errno.EINVAL, "dup3 with oldfd == newfd")
        file = self._lookup(oldfd)
        if not isinstance(newfd, int) or not 0 <= newfd < self.nofile:
            raise KernelError(errno.EBADF, f"dup3 target {newfd!r} outside 0..{self.nofile - 1}")
        if newfd in self._fds:
            self.close(newfd)
        self._fds[newfd] = [file.get(), bool(flags & O_CLOEXEC)]
        return newfd

    def fcntl(self, fd, cmd, arg=0):
        """``F_GETFD`` / ``F_SETFD`` (the close-on-exec flag)."""
        entry = self._fds.get(fd)
        if entry is None:
            raise KernelError(errno.EBADF, f"{self.name}: bad file descriptor {fd!r}")
        if cmd == F_GETFD:
            return FD_CLOEXEC if entry[1] else 0
        if cmd == F_SETFD:
            entry[1] = bool(arg & FD_CLOEXEC)
            return 0
        raise KernelError(errno.EINVAL, f"fcntl command {cmd!r} not supported")

    def cloexec(self, fd):
        return bool(self.fcntl(fd, F_GETFD) & FD_CLOEXEC)

    def fds(self):
        return sorted(self._fds)

    def fork(self, name):
        """A child with copies of every descriptor (each a new file reference)."""
        child = Process(name, kmem=self.kmem, nofile=self.nofile)
        for fd, (file, cloexec) in self._fds.items():
            child._fds[fd] = [file.get(), cloexec]
        return child

    def exec(self):
        """``execve()``: close every close-on-exec descriptor."""
        for fd in [fd for fd, (_, cloexec) in self._fds.items() if cloexec]:
            self.close(fd)

    def exit(self):
        """Close every descriptor and drop every mapping."""
        for vma in list(self.vmas):
            self.munmap(vma.start, vma.end - vma.start)
        for fd in list(self._fds):
            self.close(fd)

    def send_fd(self, fd, receiver, *, flags=0):
        """Pass ``fd`` to ``receiver`` over a Unix socket (``SCM_RIGHTS``); ``flags`` may
        hold ``O_CLOEXEC`` (``MSG_CMSG_CLOEXEC``). Returns the receiver's descriptor."""
        file = self.fget(fd)
        try:
            return receiver.fd_install(file, flags & O_CLOEXEC)
        except KernelError:
            file.put()
            raise

    # File operations through descriptors.

    def lseek(self, fd, offset, whence):
        file = self._lookup(fd)
        pos = file.f_op.llseek(file, offset, whence)
        file.f_pos = pos
        return pos

    async def ioctl(self, fd, cmd, arg=None):
        """``ioctl()``; the file's handler runs with this process as ``current``."""
        file = self._lookup(fd)
        return await file.f_op.ioctl(file, cmd, arg, self)

    def poll(self, fd, events):
        """Ready events of one descriptor, without sleeping."""
        file = self._lookup(fd)
        return file.f_op.poll(file, events)

    async def poll_wait(self, fd, events, timeout):
        """``poll()`` on one descriptor: sleep up to ``timeout`` ticks until one of
        ``events`` is ready; returns the ready events (0 on timeout)."""
        file = self._lookup(fd)
        await current_scheduler().wait_until(lambda: file.f_op.poll(file, events), timeout)
        return file.f_op.poll(file, events)

    def fdinfo(self, fd):
        """``/proc/<pid>/fdinfo/<fd>``."""
        file = self._lookup(fd)
        flags = file.f_flags | (O_CLOEXEC if self._fds[fd][1] else 0)
        return (f"pos:\t{file.f_pos}\nflags:\t0{flags:o}\nmnt_id:\t0\nino:\t{file.ino}\n"
                + file.f_op.show_fdinfo(file))

    # Memory mappings.

    def mmap(self, length, prot, flags, fd, offset=0):
        """``mmap()`` of a file: returns the user address."""
        if not isinstance(length, int) or length <= 0:
            raise KernelError(errno.EINVAL, f"mmap length {length!r} must be positive")
        if not isinstance(offset, int) or not -(1 << 63) <= offset < 1 << 63:
            raise KernelError(errno.EINVAL, f"mmap offset {offset!r} is not an off_t")
        if offset % PAGE_SIZE:
            raise KernelError(errno.EINVAL, f"mmap offset {offset:#x} is not page aligned")
        # off_t to the unsigned page offset the kernel works with: a negative offset is a
        # huge one, which no file of a sane size covers.
        pgoff = (offset & ((1 << 64) - 1)) >> PAGE_SHIFT
        if not flags & (MAP_SHARED | MAP_PRIVATE):
            raise KernelError(errno.EINVAL, "mmap needs MAP_SHARED or MAP_PRIVATE")
        file = self._lookup(fd)
        if prot & PROT_READ and not file.readable:
            raise KernelError(errno.EACCES, "mmap PROT_READ of a file not opened for reading")
        if flags & MAP_SHARED and prot & PROT_WRITE and not file.writable:
            raise KernelError(errno.EACCES, "shared writable mmap of a file not opened for "
                                            "writing")
        length = (length + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1)
        if length >= TASK_SIZE:
            raise KernelError(errno.ENOMEM, f"mmap length {length:#x} exceeds the address "
                                            f"space")
        if pgoff + (length >> PAGE_SHIFT) >= 1 << 64:
            raise KernelError(errno.EOVERFLOW, f"mmap offset {offset:#x} + length "
                                               f"{length:#x} overflows")
        vma = Vma(file, self._next_map, length, prot, flags, pgoff)
        file.f_op.mmap(file, vma)
        file.get()
        self._next_map += length + PAGE_SIZE
        self.vmas.append(vma)
        return vma.start

    def munmap(self, addr, length):
        vma = next((v for v in self.vmas if v.start == addr), None)
        if vma is None or length != vma.end - vma.start:
            raise KernelError(errno.EINVAL, f"munmap({addr:#x}, {length:#x}) does not match "
                                            f"a whole mapping")
        vma.file.put()      # a refused last put leaves the mapping in place
        self.vmas.remove(vma)

    def _translate(self, addr, size, write):
        runs = []
        while size > 0:
            vma = next((v for v in self.vmas if v.start <= addr < v.end), None)
            needed = PROT_WRITE if write else PROT_READ
            if vma is None or not vma.prot & needed:
                raise KernelError(errno.EFAULT, f"{self.name}: segmentation fault at "
                                                f"{addr:#x}")
            index, offset = divmod(addr - vma.start, PAGE_SIZE)
            length = min(size, PAGE_SIZE - offset)
            runs.append((vma.pages[index].phys + offset, length, vma.cached))
            addr += length
            size -= length
        return runs

    async def read(self, addr, size):
        """User load of ``size`` bytes at ``addr``."""
        data = bytearray()
        for phys, length, cached in self._translate(addr, size, write=False):
            data += await self.kmem.machine.load(phys, length, cacheable=cached)
        return bytes(data)

    async def write(self, addr, data):
        """User store of ``data`` at ``addr``."""
        data = memoryview(bytes(data))
        for phys, length, cached in self._translate(addr, len(data), write=True):
            await self.kmem.machine.store(phys, data[:length], cacheable=cached)
            data = data[length:]
