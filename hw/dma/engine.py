"""The data path of one DMA channel: descriptor walk, read and write bursts, completion."""

from amaranth.hdl import Cat, Const, Elaboratable, Module, Mux, ResetInserter, Signal
from amaranth.lib import data, fifo, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import exact_log2

from ..bus.axi import AXI4Signature, BOUNDARY, Burst, Resp, Size
from ..bus.skid import StreamSkid
from .descriptor import STATUS_OFFSET, ErrorCode, StatusLayout
from .fetch import DescriptorFetcher, TransferLayout
from .realign import RealignJobLayout, Realigner

__all__ = ["DMAEngine", "READ_ID_DATA", "READ_ID_DESC", "WRITE_ID_DATA", "WRITE_ID_STATUS"]

#: AXI IDs a channel uses: data and descriptor reads, data and status writes.
READ_ID_DATA, READ_ID_DESC = 0, 1
WRITE_ID_DATA, WRITE_ID_STATUS = 0, 1


class DMAEngine(wiring.Component):
    """A memory-to-memory DMA channel on plain control signals (no register block).

    Transfers come from register mode (``go`` with ``src``, ``dst``, ``length``) or from a
    descriptor chain (``cur_desc``, then ``tail_write``; see :class:`DescriptorFetcher`). Each is
    split into INCR bursts of at most ``max_burst_beats`` beats that never cross 4 KiB. Up to
    ``max_outstanding_reads`` read bursts are in flight; read data is realigned to the
    destination (:class:`Realigner`) into a buffer of ``buffer_depth`` beats, and a write burst
    is issued once all its data is buffered, so reads and writes overlap and the write channel
    is never held waiting. Each burst's length is worked out in registered steps after the
    previous burst issues, so each direction issues at most one data burst every fourth
    cycle. A descriptor's status is written back after the last write response of its data;
    ``done`` pulses after that write's response (or, in register mode, after the last data
    write response).

    On an error the channel halts: it issues no further bursts or descriptor reads, answers the
    bursts still in flight (write beats of bursts already issued go out with strobes cleared)
    and reports ``err_code``, ``err_resp`` and ``err_desc``. Descriptor faults (fetch error,
    zero length, stale descriptor) are reported once the transfers before them have completed.
    ``soft_reset`` halts the channel, waits for the bus to fall quiet and resets it.

    Parameters
    ----------
    addr_width, data_width, id_width, sid_width : int
        Of the AXI4 manager port (``id_width`` at least 1; ``data_width`` at least 64).
    stream_id : int
        Driven on ``sid`` of every AR and AW.
    max_burst_beats : int
        Longest burst, 1 to 256 beats.
    max_outstanding_reads, max_outstanding_writes : int
        Data bursts in flight per direction.
    buffer_depth : int
        Beats of the realigned data buffer; at least ``2 * max_burst_beats + 1``.
    queue_depth : int
        Transfers accepted ahead of the one being completed.

    Members
    -------
    bus : ``Out(AXI4Signature(...))``
    go : ``In(1)``
        Register mode: start a transfer of ``length`` bytes from ``src`` to ``dst``; ignored
        while busy.
    src, dst : ``In(addr_width)``
    length : ``In(32)``
    cur_desc, tail_desc : ``In(addr_width)``
    cur_desc_write, tail_write : ``In(1)``
    cyclic : ``In(1)``
    soft_reset : ``In(1)``
    clear_counters : ``In(1)``
    busy : ``Out(1)``
        Transfers pending or in flight, or a chain being walked (and not halted).
    halted : ``Out(1)``
        Stopped by an error, until reset: set in the cycle after the error, with ``err_code``,
        ``err_resp`` and ``err_desc``.
    resetting : ``Out(1)``
        A soft reset is waiting for the bus to fall quiet.
    quiet : ``Out(1)``
        No transaction outstanding on ``bus`` and none due (such as a fault write-back).
    error : ``Out(1)``
        Pulses when the channel halts on an error.
    err_code : ``Out(ErrorCode)``
    err_resp : ``Out(Resp)``
    err_desc : ``Out(addr_width)``
        The faulting descriptor (0 in register mode).
    done : ``Out(1)``
        Pulses when a transfer completes.
    done_irq : ``Out(1)``
        Pulses when a transfer that asks for an interrupt completes (always in register mode).
    completed : ``Out(32)``
        Transfers completed since reset.
    job_bytes : ``Out(32)``
        Bytes acknowledged so far of the transfer being written.
    bytes_moved, busy_cycles, stall_cycles : ``Out(32)``
        Counters (bytes acknowledged by write responses; cycles busy; busy cycles with data
        moving on neither R nor W while waiting on memory); kept across soft resets, cleared by
        ``clear_counters``.

    Attributes
    ----------
    buffer_overrun : Signal
        Not a port, for simulation checks: high in a cycle when the realigner writes a beat
        the data buffer has no room for. The read credits rule that out;
        :class:`~dmabuf_soc.hw.dma.sim.EngineHarness` fails a run in which it is ever high.
    queue_overrun : Signal
        Not a port, for simulation checks: high in a cycle when a transfer is dispatched to a
        transfer queue that has no room for it. Counting the transfers in flight rules that
        out; :class:`~dmabuf_soc.hw.dma.sim.EngineHarness` fails a run in which it is high.
    """
    def __init__(self, *, addr_width=40, data_width=64, id_width=4, sid_width=8, stream_id=0,
                 max_burst_beats=16, max_outstanding_reads=4, max_outstanding_writes=4,
                 buffer_depth=128, queue_depth=4):
        if data_width not in (64, 128, 256, 512):
            raise ValueError(f"Data width must be 64, 128, 256 or 512, not {data_width!r}")
        if not isinstance(id_width, int) or id_width < 1:
            raise ValueError(f"ID width must be at least 1, not {id_width!r}")
        if not isinstance(stream_id, int) or not 0 <= stream_id < 1 << sid_width:
            raise ValueError(f"Stream ID must fit in {sid_width} bits, not {stream_id!r}")
        max_beats_4k = BOUNDARY // (data_width // 8)
        if (not isinstance(max_burst_beats, int) or
                not 1 <= max_burst_beats <= min(256, max_beats_4k)):
            raise ValueError(f"Maximum burst must be from 1 to {min(256, max_beats_4k)} beats, "
                             f"not {max_burst_beats!r}")
        for name, value in (("max_outstanding_reads", max_outstanding_reads),
                            ("max_outstanding_writes", max_outstanding_writes),
                            ("queue_depth", queue_depth)):
            if not isinstance(value, int) or not 1 <= value <= 64:
                raise ValueError(f"{name} must be from 1 to 64, not {value!r}")
        if not isinstance(buffer_depth, int) or buffer_depth < 2 * max_burst_beats + 1:
            raise ValueError(f"Buffer depth must be at least {2 * max_burst_beats + 1} beats "
                             f"(twice the longest burst, plus one), not {buffer_depth!r}")
        self.bus_signature = AXI4Signature(addr_width=addr_width, data_width=data_width,
                                           id_width=id_width, sid_width=sid_width)
        self.stream_id = stream_id
        self.max_burst_beats = max_burst_beats
        self.max_outstanding_reads = max_outstanding_reads
        self.max_outstanding_writes = max_outstanding_writes
        self.buffer_depth = buffer_depth
        self.queue_depth = queue_depth
        super().__init__({
            "bus": Out(self.bus_signature),
            "go": In(1),
            "src": In(addr_width),
            "dst": In(addr_width),
            "length": In(32),
            "cur_desc": In(addr_width),
            "cur_desc_write": In(1),
            "tail_desc": In(addr_width),
            "tail_write": In(1),
            "cyclic": In(1),
            "soft_reset": In(1),
            "clear_counters": In(1),
            "busy": Out(1),
            "halted": Out(1),
            "resetting": Out(1),
            "quiet": Out(1),
            "error": Out(1),
            "err_code": Out(ErrorCode),
            "err_resp": Out(Resp),
            "err_desc": Out(addr_width),
            "done": Out(1),
            "done_irq": Out(1),
            "completed": Out(32),
            "job_bytes": Out(32),
            "bytes_moved": Out(32),
            "busy_cycles": Out(32),
            "stall_cycles": Out(32),
        })
        self.buffer_overrun = Signal()
        self.queue_overrun = Signal()

    def elaborate(self, platform):
        m = Module()
        pipeline = _Pipeline(self)
        core_reset = Signal()
        m.submodules.pipeline = ResetInserter(core_reset)(pipeline)
        m.d.comb += self.quiet.eq(pipeline.quiescent)

        # The reset comes from a register: it reaches every flip-flop of the pipeline. Nothing
        # moves in between, the pipeline being quiescent and stopped while `resetting`.
        with m.If(self.soft_reset):
            m.d.sync += self.resetting.eq(1)
        m.d.sync += core_reset.eq(self.resetting & pipeline.quiescent & ~core_reset)
        with m.If(core_reset):
            m.d.sync += self.resetting.eq(0)

        with m.If(self.clear_counters):
            m.d.sync += [
                self.bytes_moved.eq(0),
                self.busy_cycles.eq(0),
                self.stall_cycles.eq(0),
            ]
        with m.Else():
            m.d.sync += [
                self.bytes_moved.eq(self.bytes_moved + pipeline.acked_bytes),
                self.busy_cycles.eq(self.busy_cycles + self.busy),
                self.stall_cycles.eq(self.stall_cycles + pipeline.stalled),
            ]
        return m


class _BurstCursor:
    """Walks the beats of one transfer side burst by burst: ``n`` beats next (at most
    ``max_beats``, never crossing 4 KiB) from ``addr``.

    ``n``, ``last`` and ``n_first`` (``n + first``) are registers, worked out in two cycles
    after :meth:`start` or :meth:`advance` moved the cursor (compares, then the choice);
    ``ready`` says they are up to date. So the wide compares of the beats left stay off the
    paths that issue the burst. With ``count_bytes``, ``bytes`` is a register too: the bytes
    of the transfer in the next burst (the first and last bursts may be partial).
    """
    def __init__(self, m, name, *, addr_width, log_bpb, max_beats, count_bytes=False):
        self.active = Signal(name=f"{name}_active")
        self.ready = Signal(name=f"{name}_ready")
        self.addr = Signal(addr_width, name=f"{name}_addr")
        self.left = Signal(30, name=f"{name}_left")
        self.first = Signal(name=f"{name}_first")
        self.n = Signal(range(max_beats + 1), name=f"{name}_n")
        self.n_first = Signal(range(max_beats + 2), name=f"{name}_n_first")
        self.last = Signal(name=f"{name}_last")
        self._compared = Signal(name=f"{name}_compared")
        self._log_bpb = log_bpb
        self._count_bytes = count_bytes
        # Burst byte counts fit in their own width: they are worked out modulo its power of 2.
        self.bytes = Signal(range(max_beats * (1 << log_bpb) + 1), name=f"{name}_bytes")
        bytes_bits = len(self.bytes)
        self._head = Signal(log_bpb, name=f"{name}_head")           # start's offset in a beat
        self._end_low = Signal(bytes_bits, name=f"{name}_end_low")  # low bits of the end

        # First cycle: the beats to the 4 KiB boundary (at most BOUNDARY >> log_bpb) and three
        # compares side by side.
        log_page_beats = exact_log2(BOUNDARY) - log_bpb
        page_beats = 1 << log_page_beats
        page_beat = self.addr[log_bpb:exact_log2(BOUNDARY)]
        left_low = self.left[:log_page_beats + 1]
        to_boundary = Signal(log_page_beats + 1, name=f"{name}_to_boundary")
        boundary_first = Signal(name=f"{name}_boundary_first")   # to_boundary <= max_beats
        fits = Signal(name=f"{name}_fits")      # the beats left go in one burst
        with m.If(self.active & ~self._compared):
            m.d.sync += [
                self._compared.eq(1),
                to_boundary.eq(page_beats - page_beat),
                boundary_first.eq(page_beat >= page_beats - max_beats),
                fits.eq((self.left[log_page_beats + 1:] == 0) & (left_low <= max_beats) &
                        (left_low + page_beat <= page_beats)),
            ]

        # Second cycle: the choice.
        next_n = Signal.like(self.n, name=f"{name}_next_n")
        with m.If(fits):
            m.d.comb += next_n.eq(left_low)
        with m.Elif(boundary_first):
            m.d.comb += next_n.eq(to_boundary)
        with m.Else():
            m.d.comb += next_n.eq(max_beats)
        # What `n` holds in the next cycle.
        self.n_next = Signal.like(self.n, name=f"{name}_n_next")
        m.d.comb += self.n_next.eq(Mux(self._compared & ~self.ready, next_n, self.n))
        with m.If(self._compared & ~self.ready):
            m.d.sync += [
                self.ready.eq(1),
                self.n.eq(next_n),
                self.n_first.eq(next_n + self.first),
                self.last.eq(fits),
            ]
            if count_bytes:
                # A burst's bytes: from its start (``addr``, or the transfer's start in the
                # first burst) to its end (``n`` beats on, or the transfer's end in the last).
                head = Mux(self.first, self._head, 0)
                m.d.sync += self.bytes.eq(Mux(
                    fits,
                    self._end_low - Cat(head, self.addr[log_bpb:bytes_bits]),
                    (next_n << log_bpb) - head))

    @staticmethod
    def beats_of(addr, length, log_bpb):
        """The beats that a transfer of ``length`` bytes at byte address ``addr`` touches, as
        :meth:`start` takes them. It is worked out before the transfer queues, so that its
        carry chain stays off the cursor's start."""
        return (length + (addr[:log_bpb] + ((1 << log_bpb) - 1))) >> log_bpb

    def start(self, m, addr, beats, length=None):
        """Take a transfer at byte address ``addr`` that touches ``beats`` beats
        (:meth:`beats_of`); ``length``, its bytes, is needed with ``count_bytes`` only."""
        m.d.sync += [
            self.active.eq(1),
            self.ready.eq(0),
            self.addr.eq(Cat(Const(0, self._log_bpb), addr[self._log_bpb:])),
            self.left.eq(beats),
            self.first.eq(1),
            self._compared.eq(0),
        ]
        if self._count_bytes:
            bits = len(self._end_low)
            m.d.sync += [self._head.eq(addr[:self._log_bpb]),
                         self._end_low.eq(addr[:bits] + length[:bits])]

    def advance(self, m):
        """The next burst has been issued."""
        m.d.sync += [
            self.addr.eq(self.addr + (self.n << self._log_bpb)),
            self.left.eq(self.left - self.n),
            self.first.eq(0),
            self.active.eq(~self.last),
            self.ready.eq(0),
            self._compared.eq(0),
        ]


def _nonzero(m, name, count, up, down):
    """A register that is ``count != 0`` in every cycle, for a ``count`` register that goes up
    with ``up`` and down with ``down`` each cycle: the compare of the count stays off the
    paths that use it."""
    flag = Signal(name=name)
    with m.If(up & ~down):
        m.d.sync += flag.eq(1)
    with m.Elif(down & ~up & (count == 1)):
        m.d.sync += flag.eq(0)
    return flag


class _FifoOf:
    """A :class:`SyncFIFOBuffered` of ``layout`` records, with views on both ends."""
    def __init__(self, m, name, layout, depth):
        self.fifo = fifo.SyncFIFOBuffered(width=data.Layout.cast(layout).size, depth=depth)
        m.submodules[name] = self.fifo
        self.w_data = data.View(layout, self.fifo.w_data)
        self.r_data = data.View(layout, self.fifo.r_data)

    def __getattr__(self, name):
        return getattr(self.fifo, name)


class _Pipeline(Elaboratable):
    """The resettable part of :class:`DMAEngine`; drives the engine's ports."""

    def __init__(self, engine):
        self.engine = engine
        self.quiescent = Signal()
        self.acked_bytes = Signal(32)
        self.stalled = Signal()

    def elaborate(self, platform):
        m = Module()
        e = self.engine
        bus = e.bus
        sig = e.bus_signature
        aw_bits = sig.addr_width
        bpb = sig.bytes_per_beat
        log_bpb = exact_log2(bpb)
        max_beats = e.max_burst_beats

        m.submodules.fetcher = fetcher = DescriptorFetcher(addr_width=aw_bits,
                                                           data_width=sig.data_width)
        m.submodules.realigner = realigner = Realigner(data_width=sig.data_width,
                                                       addr_width=aw_bits)

        halt = Signal()
        # Issue nothing new: halted, or a soft reset waiting. `halt | e.resetting` as a register
        # of its own, set with either of them (an error, a soft reset) and cleared with both
        # by the core reset, so that the issue paths start at one register.
        stop = Signal()
        error = Signal()
        m.d.sync += stop.eq(halt | error | e.resetting | e.soft_reset)

        # ---- Transfer queues: every stage of the data path sees the transfers in order ----
        # Each queue holds some of the transfers dispatched and not completed (`queued`; all
        # of them in `done_q`, with the last one completed for a cycle more), since a
        # transfer is taken by every stage before it completes. One entry deeper than
        # `queue_depth`, none is full while `queued < queue_depth` (a buffered FIFO's inner
        # memory holds one entry fewer than its depth), and the dispatch waits on that
        # compare, a register, rather than on four queues' levels.
        q_depth = e.queue_depth + 1
        read_q = _FifoOf(m, "read_q", data.StructLayout({
            "src": aw_bits, "beats": 30}), q_depth)
        align_q = _FifoOf(m, "align_q", RealignJobLayout(bytes_per_beat=bpb,
                                                         addr_width=aw_bits), q_depth)
        write_q = _FifoOf(m, "write_q", data.StructLayout({
            "dst": aw_bits, "length": 32, "beats": 30, "desc": aw_bits}), q_depth)
        done_q = _FifoOf(m, "done_q", TransferLayout(addr_width=aw_bits), q_depth)
        queues = (read_q, align_q, write_q, done_q)

        # Register mode: `go` latches one transfer, handed over ahead of the descriptor walk.
        reg_pending = Signal()
        reg_transfer = Signal(TransferLayout(addr_width=aw_bits))
        zero_length_go = Signal()
        m.d.sync += zero_length_go.eq(0)
        # `reg_transfer` only counts while `reg_pending`, and `go` is ignored then (busy or
        # halted): it follows the inputs until then, so its enable waits on nothing else.
        with m.If(~reg_pending):
            m.d.sync += [
                reg_transfer.src.eq(e.src),
                reg_transfer.dst.eq(e.dst),
                reg_transfer.length.eq(e.length),
                reg_transfer.desc.eq(0),
                reg_transfer.irq.eq(1),
                reg_transfer.sg.eq(0),
            ]
        with m.If(e.go & ~e.busy & ~stop):
            with m.If(e.length == 0):
                m.d.sync += zero_length_go.eq(1)    # reported in the next cycle
            with m.Else():
                m.d.sync += reg_pending.eq(1)

        m.d.comb += [
            fetcher.cur_desc.eq(e.cur_desc),
            fetcher.cur_desc_write.eq(e.cur_desc_write),
            fetcher.tail_desc.eq(e.tail_desc),
            fetcher.tail_write.eq(e.tail_write),
            fetcher.cyclic.eq(e.cyclic),
            fetcher.halt.eq(stop),
        ]

        queue_room = Signal(init=1)     # `queued < e.queue_depth`, a register
        queues_ready = Signal()
        m.d.comb += queues_ready.eq(queue_room & ~stop)
        transfer = Signal(TransferLayout(addr_width=aw_bits))
        dispatch = Signal()
        with m.If(reg_pending):
            m.d.comb += [
                transfer.eq(reg_transfer),
                dispatch.eq(queues_ready),
            ]
            with m.If(queues_ready):
                m.d.sync += reg_pending.eq(0)
        with m.Else():
            m.d.comb += [
                transfer.eq(fetcher.transfers.payload),
                fetcher.transfers.ready.eq(queues_ready),
                dispatch.eq(fetcher.transfers.valid & queues_ready),
            ]
        m.d.comb += [
            read_q.w_data.src.eq(transfer.src),
            read_q.w_data.beats.eq(_BurstCursor.beats_of(transfer.src, transfer.length, log_bpb)),
            align_q.w_data.src_offset.eq(transfer.src[:log_bpb]),
            align_q.w_data.dst_offset.eq(transfer.dst[:log_bpb]),
            align_q.w_data.length.eq(transfer.length),
            align_q.w_data.desc.eq(transfer.desc),
            write_q.w_data.dst.eq(transfer.dst),
            write_q.w_data.length.eq(transfer.length),
            write_q.w_data.beats.eq(_BurstCursor.beats_of(transfer.dst, transfer.length, log_bpb)),
            write_q.w_data.desc.eq(transfer.desc),
            done_q.w_data.eq(transfer),
        ]
        for queue in queues:
            m.d.comb += queue.w_en.eq(dispatch)
        # Simulation check (see `DMAEngine.queue_overrun`): a transfer a queue has no room for.
        m.d.comb += e.queue_overrun.eq(dispatch & ~Cat(queue.w_rdy for queue in queues).all())
        # Transfers dispatched and not completed, and whether there are any, as registers, so
        # that `busy` and the error checks do not wait on the queues' levels. A completed
        # transfer leaves `done_q` a cycle later (below), in its spare entry's place.
        queued = Signal(range(e.queue_depth + 1))
        queue_in = Signal()
        queue_out = Signal()        # a transfer completes (`transfer_done`, below)
        m.d.comb += queue_in.eq(dispatch)
        queued_next = queued + queue_in - queue_out
        m.d.sync += [queued.eq(queued_next), queue_room.eq(queued_next < e.queue_depth)]
        queued_any = _nonzero(m, "queued_any", queued, queue_in, queue_out)

        # ---- Realigned data buffer, with read credits ----
        rd = _BurstCursor(m, "rd", addr_width=aw_bits, log_bpb=log_bpb, max_beats=max_beats)
        m.submodules.buffer = buffer = fifo.SyncFIFOBuffered(width=sig.data_width + bpb,
                                                             depth=e.buffer_depth)
        # The credits are the buffer beats neither occupied nor reserved for reads in flight:
        # `buffer_depth - level - reserved`. A read burst of `n` beats reserves `n` beats, plus
        # one for a flush beat in the transfer's first burst (`rd.n_first`); an accepted read
        # beat releases one and the transfer's end the spare one. Every beat the realigner
        # writes was reserved, so the buffer always has room for it: the realigner is never
        # held by the buffer.
        #
        # No handshake reaches the credits through adders: the handshakes of a cycle are
        # registered (`adjust`, `reserved_last`) and the credits of the next cycle are
        # `prev_credits` (the previous cycle's, a register) with them added, so every carry
        # chain here starts and ends at registers.
        reserve = Signal()              # a data read burst issued: reserve its beats
        data_beat = Signal()            # a data read beat accepted
        # Beats are released a cycle late, which only understates the credits.
        release = Signal(2)
        m.d.sync += release.eq(data_beat + realigner.job_done)
        buffer_write = Signal()
        buffer_read = Signal()
        m.d.comb += [
            buffer_write.eq(buffer.w_en),       # never refused (above)
            buffer_read.eq(buffer.r_en & buffer.r_rdy),
        ]
        prev_credits = Signal(range(e.buffer_depth + 1), init=e.buffer_depth)
        adjust = Signal(range(-1, 4))   # the last cycle's releases and buffer reads and writes
        reserved_last = Signal()        # the last cycle reserved `rd.n_first` beats
        m.d.sync += [
            adjust.eq(release + buffer_read - buffer_write),
            reserved_last.eq(reserve),
        ]
        # Without the last cycle's reservation: `rd.ready` is low in the cycle after one, when
        # the credits do not count. `rd.n_first` still holds the reserved beats then.
        unreserved = Signal.like(prev_credits)
        credits = Signal.like(prev_credits)
        m.d.comb += [
            unreserved.eq(prev_credits + adjust),
            credits.eq(Mux(reserved_last, unreserved - rd.n_first, unreserved)),
        ]
        m.d.sync += prev_credits.eq(credits)

        # Simulation check (see `DMAEngine.buffer_overrun`): a beat the buffer has no room for.
        m.d.comb += e.buffer_overrun.eq(buffer.w_en & ~buffer.w_rdy)

        # ---- Read burst issue ----
        rd_outstanding = Signal(range(e.max_outstanding_reads + 1))
        with m.If(~rd.active & read_q.r_rdy):
            m.d.comb += read_q.r_en.eq(1)
            rd.start(m, read_q.r_data.src, read_q.r_data.beats)
        # Whether the buffer had room for the burst in the previous cycle, with a beat to spare
        # for the one a flush may have added since; `rd.n_first` holds still while `rd.ready`
        # is, and a reservation drops `rd.ready`, so the registered compare is never late.
        credit_ok = Signal()
        m.d.sync += credit_ok.eq(rd.ready & (unreserved > rd.n_first))
        rd_want = Signal()
        m.d.comb += rd_want.eq(rd.ready & credit_ok & ~stop &
                               (rd_outstanding < e.max_outstanding_reads))

        # AR: one request register; descriptor reads go first.
        ar_load_desc = Signal()
        ar_load_data = Signal()
        with m.If(~bus.ar.valid | bus.ar.ready):
            m.d.sync += [
                bus.ar.payload.size.eq(Size.from_bytes(bpb)),
                bus.ar.payload.burst.eq(Burst.INCR),
                bus.ar.payload.sid.eq(e.stream_id),
            ]
            with m.If(fetcher.ar.valid):
                m.d.comb += [
                    ar_load_desc.eq(1),
                    fetcher.ar.ready.eq(1),
                ]
                m.d.sync += [
                    bus.ar.valid.eq(1),
                    bus.ar.payload.id.eq(READ_ID_DESC),
                    bus.ar.payload.addr.eq(fetcher.ar.payload.addr),
                    bus.ar.payload.len.eq(fetcher.ar.payload.len),
                ]
            with m.Elif(rd_want):
                m.d.comb += [
                    ar_load_data.eq(1),
                    reserve.eq(1),
                ]
                m.d.sync += [
                    bus.ar.valid.eq(1),
                    bus.ar.payload.id.eq(READ_ID_DATA),
                    bus.ar.payload.addr.eq(rd.addr),
                    bus.ar.payload.len.eq(rd.n - 1),
                ]
                rd.advance(m)
            with m.Else():
                m.d.sync += bus.ar.valid.eq(0)

        # ---- R: descriptor beats to the fetcher, data beats through the realigner ----
        # Which of them takes a beat depends on its ID, and RREADY must not: the ID may be
        # undefined while RVALID is low. So RREADY is the skid register's, and a data beat the
        # realigner refuses (between transfers) waits there; the beats reach both as before.
        m.submodules.r_skid = r_skid = StreamSkid(bus.r.payload.shape())
        wiring.connect(m, wiring.flipped(bus.r), r_skid.upstream)
        r = r_skid.downstream
        r_is_desc = Signal()
        m.d.comb += [
            r_is_desc.eq(r.payload.id == READ_ID_DESC),
            fetcher.r.valid.eq(r.valid & r_is_desc),
            fetcher.r.payload.data.eq(r.payload.data),
            fetcher.r.payload.resp.eq(r.payload.resp),
            realigner.read.valid.eq(r.valid & ~r_is_desc),
            realigner.read.payload.data.eq(r.payload.data),
            realigner.read.payload.resp.eq(r.payload.resp),
            r.ready.eq(Mux(r_is_desc, fetcher.r.ready, realigner.read.ready)),
            data_beat.eq(realigner.read.valid & realigner.read.ready),
        ]
        m.d.sync += rd_outstanding.eq(rd_outstanding + ar_load_data -
                                      (data_beat & r.payload.last))

        m.d.comb += [
            realigner.jobs.valid.eq(align_q.r_rdy),
            realigner.jobs.payload.eq(align_q.r_data),
            align_q.r_en.eq(realigner.jobs.ready),
            buffer.w_data.eq(Cat(realigner.write.payload.data, realigner.write.payload.strb)),
            buffer.w_en.eq(realigner.write.valid),
            realigner.write.ready.eq(1),   # room reserved by the read credits
        ]

        # ---- Write burst issue: only when the whole burst's data is buffered ----
        wr = _BurstCursor(m, "wr", addr_width=aw_bits, log_bpb=log_bpb, max_beats=max_beats,
                          count_bytes=True)
        unclaimed = Signal(range(e.buffer_depth + 1))   # buffered beats no AW has claimed yet
        claim = Signal()                # a data write burst issued: its beats are claimed
        # Beats count as buffered a cycle after they are, keeping the buffer's handshake off
        # the sum.
        buffer_written = Signal()
        m.d.sync += buffer_written.eq(buffer_write)
        buffered = Signal.like(unclaimed)
        m.d.comb += buffered.eq(unclaimed + buffer_written)
        with m.If(claim):
            m.d.sync += unclaimed.eq(buffered - wr.n)
        with m.Else():
            m.d.sync += unclaimed.eq(buffered)
        # `unclaimed >= wr.n`, as a register: worked out from what both hold in the next cycle
        # when no burst is claimed. A claim drops `wr.ready`, which the compare only matters
        # with, until `wr.n` is worked out anew.
        enough = Signal()
        m.d.sync += enough.eq(buffered >= wr.n_next)

        burst_layout = data.StructLayout({"beats": range(max_beats + 1), "status": 1})
        w_bursts = _FifoOf(m, "w_bursts", burst_layout, e.max_outstanding_writes + 1)
        ack_layout = data.StructLayout({"last": 1, "bytes": range(max_beats * bpb + 1),
                                        "desc": aw_bits})
        b_track = _FifoOf(m, "b_track", ack_layout, e.max_outstanding_writes)

        wr_desc = Signal(aw_bits)
        with m.If(~wr.active & write_q.r_rdy):
            m.d.comb += write_q.r_en.eq(1)
            wr.start(m, write_q.r_data.dst, write_q.r_data.beats, write_q.r_data.length)
            m.d.sync += wr_desc.eq(write_q.r_data.desc)
        wr_want = Signal()
        m.d.comb += wr_want.eq(wr.ready & ~stop & enough & b_track.w_rdy &
                               w_bursts.w_rdy)

        # Completion side: status write-back requests.
        status_want = Signal()
        status_taken = Signal()
        status_addr = Signal(aw_bits)   # where the status write-back goes, a register

        # What a write burst queues does not depend on whether it is issued: only the
        # enables do, so the issue conditions stay off the queues' data inputs.
        m.d.comb += [
            w_bursts.w_data.beats.eq(Mux(status_want, 1, wr.n)),
            w_bursts.w_data.status.eq(status_want),
            b_track.w_data.last.eq(wr.last),
            b_track.w_data.bytes.eq(wr.bytes),
            b_track.w_data.desc.eq(wr_desc),
        ]
        with m.If(~bus.aw.valid | bus.aw.ready):
            m.d.sync += [
                bus.aw.payload.size.eq(Size.from_bytes(bpb)),
                bus.aw.payload.burst.eq(Burst.INCR),
                bus.aw.payload.sid.eq(e.stream_id),
            ]
            with m.If(status_want & w_bursts.w_rdy):
                m.d.comb += [
                    status_taken.eq(1),
                    w_bursts.w_en.eq(1),
                ]
                m.d.sync += [
                    bus.aw.valid.eq(1),
                    bus.aw.payload.id.eq(WRITE_ID_STATUS),
                    bus.aw.payload.addr.eq(status_addr),
                    bus.aw.payload.len.eq(0),
                ]
            with m.Elif(wr_want):
                m.d.comb += [
                    claim.eq(1),
                    w_bursts.w_en.eq(1),
                    b_track.w_en.eq(1),
                ]
                m.d.sync += [
                    bus.aw.valid.eq(1),
                    bus.aw.payload.id.eq(WRITE_ID_DATA),
                    bus.aw.payload.addr.eq(wr.addr),
                    bus.aw.payload.len.eq(wr.n - 1),
                ]
                wr.advance(m)
            with m.Else():
                m.d.sync += bus.aw.valid.eq(0)

        # ---- W: data beats from the buffer, or the status beat, in AW order ----
        status_lane = STATUS_OFFSET % bpb
        status_word = Signal(64)
        w_beat = Signal(range(max_beats))
        w_head = w_bursts.r_data
        squash = Signal()           # halted: data beats go out with no strobe
        with m.If(~bus.w.valid | bus.w.ready):
            m.d.sync += squash.eq(halt)
        with m.If(w_bursts.r_rdy & w_head.status):
            m.d.comb += [
                bus.w.valid.eq(1),
                bus.w.payload.data.eq(status_word << (8 * status_lane)),
                bus.w.payload.strb.eq(0xff << status_lane),
                bus.w.payload.last.eq(1),
                w_bursts.r_en.eq(bus.w.ready),
            ]
        with m.Elif(w_bursts.r_rdy):
            m.d.comb += [
                bus.w.valid.eq(buffer.r_rdy),
                bus.w.payload.data.eq(buffer.r_data[:sig.data_width]),
                bus.w.payload.strb.eq(Mux(squash, 0, buffer.r_data[sig.data_width:])),
                bus.w.payload.last.eq(w_beat == w_head.beats - 1),
            ]
            with m.If(bus.w.valid & bus.w.ready):
                m.d.comb += buffer.r_en.eq(1)
                with m.If(bus.w.payload.last):
                    m.d.comb += w_bursts.r_en.eq(1)
                    m.d.sync += w_beat.eq(0)
                with m.Else():
                    m.d.sync += w_beat.eq(w_beat + 1)

        # ---- B: data responses close bursts and transfers, status responses complete ----
        acked_transfers = Signal(range(e.queue_depth + 1))   # written, not yet completed
        transfer_acked = Signal()
        transfer_done = Signal()
        done_pop = Signal()
        b_data = Signal()
        b_status = Signal()
        b_error = Signal()
        # Every response is taken at once and registered, already decoded, before it is
        # looked at, so that what it decides (a transfer's completion, an error, the FIFOs'
        # reads) starts at registers beside the engine rather than at the far end of the bus:
        # a cycle per response.
        b_resp = Signal.like(bus.b.payload.resp)
        m.d.comb += bus.b.ready.eq(1)
        m.d.sync += [
            b_data.eq(bus.b.valid & (bus.b.payload.id == WRITE_ID_DATA)),
            b_status.eq(bus.b.valid & (bus.b.payload.id == WRITE_ID_STATUS)),
            b_error.eq(bus.b.payload.resp != Resp.OKAY),
            b_resp.eq(bus.b.payload.resp),
        ]
        with m.If(b_data):
            m.d.comb += [
                b_track.r_en.eq(1),
                self.acked_bytes.eq(b_track.r_data.bytes),
                transfer_acked.eq(b_track.r_data.last),
            ]
            with m.If(b_track.r_data.last):
                m.d.sync += e.job_bytes.eq(0)
            with m.Else():
                m.d.sync += e.job_bytes.eq(e.job_bytes + b_track.r_data.bytes)
        m.d.sync += acked_transfers.eq(acked_transfers + transfer_acked - transfer_done)
        acked_any = _nonzero(m, "acked_any", acked_transfers, transfer_acked, transfer_done)

        head = done_q.r_data
        fault_wb = Signal()         # the faulting descriptor's status is still to be written
        bus_quiet = Signal()
        status = data.View(StatusLayout(), status_word[:32])
        status_busy = Signal()      # between a status AW and its B
        # The completion states, one-hot (one register each), so that the decisions that wait
        # on them (completion, status requests) see one register rather than a state decode.
        # WAIT: for the head transfer to be written; STATUS_ADDR and STATUS_RESP: its status
        # write-back (descriptors); FAULT_ADDR and FAULT_RESP: after a halt on a descriptor the
        # bus could reach, the status write-back recording the fault.
        st_wait = Signal(init=1)
        st_status_addr = Signal()
        st_status_resp = Signal()
        st_fault_addr = Signal()
        st_fault_resp = Signal()

        def goto(leave, enter):
            m.d.sync += [leave.eq(0), enter.eq(1)]

        with m.If(st_fault_addr | st_fault_resp):
            m.d.comb += [
                status.error.eq(e.err_code),
                status.resp.eq(e.err_resp),
            ]
        with m.Else():
            m.d.comb += [
                status.completed.eq(1),
                status_word[32:].eq(head.length),
            ]
        # The status address is worked out a cycle ahead, so that the completion state and the
        # adder stay off the AW register's inputs. The head transfer stays while its status
        # waits, and the fault's record is set (with `fault_wb`) before FAULT_ADDR is entered;
        # `fault_wb` implies `stop`, so no descriptor's own status is requested meanwhile.
        m.d.sync += status_addr.eq(Mux(fault_wb, e.err_desc, head.desc) + STATUS_OFFSET)
        m.d.comb += [
            status_want.eq((st_status_addr & ~stop) | st_fault_addr),
            status_busy.eq(st_status_resp | st_fault_resp),
        ]

        with m.If(st_wait):
            with m.If(halt):
                with m.If(fault_wb & bus_quiet):
                    goto(st_wait, st_fault_addr)
            with m.Elif(done_q.r_rdy & ~done_pop & acked_any):
                with m.If(head.sg):
                    goto(st_wait, st_status_addr)
                with m.Else():
                    m.d.comb += transfer_done.eq(1)
        with m.If(st_status_addr):
            with m.If(status_taken):
                goto(st_status_addr, st_status_resp)
            with m.Elif(halt):
                goto(st_status_addr, st_wait)
        with m.If(st_status_resp & b_status):
            with m.If(~b_error):
                m.d.comb += transfer_done.eq(1)
            goto(st_status_resp, st_wait)
        with m.If(st_fault_addr & status_taken):
            goto(st_fault_addr, st_fault_resp)
        with m.If(st_fault_resp & b_status):
            m.d.sync += fault_wb.eq(0)
            goto(st_fault_resp, st_wait)
        # The completed transfer leaves `done_q` in the next cycle, from a register, so that the
        # queue's level and read pointer do not wait on the completion's decision; its entry,
        # still at the head meanwhile, is not looked at again (`~done_pop` above).
        m.d.sync += done_pop.eq(transfer_done)
        m.d.comb += [done_q.r_en.eq(done_pop), queue_out.eq(transfer_done)]
        with m.If(transfer_done):
            m.d.comb += [
                e.done.eq(1),
                e.done_irq.eq(head.irq | ~head.sg),
            ]
            m.d.sync += e.completed.eq(e.completed + 1)

        # ---- Errors: the first one halts the channel ----
        pipeline_empty = Signal()
        m.d.comb += pipeline_empty.eq(~queued_any & ~reg_pending)
        code = Signal(ErrorCode)
        resp = Signal(Resp)
        desc = Signal(aw_bits)
        # Whether the faulting descriptor's status is to be written back: a read, write or
        # zero-length fault of a descriptor (not register mode); worked out per source, from
        # registers, rather than from the chosen `desc`.
        writes_back = Signal()

        def write_back(code, desc):
            return (desc != 0) & ((code == ErrorCode.READ) | (code == ErrorCode.WRITE) |
                                  (code == ErrorCode.ZERO_LEN))

        # A read error, which comes from the R channel, has its record registered on its own
        # and chosen a cycle later, after that register, so that the R channel reaches no
        # further than the registers beside the realigner. It takes precedence over the rest.
        read_error = Signal()
        read_resp = Signal.like(resp)
        read_desc = Signal.like(desc)
        read_writes_back = Signal()
        m.d.sync += [
            read_error.eq(realigner.read_error),
            read_resp.eq(r.payload.resp),
            read_desc.eq(realigner.desc),
            read_writes_back.eq(realigner.desc != 0),
        ]
        # The other sources' record is worked out as if there were no read error, so that the
        # R channel reaches none of its registers: the read error's is chosen after them.
        m.d.comb += error.eq(realigner.read_error)
        with m.If(b_data & b_error):
            m.d.comb += [error.eq(1), code.eq(ErrorCode.WRITE),
                         resp.eq(b_resp), desc.eq(b_track.r_data.desc),
                         writes_back.eq(b_track.r_data.desc != 0)]
        with m.Elif(b_status & b_error):
            m.d.comb += [error.eq(1), code.eq(ErrorCode.STATUS_WB),
                         resp.eq(b_resp), desc.eq(head.desc)]
        with m.Elif(fetcher.fault & pipeline_empty):
            m.d.comb += [error.eq(1), code.eq(fetcher.fault_code),
                         resp.eq(fetcher.fault_resp), desc.eq(fetcher.fault_desc),
                         writes_back.eq(write_back(fetcher.fault_code, fetcher.fault_desc))]
        with m.Elif(zero_length_go):
            m.d.comb += [error.eq(1), code.eq(ErrorCode.ZERO_LEN), resp.eq(Resp.OKAY),
                         desc.eq(0)]
        # The first error stops the channel at once (`halt`). Its record is taken in that cycle
        # into registers that load every cycle, and kept a cycle later, when the channel
        # reports itself halted: the record's enables then start at a register, not at the
        # bus's responses, and software never sees `halted` without the record.
        first_error = Signal()
        first_code = Signal.like(code)
        first_resp = Signal.like(resp)
        first_desc = Signal.like(desc)
        first_writes_back = Signal()
        halted = Signal()
        m.d.sync += [
            first_error.eq(error & ~halt),
            first_code.eq(code),
            first_resp.eq(resp),
            first_desc.eq(desc),
            first_writes_back.eq(writes_back),
        ]
        with m.If(error):
            m.d.sync += halt.eq(1)
        with m.If(first_error):
            m.d.comb += e.error.eq(1)
            m.d.sync += [
                halted.eq(1),
                e.err_code.eq(Mux(read_error, ErrorCode.READ, first_code)),
                e.err_resp.eq(Mux(read_error, read_resp, first_resp)),
                e.err_desc.eq(Mux(read_error, read_desc, first_desc)),
                fault_wb.eq(Mux(read_error, read_writes_back, first_writes_back)),
            ]
        m.d.comb += e.halted.eq(halted)

        # ---- Activity ----
        m.d.comb += [
            e.busy.eq(~halted & (fetcher.active | queued_any | reg_pending)),
            bus_quiet.eq((rd_outstanding == 0) & ~fetcher.in_flight & ~b_track.r_rdy &
                         ~status_busy & ~bus.ar.valid & ~bus.aw.valid & ~w_bursts.r_rdy),
            self.quiescent.eq(bus_quiet & ~fault_wb),
        ]
        # A stalled cycle is counted a cycle late, from registers that keep each of its terms
        # apart, so that the R and W handshakes reach a register in one step. A cycle that
        # clears the counters is not counted.
        stall_busy = Signal()
        stall_moving = Signal()
        stall_waiting = Signal()
        m.d.sync += [
            stall_busy.eq(e.busy & ~e.clear_counters),
            stall_moving.eq((r.valid & r.ready) | (bus.w.valid & bus.w.ready)),
            stall_waiting.eq((rd_outstanding != 0) | fetcher.in_flight | b_track.r_rdy |
                             status_busy | bus.ar.valid | bus.aw.valid | bus.w.valid),
        ]
        m.d.comb += self.stalled.eq(stall_busy & ~stall_moving & stall_waiting)
        return m
