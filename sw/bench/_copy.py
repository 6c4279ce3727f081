"""What the copy benchmarks share: a SoC with room for megabyte buffers, pairs of dma-bufs to
copy between (scattered page by page, or each one physically contiguous block), and a timed
run of a :class:`~dmabuf_soc.sw.dma.copy_engine.CopyJob`."""

from ...hw.config import Bank, SocConfig
from ..dmabuf.fs import O_RDWR
from ..heaps.buffer import HeapBuffer, export_heap_buffer
from ..mm.page_alloc import GFP_KERNEL, PAGE_SIZE, get_order

__all__ = ["MiB", "bench_config", "scattered_pair", "contiguous_pair", "fill", "clear",
           "timed_run"]

MiB = 1 << 20


def bench_config(buffer_bytes=MiB):
    """The default SoC with DDR banks of 4 MiB (4 × ``buffer_bytes`` when that is more): the
    high bank holds two buffers of ``buffer_bytes`` scattered page by page and two contiguous
    ones."""
    if not isinstance(buffer_bytes, int) or buffer_bytes <= 0:
        raise ValueError(f"Buffer size must be a positive integer, not {buffer_bytes!r}")
    size = 4 * MiB
    while size < 4 * buffer_bytes:
        size *= 2
    return SocConfig(banks=(Bank("low", base=0x8000_0000, size=size),
                            Bank("high", base=0x1_0000_0000, size=size)))


def _export(s, blocks, free):
    heap = s.platform.heaps.find("system")
    return export_heap_buffer(HeapBuffer(heap, blocks, s.platform.kmem, free), O_RDWR)


def _check_size(size):
    if not isinstance(size, int) or size <= 0 or size % PAGE_SIZE:
        raise ValueError(f"Buffer size must be a positive multiple of {PAGE_SIZE} bytes, "
                         f"not {size!r}")


def scattered_pair(s, size):
    """Two dma-bufs of ``size`` bytes, in session ``s``, whose pages interleave: no page of
    either is next to another page of the same buffer."""
    _check_size(size)
    mm = s.platform.mm
    heap = s.platform.heaps.find("system")
    pages = [mm.alloc_pages(GFP_KERNEL, 0, owner="bench") for _ in range(2 * size // PAGE_SIZE)]
    return [_export(s, [(page, PAGE_SIZE) for page in half], lambda b: heap.free_blocks(b.blocks))
            for half in (pages[0::2], pages[1::2])]


def contiguous_pair(s, size):
    """Two dma-bufs of ``size`` bytes, in session ``s``, each one physically contiguous block
    (from the buddy allocator, so aligned to its power-of-two size)."""
    _check_size(size)
    mm = s.platform.mm
    order = get_order(size)
    buffers = []
    for _ in range(2):
        page = mm.alloc_pages(GFP_KERNEL, order, owner="bench")
        if page is None:
            raise MemoryError(f"No free block of {PAGE_SIZE << order:#x} bytes for a "
                              f"contiguous buffer")
        buffers.append(_export(s, [(page, size)],
                               lambda b, page=page: mm.free_pages(page, order)))
    return buffers


async def fill(machine, dmabuf, data):
    """Write ``data`` into the buffer's pages through the DDR backdoor."""
    offset = 0
    for page, length in dmabuf.priv.blocks:
        await machine.poke(page.phys, data[offset:offset + length])
        offset += length


async def clear(machine, dmabuf):
    """Zero the buffer's pages through the DDR backdoor."""
    for page, length in dmabuf.priv.blocks:
        await machine.poke(page.phys, bytes(length))


async def timed_run(job):
    """Start ``job`` and wait for it; returns its fence status (1, or ``-errno``) and the
    machine cycles from the start (the descriptor and register writes) to the fence
    (the completion interrupt served)."""
    machine = job.engine.channel.machine
    start = machine.cycle
    await job.start()
    status = await job.wait()
    return status, machine.cycle - start
