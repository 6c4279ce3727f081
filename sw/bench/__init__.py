"""Benchmarks: ``dmabuf-soc bench NAME --json`` runs one and prints one JSON object.

Each benchmark is a module of this package with a module docstring (its first line is the
benchmark's description) and a function::

    def run(*, backend="pysim", progress=None) -> dict

that builds what it measures, runs it and returns the JSON-serialisable figures. ``progress``
is ``None`` or a callable ``progress(done, total, what)`` for long runs. Figures are cycles
and ratios, which are stable; wall time only for simulator speed.
"""

from ..registry import PluginPackage

_plugins = PluginPackage(__name__, __path__, kind="benchmark")
available = _plugins.available
load = _plugins.load
describe = _plugins.describe

__all__ = ["available", "load", "describe"]
