"""The formal jobs of the blocks (sim/formal/): each block's bounded check at the depth CI
runs, its cover points reached; deeper checks and induction with ``--run-slow``; a block
broken on purpose fails its proof."""

import pytest
from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out, connect, flipped

from dmabuf_soc.hw.bus.axi import AXI4Signature
from dmabuf_soc.hw.bus.register_slice import AXI4RegisterSlice
from dmabuf_soc.sim.formal import blocks, runner
from dmabuf_soc.sim.formal.properties import AXI4Properties


def _check(result):
    failed = [f"{s.name}: {s.describe()}" for s in result.sets if s.status == "failed"]
    assert not failed, "\n".join(failed)


def _covers_in_ci(name):
    return pytest.param(name, marks=() if blocks.BLOCKS[name].covers_in_ci else pytest.mark.slow)


@pytest.mark.parametrize("name", blocks.available())
def test_bounded(name, tmp_path):
    """The bounded check; for a block whose k-induction closes, the induction instead."""
    job = blocks.BLOCKS[name]
    if job.proven:
        result = runner.run(name, job.harness(), depth=job.induction, cover_depth=0,
                            induction=job.induction, outdir=tmp_path)
        _check(result)
        assert all(s.status == "proven" for s in result.sets), \
            [f"{s.name}: {s.describe()}" for s in result.sets]
    else:
        _check(runner.run(name, job.harness(), depth=job.depth, cover_depth=0,
                          outdir=tmp_path))


@pytest.mark.parametrize("name", [_covers_in_ci(name) for name in blocks.available()])
def test_covers(name, tmp_path):
    job = blocks.BLOCKS[name]
    result = runner.run(name, job.harness(), depth=1, cover_depth=job.cover_depth,
                        outdir=tmp_path)
    unreached = [point for point, step in result.covers.items()
                 if step is None and point not in job.beyond_cover_depth]
    assert not unreached, f"cover points not reached: {', '.join(unreached)}"


@pytest.mark.slow
@pytest.mark.parametrize("name", blocks.available())
def test_deep_and_induction(name, tmp_path):
    job = blocks.BLOCKS[name]
    result = runner.run(name, job.harness(), depth=job.deep, cover_depth=0,
                        induction=job.induction or None, outdir=tmp_path)
    _check(result)
    if job.proven:
        assert all(s.status == "proven" for s in result.sets)


class DroppedValid(wiring.Component):
    """A register slice whose downstream AR VALID falls after one cycle of waiting: the
    handshake the AXI rules forbid to withdraw."""
    def __init__(self, signature):
        self._inner = AXI4RegisterSlice(signature)
        super().__init__({"upstream": In(signature), "downstream": Out(signature)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.inner = inner = self._inner
        connect(m, flipped(self.upstream), inner.upstream)
        waited = Signal()
        m.d.sync += waited.eq(self.downstream.ar.valid & ~self.downstream.ar.ready)
        for name in ("aw", "w", "b", "r"):
            connect(m, getattr(inner.downstream, name), flipped(getattr(self.downstream, name)))
        m.d.comb += [
            self.downstream.ar.payload.eq(inner.downstream.ar.payload),
            self.downstream.ar.valid.eq(inner.downstream.ar.valid & ~waited),
            inner.downstream.ar.ready.eq(self.downstream.ar.ready & ~waited),
        ]
        return m


def test_broken_block_fails(tmp_path):
    signature = AXI4Signature(addr_width=16, data_width=32, id_width=1, sid_width=0)
    result = runner.run("broken_slice", blocks.BLOCKS["register_slice"].harness(
                            DroppedValid(signature)),
                        depth=5, cover_depth=0, outdir=tmp_path)
    outcome = {s.name: s for s in result.sets}
    assert outcome["upstream"].status == "bounded"
    assert outcome["downstream"].status == "failed"
    assert "ar_valid_held" in outcome["downstream"].failed
    trace = runner.read_vcd(outcome["downstream"].trace)
    assert trace["top.downstream.assert__ar_valid_held"] == 0


def test_property_set_arguments():
    port = AXI4Signature().flip().create()
    with pytest.raises(ValueError, match="Role must be one of manager, subordinate, not 'cpu'"):
        AXI4Properties(port, role="cpu", name="bus")
    with pytest.raises(ValueError, match="identifier, not '2bus'"):
        AXI4Properties(port, role="manager", name="2bus")
    with pytest.raises(TypeError, match="AXI4Signature, not 1"):
        AXI4Properties(1, role="manager", name="bus")
    with pytest.raises(ValueError, match="Reads outstanding must be from 1 to 16, not 0"):
        AXI4Properties(port, role="manager", name="bus", max_reads=0)


def test_command_line(tmp_path, capsys):
    from dmabuf_soc.sw.cli import main
    assert main(["formal", "--block", "ident", "--depth", "3", "-o", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["ident", "bus", "bounded", "to", "depth", "3"]
    assert lines[1].startswith("ident") and "4/4 reached" in lines[1]
    assert (tmp_path / "ident" / "job.sby").exists()
    assert (tmp_path / "ident" / "job_bmc" / "logfile.txt").exists()
    with pytest.raises(SystemExit, match="dmabuf-soc: error: formal: unknown block 'nope'; "
                                         "known: register_slice, "):
        main(["formal", "--block", "nope"])


def test_inside_finds_a_block_signals():
    from dmabuf_soc.hw.bus.lite_decoder import LiteDecoder
    from dmabuf_soc.sim.formal.harness import Inside
    decoder = LiteDecoder((("ident", 0x0000, 0x1000),), addr_width=16)
    inside = Inside(decoder)
    assert inside["w_sel"].name == "w_sel"
    state, encoding = inside.fsm("write_state")
    assert encoding == {"IDLE": 0, "FORWARD": 1, "RESPOND": 2}
    assert Inside(decoder).fragment is inside.fragment
    with pytest.raises(KeyError, match="0 signals 'nope' driven in the block"):
        inside["nope"]
    with pytest.raises(KeyError, match="No submodule 'sub'"):
        inside["sub.w_sel"]
