"""The DMA engine's reference model and its test harness."""
