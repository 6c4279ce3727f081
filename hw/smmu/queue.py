"""What the SMMU's in-memory queues (commands in, events out) have in common: their
configuration and the arithmetic of their indices."""

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import exact_log2

from .format import OA_BITS

__all__ = ["QUEUE_INDEX_WIDTH", "QueueConfigLayout", "QueueMask", "aligned",
           "hold_while_waiting"]

#: Width of queue producer/consumer registers: index and wrap bit of queues of up to
#: ``2**15`` entries.
QUEUE_INDEX_WIDTH = 16


class QueueConfigLayout(data.StructLayout):
    """Base, size and enable of an in-memory queue."""
    def __init__(self):
        super().__init__({
            "enable":   1,
            "base":     OA_BITS,
            "log2size": 5,
        })


class QueueMask(wiring.Component):
    """All-ones over the index bits and the wrap bit of a queue of ``2**log2size`` entries.

    A register, a cycle behind ``log2size`` (which software sets while the queue is
    disabled), so that the paths through a queue's indices do not start at the shift.

    Members
    -------
    log2size : ``In(5)``
    mask : ``Out(QUEUE_INDEX_WIDTH + 1)``
        Its index part is ``mask >> 1``.
    """
    def __init__(self):
        super().__init__({
            "log2size": In(5),
            "mask": Out(QUEUE_INDEX_WIDTH + 1),
        })

    def elaborate(self, platform):
        m = Module()
        m.d.sync += self.mask.eq((Const(2, QUEUE_INDEX_WIDTH + 1) << self.log2size) - 1)
        return m


def aligned(base, size):
    """``base`` with its bits below ``size`` (a power of two) clear: a table's or a queue's
    base ignores them, so that no entry read or written from it crosses 4 KiB."""
    shift = exact_log2(size)
    return Cat(Const(0, shift), base[shift:])


def hold_while_waiting(m, channel, addr):
    """``addr`` as the address of ``channel`` (an AR or AW stream): from a register while a
    request offered in an earlier cycle waits for ``ready``, so that software changing the
    queue's base, or disabling the queue, never changes an address already offered."""
    waiting = Signal()
    held = Signal.like(addr)
    m.d.sync += waiting.eq(channel.valid & ~channel.ready)
    with m.If(~waiting):
        m.d.sync += held.eq(addr)
    return Mux(waiting, held, addr)
