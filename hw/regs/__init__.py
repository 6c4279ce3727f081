"""Register blocks generated from SystemRDL: compiler front end, specs, RTL and reference model."""

from .compile import RdlError, compile_rdl
from .spec import (UnsupportedRdlError, FieldSpec, RegisterSpec, BlockSpec, Window,
                   block_spec, address_windows, window_size)
from .block import RegisterBlock, hw_signature
from .soc_map import SOC_RDL, soc_rdl, soc_windows, soc_block, soc_block_spec

__all__ = [
    "RdlError", "compile_rdl",
    "UnsupportedRdlError", "FieldSpec", "RegisterSpec", "BlockSpec", "Window",
    "block_spec", "address_windows", "window_size",
    "RegisterBlock", "hw_signature",
    "SOC_RDL", "soc_rdl", "soc_windows", "soc_block", "soc_block_spec",
]
