"""The CPU side of the SoC: the load/store port and the bridge that takes it onto AXI4."""
