"""The CXXRTL backend: the SoC compiled by yosys's CXXRTL, driven through the machine
interface (:mod:`..compiled`)."""

import functools

from ..compiled.machine import CompiledMachine
from ..compiled.machine import simulate as _simulate
from .builder import BuildError, available, build, cached

__all__ = ["BuildError", "CxxrtlMachine", "available", "build", "cached", "simulate"]

CxxrtlMachine = functools.partial(CompiledMachine, "cxxrtl")
simulate = functools.partial(_simulate, backend="cxxrtl")
