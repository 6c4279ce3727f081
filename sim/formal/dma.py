"""The DMA engine's own properties, beside the AXI rules of its port."""

from amaranth.hdl import Array, Cat, Const, Mux, Signal

from ...hw.dma.descriptor import STATUS_OFFSET, ErrorCode
from ...hw.dma.reader import READ_ID_DESC
from ...hw.dma.writer import WRITE_ID_DATA, WRITE_ID_STATUS
from .properties import PropertySet

__all__ = ["DMATransferProperties", "DescriptorChainProperties"]


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


class DescriptorChainProperties(PropertySet):
    """A descriptor chain of a :class:`~dmabuf_soc.hw.dma.engine.DMAEngine`, of one or two
    descriptors in a small memory that the environment fills, symbolic but fixed in a run.

    The environment sets ``cur_desc`` to ``first`` and ``tail_desc`` to ``last`` (free,
    constant), writes the tail pointer once, and uses neither register mode, nor cyclic mode,
    nor the soft reset. The descriptor at ``first`` is ``(first_src, first_dst,
    first_length, first_irq, first_completed)`` and, unless ``first == last``, its ``next``
    is ``last``; the one at ``last`` is ``(last_next, last_src, ...)``: every descriptor read
    (ID ``READ_ID_DESC``) is answered, beat by beat, with the descriptor at its address (a
    response may be an error); data reads are answered freely. Lengths are 0 to
    ``max_length`` bytes (0 is a bad descriptor) and no range wraps the address space.
    Proven: every data write burst (ID ``WRITE_ID_DATA``) stays within the beats of the
    destination range of the descriptor being copied (``first`` until the first completion,
    then ``last``); every status write (ID ``WRITE_ID_STATUS``) is one beat at that
    descriptor's status word; ``done_irq`` pulses only while no write waits for its response,
    after the status write's response of the descriptor it completes. Covers: the first
    descriptor fetched and completed, the second descriptor fetched and completed, a bad
    descriptor (zero length or stale) reported, a descriptor fetch error reported.

    Parameters
    ----------
    engine : DMAEngine
    name : str
    max_length : int
        Longest transfer a descriptor asks for, in bytes.
    """
    def __init__(self, engine, *, name="chain", max_length=16):
        super().__init__(engine, role="manager", name=name)
        self.max_length = max_length
        width = len(engine.dst)
        self.first = self.free_constant(width, "first")
        self.last = self.free_constant(width, "last")
        self.fields = {}
        for which in ("first", "last"):
            self.fields[which] = {
                "next": self.last if which == "first" else self.free_constant(width,
                                                                              "last_next"),
                "src": self.free_constant(width, f"{which}_src"),
                "dst": self.free_constant(width, f"{which}_dst"),
                "length": self.free_constant(range(max_length + 1), f"{which}_length"),
                "irq": self.free_constant(1, f"{which}_irq"),
                "completed": self.free_constant(1, f"{which}_completed"),
            }

    def build(self, m):
        engine = self.port
        bus = engine.bus
        width = len(engine.dst)
        beat = engine.bus_signature.bytes_per_beat
        data_width = engine.bus_signature.data_width

        # ---- The environment: the chain started once, in descriptor mode only ----
        started = Signal()
        with m.If(engine.tail_write):
            m.d.sync += started.eq(1)
        self.rule(m, "subordinate", "pointers",
                  (engine.cur_desc == self.first) & (engine.tail_desc == self.last))
        self.rule(m, "subordinate", "tail_once", ~started, when=engine.tail_write)
        self.rule(m, "subordinate", "descriptor_mode",
                  ~engine.go & ~engine.cyclic & ~engine.soft_reset)
        for which, fields in self.fields.items():
            self.rule(m, "subordinate", f"{which}_no_wrap",
                      (fields["dst"] + fields["length"] <= (1 << width)) &
                      (fields["src"] + fields["length"] <= (1 << width)))

        # ---- The memory: each descriptor read answered with the descriptor at its address ----
        def beats(fields):
            raw = Cat(fields["next"].as_unsigned(), Const(0, 64 - width),
                      fields["src"], Const(0, 64 - width),
                      fields["dst"], Const(0, 64 - width),
                      fields["length"], Const(0, 32 - len(fields["length"])),
                      fields["irq"], Const(0, 31),
                      fields["completed"], Const(0, 63), Const(0, 192))
            return Array(raw[n * data_width:(n + 1) * data_width]
                         for n in range(len(raw) // data_width))

        read_addr = Signal(width)
        read_beat = Signal(range(512 // data_width))
        ar, r = bus.ar, bus.r
        with m.If(ar.valid & ar.ready & (ar.payload.id == READ_ID_DESC)):
            m.d.sync += [read_addr.eq(ar.payload.addr), read_beat.eq(0)]
        with m.If(r.valid & r.ready & (r.payload.id == READ_ID_DESC)):
            m.d.sync += read_beat.eq(read_beat + 1)
        first_beats, last_beats = beats(self.fields["first"]), beats(self.fields["last"])
        self.rule(m, "subordinate", "descriptor_data",
                  r.payload.data == Mux(read_addr == self.first, first_beats[read_beat],
                                        last_beats[read_beat]),
                  when=r.valid & (r.payload.id == READ_ID_DESC))
        self.rule(m, "subordinate", "descriptor_address",
                  (ar.payload.addr == self.first) | (ar.payload.addr == self.last),
                  when=ar.valid & (ar.payload.id == READ_ID_DESC))

        # ---- The descriptor being copied: the first until one completes, then the last ----
        completions = Signal(2)
        with m.If(engine.done & (completions != 3)):
            m.d.sync += completions.eq(completions + 1)
        second = completions != 0
        dst = Mux(second, self.fields["last"]["dst"], self.fields["first"]["dst"])
        length = Mux(second, self.fields["last"]["length"], self.fields["first"]["length"])
        desc = Mux(second, self.last, self.first)
        low = Signal(width + 1)
        high = Signal(width + 1)
        m.d.comb += [low.eq(dst & ~(beat - 1)),
                     high.eq((dst + length + beat - 1) & ~(beat - 1))]

        aw = bus.aw.payload
        end = aw.addr + ((aw.len + 1) << aw.size)
        self.rule(m, "manager", "write_in_range",
                  (completions < 2) & (aw.addr >= low) & (end <= high),
                  when=bus.aw.valid & (aw.id == WRITE_ID_DATA))
        self.rule(m, "manager", "status_write",
                  (completions < 2) & (aw.addr == desc + STATUS_OFFSET) & (aw.len == 0),
                  when=bus.aw.valid & (aw.id == WRITE_ID_STATUS))

        writes = Signal(4)
        status_answered = Signal()
        aw_hs = bus.aw.valid & bus.aw.ready
        b_hs = bus.b.valid & bus.b.ready
        m.d.sync += writes.eq(writes + aw_hs - b_hs)
        with m.If(b_hs & (bus.b.payload.id == WRITE_ID_STATUS)):
            m.d.sync += status_answered.eq(1)
        with m.If(engine.done):
            m.d.sync += status_answered.eq(0)
        self.rule(m, "manager", "irq_after_last_response", (writes == 0) & status_answered,
                  when=engine.done_irq)

        desc_ar = ar.valid & ar.ready & (ar.payload.id == READ_ID_DESC)
        self.cover(m, "first_done", engine.done_irq & ~second)
        self.cover(m, "second_fetched", desc_ar & (ar.payload.addr == self.last) &
                   (self.last != self.first))
        self.cover(m, "second_done", engine.done & second & (self.last != self.first))
        self.cover(m, "bad_descriptor", engine.halted &
                   ((engine.err_code == ErrorCode.ZERO_LEN) |
                    (engine.err_code == ErrorCode.STALE)))
        self.cover(m, "fetch_error", engine.halted & (engine.err_code == ErrorCode.DESC_FETCH))
