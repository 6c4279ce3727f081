"""The SMMU as the SoC instantiates it: translation stages, walker, caches and queues behind
the SystemRDL register block ``smmu.rdl``.

::

    upstream[p] ──AR──▶ TranslationStage ──AR (PA)──▶ downstream[p]
                ──AW──▶ TranslationStage ──AW (PA)──▶
                ──W───▶ (route: forward / drop) ─W──▶
                ◀─R/B── (or SLVERR for faults) ◀R/B──
                     │ misses                ▲ lookups
                     ▼                       │
    ATOS regs ──▶ Walker ◀── StreamCache · IOTLB · WalkCache ◀── invalidations ── CommandQueue
                     │ STE / descriptor reads, event writes          │ command reads
                     └──────────────▶ Interconnect ◀─────────────────┘
                                           └──▶ table (to the SoC interconnect)

Each upstream port is the port of one DMA master (its stream ID comes on ``sid``), with its
own AR and AW translation stages; all share the caches and the walker.

With ``prefetch`` (and ``CR0.prefetch_en``), each stage asks the walker to prefetch the next
page of the stream it is translating, which the walker does while no stage waits for it, so
a sequential stream stops missing in the IOTLB after its first page (see :mod:`.walker`).
"""

from pathlib import Path

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out, connect

from ..bus.axi import AXI4LiteSignature, AXI4Signature
from ..bus.interconnect import Interconnect, Window
from ..config import SocConfig
from ..regs import RegisterBlock, compile_rdl
from .caches import IOTLB, InvalidateKind, StreamCache, WalkCache
from .cmdq import CommandQueue
from .translate import TranslationStage
from .walker import Walker

__all__ = ["SMMU_RDL", "SMMU"]

#: The SystemRDL description of the SMMU's registers (addrmap ``smmu``).
SMMU_RDL = Path(__file__).resolve().parent / "smmu.rdl"

_COUNTER_WIDTH = 32
_SYNC_COUNT_WIDTH = 16


class SMMU(wiring.Component):
    """An Arm SMMUv3-style IOMMU (see :mod:`.format` for the subset).

    Parameters
    ----------
    config : SocConfig
        Address, data and stream-ID widths; the ``table`` port has the signature of an
        interconnect manager (``config.manager_signature``).
    ports : int
        Upstream/downstream port pairs, one per DMA master.
    bus_signature : AXI4Signature or None
        Of the upstream and downstream ports (``config.manager_signature`` by default).
    tlb_entries, walk_cache_entries, ste_cache_entries : int
        Sizes of the caches.
    prefetch : bool
        Build the next-page prefetch (then ``CR0.prefetch_en``, set at reset, turns it on
        and off; without it the bit has no effect).
    regs_addr_width : int or None
        Address width of the register port (by default, enough for the register block).

    Members
    -------
    upstream : ``In(bus_signature).array(ports)``
        Transactions with IOVAs, from the DMA masters.
    downstream : ``Out(bus_signature).array(ports)``
        The same transactions with physical addresses, to the interconnect.
    table : ``Out(config.manager_signature)``
        Stream table and descriptor reads, command reads and event writes.
    regs : ``In(AXI4LiteSignature(...))``
        The registers of ``smmu.rdl``.
    irq : ``Out(1)``
        ``IRQ_STATUS & IRQ_ENABLE``: events, sync completions and command errors.
    """
    def __init__(self, config=None, *, ports=1, bus_signature=None, tlb_entries=16,
                 walk_cache_entries=8, ste_cache_entries=4, regs_addr_width=None,
                 prefetch=True):
        config = SocConfig() if config is None else config
        if not isinstance(config, SocConfig):
            raise TypeError(f"Configuration must be a SocConfig, not {config!r}")
        if not isinstance(ports, int) or ports < 1:
            raise ValueError(f"Number of ports must be a positive integer, not {ports!r}")
        if bus_signature is None:
            bus_signature = config.manager_signature
        if not isinstance(bus_signature, AXI4Signature) or bus_signature.data_width != 64:
            raise ValueError(f"Bus signature must be a 64-bit AXI4Signature, "
                             f"not {bus_signature!r}")
        if bus_signature.addr_width != 40 or not 1 <= bus_signature.sid_width <= 8:
            raise ValueError(f"Bus signature must have 40-bit addresses and a stream ID of 1 "
                             f"to 8 bits, not {bus_signature!r}")
        table_signature = config.manager_signature
        if table_signature.id_width < 2:
            raise ValueError(f"The table port needs an ID of at least 2 bits, "
                             f"not {table_signature!r}")
        self._config = config
        self._ports = ports
        self._prefetch = bool(prefetch)
        self.bus_signature = bus_signature
        inner = table_signature.replace(id_width=table_signature.id_width - 1)
        self.table_interconnect = Interconnect(
            inner, 2, [Window("memory", 0, 1 << table_signature.addr_width)])
        sid_width = bus_signature.sid_width
        stages = 2 * ports
        self.walker = Walker(clients=stages + 1, sid_width=sid_width, bus_signature=inner,
                             prefetchers=stages if prefetch else 0)
        self.cmdq = CommandQueue(bus_signature=inner)
        self.tlb = IOTLB(entries=tlb_entries, lookups=stages + 1, users=stages)
        self.walk_cache = WalkCache(entries=walk_cache_entries)
        self.ste_cache = StreamCache(entries=ste_cache_entries, sid_width=sid_width,
                                     lookups=stages + 1)
        self.read_stages = [TranslationStage(bus_signature, write=False, prefetch=prefetch)
                            for _ in range(ports)]
        self.write_stages = [TranslationStage(bus_signature, write=True, prefetch=prefetch)
                             for _ in range(ports)]
        self.registers = RegisterBlock(compile_rdl(SMMU_RDL, top="smmu"),
                                       addr_width=regs_addr_width)
        super().__init__({
            "upstream": In(bus_signature).array(ports),
            "downstream": Out(bus_signature).array(ports),
            "table": Out(self.table_interconnect.subordinate_signature),
            "regs": In(AXI4LiteSignature(addr_width=self.registers.bus.signature.addr_width)),
            "irq": Out(1),
        })

    @property
    def config(self):
        return self._config

    @property
    def ports(self):
        return self._ports

    @property
    def prefetch(self):
        return self._prefetch

    def elaborate(self, platform):
        m = Module()
        m.submodules.table_interconnect = ic = self.table_interconnect
        m.submodules.walker = walker = self.walker
        m.submodules.cmdq = cmdq = self.cmdq
        m.submodules.tlb = tlb = self.tlb
        m.submodules.walk_cache = walk_cache = self.walk_cache
        m.submodules.ste_cache = ste_cache = self.ste_cache
        m.submodules.registers = registers = self.registers
        f = registers.f

        connect(m, wiring.flipped(self.regs), registers.bus)
        connect(m, walker.bus, ic.managers[0])
        connect(m, cmdq.bus, ic.managers[1])
        connect(m, ic.subordinates[0], wiring.flipped(self.table))

        enable = f.CR0.smmuen.q
        # The command queue's invalidation, registered once for every cache, the walker and
        # the stages alike, so that its decode stays off the caches' compares.
        invalidate = Signal.like(cmdq.invalidate)
        invalidating = Signal()
        m.d.sync += [invalidate.eq(cmdq.invalidate),
                     invalidating.eq(cmdq.invalidate.kind != InvalidateKind.NONE)]
        stages = []
        for p in range(self._ports):
            read, write = self.read_stages[p], self.write_stages[p]
            m.submodules[f"read_stage{p}"] = read
            m.submodules[f"write_stage{p}"] = write
            # The port's channels, each a stream from manager to subordinate.
            up, down = wiring.flipped(self.upstream[p]), wiring.flipped(self.downstream[p])
            for source, sink in [(up.ar, read.up_addr), (read.down_addr, down.ar),
                                 (down.r, read.down_resp), (read.up_resp, up.r),
                                 (up.aw, write.up_addr), (write.down_addr, down.aw),
                                 (up.w, write.up_w), (write.down_w, down.w),
                                 (down.b, write.down_resp), (write.up_resp, up.b)]:
                connect(m, source, sink)
            stages += [read, write]
        # ``CR0.prefetch_en`` reaches the walker's arbitration through a register of its own,
        # which placement puts beside the walker rather than in the register block.
        prefetch_en = Signal()
        m.d.sync += prefetch_en.eq(f.CR0.prefetch_en.q)
        for k, stage in enumerate(stages):
            m.d.comb += [stage.enable.eq(enable),
                         stage.flush.eq(invalidating)]
            connect(m, stage.ste, ste_cache.lookup[k])
            connect(m, stage.tlb, tlb.lookup[k])
            connect(m, stage.walk, walker.clients[k])
            if self._prefetch:
                request = walker.prefetch[k]
                m.d.comb += [
                    request.valid.eq(stage.prefetch.valid & prefetch_en),
                    request.sid.eq(stage.prefetch.sid),
                    request.addr.eq(stage.prefetch.addr),
                    stage.prefetch.ready.eq(request.ready),
                ]
        atos_port = len(stages)
        connect(m, walker.ste, ste_cache.lookup[atos_port])
        connect(m, walker.tlb, tlb.lookup[atos_port])
        connect(m, walker.walk_cache, walk_cache.lookup)
        m.d.comb += [
            ste_cache.fill.eq(walker.ste_fill), ste_cache.fill_entry.eq(walker.ste_fill_entry),
            tlb.fill.eq(walker.tlb_fill), tlb.fill_entry.eq(walker.tlb_fill_entry),
            walk_cache.fill.eq(walker.walk_fill),
            walk_cache.fill_entry.eq(walker.walk_fill_entry),
            walk_cache.enable.eq(f.CR0.walk_cache_en.q),
            tlb.invalidate.eq(invalidate),
            walk_cache.invalidate.eq(invalidate),
            ste_cache.invalidate.eq(invalidate),
            walker.invalidating.eq(invalidating),
        ]

        # Configuration.
        m.d.comb += [
            walker.enable.eq(enable),
            walker.strtab_base.eq(Cat(f.STRTAB_BASE_LO.addr.q, f.STRTAB_BASE_HI.addr.q)),
            walker.strtab_log2size.eq(f.STRTAB_CFG.log2size.q),
            walker.evtq.enable.eq(f.CR0.evtqen.q),
            walker.evtq.base.eq(Cat(f.EVTQ_BASE_LO.addr.q, f.EVTQ_BASE_HI.addr.q)),
            walker.evtq.log2size.eq(f.EVTQ_CFG.log2size.q),
            walker.evtq_cons.eq(f.EVTQ_CONS.index.q),
            walker.evtq_ovack.eq(f.EVTQ_CONS.ovackflg.q),
            f.EVTQ_PROD.index.d.eq(walker.evtq_prod),
            f.EVTQ_PROD.ovflg.d.eq(walker.evtq_overflow),
            f.EVTQ_LOST.count.d.eq(walker.evtq_lost),
            cmdq.cmdq.enable.eq(f.CR0.cmdqen.q),
            cmdq.cmdq.base.eq(Cat(f.CMDQ_BASE_LO.addr.q, f.CMDQ_BASE_HI.addr.q)),
            cmdq.cmdq.log2size.eq(f.CMDQ_CFG.log2size.q),
            cmdq.prod.eq(f.CMDQ_PROD.index.q),
            f.CMDQ_CONS.index.d.eq(cmdq.cons),
            f.CMDQ_CONS.err.d.eq(cmdq.error),
            f.IRQ_STATUS.event.d.eq(walker.event),
            f.IRQ_STATUS.sync.d.eq(cmdq.sync_irq),
            f.IRQ_STATUS.cmdq_err.d.eq(cmdq.error_pulse),
            self.irq.eq(registers.irq),
        ]

        # CMD_SYNC: wait until the transactions issued before it have been answered.
        drained = []
        for k, stage in enumerate(stages):
            issued = Signal(_SYNC_COUNT_WIDTH, name=f"issued{k}")
            completed = Signal(_SYNC_COUNT_WIDTH, name=f"completed{k}")
            target = Signal(_SYNC_COUNT_WIDTH, name=f"sync_target{k}")
            m.d.sync += [issued.eq(issued + stage.issued),
                         completed.eq(completed + stage.completed)]
            with m.If(cmdq.sync_start):
                m.d.sync += target.eq(issued + stage.issued)
            behind = (target - completed)[_SYNC_COUNT_WIDTH - 1]
            drained.append(behind | (target == completed))
        m.d.comb += cmdq.sync_drained.eq(Cat(drained).all())

        # ATOS: a walker client driven by registers.
        atos = walker.clients[atos_port]
        atos_busy = Signal()
        atos_status = Signal.like(atos.status)
        atos_pa = Signal.like(atos.pa)
        m.d.comb += [
            atos.valid.eq(atos_busy),
            atos.sid.eq(f.ATOS_SID.sid.q),
            atos.addr.eq(Cat(f.ATOS_ADDR_LO.addr.q, f.ATOS_ADDR_HI.addr.q)),
            atos.write.eq(f.ATOS_CTRL.write.q),
            atos.instr.eq(f.ATOS_CTRL.instr.q),
            f.ATOS_STATUS.busy.d.eq(atos_busy),
            f.ATOS_STATUS.status.d.eq(atos_status),
            f.ATOS_PAR_LO.addr.d.eq(atos_pa[:32]),
            f.ATOS_PAR_HI.addr.d.eq(atos_pa[32:]),
        ]
        with m.If(f.ATOS_CTRL.go.q & ~atos_busy):
            m.d.sync += atos_busy.eq(1)
        with m.If(atos.done):
            m.d.sync += [atos_busy.eq(0), atos_status.eq(atos.status), atos_pa.eq(atos.pa)]

        # Counters.
        counters = {
            "HITS": Cat(stage.hit for stage in stages),
            "MISSES": Cat(stage.miss for stage in stages),
            "WALKS": walker.walk_start,
            "WALK_CYCLES": walker.walk_busy,
            "WALK_READS": walker.walk_read,
            "PREFETCHES": walker.prefetch_start,
        }
        # Each counts its pulses a cycle late, from a register: the pulses come from the
        # stages' handshakes and the walker's state, which reach no carry chain so.
        for name, pulses in counters.items():
            count = Signal(_COUNTER_WIDTH, name=name.lower())
            pulsed = Signal(len(pulses), name=f"{name.lower()}_pulsed")
            m.d.sync += pulsed.eq(pulses)
            increment = sum(pulsed[n] for n in range(len(pulsed)))
            m.d.sync += count.eq(count + increment)
            m.d.comb += getattr(f, name).count.d.eq(count)
        return m
