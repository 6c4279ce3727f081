"""The DMA mapping API: direct mapping, swiotlb bouncing, coherent allocations, DMA-API debug."""
