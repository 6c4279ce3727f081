"""The SoC top: interconnect, DDR model, MMIO decoder and the blocks, from one config."""

from amaranth.hdl import Const, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out, connect

from .bus.axi import AXI4LiteSignature
from .bus.interconnect import Interconnect, Window
from .bus.lite_decoder import LiteDecoder
from .config import SocConfig
from .cpu.bridge import UncachedBridge
from .cpu.port import CpuPortSignature
from .ddr.model import DDRModel
from .ident.ident import Ident
from .regs.soc_map import soc_windows

__all__ = ["IRQ_LINES", "Soc"]

#: Interrupt lines of :attr:`Soc.irq`, by name. Lines of blocks a build lacks stay low.
IRQ_LINES = {"dma0": 0, "dma1": 1, "smmu": 2, "cache": 3}
IRQ_WIDTH = 8


class Soc(wiring.Component):
    """The simulated SoC.

    ::

        cpu ──▶ UncachedBridge ──┐
        ext[i] ──────────────────┼──▶ Interconnect ──▶ DDRModel (all banks)
                                 │
        mmio ──▶ LiteDecoder ──▶ ident (and each block of hw/soc.rdl)

    Parameters
    ----------
    config : SocConfig
        Widths, banks, latencies.

    Members
    -------
    mmio : ``In(AXI4LiteSignature(addr_width=config.mmio_addr_width))``
        The CPU's register space (hw/soc.rdl).
    cpu : ``In(CpuPortSignature(...))``
        The CPU's loads and stores.
    ext : ``In(config.manager_signature).array(config.external_managers)``
        External AXI4 managers into the interconnect (absent if there are none).
    irq : ``Out(8)``
        Interrupt lines, numbered as :data:`IRQ_LINES`.
    cycle : ``Out(64)``
        Free-running cycle counter (the system counter), zero in the first cycle.

    Attributes
    ----------
    ddr : DDRModel
        The memory, for backdoor access from testbenches.
    interconnect : Interconnect
    """
    def __init__(self, config=None):
        config = SocConfig() if config is None else config
        if not isinstance(config, SocConfig):
            raise TypeError(f"Configuration must be a SocConfig, not {config!r}")
        self._config = config
        members = {
            "mmio": In(AXI4LiteSignature(addr_width=config.mmio_addr_width)),
            "cpu":  In(CpuPortSignature(addr_width=config.addr_width,
                                        data_width=config.data_width)),
            "irq":   Out(IRQ_WIDTH),
            "cycle": Out(64),
        }
        if config.external_managers:
            members["ext"] = In(config.manager_signature).array(config.external_managers)
        super().__init__(members)

        self.cpu_bridge = UncachedBridge(config.manager_signature)
        self._managers = [self.cpu_bridge.bus]
        if config.external_managers:
            self._managers += list(self.ext)
        ddr_base, ddr_size = config.ddr_span
        self.interconnect = Interconnect(config.manager_signature, len(self._managers),
                                         [Window("ddr", ddr_base, ddr_size)],
                                         max_outstanding=config.max_outstanding)
        self.ddr = DDRModel(config, id_width=self.interconnect.subordinate_signature.id_width)
        self.mmio_decoder = LiteDecoder(soc_windows(), addr_width=config.mmio_addr_width)
        self.ident = Ident(config)

    @property
    def config(self):
        return self._config

    def elaborate(self, platform):
        m = Module()
        m.submodules.cpu_bridge   = self.cpu_bridge
        m.submodules.interconnect = self.interconnect
        m.submodules.ddr          = self.ddr
        m.submodules.mmio_decoder = self.mmio_decoder
        m.submodules.ident        = self.ident

        connect(m, wiring.flipped(self.cpu), self.cpu_bridge.cpu)
        for index, manager in enumerate(self._managers):
            if manager is self.cpu_bridge.bus:
                connect(m, manager, self.interconnect.managers[index])
            else:
                connect(m, wiring.flipped(manager), self.interconnect.managers[index])
        connect(m, self.interconnect.subordinates[0], self.ddr.bus)

        connect(m, wiring.flipped(self.mmio), self.mmio_decoder.bus)
        connect(m, self.mmio_decoder.ident, self.ident.bus)

        m.d.sync += self.cycle.eq(self.cycle + 1)
        return m
