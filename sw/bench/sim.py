"""Simulation speed: the same DMA-heavy driver scenario on the built-in simulator and on the compiled (CXXRTL) model.

The scenario is an end-to-end transfer with the driver in Python: a scatter-gather copy of
64 KiB in scattered 4 KiB pages from the low DDR bank to the high one by DMA channel 0 (the
descriptors written by the CPU through uncached stores, completion by interrupt), checked
through the DDR backdoor. Speeds are simulated cycles per wall-clock second of the scenario
(model construction and build excluded); ``speedup`` is their ratio, and the two backends
must agree on the cycle count. ``build_seconds`` is the one-off cost of the compiled model
(conversion and compile; a cached build reports the time it took when it was made).
"""

import hashlib
import random
import time

from ...hw.soc import IRQ_LINES
from ..dma.channel import DmaChannel
from ..machine.backends import simulate
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


def run(*, backend="pysim", progress=None, length=64 * 1024, repeat=20):
    """Measure both backends on :func:`dma_copy` of ``length`` bytes (``backend`` is not
    used: both are always measured). The compiled model runs the scenario ``repeat`` times,
    which its speed makes necessary for a steady figure."""
    from ..machine.cxxrtl import build
    steps = 3

    def step(done, what):
        if progress is not None:
            progress(done, steps, what)

    step(0, "building the compiled model (cached after the first time)")
    built = build()
    # Compiled once per process, like the model: not part of either backend's speed.
    register_map()
    # The compiled model runs first: after a pysim run, this process holds the simulator's
    # millions of objects, whose garbage-collector passes would slow the driver's Python.
    step(1, f"compiled model ready (build took {built.seconds:.1f} s); running on cxxrtl")
    cxxrtl_runs = [_timed("cxxrtl", length) for _ in range(repeat)]
    cxxrtl, _ = cxxrtl_runs[0]
    step(2, "running on pysim")
    pysim, pysim_timing = _timed("pysim", length)
    cxxrtl_cycles = sum(timing["cycles"] for _, timing in cxxrtl_runs)
    cxxrtl_seconds = sum(timing["seconds"] for _, timing in cxxrtl_runs)
    step(3, "done")
    pysim_speed = pysim_timing["cycles"] / pysim_timing["seconds"]
    cxxrtl_speed = cxxrtl_cycles / cxxrtl_seconds
    return {
        "scenario": f"dma_copy of {length} bytes in {length // PAGE} scattered pages",
        "pysim_cycles": pysim_timing["cycles"],
        "cxxrtl_cycles": cxxrtl_runs[0][1]["cycles"],
        "cycles_agree": all(summary == pysim for summary, _ in cxxrtl_runs),
        "data_correct": pysim["correct"] and cxxrtl["correct"],
        "pysim_cycles_per_second": round(pysim_speed, 1),
        "cxxrtl_cycles_per_second": round(cxxrtl_speed, 1),
        "speedup": round(cxxrtl_speed / pysim_speed, 1),
        "build_seconds": round(built.seconds, 1),
        "build_cached": built.cached,
    }
