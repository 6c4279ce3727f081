"""The dma-buf core (``drivers/dma-buf/dma-buf.c``).

An exporter wraps its buffer with :func:`dma_buf_export`, giving its :class:`DmaBufOps`; the
buffer becomes a file that processes hold as descriptors and the kernel as references.
Importers attach their device and map the attachment to get an :class:`SgTable` of DMA
addresses; the CPU gets at the memory through ``vmap``, or ``mmap`` for a process, between
begin/end_cpu_access (``DMA_BUF_IOCTL_SYNC`` from userspace).
"""

import contextlib
import errno

from ..dma_mapping.direction import DmaDirection, check_direction
from ..errors import KernelBug, KernelError
from ..mm.page_alloc import PAGE_SHIFT
from ..trace.spans import traced
from .fence import dma_fence_get_stub
from .fence_unwrap import dma_fence_unwrap
from .fs import (O_ACCMODE, O_CLOEXEC, O_RDWR, POLLIN, POLLOUT, SEEK_END, SEEK_SET, File,
                 FileOperations)
from .ioctl import (DMA_BUF_IOCTL_EXPORT_SYNC_FILE, DMA_BUF_IOCTL_IMPORT_SYNC_FILE,
                    DMA_BUF_IOCTL_SYNC, DMA_BUF_NAME_LEN, DMA_BUF_SET_NAME_A,
                    DMA_BUF_SET_NAME_B, DMA_BUF_SYNC_END, DMA_BUF_SYNC_READ, DMA_BUF_SYNC_RW,
                    DMA_BUF_SYNC_VALID_FLAGS_MASK, DMA_BUF_SYNC_WRITE)
from .resv import DmaResv, DmaResvUsage, dma_resv_usage_rw
from .sched import MAX_SCHEDULE_TIMEOUT
from .sync_file import sync_file_create, sync_file_get_fence

__all__ = [
    "DmaBufOps", "DmaBuf", "DmaBufAttachOps", "DmaBufAttachment", "dma_buf_export",
    "dma_buf_fd", "dma_buf_get", "dma_buf_put", "dma_buf_attach", "dma_buf_dynamic_attach",
    "dma_buf_detach", "dma_buf_attachment_is_dynamic", "dma_buf_is_dynamic", "dma_buf_pin",
    "dma_buf_unpin", "dma_buf_move_notify", "dma_buf_map_attachment",
    "dma_buf_unmap_attachment", "dma_buf_begin_cpu_access", "dma_buf_end_cpu_access",
    "dma_buf_vmap", "dma_buf_vunmap", "dma_buf_list",
]


class DmaBufOps:
    """An exporter's operations (``struct dma_buf_ops``).

    ``map_dma_buf``, ``unmap_dma_buf`` and ``release`` are mandatory. An operation left as
    ``None`` is absent, with the behaviour Linux has for a NULL pointer.

    Signatures: ``attach(dmabuf, attach)``, ``detach(dmabuf, attach)``,
    ``async map_dma_buf(attach, direction) -> SgTable``,
    ``async unmap_dma_buf(attach, sgt, direction)``, ``release(dmabuf)``,
    ``async begin_cpu_access(dmabuf, direction)``, ``async end_cpu_access(dmabuf, direction)``,
    ``mmap(dmabuf, vma)``, ``vmap(dmabuf) -> address``, ``vunmap(dmabuf, address)``,
    ``async pin(attach)``, ``unpin(attach)``.

    An exporter with ``pin`` and ``unpin`` is *dynamic*: it may move the storage of a
    buffer, except while an attachment has it pinned, and tells the dynamic importers with
    :func:`dma_buf_move_notify`. ``pin``, ``unpin``, ``map_dma_buf`` and ``unmap_dma_buf``
    run with the reservation lock held.
    """

    #: The core keeps the first mapping of each attachment and hands it out again.
    cache_sgt_mapping = False
    attach = None
    detach = None
    map_dma_buf = None
    unmap_dma_buf = None
    release = None
    begin_cpu_access = None
    end_cpu_access = None
    mmap = None
    vmap = None
    vunmap = None
    pin = None
    unpin = None


_live_buffers = []


def dma_buf_list():
    """Every dma-buf not yet released (``/sys/kernel/debug/dma_buf/bufinfo``)."""
    return list(_live_buffers)


class DmaBuf:
    """A shared buffer (``struct dma_buf``). Created by :func:`dma_buf_export` only.

    Attributes
    ----------
    size : int
    ops : DmaBufOps
    priv : object
        The exporter's buffer object.
    exp_name : str
    name : str or None
        Set with ``DMA_BUF_SET_NAME``.
    file : File
    resv : DmaResv
    attachments : list of DmaBufAttachment
    vmapping_counter : int
    """

    def __init__(self, ops, size, priv, exp_name, flags, resv):
        self.ops = ops
        self.size = size
        self.priv = priv
        self.exp_name = exp_name
        self.name = None
        self.resv = DmaResv() if resv is None else resv
        self._own_resv = resv is None
        self.attachments = []
        self.vmapping_counter = 0
        self.vmap_ptr = None
        self.file = File(_dma_buf_fops, self, flags, "dmabuf")

    def __repr__(self):
        return f"<DmaBuf {self.exp_name} size={self.size:#x} count={self.file.f_count}>"

    def get(self):
        """``get_dma_buf()``."""
        self.file.get()
        return self

    def put(self):
        """``dma_buf_put()``."""
        self.file.put()

    def _check_release(self):
        if self.vmapping_counter:
            raise KernelBug(f"{self!r}: last reference dropped while vmapped "
                            f"{self.vmapping_counter} times (vunmap first; the buffer "
                            f"stays whole)")
        if self.attachments:
            raise KernelBug(f"{self!r}: last reference dropped with "
                            f"{len(self.attachments)} attachment(s) (detach first; the "
                            f"buffer stays whole)")

    def _release(self):
        """Last reference gone (``dma_buf_release()``)."""
        self._check_release()
        self.ops.release(self)
        if self._own_resv:
            self.resv.fini()
        _live_buffers.remove(self)


@traced("dma-buf")
def dma_buf_export(*, ops, size, priv, exp_name, flags=O_RDWR, resv=None):
    """Wrap an exporter's buffer in a dma-buf (``dma_buf_export()``); returns it with one
    reference (the caller's, consumed by :func:`dma_buf_fd` or dropped with
    :func:`dma_buf_put`).

    ``EINVAL`` when ``priv`` is missing, a mandatory operation is missing, ``pin`` and
    ``unpin`` are not both given, or ``cache_sgt_mapping`` is combined with pinning.
    """
    if not isinstance(ops, DmaBufOps):
        raise KernelError(errno.EINVAL, f"ops must be a DmaBufOps, not {ops!r}")
    if priv is None:
        raise KernelError(errno.EINVAL, f"{exp_name}: exporter gave no priv")
    for name in ("map_dma_buf", "unmap_dma_buf", "release"):
        if not callable(getattr(ops, name)):
            raise KernelError(errno.EINVAL, f"{exp_name}: exporter lacks the mandatory "
                                            f"{name} operation")
    if (ops.pin is None) != (ops.unpin is None):
        raise KernelError(errno.EINVAL, f"{exp_name}: pin and unpin come together")
    if ops.cache_sgt_mapping and ops.pin is not None:
        raise KernelError(errno.EINVAL, f"{exp_name}: cache_sgt_mapping is not allowed "
                                        f"for a dynamic exporter")
    if not isinstance(size, int) or size <= 0:
        raise KernelError(errno.EINVAL, f"{exp_name}: size must be positive, not {size!r}")
    dmabuf = DmaBuf(ops, size, priv, exp_name, flags & O_ACCMODE, resv)
    _live_buffers.append(dmabuf)
    return dmabuf


def dma_buf_fd(dmabuf, task, flags=0):
    """Install the caller's reference as a descriptor of ``task`` (``dma_buf_fd()``).
    ``flags`` may carry ``O_CLOEXEC``; ``EMFILE`` when the table is full."""
    if not isinstance(dmabuf, DmaBuf):
        raise KernelError(errno.EINVAL, f"dma_buf_fd of {dmabuf!r}")
    return task.fd_install(dmabuf.file, flags)


def dma_buf_get(task, fd):
    """The dma-buf behind ``fd`` with a new reference (``dma_buf_get()``): ``EBADF`` for a
    bad descriptor, ``EINVAL`` for a file that is not a dma-buf."""
    file = task.fget(fd)
    if not isinstance(file.private_data, DmaBuf):
        file.put()
        raise KernelError(errno.EINVAL, f"fd {fd} is not a dma-buf")
    return file.private_data


@traced("dma-buf")
def dma_buf_put(dmabuf):
    if not isinstance(dmabuf, DmaBuf):
        raise KernelError(errno.EINVAL, f"dma_buf_put of {dmabuf!r}")
    dmabuf.put()


# Attachments.


class DmaBufAttachOps:
    """An importer's operations (``struct dma_buf_attach_ops``); giving them to
    :func:`dma_buf_dynamic_attach` makes the attachment *dynamic*.

    A dynamic importer maps and unmaps with the buffer's reservation lock held, need not
    keep the storage in place while it has a mapping, and instead is told of every move:
    ``async move_notify(attach)`` (mandatory) runs with the lock held when the exporter moves
    the buffer. Mappings made before stay valid until the importer unmaps them, but point at
    the old storage; mappings made after the call point at the new one, and DMA through them
    must wait for the reservation's ``KERNEL`` fences (the move) first.

    Attributes
    ----------
    allow_peer2peer : bool
        The importer can handle peer-to-peer addresses without struct pages.
    """

    allow_peer2peer = False
    move_notify = None


class DmaBufAttachment:
    """A device's attachment (``struct dma_buf_attachment``).

    Attributes
    ----------
    dmabuf : DmaBuf
    dev : Device
    priv : object
        The exporter's per-attachment state.
    importer_ops : DmaBufAttachOps or None
        Set for a dynamic attachment.
    importer_priv : object
        The importer's per-attachment state.
    peer2peer : bool
    sgt, dir :
        The cached mapping, when the exporter asks for caching.
    """

    def __init__(self, dmabuf, dev, importer_ops=None, importer_priv=None):
        self.dmabuf = dmabuf
        self.dev = dev
        self.priv = None
        self.importer_ops = importer_ops
        self.importer_priv = importer_priv
        self.peer2peer = importer_ops is not None and bool(importer_ops.allow_peer2peer)
        self.sgt = None
        self.dir = None

    def __repr__(self):
        kind = "dynamic " if self.importer_ops is not None else ""
        return f"<DmaBufAttachment {kind}{self.dev.name} -> {self.dmabuf.exp_name}>"


def dma_buf_attachment_is_dynamic(attach):
    """Whether the importer can handle moves (``dma_buf_attachment_is_dynamic()``)."""
    return attach.importer_ops is not None


def dma_buf_is_dynamic(dmabuf):
    """Whether the exporter may move the storage, i.e. has ``pin`` and ``unpin``
    (``dma_buf_is_dynamic()``)."""
    return dmabuf.ops.pin is not None


def _pin_on_map(attach):
    """A static importer of a dynamic exporter keeps the storage pinned while mapped
    (``dma_buf_pin_on_map()``, with move notification always enabled)."""
    return dma_buf_is_dynamic(attach.dmabuf) and not dma_buf_attachment_is_dynamic(attach)


def _require_resv_held(dmabuf, what):
    if not dmabuf.resv.held_by_current:
        raise KernelBug(f"{what} on {dmabuf!r} without holding its reservation lock")


@contextlib.asynccontextmanager
async def _resv_locked(attach, what):
    """Hold the reservation lock for ``what``: a dynamic importer must hold it already
    (Linux's rule for every importer); for a static importer that does not, the core takes it
    for the call, as ``dma_buf_map_attachment_unlocked()`` does."""
    resv = attach.dmabuf.resv
    if resv.held_by_current:
        yield
        return
    if dma_buf_attachment_is_dynamic(attach):
        _require_resv_held(attach.dmabuf, what)
    await resv.lock()
    try:
        yield
    finally:
        resv.unlock()


def dma_buf_dynamic_attach(dmabuf, dev, importer_ops, importer_priv=None):
    """Attach ``dev`` to ``dmabuf`` (``dma_buf_dynamic_attach()``); with ``importer_ops``
    the attachment is dynamic. The exporter's ``attach`` may refuse the device with its own
    errno. Does not take a buffer reference. Not to be called with the reservation lock held.

    ``EINVAL`` without a buffer or device, or for importer operations that are not a
    :class:`DmaBufAttachOps` with a ``move_notify``.
    """
    if not isinstance(dmabuf, DmaBuf) or dev is None:
        raise KernelError(errno.EINVAL, f"dma_buf_attach({dmabuf!r}, {dev!r})")
    if importer_ops is not None:
        if not isinstance(importer_ops, DmaBufAttachOps):
            raise KernelError(errno.EINVAL, f"importer_ops must be a DmaBufAttachOps, not "
                                            f"{importer_ops!r}")
        if not callable(importer_ops.move_notify):
            raise KernelError(errno.EINVAL, f"{dev.name}: a dynamic importer needs "
                                            f"move_notify")
    attach = DmaBufAttachment(dmabuf, dev, importer_ops, importer_priv)
    if dmabuf.ops.attach is not None:
        dmabuf.ops.attach(dmabuf, attach)
    dmabuf.attachments.append(attach)
    return attach


@traced("dma-buf")
def dma_buf_attach(dmabuf, dev):
    """Attach ``dev`` statically (``dma_buf_attach()``): the storage stays in place while
    the attachment has a mapping. See :func:`dma_buf_dynamic_attach`."""
    return dma_buf_dynamic_attach(dmabuf, dev, None, None)


@traced("dma-buf")
async def dma_buf_detach(dmabuf, attach):
    """Detach (``dma_buf_detach()``), unmapping a cached mapping first. Takes the
    reservation lock, so the caller must not hold it."""
    if attach is None or attach.dmabuf is not dmabuf or attach not in dmabuf.attachments:
        raise KernelBug(f"dma_buf_detach of {attach!r} from {dmabuf!r}")
    if dmabuf.resv.held_by_current:
        raise KernelBug(f"dma_buf_detach of {attach!r} with the reservation lock held "
                        f"(it takes the lock: deadlock)")
    await dmabuf.resv.lock()
    try:
        if attach.sgt is not None:
            await dmabuf.ops.unmap_dma_buf(attach, attach.sgt, attach.dir)
            attach.sgt = None
        dmabuf.attachments.remove(attach)
    finally:
        dmabuf.resv.unlock()
    if dmabuf.ops.detach is not None:
        dmabuf.ops.detach(dmabuf, attach)


async def dma_buf_pin(attach):
    """Keep the storage where it is until :func:`dma_buf_unpin` (``dma_buf_pin()``); the
    exporter may first move it where the device reaches it, or refuse (``EBUSY`` when
    something else keeps it out of reach). Only for a dynamic attachment, with the
    reservation lock held."""
    if not dma_buf_attachment_is_dynamic(attach):
        raise KernelBug(f"dma_buf_pin of static {attach!r}: only dynamic importers pin")
    _require_resv_held(attach.dmabuf, "dma_buf_pin")
    if attach.dmabuf.ops.pin is not None:
        await attach.dmabuf.ops.pin(attach)


def dma_buf_unpin(attach):
    """Let the exporter move the storage again (``dma_buf_unpin()``); same rules as
    :func:`dma_buf_pin`."""
    if not dma_buf_attachment_is_dynamic(attach):
        raise KernelBug(f"dma_buf_unpin of static {attach!r}: only dynamic importers pin")
    _require_resv_held(attach.dmabuf, "dma_buf_unpin")
    if attach.dmabuf.ops.unpin is not None:
        attach.dmabuf.ops.unpin(attach)


async def dma_buf_move_notify(dmabuf):
    """Tell every dynamic importer that the storage moved (``dma_buf_move_notify()``);
    the exporter calls it with the reservation lock held. Static attachments are not told:
    they pin what they map."""
    _require_resv_held(dmabuf, "dma_buf_move_notify")
    for attach in list(dmabuf.attachments):
        if dma_buf_attachment_is_dynamic(attach):
            await attach.importer_ops.move_notify(attach)


@traced("dma-buf")
async def dma_buf_map_attachment(attach, direction):
    """Map the buffer for the attached device (``dma_buf_map_attachment()``); returns an
    :class:`SgTable` with DMA addresses.

    A dynamic importer must hold the reservation lock and wait for its ``KERNEL`` fences
    (a move in progress) before DMA; for a static importer the lock is taken if it does not
    hold it, the storage is pinned while mapped (dynamic exporter), and the call returns
    only once those fences signaled. With a cached mapping, asking again in another
    direction is ``EBUSY`` unless the mapping is bidirectional. An exporter returning
    nothing is ``ENOMEM``.
    """
    if attach is None or attach.dmabuf is None:
        raise KernelError(errno.EINVAL, "dma_buf_map_attachment without an attachment")
    if attach not in attach.dmabuf.attachments:
        raise KernelError(errno.EINVAL, f"dma_buf_map_attachment of {attach!r}, which was "
                                        f"detached")
    direction = check_direction(direction)
    async with _resv_locked(attach, "dma_buf_map_attachment"):
        return await _map_attachment_locked(attach, direction)


async def _map_attachment_locked(attach, direction):
    dmabuf = attach.dmabuf
    if attach.sgt is not None:
        if attach.dir != direction and attach.dir is not DmaDirection.BIDIRECTIONAL:
            raise KernelError(errno.EBUSY, f"{attach!r} is mapped {attach.dir}; cannot map "
                                           f"it {direction} as well")
        return attach.sgt
    pin = _pin_on_map(attach)
    if pin:
        await dmabuf.ops.pin(attach)
    try:
        sgt = await dmabuf.ops.map_dma_buf(attach, direction)
        if sgt is None:
            raise KernelError(errno.ENOMEM, f"{dmabuf.exp_name} could not map {attach!r}")
        if not dma_buf_attachment_is_dynamic(attach):
            try:
                await dmabuf.resv.wait_timeout(DmaResvUsage.KERNEL, True,
                                               MAX_SCHEDULE_TIMEOUT)
            except BaseException:
                await dmabuf.ops.unmap_dma_buf(attach, sgt, direction)
                raise
    except BaseException:
        if pin:
            dmabuf.ops.unpin(attach)
        raise
    if dmabuf.ops.cache_sgt_mapping:
        attach.sgt, attach.dir = sgt, direction
    return sgt


@traced("dma-buf")
async def dma_buf_unmap_attachment(attach, sgt, direction):
    """Give back a mapping (``dma_buf_unmap_attachment()``), unpinning what mapping a
    static attachment pinned; a cached mapping stays until detach. The reservation lock
    rule is that of :func:`dma_buf_map_attachment`."""
    if attach is None or attach.dmabuf is None or sgt is None:
        raise KernelBug("dma_buf_unmap_attachment without attachment or table")
    direction = check_direction(direction)
    async with _resv_locked(attach, "dma_buf_unmap_attachment"):
        if attach.sgt is sgt:
            return
        await attach.dmabuf.ops.unmap_dma_buf(attach, sgt, direction)
        if _pin_on_map(attach):
            attach.dmabuf.ops.unpin(attach)


# CPU access.


def _cpu_access_direction(direction):
    """A direction for begin/end_cpu_access: ``EINVAL`` for anything but the three DMA
    directions (DMA_NONE included: the exporter's syncs would BUG on it)."""
    try:
        direction = DmaDirection(direction)
    except ValueError:
        raise KernelError(errno.EINVAL, f"invalid DMA direction {direction!r}") from None
    if direction is DmaDirection.NONE:
        raise KernelError(errno.EINVAL, "DMA_NONE is not a direction for CPU access")
    return direction


@traced("dma-buf")
async def dma_buf_begin_cpu_access(dmabuf, direction):
    """Prepare for CPU access (``dma_buf_begin_cpu_access()``): the exporter's cache
    maintenance, then a wait for the fences the access must not overtake."""
    if not isinstance(dmabuf, DmaBuf):
        raise KernelError(errno.EINVAL, f"begin_cpu_access of {dmabuf!r}")
    direction = _cpu_access_direction(direction)
    if dmabuf.ops.begin_cpu_access is not None:
        await dmabuf.ops.begin_cpu_access(dmabuf, direction)
    write = direction in (DmaDirection.BIDIRECTIONAL, DmaDirection.TO_DEVICE)
    await dmabuf.resv.wait_timeout(dma_resv_usage_rw(write), True, MAX_SCHEDULE_TIMEOUT)


@traced("dma-buf")
async def dma_buf_end_cpu_access(dmabuf, direction):
    """Finish CPU access (``dma_buf_end_cpu_access()``)."""
    if not isinstance(dmabuf, DmaBuf):
        raise KernelError(errno.EINVAL, f"end_cpu_access of {dmabuf!r}")
    direction = _cpu_access_direction(direction)
    if dmabuf.ops.end_cpu_access is not None:
        await dmabuf.ops.end_cpu_access(dmabuf, direction)


@traced("dma-buf")
def dma_buf_vmap(dmabuf):
    """A kernel virtual address covering the whole buffer, contiguous even over scattered
    pages (``dma_buf_vmap()``); reference counted. ``EINVAL`` if the exporter cannot."""
    if not isinstance(dmabuf, DmaBuf):
        raise KernelError(errno.EINVAL, f"dma_buf_vmap of {dmabuf!r}")
    if dmabuf.ops.vmap is None:
        raise KernelError(errno.EINVAL, f"{dmabuf.exp_name} does not support vmap")
    if dmabuf.vmapping_counter:
        dmabuf.vmapping_counter += 1
        return dmabuf.vmap_ptr
    dmabuf.vmap_ptr = dmabuf.ops.vmap(dmabuf)
    dmabuf.vmapping_counter = 1
    return dmabuf.vmap_ptr


@traced("dma-buf")
def dma_buf_vunmap(dmabuf, addr):
    """Drop one vmap reference (``dma_buf_vunmap()``); the address must be the one
    :func:`dma_buf_vmap` returned."""
    if dmabuf.vmapping_counter == 0 or dmabuf.vmap_ptr is None:
        raise KernelBug(f"dma_buf_vunmap of {dmabuf!r}, which is not vmapped")
    if addr != dmabuf.vmap_ptr:
        raise KernelBug(f"dma_buf_vunmap({addr:#x}) of {dmabuf!r} vmapped at "
                        f"{dmabuf.vmap_ptr:#x}")
    dmabuf.vmapping_counter -= 1
    if dmabuf.vmapping_counter == 0:
        if dmabuf.ops.vunmap is not None:
            dmabuf.ops.vunmap(dmabuf, addr)
        dmabuf.vmap_ptr = None


# The file.


def _set_name(dmabuf, name):
    """``DMA_BUF_SET_NAME``: at most ``DMA_BUF_NAME_LEN - 1`` characters."""
    if not isinstance(name, str):
        raise KernelError(errno.EFAULT, f"name must be a string, not {name!r}")
    if len(name.encode()) >= DMA_BUF_NAME_LEN:
        raise KernelError(errno.EINVAL, f"name {name!r} longer than "
                                        f"{DMA_BUF_NAME_LEN - 1} bytes")
    dmabuf.name = name
    return 0


async def _sync(dmabuf, sync):
    """``DMA_BUF_IOCTL_SYNC``."""
    flags = sync.flags
    if flags & ~DMA_BUF_SYNC_VALID_FLAGS_MASK:
        raise KernelError(errno.EINVAL, f"DMA_BUF_IOCTL_SYNC flags {flags:#x} has unknown "
                                        f"bits")
    access = flags & DMA_BUF_SYNC_RW
    if access == DMA_BUF_SYNC_READ:
        direction = DmaDirection.FROM_DEVICE
    elif access == DMA_BUF_SYNC_WRITE:
        direction = DmaDirection.TO_DEVICE
    elif access == DMA_BUF_SYNC_RW:
        direction = DmaDirection.BIDIRECTIONAL
    else:
        raise KernelError(errno.EINVAL, "DMA_BUF_IOCTL_SYNC needs DMA_BUF_SYNC_READ and/or "
                                        "DMA_BUF_SYNC_WRITE")
    if flags & DMA_BUF_SYNC_END:
        await dma_buf_end_cpu_access(dmabuf, direction)
    else:
        await dma_buf_begin_cpu_access(dmabuf, direction)
    return 0


def _export_sync_file(dmabuf, arg, task):
    """``DMA_BUF_IOCTL_EXPORT_SYNC_FILE``: a sync_file for the fences an access of the
    given kind would wait for (a signaled stub when there are none)."""
    if arg.flags & ~DMA_BUF_SYNC_RW or not arg.flags & DMA_BUF_SYNC_RW:
        raise KernelError(errno.EINVAL, f"export sync_file flags {arg.flags:#x} must be "
                                        f"READ and/or WRITE")
    fence = dmabuf.resv.get_singleton(dma_resv_usage_rw(bool(arg.flags & DMA_BUF_SYNC_WRITE)))
    if fence is None:
        fence = dma_fence_get_stub()
    sync_file = sync_file_create(fence)
    fence.put()
    try:
        arg.fd = task.fd_install(sync_file.file, O_CLOEXEC)
    except KernelError:
        sync_file.file.put()
        raise
    return 0


async def _import_sync_file(dmabuf, arg, task):
    """``DMA_BUF_IOCTL_IMPORT_SYNC_FILE``: add the sync_file's fences as readers or
    writers."""
    if arg.flags & ~DMA_BUF_SYNC_RW or not arg.flags & DMA_BUF_SYNC_RW:
        raise KernelError(errno.EINVAL, f"import sync_file flags {arg.flags:#x} must be "
                                        f"READ and/or WRITE")
    fence = sync_file_get_fence(task, arg.fd)
    if fence is None:
        raise KernelError(errno.EINVAL, f"fd {arg.fd} is not a sync_file")
    usage = DmaResvUsage.WRITE if arg.flags & DMA_BUF_SYNC_WRITE else DmaResvUsage.READ
    members = list(dma_fence_unwrap(fence))
    await dmabuf.resv.lock()
    try:
        dmabuf.resv.reserve_fences(len(members))
        for member in members:
            dmabuf.resv.add_fence(member, usage)
    finally:
        dmabuf.resv.unlock()
        fence.put()
    return 0


class _DmaBufFileOps(FileOperations):
    def check_release(self, file):
        """``dma_buf_release()``'s ``BUG_ON(dmabuf->vmapping_counter)`` and the
        attachments an importer forgot, raised before the last reference is dropped."""
        file.private_data._check_release()

    def release(self, file):
        file.private_data._release()

    def llseek(self, file, offset, whence):
        """Only ``SEEK_SET`` and ``SEEK_END`` with offset 0: the way to learn the size."""
        if whence not in (SEEK_SET, SEEK_END):
            raise KernelError(errno.EINVAL, f"dma-buf llseek whence {whence!r}: only "
                                            f"SEEK_SET and SEEK_END")
        if offset != 0:
            raise KernelError(errno.EINVAL, f"dma-buf llseek offset {offset!r}: only 0")
        return file.private_data.size if whence == SEEK_END else 0

    def poll(self, file, events):
        """``POLLIN`` once no writer is pending, ``POLLOUT`` once no access is pending."""
        resv = file.private_data.resv
        ready = 0
        if events & POLLOUT and resv.test_signaled(dma_resv_usage_rw(True)):
            ready |= POLLOUT
        if events & POLLIN and resv.test_signaled(dma_resv_usage_rw(False)):
            ready |= POLLIN
        return ready

    async def ioctl(self, file, cmd, arg, task):
        dmabuf = file.private_data
        if cmd == DMA_BUF_IOCTL_SYNC:
            return await _sync(dmabuf, arg)
        if cmd in (DMA_BUF_SET_NAME_A, DMA_BUF_SET_NAME_B):
            return _set_name(dmabuf, arg)
        if cmd == DMA_BUF_IOCTL_EXPORT_SYNC_FILE:
            return _export_sync_file(dmabuf, arg, task)
        if cmd == DMA_BUF_IOCTL_IMPORT_SYNC_FILE:
            return await _import_sync_file(dmabuf, arg, task)
        raise KernelError(errno.ENOTTY, f"inappropriate ioctl {cmd:#x} for a dma-buf")

    def mmap(self, file, vma):
        """``dma_buf_mmap_internal()``: the exporter must support it and the mapping must
        stay inside the buffer."""
        dmabuf = file.private_data
        if dmabuf.ops.mmap is None:
            raise KernelError(errno.EINVAL, f"{dmabuf.exp_name} does not support mmap")
        if vma.vm_pgoff + vma.npages > dmabuf.size >> PAGE_SHIFT:
            raise KernelError(errno.EINVAL, f"mmap of pages {vma.vm_pgoff}..."
                                            f"{vma.vm_pgoff + vma.npages - 1} beyond the "
                                            f"{dmabuf.size >> PAGE_SHIFT}-page buffer")
        dmabuf.ops.mmap(dmabuf, vma)

    def show_fdinfo(self, file):
        dmabuf = file.private_data
        text = (f"size:\t{dmabuf.size}\ncount:\t{file.f_count}\n"
                f"exp_name:\t{dmabuf.exp_name}\n")
        if dmabuf.name is not None:
            text += f"name:\t{dmabuf.name}\n"
        return text


_dma_buf_fops = _DmaBufFileOps()
