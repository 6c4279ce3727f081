"""What the end-to-end scenarios share: a booted system with a userspace process, heap
allocations, CPU fills and reads through vmap, byte-exact checks against a reference model,
stage timing, and the final leak check."""

import contextlib

from ..dma_mapping.direction import DmaDirection
from ..dmabuf.dma_buf import (dma_buf_begin_cpu_access, dma_buf_end_cpu_access, dma_buf_get,
                              dma_buf_vmap, dma_buf_vunmap)
from ..dmabuf.fs import O_CLOEXEC, O_RDWR, Process
from ..heaps.heap import DMA_HEAP_IOCTL_ALLOC, DmaHeapAllocationData
from ..mm.page_alloc import GFP_KERNEL, ZoneType
from ..platform.boot import boot
from ..trace.spans import span

__all__ = ["Session", "pattern", "session", "describe_segments", "counter_delta"]


def pattern(size, seed):
    """Reference data: ``size`` bytes no two neighbouring pages of which are alike."""
    return bytes((index * 131 + (index >> 12) * 17 + seed * 29 + 7) & 0xff
                 for index in range(size))


def describe_segments(segments):
    """``["0x100003000+0x1000", ...]`` for a report."""
    return [f"{addr:#x}+{length:#x}" for addr, length in segments]


class Session:
    """A booted system with one process, ``app``.

    Attributes
    ----------
    platform : SocPlatform
    app : Process
    stages : dict of str to int
        Cycles of each stage run with :meth:`stage`.
    boot_cycles : int
        Machine cycles spent booting (mostly probing the SMMU).
    """

    def __init__(self, machine, platform, progress, steps):
        self.machine = machine
        self.platform = platform
        self.boot_cycles = machine.cycle
        self.app = Process("app", kmem=self.platform.kmem)
        self.stages = {}
        self._progress = progress
        self._steps = steps
        self._done = 0
        self._tenants = []

    @contextlib.contextmanager
    def stage(self, name):
        """Count the cycles of the block as stage ``name`` and report progress after it."""
        start = self.machine.cycle
        with span("scenario", name):
            yield
        self.stages[name] = self.stages.get(name, 0) + self.machine.cycle - start
        self._done += 1
        if self._progress:
            self._progress(min(self._done, self._steps), self._steps, name)

    def fragment(self, holes=1, *, used=True):
        """Make free memory look like that of a system that ran a while, so that the next
        order-0 allocations of ``ZONE_NORMAL`` come out scattered. :meth:`close` gives the
        tenants' pages back.

        With ``used``, of the first ``2 * holes + 1`` free pages other tenants keep every
        other one: the holes were used, so the heaps zero them (the pages after them are
        still zero from reset). Without it (one hole only), the tenants take the free single
        pages, one more page ``q`` and the pair ``q + 2, q + 3`` left by its split, and give
        nothing back: the next two order-0 allocations get ``q + 1`` and ``q + 4``, both
        never used since reset.
        """
        mm = self.platform.mm
        if used:
            taken = [mm.alloc_pages(GFP_KERNEL, 0, owner="tenant")
                     for _ in range(2 * holes + 1)]
            for index, page in enumerate(taken):
                if index % 2:
                    mm.free_pages(page, 0)
                else:
                    self._tenants.append((page, 0))
            return
        if holes != 1:
            raise ValueError(f"Unused holes are made one at a time, not {holes!r}")

        def take(order):
            page = mm.alloc_pages(GFP_KERNEL, order, owner="tenant")
            self._tenants.append((page, order))
            return page
        while mm.free_area_counts(ZoneType.NORMAL)[0]:
            take(0)
        split = take(0)
        while take(1).pfn != split.pfn + 2:
            pass

    async def alloc(self, heap, size, process=None):
        """``DMA_HEAP_IOCTL_ALLOC`` on ``/dev/dma_heap/<heap>`` from ``process`` (the app by
        default); returns the descriptor."""
        data = DmaHeapAllocationData(len=size, fd_flags=O_RDWR | O_CLOEXEC)
        await self.platform.heaps.ioctl(heap, DMA_HEAP_IOCTL_ALLOC, data, process or self.app)
        return data.fd

    def get(self, fd, process=None):
        return dma_buf_get(process or self.app, fd)

    async def cpu_fill(self, dmabuf, data):
        """Write ``data`` through a kernel vmap between begin/end_cpu_access(TO_DEVICE)."""
        await dma_buf_begin_cpu_access(dmabuf, DmaDirection.TO_DEVICE)
        vaddr = dma_buf_vmap(dmabuf)
        try:
            await self.platform.kmem.write(vaddr, data)
        finally:
            dma_buf_vunmap(dmabuf, vaddr)
        await dma_buf_end_cpu_access(dmabuf, DmaDirection.TO_DEVICE)

    async def cpu_read(self, dmabuf, *, sync=True):
        """Read the whole buffer through a kernel vmap, between
        begin/end_cpu_access(FROM_DEVICE) unless ``sync`` is false."""
        if sync:
            await dma_buf_begin_cpu_access(dmabuf, DmaDirection.FROM_DEVICE)
        vaddr = dma_buf_vmap(dmabuf)
        try:
            data = await self.platform.kmem.read(vaddr, dmabuf.size)
        finally:
            dma_buf_vunmap(dmabuf, vaddr)
        if sync:
            await dma_buf_end_cpu_access(dmabuf, DmaDirection.FROM_DEVICE)
        return data

    async def memory_of(self, dmabuf):
        """The buffer's bytes as DDR holds them (backdoor, no cache), page by page."""
        data = bytearray()
        for page in dmabuf.priv.pages():
            data += await self.machine.peek(page.phys, 4096)
        return bytes(data[:dmabuf.size])

    @staticmethod
    def check(what, got, expected):
        """Compare every byte with the reference; raise naming the first difference."""
        if got != expected:
            first = next(i for i, (a, b) in enumerate(zip(got, expected)) if a != b) \
                if len(got) == len(expected) else min(len(got), len(expected))
            wrong = sum(a != b for a, b in zip(got, expected))
            raise AssertionError(f"{what}: {wrong} of {len(expected)} bytes differ from the "
                                 f"reference, first at offset {first:#x}")
        return len(expected)

    async def cache_counters(self):
        return await self.platform.cache.counters()

    def close(self):
        """Exit the process, give the tenants' pages back, and check that every page,
        mapping and reference came back."""
        self.app.exit()
        self.release_tenants()
        self.platform.check_clean()

    def release_tenants(self):
        """Give back the pages :meth:`fragment` took."""
        for page, order in self._tenants:
            self.platform.mm.free_pages(page, order)
        self._tenants = []


@contextlib.asynccontextmanager
async def session(machine, progress=None, steps=1, **boot_args):
    """Boot, run the block with the machine's scheduler current, then :meth:`Session.close`
    (only when the block succeeded: a failure is reported as itself, not as leaks)."""
    s = Session(machine, await boot(machine, **boot_args), progress, steps)
    with s.platform.running():
        yield s
    s.close()


def counter_delta(after, before):
    return {name: after[name] - before[name] for name in after}
