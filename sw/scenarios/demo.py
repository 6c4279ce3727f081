"""The main job: bring the simulated SoC up and exercise every block it has.

Today that is the platform bring-up (the ``platform`` scenario); the dma-buf end-to-end
flow joins it as the DMA engine, the SMMU and the cache land.
"""

from ._run import run_scenario
from .platform import bring_up

__all__ = ["run"]


def run(*, config, backend="pysim", vcd=None, progress=None):
    return run_scenario(bring_up, config=config, backend=backend, vcd=vcd, progress=progress)
