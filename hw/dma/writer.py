"""The write side of a DMA channel: write bursts, status write-back, completion."""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..bus.axi import (BOUNDARY, AddrLayout, Burst, Resp, Size, WriteDataLayout,
                       WriteRespLayout)
from ..parameters import ParameterSignature, check_integer
from .common import FifoOf, check_bus, load_request, nonzero
from .cursor import BurstCursor
from .descriptor import STATUS_OFFSET, ErrorCode, StatusLayout
from .fetch import TransferLayout

__all__ = ["Completer", "DMAWriter", "StatusWriteSignature", "WRITE_ID_DATA",
           "WRITE_ID_STATUS"]

#: AXI IDs of the writes: data and descriptor status.
WRITE_ID_DATA, WRITE_ID_STATUS = 0, 1


class StatusWriteSignature(ParameterSignature):
    """The status write-backs that a :class:`Completer` asks a :class:`DMAWriter` for, and the
    write responses the writer tells it of; from the completer's side.

    Parameters
    ----------
    addr_width : int

    Members
    -------
    want : ``Out(1)``
        A status write is due: ``word`` to ``addr``.
    addr : ``Out(addr_width)``
    word : ``Out(64)``
        The status and the bytes moved, as the descriptor holds them at ``STATUS_OFFSET``.
    taken : ``In(1)``
        The status write is issued.
    busy : ``Out(1)``
        A status write is issued and not answered.
    resp : ``In(1)``
        A status write response, in the cycle it is looked at.
    error : ``In(1)``
        That response is an error.
    acked : ``In(1)``
        The last write response of a transfer's data, in the cycle it is looked at.
    """
    parameters = ("addr_width",)

    def __init__(self, *, addr_width):
        check_integer("Address width", addr_width, minimum=1, maximum=64)
        self.addr_width = addr_width
        super().__init__({
            "want": Out(1),
            "addr": Out(addr_width),
            "word": Out(64),
            "taken": In(1),
            "busy": Out(1),
            "resp": In(1),
            "error": In(1),
            "acked": In(1),
        })


class Completer(wiring.Component):
    """Completes the transfers of a DMA channel in order, writing back the status of those
    from descriptors.

    A transfer (``push``) is written once the last write response of its data has come
    (``status.acked``). In register mode it then completes (``done``); from a descriptor, its
    status is written back first (through ``status``), and it completes when that write is
    answered without an error. One that is answered with an error completes nothing.

    While ``halt``, nothing completes; once the bus is quiet, the status of the descriptor that
    faulted (``fault``) is written back, recording the fault.

    Parameters
    ----------
    addr_width : int
        Address width.
    queue_depth : int
        Transfers dispatched ahead of the one being completed, 1 to 64: the queue holds one
        more, the completed transfer staying at its head for a cycle.

    Members
    -------
    push : ``In(1)``
        Queue ``transfer``; only while ``room``.
    transfer : ``In(TransferLayout)``
    room : ``Out(1)``
    stop : ``In(1)``
        Request no status write of a completed transfer.
    halt : ``In(1)``
        Stopped by an error: complete nothing.
    fault : ``In(1)``
        The status of the descriptor ``fault_desc`` is to record ``fault_code`` and
        ``fault_resp``; set in the cycle after ``halt`` is.
    fault_code : ``In(ErrorCode)``
    fault_resp : ``In(Resp)``
    fault_desc : ``In(addr_width)``
    fault_written : ``Out(1)``
        The fault's status write has been answered.
    bus_quiet : ``In(1)``
        No transaction outstanding on the channel's port.
    status : ``Out(StatusWriteSignature(addr_width))``
    done, done_irq : ``Out(1)``
    completed : ``Out(32)``
        As :class:`~.engine.DMAEngine` has them.
    head_desc : ``Out(addr_width)``
        The descriptor of the transfer being completed (0 in register mode).
    """
    def __init__(self, *, addr_width, queue_depth=4):
        check_integer("Address width", addr_width, minimum=1, maximum=64)
        check_integer("Queue depth", queue_depth, minimum=1, maximum=64)
        self._queue_depth = queue_depth
        super().__init__({
            "push": In(1),
            "transfer": In(TransferLayout(addr_width=addr_width)),
            "room": Out(1),
            "stop": In(1),
            "halt": In(1),
            "fault": In(1),
            "fault_code": In(ErrorCode),
            "fault_resp": In(Resp),
            "fault_desc": In(addr_width),
            "fault_written": Out(1),
            "bus_quiet": In(1),
            "status": Out(StatusWriteSignature(addr_width=addr_width)),
            "done": Out(1),
            "done_irq": Out(1),
            "completed": Out(32),
            "head_desc": Out(addr_width),
        })

    def elaborate(self, platform):
        m = Module()
        done_q = FifoOf(m, "done_q", self.transfer.shape(), self._queue_depth + 1)
        m.d.comb += [
            done_q.w_data.eq(self.transfer),
            done_q.w_en.eq(self.push),
            self.room.eq(done_q.w_rdy),
        ]
        acked_transfers = Signal(range(self._queue_depth + 1))   # written, not completed
        m.d.sync += acked_transfers.eq(acked_transfers + self.status.acked - self.done)
        acked_any = nonzero(m, "acked_any", acked_transfers, self.status.acked, self.done)

        head = done_q.r_data
        done_pop = Signal()
        record = data.View(StatusLayout(), self.status.word[:32])   # its low word
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
                record.error.eq(self.fault_code),
                record.resp.eq(self.fault_resp),
            ]
        with m.Else():
            m.d.comb += [
                record.completed.eq(1),
                self.status.word[32:].eq(head.length),
            ]
        # The status address is worked out a cycle ahead, so that the completion state and the
        # adder stay off the AW register's inputs. The head transfer stays while its status
        # waits, and the fault's record is set (with `fault`) before FAULT_ADDR is entered;
        # `fault` implies `stop`, so no descriptor's own status is requested meanwhile.
        m.d.sync += self.status.addr.eq(Mux(self.fault, self.fault_desc, head.desc) +
                                        STATUS_OFFSET)
        m.d.comb += [
            self.status.want.eq((st_status_addr & ~self.stop) | st_fault_addr),
            self.status.busy.eq(st_status_resp | st_fault_resp),
        ]

        with m.If(st_wait):
            with m.If(self.halt):
                with m.If(self.fault & self.bus_quiet):
                    goto(st_wait, st_fault_addr)
            with m.Elif(done_q.r_rdy & ~done_pop & acked_any):
                with m.If(head.sg):
                    goto(st_wait, st_status_addr)
                with m.Else():
                    m.d.comb += self.done.eq(1)
        with m.If(st_status_addr):
            with m.If(self.status.taken):
                goto(st_status_addr, st_status_resp)
            with m.Elif(self.halt):
                goto(st_status_addr, st_wait)
        with m.If(st_status_resp & self.status.resp):
            with m.If(~self.status.error):
                m.d.comb += self.done.eq(1)
            goto(st_status_resp, st_wait)
        with m.If(st_fault_addr & self.status.taken):
            goto(st_fault_addr, st_fault_resp)
        with m.If(st_fault_resp & self.status.resp):
            m.d.comb += self.fault_written.eq(1)
            goto(st_fault_resp, st_wait)
        # The completed transfer leaves `done_q` in the next cycle, from a register, so that the
        # queue's level and read pointer do not wait on the completion's decision; its entry,
        # still at the head meanwhile, is not looked at again (`~done_pop` above).
        m.d.sync += done_pop.eq(self.done)
        m.d.comb += done_q.r_en.eq(done_pop)
        with m.If(self.done):
            m.d.comb += self.done_irq.eq(head.irq | ~head.sg)
            m.d.sync += self.completed.eq(self.completed + 1)
        m.d.comb += self.head_desc.eq(head.desc)
        return m


class DMAWriter(wiring.Component):
    """Writes the realigned data of the transfers dispatched to it, and the status
    write-backs of a :class:`Completer`.

    Transfers are taken in order (``push``). Each destination is written in INCR bursts of at
    most ``max_burst_beats`` beats that never cross 4 KiB (:class:`BurstCursor`), at most one
    issued every fourth cycle, up to ``max_outstanding_writes`` in flight. A burst is issued
    once all its beats are on ``data`` or announced by ``written``, so the W channel is never
    held waiting. The status writes (``status``) go first, one beat each.

    While ``halt``, the data beats of bursts already issued go out with their strobes cleared.

    Parameters
    ----------
    bus_signature : AXI4Signature
        Of the channel's manager port, at least 64 bits wide; the writer drives AW, W and B.
    stream_id : int
        Driven on ``sid`` of every AW.
    max_burst_beats : int
        Longest burst, 1 to 256 beats, at most 4 KiB.
    max_outstanding_writes : int
        Data bursts in flight, 1 to 64.
    buffer_depth : int
        Beats of the reader's data buffer, at least ``max_burst_beats``.
    queue_depth : int
        As for :class:`~.reader.DMAReader`.

    Members
    -------
    aw : ``Out(stream.Signature(AddrLayout))``
    w : ``Out(stream.Signature(WriteDataLayout))``
    b : ``In(stream.Signature(WriteRespLayout))``
    push : ``In(1)``
    transfer : ``In(TransferLayout)``
    room : ``Out(1)``
        As for :class:`~.reader.DMAReader`.
    data : ``In(stream.Signature({data, strb}))``
        The realigned beats (:class:`~.reader.DMAReader`).
    written : ``In(1)``
        A beat enters ``data`` in the next cycle.
    stop : ``In(1)``
        Issue no data burst.
    halt : ``In(1)``
        Stopped by an error: clear the strobes of the data beats.
    status : ``In(StatusWriteSignature(addr_width))``
    job_bytes : ``Out(32)``
        Bytes acknowledged so far of the transfer being written.
    acked_bytes : ``Out(32)``
        Bytes a write response acknowledges, in the cycle it is looked at.
    write_error : ``Out(1)``
        A data write response with an error, in the cycle it is looked at.
    write_desc : ``Out(addr_width)``
        The descriptor of that response's transfer (0 in register mode).
    status_error : ``Out(1)``
        A status write response with an error.
    error_resp : ``Out(Resp)``
        The response of ``write_error`` or ``status_error``.
    quiet : ``Out(1)``
        No write outstanding or being offered.
    waiting : ``Out(1)``
        A write or its response is awaited.
    """
    def __init__(self, *, bus_signature, stream_id=0, max_burst_beats=16,
                 max_outstanding_writes=4, buffer_depth=128, queue_depth=4):
        check_bus(bus_signature, stream_id)
        check_integer("Maximum burst", max_burst_beats, minimum=1,
                      maximum=min(256, BOUNDARY // bus_signature.bytes_per_beat))
        check_integer("Outstanding writes", max_outstanding_writes, minimum=1, maximum=64)
        check_integer("Buffer depth", buffer_depth, minimum=max_burst_beats)
        check_integer("Queue depth", queue_depth, minimum=1, maximum=64)
        self._bus_signature = bus_signature
        self._stream_id = stream_id
        self._max_burst_beats = max_burst_beats
        self._max_outstanding_writes = max_outstanding_writes
        self._buffer_depth = buffer_depth
        self._queue_depth = queue_depth
        addr_width, id_width = bus_signature.addr_width, bus_signature.id_width
        super().__init__({
            "aw": Out(stream.Signature(AddrLayout(addr_width=addr_width, id_width=id_width,
                                                  sid_width=bus_signature.sid_width))),
            "w": Out(stream.Signature(WriteDataLayout(data_width=bus_signature.data_width))),
            "b": In(stream.Signature(WriteRespLayout(id_width=id_width))),
            "push": In(1),
            "transfer": In(TransferLayout(addr_width=addr_width)),
            "room": Out(1),
            "data": In(stream.Signature(data.StructLayout({
                "data": bus_signature.data_width, "strb": bus_signature.bytes_per_beat}))),
            "written": In(1),
            "stop": In(1),
            "halt": In(1),
            "status": In(StatusWriteSignature(addr_width=addr_width)),
            "job_bytes": Out(32),
            "acked_bytes": Out(32),
            "write_error": Out(1),
            "write_desc": Out(addr_width),
            "status_error": Out(1),
            "error_resp": Out(Resp),
            "quiet": Out(1),
            "waiting": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        sig = self._bus_signature
        aw_bits = sig.addr_width
        bpb = sig.bytes_per_beat
        max_beats = self._max_burst_beats
        aw, w, b = self.aw, self.w, self.b

        m.submodules.wr = wr = BurstCursor(addr_width=aw_bits, bytes_per_beat=bpb,
                                           max_beats=max_beats, count_bytes=True)
        write_q = FifoOf(m, "write_q", data.StructLayout({
            "dst": aw_bits, "length": 32, "beats": 30, "desc": aw_bits}), self._queue_depth + 1)
        transfer = self.transfer
        m.d.comb += [
            write_q.w_data.dst.eq(transfer.dst),
            write_q.w_data.length.eq(transfer.length),
            write_q.w_data.beats.eq(BurstCursor.beats_of(transfer.dst, transfer.length,
                                                         bytes_per_beat=bpb)),
            write_q.w_data.desc.eq(transfer.desc),
            write_q.w_en.eq(self.push),
            self.room.eq(write_q.w_rdy),
        ]

        # ---- Write burst issue: only when the whole burst's data is buffered ----
        unclaimed = Signal(range(self._buffer_depth + 1))   # buffered beats no AW has claimed
        claim = Signal()                # a data write burst issued: its beats are claimed
        # Beats count as buffered a cycle after they are, keeping the buffer's handshake off
        # the sum.
        buffer_written = Signal()
        m.d.sync += buffer_written.eq(self.written)
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
        w_bursts = FifoOf(m, "w_bursts", burst_layout, self._max_outstanding_writes + 1)
        ack_layout = data.StructLayout({"last": 1, "bytes": range(max_beats * bpb + 1),
                                        "desc": aw_bits})
        b_track = FifoOf(m, "b_track", ack_layout, self._max_outstanding_writes)

        wr_desc = Signal(aw_bits)
        m.d.comb += [
            wr.start.eq(~wr.active & write_q.r_rdy),
            write_q.r_en.eq(wr.start),
            wr.start_addr.eq(write_q.r_data.dst),
            wr.start_beats.eq(write_q.r_data.beats),
            wr.start_length.eq(write_q.r_data.length),
            wr.advance.eq(claim),
        ]
        with m.If(wr.start):
            m.d.sync += wr_desc.eq(write_q.r_data.desc)
        wr_want = Signal()
        m.d.comb += wr_want.eq(wr.ready & ~self.stop & enough & b_track.w_rdy & w_bursts.w_rdy)

        status = self.status
        # What a write burst queues does not depend on whether it is issued: only the
        # enables do, so the issue conditions stay off the queues' data inputs.
        m.d.comb += [
            w_bursts.w_data.beats.eq(Mux(status.want, 1, wr.n)),
            w_bursts.w_data.status.eq(status.want),
            b_track.w_data.last.eq(wr.last),
            b_track.w_data.bytes.eq(wr.bytes),
            b_track.w_data.desc.eq(wr_desc),
        ]
        # A data burst is issued when the AW register is free, the burst is wanted and no status
        # write goes first: `~(status.want & w_bursts.w_rdy) & wr_want` is `~status.want &
        # wr_want`, `wr_want` holding `w_bursts.w_rdy`. `claim` is that one AND, rather than the
        # choice below: it moves the burst cursor, and is the longest path into its registers.
        # The queues' write enables likewise.
        aw_free = Signal()
        m.d.comb += [
            aw_free.eq(~aw.valid | aw.ready),
            status.taken.eq(aw_free & status.want & w_bursts.w_rdy),
            claim.eq(aw_free & ~status.want & wr_want),
            w_bursts.w_en.eq(status.taken | claim),
            b_track.w_en.eq(claim),
        ]
        with m.If(aw_free):
            m.d.sync += [
                aw.payload.size.eq(Size.from_bytes(bpb)),
                aw.payload.burst.eq(Burst.INCR),
                aw.payload.sid.eq(self._stream_id),
            ]
            with m.If(status.want & w_bursts.w_rdy):
                load_request(m, aw, id=WRITE_ID_STATUS, addr=status.addr, len=0)
            with m.Elif(wr_want):
                load_request(m, aw, id=WRITE_ID_DATA, addr=wr.addr, len=wr.n - 1)
            with m.Else():
                m.d.sync += aw.valid.eq(0)

        # ---- W: data beats, or the status beat, in AW order ----
        status_lane = STATUS_OFFSET % bpb
        w_beat = Signal(range(max_beats))
        w_head = w_bursts.r_data
        squash = Signal()           # halted: data beats go out with no strobe
        with m.If(~w.valid | w.ready):
            m.d.sync += squash.eq(self.halt)
        with m.If(w_bursts.r_rdy & w_head.status):
            m.d.comb += [
                w.valid.eq(1),
                w.payload.data.eq(status.word << (8 * status_lane)),
                w.payload.strb.eq(0xff << status_lane),
                w.payload.last.eq(1),
                w_bursts.r_en.eq(w.ready),
            ]
        with m.Elif(w_bursts.r_rdy):
            m.d.comb += [
                w.valid.eq(self.data.valid),
                w.payload.data.eq(self.data.payload.data),
                w.payload.strb.eq(Mux(squash, 0, self.data.payload.strb)),
                w.payload.last.eq(w_beat == w_head.beats - 1),
            ]
            with m.If(w.valid & w.ready):
                m.d.comb += self.data.ready.eq(1)
                with m.If(w.payload.last):
                    m.d.comb += w_bursts.r_en.eq(1)
                    m.d.sync += w_beat.eq(0)
                with m.Else():
                    m.d.sync += w_beat.eq(w_beat + 1)

        # ---- B: data responses close bursts and transfers, status responses complete ----
        # Every response is taken at once and registered, already decoded, before it is
        # looked at, so that what it decides (a transfer's completion, an error, the FIFOs'
        # reads) starts at registers rather than at the far end of the bus: a cycle per
        # response.
        b_data = Signal()
        b_status = Signal()
        b_error = Signal()
        m.d.comb += b.ready.eq(1)
        m.d.sync += [
            b_data.eq(b.valid & (b.payload.id == WRITE_ID_DATA)),
            b_status.eq(b.valid & (b.payload.id == WRITE_ID_STATUS)),
            b_error.eq(b.payload.resp != Resp.OKAY),
            self.error_resp.eq(b.payload.resp),
        ]
        with m.If(b_data):
            m.d.comb += [
                b_track.r_en.eq(1),
                self.acked_bytes.eq(b_track.r_data.bytes),
                status.acked.eq(b_track.r_data.last),
            ]
            with m.If(b_track.r_data.last):
                m.d.sync += self.job_bytes.eq(0)
            with m.Else():
                m.d.sync += self.job_bytes.eq(self.job_bytes + b_track.r_data.bytes)

        m.d.comb += [
            status.resp.eq(b_status),
            status.error.eq(b_error),
            self.write_error.eq(b_data & b_error),
            self.write_desc.eq(b_track.r_data.desc),
            self.status_error.eq(b_status & b_error),
            self.quiet.eq(~b_track.r_rdy & ~status.busy & ~aw.valid & ~w_bursts.r_rdy),
            self.waiting.eq(b_track.r_rdy | status.busy | aw.valid | w.valid),
        ]
        return m
