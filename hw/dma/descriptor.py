"""The in-memory descriptor of the scatter-gather DMA engine and its error codes.

A descriptor is 64 bytes, 64-byte aligned, little-endian::

    offset  field
    0x00    next          address of the next descriptor (64 bits, upper bits ignored;
                          64-byte aligned, or the engine halts with ``MISALIGNED``)
    0x08    src           source byte address
    0x10    dst           destination byte address
    0x18    length        bytes to move (32 bits; 0 is an error)
    0x1c    control       ``irq_on_complete`` (bit 0)
    0x20    status        written back by the engine: ``completed`` (bit 0),
                          ``error`` (bits 7:4, an :class:`ErrorCode`), ``resp`` (bits 9:8)
    0x24    bytes_moved   written back by the engine
    0x28    user          24 bytes the engine never touches (driver cookies)

The engine writes ``status`` and ``bytes_moved`` together, as one 64-bit beat, after the last
write response of the descriptor's data has come back.
"""

from amaranth.hdl import unsigned
from amaranth.lib import data, enum

from ..bus.axi import Resp

__all__ = ["ErrorCode", "ControlLayout", "StatusLayout", "DescriptorLayout",
           "DESCRIPTOR_BYTES", "STATUS_OFFSET", "pack_descriptor", "unpack_descriptor"]

#: Size and alignment of a descriptor in memory.
DESCRIPTOR_BYTES = 64
#: Byte offset of the status word (status and bytes_moved) in a descriptor.
STATUS_OFFSET = 0x20


class ErrorCode(enum.Enum, shape=4):
    """Why a channel halted (``STATUS.err_code`` and a descriptor's ``status.error``)."""
    NONE       = 0
    #: SLVERR/DECERR on a source data read.
    READ       = 1
    #: SLVERR/DECERR on a destination data write.
    WRITE      = 2
    #: SLVERR/DECERR while fetching a descriptor.
    DESC_FETCH = 3
    #: SLVERR/DECERR on a descriptor's status write-back.
    STATUS_WB  = 4
    #: A descriptor with ``length`` 0.
    ZERO_LEN   = 5
    #: A descriptor already marked completed (not in cyclic mode), or one whose earlier run in
    #: the same chain is still being completed (a ``next`` pointing back into the chain).
    STALE      = 6
    #: A descriptor pointer (``CURDESC``, ``TAILDESC`` outside cyclic mode, or a ``next``
    #: about to be followed) not aligned to :data:`DESCRIPTOR_BYTES`; nothing is fetched.
    MISALIGNED = 7


class ControlLayout(data.StructLayout):
    """The ``control`` word of a descriptor."""
    def __init__(self):
        super().__init__({
            "irq_on_complete": unsigned(1),
            "reserved":        unsigned(31),
        })


class StatusLayout(data.StructLayout):
    """The ``status`` word of a descriptor, written back by the engine."""
    def __init__(self):
        super().__init__({
            "completed": unsigned(1),
            "reserved0": unsigned(3),
            "error":     ErrorCode,
            "resp":      Resp,
            "reserved1": unsigned(22),
        })


class DescriptorLayout(data.StructLayout):
    """A whole 64-byte descriptor."""
    def __init__(self):
        super().__init__({
            "next":        unsigned(64),
            "src":         unsigned(64),
            "dst":         unsigned(64),
            "length":      unsigned(32),
            "control":     ControlLayout(),
            "status":      StatusLayout(),
            "bytes_moved": unsigned(32),
            "user":        unsigned(192),
        })


def pack_descriptor(*, next, src, dst, length, irq_on_complete=False, completed=False,
                    error=ErrorCode.NONE, resp=Resp.OKAY, bytes_moved=0, user=0):
    """The 64 bytes of a descriptor with these fields."""
    const = DescriptorLayout().const({
        "next": next, "src": src, "dst": dst, "length": length,
        "control": {"irq_on_complete": int(bool(irq_on_complete))},
        "status": {"completed": int(bool(completed)), "error": ErrorCode(error),
                   "resp": Resp(resp)},
        "bytes_moved": bytes_moved, "user": user,
    })
    return const.as_value().value.to_bytes(DESCRIPTOR_BYTES, "little")


def unpack_descriptor(raw):
    """The fields of a 64-byte descriptor as a dict (``error`` and ``resp`` as enums)."""
    raw = bytes(raw)
    if len(raw) != DESCRIPTOR_BYTES:
        raise ValueError(f"A descriptor is {DESCRIPTOR_BYTES} bytes, not {len(raw)}")
    const = data.Const(DescriptorLayout(), int.from_bytes(raw, "little"))
    return {
        "next": const.next, "src": const.src, "dst": const.dst, "length": const.length,
        "irq_on_complete": bool(const.control.irq_on_complete),
        "completed": bool(const.status.completed), "error": ErrorCode(const.status.error),
        "resp": Resp(const.status.resp), "bytes_moved": const.bytes_moved, "user": const.user,
    }
