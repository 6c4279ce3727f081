"""Driver-side register map, accessors and exporters, generated from the SoC's SystemRDL."""

from .map import RegisterMap, register_map
from .bank import RegisterBank

__all__ = ["RegisterMap", "register_map", "RegisterBank"]
