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

        # The timer counts the cycles since the last event while events are pending. Its value
        # matters only then, and the event that makes them pending clears it, so a `fire` need
        # not. The event is taken a cycle late (`event_last`): in the cycle after one the timer
        # is 0, whatever `timer` holds, and what it holds next is worked out as from 0.
        event_last = Signal()
        m.d.sync += event_last.eq(self.event)
        waiting = self.pending != 0
        since = Signal.like(timer)      # the cycles since the last event
        m.d.comb += since.eq(Mux(event_last, 0, timer))
        with m.If(waiting & (since != self.delay)):
            m.d.sync += timer.eq(since + 1)
        with m.Else():
            m.d.sync += timer.eq(since)

        # Everything is worked out from registers for both cases, with and without an event;
        # `event`, which comes late from the engine, only chooses.
        # `pending + 1`, kept as a register of its own (one bit wider: it does not wrap).
        pending_succ = Signal(len(self.pending) + 1, init=1)
        timed_out = (self.delay != 0) & (since == self.delay) & waiting
        fire_on_event = Signal()
        fire_otherwise = Signal()
        m.d.comb += [
            fire_on_event.eq((pending_succ >= self.threshold) | timed_out | self.idle),
            fire_otherwise.eq(waiting & ((self.pending >= self.threshold) | timed_out |
                                         self.idle)),
            self.fire.eq(Mux(self.event, fire_on_event, fire_otherwise)),
        ]
        with m.If(self.fire):
            m.d.sync += [
                self.pending.eq(0),
                pending_succ.eq(1),
            ]
        with m.Elif(self.event):
            m.d.sync += [
                self.pending.eq(pending_succ),
                pending_succ.eq(pending_succ[:len(self.pending)] + 1),
            ]
        return m
