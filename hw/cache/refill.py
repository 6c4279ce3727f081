"""The cache's refill engine: after a miss, the victim out and the missing line in."""

from amaranth.hdl import Cat, Const, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ..bus.axi import AddrLayout, Burst, ReadDataLayout, Resp, Size
from ..one_hot import one_hot_fsm
from .geometry import check_geometry
from .way import TagLayout

__all__ = ["RefillEngine"]


class RefillEngine(wiring.Component):
    """Refills the line of a miss into the way of its victim.

    Once every earlier write-back is in memory (so that the refill reads what they wrote), the
    victim is handed to the write-back engine if it is dirty, and the line is read in one INCR
    burst. The victim's entry takes the new line's tag, and its dirty bit is cleared, in every
    cycle the read waits for its address to be taken, so that the tag memories' write enables
    come from the state alone, never from the bus; the victim's write-back has its tag
    already. The address waits until the victim's data has left its memory. A refill that
    fails (any beat answers an error) installs nothing: its entry is made invalid again.

    Parameters
    ----------
    geometry : CacheGeometry
    id_width : int
        Width of the AR channel's ID; every burst uses ID 0.
    sid_width : int
        Width of the AR channel's stream-ID sideband; driven 0.

    Members
    -------
    start : ``In(1)``
        Begins the refill of the line of tag ``tag`` into set ``set``, in the next cycle.
    set : ``In(index_bits)``
    tag : ``In(tag_bits)``
    victim_dirty : ``In(1)``
        The victim must be written back.
    offer : ``Out(1)``
        The victim is on offer to the write-back engine, and its first beat must be read.
    write_back : ``Out(1)``
        Hands the victim to the write-back engine.
    write_back_idle : ``In(1)``
    write_back_streaming : ``In(1)``
        The write-back engine's :attr:`~.writeback.WriteBackEngine.idle` and
        :attr:`~.writeback.WriteBackEngine.streaming`.
    tag_we : ``Out(1)``
    tag_wdata : ``Out(TagLayout(tag_bits))``
        The victim's entry in set ``set``.
    clear_dirty : ``Out(1)``
        Clear the victim's dirty bit.
    fill : ``Out(1)``
    fill_addr : ``Out(index_bits + word_bits)``
    fill_data : ``Out(data_width)``
        A word of the line, for the victim's way of the data memories.
    ar : ``Out(stream.Signature(AddrLayout(...)))``
    r : ``In(stream.Signature(ReadDataLayout(...)))``
    done : ``Out(1)``
        The line is in: pulses with its last beat.
    failed : ``Out(1)``
        The refill failed: pulses as its entry is made invalid.
    """
    def __init__(self, geometry, *, id_width=4, sid_width=0):
        self._geometry = g = check_geometry(geometry)
        super().__init__({
            "start":                In(1),
            "set":                  In(g.index_bits),
            "tag":                  In(g.tag_bits),
            "victim_dirty":         In(1),
            "offer":                Out(1),
            "write_back":           Out(1),
            "write_back_idle":      In(1),
            "write_back_streaming": In(1),
            "tag_we":               Out(1),
            "tag_wdata":            Out(TagLayout(g.tag_bits)),
            "clear_dirty":          Out(1),
            "fill":                 Out(1),
            "fill_addr":            Out(g.index_bits + g.word_bits),
            "fill_data":            Out(g.data_width),
            "ar":                   Out(stream.Signature(AddrLayout(addr_width=g.addr_width,
                                                                    id_width=id_width,
                                                                    sid_width=sid_width))),
            "r":                    In(stream.Signature(ReadDataLayout(data_width=g.data_width,
                                                                       id_width=id_width))),
            "done":                 Out(1),
            "failed":               Out(1),
        })

    geometry = property(lambda self: self._geometry)

    def elaborate(self, platform):
        m = Module()
        g = self._geometry

        beat  = Signal(g.word_bits)
        error = Signal()
        m.d.comb += [
            self.ar.payload.addr.eq(Cat(Const(0, g.offset_bits), self.set, self.tag)),
            self.ar.payload.len.eq(g.words_per_line - 1),
            self.ar.payload.size.eq(Size.from_bytes(g.bytes_per_word)),
            self.ar.payload.burst.eq(Burst.INCR),
            self.fill_addr.eq(Cat(beat, self.set)),
            self.fill_data.eq(self.r.payload.data),
        ]

        with one_hot_fsm(m):
            with m.State("IDLE"):
                with m.If(self.start):
                    m.next = "WRITE_BACK"

            with m.State("WRITE_BACK"):
                m.d.comb += self.offer.eq(1)
                with m.If(self.write_back_idle):
                    m.d.comb += self.write_back.eq(self.victim_dirty)
                    m.next = "ADDRESS"

            with m.State("ADDRESS"):
                m.d.comb += [
                    self.tag_we.eq(1),
                    self.tag_wdata.valid.eq(1),
                    self.tag_wdata.tag.eq(self.tag),
                    self.clear_dirty.eq(1),
                ]
                with m.If(~self.write_back_streaming):
                    m.d.comb += self.ar.valid.eq(1)
                    with m.If(self.ar.ready):
                        m.d.sync += [beat.eq(0), error.eq(0)]
                        m.next = "DATA"

            with m.State("DATA"):
                m.d.comb += self.r.ready.eq(1)
                with m.If(self.r.valid):
                    failed = error | (self.r.payload.resp != Resp.OKAY)
                    m.d.comb += self.fill.eq(1)
                    m.d.sync += [beat.eq(beat + 1), error.eq(failed)]
                    with m.If(beat == g.words_per_line - 1):
                        with m.If(failed):
                            m.next = "DISCARD"
                        with m.Else():
                            m.d.comb += self.done.eq(1)
                            m.next = "IDLE"

            with m.State("DISCARD"):
                m.d.comb += [self.tag_we.eq(1), self.failed.eq(1)]
                m.next = "IDLE"

        return m
