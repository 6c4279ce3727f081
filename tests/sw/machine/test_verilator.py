"""The Verilator backend's own parts: Verilator's names, the generated port table, the build
options in the cache key, and a waveform from the trace build. Co-verification against the
built-in simulator is in test_backends.py."""

import pytest

from dmabuf_soc.hw.config import Bank, SocConfig
from dmabuf_soc.sw.machine import verilator
from dmabuf_soc.sw.machine.verilator import builder
from dmabuf_soc.sw.trace.gtkw import gtkw_text, vcd_signals

needs_verilator = pytest.mark.skipif(not verilator.available(), reason="the Verilator backend "
                                     "is off (run with --compiled; it needs g++ and make)")

#: Banks of 64 KiB: a configuration that converts and builds quickly, for the trace build.
SMALL = SocConfig(banks=(Bank("low", base=0x8000_0000, size=0x1_0000),
                         Bank("high", base=0x1_0000_0000, size=0x1_0000)))


@pytest.mark.parametrize("verilog, cxx", [
    ("clk", "clk"),
    ("mmio__aw__valid", "mmio___05Faw___05Fvalid"),
    ("ext__0__r__payload", "ext___05F0___05Fr___05Fpayload"),
    ("ddr.bank_low", "ddr__02ebank_low"),
    ("a$b", "a__024b"),
])
def test_names_are_encoded_as_verilator_does(verilog, cxx):
    assert builder.encode_name(verilog) == cxx


def test_port_table_lists_the_top_ports_and_the_banks():
    text = ("module soc(clk, data, wide, ready);\n"
            "  function [6:0] f;\n    input [6:0] s;\n  endfunction\n"
            "  input clk;\n  input [63:0] data;\n  output [64:0] wide;\n  output ready;\n"
            "endmodule\n")
    table = builder.port_table(text, SMALL)
    assert '{"clk", &top->clk, 1, true}' in table
    assert '{"data", &top->data, 64, true}' in table
    assert '{"wide", top->wide.data(), 65, false}' in table
    assert '{"ready", &top->ready, 1, false}' in table
    assert '"s"' not in table                       # a function's argument is no port
    assert ('{"ddr bank_low", &top->rootp->soc__DOT__ddr__02ebank_low[0], 8192, 64, '
            'sizeof(top->rootp->soc__DOT__ddr__02ebank_low[0])}') in table


@pytest.mark.parametrize("name", ["VERILATE", "OPT_FAST", "OPT_SLOW"])
def test_sources_key_covers_the_build_options(monkeypatch, name):
    key = builder.sources_key(SocConfig())
    value = getattr(builder, name)
    monkeypatch.setattr(builder, name, (*value, "-g") if isinstance(value, tuple)
                        else value + " -g")
    assert builder.sources_key(SocConfig()) != key


def test_sources_key_covers_the_config_and_the_trace_build():
    key = builder.sources_key(SocConfig())
    assert builder.sources_key(SocConfig()) == key
    assert builder.sources_key(SMALL) != key
    assert builder.sources_key(SocConfig(), trace=True) != key
    # The DDR latencies are run-time controls of the model: one build serves them all.
    assert builder.sources_key(SocConfig(read_latency=40, write_latency=1)) == key


def test_build_checks_its_arguments():
    with pytest.raises(TypeError, match="must be a SocConfig, not 'soc'"):
        verilator.build("soc")
    with pytest.raises(TypeError, match="trace must be a bool, not 1"):
        verilator.build(SMALL, trace=1)


@needs_verilator
def test_build_is_cached_and_runs():
    # The default configuration: the co-verification tests build it too.
    first = verilator.build()
    again = verilator.build()
    assert again.cached and again.library == first.library and again.seconds == first.seconds
    assert verilator.cached(SocConfig()) == again
    high = SocConfig().banks[1]

    async def scenario(machine):
        await machine.poke(high.base + 5, b"verilated")
        await machine.tick(7)
        return machine.cycle, await machine.peek(high.base, 16)

    cycle, data = verilator.simulate(scenario)
    assert cycle == 7 and data == bytes(5) + b"verilated" + bytes(2)


@needs_verilator
def test_vcd_from_the_trace_build(tmp_path):
    vcd = tmp_path / "soc.vcd"

    async def scenario(machine):
        await machine.tick(10)
        return machine.cycle

    assert verilator.simulate(scenario, config=SMALL, vcd=vcd) == 10
    assert verilator.cached(SMALL, trace=True) is not None
    text = vcd.read_text()
    assert "$enddefinitions" in text
    assert "cycle" in text and "mmio__aw__valid" in text
    # The blocks' bus ports keep their flattened names, so the save file groups them.
    assert "dma0.bus__ar__valid" in text and "cache.bus__aw__payload" in text
    groups = [line for line in gtkw_text(vcd.name, vcd_signals(vcd)).splitlines()
              if line.startswith("-")]
    assert {"-dma0", "-cache", "-smmu", "-bus AR"} <= set(groups)
    assert "#95\n" in text and "#100\n" in text   # tenth rising edge, then the end
    with pytest.raises(OSError, match="Cannot write the VCD file"):
        verilator.simulate(scenario, config=SMALL, vcd=tmp_path / "missing" / "soc.vcd")
