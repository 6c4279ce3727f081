"""A short traced scenario, shared by the trace tests (tests/sw/trace/)."""

from dmabuf_soc.sw.bench.sim import dma_copy
from dmabuf_soc.sw.trace import spans


async def short_story(machine):
    """A CPU fill through the cache, a clean by set/way-free range, a DMA copy of two pages
    with its interrupt, a fence-like mark: a few thousand cycles."""
    with spans.span("scenario", "cpu_fill"):
        await machine.store(0x8001_0000, bytes(range(64)) * 2)
    with spans.span("scenario", "dma"):
        copy = await dma_copy(machine, length=2048, page=1024)
    spans.mark("fence", "done")
    with spans.span("scenario", "read_back"):
        data = await machine.load(0x8001_0000, 128, cacheable=False)
    return {"cycle": machine.cycle, "copy": copy, "data": data.hex()}
