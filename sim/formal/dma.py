"""The DMA engine's own properties, beside the AXI rules of its port."""

from amaranth.hdl import Signal

from .properties import PropertySet

__all__ = ["DMATransferProperties"]


class DMATransferProperties(PropertySet):
    """A register-mode transfer of a :class:`~dmabuf_soc.hw.dma.engine.DMAEngine`.

    The environment (the register block, in the SoC) starts a transfer with ``go`` only
    while the channel is idle, of 1 to ``max_length`` bytes that do not wrap the address
    space, and never uses descriptor mode. Proven: no write burst reaches outside the beats
    that hold the destination range (``dst`` to ``dst + length``, rounded out to whole
    beats), and ``done_irq`` never pulses while a write of the transfer waits for its
    response, nor before any write response came.

    Parameters
    ----------
    engine : DMAEngine
    name : str
    max_length : int
        Longest transfer the environment starts, in bytes.
    """
    def __init__(self, engine, *, name="transfer", max_length=64):
        super().__init__(engine, role="manager", name=name)
        self.max_length = max_length

    def build(self, m):
        engine = self.port
        bus = engine.bus
        width = len(engine.dst)
        beat = engine.bus_signature.bytes_per_beat
        idle = ~engine.busy & ~engine.halted & ~engine.resetting
        start = engine.go & idle
        self.rule(m, "subordinate", "go_when_idle", idle, when=engine.go)
        self.rule(m, "subordinate", "length",
                  (engine.length != 0) & (engine.length <= self.max_length), when=engine.go)
        self.rule(m, "subordinate", "no_wrap",
                  (engine.dst + engine.length <= (1 << width)) &
                  (engine.src + engine.length <= (1 << width)), when=engine.go)
        self.rule(m, "subordinate", "register_mode",
                  ~engine.cur_desc_write & ~engine.tail_write & ~engine.cyclic)

        low = Signal(width + 1)
        high = Signal(width + 1)
        started = Signal()
        with m.If(start):
            m.d.sync += [low.eq(engine.dst & ~(beat - 1)),
                         high.eq((engine.dst + engine.length + beat - 1) & ~(beat - 1)),
                         started.eq(1)]
        aw = bus.aw.payload
        end = aw.addr + ((aw.len + 1) << aw.size)
        self.rule(m, "manager", "write_in_range", started & (aw.addr >= low) & (end <= high),
                  when=bus.aw.valid)

        writes = Signal(4)
        responded = Signal()
        aw_hs = bus.aw.valid & bus.aw.ready
        b_hs = bus.b.valid & bus.b.ready
        m.d.sync += writes.eq(writes + aw_hs - b_hs)
        with m.If(b_hs):
            m.d.sync += responded.eq(1)
        with m.If(start):
            m.d.sync += responded.eq(0)
        self.rule(m, "manager", "irq_after_last_response", (writes == 0) & responded,
                  when=engine.done_irq)
        self.cover(m, "done", engine.done_irq)
        self.cover(m, "split_at_4k", aw_hs & (end[:12] == 0) & (aw.len != 0))
        self.cover(m, "soft_reset_mid_burst", engine.soft_reset & (writes != 0))
