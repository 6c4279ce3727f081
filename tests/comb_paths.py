"""Combinational paths from the input ports of a component to its output ports.

A component is converted to RTLIL, prepared by the YoWASP yosys (processes, flattened, lowered
to single-bit gates: ``proc; flatten; opt; techmap``) and written as JSON; the gate netlist is
then walked backwards from each output bit, through gates and asynchronous memory read ports,
stopping at flip-flops and at the clocked read ports of memories. What is left is the purely
combinational input cone of each output bit, bit by bit, so that a ``ready`` output can be
checked against the fields of a ``payload`` input (:func:`field_names`).

Used by ``test_ready_paths.py``; run as a script (``python tests/comb_paths.py dma``) it prints
the input fields in the combinational cone of each output port of a block of the catalog.
"""

import json
import re
from collections import defaultdict

from amaranth.back import rtlil
from amaranth.lib import data, wiring

from dmabuf_soc.sw.tools.netlist import run_yosys

__all__ = ["PREPARE", "combinational_cones", "field_names", "payload_paths"]

#: The yosys passes before the netlist is written: single-bit gates and flip-flops, memories'
#: read ports kept as cells (``$memrd_v2``), constants folded.
PREPARE = "proc; flatten; opt; techmap; opt_expr; opt_clean"

# Cells whose outputs depend on no input in the same cycle: every flip-flop yosys maps to
# (`$_DFF_P_`, `$_SDFFE_PP0P_`, `$_ALDFF_PP_`, ...) and the coarse ones, should any be left.
_FLIP_FLOP = re.compile(r"^\$(_(S?DFFE?|SDFFCE|ALDFFE?|DFFSRE?|FF)_|"
                        r"(s|a|ad|al)?dffe?|sdffc?e|dffsre?|ff)")
# Cells without outputs, or without any that matter here.
_SINKS = {"$memwr", "$memwr_v2", "$meminit", "$meminit_v2", "$scopeinfo", "$print", "$check",
          "$assert", "$assume", "$cover", "$live", "$fair"}
_MEMINIT = re.compile(r'(?:  attribute \\src "[^"\n]*"\n)?  cell \$meminit_v2 \S+\n'
                      r'(?:    [^\n]*\n)*?  end\n')


def _netlist(component, name):
    """The top module of the prepared JSON netlist of ``component``."""
    # Memory initialisers do not change any path, and the DDR banks' are megabytes.
    text = _MEMINIT.sub("", rtlil.convert(component, name=name))
    netlist, = run_yosys(text, f"hierarchy -top {name}; {PREPARE}; write_json top.json",
                         ["top.json"])
    return json.loads(netlist)["modules"][name]


def _param(cell, name):
    value = cell["parameters"][name]
    return int(value, 2) if isinstance(value, str) else value


def _cell_paths(cell):
    """``(output bits, input bits)`` pairs: each output bit of a cell depends on the input bits
    of its pair in the same cycle."""
    kind, ports = cell["type"], cell["connections"]
    directions = cell.get("port_directions", {})
    if kind in _SINKS or _FLIP_FLOP.match(kind):
        return []
    if kind in ("$memrd", "$memrd_v2"):
        # The contents change only on clock edges: an asynchronous read port's data depends on
        # its address (and enable) alone, a clocked one's on nothing in the same cycle.
        if _param(cell, "CLK_ENABLE"):
            return []
        return [(ports["DATA"], ports["ADDR"] + ports["EN"])]
    if kind in ("$mem", "$mem_v2"):
        n, abits, width = (_param(cell, p) for p in ("RD_PORTS", "ABITS", "WIDTH"))
        clocked = _param(cell, "RD_CLK_ENABLE")
        wide = _param(cell, "RD_WIDE_CONTINUATION") if "RD_WIDE_CONTINUATION" in \
            cell["parameters"] else 0
        if wide:            # wide ports: every asynchronous port's address to all its data
            if clocked == (1 << n) - 1:
                return []
            return [(ports["RD_DATA"], ports["RD_ADDR"] + ports["RD_EN"])]
        return [(ports["RD_DATA"][i * width:(i + 1) * width],
                 ports["RD_ADDR"][i * abits:(i + 1) * abits] + ports["RD_EN"][i:i + 1])
                for i in range(n) if not clocked >> i & 1]
    # A gate, or any other cell: every output bit on every input bit (exact for the
    # single-bit gates `techmap` leaves, conservative for anything else).
    outputs = [bit for port, bits in ports.items()
               if directions.get(port) == "output" for bit in bits]
    inputs = [bit for port, bits in ports.items()
              if directions.get(port) != "output" for bit in bits]
    return [(outputs, inputs)]


def combinational_cones(component, *, name="top"):
    """For each output port of ``component``, the input ports in its combinational input cone
    and which of their bits: ``{output: {input: frozenset(bit indices)}}`` (an output with no
    such path maps to ``{}``). Port names are those of the RTLIL, such as ``bus__r__ready``
    and ``bus__r__payload`` (a whole ``lib.data`` payload is one port)."""
    module = _netlist(component, name)
    # Which input port bit each net bit is, and on which bits each driven bit depends.
    port_bit = {}
    for port, info in module["ports"].items():
        if info["direction"] == "input":
            for index, bit in enumerate(info["bits"]):
                if isinstance(bit, int):
                    port_bit[bit] = (port, index)
    depends = {}
    for cell in module["cells"].values():
        for outputs, inputs in _cell_paths(cell):
            inputs = [bit for bit in inputs if isinstance(bit, int)]
            for bit in outputs:
                if isinstance(bit, int):
                    depends.setdefault(bit, []).extend(inputs)

    cones = {}
    for port, info in module["ports"].items():
        if info["direction"] != "output":
            continue
        found = defaultdict(set)
        seen = set()
        todo = [bit for bit in info["bits"] if isinstance(bit, int)]
        while todo:
            bit = todo.pop()
            if bit in seen:
                continue
            seen.add(bit)
            if bit in port_bit:
                source, index = port_bit[bit]
                found[source].add(index)
            todo.extend(depends.get(bit, ()))
        cones[port] = {source: frozenset(bits) for source, bits in found.items()}
    return cones


def _port_layouts(component):
    """``{port name: Layout}`` for the ports of ``component`` that carry a ``lib.data``
    layout, named as the RTLIL names them."""
    layouts = {}
    for path, member, _ in component.signature.flatten(component):
        try:
            layout = data.Layout.cast(member.shape)
        except TypeError:
            continue
        layouts["__".join(str(part) for part in path)] = layout
    return layouts


def _fields(layout, prefix=""):
    """``(name, offset, width)`` of the leaf fields of ``layout``, nested ones dotted."""
    for name, field in layout:
        try:
            inner = data.Layout.cast(field.shape)
        except TypeError:
            inner = None
        if isinstance(inner, data.StructLayout):
            for sub, offset, width in _fields(inner, f"{prefix}{name}."):
                yield sub, field.offset + offset, width
        else:
            yield f"{prefix}{name}", field.offset, field.width


def field_names(component, port, bits):
    """The names of the fields of ``port`` (a ``lib.data`` port of ``component``, by its RTLIL
    name) that ``bits`` fall in, sorted by offset; the bit indices themselves for a plain
    port."""
    layout = _port_layouts(component).get(port)
    if layout is None:
        return sorted(bits)
    return [name for name, offset, width in _fields(layout)
            if any(offset <= bit < offset + width for bit in bits)]


def payload_paths(component, cones, *, outputs=r".*ready$", inputs=r".*payload.*"):
    """The combinational paths of ``cones`` (:func:`combinational_cones`) from the input ports
    whose names match ``inputs`` to the output ports whose names match ``outputs``:
    ``{output: {input: [field names]}}``, empty if there are none."""
    found = {}
    for output, cone in cones.items():
        if not re.fullmatch(outputs, output):
            continue
        paths = {source: field_names(component, source, bits)
                 for source, bits in cone.items() if re.fullmatch(inputs, source)}
        if paths:
            found[output] = paths
    return found


if __name__ == "__main__":
    import sys

    from dmabuf_soc.hw import catalog
    from dmabuf_soc.hw.config import SocConfig

    for block in sys.argv[1:] or catalog.available():
        component = catalog.build(block, SocConfig())
        print(f"{block}:")
        for output, cone in sorted(combinational_cones(component).items()):
            sources = ", ".join(f"{source}{field_names(component, source, bits)}"
                                for source, bits in sorted(cone.items()))
            print(f"  {output} <- {sources or '(registers only)'}")
