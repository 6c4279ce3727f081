"""A protocol checker on every bus port of the SoC, for the tests that run it whole."""

from dmabuf_soc.sim.bus.checker import AXI4Checker, AXI4LiteChecker

__all__ = ["checkers_for"]


def checkers_for(soc):
    """A protocol checker on every bus port of the SoC."""
    checkers = [AXI4LiteChecker(soc.mmio, name="mmio"),
                AXI4Checker(soc.cache.bus, name="cpu"),
                *(AXI4Checker(ch.bus, name=f"dma{i}") for i, ch in enumerate(soc.dma)),
                *(AXI4Checker(port, name=f"smmu.downstream{i}")
                  for i, port in enumerate(soc.smmu.downstream)),
                AXI4Checker(soc.smmu.table, name="smmu.table"),
                AXI4Checker(soc.interconnect.subordinates[0], name="ddr"),
                *(AXI4Checker(register_slice.downstream, name=f"{name} slice")
                  for name, register_slice in soc.slices.items())]
    if soc.config.external_managers:
        checkers += [AXI4Checker(port, name=f"ext{i}") for i, port in enumerate(soc.ext)]
    return checkers
