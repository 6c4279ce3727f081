"""Raw bits of a :class:`~amaranth.lib.data.StructLayout` payload, packed and unpacked in
Python: what the bus-functional models drive and sample, and how software lays out the
hardware's in-memory formats."""

__all__ = ["PayloadCodec"]


class PayloadCodec:
    """Packs and unpacks the raw bits of a :class:`~amaranth.lib.data.StructLayout` payload.

    Parameters
    ----------
    layout : StructLayout
        The payload layout.
    """
    def __init__(self, layout):
        self._fields = [(name, f.offset, (1 << f.width) - 1) for name, f in layout]

    def unpack(self, bits):
        """A :class:`dict` of the integer value of every field in ``bits``."""
        return {name: (bits >> offset) & mask for name, offset, mask in self._fields}

    def pack(self, **values):
        """The raw bits of a payload with the given field values (others are zero)."""
        bits = 0
        for name, offset, mask in self._fields:
            value = int(values.get(name, 0))
            if value & ~mask and mask:
                raise ValueError(f"Value {value:#x} does not fit field {name!r}")
            bits |= (value & mask) << offset
        return bits
