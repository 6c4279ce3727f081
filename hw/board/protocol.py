"""The host link's framed protocol (docs/host-link.md): the numbers the bridge's gateware
and the host's serial backend share.

A frame, in either direction::

    SYNC  seq  code  len  payload[len]  crc[1]  crc[0]

``crc`` is CRC-16/CCITT-FALSE (:func:`crc16`) of ``seq code len payload``, most significant
byte first. Multi-byte fields of a payload are little-endian.
"""

import enum

__all__ = ["SYNC", "MAGIC", "VERSION", "MAX_PAYLOAD", "REPLY", "ERROR", "NOTIFY", "Command",
           "LinkError", "ARGUMENTS", "RESULTS", "NOTIFY_LENGTH", "FLAG_CACHEABLE", "crc16", "crc16_update",
           "frame", "flush_bytes"]

#: The first byte of every frame.
SYNC = 0xA5
#: The first four bytes of the reply to :attr:`Command.HELLO`.
MAGIC = b"DMAB"
#: The protocol's version, in the reply to :attr:`Command.HELLO`.
VERSION = 1
#: The longest payload of a frame, in bytes.
MAX_PAYLOAD = 15
#: Added to a command's code in its reply.
REPLY = 0x80
#: The code of an error reply: payload ``reason, code`` (:class:`LinkError`).
ERROR = 0xFF
#: The code of the unsolicited interrupt notification.
NOTIFY = 0xC0
#: Payload bytes of a notification: ``lines, rising, cycle[8]``.
NOTIFY_LENGTH = 10


class Command(enum.IntEnum):
    """The commands the bridge carries out, by code."""
    HELLO      = 0x00
    MMIO_READ  = 0x01
    MMIO_WRITE = 0x02
    CPU_LOAD   = 0x03
    CPU_STORE  = 0x04
    MEM_READ   = 0x05
    MEM_WRITE  = 0x06
    CYCLE      = 0x07
    IRQ        = 0x08
    WAIT       = 0x09
    RESET      = 0x0A


class LinkError(enum.IntEnum):
    """Why the bridge answered a frame with :data:`ERROR`."""
    BAD_CRC     = 1
    BAD_LENGTH  = 2
    UNKNOWN     = 3


#: Each command's payload: ``(field, bytes)`` in order.
ARGUMENTS = {
    Command.HELLO:      (),
    Command.MMIO_READ:  (("addr", 4),),
    Command.MMIO_WRITE: (("addr", 4), ("data", 4)),
    Command.CPU_LOAD:   (("addr", 5), ("strb", 1), ("flags", 1)),
    Command.CPU_STORE:  (("addr", 5), ("strb", 1), ("flags", 1), ("data", 8)),
    Command.MEM_READ:   (("addr", 5),),
    Command.MEM_WRITE:  (("addr", 5), ("strb", 1), ("data", 8)),
    Command.CYCLE:      (),
    Command.IRQ:        (),
    Command.WAIT:       (("cycles", 4),),
    Command.RESET:      (),
}

#: Each reply's payload: ``(field, bytes)`` in order.
RESULTS = {
    Command.HELLO:      (("magic", 4), ("version", 1), ("irq_lines", 1), ("clock_hz", 4)),
    Command.MMIO_READ:  (("resp", 1), ("data", 4)),
    Command.MMIO_WRITE: (("resp", 1),),
    Command.CPU_LOAD:   (("error", 1), ("data", 8)),
    Command.CPU_STORE:  (("error", 1),),
    Command.MEM_READ:   (("resp", 1), ("data", 8)),
    Command.MEM_WRITE:  (("resp", 1),),
    Command.CYCLE:      (("cycle", 8),),
    Command.IRQ:        (("lines", 1), ("cycle", 8)),
    Command.WAIT:       (("cycle", 8),),
    Command.RESET:      (),
}

#: ``flags`` of CPU_LOAD and CPU_STORE: the access is cacheable.
FLAG_CACHEABLE = 0x01


def crc16_update(crc, byte):
    """CRC-16/CCITT-FALSE (polynomial 0x1021, MSB first) of ``crc`` updated with ``byte``."""
    crc ^= byte << 8
    for _ in range(8):
        crc = ((crc << 1) ^ 0x1021 if crc & 0x8000 else crc << 1) & 0xFFFF
    return crc


def crc16(data, crc=0xFFFF):
    """CRC-16/CCITT-FALSE of ``data``: ``crc16(b"123456789") == 0x29B1``."""
    for byte in data:
        crc = crc16_update(crc, byte)
    return crc


def frame(seq, code, payload=b""):
    """The bytes of a frame."""
    payload = bytes(payload)
    if not isinstance(seq, int) or not 0 <= seq < 256:
        raise ValueError(f"Sequence number must be a byte, not {seq!r}")
    if not isinstance(code, int) or not 0 <= code < 256:
        raise ValueError(f"Code must be a byte, not {code!r}")
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"Payload must be at most {MAX_PAYLOAD} bytes, not {len(payload)}")
    body = bytes([seq, code, len(payload)]) + payload
    crc = crc16(body)
    return bytes([SYNC]) + body + bytes([crc >> 8, crc & 0xFF])


def flush_bytes():
    """Bytes that end any frame the bridge has part of (it ignores bytes between frames)."""
    return bytes(MAX_PAYLOAD + 6)
