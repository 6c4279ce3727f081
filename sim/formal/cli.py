"""``dmabuf-soc formal``: the sub-command, for the main CLI to register with
:func:`add_parser`."""

import json

__all__ = ["add_parser", "run"]


def add_parser(subparsers):
    """Add the ``formal`` sub-command to ``subparsers`` (from ``add_subparsers()``)."""
    parser = subparsers.add_parser(
        "formal", help="prove the AXI rules and the blocks' own properties with SymbiYosys",
        description="Check each block's ports against the AXI4, AXI4-Lite and CPU port "
                    "property sets, and its own properties: bounded model checking from "
                    "reset, k-induction where asked, and the cover points that show the "
                    "proofs are not vacuous. Keeps the jobs, logs and counterexample traces "
                    "(VCD) under the output folder and prints one result per block and "
                    "property set.")
    parser.add_argument("--block", dest="formal_block", metavar="NAME",
                        help="check only this block ('list' lists them); default: all")
    parser.add_argument("--depth", type=int, metavar="N",
                        help="cycles from reset to check (default: each block's own; the "
                             "cover points are sought within each block's own depth)")
    parser.add_argument("--prove", action="store_true",
                        help="also try k-induction, which proves the rules at every depth")
    parser.add_argument("--json", action="store_true", help="print one JSON object per block")
    parser.add_argument("-o", "--outdir", default="build/formal", metavar="DIR",
                        help="where the jobs keep designs, logs and traces "
                             "(default: build/formal)")
    parser.set_defaults(func=run)
    return parser


def _check(args):
    from ...sw.cli import CommandError, _output_folder
    from .blocks import available
    if args.formal_block is not None and args.formal_block not in available():
        raise CommandError(f"formal: unknown block {args.formal_block!r}; known: "
                           f"{', '.join(available())}")
    if args.depth is not None and not 1 <= args.depth <= 200:
        raise CommandError(f"formal --depth must be an integer from 1 to 200, not {args.depth}")
    _output_folder(args.outdir, "-o")


def run(args):
    """Run the jobs ``args`` asks for; exit status 1 if a proof failed."""
    from ...sw.cli import CommandError
    from .blocks import BLOCKS, available
    from .runner import FormalError, run as run_job, tools
    if args.formal_block == "list":
        for name in available():
            job = BLOCKS[name]
            proof = f"proven, k = {job.induction}" if job.proven else f"depth {job.depth}"
            print(f"{name:<16} {proof:<16} {job.config}")
        return 0
    _check(args)
    try:
        tools()
    except FormalError as error:
        raise CommandError(f"formal: {error}") from None
    names = [args.formal_block] if args.formal_block else available()
    failed = False
    for name in names:
        job = BLOCKS[name]
        depth = args.depth or job.depth
        try:
            result = run_job(name, job.harness(), depth=depth,
                             cover_depth=job.cover_depth,
                             induction=job.induction if args.prove else None,
                             outdir=args.outdir, config=job.config)
        except FormalError as error:
            raise CommandError(f"formal: {error}") from None
        failed = failed or not result.passed
        if args.json:
            print(json.dumps(result.as_json()), flush=True)
            continue
        seconds = sum(result.seconds.values())
        for property_set in result.sets:
            print(f"{name:<16} {property_set.name:<12} {property_set.describe()}")
        unreached = [point for point, step in result.covers.items() if step is None]
        reached = len(result.covers) - len(unreached)
        print(f"{name:<16} {'covers':<12} {reached}/{len(result.covers)} reached"
              f"{' (not: ' + ', '.join(unreached) + ')' if unreached else ''}; "
              f"{seconds:.0f} s", flush=True)
    return 1 if failed else 0
