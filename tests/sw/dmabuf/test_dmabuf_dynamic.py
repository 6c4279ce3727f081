"""Dynamic dma-buf importers and exporters: pin/unpin, move_notify, the reservation lock rules,
pin-on-map for static importers, the move fence; and the placement exporter migrating under
unpinned dynamic mappings (content kept, importers told, old pages freed at the last unmap)
but not under pinned or static ones. Every test ends with every page, mapping and buffer
given back."""

import asyncio
import contextlib
import errno

import pytest

from dmabuf_soc.sw.device import Device
from dmabuf_soc.sw.dma_mapping.direction import DmaDirection
from dmabuf_soc.sw.dmabuf.dma_buf import (DmaBufAttachOps, dma_buf_attach,
                                          dma_buf_attachment_is_dynamic,
                                          dma_buf_begin_cpu_access, dma_buf_detach,
                                          dma_buf_dynamic_attach, dma_buf_end_cpu_access,
                                          dma_buf_export, dma_buf_is_dynamic,
                                          dma_buf_map_attachment, dma_buf_move_notify,
                                          dma_buf_pin, dma_buf_unmap_attachment, dma_buf_unpin,
                                          dma_buf_vmap, dma_buf_vunmap)
from dmabuf_soc.sw.dmabuf.fence import DmaFence, dma_fence_context_alloc
from dmabuf_soc.sw.dmabuf.resv import DmaResvUsage
from dmabuf_soc.sw.errors import KernelBug, KernelError

from test_dmabuf import Exporter, Ops, no_leaked_buffers  # noqa: F401 (autouse fixture)
from sw_doubles import FOUR_GIB, SIZE, HeapSystem, highest

TO, FROM, BIDI = DmaDirection.TO_DEVICE, DmaDirection.FROM_DEVICE, DmaDirection.BIDIRECTIONAL


def run(coro):
    return asyncio.run(coro)


@contextlib.asynccontextmanager
async def locked(dmabuf):
    await dmabuf.resv.lock()
    try:
        yield
    finally:
        dmabuf.resv.unlock()


def raises_errno(code):
    return pytest.raises(KernelError, check=lambda exc: exc.errno == code)


class DynamicExporter(Exporter):
    """The recording exporter of ``test_dmabuf`` with ``pin``/``unpin``; checks that they,
    and map/unmap, run under the reservation lock."""

    def __init__(self, pin_error=None):
        super().__init__()
        self.pin_error = pin_error
        self.pins = 0
        self.kernel_fence = None

    def _check_locked(self, attach, what):
        if not attach.dmabuf.resv.held_by_current:
            raise AssertionError(f"{what} called without the reservation lock")

    async def pin(self, attach):
        self._check_locked(attach, "pin")
        if self.pin_error is not None:
            raise KernelError(self.pin_error, "cannot pin")
        self.pins += 1
        self.calls.append(("pin", attach.dev.name))

    def unpin(self, attach):
        self._check_locked(attach, "unpin")
        self.pins -= 1
        self.calls.append(("unpin", attach.dev.name))

    async def map_dma_buf(self, attach, direction):
        self._check_locked(attach, "map_dma_buf")
        if self.kernel_fence is not None:          # a move the copy engine still runs
            attach.dmabuf.resv.reserve_fences(1)
            attach.dmabuf.resv.add_fence(self.kernel_fence, DmaResvUsage.KERNEL)
        return await super().map_dma_buf(attach, direction)

    async def unmap_dma_buf(self, attach, sgt, direction):
        self._check_locked(attach, "unmap_dma_buf")
        await super().unmap_dma_buf(attach, sgt, direction)


class Importer(DmaBufAttachOps):
    """A dynamic importer holding at most one mapping. On ``move_notify`` it gives the
    mapping back at once (as RDMA drivers do), or only notes it with ``lazy``."""

    def __init__(self, lazy=False):
        self.lazy = lazy
        self.moves = 0
        self.sgt = None
        self.dir = None

    async def move_notify(self, attach):
        assert attach.dmabuf.resv.held_by_current
        self.moves += 1
        if not self.lazy and self.sgt is not None:
            await self.unmap(attach)

    async def map(self, attach, direction):
        """Map with the lock held, then wait for the move as the importer must before DMA."""
        async with locked(attach.dmabuf):
            self.sgt = await dma_buf_map_attachment(attach, direction)
            self.dir = direction
        await attach.dmabuf.resv.wait_timeout(DmaResvUsage.KERNEL)
        return self.sgt

    async def unmap(self, attach):
        await dma_buf_unmap_attachment(attach, self.sgt, self.dir)
        self.sgt = None


def export(ops):
    return dma_buf_export(ops=ops, size=4 * 4096, priv=object(), exp_name="dyn")


# The core's rules.


def test_export_pin_and_unpin_come_together_and_exclude_caching():
    class PinOnly(Exporter):
        async def pin(self, attach):
            pass

    class UnpinOnly(Exporter):
        def unpin(self, attach):
            pass
    for ops in (PinOnly(), UnpinOnly(), DynamicExporter()):
        ops.cache_sgt_mapping = isinstance(ops, DynamicExporter)
        with raises_errno(errno.EINVAL):
            export(ops)
    assert dma_buf_is_dynamic(buf := export(DynamicExporter()))
    assert not dma_buf_is_dynamic(static := export(Exporter()))
    buf.put()
    static.put()


def test_dynamic_attach_needs_importer_ops_with_move_notify():
    async def main():
        buf = export(DynamicExporter())
        dev = Device("dev")
        for importer_ops in (DmaBufAttachOps(), object()):
            with raises_errno(errno.EINVAL):
                dma_buf_dynamic_attach(buf, dev, importer_ops, None)
        with raises_errno(errno.EINVAL):
            dma_buf_dynamic_attach(buf, None, Importer(), None)
        assert buf.attachments == []
        p2p = Importer()
        p2p.allow_peer2peer = True
        dynamic = dma_buf_dynamic_attach(buf, dev, p2p, "importer state")
        static = dma_buf_attach(buf, dev)
        assert dma_buf_attachment_is_dynamic(dynamic) and dynamic.peer2peer
        assert dynamic.importer_priv == "importer state"
        assert not dma_buf_attachment_is_dynamic(static) and not static.peer2peer
        for attach in (dynamic, static):
            await dma_buf_detach(buf, attach)
        buf.put()
    run(main())


def test_pin_and_unpin_only_for_dynamic_attachments_under_the_lock():
    async def main():
        ops = DynamicExporter()
        buf = export(ops)
        static = dma_buf_attach(buf, Device("static"))
        dynamic = dma_buf_dynamic_attach(buf, Device("dyn"), Importer(), None)
        async with locked(buf):
            with pytest.raises(KernelBug, match="only dynamic"):
                await dma_buf_pin(static)
            with pytest.raises(KernelBug, match="only dynamic"):
                dma_buf_unpin(static)
        with pytest.raises(KernelBug, match="reservation lock"):
            await dma_buf_pin(dynamic)
        assert ops.pins == 0
        async with locked(buf):
            await dma_buf_pin(dynamic)
            assert ops.pins == 1
        with pytest.raises(KernelBug, match="reservation lock"):
            dma_buf_unpin(dynamic)
        async with locked(buf):
            dma_buf_unpin(dynamic)
        assert ops.pins == 0
        ops.pin_error = errno.ENOSPC
        async with locked(buf):
            with raises_errno(errno.ENOSPC):
                await dma_buf_pin(dynamic)
        # A static exporter has nothing to pin: allowed, and nothing happens.
        plain = export(Exporter())
        attach = dma_buf_dynamic_attach(plain, Device("dyn"), Importer(), None)
        async with locked(plain):
            await dma_buf_pin(attach)
            dma_buf_unpin(attach)
        await dma_buf_detach(plain, attach)
        plain.put()
        for attach in (static, dynamic):
            await dma_buf_detach(buf, attach)
        buf.put()
    run(main())


def test_a_dynamic_importer_maps_under_the_lock_and_does_not_pin():
    async def main():
        ops = DynamicExporter()
        buf = export(ops)
        attach = dma_buf_dynamic_attach(buf, Device("dyn"), Importer(), None)
        with pytest.raises(KernelBug, match="reservation lock"):
            await dma_buf_map_attachment(attach, TO)
        async with locked(buf):
            first = await dma_buf_map_attachment(attach, TO)
            second = await dma_buf_map_attachment(attach, TO)
        assert first is not second and ops.pins == 0      # not cached, not pinned
        with pytest.raises(KernelBug, match="reservation lock"):
            await dma_buf_unmap_attachment(attach, first, TO)
        async with locked(buf):
            await dma_buf_unmap_attachment(attach, first, TO)
            await dma_buf_unmap_attachment(attach, second, TO)
        assert [c[0] for c in ops.calls] == ["attach", "map", "map", "unmap", "unmap"]
        await dma_buf_detach(buf, attach)
        buf.put()
    run(main())


def test_a_static_importer_pins_while_mapped():
    async def main():
        ops = DynamicExporter()
        buf = export(ops)
        attach = dma_buf_attach(buf, Device("static"))
        one = await dma_buf_map_attachment(attach, TO)       # the core takes the lock
        assert not buf.resv.is_locked
        async with locked(buf):                              # or the caller holds it
            two = await dma_buf_map_attachment(attach, FROM)
            assert buf.resv.held_by_current
        assert one is not two and ops.pins == 2
        await dma_buf_unmap_attachment(attach, one, TO)
        assert ops.pins == 1
        async with locked(buf):
            await dma_buf_unmap_attachment(attach, two, FROM)
        assert ops.pins == 0
        assert ops.calls[1:] == [("pin", "static"), ("map", TO), ("pin", "static"),
                                 ("map", FROM), ("unmap", TO), ("unpin", "static"),
                                 ("unmap", FROM), ("unpin", "static")]
        # A failed map unpins again; a failed pin does not map.
        nomem = dma_buf_attach(buf, Device("nomem"))
        with raises_errno(errno.ENOMEM):
            await dma_buf_map_attachment(nomem, TO)
        assert ops.pins == 0 and ops.calls[-1] == ("unpin", "nomem")
        ops.pin_error = errno.EBUSY
        calls = len(ops.calls)
        with raises_errno(errno.EBUSY):
            await dma_buf_map_attachment(attach, TO)
        assert len(ops.calls) == calls and not buf.resv.is_locked
        for a in (attach, nomem):
            await dma_buf_detach(buf, a)
        buf.put()
    run(main())


def test_only_a_static_exporter_caches_and_it_caches_for_both_kinds():
    async def main():
        ops = Exporter(cache=True)
        buf = export(ops)
        static = dma_buf_attach(buf, Device("static"))
        dynamic = dma_buf_dynamic_attach(buf, Device("dyn"), Importer(), None)
        sgt = await dma_buf_map_attachment(static, BIDI)
        assert await dma_buf_map_attachment(static, TO) is sgt
        async with locked(buf):
            dsgt = await dma_buf_map_attachment(dynamic, TO)
            assert await dma_buf_map_attachment(dynamic, TO) is dsgt
            with raises_errno(errno.EBUSY):
                await dma_buf_map_attachment(dynamic, FROM)
            await dma_buf_unmap_attachment(dynamic, dsgt, TO)     # stays until detach
        assert [c for c in ops.calls if c[0] == "unmap"] == []
        for a in (static, dynamic):
            await dma_buf_detach(buf, a)
        assert [c for c in ops.calls if c[0] == "unmap"] == [("unmap", BIDI), ("unmap", TO)]
        buf.put()
    run(main())


def test_static_map_waits_for_the_move_fence_a_dynamic_importer_waits_itself():
    async def main():
        ops = DynamicExporter()
        buf = export(ops)
        for kind in ("static", "dynamic"):
            move = DmaFence(Ops(), dma_fence_context_alloc(), 1)
            ops.kernel_fence = move
            if kind == "static":
                attach = dma_buf_attach(buf, Device(kind))
            else:
                importer = Importer()
                attach = dma_buf_dynamic_attach(buf, Device(kind), importer, None)
            seen = []

            async def copy_engine():
                for _ in range(5):
                    await asyncio.sleep(0)
                seen.append("move done")
                move.signal()
            task = asyncio.ensure_future(copy_engine())
            if kind == "static":
                sgt = await dma_buf_map_attachment(attach, TO)
                seen.append("mapped")
            else:
                async with locked(buf):
                    sgt = await dma_buf_map_attachment(attach, TO)
                seen.append("mapped")
                assert not move.is_signaled()       # returned with the move pending
                await buf.resv.wait_timeout(DmaResvUsage.KERNEL)
                seen.append("importer waited")
            await task
            assert seen == {"static": ["move done", "mapped"],
                            "dynamic": ["mapped", "move done", "importer waited"]}[kind]
            move.put()
            async with locked(buf):
                await dma_buf_unmap_attachment(attach, sgt, TO)
            await dma_buf_detach(buf, attach)
        buf.put()
    run(main())


def test_move_notify_reaches_the_dynamic_attachments_only_under_the_lock():
    async def main():
        buf = export(DynamicExporter())
        importers = [Importer(lazy=True), Importer(lazy=True)]
        attachments = [dma_buf_dynamic_attach(buf, Device(f"dyn{i}"), imp, None)
                       for i, imp in enumerate(importers)]
        attachments.append(dma_buf_attach(buf, Device("static")))
        with pytest.raises(KernelBug, match="reservation lock"):
            await dma_buf_move_notify(buf)
        async with locked(buf):
            await dma_buf_move_notify(buf)
            await dma_buf_move_notify(buf)
        assert [imp.moves for imp in importers] == [2, 2]
        async with locked(buf):
            with pytest.raises(KernelBug, match="deadlock"):
                await dma_buf_detach(buf, attachments[0])
        for attach in attachments:
            await dma_buf_detach(buf, attach)
        buf.put()
    run(main())


# The placement exporter.


class PlacementWorld(HeapSystem):
    async def filled_high_buffer(self):
        """A placement buffer placed high (only the 40-bit device attached) holding a
        pattern; returns the buffer, its wide dynamic attachment, the importer, the
        pattern."""
        buf = await self.buffer()
        importer = Importer()
        wide = dma_buf_dynamic_attach(buf, self.wide, importer, None)
        await dma_buf_begin_cpu_access(buf, TO)
        vaddr = dma_buf_vmap(buf)
        content = bytes((i * 7 + i // 4096) & 0xff for i in range(SIZE))
        await self.system.kmem.write(vaddr, content)
        dma_buf_vunmap(buf, vaddr)
        await dma_buf_end_cpu_access(buf, TO)
        assert highest(buf) >= FOUR_GIB
        return buf, wide, importer, content

    async def release(self, buf, *attachments):
        """Detach, drop the buffer, and check that everything came back."""
        for attach in attachments:
            await dma_buf_detach(buf, attach)
        buf.put()
        self.assert_all_returned()

    async def check_content(self, blocks, content):
        offset = 0
        for page, size in blocks:
            assert (await self.system.machine.peek(page.phys, size)
                    == content[offset:offset + size])
            offset += size


def test_an_unpinned_dynamic_mapping_moves_with_its_content():
    async def main():
        w = PlacementWorld()
        buf, wide, importer, content = await w.filled_high_buffer()
        old = await importer.map(wide, FROM)
        old_segments = old.dma_segments()
        assert min(addr for addr, _ in old_segments) >= FOUR_GIB
        narrow = dma_buf_attach(buf, w.narrow)              # static, 32-bit
        sgt = await dma_buf_map_attachment(narrow, TO)      # moves the storage below 4 GiB
        assert importer.moves == 1 and importer.sgt is None  # told, and gave it back
        assert highest(buf) < FOUR_GIB
        assert [h["event"] for h in buf.priv.history] == ["allocated", "migrated"]
        await w.check_content(buf.priv.blocks, content)
        assert w.system.mm.nr_allocated_pages == SIZE // 4096   # old pages freed
        assert w.system.swiotlb.used == 0
        moves = buf.resv.iter(DmaResvUsage.KERNEL)
        assert len(moves) == 1 and moves[0][0].is_signaled()
        assert moves[0][0].timeline_name == "move"
        new = await importer.map(wide, FROM)                # the new location
        assert new.dma_segments() == [(pg.phys, n) for pg, n in buf.priv.blocks]
        assert new.dma_segments() != old_segments
        assert sgt.dma_segments() == new.dma_segments()
        # The static mapping pins the new storage; the dynamic one does not.
        assert buf.priv.pinned_by() == "mapped by narrow"
        await dma_buf_unmap_attachment(narrow, sgt, TO)
        async with locked(buf):
            await importer.unmap(wide)
        await w.release(buf, narrow, wide)
    run(main())


def test_old_storage_lives_until_a_lazy_importer_unmaps():
    async def main():
        w = PlacementWorld()
        buf, wide, importer, content = await w.filled_high_buffer()
        importer.lazy = True
        old = await importer.map(wide, TO)
        old_blocks = buf.priv.blocks
        narrow = dma_buf_dynamic_attach(buf, w.narrow, Importer(), None)
        async with locked(buf):
            sgt = await dma_buf_map_attachment(narrow, TO)
        assert importer.moves == 1 and importer.sgt is old      # still mapped, still valid
        assert buf.priv.retired == [old_blocks]
        assert w.system.mm.nr_allocated_pages == 2 * SIZE // 4096
        await w.check_content(old_blocks, content)
        await w.check_content(buf.priv.blocks, content)
        async with locked(buf):
            await importer.unmap(wide)                          # frees the old pages
            assert buf.priv.retired == []
            assert w.system.mm.nr_allocated_pages == SIZE // 4096
            await dma_buf_unmap_attachment(narrow, sgt, TO)
        await w.release(buf, narrow, wide)
    run(main())


@pytest.mark.parametrize("holder", ["pinned dynamic", "static mapping"])
def test_a_pin_or_a_static_mapping_stops_the_move(holder):
    async def main():
        w = PlacementWorld()
        buf, wide, importer, content = await w.filled_high_buffer()
        if holder == "pinned dynamic":
            async with locked(buf):
                await dma_buf_pin(wide)
            holding, reason = wide, "pinned by wide"
        else:
            holding = dma_buf_attach(buf, w.system.platform.add_device(Device("wide-static")))
            holding.dev.dma_set_mask_and_coherent(w.wide.dma_mask)
            static_sgt = await dma_buf_map_attachment(holding, TO)
            reason = "mapped by wide-static"
        await importer.map(wide, TO)                        # an unpinned mapping: no matter
        narrow = dma_buf_dynamic_attach(buf, w.narrow, Importer(), None)
        async with locked(buf):
            with raises_errno(errno.EBUSY) as exc:
                await dma_buf_map_attachment(narrow, TO)
            assert reason in str(exc.value)
            with raises_errno(errno.EBUSY):
                await dma_buf_pin(narrow)
        assert importer.moves == 0 and highest(buf) >= FOUR_GIB
        if holder == "pinned dynamic":
            async with locked(buf):
                dma_buf_unpin(wide)
        else:
            await dma_buf_unmap_attachment(holding, static_sgt, TO)
            await dma_buf_detach(buf, holding)
        async with locked(buf):
            await dma_buf_pin(narrow)                       # now it may move: pinned low
            assert importer.moves == 1 and highest(buf) < FOUR_GIB
            await w.check_content(buf.priv.blocks, content)
            dma_buf_unpin(narrow)
        await w.release(buf, narrow, wide)
    run(main())


def test_the_move_waits_for_dma_in_flight():
    async def main():
        w = PlacementWorld()
        buf, wide, importer, content = await w.filled_high_buffer()
        await importer.map(wide, TO)
        dma = DmaFence(Ops(), dma_fence_context_alloc(), 1)    # the wide device reading
        async with locked(buf):
            buf.resv.reserve_fences(1)
            buf.resv.add_fence(dma, DmaResvUsage.READ)
        order = []

        async def device():
            for _ in range(5):
                await asyncio.sleep(0)
            order.append("dma done")
            dma.signal()
        task = asyncio.ensure_future(device())
        narrow = dma_buf_attach(buf, w.narrow)
        sgt = await dma_buf_map_attachment(narrow, TO)
        order.append("moved" if importer.moves else "not moved")
        await task
        assert order == ["dma done", "moved"]
        dma.put()
        await w.check_content(buf.priv.blocks, content)
        await dma_buf_unmap_attachment(narrow, sgt, TO)
        await w.release(buf, narrow, wide)
    run(main())
