"""What the trace tests share: a short traced run on pysim, and a waveform of a few cycles."""

import pytest

from dmabuf_soc.sw.machine.pysim import simulate
from dmabuf_soc.sw.trace.record import Trace

from trace_runs import short_story


@pytest.fixture(scope="session")
def pysim_trace():
    """``(result, trace)`` of :func:`short_story` traced on pysim."""
    trace = Trace()
    result = simulate(short_story, trace=trace)
    return result, trace


@pytest.fixture(scope="session")
def tiny_vcd(tmp_path_factory):
    """A VCD of the SoC's first cycles (every signal declared, a few changes)."""
    vcd = tmp_path_factory.mktemp("tiny_vcd") / "waves.vcd"

    async def scenario(machine):
        await machine.mmio_read(0)

    simulate(scenario, vcd=str(vcd))
    return vcd
