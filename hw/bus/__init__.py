"""Buses: AXI4 / AXI4-Lite signatures, interconnect, register decoder, protocol checker."""
