"""What the transaction trace watches in the SoC: every channel handshake of its ports and a
few signals of the blocks, as one table that every backend reads.

The table (:func:`soc_probes`) lists

* :class:`Channel` probes: one per channel of a port (an AXI4 or AXI4-Lite channel), each its
  ``valid`` and ``ready`` and the payload fields the trace keeps, packed little-endian into
  one value (:attr:`Channel.payload`); the CPU port's accesses are the machine's own calls,
  which the machine records itself;
* :class:`Level` probes: signals whose every change the trace keeps (the interrupt lines, the
  SMMU walker's busy flag and fault record pulse, the cache's maintenance busy flag).

A :class:`~dmabuf_soc.hw.soc.Soc` built with ``probes=True`` has an output ``probe`` that
carries them all (:func:`probe_port_layout`): the handshake of every channel, their payloads
and the levels, in a register that holds after each clock edge what the edge sampled. The
built-in simulator samples the register's input (``Soc.probe_now``) in a process of its own;
a compiled model's driver loops read the port after every clock edge (a flip-flop's output,
which costs no evaluation of the logic behind it). The probes are wires only: the SoC runs the same
cycles with them as without, and without them (every other build) it is as it was.
"""

from typing import NamedTuple

from amaranth.hdl import Cat, Const, Value

__all__ = ["Channel", "Level", "soc_probes", "probe_port_layout", "probe_port_value"]


class Channel(NamedTuple):
    """One handshake channel the trace watches.

    Attributes
    ----------
    port : str
        The port's name in the trace (``cache``, ``dma0``, ``mmio`` ...).
    channel : str
        ``ar``, ``aw``, ``w``, ``r``, ``b``.
    protocol : str
        ``axi4`` or ``axi4lite``.
    valid, ready : Value
    payload : Value
        The kept fields, packed in :attr:`fields` order from bit 0.
    fields : tuple of (str, int)
        Each kept field's name and width.
    """
    port: str
    channel: str
    protocol: str
    valid: Value
    ready: Value
    payload: Value
    fields: tuple

    def decode(self, bits):
        """The fields of the packed payload ``bits``, as a dict."""
        out = {}
        for name, width in self.fields:
            out[name] = bits & ((1 << width) - 1)
            bits >>= width
        return out


class Level(NamedTuple):
    """A signal the trace records at every change: ``name`` and the ``signal``."""
    name: str
    signal: Value


#: The fields the trace keeps of each channel kind.
_KEEP = {
    ("axi4", "ar"): ("addr", "len", "id"), ("axi4", "aw"): ("addr", "len", "id"),
    ("axi4", "w"): ("last",), ("axi4", "r"): ("id", "resp", "last"),
    ("axi4", "b"): ("id", "resp"),
    ("axi4lite", "ar"): ("addr",), ("axi4lite", "aw"): ("addr",), ("axi4lite", "w"): (),
    ("axi4lite", "r"): ("resp",), ("axi4lite", "b"): ("resp",),
}

def _channel(port, channel, protocol, stream):
    names = _KEEP[(protocol, channel)]
    values = [Value.cast(stream.payload[name]) for name in names]
    fields = tuple((name, len(value)) for name, value in zip(names, values))
    payload = Cat(*values) if values else Const(0, 1)
    return Channel(port, channel, protocol, stream.valid, stream.ready, payload, fields)


def _bus(port, bus, protocol):
    return [_channel(port, name, protocol, getattr(bus, name))
            for name in ("ar", "aw", "w", "r", "b")]


def soc_probes(soc):
    """The probes of :class:`~dmabuf_soc.hw.soc.Soc` ``soc``: a list of :class:`Channel` and a
    list of :class:`Level`. Only the blocks' own ports are named (the same wires as the SoC's
    ports they connect to), so that the SoC can build its ``probe`` port before it has its
    members."""
    from ...hw.soc import IRQ_LINES
    channels = [*_bus("mmio", soc.mmio_decoder.bus, "axi4lite"),
                *_bus("cache", soc.cache.bus, "axi4")]
    for index, channel in enumerate(soc.dma):
        channels += _bus(f"dma{index}", channel.bus, "axi4")
    for index, port in enumerate(soc.smmu.downstream):
        channels += _bus(f"smmu{index}", port, "axi4")
    channels += _bus("smmu_table", soc.smmu.table, "axi4")
    internal = len(soc.interconnect.managers) - soc.config.external_managers
    for index in range(soc.config.external_managers):
        channels += _bus(f"ext{index}", soc.interconnect.managers[internal + index], "axi4")
    channels += _bus("memory", soc.interconnect.subordinates[0], "axi4")
    lines = {**{f"dma{index}": channel.irq for index, channel in enumerate(soc.dma)},
             "smmu": soc.smmu.irq, "cache": soc.cache.irq}
    irq = Cat(*(lines.get(next((name for name, line in IRQ_LINES.items() if line == bit),
                                None), Const(0, 1))
                for bit in range(max(IRQ_LINES.values()) + 1)))
    walker = soc.smmu.walker
    levels = [Level("irq", irq),
              Level("smmu_walk", walker.walk_busy),
              Level("smmu_fault", walker.event),
              Level("cache_maintenance", soc.cache.core.maint.busy)]
    return channels, levels


def probe_port_layout(channels, levels):
    """Where each probe is in the ``probe`` port of a SoC built with ``probes=True``: bit
    ``i`` is channel ``i``'s handshake (valid and ready); then each channel's payload, at the
    ``(offset, width)`` of the first list returned; then each level, at the ``(offset,
    width)`` of the second. The third value is the port's width."""
    channel_places, level_places, offset = [], [], len(channels)
    for channel in channels:
        width = len(channel.payload)
        channel_places.append((offset, width))
        offset += width
    for level in levels:
        level_places.append((offset, len(level.signal)))
        offset += len(level.signal)
    return channel_places, level_places, offset


def probe_port_value(channels, levels):
    """The value the ``probe`` port carries, in :func:`probe_port_layout`'s order."""
    return Cat(*(channel.valid & channel.ready for channel in channels),
               *(channel.payload for channel in channels),
               *(level.signal for level in levels))
