# amaranth: UnusedElaboratable=no
"""The driver's register map, accessors and exporters, checked against the hardware and the
compiled RDL."""

import random
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from amaranth.sim import Simulator

from dmabuf_soc.hw.bus.axi import Resp
from dmabuf_soc.sim.bus.lite import lite_read, lite_write
from dmabuf_soc.hw.regs import RegisterBlock, block_spec, compile_rdl, soc_block, soc_windows
from dmabuf_soc.sw.machine.base import BusError, Machine
from dmabuf_soc.sw.regs import RegisterBank, register_map
from dmabuf_soc.sw.regs.export import export

FIXTURE = Path(__file__).resolve().parents[2] / "rdl" / "access_types.rdl"


class BlockMachine(Machine):
    """Test double: the MMIO half of a machine, on one simulated register block."""

    def __init__(self, ctx, bus):
        self._ctx = ctx
        self._bus = bus
        self._cycle = 0

    @property
    def cycle(self):
        return self._cycle

    async def tick(self, n=1):
        await self._ctx.tick().repeat(n)
        self._cycle += n

    async def mmio_read(self, addr):
        data, resp = await lite_read(self._ctx, self._bus, addr)
        if resp != Resp.OKAY:
            raise BusError(f"MMIO read at {addr:#x}: {resp.name}")
        return data

    async def mmio_write(self, addr, value):
        resp = await lite_write(self._ctx, self._bus, addr, value)
        if resp != Resp.OKAY:
            raise BusError(f"MMIO write at {addr:#x}: {resp.name}")

    def _no_memory(self, *args, **kwargs):
        raise NotImplementedError("BlockMachine has only a register block")

    load = store = wait_irq = peek = poke = irq_pending = _no_memory


def run_on_block(bench):
    spec = block_spec(compile_rdl(FIXTURE))
    dut = RegisterBlock(spec)
    sim = Simulator(dut)
    sim.add_clock(1e-6)

    async def testbench(ctx):
        await bench(ctx, dut, RegisterBank(BlockMachine(ctx, dut.bus), spec))

    sim.add_testbench(testbench)
    sim.run()


def test_map_follows_soc_rdl():
    regmap = register_map()
    assert regmap is register_map()
    assert [block.name for block in regmap] == [window.name for window in soc_windows()]
    for window in soc_windows():
        block = regmap[window.name]
        assert (block.base, block.size) == (window.base, window.size)
        for reg, node in zip(block.registers, soc_block(window.name).registers()):
            assert reg.address == node.absolute_address == block.base + reg.offset
            assert regmap.at(reg.address) == (block, reg)
            assert regmap.register(f"{block.name}.{reg.name}") is reg
            for f, field_node in zip(reg.fields, node.fields()):
                assert (f.name, f.lsb, f.width) == (field_node.inst_name, field_node.lsb,
                                                    field_node.width)
    scratch = regmap["ident"].register("SCRATCH").field("value")
    assert (scratch.lsb, scratch.width, scratch.access, scratch.reset) == (0, 32, "rw", 0)
    with pytest.raises(KeyError, match="no block 'dma9'; its blocks are ident"):
        regmap["dma9"]
    with pytest.raises(KeyError, match="'ident' has no register 'NOPE'; its registers are ID"):
        regmap.register("ident.NOPE")


def test_bank_offsets_match_the_hardware():
    rng = random.Random(5)
    spec = block_spec(compile_rdl(FIXTURE))
    plain = [reg for reg in spec.registers
             if any(f.sw_writable and "q" in f.hw_ports() for f in reg.fields)
             and not any(f.onwrite or f.singlepulse or f.onread or f.hw_loads_every_cycle
                         for f in reg.fields)]
    assert len(plain) >= 5

    async def bench(ctx, dut, bank):
        for _ in range(3):
            for reg in plain:
                values = {f.name: rng.getrandbits(f.width) for f in reg.fields if f.sw_writable}
                await bank.write(reg.name, **values)
                ports = dut.register_interface(reg.name)
                for f in reg.fields:
                    if f.name in values and "q" in f.hw_ports():
                        assert ctx.get(getattr(ports, f.name).q) == values[f.name], \
                            f"{reg.name}.{f.name}"
                readable = {name: value for name, value in values.items()
                            if reg.field(name).sw_readable}
                fields = await bank.read_fields(reg.name)
                assert {name: fields[name] for name in readable} == readable
                for name, value in readable.items():
                    assert await bank.read_field(reg.name, name) == value

    run_on_block(bench)


def test_write_semantics():
    async def bench(ctx, dut, bank):
        # From reset: unnamed plain fields get their reset value.
        await bank.write("RW", hi=0xBEEF)
        assert await bank.read("RW") == 0x90BEEF_A5
        # Read-modify-write keeps the others.
        await bank.modify("RW", lo=0x11)
        assert await bank.read("RW") == 0x90BEEF_11
        # Side-effect fields are written neutrally: woclr not cleared, wot not toggled,
        # wzc not cleared, singlepulse not pulsed. (wclr/wset act on any write.)
        before = await bank.read_fields("W1")
        await bank.write("W1", set=0x80)
        after = await bank.read_fields("W1")
        assert after["set"] == 0x80
        for name in ("clr", "tog", "zc", "zs"):
            assert after[name] == before[name], name
        await bank.modify("W1", set=0x01)
        assert await bank.read_field("W1", "set") == 0x81
        assert await bank.read_field("W1", "clr") == before["clr"]
        await bank.write("W1", 0x0000_000F)                # verbatim: clears 4 bits
        assert await bank.read_field("W1", "clr") == before["clr"] & ~0xF
        # A write-only field keeps its value across a read-modify-write of another field.
        await bank.write("PULSE", wonly=0x37)
        assert ctx.get(dut.f.PULSE.wonly.q) == 0x37
        assert bank.address("ch[1].POS") == 0x54

    run_on_block(bench)


def test_bank_errors():
    async def bench(ctx, dut, bank):
        with pytest.raises(KeyError, match="no register 'CTRL'"):
            await bank.read("CTRL")
        with pytest.raises(KeyError, match="Register 'RW' has no field 'mode'"):
            await bank.write("RW", mode=1)
        with pytest.raises(KeyError, match="has no field 'x'"):
            await bank.read_field("RW", "x")
        with pytest.raises(ValueError, match=r"RW\.lo is 8 bits wide; 256 does not fit"):
            await bank.write("RW", lo=256)
        with pytest.raises(ValueError, match=r"STATUS\.live is not writable"):
            await bank.write("STATUS", live=1)
        with pytest.raises(TypeError, match="either a value or fields"):
            await bank.write("RW", 1, lo=1)
        with pytest.raises(ValueError, match="32-bit unsigned"):
            await bank.write("RW", 1 << 32)
        with pytest.raises(ValueError, match=r"'RCLR' cannot be read-modify-written.*rclr"):
            await bank.modify("RCLR")
    run_on_block(bench)
    with pytest.raises(KeyError, match="no block 'nope'"):
        RegisterBank(None, "nope")


def c_macro_prefix(top, block, reg):
    parts = [top, block]
    for part, following in zip(reg.path, reg.path[1:] + (None,)):
        if isinstance(part, str):
            parts.append(part + ("X" if isinstance(following, int) else ""))
    return "__".join(parts).upper()


@pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc")
def test_c_header_matches_the_map(tmp_path):
    header, = export("c", tmp_path)
    regmap = register_map()
    lines = ['#include <stdio.h>', '#include <stddef.h>', f'#include "{header.name}"',
             "int main(void) {"]
    expected = []
    for block in regmap:
        for reg in block.registers:
            lines.append(f'  printf("%s %zu\\n", "{block.name}.{reg.name}", '
                         f'offsetof(dmabuf_soc_t, {block.name}.{reg.name}));')
            expected.append(f"{block.name}.{reg.name} {reg.address}")
            for f in reg.fields:
                macro = f"{c_macro_prefix('dmabuf_soc', block.name, reg)}__{f.name.upper()}"
                lines.append(f'  printf("%s %d %d\\n", "{macro}", {macro}_bp, {macro}_bw);')
                expected.append(f"{macro} {f.lsb} {f.width}")
    lines += ["  return 0;", "}"]
    source = tmp_path / "offsets.c"
    source.write_text("\n".join(lines) + "\n")
    subprocess.run(["gcc", "-std=c11", "-Wall", "-Werror", "-o", str(tmp_path / "offsets"),
                    str(source)], check=True, cwd=tmp_path)
    output = subprocess.run([str(tmp_path / "offsets")], check=True, capture_output=True,
                            text=True).stdout.split("\n")
    assert output[:-1] == expected


def test_html_and_markdown_docs(tmp_path):
    index, = export("html", tmp_path / "html")
    assert index.name == "index.html" and index.is_file()
    content = "".join(path.read_text(errors="ignore")
                      for path in (tmp_path / "html" / "content").glob("*.html"))
    for reg in register_map()["ident"].registers:
        assert reg.name in content
    markdown, = export("md", tmp_path / "md")
    text = markdown.read_text()
    for reg in register_map()["ident"].registers:
        assert re.search(rf"### {reg.name} register\n\n- Absolute Address: "
                         rf"0x{reg.address:X}\n", text), reg.name
    with pytest.raises(ValueError, match="one of c, html, md, ipxact, not 'pdf'"):
        export("pdf", tmp_path)
