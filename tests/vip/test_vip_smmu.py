"""The SMMU's generated Verilog (two translation ports) under Icarus (``-g2012``), driven by
cocotb and cocotbext-axi and compared with the reference model (``tests/vip/tb_smmu.py``).

The soak (``--run-slow``) runs every test with more seeds and bigger budgets
(``VIP_ROUNDS``, ``VIP_TRANSFERS``, ``VIP_MAX_LENGTH``), and all of them once on Verilator
(whose first build of the SMMU takes about two minutes)."""

import pytest

import vip_runner

TESTCASES = ["translated_traffic_on_both_ports",
             "translation_faults_answer_slverr_and_record_events",
             "invalidation_through_the_command_queue",
             "table_port_errors_give_the_models_walk_faults"]


@pytest.fixture(scope="module")
def build_root(tmp_path_factory):
    return tmp_path_factory.mktemp("vip-smmu")


@pytest.mark.parametrize("testcase", TESTCASES)
def test_smmu_under_third_party_vip(build_root, testcase):
    vip_runner.run("smmu", "tb_smmu", build_root, testcase=testcase)


@pytest.mark.slow
def test_smmu_under_third_party_vip_on_verilator(build_root):
    """All of it once more on a second simulator, with random initial contents."""
    vip_runner.run("smmu", "tb_smmu", build_root, simulator="verilator", seed=3)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(2, 6))
def test_smmu_under_third_party_vip_soak(build_root, seed):
    vip_runner.run("smmu", "tb_smmu", build_root, seed=seed,
                   extra_env={"VIP_ROUNDS": "4", "VIP_TRANSFERS": "16",
                              "VIP_MAX_LENGTH": "1024"})
