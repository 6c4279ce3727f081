"""What recording the transaction trace costs: a DMA-heavy scenario with and without the trace on every backend.

The scenario is ``bench sim``'s (:func:`~.sim.dma_copy`: a scatter-gather copy of scattered
pages, descriptors written by the CPU, completion by interrupt). Each backend runs it without
and with the trace (``--timeline``'s recording), alternately, in a process of its own, and the
fastest run of each kind counts. ``<backend>_trace_overhead_percent`` is the extra processor
time of the traced simulation (the monitor sampling the probes at every edge, on the compiled models pairing them
into transactions as they complete and handing them over at the end, the driver's spans), of
which ``<backend>_probe_build_percent`` on a compiled model is that of the build with the
``probe`` port, run untraced; ``<backend>_assembly_percent`` is the time taken afterwards,
once, to have every transaction (:meth:`~..trace.record.Run.transactions`: on pysim pairing the
handshakes, on the compiled models ordering the monitor's rows), and
``<backend>_records_percent`` that of making of them the records the writers take
(:meth:`~..trace.record.Trace.records`, a dict each), both against the untraced simulation's
time. The compiled backends' traced runs are a separate build of the SoC (with the ``probe``
port), built here unless cached. Both runs must count the same cycles.
"""

import concurrent.futures
import multiprocessing
import time

from ..machine.backends import CHOICES, COMPILED, compiled_backend, simulate
from ...hw.config import Parameter
from ..trace.spans import recording
from .sim import PAGE, dma_copy

__all__ = ["run", "measure"]

#: The backends this benchmark runs on: all of them, whatever ``--backend`` says.
BACKENDS = CHOICES
#: What ``--set`` takes: the keyword arguments of :func:`run` and their ranges.
PARAMETERS = {p.name: p for p in (
    Parameter("length", PAGE, 256 * 1024, "bytes the DMA copy moves on the compiled models",
              "whole pages", unit="bytes", multiple_of=PAGE),
    Parameter("pysim_length", PAGE, 256 * 1024, "bytes the DMA copy moves on pysim",
              "whole pages; pysim runs a few hundred cycles a second", unit="bytes",
              multiple_of=PAGE),
    Parameter("repeat", 1, 100, "runs of each kind on each compiled model (at most 3 on pysim)",
              "the fastest of each kind counts"),
)}


def measure(backend, *, length, repeat):
    """The processor seconds of the fastest untraced and traced simulations of
    :func:`dma_copy` of ``length`` bytes on ``backend`` (``repeat`` of each; on a compiled
    backend also untraced on the build with the probe port, ``probe_build``), of the fastest
    assembly of the traced run's transactions and making of its records, the number of
    events, and whether every run counted the same cycles."""
    best = {"plain": None, "probe_build": None, "traced": None, "assembly": None,
            "records": None}
    kinds = ("plain", "probe_build", "traced") if backend in COMPILED else ("plain", "traced")
    results, events = set(), 0

    def keep(kind, seconds):
        if best[kind] is None or seconds < best[kind]:
            best[kind] = seconds

    for _ in range(repeat):
        for kind in kinds:
            traced = kind == "traced"
            timing = {}

            async def scenario(machine):
                start = time.process_time()
                summary = await dma_copy(machine, length=length)
                collect = getattr(machine, "collect", None)
                if traced and collect is not None:
                    collect()           # the compiled monitor hands its rows over
                timing["seconds"] = time.process_time() - start
                return summary

            if traced:
                with recording() as trace:
                    summary = simulate(scenario, backend=backend)
                start = time.process_time()
                for run in trace.runs:
                    run.transactions()
                middle = time.process_time()
                records = trace.records()
                keep("assembly", middle - start)
                keep("records", time.process_time() - middle)
                events = trace.runs[0].event_count
                if records[0]["end"] != summary["cycles"]:
                    raise AssertionError(f"{backend}: the trace does not cover the run")
            elif kind == "probe_build":
                from ..machine.compiled.machine import CompiledMachine, run_until_complete
                build = compiled_backend(backend).build(probes=True)
                with CompiledMachine(backend, build=build) as machine:
                    summary = run_until_complete(scenario(machine))
            else:
                summary = simulate(scenario, backend=backend)
            results.add(tuple(sorted(summary.items())))
            keep(kind, timing["seconds"])
    return best, events, len(results) == 1


def run(*, backend="auto", progress=None, length=256 * 1024, pysim_length=16 * 1024,
        repeat=5):
    """Measure the trace's cost on every available backend (``backend`` is not used)."""
    for name, value in (("length", length), ("pysim_length", pysim_length),
                        ("repeat", repeat)):
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
    figures = {"scenario": f"dma_copy of {length} bytes ({pysim_length} on pysim)",
               "backends": ["pysim", *compiled], "seconds_are": "processor seconds"}
    agree = True
    # Each backend in a process of its own, as a run of `demo --timeline` is: what one
    # backend leaves in the heap (a pysim run's millions of objects, a compiled run's
    # records) makes the garbage collector's passes in the next one longer, and the traced
    # runs, which allocate more, pay more of that (pysim's overhead measured 20 % after the
    # compiled runs in one process, 1 % alone).
    context = multiprocessing.get_context("spawn")
    for index, name in enumerate([*compiled, "pysim"]):
        step(len(compiled) + index, f"running on {name} without and with the trace")
        with concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as pool:
            best, events, same = pool.submit(
                measure, name, length=pysim_length if name == "pysim" else length,
                repeat=min(repeat, 3) if name == "pysim" else repeat).result()
        agree = agree and same
        figures[f"{name}_seconds"] = round(best["plain"], 4)
        figures[f"{name}_traced_seconds"] = round(best["traced"], 4)
        figures[f"{name}_trace_overhead_percent"] = round(
            100 * (best["traced"] / best["plain"] - 1), 2)
        if best["probe_build"] is not None:
            figures[f"{name}_probe_build_seconds"] = round(best["probe_build"], 4)
            figures[f"{name}_probe_build_percent"] = round(
                100 * (best["probe_build"] / best["plain"] - 1), 2)
        figures[f"{name}_assembly_seconds"] = round(best["assembly"], 4)
        figures[f"{name}_assembly_percent"] = round(100 * best["assembly"] / best["plain"], 2)
        figures[f"{name}_records_seconds"] = round(best["records"], 4)
        figures[f"{name}_records_percent"] = round(100 * best["records"] / best["plain"], 2)
        figures[f"{name}_events"] = events
    figures["cycles_agree"] = agree
    return figures
