"""The CXXRTL backend and what the compiled backends share: the build cache, memory
initialisers, VCD output, the scenario runner and the machine's argument checks.
Co-verification against the built-in simulator is in test_backends.py; the Verilator
backend's own parts are in test_verilator.py."""

import asyncio

import pytest
from amaranth.back import rtlil
from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from dmabuf_soc.hw.config import SocConfig
from dmabuf_soc.sw.machine import cxxrtl
from dmabuf_soc.sw.machine.cxxrtl import builder as builder
from dmabuf_soc.sw.machine.compiled import cache, design
from dmabuf_soc.sw.machine.compiled.machine import CompiledMachine, run_until_complete

needs_compiler = pytest.mark.skipif(not cxxrtl.available(), reason="the CXXRTL backend is off "
                                    "(run with --compiled; it needs a C++ compiler)")


class TwoMemories(wiring.Component):
    addr: In(4)
    zeros: Out(8)
    pattern: Out(8)

    def elaborate(self, platform):
        m = Module()
        m.submodules.zeros = zeros = Memory(shape=8, depth=16, init=[])
        m.submodules.pattern = pattern = Memory(shape=8, depth=16, init=[0, 0, 0x5A])
        for memory, output in ((zeros, self.zeros), (pattern, self.pattern)):
            port = memory.read_port(domain="comb")
            m.d.comb += [port.addr.eq(self.addr), output.eq(port.data)]
        return m


def test_zero_memory_initialisers_are_dropped():
    text = rtlil.convert(TwoMemories(), name="top")
    assert text.count("$meminit_v2") == 2
    stripped = design.drop_zero_meminit(text)
    assert stripped.count("$meminit_v2") == 1
    assert "01011010" in stripped              # 0x5A of the pattern memory is kept
    assert stripped.replace(" ", "").count("cell") == text.replace(" ", "").count("cell") - 1


def test_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    from dmabuf_soc.sw.machine.verilator import builder as verilator_builder
    monkeypatch.setenv(cache.CACHE_ENV, str(tmp_path / "mine"))
    assert builder.cache_dir() == tmp_path / "mine" / "cxxrtl"
    assert verilator_builder.cache_dir() == tmp_path / "mine" / "verilator"
    monkeypatch.delenv(cache.CACHE_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert builder.cache_dir() == tmp_path / "xdg" / "dmabuf-soc" / "cxxrtl"


def test_cached_build_is_found_without_generating(tmp_path):
    assert cache.lookup(tmp_path, "abc") is None
    calls = []

    def generate():
        calls.append("generate")
        return "key", "design"

    def compile(workdir, design):
        calls.append(design)
        (workdir / cache.LIBRARY).write_bytes(b"")

    first = cache.build_cached(tmp_path, "abc", generate, compile)
    assert not first.cached and calls == ["generate", "design"]
    again = cache.build_cached(tmp_path, "abc", generate, compile)
    assert again.cached and again.library == first.library and len(calls) == 2
    assert cache.lookup(tmp_path, "abc") == again
    # Other sources that generate the same design reuse its library.
    other = cache.build_cached(tmp_path, "def", generate, compile)
    assert other.cached and calls == ["generate", "design", "generate"]
    assert cache.expected_seconds(tmp_path, 99) == first.seconds
    assert cache.expected_seconds(tmp_path / "none", 99) == 99


def test_compiled_machine_names_its_backends():
    with pytest.raises(ValueError, match="one of cxxrtl, verilator, not 'pysim'"):
        CompiledMachine("pysim")


def test_sources_key_covers_the_config():
    assert builder._sources_key(SocConfig()) == builder._sources_key(SocConfig())
    assert builder._sources_key(SocConfig()) != \
        builder._sources_key(SocConfig(cache_ways=2))
    # The DDR latencies are run-time controls of the model: one build serves them all.
    assert builder._sources_key(SocConfig()) == \
        builder._sources_key(SocConfig(read_latency=21))


@pytest.mark.parametrize("name", ["CXXFLAGS", "PREPARE", "WRITE_CXXRTL"])
def test_sources_key_covers_the_build_options(monkeypatch, name):
    # A changed option must not load the library built with the old one.
    key = builder._sources_key(SocConfig())
    value = getattr(builder, name)
    monkeypatch.setattr(builder, name, (*value, "-g") if isinstance(value, tuple)
                        else value + " ")
    assert builder._sources_key(SocConfig()) != key


def test_build_rejects_a_bad_config():
    with pytest.raises(TypeError, match="must be a SocConfig, not 'soc'"):
        cxxrtl.build("soc")


def test_scenario_runner_rejects_foreign_awaits():
    async def scenario():
        await asyncio.sleep(0)

    with pytest.raises(RuntimeError, match="only machine calls"):
        run_until_complete(scenario())

    async def returns():
        return 42

    assert run_until_complete(returns()) == 42


@needs_compiler
def test_build_is_cached():
    first = cxxrtl.build()
    again = cxxrtl.build()
    assert again.cached and again.library == first.library and again.library.is_file()
    assert again.seconds == first.seconds > 0


@needs_compiler
def test_vcd_and_machine_checks(tmp_path):
    vcd = tmp_path / "soc.vcd"

    async def scenario(machine):
        with pytest.raises(ValueError, match="4-byte aligned"):
            await machine.mmio_read(2)
        with pytest.raises(ValueError, match="32-bit unsigned"):
            await machine.mmio_write(0, 1 << 32)
        with pytest.raises(ValueError, match="non-negative integer, not -1"):
            await machine.tick(-1)
        with pytest.raises(ValueError, match="IRQ line must be from 0 to 7, not 8"):
            machine.irq_pending(8)
        with pytest.raises(ValueError, match="outside the 40-bit"):
            await machine.load(1 << 40, 1)
        await machine.tick(10)
        assert await machine.peek(machine.config.banks[0].base, 16) == bytes(16)
        return machine.cycle

    assert cxxrtl.simulate(scenario, vcd=vcd) == 10
    text = vcd.read_text()
    assert "$enddefinitions" in text
    assert "cycle" in text and "mmio__aw__valid" in text
    assert "#95\n" in text and "#100\n" in text   # tenth rising edge, then the end


def test_prune_keeps_recent_and_locked_builds(tmp_path):
    import fcntl
    import os
    import time
    now = time.time()
    for age, key in enumerate("abcde"):             # a is the newest
        folder = tmp_path / f"design-{key}"
        folder.mkdir()
        (folder / "soc.so").write_bytes(b"")
        os.utime(folder, (now - age, now - age))
        (tmp_path / f"sources-{key}{key}").write_text(f"{key}\n")
    stale = tmp_path / "build-interrupted"
    stale.mkdir()
    os.utime(stale, (now - 2 * 86400, now - 2 * 86400))
    fresh = tmp_path / "build-running"
    fresh.mkdir()
    with open(tmp_path / "design-d.lock", "w") as held:   # another process is on d
        fcntl.flock(held, fcntl.LOCK_EX)
        deleted = builder.prune(tmp_path, keep=2)
    assert sorted(deleted) == ["build-interrupted", "design-c", "design-e",
                               "sources-cc", "sources-ee"]
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "build-running", "design-a", "design-b", "design-d", "design-d.lock",
        "sources-aa", "sources-bb", "sources-dd"]


@pytest.mark.parametrize("keep", [0, -1, 1.5, None])
def test_prune_checks_its_argument(tmp_path, keep):
    with pytest.raises(ValueError, match="Number of builds to keep"):
        builder.prune(tmp_path, keep=keep)
