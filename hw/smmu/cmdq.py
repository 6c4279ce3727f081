"""The SMMU's command queue consumer: fetches commands from memory and executes them.

One command at a time, in queue order: ``IDLE ─▶ FETCH_AR ─▶ FETCH_R ─▶ EXEC (─▶ SYNC_WAIT)
─▶ IDLE``, advancing the consumer index (with its wrap bit) after each. Invalidations take
effect in the cycle of ``EXEC``. A ``SYNC`` completes once every transaction that was sent
to memory before it has been answered, so that after it no access with a translation
invalidated before it is still in flight. A command with an unknown opcode, or whose fetch
was answered with a bus error, is skipped and reported in ``error`` (SMMUv3's
``CMDQ_CONS.ERR`` codes ``CERROR_ILL`` and ``CERROR_ABT``).
"""

from amaranth.hdl import Cat, Const, Module, Signal
from amaranth.lib import enum, wiring
from amaranth.lib.wiring import In, Out

from ..bus.axi import AXI4Signature, Burst, Resp, Size
from ..one_hot import one_hot_fsm
from .caches import InvalidateKind, InvalidateLayout
from .format import CMD_BYTES, GRANULE_SHIFT, CommandLayout, Opcode, SyncCompletion
from .queue import QUEUE_INDEX_WIDTH, QueueConfigLayout, QueueMask, aligned, hold_while_waiting

__all__ = ["CommandError", "CommandQueue"]


class CommandError(enum.Enum, shape=2):
    """``CMDQ_CONS.err``: the last command error."""
    NONE = 0
    ILL  = 1    # unknown opcode
    ABT  = 2    # bus error fetching the command


class CommandQueue(wiring.Component):
    """Command queue consumer.

    Parameters
    ----------
    bus_signature : AXI4Signature
        Of its memory port (reads only).

    Members
    -------
    bus : ``Out(bus_signature)``
    cmdq : ``In(QueueConfigLayout())``
    prod : ``In(QUEUE_INDEX_WIDTH)``
    cons : ``Out(QUEUE_INDEX_WIDTH)``
        Reset to 0 while the queue is disabled.
    error : ``Out(CommandError)``
    error_pulse : ``Out(1)``
    invalidate : ``Out(InvalidateLayout())``
    sync_start : ``Out(1)``
        A ``SYNC`` begins: the transactions sent until now are the ones to wait for.
    sync_drained : ``In(1)``
        Those transactions have all been answered.
    sync_irq : ``Out(1)``
        Pulses when a ``SYNC`` with ``CS = IRQ`` completes.
    busy : ``Out(1)``
    """
    def __init__(self, *, bus_signature):
        if not isinstance(bus_signature, AXI4Signature) or bus_signature.data_width != 64:
            raise ValueError(f"The command queue's bus must be a 64-bit AXI4Signature, "
                             f"not {bus_signature!r}")
        super().__init__({
            "bus": Out(bus_signature),
            "cmdq": In(QueueConfigLayout()),
            "prod": In(QUEUE_INDEX_WIDTH),
            "cons": Out(QUEUE_INDEX_WIDTH),
            "error": Out(CommandError),
            "error_pulse": Out(1),
            "invalidate": Out(InvalidateLayout()),
            "sync_start": Out(1),
            "sync_drained": In(1),
            "sync_irq": Out(1),
            "busy": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        bus, cfg = self.bus, self.cmdq
        m.submodules.mask = queue_mask = QueueMask()
        m.d.comb += queue_mask.log2size.eq(cfg.log2size)
        mask = queue_mask.mask
        cons = self.cons
        command = Signal(CommandLayout())
        beat = Signal()
        fetch_error = Signal()

        m.d.comb += [
            bus.ar.payload.addr.eq(hold_while_waiting(
                m, bus.ar, aligned(cfg.base, CMD_BYTES) + (cons & (mask >> 1)) * CMD_BYTES)),
            bus.ar.payload.len.eq(CMD_BYTES // 8 - 1),
            bus.ar.payload.size.eq(Size.from_bytes(8)),
            bus.ar.payload.burst.eq(Burst.INCR),
            bus.b.ready.eq(1),
        ]

        def fail(code):
            m.d.sync += self.error.eq(code)
            m.d.comb += self.error_pulse.eq(1)

        def invalidate(kind, **fields):
            m.d.comb += self.invalidate.kind.eq(kind)
            for name, value in fields.items():
                m.d.comb += getattr(self.invalidate, name).eq(value)

        with one_hot_fsm(m):
            with m.State("IDLE"):
                with m.If(~cfg.enable):
                    m.d.sync += cons.eq(0)
                with m.Elif(((self.prod ^ cons) & mask) != 0):
                    m.d.sync += [beat.eq(0), fetch_error.eq(0)]
                    m.next = "FETCH_AR"

            with m.State("FETCH_AR"):
                m.d.comb += [self.busy.eq(1), bus.ar.valid.eq(1)]
                with m.If(bus.ar.ready):
                    m.next = "FETCH_R"

            with m.State("FETCH_R"):
                m.d.comb += [self.busy.eq(1), bus.r.ready.eq(1)]
                # The data is taken whether valid or not (so its enable is the state and the
                # beat alone): the valid beat is the last one taken into its word.
                m.d.sync += command.as_value().word_select(beat, 64).eq(bus.r.payload.data)
                with m.If(bus.r.valid):
                    m.d.sync += beat.eq(1)
                    with m.If(bus.r.payload.resp != Resp.OKAY):
                        m.d.sync += fetch_error.eq(1)
                    with m.If(bus.r.payload.last):
                        m.next = "EXEC"

            with m.State("EXEC"):
                m.d.comb += self.busy.eq(1)
                m.next = "ADVANCE"
                asid = command.arg[16:]
                with m.If(fetch_error):
                    fail(CommandError.ABT)
                with m.Else():
                    with m.Switch(command.opcode):
                        with m.Case(Opcode.CFGI_STE):
                            invalidate(InvalidateKind.STE, sid=command.arg)
                        with m.Case(Opcode.CFGI_ALL):
                            invalidate(InvalidateKind.STE_ALL)
                        with m.Case(Opcode.TLBI_NH_ALL, Opcode.TLBI_NSNH_ALL):
                            invalidate(InvalidateKind.TLB_ALL)
                        with m.Case(Opcode.TLBI_NH_ASID):
                            invalidate(InvalidateKind.TLB_ASID, asid=asid)
                        with m.Case(Opcode.TLBI_NH_VA):
                            va = Cat(Const(0, GRANULE_SHIFT), command.addr)
                            invalidate(InvalidateKind.TLB_VA, asid=asid, va=va)
                            with m.If(command.leaf):
                                m.d.comb += self.invalidate.kind.eq(InvalidateKind.TLB_VA_LEAF)
                        with m.Case(Opcode.SYNC):
                            m.d.comb += self.sync_start.eq(1)
                            m.next = "SYNC_WAIT"
                        with m.Default():
                            fail(CommandError.ILL)

            with m.State("SYNC_WAIT"):
                m.d.comb += self.busy.eq(1)
                with m.If(self.sync_drained):
                    m.d.comb += self.sync_irq.eq(command.cs == SyncCompletion.IRQ)
                    m.next = "ADVANCE"

            with m.State("ADVANCE"):
                m.d.comb += self.busy.eq(1)
                m.d.sync += cons.eq((cons + 1) & mask)
                m.next = "IDLE"

        return m
