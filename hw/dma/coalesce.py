"""Interrupt coalescing: one interrupt per several completions, or after a quiet delay."""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["IrqCoalescer"]


class IrqCoalescer(wiring.Component):
    """Counts completion events and fires when enough have gathered.

    It fires when the count reaches ``threshold`` (0 counts as 1), when ``delay`` cycles
    (0 disables the timer) have passed since the last event with the count short of the
    threshold, or as soon as the channel is ``idle`` with events pending — so the last
    completion of a chain is never left without an interrupt.

    Parameters
    ----------
    threshold_width, delay_width : int
        Widths of the ``threshold`` and ``delay`` settings.

    Members
    -------
    event : ``In(1)``
        One completion that asks for an interrupt.
    idle : ``In(1)``
        The channel has nothing more in flight.
    threshold : ``In(threshold_width)``
    delay : ``In(delay_width)``
    fire : ``Out(1)``
        Pulses when the interrupt is due.
    pending : ``Out(threshold_width)``
        Completions counted since the last ``fire``.
    """
    def __init__(self, *, threshold_width=8, delay_width=16):
        super().__init__({
            "event": In(1),
            "idle": In(1),
            "threshold": In(threshold_width),
            "delay": In(delay_width),
            "fire": Out(1),
            "pending": Out(threshold_width),
        })
        self._delay_width = delay_width

    def elaborate(self, platform):
        m = Module()
        timer = Signal(self._delay_width)
        count = Signal.like(self.pending)
        m.d.comb += count.eq(self.pending + self.event)

        # The timer counts from the last event while events are pending. Its value matters only
        # then, and the event that makes them pending clears it, so a `fire` need not.
        with m.If(self.event):
            m.d.sync += timer.eq(0)
        with m.Elif((self.pending != 0) & (timer != self.delay)):
            m.d.sync += timer.eq(timer + 1)

        # Compares of registers only: `event` merely chooses between them.
        at_threshold = Mux(self.event, self.pending + 1 >= self.threshold,
                           self.pending >= self.threshold)
        timed_out = (self.delay != 0) & (timer == self.delay) & (self.pending != 0)
        with m.If((self.event | (self.pending != 0)) & (at_threshold | timed_out | self.idle)):
            m.d.comb += self.fire.eq(1)
            m.d.sync += self.pending.eq(0)
        with m.Else():
            m.d.sync += self.pending.eq(count)
        return m
