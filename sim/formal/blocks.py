"""The formal jobs of the SoC's blocks: each block in a small configuration, its ports'
property sets, its own properties, and the depths its proofs run to.

``BLOCKS[name]`` is a :class:`Job`; ``job.harness()`` builds the harness (``dut=`` takes
another block of the same ports, such as a deliberately broken one).
"""

from dataclasses import dataclass

from ...hw.bus.axi import AXI4Signature
from ...hw.bus.lite_decoder import LiteDecoder
from ...hw.bus.register_slice import AXI4RegisterSlice
from ...hw.ident.ident import Ident
from ...hw.regs import RegisterBlock, compile_rdl
from .harness import Harness
from .properties import AXI4LiteProperties, AXI4Properties

__all__ = ["Job", "BLOCKS", "available"]


@dataclass(frozen=True)
class Job:
    """A block's formal job.

    ``build(dut)`` returns ``(dut, sets, inputs)``: the block (``dut`` if given, else a
    new one), its property sets, and any more free inputs; ``depth`` is the bounded check
    CI runs, ``deep`` the one ``--run-slow`` runs, ``induction`` the k-induction length
    tried (0: none), ``config`` the configuration in words."""
    name: str
    build: object
    config: str
    depth: int
    deep: int
    induction: int
    cover_depth: int

    def harness(self, dut=None):
        dut, sets, inputs = self.build(dut)
        return Harness(dut, sets, inputs=inputs)


def _slice(dut):
    signature = AXI4Signature(addr_width=16, data_width=32, id_width=1, sid_width=0)
    dut = dut or AXI4RegisterSlice(signature)
    return dut, [AXI4Properties(dut.upstream, role="subordinate", name="upstream", max_len=3),
                 AXI4Properties(dut.downstream, role="manager", name="downstream",
                                max_len=3, max_w_leading=4)], []


_MMIO_WINDOWS = (("ident", 0x0000, 0x1000), ("dma0", 0x1000, 0x1000), ("smmu", 0x4000, 0x1000))


def _lite_decoder(dut):
    dut = dut or LiteDecoder(_MMIO_WINDOWS, addr_width=16)
    return dut, [AXI4LiteProperties(dut.bus, role="subordinate", name="bus"),
                 *(AXI4LiteProperties(getattr(dut, name), role="manager", name=name)
                   for name, _, _ in _MMIO_WINDOWS)], []


def _ident(dut):
    dut = dut or Ident()
    return dut, [AXI4LiteProperties(dut.bus, role="subordinate", name="bus")], []


def _dma_regs(dut):
    from ...hw.dma.channel import DMA_RDL
    dut = dut or RegisterBlock(compile_rdl(DMA_RDL, top="dma_channel"))
    return dut, [AXI4LiteProperties(dut.bus, role="subordinate", name="bus")], []


BLOCKS = {job.name: job for job in (
    Job("register_slice", _slice, "AXI4, 16-bit addresses, 32-bit data, 1-bit IDs, bursts of up to 4 beats",
        depth=8, deep=12, induction=8, cover_depth=8),
    Job("lite_decoder", _lite_decoder, "AXI4-Lite, 16-bit addresses, 3 windows of 4 KiB",
        depth=12, deep=30, induction=8, cover_depth=10),
    Job("ident", _ident, "ident registers, default configuration",
        depth=10, deep=24, induction=8, cover_depth=8),
    Job("dma_regs", _dma_regs, "the DMA channel's register block (dma.rdl)",
        depth=8, deep=20, induction=6, cover_depth=8),
)}


def available():
    """The blocks' names, in the order the jobs run."""
    return list(BLOCKS)
