"""Simulation scenarios: ``dmabuf-soc sim NAME`` runs one (``demo`` is the main job).

Each scenario is a module of this package with a module docstring (its first line is the
scenario's description) and a function::

    def run(*, config, backend="pysim", vcd=None, progress=None) -> dict

that runs the scenario on a simulated SoC built from ``config`` and returns a summary
(JSON-serialisable; ``"ok": False`` makes the command exit non-zero).
"""

from ..registry import PluginPackage

_plugins = PluginPackage(__name__, __path__, kind="scenario")
available = _plugins.available
load = _plugins.load
describe = _plugins.describe

__all__ = ["available", "load", "describe"]
