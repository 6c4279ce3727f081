"""dma-buf: fences, reservation objects, sync_file, file descriptors and the dma-buf core."""
