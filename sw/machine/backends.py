"""Choosing a simulation backend by name: ``--backend {auto,pysim,cxxrtl,verilator}``.

``pysim`` is Amaranth's built-in simulator (always there). ``cxxrtl`` and ``verilator`` are
compiled models of the SoC (:mod:`.compiled`): the first run of a configuration builds one
(minutes; ``dmabuf-soc build`` does it ahead), later runs load it from the cache. Verilator's
model is the fastest, then CXXRTL's. Every backend runs the same scenario to the same cycle
counts and the same bytes.

``auto`` picks the fastest backend whose build of the configuration is cached, else pysim, and
says in one line which it took and how to get a faster one (:func:`choose`).

``serial:PORT[@BAUD]`` runs on a board through the host link (:mod:`.serial`,
docs/host-link.md): the board's SoC, not a simulation, so its cycle counts include the link.
"""

import importlib
import sys

__all__ = ["BACKENDS", "COMPILED", "CHOICES", "available_backends", "compiled_backend",
           "choose", "simulate", "SERIAL", "is_serial", "backend_argument"]

#: Every backend, by name.
BACKENDS = ("pysim", "cxxrtl", "verilator")
#: The compiled backends, fastest first.
COMPILED = ("verilator", "cxxrtl")
#: What ``--backend`` takes.
CHOICES = ("auto", *BACKENDS)

#: The prefix of the serial backend: ``serial:PORT[@BAUD]``.
SERIAL = "serial:"

_said = set()


def is_serial(backend):
    """Whether ``backend`` names the serial backend."""
    return isinstance(backend, str) and backend.startswith(SERIAL)


def backend_argument(text):
    """``text`` if it is one of :data:`CHOICES` or ``serial:PORT[@BAUD]``; else
    :exc:`ValueError` (for ``argparse``'s ``type=``)."""
    if is_serial(text):
        from .serial.transport import parse_port
        parse_port(text[len(SERIAL):])
        return text
    if text not in CHOICES:
        raise ValueError(f"Unknown backend {text!r}; available: {', '.join(CHOICES)}, "
                         f"serial:PORT[@BAUD]")
    return text


def compiled_backend(name):
    """The package of compiled backend ``name`` (``build``, ``cached``, ``available``,
    ``simulate``)."""
    if name not in COMPILED:
        raise ValueError(f"Compiled backend must be one of {', '.join(COMPILED)}, "
                         f"not {name!r}")
    return importlib.import_module(f".{name}", __package__)


def available_backends():
    """The backends this machine can run (the compiled ones need their tools)."""
    return tuple(name for name in BACKENDS
                 if name == "pysim" or compiled_backend(name).available())


def _say_once(line):
    if line not in _said:
        _said.add(line)
        print(line, file=sys.stderr)


def choose(backend, config=None, *, vcd=False, probes=False, notice=_say_once):
    """The backend to run ``config``'s SoC on: ``backend`` itself, or for ``"auto"`` the
    fastest compiled backend whose build of ``config`` (with waveforms if ``vcd``, with the
    trace's probes if ``probes``) is cached, else ``"pysim"``; ``notice`` receives the line
    that says which and why."""
    backend_argument(backend)
    if backend != "auto":
        return backend
    for name in COMPILED:
        package = compiled_backend(name)
        found = (package.cached(config, trace=vcd, probes=True) if probes
                 else package.cached(config, trace=vcd)) if package.available() else None
        if found is not None:
            notice(f"dmabuf-soc: running on {name}, whose build of this configuration is "
                   f"cached")
            return name
    ready = [name for name in COMPILED if compiled_backend(name).available()]
    if ready:
        options = (" --trace" if vcd and ready[0] == "verilator" else "") + (
            " --probes" if probes else "")
        notice(f"dmabuf-soc: running on pysim, the built-in simulator; "
               f"`dmabuf-soc build --backend {ready[0]}{options}` (with the same --set "
               f"options) compiles a model that runs this hundreds of times faster")
    else:
        notice("dmabuf-soc: running on pysim, the built-in simulator (no compiled backend: "
               "they need g++ and make)")
    return "pysim"


def simulate(scenario, *, backend="pysim", config=None, vcd=None):
    """Run ``async def scenario(machine)`` on ``backend`` and return what it returns.

    Parameters
    ----------
    scenario : async callable
        Receives the backend's :class:`~.base.Machine`.
    backend : str
        ``"pysim"``, ``"cxxrtl"``, ``"verilator"``, ``"auto"`` (:func:`choose`), or
        ``"serial:PORT[@BAUD]"`` (a board).
    config : SocConfig, optional
        Parameters of the SoC (the defaults if omitted).
    vcd : str or path, optional
        Write a VCD waveform of the whole run there.

    Within :func:`~dmabuf_soc.sw.trace.spans.recording`, the run records its transactions
    into the trace being recorded (a run of it).
    """
    from ..trace.spans import active_trace
    trace = active_trace()
    if is_serial(backend):
        from .serial.machine import simulate as serial_simulate
        return serial_simulate(scenario, port=backend[len(SERIAL):], config=config, vcd=vcd)
    backend = choose(backend, config, vcd=vcd is not None, probes=trace is not None)
    if backend == "pysim":
        from .pysim import simulate as backend_simulate
    else:
        backend_simulate = compiled_backend(backend).simulate
    if trace is None:
        return backend_simulate(scenario, config=config, vcd=vcd)
    return backend_simulate(scenario, config=config, vcd=vcd, trace=trace)
