"""The reset sweep: after a reset, every set's tags are written invalid, one set per cycle."""

from amaranth.hdl import Module, ResetSignal, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .geometry import check_geometry

__all__ = ["ResetSweep"]


class ResetSweep(wiring.Component):
    """The walk over every set that empties the cache after a reset.

    The tag memories are block RAM, which a reset does not clear: without the sweep, a cache
    reset in mid-run would keep its lines valid, serve hits from them and, its dirty bits
    (flip-flops) cleared, forget which held data never written back. A reset leaves a sweep
    owed (``pending``); the cache's control runs it before anything else (``run``), one set
    per cycle, writing every way's entry of set ``set`` invalid, and is busy until it ends.

    At power-up no sweep is owed: the tag memories start at their initial contents, which are
    invalid, in simulation and in an FPGA's configured block RAM alike, so that nothing from
    power-up waits for a sweep. ``pending`` is not itself reset, but set while ``rst`` is; it
    stays set through a reset of any length and comes up clear.

    Parameters
    ----------
    geometry : CacheGeometry

    Members
    -------
    run : ``In(1)``
        The control lets the sweep write the tag memories in this cycle.
    pending : ``Out(1)``
        A sweep is owed, or running: entries of sets from ``set`` on may be stale.
    set : ``Out(index_bits)``
        The set whose entries are written invalid in this cycle (while ``run`` and
        ``pending``).
    done : ``Out(1)``
        The sweep writes its last set in this cycle (while ``run``), or none is owed.
    """
    def __init__(self, geometry):
        self._geometry = g = check_geometry(geometry)
        super().__init__({
            "run":     In(1),
            "pending": Out(1),
            "set":     Out(g.index_bits),
            "done":    Out(1),
        })

    geometry = property(lambda self: self._geometry)

    def elaborate(self, platform):
        m = Module()
        g = self._geometry

        pending = Signal(reset_less=True)
        index   = Signal(g.index_bits)
        last    = index == g.sets - 1
        m.d.comb += [
            self.pending.eq(pending),
            self.set.eq(index),
            self.done.eq(~pending | last),
        ]
        with m.If(self.run & pending):
            m.d.sync += index.eq(index + 1)
            with m.If(last):
                m.d.sync += pending.eq(0)
        with m.If(ResetSignal("sync", allow_reset_less=True)):
            m.d.sync += pending.eq(1)

        return m
