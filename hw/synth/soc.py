"""The SoC top for FPGA synthesis: the simulated SoC with a memory port in place of the DDR model."""

from ..config import SocConfig
from ..soc import Soc

__all__ = ["SYNTH_CONFIG", "SynthSoc"]

#: The configuration of FPGA builds: the default SoC without the testbench's external
#: manager port.
SYNTH_CONFIG = SocConfig(external_managers=0)


class SynthSoc(Soc):
    """:class:`~dmabuf_soc.hw.soc.Soc` as an FPGA design: the same blocks, built from the
    same configuration, with the interconnect's memory side brought out as an AXI4 manager
    port (``mem``) towards a memory controller instead of the simulation-only DDR model.

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
    """
    def __init__(self, config=None):
        super().__init__(SYNTH_CONFIG if config is None else config, memory="port")

    @property
    def soc(self):
        """The SoC whose blocks the out-of-context builds take: this one."""
        return self
