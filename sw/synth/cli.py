"""``dmabuf-soc synth``: the sub-command, for the main CLI to register with :func:`add_parser`."""

import json
import sys

__all__ = ["add_parser", "run"]

_COLUMNS = (("block", 12), ("placement", 22), ("lut4", 7), ("carry", 6), ("ff", 7),
            ("bram", 5), ("fmax_mhz", 9), ("constraint_mhz", 15), ("met", 5))


def add_parser(subparsers):
    """Add the ``synth`` sub-command to ``subparsers`` (from ``add_subparsers()``)."""
    from .flow import TARGETS
    parser = subparsers.add_parser(
        "synth", help="build blocks for an FPGA with yosys and nextpnr; report LUTs and Fmax",
        description="Synthesise and place-and-route the SoC top and its blocks with yosys and "
                    "nextpnr (the YoWASP packages of the 'synth' extra unless told otherwise), "
                    "keep the logs and reports, and print one result per build.")
    parser.add_argument("--target", choices=sorted(TARGETS), default="ecp5",
                        help="ecp5: LFE5U-85F CABGA381 speed 6 (ULX3S); ice40: iCE40HX8K "
                             "CT256 (HX8K breakout board). Default: ecp5")
    parser.add_argument("--block", dest="synth_block", metavar="NAME",
                        help="build only this block ('list' lists them); default: all")
    parser.add_argument("--board", nargs="?", const=True, default=None, metavar="NAME",
                        help="place on the board's pins with its constraint file, rather "
                             "than out of context at the block's goal frequency; NAME, if "
                             "given, is the target's board (ulx3s for ecp5)")
    parser.add_argument("--json", action="store_true", help="print one JSON object per build")
    parser.add_argument("-o", "--outdir", default="build/synth", metavar="DIR",
                        help="where the builds keep netlists, logs and reports "
                             "(default: build/synth)")
    parser.add_argument("--yosys", metavar="PATH",
                        help="yosys to run (default: $YOSYS, else YoWASP)")
    parser.add_argument("--nextpnr", metavar="PATH",
                        help="nextpnr-ecp5 or nextpnr-ice40 to run (default: $NEXTPNR_ECP5 "
                             "or $NEXTPNR_ICE40, else YoWASP)")
    parser.add_argument("--seed", type=int, default=1, help="nextpnr placer seed (default: 1)")
    parser.add_argument("--timing-weight", type=int, metavar="N",
                        help="nextpnr placer timing weight (--placer-heap-timingweight; "
                             "default: 100 on ecp5, nextpnr's own on ice40)")
    parser.add_argument("--threads", type=int, metavar="N", help="nextpnr threads")
    parser.set_defaults(func=run)
    return parser


def _progress():
    from ..cli import _Progress
    return _Progress()


def _check(args):
    """The tools of ``args``, every option checked before any build starts:
    :exc:`~dmabuf_soc.sw.cli.CommandError` says what is wrong."""
    import shutil
    from ...hw import catalog
    from ..cli import CommandError, _output_folder
    from .flow import Tools
    from .board import BOARDS
    from .flow import TARGETS
    if args.synth_block is not None and args.synth_block not in (*catalog.available(synth=True),
                                                                 "board"):
        raise CommandError(f"synth: unknown block {args.synth_block!r}; known: "
                           f"{', '.join(catalog.available(synth=True))}, board")
    board_name = TARGETS[args.target].board.lower()
    if isinstance(args.board, str) and args.board.lower() != board_name:
        raise CommandError(f"synth --board: the {args.target} target's board is {board_name}, "
                           f"not {args.board}")
    if args.synth_block == "board" and args.target not in BOARDS:
        raise CommandError(f"synth --block board: the board top is built for "
                           f"{', '.join(BOARDS)} only, not {args.target}")
    for option, value, low, high in (("--seed", args.seed, 0, 2**31 - 1),
                                     ("--timing-weight", args.timing_weight, 0, 1000),
                                     ("--threads", args.threads, 1, 256)):
        if value is not None and not low <= value <= high:
            raise CommandError(f"synth {option} must be an integer from {low} to {high}, "
                               f"not {value}")
    _output_folder(args.outdir, "-o")
    nextpnr = {f"nextpnr_{args.target}": args.nextpnr}
    try:
        tools = Tools.find(yosys=args.yosys, **nextpnr)
    except ValueError as error:
        raise CommandError(f"synth: {error}") from None
    for name, command in (("yosys", tools.yosys), (f"nextpnr-{args.target}",
                                                    getattr(tools, f"nextpnr_{args.target}"))):
        if not command or shutil.which(command[0]) is None:
            raise CommandError(f"synth: no {name} to run: {' '.join(command) or 'none'} is "
                               f"not a program here")
    return tools


def run(args):
    """Carry out ``dmabuf-soc synth`` for parsed ``args``; the process exit status."""
    from ...hw import catalog
    from .flow import SynthError, synth
    if args.synth_block == "list":
        for name in (*catalog.available(synth=True), "board"):
            print(name)
        return 0
    tools = _check(args)
    try:
        results = synth(args.target, args.synth_block, outdir=args.outdir,
                        board=True if args.board is not None else None, tools=tools, seed=args.seed,
                        timing_weight="target" if args.timing_weight is None
                        else args.timing_weight,
                        threads=args.threads, progress=_progress())
    except SynthError as error:
        raise SynthError(f"synth: {error}") from None
    if args.json:
        for result in results:
            print(json.dumps(result, sort_keys=True))
    else:
        print(" ".join(f"{name:>{width}}" for name, width in _COLUMNS))
        for result in results:
            print(" ".join(f"{str(result[name]):>{width}}" for name, width in _COLUMNS))
        for result in results:
            if "bitstream" in result:
                print(f"{result['block']}: bitstream {result['bitstream']} (dmabuf-soc program "
                      f"loads it)")
            if not result["met"] and result["critical_path"]:
                print(f"{result['block']}: critical path {result['critical_path']['summary']}",
                      file=sys.stderr)
    return 0
