"""Byte realignment between a source and a destination of different alignment."""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import exact_log2

from ..bus.axi import Resp

__all__ = ["RealignJobLayout", "Realigner"]


class RealignJobLayout(data.StructLayout):
    """One transfer as the realigner sees it.

    Parameters
    ----------
    bytes_per_beat : int
        Bus width in bytes.
    addr_width : int
        Width of ``desc``, the address that identifies the transfer in error reports.
    """
    def __init__(self, *, bytes_per_beat, addr_width):
        offset_bits = exact_log2(bytes_per_beat)
        super().__init__({
            "src_offset": unsigned(offset_bits),
            "dst_offset": unsigned(offset_bits),
            "length":     unsigned(32),
            "desc":       unsigned(addr_width),
        })


class Realigner(wiring.Component):
    """Turns the read beats of a transfer into its write beats.

    A transfer of ``length`` bytes reads ``ceil((src_offset + length) / B)`` beats starting at
    the source's aligned address and writes ``ceil((dst_offset + length) / B)`` beats starting at
    the destination's aligned address (``B`` bytes per beat). Each write beat is a byte window
    over the last two read beats; the first and last write beats carry partial strobes. When the
    destination needs one beat more than the source provides, the realigner emits it from the
    last read beat alone (a flush cycle, in which it does not accept read beats).

    Transfers are processed in order: read beats belong to the transfer at the head of ``jobs``.

    Parameters
    ----------
    data_width : int
        Bus width in bits.
    addr_width : int
        Width of the descriptor address carried with each transfer.

    Members
    -------
    jobs : ``In(stream.Signature(RealignJobLayout))``
    read : ``In(stream.Signature({data, resp}))``
        Read beats (``resp`` is the beat's AXI response).
    write : ``Out(stream.Signature({data, strb}))``
        Write beats, with strobes.
    job_done : ``Out(1)``
        Pulses once when a transfer has produced its last write beat.
    read_error : ``Out(1)``
        High in a cycle when a read beat with an error response is accepted.
    desc : ``Out(addr_width)``
        The ``desc`` of the transfer being processed.
    """
    def __init__(self, *, data_width=64, addr_width=40):
        if data_width not in (32, 64, 128, 256, 512):
            raise ValueError(f"Data width must be 32, 64, 128, 256 or 512, not {data_width!r}")
        self._data_width = data_width
        self._bytes_per_beat = data_width // 8
        super().__init__({
            "jobs": In(stream.Signature(RealignJobLayout(bytes_per_beat=self._bytes_per_beat,
                                                         addr_width=addr_width))),
            "read": In(stream.Signature(data.StructLayout({"data": data_width, "resp": Resp}))),
            "write": Out(stream.Signature(data.StructLayout({
                "data": data_width, "strb": self._bytes_per_beat}))),
            "job_done": Out(1),
            "read_error": Out(1),
            "desc": Out(addr_width),
        })

    def elaborate(self, platform):
        m = Module()
        bpb = self._bytes_per_beat
        log_bpb = exact_log2(bpb)
        full_strb = (1 << bpb) - 1

        loaded     = Signal()
        reads_left = Signal(33 - log_bpb)
        writes_left = Signal(33 - log_bpb)
        # Registered compares of the wide counts, kept off the data-beat handshake paths.
        no_reads   = Signal(init=1)    # reads_left == 0
        no_writes  = Signal(init=1)    # writes_left == 0
        one_write  = Signal()          # writes_left == 1
        skip_first = Signal()      # the first read beat only fills the window
        first_beat = Signal()      # the next write beat is the transfer's first
        shift      = Signal(range(bpb + 1))   # window shift in bytes, 1..bpb
        first_strb = Signal(bpb)
        last_strb  = Signal(bpb)
        prev       = Signal(self._data_width)

        job = self.jobs.payload
        m.d.comb += self.jobs.ready.eq(~loaded)
        with m.If(self.jobs.valid & ~loaded):
            # Beat counts in one carry chain each: the offset and the rounding go in together.
            end = Signal(log_bpb)       # the transfer's end, within its last beat
            reads = Signal.like(reads_left)
            writes = Signal.like(writes_left)
            m.d.comb += [
                end.eq(job.dst_offset + job.length[:log_bpb]),
                reads.eq((job.length + (job.src_offset + (bpb - 1))) >> log_bpb),
                writes.eq((job.length + (job.dst_offset + (bpb - 1))) >> log_bpb),
            ]
            m.d.sync += [
                loaded.eq(1),
                reads_left.eq(reads),
                writes_left.eq(writes),
                # The same compares from the offsets and the length directly, not through
                # the sums: no beats for nothing at offset 0; one write beat up to bpb bytes.
                no_reads.eq((job.src_offset == 0) & (job.length == 0)),
                no_writes.eq((job.dst_offset == 0) & (job.length == 0)),
                one_write.eq((job.length[log_bpb + 1:] == 0) &
                             (job.length[:log_bpb + 1] + job.dst_offset <= bpb) &
                             ((job.dst_offset != 0) | (job.length != 0))),
                skip_first.eq(job.src_offset > job.dst_offset),
                first_beat.eq(1),
                shift.eq(((job.src_offset - job.dst_offset - 1) & (bpb - 1)) + 1),
                first_strb.eq(Const(full_strb, bpb) << job.dst_offset),
                last_strb.eq(Const(full_strb, bpb) >> ~(end - 1)[:log_bpb]),
                self.desc.eq(job.desc),
            ]

        flushing = Signal()
        m.d.comb += flushing.eq(loaded & no_reads & ~no_writes)

        window = Signal(2 * self._data_width)
        m.d.comb += window.eq(Mux(flushing, Cat(prev, Const(0, self._data_width)),
                                  Cat(prev, self.read.payload.data)))
        shifted = Signal(self._data_width)
        with m.Switch(shift):
            for n in range(1, bpb + 1):
                with m.Case(n):
                    m.d.comb += shifted.eq(window[8 * n:8 * n + self._data_width])

        strb = Signal(bpb)
        m.d.comb += strb.eq(Mux(first_beat, first_strb, full_strb) &
                            Mux(one_write, last_strb, full_strb))
        m.d.comb += [
            self.write.payload.data.eq(shifted),
            self.write.payload.strb.eq(strb),
        ]

        reading = Signal()
        m.d.comb += reading.eq(loaded & ~no_reads)
        with m.If(reading):
            m.d.comb += [
                self.read.ready.eq(skip_first | self.write.ready),
                self.write.valid.eq(self.read.valid & ~skip_first),
            ]
            with m.If(self.read.valid & self.read.ready):
                m.d.comb += self.read_error.eq(self.read.payload.resp != Resp.OKAY)
                m.d.sync += [
                    prev.eq(self.read.payload.data),
                    reads_left.eq(reads_left - 1),
                    no_reads.eq(reads_left == 1),
                    skip_first.eq(0),
                ]
                with m.If(~skip_first):
                    m.d.sync += [
                        writes_left.eq(writes_left - 1),
                        no_writes.eq(one_write),
                        one_write.eq(writes_left == 2),
                        first_beat.eq(0),
                    ]
        with m.Elif(flushing):
            m.d.comb += self.write.valid.eq(1)
            with m.If(self.write.ready):
                m.d.sync += [
                    writes_left.eq(writes_left - 1),
                    no_writes.eq(one_write),
                    one_write.eq(writes_left == 2),
                    first_beat.eq(0),
                ]
        with m.Elif(loaded):
            m.d.comb += self.job_done.eq(1)
            m.d.sync += loaded.eq(0)

        return m
