"""An 8N1 UART: a receiver and a transmitter, with the bit time in clock cycles."""

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out

from ..parameters import check_integer

__all__ = ["UARTRx", "UARTTx"]


def _check_divisor(divisor):
    check_integer("UART divisor", divisor, minimum=4, maximum=1 << 20)
    return divisor


class UARTRx(wiring.Component):
    """Receives 8N1 bytes from ``rx``: one start bit, eight data bits LSB first, one stop bit.

    Each bit is sampled in its middle, ``divisor`` cycles apart, after the input passes a
    two-flip-flop synchroniser. A byte whose stop bit is low (a framing error, or a break) is
    dropped.

    Parameters
    ----------
    divisor : int
        Clock cycles per bit: the clock frequency over the baud rate (at least 4).

    Members
    -------
    rx : ``In(1)``
        The serial line, high when idle.
    data : ``Out(stream.Signature(8, always_ready=True))``
        Each byte received, valid for one cycle.
    """
    def __init__(self, divisor):
        self._divisor = _check_divisor(divisor)
        super().__init__({
            "rx": In(1, init=1),
            "data": Out(stream.Signature(8, always_ready=True)),
        })

    def elaborate(self, platform):
        m = Module()
        rx = Signal(init=1)
        m.submodules.sync_rx = FFSynchronizer(self.rx, rx, init=1)

        timer = Signal(range(self._divisor))
        bits = Signal(4)
        shift = Signal(8)

        m.d.sync += self.data.valid.eq(0)
        with m.FSM():
            with m.State("IDLE"):
                with m.If(~rx):
                    m.d.sync += timer.eq(self._divisor // 2 - 1)
                    m.next = "START"
            with m.State("START"):
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Elif(rx):
                    m.next = "IDLE"                 # a glitch, not a start bit
                with m.Else():
                    m.d.sync += [timer.eq(self._divisor - 1), bits.eq(0)]
                    m.next = "DATA"
            with m.State("DATA"):
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Else():
                    m.d.sync += [shift.eq(Cat(shift[1:], rx)),
                                 timer.eq(self._divisor - 1), bits.eq(bits + 1)]
                    with m.If(bits == 7):
                        m.next = "STOP"
            with m.State("STOP"):
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Else():
                    with m.If(rx):
                        m.d.sync += [self.data.payload.eq(shift), self.data.valid.eq(1)]
                        m.next = "IDLE"
                    with m.Else():
                        m.next = "BREAK"
            with m.State("BREAK"):
                with m.If(rx):
                    m.next = "IDLE"
        return m


class UARTTx(wiring.Component):
    """Sends the bytes of ``data`` on ``tx`` as 8N1, ``divisor`` cycles per bit.

    Parameters
    ----------
    divisor : int
        Clock cycles per bit (at least 4).

    Members
    -------
    data : ``In(stream.Signature(8))``
        Bytes to send; one is taken when the line is idle.
    tx : ``Out(1)``
        The serial line, high when idle.
    """
    def __init__(self, divisor):
        self._divisor = _check_divisor(divisor)
        super().__init__({
            "data": In(stream.Signature(8)),
            "tx": Out(1, init=1),
        })

    def elaborate(self, platform):
        m = Module()
        timer = Signal(range(self._divisor))
        shift = Signal(10, init=0x3FF)
        bits = Signal(range(11))

        m.d.comb += self.tx.eq(shift[0])
        with m.If(bits == 0):
            m.d.comb += self.data.ready.eq(1)
            with m.If(self.data.valid):
                m.d.sync += [shift.eq(0b1_00000000_0 | self.data.payload << 1),
                             bits.eq(10), timer.eq(self._divisor - 1)]
        with m.Elif(timer != 0):
            m.d.sync += timer.eq(timer - 1)
        with m.Else():
            m.d.sync += [shift.eq(0b10_0000_0000 | shift >> 1), bits.eq(bits - 1),
                         timer.eq(self._divisor - 1)]
        return m
