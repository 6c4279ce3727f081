"""The board simulated by Verilator, its UART on a pseudo-terminal: the host link end to end
without a board, at compiled speed (``board_sim.cc``). Built once per design and cached
under ``<cache>/board-sim``."""

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

from ....hw.board.board import Board
from ..compiled.cache import BuildError, cache_root, compiler
from ..compiled.design import drop_zero_meminit
from ..verilator.builder import VERILATE, environment, wheel_make_variables

__all__ = ["build", "VerilatorBoard"]

_SOURCE = Path(__file__).with_name("board_sim.cc")
#: UART clock cycles per bit in the simulation.
DIVISOR = 4


def _verilog(config, divisor):
    from amaranth.back import rtlil
    from ...tools.netlist import MUX_TREES, verilog
    text = drop_zero_meminit(rtlil.convert(Board(config, divisor=divisor), name="board"))
    return verilog(text, passes=MUX_TREES)


def build(config=None, *, divisor=DIVISOR, progress=None):
    """The path of the simulator executable of the board built from ``config``, building it
    unless cached (a few minutes)."""
    say = progress or (lambda line: None)
    cxx = compiler()
    if cxx is None or shutil.which("make") is None:
        raise BuildError("The board simulation needs g++ (or $CXX) and make")
    say("converting the board to Verilog")
    text = _verilog(config, divisor)
    key = hashlib.sha256(text.encode() + _SOURCE.read_bytes() + repr(VERILATE).encode() +
                         cxx.encode()).hexdigest()[:24]
    folder = cache_root() / "board-sim" / key
    executable = folder / "board_sim"
    if executable.is_file():
        return executable
    work = folder.with_name(f"{key}.tmp{os.getpid()}")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    (work / "design.v").write_text(text)
    shutil.copyfile(_SOURCE, work / "board_sim.cc")
    jobs = os.cpu_count() or 1
    say(f"verilating and compiling on {jobs} cores")
    command = ["verilator", "--cc", "--exe", "--build", "-j", str(jobs), "--top-module",
               "board", *VERILATE, "--Mdir", "obj", "-o", "../board_sim",
               "-MAKEFLAGS", " ".join((*wheel_make_variables(cxx), "OPT_FAST=-O2",
                                       "OPT_SLOW=-O1", "OPT_GLOBAL=-O1")),
               "design.v", "board_sim.cc"]
    result = subprocess.run(command, cwd=work, env=environment(), capture_output=True,
                            text=True)
    if result.returncode:
        raise BuildError(f"Building the board simulation failed:\n"
                         f"{(result.stderr or result.stdout)[-4000:]}")
    shutil.rmtree(work / "obj")
    try:
        work.rename(folder)
    except OSError:         # built at the same time elsewhere
        shutil.rmtree(work, ignore_errors=True)
    return executable


class VerilatorBoard:
    """The board simulation running in a child process; :attr:`port` is its
    pseudo-terminal, for :class:`~.transport.SerialTransport` (any baud rate).

    Parameters
    ----------
    config : SocConfig, optional
        As for :class:`~dmabuf_soc.hw.board.board.Board`.
    """
    def __init__(self, config=None, *, divisor=DIVISOR, progress=None):
        self.executable = build(config, divisor=divisor, progress=progress)
        self._process = subprocess.Popen([str(self.executable), str(divisor)],
                                         stdout=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                         text=True)
        self.port = self._process.stdout.readline().strip()
        if not self.port:
            self.close()
            raise BuildError(f"{self.executable} did not start")

    def close(self):
        if self._process.poll() is None:
            self._process.terminate()
            self._process.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()
