"""The CPU data cache: write-back, write-allocate, set-associative, not coherent with DMA."""
