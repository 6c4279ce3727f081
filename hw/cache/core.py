"""The cache datapath and control, with plain maintenance and counter signals.

:class:`~.cache.Cache` wraps this core in its register block; the core alone is what the
reference-model tests drive.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import data, enum, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out, connect, flipped

from ..bus.axi import AXI4Signature, Burst, Resp, Size
from ..bus.register_slice import StreamRegisterSlice
from ..cpu.bridge import UncachedBridge
from ..cpu.port import CpuPortSignature
from ..one_hot import one_hot_fsm
from . import plru
from .geometry import CacheGeometry

__all__ = ["MaintenanceOp", "MaintenanceScope", "TagLayout", "CounterLayout",
           "MaintenanceSignature", "CacheCore"]

#: Write-backs the cache may have issued without their write response yet.
MAX_WRITEBACKS_OUTSTANDING = 15


class MaintenanceOp(enum.Enum, shape=2):
    """What a maintenance operation does to each line it selects (bit 0 cleans, bit 1
    invalidates)."""
    CLEAN            = 0b01
    INVALIDATE       = 0b10
    CLEAN_INVALIDATE = 0b11


class MaintenanceScope(enum.Enum, shape=2):
    """Which lines a maintenance operation selects."""
    #: Lines holding any byte of physical addresses ``start`` to ``end - 1``.
    RANGE   = 0
    #: The line in way ``way`` of set ``set``, whatever address it holds.
    SET_WAY = 1
    #: Every line.
    ALL     = 2


class TagLayout(data.StructLayout):
    """One entry of a way's tag memory. (Dirty bits are kept in flip-flops beside it.)"""
    def __init__(self, tag_bits):
        super().__init__({
            "valid": unsigned(1),
            "tag":   unsigned(tag_bits),
        })


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


class MaintenanceSignature(wiring.Signature):
    """Maintenance request port, from the requester's side.

    ``go`` starts an operation with the other outputs as its arguments; it is ignored while
    ``busy``. ``done`` pulses for one cycle when the operation has finished: every line it
    cleaned has had its write response.

    Members
    -------
    op : ``Out(MaintenanceOp)``
    scope : ``Out(MaintenanceScope)``
    start, end : ``Out(addr_width)``
        Physical address range of a :attr:`MaintenanceScope.RANGE` operation; ``end`` is
        exclusive. An empty range (``end <= start``) selects no line.
    set : ``Out(index_bits)``
    way : ``Out(way_bits)``
        Line of a :attr:`MaintenanceScope.SET_WAY` operation.
    go : ``Out(1)``
    busy : ``In(1)``
    done : ``In(1)``
    """
    def __init__(self, geometry):
        if not isinstance(geometry, CacheGeometry):
            raise TypeError(f"Geometry must be a CacheGeometry, not {geometry!r}")
        self._geometry = geometry
        super().__init__({
            "op":    Out(MaintenanceOp, init=MaintenanceOp.CLEAN),
            "scope": Out(MaintenanceScope),
            "start": Out(geometry.addr_width),
            "end":   Out(geometry.addr_width),
            "set":   Out(geometry.index_bits),
            "way":   Out(geometry.way_bits),
            "go":    Out(1),
            "busy":  In(1),
            "done":  In(1),
        })

    geometry = property(lambda self: self._geometry)

    def __eq__(self, other):
        return type(other) is type(self) and other.geometry == self.geometry

    def __hash__(self):
        return hash((type(self), self.geometry))

    def __repr__(self):
        return f"MaintenanceSignature({self.geometry!r})"


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
        tag_layout = TagLayout(g.tag_bits)
        ways = range(g.ways)
        word_shift = g.offset_bits - g.word_bits
        line_beats = g.words_per_line

        def tag_of(addr):
            return addr[g.offset_bits + g.index_bits:]

        def index_of(addr):
            return addr[g.offset_bits:g.offset_bits + g.index_bits]

        def word_of(addr):
            return addr[word_shift:g.offset_bits]

        # Memories: one tag memory and one data memory per way, all read at the same row.

        tag_raddr = Signal(g.index_bits)
        tag_waddr = Signal(g.index_bits)
        tag_wdata = Signal(tag_layout)
        tag_we    = Signal(g.ways)
        data_raddr = Signal(g.index_bits + g.word_bits)
        data_waddr = Signal(g.index_bits + g.word_bits)
        data_wdata = Signal(g.data_width)
        data_wstrb = Signal(g.bytes_per_word)
        data_we    = Signal(g.ways)

        # A store hit reaches its data memory one cycle after its lookup, from registers, so
        # that the tag compare never drives the memories' write enables. A read in the cycle
        # of the lookup sees the store through a bypass. ``s2_store`` is every condition of a
        # store hit but the compare, whose outcome (``s2_hit_ways``) is only registered.
        s2_store      = Signal()
        s2_hit_ways   = Signal(g.ways)
        s2_store_addr = Signal.like(data_waddr)
        s2_store_data = Signal.like(data_wdata)
        s2_store_strb = Signal.like(data_wstrb)
        s3_store      = Signal()
        s3_hit_ways   = Signal.like(s2_hit_ways)
        s3_store_ways = Signal.like(s2_hit_ways)
        s3_store_addr = Signal.like(s2_store_addr)
        s3_store_data = Signal.like(s2_store_data)
        s3_store_strb = Signal.like(s2_store_strb)
        m.d.comb += s3_store_ways.eq(Mux(s3_store, s3_hit_ways, 0))
        store_bypass      = Signal()
        store_bypass_ways = Signal.like(s2_hit_ways)
        store_bypass_data = Signal.like(data_wdata)
        store_bypass_strb = Signal.like(data_wstrb)
        # The read ports are not transparent: a write in the cycle of a read reaches it
        # through this bypass, as yosys would build it, but kept apart from the read data so
        # that the write-back's beats can take it after their register.
        write_bypass_ways = Signal.like(data_we)
        write_bypass_data = Signal.like(data_wdata)
        write_bypass_strb = Signal.like(data_wstrb)
        m.d.sync += [store_bypass.eq(s2_store & (s2_store_addr == data_raddr)),
                     store_bypass_ways.eq(s2_hit_ways),
                     store_bypass_data.eq(s2_store_data),
                     store_bypass_strb.eq(s2_store_strb),
                     write_bypass_ways.eq(Mux(data_waddr == data_raddr, data_we, 0)),
                     write_bypass_data.eq(data_wdata),
                     write_bypass_strb.eq(data_wstrb)]

        def bypass_of(way, byte):
            """Whether the bypasses replace a byte of a way's read data, and with what: the
            write in the cycle of the read, then a store landing in the cycle after."""
            by_write = write_bypass_ways.bit_select(way, 1) & write_bypass_strb[byte]
            by_store = (store_bypass & store_bypass_ways.bit_select(way, 1) &
                        store_bypass_strb[byte])
            value = Mux(by_store, store_bypass_data.word_select(byte, 8),
                        write_bypass_data.word_select(byte, 8))
            return by_write | by_store, value

        def bypassed_byte(way, byte, read_byte):
            replaced, value = bypass_of(way, byte)
            return Mux(replaced, value, read_byte)

        tag_rdata  = []
        data_rdata = []
        data_rp_data = []
        for way in ways:
            tag_mem  = Memory(shape=tag_layout, depth=g.sets, init=[])
            data_mem = Memory(shape=unsigned(g.data_width), depth=g.sets * line_beats, init=[],
                              attrs={"no_rw_check": 1})
            m.submodules[f"tag_mem_{way}"]  = tag_mem
            m.submodules[f"data_mem_{way}"] = data_mem
            # Tags are written only by refills and maintenance, never in a cycle whose read
            # could see the entry written: the read port need not be transparent. A row is
            # read in every cycle (a stage that waits reads its own again), so that the read
            # register needs no enable.
            tag_wp  = tag_mem.write_port()
            tag_rp  = tag_mem.read_port(domain="comb")
            tag_rp_q = Signal(tag_layout, name=f"tag_rp_q_{way}", reset_less=True)
            m.d.sync += tag_rp_q.eq(tag_rp.data)
            data_wp = data_mem.write_port(granularity=8)
            # The data read port is written as an asynchronous read and a register, which
            # yosys folds into the block RAM's synchronous read port; ``no_rw_check`` tells it
            # that the value read in the cycle of a write to the same row does not matter
            # (the write bypass above replaces the bytes written), so it builds no bypass of
            # its own between the block RAM and the way choice. Like the tags, the data
            # memories read a row in every cycle, so that neither the read register nor the
            # bypass registers have an enable: a stage that waits reads its row again.
            data_rp = data_mem.read_port(domain="comb")
            data_rp_q = Signal(g.data_width, name=f"data_rp_q_{way}", reset_less=True)
            m.d.sync += data_rp_q.eq(data_rp.data)
            m.d.comb += [
                tag_rp.addr.eq(tag_raddr),
                tag_wp.addr.eq(tag_waddr),
                tag_wp.data.eq(tag_wdata),
                tag_wp.en.eq(tag_we[way]),
                data_rp.addr.eq(data_raddr),
                data_wp.addr.eq(data_waddr),
                data_wp.data.eq(data_wdata),
                data_wp.en.eq(Mux(data_we[way], data_wstrb, 0)),
            ]
            tag_rdata.append(tag_rp_q)
            data_rp_data.append(data_rp_q)
            way_data_rdata = Signal(g.data_width, name=f"data_rdata_{way}")
            for byte in range(g.bytes_per_word):
                m.d.comb += way_data_rdata.word_select(byte, 8).eq(
                    bypassed_byte(way, byte, data_rp_q.word_select(byte, 8)))
            data_rdata.append(way_data_rdata)

        lru      = Signal(g.sets * (g.ways - 1))
        # A store hit marks its line dirty here, without writing the tag memory, in the cycle
        # after its lookup (with its data). Each set ORs in the store's ways if it is the
        # store's set: ``s3_store_addr`` follows s2 in every cycle, also while s2 holds no
        # access (a request payload without its valid), and a set's own bits, unlike a read of
        # ``dirty`` at that row, stay known in a Verilog simulation when the row is unknown.
        dirty    = Signal(g.sets * g.ways)
        s3_store_set = s3_store_addr[g.word_bits:]
        for index in range(g.sets):
            set_dirty = dirty.word_select(index, g.ways)
            with m.If(s3_store_set == index):
                m.d.sync += set_dirty.eq(set_dirty | s3_store_ways)
        # Every event reaches its counter a cycle late, from a register, so that no counter's
        # enable waits on the condition of its event; the counters shown include it already.
        counters    = Signal(CounterLayout())
        events      = Signal(data.StructLayout({name: 1 for name in CounterLayout().members}))
        events_late = Signal.like(events)
        m.d.sync += events_late.eq(events)
        for name in CounterLayout().members:
            m.d.sync += counters[name].eq(counters[name] + events_late[name])
            m.d.comb += self.counters[name].eq(counters[name] + events_late[name])

        bus = self.bus

        # W beats leave through a register slice, so that the way choice ends in the cache
        # rather than in the next block. Each burst's data follows its AW two cycles later
        # (one in the write-back's beat register, one in the slice).
        m.submodules.w_slice = w_slice = StreamRegisterSlice(bus.w.payload.shape())
        connect(m, w_slice.downstream, flipped(bus.w))
        requests = {"aw": bus.aw, "w": w_slice.upstream, "ar": bus.ar}

        # Uncached accesses go through the bridge. Its requests and the cache's own
        # (``own_*``: write-backs and refills) never overlap: the bridge is given an access
        # only once every write-back has completed, and the cache starts none until the
        # bridge has answered. So each request channel carries the bridge's request while the
        # bridge offers one, chosen by the bridge's own valid (from its registers), and the
        # cache's otherwise: the control FSM stays off the bus's wide multiplexers, which sit
        # by the bus, far from the tag compare. Responses are offered to both; each takes
        # those it waits for, and B goes to the bridge while it owns the bus.
        m.submodules.bridge = bridge = UncachedBridge(self._bus_signature)
        uncached_owns_bus = Signal()
        own_valid   = {name: Signal(name=f"own_{name}_valid") for name in requests}
        own_payload = {name: Signal.like(stream.payload, name=f"own_{name}_payload")
                       for name, stream in requests.items()}
        for name, stream in requests.items():
            theirs = getattr(bridge.bus, name)
            m.d.comb += [
                stream.valid.eq(own_valid[name] | theirs.valid),
                stream.payload.eq(Mux(theirs.valid, theirs.payload, own_payload[name])),
                theirs.ready.eq(stream.ready),
            ]
        for name in ("b", "r"):
            ours, theirs = getattr(bus, name), getattr(bridge.bus, name)
            m.d.comb += [theirs.valid.eq(ours.valid), theirs.payload.eq(ours.payload)]
        m.d.comb += [
            bus.b.ready.eq(Mux(uncached_owns_bus, bridge.bus.b.ready, 1)),
            # A refill's beats are taken in REFILL_DATA (below), the bridge's otherwise.
            bus.r.ready.eq(bridge.bus.r.ready),
        ]

        full_size = Size.from_bytes(g.bytes_per_word)
        for ax in (own_payload["aw"], own_payload["ar"]):
            m.d.comb += [ax.size.eq(full_size), ax.burst.eq(Burst.INCR),
                         ax.len.eq(line_beats - 1)]

        # Write-back engine: each line handed to it becomes an AW and a burst of W beats read
        # from the data memories. While one burst streams, the next line may be handed over:
        # its AW goes out at once and its beats follow the current burst's without a bubble.
        #
        # The data memories' read ports are not registered (yosys does not use the block
        # RAMs' output registers), so each beat goes from the line's way straight into the
        # beat register (``wb_q_*``), and the bypasses act on that register.
        # ``wb_w_active`` means that the memories' output holds a beat of the line being
        # written back; the beat moves into the beat register when that is free, and until
        # then the same row is read again (so a store landing meanwhile is seen). (Registering
        # every way whole, with the way chosen after the register, made the cache alone
        # faster but the SoC top much slower: 256 flip-flops round the block RAMs.)

        wb_start     = Signal()
        wb_start_set = Signal(g.index_bits)
        wb_start_way = Signal(range(g.ways))
        wb_start_tag = Signal(g.tag_bits)
        wb_aw_pending = Signal()
        wb_aw_addr    = Signal(g.addr_width)
        wb_w_active   = Signal()
        wb_set        = Signal(g.index_bits)
        wb_way        = Signal(range(g.ways))
        wb_beat       = Signal(g.word_bits)
        wb_next_valid = Signal()
        wb_next_set   = Signal(g.index_bits)
        wb_next_way   = Signal(range(g.ways))
        wb_outstanding = Signal(range(MAX_WRITEBACKS_OUTSTANDING + 1))
        wb_idle       = Signal()

        wb_q_valid  = Signal()
        wb_q_last   = Signal()
        wb_q_rdata  = Signal(g.data_width)
        wb_q_bypass = Signal(g.bytes_per_word)
        wb_q_bypass_data = Signal.like(store_bypass_data)

        aw_taken = Signal()
        beat_taken  = Signal()
        beat_last   = Signal()
        line_read   = Signal()
        b_taken  = Signal()
        m.d.comb += [
            aw_taken.eq(wb_aw_pending & bus.aw.ready),
            beat_taken.eq(wb_w_active & (~wb_q_valid | requests["w"].ready)),
            beat_last.eq(wb_beat == line_beats - 1),
            line_read.eq(beat_taken & beat_last),
            b_taken.eq(bus.b.valid & ~uncached_owns_bus),
        ]
        wb_can_start = Signal()
        wb_start_now = Signal()
        m.d.comb += [
            # From registers alone, so that the maintenance walk (``maint_advance``) never
            # waits on the bus: a line is handed over a cycle after its place frees, which
            # the current burst's beats hide.
            wb_can_start.eq(~wb_aw_pending & ~wb_next_valid &
                            (wb_outstanding != MAX_WRITEBACKS_OUTSTANDING)),
            wb_start_now.eq(wb_start & (~wb_w_active | (line_read & ~wb_next_valid))),
            wb_idle.eq(~wb_aw_pending & ~wb_w_active & (wb_outstanding == 0)),
        ]

        with m.If(requests["w"].ready):
            m.d.sync += wb_q_valid.eq(0)
        with m.If(beat_taken):
            m.d.sync += [
                wb_q_valid.eq(1),
                wb_q_last.eq(beat_last),
                wb_q_rdata.eq(Cat(data_rp_data).word_select(wb_way, g.data_width)),
            ]
            # Which bytes the bypasses replace, and with what, worked out from registers.
            for byte in range(g.bytes_per_word):
                replaced, value = bypass_of(wb_way, byte)
                m.d.sync += [wb_q_bypass[byte].eq(replaced),
                             wb_q_bypass_data.word_select(byte, 8).eq(value)]
        wb_q_data = Signal(g.data_width)
        for byte in range(g.bytes_per_word):
            m.d.comb += wb_q_data.word_select(byte, 8).eq(
                Mux(wb_q_bypass[byte], wb_q_bypass_data.word_select(byte, 8),
                    wb_q_rdata.word_select(byte, 8)))

        m.d.comb += [
            own_valid["aw"].eq(wb_aw_pending),
            own_payload["aw"].addr.eq(wb_aw_addr),
            own_valid["w"].eq(wb_q_valid),
            own_payload["w"].data.eq(wb_q_data),
            own_payload["w"].strb.eq(Const(-1, g.bytes_per_word)),
            own_payload["w"].last.eq(wb_q_last),
        ]

        # The line registers take the line on offer whenever they are free, not only when it
        # is handed over (only ``wb_start`` makes them count), so that their enables wait on
        # the bus and the beat register alone, never on the control FSM's hand-over.
        with m.If(~wb_aw_pending | aw_taken):
            m.d.sync += wb_aw_addr.eq(Cat(Const(0, g.offset_bits), wb_start_set, wb_start_tag))
        with m.If(~wb_w_active | line_read):
            m.d.sync += [wb_set.eq(Mux(wb_next_valid, wb_next_set, wb_start_set)),
                         wb_way.eq(Mux(wb_next_valid, wb_next_way, wb_start_way))]
        with m.If(~wb_next_valid | line_read):
            m.d.sync += [wb_next_set.eq(wb_start_set), wb_next_way.eq(wb_start_way)]

        with m.If(aw_taken):
            m.d.sync += wb_aw_pending.eq(0)
        # ``wb_beat`` wraps to 0 as a line's last beat is read, so it is 0 when a line starts.
        with m.If(beat_taken):
            m.d.sync += wb_beat.eq(wb_beat + 1)
        with m.If(line_read):
            m.d.sync += [wb_w_active.eq(wb_next_valid), wb_next_valid.eq(0)]
        m.d.comb += events.writebacks.eq(wb_start)
        with m.If(wb_start):
            m.d.sync += wb_aw_pending.eq(1)
            with m.If(wb_start_now):
                m.d.sync += wb_w_active.eq(1)
            with m.Else():
                m.d.sync += wb_next_valid.eq(1)
        m.d.sync += wb_outstanding.eq(wb_outstanding + wb_start - b_taken)

        # The data memories' read row: the write-back engine's next beat while it streams,
        # otherwise whatever the control FSM asks for (s2's row, unless a state asks for
        # another). The first beat of a line that may be handed over is read whether or not
        # it is, so that the hand-over never selects the row.
        fsm_data_raddr = Signal.like(data_raddr)
        with m.If(line_read):
            first_set = Mux(wb_next_valid, wb_next_set, wb_start_set)
            m.d.comb += data_raddr.eq(Cat(Const(0, g.word_bits), first_set))
        with m.Elif(wb_w_active):
            next_beat = (wb_beat + beat_taken)[:g.word_bits]
            m.d.comb += data_raddr.eq(Cat(next_beat, wb_set))
        with m.Else():
            m.d.comb += data_raddr.eq(fsm_data_raddr)

        # Stage 2 of CPU accesses.

        cpu = self.cpu
        s2_valid    = Signal()
        s2_req      = Signal.like(cpu.req.payload)
        s2_replayed = Signal()
        s2_tag   = tag_of(s2_req.addr)
        s2_index = index_of(s2_req.addr)
        s2_word  = word_of(s2_req.addr)
        s2_row   = Cat(s2_word, s2_index)     # s2's row of the data memories

        # s2 moves on before its tags are compared, so the access that leaves it on a miss
        # or an uncached access is served from s3. After a refill, s3's access is looked up
        # again and the one that had entered s2 behind it waits in s3 (``s3_waiting``).
        s3_req     = Signal.like(cpu.req.payload)
        s3_waiting = Signal()
        s3_tag   = tag_of(s3_req.addr)
        s3_index = index_of(s3_req.addr)
        s3_word  = word_of(s3_req.addr)
        s3_dirty = dirty.word_select(s3_index, g.ways)

        s2_hit_way  = Signal(range(g.ways))
        s2_hit_data = Signal(g.data_width)
        for way in ways:
            m.d.comb += s2_hit_ways[way].eq(tag_rdata[way].valid & (tag_rdata[way].tag == s2_tag))
            with m.If(s2_hit_ways[way]):
                m.d.comb += [s2_hit_way.eq(way), s2_hit_data.eq(data_rdata[way])]
        s2_hit = s2_hit_ways.any()

        # A hit touches its set's pseudo-LRU bits a cycle after its lookup, from registers;
        # a lookup of the same set in that cycle sees the touch already.
        s2_touch       = Signal()
        s3_touch       = Signal()
        s3_touch_way   = Signal(range(g.ways))
        s3_touch_index = Signal(g.index_bits)
        m.d.sync += [
            s3_touch.eq(s2_touch),
            s3_touch_way.eq(s2_hit_way),
            s3_touch_index.eq(s2_index),
        ]
        if g.ways > 1:
            s3_lru = lru.word_select(s3_touch_index, g.ways - 1)
            s3_lru_touched = plru.touch_value(s3_lru, s3_touch_way, g.ways)
            with m.If(s3_touch):
                m.d.sync += s3_lru.eq(s3_lru_touched)
            s2_lru = Mux(s3_touch & (s3_touch_index == s2_index), s3_lru_touched,
                         lru.word_select(s2_index, g.ways - 1))
        else:
            s2_lru = Const(0, 0)
        s2_invalid_ways = Cat(~tag_rdata[way].valid for way in ways)
        s2_victim_way = Signal(range(g.ways))
        m.d.comb += s2_victim_way.eq(plru.victim_value(s2_lru, g.ways))
        for way in reversed(ways):
            with m.If(s2_invalid_ways[way]):
                m.d.comb += s2_victim_way.eq(way)

        # The data memories' write port: a store hit, a cycle after its lookup, unless a
        # refill overrides it.
        m.d.comb += [
            s2_store_addr.eq(s2_row),
            s2_store_data.eq(s2_req.data),
            s2_store_strb.eq(s2_req.strb),
        ]
        m.d.sync += [
            s3_store.eq(s2_store),
            s3_hit_ways.eq(s2_hit_ways),
            s3_store_addr.eq(s2_store_addr),
            s3_store_data.eq(s2_store_data),
            s3_store_strb.eq(s2_store_strb),
        ]
        m.d.comb += [
            data_waddr.eq(s3_store_addr),
            data_wdata.eq(s3_store_data),
            data_wstrb.eq(s3_store_strb),
            data_we.eq(s3_store_ways),
        ]

        victim_way   = Signal(range(g.ways))
        # The tags of s2's set, kept whole: the victim's is picked out of them in s3.
        victim_tags  = Signal(data.ArrayLayout(g.tag_bits, g.ways))
        victim_tag   = victim_tags[victim_way]
        # The dirty bits of s2's set, with those of a store hit still on its way to ``dirty``.
        # Only a valid line is ever dirty.
        s2_dirty = Signal(g.ways)
        m.d.comb += s2_dirty.eq(dirty.word_select(s2_index, g.ways) |
                                Mux(s3_store_addr[g.word_bits:] == s2_index, s3_store_ways, 0))
        victim_dirty_ways = Signal(g.ways)
        victim_dirty = victim_dirty_ways.bit_select(victim_way, 1)

        refill_beat  = Signal(g.word_bits)
        refill_error = Signal()

        # Maintenance. The walk visits items: a line number for a range operation, or
        # ``way * sets + set`` for set/way and whole-cache operations. An item's tags are
        # read, compared in s2m and acted on in s3m. Acting on an item never changes what
        # the next one (read before that write) matches: a different tag, or a different way.

        maint = self.maint
        walk_width   = max(g.addr_width - g.offset_bits, g.index_bits + g.way_bits) + 1
        maint_pending = Signal()
        maint_busy    = Signal()
        maint_clean   = Signal()
        maint_inval   = Signal()
        maint_by_addr = Signal()
        walk          = Signal(walk_width)
        walk_end      = Signal(walk_width)
        s2m_valid     = Signal()
        s2m_item      = Signal(walk_width)
        m.d.comb += maint.busy.eq(maint_busy)

        with m.If(maint.go & ~maint_busy):
            op = maint.op.as_value()
            line_mask = (1 << g.offset_bits) - 1
            first_line = maint.start[g.offset_bits:]
            end_line   = (maint.end + line_mask)[g.offset_bits:]
            m.d.sync += [
                maint_pending.eq(1),
                maint_busy.eq(1),
                maint_clean.eq(op[0]),
                maint_inval.eq(op[1]),
                maint_by_addr.eq(maint.scope == MaintenanceScope.RANGE),
            ]
            with m.Switch(maint.scope):
                with m.Case(MaintenanceScope.RANGE):
                    m.d.sync += [walk.eq(first_line),
                                 walk_end.eq(Mux(maint.end > maint.start, end_line, first_line))]
                with m.Case(MaintenanceScope.SET_WAY):
                    item = Cat(maint.set, maint.way)
                    m.d.sync += [walk.eq(item), walk_end.eq(item + 1)]
                with m.Default():
                    m.d.sync += [walk.eq(0), walk_end.eq(g.sets * g.ways)]

        s2m_tag   = s2m_item[g.index_bits:]
        s2m_index = s2m_item[:g.index_bits]
        s2m_way_sel = s2m_item[g.index_bits:g.index_bits + g.way_bits]
        s2m_match_ways = Signal(g.ways)
        s2m_way   = Signal(range(g.ways))
        # The tag of the line an item matches is known without the compare.
        s2m_line_tag = Signal(g.tag_bits)
        m.d.comb += s2m_line_tag.eq(s2m_tag)
        with m.If(~maint_by_addr):
            for way in ways:
                with m.If(s2m_way_sel == way):
                    m.d.comb += s2m_line_tag.eq(tag_rdata[way].tag)
        for way in ways:
            by_addr = tag_rdata[way].tag == s2m_tag
            by_index = s2m_way_sel == way
            m.d.comb += s2m_match_ways[way].eq(
                s2m_valid & tag_rdata[way].valid & Mux(maint_by_addr, by_addr, by_index))
            with m.If(s2m_match_ways[way]):
                m.d.comb += s2m_way.eq(way)
        s3m_match_ways = Signal(g.ways)
        s3m_way   = Signal(range(g.ways))
        s3m_tag   = Signal(g.tag_bits)
        s3m_index = Signal(g.index_bits)
        s3m_clean = Signal()
        s3m_match = s3m_match_ways.any()
        s2m_dirty = dirty.word_select(s2m_index, g.ways)
        s3m_dirty = dirty.word_select(s3m_index, g.ways)
        maint_advance = Signal()
        m.d.comb += maint_advance.eq(~s3m_clean | wb_can_start)
        walk_index = walk[:g.index_bits]


        # Unless a state reads another row, the memories read s2's, so that s2's lookup stays
        # up to date while s3's access is answered (the other states use no read data).
        m.d.comb += [
            tag_raddr.eq(s2_index),
            fsm_data_raddr.eq(s2_row),
        ]

        def write_tag(index, ways, tag=None):
            # Writes the entry of ``index`` in ``ways``: valid with ``tag``, else invalid.
            valid = [tag_wdata.valid.eq(1), tag_wdata.tag.eq(tag)] if tag is not None else []
            return [tag_waddr.eq(index), *valid, tag_we.eq(ways)]

        def offer_write_back(index, way, tag):
            # The line the write-back engine takes if it is dirty, and its first beat's read.
            return [
                wb_start_set.eq(index),
                wb_start_way.eq(way),
                wb_start_tag.eq(tag),
                fsm_data_raddr.eq(Cat(Const(0, g.word_bits), index)),
            ]

        # A refill reads s3's line, asked for in REFILL_ADDR.
        m.d.comb += own_payload["ar"].addr.eq(Cat(Const(0, g.offset_bits), s3_index, s3_tag))

        with one_hot_fsm(m):
            with m.State("ACCESS"):
                s2_cached_hit = s2_valid & s2_req.cacheable & s2_hit
                s2_done = Signal()
                m.d.comb += [
                    cpu.rsp.valid.eq(s2_cached_hit),
                    cpu.rsp.payload.data.eq(s2_hit_data),
                    s2_done.eq(s2_cached_hit & cpu.rsp.ready),
                    s2_store.eq(s2_valid & s2_req.cacheable & s2_req.write & cpu.rsp.ready),
                ]
                # Whether s2 hit is known too late to gate the memories' read port: s2
                # moves on whenever an answer would be taken, and a miss is served in s3.
                s2_advance = Signal()
                s1_addr    = Signal(g.addr_width)
                m.d.comb += [
                    s2_advance.eq(~s2_valid | cpu.rsp.ready),
                    s1_addr.eq(Mux(s3_waiting, s3_req.addr, cpu.req.payload.addr)),
                    cpu.req.ready.eq(s2_advance & ~s3_waiting & ~maint_pending),
                    # s2 reads its own row again while it waits.
                    tag_raddr.eq(Mux(s2_advance, index_of(s1_addr), s2_index)),
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
                        victim_way.eq(s2_victim_way),
                        victim_dirty_ways.eq(s2_dirty),
                        victim_tags.eq(Cat(tag_rdata[way].tag for way in ways)),
                    ]
                m.d.comb += [
                    events.hits.eq(s2_done & ~s2_replayed),
                    s2_touch.eq(s2_done),
                ]
                with m.If(s2_valid & cpu.rsp.ready & ~s2_req.cacheable):
                    m.next = "UNCACHED"
                with m.Elif(s2_valid & cpu.rsp.ready & ~s2_hit):
                    m.d.comb += events.misses.eq(1)
                    m.next = "MISS"
                with m.Elif(~s2_valid & ~s3_waiting & maint_pending):
                    m.d.sync += [s2m_valid.eq(0), s3m_match_ways.eq(0), s3m_clean.eq(0)]
                    m.next = "MAINT_LOOKUP"

            with m.State("MISS"):
                m.d.comb += offer_write_back(s3_index, victim_way, victim_tag)
                # Earlier write-backs must be in memory before this refill reads it.
                with m.If(wb_idle):
                    m.d.comb += wb_start.eq(victim_dirty)
                    m.next = "REFILL_ADDR"

            with m.State("REFILL_ADDR"):
                # The victim's entry is given the refilled line's tag here, in every cycle of
                # this state, and its dirty bit cleared: nothing looks the set up until
                # REPLAY, and the victim's write-back has its tag already. So the tag
                # memories' write enables come from the state alone, never from the bus.
                m.d.comb += write_tag(s3_index, 1 << victim_way, s3_tag)
                m.d.sync += s3_dirty.eq(s3_dirty & ~(1 << victim_way))
                # The victim's data must have left its memory before the refill overwrites it.
                with m.If(~wb_w_active):
                    m.d.comb += own_valid["ar"].eq(1)
                    with m.If(bus.ar.ready):
                        m.d.sync += [refill_beat.eq(0), refill_error.eq(0)]
                        m.next = "REFILL_DATA"

            with m.State("REFILL_DATA"):
                m.d.comb += [
                    bus.r.ready.eq(1),
                    data_waddr.eq(Cat(refill_beat, s3_index)),
                    data_wdata.eq(bus.r.payload.data),
                    data_wstrb.eq(Const(-1, g.bytes_per_word)),
                ]
                with m.If(bus.r.valid):
                    m.d.comb += data_we.eq(1 << victim_way)
                    m.d.sync += refill_beat.eq(refill_beat + 1)
                    error = refill_error | (bus.r.payload.resp != Resp.OKAY)
                    m.d.sync += refill_error.eq(error)
                    with m.If(refill_beat == line_beats - 1):
                        with m.If(error):
                            m.next = "REFILL_FAILED"
                        with m.Else():
                            m.next = "REPLAY"

            with m.State("REPLAY"):
                # The refilled access goes back to s2; the one behind it waits in s3.
                m.d.comb += [
                    tag_raddr.eq(s3_index),
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

            with m.State("REFILL_FAILED"):
                # A refill that failed installs nothing: its entry is made invalid again,
                # a cycle before REFILL_ERROR rereads s2's row (which may be this one).
                m.d.comb += write_tag(s3_index, 1 << victim_way)
                m.next = "REFILL_ERROR"

            with m.State("REFILL_ERROR"):
                m.d.comb += [cpu.rsp.valid.eq(1), cpu.rsp.payload.error.eq(1)]
                with m.If(cpu.rsp.ready):
                    m.next = "ACCESS"

            with m.State("UNCACHED"):
                with m.If(wb_idle):
                    m.d.comb += [
                        bridge.cpu.req.valid.eq(1),
                        bridge.cpu.req.payload.eq(s3_req),
                    ]
                    with m.If(bridge.cpu.req.ready):
                        m.next = "UNCACHED_RESPOND"

            with m.State("UNCACHED_RESPOND"):
                m.d.comb += [
                    uncached_owns_bus.eq(1),
                    cpu.rsp.valid.eq(bridge.cpu.rsp.valid),
                    cpu.rsp.payload.eq(bridge.cpu.rsp.payload),
                    bridge.cpu.rsp.ready.eq(cpu.rsp.ready),
                ]
                with m.If(bridge.cpu.rsp.valid & cpu.rsp.ready):
                    m.next = "ACCESS"

            with m.State("MAINT_LOOKUP"):
                walk_more = walk < walk_end
                m.d.comb += [
                    # s2m reads its item's row again while the walk waits.
                    tag_raddr.eq(Mux(maint_advance, walk_index, s2m_index)),
                    *offer_write_back(s3m_index, s3m_way, s3m_tag),
                ]
                # s3's line is invalidated in every cycle it waits, not only as it moves on,
                # so that the write-back's handshake stays off the tag memories' write enables
                # (writing it again is harmless, and the write-back takes its tag from s3).
                with m.If(s3m_match & maint_inval):
                    m.d.comb += write_tag(s3m_index, s3m_match_ways)
                # Likewise its dirty bit is cleared in every cycle it waits: the write-back
                # is decided already (``s3m_clean``), and no other item is in its line.
                with m.If(s3m_match):
                    m.d.sync += s3m_dirty.eq(s3m_dirty & ~s3m_match_ways)
                with m.If(maint_advance):
                    m.d.sync += [
                        s2m_valid.eq(walk_more),
                        s2m_item.eq(walk),
                        s3m_match_ways.eq(s2m_match_ways),
                        s3m_way.eq(s2m_way),
                        s3m_tag.eq(s2m_line_tag),
                        s3m_index.eq(s2m_index),
                        s3m_clean.eq((s2m_match_ways & s2m_dirty).any() & maint_clean),
                    ]
                    with m.If(walk_more):
                        m.d.sync += walk.eq(walk + 1)
                    with m.If(s3m_match):
                        m.d.comb += wb_start.eq(s3m_clean)
                        with m.If(s3m_clean):
                            m.d.comb += events.lines_cleaned.eq(1)
                        with m.If(maint_inval):
                            m.d.comb += events.lines_invalidated.eq(1)
                    with m.If(~walk_more & ~s2m_valid):
                        m.next = "MAINT_DRAIN"

            with m.State("MAINT_DRAIN"):
                with m.If(wb_idle):
                    m.d.comb += maint.done.eq(1)
                    m.d.sync += [maint_pending.eq(0), maint_busy.eq(0)]
                    m.next = "ACCESS"

        return m
