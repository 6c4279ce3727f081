"""Every bad input to ``dmabuf-soc`` ends in one line, before any work (issue 30).

:data:`CASES` is a table of a few hundred bad command lines: every sub-command, every
``--set`` name with zero, negative, huge, non-power-of-two, non-multiple and non-integer
values, parameters a command or block does not use, bad output paths, bad backends, unknown
names and malformed options. Each must end with a non-zero exit status, exactly one line
containing ``error:`` on standard error, no traceback, and within a bounded time, without
reaching any elaboration, build, simulation, benchmark, FPGA flow or register export (those
entry points are replaced by guards that fail the test).

The default run takes every case through :func:`main` in this process, and a few through the
installed command in a subprocess; ``--run-slow`` takes every case through a subprocess, as a
user runs it.
"""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from amaranth.hdl import Fragment
from amaranth.sim import Simulator

from dmabuf_soc.hw.config import (BLOCK_PARAMETERS, PARAMETERS, ConfigError, SocConfig,
                                  check_config)
from dmabuf_soc.hw import catalog
from dmabuf_soc.hw.soc import Soc
from dmabuf_soc.sw import bench, scenarios
from dmabuf_soc.sw.cli import DEBUG_ENV, main, parameters_markdown
from dmabuf_soc.sw.machine import backends

ROOT = Path(__file__).resolve().parents[2]
#: Seconds a bad command may take before its error line: in this process (modules warm),
#: and in a new one (interpreter start and imports, on a loaded machine).
IN_PROCESS_SECONDS = 3.0
SUBPROCESS_SECONDS = 20.0
NO_COMPILER = {"CXX": "/nonexistent/g++"}

# Places the cases write to: a file, a missing folder, a place nothing can be written.
FILE = str(ROOT / "pyproject.toml")
UNDER_FILE = FILE + "/out"
MISSING = "/nonexistent-dmabuf-soc/out"
UNWRITABLE = "/proc/dmabuf-soc-out"


def _bad_values(parameter):
    """Values ``--set`` must refuse for ``parameter``, as the text a user types."""
    low, high = parameter.minimum, parameter.maximum
    numbers = {0, -1, low - 1, high + 1, -high, 2 * high + 1, 1 << 40, 0x10000000000 + 1}
    if parameter.power_of_two:
        numbers |= {low + 1, 3 * low, high - 1, 3 * (high // 4)}
    if parameter.multiple_of > 1:
        numbers |= {low + 1, high - 1, low + parameter.multiple_of // 2}
    texts = [str(n) for n in sorted(numbers) if not parameter.is_allowed(n)]
    texts += ["1.5", "abc", "", "0x", "1e3", "4 KiB", "--1", str(1 << 100)]
    if parameter.boolean:
        texts += ["maybe", "2", "on"]
    return texts


def _soc_cases():
    cases = []
    commands = [["verilog"], ["sim", "platform"], ["demo"], ["build"]]
    for index, (name, parameter) in enumerate(PARAMETERS.items()):
        for offset, value in enumerate(_bad_values(parameter)):
            # Every value on the first command, and each value on one of the others in turn.
            cases.append((["verilog", "--set", f"{name}={value}"], {}))
            other = commands[1 + (index + offset) % (len(commands) - 1)]
            cases.append(([*other, "--set", f"{name}={value}"], {}))
    # Each parameter in range but against a rule between parameters.
    cases += [(["verilog", "--set", "cache_size=256", "--set", "cache_ways=16"], {}),
              (["sim", "platform", "--set", "cache_size=16", "--set", "cache_line_size=32"], {}),
              (["demo", "--set", "cache_ways=16", "--set", "cache_line_size=2048"], {})]
    # Names no command takes, and malformed --set options.
    for command in commands:
        for item in ("nope=1", "banks=3", "=1", "read_latency", "READ_LATENCY=4",
                     "read_latency==4", "cache size=1"):
            cases.append(([*command, "--set", item], {}))
    return cases


def _block_cases():
    """``verilog --block NAME`` with bad values of its parameters, and a good value of each
    parameter it does not use."""
    cases = []
    for block, names in BLOCK_PARAMETERS.items():
        for name in names:
            for value in _bad_values(PARAMETERS[name])[:4]:
                cases.append((["verilog", "--block", block, "--set", f"{name}={value}"], {}))
        for name in PARAMETERS:
            if name not in names:
                default = getattr(SocConfig(), name)
                cases.append((["verilog", "--block", block, "--set",
                               f"{name}={int(default)}"], {}))
    return cases


def _bench_cases():
    cases = []
    for name in bench.available():
        module = bench.load(name)
        table = getattr(module, "PARAMETERS", {})
        for key, parameter in table.items():
            for value in _bad_values(parameter):
                cases.append((["bench", name, "--set", f"{key}={value}"], {}))
        cases.append((["bench", name, "--set", "nope=1"], {}))
        cases.append((["bench", name, "--set", "backend=pysim"], {}))
        for backend in backends.BACKENDS:
            if backend not in module.BACKENDS:
                cases.append((["bench", name, "--backend", backend], {}))
    cases += [
        (["bench", "smmu", "--set", "copy_bytes=0x10000000000"], {}),
        (["bench", "sim", "--set", "length=1000"], {}),
        (["bench", "smmu", "--backend", "cxxrtl"], NO_COMPILER),
        (["bench", "smmu", "--backend", "verilator"], NO_COMPILER),
        (["bench", "profile"], NO_COMPILER),
        (["bench", "nope"], {}),
        (["bench", "--set", "copy_bytes=4096"], {}),
        (["bench", "smmu", "--json", "--backend", "nope"], {}),
    ]
    return cases


def _path_cases():
    cases = []
    # Folders: a file, a folder under a file, a place nothing can be made, no name.
    for output in (FILE, UNDER_FILE, UNWRITABLE, ""):
        cases.append((["regs", "--format", "md", "-o", output], {}))
        cases.append((["synth", "--block", "ident", "-o", output], {}))
    for output in (str(ROOT), MISSING, UNDER_FILE, UNWRITABLE, ""):
        cases.append((["verilog", "--block", "ident", "-o", output], {}))
        cases.append((["sim", "platform", "--vcd", output], {}))
        cases.append((["demo", "--vcd", output], {}))
    return cases


def _backend_cases():
    cases = []
    for command in (["sim", "platform"], ["demo"]):
        cases.append(([*command, "--backend", "nope"], {}))
        cases.append(([*command, "--backend", ""], {}))
        for backend in backends.COMPILED:
            cases.append(([*command, "--backend", backend], NO_COMPILER))
            cases.append(([*command, "--backend", backend, "--vcd", MISSING], NO_COMPILER))
    cases += [(["build", "--backend", "nope"], {}),
              (["build", "--backend", "verilator"], NO_COMPILER),
              (["build", "--backend", "cxxrtl"], NO_COMPILER),
              (["build", "--backend", "all"], NO_COMPILER)]
    return cases


def _other_cases():
    return [
        ([], {}), (["nope"], {}), (["--nope"], {}), (["--debug"], {}),
        (["regs"], {}), (["regs", "--format", "pdf", "-o", "/tmp"], {}),
        (["regs", "--format", "c"], {}),
        (["verilog", "--block", "nope"], {}), (["verilog", "--block", ""], {}),
        (["verilog", "--name", "9lives"], {}), (["verilog", "--name", "a b"], {}),
        (["verilog", "--name", ""], {}), (["verilog", "--rtlil=1"], {}),
        (["sim"], {}), (["sim", "nope"], {}), (["sim", "platform", "extra"], {}),
        (["sim", "platform", "--json=1"], {}), (["demo", "platform"], {}),
        (["build", "--trace=yes"], {}),
        (["params", "--set", "read_latency=4"], {}), (["params", "extra"], {}),
        (["synth", "--block", "nope"], {}), (["synth", "--block", "ddr"], {}),
        (["synth", "--target", "nope"], {}),
        (["synth", "--threads", "0"], {}), (["synth", "--threads", "-1"], {}),
        (["synth", "--threads", "100000"], {}), (["synth", "--threads", "x"], {}),
        (["synth", "--seed", "-1"], {}), (["synth", "--seed", str(1 << 40)], {}),
        (["synth", "--seed", "1.5"], {}),
        (["synth", "--timing-weight", "-1"], {}), (["synth", "--timing-weight", "1e9"], {}),
        (["synth", "--timing-weight", str(1 << 40)], {}),
        (["synth", "--yosys", "/nonexistent/yosys"], {}),
        (["synth", "--nextpnr", "/nonexistent/nextpnr-ecp5"], {}),
        (["synth", "--target", "ice40", "--nextpnr", "/nonexistent/nextpnr-ice40"], {}),
        (["synth", "--yosys", "'unclosed"], {}),
    ]


#: The bad inputs issue 30 reported, as it gave them.
ISSUE_EXAMPLES = [
    *((["verilog", "--set", setting], {}) for setting in (
        "cache_size=1000", "cache_ways=3", "cache_line_size=48", "data_width=48", "id_width=0",
        "dma_max_burst_beats=0", "dma_max_burst_beats=64", "mmio_addr_width=8",
        "addr_width=33", "sid_width=0", "cache_size=0x10000000000", "addr_width=-1",
        "read_latency=1000000000", "external_managers=200")),
    (["regs", "--format", "c", "-o", FILE], {}),
    (["regs", "--format", "c", "-o", UNWRITABLE], {}),
    (["verilog", "-o", MISSING], {}),
    (["verilog", "-o", str(ROOT)], {}),
    (["synth", "-o", UNDER_FILE], {}),
    (["sim", "platform", "--vcd", MISSING], {}),
    (["sim", "platform", "--backend", "cxxrtl"], NO_COMPILER),
    (["bench", "cache", "--backend", "cxxrtl"], {}),
    (["bench", "dma", "--backend", "cxxrtl"], {}),
    *((["bench", "smmu", "--set", f"copy_bytes={value}"], {})
      for value in ("0", "-4096", "4097", "0x10000000000")),
    (["bench", "sim", "--set", "length=1000"], {}),
]


def _cases():
    table = [*ISSUE_EXAMPLES, *_soc_cases(), *_block_cases(), *_bench_cases(), *_path_cases(),
             *_backend_cases(), *_other_cases()]
    unique = {}
    for argv, env in table:
        unique.setdefault((tuple(argv), tuple(sorted(env.items()))), (argv, env))
    return list(unique.values())


CASES = _cases()
#: A few of them, through the installed command in the default run.
SAMPLE = [CASES[index] for index in range(0, len(CASES), max(1, len(CASES) // 6))]


def _id(case):
    argv, env = case
    return " ".join([*(f"{k}={v}" for k, v in env.items()), *argv]) or "(none)"


class Reached(BaseException):
    """A bad command line reached work it should never have started (not an Exception, so
    that no handler on the way takes it)."""


@pytest.fixture
def no_work(monkeypatch):
    """Every entry point into elaboration, building, simulation, benchmarks, the FPGA flow,
    register export and subprocesses raises :exc:`Reached`."""
    def guard(what):
        def reached(*args, **kwargs):
            raise Reached(f"the command started {what}")
        return reached

    monkeypatch.setattr(Fragment, "get", staticmethod(guard("an elaboration")))
    monkeypatch.setattr(Soc, "__init__", guard("building the SoC"))
    monkeypatch.setattr(Simulator, "__init__", guard("a simulation"))
    monkeypatch.setattr(subprocess.Popen, "__init__", guard("a subprocess"))
    monkeypatch.setattr(backends, "simulate", guard("a simulation"))
    for name in backends.COMPILED:
        package = backends.compiled_backend(name)
        monkeypatch.setattr(package, "build", guard(f"a {name} build"))
        monkeypatch.setattr(package.builder, "build", guard(f"a {name} build"))
    for name in bench.available():
        monkeypatch.setattr(bench.load(name), "run", guard(f"benchmark {name}"))
    for name in scenarios.available():
        monkeypatch.setattr(scenarios.load(name), "run", guard(f"scenario {name}"))
    from dmabuf_soc.sw.regs import export
    from dmabuf_soc.sw.synth import flow
    monkeypatch.setattr(export, "export", guard("a register export"))
    monkeypatch.setattr(flow, "synth", guard("an FPGA build"))


def _check_one_line(status, stderr, seconds, limit):
    assert status != 0, "the command succeeded"
    assert "Traceback" not in stderr, stderr
    errors = [line for line in stderr.splitlines() if "error:" in line]
    assert len(errors) == 1, stderr
    assert seconds < limit, f"{seconds:.1f} s before the error"


def _run_in_process(argv, env, monkeypatch, capsys):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    if env.get("CXX"):
        for name in backends.COMPILED:
            monkeypatch.delenv(backends.compiled_backend(name).builder.DISABLE_ENV,
                               raising=False)
    monkeypatch.delenv(DEBUG_ENV, raising=False)
    start = time.monotonic()
    try:
        main(argv)
    except SystemExit as exit:
        status = exit.code
    else:
        status = 0
    seconds = time.monotonic() - start
    stderr = capsys.readouterr().err
    if isinstance(status, str):
        # Python prints the message of SystemExit("...") on standard error, status 1.
        stderr, status = stderr + status + "\n", 1
    return status, stderr, seconds


def _run_command(argv, env):
    environment = {**os.environ, **env}
    environment.pop(DEBUG_ENV, None)
    if env.get("CXX"):
        for name in backends.COMPILED:
            environment.pop(backends.compiled_backend(name).builder.DISABLE_ENV, None)
    start = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "dmabuf_soc.sw.cli", *argv],
                            capture_output=True, text=True, env=environment,
                            timeout=10 * SUBPROCESS_SECONDS, stdin=subprocess.DEVNULL)
    return result.returncode, result.stderr, time.monotonic() - start


def test_the_table_is_a_few_hundred_cases_of_every_command():
    assert len(CASES) >= 300
    commands = {argv[0] for argv, _ in CASES if argv}
    assert commands >= {"regs", "verilog", "sim", "demo", "bench", "build", "synth", "params"}
    for name in PARAMETERS:
        assert any(f"--set" in argv and any(item.startswith(f"{name}=") for item in argv)
                   for argv, _ in CASES), name


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_a_bad_command_is_one_line_before_any_work(case, no_work, monkeypatch, capsys):
    argv, env = case
    _check_one_line(*_run_in_process(argv, env, monkeypatch, capsys), IN_PROCESS_SECONDS)


@pytest.mark.parametrize("case", SAMPLE, ids=_id)
def test_a_bad_command_is_one_line_from_the_installed_command(case):
    _check_one_line(*_run_command(*case), SUBPROCESS_SECONDS)


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=_id)
def test_every_bad_command_is_one_line_from_the_installed_command(case):
    _check_one_line(*_run_command(*case), SUBPROCESS_SECONDS)


@pytest.mark.parametrize("how", ["option", "environment"])
def test_debug_shows_the_traceback(how):
    argv = ["verilog", "--set", "cache_ways=3"]
    env = {DEBUG_ENV: "1"} if how == "environment" else {}
    result = subprocess.run([sys.executable, "-m", "dmabuf_soc.sw.cli",
                             *(["--debug"] if how == "option" else []), *argv],
                            capture_output=True, text=True, timeout=120,
                            env={**os.environ, **env})
    assert result.returncode != 0
    assert "Traceback" in result.stderr
    assert "ConfigError: cache_ways must be a power of two from 1 to 16, not 3" in result.stderr


def test_debug_after_the_command_shows_the_traceback(no_work):
    with pytest.raises(ConfigError, match="cache_ways"):
        main(["verilog", "--set", "cache_ways=3", "--debug"])


def test_an_unexpected_exception_keeps_its_traceback(monkeypatch):
    from dmabuf_soc.sw import cli
    monkeypatch.setattr(cli, "_cmd_params", lambda args: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        main(["params"])


def test_the_error_names_the_parameter_the_value_and_the_range(no_work):
    with pytest.raises(SystemExit) as exit:
        main(["verilog", "--set", "cache_size=1000"])
    assert exit.value.code.startswith(
        "dmabuf-soc: error: cache_size must be a power of two from 16 to 262144 (256 KiB), "
        "not 1000")


def test_a_parameter_a_block_does_not_use_names_the_ones_it_does(no_work):
    with pytest.raises(SystemExit) as exit:
        main(["verilog", "--block", "ident", "--set", "max_outstanding=2"])
    assert exit.value.code == (
        "dmabuf-soc: error: --set max_outstanding: dmabuf-soc verilog --block ident does not "
        "use 'max_outstanding'; it takes addr_width, data_width, sid_width, mmio_addr_width")


# What the table allows, the blocks build: every parameter at its bound passes the SoC's
# constructor (each block's own checks), all at once at the bottom and at the top of their
# ranges, and (slow) each alone.

def _bound(name, value):
    return bool(value) if PARAMETERS[name].boolean else value


LOWEST = {name: _bound(name, p.minimum) for name, p in PARAMETERS.items()}
HIGHEST = {name: _bound(name, p.maximum) for name, p in PARAMETERS.items()}


def _alone():
    for name, parameter in PARAMETERS.items():
        for value in sorted({parameter.minimum, parameter.maximum}):
            changes = {name: _bound(name, value)}
            if name == "cache_size" and value < 1024:
                changes.update(cache_ways=1, cache_line_size=16)
            yield pytest.param(changes, id=",".join(f"{k}={v}" for k, v in changes.items()))


def _builds(changes):
    from dmabuf_soc.hw.unused import never_elaborated
    never_elaborated(Soc(SocConfig(**changes)))


@pytest.mark.parametrize("changes", [LOWEST, HIGHEST], ids=["lowest", "highest"])
def test_every_parameter_at_its_bound_passes_the_blocks_own_checks(changes):
    _builds(changes)


@pytest.mark.slow
@pytest.mark.parametrize("changes", list(_alone()))
def test_each_parameter_alone_at_its_bound_passes_the_blocks_own_checks(changes):
    _builds(changes)


def test_the_soc_checks_its_configuration_against_the_table():
    config = SocConfig(cache_ways=3)
    with pytest.raises(ConfigError, match="cache_ways must be a power of two from 1 to 16, "
                                          "not 3"):
        Soc(config)
    with pytest.raises(ConfigError, match="cache_size must be at least cache_ways"):
        check_config(SocConfig(cache_size=64))


def test_every_block_has_its_parameters_listed():
    assert set(BLOCK_PARAMETERS) == set(catalog.available())
    assert set(BLOCK_PARAMETERS["soc"]) == set(PARAMETERS)
    for names in BLOCK_PARAMETERS.values():
        assert set(names) <= set(PARAMETERS)


def test_every_benchmark_option_has_a_range():
    import inspect
    for name in bench.available():
        module = bench.load(name)
        keywords = {key for key, p in inspect.signature(module.run).parameters.items()
                    if p.kind is p.KEYWORD_ONLY and key not in ("backend", "progress")}
        assert set(getattr(module, "PARAMETERS", {})) == keywords, name


def test_docs_parameters_md_is_generated_from_the_tables():
    """Regenerate with ``dmabuf-soc params --markdown > docs/parameters.md``."""
    committed = (ROOT / "docs" / "parameters.md").read_text()
    assert committed == parameters_markdown(), \
        "docs/parameters.md is stale: dmabuf-soc params --markdown > docs/parameters.md"


@pytest.mark.slow
@pytest.mark.parametrize("block", [name for name in BLOCK_PARAMETERS if name != "soc"])
def test_a_block_changes_with_its_parameters_and_no_others(block):
    """:data:`BLOCK_PARAMETERS` is what the RTLIL says: a parameter a block lists changes its
    RTLIL, one it does not list leaves it as it is (small banks, for speed)."""
    from amaranth.back import rtlil
    from dmabuf_soc.hw.config import Bank
    small = (Bank("low", 0x8000_0000, 4096), Bank("high", 0x1_0000_0000, 4096))
    # external_managers reaches the DDR model only through the width of the interconnect's
    # manager index: 8 widens it (1 of the default's 5 managers, 12 managers with 8).
    other = {"id_width": 3, "sid_width": 4, "mmio_addr_width": 20, "read_latency": 7,
             "write_latency": 3, "max_outstanding": 4, "cache_size": 16384, "cache_ways": 2,
             "cache_line_size": 32, "dma_max_burst_beats": 8, "external_managers": 8,
             "register_slices": False}

    def text(**changes):
        return rtlil.convert(catalog.standard_ports(block, SocConfig(banks=small, **changes)),
                             name=block)

    base = text()
    used = {name for name, value in other.items() if text(**{name: value}) != base}
    # addr_width and data_width have a single allowed value: what a block takes is read off
    # the code, not the RTLIL.
    assert used == set(BLOCK_PARAMETERS[block]) - {"addr_width", "data_width"}


# A write that fails at the end: the result is still reported, and one line says what was
# not written.

class _Scenario:
    """A scenario that writes ``waveform`` to its VCD file and returns ``result``."""
    def __init__(self, waveform=b"$enddefinitions $end\n" * 1000, fail=False):
        self.waveform, self.fail, self.vcd = waveform, fail, None

    def run(self, *, config, backend, vcd=None, progress=None):
        self.vcd = vcd
        if vcd is not None:
            Path(vcd).write_bytes(self.waveform)
        if self.fail:
            raise RuntimeError("the scenario broke")
        return {"ok": True, "cycles": 1234}


@pytest.fixture
def scenario(monkeypatch):
    fake = _Scenario()
    monkeypatch.setattr(scenarios, "load", lambda name: fake)
    return fake


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_a_waveform_that_cannot_be_written_keeps_the_result(scenario, capsys):
    with pytest.raises(SystemExit) as exit:
        main(["sim", "fake", "--json", "--backend", "pysim", "--vcd", "/dev/full"])
    assert exit.value.code == ("dmabuf-soc: error: /dev/full was not written: No space left "
                               "on device")
    import json
    assert json.loads(capsys.readouterr().out)["cycles"] == 1234
    assert not Path(scenario.vcd).exists()


def test_the_waveform_lands_where_asked(scenario, tmp_path, capsys):
    vcd = tmp_path / "run.vcd"
    assert main(["sim", "fake", "--backend", "pysim", "--vcd", str(vcd)]) == 0
    assert vcd.read_bytes() == scenario.waveform
    assert list(tmp_path.iterdir()) == [vcd]


def test_a_failed_run_still_leaves_its_waveform(scenario, tmp_path):
    scenario.fail = True
    vcd = tmp_path / "run.vcd"
    with pytest.raises(RuntimeError, match="the scenario broke"):
        main(["sim", "fake", "--backend", "pysim", "--vcd", str(vcd)])
    assert vcd.read_bytes() == scenario.waveform


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_verilog_that_cannot_be_written_is_one_line():
    with pytest.raises(SystemExit) as exit:
        main(["verilog", "--block", "ident", "--rtlil", "-o", "/dev/full"])
    assert exit.value.code == ("dmabuf-soc: error: /dev/full was not written: No space left "
                               "on device")
