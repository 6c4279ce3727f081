"""``dma_fence``: a one-shot completion signal of a piece of work
(``drivers/dma-buf/dma-fence.c``).

A fence belongs to a timeline (its *context*) and has a sequence number on it. It is signaled
exactly once, optionally after an error was set; callbacks run when it signals; waiters sleep
through the current :class:`~.sched.Scheduler` until it signals or their timeout runs out.
"""

import errno
import itertools
import warnings

from ..errors import KernelBug, KernelError
from ..trace.spans import current_run, mark
from .sched import MAX_SCHEDULE_TIMEOUT, current_scheduler

__all__ = [
    "MAX_ERRNO", "DmaFenceOps", "DmaFence", "DmaFenceCb",
    "dma_fence_context_alloc", "dma_fence_get_stub", "dma_fence_allocate_private_stub",
    "dma_fence_wait_any_timeout", "is_later",
]

MAX_ERRNO = 4095

_context_counter = itertools.count(1)


def dma_fence_context_alloc(num=1):
    """Reserve ``num`` consecutive fence contexts; returns the first."""
    if not isinstance(num, int) or num <= 0:
        raise KernelBug(f"dma_fence_context_alloc({num!r})")
    first = next(_context_counter)
    for _ in range(num - 1):
        next(_context_counter)
    return first


class DmaFenceOps:
    """The operations of a kind of fence (``struct dma_fence_ops``).

    Subclass and override; ``get_driver_name`` and ``get_timeline_name`` are mandatory,
    the rest optional, as in Linux.
    """

    #: Sequence numbers compare as 64-bit values instead of wrapping 32-bit ones.
    use_64bit_seqno = False

    def get_driver_name(self, fence):
        raise NotImplementedError

    def get_timeline_name(self, fence):
        raise NotImplementedError

    def enable_signaling(self, fence):
        """Start whatever makes the fence signal; return ``False`` if it already has."""
        return True

    def signaled(self, fence):
        """Peek whether the work is done without waiting for the interrupt."""
        return False

    def release(self, fence):
        """Called when the last reference is dropped."""


def is_later(seqno1, seqno2, ops):
    """``__dma_fence_is_later()``."""
    if ops.use_64bit_seqno:
        return seqno1 > seqno2
    diff = (seqno1 - seqno2) & 0xffff_ffff
    return 0 < diff < 0x8000_0000


class DmaFenceCb:
    """A registered callback (``struct dma_fence_cb``); keep it to remove the callback."""

    def __init__(self, func):
        self.func = func
        self.fence = None


class DmaFence:
    """A fence (``dma_fence_init()``).

    Parameters
    ----------
    ops : DmaFenceOps
    context : int
        Timeline, from :func:`dma_fence_context_alloc`.
    seqno : int
        Position on the timeline.

    Attributes
    ----------
    error : int
        ``0`` or a negative errno set before signaling.
    timestamp : int or None
        Scheduler time of the signal.
    refcount : int
    """

    def __init__(self, ops, context, seqno):
        if not isinstance(ops, DmaFenceOps):
            raise KernelBug(f"dma_fence_init: ops must be a DmaFenceOps, not {ops!r}")
        for name in ("get_driver_name", "get_timeline_name"):
            if getattr(type(ops), name) is getattr(DmaFenceOps, name):
                raise KernelBug(f"dma_fence_init: {type(ops).__name__} lacks {name}")
        self.ops = ops
        self.context = context
        self.seqno = seqno
        self.error = 0
        self.timestamp = None
        self.refcount = 1
        self._signaled = False
        self._signaling_enabled = False
        self._callbacks = []

    def __repr__(self):
        state = ("signaled" if self._signaled else "pending") + (
            f" error={self.error}" if self.error else "")
        return (f"<{type(self).__name__} {self.driver_name}:{self.timeline_name} "
                f"ctx={self.context} seq={self.seqno} {state}>")

    @property
    def driver_name(self):
        return self.ops.get_driver_name(self)

    @property
    def timeline_name(self):
        return self.ops.get_timeline_name(self)

    # References.

    def get(self):
        """Take a reference (``dma_fence_get()``); returns the fence."""
        if self.refcount <= 0:
            raise KernelBug(f"dma_fence_get on released {self!r}")
        self.refcount += 1
        return self

    def put(self):
        """Drop a reference (``dma_fence_put()``); the last one releases the fence."""
        if self.refcount <= 0:
            raise KernelBug(f"refcount underflow on {self!r}")
        self.refcount -= 1
        if self.refcount == 0:
            if self._callbacks and not self._signaled:
                warnings.warn(f"Fence {self.driver_name}:{self.timeline_name}:"
                              f"{self.context:x}:{self.seqno:x} released with pending "
                              f"signals!", RuntimeWarning, stacklevel=2)
                self.error = -errno.EDEADLK
                self._signal()
            self.ops.release(self)

    # Signaling.

    def set_error(self, error):
        """Set a negative errno, to be seen once the fence signals
        (``dma_fence_set_error()``)."""
        if self._signaled:
            raise KernelBug(f"dma_fence_set_error on already signaled {self!r}")
        if not isinstance(error, int) or not -MAX_ERRNO <= error < 0:
            raise KernelBug(f"dma_fence_set_error({error!r}): must be a negative errno")
        self.error = error

    def signal(self, timestamp=None):
        """Signal the fence and run its callbacks (``dma_fence_signal()``).

        Raises ``EINVAL`` if it was already signaled, the value Linux returns.
        """
        if self._signaled:
            raise KernelError(errno.EINVAL, f"{self!r} is already signaled")
        self._signal(timestamp)

    def _signal(self, timestamp=None):
        self._signaled = True
        if current_run() is not None:
            mark("fence", f"{self.timeline_name}:{self.seqno}", error=self.error)
        self.timestamp = current_scheduler().now if timestamp is None else timestamp
        callbacks, self._callbacks = self._callbacks, []
        for cb in callbacks:
            cb.fence = None
            cb.func(self, cb)

    def is_signaled(self):
        """Whether the fence signaled, asking ``ops.signaled`` and signaling on its word
        (``dma_fence_is_signaled()``)."""
        if self._signaled:
            return True
        if self.ops.signaled(self):
            self._signal()
            return True
        return False

    def get_status(self):
        """``0`` pending, ``1`` signaled fine, or the negative errno it signaled with
        (``dma_fence_get_status()``)."""
        if not self.is_signaled():
            return 0
        return self.error or 1

    def enable_sw_signaling(self):
        """``dma_fence_enable_sw_signaling()``."""
        if self._signaled or self._signaling_enabled:
            return
        self._signaling_enabled = True
        if not self.ops.enable_signaling(self):
            self._signal()

    def add_callback(self, func):
        """Call ``func(fence, cb)`` when the fence signals (``dma_fence_add_callback()``).

        Returns the :class:`DmaFenceCb`. Raises ``ENOENT`` if the fence has already
        signaled: the callback is not registered and will not run.
        """
        if not callable(func):
            raise KernelError(errno.EINVAL, f"callback must be callable, not {func!r}")
        cb = DmaFenceCb(func)
        if self._signaled:
            raise KernelError(errno.ENOENT, f"{self!r} already signaled")
        self.enable_sw_signaling()
        if self._signaled:
            raise KernelError(errno.ENOENT, f"{self!r} signaled while enabling signaling")
        cb.fence = self
        self._callbacks.append(cb)
        return cb

    def remove_callback(self, cb):
        """Unregister ``cb``; ``False`` if it already ran (``dma_fence_remove_callback()``)."""
        if cb in self._callbacks:
            self._callbacks.remove(cb)
            cb.fence = None
            return True
        return False

    # Waiting.

    async def wait_timeout(self, intr=True, timeout=MAX_SCHEDULE_TIMEOUT):
        """Sleep until the fence signals or ``timeout`` ticks pass
        (``dma_fence_wait_timeout()``).

        Returns the ticks left (at least 1) if it signaled, ``0`` on timeout. A negative
        timeout is ``EINVAL``. Nothing interrupts a wait here, so ``intr`` never yields
        ``-ERESTARTSYS``.
        """
        if not isinstance(timeout, int) or timeout < 0:
            raise KernelError(errno.EINVAL, f"fence wait timeout must be >= 0, not {timeout!r}")
        if self.is_signaled():
            return timeout if timeout else 1
        if timeout == 0:
            return 0
        self.enable_sw_signaling()
        return await current_scheduler().wait_until(self.is_signaled, timeout)

    async def wait(self, intr=True):
        """Sleep until the fence signals (``dma_fence_wait()``); returns 0. The fence's
        error is read with :meth:`get_status`."""
        await self.wait_timeout(intr, MAX_SCHEDULE_TIMEOUT)
        return 0

    def is_later(self, other):
        """``dma_fence_is_later()``: both fences must be on one timeline."""
        if self.context != other.context:
            raise KernelBug(f"comparing fences of different contexts: {self!r}, {other!r}")
        return is_later(self.seqno, other.seqno, self.ops)

    def is_later_or_same(self, other):
        return self is other or self.is_later(other) or self.seqno == other.seqno


class _StubOps(DmaFenceOps):
    def get_driver_name(self, fence):
        return "stub"

    def get_timeline_name(self, fence):
        return "stub"


_stub_ops = _StubOps()
_stub = None


def dma_fence_get_stub():
    """The shared, always-signaled stub fence, with a new reference
    (``dma_fence_get_stub()``)."""
    global _stub
    if _stub is None:
        _stub = DmaFence(_stub_ops, 0, 0)
        _stub._signal(timestamp=0)
    return _stub.get()


def dma_fence_allocate_private_stub(timestamp):
    """A new signaled stub fence with the given timestamp
    (``dma_fence_allocate_private_stub()``)."""
    fence = DmaFence(_stub_ops, 0, 0)
    fence._signal(timestamp=timestamp)
    return fence


async def dma_fence_wait_any_timeout(fences, intr=True, timeout=MAX_SCHEDULE_TIMEOUT):
    """Wait until any of ``fences`` signals (``dma_fence_wait_any_timeout()``).

    Returns ``(remaining, index)``: ticks left (0 on timeout) and the index of a signaled
    fence (``None`` on timeout). An empty list is ``EINVAL``.
    """
    fences = list(fences)
    if not fences:
        raise KernelError(errno.EINVAL, "dma_fence_wait_any_timeout on no fences")
    if not isinstance(timeout, int) or timeout < 0:
        raise KernelError(errno.EINVAL, f"fence wait timeout must be >= 0, not {timeout!r}")

    def first_signaled():
        return next((i for i, f in enumerate(fences) if f.is_signaled()), None)

    index = first_signaled()
    if index is not None:
        return (timeout if timeout else 1), index
    if timeout == 0:
        return 0, None
    for fence in fences:
        fence.enable_sw_signaling()
    remaining = await current_scheduler().wait_until(
        lambda: first_signaled() is not None, timeout)
    return remaining, first_signaled()
