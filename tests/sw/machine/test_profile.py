"""The per-block profile of the Verilator model: the attribution of statements to blocks on a
small hand-written design and a made-up perf report, perf's checks, and the ``profile``
benchmark end to end (with ``--compiled``, where perf may record)."""

import subprocess
from pathlib import Path

import pytest

from dmabuf_soc.sw import bench
from dmabuf_soc.sw.bench import profile as bench_profile
from dmabuf_soc.sw.machine import verilator
from dmabuf_soc.sw.machine.compiled.cache import Build
from dmabuf_soc.sw.machine.verilator import profile

#: A design as yosys writes it with its attributes, each kind of statement once.
DESIGN = r"""module soc(clk, rst, a, y);
  input clk;
  wire clk;
  input rst;
  wire rst;
  (* src = "/repo/hw/soc.py:10" *)
  input [7:0] a;
  wire [7:0] a;
  output [7:0] y;
  wire [7:0] y;
  wire _00001_;
  wire [7:0] _00002_;
  wire [7:0] _00003_;
  wire [7:0] _00004_;
  (* hdlname = "dma0 engine count" *)
  (* src = "/repo/hw/dma/engine.py:100" *)
  reg [7:0] \dma0.engine.count  = 8'h00;
  (* hdlname = "dma1 engine count" *)
  (* src = "/repo/hw/dma/engine.py:100" *)
  reg [7:0] \dma1.engine.count  = 8'h00;
  (* hdlname = "smmu tlb entry0" *)
  (* src = "/repo/hw/smmu/caches.py:50" *)
  reg [7:0] \smmu.tlb.entry0  = 8'h00;
  (* hdlname = "smmu cmdq$633 beat" *)
  (* src = "/repo/hw/smmu/cmdq.py:82" *)
  reg \smmu.cmdq$633.beat  = 1'h0;
  (* hdlname = "smmu walks_pulsed" *)
  (* src = "/repo/hw/smmu/smmu.py:90" *)
  wire \smmu.walks_pulsed ;
  (* hdlname = "interconnect m0_read_table total" *)
  (* src = "/repo/hw/bus/interconnect.py:221" *)
  reg [3:0] \interconnect.m0_read_table.total  = 4'h0;
  (* src = "/repo/hw/dma/channel.py:55" *)
  wire [7:0] \bus__w__payload$135.data ;
  (* hdlname = "ddr bank_low" *)
  (* src = "/repo/sim/ddr/model.py:211" *)
  reg [7:0] \ddr.bank_low  [3:0];
  assign _00001_ = \dma1.engine.count  == (* src = "/repo/hw/dma/engine.py:120" *) a;
  assign _00002_ = _00001_ ? (* src = "/repo/hw/dma/engine.py:121" *) \dma1.engine.count  : a;
  assign \bus__w__payload$135.data  = ~ (* src = "/r/hw/dma/channel.py:56" *) \dma0.engine.count ;
  assign _00003_ = a + (* src = "/repo/hw/bus/interconnect.py:300" *) 8'h02;
  assign _00004_ = a;
  (* src = "/repo/hw/dma/engine.py:130" *)
  always @(posedge clk)
    if (rst) \dma1.engine.count  <= 8'h00;
    else \dma1.engine.count  <= _00002_;
  always @(posedge clk) begin
    if (\dma0.engine.count [0])
      \ddr.bank_low [\dma0.engine.count [1:0]][7:0] <= \bus__w__payload$135.data [7:0];
  end
  assign y = _00003_ ^ _00004_;
endmodule
"""


def line_of(fragment):
    """The number (from 1) of the first line of :data:`DESIGN` holding ``fragment``."""
    return next(number for number, text in enumerate(DESIGN.splitlines(), 1)
                if fragment in text)


@pytest.fixture(scope="module")
def design():
    return profile.Design(DESIGN)


@pytest.mark.parametrize("name, block", [
    ("\\dma0.engine.count", "dma0"),
    ("\\smmu.tlb.entry0", "smmu.tlb"),
    ("\\smmu.cmdq$633.beat", "smmu.cmdq"),            # an instance number goes
    ("\\smmu.walks_pulsed", "smmu"),                  # the SMMU's own signal
    ("\\interconnect.m0_read_table.total", "interconnect"),
    ("\\ddr.bank_low", "ddr"),
    ("_00001_", "dma1"),               # dma1's signal, in a file dma0 and dma1 share
    ("_00002_", "dma1"),               # through another temporary
    ("\\bus__w__payload$135.data", "dma0"),     # the top's name of a net dma0 drives
    ("_00003_", "interconnect"),       # no operand in a block: its src file's block
    ("_00004_", "soc"),                # neither
    ("rst", "soc"),
])
def test_signals_belong_to_the_block_of_their_place_or_their_operands(design, name, block):
    assert design.block(name) == block


@pytest.mark.parametrize("fragment, subject", [
    ("assign _00001_", "_00001_"),
    ("assign \\bus__w__payload$135.data", "\\bus__w__payload$135.data"),
    ("reg [7:0] \\smmu.tlb.entry0", "\\smmu.tlb.entry0"),
    ("if (rst) \\dma1.engine.count", "\\dma1.engine.count"),
    ("always @(posedge clk)", "\\dma1.engine.count"),      # a process: what it assigns
    ("if (\\dma0.engine.count [0])", "\\ddr.bank_low"),     # a memory written in an index
    ("endmodule", None),
])
def test_a_line_s_subject_is_what_it_declares_or_assigns(design, fragment, subject):
    assert design.subject(line_of(fragment)) == subject


def test_statements_are_named_by_signal_or_by_source_location(design):
    assert design.statement(line_of("assign _00002_")) == ("hw/dma/engine.py:121", "dma1")
    assert design.statement(line_of("if (rst)")) == ("dma1.engine.count", "dma1")
    assert design.statement(line_of("assign _00004_")) == ("_00004_", "soc")
    assert design.statement(line_of("endmodule")) == (f"design.v:{line_of('endmodule')}",
                                                       "soc")
    assert design.label("\\smmu.cmdq$633.beat") == "smmu.cmdq$633.beat"


def statement_function(fragment, number=1, region="nba"):
    return (f"Vsoc___024root___{region}_sequent__TOP__{number}__PROF__design__l"
            f"{line_of(fragment)}")


#: perf's report of a made-up run: 100 samples in statements (dma1 70, ddr 20,
#: interconnect 10), 300 elsewhere.
REPORT = "\n".join([
    "# To display the perf.data header info, please use --header/--header-only options.",
    "#",
    *(f"{count:>14}  [.] {function:<64}  -      -" for count, function in [
        (250, "Vsoc___024root___eval_nba__0"),
        (30, "machine_wait_irq"),
        (16, "VerilatedContext::time"),
        (4, "operator delete@plt"),
        (30, statement_function("if (rst)", 8034)),
        (25, statement_function("assign _00001_", 7)),
        (15, statement_function("assign _00001_", 3, "ico")),
        (20, statement_function("if (\\dma0.engine.count [0])", 12)),
        (10, statement_function("assign _00003_", 9)),
    ]),
    ""])


def test_a_perf_report_is_read_by_function():
    samples = profile.parse_report(REPORT)
    assert samples["Vsoc___024root___eval_nba__0"] == 250
    assert samples["operator delete@plt"] == 4
    assert sum(samples.values()) == 400
    with pytest.raises(TypeError, match="b'x'"):
        profile.parse_report(b"x")


def test_samples_are_shared_out_among_blocks_and_buckets(design):
    result = profile.attribute(profile.parse_report(REPORT), design, top=2)
    assert result["samples"] == 400
    assert result["design_percent"] == 25.0
    assert result["blocks"] == {"dma1": 70.0, "ddr": 20.0, "interconnect": 10.0}
    assert list(result["blocks"]) == ["dma1", "ddr", "interconnect"]
    assert result["non_design"] == {"scheduling": 62.5, "driver loops": 7.5,
                                    "verilated runtime": 4.0, "other": 1.0}
    assert result["top_statements"] == [
        {"statement": "hw/dma/engine.py:120", "block": "dma1", "percent": 40.0},
        {"statement": "dma1.engine.count", "block": "dma1", "percent": 30.0}]


def test_bad_arguments_are_refused(design):
    with pytest.raises(TypeError, match="42"):
        profile.Design(42)
    with pytest.raises(ValueError, match="'nothing'"):
        design.block("nothing")
    with pytest.raises(ValueError, match="0"):
        design.subject(0)
    with pytest.raises(TypeError, match="'design.v'"):
        profile.attribute({}, "design.v")
    with pytest.raises(ValueError, match="-1"):
        profile.attribute({}, design, top=-1)
    with pytest.raises(ValueError, match="2.5"):
        profile.attribute({"f": 2.5}, design)
    with pytest.raises(TypeError, match="'soc.so'"):
        profile.ProfileMachine("soc.so")
    build = Build(Path("soc.so"), 0.0, True)
    with pytest.raises(ValueError, match="repeat must be a positive integer, not 0"):
        profile.record(build, print, "perf.data", repeat=0)
    with pytest.raises(ValueError, match="'pysim'"):
        bench_profile.run(backend="pysim")


def test_missing_perf_is_reported_with_its_remedy(monkeypatch):
    monkeypatch.setattr(profile.shutil, "which", lambda name: None)
    with pytest.raises(RuntimeError, match="install it.*linux-perf"):
        profile.perf_command()


def test_perf_not_permitted_is_reported_with_its_remedy(monkeypatch):
    monkeypatch.setattr(profile.shutil, "which", lambda name: "/usr/bin/perf")
    monkeypatch.setattr(profile.subprocess, "run", lambda command, **options:
                        subprocess.CompletedProcess(command, 255, "", "Error:\nAccess to "
                                                    "performance monitoring is limited."))
    with pytest.raises(RuntimeError, match="is limited.*perf_event_paranoid"):
        profile.perf_command()


def test_the_profile_is_a_benchmark():
    assert "profile" in bench.available()
    assert bench.describe("profile").startswith("Where the Verilator model spends its time")
    assert bench_profile.BACKENDS == ("verilator",)


def perf_records():
    try:
        profile.perf_command()
    except RuntimeError:
        return False
    return True


# Slow: the profile build is a Verilator build of its own, and perf samples five runs.
@pytest.mark.slow
@pytest.mark.skipif(not (verilator.available() and perf_records()),
                    reason="needs the Verilator backend (run with --compiled) and perf allowed "
                           "to record")
def test_the_benchmark_profiles_the_model_by_block():
    result = bench_profile.run(length=16 * 1024, repeat=2)
    assert result["backend"] == "verilator"
    assert result["method"] == bench_profile.METHOD
    assert result["samples"] > 1000
    assert sum(result["blocks"].values()) == pytest.approx(100, abs=1)
    assert result["design_percent"] + sum(result["non_design"].values()) == \
        pytest.approx(100, abs=1)
    assert result["design_percent"] > 50
    for block in ("interconnect", "dma0", "smmu.tlb", "cache.core", "ddr"):
        assert result["blocks"][block] > 0
    assert list(result["blocks"])[0] == "interconnect"
    assert result["blocks"].get("soc", 0) < 1          # nearly every statement has a block
    assert len(result["top_statements"]) == 10
    assert all(statement["percent"] > 0 for statement in result["top_statements"])
