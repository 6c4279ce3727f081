"""Where waiting code lets time pass.

Linux sleeps a task until an interrupt handler signals what it waits for. Here the waiting
coroutine itself lets time pass through the current :class:`Scheduler`: with a
:class:`MachineScheduler` that means clock cycles of the simulated SoC, after which pending
interrupt lines are serviced by their handlers (which signal fences); with the default
:class:`AsyncioScheduler` it means yielding to other asyncio tasks. Timeouts are in ticks
of the scheduler (cycles for a machine).
"""

import abc
import asyncio
import contextlib
import contextvars
import errno
import sys

from ..errors import KernelError

__all__ = ["MAX_SCHEDULE_TIMEOUT", "Scheduler", "AsyncioScheduler", "MachineScheduler",
           "current_scheduler", "use_scheduler"]

MAX_SCHEDULE_TIMEOUT = sys.maxsize


class Scheduler(abc.ABC):
    """A clock that waiting code can let run."""

    #: Ticks a waiter sleeps between two checks of its condition.
    quantum = 1

    @property
    @abc.abstractmethod
    def now(self):
        """Ticks elapsed."""

    @abc.abstractmethod
    async def sleep(self, ticks):
        """Let ``ticks`` ticks pass (and whatever they bring: interrupts, other tasks)."""

    #: Ticks of stillness (:meth:`_still`) after which an unbounded wait is a deadlock;
    #: ``None``: never.
    deadlock_ticks = None

    async def wait_until(self, condition, timeout):
        """Sleep until ``condition()`` holds or ``timeout`` ticks passed. Returns the ticks
        left (at least 1) if it holds, else 0, like ``wait_event_timeout()``.

        An unbounded wait (``MAX_SCHEDULE_TIMEOUT``) raises
        :class:`~dmabuf_soc.sw.errors.KernelError` ``EDEADLK`` once nothing could make
        ``condition()`` true (:meth:`_still`) for more than :attr:`deadlock_ticks` ticks in a
        row."""
        unbounded = timeout == MAX_SCHEDULE_TIMEOUT and self.deadlock_ticks is not None
        with self._waiting() if unbounded else contextlib.nullcontext():
            remaining, still = timeout, 0
            while not condition():
                if remaining <= 0:
                    return 0
                step = min(remaining, self.quantum)
                if unbounded:
                    still = still + step if self._still() else 0
                    if still > self.deadlock_ticks:
                        raise KernelError(errno.EDEADLK, f"deadlock: waiting forever for "
                                                         f"{_describe(condition)}"
                                                         f"{self._why_still(still)}")
                await self.sleep(step)
                if remaining != MAX_SCHEDULE_TIMEOUT:
                    remaining -= step
            return max(remaining, 1)

    def _waiting(self):
        """A context for the duration of an unbounded wait."""
        return contextlib.nullcontext()

    def _still(self):
        """Whether nothing can make a waiter's condition true now."""
        return False

    def _why_still(self, ticks):
        """Why nothing can, for the deadlock error (after what the wait is for)."""
        return ", and nothing is left that could make it true"


class AsyncioScheduler(Scheduler):
    """Virtual ticks over asyncio: each tick yields once to the other tasks.

    Nothing waits forever: an unbounded wait (``MAX_SCHEDULE_TIMEOUT``) raises
    :class:`~dmabuf_soc.sw.errors.KernelError` ``EDEADLK`` once every task of the event loop
    has been either in such a wait here or blocked on a future nothing can complete (no
    timer pending, no other task runnable) for :attr:`deadlock_ticks` ticks in a row: in the
    simulated world no one is left to signal the fence or drop the lock. Linux would hang
    (or lockdep would splat); the model reports it.
    """

    deadlock_ticks = 256

    def __init__(self):
        self._now = 0
        self._waiters = set()

    @property
    def now(self):
        return self._now

    async def sleep(self, ticks):
        for _ in range(ticks):
            self._now += 1
            await asyncio.sleep(0)

    @contextlib.contextmanager
    def _waiting(self):
        task = None
        with contextlib.suppress(RuntimeError):
            task = asyncio.current_task()
        if task is not None:
            self._waiters.add(task)
        try:
            yield
        finally:
            self._waiters.discard(task)

    def _still(self):
        """Whether no task can make progress: each is one of our unbounded waiters or is
        blocked on a future, and the loop has no timer that could wake anything."""
        try:
            loop = asyncio.get_running_loop()
            tasks = asyncio.all_tasks(loop)
        except RuntimeError:
            return False
        if getattr(loop, "_scheduled", True) or getattr(loop, "_default_executor", None):
            return False        # a timer or a worker thread may still wake someone
        selector = getattr(loop, "_selector", None)
        if selector is None or len(selector.get_map()) > 1:
            return False        # I/O besides the loop's own wake-up pipe
        return all(task in self._waiters or getattr(task, "_fut_waiter", None) is not None
                   for task in tasks)

    def _why_still(self, ticks):
        return ", and no task is left that could make it true"


class MachineScheduler(Scheduler):
    """Cycles of a :class:`~dmabuf_soc.sw.machine.base.Machine`, with interrupt handlers.

    Parameters
    ----------
    machine : Machine
    quantum : int
        Cycles between two checks of a waiter's condition (and of the interrupt lines).
    """

    def __init__(self, machine, *, quantum=16, deadlock_cycles=None):
        if not isinstance(quantum, int) or quantum < 1:
            raise ValueError(f"quantum must be a positive integer, not {quantum!r}")
        if deadlock_cycles is not None and (not isinstance(deadlock_cycles, int)
                                            or deadlock_cycles < 1):
            raise ValueError(f"deadlock_cycles must be a positive integer or None, not "
                             f"{deadlock_cycles!r}")
        self.machine = machine
        self.quantum = quantum
        self.deadlock_cycles = deadlock_cycles
        self._handlers = {}
        self._busy = []

    def add_busy(self, predicate):
        """Tell the scheduler about hardware work that may still raise an interrupt:
        ``predicate()`` is true while a driver has work in flight (a DMA channel with
        descriptors issued and not completed)."""
        if not callable(predicate):
            raise ValueError(f"busy predicate must be callable, not {predicate!r}")
        self._busy.append(predicate)

    def hardware_idle(self):
        """No registered driver has work in flight and no handled interrupt is pending."""
        return (not any(predicate() for predicate in self._busy)
                and not any(self.machine.irq_pending(line) for line in self._handlers))

    @property
    def deadlock_ticks(self):
        """:attr:`deadlock_cycles`: with it set, an unbounded wait raises ``EDEADLK`` once
        the hardware has been idle (:meth:`hardware_idle`) for that many cycles in a row
        while its condition stayed false: the driver is the only task, so nothing is left
        that could make it true."""
        return self.deadlock_cycles

    def _still(self):
        return self.hardware_idle()

    def _why_still(self, ticks):
        return f"; the hardware has been idle for {ticks} cycles with no work in flight"

    @property
    def now(self):
        return self.machine.cycle

    def request_irq(self, line, handler):
        """Run ``await handler()`` whenever ``line`` is found asserted (``request_irq()``).
        The handler must deassert the line (acknowledge the interrupt)."""
        if line in self._handlers:
            raise ValueError(f"IRQ line {line!r} already has a handler")
        self._handlers[line] = handler

    def free_irq(self, line):
        del self._handlers[line]

    async def service_irqs(self):
        for line, handler in list(self._handlers.items()):
            if self.machine.irq_pending(line):
                await handler()

    async def sleep(self, ticks):
        await self.machine.tick(ticks)
        await self.service_irqs()


def _describe(condition):
    """What a wait condition waits for: the object behind a bound method, else its name."""
    target = getattr(condition, "__self__", None)
    return repr(target) if target is not None else getattr(condition, "__qualname__",
                                                          repr(condition))


_current = contextvars.ContextVar("scheduler", default=None)
_default = AsyncioScheduler()


def current_scheduler():
    """The scheduler installed with :func:`use_scheduler`, else a shared
    :class:`AsyncioScheduler`."""
    scheduler = _current.get()
    return _default if scheduler is None else scheduler


@contextlib.contextmanager
def use_scheduler(scheduler):
    """Make ``scheduler`` current inside the ``with`` block."""
    if not isinstance(scheduler, Scheduler):
        raise TypeError(f"scheduler must be a Scheduler, not {scheduler!r}")
    token = _current.set(scheduler)
    try:
        yield scheduler
    finally:
        _current.reset(token)
