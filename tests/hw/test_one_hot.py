"""One-hot FSMs: Amaranth simulation is unchanged, and yosys re-encodes the state with one
flip-flop per state."""

import json
import subprocess

import pytest
from amaranth.back import rtlil
from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator

from dmabuf_soc.hw.one_hot import one_hot_fsm
from dmabuf_soc.sw.synth import flow

from requirements import needs_yowasp

_STATES = ["IDLE", "A", "B", "C", "D", "E"]


class _Walk(wiring.Component):
    """IDLE → A → … → E → IDLE, one state a cycle while ``go``; ``at_c`` in C."""
    go: In(1)
    at_c: Out(1)

    def __init__(self, *, encode_one_hot=True):
        self._one_hot = encode_one_hot
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        fsm_of = one_hot_fsm(m) if self._one_hot else m.FSM()
        with fsm_of as fsm:
            for index, name in enumerate(_STATES):
                with m.State(name):
                    with m.If(self.go):
                        m.next = _STATES[(index + 1) % len(_STATES)]
        m.d.comb += self.at_c.eq(fsm.ongoing("C"))
        return m


def _trace(dut, cycles):
    seen = []

    async def testbench(ctx):
        for cycle in range(cycles):
            ctx.set(dut.go, cycle % 3 != 2)
            seen.append(ctx.get(dut.at_c))
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(testbench)
    sim.run()
    return seen


def test_simulation_is_that_of_a_plain_fsm():
    assert _trace(_Walk(), 40) == _trace(_Walk(encode_one_hot=False), 40)
    assert sum(_trace(_Walk(), 40)) > 0


def test_the_state_register_carries_the_encoding():
    assert 'attribute \\fsm_encoding "one-hot"' in rtlil.convert(_Walk())
    assert "fsm_encoding" not in rtlil.convert(_Walk(encode_one_hot=False))


@needs_yowasp
def test_yosys_gives_one_flip_flop_per_state(tmp_path):
    (tmp_path / "top.il").write_text(rtlil.convert(_Walk(), name="top"))
    (tmp_path / "synth.ys").write_text("read_rtlil top.il\nsynth_ecp5 -top top\n"
                                       "write_json top.json\n")
    subprocess.run([*flow.Tools.find().yosys, "-q", "-l", "yosys.log", "synth.ys"],
                   cwd=tmp_path, check=True, stdin=subprocess.DEVNULL)
    assert "using `one-hot' encoding" in (tmp_path / "yosys.log").read_text()
    cells = json.loads((tmp_path / "top.json").read_text())["modules"]["top"]["cells"]
    assert sum(cell["type"] == "TRELLIS_FF" for cell in cells.values()) == len(_STATES)
