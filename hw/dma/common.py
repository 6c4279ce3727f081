"""Small pieces the DMA channel's components share."""

from amaranth.hdl import Signal
from amaranth.lib import data, fifo

from ..bus.axi import AXI4Signature
from ..parameters import check_integer

__all__ = ["FifoOf", "check_bus", "load_request", "nonzero"]


def check_bus(bus_signature, stream_id):
    """Raise :exc:`TypeError` unless ``bus_signature`` is an :class:`AXI4Signature` (of a bus
    at least 64 bits wide) and ``stream_id`` an integer, :exc:`ValueError` unless ``stream_id``
    fits the bus's ``sid`` field."""
    if not isinstance(bus_signature, AXI4Signature):
        raise TypeError(f"Bus signature must be an AXI4Signature, not {bus_signature!r}")
    check_integer("Data width", bus_signature.data_width, allowed=(64, 128, 256, 512))
    check_integer("Stream ID", stream_id, minimum=0,
                  maximum=(1 << bus_signature.sid_width) - 1)


def load_request(m, channel, *, id, addr, len):
    """Load the register of an AXI address channel (``channel``, an AR or AW stream) with a
    request of ``len + 1`` beats at ``addr``, offered from the next cycle."""
    m.d.sync += [
        channel.valid.eq(1),
        channel.payload.id.eq(id),
        channel.payload.addr.eq(addr),
        channel.payload.len.eq(len),
    ]


def nonzero(m, name, count, up, down):
    """A register that is ``count != 0`` in every cycle, for a ``count`` register that goes up
    with ``up`` and down with ``down`` each cycle: the compare of the count stays off the
    paths that use it."""
    flag = Signal(name=name)
    with m.If(up & ~down):
        m.d.sync += flag.eq(1)
    with m.Elif(down & ~up & (count == 1)):
        m.d.sync += flag.eq(0)
    return flag


class FifoOf:
    """A :class:`~amaranth.lib.fifo.SyncFIFOBuffered` of ``layout`` records, added to ``m`` as
    ``name``, with views on both ends."""
    def __init__(self, m, name, layout, depth):
        self.fifo = fifo.SyncFIFOBuffered(width=data.Layout.cast(layout).size, depth=depth)
        m.submodules[name] = self.fifo
        self.w_data = data.View(layout, self.fifo.w_data)
        self.r_data = data.View(layout, self.fifo.r_data)

    def __getattr__(self, name):
        return getattr(self.fifo, name)
