"""The DMA channel's generated Verilog under Icarus (``-g2012``), driven by cocotb and
cocotbext-axi and compared with the reference model (``tests/vip/tb_dma.py``)."""

import pytest

import vip_runner


@pytest.fixture(scope="module")
def build_root(tmp_path_factory):
    return tmp_path_factory.mktemp("vip-dma")


@pytest.mark.parametrize("testcase", ["descriptor_chains_out_of_order_memory",
                                      "register_mode_on_vip_ram",
                                      "bus_errors_halt_as_the_model_says"])
def test_dma_under_third_party_vip(build_root, testcase):
    vip_runner.run("dma", "tb_dma", build_root, testcase=testcase)


def test_dma_under_third_party_vip_on_verilator(build_root):
    """All of it once more on a second simulator, with random initial contents."""
    vip_runner.run("dma", "tb_dma", build_root, simulator="verilator", seed=3)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(2, 6))
def test_dma_under_third_party_vip_soak(build_root, seed):
    vip_runner.run("dma", "tb_dma", build_root, seed=seed, extra_env={"VIP_ROUNDS": "12"})
