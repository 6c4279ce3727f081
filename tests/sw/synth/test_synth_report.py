"""The report parsers of the FPGA flow, on reports shaped like yosys' and nextpnr's."""

import pytest

from dmabuf_soc.sw.synth import report


def _stat(cells, *, where="design"):
    body = {"num_cells": sum(cells.values()), "num_cells_by_type": cells}
    if where == "design":
        return {"creator": "Yosys", "modules": {"\\top": body}, "design": body}
    return {"creator": "Yosys", "modules": {"\\top": body}}


def test_ecp5_utilisation_counts_each_resource_class():
    stat = _stat({"$scopeinfo": 3, "LUT4": 900, "PFUMX": 12, "CCU2C": 40, "TRELLIS_FF": 700,
                  "DP16KD": 4, "TRELLIS_DPR16X4": 16})
    counts = report.utilisation(stat, "ecp5")
    assert (counts["lut4"], counts["carry"], counts["ff"], counts["bram"], counts["lutram"]) == \
        (900, 40, 700, 4, 16)
    assert "$scopeinfo" not in counts["cells"]
    assert counts["cells"]["PFUMX"] == 12


def test_ice40_flip_flops_of_every_flavour_are_counted():
    stat = _stat({"SB_LUT4": 120, "SB_CARRY": 9, "SB_DFF": 10, "SB_DFFE": 20, "SB_DFFESR": 5,
                  "SB_RAM40_4K": 2, "SB_GB": 1}, where="modules")
    counts = report.utilisation(stat, "ice40")
    assert (counts["lut4"], counts["carry"], counts["ff"], counts["bram"]) == (120, 9, 35, 2)


def test_utilisation_rejects_unknown_family_and_unflattened_design():
    with pytest.raises(ValueError, match="'xc7'"):
        report.utilisation(_stat({"LUT4": 1}), "xc7")
    two_modules = {"modules": {"\\a": {"num_cells_by_type": {}},
                               "\\b": {"num_cells_by_type": {}}}}
    with pytest.raises(ValueError, match="flatten"):
        report.utilisation(two_modules, "ecp5")


def test_fmax_names_the_clock_without_tool_decorations():
    pnr = {"fmax": {"$glbnet$clk": {"achieved": 61.5, "constraint": 12.0},
                    "clk2$TRELLIS_IO_IN": {"achieved": 140.25, "constraint": 125}}}
    assert report.fmax(pnr) == {"clk": (61.5, 12.0), "clk2": (140.25, 125)}
    assert report.fmax({}) == {}


def test_fmax_from_log_takes_the_post_route_figure():
    log = ("Info: Max frequency for clock 'clk': 238.72 MHz (PASS at 125.00 MHz)\n"
           "Info: routing...\n"
           "Info: Max frequency for clock 'clk': 98.31 MHz (FAIL at 125.00 MHz)\n"
           "Info: Max frequency for clock '$glbnet$aux': 50.00 MHz (PASS at 12.00 MHz)\n")
    assert report.fmax_from_log(log) == {"clk": (98.31, 125.0), "aux": (50.0, 12.0)}
    assert report.fmax_from_log("no timing here") == {}


def _segment(kind, delay, src, dst, *, src_port="Q", dst_port="A", net=None, sources=()):
    segment = {"type": kind, "delay": delay,
               "from": {"cell": src, "port": src_port, "loc": [1, 1]},
               "to": {"cell": dst, "port": dst_port, "loc": [1, 2]}}
    if net is not None:
        segment["net"] = net
        segment["sources"] = list(sources)
    return segment


def test_critical_path_summarises_the_same_clock_path():
    ff, lut, end = "engine.s1_addr_TRELLIS_FF_Q_7", "engine.n_LUT4_Z", "engine.s2_left_TRELLIS_FF_Q"
    path = [
        _segment("clk-to-q", 0.5, ff, ff),
        _segment("routing", 1.25, ff, lut, net="engine.s1_addr[7]",
                 sources=["/src/hw/dma/engine.py:201"]),
        _segment("logic", 0.25, lut, lut, src_port="A", dst_port="F"),
        _segment("routing", 0.0, lut, lut, net="n_CCU2C_COUT_CIN_CCU2C_COUT$CCU2_FCI_INT"),
        _segment("routing", 2.0, lut, end, dst_port="DI", net="engine.n",
                 sources=["/src/hw/dma/engine.py:202", "/share/lattice/cells_map.v:1",
                          "/src/hw/dma/engine.py:201"]),
        _segment("setup", 0.0, end, end, src_port="DI", dst_port="DI"),
    ]
    pnr = {"critical_paths": [
        {"from": "<async>", "to": "posedge clk", "path": [_segment("routing", 9.0, "a", "b")]},
        {"from": "posedge clk", "to": "posedge clk", "path": path},
    ]}
    summary = report.critical_path(pnr, "clk")
    assert summary["from"] == "engine.s1_addr"
    assert summary["to"] == "engine.s2_left.DI"
    assert (summary["delay_ns"], summary["logic_ns"], summary["routing_ns"]) == (4.0, 0.75, 3.25)
    assert summary["logic_levels"] == 1
    assert summary["nets"] == ["engine.s1_addr[7]", "engine.n"]
    assert summary["carry_links"] == 1
    assert summary["sources"] == ["/src/hw/dma/engine.py:201", "/src/hw/dma/engine.py:202"]
    assert summary["summary"].startswith("engine.s1_addr -> engine.s2_left.DI: 4.00 ns")
    assert report.critical_path(pnr, "other") is None
    assert report.critical_path({}) is None


def test_ice40_cell_names_lose_their_packing_suffixes():
    cell = "regs.bus__r__valid_SB_DFFESR_Q_DFFLC"
    pnr = {"critical_paths": [{"from": "posedge $glbnet$clk", "to": "posedge $glbnet$clk",
                               "path": [_segment("clk-to-q", 0.5, cell, cell)]}]}
    assert report.critical_path(pnr, "clk")["from"] == "regs.bus__r__valid"
