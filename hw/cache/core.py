"""The cache datapath and control, with plain maintenance and counter signals.

:class:`~.cache.Cache` wraps this core in its register block; the core alone is what the
reference-model tests drive.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out, connect, flipped

from ..bus.axi import AXI4Signature, Burst, Resp, Size
from ..cpu.port import CpuPortSignature
from ..one_hot import one_hot_fsm
from .bus_switch import BusSwitch
from .geometry import CacheGeometry
from .dirty import DirtyBits
from .maintenance import MaintenanceOp, MaintenanceScope, MaintenanceSignature, MaintenanceWalk
from .plru import PseudoLRU
from .way import CacheWays, TagLayout
from .writeback import WriteBackEngine

__all__ = ["MaintenanceOp", "MaintenanceScope", "TagLayout", "CounterLayout",
           "MaintenanceSignature", "CacheCore"]


class CounterLayout(data.StructLayout):
    """Event counters; each wraps around at 2**32."""
    def __init__(self):
        super().__init__({
            "hits":              unsigned(32),
            "misses":            unsigned(32),
            "writebacks":        unsigned(32),
            "lines_cleaned":     unsigned(32),
            "lines_invalidated": unsigned(32),
        })


class CacheCore(wiring.Component):
    """Write-back, write-allocate, set-associative data cache, not coherent with DMA.

    Cacheable accesses are looked up in two stages: ``s1`` presents the request's set to the
    tag and data memories, ``s2`` compares the tags one cycle later. A hit answers in that
    cycle, so hits stream at one per cycle with a latency of one cycle. ``s2`` lets the next
    request in whenever its answer would be taken, before knowing whether it hit, so that the
    tag compare never gates the memories' read port. An access that leaves ``s2`` on a miss is
    served from ``s3``: a victim is picked (an invalid way, else the tree pseudo-LRU choice),
    written back in one INCR burst if it is dirty, the line is refilled in one INCR burst, and
    the access is replayed, then the one that had entered ``s2`` behind it is looked up again.
    Write-backs complete in the background; a refill waits only for the write responses of
    earlier write-backs, not for its own victim's.

    Uncached accesses wait for every outstanding write and then go to memory as single beats
    through an :class:`~dmabuf_soc.hw.cpu.bridge.UncachedBridge`, one at a time, in order.

    Maintenance operations run between CPU accesses, never inside one: once ``maint.go`` is
    seen no new access is accepted until ``maint.done``. They visit one candidate line per
    cycle (a range operation one line address per cycle; set/way and whole-cache operations
    one way of one set per cycle), each read, compared and acted on in three pipelined cycles,
    and hand dirty lines to be cleaned to the write-back engine, which streams one burst beat
    per cycle.

    Parameters
    ----------
    geometry : CacheGeometry
        Size, ways, line size and widths (the defaults if ``None``).
    id_width : int
        AXI ID width of the memory port; every transaction uses ID 0.
    sid_width : int
        Width of the memory port's stream-ID sideband; driven 0.

    Members
    -------
    cpu : ``In(CpuPortSignature(addr_width, data_width))``
    bus : ``Out(AXI4Signature(addr_width, data_width, id_width))``
    maint : ``In(MaintenanceSignature(geometry))``
    counters : ``Out(CounterLayout())``
    """
    def __init__(self, geometry=None, *, id_width=4, sid_width=0):
        if geometry is None:
            geometry = CacheGeometry()
        if not isinstance(geometry, CacheGeometry):
            raise TypeError(f"Geometry must be a CacheGeometry, not {geometry!r}")
        self._geometry = geometry
        self._bus_signature = AXI4Signature(addr_width=geometry.addr_width,
                                            data_width=geometry.data_width,
                                            id_width=id_width, sid_width=sid_width)
        super().__init__({
            "cpu":      In(CpuPortSignature(addr_width=geometry.addr_width,
                                            data_width=geometry.data_width)),
            "bus":      Out(self._bus_signature),
            "maint":    In(MaintenanceSignature(geometry)),
            "counters": Out(CounterLayout()),
        })

    geometry = property(lambda self: self._geometry)

    def elaborate(self, platform):
        m = Module()
        g = self._geometry
        cpu = self.cpu

        def tag_of(addr):
            return addr[g.offset_bits + g.index_bits:]

        def index_of(addr):
            return addr[g.offset_bits:g.offset_bits + g.index_bits]

        def word_of(addr):
            return addr[g.offset_bits - g.word_bits:g.offset_bits]

        m.submodules.ways = ways = CacheWays(g)
        m.submodules.dirty = dirty = DirtyBits(g)
        m.submodules.lru = lru = PseudoLRU(g)
        m.submodules.writeback = wb = WriteBackEngine(
            g, id_width=self._bus_signature.id_width, sid_width=self._bus_signature.sid_width)
        m.submodules.walk = walk = MaintenanceWalk(g)
        m.submodules.switch = switch = BusSwitch(self._bus_signature)
        connect(m, flipped(self.maint), walk.maint)
        connect(m, switch.bus, flipped(self.bus))
        connect(m, wb.aw, switch.own.aw)
        connect(m, wb.w, switch.own.w)
        own = switch.own

        # s2 holds the access whose tags are compared; an access that leaves it on a miss or
        # an uncached access is served from s3. After a refill, s3's access is looked up
        # again and the one that had entered s2 behind it waits in s3 (``s3_waiting``).
        s2_valid    = Signal()
        s2_req      = Signal.like(cpu.req.payload)
        s2_replayed = Signal()
        s2_tag   = tag_of(s2_req.addr)
        s2_index = index_of(s2_req.addr)
        s2_row   = Cat(word_of(s2_req.addr), s2_index)     # s2's row of the data memories
        s3_req     = Signal.like(cpu.req.payload)
        s3_waiting = Signal()
        s3_tag   = tag_of(s3_req.addr)
        s3_index = index_of(s3_req.addr)
        s3_word  = word_of(s3_req.addr)

        s2_hit_ways = Signal(g.ways)
        s2_hit_way  = Signal(range(g.ways))
        s2_hit_data = Signal(g.data_width)
        for way in range(g.ways):
            tag = ways.tag_rdata[way]
            m.d.comb += s2_hit_ways[way].eq(tag.valid & (tag.tag == s2_tag))
            with m.If(s2_hit_ways[way]):
                m.d.comb += [s2_hit_way.eq(way), s2_hit_data.eq(ways.data_rdata[way])]
        s2_hit = s2_hit_ways.any()
        s2_touch = Signal()
        m.d.comb += [
            lru.touch.eq(s2_touch),
            lru.touch_set.eq(s2_index),
            lru.touch_way.eq(s2_hit_way),
            lru.lookup_set.eq(s2_index),
            lru.invalid_ways.eq(Cat(~ways.tag_rdata[way].valid for way in range(g.ways))),
        ]

        # A store hit reaches its data memory and its dirty bit one cycle after its lookup,
        # from registers, so that the tag compare never drives their write enables.
        # ``s2_store`` is every condition of a store hit but the compare, whose outcome
        # (``s2_hit_ways``) is only registered.
        s2_store      = Signal()
        s3_store      = Signal()
        s3_hit_ways   = Signal.like(s2_hit_ways)
        s3_store_addr = Signal.like(ways.data_waddr)
        s3_store_data = Signal.like(ways.data_wdata)
        s3_store_strb = Signal.like(ways.data_wstrb)
        m.d.sync += [
            s3_store.eq(s2_store),
            s3_hit_ways.eq(s2_hit_ways),
            s3_store_addr.eq(s2_row),
            s3_store_data.eq(s2_req.data),
            s3_store_strb.eq(s2_req.strb),
        ]
        s3_store_ways = Mux(s3_store, s3_hit_ways, 0)
        m.d.comb += [
            ways.store_addr.eq(s2_row),
            ways.store_data.eq(s2_req.data),
            ways.store_strb.eq(s2_req.strb),
            ways.store_ways.eq(Mux(s2_store, s2_hit_ways, 0)),
            # Unless a refill overrides it.
            ways.data_waddr.eq(s3_store_addr),
            ways.data_wdata.eq(s3_store_data),
            ways.data_wstrb.eq(s3_store_strb),
            ways.data_we.eq(s3_store_ways),
            dirty.mark_set.eq(s3_store_addr[g.word_bits:]),
            dirty.mark_ways.eq(s3_store_ways),
            dirty.lookup_set.eq(s2_index),
        ]

        # What s3 needs of s2's set if s2 misses: the victim, and the tags and dirty bits of
        # the set, the victim's picked out of them in s3.
        victim_way        = Signal(range(g.ways))
        victim_tags       = Signal(data.ArrayLayout(g.tag_bits, g.ways))
        victim_dirty_ways = Signal(g.ways)
        victim_tag   = victim_tags[victim_way]
        victim_dirty = victim_dirty_ways.bit_select(victim_way, 1)

        refill_beat  = Signal(g.word_bits)
        refill_error = Signal()

        # The data memories read the write-back's next beat while it streams; else, unless a
        # state reads another row, the memories read s2's, so that s2's lookup stays up to
        # date while s3's access is answered (the other states use no read data).
        fsm_data_raddr = Signal.like(ways.data_raddr)
        m.d.comb += [
            ways.data_raddr.eq(Mux(wb.streaming, wb.raddr, fsm_data_raddr)),
            ways.tag_raddr.eq(s2_index),
            fsm_data_raddr.eq(s2_row),
            wb.beats.eq(ways.data_beats),
            wb.ack.eq(own.b.valid),
            own.b.ready.eq(1),
            walk.tags.eq(ways.tag_rdata),
            walk.can_write_back.eq(wb.can_start),
            dirty.walk_set.eq(walk.dirty_set),
            walk.dirty.eq(dirty.walk),
            # A refill reads s3's line.
            own.ar.payload.addr.eq(Cat(Const(0, g.offset_bits), s3_index, s3_tag)),
            own.ar.payload.len.eq(g.words_per_line - 1),
            own.ar.payload.size.eq(Size.from_bytes(g.bytes_per_word)),
            own.ar.payload.burst.eq(Burst.INCR),
        ]

        # Every event reaches its counter a cycle late, from a register, so that no counter's
        # enable waits on the condition of its event; the counters shown include it already.
        counters    = Signal(CounterLayout())
        events      = Signal(data.StructLayout({name: 1 for name in CounterLayout().members}))
        events_late = Signal.like(events)
        m.d.sync += events_late.eq(events)
        m.d.comb += events.writebacks.eq(wb.start)
        for name in CounterLayout().members:
            m.d.sync += counters[name].eq(counters[name] + events_late[name])
            m.d.comb += self.counters[name].eq(counters[name] + events_late[name])

        def write_tag(index, ways_written, tag=None):
            # Makes the entries valid with ``tag``, else invalid.
            valid = [ways.tag_wdata.valid.eq(1), ways.tag_wdata.tag.eq(tag)] if tag is not None else []
            return [ways.tag_waddr.eq(index), *valid, ways.tag_we.eq(ways_written)]

        def offer_write_back(index, way, tag):
            # The line the write-back engine takes if it is dirty, and its first beat's read.
            return [
                wb.line.set.eq(index),
                wb.line.way.eq(way),
                wb.line.tag.eq(tag),
                fsm_data_raddr.eq(Cat(Const(0, g.word_bits), index)),
            ]

        with one_hot_fsm(m):
            with m.State("ACCESS"):
                s2_cached_hit = s2_valid & s2_req.cacheable & s2_hit
                s2_done = Signal()
                m.d.comb += [
                    cpu.rsp.valid.eq(s2_cached_hit),
                    cpu.rsp.payload.data.eq(s2_hit_data),
                    s2_done.eq(s2_cached_hit & cpu.rsp.ready),
                    s2_store.eq(s2_valid & s2_req.cacheable & s2_req.write & cpu.rsp.ready),
                    s2_touch.eq(s2_done),
                    events.hits.eq(s2_done & ~s2_replayed),
                ]
                # Whether s2 hit is known too late to gate the memories' read port: s2
                # moves on whenever an answer would be taken, and a miss is served in s3.
                s2_advance = Signal()
                s1_addr    = Signal(g.addr_width)
                m.d.comb += [
                    s2_advance.eq(~s2_valid | cpu.rsp.ready),
                    s1_addr.eq(Mux(s3_waiting, s3_req.addr, cpu.req.payload.addr)),
                    cpu.req.ready.eq(s2_advance & ~s3_waiting & ~walk.pending),
                    # s2 reads its own row again while it waits.
                    ways.tag_raddr.eq(Mux(s2_advance, index_of(s1_addr), s2_index)),
                    fsm_data_raddr.eq(Mux(s2_advance, Cat(word_of(s1_addr), index_of(s1_addr)),
                                          s2_row)),
                ]
                with m.If(s2_advance):
                    m.d.sync += [
                        s2_valid.eq(s3_waiting | (cpu.req.valid & cpu.req.ready)),
                        s2_req.eq(Mux(s3_waiting, s3_req, cpu.req.payload)),
                        s2_replayed.eq(0),
                        s3_req.eq(s2_req),
                        s3_waiting.eq(0),
                        victim_way.eq(lru.victim),
                        victim_dirty_ways.eq(dirty.lookup),
                        victim_tags.eq(Cat(tag.tag for tag in ways.tag_rdata)),
                    ]
                with m.If(s2_valid & cpu.rsp.ready & ~s2_req.cacheable):
                    m.next = "UNCACHED_REQUEST"
                with m.Elif(s2_valid & cpu.rsp.ready & ~s2_hit):
                    m.d.comb += events.misses.eq(1)
                    m.next = "MISS"
                with m.Elif(~s2_valid & ~s3_waiting & walk.pending):
                    m.d.comb += walk.start.eq(1)
                    m.next = "MAINT_WALK"

            with m.State("MISS"):
                m.d.comb += offer_write_back(s3_index, victim_way, victim_tag)
                # Earlier write-backs must be in memory before this refill reads it.
                with m.If(wb.idle):
                    m.d.comb += wb.start.eq(victim_dirty)
                    m.next = "REFILL_ADDR"

            with m.State("REFILL_ADDR"):
                # The victim's entry takes the refilled line's tag, and its dirty bit is
                # cleared, in every cycle of this state, so that the tag memories' write
                # enables come from the state alone, never from the bus: nothing looks the
                # set up until REPLAY, and the victim's write-back has its tag already.
                m.d.comb += [
                    *write_tag(s3_index, 1 << victim_way, s3_tag),
                    dirty.clear_set.eq(s3_index),
                    dirty.clear_ways.eq(1 << victim_way),
                ]
                # The victim's data must have left its memory before the refill overwrites it.
                with m.If(~wb.streaming):
                    m.d.comb += own.ar.valid.eq(1)
                    with m.If(own.ar.ready):
                        m.d.sync += [refill_beat.eq(0), refill_error.eq(0)]
                        m.next = "REFILL_DATA"

            with m.State("REFILL_DATA"):
                m.d.comb += [
                    own.r.ready.eq(1),
                    ways.data_waddr.eq(Cat(refill_beat, s3_index)),
                    ways.data_wdata.eq(own.r.payload.data),
                    ways.data_wstrb.eq(Const(-1, g.bytes_per_word)),
                ]
                with m.If(own.r.valid):
                    error = refill_error | (own.r.payload.resp != Resp.OKAY)
                    m.d.comb += ways.data_we.eq(1 << victim_way)
                    m.d.sync += [refill_beat.eq(refill_beat + 1), refill_error.eq(error)]
                    with m.If(refill_beat == g.words_per_line - 1):
                        with m.If(error):
                            m.next = "REFILL_DISCARD"
                        with m.Else():
                            m.next = "REPLAY"

            with m.State("REPLAY"):
                # The refilled access goes back to s2; the one behind it waits in s3.
                m.d.comb += [
                    ways.tag_raddr.eq(s3_index),
                    fsm_data_raddr.eq(Cat(s3_word, s3_index)),
                ]
                m.d.sync += [
                    s2_valid.eq(1),
                    s2_req.eq(s3_req),
                    s2_replayed.eq(1),
                    s3_req.eq(s2_req),
                    s3_waiting.eq(s2_valid),
                ]
                m.next = "ACCESS"

            with m.State("REFILL_DISCARD"):
                # A refill that failed installs nothing: its entry is made invalid again,
                # a cycle before REFILL_ERROR rereads s2's row (which may be this one).
                m.d.comb += write_tag(s3_index, 1 << victim_way)
                m.next = "REFILL_ERROR"

            with m.State("REFILL_ERROR"):
                m.d.comb += [cpu.rsp.valid.eq(1), cpu.rsp.payload.error.eq(1)]
                with m.If(cpu.rsp.ready):
                    m.next = "ACCESS"

            with m.State("UNCACHED_REQUEST"):
                # Uncached accesses wait for every write-back to be in memory.
                with m.If(wb.idle):
                    m.d.comb += [
                        switch.uncached.req.valid.eq(1),
                        switch.uncached.req.payload.eq(s3_req),
                    ]
                    with m.If(switch.uncached.req.ready):
                        m.next = "UNCACHED_RESPONSE"

            with m.State("UNCACHED_RESPONSE"):
                m.d.comb += [
                    switch.uncached_active.eq(1),
                    cpu.rsp.valid.eq(switch.uncached.rsp.valid),
                    cpu.rsp.payload.eq(switch.uncached.rsp.payload),
                    switch.uncached.rsp.ready.eq(cpu.rsp.ready),
                ]
                with m.If(switch.uncached.rsp.valid & cpu.rsp.ready):
                    m.next = "ACCESS"

            with m.State("MAINT_WALK"):
                # The line the walk acts on is invalidated, and its dirty bit cleared, in
                # every cycle the walk waits, not only as it moves on, so that the
                # write-back's handshake stays off the tag memories' write enables.
                m.d.comb += [
                    walk.run.eq(1),
                    ways.tag_raddr.eq(walk.tag_raddr),
                    *offer_write_back(walk.line.set, walk.line.way, walk.line.tag),
                    wb.start.eq(walk.write_back),
                    dirty.clear_set.eq(walk.line.set),
                    dirty.clear_ways.eq(walk.match_ways),
                    events.lines_cleaned.eq(walk.cleaned),
                    events.lines_invalidated.eq(walk.invalidated),
                ]
                with m.If(walk.invalidate):
                    m.d.comb += write_tag(walk.line.set, walk.match_ways)
                with m.If(walk.last):
                    m.next = "MAINT_DRAIN"

            with m.State("MAINT_DRAIN"):
                # The operation is done once every line it cleaned is in memory.
                with m.If(wb.idle):
                    m.d.comb += walk.finish.eq(1)
                    m.next = "ACCESS"

        return m
