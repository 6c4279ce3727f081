"""Standard port names: every block's netlist has one port per AXI field, named as AMBA IP
names it, so that third-party verification IP and SoC integrators bind to it unchanged."""

import re

import pytest
from amaranth.lib import wiring

from dmabuf_soc.hw import catalog
from dmabuf_soc.hw.bus.axi import AXI4Signature
from dmabuf_soc.hw.bus.ports import MANAGER_CONSTANTS, StandardPorts, axi_prefix
from dmabuf_soc.hw.config import Bank, SocConfig
from dmabuf_soc.hw.unused import never_elaborated
from dmabuf_soc.sw import cli
from dmabuf_soc.sw.tools import netlist


# The AXI4 and AXI4-Lite signal names of the AMBA specification (AXI4: without AxREGION,
# which is optional and not driven), and the direction each has on a manager.
AXI4_MANAGER_OUT = {
    "awid", "awaddr", "awlen", "awsize", "awburst", "awlock", "awcache", "awprot", "awqos",
    "awuser", "awvalid", "wdata", "wstrb", "wlast", "wvalid", "bready",
    "arid", "araddr", "arlen", "arsize", "arburst", "arlock", "arcache", "arprot", "arqos",
    "aruser", "arvalid", "rready",
}
AXI4_MANAGER_IN = {"awready", "wready", "bid", "bresp", "bvalid", "arready",
                   "rid", "rdata", "rresp", "rlast", "rvalid"}
AXIL_MANAGER_OUT = {"awaddr", "awprot", "awvalid", "wdata", "wstrb", "wvalid", "bready",
                    "araddr", "arprot", "arvalid", "rready"}
AXIL_MANAGER_IN = {"awready", "wready", "bresp", "bvalid", "arready", "rdata", "rresp",
                   "rvalid"}

# The AXI ports each block must have, by prefix: (kind, role).
EXPECTED = {
    "dma":   {"m_axi": ("axi", "m"), "s_axil": ("axil", "s")},
    "cache": {"m_axi": ("axi", "m"), "s_axil": ("axil", "s")},
    "smmu":  {"s00_axi": ("axi", "s"), "s01_axi": ("axi", "s"), "m00_axi": ("axi", "m"),
              "m01_axi": ("axi", "m"), "m_axi_table": ("axi", "m"), "s_axil": ("axil", "s")},
    "soc":   {"s_axil": ("axil", "s"), "s00_axi": ("axi", "s")},
}


def _expected_ports(prefix, kind, role):
    outs, ins = ((AXI4_MANAGER_OUT, AXI4_MANAGER_IN) if kind == "axi" else
                 (AXIL_MANAGER_OUT, AXIL_MANAGER_IN))
    if role == "s":
        outs, ins = ins, outs
    return ({f"{prefix}_{name}": "output" for name in outs} |
            {f"{prefix}_{name}": "input" for name in ins})


def _verilog_ports(text, module):
    """``{name: direction}`` of the ports of ``module`` in Verilog ``text``."""
    head = text[text.index(f"module {module}("):]
    names = [name.strip() for name in head[head.index("(") + 1:head.index(");")].split(",")]
    directions = dict((name, direction) for direction, name in re.findall(
        r"^  (input|output)\s+(?:\[\d+:\d+\]\s+)?(\w+);", head, re.MULTILINE))
    return {name: directions[name] for name in names}


@pytest.mark.parametrize("block", ["dma", "cache", "smmu"])
def test_verilog_ports_have_amba_names(block, tmp_path):
    path = tmp_path / f"{block}.v"
    assert cli.main(["verilog", "--block", block, "-o", str(path)]) == 0
    text = path.read_text()
    ports = _verilog_ports(text, block)
    expected = {"clk": "input", "rst": "input", "irq": "output"}
    for prefix, (kind, role) in EXPECTED[block].items():
        expected |= _expected_ports(prefix, kind, role)
    assert {name: ports.get(name) for name in expected} == expected
    # Nothing else but the CPU port of the cache.
    assert all(name in expected or name.startswith("cpu_") for name in ports), sorted(ports)
    # What the ports are is said at the head of the file.
    assert "rst  reset: synchronous to clk, active high" in text
    assert re.search(r"m_axi\w*_awcache: driven with 4'b0011", text)
    assert "always @*" not in text


def test_soc_verilog_ports_have_amba_names():
    # The SoC's Verilog as `dmabuf-soc verilog --block soc` writes it, but with small DDR
    # banks (their memories are written out row by row: a minute at the default sizes),
    # which change no port.
    config = SocConfig(banks=(Bank("low", 0x8000_0000, 4096),
                              Bank("high", 0x1_0000_0000, 4096)))
    ports = _verilog_ports(cli.block_verilog("soc", config), "soc")
    for prefix, (kind, role) in EXPECTED["soc"].items():
        expected = _expected_ports(prefix, kind, role)
        assert {name: ports.get(name) for name in expected} == expected
    assert ports["s00_axi_awcache"] == "input"      # accepted and ignored
    assert {"clk", "rst", "cpu_req_addr", "cpu_rsp_data", "irq", "cycle"} <= set(ports)


def test_manager_constants_are_driven():
    from amaranth.sim import Simulator
    top = catalog.standard_ports("dma", SocConfig())

    async def testbench(ctx):
        await ctx.tick()
        for field, (width, value, _) in MANAGER_CONSTANTS.items():
            for channel in ("aw", "ar"):
                assert ctx.get(getattr(top, f"m_axi_{channel}{field}")) == value

    sim = Simulator(top)
    sim.add_clock(1e-8)
    sim.add_testbench(testbench)
    sim.run()


def test_axi_prefix_by_role_kind_and_index():
    manager = AXI4Signature()
    assert axi_prefix(manager, wiring.Flow.Out) == "m_axi"
    assert axi_prefix(manager, wiring.Flow.In, 1) == "s01_axi"
    from dmabuf_soc.hw.bus.axi import AXI4LiteSignature
    assert axi_prefix(AXI4LiteSignature(), wiring.Flow.In) == "s_axil"
    with pytest.raises(TypeError, match="not 3"):
        axi_prefix(3, wiring.Flow.Out)


def test_standard_ports_rejects_bad_arguments():
    with pytest.raises(TypeError, match="wiring.Component"):
        StandardPorts(object())
    with pytest.raises(ValueError, match="'irq', which is not an AXI port"):
        StandardPorts(never_elaborated(catalog.build("dma", SocConfig())),
                      prefixes={"irq": "m_axi_irq"})


def test_order_ports_numbers_the_top_module_only():
    text = ("module \\top\n  wire width 1 input 0 \\b\n  wire width 2 output 1 \\a\nend\n"
            "module \\sub\n  wire input 0 \\b\nend\n")
    ordered = netlist.order_ports("\n" + text, "top", ["a"])
    assert "wire width 2 output 1 \\a" in ordered and "wire width 1 input 2 \\b" in ordered
    assert "module \\sub\n  wire input 0 \\b" in ordered
    with pytest.raises(ValueError, match="no port"):
        netlist.order_ports("\n" + text, "top", ["c"])
