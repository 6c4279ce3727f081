"""The compiled simulation backend: the SoC on CXXRTL, driven through the same machine interface."""

from .builder import BuildError, available, build
from .machine import CxxrtlMachine, simulate

__all__ = ["BuildError", "CxxrtlMachine", "available", "build", "simulate"]
