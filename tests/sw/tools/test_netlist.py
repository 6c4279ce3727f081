"""The netlist flow's choice of names: a block's bus ports kept under their flattened names
when asked for, and let go otherwise."""

import pytest
from amaranth.back import rtlil
from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from dmabuf_soc.sw.tools.netlist import block_ports, verilog


class _Block(wiring.Component):
    bus__ar__valid: Out(1)
    go: In(1)

    def elaborate(self, platform):
        m = Module()
        m.d.sync += self.bus__ar__valid.eq(~self.bus__ar__valid | self.go)
        return m


class _Top(wiring.Component):
    valid: Out(1)
    go: In(1)

    def elaborate(self, platform):
        m = Module()
        m.submodules.dma0 = block = _Block()
        m.d.comb += [self.valid.eq(block.bus__ar__valid), block.go.eq(self.go)]
        return m


def test_block_ports_are_kept_only_when_asked():
    text = rtlil.convert(_Top(), name="top")
    selection = block_ports(text)
    assert selection.split() == [f"top.dma0/x:*__{channel}__*"
                                 for channel in ("aw", "w", "b", "ar", "r", "req", "rsp")]
    assert "dma0.bus__ar__valid" in verilog(text, keep=selection)
    assert "dma0.bus__ar__valid" not in verilog(text)


def test_block_ports_needs_a_module():
    with pytest.raises(ValueError, match="no module"):
        block_ports("")
