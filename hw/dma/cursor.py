"""The burst cursor: one side of a transfer, cut into bursts that never cross 4 KiB."""

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import exact_log2

from ..bus.axi import BOUNDARY
from ..parameters import check_integer

__all__ = ["BurstCursor"]


class BurstCursor(wiring.Component):
    """Walks the beats of one side of a transfer burst by burst: ``n`` beats next (at most
    ``max_beats``, never crossing 4 KiB) from ``addr``.

    ``n``, ``last`` and ``n_first`` (``n + first``) are registers, worked out in two cycles
    after ``start`` or ``advance`` moved the cursor (compares, then the choice); ``ready`` says
    they are up to date. So the wide compares of the beats left stay off the paths that issue
    the burst. With ``count_bytes``, ``bytes`` is a register too: the bytes of the transfer in
    the next burst (the first and last bursts may be partial).

    Parameters
    ----------
    addr_width : int
        Byte address width.
    bytes_per_beat : int
        Bus width in bytes, a power of 2.
    max_beats : int
        Longest burst, at most the beats of 4 KiB.
    count_bytes : bool
        Work out ``bytes``, which takes ``start_length``.

    Members
    -------
    start : ``In(1)``
        Take a transfer at byte address ``start_addr`` that touches ``start_beats`` beats
        (:meth:`beats_of`), of ``start_length`` bytes; only while not ``active``.
    start_addr : ``In(addr_width)``
    start_beats : ``In(30)``
    start_length : ``In(32)``
        With ``count_bytes`` only.
    advance : ``In(1)``
        The next burst has been issued; only while ``ready``.
    active : ``Out(1)``
        A transfer has bursts left.
    ready : ``Out(1)``
        ``n``, ``n_first``, ``last`` (and ``bytes``) are those of the next burst.
    addr : ``Out(addr_width)``
        Where the next burst starts, aligned to a beat.
    n : ``Out(range(max_beats + 1))``
    n_next : ``Out(range(max_beats + 1))``
        What ``n`` holds in the next cycle.
    n_first : ``Out(range(max_beats + 2))``
        ``n``, plus one in the transfer's first burst.
    last : ``Out(1)``
        The next burst is the transfer's last.
    bytes : ``Out(range(max_beats * bytes_per_beat + 1))``
        With ``count_bytes`` only.
    """

    @staticmethod
    def beats_of(addr, length, *, bytes_per_beat):
        """The beats that a transfer of ``length`` bytes at byte address ``addr`` touches, as
        ``start_beats`` takes them. It is worked out before the transfer queues, so that its
        carry chain stays off the cursor's start."""
        log_bpb = exact_log2(bytes_per_beat)
        return (length + (addr[:log_bpb] + (bytes_per_beat - 1))) >> log_bpb

    def __init__(self, *, addr_width, bytes_per_beat, max_beats, count_bytes=False):
        check_integer("Address width", addr_width, minimum=exact_log2(BOUNDARY), maximum=64)
        check_integer("Bytes per beat", bytes_per_beat, power_of_two=True, maximum=BOUNDARY)
        check_integer("Maximum burst", max_beats, minimum=1, maximum=BOUNDARY // bytes_per_beat)
        self._log_bpb = exact_log2(bytes_per_beat)
        self._max_beats = max_beats
        self._count_bytes = bool(count_bytes)
        members = {
            "start": In(1),
            "start_addr": In(addr_width),
            "start_beats": In(30),
            "advance": In(1),
            "active": Out(1),
            "ready": Out(1),
            "addr": Out(addr_width),
            "n": Out(range(max_beats + 1)),
            "n_next": Out(range(max_beats + 1)),
            "n_first": Out(range(max_beats + 2)),
            "last": Out(1),
        }
        if self._count_bytes:
            members["start_length"] = In(32)
            # Burst byte counts fit in their own width: worked out modulo its power of 2.
            members["bytes"] = Out(range(max_beats * bytes_per_beat + 1))
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        log_bpb = self._log_bpb
        max_beats = self._max_beats
        left = Signal(30)
        first = Signal()
        compared = Signal()

        # First cycle: the beats to the 4 KiB boundary (at most BOUNDARY >> log_bpb) and three
        # compares side by side.
        log_page_beats = exact_log2(BOUNDARY) - log_bpb
        page_beats = 1 << log_page_beats
        page_beat = self.addr[log_bpb:exact_log2(BOUNDARY)]
        left_low = left[:log_page_beats + 1]
        to_boundary = Signal(log_page_beats + 1)
        boundary_first = Signal()       # to_boundary <= max_beats
        fits = Signal()                 # the beats left go in one burst
        with m.If(self.active & ~compared):
            m.d.sync += [
                to_boundary.eq(page_beats - page_beat),
                boundary_first.eq(page_beat >= page_beats - max_beats),
                fits.eq((left[log_page_beats + 1:] == 0) & (left_low <= max_beats) &
                        (left_low + page_beat <= page_beats)),
            ]

        # Second cycle: the choice.
        next_n = Signal.like(self.n)
        with m.If(fits):
            m.d.comb += next_n.eq(left_low)
        with m.Elif(boundary_first):
            m.d.comb += next_n.eq(to_boundary)
        with m.Else():
            m.d.comb += next_n.eq(max_beats)
        m.d.comb += self.n_next.eq(Mux(compared & ~self.ready, next_n, self.n))
        if self._count_bytes:
            bytes_bits = len(self.bytes)
            head = Signal(log_bpb)              # the start's offset in its beat
            end_low = Signal(bytes_bits)        # the low bits of the end
        with m.If(compared & ~self.ready):
            m.d.sync += [
                self.n.eq(next_n),
                self.n_first.eq(next_n + first),
                self.last.eq(fits),
            ]
            if self._count_bytes:
                # A burst's bytes: from its start (``addr``, or the transfer's start in the
                # first burst) to its end (``n`` beats on, or the transfer's end in the last).
                head_now = Mux(first, head, 0)
                m.d.sync += self.bytes.eq(Mux(
                    fits,
                    end_low - Cat(head_now, self.addr[log_bpb:bytes_bits]),
                    (next_n << log_bpb) - head_now))

        # The flags that `start` and `advance` set or clear, each written as one expression of
        # its next value rather than as assignments in `If` blocks: there, `advance` and `start`
        # at the head of each flag's choice would be taken by yosys for the flip-flop's
        # synchronous reset (the ECP5 LSR), with the burst issue's whole decision (the AW/AR
        # handshake, the status request, the claim) before it and the core reset OR-ed in.
        # Written so, they reach the flip-flop's data input, as they did when the cursor was
        # part of the engine's own process. The same values in every cycle:
        #   compared: 0 on `advance` or `start`, else 1 once `active`;
        #   ready:    0 on `advance` or `start`, else 1 once `compared`;
        #   first:    0 on `advance`, else 1 on `start`;
        #   active:   ~`last` on `advance`, else 1 on `start`.
        restart = self.advance | self.start
        m.d.sync += [
            compared.eq(~restart & (compared | self.active)),
            self.ready.eq(~restart & (self.ready | compared)),
            first.eq(~self.advance & (first | self.start)),
            self.active.eq(Mux(self.advance, ~self.last, self.active | self.start)),
        ]

        with m.If(self.start):
            m.d.sync += [
                self.addr.eq(Cat(Const(0, log_bpb), self.start_addr[log_bpb:])),
                left.eq(self.start_beats),
            ]
            if self._count_bytes:
                m.d.sync += [head.eq(self.start_addr[:log_bpb]),
                             end_low.eq(self.start_addr[:bytes_bits] +
                                        self.start_length[:bytes_bits])]
        with m.If(self.advance):
            m.d.sync += [
                self.addr.eq(self.addr + (self.n << log_bpb)),
                left.eq(left - self.n),
            ]
        return m
