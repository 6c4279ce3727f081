"""``dmabuf-soc program``: load a board's bitstream with the user's programmer."""

import shlex
import shutil
import subprocess
from pathlib import Path

__all__ = ["PROGRAMMERS", "DEFAULT_BITSTREAM", "command", "add_parser", "run"]

#: The bitstream ``dmabuf-soc synth --target ecp5 --board ulx3s --block board`` writes.
DEFAULT_BITSTREAM = Path("build/synth/ecp5-board-ulx3s/top.bit")

#: Each programmer's command for a ULX3S: into the FPGA's configuration memory (lost at
#: power-off), or into its flash (``--flash``).
PROGRAMMERS = {
    "openFPGALoader": (("openFPGALoader", "--board", "ulx3s"),
                       ("openFPGALoader", "--board", "ulx3s", "--write-flash")),
    "fujprog":        (("fujprog",), ("fujprog", "-j", "flash")),
}


def command(programmer, bitstream, *, flash=False):
    """The argument vector that loads ``bitstream`` with ``programmer``."""
    try:
        sram, to_flash = PROGRAMMERS[programmer]
    except KeyError:
        raise ValueError(f"Programmer must be one of {', '.join(PROGRAMMERS)}, "
                         f"not {programmer!r}") from None
    return [*(to_flash if flash else sram), str(bitstream)]


def add_parser(subparsers):
    """Add the ``program`` sub-command to ``subparsers``."""
    parser = subparsers.add_parser(
        "program", help="load the board's bitstream onto a ULX3S",
        description="Print the command that loads the board's bitstream with a programmer "
                    "(openFPGALoader or fujprog, whichever is installed, in that order) and "
                    "run it if the programmer is there.")
    parser.add_argument("bitstream", nargs="?", default=str(DEFAULT_BITSTREAM),
                        help=f"the bitstream (default: {DEFAULT_BITSTREAM}, from `dmabuf-soc "
                             f"synth --target ecp5 --board ulx3s --block board`)")
    parser.add_argument("--programmer", choices=sorted(PROGRAMMERS),
                        help="the programmer (default: the first installed)")
    parser.add_argument("--flash", action="store_true",
                        help="write the flash, so that the board starts with it")
    parser.add_argument("--dry-run", action="store_true", help="only print the command")
    parser.set_defaults(func=run)
    return parser


def run(args):
    """Carry out ``dmabuf-soc program``; the exit status."""
    from ..cli import CommandError
    bitstream = Path(args.bitstream)
    if not bitstream.is_file():
        raise CommandError(f"program: no bitstream at {bitstream}; `dmabuf-soc synth "
                           f"--target ecp5 --board ulx3s --block board` makes it")
    names = [args.programmer] if args.programmer else list(PROGRAMMERS)
    installed = [name for name in names if shutil.which(PROGRAMMERS[name][0][0])]
    chosen = installed[0] if installed else names[0]
    argv = command(chosen, bitstream, flash=args.flash)
    print(shlex.join(argv))
    if args.dry_run:
        return 0
    if not installed:
        raise CommandError(f"program: {chosen} is not installed here; run the command above "
                           f"where it is, or install openFPGALoader or fujprog")
    return subprocess.run(argv).returncode
