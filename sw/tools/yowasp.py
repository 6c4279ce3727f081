"""The YoWASP tools (yosys, nextpnr from PyPI), run as commands by this interpreter."""

import importlib.util
import sys
from pathlib import Path

__all__ = ["command", "package_dir"]


def command(module, function):
    """The argument-vector prefix that runs ``module.function(argv)`` of a YoWASP package in
    a child process of this interpreter: no PATH lookup, no download at run time. YoWASP
    tools see only their working directory (and its subdirectories)."""
    return (sys.executable, "-c",
            f"import sys, {module}; sys.exit({module}.{function}(sys.argv[1:]))")


def package_dir(module):
    """The folder of the installed YoWASP package ``module``, or ``None`` if it is not
    installed."""
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).parent
