"""The driver on the board's design, bridge included, through the serial backend: on
Verilator with the host on a pseudo-terminal (the demo from the command line, the platform
scenario, faults on the line; in the default run when ``--compiled=verilator`` is given), and
on the built-in simulator through a byte pipe (slow: a minute for a few commands)."""

import json

import pytest

from dmabuf_soc.sw.cli import main
from dmabuf_soc.sw.machine.compiled.machine import run_until_complete
from dmabuf_soc.sw.machine.serial.machine import SerialMachine
from dmabuf_soc.sw.machine.serial.pysim_board import PysimBoard
from dmabuf_soc.sw.machine.serial.transport import FaultyTransport, SerialTransport
from dmabuf_soc.sw.machine.verilator.builder import available as verilator_available
from dmabuf_soc.sw.platform.ident import probe
from dmabuf_soc.sw.scenarios import demo, platform

needs_compiler = pytest.mark.skipif(
    not verilator_available(), reason="the board simulation needs Verilator, g++ and make "
                                      "(and --compiled to be asked for)")


@pytest.fixture(scope="module")
def board():
    from dmabuf_soc.sw.machine.serial.verilator_board import VerilatorBoard
    with VerilatorBoard() as sim:
        yield sim


def _machine(port, **kwargs):
    return SerialMachine(SerialTransport(port, 3_000_000), timeout=10.0, **kwargs)


@needs_compiler
def test_platform_over_pty(board):
    with _machine(board.port) as machine:
        summary = run_until_complete(platform.bring_up(machine))
    assert summary["ok"] and summary["bank_low_ok"] and summary["bank_high_ok"]
    assert summary["error_injection_reported"].startswith("not run")


@needs_compiler
def test_command_line_over_pty(board, capsys):
    assert main(["demo", "--backend", f"serial:{board.port}@3000000", "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["ok"] and result["cycles_exact"] is False
    assert result["bytes_checked"] == demo.DEMO_BYTES


@needs_compiler
def test_faults_over_pty(board):
    faulty = FaultyTransport(SerialTransport(board.port), drop=0.003, corrupt=0.003,
                             delay=0.003, seed=3)
    with SerialMachine(faulty, timeout=0.5, retries=10) as machine:
        async def body(machine):
            identity = await probe(machine)
            base = machine.config.banks[1].base + 0x800
            pattern = bytes(range(7, 7 + 200))
            await machine.poke(base + 3, pattern)
            await machine.store(base + 0x400 + 5, pattern, cacheable=False)
            return identity, await machine.peek(base + 3, 200), \
                await machine.load(base + 0x400 + 5, 200, cacheable=False)
        identity, peeked, loaded = run_until_complete(body(machine))
    assert peeked == loaded == bytes(range(7, 207))
    assert sum(faulty.faults.values()) > 0 and sum(machine.link.recovered.values()) > 0


@pytest.mark.slow
def test_pysim_board_short():
    with PysimBoard() as sim:
        machine = SerialMachine(sim.transport, timeout=60.0)

        async def body(machine):
            identity = await probe(machine)
            addr = machine.config.banks[0].base + 0x100
            await machine.poke(addr, b"board!!!")
            await machine.store(addr + 8, b"cpu", cacheable=False)
            return identity, await machine.peek(addr, 11), \
                await machine.load(addr, 11, cacheable=False)
        identity, peeked, loaded = run_until_complete(body(machine))
    assert peeked == loaded == b"board!!!cpu"
