"""DMA data directions, mapping attributes and masks (``include/linux/dma-direction.h``,
``dma-mapping.h``)."""

import enum

from ..errors import KernelBug

__all__ = ["DmaDirection", "DMA_ATTR_SKIP_CPU_SYNC", "DMA_ATTR_NO_WARN", "DMA_MAPPING_ERROR",
           "DMA_BIT_MASK", "check_direction"]


class DmaDirection(enum.IntEnum):
    BIDIRECTIONAL = 0
    TO_DEVICE = 1
    FROM_DEVICE = 2
    NONE = 3

    def __str__(self):
        return f"DMA_{self.name}"


#: Do not clean or invalidate caches on map/unmap: the caller syncs explicitly.
DMA_ATTR_SKIP_CPU_SYNC = 1 << 5
#: Do not warn when a mapping fails (e.g. swiotlb full).
DMA_ATTR_NO_WARN = 1 << 8

DMA_MAPPING_ERROR = (1 << 64) - 1


def DMA_BIT_MASK(n):
    """A mask of the low ``n`` address bits."""
    if not isinstance(n, int) or not 0 <= n <= 64:
        raise ValueError(f"DMA_BIT_MASK takes 0..64 bits, not {n!r}")
    return (1 << n) - 1


def check_direction(direction):
    """``BUG_ON(!valid_dma_direction(dir))``: returns the direction as a
    :class:`DmaDirection`."""
    try:
        direction = DmaDirection(direction)
    except ValueError:
        raise KernelBug(f"invalid DMA direction {direction!r}") from None
    if direction is DmaDirection.NONE:
        raise KernelBug("DMA_NONE is not a valid direction for a mapping or a sync")
    return direction
