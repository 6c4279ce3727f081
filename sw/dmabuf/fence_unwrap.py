"""Flattening and merging fences (``drivers/dma-buf/dma-fence-unwrap.c``)."""

from .fence import DmaFence, dma_fence_allocate_private_stub, dma_fence_context_alloc
from .fence_array import DmaFenceArray
from .fence_chain import DmaFenceChain

__all__ = ["dma_fence_unwrap", "dma_fence_unwrap_merge"]


def dma_fence_unwrap(fence):
    """The plain fences inside ``fence``: chains walked, arrays opened
    (``dma_fence_unwrap_for_each``)."""
    if isinstance(fence, DmaFenceChain):
        for node in fence.nodes():
            yield from dma_fence_unwrap(node.fence if isinstance(node, DmaFenceChain) else node)
    elif isinstance(fence, DmaFenceArray):
        for member in fence.fences:
            yield from dma_fence_unwrap(member)
    else:
        yield fence


def dma_fence_unwrap_merge(*fences):
    """One fence that signals when all of ``fences`` did (``dma_fence_unwrap_merge()``).

    Signaled fences are dropped, and of several fences on one timeline only the latest is
    kept. No fence left gives a signaled stub carrying the latest timestamp; one gives that
    fence; more give a :class:`DmaFenceArray` of them in increasing context order. Returns a
    new reference.
    """
    latest = {}
    timestamp = 0
    for fence in fences:
        for leaf in dma_fence_unwrap(fence):
            if leaf.is_signaled():
                timestamp = max(timestamp, leaf.timestamp or 0)
                continue
            kept = latest.get(leaf.context)
            if kept is None or leaf.is_later(kept):
                latest[leaf.context] = leaf
    # Sorted by context, as the sort() with fence_cmp in __dma_fence_unwrap_merge leaves
    # them (one fence per context: the latest).
    survivors = sorted(latest.values(), key=lambda f: f.context)
    if not survivors:
        return dma_fence_allocate_private_stub(timestamp)
    if len(survivors) == 1:
        return survivors[0].get()
    return DmaFenceArray([f.get() for f in survivors], dma_fence_context_alloc(1), 1)
