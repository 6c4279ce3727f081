"""The formal jobs of the SoC's blocks: each block in a small configuration, its ports'
property sets, its own properties, and the depths its proofs run to.

``BLOCKS[name]`` is a :class:`Job`; ``job.harness()`` builds the harness (``dut=`` takes
another block of the same ports, such as a deliberately broken one).
"""

from dataclasses import dataclass

from amaranth.hdl import Cat

from ...hw.bus.axi import AXI4Signature
from ...hw.bus.interconnect import Interconnect, Window
from ...hw.bus.lite_decoder import LiteDecoder
from ...hw.bus.register_slice import AXI4RegisterSlice
from ...hw.dma.engine import DMAEngine
from ...hw.ident.ident import Ident
from ...hw.regs import RegisterBlock, compile_rdl
from .harness import Harness, Inside
from .cache import DirtyLineProperties, MaintainedLineProperties
from .dma import DMATransferProperties, DescriptorChainProperties
from .properties import AXI4LiteProperties, AXI4Properties, CpuPortProperties
from .slice import slice_invariants
from .smmu import (StageSafetyProperties, StreamAbortProperties, TranslationClientProperties,
                   WalkCovers, stage_invariants, walker_invariants)

__all__ = ["Job", "BLOCKS", "available"]


@dataclass(frozen=True)
class Job:
    """A block's formal job.

    ``build(dut)`` returns ``(dut, sets, inputs)``: the block (``dut`` if given, else a
    new one), its property sets, and any more free inputs; ``depth`` is the bounded check
    CI runs, ``deep`` the one ``--run-slow`` runs, ``induction`` the k-induction length
    tried (0: none) and ``proven`` whether it closes (CI then runs it in place of the
    bounded check), ``cover_depth`` the cycles each cover point is sought within (by CI
    too if ``covers_in_ci``) but those of ``beyond_cover_depth`` (``"set.point"``, reached
    only by longer runs), ``config`` the configuration in words."""
    name: str
    build: object
    config: str
    depth: int
    deep: int
    induction: int
    cover_depth: int
    proven: bool = False
    covers_in_ci: bool = True
    beyond_cover_depth: tuple = ()

    def harness(self, dut=None):
        dut, sets, inputs = self.build(dut)
        return Harness(dut, sets, inputs=inputs)


_SMALL_AXI = AXI4Signature(addr_width=16, data_width=32, id_width=1, sid_width=0)


def _slice(dut):
    dut = dut or AXI4RegisterSlice(_SMALL_AXI)
    upstream = AXI4Properties(dut.upstream, role="subordinate", name="upstream", max_len=3)
    downstream = AXI4Properties(dut.downstream, role="manager", name="downstream",
                                max_len=3, max_w_leading=4)
    if isinstance(dut, AXI4RegisterSlice):
        downstream.add_invariants(slice_invariants(Inside(dut), upstream, downstream))
    return dut, [upstream, downstream], []


def _interconnect(dut):
    dut = dut or Interconnect(_SMALL_AXI, 2, [Window("mem", 0x0000, 0x2000)], max_outstanding=2)
    sets = [AXI4Properties(port, role="subordinate", name=f"manager{index}", max_len=3)
            for index, port in enumerate(dut.managers)]
    sets += [AXI4Properties(port, role="manager", name=f"subordinate{index}", max_len=3,
                            max_reads=4, max_writes=4)
             for index, port in enumerate(dut.subordinates)]
    return dut, sets, []


def _dma(dut):
    dut = dut or DMAEngine(addr_width=16, data_width=64, id_width=1, sid_width=1,
                           max_burst_beats=2, max_outstanding_reads=2,
                           max_outstanding_writes=2, buffer_depth=5, queue_depth=1)
    return dut, [AXI4Properties(dut.bus, role="manager", name="bus", max_len=1),
                 DMATransferProperties(dut, max_length=48)], []


def _dma_chain(dut):
    dut = dut or DMAEngine(addr_width=16, data_width=64, id_width=1, sid_width=1,
                           max_burst_beats=1, max_outstanding_reads=1,
                           max_outstanding_writes=1, buffer_depth=3, queue_depth=1)
    return dut, [AXI4Properties(dut.bus, role="manager", name="bus", max_len=7,
                                max_reads=2, max_writes=2),
                 DescriptorChainProperties(dut, max_length=16)], []


def _walker(dut):
    from ...hw.smmu.walker import Walker
    signature = AXI4Signature(addr_width=40, data_width=64, id_width=1, sid_width=1)
    dut = dut or Walker(clients=1, sid_width=1, bus_signature=signature)
    bus = AXI4Properties(dut.bus, role="manager", name="bus", max_len=3)
    abort = StreamAbortProperties(dut)
    if isinstance(dut, Walker):
        abort.add_invariants(walker_invariants(Inside(dut), dut, bus))
    return dut, [bus, TranslationClientProperties(dut.clients[0], role="subordinate",
                                                  name="client"),
                 WalkCovers(dut), abort], []


def _stage(write):
    def build(dut):
        from ...hw.smmu.translate import TranslationStage
        signature = AXI4Signature(addr_width=40, data_width=64, id_width=1, sid_width=1)
        dut = dut or TranslationStage(signature, write=write, max_outstanding=2)
        safety = StageSafetyProperties(dut)
        if isinstance(dut, TranslationStage):
            safety.add_invariants(stage_invariants(Inside(dut), dut, max_outstanding=2))
        return dut, [TranslationClientProperties(dut.walk, role="manager", name="walk"),
                     safety], []
    return build


def _small_config():
    from ...hw.config import SocConfig
    return SocConfig(id_width=2, sid_width=1, max_outstanding=2, cache_size=256,
                     cache_ways=2, cache_line_size=16)


def _smmu(dut):
    from ...hw.smmu.smmu import SMMU
    dut = dut or SMMU(_small_config(), ports=1, tlb_entries=2, walk_cache_entries=2,
                      ste_cache_entries=2, prefetch=False)
    return dut, [AXI4Properties(dut.upstream[0], role="subordinate", name="upstream",
                                max_len=3),
                 AXI4Properties(dut.downstream[0], role="manager", name="downstream",
                                max_len=3),
                 AXI4Properties(dut.table, role="manager", name="table", max_len=3),
                 AXI4LiteProperties(dut.regs, role="subordinate", name="regs")], []


def _cache(dut):
    from ...hw.cache.cache import Cache
    from ...hw.cache.geometry import CacheGeometry
    dut = dut or Cache(CacheGeometry(size=32, ways=1, line_size=16), id_width=1, sid_width=1)
    return dut, [CpuPortProperties(dut.cpu, role="subordinate", name="cpu"),
                 AXI4Properties(dut.bus, role="manager", name="bus", max_len=1),
                 AXI4LiteProperties(dut.regs, role="subordinate", name="regs"),
                 DirtyLineProperties(dut, line_size=16)], []


def _cache_maintenance(dut):
    from ...hw.cache.core import CacheCore
    from ...hw.cache.geometry import CacheGeometry
    dut = dut or CacheCore(CacheGeometry(size=32, ways=1, line_size=16), id_width=1,
                           sid_width=1)
    return dut, [CpuPortProperties(dut.cpu, role="subordinate", name="cpu"),
                 AXI4Properties(dut.bus, role="manager", name="bus", max_len=1),
                 MaintainedLineProperties(dut)], []


_MMIO_WINDOWS = (("ident", 0x0000, 0x1000), ("dma0", 0x1000, 0x1000), ("smmu", 0x4000, 0x1000))


def _at_most_one(value):
    bits = list(value)
    return ~Cat(a & b for n, a in enumerate(bits) for b in bits[n + 1:]).any()


def _lite_decoder(dut):
    dut = dut or LiteDecoder(_MMIO_WINDOWS, addr_width=16)
    inside = Inside(dut)
    # Its write and read FSMs (IDLE, FORWARD, RESPOND) hold one access each, for the
    # window of the one-hot w_sel / r_sel (none: the DECERR answer); AW and W to the window
    # are taken once each (aw_done, w_done), and both before RESPOND.
    w_sel, aw_done, w_done, r_sel = (inside[name] for name in
                                     ("w_sel", "aw_done", "w_done", "r_sel"))
    write_state, write_states = inside.fsm("write_state")
    read_state, read_states = inside.fsm("read_state")
    w_forward, w_respond = (write_state == write_states[name] for name in ("FORWARD", "RESPOND"))
    r_respond = read_state == read_states["RESPOND"]
    w_idle, r_idle = write_state == write_states["IDLE"], read_state == read_states["IDLE"]

    def bus_invariants(lite, m):
        pending = lite.state
        return {"write_state": w_idle | w_forward | w_respond,
                "read_state": r_idle | (read_state == read_states["FORWARD"]) | r_respond,
                "w_sel": _at_most_one(w_sel), "r_sel": _at_most_one(r_sel),
                "both_before_respond": ~w_respond | (aw_done & w_done),
                "aw_pending": pending["aw"] == ~w_idle,
                "w_pending": pending["w"] == ((w_forward & w_done) | w_respond),
                "ar_pending": pending["ar"] == ~r_idle}

    def window_invariants(index):
        def invariants(lite, m):
            pending = lite.state
            return {"aw_pending": pending["aw"] == (w_sel[index] &
                                                    ((w_forward & aw_done) | w_respond)),
                    "w_pending": pending["w"] == (w_sel[index] &
                                                  ((w_forward & w_done) | w_respond)),
                    "ar_pending": pending["ar"] == (r_sel[index] & r_respond)}
        return invariants

    return dut, [AXI4LiteProperties(dut.bus, role="subordinate", name="bus")
                 .add_invariants(bus_invariants),
                 *(AXI4LiteProperties(getattr(dut, name), role="manager", name=name)
                   .add_invariants(window_invariants(index))
                   for index, (name, _, _) in enumerate(_MMIO_WINDOWS))], []


def _register_block_invariants(lite, m):
    # A register block (hw/regs/block.py) holds one write address (AW READY low while it
    # does), one write data beat (W READY low), and one response of each direction, which
    # holds the next access back (AR READY low while R is valid): what the AXI4-Lite set
    # counts outstanding is what it holds.
    bus, pending = lite.port, lite.state
    return {"aw_pending": pending["aw"] == (~bus.aw.ready) + bus.b.valid,
            "w_pending": pending["w"] == (~bus.w.ready) + bus.b.valid,
            "ar_pending": pending["ar"] == bus.r.valid}


def _ident(dut):
    dut = dut or Ident()
    return dut, [AXI4LiteProperties(dut.bus, role="subordinate", name="bus")
                 .add_invariants(_register_block_invariants)], []


def _dma_regs(dut):
    from ...hw.dma.channel import DMA_RDL
    dut = dut or RegisterBlock(compile_rdl(DMA_RDL, top="dma_channel"))
    return dut, [AXI4LiteProperties(dut.bus, role="subordinate", name="bus")
                 .add_invariants(_register_block_invariants)], []


BLOCKS = {job.name: job for job in (
    Job("register_slice", _slice, "AXI4, 16-bit addresses, 32-bit data, 1-bit IDs, bursts of up to 4 beats",
        depth=7, deep=9, induction=1, proven=True, cover_depth=8),
    Job("interconnect", _interconnect, "2 managers (1-bit IDs, 16-bit addresses, 32-bit data), "
        "one 8 KiB window and the decode-error subordinate, 2 outstanding per manager and "
        "direction, bursts of up to 4 beats",
        depth=7, deep=9, induction=8, cover_depth=10, covers_in_ci=False),
    Job("dma", _dma, "DMA engine in register mode: 16-bit addresses, 64-bit data, 1-bit IDs, "
        "bursts of up to 2 beats, 2 reads and 2 writes outstanding, transfers of up to 48 bytes",
        depth=17, deep=20, induction=8, cover_depth=18, covers_in_ci=False),
    Job("dma_chain", _dma_chain, "DMA engine in descriptor mode: a chain of one or two "
        "descriptors in a symbolic memory, 16-bit addresses, 64-bit data, 1-bit IDs, bursts of "
        "1 beat, 1 read and 1 write outstanding, transfers of up to 16 bytes",
        depth=22, deep=27, induction=8, cover_depth=34, covers_in_ci=False,
        # The second descriptor completes beyond 34 cycles; bursts are of one beat.
        beyond_cover_depth=("chain.second_done", "bus.write_burst", "bus.aw_ends_at_4k")),
    Job("smmu_walker", _walker, "SMMU walker alone: one client, 1-bit stream IDs, no "
        "prefetch, the caches' answers free", depth=16, deep=30, induction=2, proven=True,
        cover_depth=16),
    Job("smmu_read_stage", _stage(write=False), "the SMMU's AR translation stage alone: "
        "1-bit IDs and stream IDs; the STE cache, IOTLB and walker answers free but for one "
        "aborting stream and one faulting page", depth=12, deep=16, induction=2, proven=True,
        cover_depth=14),
    Job("smmu_write_stage", _stage(write=True), "the SMMU's AW translation stage alone (with "
        "its W routing and B answers): 1-bit IDs and stream IDs, 2 writes routed; the STE "
        "cache, IOTLB and walker answers free but for one aborting stream and one faulting "
        "page", depth=12, deep=16, induction=2, proven=True, cover_depth=14),
    Job("smmu", _smmu, "SMMU: one port pair, 2-bit IDs, 1-bit stream IDs, IOTLB, walk and STE "
        "caches of 2 entries, no prefetch", depth=4, deep=8, induction=6, cover_depth=12,
        covers_in_ci=False,
        # A fault record needs a translation that faults, after the SMMU is set up.
        beyond_cover_depth=("table.write_burst", "table.write_response", "table.full_burst")),
    Job("cache", _cache, "cache: 32 bytes, direct-mapped, 16-byte lines, 1-bit IDs",
        depth=8, deep=12, induction=6, cover_depth=16, covers_in_ci=False),
    Job("cache_maintenance", _cache_maintenance, "the cache's core with its maintenance port "
        "free (by range): 32 bytes, direct-mapped, 16-byte lines, 1-bit IDs",
        depth=11, deep=14, induction=6, cover_depth=16, covers_in_ci=False),
    Job("lite_decoder", _lite_decoder, "AXI4-Lite, 16-bit addresses, 3 windows of 4 KiB",
        depth=12, deep=30, induction=1, proven=True, cover_depth=10),
    Job("ident", _ident, "ident registers, default configuration",
        depth=10, deep=24, induction=1, proven=True, cover_depth=8),
    Job("dma_regs", _dma_regs, "the DMA channel's register block (dma.rdl)",
        depth=8, deep=20, induction=1, proven=True, cover_depth=8),
)}


def available():
    """The blocks' names, in the order the jobs run."""
    return list(BLOCKS)
