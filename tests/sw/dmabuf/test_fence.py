"""dma_fence, fence arrays and chains, merging, dma_resv, sync_file and the schedulers."""

import asyncio
import errno

import pytest

from dmabuf_soc.sw.dmabuf.fence import (DmaFence, DmaFenceOps, dma_fence_allocate_private_stub,
                                        dma_fence_context_alloc, dma_fence_get_stub,
                                        dma_fence_wait_any_timeout)
from dmabuf_soc.sw.dmabuf.fence_array import DmaFenceArray
from dmabuf_soc.sw.dmabuf.fence_chain import DmaFenceChain
from dmabuf_soc.sw.dmabuf.fence_unwrap import dma_fence_unwrap_merge
from dmabuf_soc.sw.dmabuf.fs import POLLIN, Process
from dmabuf_soc.sw.dmabuf.ioctl import SYNC_IOC_FILE_INFO, SYNC_IOC_MERGE, SyncFileInfo, SyncMergeData
from dmabuf_soc.sw.dmabuf.resv import DmaResv, DmaResvUsage, WwAcquireCtx
from dmabuf_soc.sw.dmabuf.sched import MachineScheduler, use_scheduler
from dmabuf_soc.sw.dmabuf.sync_file import sync_file_create, sync_file_get_fence
from dmabuf_soc.sw.errors import KernelBug, KernelError

from sw_doubles import FlatMachine


class Ops(DmaFenceOps):
    def get_driver_name(self, fence):
        return "test"

    def get_timeline_name(self, fence):
        return "tl"


OPS = Ops()


def new_fence(context=None, seqno=1):
    return DmaFence(OPS, dma_fence_context_alloc() if context is None else context, seqno)


def run(coro):
    return asyncio.run(coro)


def raises(code):
    class Check:
        def __enter__(self):
            self.ctx = pytest.raises(KernelError)
            self.info = self.ctx.__enter__()
            return self.info

        def __exit__(self, *exc):
            result = self.ctx.__exit__(*exc)
            assert self.info.value.errno == code, self.info.value
            return result
    return Check()


def test_ops_must_name_driver_and_timeline():
    with pytest.raises(KernelBug, match="get_driver_name"):
        DmaFence(DmaFenceOps(), 1, 1)


def test_signal_once_runs_callbacks_and_records_status():
    fence = new_fence()
    seen = []
    cb = fence.add_callback(lambda f, cb: seen.append(f.get_status()))
    fence.add_callback(lambda f, cb: seen.append("second"))
    assert fence.get_status() == 0
    fence.signal()
    assert seen == [1, "second"] and fence.get_status() == 1
    assert fence.remove_callback(cb) is False
    with raises(errno.EINVAL):
        fence.signal()
    with raises(errno.ENOENT):
        fence.add_callback(lambda f, cb: None)


def test_errors():
    fence = new_fence()
    for bad in (0, 5, -5000):
        with pytest.raises(KernelBug):
            fence.set_error(bad)
    fence.set_error(-errno.EIO)
    fence.signal()
    assert fence.get_status() == -errno.EIO
    with pytest.raises(KernelBug, match="already signaled"):
        fence.set_error(-errno.EIO)


def test_remove_callback_before_signal():
    fence = new_fence()
    seen = []
    cb = fence.add_callback(lambda f, cb: seen.append(1))
    assert fence.remove_callback(cb)
    fence.signal()
    assert seen == []


def test_ops_signaled_is_consulted():
    class Polled(Ops):
        done = False

        def signaled(self, fence):
            return self.done
    ops = Polled()
    fence = DmaFence(ops, 1, 1)
    assert not fence.is_signaled()
    ops.done = True
    assert fence.is_signaled() and fence.timestamp is not None


def test_release_with_pending_callbacks_signals_edeadlk():
    released = []

    class Releasing(Ops):
        def release(self, fence):
            released.append(fence)
    fence = DmaFence(Releasing(), 1, 1)
    seen = []
    fence.add_callback(lambda f, cb: seen.append(f.error))
    with pytest.warns(RuntimeWarning, match="released with pending signals"):
        fence.put()
    assert seen == [-errno.EDEADLK] and released == [fence]
    with pytest.raises(KernelBug, match="underflow"):
        fence.put()


def test_wait_timeout():
    async def main():
        fence = new_fence()
        with raises(errno.EINVAL):
            await fence.wait_timeout(True, -1)
        assert await fence.wait_timeout(True, 0) == 0
        assert await fence.wait_timeout(True, 5) == 0

        async def signaler():
            await asyncio.sleep(0)
            await asyncio.sleep(0)
            fence.signal()
        task = asyncio.ensure_future(signaler())
        remaining = await fence.wait_timeout(True, 100)
        await task
        assert 90 < remaining < 100
        assert await fence.wait_timeout(True, 0) == 1
        assert await fence.wait() == 0
    run(main())


def test_wait_any():
    async def main():
        fences = [new_fence(), new_fence()]
        with raises(errno.EINVAL):
            await dma_fence_wait_any_timeout([], True, 10)
        assert await dma_fence_wait_any_timeout(fences, True, 3) == (0, None)
        fences[1].signal()
        assert await dma_fence_wait_any_timeout(fences, True, 3) == (3, 1)
    run(main())


def test_machine_scheduler_services_irqs_while_waiting():
    machine = FlatMachine()
    scheduler = MachineScheduler(machine, quantum=8)
    fence = new_fence()

    async def handler():
        machine.irq_lines.discard(0)
        fence.signal()
    scheduler.request_irq(0, handler)

    async def main():
        with use_scheduler(scheduler):
            assert await fence.wait_timeout(True, 40) == 0
            machine.irq_lines.add(0)
            assert await fence.wait_timeout(True, 1000) > 0
    run(main())
    assert machine.cycle == 48 and fence.timestamp == 48


def test_stubs_and_seqno_order():
    stub = dma_fence_get_stub()
    assert stub.is_signaled() and stub.driver_name == "stub"
    assert dma_fence_allocate_private_stub(77).timestamp == 77
    ctx = dma_fence_context_alloc(3)
    assert dma_fence_context_alloc() == ctx + 3
    a, b = new_fence(ctx, 0xffff_fff0), new_fence(ctx, 5)
    assert b.is_later(a) and not a.is_later(b)   # 32-bit wrap
    with pytest.raises(KernelBug):
        a.is_later(new_fence())


def test_array_all_any_and_error():
    f = [new_fence() for _ in range(3)]
    array = DmaFenceArray([x.get() for x in f], dma_fence_context_alloc(), 1)
    any_ = DmaFenceArray([x.get() for x in f], dma_fence_context_alloc(), 1, signal_on_any=True)
    f[1].set_error(-errno.EIO)
    f[1].signal()
    assert any_.get_status() == -errno.EIO
    f[0].signal()
    assert array.get_status() == 0
    f[2].signal()
    assert array.get_status() == -errno.EIO
    with pytest.raises(KernelBug):
        DmaFenceArray([], 1, 1)
    with pytest.raises(KernelBug):
        DmaFenceArray([array], 1, 1)


def test_array_of_signaled_fences_signals_at_once():
    done = new_fence()
    done.signal()
    assert DmaFenceArray([done], dma_fence_context_alloc(), 1).is_signaled()


def test_chain():
    f1, f2, f3 = new_fence(), new_fence(), new_fence()
    c1 = DmaFenceChain(None, f1, 1)
    c2 = DmaFenceChain(c1, f2, 2)
    c3 = DmaFenceChain(c2, f3, 3)
    assert c3.context == c1.context and c3.prev_seqno == 2
    seen = []
    c3.add_callback(lambda f, cb: seen.append(f.seqno))
    assert c3.find_seqno(2) is c2
    with raises(errno.EINVAL):
        c3.find_seqno(4)
    f3.signal()
    f1.signal()
    assert not c3.is_signaled() and c2.walk() is None   # c1 signaled: dropped
    assert c2.prev is None
    assert c3.find_seqno(1) is None
    f2.signal()
    assert seen == [3] and c3.is_signaled()
    restart = DmaFenceChain(c3, new_fence(), 2)
    assert restart.context != c3.context and restart.seqno == 3


def test_merge_drops_signaled_and_keeps_latest_per_context():
    ctx = dma_fence_context_alloc()
    old, new, other, done = new_fence(ctx, 1), new_fence(ctx, 2), new_fence(), new_fence()
    done.signal(timestamp=99)
    merged = dma_fence_unwrap_merge(old, DmaFenceArray([new.get(), other.get()],
                                                       dma_fence_context_alloc(), 1), done)
    assert isinstance(merged, DmaFenceArray) and set(merged.fences) == {new, other}
    assert dma_fence_unwrap_merge(old, new) is new
    stub = dma_fence_unwrap_merge(done)
    assert stub.is_signaled() and stub.timestamp == 99


def resv_locked(resv):
    assert resv.trylock()
    return resv


def test_resv_needs_lock_and_reserved_slots():
    resv = DmaResv()
    with pytest.raises(KernelBug, match="lock"):
        resv.reserve_fences(1)
    resv_locked(resv)
    with raises(errno.EINVAL):
        resv.reserve_fences(0)
    with pytest.raises(KernelBug, match="reserved slot"):
        resv.add_fence(new_fence(), DmaResvUsage.WRITE)
    resv.reserve_fences(1)
    resv.add_fence(new_fence(), DmaResvUsage.WRITE)
    resv.unlock()
    resv_locked(resv)
    with pytest.raises(KernelBug, match="reserved slot"):
        resv.add_fence(new_fence(), DmaResvUsage.READ)   # the unused slots went with unlock
    with pytest.raises(KernelBug, match="container"):
        resv.reserve_fences(1)
        resv.add_fence(DmaFenceArray([new_fence()], 1, 1), DmaResvUsage.READ)


def test_resv_usages_and_replacement():
    resv = resv_locked(DmaResv())
    resv.reserve_fences(4)
    ctx = dma_fence_context_alloc()
    kernel, write, read, book = (new_fence() for _ in range(4))
    for fence, usage in ((kernel, "KERNEL"), (write, "WRITE"), (read, "READ"),
                         (book, "BOOKKEEP")):
        resv.add_fence(fence, DmaResvUsage[usage])
    assert [f for f, _ in resv.iter(DmaResvUsage.WRITE)] == [kernel, write]
    assert len(resv.iter(DmaResvUsage.BOOKKEEP)) == 4
    later = new_fence(read.context, 2)
    resv.add_fence(later, DmaResvUsage.READ)
    assert resv.num_fences == 4 and read.refcount == 1 and later.refcount == 2
    kernel.signal()
    write.signal()
    assert resv.test_signaled(DmaResvUsage.WRITE)
    assert not resv.test_signaled(DmaResvUsage.READ)
    single = resv.get_singleton(DmaResvUsage.READ)
    assert isinstance(single, DmaFenceArray) and single.num_fences == 3
    resv.replace_fences(later.context, dma_fence_get_stub(), DmaResvUsage.BOOKKEEP)
    assert resv.test_signaled(DmaResvUsage.READ)
    resv.unlock()


def test_resv_wait_and_ww_locking():
    async def main():
        resv = resv_locked(DmaResv())
        resv.reserve_fences(1)
        fence = new_fence()
        resv.add_fence(fence, DmaResvUsage.WRITE)
        resv.unlock()
        assert await resv.wait_timeout(DmaResvUsage.READ, True, 0) == 0
        assert await resv.wait_timeout(DmaResvUsage.KERNEL, True, 0) == 1
        assert await resv.wait_timeout(DmaResvUsage.WRITE, True, 10) == 0
        fence.signal()
        assert await resv.wait_timeout(DmaResvUsage.WRITE, True, 10) == 10
        old, young = WwAcquireCtx(), WwAcquireCtx()
        await resv.lock(old)
        with raises(errno.EALREADY):
            await resv.lock(old)
        with raises(errno.EDEADLK):
            await resv.lock(young)
        with pytest.raises(KernelBug):
            old.fini()
        resv.unlock()
        await resv.lock(young)
        resv.unlock()
        young.fini()
    run(main())


def test_sync_file():
    async def main():
        proc = Process("p")
        a, b = new_fence(), new_fence()
        fd_a = proc.fd_install(sync_file_create(a).file)
        fd_b = proc.fd_install(sync_file_create(b).file)
        assert a.refcount == 2
        assert proc.poll(fd_a, POLLIN) == 0
        merge = SyncMergeData("both", fd_b)
        await proc.ioctl(fd_a, SYNC_IOC_MERGE, merge)
        assert proc.cloexec(merge.fence)
        with raises(errno.ENOENT):
            await proc.ioctl(fd_a, SYNC_IOC_MERGE, SyncMergeData("x", 99))
        info = SyncFileInfo()
        await proc.ioctl(merge.fence, SYNC_IOC_FILE_INFO, info)
        assert (info.name, info.num_fences, info.status) == ("both", 2, 0)
        with raises(errno.EINVAL):
            await proc.ioctl(merge.fence, SYNC_IOC_FILE_INFO, SyncFileInfo(flags=1))
        with raises(errno.ENOTTY):
            await proc.ioctl(fd_a, 0x1234)
        a.signal()
        b.signal()
        assert proc.poll(merge.fence, POLLIN) == POLLIN
        assert await proc.poll_wait(fd_a, POLLIN, 5) == POLLIN
        got = sync_file_get_fence(proc, fd_a)
        assert got is a
        got.put()
        assert sync_file_get_fence(proc, 77) is None
        proc.exit()
        assert a.refcount == 1 and b.refcount == 1
    run(main())
