"""Running a scenario body on the chosen backend."""

__all__ = ["BACKENDS", "run_scenario", "simulator"]

#: Backends a scenario runs on: Amaranth's built-in simulator and the compiled CXXRTL model.
BACKENDS = ("pysim", "cxxrtl")


def simulator(backend):
    """The ``simulate(scenario, *, config, vcd)`` function of ``backend``."""
    if backend == "pysim":
        from ..machine.pysim import simulate
    elif backend == "cxxrtl":
        from ..machine.cxxrtl import simulate
    else:
        raise ValueError(f"Unknown backend {backend!r}; available: {', '.join(BACKENDS)}")
    return simulate


def run_scenario(body, *, config, backend, vcd, progress, **kwargs):
    """Run ``async def body(machine, progress=..., **kwargs)`` on ``backend``."""
    simulate = simulator(backend)

    async def scenario(machine):
        return await body(machine, progress=progress, **kwargs)

    return simulate(scenario, config=config, vcd=vcd)
