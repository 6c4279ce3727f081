"""Simulation harness for the SMMU: bus-functional models on every port, one memory behind
both the downstream and the table ports, and a protocol checker on each port::

    harness = SmmuHarness(rng=random.Random(1))

    async def testbench(ctx):
        await harness.write_reg(ctx, "CR0", smmuen=1)
        read = harness.managers[0].read(0x1000, len=3, sid=2)
        await harness.managers[0].wait(ctx, read)

    harness.run(testbench)
    harness.assert_clean()
"""

import random

from amaranth.sim import Simulator

from ...hw.bus.axi import Resp
from ..harness import Harness
from ..bus.checker import AXI4Checker, AXI4LiteChecker
from ..bus.manager import AXI4Manager
from ..bus.subordinate import AXI4Subordinate
from ..bus.memory import ReferenceMemory
from ..bus.lite import lite_read, lite_write
from ...hw.regs import block_spec, compile_rdl
from ...hw.smmu.smmu import SMMU, SMMU_RDL

__all__ = ["SmmuHarness"]


class SmmuHarness(Harness):
    """An :class:`SMMU` with an :class:`AXI4Manager` on each upstream port and
    :class:`AXI4Subordinate` models over one :class:`ReferenceMemory` on the downstream and
    table ports.

    Parameters
    ----------
    rng : random.Random
    ports : int
    table_error : callable or None
        ``error(write, addr)`` for the table port (descriptor and STE bus errors).
    read_latency, write_latency : int
        Of the memory models.
    valid_gap, ready_gap : float
        Random stalls of the managers and memory models.
    **smmu_params
        Passed to :class:`SMMU`.

    Attributes
    ----------
    memory : ReferenceMemory
    managers : list of AXI4Manager
    checkers : dict of str to checker
        ``upstream{p}``, ``downstream{p}`` (recording), ``table`` and ``regs``.
    """
    def __init__(self, *, rng=None, ports=1, table_error=None, read_latency=6,
                 write_latency=3, valid_gap=0.0, ready_gap=0.0, **smmu_params):
        rng = rng if rng is not None else random.Random(0)
        self.smmu = smmu = SMMU(ports=ports, **smmu_params)
        self.spec = block_spec(compile_rdl(SMMU_RDL, top="smmu"))
        self.memory = ReferenceMemory()
        self.sim = Simulator(smmu)
        self.sim.add_clock(1e-8)
        self.managers = []
        self.checkers = {}
        models = []
        for p in range(ports):
            self.managers.append(AXI4Manager(smmu.upstream[p], rng=rng, valid_gap=valid_gap,
                                             ready_gap=ready_gap))
            models.append(AXI4Subordinate(smmu.downstream[p], self.memory, rng=rng,
                                          read_latency=read_latency,
                                          write_latency=write_latency, ready_gap=ready_gap,
                                          valid_gap=valid_gap))
            self.checkers[f"upstream{p}"] = AXI4Checker(smmu.upstream[p], name=f"upstream{p}",
                                                        record=True)
            self.checkers[f"downstream{p}"] = AXI4Checker(smmu.downstream[p],
                                                          name=f"downstream{p}", record=True)
        self.table_memory = AXI4Subordinate(smmu.table, self.memory, rng=rng,
                                            read_latency=read_latency,
                                            write_latency=write_latency, ready_gap=ready_gap,
                                            valid_gap=valid_gap, error=table_error)
        models.append(self.table_memory)
        self.checkers["table"] = AXI4Checker(smmu.table, name="table", record=True)
        self.checkers["regs"] = AXI4LiteChecker(smmu.regs, name="regs")
        for model in [*self.managers, *models, *self.checkers.values()]:
            model.add_to(self.sim)

    def assert_clean(self, *, idle=True):
        """Every checker saw a clean protocol (and, with ``idle``, nothing outstanding)."""
        for checker in self.checkers.values():
            if isinstance(checker, AXI4LiteChecker):
                checker.assert_clean()
            else:
                checker.assert_clean(idle=idle)

    async def read_reg(self, ctx, name):
        """Read register ``name``; returns ``{field: value}``."""
        register = self.spec.register(name)
        data, resp = await lite_read(ctx, self.smmu.regs, register.address)
        assert resp == Resp.OKAY, f"read of {name} answered {resp}"
        return register.decode(data)

    async def write_reg(self, ctx, name, value=None, /, **fields):
        """Write register ``name``: ``value`` verbatim, or from reset with ``fields``."""
        register = self.spec.register(name)
        value = register.encode(**fields) if value is None else value
        resp = await lite_write(ctx, self.smmu.regs, register.address, value)
        assert resp == Resp.OKAY, f"write of {name} answered {resp}"
