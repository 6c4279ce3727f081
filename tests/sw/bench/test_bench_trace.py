"""bench trace: every backend run without and with the trace, each in a process of its own,
counting the same cycles, with the figures its documentation names."""

from dmabuf_soc.sw.bench import trace


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
