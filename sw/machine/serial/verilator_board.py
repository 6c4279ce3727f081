"""The board simulated by Verilator, its UART on a pseudo-terminal: the host link end to end
without a board, at compiled speed (``board_sim.cc``). Built once per design and cached
under ``<cache>/board-sim``."""

import os
import shutil
import subprocess
from pathlib import Path

from ....hw.board.board import BOARD_CONFIG, Board
from ..compiled import cache
from ..compiled.cache import BuildError, cache_root, compiler
from ..compiled.design import drop_zero_meminit
from ..verilator.builder import VERILATE, environment, wheel_make_variables

__all__ = ["build", "VerilatorBoard"]

_SOURCE = Path(__file__).with_name("board_sim.cc")
#: UART clock cycles per bit in the simulation.
DIVISOR = 4
#: C++ optimisation of the board simulation: ``-O1`` builds in a third of the time of
#: ``-O2`` (38 s against about 110 s) and runs the demo over the link in about 27 s against
#: 17 s, which together is the shorter.
OPT = ("OPT_FAST=-O1", "OPT_SLOW=-O0", "OPT_GLOBAL=-O0")
#: The name of the simulator executable in its build folder.
EXECUTABLE = "board_sim"


def _verilog(config, divisor):
    from amaranth.back import rtlil
    from ...tools.netlist import MUX_TREES, verilog
    text = drop_zero_meminit(rtlil.convert(Board(config, divisor=divisor), name="board"))
    return verilog(text, passes=MUX_TREES)


def build(config=None, *, divisor=DIVISOR, progress=None):
    """The path of the simulator executable of the board built from ``config``, building it
    unless cached (about a minute)."""
    say = progress or (lambda line: None)
    cxx = compiler()
    if cxx is None or shutil.which("make") is None:
        raise BuildError("The board simulation needs g++ (or $CXX) and make")
    options = (divisor, VERILATE, OPT, cxx, _SOURCE.read_bytes())
    sources_key = cache.digest(*cache.sources_parts(config or BOARD_CONFIG), "board",
                               *options)

    def generate():
        say("converting the board to Verilog")
        text = _verilog(config, divisor)
        return cache.digest(text, *options), text

    def compile(workdir, text):
        (workdir / "design.v").write_text(text)
        shutil.copyfile(_SOURCE, workdir / "board_sim.cc")
        jobs = os.cpu_count() or 1
        say(f"verilating and compiling on {jobs} cores")
        command = ["verilator", "--cc", "--exe", "--build", "-j", str(jobs), "--top-module",
                   "board", *VERILATE, "--Mdir", "obj", "-o", f"../{EXECUTABLE}",
                   "-MAKEFLAGS", " ".join((*wheel_make_variables(cxx), *OPT)),
                   "design.v", "board_sim.cc"]
        result = subprocess.run(command, cwd=workdir, env=environment(), capture_output=True,
                                text=True)
        if result.returncode:
            raise BuildError(f"Building the board simulation failed:\n"
                             f"{(result.stderr or result.stdout)[-4000:]}")
        shutil.rmtree(workdir / "obj")

    return cache.build_cached(cache_root() / "board-sim", sources_key, generate, compile,
                              product=EXECUTABLE).library


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
