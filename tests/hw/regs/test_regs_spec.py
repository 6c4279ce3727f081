"""SystemRDL front end: compilation errors, caching, supported-feature checks, windows."""

import os
import re

import pytest

from dmabuf_soc.hw.regs import (RdlError, UnsupportedRdlError, address_windows, block_spec,
                                compile_rdl, soc_windows)


def rdl(tmp_path, text, name="block.rdl"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_syntax_error_names_file_and_line(tmp_path):
    path = rdl(tmp_path, "addrmap bad {\n  reg { field {} f; } R @ ;\n};\n")
    with pytest.raises(RdlError) as info:
        compile_rdl(path)
    assert str(path) in str(info.value)
    assert re.search(rf"{re.escape(str(path))}:2:\d+: error: ", str(info.value))
    assert info.value.paths == (str(path),)


def test_elaboration_error_carries_the_compiler_message(tmp_path):
    path = rdl(tmp_path, "addrmap bad { reg { field { sw = rw; } f[4] = 0x1F; } R; };")
    with pytest.raises(RdlError, match=r"reset value \(31\) of field 'f' cannot fit"):
        compile_rdl(path)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothere.rdl"):
        compile_rdl(tmp_path / "nothere.rdl")


def test_compiled_models_are_cached_until_the_file_changes(tmp_path):
    path = rdl(tmp_path, "addrmap a { reg r_t { field { sw = rw; hw = r; } f; }; r_t R; };")
    first = compile_rdl(path)
    assert compile_rdl(path) is first
    path.write_text("addrmap a { reg r_t { field { sw = rw; hw = r; } f; }; r_t R; r_t R2; };")
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    second = compile_rdl(path)
    assert second is not first
    assert [reg.name for reg in block_spec(second)] == ["R", "R2"]


@pytest.mark.parametrize("body, message", [
    ("reg { field { sw = rw; hw = r; counter; } c[8]; } CNT;", r"a\.CNT\.c: property 'counter'"),
    ("reg { regwidth = 64; field { sw = rw; hw = r; } f[40]; } WIDE;",
     r"a\.WIDE: regwidth=64; only 32-bit"),
    ("external reg { field { sw = rw; hw = r; } f; } EXT;", r"a\.EXT: external registers"),
    ("reg { field { sw = rw; hw = w; sticky; } f[4]; } U;", r"a\.U\.f: property 'sticky'"),
    ("reg { field { sw = rw1; hw = r; } f; } ONCE;", r"a\.ONCE\.f: sw=rw1 \(write-once\)"),
    ("reg { field { sw = rw; hw = w; onwrite = woclr; nonsticky intr; } f; } NS;",
     r"a\.NS\.f: non-sticky interrupts"),
    ("reg { field { sw = rw; hw = w; swwe; } f; } SWWE;", r"a\.SWWE\.f: property 'swwe'"),
    ("addrmap { reg { field { sw = rw; } f; } R; } inner;", r"a\.inner: a register block may "
                                                           r"not contain a AddrmapNode"),
])
def test_unsupported_features_are_named(tmp_path, body, message):
    path = rdl(tmp_path, f"addrmap a {{ {body} }};")
    with pytest.raises(UnsupportedRdlError, match=message):
        block_spec(compile_rdl(path))


def test_field_spec_properties(tmp_path):
    path = rdl(tmp_path, """
        addrmap a {
            reg {
                field { sw = rw; hw = r; } plain[3:0] = 5;
                field { sw = rw; hw = w; onwrite = woclr; intr; } st[8:8];
                field { sw = rw; hw = r; onwrite = wzc; } zc[15:12] = 0xF;
                field { sw = w; hw = r; singlepulse; } go[16:16] = 0;
                field { sw = r; hw = w; } live[31:24];
            } R @ 0x10;
        };""")
    reg = block_spec(compile_rdl(path)).register("R")
    assert reg.offset == reg.address == 0x10
    assert reg.reset == 0x5 | 0xF000
    assert reg.field("st").access == "rw/woclr" and reg.field("go").access == "w/singlepulse"
    assert [f.neutral_write for f in reg.fields] == [None, 0, 0xF, 0, None]
    assert reg.field("plain").hw_ports() == {"q": ("out", 4)}
    assert reg.field("st").hw_ports() == {"d": ("in", 1)}
    # From reset; side-effect fields neutral; named fields set.
    assert reg.encode(plain=2, go=1) == 0x2 | 0xF000 | 1 << 16
    assert reg.encode(0xFFFF_FFFF, plain=0) == 0xFFFE_FEF0
    assert reg.decode(0x12_01_F1_07) == {"plain": 7, "st": 1, "zc": 0xF, "go": 1, "live": 0x12}
    with pytest.raises(KeyError, match="has no field 'nope'; its fields are plain, st"):
        reg.encode(nope=1)
    with pytest.raises(ValueError, match=r"R\.plain is 4 bits wide; 16 does not fit"):
        reg.encode(plain=16)
    with pytest.raises(ValueError, match=r"R\.live is not writable by software"):
        reg.encode(live=1)


def test_address_windows(tmp_path):
    path = rdl(tmp_path, """
        addrmap small { reg { field { sw = rw; hw = r; } f; } R; };
        addrmap large { reg { field { sw = rw; hw = r; } f[32]; } R[1536]; };
        addrmap top {
            small s0 @ 0x0000;
            large big @ 0x2000;
            small s1[2] @ 0x8000 += 0x1000;
        };""")
    assert address_windows(compile_rdl(path, top="top")) == (
        ("s0", 0x0000, 0x1000), ("big", 0x2000, 0x2000),
        ("s1_0", 0x8000, 0x1000), ("s1_1", 0x9000, 0x1000))
    assert soc_windows()[0] == ("ident", 0x0000, 0x1000)
