"""The cache's write-back engine: each dirty line handed to it becomes an AW and a burst of W
beats read from the data memories."""

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..bus.axi import AddrLayout, Burst, Size, WriteDataLayout, WriteRespLayout
from .geometry import check_geometry
from .way import BeatLayout

__all__ = ["MAX_WRITEBACKS_OUTSTANDING", "LineLayout", "WriteBackEngine"]

#: Write-backs the cache may have issued without their write response yet.
MAX_WRITEBACKS_OUTSTANDING = 15


class LineLayout(data.StructLayout):
    """Where a line is held, and its tag: what the write-back engine needs of it."""
    def __init__(self, geometry):
        check_geometry(geometry)
        super().__init__({
            "set": geometry.index_bits,
            "way": range(geometry.ways),
            "tag": geometry.tag_bits,
        })


class WriteBackEngine(wiring.Component):
    """Writes lines back to memory, one INCR burst of a whole line each.

    A line is on offer in every cycle (``line``); ``start`` hands it over, which the
    requester does only while ``can_start``, or ``idle``. Its AW goes out at once; its beats
    are read from the data memories (``raddr``, a row per cycle while ``streaming``) and leave
    one per cycle from a beat register. While one burst streams, the next line may be handed
    over: its beats follow the current burst's without a bubble. The write responses are
    counted, so that ``idle`` means every write-back is in memory.

    The data memories' read ports are not registered (yosys does not use the block RAMs'
    output registers), so each beat goes from the line's way straight into the beat
    register, and the bypasses act on that register. ``streaming`` means that the memories'
    output holds a beat of the line being written back; the beat moves into the beat register
    when that is free, and until then the same row is read again (so a store landing
    meanwhile is seen). (Registering every way whole, with the way chosen after the register,
    made the cache alone faster but the SoC top much slower: 256 flip-flops round the block
    RAMs.)

    Parameters
    ----------
    geometry : CacheGeometry
    id_width : int
        Width of the AW channel's ID; every burst uses ID 0.
    sid_width : int
        Width of the AW channel's stream-ID sideband; driven 0.

    Members
    -------
    line : ``In(LineLayout(geometry))``
        The line on offer.
    start : ``In(1)``
        Hands ``line`` over.
    can_start : ``Out(1)``
        A line may be handed over: from registers alone, so a line is handed over a cycle
        after its place frees, which the current burst's beats hide.
    idle : ``Out(1)``
        No write-back is under way or waits for its response.
    streaming : ``Out(1)``
        The data memories' read row is ``raddr``.
    raddr : ``Out(index_bits + word_bits)``
    beats : ``In(data.ArrayLayout(BeatLayout(data_width), ways))``
        Every way's word of the row read in the previous cycle.
    aw : ``Out(stream.Signature(AddrLayout(...)))``
    w : ``Out(stream.Signature(WriteDataLayout(data_width)))``
    b : ``In(stream.Signature(WriteRespLayout(...)))``
        The write responses to the write-backs, always taken.
    """
    def __init__(self, geometry, *, id_width=4, sid_width=0):
        self._geometry = g = check_geometry(geometry)
        super().__init__({
            "line":      In(LineLayout(g)),
            "start":     In(1),
            "can_start": Out(1),
            "idle":      Out(1),
            "streaming": Out(1),
            "raddr":     Out(g.index_bits + g.word_bits),
            "beats":     In(data.ArrayLayout(BeatLayout(g.data_width), g.ways)),
            "aw":        Out(stream.Signature(AddrLayout(addr_width=g.addr_width,
                                                         id_width=id_width,
                                                         sid_width=sid_width))),
            "w":         Out(stream.Signature(WriteDataLayout(data_width=g.data_width))),
            "b":         In(stream.Signature(WriteRespLayout(id_width=id_width))),
        })

    geometry = property(lambda self: self._geometry)

    def elaborate(self, platform):
        m = Module()
        g = self._geometry
        line = self.line

        aw_pending   = Signal()
        aw_addr      = Signal(g.addr_width)
        # The line being read, and the one handed over behind it.
        active       = Signal()
        active_set   = Signal(g.index_bits)
        active_way   = Signal(range(g.ways))
        beat         = Signal(g.word_bits)
        next_valid   = Signal()
        next_set     = Signal(g.index_bits)
        next_way     = Signal(range(g.ways))
        outstanding  = Signal(range(MAX_WRITEBACKS_OUTSTANDING + 1))

        q_valid       = Signal()
        q_last        = Signal()
        q_read        = Signal(g.data_width)
        q_bypass      = Signal(g.bytes_per_word)
        q_bypass_data = Signal(g.data_width)

        aw_taken   = Signal()
        beat_taken = Signal()
        beat_last  = Signal()
        line_read  = Signal()
        start_now  = Signal()
        m.d.comb += [
            aw_taken.eq(aw_pending & self.aw.ready),
            beat_taken.eq(active & (~q_valid | self.w.ready)),
            beat_last.eq(beat == g.words_per_line - 1),
            line_read.eq(beat_taken & beat_last),
            self.can_start.eq(~aw_pending & ~next_valid &
                              (outstanding != MAX_WRITEBACKS_OUTSTANDING)),
            start_now.eq(self.start & (~active | (line_read & ~next_valid))),
            self.idle.eq(~aw_pending & ~active & (outstanding == 0)),
            self.streaming.eq(active),
        ]

        with m.If(self.w.ready):
            m.d.sync += q_valid.eq(0)
        with m.If(beat_taken):
            way_beat = self.beats[active_way]
            m.d.sync += [q_valid.eq(1), q_last.eq(beat_last), q_read.eq(way_beat.read)]
            # Which bytes the bypasses replace, and with what, worked out from registers.
            for byte in range(g.bytes_per_word):
                by_store = way_beat.store_strb[byte]
                m.d.sync += [
                    q_bypass[byte].eq(way_beat.write_strb[byte] | by_store),
                    q_bypass_data.word_select(byte, 8).eq(
                        Mux(by_store, way_beat.store_data.word_select(byte, 8),
                            way_beat.write_data.word_select(byte, 8))),
                ]
        q_data = Signal(g.data_width)
        for byte in range(g.bytes_per_word):
            m.d.comb += q_data.word_select(byte, 8).eq(
                Mux(q_bypass[byte], q_bypass_data.word_select(byte, 8),
                    q_read.word_select(byte, 8)))

        m.d.comb += [
            self.aw.valid.eq(aw_pending),
            self.aw.payload.addr.eq(aw_addr),
            self.aw.payload.len.eq(g.words_per_line - 1),
            self.aw.payload.size.eq(Size.from_bytes(g.bytes_per_word)),
            self.aw.payload.burst.eq(Burst.INCR),
            self.w.valid.eq(q_valid),
            self.w.payload.data.eq(q_data),
            self.w.payload.strb.eq(Const(-1, g.bytes_per_word)),
            self.w.payload.last.eq(q_last),
        ]

        # The line registers take the line on offer whenever they are free, not only when it
        # is handed over (only ``start`` makes them count), so that their enables wait on the
        # bus and the beat register alone, never on the requester's hand-over.
        with m.If(~aw_pending | aw_taken):
            m.d.sync += aw_addr.eq(Cat(Const(0, g.offset_bits), line.set, line.tag))
        with m.If(~active | line_read):
            m.d.sync += [active_set.eq(Mux(next_valid, next_set, line.set)),
                         active_way.eq(Mux(next_valid, next_way, line.way))]
        with m.If(~next_valid | line_read):
            m.d.sync += [next_set.eq(line.set), next_way.eq(line.way)]

        with m.If(aw_taken):
            m.d.sync += aw_pending.eq(0)
        # ``beat`` wraps to 0 as a line's last beat is read, so it is 0 when a line starts.
        with m.If(beat_taken):
            m.d.sync += beat.eq(beat + 1)
        with m.If(line_read):
            m.d.sync += [active.eq(next_valid), next_valid.eq(0)]
        with m.If(self.start):
            m.d.sync += aw_pending.eq(1)
            with m.If(start_now):
                m.d.sync += active.eq(1)
            with m.Else():
                m.d.sync += next_valid.eq(1)
        m.d.comb += self.b.ready.eq(1)
        m.d.sync += outstanding.eq(outstanding + self.start - self.b.valid)

        # The first beat of a line that may be handed over is read whether or not it is, so
        # that the hand-over never selects the row.
        with m.If(line_read):
            first_set = Mux(next_valid, next_set, line.set)
            m.d.comb += self.raddr.eq(Cat(Const(0, g.word_bits), first_set))
        with m.Else():
            m.d.comb += self.raddr.eq(Cat((beat + beat_taken)[:g.word_bits], active_set))

        return m
