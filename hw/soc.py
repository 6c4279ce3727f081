"""The SoC top: interconnect, DDR model, MMIO decoder and the blocks, from one config."""

from amaranth.hdl import Const, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out, connect

from .bus.axi import AXI4LiteSignature
from .bus.interconnect import Interconnect, Window
from .bus.lite_decoder import LiteDecoder
from .config import SocConfig
from .cache.cache import Cache
from .cache.geometry import CacheGeometry
from .cpu.port import CpuPortSignature
from .ddr.model import DDRModel
from .dma.channel import DMAChannel
from .ident.ident import Ident
from .regs.soc_map import soc_windows

__all__ = ["IRQ_LINES", "Soc"]

#: Interrupt lines of :attr:`Soc.irq`, by name. Lines of blocks a build lacks stay low.
IRQ_LINES = {"dma0": 0, "dma1": 1, "smmu": 2, "cache": 3}
IRQ_WIDTH = 8


class Soc(wiring.Component):
    """The simulated SoC.

    ::

        cpu ──▶ Cache ──────────┐
        dma0, dma1 ─────────────┤
        ext[i] ─────────────────┼──▶ Interconnect ──▶ DDRModel (all banks)
                                │
        mmio ──▶ LiteDecoder ──▶ ident · dma0 · dma1 · cache   (hw/soc.rdl)

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
    cache : Cache
        The CPU data cache (not coherent with DMA).
    dma : list of DMAChannel
        The DMA channels; channel ``i`` has stream ID ``i`` and IRQ line ``dma{i}``.
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

        manager = config.manager_signature
        self.cache = Cache(CacheGeometry(size=config.cache_size, ways=config.cache_ways,
                                         line_size=config.cache_line_size,
                                         addr_width=config.addr_width,
                                         data_width=config.data_width),
                           id_width=manager.id_width, sid_width=manager.sid_width)
        self.dma = [DMAChannel(stream_id=index, addr_width=config.addr_width,
                               data_width=config.data_width, id_width=manager.id_width,
                               sid_width=manager.sid_width,
                               max_burst_beats=config.dma_max_burst_beats)
                    for index in range(2)]
        # Internal managers first, so their interconnect indices do not depend on the
        # number of external ports.
        self._internal_managers = [self.cache.bus, *(channel.bus for channel in self.dma)]
        n_managers = len(self._internal_managers) + config.external_managers
        ddr_base, ddr_size = config.ddr_span
        self.interconnect = Interconnect(manager, n_managers, [Window("ddr", ddr_base, ddr_size)],
                                         max_outstanding=config.max_outstanding)
        self.ddr = DDRModel(config, id_width=self.interconnect.subordinate_signature.id_width)
        self.mmio_decoder = LiteDecoder(soc_windows(), addr_width=config.mmio_addr_width)
        self.ident = Ident(config)

    @property
    def config(self):
        return self._config

    def elaborate(self, platform):
        m = Module()
        m.submodules.cache        = self.cache
        for index, channel in enumerate(self.dma):
            m.submodules[f"dma{index}"] = channel
        m.submodules.interconnect = self.interconnect
        m.submodules.ddr          = self.ddr
        m.submodules.mmio_decoder = self.mmio_decoder
        m.submodules.ident        = self.ident

        connect(m, wiring.flipped(self.cpu), self.cache.cpu)
        ports = iter(self.interconnect.managers)
        for manager in self._internal_managers:
            connect(m, manager, next(ports))
        for external in (self.ext if self.config.external_managers else ()):
            connect(m, wiring.flipped(external), next(ports))
        connect(m, self.interconnect.subordinates[0], self.ddr.bus)

        connect(m, wiring.flipped(self.mmio), self.mmio_decoder.bus)
        connect(m, self.mmio_decoder.ident, self.ident.bus)
        connect(m, self.mmio_decoder.cache, self.cache.regs)
        for index, channel in enumerate(self.dma):
            connect(m, getattr(self.mmio_decoder, f"dma{index}"), channel.regs)
            m.d.comb += self.irq[IRQ_LINES[f"dma{index}"]].eq(channel.irq)
        m.d.comb += self.irq[IRQ_LINES["cache"]].eq(self.cache.irq)

        m.d.sync += self.cycle.eq(self.cycle + 1)
        return m
