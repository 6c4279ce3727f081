"""``dmabuf-soc bench smmu``: its copies deliver the data and its figures are in range.

The default run copies a few pages on the built-in simulator; the issue's 1 MiB copies run
on each compiled backend that ``--compiled`` turns on.
"""

import pytest

from dmabuf_soc.sw.bench import smmu
from dmabuf_soc.sw.machine.backends import available_backends

PAGE = 4096


def check_soc_figures(figures, copy_bytes, resident_bytes):
    assert figures["data_correct"] is True
    assert figures["copy_bytes"] == copy_bytes
    assert figures["tlb_resident_copy_bytes"] == resident_bytes
    # Without prefetch every page of each buffer, and the descriptor ring's, misses once; the
    # ring's page once more if the copy's pages evicted it from the 16-entry IOTLB before the
    # engine writes the descriptor's status back (buffers of more pages than it has entries).
    ring_walks = 2 if 2 * copy_bytes // PAGE > 16 else 1
    assert figures["walks_cold_copy_no_prefetch"] == 2 * copy_bytes // PAGE + ring_walks
    assert 1 <= figures["walks_cold_copy"] <= figures["walks_cold_copy_no_prefetch"]
    assert figures["prefetches_cold_copy"] >= 1
    for suffix in ("", "_no_prefetch"):
        cold, warm = figures[f"cold_copy_cycles{suffix}"], figures[f"warm_copy_cycles{suffix}"]
        assert cold > warm >= figures["bypass_copy_cycles"] > 0
        assert 0 < figures[f"scattered_copy_ratio_cold{suffix}"] \
            < figures[f"scattered_copy_ratio_warm{suffix}"] <= 1.05
        assert figures[f"scattered_copy_ratio_cold{suffix}"] == \
            round(figures["bypass_copy_cycles"] / cold, 4)
        assert figures[f"tlb_resident_copy_misses{suffix}"] == 0
        assert 0.99 <= figures[f"tlb_resident_copy_ratio{suffix}"] <= 1.05


def test_soc_copies_through_the_smmu_and_in_bypass():
    figures = smmu.measure_soc(copy_bytes=PAGE, resident_bytes=PAGE)
    check_soc_figures(figures, PAGE, PAGE)


def test_rig_measures_hit_latency_and_walk_costs():
    figures = smmu.measure_rig(copy_bytes=PAGE, resident_bytes=PAGE)
    assert figures["data_correct"] is True
    assert figures["rig_copy_bytes"] == PAGE
    assert 1 <= figures["hit_added_latency_cycles"] <= figures["hit_added_latency_cycles_median"]
    assert figures["added_latency_cycles_median_warm_copy"] >= 1
    # Three levels of table for a 39-bit input address; the walk cache keeps the upper two.
    assert figures["walk_memory_reads_per_miss_without_walk_cache"] == 3.0
    assert 1 <= figures["walk_memory_reads_per_miss"] < 3


def test_copy_size_is_checked():
    for bad in (0, 1000, -PAGE, 4.0 * PAGE):
        with pytest.raises(ValueError, match="multiple of 4096"):
            smmu.run(copy_bytes=bad)


def test_run_reports_both_measurements(monkeypatch):
    calls = {}

    def fake(name, figures):
        def measure(**kwargs):
            calls[name] = kwargs
            return dict(figures)
        return measure

    monkeypatch.setattr(smmu, "measure_soc", fake("soc", {"copy_bytes": 8192,
                                                          "data_correct": True}))
    monkeypatch.setattr(smmu, "measure_rig", fake("rig", {"rig_copy_bytes": 4096,
                                                          "data_correct": False}))
    figures = smmu.run(backend="cxxrtl", copy_bytes=8192)
    assert figures == {"backend": "cxxrtl", "copy_bytes": 8192, "rig_copy_bytes": 4096,
                       "data_correct": False}
    assert calls["soc"]["backend"] == "cxxrtl" and calls["soc"]["copy_bytes"] == 8192


@pytest.mark.slow
def test_whole_benchmark_on_sixteen_kib():
    figures = smmu.run(copy_bytes=16 * 1024)
    check_soc_figures(figures, 16 * 1024, smmu.RESIDENT_BYTES)
    assert figures["backend"] == "pysim" and figures["rig_copy_bytes"] == smmu.RIG_COPY_BYTES


# Slow: the benchmark's larger DDR banks are a compiled build of their own (about two minutes).
@pytest.mark.slow
@pytest.mark.parametrize("backend", [
    pytest.param(name, marks=pytest.mark.skipif(
        name not in available_backends(),
        reason=f"the {name} backend is off (run with --compiled)"))
    for name in ("verilator", "cxxrtl")])
def test_issue_4_copies_on_the_compiled_backend(backend):
    figures = smmu.measure_soc(backend=backend)
    assert figures["backend"] == backend
    check_soc_figures(figures, smmu.COPY_BYTES, smmu.RESIDENT_BYTES)
