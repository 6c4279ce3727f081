"""bench trace: every backend run without and with the trace, each in a process of its own,
counting the same cycles, with the figures its documentation names."""

import pytest

from dmabuf_soc.sw.bench import _instructions, trace
from dmabuf_soc.sw.bench.sim import PAGE
from dmabuf_soc.sw.machine.backends import COMPILED, compiled_backend


def test_bench_trace_measures_every_available_backend():
    figures = trace.run(length=4096, pysim_length=4096, samples=2, pysim_samples=1)
    assert figures["cycles_agree"] is True
    assert figures["backends"][0] == "pysim"
    for name in figures["backends"]:
        assert figures[f"{name}_seconds"] > 0 and figures[f"{name}_traced_seconds"] > 0
        assert figures[f"{name}_events"] > 0
        for kind in ("trace_overhead", "assembly", "records"):
            assert isinstance(figures[f"{name}_{kind}_percent"], float)
        for kind in ("trace_overhead", "recording"):
            low, high = figures[f"{name}_{kind}_quartiles"]
            assert low <= figures[f"{name}_{kind}_percent"] <= high
    assert figures["pysim_recording_percent"] == figures["pysim_trace_overhead_percent"]


def _compiled():
    compiled = [name for name in COMPILED if compiled_backend(name).available()]
    if not compiled:
        pytest.skip("no compiled backend (--compiled)")
    return compiled[0]


@pytest.mark.skipif(not _instructions.available(), reason="needs valgrind")
def test_a_counted_simulation_is_the_one_run_here():
    name = _compiled()
    executed, printed = _instructions.count(trace._COUNTED, name, "traced", 2 * PAGE)
    summary, _ = trace._once(name, "traced", 2 * PAGE)
    assert int(printed) == summary["cycles"]
    assert executed > 10 ** 9          # the interpreter, the imports, the model, the copy


@pytest.mark.slow
@pytest.mark.skipif(not _instructions.available(), reason="needs valgrind")
def test_bench_trace_counts_instructions_on_a_compiled_model():
    name = _compiled()
    figures = trace.count([name], length=2 * PAGE, pysim_length=2 * PAGE)
    assert figures["cycles_agree"] is True
    assert figures[f"{name}_instructions_per_cycle"] > 1000
    # Recording does work on top of the same model: the monitor, the pairing, the spans.
    assert figures[f"{name}_recording_instructions_percent"] > 0
    assert abs(figures[f"{name}_probe_build_instructions_percent"]) < 5


def test_count_compares_the_instructions_of_the_extra_cycles(monkeypatch):
    # Every kind of simulation starts with the same fixed cost; only the long copy's extra
    # instructions and cycles count.
    per_cycle = {"plain": 100, "probe_build": 99, "traced": 103}

    def fake(code, backend, kind, length, env=None):
        cycles = length // 8
        return 10 ** 9 + per_cycle[kind] * cycles, f"{cycles}\n"

    monkeypatch.setattr(_instructions, "count", fake)
    monkeypatch.setattr(_instructions, "version", lambda: "valgrind-test")
    figures = trace.count(["pysim", "verilator"], length=16 * PAGE, pysim_length=2 * PAGE)
    assert figures["cycles_agree"] is True
    assert figures["verilator_instructions_per_cycle"] == 100
    assert figures["verilator_probe_build_instructions_percent"] == -1.0
    assert figures["verilator_trace_overhead_instructions_percent"] == 3.0
    assert figures["verilator_recording_instructions_percent"] == 4.04
    assert figures["pysim_recording_instructions_percent"] == 3.0
    assert "pysim_probe_build_instructions_percent" not in figures


def test_counting_instructions_runs_python_under_cachegrind():
    if not _instructions.available():
        pytest.skip("needs valgrind")
    small, printed = _instructions.count("print(sum(range(10)))")
    large, _ = _instructions.count("print(sum(range(200000)))")
    assert printed == "45\n"
    assert 0 < small < large


def test_counting_instructions_says_what_is_missing(monkeypatch):
    monkeypatch.setattr(_instructions.shutil, "which", lambda name: None)
    with pytest.raises(_instructions.CountError, match="install Debian's valgrind"):
        _instructions.count("pass")


def test_counting_a_copy_of_one_page_is_refused():
    with pytest.raises(ValueError, match="longer than a page"):
        trace.count(["pysim"], length=2 * PAGE, pysim_length=PAGE)
