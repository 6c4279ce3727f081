"""One DMA channel's data path: the descriptor walk, the dispatch of transfers to the reader
(:mod:`.reader`) and the writer and completer (:mod:`.writer`), the errors and the soft reset."""

from amaranth.hdl import Elaboratable, Module, Mux, ResetInserter, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ..bus.axi import AXI4Signature, BOUNDARY, Resp
from ..parameters import check_integer
from .common import nonzero
from .descriptor import ErrorCode
from .fetch import DescriptorFetcher, TransferLayout
from .reader import DMAReader, READ_ID_DATA, READ_ID_DESC
from .writer import Completer, DMAWriter, WRITE_ID_DATA, WRITE_ID_STATUS

__all__ = ["DMAEngine", "READ_ID_DATA", "READ_ID_DESC", "WRITE_ID_DATA", "WRITE_ID_STATUS"]


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
    zero length, stale descriptor, misaligned descriptor pointer) are reported once the
    transfers before them have completed.
    ``soft_reset`` halts the channel, waits for the bus to fall quiet and resets it.

    The engine walks descriptors (:class:`DescriptorFetcher`) and dispatches the transfers to
    three components that take them in order: :class:`DMAReader` (AR and R, the realigned data
    buffer), :class:`DMAWriter` (AW, W and B) and :class:`Completer` (status write-backs and
    ``done``). It keeps the errors, the soft reset and the counters.

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
        :class:`~dmabuf_soc.sim.dma.harness.EngineHarness` fails a run in which it is ever high.
    queue_overrun : Signal
        Not a port, for simulation checks: high in a cycle when a transfer is dispatched to a
        transfer queue that has no room for it. Counting the transfers in flight rules that
        out; :class:`~dmabuf_soc.sim.dma.harness.EngineHarness` fails a run in which it is high.
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


class _Dispatcher(wiring.Component):
    """Hands the transfers of a DMA channel to its reader, writer and completer, one a cycle
    at most: register mode's (``go``) ahead of the descriptor walk's (``descriptors``), while
    fewer than ``queue_depth`` transfers are dispatched and not completed.

    Parameters
    ----------
    addr_width : int
    queue_depth : int

    Members
    -------
    go : ``In(1)``
        Register mode: latch a transfer of ``length`` bytes from ``src`` to ``dst``; ignored
        while ``busy`` or ``stop``.
    src, dst : ``In(addr_width)``
    length : ``In(32)``
    busy : ``In(1)``
    stop : ``In(1)``
        Dispatch nothing.
    descriptors : ``In(stream.Signature(TransferLayout))``
    done : ``In(1)``
        A transfer completes.
    push : ``Out(1)``
        Dispatch ``transfer``.
    transfer : ``Out(TransferLayout)``
    pending : ``Out(1)``
        Register mode's transfer waits.
    zero_length : ``Out(1)``
        ``go`` was given with ``length`` 0, in the cycle after.
    queued_any : ``Out(1)``
        Transfers are dispatched and not completed, a register.
    """
    def __init__(self, *, addr_width, queue_depth):
        check_integer("Queue depth", queue_depth, minimum=1, maximum=64)
        self._addr_width = addr_width
        self._queue_depth = queue_depth
        layout = TransferLayout(addr_width=addr_width)
        super().__init__({
            "go": In(1),
            "src": In(addr_width),
            "dst": In(addr_width),
            "length": In(32),
            "busy": In(1),
            "stop": In(1),
            "descriptors": In(stream.Signature(layout)),
            "done": In(1),
            "push": Out(1),
            "transfer": Out(layout),
            "pending": Out(1),
            "zero_length": Out(1),
            "queued_any": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        # Register mode: `go` latches one transfer, handed over ahead of the descriptor walk.
        # It only counts while `pending`, and `go` is ignored then (busy or halted): it follows
        # the inputs until then, so its enable waits on nothing else.
        reg_transfer = Signal(TransferLayout(addr_width=self._addr_width))
        m.d.sync += self.zero_length.eq(0)
        with m.If(~self.pending):
            m.d.sync += [
                reg_transfer.src.eq(self.src),
                reg_transfer.dst.eq(self.dst),
                reg_transfer.length.eq(self.length),
                reg_transfer.desc.eq(0),
                reg_transfer.irq.eq(1),
                reg_transfer.sg.eq(0),
            ]
        with m.If(self.go & ~self.busy & ~self.stop):
            with m.If(self.length == 0):
                m.d.sync += self.zero_length.eq(1)      # reported in the next cycle
            with m.Else():
                m.d.sync += self.pending.eq(1)

        # Every stage of the data path sees the transfers in order. The reader's, the writer's
        # and the completer's queues each hold some of the transfers dispatched and not
        # completed (`queued`; all of them in the completer's, with the last one completed for
        # a cycle more), since a transfer is taken by every stage before it completes. One
        # entry deeper than `queue_depth`, none is full while `queued < queue_depth`, and the
        # dispatch waits on that compare, a register, rather than on the queues' levels.
        queue_room = Signal(init=1)     # `queued < queue_depth`, a register
        queues_ready = Signal()
        m.d.comb += queues_ready.eq(queue_room & ~self.stop)
        with m.If(self.pending):
            m.d.comb += [
                self.transfer.eq(reg_transfer),
                self.push.eq(queues_ready),
            ]
            with m.If(queues_ready):
                m.d.sync += self.pending.eq(0)
        with m.Else():
            m.d.comb += [
                self.transfer.eq(self.descriptors.payload),
                self.descriptors.ready.eq(queues_ready),
                self.push.eq(self.descriptors.valid & queues_ready),
            ]
        # Transfers dispatched and not completed, and whether there are any, as registers, so
        # that `busy` and the error checks do not wait on the queues' levels. A completed
        # transfer leaves the completer's queue a cycle later, in its spare entry's place.
        queued = Signal(range(self._queue_depth + 1))
        queued_next = queued + self.push - self.done
        m.d.sync += [queued.eq(queued_next), queue_room.eq(queued_next < self._queue_depth)]
        m.d.comb += self.queued_any.eq(nonzero(m, "queued_any", queued, self.push, self.done))
        return m


class _Pipeline(Elaboratable):
    """The resettable part of :class:`DMAEngine`: its components, their wiring, and the errors.
    Drives the engine's ports."""

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

        m.submodules.fetcher = fetcher = DescriptorFetcher(addr_width=aw_bits,
                                                           data_width=sig.data_width,
                                                           queue_depth=e.queue_depth)
        sides = dict(bus_signature=sig, stream_id=e.stream_id, max_burst_beats=e.max_burst_beats,
                     buffer_depth=e.buffer_depth, queue_depth=e.queue_depth)
        m.submodules.reader = reader = DMAReader(
            max_outstanding_reads=e.max_outstanding_reads, **sides)
        m.submodules.writer = writer = DMAWriter(
            max_outstanding_writes=e.max_outstanding_writes, **sides)
        m.submodules.completer = completer = Completer(addr_width=aw_bits,
                                                       queue_depth=e.queue_depth)
        wiring.connect(m, reader.ar, wiring.flipped(bus.ar))
        wiring.connect(m, wiring.flipped(bus.r), reader.r)
        wiring.connect(m, writer.aw, wiring.flipped(bus.aw))
        wiring.connect(m, writer.w, wiring.flipped(bus.w))
        wiring.connect(m, wiring.flipped(bus.b), writer.b)
        wiring.connect(m, fetcher.ar, reader.desc_ar)
        wiring.connect(m, reader.desc_r, fetcher.r)
        wiring.connect(m, reader.data, writer.data)
        wiring.connect(m, completer.status, writer.status)
        m.d.comb += [
            writer.written.eq(reader.written),
            e.buffer_overrun.eq(reader.buffer_overrun),
        ]

        halt = Signal()
        # Issue nothing new: halted, or a soft reset waiting. `halt | e.resetting` as a register
        # of its own, set with either of them (an error, a soft reset) and cleared with both
        # by the core reset, so that the issue paths start at one register.
        stop = Signal()
        error = Signal()
        m.d.sync += stop.eq(halt | error | e.resetting | e.soft_reset)
        m.d.comb += [
            reader.stop.eq(stop),
            writer.stop.eq(stop),
            writer.halt.eq(halt),
            completer.stop.eq(stop),
            completer.halt.eq(halt),
        ]

        m.submodules.dispatcher = dispatcher = _Dispatcher(addr_width=aw_bits,
                                                           queue_depth=e.queue_depth)
        wiring.connect(m, fetcher.transfers, dispatcher.descriptors)
        m.d.comb += [
            dispatcher.go.eq(e.go),
            dispatcher.src.eq(e.src),
            dispatcher.dst.eq(e.dst),
            dispatcher.length.eq(e.length),
            dispatcher.busy.eq(e.busy),
            dispatcher.stop.eq(stop),
            dispatcher.done.eq(completer.done),
            # Simulation check (see `DMAEngine.queue_overrun`).
            e.queue_overrun.eq(dispatcher.push &
                               ~(reader.room & writer.room & completer.room)),
            fetcher.cur_desc.eq(e.cur_desc),
            fetcher.cur_desc_write.eq(e.cur_desc_write),
            fetcher.tail_desc.eq(e.tail_desc),
            fetcher.tail_write.eq(e.tail_write),
            fetcher.cyclic.eq(e.cyclic),
            fetcher.halt.eq(stop),
            fetcher.dispatch.eq(dispatcher.push),
            fetcher.complete.eq(completer.done),
        ]
        for side in (reader, writer, completer):
            m.d.comb += [side.push.eq(dispatcher.push), side.transfer.eq(dispatcher.transfer)]
        m.d.comb += [
            e.done.eq(completer.done),
            e.done_irq.eq(completer.done_irq),
            e.completed.eq(completer.completed),
            e.job_bytes.eq(writer.job_bytes),
            self.acked_bytes.eq(writer.acked_bytes),
        ]

        # ---- Errors: the first one halts the channel ----
        pipeline_empty = Signal()
        m.d.comb += pipeline_empty.eq(~dispatcher.queued_any & ~dispatcher.pending)
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
            read_error.eq(reader.read_error),
            read_resp.eq(reader.read_resp),
            read_desc.eq(reader.read_desc),
            read_writes_back.eq(reader.read_desc != 0),
        ]
        # The other sources' record is worked out as if there were no read error, so that the
        # R channel reaches none of its registers: the read error's is chosen after them.
        m.d.comb += error.eq(reader.read_error)
        with m.If(writer.write_error):
            m.d.comb += [error.eq(1), code.eq(ErrorCode.WRITE),
                         resp.eq(writer.error_resp), desc.eq(writer.write_desc),
                         writes_back.eq(writer.write_desc != 0)]
        with m.Elif(writer.status_error):
            m.d.comb += [error.eq(1), code.eq(ErrorCode.STATUS_WB),
                         resp.eq(writer.error_resp), desc.eq(completer.head_desc)]
        with m.Elif(fetcher.fault & pipeline_empty):
            m.d.comb += [error.eq(1), code.eq(fetcher.fault_code),
                         resp.eq(fetcher.fault_resp), desc.eq(fetcher.fault_desc),
                         writes_back.eq(write_back(fetcher.fault_code, fetcher.fault_desc))]
        with m.Elif(dispatcher.zero_length):
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
        fault_wb = Signal()         # the faulting descriptor's status is still to be written
        m.d.sync += [
            first_error.eq(error & ~halt),
            first_code.eq(code),
            first_resp.eq(resp),
            first_desc.eq(desc),
            first_writes_back.eq(writes_back),
        ]
        with m.If(error):
            m.d.sync += halt.eq(1)
        with m.If(completer.fault_written):
            m.d.sync += fault_wb.eq(0)
        with m.If(first_error):
            m.d.comb += e.error.eq(1)
            m.d.sync += [
                halted.eq(1),
                e.err_code.eq(Mux(read_error, ErrorCode.READ, first_code)),
                e.err_resp.eq(Mux(read_error, read_resp, first_resp)),
                e.err_desc.eq(Mux(read_error, read_desc, first_desc)),
                fault_wb.eq(Mux(read_error, read_writes_back, first_writes_back)),
            ]
        m.d.comb += [
            e.halted.eq(halted),
            completer.fault.eq(fault_wb),
            completer.fault_code.eq(e.err_code),
            completer.fault_resp.eq(e.err_resp),
            completer.fault_desc.eq(e.err_desc),
        ]

        # ---- Activity ----
        bus_quiet = Signal()
        m.d.comb += [
            e.busy.eq(~halted & (fetcher.active | dispatcher.queued_any | dispatcher.pending)),
            bus_quiet.eq(reader.quiet & ~fetcher.in_flight & writer.quiet),
            completer.bus_quiet.eq(bus_quiet),
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
            stall_moving.eq(reader.r_beat | (bus.w.valid & bus.w.ready)),
            stall_waiting.eq(~reader.quiet | fetcher.in_flight | writer.waiting),
        ]
        m.d.comb += self.stalled.eq(stall_busy & ~stall_moving & stall_waiting)
        return m
