"""The SoC top for FPGA synthesis: the simulated SoC with a memory port in place of the DDR model."""

from amaranth.hdl import Elaboratable, Module
from amaranth.lib import wiring
from amaranth.lib.wiring import Flow, Out

from ..config import SocConfig
from ..soc import Soc

__all__ = ["SYNTH_CONFIG", "SynthSoc"]

#: The configuration of FPGA builds: the default SoC without the testbench's external
#: manager port.
SYNTH_CONFIG = SocConfig(external_managers=0)


class _MemoryPort(Elaboratable):
    # Stands where the Soc elaborates its DDR model; its ``bus`` is the top's memory port,
    # so the interconnect's subordinate port is wired straight to the top's ports.
    def __init__(self, bus):
        self.bus = bus

    def elaborate(self, platform):
        return Module()


class SynthSoc(wiring.Component):
    """:class:`~dmabuf_soc.hw.soc.Soc` as an FPGA design: the same blocks, built from the
    same configuration, with the interconnect's memory side brought out as an AXI4 manager
    port towards a memory controller instead of the simulation-only DDR model.

    Parameters
    ----------
    config : SocConfig or None
        :data:`SYNTH_CONFIG` if ``None``.

    Members
    -------
    mem : ``Out(AXI4Signature(...))``
        Towards the memory controller: the interconnect's subordinate-side signature (its
        IDs carry the manager index above the manager's ID). Covers :attr:`SocConfig.ddr_span`.
    mmio, cpu, irq, cycle, ext
        As for :class:`~dmabuf_soc.hw.soc.Soc` (``ext`` only with external managers).

    Attributes
    ----------
    soc : Soc
        The SoC inside, whose blocks the out-of-context builds take.
    """
    def __init__(self, config=None):
        config = SYNTH_CONFIG if config is None else config
        self.soc = Soc(config)
        members = dict(self.soc.signature.members)
        members["mem"] = Out(self.soc.interconnect.subordinate_signature)
        super().__init__(members)
        self.soc.ddr._MustUse__silence = True   # built by Soc, replaced here: never elaborated
        self.soc.ddr = _MemoryPort(wiring.flipped(self.mem))

    @property
    def config(self):
        return self.soc.config

    def elaborate(self, platform):
        m = Module()
        m.submodules.soc = soc = self.soc
        ours = {path: value for path, _, value in self.signature.flatten(self)}
        for path, member, theirs in soc.signature.flatten(soc):
            if member.flow == Flow.Out:
                m.d.comb += ours[path].eq(theirs)
            else:
                m.d.comb += theirs.eq(ours[path])
        return m
