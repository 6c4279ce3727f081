"""DDR memory model: an AXI4 subordinate over the SoC's DDR banks."""
