"""The board's design, portable across boards: the SoC, on-chip memory and the host bridge."""

from amaranth.hdl import Module, ResetInserter, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out, connect

from ..config import Bank, SocConfig
from ..soc import Soc
from .bridge import HostBridge
from .memory import OnChipMemory

__all__ = ["BOARD_CONFIG", "Board"]

KiB = 1 << 10

#: The configuration of board builds: one external manager port (the bridge's memory access)
#: and banks that fit an ECP5-85F's block RAM beside the SoC (320 KiB of its 468), large
#: enough for the platform's boot reservations (swiotlb, CMA, carveout) and the demo.
BOARD_CONFIG = SocConfig(banks=(Bank("low", base=0x8000_0000, size=256 * KiB),
                                Bank("high", base=0x1_0000_0000, size=64 * KiB)),
                         external_managers=1)


class Board(wiring.Component):
    """The SoC (:class:`~dmabuf_soc.hw.soc.Soc` with a memory port) on
    :class:`~.memory.OnChipMemory`, reached from the host through a
    :class:`~.bridge.HostBridge` on a UART: the whole design of a board but its clock and
    pins, so that simulation runs exactly what the FPGA runs.

    ::

        rx ─▶ HostBridge ─ mmio, cpu ─▶ Soc ─ mem ─▶ OnChipMemory
        tx ◀─            ─ mem ─▶ ext[0] ┘
                         ◀─ irq, cycle
                         ─ soc_reset ─▶ (Soc, OnChipMemory's logic)

    Parameters
    ----------
    config : SocConfig or None
        :data:`BOARD_CONFIG` if ``None``; it needs an external manager port.
    divisor : int
        UART clock cycles per bit.
    clock_hz : int
        The clock frequency the bridge reports (0 in simulation).
    clear : bool
        Zero the memory after each reset (:class:`~.memory.OnChipMemory`).

    Members
    -------
    rx : ``In(1)``
        UART from the host.
    tx : ``Out(1)``
        UART to the host.
    irq : ``Out(8)``
        The SoC's interrupt lines (for LEDs).
    """
    def __init__(self, config=None, *, divisor, clock_hz=0, clear=True):
        config = BOARD_CONFIG if config is None else config
        if not isinstance(config, SocConfig):
            raise TypeError(f"Configuration must be a SocConfig, not {config!r}")
        if config.external_managers < 1:
            raise ValueError(f"A board needs an external manager port for the host bridge's "
                             f"memory access; external_managers must be at least 1, "
                             f"not {config.external_managers}")
        self.soc = Soc(config, memory="port")
        self.memory = OnChipMemory(config, self.soc.interconnect.subordinate_signature,
                                   clear=clear)
        self.bridge = HostBridge(config, divisor=divisor, clock_hz=clock_hz)
        super().__init__({"rx": In(1, init=1), "tx": Out(1, init=1), "irq": Out(8)})

    @property
    def config(self):
        return self.soc.config

    def elaborate(self, platform):
        m = Module()
        soc_reset = Signal()
        m.submodules.soc = ResetInserter(soc_reset)(self.soc)
        m.submodules.memory = ResetInserter(soc_reset)(self.memory)
        m.submodules.bridge = bridge = self.bridge
        connect(m, self.soc.mem, self.memory.bus)
        connect(m, bridge.mmio, self.soc.mmio)
        connect(m, bridge.cpu, self.soc.cpu)
        connect(m, bridge.mem, self.soc.ext[0])
        for index in range(1, self.config.external_managers):
            m.d.comb += [self.soc.ext[index].aw.valid.eq(0), self.soc.ext[index].ar.valid.eq(0),
                         self.soc.ext[index].w.valid.eq(0)]
        m.d.comb += [
            soc_reset.eq(bridge.soc_reset),
            bridge.rx.eq(self.rx),
            self.tx.eq(bridge.tx),
            bridge.irq.eq(self.soc.irq),
            bridge.cycle.eq(self.soc.cycle),
            self.irq.eq(self.soc.irq),
        ]
        return m
