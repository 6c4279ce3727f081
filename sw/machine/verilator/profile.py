"""A per-block profile of the Verilator model: which blocks of the SoC its evaluation spends
its time in.

The profile build is the backend's (:mod:`.builder`) with three differences: the Verilog keeps
yosys's attributes (each net's ``hdlname``, its place in the hierarchy, and ``src``, the line
of the HDL that made it); Verilator is run with ``--prof-cfuncs`` (:data:`PROFILE_VERILATE`),
which puts every statement of the model in a C++ function of its own, named after the line of
``design.v`` it comes from (``…__PROF__design__l12597``); and the compiler does not inline
those functions (:data:`PROFILE_CFLAGS`), so that each sample lands in the statement it
measures. It is the backend's variant :data:`PROFILE`, cached with the others with the
Verilog it was made from.

:func:`record` runs a scenario on that model in a child process under ``perf record``, and
:func:`attribute` shares out perf's samples in the model: a statement function goes to the
block of the signal on its line of ``design.v`` (the first level of the hierarchy, two for the
SoC's composite blocks, :data:`SPLIT_BLOCKS`); a yosys temporary (``_01234_``), which has no
place in the hierarchy, goes to the block most of the signals it is computed from belong to,
among the blocks its ``src`` file makes (:class:`Design`). The model's functions that are no
statement go to named buckets (:data:`BUCKETS`): the scheduling of the evaluation, the driver
loops, Verilator's runtime.
"""

import pickle
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

from ..compiled.cache import Build
from ..compiled.design import soc_config
from ..compiled.machine import CompiledMachine, run_until_complete
from . import builder

__all__ = ["PROFILE_VERILATE", "PROFILE_CFLAGS", "DESIGN", "SPLIT_BLOCKS", "TOP", "BUCKETS",
           "OTHER", "PROFILE", "build", "ProfileMachine", "perf_command",
           "record", "report", "parse_report", "Design", "attribute"]

#: What Verilator is given beyond :data:`.builder.VERILATE`: a C++ function a statement.
PROFILE_VERILATE = ("--prof-cfuncs",)
#: Compiler flags of the profile build: the statement functions stay functions of their own
#: (only what is declared ``inline``, Verilator's helpers, is inlined).
PROFILE_CFLAGS = ("-fno-inline-functions", "-fno-inline-small-functions",
                  "-fno-inline-functions-called-once")
#: The profile build: the Verilog keeps yosys's attributes.
PROFILE = builder.Variant("profile", verilate=PROFILE_VERILATE, cflags=PROFILE_CFLAGS,
                          attributes=True)
#: The Verilog the profile is made from, kept beside the library.
DESIGN = builder.DESIGN


def build(config=None, *, progress=None):
    """The profile build of ``config``'s SoC (:data:`PROFILE`): its library, with the Verilog
    it was made from (:data:`DESIGN`) in the same folder; built unless cached.

    Parameters
    ----------
    config : SocConfig, optional
        The SoC's parameters (the defaults if omitted).
    progress : callable, optional
        Called with a line of text at each step of a build.

    Returns
    -------
    Build

    Raises
    ------
    BuildError
        If there is no Verilator, compiler or ``make``, or a step fails.
    """
    return builder.build_variant(config, PROFILE, progress=progress)


def ProfileMachine(build, config=None):
    """A :class:`~..compiled.machine.CompiledMachine` on the profile build ``build`` of
    ``config``'s SoC."""
    return CompiledMachine("verilator", config, build=build)


def _perf():
    perf = shutil.which("perf")
    if perf is None:
        raise RuntimeError("The profile needs perf, which is not installed: install it "
                           "(Debian: apt-get install linux-perf; Ubuntu: apt-get install "
                           "linux-tools-generic)")
    return perf


def perf_command():
    """The path of ``perf``, once a trial ``perf record`` has shown that it may sample here.

    Raises
    ------
    RuntimeError
        If perf is not installed, or the kernel does not let this user record.
    """
    perf = _perf()
    with tempfile.TemporaryDirectory(prefix="dmabuf-soc-perf-") as folder:
        result = subprocess.run([perf, "record", "-q", "-N", "-o", f"{folder}/probe.data",
                                 "--", sys.executable, "-c", "pass"],
                                capture_output=True, text=True)
    if result.returncode:
        try:
            level = Path("/proc/sys/kernel/perf_event_paranoid").read_text().strip()
        except OSError:
            level = "unknown"
        said = (result.stderr or result.stdout).strip().splitlines() or ["no output"]
        raise RuntimeError(f"perf record is not permitted here ({said[-1]}; "
                           f"kernel.perf_event_paranoid is {level}): run as root, "
                           f"or let users sample their own processes with `sudo sysctl "
                           f"kernel.perf_event_paranoid=1`")
    return perf


def _child(job):
    """In the process ``perf`` records: run the scenario of the pickled ``job`` file."""
    with open(job, "rb") as file:
        job = pickle.load(file)
    for _ in range(job["repeat"]):
        with ProfileMachine(job["build"], job["config"]) as machine:
            run_until_complete(job["scenario"](machine))


def record(build, scenario, output, *, config=None, repeat=1, frequency=10000):
    """Run ``scenario`` on the model of ``build`` under ``perf record``, in a child process.

    Parameters
    ----------
    build : Build
        The profile build (:func:`build`).
    scenario : callable
        ``async def scenario(machine)``, run on a new :class:`ProfileMachine` each time; it
        must pickle (a module's function, or a :func:`functools.partial` of one).
    output : path
        The file perf writes its samples to.
    config : SocConfig, optional
        Parameters of the SoC the library was built from (the defaults if omitted).
    repeat : int
        How many times to run the scenario.
    frequency : int
        Samples a second.

    Raises
    ------
    RuntimeError
        If perf is missing or may not record (:func:`perf_command`), or the run fails.
    """
    if not isinstance(build, Build):
        raise TypeError(f"build must be a Build, not {build!r}")
    if not callable(scenario):
        raise TypeError(f"scenario must be an async callable, not {scenario!r}")
    config = soc_config(config)
    for name, value in (("repeat", repeat), ("frequency", frequency)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive integer, not {value!r}")
    perf = perf_command()
    output = Path(output)
    job = output.with_name(output.name + ".job")
    job.write_bytes(pickle.dumps({"build": build, "scenario": scenario, "config": config,
                                  "repeat": repeat}))
    try:
        result = subprocess.run(
            [perf, "record", "-q", "-N", "-F", str(frequency), "-o", str(output), "--",
             sys.executable, "-c", f"import sys; from {__name__} import _child; "
             f"_child(sys.argv[1])", str(job)],
            capture_output=True, text=True)
    finally:
        job.unlink()
    if result.returncode:
        said = (result.stderr or result.stdout)[-4000:]
        raise RuntimeError(f"The profiled run failed:\n{said}")


def report(data, library):
    """perf's report of the samples in file ``data`` that fell in ``library``: a line a
    function, with its samples (:func:`parse_report` reads it)."""
    result = subprocess.run(
        [_perf(), "report", "-i", str(data), "--no-children", "--sort", "symbol",
         "--dsos", str(library), "--stdio", "-q", "-F", "sample,sym"],
        capture_output=True, text=True)
    if result.returncode:
        raise RuntimeError(f"perf report failed:\n{(result.stderr or result.stdout)[-4000:]}")
    return result.stdout


_REPORT_LINE = re.compile(r"^\s*(\d+)\s+\[.\]\s+(.+?)(?:\s+-\s+-)?\s*$")


def parse_report(text):
    """The samples of each function in ``text``, perf's report (:func:`report`): a
    :class:`~collections.Counter` of function names."""
    if not isinstance(text, str):
        raise TypeError(f"A perf report must be text, not {text!r}")
    samples = Counter()
    for line in text.splitlines():
        if (match := _REPORT_LINE.match(line)) is not None:
            samples[match.group(2)] += int(match.group(1))
    return samples


#: The blocks whose parts are told apart: a signal of one of these goes to the part (the second
#: level of the hierarchy, ``smmu.tlb``), any other signal to its first-level block (``dma0``).
SPLIT_BLOCKS = ("smmu", "cache")
#: The block of what belongs to no block: the SoC's own signals, the clock and the reset.
TOP = "soc"
#: The buckets of the model's functions that are no statement, each with the names it takes
#: (the first that matches): the model's evaluation around the statements (its triggers and
#: phases, and the calls to the statement functions), Verilator's runtime, the driver loops
#: (``driver.cc`` and ``model.h``); what matches none is ``"other"``.
BUCKETS = (
    ("scheduling", re.compile(r"^Vsoc")),
    ("verilated runtime", re.compile(r"^(?:Verilated|Vl[A-Z]|VL_|vl_)")),
    ("driver loops", re.compile(r"^machine_|Model::|Machine::|anonymous namespace|copy_rows")),
)
OTHER = "other"

#: A statement function of a ``--prof-cfuncs`` build, with the line of ``design.v`` it runs.
_STATEMENT = re.compile(r"__PROF__\w*?__l(\d+)")
_ATTRIBUTE = re.compile(r'\(\* (\w+) = "([^"]*)" \*\)')
_NAME = r"\\\S+|[A-Za-z_][\w$]*"
_DECLARATION = re.compile(rf"^\s*(?:input|output|inout|wire|reg)\b(?:\s+signed)?"
                          rf"(?:\s*\[[^\]]*\])?\s+({_NAME})")
_ASSIGN = re.compile(r"^\s*assign (.*?) = (.*);\s*$")
_NAMES = re.compile(rf"(?<![\w$'\\])(?:{_NAME})")
_CONDITION = re.compile(r"\s*(?:else\b|if\s*\()")
_TEMPORARY = re.compile(r"^_\d+_$")
_INSTANCE_NUMBER = re.compile(r"\$\d+$")


def _target(text):
    """The signal a non-blocking assignment on line ``text`` assigns (after the ``if (…)`` and
    ``else`` it may start with), or ``None`` if the line has none."""
    if " <= " not in text:
        return None
    text = text.split(" <= ", 1)[0]
    while (match := _CONDITION.match(text)) is not None:
        text = text[match.end():]
        if match.group(0).endswith("("):
            depth = 1
            for index, char in enumerate(text):
                depth += {"(": 1, ")": -1}.get(char, 0)
                if not depth:
                    text = text[index + 1:]
                    break
    match = re.match(rf"\s*({_NAME})", text)
    return match.group(1) if match is not None else None


def _short(location):
    """A ``src`` location from the repository or the package (``hw/bus/skid.py:40``,
    ``sim/ddr/model.py:211``, ``amaranth/lib/fifo.py:283``)."""
    for marker, keep in (("/site-packages/", ""), ("/hw/", "hw/"), ("/sim/", "sim/")):
        if marker in location:
            return keep + location.rsplit(marker, 1)[1]
    return location.rsplit("/", 1)[-1]


def _file(location):
    return _short(location).rsplit(":", 1)[0]


class Design:
    """The signals of a ``design.v`` that yosys wrote with its attributes, each with the block
    it belongs to.

    A signal with a place in the hierarchy (yosys's ``hdlname`` attribute, kept when it
    flattens the design) belongs to the block of that place: the first level, or the first two
    for the blocks of :data:`SPLIT_BLOCKS`. A signal without one (a temporary of yosys's,
    ``_01234_``, or a signal of the SoC top's own, often one a block drives) belongs to the
    block most of the signals it is computed from belong to, among the blocks that have
    signals from the file of its ``src`` attribute; failing that, to the block with the most
    signals from that file, and failing that to :data:`TOP`.

    Parameters
    ----------
    verilog_text : str
        The Verilog (written by ``write_verilog`` without ``-noattr``).
    """
    def __init__(self, verilog_text):
        if not isinstance(verilog_text, str):
            raise TypeError(f"The design must be Verilog text, not {verilog_text!r}")
        self._lines = verilog_text.splitlines()
        self._blocks = {}       # name → block
        self._declared = set()
        self._sources = {}      # name → its src locations
        self._operands = {}     # name → the names it is computed from
        self._parse()
        self._files = {}        # block → Counter of the src files of its placed signals
        for name, block in self._blocks.items():
            files = self._files.setdefault(block, Counter())
            files.update({_file(location) for location in self._sources.get(name, ())})
        self._resolve()

    def _parse(self):
        attributes, always = [], []
        for text in self._lines:
            stripped = text.strip()
            if stripped.startswith("(*") and stripped.endswith("*)"):
                attributes += _ATTRIBUTE.findall(stripped)
                continue
            found, attributes = attributes, []
            if stripped.startswith("always"):
                always = found
            elif (match := _DECLARATION.match(text)) is not None:
                self._declare(match.group(1), found)
            elif (match := _ASSIGN.match(text)) is not None:
                for name in _NAMES.findall(match.group(1)):
                    self._drive(name, match.group(2), found)
            elif (target := _target(text)) is not None:
                self._drive(target, text, always)

    def _declare(self, name, attributes):
        self._declared.add(name)
        for key, value in attributes:
            if key == "src":
                self._sources.setdefault(name, []).extend(value.split("|"))
            elif key == "hdlname" and name not in self._blocks:
                modules = [_INSTANCE_NUMBER.sub("", module) for module in value.split()[:-1]]
                if modules:
                    split = modules[0] in SPLIT_BLOCKS and len(modules) > 1
                    self._blocks[name] = ".".join(modules[:2] if split else modules[:1])

    def _drive(self, name, expression, attributes):
        locations = [value for key, value in
                     (*attributes, *_ATTRIBUTE.findall(expression)) if key == "src"]
        self._sources.setdefault(name, []).extend(
            part for location in locations for part in location.split("|"))
        self._operands.setdefault(name, set()).update(
            operand for operand in _NAMES.findall(expression) if operand != name)

    def _resolve(self):
        """Give every signal without a place the block :meth:`_choose` finds for it, its
        operands first (the combinational logic between registers has no loop)."""
        for start in self._declared - self._blocks.keys():
            stack, visiting = [start], set()
            while stack:
                name = stack[-1]
                if name in self._blocks:
                    stack.pop()
                    continue
                waiting = [operand for operand in self._operands.get(name, ())
                           if operand in self._declared and operand not in self._blocks
                           and operand not in visiting]
                if waiting and name not in visiting:
                    visiting.add(name)
                    stack += waiting
                    continue
                self._blocks[name] = self._choose(name)
                stack.pop()

    def _choose(self, name):
        votes = Counter(self._blocks[operand] for operand in self._operands.get(name, ())
                        if self._blocks.get(operand, TOP) != TOP)
        files = {_file(location) for location in self._sources.get(name, ())}
        candidates = {block for block, counts in self._files.items() if files & counts.keys()}
        narrowed = Counter({block: n for block, n in votes.items() if block in candidates})
        choice = narrowed or votes or Counter(
            {block: sum(self._files[block][file] for file in files) for block in candidates})
        return max(sorted(choice), key=choice.get) if choice else TOP

    def block(self, name):
        """The block signal ``name`` (as the Verilog spells it) belongs to."""
        if name not in self._declared:
            raise ValueError(f"The design declares no signal {name!r}")
        return self._blocks[name]

    def label(self, name):
        """How a report names signal ``name``: its name, or for a temporary of yosys's the
        ``src`` location that made it (or its name if it has none)."""
        if _TEMPORARY.match(name):
            return _short(self._sources[name][0]) if self._sources.get(name) else name
        return name.removeprefix("\\")

    def statement(self, line):
        """How a report names the statement on ``line`` (from 1), and its block: the
        :meth:`label` and :meth:`block` of its :meth:`subject`, or ``design.v:<line>`` and
        :data:`TOP` if it has none."""
        subject = self.subject(line)
        if subject is None:
            return f"{DESIGN}:{line}", TOP
        return self.label(subject), self.block(subject)

    def subject(self, line):
        """The signal a statement on ``line`` (from 1) of the design declares or assigns, or
        ``None``; for the first line of a process, the first signal it assigns."""
        if not isinstance(line, int) or isinstance(line, bool) or line < 1:
            raise ValueError(f"Line must be a positive integer, not {line!r}")
        for text in self._lines[line - 1:line + 20]:
            if (match := _DECLARATION.match(text)) is not None:
                return match.group(1)
            if (match := _ASSIGN.match(text)) is not None:
                names = _NAMES.findall(match.group(1))
                return names[0] if names else None
            if " <= " in text:
                return _target(text)
            if not text.strip().startswith(("always", "begin", "if", "else", "(*")):
                return None
        return None


def _bucket(function):
    for name, pattern in BUCKETS:
        if pattern.search(function):
            return name
    return OTHER


def _percent(part, whole, digits=1):
    return round(100 * part / whole, digits) if whole else 0.0


def attribute(samples, design, *, top=10):
    """Share out the samples of a profile among the design's blocks and the other code.

    Parameters
    ----------
    samples : mapping
        Samples of each function of the model's library (:func:`parse_report`).
    design : Design
        The design the library was built from.
    top : int
        How many of the hottest statements to list.

    Returns
    -------
    dict
        ``samples`` (in the library), ``design_percent`` (of them, in the design's
        statements), ``blocks`` (block → percent of the design's samples, most first),
        ``non_design`` (bucket → percent of all the samples, most first) and
        ``top_statements`` (the ``top`` hottest statements, each a dict of its ``statement``
        and ``block`` (:meth:`Design.statement`: statements of one label count as one) and
        its ``percent`` of the design's samples, to two decimals); the other percents have
        one decimal.
    """
    if not isinstance(design, Design):
        raise TypeError(f"design must be a Design, not {design!r}")
    if not isinstance(top, int) or isinstance(top, bool) or top < 0:
        raise ValueError(f"top must be a non-negative integer, not {top!r}")
    statements, buckets = Counter(), Counter()
    for function, count in samples.items():
        if not isinstance(count, int) or count < 0:
            raise ValueError(f"Samples of {function!r} must be a non-negative integer, "
                             f"not {count!r}")
        match = _STATEMENT.search(function)
        if match is None:
            buckets[_bucket(function)] += count
            continue
        statements[design.statement(int(match.group(1)))] += count
    blocks = Counter()
    for (_, block), count in statements.items():
        blocks[block] += count
    total, in_design = sum(samples.values()), sum(statements.values())
    return {
        "samples": total,
        "design_percent": _percent(in_design, total),
        "blocks": {block: _percent(count, in_design) for block, count in blocks.most_common()},
        "non_design": {bucket: _percent(count, total)
                       for bucket, count in buckets.most_common()},
        "top_statements": [{"statement": label, "block": block,
                            "percent": _percent(count, in_design, 2)}
                           for (label, block), count in statements.most_common(top)],
    }
