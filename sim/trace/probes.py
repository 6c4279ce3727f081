"""What the transaction trace watches in the SoC: every channel handshake of its ports and a
few signals of the blocks, as one table that every backend reads.

The table (:func:`soc_probes`) lists

* :class:`Channel` probes: one per channel of a port (an AXI4 or AXI4-Lite channel), each its
  ``valid`` and ``ready`` and the payload fields the trace keeps, packed little-endian into
  one value (:attr:`Channel.payload`); the CPU port's accesses are the machine's own calls,
  which the machine records itself;
* :class:`Level` probes: signals whose every change the trace keeps (the interrupt lines, the
  SMMU walker's busy flag and fault record pulse, the cache's maintenance busy flag).

A :class:`~dmabuf_soc.hw.soc.Soc` built with ``probes=True`` has an output ``probe``
(:func:`probe_signature`, :func:`add_probe_registers`) that carries them all in registers,
each holding after a clock edge what the edge sampled: ``probe.handshake``, bit ``i`` channel
``i``'s handshake (valid and ready); ``probe.levels``, the levels one after the other; and a
member per channel with fields (:func:`payload_member` names it), its payload, loaded at each
of its handshakes. Every backend's monitor reads them after each clock edge: the handshakes,
the levels to compare, a payload only when its channel fired; in a compiled model they are
flip-flops' outputs, which cost no evaluation of the logic behind them. They are separate
registers because CXXRTL builds a register's next value whole, piece by piece, at every
evaluation: one register of all the probes (1045 bits from some 130 pieces) made its model of
the SoC about 45 % slower, and the built-in simulator, computing all of them in one value at
every edge to sample it, half as slow again. The probes drive nothing in the SoC: it runs the
same cycles with them as without, and without them (every other build) it is as it was.
"""

from typing import NamedTuple

from amaranth.hdl import Cat, Const, Value
from amaranth.lib.wiring import Out, Signature

__all__ = ["Channel", "Level", "soc_probes", "probe_port_layout", "probe_signature",
           "payload_member", "add_probe_registers"]


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
    """Where each probe is when all of them are one value: bit ``i`` is channel ``i``'s
    handshake (valid and ready); then each channel's payload, at the ``(offset, width)`` of the
    first list returned; then each level, at the ``(offset, width)`` of the second (the
    ``levels`` member of the ``probe`` port holds the levels in that order). The third value
    is the width."""
    channel_places, level_places, offset = [], [], len(channels)
    for channel in channels:
        width = len(channel.payload)
        channel_places.append((offset, width))
        offset += width
    for level in levels:
        level_places.append((offset, len(level.signal)))
        offset += len(level.signal)
    return channel_places, level_places, offset


def payload_member(channel):
    """The name of the member of the ``probe`` port that carries ``channel``'s payload, or
    ``None`` if the channel keeps no field (an AXI4-Lite W)."""
    return f"{channel.port}_{channel.channel}" if channel.fields else None


def probe_signature(channels, levels):
    """The signature of the ``probe`` port: ``handshake``, a member per channel with fields
    (:func:`payload_member`), and ``levels`` (each level in turn from bit 0)."""
    members = {"handshake": Out(len(channels))}
    for channel in channels:
        if channel.fields:
            members[payload_member(channel)] = Out(len(channel.payload))
    members["levels"] = Out(sum(len(level.signal) for level in levels))
    return Signature(members)


def add_probe_registers(m, port, channels, levels):
    """Add to module ``m`` the registers of the ``probe`` port ``port``: the handshakes and
    the levels as every edge samples them, each payload as the last handshake of its channel
    took it (loaded only then: a register whose next value is its input at every edge costs
    the compiled models that input's evaluation at every edge)."""
    m.d.sync += [port.handshake.eq(Cat(*(channel.valid & channel.ready for channel in channels))),
                 port.levels.eq(Cat(*(level.signal for level in levels)))]
    for channel in channels:
        if channel.fields:
            with m.If(channel.valid & channel.ready):
                m.d.sync += getattr(port, payload_member(channel)).eq(channel.payload)
