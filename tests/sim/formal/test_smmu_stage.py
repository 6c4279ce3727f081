"""The SMMU's own properties: a translation stage that sends a failed transaction
downstream fails ``StageSafetyProperties``; a walker whose stream table may hold a valid
entry for the aborting stream answers it OK, which ``StreamAbortProperties`` catches."""

from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import connect, flipped

from dmabuf_soc.hw.bus.axi import AXI4Signature
from dmabuf_soc.hw.smmu.arbiter import TranslationStatus
from dmabuf_soc.hw.smmu.translate import TranslationStage
from dmabuf_soc.sim.formal import blocks, runner
from dmabuf_soc.sim.formal.harness import Harness
from dmabuf_soc.sim.formal.smmu import StreamAbortProperties


class ForwardsFaults(wiring.Component):
    """A translation stage that, once the walker answers a fault or an abort, presents the
    failed transaction downstream (with the address the walker gave) until it is taken."""
    def __init__(self, *, write):
        signature = AXI4Signature(addr_width=40, data_width=64, id_width=1, sid_width=1)
        self._inner = TranslationStage(signature, write=write, max_outstanding=2)
        super().__init__(dict(self._inner.signature.members))

    def elaborate(self, platform):
        m = Module()
        m.submodules.inner = inner = self._inner
        for name, member in self.signature.members.items():
            if name == "down_addr":
                continue
            if member.is_signature:
                connect(m, flipped(getattr(self, name)), getattr(inner, name))
            elif member.flow == wiring.In:
                m.d.comb += getattr(inner, name).eq(getattr(self, name))
            else:
                m.d.comb += getattr(self, name).eq(getattr(inner, name))
        down, inner_down = self.down_addr, inner.down_addr
        forwarding = Signal()
        with m.If(inner.walk.done & (inner.walk.status != TranslationStatus.OK)):
            m.d.sync += forwarding.eq(1)
        with m.Elif(down.ready):
            m.d.sync += forwarding.eq(0)
        m.d.comb += [down.payload.eq(inner_down.payload),
                     down.valid.eq(inner_down.valid | forwarding),
                     inner_down.ready.eq(down.ready & ~forwarding)]
        return m


def test_forwarded_fault_fails(tmp_path):
    job = blocks.BLOCKS["smmu_read_stage"]
    result = runner.run("forwards_faults", job.harness(ForwardsFaults(write=False)),
                        depth=10, cover_depth=0, outdir=tmp_path)
    outcome = {s.name: s for s in result.sets}
    failed = set(outcome["safety"].failed)
    assert failed & {"no_abort_forwarded", "no_fault_forwarded"}, outcome["safety"].describe()
    trace = runner.read_vcd(outcome["safety"].trace)
    assert 0 in (trace["top.safety.assert__no_abort_forwarded"],
                 trace["top.safety.assert__no_fault_forwarded"])


class AnyStreamTable(StreamAbortProperties):
    """``StreamAbortProperties`` without its assumption on the stream table's entry."""
    def rule(self, m, side, rule, holds, *, when=1):
        if rule != "abort_ste_in_table":
            super().rule(m, side, rule, holds, when=when)


def test_walker_answering_ok_fails(tmp_path):
    job = blocks.BLOCKS["smmu_walker"]
    walker, sets, _ = job.build(None)
    sets = [s for s in sets if not isinstance(s, StreamAbortProperties)]
    result = runner.run("any_stream_table", Harness(walker, [*sets, AnyStreamTable(walker)]),
                        depth=16, cover_depth=0, outdir=tmp_path)
    outcome = {s.name: s for s in result.sets}
    assert outcome["abort"].failed == ["no_ok_for_abort"]
