"""The data cache's generated Verilog under Icarus (``-g2012``) and Verilator, driven by cocotb
and cocotbext-axi and compared with the reference model (``tests/vip/tb_cache.py``).

Each test runs in a simulation of its own; the Verilator run and the soak run all of them in
one simulation, each test starting from a reset, whose sweep empties the cache."""

import pytest

import vip_runner


@pytest.fixture(scope="module")
def build_root(tmp_path_factory):
    return tmp_path_factory.mktemp("vip-cache")


@pytest.mark.parametrize("testcase", ["random_loads_stores_out_of_order_memory",
                                      "maintenance_through_registers",
                                      "uncached_accesses_and_bus_errors",
                                      "traffic_on_vip_axi_ram"])
def test_cache_under_third_party_vip(build_root, testcase):
    vip_runner.run("cache", "tb_cache", build_root, testcase=testcase)


def test_cache_under_third_party_vip_on_verilator(build_root):
    """All of it once more, in one simulation, on a second simulator, with random initial
    contents."""
    vip_runner.run("cache", "tb_cache", build_root, simulator="verilator", seed=3)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(2, 6))
def test_cache_under_third_party_vip_soak(build_root, seed):
    vip_runner.run("cache", "tb_cache", build_root, seed=seed, extra_env={"VIP_ROUNDS": "12"})
