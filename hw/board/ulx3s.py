"""The ULX3S board top: the portable :class:`~.board.Board` on the ECP5's PLL and the pins."""

from amaranth.hdl import ClockDomain, ClockSignal, Instance, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..parameters import check_integer
from .board import Board

__all__ = ["OSCILLATOR_HZ", "CLOCK_HZ", "BAUD", "ecp5_pll", "Ulx3sTop"]

#: The ULX3S's oscillator, on pin G2.
OSCILLATOR_HZ = 25_000_000
#: The SoC's clock on the board, from the PLL.
CLOCK_HZ = 30_000_000
#: The host link's baud rate: the FT231X makes 3 MBd / n exactly.
BAUD = 1_000_000
#: Cycles the board holds reset after the PLL locks.
RESET_CYCLES = 1 << 10


def ecp5_pll(input_hz, output_hz):
    """``(CLKI_DIV, CLKFB_DIV, CLKOP_DIV, achieved_hz)`` of an ECP5 EHXPLLL making
    ``output_hz`` from ``input_hz`` with feedback from CLKOP: the closest within the
    datasheet's ranges (phase detector 3.125 to 400 MHz, VCO 400 to 800 MHz), the VCO
    nearest 600 MHz."""
    check_integer("PLL input frequency", input_hz, minimum=8_000_000, maximum=400_000_000)
    check_integer("PLL output frequency", output_hz, minimum=3_125_000, maximum=400_000_000)
    best = None
    for clki_div in range(1, 129):
        pfd = input_hz / clki_div
        if not 3.125e6 <= pfd <= 400e6:
            continue
        for clkfb_div in range(1, 81):
            fout = pfd * clkfb_div
            dividers = [d for d in range(1, 129) if 400e6 <= fout * d <= 800e6]
            if not dividers:
                continue
            clkop_div = min(dividers, key=lambda d: abs(fout * d - 600e6))
            error = abs(fout - output_hz)
            if best is None or error < best[0]:
                best = (error, clki_div, clkfb_div, clkop_div, fout)
    if best is None:
        raise ValueError(f"No ECP5 PLL setting makes {output_hz} Hz from {input_hz} Hz")
    _, clki_div, clkfb_div, clkop_div, fout = best
    return clki_div, clkfb_div, clkop_div, fout


class Ulx3sTop(wiring.Component):
    """The design loaded onto a ULX3S (LFE5U-85F): :class:`~.board.Board` clocked at
    ``clock_hz`` by an EHXPLLL from the 25 MHz oscillator, held in reset until
    :data:`RESET_CYCLES` after the PLL locks, its host link on the FT231X USB-serial and its
    interrupt lines on the LEDs 0 to 7. Pins: ``constraints/ulx3s.lpf``.

    Parameters
    ----------
    clock_hz : int
        The SoC's clock.
    baud : int
        The host link's baud rate (``clock_hz`` over it is the UART divisor).
    config : SocConfig or None
        As for :class:`~.board.Board`.

    Members
    -------
    clk_25mhz : ``In(1)``
    ftdi_txd : ``In(1)``
        The FT231X's output: the FPGA receives.
    ftdi_rxd : ``Out(1)``
        The FT231X's input: the FPGA sends.
    led : ``Out(8)``
    """
    def __init__(self, *, clock_hz=CLOCK_HZ, baud=BAUD, config=None):
        check_integer("Baud rate", baud, minimum=1200, maximum=12_000_000)
        self.pll = ecp5_pll(OSCILLATOR_HZ, clock_hz)
        self.clock_hz = round(self.pll[3])
        divisor = round(self.clock_hz / baud)
        if abs(self.clock_hz / divisor - baud) > 0.02 * baud:
            raise ValueError(f"A {self.clock_hz} Hz clock makes no UART within 2 % of "
                             f"{baud} Bd")
        self.baud = baud
        self.board = Board(config, divisor=divisor, clock_hz=self.clock_hz)
        super().__init__({"clk_25mhz": In(1), "ftdi_txd": In(1, init=1),
                          "ftdi_rxd": Out(1, init=1), "led": Out(8)})

    def elaborate(self, platform):
        m = Module()
        m.domains.sync = sync = ClockDomain("sync")
        m.domains.por = ClockDomain("por", reset_less=True)
        clki_div, clkfb_div, clkop_div, _ = self.pll
        locked = Signal()
        m.submodules.pll = Instance(
            "EHXPLLL",
            a_FREQUENCY_PIN_CLKI=str(OSCILLATOR_HZ / 1e6),
            a_FREQUENCY_PIN_CLKOP=str(self.clock_hz / 1e6),
            a_ICP_CURRENT="12", a_LPF_RESISTOR="8", a_MFG_ENABLE_FILTEROPAMP="1",
            a_MFG_GMCREF_SEL="2",
            p_PLLRST_ENA="DISABLED", p_INTFB_WAKE="DISABLED", p_STDBY_ENABLE="DISABLED",
            p_DPHASE_SOURCE="DISABLED", p_OUTDIVIDER_MUXA="DIVA", p_OUTDIVIDER_MUXB="DIVB",
            p_OUTDIVIDER_MUXC="DIVC", p_OUTDIVIDER_MUXD="DIVD",
            p_CLKI_DIV=clki_div, p_CLKFB_DIV=clkfb_div, p_CLKOP_DIV=clkop_div,
            p_CLKOP_ENABLE="ENABLED", p_CLKOP_CPHASE=clkop_div // 2 - 1 if clkop_div > 1 else 0,
            p_CLKOP_FPHASE=0, p_FEEDBK_PATH="CLKOP",
            i_RST=0, i_STDBY=0, i_CLKI=self.clk_25mhz, i_CLKFB=ClockSignal("sync"),
            i_PHASESEL0=0, i_PHASESEL1=0, i_PHASEDIR=1, i_PHASESTEP=1, i_PHASELOADREG=1,
            i_PLLWAKESYNC=0, i_ENCLKOP=0,
            o_CLKOP=ClockSignal("sync"), o_LOCK=locked)
        m.d.comb += ClockSignal("por").eq(ClockSignal("sync"))
        # Held in reset after configuration: the one-hot FSMs are right only after a reset.
        count = Signal(range(RESET_CYCLES + 1))
        with m.If(~locked):
            m.d.por += count.eq(0)
        with m.Elif(count != RESET_CYCLES):
            m.d.por += count.eq(count + 1)
        m.d.comb += sync.rst.eq(count != RESET_CYCLES)

        m.submodules.board = board = self.board
        m.d.comb += [board.rx.eq(self.ftdi_txd), self.ftdi_rxd.eq(board.tx),
                     self.led.eq(board.irq)]
        return m
