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

    def enable_signaling(self, fence):
        """``dma_fence_array_enable_signaling()``: a callback on every member, each holding a
        reference to the array until it ran; ``False`` if the members already decided."""
        return fence._enable_signaling()

    def signaled(self, fence):
        """``dma_fence_array_signaled()``: once signaling is enabled, the callbacks count;
        before, the members are asked directly."""
        return fence._test_signaled()

    def release(self, fence):
        """``dma_fence_array_release()``: drop the members; nothing is signaled."""
        for member in fence.fences:
            member.put()


_array_ops = _ArrayOps()


class DmaFenceArray(DmaFence):
    """A fence over ``fences`` (``dma_fence_array_create()``); takes over their references.

    As in Linux, the members are not watched until someone needs the array to signal (a
    wait or a callback: ``enable_signaling``); until then :meth:`is_signaled` asks them.

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

    def _note_error(self, member):
        """``dma_fence_array_set_pending_error()``: the first member error is kept."""
        if member.error and not self._pending_error:
            self._pending_error = member.error

    def _enable_signaling(self):
        for member in self.fences:
            self.get()          # held by the callback until it ran
            try:
                member.add_callback(self._member_signaled)
            except KernelError as exc:
                if exc.errno != errno.ENOENT:
                    raise
                self._note_error(member)
                self.put()
                self.num_pending -= 1
                if self.num_pending == 0:
                    self.error = self.error or self._pending_error
                    return False
        return True

    def _test_signaled(self):
        if self._signaling_enabled:
            if self.num_pending <= 0:
                self.error = self.error or self._pending_error
                return True
            return False
        pending = self.num_pending
        for member in self.fences:
            if member.is_signaled():
                self._note_error(member)
                pending -= 1
                if pending == 0:
                    self.error = self.error or self._pending_error
                    return True
        return False

    def _member_signaled(self, member, cb):
        """``dma_fence_array_cb_func()``."""
        self._note_error(member)
        self.num_pending -= 1
        if self.num_pending == 0 and not self._signaled:
            self.error = self.error or self._pending_error
            self._signal()
        self.put()

    @property
    def num_fences(self):
        return len(self.fences)
