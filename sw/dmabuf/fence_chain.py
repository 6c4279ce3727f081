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
        return all(node.fence.is_signaled() if isinstance(node, DmaFenceChain)
                   else node.is_signaled() for node in fence.nodes())

    def enable_signaling(self, fence):
        fence._arm()
        return True

    def release(self, fence):
        if fence.prev is not None:
            fence.prev.put()
        fence.fence.put()


_chain_ops = _ChainOps()


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
        """This node, then the earlier ones (``dma_fence_chain_for_each`` without
        skipping)."""
        node = self
        while node is not None:
            yield node
            node = node.prev if isinstance(node, DmaFenceChain) else None

    def _arm(self):
        pending = next((n for n in self.nodes()
                        if not (n.fence if isinstance(n, DmaFenceChain) else n).is_signaled()),
                       None)
        if pending is None:
            self._signal()
            return
        target = pending.fence if isinstance(pending, DmaFenceChain) else pending
        target.add_callback(lambda fence, cb: self._arm() if not self._signaled else None)

    def walk(self):
        """The first node, from this one back, whose fence has not signaled; ``None`` when
        all have (what ``dma_fence_chain_walk`` leaves after dropping signaled nodes)."""
        for node in self.nodes():
            leaf = node.fence if isinstance(node, DmaFenceChain) else node
            if not leaf.is_signaled():
                return node
        return None

    def find_seqno(self, seqno):
        """The node to wait on for timeline point ``seqno`` (``dma_fence_chain_find_seqno``);
        ``None`` means that point already signaled. A point beyond this node is
        ``EINVAL``."""
        if seqno == 0:
            return self
        if self.seqno < seqno:
            raise KernelError(errno.EINVAL, f"timeline point {seqno} is beyond the chain's "
                                            f"last point {self.seqno}")
        for node in self.nodes():
            if (not isinstance(node, DmaFenceChain) or node.context != self.context
                    or node.prev_seqno < seqno):
                break
        return None if node.is_signaled() else node
