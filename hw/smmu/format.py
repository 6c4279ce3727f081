"""In-memory formats of the SMMU: stream table entries, commands, event records and
translation table descriptors, as :class:`~amaranth.lib.data.StructLayout` s.

They follow Arm SMMUv3 and VMSAv8-64 where that costs nothing, in a smaller subset:

* A **stream table entry** (STE, 16 bytes, linear table indexed by stream ID) holds the
  stream's whole context. Arm puts the translation table base and ASID in a separate
  context descriptor; here they sit in the STE (``V``, ``Config`` keep SMMUv3's encodings).
  ``record`` is the fault behaviour: translation-stage faults of the stream are written to
  the event queue only if it is set (as a context descriptor's ``R`` bit).
* A **command** is 16 bytes, with SMMUv3's opcodes and field positions for the commands
  implemented (``CFGI_STE``, ``CFGI_ALL``, ``TLBI_NH_ALL``, ``TLBI_NH_ASID``, ``TLBI_NH_VA``,
  ``TLBI_NSNH_ALL``, ``SYNC``).
* An **event record** is 32 bytes: the event type and stream ID in the first word, ``RnW``
  at bit 35 of the second, the input address in the third, and the address of the fetch
  that failed (table descriptor or STE) in the fourth, as in SMMUv3.
* **Descriptors** are VMSAv8-64 stage 1, 4 KiB granule: with 39-bit input addresses the
  walk starts at level 1 (``T0SZ = 25``), each level resolving 9 bits; level 1 and 2 hold
  table or block (1 GiB, 2 MiB) descriptors, level 3 page descriptors.
"""

from amaranth.hdl import unsigned
from amaranth.lib import data, enum

from ..payload import PayloadCodec

__all__ = [
    "IA_BITS", "OA_BITS", "GRANULE_SHIFT", "GRANULE", "LEVELS", "LEVEL_SHIFT", "LEVEL_BITS",
    "STE_BYTES", "CMD_BYTES", "EVENT_BYTES", "ASID_BITS",
    "StreamConfig", "EventType", "Opcode", "SyncCompletion",
    "StreamTableEntryLayout", "CommandLayout", "EventLayout", "DescriptorLayout",
    "pack", "unpack", "level_shift", "table_index",
]

#: Input (IOVA) and output (physical) address widths.
IA_BITS = 39
OA_BITS = 40
GRANULE_SHIFT = 12
GRANULE = 1 << GRANULE_SHIFT
#: Lookup levels of a walk, first to last.
LEVELS = (1, 2, 3)
#: Address bits each level resolves: level ``n`` indexes with ``va[shift + 9 - 1 : shift]``.
LEVEL_SHIFT = {1: 30, 2: 21, 3: 12}
LEVEL_BITS = 9
ASID_BITS = 16

STE_BYTES = 16
CMD_BYTES = 16
EVENT_BYTES = 32


class StreamConfig(enum.Enum, shape=3):
    """``STE.Config``: what happens to a stream's transactions."""
    ABORT     = 0b000
    BYPASS    = 0b100
    TRANSLATE = 0b101


class EventType(enum.Enum, shape=8):
    """Event record types (SMMUv3 event numbers)."""
    BAD_STREAMID = 0x02
    STE_FETCH    = 0x03
    BAD_STE      = 0x04
    WALK_EABT    = 0x0B
    TRANSLATION  = 0x10
    ADDR_SIZE    = 0x11
    ACCESS       = 0x12
    PERMISSION   = 0x13


class Opcode(enum.Enum, shape=8):
    """Command opcodes (SMMUv3 numbering)."""
    CFGI_STE      = 0x03
    CFGI_ALL      = 0x04
    TLBI_NH_ALL   = 0x10
    TLBI_NH_ASID  = 0x11
    TLBI_NH_VA    = 0x12
    TLBI_NSNH_ALL = 0x30
    SYNC          = 0x46


class SyncCompletion(enum.Enum, shape=2):
    """``CMD_SYNC.CS``: how a sync signals completion (besides ``CMDQ_CONS`` moving past
    it). ``IRQ`` sets ``IRQ_STATUS.sync``; the MSI write of SMMUv3 is not implemented."""
    NONE = 0b00
    IRQ  = 0b01


class StreamTableEntryLayout(data.StructLayout):
    """A stream table entry (16 bytes, little-endian words)."""
    def __init__(self):
        super().__init__({
            "valid":  unsigned(1),
            "config": StreamConfig,
            "record": unsigned(1),
            "_res0":  unsigned(43),
            "asid":   unsigned(ASID_BITS),
            "_res1":  unsigned(12),
            "ttb":    unsigned(OA_BITS - GRANULE_SHIFT),    # table base, bits [39:12]
            "_res2":  unsigned(24),
        })


class CommandLayout(data.StructLayout):
    """A command (16 bytes). ``arg`` is bits [63:32] of the first word: the stream ID of
    ``CFGI_STE``; its top 16 bits are the ASID of the TLB invalidations. ``addr`` is the
    page number (address bits [63:12]) of ``TLBI_NH_VA``; ``leaf`` its ``Leaf`` bit (only
    last-level entries: walk-cache entries covering the address are kept)."""
    def __init__(self):
        super().__init__({
            "opcode": unsigned(8),
            "_res0":  unsigned(4),
            "cs":     SyncCompletion,
            "_res1":  unsigned(18),
            "arg":    unsigned(32),
            "leaf":   unsigned(1),
            "_res2":  unsigned(11),
            "addr":   unsigned(52),
        })


class EventLayout(data.StructLayout):
    """An event record (32 bytes)."""
    def __init__(self):
        super().__init__({
            "type":       EventType,
            "_res0":      unsigned(24),
            "sid":        unsigned(32),
            "_res1":      unsigned(35),
            "rnw":        unsigned(1),
            "_res2":      unsigned(28),
            "input_addr": unsigned(64),
            "fetch_addr": unsigned(64),
        })


class DescriptorLayout(data.StructLayout):
    """A VMSAv8-64 stage-1 descriptor, 4 KiB granule.

    ``valid`` and ``table`` are bits [1:0]: ``0bx0`` invalid, ``0b01`` block (level 1 or 2;
    reserved at level 3), ``0b11`` table (level 1 or 2) or page (level 3). ``oa`` is bits
    [47:12] of the output (or next-level table) address; a block uses only its top bits.
    ``ap`` is AP[2:1]: bit 1 (AP[2]) makes the page read-only. ``af`` must be set (there is
    no hardware access-flag update). ``table_attrs`` (APTable, XNTable, ...) are ignored.
    """
    def __init__(self):
        super().__init__({
            "valid":       unsigned(1),
            "table":       unsigned(1),
            "attr_index":  unsigned(3),
            "ns":          unsigned(1),
            "ap":          unsigned(2),
            "sh":          unsigned(2),
            "af":          unsigned(1),
            "ng":          unsigned(1),
            "oa":          unsigned(36),
            "_res0":       unsigned(3),
            "dbm":         unsigned(1),
            "contiguous":  unsigned(1),
            "pxn":         unsigned(1),
            "xn":          unsigned(1),
            "_ignored":    unsigned(4),
            "table_attrs": unsigned(5),
        })


_codecs = {}


def _codec(layout):
    codec = _codecs.get(type(layout))
    if codec is None:
        codec = _codecs[type(layout)] = PayloadCodec(layout)
    return codec


def pack(layout, **fields):
    """The little-endian bytes of a ``layout`` value with the given fields (others zero);
    enum fields take the enum member or its value."""
    values = {name: getattr(value, "value", value) for name, value in fields.items()}
    for name in values:
        if name not in layout.members:
            raise ValueError(f"{type(layout).__name__} has no field {name!r}")
    return _codec(layout).pack(**values).to_bytes(layout.size // 8, "little")


def unpack(layout, raw):
    """``{field: int}`` of the bytes ``raw`` (at least ``layout.size // 8`` of them)."""
    nbytes = layout.size // 8
    if len(raw) < nbytes:
        raise ValueError(f"{type(layout).__name__} needs {nbytes} bytes, not {len(raw)}")
    return _codec(layout).unpack(int.from_bytes(bytes(raw[:nbytes]), "little"))


def level_shift(level):
    """Lowest input address bit that level ``level`` resolves (30, 21, 12)."""
    try:
        return LEVEL_SHIFT[level]
    except KeyError:
        raise ValueError(f"Level must be 1, 2 or 3, not {level!r}") from None


def table_index(level, iova):
    """Index into the level-``level`` table of the descriptor for ``iova``."""
    return (iova >> level_shift(level)) & ((1 << LEVEL_BITS) - 1)
