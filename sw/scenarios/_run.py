"""Running a scenario body on the chosen backend."""

from ..machine.backends import BACKENDS, simulate

__all__ = ["BACKENDS", "run_scenario"]


def run_scenario(body, *, config, backend, vcd, progress, **kwargs):
    """Run ``async def body(machine, progress=..., **kwargs)`` on ``backend``."""
    async def scenario(machine):
        return await body(machine, progress=progress, **kwargs)

    return simulate(scenario, backend=backend, config=config, vcd=vcd)
