"""The read side of a DMA channel: read bursts, realignment, the realigned data buffer."""

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import exact_log2

from ..bus.axi import BOUNDARY, AddrLayout, Burst, ReadDataLayout, Resp, Size
from ..bus.skid import StreamSkid
from ..parameters import check_integer
from .common import FifoOf, check_bus, load_request
from .cursor import BurstCursor
from .fetch import FetchRequestLayout, TransferLayout
from .realign import RealignJobLayout, Realigner

__all__ = ["DMAReader", "READ_ID_DATA", "READ_ID_DESC"]

#: AXI IDs of the reads: data and descriptors.
READ_ID_DATA, READ_ID_DESC = 0, 1


class DMAReader(wiring.Component):
    """Reads the sources of the transfers dispatched to it, realigned to their destinations.

    Transfers are taken in order (``push``). Each source is read in INCR bursts of at most
    ``max_burst_beats`` beats that never cross 4 KiB (:class:`BurstCursor`), up to
    ``max_outstanding_reads`` of them in flight, at most one issued every fourth cycle. The
    read beats are realigned to the destination (:class:`Realigner`) into a buffer of
    ``buffer_depth`` beats, which ``data`` gives out. A burst is issued only when the buffer has
    room for all its beats, counting those of the bursts in flight (the read credits), so the
    realigner is never held by the buffer.

    Descriptor reads (``desc_ar``) share the AR channel and go first; their beats go out on
    ``desc_r``.

    Parameters
    ----------
    bus_signature : AXI4Signature
        Of the channel's manager port, at least 64 bits wide; the reader drives AR and R.
    stream_id : int
        Driven on ``sid`` of every AR.
    max_burst_beats : int
        Longest burst, 1 to 256 beats, at most 4 KiB.
    max_outstanding_reads : int
        Data bursts in flight, 1 to 64.
    buffer_depth : int
        Beats of the data buffer; at least ``2 * max_burst_beats + 1``, so that the beats of
        a write burst, however the transfer is aligned, always fit in it.
    queue_depth : int
        Transfers dispatched ahead of the one being completed, 1 to 64: the reader's queues
        hold one more.

    Members
    -------
    ar : ``Out(stream.Signature(AddrLayout))``
    r : ``In(stream.Signature(ReadDataLayout))``
    push : ``In(1)``
        Queue ``transfer``; only while ``room`` (the engine counts the transfers in flight).
    transfer : ``In(TransferLayout)``
    room : ``Out(1)``
        The queues have room for a transfer.
    stop : ``In(1)``
        Issue no data burst.
    desc_ar : ``In(stream.Signature(FetchRequestLayout))``
    desc_r : ``Out(stream.Signature({data, resp}))``
    data : ``Out(stream.Signature({data, strb}))``
        The realigned beats, in order, with their strobes.
    written : ``Out(1)``
        A beat enters the buffer: it is on ``data`` from the next cycle.
    read_error : ``Out(1)``
        A data beat with an error response is taken, in the cycle it is.
    read_resp : ``Out(Resp)``
        That beat's response.
    read_desc : ``Out(addr_width)``
        The descriptor of that beat's transfer (0 in register mode).
    quiet : ``Out(1)``
        No data burst in flight, no AR offered.
    r_beat : ``Out(1)``
        An R beat, of data or of a descriptor, is taken.

    Attributes
    ----------
    buffer_overrun : Signal
        Not a port, for simulation checks: high in a cycle when the realigner writes a beat
        the data buffer has no room for, which the read credits rule out.
    """
    def __init__(self, *, bus_signature, stream_id=0, max_burst_beats=16,
                 max_outstanding_reads=4, buffer_depth=128, queue_depth=4):
        check_bus(bus_signature, stream_id)
        check_integer("Maximum burst", max_burst_beats, minimum=1,
                      maximum=min(256, BOUNDARY // bus_signature.bytes_per_beat))
        check_integer("Outstanding reads", max_outstanding_reads, minimum=1, maximum=64)
        check_integer("Buffer depth", buffer_depth, minimum=2 * max_burst_beats + 1)
        check_integer("Queue depth", queue_depth, minimum=1, maximum=64)
        self._bus_signature = bus_signature
        self._stream_id = stream_id
        self._max_burst_beats = max_burst_beats
        self._max_outstanding_reads = max_outstanding_reads
        self._buffer_depth = buffer_depth
        self._queue_depth = queue_depth
        addr_width, data_width = bus_signature.addr_width, bus_signature.data_width
        id_width = bus_signature.id_width
        super().__init__({
            "ar": Out(stream.Signature(AddrLayout(addr_width=addr_width, id_width=id_width,
                                                  sid_width=bus_signature.sid_width))),
            "r": In(stream.Signature(ReadDataLayout(data_width=data_width, id_width=id_width))),
            "push": In(1),
            "transfer": In(TransferLayout(addr_width=addr_width)),
            "room": Out(1),
            "stop": In(1),
            "desc_ar": In(stream.Signature(FetchRequestLayout(addr_width=addr_width))),
            "desc_r": Out(stream.Signature(data.StructLayout({"data": data_width,
                                                               "resp": Resp}))),
            "data": Out(stream.Signature(data.StructLayout({
                "data": data_width, "strb": bus_signature.bytes_per_beat}))),
            "written": Out(1),
            "read_error": Out(1),
            "read_resp": Out(Resp),
            "read_desc": Out(addr_width),
            "quiet": Out(1),
            "r_beat": Out(1),
        })
        self.buffer_overrun = Signal()

    def elaborate(self, platform):
        m = Module()
        sig = self._bus_signature
        aw_bits = sig.addr_width
        bpb = sig.bytes_per_beat
        log_bpb = exact_log2(bpb)
        depth = self._buffer_depth

        m.submodules.realigner = realigner = Realigner(data_width=sig.data_width,
                                                       addr_width=aw_bits)
        m.submodules.rd = rd = BurstCursor(addr_width=aw_bits, bytes_per_beat=bpb,
                                           max_beats=self._max_burst_beats)
        m.submodules.buffer = buffer = fifo.SyncFIFOBuffered(width=sig.data_width + bpb,
                                                             depth=depth)

        q_depth = self._queue_depth + 1
        read_q = FifoOf(m, "read_q", data.StructLayout({"src": aw_bits, "beats": 30}), q_depth)
        align_q = FifoOf(m, "align_q", RealignJobLayout(bytes_per_beat=bpb,
                                                        addr_width=aw_bits), q_depth)
        transfer = self.transfer
        m.d.comb += [
            read_q.w_data.src.eq(transfer.src),
            read_q.w_data.beats.eq(BurstCursor.beats_of(transfer.src, transfer.length,
                                                        bytes_per_beat=bpb)),
            align_q.w_data.src_offset.eq(transfer.src[:log_bpb]),
            align_q.w_data.dst_offset.eq(transfer.dst[:log_bpb]),
            align_q.w_data.length.eq(transfer.length),
            align_q.w_data.desc.eq(transfer.desc),
            read_q.w_en.eq(self.push),
            align_q.w_en.eq(self.push),
            self.room.eq(read_q.w_rdy & align_q.w_rdy),
        ]

        # ---- Read credits ----
        # The credits are the buffer beats neither occupied nor reserved for reads in flight:
        # `buffer_depth - level - reserved`. A read burst of `n` beats reserves `n` beats, plus
        # one for a flush beat in the transfer's first burst (`rd.n_first`); an accepted read
        # beat releases one and the transfer's end the spare one.
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
        prev_credits = Signal(range(depth + 1), init=depth)
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
        m.d.comb += self.buffer_overrun.eq(buffer.w_en & ~buffer.w_rdy)

        # ---- Read burst issue ----
        rd_outstanding = Signal(range(self._max_outstanding_reads + 1))
        m.d.comb += [
            rd.start.eq(~rd.active & read_q.r_rdy),
            read_q.r_en.eq(rd.start),
            rd.start_addr.eq(read_q.r_data.src),
            rd.start_beats.eq(read_q.r_data.beats),
        ]
        # Whether the buffer had room for the burst in the previous cycle, with a beat to spare
        # for the one a flush may have added since; `rd.n_first` holds still while `rd.ready`
        # is, and a reservation drops `rd.ready`, so the registered compare is never late.
        credit_ok = Signal()
        m.d.sync += credit_ok.eq(rd.ready & (unreserved > rd.n_first))
        rd_want = Signal()
        m.d.comb += rd_want.eq(rd.ready & credit_ok & ~self.stop &
                               (rd_outstanding < self._max_outstanding_reads))

        # AR: one request register; descriptor reads go first.
        # A data burst is issued when the AR register is free, the burst is wanted and no
        # descriptor read goes first: `reserve` is that one AND, rather than the choice below,
        # as it moves the burst cursor (as the writer's `claim`).
        ar = self.ar
        ar_free = Signal()
        m.d.comb += [
            ar_free.eq(~ar.valid | ar.ready),
            reserve.eq(ar_free & ~self.desc_ar.valid & rd_want),
            rd.advance.eq(reserve),
        ]
        with m.If(ar_free):
            m.d.sync += [
                ar.payload.size.eq(Size.from_bytes(bpb)),
                ar.payload.burst.eq(Burst.INCR),
                ar.payload.sid.eq(self._stream_id),
            ]
            with m.If(self.desc_ar.valid):
                m.d.comb += self.desc_ar.ready.eq(1)
                load_request(m, ar, id=READ_ID_DESC, addr=self.desc_ar.payload.addr,
                             len=self.desc_ar.payload.len)
            with m.Elif(rd_want):
                load_request(m, ar, id=READ_ID_DATA, addr=rd.addr, len=rd.n - 1)
            with m.Else():
                m.d.sync += ar.valid.eq(0)

        # ---- R: descriptor beats to `desc_r`, data beats through the realigner ----
        # Which of them takes a beat depends on its ID, and RREADY must not: the ID may be
        # undefined while RVALID is low. So RREADY is the skid register's, and a data beat the
        # realigner refuses (between transfers) waits there; the beats reach both as before.
        m.submodules.r_skid = r_skid = StreamSkid(self.r.payload.shape())
        wiring.connect(m, wiring.flipped(self.r), r_skid.upstream)
        r = r_skid.downstream
        # Whether the beat on `r` is a descriptor's, decoded from the bus's ID as it arrives and
        # kept beside the skid register's copy of the beat (which follows the payload while
        # `upstream.ready`), rather than compared after the skid register's choice: the same
        # value, a LUT level nearer the R channel on the paths that route the beat.
        r_is_desc = Signal()
        arriving_desc = Signal()
        held_desc = Signal()
        m.d.comb += arriving_desc.eq(self.r.payload.id == READ_ID_DESC)
        with m.If(r_skid.upstream.ready):
            m.d.sync += held_desc.eq(arriving_desc)
        m.d.comb += [
            r_is_desc.eq(Mux(r_skid.upstream.ready, arriving_desc, held_desc)),
            self.desc_r.valid.eq(r.valid & r_is_desc),
            self.desc_r.payload.data.eq(r.payload.data),
            self.desc_r.payload.resp.eq(r.payload.resp),
            realigner.read.valid.eq(r.valid & ~r_is_desc),
            realigner.read.payload.data.eq(r.payload.data),
            realigner.read.payload.resp.eq(r.payload.resp),
            r.ready.eq(Mux(r_is_desc, self.desc_r.ready, realigner.read.ready)),
            data_beat.eq(realigner.read.valid & realigner.read.ready),
        ]
        m.d.sync += rd_outstanding.eq(rd_outstanding + reserve - (data_beat & r.payload.last))

        m.d.comb += [
            realigner.jobs.valid.eq(align_q.r_rdy),
            realigner.jobs.payload.eq(align_q.r_data),
            align_q.r_en.eq(realigner.jobs.ready),
            buffer.w_data.eq(Cat(realigner.write.payload.data, realigner.write.payload.strb)),
            buffer.w_en.eq(realigner.write.valid),
            realigner.write.ready.eq(1),   # room reserved by the read credits
            self.data.valid.eq(buffer.r_rdy),
            self.data.payload.eq(buffer.r_data),
            buffer.r_en.eq(self.data.ready),
            self.written.eq(buffer_write),
            self.read_error.eq(realigner.read_error),
            self.read_resp.eq(r.payload.resp),
            self.read_desc.eq(realigner.desc),
            self.quiet.eq((rd_outstanding == 0) & ~ar.valid),
            self.r_beat.eq(r.valid & r.ready),
        ]
        return m
