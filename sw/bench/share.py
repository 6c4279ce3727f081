"""Sharing a 1 MiB dma-buf: the cycles of each stage of the demo, and three ways of moving a scattered buffer (IOMMU + one descriptor, scatter-gather descriptors, per-segment register programming).

Two runs on a SoC with 4 MiB DDR banks (room for two 1 MiB buffers in the high bank):

* the demo's story (:func:`~dmabuf_soc.sw.scenarios.demo.story`) for a 1 MiB buffer, every
  page zeroed by the CPU as a kernel would (no reset-zero shortcut), with its stage cycles;
* a copy between two 1 MiB buffers of 256 pages each, no two of them adjacent, so that
  without an IOMMU every page is a segment of its own: the cycles from the first register
  write to the fence, and the MMIO writes, for each way the SoC offers: through the SMMU
  (the channel's device in a DMA domain, each buffer one contiguous IOVA range, one
  descriptor, IOTLB cold), with one scatter-gather descriptor per page, and with one
  register programming per page. Each also gives the cycles its mapping took
  (``map_cycles``: page-table writes for the IOMMU, none of them for the other two).

Every copy is checked byte by byte. On the built-in simulator (a few hundred cycles per
second) this takes hours; ``backend="cxxrtl"`` runs the compiled model.
"""

from ..dma.copy_engine import CopyEngine
from ..machine.backends import CHOICES, choose
from ..mm.page_alloc import PAGE_SIZE
from ..scenarios._e2e import counter_delta, pattern, session
from ..scenarios._run import run_scenario
from ..scenarios.demo import story
from ._copy import MiB, bench_config, clear, fill, scattered_pair, timed_run

__all__ = ["run", "measure", "bench_config", "WAYS", "timeline_panels", "comparison"]


async def _transfers(machine, *, progress=None, size):
    results = {}
    async with session(machine, progress, steps=3, ring_descriptors=2 * size // PAGE_SIZE) as s:
        p = s.platform
        src, dst = scattered_pair(s, size)
        reference = pattern(size, seed=8)
        await fill(machine, src, reference)
        device = p.devices["dma0"]
        engine = CopyEngine(device, p.channels["dma0"])
        await engine.channel.configure()        # once, not on the first way measured
        for name, mode, iommu in (("iommu_one_descriptor", "sg", True),
                                  ("sg_descriptors", "sg", False),
                                  ("register_per_segment", "register", False)):
            await clear(machine, dst)
            with s.stage(name):
                if iommu:
                    await p.attach_iommu(device)
                start = machine.cycle
                job = await engine.prepare(src, dst, mode=mode)
                map_cycles = machine.cycle - start
                iotlb = await p.iommu.counters()
                writes = engine.channel.mmio_writes
                status, cycles = await timed_run(job)
                writes = engine.channel.mmio_writes - writes
                pieces = len(job.pieces)
                iotlb = counter_delta(await p.iommu.counters(), iotlb)
                await job.finish()
                if iommu:
                    await p.detach_iommu(device)
            if status != 1:
                raise AssertionError(f"{name}: the copy failed with {status}")
            s.check(name, await s.memory_of(dst), reference)
            results[name] = {"cycles": cycles, "mmio_writes": writes, "segments": pieces,
                             "map_cycles": map_cycles}
            if iommu:
                results[name]["iotlb"] = iotlb
        src.put()
        dst.put()
    return results


def measure(*, backend="pysim", progress=None, size=MiB, config=None):
    """Both runs for buffers of ``size`` bytes; returns the figures."""
    config = bench_config(size) if config is None else config
    backend = choose(backend, config)
    demo = run_scenario(story, config=config, backend=backend, vcd=None, progress=progress,
                        size=size, reset_zeroed=False, ring_descriptors=size // PAGE_SIZE + 2)
    transfers = run_scenario(_transfers, config=config, backend=backend, vcd=None,
                             progress=progress, size=size)
    return {
        "backend": backend,
        "buffer_bytes": size,
        "demo_stage_cycles": demo["stage_cycles"],
        "demo_total_cycles": demo["total_cycles"],
        "demo_iotlb": demo["iotlb"],
        "demo_cache": demo["cache"],
        "transfers": transfers,
    }


#: The three ways of moving the scattered buffer, as the second run's stages name them.
WAYS = {"iommu_one_descriptor": "IOMMU + one descriptor",
        "sg_descriptors": "scatter-gather descriptors",
        "register_per_segment": "register programming per segment"}


def timeline_panels(trace):
    """The timeline of ``bench share --timeline``: the three ways side by side, each the
    stage of the second run that moved the buffer that way."""
    from ..trace.timeline import Panel
    run = trace.runs[-1]
    return [Panel(WAYS[record["name"]], run.index, record["start"], record["end"])
            for record in run.driver
            if record["kind"] == "span" and record["layer"] == "scenario"
            and record["name"] in WAYS]


def comparison(result):
    """The report's bar chart: the cycles of each way, from the first register write to the
    fence."""
    return {WAYS[name]: result["transfers"][name]["cycles"] for name in WAYS}


#: The backends this benchmark runs on.
BACKENDS = CHOICES


def run(*, backend="pysim", progress=None):
    return measure(backend=backend, progress=progress)
