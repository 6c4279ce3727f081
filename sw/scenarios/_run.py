"""Running a scenario body on the chosen backend."""

__all__ = ["run_scenario"]


def run_scenario(body, *, config, backend, vcd, progress, **kwargs):
    """Run ``async def body(machine, progress=..., **kwargs)`` on ``backend``."""
    if backend != "pysim":
        raise ValueError(f"Unknown backend {backend!r}; available: pysim")
    from ..machine.pysim import simulate

    async def scenario(machine):
        return await body(machine, progress=progress, **kwargs)

    return simulate(scenario, config=config, vcd=vcd)
