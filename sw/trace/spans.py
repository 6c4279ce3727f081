"""The driver's side of the trace: which trace is being recorded, and the driver's spans and
marks in it.

A command that writes a timeline or a report records its simulations within
:func:`recording`; the backends (:func:`~dmabuf_soc.sw.machine.backends.simulate`) then start
a :class:`~.record.Run` for each and install it as the current run while the scenario runs.
Driver code marks what it does with :func:`span` (a block of cycles), :func:`mark` (one
cycle) and :func:`traced` (every call of a function). Outside a traced simulation each of
them costs one test of a module variable.
"""

import contextlib
import functools
import inspect

from .record import Trace

__all__ = ["recording", "active_trace", "current_run", "running", "span", "mark", "traced"]

_trace = None
_run = None


@contextlib.contextmanager
def recording(trace=None):
    """Trace the simulations of the block into ``trace`` (a new :class:`~.record.Trace` if
    omitted), which the block receives."""
    global _trace
    trace = Trace() if trace is None else trace
    if not isinstance(trace, Trace):
        raise TypeError(f"trace must be a Trace, not {trace!r}")
    outer, _trace = _trace, trace
    try:
        yield trace
    finally:
        _trace = outer


def active_trace():
    """The :class:`~.record.Trace` being recorded, or ``None``."""
    return _trace


def current_run():
    """The :class:`~.record.Run` of the simulation under way, or ``None``."""
    return _run


@contextlib.contextmanager
def running(run):
    """Make ``run`` the current run within the block (for the backends)."""
    global _run
    outer, _run = _run, run
    try:
        yield run
    finally:
        _run = outer


@contextlib.contextmanager
def span(layer, name, **extra):
    """Mark the cycles of the block as span ``name`` of driver layer ``layer``."""
    run = _run
    if run is None:
        yield
        return
    start = run.cycle()
    try:
        yield
    finally:
        run.span(layer, name, start, run.cycle(), **extra)


def mark(layer, name, **extra):
    """Mark event ``name`` of driver layer ``layer`` at the current cycle."""
    run = _run
    if run is not None:
        run.mark(layer, name, run.cycle(), **extra)


def traced(layer, name=None):
    """Decorator: every call of the function (or coroutine function) is span ``name`` (the
    function's name by default) of layer ``layer``."""
    def decorate(function):
        label = function.__name__ if name is None else name
        if inspect.iscoroutinefunction(function):
            @functools.wraps(function)
            async def wrapper(*args, **kwargs):
                if _run is None:
                    return await function(*args, **kwargs)
                with span(layer, label):
                    return await function(*args, **kwargs)
        else:
            @functools.wraps(function)
            def wrapper(*args, **kwargs):
                if _run is None:
                    return function(*args, **kwargs)
                with span(layer, label):
                    return function(*args, **kwargs)
        return wrapper
    return decorate
