"""The cache's own properties: no dirty line is lost (but by an invalidate)."""

from amaranth.hdl import Cat, Const, Signal
from amaranth.utils import exact_log2

from ...hw.cache.maintenance import MaintenanceOp, MaintenanceScope
from .properties import PropertySet

__all__ = ["DirtyLineProperties", "MaintainedLineProperties"]

#: Offset of the register whose write starts a maintenance operation (cache.rdl).
_MAINT_GO = 0x18


def _owed_line(m, cpu, bus, line, offset, *, dropped=0):
    """``(owed, write_back)``: whether line ``line`` holds a store of the CPU not yet
    written back (set once the store is answered without an error: write-allocate refills
    its line before, and a refill that fails installs nothing; cleared as its write-back
    burst's AW is taken, or by ``dropped``), and that AW."""
    req = cpu.req
    storing = Signal()
    owed = Signal()
    store = (req.valid & req.ready & (req.payload.addr[offset:] == line) & req.payload.write &
             (req.payload.strb != 0))
    answered = cpu.rsp.valid & cpu.rsp.ready
    write_back = bus.aw.valid & bus.aw.ready & (bus.aw.payload.addr[offset:] == line)
    with m.If(store):
        m.d.sync += storing.eq(1)
    with m.Elif(answered):
        m.d.sync += storing.eq(0)
    with m.If(write_back | dropped):
        m.d.sync += owed.eq(0)
    with m.If(storing & answered & ~cpu.rsp.payload.error):
        m.d.sync += owed.eq(1)
    return owed, write_back


class DirtyLineProperties(PropertySet):
    """A :class:`~dmabuf_soc.hw.cache.cache.Cache` keeps the data the CPU stored.

    One line, ``line``, free but constant in a run (so the proof holds for every line), is
    followed. The environment issues only cacheable accesses to it and starts no
    maintenance operation (no write to ``MAINT_GO``); a reset empties the cache, as
    designed. Once a store of the CPU to the line is answered, the memory holds stale data
    until the line's write-back burst starts: proven, the cache reads the line from memory
    (a refill) only when no store is owed to memory, so it never drops a dirty line and
    refills it.

    Parameters
    ----------
    cache : Cache
    line_size : int
        Bytes per line of the cache.
    name : str
    """
    def __init__(self, cache, *, line_size, name="dirty"):
        super().__init__(cache, role="subordinate", name=name)
        self.offset = exact_log2(line_size)
        self.line = self.free_constant(len(cache.cpu.req.payload.addr) - self.offset, "line")

    def build(self, m):
        cache = self.port
        req, bus = cache.cpu.req, cache.bus
        offset = self.offset
        ours = req.payload.addr[offset:] == self.line
        self.rule(m, "manager", "cacheable", req.payload.cacheable, when=req.valid & ours)
        self.rule(m, "manager", "no_maintenance", cache.regs.aw.payload.addr[2:] != _MAINT_GO >> 2,
                  when=cache.regs.aw.valid)

        owed, write_back = _owed_line(m, cache.cpu, bus, self.line, offset)
        refill = bus.ar.valid & (bus.ar.payload.addr[offset:] == self.line)
        self.rule(m, "subordinate", "no_refill_over_dirty", ~owed, when=refill)
        self.cover(m, "write_back", write_back & owed)


class MaintainedLineProperties(PropertySet):
    """A :class:`~dmabuf_soc.hw.cache.core.CacheCore` with maintenance by range never loses
    a dirty line except by an invalidate covering it.

    One line, ``line``, free but constant in a run, is followed. The environment issues only
    cacheable accesses to it and starts maintenance operations by range only, with ``go``
    only while ``maint.busy`` is low (so each ``go`` is taken); a reset empties the cache, as
    designed. Once a store of the CPU to the line is answered, the line is owed to memory
    until its write-back burst starts (an AW at its address), or until an ``INVALIDATE``
    whose range covers it completes (the one way a dirty line may be dropped). Proven: the
    cache reads the line from memory (a refill) only when it is not owed, so it never drops
    it otherwise; and a ``CLEAN`` or ``CLEAN_INVALIDATE`` covering the line completes
    (``maint.done``) only once the line is no longer owed, written back. Covers: a clean by
    range writing the line back, an invalidate by range dropping it while dirty, a write-back
    by eviction.

    Parameters
    ----------
    core : CacheCore
    name : str
    """
    def __init__(self, core, *, name="maintained"):
        super().__init__(core, role="subordinate", name=name)
        self.offset = core.geometry.offset_bits
        self.line = self.free_constant(len(core.cpu.req.payload.addr) - self.offset, "line")

    def build(self, m):
        core = self.port
        req, bus, maint = core.cpu.req, core.bus, core.maint
        offset = self.offset
        ours = req.payload.addr[offset:] == self.line
        self.rule(m, "manager", "cacheable", req.payload.cacheable, when=req.valid & ours)
        self.rule(m, "manager", "by_range", maint.scope == MaintenanceScope.RANGE,
                  when=maint.go)
        self.rule(m, "manager", "go_when_idle", ~maint.busy, when=maint.go)

        line_start = Cat(Const(0, offset), self.line)
        line_end = line_start + (1 << offset)
        covers = (maint.start < line_end) & (maint.end > line_start) & (maint.end > maint.start)
        op = maint.op.as_value()
        invalidating = Signal()     # an INVALIDATE covering the line runs
        cleaning = Signal()         # a CLEAN or CLEAN_INVALIDATE covering the line runs
        with m.If(maint.go):
            m.d.sync += [invalidating.eq(covers & (op == MaintenanceOp.INVALIDATE)),
                         cleaning.eq(covers & op[0])]
        with m.Elif(maint.done):
            m.d.sync += [invalidating.eq(0), cleaning.eq(0)]

        owed, write_back = _owed_line(m, core.cpu, bus, self.line, offset,
                                      dropped=maint.done & invalidating)
        refill = bus.ar.valid & (bus.ar.payload.addr[offset:] == self.line)
        self.rule(m, "subordinate", "no_refill_over_dirty", ~owed, when=refill)
        self.rule(m, "subordinate", "clean_writes_back", ~(cleaning & owed), when=maint.done)
        self.cover(m, "clean_writes_back", write_back & owed & cleaning)
        self.cover(m, "invalidate_drops", maint.done & invalidating & owed)
        self.cover(m, "eviction_writes_back", write_back & owed & ~maint.busy)
