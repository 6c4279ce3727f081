"""Cache maintenance: the request port and the walk that visits the lines an operation
selects."""

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import data, enum, wiring
from amaranth.lib.wiring import In, Out

from ..parameters import ParameterSignature
from .geometry import check_geometry
from .way import TagLayout
from .writeback import LineLayout

__all__ = ["MaintenanceOp", "MaintenanceScope", "MaintenanceSignature", "MaintenanceWalk"]


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


class MaintenanceSignature(ParameterSignature):
    """Maintenance request port, from the requester's side.

    ``go`` starts an operation with the other outputs as its arguments; it is ignored while
    an operation runs. ``busy`` is set while one runs, and while the sweep that empties the
    cache after a reset runs: an operation started then is taken, and runs after the sweep.
    ``done`` pulses for one cycle when the operation has finished: every line it cleaned has
    had its write response.

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
    parameters = ("geometry",)

    def __init__(self, geometry):
        self._geometry = check_geometry(geometry)
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


class MaintenanceWalk(wiring.Component):
    """The walk of a maintenance operation over the lines it may select.

    The walk visits items: a line number for a range operation, or ``way * sets + set`` for
    set/way and whole-cache operations, one per cycle. An item's tags are read (``tag_raddr``),
    compared a cycle later, and the line it matches, if any, is acted on in the cycle after:
    it is offered for write-back (``line``, ``write_back``) if it is to be cleaned and is
    dirty, and its entry is invalidated (``invalidate``) if the operation invalidates. Acting
    on an item never changes what the next one (read before that write) matches: a different
    tag, or a different way. The walk waits, reading its item's row again, while a line to be
    cleaned cannot be handed over; the line acted on is invalidated, and its dirty bit
    cleared, in every cycle it waits, not only as it moves on, so that the write-back's
    handshake stays off the tag memories' write enables.

    ``maint.busy`` is also set while the cache's reset sweep is owed or runs (``sweeping``);
    an operation started then is taken, and walks once the sweep has ended.

    The cache's control takes an operation (``pending``) between CPU accesses: it pulses
    ``start``, holds ``run`` while the walk goes on, and once the walk has acted on its
    ``last`` item and every write-back has completed, pulses ``finish``.

    Parameters
    ----------
    geometry : CacheGeometry

    Members
    -------
    maint : ``In(MaintenanceSignature(geometry))``
    sweeping : ``In(1)``
        The cache's reset sweep is owed or runs.
    pending : ``Out(1)``
        An operation is waiting for the walk, or walking.
    start, run, finish : ``In(1)``
    last : ``Out(1)``
        The walk ends in this cycle (while ``run``).
    tag_raddr : ``Out(index_bits)``
        The row whose tags the walk reads in this cycle (while ``run``).
    tags : ``In(data.ArrayLayout(TagLayout(tag_bits), ways))``
        Every way's entry of the row read in the previous cycle.
    dirty_set : ``Out(index_bits)``
    dirty : ``In(ways)``
        The dirty bits of set ``dirty_set``.
    can_write_back : ``In(1)``
        A line may be handed over for write-back.
    line : ``Out(LineLayout(geometry))``
        The line acted on.
    match_ways : ``Out(ways)``
        The ways of set ``line.set`` that the item acted on matches (none or one); their
        dirty bits are to be cleared.
    invalidate : ``Out(1)``
        Invalidate the entries of ``match_ways``.
    write_back : ``Out(1)``
        Hand ``line`` over for write-back.
    cleaned, invalidated : ``Out(1)``
        Events.
    """
    def __init__(self, geometry):
        self._geometry = g = check_geometry(geometry)
        super().__init__({
            "maint":          In(MaintenanceSignature(g)),
            "sweeping":       In(1),
            "pending":        Out(1),
            "start":          In(1),
            "run":            In(1),
            "finish":         In(1),
            "last":           Out(1),
            "tag_raddr":      Out(g.index_bits),
            "tags":           In(data.ArrayLayout(TagLayout(g.tag_bits), g.ways)),
            "dirty_set":      Out(g.index_bits),
            "dirty":          In(g.ways),
            "can_write_back": In(1),
            "line":           Out(LineLayout(g)),
            "match_ways":     Out(g.ways),
            "invalidate":     Out(1),
            "write_back":     Out(1),
            "cleaned":        Out(1),
            "invalidated":    Out(1),
        })

    geometry = property(lambda self: self._geometry)

    def elaborate(self, platform):
        m = Module()
        g = self._geometry
        maint = self.maint

        walk_width = max(g.addr_width - g.offset_bits, g.index_bits + g.way_bits) + 1
        busy     = Signal()
        clean    = Signal()
        inval    = Signal()
        by_addr  = Signal()
        walk     = Signal(walk_width)
        walk_end = Signal(walk_width)
        m.d.comb += maint.busy.eq(busy | self.sweeping)

        with m.If(maint.go & ~busy):
            op = maint.op.as_value()
            line_mask = (1 << g.offset_bits) - 1
            first_line = maint.start[g.offset_bits:]
            end_line   = (maint.end + line_mask)[g.offset_bits:]
            m.d.sync += [
                self.pending.eq(1),
                busy.eq(1),
                clean.eq(op[0]),
                inval.eq(op[1]),
                by_addr.eq(maint.scope == MaintenanceScope.RANGE),
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

        # s2m compares the item read in the previous cycle.
        s2m_valid   = Signal()
        s2m_item    = Signal(walk_width)
        s2m_tag     = s2m_item[g.index_bits:]
        s2m_index   = s2m_item[:g.index_bits]
        s2m_way_sel = s2m_item[g.index_bits:g.index_bits + g.way_bits]
        s2m_match_ways = Signal(g.ways)
        s2m_way     = Signal(range(g.ways))
        # The tag of the line an item matches is known without the compare.
        s2m_line_tag = Signal(g.tag_bits)
        m.d.comb += s2m_line_tag.eq(s2m_tag)
        with m.If(~by_addr):
            for way in range(g.ways):
                with m.If(s2m_way_sel == way):
                    m.d.comb += s2m_line_tag.eq(self.tags[way].tag)
        for way in range(g.ways):
            entry = self.tags[way]
            m.d.comb += s2m_match_ways[way].eq(
                s2m_valid & entry.valid & Mux(by_addr, entry.tag == s2m_tag, s2m_way_sel == way))
            with m.If(s2m_match_ways[way]):
                m.d.comb += s2m_way.eq(way)
        m.d.comb += self.dirty_set.eq(s2m_index)

        # s3m acts on the line s2m matched.
        s3m_match_ways = self.match_ways
        s3m_clean = Signal()
        s3m_match = s3m_match_ways.any()
        advance   = Signal()
        walk_more = Signal()
        m.d.comb += [
            advance.eq(~s3m_clean | self.can_write_back),
            walk_more.eq(walk < walk_end),
            # s2m reads its item's row again while the walk waits.
            self.tag_raddr.eq(Mux(advance, walk[:g.index_bits], s2m_index)),
            self.invalidate.eq(s3m_match & inval),
            self.write_back.eq(advance & s3m_match & s3m_clean),
            self.cleaned.eq(advance & s3m_match & s3m_clean),
            self.invalidated.eq(advance & s3m_match & inval),
            self.last.eq(advance & ~walk_more & ~s2m_valid),
        ]

        with m.If(self.start):
            m.d.sync += [s2m_valid.eq(0), s3m_match_ways.eq(0), s3m_clean.eq(0)]
        with m.If(self.run & advance):
            m.d.sync += [
                s2m_valid.eq(walk_more),
                s2m_item.eq(walk),
                s3m_match_ways.eq(s2m_match_ways),
                self.line.way.eq(s2m_way),
                self.line.tag.eq(s2m_line_tag),
                self.line.set.eq(s2m_index),
                s3m_clean.eq((s2m_match_ways & self.dirty).any() & clean),
            ]
            with m.If(walk_more):
                m.d.sync += walk.eq(walk + 1)

        m.d.comb += maint.done.eq(self.finish)
        with m.If(self.finish):
            m.d.sync += [self.pending.eq(0), busy.eq(0)]

        return m
