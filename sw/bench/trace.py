"""What recording the transaction trace costs: a DMA-heavy scenario with and without the trace on every backend.

The scenario is ``bench sim``'s (:func:`~.sim.dma_copy`: a scatter-gather copy of scattered
pages, descriptors written by the CPU, completion by interrupt). Each backend, in a process of
its own kept to one processor, runs it ``samples`` times of each kind in turn: untraced, on a
compiled model also untraced on the build with the ``probe`` port, and traced (``--timeline``'s
recording). A simulation's time is that of the simulating thread; each figure is the median,
over the samples, of a simulation's time against that of the untraced one just before it (its
quartiles beside it), so that the machine's slow spells fall on both sides of each ratio.

``<backend>_trace_overhead_percent`` is the traced simulation against the untraced one: what a
run with ``--timeline`` costs. On a compiled model it has two parts:
``<backend>_probe_build_percent``, the build with the ``probe`` port run untraced, and
``<backend>_recording_percent``, the traced simulation against that build untraced (the
monitor sampling the probes at every edge and pairing them into transactions, the rows handed
over at the end, the driver's spans): what recording does, on one model. (On pysim, whose
untraced runs have no probes either, the two recording figures are the same.)
``<backend>_assembly_percent`` is the time taken afterwards, once, to have every transaction
(:meth:`~..trace.record.Run.transactions`: on pysim pairing the handshakes, on the compiled
models ordering the monitor's rows), and ``<backend>_records_percent`` that of making of them
the records the writers take (:meth:`~..trace.record.Trace.records`, a dict each). The probe
builds are built here unless cached. Every simulation must count the same cycles.

With ``--set instructions=1`` the benchmark counts instead of timing (:func:`count`): the
instructions each kind of simulation executes per simulated cycle, under valgrind, which a
noisy machine does not change. ``<backend>_instructions_per_cycle`` is the untraced model's,
and ``<backend>_trace_overhead_instructions_percent``,
``<backend>_probe_build_instructions_percent`` and ``<backend>_recording_instructions_percent``
are the three comparisons above in instructions. The counts show the work each kind does, not
how fast the processor does it: where a build's time and its count part, the processor runs
the same work at another speed (its caches, its predictors, where the code and data lie).
"""

import concurrent.futures
import contextlib
import gc
import multiprocessing
import os
import statistics
import time

from ..machine.backends import CHOICES, COMPILED, compiled_backend, simulate
from ...hw.config import Parameter
from ..trace.spans import recording
from . import _instructions
from .sim import PAGE, dma_copy

__all__ = ["run", "measure", "count", "counted_simulation"]

#: The backends this benchmark runs on: all of them, whatever ``--backend`` says.
BACKENDS = CHOICES
#: What ``--set`` takes: the keyword arguments of :func:`run` and their ranges.
PARAMETERS = {p.name: p for p in (
    Parameter("length", PAGE, 256 * 1024, "bytes the DMA copy moves on the compiled models",
              "whole pages", unit="bytes", multiple_of=PAGE),
    Parameter("pysim_length", PAGE, 256 * 1024, "bytes the DMA copy moves on pysim",
              "whole pages; pysim runs a few hundred cycles a second", unit="bytes",
              multiple_of=PAGE),
    Parameter("samples", 1, 1000, "simulations of each kind on each compiled model",
              "one of each kind in turn; the median ratio counts"),
    Parameter("pysim_samples", 1, 100, "simulations of each kind on pysim",
              "about three seconds each for 8 KiB"),
    Parameter("instructions", 0, 1, "1: count instructions (valgrind) instead of timing",
              "about four minutes on two cores; needs Debian's valgrind"),
)}
#: The environment of the processes that measure: the BLAS library that numpy loads starts
#: threads of its own, which spin for a while after it is used and would be counted.
QUIET_THREADS = {name: "1" for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS",
                                        "MKL_NUM_THREADS")}


def _simulation(backend, kind, scenario):
    """Run ``async def scenario(machine)`` on ``backend`` as a simulation of ``kind``
    (``plain``, ``probe_build`` or ``traced``); what it returns, and the trace of a traced
    simulation (else ``None``)."""
    if kind == "traced":
        with recording() as trace:
            return simulate(scenario, backend=backend), trace
    if kind == "probe_build":
        from ..machine.compiled.machine import CompiledMachine, run_until_complete
        build = compiled_backend(backend).build(probes=True)
        with CompiledMachine(backend, build=build) as machine:
            return run_until_complete(scenario(machine)), None
    return simulate(scenario, backend=backend), None


def _copy(kind, length, timing=None):
    """The scenario of a simulation of ``kind``: :func:`dma_copy` of ``length`` bytes, after
    which the compiled monitor of a traced one hands its rows over; the seconds of the
    simulating thread it took go into ``timing``."""
    async def scenario(machine):
        start = time.thread_time()
        summary = await dma_copy(machine, length=length)
        collect = getattr(machine, "collect", None)
        if kind == "traced" and collect is not None:
            collect()
        if timing is not None:
            timing["seconds"] = time.thread_time() - start
        return summary
    return scenario


def _once(backend, kind, length):
    """One simulation of :func:`dma_copy` of ``length`` bytes, of ``kind``: its summary and
    the seconds of the simulating thread it took, and for a traced run those of having its
    transactions, of making its records and the number of events it recorded."""
    timing = {"assembly": 0.0, "records": 0.0, "events": 0}
    summary, trace = _simulation(backend, kind, _copy(kind, length, timing))
    if trace is not None:
        start = time.thread_time()
        for each in trace.runs:
            each.transactions()
        middle = time.thread_time()
        records = trace.records()
        timing["assembly"], timing["records"] = middle - start, time.thread_time() - middle
        timing["events"] = trace.runs[0].event_count
        if records[0]["end"] != summary["cycles"]:
            raise AssertionError(f"{backend}: the trace does not cover the run")
    return summary, timing


def counted_simulation(backend, kind, length):
    """The simulation whose instructions :func:`count` counts, in a process of its own: one
    of ``kind`` of :func:`dma_copy` of ``length`` bytes on ``backend`` (a traced one
    recording, without making its records afterwards); prints its cycles."""
    summary, _ = _simulation(backend, kind, _copy(kind, int(length)))
    print(summary["cycles"])


def _kinds(backend):
    return ("plain", "probe_build", "traced") if backend in COMPILED else ("plain", "traced")


def measure(backend, *, length, samples):
    """``samples`` simulations of :func:`dma_copy` of ``length`` bytes on ``backend`` of each
    kind in turn: untraced (``plain``), on a compiled backend untraced on the build with the
    probe port (``probe_build``), and traced. Returns the seconds of each kind's simulations
    and of the traced ones' ``assembly`` and ``records``, as lists in sample order, the
    number of events a traced simulation records, and whether every simulation counted the
    same cycles. The process keeps to one processor, and each simulation starts after a
    collection of the garbage, so that a simulation and the next of another kind differ only
    in their kind."""
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    kinds = _kinds(backend)
    seconds = {name: [] for name in (*kinds, "assembly", "records")}
    results, events = set(), 0
    for _ in range(samples):
        for kind in kinds:
            gc.collect()
            summary, timing = _once(backend, kind, length)
            results.add(tuple(sorted(summary.items())))
            seconds[kind].append(timing["seconds"])
            if kind == "traced":
                seconds["assembly"].append(timing["assembly"])
                seconds["records"].append(timing["records"])
                events = timing["events"]
    return seconds, events, len(results) == 1


@contextlib.contextmanager
def _environment(values):
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                del os.environ[name]
            else:
                os.environ[name] = value


def _percent(fraction):
    return round(100 * fraction, 2)


def _spread(ratios):
    """The median and the quartiles of ``ratios``, less one, in percent."""
    quartiles = (statistics.quantiles(ratios, n=4, method="inclusive") if len(ratios) > 1
                 else ratios * 3)
    return _percent(statistics.median(ratios) - 1), [_percent(quartiles[0] - 1),
                                                     _percent(quartiles[2] - 1)]


def run(*, backend="auto", progress=None, length=256 * 1024, pysim_length=8 * 1024,
        samples=30, pysim_samples=8, instructions=0):
    """Measure the trace's cost on every available backend (``backend`` is not used): in
    time, or with ``instructions=1`` in instructions (:func:`count`)."""
    for name, value in (("length", length), ("pysim_length", pysim_length),
                        ("samples", samples), ("pysim_samples", pysim_samples),
                        ("instructions", instructions)):
        PARAMETERS[name].check(value)
    compiled = [name for name in COMPILED if compiled_backend(name).available()]
    steps = 2 * len(compiled) + 1

    def step(done, what):
        if progress is not None:
            progress(done, steps, what)

    for index, name in enumerate(compiled):
        step(index, f"building the {name} models, with and without the probe port (cached)")
        compiled_backend(name).build()
        compiled_backend(name).build(probes=True)
    if instructions:
        return count(["pysim", *compiled], length=length, pysim_length=pysim_length,
                     progress=progress)
    figures = {"scenario": f"dma_copy of {length} bytes ({pysim_length} on pysim)",
               "samples": samples, "pysim_samples": pysim_samples,
               "backends": ["pysim", *compiled], "seconds_are": "of the simulating thread"}
    agree = True
    # Each backend in a process of its own, as a run of `demo --timeline` is: what one
    # backend leaves in the heap (a pysim run's millions of objects, a compiled run's
    # records) makes the garbage collector's passes in the next one longer, and the traced
    # runs, which allocate more, pay more of that (pysim's overhead measured 20 % after the
    # compiled runs in one process, 1 % alone).
    context = multiprocessing.get_context("spawn")
    for index, name in enumerate([*compiled, "pysim"]):
        step(len(compiled) + index, f"running on {name} without and with the trace")
        pysim = name == "pysim"
        with _environment(QUIET_THREADS), concurrent.futures.ProcessPoolExecutor(
                1, mp_context=context) as pool:
            seconds, events, same = pool.submit(
                measure, name, length=pysim_length if pysim else length,
                samples=pysim_samples if pysim else samples).result()
        agree = agree and same

        def ratios(kind, base="plain"):
            """Each simulation of ``kind`` against the ``base`` one of its sample."""
            return [value / before for value, before in zip(seconds[kind], seconds[base])]

        figures[f"{name}_seconds"] = round(statistics.median(seconds["plain"]), 4)
        figures[f"{name}_traced_seconds"] = round(statistics.median(seconds["traced"]), 4)
        (figures[f"{name}_trace_overhead_percent"],
         figures[f"{name}_trace_overhead_quartiles"]) = _spread(ratios("traced"))
        if "probe_build" in seconds:
            figures[f"{name}_probe_build_seconds"] = round(
                statistics.median(seconds["probe_build"]), 4)
            (figures[f"{name}_probe_build_percent"],
             figures[f"{name}_probe_build_quartiles"]) = _spread(ratios("probe_build"))
            (figures[f"{name}_recording_percent"],
             figures[f"{name}_recording_quartiles"]) = _spread(ratios("traced", "probe_build"))
        else:
            (figures[f"{name}_recording_percent"], figures[f"{name}_recording_quartiles"]) = (
                figures[f"{name}_trace_overhead_percent"],
                figures[f"{name}_trace_overhead_quartiles"])
        for kind in ("assembly", "records"):
            figures[f"{name}_{kind}_percent"] = _percent(
                statistics.median(ratios(kind)))
        figures[f"{name}_events"] = events
    figures["cycles_agree"] = agree
    return figures


#: The code of the process whose instructions :func:`count` counts.
_COUNTED = ("import sys; from dmabuf_soc.sw.bench.trace import counted_simulation; "
            "counted_simulation(*sys.argv[1:])")


def count(backends, *, length, pysim_length, progress=None):
    """The instructions that a simulation of each kind executes on each of ``backends``, per
    simulated cycle: each simulation runs in a process of its own under valgrind's cachegrind
    (:mod:`._instructions`), once copying ``length`` bytes (``pysim_length`` on pysim) and
    once a page, and only the difference between the two counts, which leaves out everything
    but the extra cycles (the interpreter's start, the imports, opening the model). The
    processes run side by side, one per processor: a count does not depend on what else the
    machine does."""
    long = {backend: pysim_length if backend == "pysim" else length for backend in backends}
    for backend, size in long.items():
        if size <= PAGE:
            raise ValueError(f"Counting instructions on {backend} needs a copy longer than a "
                             f"page ({PAGE} bytes), not {size}")
    jobs = [(backend, kind, size) for backend in backends for kind in _kinds(backend)
            for size in (long[backend], PAGE)]
    totals = {}
    if progress is not None:
        progress(0, len(jobs), "counting instructions with cachegrind")
    with concurrent.futures.ThreadPoolExecutor(os.cpu_count() or 1) as pool:
        futures = {pool.submit(_instructions.count, _COUNTED, *job, env=QUIET_THREADS): job
                   for job in jobs}
        for done, future in enumerate(concurrent.futures.as_completed(futures), 1):
            executed, printed = future.result()
            if progress is not None:
                progress(done, len(jobs), "counting instructions with cachegrind")
            totals[futures[future]] = executed, int(printed.split()[-1])
    figures = {"scenario": f"dma_copy of {length} bytes ({pysim_length} on pysim) less one "
                           f"of {PAGE}",
               "backends": list(backends), "counted": "instructions (valgrind cachegrind)",
               "valgrind": _instructions.version()}
    agree = True
    for backend, size in long.items():
        extra = {kind: totals[backend, kind, size][0] - totals[backend, kind, PAGE][0]
                 for kind in _kinds(backend)}
        cycles = {totals[backend, kind, size][1] - totals[backend, kind, PAGE][1]
                  for kind in _kinds(backend)}
        agree = agree and len(cycles) == 1
        figures[f"{backend}_instructions_per_cycle"] = round(extra["plain"] / min(cycles))
        figures[f"{backend}_trace_overhead_instructions_percent"] = _percent(
            extra["traced"] / extra["plain"] - 1)
        if "probe_build" in extra:
            figures[f"{backend}_probe_build_instructions_percent"] = _percent(
                extra["probe_build"] / extra["plain"] - 1)
            figures[f"{backend}_recording_instructions_percent"] = _percent(
                extra["traced"] / extra["probe_build"] - 1)
        else:
            figures[f"{backend}_recording_instructions_percent"] = figures[
                f"{backend}_trace_overhead_instructions_percent"]
    figures["cycles_agree"] = agree
    return figures
