"""``dma_fence_chain``: a timeline of fences linked by sequence number
(``drivers/dma-buf/dma-fence-chain.c``).

Each node holds one fence and a link to the previous node; a node signals when its fence
and every earlier one signaled, so waiting on point ``n`` of a timeline waits for all
points up to ``n``.
"""

import errno

from ..errors import KernelError
from .fence import DmaFence, DmaFenceOps, dma_fence_context_alloc, is_later

__all__ = ["DmaFenceChain"]


class _ChainOps(DmaFenceOps):
    use_64bit_seqno = True

    def get_driver_name(self, fence):
        return "dma_fence_chain"

    def get_timeline_name(self, fence):
        return "unbound"

    def signaled(self, fence):
        """``dma_fence_chain_signaled()``: every contained fence, walked with
        :func:`dma_fence_chain_for_each` (which drops the signaled links)."""
        for node in dma_fence_chain_for_each(fence):
            if not dma_fence_chain_contained(node).is_signaled():
                node.put()
                return False
        return True

    def enable_signaling(self, fence):
        fence._arm()
        return True

    def release(self, fence):
        """``dma_fence_chain_release()``: unlink the earlier nodes this one holds the last
        reference to one by one, so that releasing a chain of any length is iterative."""
        prev = fence.prev
        while prev is not None:
            if prev.refcount > 1 or not isinstance(prev, DmaFenceChain):
                break
            fence.prev = prev.prev
            prev.prev = None
            prev.put()
            prev = fence.prev
        if prev is not None:
            fence.prev = None
            prev.put()
        fence.fence.put()


_chain_ops = _ChainOps()


def dma_fence_chain_contained(fence):
    """The fence a chain node holds, or ``fence`` itself (``dma_fence_chain_contained()``)."""
    return fence.fence if isinstance(fence, DmaFenceChain) else fence


def dma_fence_chain_walk(fence):
    """One step back along a chain (``dma_fence_chain_walk()``): consumes the reference to
    ``fence`` and returns the previous node with a new reference, or ``None``.

    Signaled links behind ``fence`` are garbage-collected on the way: ``fence``'s ``prev``
    is replaced by the first earlier node whose fence has not signaled.
    """
    if not isinstance(fence, DmaFenceChain):
        fence.put()
        return None
    chain = fence
    while True:
        prev = chain.prev
        if prev is None:
            break
        prev.get()
        if isinstance(prev, DmaFenceChain):
            if not prev.fence.is_signaled():
                break
            replacement = prev.prev
        else:
            if not prev.is_signaled():
                break
            replacement = None
        if replacement is not None:
            replacement.get()
        chain.prev = replacement
        prev.put()          # the link chain held
        prev.put()          # ours
    fence.put()
    return prev


def dma_fence_chain_for_each(head):
    """``dma_fence_chain_for_each(iter, head)``: ``head`` (with a new reference), then the
    earlier nodes as :func:`dma_fence_chain_walk` leaves them. Each node yielded holds a
    reference that the next step drops; a caller leaving the loop early drops it with
    ``put()``."""
    node = head.get()
    while node is not None:
        yield node
        node = dma_fence_chain_walk(node)


class DmaFenceChain(DmaFence):
    """A chain node (``dma_fence_chain_init()``); takes over the references to ``prev`` and
    ``fence``.

    Parameters
    ----------
    prev : DmaFence or None
        The previous point of the timeline (a chain node, or any fence).
    fence : DmaFence
        The work of this point.
    seqno : int
        Its timeline point. If it is not later than ``prev``'s, the node starts a new
        context and takes the larger number, as Linux does.
    """

    def __init__(self, prev, fence, seqno):
        prev_chain = prev if isinstance(prev, DmaFenceChain) else None
        if prev_chain is not None and is_later(seqno, prev.seqno, _chain_ops):
            context = prev.context
            self.prev_seqno = prev.seqno
        else:
            context = dma_fence_context_alloc(1)
            self.prev_seqno = 0
            if prev_chain is not None:
                seqno = max(prev.seqno, seqno)
        super().__init__(_chain_ops, context, seqno)
        self.prev = prev
        self.fence = fence

    def nodes(self):
        """This node, then the earlier ones as they are linked now (no walking, no
        garbage collection)."""
        node = self
        while node is not None:
            yield node
            node = node.prev if isinstance(node, DmaFenceChain) else None

    def _arm(self):
        pending = next((n for n in self.nodes()
                        if not dma_fence_chain_contained(n).is_signaled()), None)
        if pending is None:
            self._signal()
            return
        dma_fence_chain_contained(pending).add_callback(
            lambda fence, cb: self._arm() if not self._signaled else None)

    def walk(self):
        """:func:`dma_fence_chain_walk` from this node, without touching the caller's
        reference: the previous unsignaled node (``None`` if there is none), with a new
        reference the caller drops."""
        return dma_fence_chain_walk(self.get())

    def find_seqno(self, seqno):
        """The node to wait on for timeline point ``seqno`` (``dma_fence_chain_find_seqno``),
        found by walking (and garbage-collecting) the chain; ``None`` means that point
        already signaled. A point beyond this node is ``EINVAL``. The node returned is
        borrowed: no reference is taken for the caller."""
        if seqno == 0:
            return self
        if self.seqno < seqno:
            raise KernelError(errno.EINVAL, f"timeline point {seqno} is beyond the chain's "
                                            f"last point {self.seqno}")
        found = None
        for node in dma_fence_chain_for_each(self):
            if (node.context != self.context or not isinstance(node, DmaFenceChain)
                    or node.prev_seqno < seqno):
                found = node
                break
        if found is not None:
            found.put()
        return found
