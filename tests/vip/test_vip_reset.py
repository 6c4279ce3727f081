"""Every block's generated Verilog after reset, under two simulators: no output X or Z under
Icarus (``-g2012``), and the same values under Verilator whatever ``--x-initial unique``
chose for the initial contents (two seeds), and the same as under Icarus."""

import json

import pytest

import vip_runner


@pytest.mark.parametrize("block", ["dma", "cache", "smmu", "interconnect", "ident"])
def test_outputs_after_reset_are_known_and_simulator_independent(block, tmp_path):
    values = {}
    for simulator, seed in (("icarus", 1), ("verilator", 1), ("verilator", 2)):
        path = tmp_path / f"{simulator}-{seed}.json"
        vip_runner.run(block, "tb_reset", tmp_path, simulator=simulator, seed=seed,
                       extra_env={"VIP_RESET_VALUES": str(path)})
        values[simulator, seed] = json.loads(path.read_text())
    reference = values["icarus", 1]
    for run, outputs in values.items():
        differing = {name: (reference[name], value) for name, value in outputs.items()
                     if value != reference[name]}
        assert not differing, f"{run}: {differing}"
