"""The SoC top: interconnect, DDR model, MMIO decoder and the blocks, from one config."""

from amaranth.hdl import Elaboratable, Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out, connect

from .bus.axi import AXI4LiteSignature
from .bus.interconnect import Interconnect, Window
from .bus.lite_decoder import LiteDecoder
from .bus.register_slice import AXI4RegisterSlice
from .config import SocConfig
from .cache.cache import Cache
from .cache.geometry import CacheGeometry
from .cpu.port import CpuPortSignature
from ..sim.ddr.model import DDRControlSignature, DDRModel
from .dma.channel import DMAChannel
from .smmu.smmu import SMMU
from .ident.ident import Ident
from .regs.soc_map import soc_windows

__all__ = ["IRQ_LINES", "Soc"]

#: Interrupt lines of :attr:`Soc.irq`, by name. Lines of blocks a build lacks stay low.
IRQ_LINES = {"dma0": 0, "dma1": 1, "smmu": 2, "cache": 3}
IRQ_WIDTH = 8


class _Link(Elaboratable):
    """The connection of interfaces with :func:`~amaranth.lib.wiring.connect`, in a module of
    its own. The hardware is the same wires; the built-in simulator, which re-evaluates a
    module's combinational statements whenever any signal they read changes, then only
    re-evaluates the links whose signals moved."""
    def __init__(self, *interfaces):
        self._interfaces = interfaces

    def elaborate(self, platform):
        m = Module()
        connect(m, *self._interfaces)
        return m


class Soc(wiring.Component):
    """The simulated SoC.

    ::

        cpu ──▶ Cache ──────────────────────────────────── ▯ ──┐
        dma0, dma1 ── ▯ ──▶ SMMU (upstream → downstream) ── ▯ ──┤
                            SMMU page-table walker ──────── ▯ ──┤
        ext[i] ─────────────────────────────────────────────────┼──▶ Interconnect ──▶ memory

        mmio ──▶ LiteDecoder ──▶ ident · dma0 · dma1 · cache · smmu   (hw/soc.rdl)

    ``▯``: an :class:`~.bus.register_slice.AXI4RegisterSlice` on each internal manager's
    port, with :attr:`SocConfig.register_slices`; a DMA channel has one in front of the SMMU
    too.

    The memory is the DDR model in simulation (``memory="model"``), or an AXI4 manager port
    ``mem`` towards a memory controller for FPGA builds (``memory="port"``).

    Parameters
    ----------
    config : SocConfig
        Widths, banks, latencies.
    memory : str
        ``"model"``: the DDR model serves the interconnect (simulation). ``"port"``: the
        interconnect's memory side is the ``mem`` port (synthesis).

    Members
    -------
    mmio : ``In(AXI4LiteSignature(addr_width=config.mmio_addr_width))``
        The CPU's register space (hw/soc.rdl).
    cpu : ``In(CpuPortSignature(...))``
        The CPU's loads and stores.
    ext : ``In(config.manager_signature).array(config.external_managers)``
        External AXI4 managers into the interconnect (absent if there are none).
    mem : ``Out(AXI4Signature(...))``
        Only with ``memory="port"``: towards the memory controller, covering
        :attr:`SocConfig.ddr_span`; IDs carry the manager index above the manager's ID.
    ddr_ctrl : ``In(DDRControlSignature(...))``
        Only with ``memory="model"``: the DDR model's error injection windows, driven by the
        simulation (:meth:`~dmabuf_soc.sw.machine.base.Machine.set_error_window`); a port of
        the top so that every simulator, compiled ones included, can drive them.
    irq : ``Out(8)``
        Interrupt lines, numbered as :data:`IRQ_LINES`.
    cycle : ``Out(64)``
        Free-running cycle counter (the system counter), zero in the first cycle.

    Attributes
    ----------
    ddr : DDRModel or None
        The memory, for backdoor access from testbenches (``None`` with ``memory="port"``).
    cache : Cache
        The CPU data cache (not coherent with DMA).
    dma : list of DMAChannel
        The DMA channels; channel ``i`` has stream ID ``i`` and IRQ line ``dma{i}``.
    smmu : SMMU
        Translates the DMA channels' addresses; one port pair per channel.
    interconnect : Interconnect
    slices : dict of AXI4RegisterSlice
        The register slices in front of the interconnect, by manager name (``cache_bus``,
        ``smmu_downstream0`` ...), and between each DMA channel and the SMMU (``dma0_bus``
        ...); empty without :attr:`SocConfig.register_slices`.
    """
    def __init__(self, config=None, *, memory="model", probes=False):
        config = SocConfig() if config is None else config
        if not isinstance(config, SocConfig):
            raise TypeError(f"Configuration must be a SocConfig, not {config!r}")
        if memory not in ("model", "port"):
            raise ValueError(f"Memory must be 'model' or 'port', not {memory!r}")
        if not isinstance(probes, bool):
            raise TypeError(f"probes must be a bool, not {probes!r}")
        # The whole configuration against the table of what the blocks take
        # (docs/parameters.md), before any block sees it; their own checks stand behind.
        config.check()
        self._config = config
        self._memory = memory
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
        self.smmu = SMMU(config, ports=len(self.dma))
        # Internal managers first, so their interconnect indices do not depend on the
        # number of external ports.
        self._internal_managers = {
            "cache_bus": self.cache.bus,
            **{f"smmu_downstream{index}": port for index, port in enumerate(self.smmu.downstream)},
            "smmu_table": self.smmu.table,
        }
        sliced = [*self._internal_managers, *(f"dma{index}_bus" for index in range(len(self.dma)))]
        self.slices = ({name: AXI4RegisterSlice(manager) for name in sliced}
                       if config.register_slices else {})
        n_managers = len(self._internal_managers) + config.external_managers
        ddr_base, ddr_size = config.ddr_span
        self.interconnect = Interconnect(manager, n_managers, [Window("ddr", ddr_base, ddr_size)],
                                         max_outstanding=config.max_outstanding)
        memory_signature = self.interconnect.subordinate_signature
        self.ddr = (DDRModel(config, id_width=memory_signature.id_width)
                    if memory == "model" else None)
        self.mmio_decoder = LiteDecoder(soc_windows(), addr_width=config.mmio_addr_width)
        self.ident = Ident(config)

        members = {
            "mmio": In(AXI4LiteSignature(addr_width=config.mmio_addr_width)),
            "cpu":  In(CpuPortSignature(addr_width=config.addr_width,
                                        data_width=config.data_width)),
            "irq":   Out(IRQ_WIDTH),
            "cycle": Out(64),
        }
        if config.external_managers:
            members["ext"] = In(manager).array(config.external_managers)
        if memory == "port":
            members["mem"] = Out(memory_signature)
        else:
            members["ddr_ctrl"] = In(DDRControlSignature(addr_width=config.addr_width,
                                                         windows=len(self.ddr.ctrl.windows)))
        self._probes = None
        if probes:
            # Simulation only: the transaction trace's probes (sim/trace/probes.py).
            from ..sim.trace.probes import probe_signature, soc_probes
            self._probes = soc_probes(self)
            members["probe"] = Out(probe_signature(*self._probes))
        super().__init__(members)

    @property
    def config(self):
        return self._config

    @property
    def probes(self):
        """With ``probes=True``, the channels and levels the ``probe`` port carries
        (:func:`~dmabuf_soc.sim.trace.probes.soc_probes`); else ``None``."""
        return self._probes

    def elaborate(self, platform):
        m = Module()
        m.submodules.cache        = self.cache
        for index, channel in enumerate(self.dma):
            m.submodules[f"dma{index}"] = channel
        m.submodules.smmu         = self.smmu
        m.submodules.interconnect = self.interconnect
        m.submodules.mmio_decoder = self.mmio_decoder
        m.submodules.ident        = self.ident

        links = {"cpu": (wiring.flipped(self.cpu), self.cache.cpu)}

        def link_through_slice(name, manager, subordinate):
            if name in self.slices:
                m.submodules[f"slice_{name}"] = self.slices[name]
                links[name] = (manager, self.slices[name].upstream)
                links[f"{name}_slice"] = (self.slices[name].downstream, subordinate)
            else:
                links[name] = (manager, subordinate)

        for index, (channel, upstream) in enumerate(zip(self.dma, self.smmu.upstream)):
            link_through_slice(f"dma{index}_bus", channel.bus, upstream)
        ports = iter(self.interconnect.managers)
        for name, manager in self._internal_managers.items():
            link_through_slice(name, manager, next(ports))
        for index, external in enumerate(self.ext if self.config.external_managers else ()):
            links[f"ext{index}"] = (wiring.flipped(external), next(ports))
        if self.ddr is not None:
            m.submodules.ddr = self.ddr
            links["memory"] = (self.interconnect.subordinates[0], self.ddr.bus)
            links["ddr_ctrl"] = (wiring.flipped(self.ddr_ctrl), self.ddr.ctrl)
        else:
            links["memory"] = (self.interconnect.subordinates[0], wiring.flipped(self.mem))
        links["mmio"] = (wiring.flipped(self.mmio), self.mmio_decoder.bus)
        links["ident_regs"] = (self.mmio_decoder.ident, self.ident.bus)
        links["cache_regs"] = (self.mmio_decoder.cache, self.cache.regs)
        for index, channel in enumerate(self.dma):
            links[f"dma{index}_regs"] = (getattr(self.mmio_decoder, f"dma{index}"), channel.regs)
            m.d.comb += self.irq[IRQ_LINES[f"dma{index}"]].eq(channel.irq)
        links["smmu_regs"] = (self.mmio_decoder.smmu, self.smmu.regs)
        for name, interfaces in links.items():
            m.submodules[f"link_{name}"] = _Link(*interfaces)
        m.d.comb += [
            self.irq[IRQ_LINES["cache"]].eq(self.cache.irq),
            self.irq[IRQ_LINES["smmu"]].eq(self.smmu.irq),
        ]

        if self._probes is not None:
            from ..sim.trace.probes import add_probe_registers
            add_probe_registers(m, self.probe, *self._probes)
        m.d.sync += self.cycle.eq(self.cycle + 1)
        return m
