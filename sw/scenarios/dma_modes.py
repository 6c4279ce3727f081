"""The same scattered copy without an IOMMU, once through scatter-gather descriptors and once through per-segment register programming.

The source is a scattered system-heap buffer filled by the CPU; each way copies it into a
buffer of its own. Both results are checked byte by byte against the reference, in DDR (what
the engine wrote) and through the CPU after begin_cpu_access; the report compares the cycles
and the register writes each way took.
"""

from ..dma.copy_engine import CopyEngine
from ._e2e import pattern, session
from ._run import run_scenario

__all__ = ["run", "compare_modes"]


async def compare_modes(machine, *, progress=None, size=8 * 1024, **boot_args):
    report = {"buffer_bytes": size}
    async with session(machine, progress, steps=5, **boot_args) as s:
        p = s.platform
        s.fragment()
        reference = pattern(size, seed=2)
        with s.stage("allocate"):
            src = s.get(await s.alloc("system", size))
            dsts = {mode: s.get(await s.alloc("system", size)) for mode in ("sg", "register")}
        with s.stage("cpu_fill"):
            await s.cpu_fill(src, reference)
        engine = CopyEngine(p.devices["dma0"], p.channels["dma0"])
        report["source_segments"] = len(src.priv.blocks)
        for mode, dst in dsts.items():
            with s.stage(f"copy_{mode}"):
                start = machine.cycle
                job = await engine.copy(src, dst, mode=mode)
                status = await job.wait()
                cycles = machine.cycle - start
                writes = job.mmio_writes
                pieces = len(job.pieces)
                await job.finish()
            if status != 1:
                raise AssertionError(f"{mode} copy failed with {status}")
            s.check(f"DDR after the {mode} copy", await s.memory_of(dst), reference)
            report[mode] = {"cycles_issue_to_fence": cycles, "mmio_writes": writes,
                            "pieces": pieces}
        with s.stage("cpu_check"):
            for mode, dst in dsts.items():
                report["bytes_checked"] = s.check(f"CPU view of the {mode} copy",
                                                  await s.cpu_read(dst), reference)
        for buf in (src, *dsts.values()):
            buf.put()
    report["stage_cycles"] = s.stages
    report["ok"] = True
    return report


def run(*, config, backend="pysim", vcd=None, progress=None):
    return run_scenario(compare_modes, config=config, backend=backend, vcd=vcd,
                        progress=progress)
