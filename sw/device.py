"""Devices that do DMA: their addressing limits, segment limits, coherency and whether an
SMMU translates their accesses (``struct device`` and its DMA fields)."""

import errno

from .errors import KernelError
from .dma_mapping.direction import DMA_BIT_MASK

__all__ = ["Device"]

SZ_64K = 1 << 16


class Device:
    """A DMA-capable (or not) device.

    Parameters
    ----------
    name : str
    dma_capable : bool
        ``False`` for a device without ``dev->dma_mask``: every DMA mask call fails with
        ``EIO`` and no mapping can be made for it.
    coherent : bool
        Whether its accesses snoop the CPU caches (``dev_is_dma_coherent()``). The SoC's
        DMA masters are not coherent.
    stream_id : int or None
        The SMMU stream ID if the device sits behind the SMMU, else ``None``.
    max_segment_size : int
        Longest scatter-gather segment the device takes (``dma_get_max_seg_size()``).
    segment_boundary_mask : int
        A segment must not cross a multiple of ``mask + 1`` (``dma_get_seg_boundary()``).

    Attributes
    ----------
    dma_mask, coherent_dma_mask : int or None
        Addressing limits for streaming and coherent DMA; 32 bits at creation, as for a
        platform device.
    bus_dma_limit : int
        Interconnect limit below the masks, ``0`` for none.
    dma_ops : DmaMapOps or None
        Mapping operations; ``None`` means direct mapping. The IOMMU layer installs its
        operations here when it attaches a domain to a device behind the SMMU.
    iommu_domain : object or None
        The IOMMU domain the device is attached to.
    platform : DmaPlatform or None
        Set when the device is added to a platform.
    """

    def __init__(self, name, *, dma_capable=True, coherent=False, stream_id=None,
                 max_segment_size=SZ_64K, segment_boundary_mask=DMA_BIT_MASK(32)):
        if not isinstance(name, str) or not name:
            raise TypeError(f"Device name must be a non-empty string, not {name!r}")
        if stream_id is not None and (not isinstance(stream_id, int) or stream_id < 0):
            raise ValueError(f"stream_id must be a non-negative integer or None, "
                             f"not {stream_id!r}")
        if not isinstance(max_segment_size, int) or max_segment_size <= 0:
            raise ValueError(f"max_segment_size must be a positive integer, "
                             f"not {max_segment_size!r}")
        if segment_boundary_mask & (segment_boundary_mask + 1):
            raise ValueError(f"segment_boundary_mask must be 2**n - 1, "
                             f"not {segment_boundary_mask:#x}")
        self.name = name
        self.dma_coherent = bool(coherent)
        self.stream_id = stream_id
        self.dma_mask = DMA_BIT_MASK(32) if dma_capable else None
        self.coherent_dma_mask = DMA_BIT_MASK(32) if dma_capable else 0
        self.bus_dma_limit = 0
        self.max_segment_size = max_segment_size
        self.segment_boundary_mask = segment_boundary_mask
        self.dma_ops = None
        self.iommu_domain = None
        self.platform = None
        self.dma_io_tlb_mem = None

    def __repr__(self):
        return f"<Device {self.name}>"

    @property
    def behind_iommu(self):
        return self.stream_id is not None

    @property
    def dma_limit(self):
        """Highest DMA address the device can use for streaming DMA
        (``min_not_zero(*dev->dma_mask, dev->bus_dma_limit)``)."""
        if self.dma_mask is None:
            return None
        if self.bus_dma_limit:
            return min(self.dma_mask, self.bus_dma_limit)
        return self.dma_mask

    def _supported(self, mask):
        from .dma_mapping.mapping import dma_supported
        return dma_supported(self, mask)

    def _checked_mask(self, mask, what):
        if (isinstance(mask, bool) or not isinstance(mask, int)
                or not 0 <= mask <= DMA_BIT_MASK(64)):
            raise KernelError(errno.EINVAL, f"{self.name}: {what} {mask!r} is not a u64 "
                                            f"(stricter than Linux, where -1 would be read "
                                            f"as ~0ULL)")
        if self.dma_mask is None:
            raise KernelError(errno.EIO, f"{self.name}: device cannot do DMA (no dma_mask)")
        if not self._supported(mask):
            raise KernelError(errno.EIO, f"{self.name}: {what} {mask:#x} is not supported "
                                         f"by its DMA mapping operations")
        return mask

    def dma_set_mask(self, mask):
        """Set the streaming DMA mask (``dma_set_mask()``).

        Fails with ``EIO`` when the device cannot do DMA at all or when the mask is below
        what the mapping layer can serve (for direct mapping: smaller than both the 32-bit
        ``ZONE_DMA32`` limit and the top of memory).
        """
        self.dma_mask = self._checked_mask(mask, "DMA mask")

    def dma_set_coherent_mask(self, mask):
        """Set the mask for coherent allocations (``dma_set_coherent_mask()``); same rules."""
        self.coherent_dma_mask = self._checked_mask(mask, "coherent DMA mask")

    def dma_set_mask_and_coherent(self, mask):
        """``dma_set_mask_and_coherent()``: the coherent mask is set only if the streaming
        mask was accepted."""
        self.dma_set_mask(mask)
        self.dma_set_coherent_mask(mask)

    def dma_set_max_seg_size(self, size):
        """``dma_set_max_seg_size()``."""
        if not isinstance(size, int) or size <= 0:
            raise KernelError(errno.EINVAL, f"{self.name}: max segment size must be a "
                                            f"positive integer, not {size!r}")
        self.max_segment_size = size

    def dma_set_seg_boundary(self, mask):
        """``dma_set_seg_boundary()``."""
        if not isinstance(mask, int) or mask <= 0 or mask & (mask + 1):
            raise KernelError(errno.EINVAL, f"{self.name}: segment boundary mask must be "
                                            f"2**n - 1, not {mask!r}")
        self.segment_boundary_mask = mask
