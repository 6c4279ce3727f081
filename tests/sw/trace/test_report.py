"""The HTML report and its GTKWave save file, from a short traced run; the page opened in
headless Chromium where Debian's ``chromium`` is installed."""

import re
import shutil
import subprocess

import pytest

from dmabuf_soc.sw.trace.gtkw import vcd_signals, write_gtkw
from dmabuf_soc.sw.trace.report import write_report

pytest.importorskip("matplotlib")

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def report(pysim_trace, tiny_vcd, tmp_path_factory):
    result, trace = pysim_trace
    vcd = tiny_vcd
    folder = tmp_path_factory.mktemp("report")
    shutil.copy(vcd, folder / "waves.vcd")
    page = write_report(folder, trace.records(), result, title="short story",
                        comparison={"one way": 1200, "another": 3400},
                        vcd=folder / "waves.vcd")
    return folder, page


def test_report_folder(report):
    folder, page = report
    for name in ("index.html", "timeline.svg", "timeline.png", "comparison.svg",
                 "registers/index.html", "waves.gtkw"):
        assert (folder / name).is_file(), name
    text = page.read_text()
    for expected in ("<h2>Timeline</h2>", "<h2>Stages</h2>", "cpu_fill", "read_back",
                     "<h2>Comparison</h2>", "registers/index.html", "waves.gtkw", "copy.copy_cycles"):
        assert expected in text, expected
    # Self-contained: no address on the network is loaded by the page.
    assert not re.search(r'(src|href)="(https?:)?//', text)


def test_gtkw_groups_per_block_and_channel(tiny_vcd, tmp_path):
    vcd = tiny_vcd
    shown = write_gtkw(vcd, tmp_path / "waves.gtkw")
    text = (tmp_path / "waves.gtkw").read_text()
    assert shown > 50
    groups = re.findall(r"^-(.+)$", text, re.MULTILINE)
    for group in ("cache", "dma0", "bus AR", "bus R", "interconnect"):
        assert group in groups, group
    names = {".".join([*scopes, name]) for scopes, name, _ in vcd_signals(vcd)}
    for line in text.splitlines():
        if line.startswith("+{"):
            label, name = re.match(r"\+\{(.+)\} (\S+?)(\[\d+:0\])?$", line).group(1, 2)
            assert name in names
            assert "." in label or label in ("clk", "cycle", "irq")
    assert "{dma0.bus.ar.valid}" in text


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH (Debian's chromium "
                                             "package) to open the report in")
def test_report_in_headless_chromium(report, tmp_path):
    folder, page = report
    shot = tmp_path / "page.png"
    done = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--enable-logging=stderr", "--v=0", f"--screenshot={shot}",
         "--window-size=1280,2000", page.as_uri()],
        capture_output=True, text=True, timeout=120)
    assert shot.is_file(), done.stderr[-2000:]
    from PIL import Image
    with Image.open(shot) as image:
        assert image.size == (1280, 2000)
        assert len(image.convert("RGB").getcolors(1 << 20)) > 20
    console = [line for line in done.stderr.splitlines()
               if "CONSOLE" in line and ("Error" in line or "error" in line)]
    assert not console, console


@pytest.mark.parametrize("options, message", [
    (["--timeline", "t.gif"], "the picture is PNG or SVG"),
    (["--report", "not-a-folder.txt"], "is a file, not a folder"),
    (["--report", "missing/deeper"], "does not exist"),
])
def test_bad_outputs_are_one_line_before_any_work(tmp_path, monkeypatch, options, message):
    from dmabuf_soc.sw.cli import main
    monkeypatch.chdir(tmp_path)
    (tmp_path / "not-a-folder.txt").write_text("")
    with pytest.raises(SystemExit, match=f"dmabuf-soc: error: .*{message}"):
        main(["sim", "platform", "--backend", "pysim", *options])
    with pytest.raises(SystemExit, match=f"dmabuf-soc: error: .*{message}"):
        main(["bench", "share", "--backend", "pysim", *options])
