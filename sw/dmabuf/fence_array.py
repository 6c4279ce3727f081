"""``dma_fence_array``: one fence standing for several (``drivers/dma-buf/dma-fence-array.c``).

It signals when all of its fences signaled, or when any did with ``signal_on_any``; the
first error among them becomes its error.
"""

import errno

from ..errors import KernelBug, KernelError
from .fence import DmaFence, DmaFenceOps

__all__ = ["DmaFenceArray"]


class _ArrayOps(DmaFenceOps):
    def get_driver_name(self, fence):
        return "dma_fence_array"

    def get_timeline_name(self, fence):
        return "unbound"

    def release(self, fence):
        for member in fence.fences:
            member.put()


_array_ops = _ArrayOps()


class DmaFenceArray(DmaFence):
    """A fence over ``fences`` (``dma_fence_array_create()``); takes over their references.

    Parameters
    ----------
    fences : list of DmaFence
    context, seqno : int
    signal_on_any : bool
    """

    def __init__(self, fences, context, seqno, *, signal_on_any=False):
        fences = list(fences)
        if not fences:
            raise KernelBug("dma_fence_array_create with no fences")
        if any(isinstance(f, DmaFenceArray) for f in fences):
            raise KernelBug("a dma_fence_array must not contain another dma_fence_array")
        super().__init__(_array_ops, context, seqno)
        self.fences = fences
        self.signal_on_any = signal_on_any
        self.num_pending = 1 if signal_on_any else len(fences)
        self._pending_error = 0
        for member in fences:
            try:
                member.add_callback(self._member_signaled)
            except KernelError as exc:
                if exc.errno != errno.ENOENT:
                    raise
                self._account(member)   # already signaled

    def _account(self, member):
        if member.error and not self._pending_error:
            self._pending_error = member.error
        self.num_pending -= 1
        if self.num_pending == 0 and not self._signaled:
            if self._pending_error:
                self.error = self._pending_error
            self._signal()

    def _member_signaled(self, member, cb):
        if not self._signaled:
            self._account(member)

    @property
    def num_fences(self):
        return len(self.fences)
