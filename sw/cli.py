"""The ``dmabuf-soc`` command line.

Every option is checked before any elaboration, build or simulation starts; a bad one ends
the command with one line, ``dmabuf-soc: error: ...``, and exit status 1 (2 for what argparse
refuses). The project's own errors (:class:`CommandError`, a configuration outside
``docs/parameters.md``, a compiled model or an FPGA build that cannot be made) end the same
way; ``--debug`` or ``DMABUF_SOC_DEBUG=1`` shows their traceback instead. Any other exception
is a bug and keeps its traceback.
"""

import argparse
import contextlib
import json
import os
import shutil
import stat
import sys
import tempfile
import time
from pathlib import Path

from .machine.backends import COMPILED, backend_argument, is_serial

__all__ = ["CommandError", "DEBUG_ENV", "block_verilog", "main"]

#: Set (to anything but ``0``) to see the traceback of an error the command line reports in
#: one line, as ``--debug`` does.
DEBUG_ENV = "DMABUF_SOC_DEBUG"


class CommandError(Exception):
    """What the user asked cannot be done; the message says why, in one line."""


def _settings(items, parameters, what):
    """``{NAME: value}`` of ``--set NAME=VALUE`` options, each NAME one of ``parameters``
    (``{name: Parameter}``) and each value allowed by it; ``what`` names the command."""
    uses = ", ".join(parameters) or "no --set parameter"
    settings = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise CommandError(f"--set takes NAME=VALUE, not {item!r}; {what} takes {uses}")
        if key not in parameters:
            raise CommandError(f"--set {key}: {what} does not use {key!r}; it takes {uses}")
        settings[key] = parameters[key].parse(value)
    return settings


def _config_from(args, names=None, what=None):
    """The :class:`SocConfig` of ``args.set``, each NAME one of ``names`` (every parameter if
    ``None``), checked against the whole table before anything is built from it."""
    from ..hw.config import PARAMETERS, SocConfig
    names = tuple(PARAMETERS) if names is None else names
    changes = _settings(args.set, {name: PARAMETERS[name] for name in names},
                        what or f"dmabuf-soc {args.command}")
    return SocConfig(**changes).check()


def _output_file(path, option):
    """Raise :exc:`CommandError` unless a file can be written at ``path``: its folder exists
    and takes a new file, and ``path`` is not a folder."""
    if not str(path):
        raise CommandError(f"{option}: the file name is empty")
    path = Path(path)
    if path.is_dir():
        raise CommandError(f"{option} {path}: is a folder, not a file")
    folder = path.parent
    if not folder.exists():
        raise CommandError(f"{option} {path}: the folder {folder} does not exist")
    if not folder.is_dir():
        raise CommandError(f"{option} {path}: {folder} is not a folder")
    if path.exists():
        if stat.S_ISREG(path.stat().st_mode):
            try:
                with open(path, "ab"):
                    pass
            except OSError as error:
                raise CommandError(f"{option} {path}: cannot be written "
                                   f"({error.strerror})") from None
        return
    _takes_files(folder, f"{option} {path}")


def _output_folder(path, option):
    """Raise :exc:`CommandError` unless ``path`` is a folder that takes files, or can be made
    one."""
    if not str(path):
        raise CommandError(f"{option}: the folder name is empty")
    path = Path(path)
    existing = next(p for p in (path, *path.parents) if p.exists() or p == Path(p.anchor))
    if not existing.is_dir():
        what = "is a file" if existing == path else f"is under {existing}, a file"
        raise CommandError(f"{option} {path}: {what}, not a folder")
    _takes_files(existing, f"{option} {path}")


def _takes_files(folder, what):
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        raise CommandError(f"{what}: cannot write in {folder} ({error.strerror})") from None


@contextlib.contextmanager
def _written_later(path):
    """A temporary file that becomes ``path`` when the block ends, whether or not it raised;
    :exc:`CommandError` if it cannot (a full disk), after the block's own work is done."""
    path = Path(path)
    # A device, a pipe or a link is written through; a file is replaced whole.
    special = path.is_symlink() or (path.exists() and not stat.S_ISREG(path.stat().st_mode))
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp",
                                         dir=None if special else path.parent)
    os.close(handle)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(temporary, 0o666 & ~umask)  # as a file the command opened itself would be
    failed = None
    try:
        yield temporary
    finally:
        try:
            if special:
                shutil.copyfile(temporary, path)
            else:
                os.replace(temporary, path)
        except OSError as error:
            failed = error
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
    if failed is not None:
        raise CommandError(f"{path} was not written: {failed.strerror or failed}")


class _Progress:
    """Progress of a long run on standard error: a line that rewrites itself on a terminal,
    one line per step otherwise."""

    def __init__(self, stream=sys.stderr):
        self._stream = stream
        self._tty = stream.isatty()
        self._start = time.monotonic()

    def __call__(self, done, total, what=""):
        elapsed = time.monotonic() - self._start
        line = f"[{done}/{total}] {what} ({elapsed:.1f} s)"
        if self._tty:
            self._stream.write("\r\033[K" + line + ("\n" if done >= total else ""))
        else:
            self._stream.write(line + "\n")
        self._stream.flush()


def _cmd_regs(args):
    from .regs.export import export
    _output_folder(args.output, "-o")
    outdir = Path(args.output)
    try:
        written = export(args.format, outdir)
    except OSError as error:
        raise CommandError(f"the {args.format} register files were not all written to "
                           f"{outdir}: {error.strerror or error}") from None
    for path in written:
        print(path)


def _check_verilog(args):
    from ..hw import catalog
    from ..hw.config import BLOCK_PARAMETERS
    if args.block not in catalog.available():
        raise CommandError(f"Unknown block {args.block!r}; known: "
                           f"{', '.join(catalog.available())}")
    if args.name is not None and not args.name.isidentifier():
        raise CommandError(f"--name {args.name!r}: a module name is a Verilog identifier "
                           f"(letters, digits and _, not starting with a digit)")
    config = _config_from(args, BLOCK_PARAMETERS[args.block],
                          f"dmabuf-soc verilog --block {args.block}")
    if args.output != "-":
        _output_file(args.output, "-o")
    return config


def block_verilog(block, config, *, name=None, rtlil_only=False):
    """What ``dmabuf-soc verilog --block BLOCK`` writes for ``config``: the Verilog (or, if
    ``rtlil_only``, the RTLIL) of the block with standard port names, its module named
    ``name`` (the block's name by default), ``clk`` and ``rst`` first."""
    from amaranth.back import rtlil
    from ..hw import catalog
    from .tools import netlist
    name = name or block
    top = catalog.standard_ports(block, config)
    text = netlist.order_ports(rtlil.convert(top, name=name), name,
                               ["clk", "rst", *(port.name for port in top.ports)])
    if rtlil_only:
        return text
    return netlist.verilog(text, header="\n".join(_verilog_header(block, top, config)))


def _cmd_verilog(args):
    config = _check_verilog(args)
    text = block_verilog(args.block, config, name=args.name, rtlil_only=args.rtlil)
    if args.output == "-":
        sys.stdout.write(text)
    else:
        try:
            Path(args.output).write_text(text)
        except OSError as error:
            raise CommandError(f"{args.output} was not written: "
                               f"{error.strerror or error}") from None
        print(args.output)


def _verilog_header(block, top, config):
    """What the head of ``dmabuf-soc verilog``'s output says about the module's ports."""
    from importlib.metadata import version
    from ..hw import catalog
    lines = [f"{block}: generated by dmabuf-soc {version('dmabuf-soc')} from its Amaranth "
             f"source, for {config!r}", ""]
    lines += top.describe()
    mmio = catalog.MMIO_BLOCKS.get(block)
    if mmio is not None:
        from ..hw.regs.soc_map import soc_windows
        window = next(w for w in soc_windows() if w.name == mmio)
        lines += ["", f"s_axil_* addresses are byte offsets in the block's register window "
                      f"({window.size:#x} bytes); in the SoC's MMIO map the block is {mmio!r} "
                      f"at {window.base:#06x}. Registers: docs/registers.md."]
    return lines


def _compiled_ready(backend, config=None, *, trace=False):
    """Raise :exc:`CommandError` unless compiled backend ``backend`` can run ``config`` here:
    its build is cached, or this machine can build it."""
    from .machine.backends import compiled_backend
    from .machine.compiled.cache import compiler
    package = compiled_backend(backend)
    if package.available():
        return
    if config is not None and package.cached(config, trace=trace) is not None:
        return
    disable = package.builder.DISABLE_ENV
    if os.environ.get(disable):
        why = f"it is turned off by ${disable}"
    elif compiler() is None:
        cxx = os.environ.get("CXX")
        why = (f"no C++ compiler ($CXX is {cxx}, which is not there)" if cxx else
               "no C++ compiler: install g++ or set $CXX")
    else:
        why = "it needs g++, make and its Python package"
    raise CommandError(f"the {backend} backend cannot run here: {why}")


def _check_scenario(name, args):
    from . import scenarios
    from .machine.backends import choose
    try:
        scenario = scenarios.load(name)
    except KeyError as error:
        raise CommandError(error.args[0]) from None
    config = _config_from(args)
    if args.vcd is not None:
        _output_file(args.vcd, "--vcd")
    outputs = _trace_outputs(args, f"dmabuf-soc {'sim ' if name != 'demo' else ''}{name}")
    vcd = args.vcd is not None or outputs.vcd is not None
    if args.backend in COMPILED:
        _compiled_ready(args.backend, config, trace=vcd)
    return scenario, config, choose(args.backend, config, vcd=vcd, probes=outputs.wanted), \
        outputs


def _trace_options(parser):
    parser.add_argument("--timeline", metavar="FILE",
                        help="draw the run's transaction timeline into FILE (.png or .svg)")
    parser.add_argument("--report", metavar="DIR",
                        help="write an HTML report of the run (timeline, stages, counters, "
                             "trace, waveform) into DIR")


def _trace_outputs(args, title):
    from .trace.outputs import TraceOutputs
    try:
        return TraceOutputs(args.timeline, args.report, title=title)
    except ValueError as error:
        raise CommandError(str(error)) from None


def _run_scenario(name, args):
    start = time.monotonic()
    scenario, config, backend, outputs = _check_scenario(name, args)
    vcd_path = args.vcd if args.vcd is not None else outputs.vcd
    with (_written_later(vcd_path) if vcd_path is not None
          else contextlib.nullcontext()) as vcd, outputs.recording():
        result = scenario.run(config=config, backend=backend, vcd=vcd, progress=_Progress())
        result.setdefault("backend", backend)
        result.setdefault("wall_seconds", round(time.monotonic() - start, 3))
        if is_serial(backend):
            result["cycles_exact"] = False   # counted by a board between the link's commands
        if args.json:
            print(json.dumps(result, sort_keys=True))
        else:
            for key, value in result.items():
                print(f"{key:>28}: {value}")
        sys.stdout.flush()
    outputs.write(result)
    return 0 if result.get("ok", True) else 1


def _backend(text):
    try:
        return backend_argument(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _cmd_sim(args):
    if args.list:
        from . import scenarios
        for name in scenarios.available():
            print(f"{name:<16} {scenarios.describe(name)}")
        return 0
    if not args.scenario:
        raise CommandError("sim: name a scenario (--list shows them)")
    return _run_scenario(args.scenario, args)


def _cmd_demo(args):
    return _run_scenario("demo", args)


def _check_bench(args):
    from . import bench
    try:
        module = bench.load(args.name)
    except KeyError as error:
        raise CommandError(error.args[0]) from None
    backend = args.backend
    if backend not in module.BACKENDS and not (is_serial(backend) and "auto" in module.BACKENDS):
        if backend != "auto":
            raise CommandError(f"bench {args.name}: runs on {' or '.join(module.BACKENDS)}, "
                               f"not {backend}")
        backend = module.BACKENDS[0]
    settings = _settings(args.set, getattr(module, "PARAMETERS", {}),
                         f"dmabuf-soc bench {args.name}")
    if backend in COMPILED:
        _compiled_ready(backend)
    return module, backend, settings


def _cmd_bench(args):
    from . import bench
    if args.list or not args.name:
        if args.set:
            raise CommandError("bench: --set needs a benchmark name")
        for name in bench.available():
            print(f"{name:<16} {bench.describe(name)}")
        return 0
    module, backend, settings = _check_bench(args)
    outputs = _trace_outputs(args, f"dmabuf-soc bench {args.name}")
    with outputs.recording():
        result = module.run(backend=backend, progress=_Progress(), **settings)
    if args.json:
        print(json.dumps(result, sort_keys=True))
    else:
        for key, value in result.items():
            print(f"{key:>32}: {value}")
    sys.stdout.flush()
    if outputs.wanted:
        # A benchmark may say how to draw its runs (bench share: its three ways side by side).
        panels = getattr(module, "timeline_panels", None)
        comparison = getattr(module, "comparison", None)
        outputs.write(result, panels=panels(outputs.trace) if panels else None,
                      comparison=comparison(result) if comparison else None)
    return 0


class _BuildBar:
    """A compiled build's progress on standard error: on a terminal, a bar that fills over the
    time the build is expected to take, redrawn every half second; otherwise one line per
    step."""

    WIDTH = 30

    def __init__(self, expected, stream=None):
        import threading
        self._expected = expected
        self._stream = stream = sys.stderr if stream is None else stream
        self._tty = stream.isatty()
        self._start = time.monotonic()
        self._step = ""
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._redraw, daemon=True) if self._tty else None
        if self._thread:
            self._thread.start()

    def _line(self):
        elapsed = time.monotonic() - self._start
        filled = min(self.WIDTH, int(self.WIDTH * elapsed / self._expected))
        return (f"[{'#' * filled}{'.' * (self.WIDTH - filled)}] {elapsed:.0f} s of about "
                f"{self._expected:.0f} s: {self._step}")

    def _redraw(self):
        while not self._done.wait(0.5):
            self._stream.write("\r\033[K" + self._line())
            self._stream.flush()

    def __call__(self, step):
        self._step = step
        if not self._tty:
            self._stream.write(f"{time.monotonic() - self._start:.0f} s: {step}\n")
            self._stream.flush()

    def close(self):
        self._done.set()
        if self._thread:
            self._thread.join()
            self._stream.write("\r\033[K")
            self._stream.flush()


def _cmd_build(args):
    from .machine.backends import compiled_backend
    config = _config_from(args)
    names = COMPILED if args.backend == "all" else (args.backend,)
    for name in names:
        if not compiled_backend(name).available():
            raise CommandError(f"build: the {name} backend cannot be built on this machine "
                               f"(it needs g++ and make, and its Python package)")
    for name in names:
        package = compiled_backend(name)
        probes = {"probes": True} if args.probes else {}
        found = package.cached(config, trace=args.trace, **probes)
        if found is not None:
            print(f"{name}: cached, built in {found.seconds:.0f} s ({found.library})")
            continue
        expected = package.builder.expected_seconds()
        print(f"{name}: building, which takes about {expected:.0f} s on this machine",
              file=sys.stderr)
        bar = _BuildBar(expected)
        try:
            built = package.build(config, trace=args.trace, progress=bar, **probes)
        finally:
            bar.close()
        print(f"{name}: built in {built.seconds:.0f} s ({built.library})")
    return 0


def _parser():
    parser = argparse.ArgumentParser(
        prog="dmabuf-soc",
        description="Cycle-accurate model of the hardware under Linux dma-buf sharing, "
                    "and the driver layer that runs on it.")
    parser.add_argument("--debug", action="store_true",
                        help=f"show the traceback of an error reported in one line "
                             f"(or set ${DEBUG_ENV}=1)")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    add_parser = commands.add_parser

    def add_command(*args, **kwargs):
        sub = add_parser(*args, **kwargs)
        # After the command too; SUPPRESS keeps it from undoing a --debug given before.
        sub.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                         help=argparse.SUPPRESS)
        return sub

    commands.add_parser = add_command

    def with_config(sub):
        sub.add_argument("--set", action="append", metavar="NAME=VALUE",
                         help="change one SoC parameter (e.g. read_latency=40); repeatable; "
                              "`dmabuf-soc params` lists them and their ranges")

    regs = commands.add_parser("regs", help="write the register C header, HTML or Markdown "
                                            "docs, or an IP-XACT description")
    regs.add_argument("--format", choices=("c", "html", "md", "ipxact"), required=True)
    regs.add_argument("-o", "--output", metavar="DIR", required=True)
    regs.set_defaults(func=_cmd_regs)

    verilog = commands.add_parser("verilog", help="emit Verilog (or RTLIL) of the SoC or a block")
    verilog.add_argument("--block", default="soc",
                         help="block to emit (default: soc; see --block list)")
    verilog.add_argument("--rtlil", action="store_true", help="emit RTLIL instead of Verilog")
    verilog.add_argument("--name", help="top module name (default: the block name)")
    verilog.add_argument("-o", "--output", default="-", metavar="FILE",
                         help="output file (default: standard output)")
    with_config(verilog)
    verilog.set_defaults(func=_cmd_verilog)

    for name, helptext, func in (("sim", "run a named simulation scenario", _cmd_sim),
                                 ("demo", "run the end-to-end demo on the simulator", _cmd_demo)):
        sub = commands.add_parser(name, help=helptext)
        if name == "sim":
            sub.add_argument("scenario", nargs="?", help="scenario name")
            sub.add_argument("--list", action="store_true", help="list the scenarios")
        sub.add_argument("--backend", type=_backend, default="auto", metavar="BACKEND",
                         help="simulation backend: auto (the default: the fastest whose build "
                              "is cached, else pysim), pysim (Amaranth's built-in), verilator "
                              "or cxxrtl (compiled models; `dmabuf-soc build` makes them), or "
                              "serial:PORT[@BAUD]: a board through the host link")
        sub.add_argument("--vcd", metavar="FILE", help="write waveforms to FILE")
        _trace_options(sub)
        sub.add_argument("--json", action="store_true", help="print one JSON object")
        with_config(sub)
        sub.set_defaults(func=func)

    bench = commands.add_parser("bench", help="run a benchmark")
    bench.add_argument("name", nargs="?", help="benchmark name (omit to list them)")
    bench.add_argument("--list", action="store_true", help="list the benchmarks")
    bench.add_argument("--json", action="store_true", help="print one JSON object")
    bench.add_argument("--backend", type=_backend, default="auto", metavar="BACKEND",
                       help="simulation backend (default: auto, as for sim; serial:PORT[@BAUD] "
                            "for a board)")
    _trace_options(bench)
    bench.add_argument("--set", action="append", metavar="NAME=VALUE",
                       help="change one integer parameter of the benchmark "
                            "(e.g. copy_bytes=0x4000 for smmu); repeatable")
    bench.set_defaults(func=_cmd_bench)

    build = commands.add_parser("build", help="build a compiled model of the SoC ahead of "
                                              "its first run (cached)")
    build.add_argument("--backend", choices=(*COMPILED, "all"), default="verilator",
                       help="compiled backend to build (default: verilator, the fastest)")
    build.add_argument("--trace", action="store_true",
                       help="the build that can write a VCD (--vcd), for verilator")
    build.add_argument("--probes", action="store_true",
                       help="the build that records the transaction trace (--timeline, "
                            "--report)")
    with_config(build)
    build.set_defaults(func=_cmd_build)

    params = commands.add_parser("params", help="list the SoC parameters --set takes, their "
                                                "defaults and allowed values")
    params.add_argument("--markdown", action="store_true",
                        help="print docs/parameters.md: every parameter's range, with the "
                             "blocks' and benchmarks'")
    params.set_defaults(func=_cmd_params)

    from .synth.cli import add_parser as add_synth_parser
    add_synth_parser(commands)
    from .synth.program import add_parser as add_program_parser
    add_program_parser(commands)
    from ..sim.formal.cli import add_parser as add_formal_parser
    add_formal_parser(commands)
    return parser


def _cmd_params(args):
    from ..hw.config import PARAMETERS, SocConfig
    if args.markdown:
        sys.stdout.write(parameters_markdown())
        return 0
    defaults = SocConfig()
    for name, parameter in PARAMETERS.items():
        default = getattr(defaults, name)
        print(f"{name:<20} {int(default) if parameter.boolean else default!s:>7}  "
              f"{parameter.allowed}")
    return 0


def _markdown_rows(parameters, defaults):
    rows = ["| parameter | default | allowed | what it is | why these bounds |",
            "| --- | --- | --- | --- | --- |"]
    for name, parameter in parameters.items():
        default = defaults.get(name)
        default = int(default) if parameter.boolean else default
        rows.append(f"| `{name}` | {default} | {parameter.allowed} | {parameter.meaning} | "
                    f"{parameter.why or '—'} |")
    return rows


def parameters_markdown():
    """The text of ``docs/parameters.md``, made from the tables that check the parameters
    (:data:`~dmabuf_soc.hw.config.PARAMETERS`, :data:`~dmabuf_soc.hw.config.RULES`,
    :data:`~dmabuf_soc.hw.config.BLOCK_PARAMETERS` and each benchmark's ``PARAMETERS``)."""
    import dataclasses
    import inspect
    from . import bench
    from ..hw.config import BLOCK_PARAMETERS, PARAMETERS, RULES, SocConfig
    defaults = {f.name: getattr(SocConfig(), f.name) for f in dataclasses.fields(SocConfig)}
    lines = [
        "# Parameters and their ranges",
        "",
        "<!-- Generated by `dmabuf-soc params --markdown > docs/parameters.md` from the tables "
        "that check the parameters (hw/config.py, sw/bench/*.py); tests/sw/test_cli_fuzz.py "
        "fails when this file differs. -->",
        "",
        "## SoC parameters",
        "",
        "`dmabuf-soc sim`, `demo`, `build` and `verilog` take `--set NAME=VALUE` (repeatable; "
        "decimal, or `0x`/`0o`/`0b` prefixed) for each parameter of `SocConfig` below. "
        "Every value is checked against this table before anything is elaborated, built or "
        "simulated; a value outside it ends the command with one line naming the parameter, "
        "the value and what is allowed. The SoC top (`hw/soc.py`) checks its configuration "
        "against the same table, and each block's own checks stand behind it. "
        "`dmabuf-soc params` prints the table.",
        "",
        *_markdown_rows(PARAMETERS, defaults),
        "",
        "Between parameters:",
        "",
        *(f"- {rule.text} ({rule.why})." for rule in RULES),
        "",
        "The DDR banks (`banks`, two of 1 MiB by default: one below 4 GiB, one above) are set "
        "from Python only: each a power of two of at least 4096 bytes, aligned to its size, "
        "within the `addr_width`-bit address space, not overlapping another.",
        "",
        "## Parameters of each block",
        "",
        "`dmabuf-soc verilog --block NAME` takes the block out of the SoC built from the "
        "configuration, so only some parameters change it; a `--set` of any other is an error "
        "that lists these.",
        "",
        "| block | parameters |",
        "| --- | --- |",
        *(f"| `{block}` | {', '.join(f'`{n}`' for n in names)} |"
          for block, names in BLOCK_PARAMETERS.items()),
        "",
        "## Benchmark parameters",
        "",
        "`dmabuf-soc bench NAME --set NAME=VALUE` sets a keyword argument of the benchmark's "
        "`run`; a benchmark not listed takes none.",
        "",
    ]
    for name in bench.available():
        module = bench.load(name)
        table = getattr(module, "PARAMETERS", {})
        if not table:
            continue
        signature = inspect.signature(module.run).parameters
        lines += [f"### `bench {name}`", "",
                  *_markdown_rows(table, {key: signature[key].default for key in table}), ""]
    return "\n".join(lines)


#: The project's own errors, which the command line reports in one line: (module, class).
_REPORTED = (("dmabuf_soc.hw.config", "ConfigError"),
             ("dmabuf_soc.sw.bench._instructions", "CountError"),
             ("dmabuf_soc.sw.machine.compiled.cache", "BuildError"),
             ("dmabuf_soc.sw.synth.flow", "SynthError"),
             ("dmabuf_soc.sw.machine.serial.link", "LinkFailure"))


def _reported(error):
    if isinstance(error, CommandError):
        return True
    for module, name in _REPORTED:
        loaded = sys.modules.get(module)
        if loaded is not None and isinstance(error, getattr(loaded, name)):
            return True
    return False


def main(argv=None):
    """Run the command line on ``argv`` (``sys.argv[1:]`` if ``None``); the exit status.

    A reported error raises :exc:`SystemExit` with its one line, ``dmabuf-soc: error: ...``
    (which Python prints on standard error, exit status 1)."""
    args = _parser().parse_args(argv)
    debug = args.debug or os.environ.get(DEBUG_ENV, "0") not in ("", "0")
    try:
        if getattr(args, "block", None) == "list":
            from ..hw import catalog
            for name in catalog.available():
                print(name)
            return 0
        return args.func(args) or 0
    except Exception as error:
        if debug or not _reported(error):
            raise
        lines = str(error).strip().splitlines() or [type(error).__name__]
        more = " (--debug shows the rest)" if len(lines) > 1 else ""
        raise SystemExit(f"dmabuf-soc: error: {lines[0]}{more}") from None


if __name__ == "__main__":
    # As ``python -m dmabuf_soc.sw.cli``: run the package's own module, whose CommandError is
    # the one the rest of the package raises.
    from . import cli
    sys.exit(cli.main())
