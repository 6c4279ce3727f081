"""The walker's reads of stream table entries and page-table descriptors."""

from amaranth.hdl import Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..bus.axi import AXI4Signature, Burst, Resp, Size
from ..one_hot import one_hot_fsm
from ..parameters import check_integer
from .format import OA_BITS

__all__ = ["TableReadLayout", "TableReader"]


class TableReadLayout(data.StructLayout):
    """A read of ``len + 1`` 64-bit words at ``addr``."""
    def __init__(self):
        super().__init__({
            "addr": OA_BITS,
            "len":  8,
        })


class TableReader(wiring.Component):
    """Reads up to ``words`` 64-bit words of a table from memory, one burst at a time.

    ::

        AR ─(ar handshake)─▶ R ─(last beat)─▶ AR

    A read's address is presented on ``ar`` straight from ``read`` (``read.ready`` is
    ``ar.ready`` while no read is under way); its words are registered into ``data`` in
    order, and ``done`` pulses with the last. A beat's data is taken whether valid or not (so
    that the enables are the state and the beat alone): the valid beat is the last one taken
    into its word.

    Parameters
    ----------
    bus_signature : AXI4Signature
        Of the memory port, 64 bits wide; only its read channels are used.
    words : int
        Of the longest read.

    Members
    -------
    read : ``In(stream.Signature(TableReadLayout()))``
        ``len`` is at most ``words - 1``.
    ar : ``Out(...)``, r : ``In(...)``
        The read channels of ``bus_signature``.
    data : ``Out(64 * words)``
        The words read (those of a shorter read, in its low words).
    error : ``Out(1)``
        A beat of the read was answered with an error.
    done : ``Out(1)``
        The read's last beat arrives: ``data`` and ``error`` hold it from the next cycle.
    """
    def __init__(self, bus_signature, *, words):
        if not isinstance(bus_signature, AXI4Signature) or bus_signature.data_width != 64:
            raise ValueError(f"Bus signature must be a 64-bit AXI4Signature, "
                             f"not {bus_signature!r}")
        check_integer("Number of words", words, minimum=1, maximum=256)
        self.words = words
        super().__init__({
            "read": In(stream.Signature(TableReadLayout())),
            "ar": Out(bus_signature.members["ar"].signature),
            "r": In(bus_signature.members["r"].signature.flip()),
            "data": Out(64 * words),
            "error": Out(1),
            "done": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        ar, r = self.ar, self.r
        beat = Signal(range(self.words))
        m.d.comb += [ar.payload.size.eq(Size.from_bytes(8)), ar.payload.burst.eq(Burst.INCR)]
        with one_hot_fsm(m, name="read"):
            with m.State("AR"):
                m.d.comb += [
                    ar.valid.eq(self.read.valid),
                    ar.payload.addr.eq(self.read.payload.addr),
                    ar.payload.len.eq(self.read.payload.len),
                    self.read.ready.eq(ar.ready),
                ]
                with m.If(self.read.valid & ar.ready):
                    m.d.sync += [beat.eq(0), self.error.eq(0)]
                    m.next = "R"
            with m.State("R"):
                m.d.comb += r.ready.eq(1)
                m.d.sync += self.data.word_select(beat, 64).eq(r.payload.data)
                with m.If(r.valid):
                    m.d.sync += beat.eq(beat + 1)
                    with m.If(r.payload.resp != Resp.OKAY):
                        m.d.sync += self.error.eq(1)
                    with m.If(r.payload.last):
                        m.d.comb += self.done.eq(1)
                        m.next = "AR"
        return m
