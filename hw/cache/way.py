"""The ways of the cache: their tag and data memories, the memories' read registers and the
bypasses that stand in for transparent read ports."""

from amaranth.hdl import Const, Module, Mux, Signal, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .geometry import check_geometry
from .sweep import ResetSweep

__all__ = ["TagLayout", "BeatLayout", "CacheWay", "CacheWays"]


class TagLayout(data.StructLayout):
    """One entry of a way's tag memory. (Dirty bits are kept in flip-flops beside it.)"""
    def __init__(self, tag_bits):
        super().__init__({
            "valid": unsigned(1),
            "tag":   unsigned(tag_bits),
        })


class BeatLayout(data.StructLayout):
    """A word read from a way's data memory and its bypasses, all registers.

    ``read`` is the read register. Each byte set in ``write_strb`` was written in the cycle of
    the read, with the value in ``write_data``; each byte set in ``store_strb`` is written by
    a store landing a cycle later, with the value in ``store_data``, which comes first.
    """
    def __init__(self, data_width):
        super().__init__({
            "read":       unsigned(data_width),
            "write_strb": unsigned(data_width // 8),
            "write_data": unsigned(data_width),
            "store_strb": unsigned(data_width // 8),
            "store_data": unsigned(data_width),
        })


class CacheWay(wiring.Component):
    """One way of the cache: a tag memory and a data memory, each read at one row per cycle.

    Both memories read the row given in a cycle into a register, whose value is the read data
    of the next cycle, in every cycle, so that neither register has an enable. Neither read
    port is transparent: tags are never written in a cycle whose read could see the entry
    written, and the data memory's bytes that are written in the cycle of a read are replaced
    in its read data by the *write bypass*. A store hit is written a cycle after its lookup;
    the *store bypass* replaces the bytes it will write in the read data of a row read in the
    cycle of its lookup.

    Parameters
    ----------
    geometry : CacheGeometry

    Members
    -------
    tag_raddr : ``In(index_bits)``
    tag_rdata : ``Out(TagLayout(tag_bits))``
        Entry of the row of the previous cycle's ``tag_raddr``.
    tag_waddr : ``In(index_bits)``
    tag_wdata : ``In(TagLayout(tag_bits))``
    tag_we : ``In(1)``
    data_raddr : ``In(index_bits + word_bits)``
        Row of the data memory (set and word) read in this cycle.
    data_rdata : ``Out(data_width)``
        Word of the previous cycle's ``data_raddr``, with the bypasses applied.
    data_beat : ``Out(BeatLayout(data_width))``
        The same word with the bypasses kept apart.
    data_waddr : ``In(index_bits + word_bits)``
    data_wdata : ``In(data_width)``
    data_wstrb : ``In(bytes_per_word)``
        Bytes of ``data_wdata`` written in this cycle; none unless this way is written.
    store_addr : ``In(index_bits + word_bits)``
    store_data : ``In(data_width)``
    store_strb : ``In(bytes_per_word)``
        A store that writes the data memory in the next cycle, and its bytes; none unless it
        writes this way.
    """
    def __init__(self, geometry):
        self._geometry = g = check_geometry(geometry)
        row_bits = g.index_bits + g.word_bits
        super().__init__({
            "tag_raddr":  In(g.index_bits),
            "tag_rdata":  Out(TagLayout(g.tag_bits)),
            "tag_waddr":  In(g.index_bits),
            "tag_wdata":  In(TagLayout(g.tag_bits)),
            "tag_we":     In(1),
            "data_raddr": In(row_bits),
            "data_rdata": Out(g.data_width),
            "data_beat":  Out(BeatLayout(g.data_width)),
            "data_waddr": In(row_bits),
            "data_wdata": In(g.data_width),
            "data_wstrb": In(g.bytes_per_word),
            "store_addr": In(row_bits),
            "store_data": In(g.data_width),
            "store_strb": In(g.bytes_per_word),
        })

    geometry = property(lambda self: self._geometry)

    def elaborate(self, platform):
        m = Module()
        g = self._geometry

        m.submodules.tag_mem = tag_mem = Memory(shape=TagLayout(g.tag_bits), depth=g.sets,
                                                init=[])
        # The data read port is written as an asynchronous read and a register, which yosys
        # folds into the block RAM's synchronous read port; ``no_rw_check`` tells it that the
        # value read in the cycle of a write to the same row does not matter (the write bypass
        # replaces the bytes written), so it builds no bypass of its own between the block RAM
        # and the way choice.
        m.submodules.data_mem = data_mem = Memory(shape=unsigned(g.data_width),
                                                  depth=g.sets * g.words_per_line, init=[],
                                                  attrs={"no_rw_check": 1})

        tag_wp = tag_mem.write_port()
        tag_rp = tag_mem.read_port(domain="comb")
        tag_rp_q = Signal.like(self.tag_rdata, name="tag_rp_q", reset_less=True)
        data_wp = data_mem.write_port(granularity=8)
        data_rp = data_mem.read_port(domain="comb")
        data_rp_q = Signal(g.data_width, name="data_rp_q", reset_less=True)
        m.d.sync += [tag_rp_q.eq(tag_rp.data), data_rp_q.eq(data_rp.data)]
        m.d.comb += [
            tag_rp.addr.eq(self.tag_raddr),
            tag_wp.addr.eq(self.tag_waddr),
            tag_wp.data.eq(self.tag_wdata),
            tag_wp.en.eq(self.tag_we),
            self.tag_rdata.eq(tag_rp_q),
            data_rp.addr.eq(self.data_raddr),
            data_wp.addr.eq(self.data_waddr),
            data_wp.data.eq(self.data_wdata),
            data_wp.en.eq(self.data_wstrb),
        ]

        beat = self.data_beat
        m.d.sync += [
            beat.write_strb.eq(Mux(self.data_waddr == self.data_raddr, self.data_wstrb, 0)),
            beat.write_data.eq(self.data_wdata),
            beat.store_strb.eq(Mux(self.store_addr == self.data_raddr, self.store_strb, 0)),
            beat.store_data.eq(self.store_data),
        ]
        m.d.comb += beat.read.eq(data_rp_q)
        for byte in range(g.bytes_per_word):
            by_store = beat.store_strb[byte]
            value = Mux(by_store, beat.store_data.word_select(byte, 8),
                        beat.write_data.word_select(byte, 8))
            m.d.comb += self.data_rdata.word_select(byte, 8).eq(
                Mux(beat.write_strb[byte] | by_store, value, data_rp_q.word_select(byte, 8)))

        return m


class CacheWays(wiring.Component):
    """Every way of the cache, all read at the same rows, the compare of their tags, the
    writes of their data and the reset sweep of their tags.

    A store hit is given at its lookup and written a cycle later, from registers, so that the
    tag compare never drives the data memories' write enables; a refill's word is written in
    its cycle, and takes the write port from the store. Tags are written as given, except
    while the :class:`~.sweep.ResetSweep` that a reset leaves owed runs (``sweep``): then it
    writes every way's entry of its set invalid, in place of any other tag write.

    Parameters
    ----------
    geometry : CacheGeometry

    Members
    -------
    tag_raddr : ``In(index_bits)``
    tag_rdata : ``Out(data.ArrayLayout(TagLayout(tag_bits), ways))``
        Every way's :attr:`CacheWay.tag_rdata`.
    tag_waddr : ``In(index_bits)``
    tag_wdata : ``In(TagLayout(tag_bits))``
    tag_we : ``In(ways)``
    lookup_tag : ``In(tag_bits)``
    hit_ways : ``Out(ways)``
        The ways whose entry read (``tag_rdata``) is valid and holds ``lookup_tag``.
    hit_way : ``Out(range(ways))``
    hit_data : ``Out(data_width)``
        The way that hit, if any, and its word read (``data_rdata``).
    sweep : ``In(1)``
        The control lets the reset sweep write the tag memories in this cycle.
    sweeping : ``Out(1)``
        A reset sweep is owed or running (:attr:`.sweep.ResetSweep.pending`).
    sweep_done : ``Out(1)``
        The sweep writes its last set in this cycle (while ``sweep``), or none is owed.
    data_raddr : ``In(index_bits + word_bits)``
    data_rdata : ``Out(data.ArrayLayout(data_width, ways))``
    data_beats : ``Out(data.ArrayLayout(BeatLayout(data_width), ways))``
        Every way's :attr:`CacheWay.data_rdata` and :attr:`CacheWay.data_beat`.
    store_addr : ``In(index_bits + word_bits)``
    store_data : ``In(data_width)``
    store_strb : ``In(bytes_per_word)``
    store_ways : ``In(ways)``
        A store hit looked up in this cycle, and its way (none if there is no store).
    fill_addr : ``In(index_bits + word_bits)``
    fill_data : ``In(data_width)``
    fill_ways : ``In(ways)``
        A whole word written in this cycle, in the ways given.
    """
    def __init__(self, geometry):
        self._geometry = g = check_geometry(geometry)
        row_bits = g.index_bits + g.word_bits
        super().__init__({
            "tag_raddr":  In(g.index_bits),
            "tag_rdata":  Out(data.ArrayLayout(TagLayout(g.tag_bits), g.ways)),
            "tag_waddr":  In(g.index_bits),
            "tag_wdata":  In(TagLayout(g.tag_bits)),
            "tag_we":     In(g.ways),
            "lookup_tag": In(g.tag_bits),
            "hit_ways":   Out(g.ways),
            "hit_way":    Out(range(g.ways)),
            "hit_data":   Out(g.data_width),
            "sweep":      In(1),
            "sweeping":   Out(1),
            "sweep_done": Out(1),
            "data_raddr": In(row_bits),
            "data_rdata": Out(data.ArrayLayout(g.data_width, g.ways)),
            "data_beats": Out(data.ArrayLayout(BeatLayout(g.data_width), g.ways)),
            "store_addr": In(row_bits),
            "store_data": In(g.data_width),
            "store_strb": In(g.bytes_per_word),
            "store_ways": In(g.ways),
            "fill_addr":  In(row_bits),
            "fill_data":  In(g.data_width),
            "fill_ways":  In(g.ways),
        })

    geometry = property(lambda self: self._geometry)

    def elaborate(self, platform):
        m = Module()
        g = self._geometry

        store_addr = Signal.like(self.store_addr)
        store_data = Signal.like(self.store_data)
        store_strb = Signal.like(self.store_strb)
        store_ways = Signal.like(self.store_ways)
        m.d.sync += [
            store_addr.eq(self.store_addr),
            store_data.eq(self.store_data),
            store_strb.eq(self.store_strb),
            store_ways.eq(self.store_ways),
        ]
        fill = self.fill_ways.any()
        waddr = Mux(fill, self.fill_addr, store_addr)
        wdata = Mux(fill, self.fill_data, store_data)
        wstrb = Mux(fill, Const(-1, g.bytes_per_word), store_strb)
        we    = Mux(fill, self.fill_ways, store_ways)

        m.submodules.sweep = sweep = ResetSweep(g)
        tag_waddr = Signal.like(self.tag_waddr)
        tag_wdata = Signal.like(self.tag_wdata)
        tag_we    = Signal.like(self.tag_we)
        m.d.comb += [
            sweep.run.eq(self.sweep),
            self.sweeping.eq(sweep.pending),
            self.sweep_done.eq(sweep.done),
            tag_waddr.eq(self.tag_waddr),
            tag_wdata.eq(self.tag_wdata),
            tag_we.eq(self.tag_we),
        ]
        with m.If(self.sweep & sweep.pending):
            m.d.comb += [tag_waddr.eq(sweep.set), tag_wdata.eq(0),
                         tag_we.eq((1 << g.ways) - 1)]

        for n in range(g.ways):
            m.submodules[f"way_{n}"] = way = CacheWay(g)
            m.d.comb += [
                way.tag_raddr.eq(self.tag_raddr),
                way.tag_waddr.eq(tag_waddr),
                way.tag_wdata.eq(tag_wdata),
                way.tag_we.eq(tag_we[n]),
                self.tag_rdata[n].eq(way.tag_rdata),
                way.data_raddr.eq(self.data_raddr),
                way.data_waddr.eq(waddr),
                way.data_wdata.eq(wdata),
                way.data_wstrb.eq(Mux(we[n], wstrb, 0)),
                self.data_rdata[n].eq(way.data_rdata),
                self.data_beats[n].eq(way.data_beat),
                way.store_addr.eq(self.store_addr),
                way.store_data.eq(self.store_data),
                way.store_strb.eq(Mux(self.store_ways[n], self.store_strb, 0)),
                self.hit_ways[n].eq(way.tag_rdata.valid &
                                    (way.tag_rdata.tag == self.lookup_tag)),
            ]
            with m.If(self.hit_ways[n]):
                m.d.comb += [self.hit_way.eq(n), self.hit_data.eq(way.data_rdata)]

        return m
