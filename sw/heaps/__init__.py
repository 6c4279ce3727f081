"""dma-buf heaps: the system, CMA and carveout heaps and the allocation interface."""
