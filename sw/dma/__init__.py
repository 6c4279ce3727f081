"""The DMA engine driver: a dmaengine-like async API over the channel registers."""
