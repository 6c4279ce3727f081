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


@pytest.mark.skipif(not _instructions.available(), reason="needs valgrind")
def test_bench_trace_counts_instructions_on_a_compiled_model():
    compiled = [name for name in COMPILED if compiled_backend(name).available()]
    if not compiled:
        pytest.skip("no compiled backend (--compiled)")
    figures = trace.count(compiled[:1], length=2 * PAGE, pysim_length=2 * PAGE)
    name = compiled[0]
    assert figures["cycles_agree"] is True
    assert figures[f"{name}_instructions_per_cycle"] > 1000
    # Recording does work on top of the same model: a traced simulation executes more.
    assert figures[f"{name}_recording_instructions_percent"] > 0
    assert abs(figures[f"{name}_probe_build_instructions_percent"]) < 5


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
