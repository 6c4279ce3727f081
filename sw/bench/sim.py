"""Simulation speed: the same DMA-heavy driver scenario on every backend, the built-in simulator and the compiled models.

The scenario is an end-to-end transfer with the driver in Python: a scatter-gather copy of
64 KiB in scattered 4 KiB pages from the low DDR bank to the high one by DMA channel 0 (the
descriptors written by the CPU through uncached stores, completion by interrupt), checked
through the DDR backdoor. Speeds are simulated cycles per wall-clock second of the scenario
(model construction and build excluded); ``<backend>_over_pysim`` and
``verilator_over_cxxrtl`` are their ratios, and every backend must agree on the cycle count
and the bytes (``cycles_agree``). ``<backend>_build_seconds`` is the one-off cost of a compiled
model (conversion and compile; a cached build reports the time it took when it was made).
A compiled backend this machine cannot build (no compiler) is left out of ``backends``.
"""

import hashlib
import random
import time

from ...hw.config import Parameter
from ...hw.soc import IRQ_LINES
from ..dma.channel import DmaChannel
from ..machine.backends import CHOICES, COMPILED, compiled_backend, simulate
from ..regs import RegisterBank, register_map

__all__ = ["dma_copy", "run"]

PAGE = 4096
#: Descriptor ring of the copy, in the low bank above the pages.
RING = 0x8008_0000


async def dma_copy(machine, *, length=64 * 1024, page=PAGE, seed=0, channel=0, progress=None):
    """Copy ``length`` bytes (a multiple of ``page``) in shuffled pages from the low bank to
    the high bank with DMA channel ``channel``; returns a summary with the cycle count and a
    digest of the destination."""
    if not isinstance(page, int) or page <= 0:
        raise ValueError(f"Page size must be a positive integer, not {page!r}")
    if not isinstance(length, int) or length <= 0 or length % page:
        raise ValueError(f"Copy length must be a positive multiple of {page}, not {length!r}")
    rng = random.Random(seed)
    low, high = machine.config.banks[0], machine.config.banks[1]
    pages = length // page
    if 2 * length > RING - low.base or 2 * length > high.size:
        raise ValueError(f"A copy of {length} bytes does not fit the banks")
    srcs = [low.base + page * index for index in rng.sample(range(2 * pages), pages)]
    dsts = [high.base + page * index for index in rng.sample(range(2 * pages), pages)]
    data = rng.randbytes(length)
    for index, src in enumerate(srcs):
        await machine.poke(src, data[index * page:(index + 1) * page])
    chan = DmaChannel(machine, RegisterBank(machine, f"dma{channel}"), desc_base=RING,
                      desc_count=pages + 1, irq_line=IRQ_LINES[f"dma{channel}"])
    start = machine.cycle
    tx = chan.prep_sg([(dst, page) for dst in dsts], [(src, page) for src in srcs])
    chan.submit(tx)
    await chan.issue_pending()
    await chan.wait(tx)
    cycles = machine.cycle - start
    copied = b"".join([await machine.peek(dst, page) for dst in dsts])
    if progress is not None:
        progress(f"{length} bytes copied in {cycles} cycles")
    return {
        "copy_cycles": cycles,
        "cycles": machine.cycle,
        "correct": copied == data,
        "destination_sha256": hashlib.sha256(copied).hexdigest(),
        "mmio_writes": chan.mmio_writes,
    }


def _timed(backend, length):
    timing = {}

    async def scenario(machine):
        start = time.perf_counter()
        start_cycle = machine.cycle
        summary = await dma_copy(machine, length=length)
        timing["seconds"] = time.perf_counter() - start
        timing["cycles"] = machine.cycle - start_cycle
        return summary

    summary = simulate(scenario, backend=backend)
    return summary, timing


#: The backends this benchmark runs on: all of them, whatever ``--backend`` says.
BACKENDS = CHOICES
#: The longest copy: the source and destination pages are picked among twice as many in the
#: low bank below the descriptor ring, 512 KiB into it.
MAX_LENGTH = 256 * 1024
#: What ``--set`` takes: the keyword arguments of :func:`run` and their ranges.
PARAMETERS = {p.name: p for p in (
    Parameter("length", PAGE, MAX_LENGTH, "bytes the DMA copy moves",
              "whole pages, picked among twice as many below the descriptor ring, 512 KiB "
              "into the low bank", unit="bytes", multiple_of=PAGE),
    Parameter("repeat", 1, 1000, "runs of the copy on each compiled model",
              "each run is a new model: 1000 runs take minutes"),
)}


def run(*, backend="auto", progress=None, length=64 * 1024, repeat=20):
    """Measure every available backend on :func:`dma_copy` of ``length`` bytes (``backend``
    is not used: all are measured). Each compiled model runs the scenario ``repeat`` times,
    which its speed makes necessary for a steady figure."""
    PARAMETERS["length"].check(length)
    PARAMETERS["repeat"].check(repeat)
    compiled = [name for name in COMPILED if compiled_backend(name).available()]
    steps = 2 * len(compiled) + 2

    def step(done, what):
        if progress is not None:
            progress(done, steps, what)

    builds = {}
    for index, name in enumerate(compiled):
        step(index, f"building the {name} model (cached after the first time)")
        builds[name] = compiled_backend(name).build()
    # Compiled once per process, like the models: not part of any backend's speed.
    register_map()
    # The compiled models run first: after a pysim run, this process holds the simulator's
    # millions of objects, whose garbage-collector passes would slow the driver's Python.
    runs = {}
    for index, name in enumerate(compiled):
        step(len(compiled) + index, f"running on {name}")
        runs[name] = [_timed(name, length) for _ in range(repeat)]
    step(steps - 2, "running on pysim")
    runs["pysim"] = [_timed("pysim", length)]
    step(steps - 1, "done")

    summaries = [summary for results in runs.values() for summary, _ in results]
    speed = {name: sum(timing["cycles"] for _, timing in results) /
             sum(timing["seconds"] for _, timing in results)
             for name, results in runs.items()}
    figures = {
        "scenario": f"dma_copy of {length} bytes in {length // PAGE} scattered pages",
        "backends": ["pysim", *compiled],
        "cycles": runs["pysim"][0][1]["cycles"],
        "cycles_agree": all(summary == summaries[0] for summary in summaries),
        "data_correct": all(summary["correct"] for summary in summaries),
        "pysim_cycles_per_second": round(speed["pysim"], 1),
    }
    for name in compiled:
        figures.update({
            f"{name}_cycles_per_second": round(speed[name], 1),
            f"{name}_over_pysim": round(speed[name] / speed["pysim"], 1),
            f"{name}_build_seconds": round(builds[name].seconds, 1),
            f"{name}_build_cached": builds[name].cached,
        })
    if len(compiled) == 2:
        figures["verilator_over_cxxrtl"] = round(speed["verilator"] / speed["cxxrtl"], 2)
    return figures
