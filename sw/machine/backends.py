"""Choosing a simulation backend by name: ``--backend {pysim,cxxrtl}``.

``pysim`` is Amaranth's built-in simulator (always there); ``cxxrtl`` is the compiled model
(needs a C++ compiler; the first run on a design builds it, later runs load it from the cache).
Both run the same scenario to the same cycle counts.
"""

__all__ = ["BACKENDS", "available_backends", "simulate"]

#: Every backend, by name.
BACKENDS = ("pysim", "cxxrtl")


def available_backends():
    """The backends this machine can run (``cxxrtl`` only with a C++ compiler)."""
    from .cxxrtl import available
    return tuple(name for name in BACKENDS if name != "cxxrtl" or available())


def simulate(scenario, *, backend="pysim", config=None, vcd=None):
    """Run ``async def scenario(machine)`` on ``backend`` and return what it returns.

    Parameters
    ----------
    scenario : async callable
        Receives the backend's :class:`~.base.Machine`.
    backend : str
        ``"pysim"`` or ``"cxxrtl"``.
    config : SocConfig, optional
        Parameters of the SoC (the defaults if omitted).
    vcd : str or path, optional
        Write a VCD waveform of the whole run there.
    """
    if backend == "pysim":
        from .pysim import simulate as backend_simulate
    elif backend == "cxxrtl":
        from .cxxrtl import simulate as backend_simulate
    else:
        raise ValueError(f"Unknown backend {backend!r}; available: {', '.join(BACKENDS)}")
    return backend_simulate(scenario, config=config, vcd=vcd)
