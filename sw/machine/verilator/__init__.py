"""The Verilator backend: the SoC compiled by Verilator, driven through the machine interface
(:mod:`..compiled`)."""

import functools

from ..compiled.machine import CompiledMachine
from ..compiled.machine import simulate as _simulate
from .builder import BuildError, available, build, cached

__all__ = ["BuildError", "VerilatorMachine", "available", "build", "cached", "simulate"]

VerilatorMachine = functools.partial(CompiledMachine, "verilator")
simulate = functools.partial(_simulate, backend="verilator")
