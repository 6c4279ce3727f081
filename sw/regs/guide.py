"""The programming model that opens ``docs/registers.md``: what the register tables alone do
not tell a driver writer.

``dmabuf-soc regs --format md`` writes it ahead of the register reference (PeakRDL-markdown).
Nothing in it that the hardware defines is typed twice:

* the in-memory formats (DMA descriptor, SMMU stream table entry, command, event record,
  translation table descriptor) are tabled from the ``amaranth.lib.data`` layouts the RTL
  itself uses (:mod:`~dmabuf_soc.hw.dma.descriptor`, :mod:`~dmabuf_soc.hw.smmu.format`);
* the value tables of register fields come from their SystemRDL ``encode`` enums, each checked
  against the enum of the RTL signal the field carries; the value tables of in-memory fields
  come from the RTL's enums;
* the MMIO map, the interrupt registers and the LO/HI register pairs come from ``hw/soc.rdl``.

What each layout field and enum value means, and the rules for each register pair, are
written here; generation fails (:class:`GuideError`) if a field, value or pair has no meaning
or a meaning names one that does not exist. The prose between the tables is :data:`TEMPLATE`.
"""

from dataclasses import dataclass

from amaranth.lib import data

from ...hw.bus.axi import Resp
from ...hw.cache.core import MaintenanceOp, MaintenanceScope
from ...hw.config import SocConfig
from ...hw.dma.descriptor import (DESCRIPTOR_BYTES, STATUS_OFFSET, DescriptorLayout,
                                  ErrorCode)
from ...hw.regs.spec import address_windows, block_spec
from ...hw.smmu import format as smmu_format
from ...hw.smmu.cmdq import CommandError
from ...hw.smmu.walker import TranslationStatus
from ...hw.soc import IRQ_LINES

__all__ = ["GuideError", "LayoutRow", "LAYOUTS", "REGISTER_ENUMS", "MEMORY_ENUMS",
           "layout_rows", "register_pairs", "guide"]


class GuideError(ValueError):
    """The guide's meanings and the hardware's definitions disagree."""


# ---- In-memory formats ---------------------------------------------------------------------

_DMA_DESCRIPTOR = {
    "next": "Bus address of the next descriptor, followed after this one unless it is the "
            "tail (TAILDESC) outside cyclic mode. Must be 64-byte aligned: with bits 5:0 set "
            "the channel halts with MISALIGNED (ERR_DESC this pointer) before fetching it. "
            "The bits above the 40-bit address are ignored.",
    "src": "Source byte address, any alignment. Bits above the 40-bit address are ignored.",
    "dst": "Destination byte address, any alignment. Bits above the 40-bit address are "
           "ignored.",
    "length": "Bytes to move, 1 to 2**32 - 1. 0 halts the channel with ZERO_LEN.",
    "control.irq_on_complete": "1: this descriptor's completion counts towards INTR.done "
                               "(see COALESCE). 0: it is counted in COMPLETED only.",
    "control.reserved": "Ignored.",
    "status.completed": "Written 1 by the status write-back when the descriptor completes. "
                        "Software writes 0 when it queues the descriptor: one fetched with "
                        "it set halts the channel with STALE, except in cyclic mode (as does "
                        "one still being completed: a next pointer back into the chain).",
    "status.reserved0": "Written 0 by the engine.",
    "status.error": "Written by the fault write-back (READ, WRITE, ZERO_LEN, with "
                    "completed 0): why the channel halted; NONE on completion.",
    "status.resp": "Written with error: the bus response behind it (OKAY for ZERO_LEN and "
                   "on completion).",
    "status.reserved1": "Written 0 by the engine.",
    "bytes_moved": "Written with status: length on completion, 0 by a fault write-back.",
    "user": "Never read nor written by the engine: the driver's own (cookies).",
}

_STREAM_TABLE_ENTRY = {
    "valid": "1: the entry is valid. 0: every transaction of the stream faults with BAD_STE.",
    "config": "What happens to the stream's transactions (StreamConfig); any other value "
              "faults with BAD_STE.",
    "record": "1: record the stream's translation faults (WALK_EABT, TRANSLATION, ADDR_SIZE, "
              "ACCESS, PERMISSION) in the event queue. Stream table faults (BAD_STREAMID, "
              "STE_FETCH, BAD_STE) are recorded whatever it holds.",
    "_res0": "Reserved: write 0 (ignored).",
    "asid": "Address space ID: tags the stream's IOTLB and walk-cache entries, for "
            "TLBI_NH_ASID and TLBI_NH_VA.",
    "_res1": "Reserved: write 0 (ignored).",
    "ttb": "Bits 39:12 of the physical address of the level-1 translation table (4 KiB "
           "aligned): the word at 0x08 holds the table's address.",
    "_res2": "Reserved: write 0 (ignored).",
}

_COMMAND = {
    "opcode": "The command (Opcode). Any other value is skipped with CMDQ_CONS.err = ILL.",
    "_res0": "Reserved: write 0 (ignored).",
    "cs": "CMD_SYNC only: how its completion is signalled (SyncCompletion).",
    "_res1": "Reserved: write 0 (ignored).",
    "arg": "CFGI_STE: the stream ID. TLBI_NH_ASID and TLBI_NH_VA: the ASID in its bits "
           "31:16 (bits 31:16 of the word at 0x04); bits 15:0 are ignored.",
    "leaf": "TLBI_NH_VA only: 1 invalidates last-level (IOTLB) entries only, keeping the "
            "walk-cache entries that cover the address.",
    "_res2": "Reserved: write 0 (ignored).",
    "addr": "TLBI_NH_VA only: bits 63:12 of the input address to invalidate, in place (the "
            "word at 0x08 holds the address with its low 12 bits ignored).",
}

_EVENT = {
    "type": "What faulted (EventType).",
    "_res0": "Written 0.",
    "sid": "Stream ID of the transaction or ATOS request.",
    "_res1": "Written 0.",
    "rnw": "1: a read (or an ATOS request for a read); 0: a write.",
    "_res2": "Written 0.",
    "input_addr": "The input address (IOVA) of the transaction, all 40 bits of it.",
    "fetch_addr": "STE_FETCH and WALK_EABT: physical address of the read that failed (the "
                  "STE, or the translation table descriptor). 0 for the other types.",
}

_TRANSLATION_DESCRIPTOR = {
    "valid": "1: valid. 0: a TRANSLATION fault.",
    "table": "Levels 1 and 2: 1 a table descriptor (oa is the next level's table), 0 a block "
             "(1 GiB at level 1, 2 MiB at level 2). Level 3: must be 1 (a page); 0 is a "
             "TRANSLATION fault.",
    "attr_index": "Ignored.",
    "ns": "Ignored.",
    "ap": "AP[2:1]: bit 1 (AP[2]) set makes the page read-only, a write to it a PERMISSION "
          "fault. Bit 0 is ignored.",
    "sh": "Ignored.",
    "af": "Access flag: a page or block with it clear is an ACCESS fault (the SMMU never "
          "sets it).",
    "ng": "Ignored.",
    "oa": "Bits 47:12 of the output address (page), of its top bits (block), or of the "
          "next-level table's address (table). Bits 47:40 set: an ADDR_SIZE fault.",
    "_res0": "Ignored.",
    "dbm": "Ignored.",
    "contiguous": "Ignored.",
    "pxn": "Ignored.",
    "xn": "Execute-never: an instruction fetch (ATOS_CTRL.instr) from the page is a "
          "PERMISSION fault.",
    "_ignored": "Ignored.",
    "table_attrs": "Ignored (APTable, UXNTable, PXNTable, NSTable).",
}

#: ``(template slot, title, layout, meanings)`` of each in-memory format.
LAYOUTS = (
    ("descriptor", "DMA descriptor", DescriptorLayout(), _DMA_DESCRIPTOR),
    ("ste", "Stream table entry", smmu_format.StreamTableEntryLayout(), _STREAM_TABLE_ENTRY),
    ("command", "Command", smmu_format.CommandLayout(), _COMMAND),
    ("event", "Event record", smmu_format.EventLayout(), _EVENT),
    ("pte", "Translation table descriptor", smmu_format.DescriptorLayout(),
     _TRANSLATION_DESCRIPTOR),
)


@dataclass(frozen=True)
class LayoutRow:
    """One leaf field of a layout, as the guide tables it.

    ``offset`` is the byte offset of the 32-bit word that holds the field's lowest bit and
    ``lsb`` the field's lowest bit within that word; a field wider than what is left of the
    word continues into the bytes that follow (little-endian). ``shape`` is the field's shape
    in the layout (the RTL's enum class for an enum field).
    """
    field: str
    offset: int
    lsb: int
    width: int
    shape: object
    meaning: str

    @property
    def bits(self):
        msb = self.lsb + self.width - 1
        return str(self.lsb) if msb == self.lsb else f"{msb}:{self.lsb}"


def _leaves(layout, prefix="", base=0):
    for name, field in layout:
        shape = field.shape
        if isinstance(shape, data.StructLayout):
            yield from _leaves(shape, f"{prefix}{name}.", base + field.offset)
        else:
            yield f"{prefix}{name}", base + field.offset, field.width, shape


def layout_rows(layout, meanings, *, title=None):
    """The :class:`LayoutRow` of every leaf field of ``layout`` (a ``StructLayout``; nested
    structs are flattened to dotted names), in bit order.

    Raises
    ------
    GuideError
        If a field has no meaning in ``meanings`` or a meaning names no field.
    """
    title = title or type(layout).__name__
    leaves = sorted(_leaves(layout), key=lambda leaf: leaf[1])
    names = [name for name, *_ in leaves]
    missing = [name for name in names if name not in meanings]
    extra = [name for name in meanings if name not in names]
    if missing or extra:
        raise GuideError(f"{title}: fields without a meaning: {missing or 'none'}; meanings "
                         f"of no field: {extra or 'none'}")
    return [LayoutRow(name, (offset // 32) * 4, offset % 32, width, shape, meanings[name])
            for name, offset, width, shape in leaves]


# ---- Enums -------------------------------------------------------------------------------

#: Register fields with a SystemRDL ``encode`` enum, ``(block type, register, field)``: the enum
#: of the RTL signal the field carries, the template slot of its table and the table's title.
#: Every ``encode`` field of the map must be here.
REGISTER_ENUMS = {
    ("dma_channel", "STATUS", "err_code"):
        (ErrorCode, "err_code", "`STATUS.err_code`, and a descriptor's `status.error`"),
    ("dma_channel", "STATUS", "err_resp"):
        (Resp, "resp", "`STATUS.err_resp`, and a descriptor's `status.resp`"),
    ("cache", "MAINT_CTRL", "op"): (MaintenanceOp, "maint_op", "`MAINT_CTRL.op`"),
    ("cache", "MAINT_CTRL", "scope"): (MaintenanceScope, "maint_scope", "`MAINT_CTRL.scope`"),
    ("smmu", "CMDQ_CONS", "err"): (CommandError, "cmdq_err", "`CMDQ_CONS.err`"),
    ("smmu", "ATOS_STATUS", "status"):
        (TranslationStatus, "atos_status", "`ATOS_STATUS.status`"),
}

_STREAM_CONFIG = {
    "ABORT": "Every transaction is answered SLVERR and nothing is recorded (ATOS: ABORT).",
    "BYPASS": "Transactions pass with their addresses untranslated.",
    "TRANSLATE": "Stage-1 translation by the tables at ttb, cached under asid.",
}

_EVENT_TYPE = {
    "BAD_STREAMID": "The stream ID is not below 2**STRTAB_CFG.log2size. Always recorded.",
    "STE_FETCH": "A bus error reading the STE; fetch_addr is its address. Always recorded.",
    "BAD_STE": "The STE is not valid, or its config is none of ABORT, BYPASS, TRANSLATE. "
               "Always recorded.",
    "WALK_EABT": "A bus error reading a translation table descriptor; fetch_addr is its "
                 "address.",
    "TRANSLATION": "Input address bit 39 set, an invalid descriptor, or a level-3 "
                   "descriptor with bit 1 clear.",
    "ADDR_SIZE": "A descriptor's output or next-table address has bits 47:40 set.",
    "ACCESS": "A page or block descriptor with AF clear.",
    "PERMISSION": "A write to a read-only page (AP[2] set), or an instruction fetch from an "
                  "execute-never page.",
}

_OPCODE = {
    "CFGI_STE": "Invalidate the STE cache entry of the stream ID in arg.",
    "CFGI_ALL": "Invalidate every STE cache entry.",
    "TLBI_NH_ALL": "Invalidate every IOTLB and walk-cache entry.",
    "TLBI_NH_ASID": "Invalidate the IOTLB and walk-cache entries of the ASID in arg[31:16].",
    "TLBI_NH_VA": "Invalidate the IOTLB entries of the ASID in arg[31:16] covering addr, and "
                  "unless leaf is set the walk-cache entries covering it.",
    "TLBI_NSNH_ALL": "As TLBI_NH_ALL.",
    "SYNC": "Complete (CMDQ_CONS moves past it) once every transaction the SMMU sent to "
            "memory before it has been answered; then signal as cs says.",
}

_SYNC_COMPLETION = {
    "NONE": "CMDQ_CONS moving past the SYNC is the only signal.",
    "IRQ": "Also set IRQ_STATUS.sync.",
}

#: In-memory enums: ``(template slot, title, RTL enum, meanings)``.
MEMORY_ENUMS = (
    ("stream_config", "Stream table entry config", smmu_format.StreamConfig, _STREAM_CONFIG),
    ("event_type", "Event record type", smmu_format.EventType, _EVENT_TYPE),
    ("opcode", "Command opcode", smmu_format.Opcode, _OPCODE),
    ("sync_cs", "CMD_SYNC cs", smmu_format.SyncCompletion, _SYNC_COMPLETION),
)


def _members(rtl_enum):
    return [(member.name, member.value) for member in rtl_enum]


def _enum_rows(title, rtl_enum, meanings):
    names = [name for name, _ in _members(rtl_enum)]
    missing = [name for name in names if name not in meanings]
    extra = [name for name in meanings if name not in names]
    if missing or extra:
        raise GuideError(f"{title} ({rtl_enum.__name__}): values without a meaning: "
                         f"{missing or 'none'}; meanings of no value: {extra or 'none'}")
    return [(value, name, meanings[name]) for name, value in _members(rtl_enum)]


def _register_enum_rows(field, rtl_enum):
    """``(value, name, meaning)`` of a field's ``encode`` enum, which must have the members of
    ``rtl_enum``, name for name and value for value."""
    rdl_enum = field.get_property("encode")
    rdl = [(member.name, member.value) for member in rdl_enum]
    if rdl != _members(rtl_enum):
        raise GuideError(f"{field.get_path()}: the SystemRDL enum {rdl_enum.type_name} "
                         f"{rdl} differs from the RTL's {rtl_enum.__name__} "
                         f"{_members(rtl_enum)}")
    return [(member.value, member.name, " ".join((member.rdl_desc or "").split()))
            for member in rdl_enum]


def _encoded_fields(top):
    """``{(block type, register, field): field node}`` of every field with an ``encode``
    enum, one per block type (dma0 and dma1 are one)."""
    found = {}
    for block in top.children():
        for reg in block.registers():
            for field in reg.fields():
                if field.get_property("encode") is not None:
                    found.setdefault((block.type_name, reg.inst_name, field.inst_name), field)
    return found


# ---- Register pairs ----------------------------------------------------------------------

_PAIR_RULES = {
    ("dma_channel", "SRC"): "Taken when CTRL.go starts a transfer: both halves, in any "
                            "order, before CTRL.go.",
    ("dma_channel", "DST"): "Taken when CTRL.go starts a transfer: both halves, in any "
                            "order, before CTRL.go.",
    ("dma_channel", "CURDESC"): "HI, then LO, both before the TAILDESC_LO write that starts "
                                "the chain (the walk reads both then). The LO write also "
                                "marks a restart (see CURDESC_LO).",
    ("dma_channel", "TAILDESC"): "HI first, then LO: the LO write starts or extends the "
                                 "chain, and the channel compares descriptor addresses with "
                                 "both halves as they are then.",
    ("dma_channel", "ERR_DESC"): "Read-only: both halves hold still while STATUS.halted.",
    ("cache", "START"): "Taken when MAINT_GO starts the operation: both halves, in any "
                        "order, before MAINT_GO.",
    ("cache", "END"): "Taken when MAINT_GO starts the operation: both halves, in any order, "
                      "before MAINT_GO.",
    ("smmu", "STRTAB_BASE"): "Read at every STE fetch: both halves, in any order, while "
                             "CR0.smmuen is clear.",
    ("smmu", "CMDQ_BASE"): "Read at every command fetch: both halves, in any order, while "
                           "CR0.cmdqen is clear.",
    ("smmu", "EVTQ_BASE"): "Read at every record write: both halves, in any order, while "
                           "CR0.evtqen is clear.",
    ("smmu", "ATOS_ADDR"): "Read when the walker takes the request: both halves, in any "
                           "order, before ATOS_CTRL.go, unchanged while ATOS_STATUS.busy.",
    ("smmu", "ATOS_PAR"): "Read-only: both halves hold still from one request's completion "
                          "to the next one's.",
}


def register_pairs(top):
    """``[(block type, pair name, (block instance names...))]`` of every ``NAME_LO`` /
    ``NAME_HI`` register pair of the map, in the map's order."""
    pairs = {}
    for block in top.children():
        names = {reg.inst_name for reg in block.registers()}
        for reg in block.registers():
            stem = reg.inst_name[:-3]
            if reg.inst_name.endswith("_LO") and f"{stem}_HI" in names:
                pairs.setdefault((block.type_name, stem), []).append(block.inst_name)
    return [(kind, stem, tuple(blocks)) for (kind, stem), blocks in pairs.items()]


# ---- Rendering ---------------------------------------------------------------------------

def _cell(text):
    return str(text).replace("|", "\\|")


def _table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(_cell(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _layout_table(title, layout, meanings):
    rows = [(f"0x{row.offset:02X}", row.bits, row.width, f"`{row.field}`", row.meaning)
            for row in layout_rows(layout, meanings, title=title)]
    return (f"{title}: {layout.size // 8} bytes, from the RTL's `{type(layout).__name__}`.\n\n"
            + _table(("Offset", "Bits", "Width", "Field", "Meaning"), rows))


def _value_table(rows, width=None):
    def value(v):
        if width is not None and width >= 8:
            return f"0x{v:0{(width + 3) // 4}X}"
        if width is not None and width >= 3:
            return f"0b{v:0{width}b}"
        return str(v)
    return _table(("Value", "Name", "Meaning"), [(value(v), f"`{n}`", m) for v, n, m in rows])


def _register_enum_table(field, rtl_enum, title):
    rows = _register_enum_rows(field, rtl_enum)
    return (f"{title} (`{field.get_property('encode').type_name}` in SystemRDL, "
            f"`{rtl_enum.__name__}` in the RTL):\n\n" + _value_table(rows))


def _memory_enum_table(title, rtl_enum, meanings):
    return (f"{title} (`{rtl_enum.__name__}`):\n\n"
            + _value_table(_enum_rows(title, rtl_enum, meanings), rtl_enum.as_shape().width))


def _mmio_table(top, config):
    blocks = {block.inst_name: block for block in top.children()}
    rows = []
    for window in address_windows(top):
        block = blocks[window.name]
        line = IRQ_LINES.get(window.name)
        rows.append((f"`{window.name}`", f"0x{window.base:04X}", f"0x{window.size:X}",
                     "—" if line is None else line, block.get_property("name")))
    return (f"The MMIO space is {config.mmio_addr_width} bits (0x0000 to "
            f"0x{(1 << config.mmio_addr_width) - 1:X}), reached by the CPU through AXI4-Lite.\n\n"
            + _table(("Block", "Base", "Window", "IRQ line", "What"), rows))


def _irq_table(top):
    rows = []
    for name, line in sorted(IRQ_LINES.items(), key=lambda item: item[1]):
        spec = block_spec(top.get_child_by_name(name))
        for reg in spec.registers:
            for f in reg.fields:
                if not f.intr:
                    continue
                enable = "—" if f.enable is None else f"{f.enable[0]}.{f.enable[1]}"
                kept = "kept" if f.precedence == "hw" else "lost"
                rows.append((line, f"`{name}`", f"{reg.name}.{f.name}", enable, kept))
    return _table(("Line", "Block", "Status bit (write 1 to clear)", "Enable",
                   "An event in the cycle of its clear"), rows)


def _write_only_fields(top):
    """The fields software can write but not read, as ``REG.field``, one per block type; and
    a check that no field has a read side effect, as the guide says."""
    seen = []
    for block in top.children():
        for reg in block.registers():
            for field in reg.fields():
                if field.get_property("onread") is not None:
                    raise GuideError(f"{field.get_path()} has a read side effect; the guide "
                                     f"says that reads have none")
                name = f"`{reg.inst_name}.{field.inst_name}`"
                if field.is_sw_writable and not field.is_sw_readable and name not in seen:
                    seen.append(name)
    return ", ".join(seen)


def _pairs_table(top):
    pairs = register_pairs(top)
    keys = {(kind, stem) for kind, stem, _ in pairs}
    missing = [key for key in keys if key not in _PAIR_RULES]
    extra = [key for key in _PAIR_RULES if key not in keys]
    if missing or extra:
        raise GuideError(f"LO/HI register pairs without a rule: {sorted(missing) or 'none'}; "
                         f"rules of no pair: {sorted(extra) or 'none'}")
    rows = [(", ".join(f"`{block}`" for block in blocks), f"{stem}_LO / {stem}_HI",
             _PAIR_RULES[kind, stem]) for kind, stem, blocks in pairs]
    return _table(("Blocks", "Pair", "Write order and when the hardware reads the pair"), rows)


def guide(top):
    """The programming model of the MMIO map ``top`` (the compiled ``hw/soc.rdl``), as
    Markdown, ending where the register reference starts.

    Raises
    ------
    GuideError
        If a meaning, rule or enum here disagrees with the hardware's definitions (see the
        module's description).
    """
    config = SocConfig()
    fields = _encoded_fields(top)
    unmapped = [key for key in fields if key not in REGISTER_ENUMS]
    unused = [key for key in REGISTER_ENUMS if key not in fields]
    if unmapped or unused:
        raise GuideError(f"encode fields with no RTL enum: {unmapped or 'none'}; RTL enums of "
                         f"no encode field: {unused or 'none'}")
    tables = {
        "mmio": _mmio_table(top, config),
        "pairs": _pairs_table(top),
        "irqs": _irq_table(top),
    }
    for key, (rtl_enum, slot, title) in REGISTER_ENUMS.items():
        tables[slot] = _register_enum_table(fields[key], rtl_enum, title)
    for slot, title, rtl_enum, meanings in MEMORY_ENUMS:
        tables[slot] = _memory_enum_table(title, rtl_enum, meanings)
    for slot, title, layout, meanings in LAYOUTS:
        tables[slot] = _layout_table(title, layout, meanings)
    numbers = {
        "desc_bytes": DESCRIPTOR_BYTES,
        "status_offset": f"0x{STATUS_OFFSET:02X}",
        "ste_bytes": smmu_format.STE_BYTES,
        "cmd_bytes": smmu_format.CMD_BYTES,
        "event_bytes": smmu_format.EVENT_BYTES,
        "ia_bits": smmu_format.IA_BITS,
        "oa_bits": smmu_format.OA_BITS,
        "irq_count": len(IRQ_LINES),
        "encoded": ", ".join(f"`{register}.{field}`" for _, register, field in REGISTER_ENUMS),
        "write_only": _write_only_fields(top),
    }
    return TEMPLATE.format_map({**tables, **numbers})


#: The guide's prose; ``{name}`` marks a generated table or number.
TEMPLATE = """\
# dmabuf-soc: registers and in-memory formats

<!-- Generated by `dmabuf-soc regs --format md` from hw/soc.rdl (and the .rdl files it
includes), the RTL's layouts and enums (hw/dma/descriptor.py, hw/smmu/format.py and the enums
named below) and sw/regs/guide.py. Do not edit: change those and regenerate. -->

Everything a driver needs to program dmabuf-soc: the programming model first (access rules,
write order of 64-bit register pairs, interrupts, the structures in memory that the DMA
channels and the SMMU read and write, error codes and encodings), then the register
reference, every register and field of every block, generated from SystemRDL.

All multi-byte values are little-endian. Physical and bus addresses are 40 bits. The DMA
channels reach memory through the SMMU, so every address a channel uses (SRC, DST, CURDESC,
TAILDESC, and the addresses inside descriptors) is a bus address of the channel's stream ID
(`dma0`: 0, `dma1`: 1), which the SMMU translates when it is enabled and the stream's STE
says so. The SMMU's own tables and queues, and the cache's maintenance ranges, are physical
addresses. The CPU's data cache is not coherent with DMA, nor with the SMMU's table walks:
whatever the CPU writes for the hardware to read (descriptors, stream table entries,
commands, page tables) must be written with uncached stores or cleaned from the cache
before the hardware reads it, and whatever the hardware writes (status write-backs, event
records) read uncached or after invalidating the lines.

The tables of in-memory formats are generated from the layouts the RTL uses. In them,
*Offset* is the byte offset of the 32-bit word that holds the field's lowest bit and *Bits*
count from bit 0 of that word; a field wider than what is left of the word goes on into the
bytes that follow.

## MMIO space

{mmio}
Each block answers in its window; its registers are 32-bit words at 4-byte aligned offsets.

## Bus rules

- **Words.** Every register is one 32-bit word. Address bits 1:0 are ignored: a read
  returns the whole word, and a write's byte strobes (WSTRB) select the bytes it changes. A
  write's side effects (write 1 to clear, a go pulse, the LO write that starts a chain) come
  only from the bytes it writes.
- **Unmapped offsets answer SLVERR.** A read of an offset in a block's window that holds no
  register is answered SLVERR with data 0; a write there is answered SLVERR and changes
  nothing. An address in no block's window is answered DECERR by the MMIO decoder (a read
  returns 0; a write's data is taken and dropped). The simulation machines raise `BusError`
  for either.
- **Reads have no side effects.** No register is cleared or set by reading it. Write-only
  fields read as 0: {write_only}.
- **A write writes every field in its bytes.** A stored field takes what is written to it in
  every write of its register: to pulse `CTRL.go`, write `CTRL.cyclic` along with it; to
  change one bit of `CR0`, write the others as they are (CR0 resets with `walk_cache_en`
  and `prefetch_en` set).

## 64-bit register pairs

Each address is a pair of 32-bit registers, `NAME_LO` (bits 31:0) and `NAME_HI` (bits 39:32,
in its bits 7:0). The pair is never latched as a whole: each half is a register of its own,
and what matters is when the hardware reads the pair.

{pairs}
## Interrupts

{irq_count} level-sensitive lines. Each is the OR of its block's interrupt status bits, each ANDed
with its enable bit. A status bit is set by the hardware whether or not it is enabled, stays
set until software writes 1 to it, and a line stays high while an enabled bit is set. Where
an event that comes in the very cycle of the clearing write is lost, clear the bit first,
then read the state it reports (`COMPLETED` and `STATUS`, `EVTQ_PROD`, `CMDQ_CONS`), so that
nothing that happened after that read goes unseen.

{irqs}
## DMA channels (`dma0`, `dma1`)

### Register mode

1. Write `SRC_LO`/`SRC_HI`, `DST_LO`/`DST_HI` and `LEN` (any order).
2. Write `CTRL.go = 1`. It is ignored while `STATUS.busy`, `STATUS.halted` or
   `STATUS.resetting` is set.
3. The transfer has completed when `STATUS.busy` falls and `COMPLETED` has moved on: after
   the last data write response. Every register-mode transfer counts towards `INTR.done`.
   `LEN = 0` halts the channel with `ZERO_LEN`.

### Scatter-gather mode

Descriptors are {desc_bytes} bytes, {desc_bytes}-byte aligned (the table below).

- **Start a chain** (the channel idle: `STATUS.busy` clear): write the descriptors, each with
  `status.completed = 0`, linked by `next`; write `CURDESC_HI`, `CURDESC_LO` (the first
  descriptor), then `TAILDESC_HI`, `TAILDESC_LO` (the last one). The `TAILDESC_LO` write
  starts the walk at `CURDESC`; the channel follows `next` and stops after the descriptor
  whose address equals `TAILDESC`, all 40 bits. `CURDESC`, `TAILDESC` and every `next`
  followed must be {desc_bytes}-byte aligned: before each descriptor read the channel checks
  the pointer it is about to fetch and (outside cyclic mode) `TAILDESC`, and halts with
  `MISALIGNED` instead of fetching, `ERR_DESC` being the misaligned pointer.
- **Each descriptor runs once per chain.** A `next` that points back to a descriptor of the
  chain (itself, or one before it) finds that descriptor completed, or still being completed
  (its status write-back not yet done): either way the channel halts with `STALE` once the
  transfers before it have completed, `ERR_DESC` being the descriptor pointed to (as AXI DMA
  reports a completed descriptor fetched again as an SG internal error).
- **Extend a chain**, running or stopped at its tail: write the new descriptors, point the
  old tail's `next` at the first of them, then write `TAILDESC_HI`, `TAILDESC_LO` (the new
  tail). A channel already stopped at the old tail reads its `next` again and carries on.
- **Start a new chain** after the last one stopped at its tail: write `CURDESC_HI`,
  `CURDESC_LO`, then `TAILDESC_HI`, `TAILDESC_LO`. Writing `CURDESC_LO` marks the restart, so
  write `CURDESC` only while `STATUS.busy` is clear.
- **Cyclic mode** (`CTRL.cyclic = 1`): the channel follows `next` forever and ignores
  `TAILDESC` (a `TAILDESC_LO` write still starts it) and the `completed` bits, which it still
  writes back. A soft reset stops it.
- **Completion.** Descriptors complete in chain order. After the last data write response of
  a descriptor comes back, the channel writes its status word ({status_offset}: `status` and
  `bytes_moved`) as one 64-bit write; once that write's response has come back the
  descriptor is complete: `COMPLETED` increments, and if `control.irq_on_complete` is set the
  completion counts towards `INTR.done`. So the status word is in memory before the
  interrupt that reports it. `JOB_BYTES` shows the progress of the transfer being written.

### Descriptor

{descriptor}
### Interrupt coalescing

`INTR.done` is set when, counting the completions that ask for an interrupt (a descriptor
with `control.irq_on_complete`, every register-mode transfer):

- `COALESCE.threshold` of them have gathered (0 and 1: each one);
- `COALESCE.delay` cycles (0: never) have passed since the last one with fewer gathered; or
- **the channel goes idle** (`STATUS.busy` falls: the chain is done, or the channel halts)
  with at least one gathered.

So the last completion of a chain always raises `INTR.done`, whatever the threshold. A
completion reaches the coalescer a cycle after its status write-back response.

### Error codes

{err_code}
{resp}
What `ERR_DESC` names, and whether the faulting descriptor's status is written back (with
`completed = 0`, `error`, `resp` and `bytes_moved = 0`):

| err_code | ERR_DESC | Status written back |
|---|---|---|
| `READ`, `WRITE` | the descriptor whose data burst failed; 0 in register mode | yes (not in register mode) |
| `DESC_FETCH` | the descriptor being fetched, or the old tail whose `next` was being read again | no |
| `STATUS_WB` | the descriptor whose status write-back failed | no |
| `ZERO_LEN` | the descriptor; 0 in register mode | yes (not in register mode) |
| `STALE` | the descriptor | no (its status is left as it is) |
| `MISALIGNED` | the misaligned pointer (`CURDESC`, `TAILDESC` or the `next` about to be followed); nothing was fetched from it | no |

Only the first error is reported; the channel then halts. A fault the SMMU raises on a
channel's transaction (translation fault or aborting stream) answers it SLVERR, so the
channel halts with `READ`, `WRITE`, `DESC_FETCH` or `STATUS_WB` and `err_resp = SLVERR`;
the SMMU writes the fault's event record (if it records it) and sets `IRQ_STATUS.event`
before it answers the transaction, so before the channel's error interrupt.

### Errors: the order of events

1. The channel detects the error: a bus error response, or a descriptor fault (fetch error,
   zero length, stale, misaligned pointer) once every transfer before the faulting
   descriptor has completed.
2. It halts at once: no further bursts or descriptor reads are issued. In one and the same
   cycle, `INTR.error` is set (the IRQ line rises if `INTR_EN.error`), and `STATUS` (busy 0,
   halted 1, `err_code`, `err_resp`) and `ERR_DESC` show the error.
3. The bursts already in flight are answered; write bursts already issued send their
   remaining beats with no byte strobes.
4. Once no burst is outstanding, the faulting descriptor's status is written back (for
   `READ`, `WRITE` and `ZERO_LEN`).

So **the error interrupt comes before the faulting descriptor's status write-back**: on the
interrupt, read `STATUS` and `ERR_DESC`, not the descriptor's status. The descriptors that
completed form a prefix of the chain (`COMPLETED` counts them); the destinations of the
others, the faulting one included, may be partly written.

To recover: write `CTRL.soft_reset = 1` and wait for `STATUS.resetting` to read 0 (the
channel waits for the bus to fall quiet and for the write-back of step 4, which has then
landed); write 1s to `INTR`; start again. A soft reset clears `STATUS`, `ERR_DESC`,
`COMPLETED`, `JOB_BYTES` and the descriptor walk (start with `CURDESC` and `TAILDESC`), and
keeps the registers software writes and `BYTES`, `BUSY_CYCLES`, `STALL_CYCLES`.

## SMMU (`smmu`)

An Arm SMMUv3-style IOMMU in a small subset: a linear stream table indexed by stream ID,
stage-1 AArch64 translation tables (4 KiB granule, {ia_bits}-bit input, {oa_bits}-bit
output), an IOTLB and walk cache, a command queue and an event queue in memory.

### Bring-up

1. With `CR0 = 0`: fill the stream table ({ste_bytes} bytes an entry, 2**`STRTAB_CFG.log2size`
   entries), allocate the command queue ({cmd_bytes} bytes a command) and the event queue
   ({event_bytes} bytes a record); write the `*_BASE` pairs and the `*_CFG` sizes;
   `CMDQ_PROD = 0`, `EVTQ_CONS = 0`; `IRQ_ENABLE`.
2. Set `CR0.cmdqen` and `CR0.evtqen` (`CMDQ_CONS` and `EVTQ_PROD` are held at 0 while
   they are clear).
3. Issue `CFGI_ALL`, `TLBI_NSNH_ALL` and `SYNC`, and wait for `CMDQ_CONS` to reach
   `CMDQ_PROD`.
4. Set `CR0.smmuen` (keeping the other bits). Until then every transaction passes
   untranslated.

### Queues

`PROD` and `CONS` hold an index in their bits log2size-1:0 and a wrap bit at bit log2size.
A queue is empty when they are equal, full when the indices are equal and the wrap bits
differ.

- **Commands**: write commands at the slots from `CMDQ_PROD` on, then write `CMDQ_PROD`
  past them. The SMMU executes them one at a time, in order, moving `CMDQ_CONS` past each,
  skipped ones included (an illegal command or a bus error fetching it sets `CMDQ_CONS.err`
  and `IRQ_STATUS.cmdq_err`). Invalidations take effect as they execute; a `SYNC` completes
  once every transaction sent to memory before it has been answered.
- **Events**: the SMMU writes a record at `EVTQ_PROD` and moves `EVTQ_PROD` past it once the
  write's response has come back (then `IRQ_STATUS.event` is set); read the records from
  `EVTQ_CONS` up to `EVTQ_PROD`, then write `EVTQ_CONS`. A record is not written (the
  transaction still faults) while `CR0.evtqen` is clear, when the stream does not record it,
  or when the queue is full. A record whose write fails is lost.
- **Overflow**: a record lost to a full queue counts in `EVTQ_LOST`, and toggles
  `EVTQ_PROD.ovflg` if it equals `EVTQ_CONS.ovackflg`: once per overflow episode, however
  many records it loses. Acknowledge it by writing `EVTQ_CONS` with `ovackflg` equal to the
  `ovflg` read (with the consumer index, as every `EVTQ_CONS` write carries both); records
  lost before that belong to the same episode. `ovflg` and `EVTQ_LOST` are held at 0 while
  `CR0.evtqen` is clear.

A faulting transaction is answered SLVERR (every beat of a read) once the record is written;
a stream whose STE aborts answers SLVERR with no record.

### Stream table entry

{ste}
{stream_config}
### Commands

{command}
{opcode}
{sync_cs}
### Event records

{event}
{event_type}
### Translation tables

The walk starts at level 1 (the table at the STE's `ttb`), indexed by input address bits
38:30, then level 2 (bits 29:21) and level 3 (bits 20:12); each table is 512 descriptors of 8
bytes (4 KiB). The SMMU reads tables straight from memory: clean the cache after writing
them. After changing or removing a valid descriptor, invalidate its cached copies
(`TLBI_NH_VA` or `TLBI_NH_ASID`, then `SYNC`) before relying on the change.

{pte}
### ATOS (address translation by registers)

Write `ATOS_SID` and `ATOS_ADDR_LO`/`ATOS_ADDR_HI`, then `ATOS_CTRL` with `go = 1` (and
`write`, `instr` as the access to check); wait for `ATOS_STATUS.busy` to read 0; on `OK`,
`ATOS_PAR` holds the output address. A fault is recorded as a transaction's would be.

{atos_status}
{cmdq_err}
## Data cache maintenance (`cache`)

The cache is empty after a reset, and software need not invalidate it. The tag memories are
block RAM, which hold every line invalid at power-up (configuration) but which `rst` does not
clear; so out of reset the cache sweeps them, writing every set's lines invalid, one set per
cycle, with `MAINT_STATUS.busy` set and cacheable and uncached CPU accesses waiting. Lines
dirty at the reset are dropped, their data lost. At power-up no sweep runs.

1. Write `MAINT_CTRL` (`op`, `scope`) and, as the scope needs, `START_LO`/`START_HI` and
   `END_LO`/`END_HI` (a physical address range, `END` exclusive) or `SETWAY`.
2. Write `MAINT_GO.go = 1` (ignored while an operation runs; one started during the reset
   sweep runs after it). CPU accesses wait while the operation runs.
3. The operation is done when `MAINT_STATUS.busy` reads 0, and `IRQ_STATUS.done` is set:
   by then every line it cleaned has been written back (its write response has come back).

{maint_op}
{maint_scope}
Values not listed are reserved.

# Register reference

Every register of every block, generated from SystemRDL by PeakRDL-markdown. `dma1` has the
registers of `dma0`. The values of the encoded fields ({encoded}) are tabled in the
programming model above.

"""
