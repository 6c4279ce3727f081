"""The cache's lookup pipeline and control, with plain maintenance and counter signals.

:class:`~.cache.Cache` wraps this core in its register block; the core alone is what the
reference-model tests drive. Its parts are components of their own: the ways
(:mod:`.way`), the dirty bits (:mod:`.dirty`), the pseudo-LRU bits (:mod:`.plru`), the
write-back engine (:mod:`.writeback`), the refill engine (:mod:`.refill`), the maintenance
walk (:mod:`.maintenance`) and the memory port's switch (:mod:`.bus_switch`).
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out, connect, flipped

from ..bus.axi import AXI4Signature
from ..cpu.port import CpuPortSignature
from ..one_hot import one_hot_fsm
from .bus_switch import BusSwitch
from .dirty import DirtyBits
from .geometry import CacheGeometry, check_geometry
from .maintenance import MaintenanceOp, MaintenanceScope, MaintenanceSignature, MaintenanceWalk
from .plru import PseudoLRU
from .refill import RefillEngine
from .way import CacheWays, TagLayout
from .writeback import WriteBackEngine

__all__ = ["MaintenanceOp", "MaintenanceScope", "TagLayout", "CounterLayout",
           "MaintenanceSignature", "EventCounters", "CacheCore"]


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


class EventCounters(wiring.Component):
    """The cache's event counters.

    Every event reaches its counter a cycle late, from a register, so that no counter's
    enable waits on the condition of its event; the counts shown include it already.

    Members
    -------
    events : ``In(data.StructLayout({name: 1 for name in CounterLayout().members}))``
        The events of this cycle.
    counters : ``Out(CounterLayout())``
    """
    def __init__(self):
        names = CounterLayout().members
        super().__init__({
            "events":   In(data.StructLayout({name: 1 for name in names})),
            "counters": Out(CounterLayout()),
        })

    def elaborate(self, platform):
        m = Module()
        counters = Signal(CounterLayout())
        late     = Signal.like(self.events)
        m.d.sync += late.eq(self.events)
        for name in CounterLayout().members:
            m.d.sync += counters[name].eq(counters[name] + late[name])
            m.d.comb += self.counters[name].eq(counters[name] + late[name])
        return m


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

    A reset clears the dirty and pseudo-LRU bits (flip-flops) but not the tag memories (block
    RAM): out of reset, the control first runs a sweep that writes every set's tags invalid,
    one set per cycle (:class:`~.sweep.ResetSweep`), during which no access is taken and
    ``maint.busy`` is set; the cache comes out of it empty. At power-up the tag memories hold
    their initial contents, invalid, and no sweep runs.

    The core itself is the lookup pipeline (``s1``, ``s2``, ``s3``) and the control FSM, which
    lends the memories' ports to the refill engine and the maintenance walk in turn.

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
        self._geometry = check_geometry(geometry)
        self._bus_signature = AXI4Signature(addr_width=geometry.addr_width,
                                            data_width=geometry.data_width,
                                            id_width=id_width, sid_width=sid_width)
        self._bus_ids = dict(id_width=id_width, sid_width=sid_width)
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

        m.submodules.ways      = ways   = CacheWays(g)
        m.submodules.dirty     = dirty  = DirtyBits(g)
        m.submodules.lru       = lru    = PseudoLRU(g)
        m.submodules.writeback = wb     = WriteBackEngine(g, **self._bus_ids)
        m.submodules.refill    = refill = RefillEngine(g, **self._bus_ids)
        m.submodules.walk      = walk   = MaintenanceWalk(g)
        m.submodules.switch    = switch = BusSwitch(self._bus_signature)
        m.submodules.counters  = counters = EventCounters()
        events = counters.events
        own = switch.own
        connect(m, switch.bus, flipped(self.bus))
        connect(m, wb.aw, own.aw)
        connect(m, wb.w, own.w)
        connect(m, refill.ar, own.ar)
        connect(m, own.b, wb.b)
        connect(m, own.r, refill.r)
        connect(m, flipped(self.maint), walk.maint)
        m.d.comb += self.counters.eq(counters.counters)

        # An access that leaves s2 on a miss is served from s3, then looked up again, while
        # the one that had entered s2 behind it waits in s3 (``s3_waiting``).
        s2_valid    = Signal()
        s2_req      = Signal.like(cpu.req.payload)
        s2_replayed = Signal()
        s2_tag, s2_index, s2_row = g.fields(s2_req.addr)
        s3_req     = Signal.like(cpu.req.payload)
        s3_waiting = Signal()
        s3_tag, s3_index, s3_row = g.fields(s3_req.addr)

        s2_hit, s2_hit_way, s2_hit_data = ways.hit_ways.any(), ways.hit_way, ways.hit_data
        # ``s2_store`` is every condition of a store hit but the compare.
        s2_store = Signal()
        s2_touch = Signal()

        # What s3 needs of s2's set if s2 misses: its victim, and the tags and dirty bits.
        s3_victim_way   = Signal(range(g.ways))
        s3_victim_tags  = Signal(data.ArrayLayout(g.tag_bits, g.ways))
        s3_victim_dirty = Signal(g.ways)
        s3_victim_ways  = 1 << s3_victim_way

        # The data memories read the write-back's next beat while it streams. Unless a state
        # reads another row, the memories read s2's, so that s2's lookup stays up to date.
        fsm_data_raddr = Signal.like(ways.data_raddr)
        m.d.comb += [
            ways.tag_raddr.eq(s2_index),
            ways.lookup_tag.eq(s2_tag),
            fsm_data_raddr.eq(s2_row),
            ways.tag_waddr.eq(s3_index),
            ways.tag_wdata.eq(refill.tag_wdata),
            ways.data_raddr.eq(Mux(wb.streaming, wb.raddr, fsm_data_raddr)),
            ways.store_addr.eq(s2_row),
            ways.store_data.eq(s2_req.data),
            ways.store_strb.eq(s2_req.strb),
            ways.store_ways.eq(Mux(s2_store, ways.hit_ways, 0)),
            ways.fill_addr.eq(refill.fill_addr),
            ways.fill_data.eq(refill.fill_data),
            ways.fill_ways.eq(Mux(refill.fill, s3_victim_ways, 0)),
            dirty.lookup_set.eq(s2_index),
            dirty.store_ways.eq(Mux(s2_store, ways.hit_ways, 0)),
            dirty.walk_set.eq(walk.dirty_set),
            lru.lookup_set.eq(s2_index),
            lru.touch.eq(s2_touch),
            lru.touch_way.eq(s2_hit_way),
            lru.invalid_ways.eq(Cat(~entry.valid for entry in ways.tag_rdata)),
            wb.beats.eq(ways.data_beats),
            refill.set.eq(s3_index),
            refill.tag.eq(s3_tag),
            refill.victim_dirty.eq(s3_victim_dirty.bit_select(s3_victim_way, 1)),
            refill.write_back_idle.eq(wb.idle),
            refill.write_back_streaming.eq(wb.streaming),
            walk.sweeping.eq(ways.sweeping),
            walk.tags.eq(ways.tag_rdata),
            walk.dirty.eq(dirty.walk),
            walk.can_write_back.eq(wb.can_start),
            events.writebacks.eq(wb.start),
        ]

        def offer_write_back(index, way, tag):
            # The line the write-back engine takes if it is dirty, and its first beat's read.
            return [wb.line.set.eq(index), wb.line.way.eq(way), wb.line.tag.eq(tag),
                    fsm_data_raddr.eq(Cat(Const(0, g.word_bits), index))]

        with one_hot_fsm(m):
            with m.State("ACCESS"):
                s2_cached_hit = s2_valid & s2_req.cacheable & s2_hit
                m.d.comb += [
                    cpu.rsp.valid.eq(s2_cached_hit),
                    cpu.rsp.payload.data.eq(s2_hit_data),
                    s2_store.eq(s2_valid & s2_req.cacheable & s2_req.write & cpu.rsp.ready),
                    s2_touch.eq(s2_cached_hit & cpu.rsp.ready),
                    events.hits.eq(s2_touch & ~s2_replayed),
                ]
                # Whether s2 hit is known too late to gate the memories' read port: s2
                # moves on whenever an answer would be taken, and a miss is served in s3.
                s2_advance = Signal()
                s1_addr    = Signal(g.addr_width)
                _, s1_index, s1_row = g.fields(s1_addr)
                m.d.comb += [
                    s2_advance.eq(~s2_valid | cpu.rsp.ready),
                    s1_addr.eq(Mux(s3_waiting, s3_req.addr, cpu.req.payload.addr)),
                    cpu.req.ready.eq(s2_advance & ~s3_waiting & ~walk.pending & ~ways.sweeping),
                    # s2 reads its own row again while it waits.
                    ways.tag_raddr.eq(Mux(s2_advance, s1_index, s2_index)),
                    fsm_data_raddr.eq(Mux(s2_advance, s1_row, s2_row)),
                ]
                with m.If(s2_advance):
                    m.d.sync += [
                        s2_valid.eq(s3_waiting | (cpu.req.valid & cpu.req.ready)),
                        s2_req.eq(Mux(s3_waiting, s3_req, cpu.req.payload)),
                        s2_replayed.eq(0),
                        s3_req.eq(s2_req),
                        s3_waiting.eq(0),
                        s3_victim_way.eq(lru.victim),
                        s3_victim_tags.eq(Cat(entry.tag for entry in ways.tag_rdata)),
                        s3_victim_dirty.eq(dirty.lookup),
                    ]
                with m.If(ways.sweeping):
                    m.next = "RESET_SWEEP"
                with m.Elif(s2_valid & cpu.rsp.ready & ~s2_req.cacheable):
                    m.next = "UNCACHED_REQUEST"
                with m.Elif(s2_valid & cpu.rsp.ready & ~s2_hit):
                    m.d.comb += [events.misses.eq(1), refill.start.eq(1)]
                    m.next = "REFILL"
                with m.Elif(~s2_valid & ~s3_waiting & walk.pending):
                    m.d.comb += walk.start.eq(1)
                    m.next = "MAINT_WALK"

            with m.State("RESET_SWEEP"):
                # Entered after a reset: the ways' tags are written invalid, a set per cycle.
                m.d.comb += ways.sweep.eq(1)
                with m.If(ways.sweep_done):
                    m.next = "ACCESS"

            with m.State("REFILL"):
                with m.If(refill.offer):
                    m.d.comb += offer_write_back(s3_index, s3_victim_way,
                                                 s3_victim_tags[s3_victim_way])
                m.d.comb += [
                    ways.tag_we.eq(Mux(refill.tag_we, s3_victim_ways, 0)),
                    dirty.clear_set.eq(s3_index),
                    dirty.clear_ways.eq(Mux(refill.clear_dirty, s3_victim_ways, 0)),
                    wb.start.eq(refill.write_back),
                ]
                with m.If(refill.done):
                    m.next = "REPLAY"
                with m.Elif(refill.failed):
                    m.next = "REFILL_ERROR"

            with m.State("REPLAY"):
                # The refilled access goes back to s2; the one behind it waits in s3.
                m.d.comb += [ways.tag_raddr.eq(s3_index), fsm_data_raddr.eq(s3_row)]
                m.d.sync += [
                    s2_valid.eq(1),
                    s2_req.eq(s3_req),
                    s2_replayed.eq(1),
                    s3_req.eq(s2_req),
                    s3_waiting.eq(s2_valid),
                ]
                m.next = "ACCESS"

            with m.State("REFILL_ERROR"):
                m.d.comb += [cpu.rsp.valid.eq(1), cpu.rsp.payload.error.eq(1)]
                with m.If(cpu.rsp.ready):
                    m.next = "ACCESS"

            with m.State("UNCACHED_REQUEST"):
                # Uncached accesses wait for every write-back to be in memory.
                with m.If(wb.idle):
                    m.d.comb += [switch.uncached.req.valid.eq(1),
                                 switch.uncached.req.payload.eq(s3_req)]
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
                m.d.comb += [
                    walk.run.eq(1),
                    ways.tag_raddr.eq(walk.tag_raddr),
                    *offer_write_back(walk.line.set, walk.line.way, walk.line.tag),
                    wb.start.eq(walk.write_back),
                    dirty.clear_set.eq(walk.line.set),
                    dirty.clear_ways.eq(walk.match_ways),
                    events.lines_cleaned.eq(walk.cleaned),
                    events.lines_invalidated.eq(walk.invalidated),
                    ways.tag_waddr.eq(walk.line.set), ways.tag_wdata.eq(0),
                    ways.tag_we.eq(Mux(walk.invalidate, walk.match_ways, 0)),
                ]
                with m.If(walk.last):
                    m.next = "MAINT_DRAIN"

            with m.State("MAINT_DRAIN"):
                # The operation is done once every line it cleaned is in memory.
                with m.If(wb.idle):
                    m.d.comb += walk.finish.eq(1)
                    m.next = "ACCESS"

        return m
