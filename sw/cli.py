"""The ``dmabuf-soc`` command line."""

import argparse
import inspect
import json
import sys
import time
from pathlib import Path

from .machine.backends import BACKENDS

__all__ = ["main"]


def _integer_settings(items, settable, command="dmabuf-soc"):
    """``{NAME: value}`` of ``--set NAME=INTEGER`` options, each NAME one of ``settable``."""
    settings = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        if not sep or key not in settable:
            raise SystemExit(f"{command}: --set takes NAME=INTEGER with NAME one of "
                             f"{', '.join(settable) or '(none)'}; not {item!r}")
        try:
            settings[key] = int(value, 0)
        except ValueError:
            raise SystemExit(f"{command}: --set {key}: {value!r} is not an integer") from None
    return settings


def _config_from(args):
    from ..hw.config import SocConfig
    fields = SocConfig.__dataclass_fields__
    changes = _integer_settings(args.set, [name for name, f in fields.items()
                                           if f.type in (int, "int")])
    try:
        return SocConfig(**changes)
    except ValueError as error:
        raise SystemExit(f"dmabuf-soc: {error}") from None


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
    outdir = Path(args.output)
    for path in export(args.format, outdir):
        print(path)


def _cmd_verilog(args):
    from amaranth.back import rtlil, verilog
    from ..hw import catalog
    config = _config_from(args)
    try:
        block = catalog.build(args.block, config)
    except KeyError as error:
        raise SystemExit(f"dmabuf-soc: {error.args[0]}") from None
    ports = None
    if args.rtlil:
        text = rtlil.convert(block, name=args.name or args.block, ports=ports)
    else:
        text = verilog.convert(block, name=args.name or args.block, ports=ports)
    if args.output == "-":
        sys.stdout.write(text)
    else:
        Path(args.output).write_text(text)
        print(args.output)


def _run_scenario(name, args):
    from . import scenarios
    try:
        scenario = scenarios.load(name)
    except KeyError as error:
        raise SystemExit(f"dmabuf-soc: {error.args[0]}") from None
    start = time.monotonic()
    result = scenario.run(config=_config_from(args), backend=args.backend, vcd=args.vcd,
                          progress=_Progress())
    result.setdefault("wall_seconds", round(time.monotonic() - start, 3))
    if args.json:
        print(json.dumps(result, sort_keys=True))
    else:
        for key, value in result.items():
            print(f"{key:>28}: {value}")
    return 0 if result.get("ok", True) else 1


def _cmd_sim(args):
    if args.list:
        from . import scenarios
        for name in scenarios.available():
            print(f"{name:<16} {scenarios.describe(name)}")
        return 0
    if not args.scenario:
        raise SystemExit("dmabuf-soc sim: name a scenario (--list shows them)")
    return _run_scenario(args.scenario, args)


def _cmd_demo(args):
    return _run_scenario("demo", args)


def _bench_parameters(run, args):
    """The keyword arguments ``--set NAME=INTEGER`` gives a benchmark's ``run``."""
    settable = [name for name, parameter in inspect.signature(run).parameters.items()
                if parameter.kind is parameter.KEYWORD_ONLY
                and name not in ("backend", "progress")]
    return _integer_settings(args.set, settable, f"dmabuf-soc bench {args.name}")


def _cmd_bench(args):
    from . import bench
    if args.list or not args.name:
        for name in bench.available():
            print(f"{name:<16} {bench.describe(name)}")
        return 0
    try:
        module = bench.load(args.name)
    except KeyError as error:
        raise SystemExit(f"dmabuf-soc: {error.args[0]}") from None
    result = module.run(backend=args.backend, progress=_Progress(),
                        **_bench_parameters(module.run, args))
    if args.json:
        print(json.dumps(result, sort_keys=True))
    else:
        for key, value in result.items():
            print(f"{key:>32}: {value}")
    return 0


def _parser():
    parser = argparse.ArgumentParser(
        prog="dmabuf-soc",
        description="Cycle-accurate model of the hardware under Linux dma-buf sharing, "
                    "and the driver layer that runs on it.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def with_config(sub):
        sub.add_argument("--set", action="append", metavar="NAME=VALUE",
                         help="change one SoC parameter (e.g. read_latency=40); repeatable")

    regs = commands.add_parser("regs", help="write the register C header, HTML or Markdown docs")
    regs.add_argument("--format", choices=("c", "html", "md"), required=True)
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
        sub.add_argument("--backend", choices=BACKENDS, default="pysim",
                         help="simulation backend: pysim (Amaranth's built-in, the default) "
                              "or cxxrtl (compiled with the system's C++ compiler)")
        sub.add_argument("--vcd", metavar="FILE", help="write waveforms to FILE")
        sub.add_argument("--json", action="store_true", help="print one JSON object")
        with_config(sub)
        sub.set_defaults(func=func)

    bench = commands.add_parser("bench", help="run a benchmark")
    bench.add_argument("name", nargs="?", help="benchmark name (omit to list them)")
    bench.add_argument("--list", action="store_true", help="list the benchmarks")
    bench.add_argument("--json", action="store_true", help="print one JSON object")
    bench.add_argument("--backend", choices=BACKENDS, default="pysim",
                       help="simulation backend (default: pysim)")
    bench.add_argument("--set", action="append", metavar="NAME=VALUE",
                       help="change one integer parameter of the benchmark "
                            "(e.g. copy_bytes=0x4000 for smmu); repeatable")
    bench.set_defaults(func=_cmd_bench)

    from .synth.cli import add_parser as add_synth_parser
    add_synth_parser(commands)
    return parser


def main(argv=None):
    args = _parser().parse_args(argv)
    if getattr(args, "block", None) == "list":
        from ..hw import catalog
        for name in catalog.available():
            print(name)
        return 0
    return args.func(args) or 0


if __name__ == "__main__":
    sys.exit(main())
