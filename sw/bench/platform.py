"""Bus efficiency of the platform: long bursts from one manager through interconnect and DDR.

An AXI4 manager on the SoC's external port streams write bursts, then read bursts, then both at
once (a copy), into the low DDR bank. For each phase the figure is bytes moved divided by the
cycles from the first address handshake to the last response: 8.0 is the limit of a 64-bit bus,
reached once latency is hidden behind outstanding bursts. ``sim_cycles_per_second`` is the
built-in simulator's speed on the SoC top under that traffic (wall time: the only figure here
that depends on the machine).
"""

import dataclasses
import time

from ...sim.bus.manager import AXI4Manager
from ...hw.config import SocConfig
from ..machine.pysim import simulate

__all__ = ["run", "measure"]


def _burst_plan(config, burst_beats, total_bytes, base):
    burst_bytes = burst_beats * config.bytes_per_beat
    if burst_bytes > 4096 or 4096 % burst_bytes:
        raise ValueError(f"Bursts of {burst_beats} beats must divide 4 KiB")
    return [base + offset for offset in range(0, total_bytes, burst_bytes)]


def measure(config=None, *, burst_beats=256, total_bytes=64 * 1024, progress=None):
    """Run the three phases with bursts of ``burst_beats`` beats and ``total_bytes`` per
    phase; returns ``{phase: {"bytes", "cycles", "bytes_per_cycle"}}``, the simulated cycles
    and the wall time."""
    config = SocConfig() if config is None else config
    if not config.external_managers:
        raise ValueError("The benchmark needs an external manager port (external_managers ≥ 1)")
    bank = config.banks[0]
    if 2 * total_bytes > bank.size:
        raise ValueError(f"{2 * total_bytes} bytes do not fit bank {bank.name!r}")
    beat_bytes = config.bytes_per_beat
    src = _burst_plan(config, burst_beats, total_bytes, bank.base)
    dst = _burst_plan(config, burst_beats, total_bytes, bank.base + total_bytes)
    managers = {}
    results = {}

    def attach(soc):
        managers["ext"] = AXI4Manager(soc.ext[0], max_outstanding=config.max_outstanding)
        return [managers["ext"]]

    def words(addr):
        return [(addr + beat) & 0xFFFF_FFFF for beat in range(burst_beats)]

    async def phase(ctx, manager, name, reads, writes):
        txns = [manager.read(addr, len=burst_beats - 1) for addr in reads]
        txns += [manager.write(addr, words(addr)) for addr in writes]
        await manager.wait(ctx, *txns)
        cycles = max(t.done_at for t in txns) - min(t.issued_at for t in txns)
        moved = (len(reads) + len(writes)) * burst_beats * beat_bytes
        results[name] = {"bytes": moved, "cycles": cycles,
                         "bytes_per_cycle": round(moved / cycles, 3)}
        if progress:
            progress(len(results), 3, f"{name}: {moved / cycles:.3f} bytes/cycle")
        return txns

    async def scenario(machine):
        manager = managers["ext"]
        await phase(machine.ctx, manager, "write", [], src)
        reads = await phase(machine.ctx, manager, "read", src, [])
        for txn, addr in zip(reads, src):
            if txn.data != words(addr):
                raise AssertionError(f"Read burst at {addr:#x} returned other data than "
                                     f"was written")
        await phase(machine.ctx, manager, "copy", src, dst)
        return machine.cycle

    start = time.monotonic()
    cycles = simulate(scenario, config=config, models=attach)
    return results, cycles, time.monotonic() - start


#: The backends this benchmark runs on.
BACKENDS = ("pysim",)


def run(*, backend="pysim", progress=None):
    if backend != "pysim":
        raise ValueError(f"Backend {backend!r} is not available for this benchmark")
    config = SocConfig()
    long_bursts, cycles, wall = measure(config, burst_beats=256, progress=progress)
    short_bursts, short_cycles, short_wall = measure(config, burst_beats=16,
                                                     progress=progress)
    return {
        "read_bytes_per_cycle": long_bursts["read"]["bytes_per_cycle"],
        "write_bytes_per_cycle": long_bursts["write"]["bytes_per_cycle"],
        "copy_bytes_per_cycle": long_bursts["copy"]["bytes_per_cycle"],
        "read_bytes_per_cycle_16_beats": short_bursts["read"]["bytes_per_cycle"],
        "write_bytes_per_cycle_16_beats": short_bursts["write"]["bytes_per_cycle"],
        "copy_bytes_per_cycle_16_beats": short_bursts["copy"]["bytes_per_cycle"],
        "bus_limit_bytes_per_cycle": config.bytes_per_beat,
        "phases": {"256_beats": long_bursts, "16_beats": short_bursts},
        "sim_cycles": cycles + short_cycles,
        "sim_cycles_per_second": round((cycles + short_cycles) / (wall + short_wall), 1),
        "backend": backend,
        "config": _config_dict(config),
    }


def _config_dict(config):
    out = dataclasses.asdict(config)
    out["banks"] = [{"name": b.name, "base": hex(b.base), "size": b.size} for b in config.banks]
    return out
