"""The dma-buf core: export, descriptors and references, the file interface, CPU access and
attachments, with a minimal exporter."""

import asyncio
import errno

import pytest

from dmabuf_soc.sw.device import Device
from dmabuf_soc.sw.dma_mapping.direction import DmaDirection
from dmabuf_soc.sw.dmabuf.dma_buf import (DmaBufOps, dma_buf_attach, dma_buf_begin_cpu_access,
                                          dma_buf_detach, dma_buf_export, dma_buf_fd,
                                          dma_buf_get, dma_buf_list, dma_buf_map_attachment,
                                          dma_buf_unmap_attachment, dma_buf_vmap,
                                          dma_buf_vunmap)
from dmabuf_soc.sw.dmabuf.fence import DmaFence, DmaFenceOps, dma_fence_context_alloc
from dmabuf_soc.sw.dmabuf.fs import (F_SETFD, MAP_SHARED, O_CLOEXEC, O_RDONLY, O_RDWR, POLLIN,
                                     POLLOUT, PROT_READ, PROT_WRITE, SEEK_CUR, SEEK_END,
                                     SEEK_SET, Process)
from dmabuf_soc.sw.dmabuf.ioctl import (DMA_BUF_IOCTL_EXPORT_SYNC_FILE,
                                        DMA_BUF_IOCTL_IMPORT_SYNC_FILE, DMA_BUF_IOCTL_SYNC,
                                        DMA_BUF_SET_NAME_B, DMA_BUF_SYNC_END,
                                        DMA_BUF_SYNC_READ, DMA_BUF_SYNC_RW,
                                        DMA_BUF_SYNC_WRITE, DmaBufExportSyncFile,
                                        DmaBufImportSyncFile, DmaBufSync)
from dmabuf_soc.sw.dmabuf.resv import DmaResvUsage
from dmabuf_soc.sw.dmabuf.sync_file import sync_file_create, sync_file_get_fence
from dmabuf_soc.sw.errors import KernelBug, KernelError
from dmabuf_soc.sw.mm.page_alloc import Page
from dmabuf_soc.sw.mm.scatterlist import SgTable


class Exporter(DmaBufOps):
    """Records every call; maps to a fixed table."""

    def __init__(self, cache=False):
        self.calls = []
        self.cache_sgt_mapping = cache

    def attach(self, dmabuf, attach):
        if attach.dev.name == "refused":
            raise KernelError(errno.EBUSY, "storage cannot serve this device")
        self.calls.append(("attach", attach.dev.name))

    def detach(self, dmabuf, attach):
        self.calls.append(("detach", attach.dev.name))

    async def map_dma_buf(self, attach, direction):
        self.calls.append(("map", direction))
        return None if attach.dev.name == "nomem" else SgTable.from_blocks([(Page(1), 4096)])

    async def unmap_dma_buf(self, attach, sgt, direction):
        self.calls.append(("unmap", direction))

    def release(self, dmabuf):
        self.calls.append(("release",))

    async def begin_cpu_access(self, dmabuf, direction):
        self.calls.append(("begin", direction))

    async def end_cpu_access(self, dmabuf, direction):
        self.calls.append(("end", direction))

    def vmap(self, dmabuf):
        self.calls.append(("vmap",))
        return 0xffff_8000_0000_0000

    def vunmap(self, dmabuf, addr):
        self.calls.append(("vunmap",))

    def mmap(self, dmabuf, vma):
        self.calls.append(("mmap", vma.vm_pgoff, vma.npages))


def export(ops=None, size=4 * 4096, flags=O_RDWR):
    ops = ops or Exporter()
    return ops, dma_buf_export(ops=ops, size=size, priv=object(), exp_name="test", flags=flags)


def run(coro):
    return asyncio.run(coro)


def errno_of(excinfo):
    return excinfo.value.errno


@pytest.fixture(autouse=True)
def no_leaked_buffers():
    before = len(dma_buf_list())
    yield
    assert len(dma_buf_list()) == before


def test_export_validates_ops():
    class NoMap(DmaBufOps):
        release = unmap_dma_buf = staticmethod(lambda *a: None)

    class HalfPin(Exporter):
        pin = staticmethod(lambda attach: None)

    class CachedPin(HalfPin):
        unpin = staticmethod(lambda attach: None)
    for ops, priv, size in ((NoMap(), 1, 4096), (HalfPin(), 1, 4096), (CachedPin(cache=True), 1, 4096),
                            (Exporter(), None, 4096), (Exporter(), 1, 0), (object(), 1, 4096)):
        with pytest.raises(KernelError) as exc:
            dma_buf_export(ops=ops, size=size, priv=priv, exp_name="bad")
        assert errno_of(exc) == errno.EINVAL


def test_fds_refcount_and_release_on_last_reference():
    ops, buf = export()
    proc = Process("a")
    fd = dma_buf_fd(buf, proc, O_CLOEXEC)
    assert buf.file.f_count == 1 and proc.cloexec(fd)
    dup = proc.dup(fd)
    assert not proc.cloexec(dup) and buf.file.f_count == 2
    got = dma_buf_get(proc, dup)
    assert got is buf and buf.file.f_count == 3
    other = Process("b")
    passed = proc.send_fd(fd, other, flags=O_CLOEXEC)
    assert other.cloexec(passed) and buf.file.f_count == 4
    proc.exec()                     # closes fd (cloexec), keeps dup
    with pytest.raises(KernelError) as exc:
        proc.close(fd)
    assert errno_of(exc) == errno.EBADF
    proc.close(dup)
    other.exit()
    assert ops.calls == []
    buf.put()                       # the reference from dma_buf_get was the last
    assert ops.calls == [("release",)]
    with pytest.raises(KernelBug):
        buf.put()


def test_fd_table_rules():
    _, buf = export()
    proc = Process("a", nofile=2)
    fd = dma_buf_fd(buf, proc)
    proc.dup(fd)
    with pytest.raises(KernelError) as exc:
        proc.dup(fd)
    assert errno_of(exc) == errno.EMFILE
    for args in ((fd, fd, 0), (fd, 1, 0o4000)):
        with pytest.raises(KernelError) as exc:
            proc.dup3(*args)
        assert errno_of(exc) == errno.EINVAL
    assert proc.dup3(fd, 1, O_CLOEXEC) == 1 and proc.cloexec(1)
    proc.fcntl(1, F_SETFD, 0)
    assert not proc.cloexec(1)
    child = proc.fork("child")
    assert child.fds() == [0, 1] and buf.file.f_count == 4
    with pytest.raises(KernelError) as exc:
        dma_buf_get(proc, 5)
    assert errno_of(exc) == errno.EBADF
    child.exit()
    proc.exit()


class Ops(DmaFenceOps):
    def get_driver_name(self, fence):
        return "t"

    def get_timeline_name(self, fence):
        return "t"


def test_dma_buf_get_of_other_file_is_einval():
    proc = Process("a")
    fd = proc.fd_install(sync_file_create(DmaFence(Ops(), 1, 1)).file)
    with pytest.raises(KernelError) as exc:
        dma_buf_get(proc, fd)
    assert errno_of(exc) == errno.EINVAL
    proc.exit()


def test_llseek_set_name_fdinfo_ioctl():
    async def main():
        _, buf = export(size=3 * 4096)
        proc = Process("a")
        fd = dma_buf_fd(buf, proc, O_CLOEXEC)
        assert proc.lseek(fd, 0, SEEK_END) == 3 * 4096
        assert proc.lseek(fd, 0, SEEK_SET) == 0
        for offset, whence in ((1, SEEK_SET), (0, SEEK_CUR), (-1, SEEK_END)):
            with pytest.raises(KernelError) as exc:
                proc.lseek(fd, offset, whence)
            assert errno_of(exc) == errno.EINVAL
        await proc.ioctl(fd, DMA_BUF_SET_NAME_B, "frame")
        with pytest.raises(KernelError) as exc:
            await proc.ioctl(fd, DMA_BUF_SET_NAME_B, "x" * 32)
        assert errno_of(exc) == errno.EINVAL
        info = proc.fdinfo(fd)
        assert "size:\t12288\ncount:\t1\nexp_name:\ttest\nname:\tframe\n" in info
        assert "flags:\t02000002" in info
        with pytest.raises(KernelError) as exc:
            await proc.ioctl(fd, 0xdead)
        assert errno_of(exc) == errno.ENOTTY
        proc.exit()
    run(main())


def test_sync_ioctl_flags_and_directions():
    async def main():
        ops, buf = export()
        proc = Process("a")
        fd = dma_buf_fd(buf, proc)
        for flags in (0, DMA_BUF_SYNC_END, 8, DMA_BUF_SYNC_RW | 0x100):
            with pytest.raises(KernelError) as exc:
                await proc.ioctl(fd, DMA_BUF_IOCTL_SYNC, DmaBufSync(flags))
            assert errno_of(exc) == errno.EINVAL
        await proc.ioctl(fd, DMA_BUF_IOCTL_SYNC, DmaBufSync(DMA_BUF_SYNC_READ))
        await proc.ioctl(fd, DMA_BUF_IOCTL_SYNC, DmaBufSync(DMA_BUF_SYNC_WRITE | DMA_BUF_SYNC_END))
        await proc.ioctl(fd, DMA_BUF_IOCTL_SYNC, DmaBufSync(DMA_BUF_SYNC_RW))
        assert ops.calls == [("begin", DmaDirection.FROM_DEVICE),
                             ("end", DmaDirection.TO_DEVICE),
                             ("begin", DmaDirection.BIDIRECTIONAL)]
        proc.exit()
    run(main())


def add_fence(buf, usage):
    fence = DmaFence(Ops(), dma_fence_context_alloc(), 1)
    assert buf.resv.trylock()
    buf.resv.reserve_fences(1)
    buf.resv.add_fence(fence, usage)
    buf.resv.unlock()
    fence.put()
    return fence


def test_poll_and_begin_cpu_access_wait_for_the_right_fences():
    async def main():
        _, buf = export()
        proc = Process("a")
        fd = dma_buf_fd(buf, proc)
        assert proc.poll(fd, POLLIN | POLLOUT) == POLLIN | POLLOUT
        reader = add_fence(buf, DmaResvUsage.READ)
        assert proc.poll(fd, POLLIN | POLLOUT) == POLLIN
        writer = add_fence(buf, DmaResvUsage.WRITE)
        assert proc.poll(fd, POLLIN | POLLOUT) == 0
        assert await proc.poll_wait(fd, POLLIN, 3) == 0

        async def device():
            for _ in range(3):
                await asyncio.sleep(0)
            writer.signal()
            for _ in range(3):
                await asyncio.sleep(0)
            reader.signal()
        task = asyncio.ensure_future(device())
        await dma_buf_begin_cpu_access(buf, DmaDirection.FROM_DEVICE)
        assert writer.is_signaled() and not reader.is_signaled()
        await dma_buf_begin_cpu_access(buf, DmaDirection.TO_DEVICE)
        assert reader.is_signaled()
        await task
        proc.exit()
    run(main())


def test_export_and_import_sync_file():
    async def main():
        _, buf = export()
        proc = Process("a")
        fd = dma_buf_fd(buf, proc)
        arg = DmaBufExportSyncFile(DMA_BUF_SYNC_READ)
        await proc.ioctl(fd, DMA_BUF_IOCTL_EXPORT_SYNC_FILE, arg)
        stub = sync_file_get_fence(proc, arg.fd)
        assert stub.is_signaled() and proc.cloexec(arg.fd)
        stub.put()
        for bad in (0, 4):
            with pytest.raises(KernelError) as exc:
                await proc.ioctl(fd, DMA_BUF_IOCTL_EXPORT_SYNC_FILE, DmaBufExportSyncFile(bad))
            assert errno_of(exc) == errno.EINVAL
        fence = DmaFence(Ops(), dma_fence_context_alloc(), 1)
        sync_fd = proc.fd_install(sync_file_create(fence).file)
        await proc.ioctl(fd, DMA_BUF_IOCTL_IMPORT_SYNC_FILE,
                         DmaBufImportSyncFile(DMA_BUF_SYNC_WRITE, sync_fd))
        assert buf.resv.iter(DmaResvUsage.WRITE) == [(fence, DmaResvUsage.WRITE)]
        with pytest.raises(KernelError) as exc:
            await proc.ioctl(fd, DMA_BUF_IOCTL_IMPORT_SYNC_FILE,
                             DmaBufImportSyncFile(DMA_BUF_SYNC_READ, fd))
        assert errno_of(exc) == errno.EINVAL
        arg = DmaBufExportSyncFile(DMA_BUF_SYNC_READ)
        await proc.ioctl(fd, DMA_BUF_IOCTL_EXPORT_SYNC_FILE, arg)
        exported = sync_file_get_fence(proc, arg.fd)
        assert exported is fence
        exported.put()
        fence.signal()
        proc.exit()
        assert fence.refcount == 1
    run(main())


def test_vmap_is_reference_counted():
    ops, buf = export()
    first = dma_buf_vmap(buf)
    assert dma_buf_vmap(buf) == first and buf.vmapping_counter == 2
    with pytest.raises(KernelBug):
        dma_buf_vunmap(buf, first + 4096)
    dma_buf_vunmap(buf, first)
    assert ops.calls == [("vmap",)]
    dma_buf_vunmap(buf, first)
    assert ops.calls == [("vmap",), ("vunmap",)]
    with pytest.raises(KernelBug):
        dma_buf_vunmap(buf, first)
    again = dma_buf_vmap(buf)
    with pytest.raises(KernelBug, match="vmapped"):
        buf.put()
    assert buf.file.f_count == 1        # refused: the buffer stays whole
    dma_buf_vunmap(buf, again)
    buf.put()


def test_vmap_and_mmap_without_exporter_support_are_einval():
    class Bare(DmaBufOps):
        map_dma_buf = unmap_dma_buf = release = staticmethod(lambda *a: None)
    _, buf = export(Bare())
    with pytest.raises(KernelError) as exc:
        dma_buf_vmap(buf)
    assert errno_of(exc) == errno.EINVAL
    proc = Process("a")
    fd = dma_buf_fd(buf, proc)
    with pytest.raises(KernelError) as exc:
        proc.mmap(4096, PROT_READ, MAP_SHARED, fd)
    assert errno_of(exc) == errno.EINVAL
    proc.exit()


def test_mmap_checks():
    ops, buf = export(size=4 * 4096, flags=O_RDONLY)
    proc = Process("a")
    fd = dma_buf_fd(buf, proc)
    addr = proc.mmap(2 * 4096, PROT_READ, MAP_SHARED, fd, 2 * 4096)
    assert ops.calls == [("mmap", 2, 2)] and buf.file.f_count == 2
    cases = ((3 * 4096, PROT_READ, MAP_SHARED, 2 * 4096, errno.EINVAL),
             (4096, PROT_READ, MAP_SHARED, 100, errno.EINVAL),
             (0, PROT_READ, MAP_SHARED, 0, errno.EINVAL),
             (4096, PROT_READ | PROT_WRITE, MAP_SHARED, 0, errno.EACCES))
    for length, prot, flags, offset, code in cases:
        with pytest.raises(KernelError) as exc:
            proc.mmap(length, prot, flags, fd, offset)
        assert errno_of(exc) == code
    proc.close(fd)
    assert ops.calls[-1] != ("release",)      # the mapping holds the file
    proc.munmap(addr, 2 * 4096)
    assert ops.calls[-1] == ("release",)


def test_attach_map_detach():
    async def main():
        ops, buf = export()
        dev = Device("dev")
        with pytest.raises(KernelError) as exc:
            dma_buf_attach(buf, Device("refused"))
        assert errno_of(exc) == errno.EBUSY and buf.attachments == []
        attach = dma_buf_attach(buf, dev)
        sgt = await dma_buf_map_attachment(attach, DmaDirection.TO_DEVICE)
        again = await dma_buf_map_attachment(attach, DmaDirection.FROM_DEVICE)
        assert again is not sgt              # no caching: a new mapping each time
        await dma_buf_unmap_attachment(attach, sgt, DmaDirection.TO_DEVICE)
        await dma_buf_unmap_attachment(attach, again, DmaDirection.FROM_DEVICE)
        with pytest.raises(KernelBug):
            await dma_buf_map_attachment(attach, DmaDirection.NONE)
        with pytest.raises(KernelError) as exc:
            await dma_buf_map_attachment(dma_buf_attach(buf, Device("nomem")),
                                         DmaDirection.TO_DEVICE)
        assert errno_of(exc) == errno.ENOMEM
        with pytest.raises(KernelBug, match="attachment"):
            buf.file.put()
        assert buf.file.f_count == 1        # refused: the buffer stays whole
        for a in list(buf.attachments):
            await dma_buf_detach(buf, a)
        with pytest.raises(KernelBug):
            await dma_buf_detach(buf, attach)
        buf.put()
        assert ops.calls[:3] == [("attach", "dev"), ("map", DmaDirection.TO_DEVICE),
                                 ("map", DmaDirection.FROM_DEVICE)]
        assert ops.calls[-1] == ("release",)
    run(main())


def test_cached_mapping_direction_rule():
    async def main():
        ops, buf = export(Exporter(cache=True))
        attach = dma_buf_attach(buf, Device("dev"))
        sgt = await dma_buf_map_attachment(attach, DmaDirection.TO_DEVICE)
        assert await dma_buf_map_attachment(attach, DmaDirection.TO_DEVICE) is sgt
        with pytest.raises(KernelError) as exc:
            await dma_buf_map_attachment(attach, DmaDirection.FROM_DEVICE)
        assert errno_of(exc) == errno.EBUSY
        await dma_buf_unmap_attachment(attach, sgt, DmaDirection.TO_DEVICE)
        assert ("unmap", DmaDirection.TO_DEVICE) not in ops.calls
        await dma_buf_detach(buf, attach)
        assert ops.calls[-2:] == [("unmap", DmaDirection.TO_DEVICE), ("detach", "dev")]
        buf.put()

        ops, buf = export(Exporter(cache=True))
        attach = dma_buf_attach(buf, Device("dev"))
        sgt = await dma_buf_map_attachment(attach, DmaDirection.BIDIRECTIONAL)
        assert await dma_buf_map_attachment(attach, DmaDirection.FROM_DEVICE) is sgt
        await dma_buf_detach(buf, attach)
        buf.put()
    run(main())
