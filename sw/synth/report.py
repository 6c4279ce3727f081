"""Reading the tools' reports: yosys ``stat -json``, nextpnr ``--report`` JSON, nextpnr logs."""

import re

__all__ = ["CELL_CLASSES", "utilisation", "fmax", "fmax_from_log", "critical_path"]

#: Per FPGA family, the yosys cell types counted as each resource. A flip-flop class entry
#: ending in ``*`` is a prefix (iCE40 has one cell type per enable/reset flavour).
CELL_CLASSES = {
    "ecp5": {
        "lut4":  ("LUT4",),
        "carry": ("CCU2C",),
        "ff":    ("TRELLIS_FF",),
        "bram":  ("DP16KD", "PDPW16KD"),
        "lutram": ("TRELLIS_DPR16X4",),
    },
    "ice40": {
        "lut4":  ("SB_LUT4",),
        "carry": ("SB_CARRY",),
        "ff":    ("SB_DFF*",),
        "bram":  ("SB_RAM40_4K",),
        "lutram": (),
    },
}

# Suffixes yosys and nextpnr append to a cell named after the net it drives.
# Nets inside a carry chain (between adjacent carry cells), named after the whole chain.
_CARRY_NET = re.compile(r"(COUT|CIN)$|\$CCU2_FCI_INT$|^\$nextpnr_CCU2C|SB_CARRY")
# Names yosys derives from the cells a net passes through grow long; the head names the net.
_NET_NAME_LENGTH = 96

_CELL_SUFFIX = re.compile(r"_(TRELLIS_FF|SB_DFF[A-Z]*)_Q(_\d+)?(_DFFLC)?$")


def utilisation(stat, family):
    """Resource counts from the JSON of yosys ``stat -json`` after ``synth_<family>``.

    Returns
    -------
    dict
        ``lut4``, ``carry``, ``ff``, ``bram``, ``lutram``: cell counts; ``cells``: all cells
        by type (``$scopeinfo`` and other zero-area cells left out).
    """
    try:
        classes = CELL_CLASSES[family]
    except KeyError:
        raise ValueError(f"Unknown FPGA family {family!r}; known: "
                         f"{', '.join(sorted(CELL_CLASSES))}") from None
    design = stat.get("design") or {}
    if "num_cells_by_type" not in design:
        modules = stat.get("modules") or {}
        if len(modules) != 1:
            raise ValueError(f"The yosys statistics hold no design totals and "
                             f"{len(modules)} modules; flatten the design first")
        design = next(iter(modules.values()))
    cells = {name: count for name, count in design.get("num_cells_by_type", {}).items()
             if not name.startswith("$scopeinfo")}
    result = {}
    for resource, types in classes.items():
        result[resource] = sum(count for name, count in cells.items()
                               if any(name.startswith(t[:-1]) if t.endswith("*") else name == t
                                      for t in types))
    result["cells"] = dict(sorted(cells.items()))
    return result


def _clock_name(name):
    # nextpnr reports the clock net, decorated: "$glbnet$clk" (an iCE40 global buffer),
    # "clk$TRELLIS_IO_IN" (an ECP5 input buffer). Report the design's port name.
    name = name.removeprefix("$glbnet$")
    return name.split("$", 1)[0]


def fmax(report):
    """``{clock: (achieved_mhz, constraint_mhz)}`` from a nextpnr ``--report`` JSON."""
    return {_clock_name(name): (entry["achieved"], entry["constraint"])
            for name, entry in (report.get("fmax") or {}).items()}


_FMAX_LINE = re.compile(r"Max frequency for clock '(?P<clock>[^']+)': (?P<achieved>[\d.]+) MHz "
                        r"\((?P<verdict>PASS|FAIL) at (?P<constraint>[\d.]+) MHz\)")


def fmax_from_log(text):
    """``{clock: (achieved_mhz, constraint_mhz)}`` from a nextpnr log: the last figure for each
    clock (nextpnr prints an estimate after placement and the final one after routing)."""
    result = {}
    for match in _FMAX_LINE.finditer(text):
        result[_clock_name(match["clock"])] = (float(match["achieved"]),
                                               float(match["constraint"]))
    return result


def _register_name(cell):
    return _CELL_SUFFIX.sub("", cell)


def critical_path(report, clock=None):
    """The worst register-to-register path of ``clock`` (the only clock if ``None``) in a
    nextpnr ``--report`` JSON, or ``None`` if the report has none.

    Returns
    -------
    dict
        ``from`` and ``to``: the start and end registers (``to`` with its input port);
        ``delay_ns``, ``logic_ns``, ``routing_ns``; ``logic_levels``: cells passed through;
        ``nets``: the nets along the path, less the links inside carry chains, which
        ``carry_links`` counts; ``sources``: the HDL source lines of those nets,
        in path order (tool library files left out); ``summary``: one readable line.
    """
    for entry in report.get("critical_paths") or ():
        start, end = entry.get("from", ""), entry.get("to", "")
        if start != end:
            continue            # a path between clocks, or from/to a port
        if clock is not None and _clock_name(start.split()[-1]) != clock:
            continue
        segments = entry.get("path") or ()
        if not segments:
            continue
        total = sum(segment["delay"] for segment in segments)
        routing = sum(segment["delay"] for segment in segments if segment["type"] == "routing")
        nets, sources, carry_links = [], [], 0
        for segment in segments:
            if "net" in segment:
                if _CARRY_NET.search(segment["net"]):
                    carry_links += 1
                else:
                    net = segment["net"]
                    if len(net) > _NET_NAME_LENGTH:
                        net = net[:_NET_NAME_LENGTH - 3] + "..."
                    nets.append(net)
            for source in segment.get("sources") or ():
                if "/share/" not in source and source not in sources:
                    sources.append(source)
        first, last = segments[0]["from"], segments[-1]["to"]
        path = {
            "from": _register_name(first["cell"]),
            "to": f"{_register_name(last['cell'])}.{last['port']}",
            "delay_ns": round(total, 3),
            "logic_ns": round(total - routing, 3),
            "routing_ns": round(routing, 3),
            "logic_levels": sum(1 for segment in segments if segment["type"] == "logic"),
            "nets": nets,
            "carry_links": carry_links,
            "sources": sources,
        }
        path["summary"] = (f"{path['from']} -> {path['to']}: {path['delay_ns']:.2f} ns "
                           f"({path['logic_levels']} logic levels, {path['logic_ns']:.2f} ns "
                           f"logic + {path['routing_ns']:.2f} ns routing)")
        return path
    return None
