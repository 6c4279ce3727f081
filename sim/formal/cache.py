"""The cache's own property: no dirty line is lost."""

from amaranth.hdl import Signal
from amaranth.utils import exact_log2

from .properties import PropertySet

__all__ = ["DirtyLineProperties"]

#: Offset of the register whose write starts a maintenance operation (cache.rdl).
_MAINT_GO = 0x18


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

        # A store is in the cache once answered (write-allocate refills its line before).
        storing = Signal()
        owed = Signal()
        store = req.valid & req.ready & ours & req.payload.write & (req.payload.strb != 0)
        answered = cache.cpu.rsp.valid & cache.cpu.rsp.ready
        write_back = bus.aw.valid & bus.aw.ready & (bus.aw.payload.addr[offset:] == self.line)
        with m.If(store):
            m.d.sync += storing.eq(1)
        with m.Elif(answered):
            m.d.sync += storing.eq(0)
        with m.If(write_back):
            m.d.sync += owed.eq(0)
        with m.If(storing & answered):
            m.d.sync += owed.eq(1)
        refill = bus.ar.valid & (bus.ar.payload.addr[offset:] == self.line)
        self.rule(m, "subordinate", "no_refill_over_dirty", ~owed, when=refill)
        self.cover(m, "write_back", write_back & owed)
