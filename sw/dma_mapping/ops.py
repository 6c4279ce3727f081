"""The operations a DMA mapping implementation provides (``struct dma_map_ops``).

Direct mapping (:mod:`.direct`) implements them for devices that reach memory by physical
address; the IOMMU layer implements them for devices behind the SMMU and installs its
instance in ``Device.dma_ops``. Addresses and sizes are bytes; ``direction`` is a
:class:`~.direction.DmaDirection`; map operations return :data:`~.direction.DMA_MAPPING_ERROR`
on failure rather than raising, as the C API does.
"""

import abc

__all__ = ["DmaMapOps"]


class DmaMapOps(abc.ABC):
    name = "dma-ops"

    @abc.abstractmethod
    def dma_supported(self, dev, mask):
        """Whether the device may use DMA ``mask``."""

    @abc.abstractmethod
    def max_mapping_size(self, dev):
        """Largest size one mapping may have."""

    @abc.abstractmethod
    async def map_page(self, dev, page, offset, size, direction, attrs):
        """Map ``size`` bytes at ``offset`` into ``page``; returns the DMA address."""

    @abc.abstractmethod
    async def unmap_page(self, dev, dma_addr, size, direction, attrs):
        """Undo :meth:`map_page`."""

    @abc.abstractmethod
    async def map_sg(self, dev, sgl, nents, direction, attrs):
        """Map the first ``nents`` entries of ``sgl``, filling ``dma_address`` and
        ``dma_length``; returns the number of DMA segments, or raises
        :class:`~dmabuf_soc.sw.errors.KernelError` (``EINVAL``, ``ENOMEM``, ``EIO``)."""

    @abc.abstractmethod
    async def unmap_sg(self, dev, sgl, nents, direction, attrs):
        """Undo :meth:`map_sg`; ``nents`` is the count passed to it."""

    @abc.abstractmethod
    async def sync_single_for_cpu(self, dev, dma_addr, size, direction):
        pass

    @abc.abstractmethod
    async def sync_single_for_device(self, dev, dma_addr, size, direction):
        pass

    @abc.abstractmethod
    async def sync_sg_for_cpu(self, dev, sgl, nents, direction):
        pass

    @abc.abstractmethod
    async def sync_sg_for_device(self, dev, sgl, nents, direction):
        pass

    @abc.abstractmethod
    async def alloc(self, dev, size, gfp, attrs):
        """Allocate a coherent buffer: returns ``(cpu_addr, dma_handle)`` or ``None``."""

    @abc.abstractmethod
    async def free(self, dev, size, cpu_addr, dma_handle, attrs):
        """Free a buffer from :meth:`alloc`."""
