"""Co-verification on every available backend: the same scenarios on the built-in simulator
and on the compiled models (Verilator, CXXRTL), which must agree cycle for cycle and byte for
byte.

The compiled backends join with ``--compiled`` (their first run builds the model, which later
runs load from the cache); otherwise only pysim runs. Every scenario of ``dmabuf-soc sim``
is compared too: the short ones by default, all of them with ``--run-slow``.
"""

import functools
import json
import random
import subprocess
import sys

import pytest

from dmabuf_soc.hw.config import SocConfig
from dmabuf_soc.hw.soc import IRQ_LINES
from dmabuf_soc.sw.bench.sim import dma_copy
from dmabuf_soc.sw.platform.ident import SOC_ID
from dmabuf_soc.sw import scenarios
from dmabuf_soc.sw.machine.backends import BACKENDS, available_backends, choose, simulate
from dmabuf_soc.sw.machine.base import BusError, Machine, MachineTimeout
from dmabuf_soc.sw.regs import RegisterBank
from dmabuf_soc.sw.scenarios.platform import bring_up

AVAILABLE = available_backends()
COMPILED = AVAILABLE[1:]
needs_compiled = pytest.mark.skipif(not COMPILED, reason="the compiled backends are off "
                                    "(run with --compiled; they need a C++ compiler)")


async def machine_rules(machine):
    """Every kind of machine call, and how each ends, with the cycle after each."""
    trace = []

    def note(what, value=None):
        trace.append((what, value, machine.cycle))

    async def expect(what, error, call):
        try:
            await call
        except error as exc:
            note(what, type(exc).__name__)
        else:
            raise AssertionError(f"{what}: no {error.__name__}")

    rng = random.Random(3)
    low, high = machine.config.banks
    note("reset")
    note("id", await machine.mmio_read(0))
    scratch = RegisterBank(machine, "ident").address("SCRATCH")
    await machine.mmio_write(scratch, 0x1234_5678)
    note("scratch", await machine.mmio_read(scratch))
    await expect("unmapped register", BusError, machine.mmio_read(0xF000))
    await machine.tick(37)
    note("ticked")
    # Backdoor accesses across a row and the end of a bank.
    blob = rng.randbytes(29)
    await machine.poke(low.end - 13, blob[:13])
    await machine.poke(high.base + 3, blob)
    note("peek", await machine.peek(low.end - 13, 13) + await machine.peek(high.base, 40))
    await expect("peek outside the banks", ValueError, machine.peek(low.end - 4, 8))
    # CPU accesses: uncached and cached, unaligned, then a bus error.
    await machine.store(high.base + 0x105, blob, cacheable=False)
    note("uncached load", await machine.load(high.base + 0x100, 48, cacheable=False))
    await machine.store(low.base + 0x2003, blob)
    note("cached load", await machine.load(low.base + 0x2000, 40))
    note("backdoor after cached store", await machine.peek(low.base + 0x2000, 40))
    await expect("load outside the banks", BusError, machine.load(0x1000, 8, cacheable=False))
    # Interrupts: none pending, a wait that times out, a wait that is answered at once.
    note("irq pending", [machine.irq_pending(line) for line in range(8)])
    await expect("irq timeout", MachineTimeout,
                 machine.wait_irq(IRQ_LINES["dma0"], timeout_cycles=50))
    return trace


class InterfaceOnly(Machine):
    """A backend's machine seen through the :class:`Machine` interface alone, so that a
    scenario takes the same path on every backend (no testbench context, for instance)."""
    def __init__(self, machine):
        self._machine = machine
        self.config = machine.config

    @property
    def cycle(self):
        return self._machine.cycle

    def irq_pending(self, line):
        return self._machine.irq_pending(line)

    async def tick(self, n=1):
        await self._machine.tick(n)

    async def mmio_read(self, addr):
        return await self._machine.mmio_read(addr)

    async def mmio_write(self, addr, value):
        await self._machine.mmio_write(addr, value)

    async def load(self, addr, size, *, cacheable=True):
        return await self._machine.load(addr, size, cacheable=cacheable)

    async def store(self, addr, data, *, cacheable=True):
        await self._machine.store(addr, data, cacheable=cacheable)

    async def wait_irq(self, line, *, timeout_cycles):
        await self._machine.wait_irq(line, timeout_cycles=timeout_cycles)

    async def peek(self, addr, n):
        return await self._machine.peek(addr, n)

    async def poke(self, addr, data):
        await self._machine.poke(addr, data)

    async def set_error_window(self, index, **window):
        await self._machine.set_error_window(index, **window)

    async def clear_error_window(self, index):
        await self._machine.clear_error_window(index)


async def coverification(machine):
    """The scenarios the backends must agree on, in one run (the built-in simulator takes
    seconds to set the SoC up)."""
    machine = InterfaceOnly(machine)
    return {
        "machine_rules": await machine_rules(machine),
        "platform": await bring_up(machine),
        "dma_copy": await dma_copy(machine, length=4096, page=1024, seed=5),
    }


@functools.lru_cache(maxsize=None)
def outcome(backend):
    """What :func:`coverification` returns on ``backend`` (run once per session)."""
    return simulate(coverification, backend=backend)


@pytest.fixture(params=AVAILABLE)
def backend(request):
    return request.param


def test_backend_names():
    assert AVAILABLE[0] == "pysim" and set(AVAILABLE) <= set(BACKENDS)
    with pytest.raises(ValueError, match="Unknown backend 'icarus'"):
        simulate(bring_up, backend="icarus")


def test_auto_takes_a_cached_build_or_pysim_and_says_which(monkeypatch):
    from dmabuf_soc.sw.machine import backends
    said = []
    for name in backends.COMPILED:
        package = backends.compiled_backend(name)
        monkeypatch.setattr(package, "available", lambda: True)
        monkeypatch.setattr(package, "cached", lambda config, trace=False: None)
    assert choose("auto", SocConfig(), notice=said.append) == "pysim"
    assert "dmabuf-soc build --backend verilator" in said[-1]
    cxxrtl = backends.compiled_backend("cxxrtl")
    monkeypatch.setattr(cxxrtl, "cached", lambda config, trace=False: "a build")
    assert choose("auto", SocConfig(), notice=said.append) == "cxxrtl"
    assert "running on cxxrtl" in said[-1]
    verilator = backends.compiled_backend("verilator")
    monkeypatch.setattr(verilator, "cached",
                        lambda config, trace=False: None if trace else "a build")
    assert choose("auto", SocConfig(), notice=said.append) == "verilator"
    # A waveform needs Verilator's trace build: CXXRTL's build has it.
    assert choose("auto", SocConfig(), vcd=True, notice=said.append) == "cxxrtl"
    assert choose("pysim", SocConfig(), notice=said.append) == "pysim"
    with pytest.raises(ValueError, match="Unknown backend 'fast'"):
        choose("fast")


def test_platform_bring_up(backend):
    summary = outcome(backend)["platform"]
    assert summary["ok"] and summary["bank_low_ok"] and summary["bank_high_ok"]


def test_dma_copy(backend):
    summary = outcome(backend)["dma_copy"]
    assert summary["correct"]
    assert summary["copy_cycles"] > 4096 // SocConfig().bytes_per_beat


def test_machine_rules(backend):
    trace = dict((what, value) for what, value, _ in outcome(backend)["machine_rules"])
    assert trace["id"] == SOC_ID and trace["scratch"] == 0x1234_5678
    assert trace["unmapped register"] == "BusError"
    assert trace["peek outside the banks"] == "ValueError"
    assert trace["load outside the banks"] == "BusError"
    assert trace["irq timeout"] == "MachineTimeout"
    assert trace["cached load"][3:32] == trace["uncached load"][5:34]


@needs_compiled
@pytest.mark.parametrize("compiled", COMPILED)
@pytest.mark.parametrize("name", ["machine_rules", "platform", "dma_copy"])
def test_backends_agree(compiled, name):
    assert outcome(compiled)[name] == outcome("pysim")[name]


#: Other DDR latencies: the compiled backends take them at run time, from the same build.
LATENCIES = SocConfig(read_latency=33, write_latency=2)


async def copy_at_other_latencies(machine):
    return await dma_copy(InterfaceOnly(machine), length=4096, page=1024, seed=7)


@needs_compiled
@pytest.mark.parametrize("compiled", COMPILED)
def test_latencies_are_taken_at_run_time(compiled):
    from dmabuf_soc.sw.machine.backends import compiled_backend
    package = compiled_backend(compiled)
    assert package.build(LATENCIES).library == package.build().library
    reference = simulate(copy_at_other_latencies, backend="pysim", config=LATENCIES)
    assert reference["copy_cycles"] != outcome("pysim")["dma_copy"]["copy_cycles"]
    assert simulate(copy_at_other_latencies, backend=compiled, config=LATENCIES) == reference


#: The scenarios short enough on pysim for the default run (the others take minutes there).
SHORT_SCENARIOS = {"platform", "mmap_sync"}


def _report(name, backend):
    """The JSON report of ``dmabuf-soc sim NAME`` on ``backend``, from a process of its own
    (the driver's kernel-wide counters, fence contexts and inode numbers, start afresh as on
    a boot), without what differs by backend and machine."""
    result = subprocess.run(
        [sys.executable, "-c", "import sys; from dmabuf_soc.sw.cli import main; sys.exit(main())",
         "sim", name, "--json", "--backend", backend],
        capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout)
    assert report.pop("backend") == backend
    report.pop("wall_seconds")
    return report


@needs_compiled
@pytest.mark.parametrize("name", [
    pytest.param(name, marks=() if name in SHORT_SCENARIOS else pytest.mark.slow)
    for name in scenarios.available()])
def test_scenario_reports_agree(name):
    reference = _report(name, "pysim")
    assert reference.get("ok", True)
    for compiled in COMPILED:
        assert _report(name, compiled) == reference, compiled
