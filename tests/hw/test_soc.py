"""The SoC top through the machine interface: identification, CPU accesses, multi-manager
traffic against a reference memory, error injection, and the machine's own rules."""

import random

import pytest

from dmabuf_soc.hw.bus.axi import Burst, Resp
from dmabuf_soc.sim.bus.manager import AXI4Manager
from dmabuf_soc.sim.bus.memory import ReferenceMemory, burst_beats
from dmabuf_soc.hw.config import SocConfig
from dmabuf_soc.hw.ident.ident import package_version
from dmabuf_soc.hw.soc import Soc
from dmabuf_soc.hw.unused import never_elaborated
from dmabuf_soc.sw.platform.ident import SOC_ID, probe
from dmabuf_soc.sw.machine.base import BusError, MachineTimeout
from dmabuf_soc.sw.machine.pysim import simulate

from soc_checkers import checkers_for


def run_checked(scenario, config=None):
    soc = Soc(config or SocConfig())
    checkers = checkers_for(soc)
    result = simulate(scenario, soc=soc, models=checkers)
    for checker in checkers:
        checker.assert_clean()
    return result


def test_driver_reads_the_identification_block():
    async def scenario(machine):
        return await probe(machine), await machine.mmio_read(0)

    identity, raw_id = run_checked(scenario)
    config = SocConfig()
    assert raw_id == SOC_ID
    assert identity.version == package_version()
    assert (identity.data_width, identity.addr_width, identity.sid_width) == \
        (config.data_width, config.addr_width, config.sid_width)
    assert identity.banks == len(config.banks)


def test_cpu_loads_and_stores_of_any_length_and_alignment():
    rng = random.Random(7)
    config = SocConfig()
    reference = ReferenceMemory()

    async def scenario(machine):
        for _ in range(24):
            bank = rng.choice(config.banks)
            addr = bank.base + rng.randrange(0, 8192)
            data = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 40)))
            await machine.store(addr, data, cacheable=False)
            reference.write(addr, data)
            check_addr = addr - rng.randrange(0, 8)
            length = len(data) + rng.randrange(0, 16)
            assert await machine.load(check_addr, length, cacheable=False) == \
                reference.read(check_addr, length)
            assert await machine.peek(check_addr, length) == reference.read(check_addr, length)

    run_checked(scenario)


def test_register_slices_sit_between_every_pair_of_blocks():
    sliced, wired = (never_elaborated(Soc(SocConfig(register_slices=on))) for on in (True, False))
    assert sorted(sliced.slices) == ["cache_bus", "dma0_bus", "dma1_bus", "smmu_downstream0",
                                     "smmu_downstream1", "smmu_table"]
    assert wired.slices == {}


@pytest.mark.parametrize("register_slices", [True, False])
def test_random_multi_manager_traffic_matches_the_reference_memory(register_slices):
    """Two external managers stream random bursts while the CPU stores and loads, each in a
    region of its own, with a protocol checker on every port. Each round writes, then reads
    back; read beats are compared lane by lane with the reference memory."""
    rng = random.Random(11)
    config = SocConfig(external_managers=2, read_latency=7, write_latency=3,
                       register_slices=register_slices)
    soc = Soc(config)
    checkers = checkers_for(soc)
    managers = [AXI4Manager(port, rng=random.Random(i), valid_gap=0.2, ready_gap=0.2)
                for i, port in enumerate(soc.ext)]
    reference = ReferenceMemory()
    beat_bytes = config.bytes_per_beat
    regions = [(config.banks[0].base + 0x4000, 0x4000), (config.banks[1].base + 0x8000, 0x4000)]
    cpu_base = config.banks[0].base + 0x10000

    def random_burst_place(region):
        base, size = region
        beats = rng.choice([1, 2, 4, 16, rng.randrange(1, 65)])
        size_log2 = rng.randrange(0, 4)
        offset = rng.randrange(0, 4096 - beats * (1 << size_log2) + 1)
        return base + rng.randrange(0, size // 4096) * 4096 + offset, beats, size_log2

    async def scenario(machine):
        reads = 0
        for _ in range(5):
            for manager, region in zip(managers, regions):
                for _ in range(6):
                    addr, beats, size_log2 = random_burst_place(region)
                    data = [rng.getrandbits(64) for _ in range(beats)]
                    strb = [rng.getrandbits(8) for _ in range(beats)]
                    manager.write(addr, data, strb=strb, size=size_log2, id=rng.randrange(16))
                    reference.write_burst(addr, data, strb, size_log2, beat_bytes)
            for _ in range(3):
                addr = cpu_base + rng.randrange(0, 4096)
                data = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 24)))
                await machine.store(addr, data, cacheable=False)
                reference.write(addr, data)
            for manager in managers:
                await manager.wait(machine.ctx)
            issued = []
            for manager, region in zip(managers, regions):
                for _ in range(6):
                    addr, beats, size_log2 = random_burst_place(region)
                    txn = manager.read(addr, len=beats - 1, size=size_log2, id=rng.randrange(16))
                    issued.append((txn, addr, beats, size_log2))
            for manager in managers:
                await manager.wait(machine.ctx)
            for txn, addr, beats, size_log2 in issued:
                assert txn.resp == [Resp.OKAY] * beats
                for (beat_addr, lanes), word in zip(
                        burst_beats(addr, beats - 1, size_log2, Burst.INCR, beat_bytes),
                        txn.data):
                    mask = int.from_bytes(bytes(0xFF if lanes >> i & 1 else 0
                                                for i in range(beat_bytes)), "little")
                    assert word & mask == reference.read_beat(beat_addr, beat_bytes) & mask
                reads += 1
        for region in regions + [(cpu_base, 4096)]:
            assert await machine.peek(*region) == reference.read(*region)
        return reads

    reads = simulate(scenario, soc=soc, models=[*checkers, *managers])
    for checker in checkers:
        checker.assert_clean()
    assert reads == 5 * 2 * 6


def test_error_windows_and_unmapped_addresses_are_reported():
    config = SocConfig()
    low = config.banks[0]

    async def scenario(machine):
        seen = {}
        await machine.poke(low.base + 0x3000, bytes(range(16)))
        for index, resp in enumerate((Resp.SLVERR, Resp.DECERR)):
            await machine.set_error_window(index, base=low.base + 0x3000 + 8 * index, size=8,
                                           resp=resp)
        for index in range(2):
            addr = low.base + 0x3000 + 8 * index
            with pytest.raises(BusError, match="bus error"):
                await machine.store(addr, b"\xff" * 8, cacheable=False)
            with pytest.raises(BusError):
                await machine.load(addr, 8, cacheable=False)
        seen["memory_untouched"] = await machine.peek(low.base + 0x3000, 16) == bytes(range(16))
        for index in range(2):
            await machine.clear_error_window(index)
        assert await machine.load(low.base + 0x3000, 16, cacheable=False) == bytes(range(16))
        # Between the banks (the DDR model decodes) and outside DDR (the interconnect does).
        for addr in (low.end + 0x1000, 0x10_0000):
            with pytest.raises(BusError):
                await machine.load(addr, 4, cacheable=False)
        # An MMIO offset in no register block.
        with pytest.raises(BusError, match="DECERR"):
            await machine.mmio_read((1 << config.mmio_addr_width) - 4)
        return seen

    assert run_checked(scenario) == {"memory_untouched": True}


def test_machine_rejects_bad_arguments_and_times_out():
    async def scenario(machine):
        with pytest.raises(ValueError, match="aligned"):
            await machine.mmio_read(2)
        with pytest.raises(ValueError, match="32-bit"):
            await machine.mmio_write(0, 1 << 32)
        with pytest.raises(ValueError, match="IRQ line"):
            await machine.wait_irq(99, timeout_cycles=1)
        start = machine.cycle
        with pytest.raises(MachineTimeout, match="IRQ 0"):
            await machine.wait_irq(0, timeout_cycles=50)
        assert machine.cycle - start == 50
        await machine.tick(7)
        assert machine.cycle - start == 57

    run_checked(scenario)
