"""Platform bring-up: identify the SoC, then CPU stores and loads in both DDR banks.

The driver probes the identification block through the register bus, writes a pattern
through the CPU port into each bank at an unaligned address, reads it back through the CPU
port and through the DDR backdoor, and checks that a bus error injected into a window is
reported to the CPU and leaves memory untouched.
"""

import random

from ...hw.bus.axi import Resp
from ..platform.ident import probe
from ..machine.base import BusError
from ._run import run_scenario

__all__ = ["run", "bring_up"]


async def bring_up(machine, *, progress=None, seed=0):
    """The scenario body, on any machine; returns the summary."""
    rng = random.Random(seed)
    summary = {}
    steps = 2 + len(machine.config.banks)
    identity = await probe(machine)
    summary["soc_version"] = ".".join(map(str, identity.version))
    summary["data_width"] = identity.data_width
    if progress:
        progress(1, steps, "identification block probed")

    for step, bank in enumerate(machine.config.banks, start=2):
        addr = bank.base + 0x1000 + rng.randrange(8)
        pattern = bytes(rng.randrange(256) for _ in range(61))
        await machine.store(addr, pattern, cacheable=False)
        loaded = await machine.load(addr, len(pattern), cacheable=False)
        peeked = await machine.peek(addr, len(pattern))
        if loaded != pattern or peeked != pattern:
            raise AssertionError(f"Bank {bank.name!r}: CPU load or backdoor peek at "
                                 f"{addr:#x} differs from what the CPU stored")
        summary[f"bank_{bank.name}_ok"] = True
        if progress:
            progress(step, steps, f"bank {bank.name!r}: {len(pattern)} bytes stored and "
                                  f"loaded back")

    bank = machine.config.banks[0]
    addr = bank.base + 0x2000
    await machine.poke(addr, b"\x5a" * 8)
    try:
        await machine.set_error_window(0, base=addr, size=8, resp=Resp.SLVERR)
    except NotImplementedError as error:        # a board: its memory injects no errors
        summary["error_injection_reported"] = f"not run: {error}"
    else:
        try:
            await machine.store(addr, b"\xff" * 8, cacheable=False)
        except BusError:
            summary["error_injection_reported"] = True
        else:
            raise AssertionError("A store into an SLVERR window completed without an error")
        finally:
            await machine.clear_error_window(0)
    if await machine.peek(addr, 8) != b"\x5a" * 8:
        raise AssertionError("A store answered SLVERR changed memory")
    if progress:
        progress(steps, steps, "error injection reported and memory untouched")
    summary["cycles"] = machine.cycle
    summary["ok"] = True
    return summary


def run(*, config, backend="pysim", vcd=None, progress=None):
    return run_scenario(bring_up, config=config, backend=backend, vcd=vcd, progress=progress)
