"""Scatter-gather DMA engine: memory-to-memory channels, descriptors, reference model."""
