# amaranth: UnusedElaboratable=no
"""The identification block, alone and in the SoC, read through the driver's accessors."""

import random

import pytest

from dmabuf_soc.hw.regs import soc_windows
from amaranth.sim import Simulator

from dmabuf_soc.hw.bus.axi import Resp
from dmabuf_soc.sim.bus.checker import AXI4LiteChecker
from dmabuf_soc.sim.bus.lite import lite_read, lite_write
from dmabuf_soc.hw.config import Bank, SocConfig
from dmabuf_soc.hw.regs import soc_windows
from dmabuf_soc.hw.ident import Ident, ident_spec, package_version
from dmabuf_soc.sw.machine.pysim import simulate
from dmabuf_soc.sw.regs import RegisterBank, register_map


def test_version_comes_from_the_package():
    from importlib import metadata
    assert ".".join(map(str, package_version())) == metadata.version("dmabuf-soc")


def test_arguments_are_checked():
    with pytest.raises(TypeError, match="SocConfig"):
        Ident("big")
    with pytest.raises(TypeError, match="tuple of integers"):
        Ident(version=(1, 2))
    with pytest.raises(ValueError, match="VERSION.major is 8 bits wide; 256"):
        Ident(version=(256, 0, 0))


def test_standalone_registers():
    config = SocConfig(data_width=128, banks=(Bank("only", base=0x8000_0000, size=1 << 20),))
    dut = Ident(config, version=(3, 14, 15))
    spec = ident_spec()
    rng = random.Random(3)

    async def bench(ctx):
        id_value, resp = await lite_read(ctx, dut.bus, spec.register("ID").offset)
        assert resp == Resp.OKAY and id_value.to_bytes(4, "big") == b"DMAB"
        assert id_value == spec.register("ID").reset
        version, _ = await lite_read(ctx, dut.bus, spec.register("VERSION").offset)
        assert spec.register("VERSION").decode(version) == {"major": 3, "minor": 14, "patch": 15}
        value, _ = await lite_read(ctx, dut.bus, spec.register("CONFIG").offset)
        assert spec.register("CONFIG").decode(value) == {
            "data_width": 128, "addr_width": 40, "sid_width": 8}
        value, _ = await lite_read(ctx, dut.bus, spec.register("MEMORY").offset)
        assert spec.register("MEMORY").decode(value) == {"banks": 1, "mmio_addr_width": 16}
        scratch = spec.register("SCRATCH").offset
        assert await lite_read(ctx, dut.bus, scratch) == (0, Resp.OKAY)
        for _ in range(8):
            value = rng.getrandbits(32)
            assert await lite_write(ctx, dut.bus, scratch, value) == Resp.OKAY
            assert await lite_read(ctx, dut.bus, scratch) == (value, Resp.OKAY)
        # Constants ignore writes; offsets past the last register are errors.
        assert await lite_write(ctx, dut.bus, 0, 0) == Resp.OKAY
        assert (await lite_read(ctx, dut.bus, 0))[0] == id_value
        assert await lite_read(ctx, dut.bus, 0x14) == (0, Resp.SLVERR)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    checker = AXI4LiteChecker(dut.bus)
    checker.add_to(sim)
    sim.add_testbench(bench)
    sim.run()
    checker.assert_clean(idle=True)


def test_in_the_soc_through_the_register_bank():
    ident = register_map()["ident"]

    async def scenario(machine):
        bank = RegisterBank(machine, "ident")
        assert (await bank.read("ID")).to_bytes(4, "big") == b"DMAB"
        assert await bank.read_field("VERSION", "minor") == package_version()[1]
        assert await bank.read_fields("MEMORY") == {
            "banks": len(machine.config.banks),
            "mmio_addr_width": machine.config.mmio_addr_width}
        await bank.write("SCRATCH", value=0x600DCAFE)
        assert await machine.mmio_read(ident.register("SCRATCH").address) == 0x600DCAFE
        await bank.modify("SCRATCH", value=0x1234)
        assert await bank.read("SCRATCH") == 0x1234
        # Past the last ident register: SLVERR from the block; past every block: DECERR.
        errors = []
        past_every_block = max(window.base + window.size for window in soc_windows())
        for addr in (ident.base + 0x14, past_every_block):
            try:
                await machine.mmio_read(addr)
            except OSError as error:
                errors.append(str(error))
        return errors

    errors = simulate(scenario)
    assert len(errors) == 2
    assert "SLVERR" in errors[0] and "DECERR" in errors[1]
