"""Where the Verilator model spends its time: its evaluation shared out among the SoC's blocks.

The model is the profile build of the Verilator backend
(:mod:`~dmabuf_soc.sw.machine.verilator.profile`): the same Verilog and options, with every
statement of the design in a C++ function of its own named after its line of the Verilog. It
runs :func:`~.sim.dma_copy` (the ``sim`` benchmark's scenario) ``repeat`` times under
``perf record``, and perf's samples in the model are shared out among the SoC's blocks by the
signals the statements assign. ``blocks`` gives each block's percent of the design's
evaluation (the samples in statements); ``non_design`` the percent of all the model's samples
spent outside the statements (the scheduling of the evaluation, which in this build includes
the calls to the statement functions, the driver loops, Verilator's runtime);
``design_percent`` what is left, the statements; ``top_statements`` the hottest statements.
``samples`` counts the model's samples. ``build_seconds`` is the one-off cost of the profile
build (a cached build reports the time it took when it was made). It needs perf, allowed to
record (root, or ``kernel.perf_event_paranoid`` at most 1).
"""

import functools
import tempfile
from pathlib import Path

from ...hw.config import Parameter
from ..machine.verilator import profile
from .sim import PAGE, PARAMETERS as SIM_PARAMETERS, dma_copy

__all__ = ["METHOD", "run"]

#: The benchmark runs on the Verilator model only.
BACKENDS = ("verilator",)
#: How the figures are made, in one line.
METHOD = ("perf samples of a --prof-cfuncs build; statement functions attributed to blocks by "
          "the signals they assign")


#: What ``--set`` takes: the keyword arguments of :func:`run` and their ranges.
PARAMETERS = {p.name: p for p in (
    SIM_PARAMETERS["length"],
    Parameter("repeat", 1, 100, "runs of the copy under perf",
              "each run is a new model under perf record: 100 runs take minutes"),
    Parameter("frequency", 1, 100_000, "perf samples a second",
              "perf's default highest rate (kernel.perf_event_max_sample_rate)"),
)}


def run(*, backend="verilator", progress=None, length=64 * 1024, repeat=5, frequency=10000):
    """Profile the Verilator model on :func:`~.sim.dma_copy` of ``length`` bytes, run
    ``repeat`` times (a new model each time) with perf sampling ``frequency`` times a second.

    Raises
    ------
    RuntimeError
        If perf is not installed or may not record here.
    """
    if backend != "verilator":
        raise ValueError(f"The profile runs on the verilator backend, not {backend!r}")
    for name, value in (("length", length), ("repeat", repeat), ("frequency", frequency)):
        PARAMETERS[name].check(value)
    steps = 4

    def step(done, what):
        if progress is not None:
            progress(done, steps, what)

    profile.perf_command()
    step(0, "building the profile model (cached after the first time)")
    build = profile.build(progress=lambda line: step(0, line))
    step(1, f"running the copy {repeat} times under perf record")
    with tempfile.TemporaryDirectory(prefix="dmabuf-soc-profile-") as folder:
        data = Path(folder) / "perf.data"
        profile.record(build, functools.partial(dma_copy, length=length), data,
                       repeat=repeat, frequency=frequency)
        step(2, "reading perf's report")
        samples = profile.parse_report(profile.report(data, build.library))
    step(3, "attributing the samples to the blocks")
    design = profile.Design((build.library.parent / profile.DESIGN).read_text())
    figures = profile.attribute(samples, design)
    step(4, "done")
    return {
        "backend": "verilator",
        "scenario": f"dma_copy of {length} bytes in {length // PAGE} scattered pages, "
                    f"{repeat} times",
        **figures,
        "build_seconds": round(build.seconds, 1),
        "build_cached": build.cached,
        "method": METHOD,
    }
