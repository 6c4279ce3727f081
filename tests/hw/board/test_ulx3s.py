"""The ULX3S top: its PLL settings, its clock and baud checks, the board build's command
line, and (slow) the whole build to a bitstream."""

import argparse
import json

import pytest

from dmabuf_soc.hw.board.ulx3s import CLOCK_HZ, OSCILLATOR_HZ, Ulx3sTop, ecp5_pll
from dmabuf_soc.sw.cli import main
from dmabuf_soc.sw.synth import cli, program

from requirements import needs_yowasp


@pytest.mark.parametrize("output_hz", [25_000_000, 30_000_000, 40_000_000, 50_000_000])
def test_pll_settings_are_within_the_datasheet(output_hz):
    clki_div, clkfb_div, clkop_div, achieved = ecp5_pll(OSCILLATOR_HZ, output_hz)
    assert 3.125e6 <= OSCILLATOR_HZ / clki_div <= 400e6
    assert 400e6 <= achieved * clkop_div <= 800e6
    assert achieved == OSCILLATOR_HZ / clki_div * clkfb_div
    assert abs(achieved - output_hz) < 0.01 * output_hz


def test_misuse_is_refused():
    with pytest.raises(ValueError, match="PLL output frequency must be"):
        ecp5_pll(OSCILLATOR_HZ, 1_000)
    with pytest.raises(ValueError, match="Baud rate must be"):
        Ulx3sTop(baud=12)
    with pytest.raises(ValueError, match="makes no UART within 2 %"):
        Ulx3sTop(clock_hz=CLOCK_HZ, baud=7_000_000)


def _synth(argv):
    parser = argparse.ArgumentParser()
    cli.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["synth", *argv])
    return args.func(args)


def test_board_build_options_are_checked():
    from dmabuf_soc.sw.cli import CommandError
    with pytest.raises(CommandError, match="the ecp5 target's board is ulx3s, not icebreaker"):
        _synth(["--target", "ecp5", "--board", "icebreaker", "--block", "board"])
    with pytest.raises(CommandError, match="built for ecp5 only, not ice40"):
        _synth(["--target", "ice40", "--block", "board"])


def test_program_prints_the_command(tmp_path, capsys):
    bitstream = tmp_path / "top.bit"
    bitstream.write_bytes(b"\xff")
    assert main(["program", str(bitstream), "--programmer", "fujprog", "--dry-run"]) == 0
    assert capsys.readouterr().out.strip() == f"fujprog {bitstream}"
    assert program.command("openFPGALoader", "x.bit", flash=True) == \
        ["openFPGALoader", "--board", "ulx3s", "--write-flash", "x.bit"]
    with pytest.raises(SystemExit, match="no bitstream at"):
        main(["program", str(tmp_path / "none.bit")])


@pytest.mark.slow
@needs_yowasp
def test_board_bitstream(tmp_path, capsys):
    assert _synth(["--target", "ecp5", "--board", "ulx3s", "--block", "board", "--json",
                   "-o", str(tmp_path)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["block"] == "board" and result["clock_mhz"] == CLOCK_HZ / 1e6
    assert result["constraint_mhz"] == pytest.approx(CLOCK_HZ / 1e6, abs=0.1)
    assert result["met"] and result["fmax_mhz"] >= result["constraint_mhz"]
    assert result["bitstream_bytes"] > 100_000
    assert result["nextpnr_cells"]["EHXPLLL"] == 1
