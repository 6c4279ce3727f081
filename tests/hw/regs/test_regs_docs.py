# amaranth: UnusedElaboratable=no
"""docs/registers.md against the hardware it documents, and the IP-XACT export.

The in-memory format and value tables of the committed document are parsed back and compared
with the RTL's layouts and enums (not with the generator's view of them); the ordering rules
the document states are run on a DMA channel with its register block; the IP-XACT export is
parsed and compared with the register map."""

import random
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from amaranth.lib import data
from amaranth.sim import Simulator

from dmabuf_soc.hw.bus.axi import Resp
from dmabuf_soc.sim.bus.subordinate import AXI4Subordinate
from dmabuf_soc.sim.bus.memory import ReferenceMemory
from dmabuf_soc.sim.bus.lite import lite_read, lite_write
from dmabuf_soc.hw.cache.core import MaintenanceOp, MaintenanceScope
from dmabuf_soc.hw.dma.channel import DMAChannel
from dmabuf_soc.hw.dma.descriptor import (DESCRIPTOR_BYTES, STATUS_OFFSET, DescriptorLayout,
                                          ErrorCode, pack_descriptor, unpack_descriptor)
from dmabuf_soc.hw.regs import soc_rdl, soc_windows
from dmabuf_soc.hw.smmu import format as smmu_format
from dmabuf_soc.hw.smmu.cmdq import CommandError
from dmabuf_soc.hw.smmu.walker import TranslationStatus
from dmabuf_soc.sw.regs import register_map
from dmabuf_soc.sw.regs.export import export
from dmabuf_soc.sw.regs.guide import GuideError, guide, layout_rows

DOC = Path(__file__).resolve().parents[3] / "docs" / "registers.md"

#: The layouts the document tables, by the caption that opens each table.
LAYOUTS = {
    "DMA descriptor": DescriptorLayout(),
    "Stream table entry": smmu_format.StreamTableEntryLayout(),
    "Command": smmu_format.CommandLayout(),
    "Event record": smmu_format.EventLayout(),
    "Translation table descriptor": smmu_format.DescriptorLayout(),
}

#: The enums the document tables, and where SystemRDL encodes them on a register field.
ENUMS = {
    ErrorCode: ("dma0", "STATUS", "err_code"),
    Resp: ("dma0", "STATUS", "err_resp"),
    MaintenanceOp: ("cache", "MAINT_CTRL", "op"),
    MaintenanceScope: ("cache", "MAINT_CTRL", "scope"),
    CommandError: ("smmu", "CMDQ_CONS", "err"),
    TranslationStatus: ("smmu", "ATOS_STATUS", "status"),
    smmu_format.StreamConfig: None,
    smmu_format.EventType: None,
    smmu_format.Opcode: None,
    smmu_format.SyncCompletion: None,
}


def doc_table(caption_pattern):
    """The rows (lists of cells) of the first table after the line matching
    ``caption_pattern`` in docs/registers.md."""
    lines = DOC.read_text().splitlines()
    start = next(n for n, line in enumerate(lines) if re.search(caption_pattern, line))
    rows = []
    for line in lines[start + 1:]:
        if line.startswith("|"):
            rows.append([cell.strip() for cell in line.strip("|").split(" | ")])
        elif rows:
            break
    header, rule, *body = rows
    assert set(rule[0]) <= set("-|")
    return header, body


def flat_fields(layout, prefix="", base=0):
    """``{dotted name: (bit offset, width)}`` of a layout's leaf fields, straight from the
    layout."""
    fields = {}
    for name, field in layout:
        if isinstance(field.shape, data.StructLayout):
            fields.update(flat_fields(field.shape, f"{prefix}{name}.", base + field.offset))
        else:
            fields[f"{prefix}{name}"] = (base + field.offset, field.width)
    return fields


def documented_fields(title):
    """``{name: (bit offset, width)}`` of the document's table of ``title``."""
    header, body = doc_table(rf"^{re.escape(title)}: \d+ bytes, from the RTL's")
    assert header == ["Offset", "Bits", "Width", "Field", "Meaning"]
    fields = {}
    for offset, bits, width, name, meaning in body:
        msb, _, lsb = bits.partition(":")
        lsb = int(lsb or msb)
        assert int(width) == int(msb) - lsb + 1, name
        assert int(offset, 16) % 4 == 0 and lsb < 32 and meaning, name
        fields[name.strip("`")] = (int(offset, 16) * 8 + lsb, int(width))
    return fields


@pytest.mark.parametrize("title", LAYOUTS)
def test_layout_tables_match_the_rtl_layouts(title):
    layout = LAYOUTS[title]
    documented = documented_fields(title)
    assert documented == flat_fields(layout)
    # In bit order, and every bit of the structure documented once.
    position = 0
    for name, (offset, width) in documented.items():
        assert offset == position, name
        position += width
    assert position == layout.size
    assert (f"{title}: {layout.size // 8} bytes, from the RTL's `{type(layout).__name__}`"
            in DOC.read_text())


def test_descriptor_table_places_what_pack_descriptor_writes():
    """Each field the driver fills, packed alone by the RTL's own layout, lands where the
    table says and nowhere else."""
    documented = documented_fields("DMA descriptor")
    assert DESCRIPTOR_BYTES * 8 == DescriptorLayout().size
    assert documented["status.completed"][0] == STATUS_OFFSET * 8
    arguments = {"next": "next", "src": "src", "dst": "dst", "length": "length",
                 "control.irq_on_complete": "irq_on_complete", "status.completed": "completed",
                 "status.error": "error", "status.resp": "resp", "bytes_moved": "bytes_moved",
                 "user": "user"}
    rng = random.Random(7)
    base = dict(next=0, src=0, dst=0, length=0)
    for field, argument in arguments.items():
        offset, width = documented[field]
        value = {"error": ErrorCode.STALE, "resp": Resp.DECERR}.get(
            argument, rng.randrange(1, 1 << width))
        raw = int.from_bytes(pack_descriptor(**{**base, argument: value}), "little")
        assert raw == int(getattr(value, "value", value)) << offset, field


@pytest.mark.parametrize("title", [title for title in LAYOUTS if title != "DMA descriptor"])
def test_smmu_tables_place_what_the_rtl_packs(title):
    layout = LAYOUTS[title]
    for field, (offset, width) in documented_fields(title).items():
        shape = layout[field].shape
        if isinstance(shape, type):                  # an enum: its largest member
            value = max(member.value for member in shape)
        else:
            value = (1 << width) - 1
        raw = int.from_bytes(smmu_format.pack(layout, **{field: value}), "little")
        assert raw == value << offset, field


@pytest.mark.parametrize("rtl_enum", ENUMS, ids=[e.__name__ for e in ENUMS])
def test_value_tables_match_the_rtl_enums(rtl_enum):
    header, body = doc_table(rf"`{rtl_enum.__name__}`(\)| in the RTL\)):$")
    assert header == ["Value", "Name", "Meaning"]
    assert [(int(value, 0), name.strip("`")) for value, name, meaning in body] == \
        [(member.value, member.name) for member in rtl_enum]
    assert all(meaning for _, _, meaning in body)
    where = ENUMS[rtl_enum]
    if where is not None:
        # The SystemRDL encoding of the register field agrees with the RTL's enum.
        block, register, field = where
        node = soc_rdl().find_by_path(f"{block}.{register}.{field}")
        assert [(m.name, m.value) for m in node.get_property("encode")] == \
            [(member.name, member.value) for member in rtl_enum]


def test_guide_refuses_fields_and_values_it_does_not_know():
    meanings = {"valid": "v", "table": "t"}
    with pytest.raises(GuideError, match=r"fields without a meaning: \['attr_index'"):
        layout_rows(smmu_format.DescriptorLayout(), meanings)
    complete = {name: "x" for name in flat_fields(smmu_format.EventLayout())}
    with pytest.raises(GuideError, match=r"meanings of no field: \['nope'\]"):
        layout_rows(smmu_format.EventLayout(), {**complete, "nope": "x"})
    assert guide(soc_rdl()).startswith("# dmabuf-soc: registers and in-memory formats\n")


def test_pair_table_lists_every_lo_hi_pair():
    _, body = doc_table(r"^## 64-bit register pairs$")
    documented = {(block.strip("`"), pair) for blocks, pair, rule in body
                  for block in blocks.split(", ")}
    expected = set()
    for block in register_map():
        for reg in block.registers:
            if reg.name.endswith("_LO") and f"{reg.name[:-3]}_HI" in block:
                expected.add((block.name, f"{reg.name} / {reg.name[:-3]}_HI"))
    assert documented == expected


def test_interrupt_table_lists_every_interrupt_bit():
    from dmabuf_soc.hw.soc import IRQ_LINES
    _, body = doc_table(r"^## Interrupts$")
    documented = {(int(line), block.strip("`"), bit, enable, kept)
                  for line, block, bit, enable, kept in body}
    expected = set()
    for block in register_map():
        for reg in block.registers:
            for f in reg.fields:
                if f.intr:
                    expected.add((IRQ_LINES[block.name], block.name, f"{reg.name}.{f.name}",
                                  ".".join(f.enable), "kept" if f.precedence == "hw" else "lost"))
    assert documented == expected


# ---- The document's rules, on a DMA channel with its registers ----------------------------

SRC, DST = 0x8000_0000, 0x8010_0000
OFFSETS = {reg.name: reg.offset for reg in register_map()["dma0"].registers}


def run_channel(bench, *, descs, segments, error=None):
    """A DMA channel on a reference memory holding a chain of ``segments`` at ``descs``;
    ``bench(ctx, channel, memory, trace)`` drives it, ``trace`` gathering per cycle
    ``(irq, halted, busy, fault status word)`` (the status word of ``descs[-1]``)."""
    channel = DMAChannel(stream_id=0)
    memory = ReferenceMemory()
    memory.write(SRC, bytes(range(256)) * 16)
    for index, (addr, (src, dst, length)) in enumerate(zip(descs, segments)):
        memory.write(addr, pack_descriptor(
            next=descs[index + 1] if index + 1 < len(descs) else 0, src=src, dst=dst,
            length=length, irq_on_complete=True))
    sim = Simulator(channel)
    sim.add_clock(1e-8)
    AXI4Subordinate(channel.bus, memory, read_latency=5, write_latency=5,
                    error=error).add_to(sim)
    trace = []

    async def watch(ctx):
        e = channel.engine
        async for _, _, irq, halted, busy in ctx.tick().sample(channel.irq, e.halted, e.busy):
            status = unpack_descriptor(memory.read(descs[-1], DESCRIPTOR_BYTES))
            trace.append((irq, halted, busy, (status["completed"], status["error"])))

    async def testbench(ctx):
        await bench(ctx, channel, memory, trace)

    sim.add_process(watch)
    sim.add_testbench(testbench)
    sim.run()
    return trace


async def write(ctx, channel, name, value):
    assert await lite_write(ctx, channel.regs, OFFSETS[name], value) == Resp.OKAY


async def read(ctx, channel, name):
    value, resp = await lite_read(ctx, channel.regs, OFFSETS[name])
    assert resp == Resp.OKAY
    return value


async def start_chain(ctx, channel, first, last, *, lo_first=False):
    await write(ctx, channel, "CURDESC_HI", first >> 32)
    await write(ctx, channel, "CURDESC_LO", first & 0xffff_ffff)
    halves = [("TAILDESC_HI", last >> 32), ("TAILDESC_LO", last & 0xffff_ffff)]
    for name, value in (reversed(halves) if lo_first else halves):
        await write(ctx, channel, name, value)


def test_error_interrupt_comes_before_the_fault_write_back():
    descs = [0x800C_0000, 0x800C_0100]
    segments = [(SRC, DST, 256), (SRC + 256, DST + 256, 256)]
    result = {}

    async def bench(ctx, channel, memory, trace):
        await write(ctx, channel, "INTR_EN", 0b11)
        await start_chain(ctx, channel, descs[0], descs[-1])
        await ctx.tick().until(channel.irq)
        # STATUS and ERR_DESC show the halt in the cycle the interrupt rises.
        status = register_map()["dma0"].register("STATUS").decode(
            await read(ctx, channel, "STATUS"))
        result["status"] = status
        result["err_desc"] = (await read(ctx, channel, "ERR_DESC_HI") << 32 |
                              await read(ctx, channel, "ERR_DESC_LO"))
        await ctx.tick().repeat(200)
        await write(ctx, channel, "CTRL", 0b10)                 # soft_reset
        while (await read(ctx, channel, "STATUS")) & 0b100:     # resetting
            pass
        result["after_reset"] = unpack_descriptor(memory.read(descs[1], DESCRIPTOR_BYTES))

    trace = run_channel(bench, descs=descs, segments=segments,
                        error=lambda write, addr: Resp.SLVERR if (not write and
                                                                  addr == SRC + 256) else None)
    irq = next(n for n, (irq, *_) in enumerate(trace) if irq)
    assert trace[irq][1] and not trace[irq - 1][1]            # halted with the interrupt
    written_back = next(n for n, (*_, status) in enumerate(trace) if status[1] != ErrorCode.NONE)
    assert written_back > irq + 1
    assert trace[written_back][3] == (False, ErrorCode.READ)
    assert result["status"]["halted"] == 1 and result["status"]["busy"] == 0
    assert ErrorCode(result["status"]["err_code"]) == ErrorCode.READ
    assert Resp(result["status"]["err_resp"]) == Resp.SLVERR
    assert result["err_desc"] == descs[1]
    assert (result["after_reset"]["error"], result["after_reset"]["bytes_moved"]) == \
        (ErrorCode.READ, 0)


def test_coalescing_fires_when_the_channel_goes_idle():
    descs = [0x800C_0000 + 0x100 * n for n in range(3)]
    segments = [(SRC + 64 * n, DST + 64 * n, 64) for n in range(3)]
    result = {}

    async def bench(ctx, channel, memory, trace):
        await write(ctx, channel, "INTR_EN", 0b11)
        await write(ctx, channel, "COALESCE", 200)              # threshold 200, no delay
        await start_chain(ctx, channel, descs[0], descs[-1])
        await ctx.tick().repeat(600)
        result["intr"] = await read(ctx, channel, "INTR")
        result["completed"] = await read(ctx, channel, "COMPLETED")

    trace = run_channel(bench, descs=descs, segments=segments)
    assert result == {"intr": 0b01, "completed": 3}
    irq = next(n for n, (irq, *_) in enumerate(trace) if irq)
    assert not trace[irq][2]                                # the channel is idle
    assert trace[irq][3] == (True, ErrorCode.NONE)          # the last status is in memory


@pytest.mark.parametrize("lo_first", [False, True], ids=["hi-then-lo", "lo-then-hi"])
def test_the_taildesc_lo_write_acts_with_the_hi_word_it_finds(lo_first):
    # One descriptor above 4 GiB, so CURDESC == TAILDESC with a non-zero HI word. Written HI
    # first, the chain stops at its tail; LO first, the walk starts with the old HI word, does
    # not recognise the tail and runs on (here to the descriptor at 0: ZERO_LEN).
    descs = [0x1_0000_0000]
    result = {}

    async def bench(ctx, channel, memory, trace):
        await start_chain(ctx, channel, descs[0], descs[0], lo_first=lo_first)
        await ctx.tick().repeat(400)
        result["status"] = register_map()["dma0"].register("STATUS").decode(
            await read(ctx, channel, "STATUS"))
        result["completed"] = await read(ctx, channel, "COMPLETED")

    run_channel(bench, descs=descs, segments=[(SRC, DST, 64)])
    assert result["completed"] == 1
    if lo_first:
        assert result["status"]["halted"] == 1
        assert ErrorCode(result["status"]["err_code"]) == ErrorCode.ZERO_LEN
    else:
        assert result["status"]["halted"] == 0 and result["status"]["busy"] == 0


# ---- IP-XACT ------------------------------------------------------------------------------

NS = {"ipxact": "http://www.accellera.org/XMLSchema/IPXACT/1685-2014"}


def ipxact_int(text):
    """An IP-XACT 2014 number: ``'h1f``, or decimal."""
    return int(text[2:], 16) if text.startswith("'h") else int(text)


def test_ipxact_export_lists_every_register_at_its_offset(tmp_path):
    path, = export("ipxact", tmp_path)
    root = ET.parse(path).getroot()
    assert root.tag == f"{{{NS['ipxact']}}}component"
    assert root.findtext("ipxact:name", namespaces=NS) == "dmabuf_soc"
    maps = root.findall("ipxact:memoryMaps/ipxact:memoryMap", NS)
    assert len(maps) == 1
    blocks = {block.findtext("ipxact:name", namespaces=NS): block
              for block in maps[0].findall("ipxact:addressBlock", NS)}
    assert list(blocks) == [window.name for window in soc_windows()]
    for spec in register_map():
        block = blocks[spec.name]
        assert ipxact_int(block.findtext("ipxact:baseAddress", namespaces=NS)) == spec.base
        registers = {}
        for reg in block.findall("ipxact:register", NS):
            fields = {f.findtext("ipxact:name", namespaces=NS):
                      (int(f.findtext("ipxact:bitOffset", namespaces=NS)),
                       int(f.findtext("ipxact:bitWidth", namespaces=NS)))
                      for f in reg.findall("ipxact:field", NS)}
            registers[reg.findtext("ipxact:name", namespaces=NS)] = (
                ipxact_int(reg.findtext("ipxact:addressOffset", namespaces=NS)),
                int(reg.findtext("ipxact:size", namespaces=NS)), fields)
        assert registers == {reg.name: (reg.offset, 32, {f.name: (f.lsb, f.width)
                                                         for f in reg.fields})
                             for reg in spec.registers}, spec.name
    # The encoded fields carry their values.
    err_code = maps[0].find("ipxact:addressBlock[ipxact:name='dma0']/ipxact:register"
                            "[ipxact:name='STATUS']/ipxact:field[ipxact:name='err_code']", NS)
    values = {v.findtext("ipxact:name", namespaces=NS):
              ipxact_int(v.findtext("ipxact:value", namespaces=NS))
              for v in err_code.findall("ipxact:enumeratedValues/ipxact:enumeratedValue", NS)}
    assert values == {member.name: member.value for member in ErrorCode}
