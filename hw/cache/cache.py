"""The data cache as the SoC instantiates it: :class:`~.core.CacheCore` behind its registers."""

import os

from amaranth.hdl import Cat, Module
from amaranth.lib import wiring
from amaranth.lib.wiring import Out

from ..regs.block import RegisterBlock
from ..regs.compile import compile_rdl
from .core import CacheCore
from .geometry import CacheGeometry, check_geometry

__all__ = ["RDL_PATH", "Cache"]

#: SystemRDL source of the cache's register block (addrmap ``cache``).
RDL_PATH = os.path.join(os.path.dirname(__file__), "cache.rdl")

#: Width of the START/END register pairs.
_REGISTER_ADDR_WIDTH = 40


class Cache(wiring.Component):
    """CPU data cache with its SystemRDL register block (``cache.rdl``).

    Parameters
    ----------
    geometry : CacheGeometry or None
        Size, ways, line size and widths (8 KiB, 4 ways, 64-byte lines, 40-bit addresses,
        64-bit data if ``None``). The address width must not exceed 40, the width of the
        START/END register pairs.
    id_width : int
        AXI ID width of the memory port.
    sid_width : int
        Width of the memory port's stream-ID sideband (the cache drives stream ID 0: CPU
        traffic does not pass through the SMMU).

    Members
    -------
    cpu : ``In(CpuPortSignature(addr_width, data_width))``
        Loads and stores from the CPU.
    bus : ``Out(AXI4Signature(addr_width, data_width, id_width))``
        Refills, write-backs and uncached accesses, towards the interconnect.
    regs : ``In(AXI4LiteSignature(...))``
        The register block's port, for the MMIO decoder.
    irq : ``Out(1)``
        Maintenance completion interrupt (``IRQ_STATUS.done`` and ``IRQ_ENABLE.done``).
    """
    def __init__(self, geometry=None, *, id_width=4, sid_width=0):
        if geometry is None:
            geometry = CacheGeometry()
        check_geometry(geometry)
        if geometry.addr_width > _REGISTER_ADDR_WIDTH:
            raise ValueError(f"Address width must not exceed the {_REGISTER_ADDR_WIDTH} bits "
                             f"of the START/END registers, not {geometry.addr_width!r}")
        self._core = CacheCore(geometry, id_width=id_width, sid_width=sid_width)
        self._block = RegisterBlock(compile_rdl(RDL_PATH))
        core_members = self._core.signature.members
        super().__init__({
            "cpu":  core_members["cpu"],
            "bus":  core_members["bus"],
            "regs": self._block.signature.members["bus"],
            "irq":  Out(1),
        })

    geometry = property(lambda self: self._core.geometry)
    #: The :class:`~.core.CacheCore` (its ``maint.busy`` is traced in simulation).
    core = property(lambda self: self._core)

    def elaborate(self, platform):
        m = Module()
        m.submodules.core = core = self._core
        m.submodules.regs = block = self._block
        g = core.geometry

        wiring.connect(m, wiring.flipped(self.cpu), core.cpu)
        wiring.connect(m, wiring.flipped(self.bus), core.bus)
        wiring.connect(m, wiring.flipped(self.regs), block.bus)

        f = block.f
        m.d.comb += [
            core.maint.op.eq(f.MAINT_CTRL.op.q),
            core.maint.scope.eq(f.MAINT_CTRL.scope.q),
            core.maint.start.eq(Cat(f.START_LO.addr.q, f.START_HI.addr.q)),
            core.maint.end.eq(Cat(f.END_LO.addr.q, f.END_HI.addr.q)),
            core.maint.set.eq(f.SETWAY.set.q),
            core.maint.way.eq(f.SETWAY.way.q),
            core.maint.go.eq(f.MAINT_GO.go.q),
            f.MAINT_STATUS.busy.d.eq(core.maint.busy),
            f.IRQ_STATUS.done.d.eq(core.maint.done),
            f.GEOMETRY.line_size_log2.d.eq(g.offset_bits),
            f.GEOMETRY.ways_log2.d.eq(g.way_bits),
            f.GEOMETRY.sets_log2.d.eq(g.index_bits),
            f.HITS.count.d.eq(core.counters.hits),
            f.MISSES.count.d.eq(core.counters.misses),
            f.WRITEBACKS.count.d.eq(core.counters.writebacks),
            f.LINES_CLEANED.count.d.eq(core.counters.lines_cleaned),
            f.LINES_INVALIDATED.count.d.eq(core.counters.lines_invalidated),
            self.irq.eq(block.irq),
        ]
        return m
