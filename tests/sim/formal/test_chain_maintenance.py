"""The DMA engine's descriptor-mode set and the cache's maintenance set: what they assert and
assume (their runs are the ``dma_chain`` and ``cache_maintenance`` jobs of test_formal.py)."""

import pytest

from dmabuf_soc.sim.formal import blocks, runner
from dmabuf_soc.sim.formal.dma import DescriptorChainProperties
from dmabuf_soc.sim.formal.harness import Harness


def _rules(name):
    harness = blocks.BLOCKS[name].harness()
    harness.rtlil()
    return {s.name: s for s in harness.sets}


def test_descriptor_chain_rules():
    chain = _rules("dma_chain")["chain"]
    asserted = {rule for rule, kind in chain.rules.items() if kind == "assert"}
    assert asserted == {"write_in_range", "status_write", "irq_after_last_response"}
    assert {"descriptor_data", "descriptor_address", "tail_once", "pointers"} <= set(chain.rules)
    assert chain.covers == ["first_done", "second_fetched", "second_done", "bad_descriptor",
                            "fetch_error"]
    # The descriptors' fields and addresses are free inputs of the proof, fixed in a run.
    names = {signal.name for signal in chain.free}
    assert {"first", "last", "first_dst", "last_next", "last_length"} <= names


def test_maintained_line_rules():
    line = _rules("cache_maintenance")["maintained"]
    asserted = {rule for rule, kind in line.rules.items() if kind == "assert"}
    assert asserted == {"no_refill_over_dirty", "clean_writes_back"}
    assert line.rules["by_range"] == "assume"
    assert line.covers == ["clean_writes_back", "invalidate_drops", "eviction_writes_back"]


class _AnyDescriptor(DescriptorChainProperties):
    """The descriptor-mode set without its memory: descriptor reads answered freely."""
    def rule(self, m, side, rule, holds, *, when=1):
        if rule != "descriptor_data":
            super().rule(m, side, rule, holds, when=when)


@pytest.mark.slow
def test_chain_without_its_memory_fails(tmp_path):
    """The engine copies to the destination it fetched: with descriptor reads answered by
    anything, that is not the one the set expects, and ``write_in_range`` fails at the
    first data write, step 24 (about 20 s)."""
    engine, sets, _ = blocks.BLOCKS["dma_chain"].build(None)
    sets = [sets[0], _AnyDescriptor(engine, max_length=16)]
    result = runner.run("dma_chain_free", Harness(engine, sets), depth=25, cover_depth=0,
                        outdir=tmp_path)
    outcome = {s.name: s for s in result.sets}
    assert outcome["chain"].status == "failed"
    assert "write_in_range" in outcome["chain"].failed
