"""One DMA channel as the SoC sees it: the engine behind its SystemRDL register block."""

from pathlib import Path

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..bus.axi import AXI4LiteSignature
from ..regs import RegisterBlock, compile_rdl
from .coalesce import IrqCoalescer
from .engine import DMAEngine

__all__ = ["DMA_RDL", "DMAChannel"]

#: The SystemRDL description of a channel's registers (addrmap ``dma_channel``).
DMA_RDL = Path(__file__).resolve().parent / "dma.rdl"


class DMAChannel(wiring.Component):
    """A memory-to-memory DMA channel with its registers and interrupt.

    Parameters
    ----------
    stream_id : int
        The channel's stream ID towards the SMMU, driven on ``sid`` of its bursts.
    addr_width, data_width, id_width, sid_width : int
        Of the AXI4 manager port.
    regs_addr_width : int or None
        Address width of the register port (by default, enough for the register block).
    **engine_params
        ``max_burst_beats``, ``max_outstanding_reads``, ``max_outstanding_writes``,
        ``buffer_depth``, ``queue_depth``: see :class:`DMAEngine`.

    Members
    -------
    bus : ``Out(AXI4Signature(...))``
        Memory traffic: data bursts, descriptor reads and status write-backs.
    regs : ``In(AXI4LiteSignature(...))``
        The registers of ``dma.rdl``.
    irq : ``Out(1)``
        ``INTR & INTR_EN``: coalesced completions and errors.
    """
    def __init__(self, *, stream_id, addr_width=40, data_width=64, id_width=4, sid_width=8,
                 regs_addr_width=None, **engine_params):
        if addr_width > 40:
            raise ValueError(f"Address width must be at most 40 (the LO/HI register pairs), "
                             f"not {addr_width!r}")
        self.engine = DMAEngine(addr_width=addr_width, data_width=data_width,
                                id_width=id_width, sid_width=sid_width, stream_id=stream_id,
                                **engine_params)
        self.registers = RegisterBlock(compile_rdl(DMA_RDL, top="dma_channel"),
                                       addr_width=regs_addr_width)
        self.coalescer = IrqCoalescer(threshold_width=8, delay_width=16)
        super().__init__({
            "bus": Out(self.engine.bus_signature),
            "regs": In(AXI4LiteSignature(
                addr_width=self.registers.bus.signature.addr_width, data_width=32)),
            "irq": Out(1),
        })

    @property
    def stream_id(self):
        return self.engine.stream_id

    def elaborate(self, platform):
        m = Module()
        m.submodules.engine = engine = self.engine
        m.submodules.registers = registers = self.registers
        m.submodules.coalescer = coalescer = self.coalescer
        wiring.connect(m, wiring.flipped(self.bus), engine.bus)
        wiring.connect(m, wiring.flipped(self.regs), registers.bus)

        f = registers.f
        aw = len(engine.src)

        def address(lo, hi):
            return Cat(lo.addr.q, hi.addr.q)[:aw]

        # A completion reaches the interrupt coalescer a cycle late, from a register: it is
        # decided from the bus's write responses, which come from the far side of the chip.
        done_irq = Signal()
        m.d.sync += done_irq.eq(engine.done_irq)

        m.d.comb += [
            engine.go.eq(f.CTRL.go.q),
            engine.soft_reset.eq(f.CTRL.soft_reset.q),
            engine.clear_counters.eq(f.CTRL.clear_counters.q),
            engine.cyclic.eq(f.CTRL.cyclic.q),
            engine.src.eq(address(f.SRC_LO, f.SRC_HI)),
            engine.dst.eq(address(f.DST_LO, f.DST_HI)),
            engine.length.eq(f.LEN.bytes.q),
            engine.cur_desc.eq(address(f.CURDESC_LO, f.CURDESC_HI)),
            engine.cur_desc_write.eq(f.CURDESC_LO.addr.swmod),
            engine.tail_desc.eq(address(f.TAILDESC_LO, f.TAILDESC_HI)),
            engine.tail_write.eq(f.TAILDESC_LO.addr.swmod),

            f.STATUS.busy.d.eq(engine.busy),
            f.STATUS.halted.d.eq(engine.halted),
            f.STATUS.resetting.d.eq(engine.resetting),
            f.STATUS.err_code.d.eq(engine.err_code),
            f.STATUS.err_resp.d.eq(engine.err_resp),
            f.ERR_DESC_LO.addr.d.eq(engine.err_desc[:32]),
            f.ERR_DESC_HI.addr.d.eq(engine.err_desc[32:]),
            f.COMPLETED.count.d.eq(engine.completed),
            f.JOB_BYTES.bytes.d.eq(engine.job_bytes),
            f.BYTES.count.d.eq(engine.bytes_moved),
            f.BUSY_CYCLES.count.d.eq(engine.busy_cycles),
            f.STALL_CYCLES.count.d.eq(engine.stall_cycles),

            coalescer.event.eq(done_irq),
            coalescer.idle.eq(~engine.busy),
            coalescer.threshold.eq(f.COALESCE.threshold.q),
            coalescer.delay.eq(f.COALESCE.delay.q),
            f.INTR.done.d.eq(coalescer.fire),
            f.INTR.error.d.eq(engine.error),
            self.irq.eq(registers.irq),
        ]
        return m
