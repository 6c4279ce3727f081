"""``dma_resv``: the fences guarding a shared buffer (``drivers/dma-buf/dma-resv.c``).

Each fence is stored with a usage: ``KERNEL`` (memory management, e.g. a migration) <
``WRITE`` < ``READ`` < ``BOOKKEEP``. Asking for a usage returns every fence of that usage or
a lower one, so an implicit-sync reader waits for ``WRITE`` (kernel work and writers) and a
writer waits for ``READ`` (everyone but bookkeeping). Adding a fence needs the object locked
and a slot reserved beforehand; as with ``CONFIG_DEBUG_MUTEXES``, unreserved slots are taken
back on unlock, so a driver that forgets to reserve is caught. The lock remembers the task
holding it, so that :attr:`DmaResv.held_by_current` can answer what ``lockdep_is_held()``
does.
"""

import asyncio
import enum
import errno
import itertools

from ..errors import KernelBug, KernelError
from .fence import DmaFence, dma_fence_context_alloc
from .fence_array import DmaFenceArray
from .fence_chain import DmaFenceChain
from .fence_unwrap import dma_fence_unwrap
from .sched import MAX_SCHEDULE_TIMEOUT, current_scheduler

__all__ = ["DmaResvUsage", "dma_resv_usage_rw", "WwAcquireCtx", "DmaResv"]


class DmaResvUsage(enum.IntEnum):
    KERNEL = 0
    WRITE = 1
    READ = 2
    BOOKKEEP = 3


def dma_resv_usage_rw(write):
    """The usage to wait for before an access: all readers and writers before a write,
    only writers before a read."""
    return DmaResvUsage.READ if write else DmaResvUsage.WRITE


_stamps = itertools.count(1)


def _current_task():
    """Who takes a lock: the running asyncio task, or ``None`` outside an event loop (the
    simulator runs the driver as one coroutine)."""
    try:
        return asyncio.current_task()
    except RuntimeError:
        return None


class WwAcquireCtx:
    """A locking transaction over several reservation objects (``ww_acquire_ctx``), with
    wait-die back-off: a younger transaction meeting a lock held by an older one gets
    ``EDEADLK`` and must drop its locks and retry."""

    def __init__(self):
        self.stamp = next(_stamps)
        self.acquired = []

    def fini(self):
        if self.acquired:
            raise KernelBug(f"ww_acquire_fini with {len(self.acquired)} locks still held")


class DmaResv:
    """A reservation object."""

    def __init__(self):
        self._fences = []        # [fence, usage]
        self._max_fences = 0
        self._owner = None       # WwAcquireCtx or True when locked without context
        self._holder = None      # the task that took the lock

    # Locking.

    @property
    def is_locked(self):
        return self._owner is not None

    @property
    def held_by_current(self):
        """Whether the running task holds the lock (``lockdep_is_held()``)."""
        return self._owner is not None and self._holder is _current_task()

    def trylock(self):
        """``dma_resv_trylock()``."""
        if self._owner is not None:
            return False
        self._owner = True
        self._holder = _current_task()
        return True

    async def lock(self, ctx=None):
        """``dma_resv_lock()``: sleep until the lock is free. With a transaction, taking a
        lock it already holds is ``EALREADY``, and a younger transaction blocked by an older
        one gets ``EDEADLK``."""
        if ctx is not None and self._owner is ctx:
            raise KernelError(errno.EALREADY, "this transaction already holds the lock")
        if self._owner is not None and self._holder is _current_task():
            # mutex_lock() of a mutex the task holds: it would sleep forever.
            raise KernelError(errno.EDEADLK, "deadlock: this task already holds the "
                                             "reservation lock")
        if (ctx is not None and isinstance(self._owner, WwAcquireCtx)
                and self._owner.stamp < ctx.stamp):
            raise KernelError(errno.EDEADLK, f"lock held by older transaction "
                                             f"{self._owner.stamp}; back off and retry")
        await current_scheduler().wait_until(lambda: self._owner is None, MAX_SCHEDULE_TIMEOUT)
        self._owner = True if ctx is None else ctx
        self._holder = _current_task()
        if ctx is not None:
            ctx.acquired.append(self)

    def unlock(self):
        """``dma_resv_unlock()``; unused reserved slots are dropped."""
        self.assert_held()
        if isinstance(self._owner, WwAcquireCtx):
            self._owner.acquired.remove(self)
        self._owner = None
        self._holder = None
        self._max_fences = len(self._fences)

    def assert_held(self):
        if self._owner is None:
            raise KernelBug("dma_resv used without holding its lock")

    # Fences.

    def reserve_fences(self, num_fences):
        """Make room for ``num_fences`` more fences (``dma_resv_reserve_fences()``).
        Zero is ``EINVAL``: it points at a miscounted caller."""
        self.assert_held()
        if not isinstance(num_fences, int) or num_fences <= 0:
            raise KernelError(errno.EINVAL, f"dma_resv_reserve_fences({num_fences!r}): "
                                            f"must reserve at least one slot")
        needed = len(self._fences) + num_fences
        if needed <= self._max_fences:
            return
        if self._max_fences:
            self._max_fences = max(needed, self._max_fences * 2)
        else:
            self._max_fences = max(4, 1 << (num_fences - 1).bit_length())

    @property
    def num_reserved(self):
        """Free slots reserved and not used yet."""
        return self._max_fences - len(self._fences)

    def add_fence(self, fence, usage):
        """Add ``fence`` with ``usage`` (``dma_resv_add_fence()``), taking a reference.

        A fence replaces an older one of the same context whose usage is not lower, and any
        signaled fence; otherwise it takes a reserved slot. Containers (arrays, chains) must
        be unwrapped by the caller.
        """
        self.assert_held()
        if not isinstance(fence, DmaFence):
            raise KernelError(errno.EINVAL, f"fence must be a DmaFence, not {fence!r}")
        if isinstance(fence, (DmaFenceArray, DmaFenceChain)):
            raise KernelBug("dma_resv_add_fence with a container fence: add its members")
        try:
            usage = DmaResvUsage(usage)
        except ValueError:
            raise KernelError(errno.EINVAL, f"unknown dma_resv usage {usage!r}") from None
        fence.get()
        for slot in self._fences:
            old, old_usage = slot
            if ((old.context == fence.context and old_usage >= usage
                 and fence.is_later_or_same(old)) or old.is_signaled()):
                slot[0], slot[1] = fence, usage
                old.put()
                return
        if len(self._fences) >= self._max_fences:
            fence.put()
            raise KernelBug("dma_resv_add_fence without a reserved slot "
                            "(call reserve_fences first)")
        self._fences.append([fence, usage])

    def replace_fences(self, context, replacement, usage):
        """Replace every fence of ``context`` with ``replacement`` at ``usage``
        (``dma_resv_replace_fences()``)."""
        self.assert_held()
        for slot in self._fences:
            if slot[0].context == context:
                old = slot[0]
                slot[0], slot[1] = replacement.get(), DmaResvUsage(usage)
                old.put()

    def iter(self, usage):
        """``(fence, usage)`` of every fence with a usage up to ``usage``."""
        usage = DmaResvUsage(usage)
        return [(f, u) for f, u in self._fences if u <= usage]

    def get_fences(self, usage):
        """The fences up to ``usage`` (``dma_resv_get_fences()``), each with a new
        reference."""
        return [f.get() for f, _ in self.iter(usage)]

    def get_singleton(self, usage):
        """One fence for everything up to ``usage``: ``None``, that fence, or an array
        (``dma_resv_get_singleton()``); a new reference."""
        fences = self.get_fences(usage)
        if not fences:
            return None
        if len(fences) == 1:
            return fences[0]
        return DmaFenceArray(fences, dma_fence_context_alloc(1), 1)

    def test_signaled(self, usage):
        """Whether every fence up to ``usage`` signaled (``dma_resv_test_signaled()``)."""
        return all(f.is_signaled() for f, _ in self.iter(usage))

    async def wait_timeout(self, usage, intr=True, timeout=MAX_SCHEDULE_TIMEOUT):
        """Wait for every fence up to ``usage`` (``dma_resv_wait_timeout()``); returns the
        ticks left (at least 1), or 0 on timeout."""
        if not isinstance(timeout, int) or timeout < 0:
            raise KernelError(errno.EINVAL, f"wait timeout must be >= 0, not {timeout!r}")
        remaining = timeout if timeout else 1
        for fence, _ in self.iter(usage):
            if fence.is_signaled():
                continue
            if timeout == 0:
                return 0
            remaining = await fence.wait_timeout(intr, remaining)
            if remaining == 0:
                return 0
        return remaining

    @property
    def num_fences(self):
        return len(self._fences)

    def describe(self):
        """One line per fence, as ``dma_resv_describe()`` prints in debugfs."""
        return [f"\t{u.name.lower()} fence: {f.driver_name} {f.timeline_name} seq {f.seqno} "
                f"{'signalled' if f.is_signaled() else 'unsignalled'}"
                for f, u in self._fences]

    def fini(self):
        """Drop every fence reference (``dma_resv_fini()``)."""
        for fence, _ in self._fences:
            fence.put()
        self._fences = []
        self._max_fences = 0


def unwrap_for_resv(fence):
    """The members of ``fence`` to add one by one, as ``DMA_BUF_IOCTL_IMPORT_SYNC_FILE``
    does."""
    return list(dma_fence_unwrap(fence))
