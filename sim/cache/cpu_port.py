"""Simulation helpers for the cache's ports: a CPU-port driver and an AXI4 burst monitor.

Both are clocked like the models of :mod:`dmabuf_soc.sim.bus`: ``add_to(sim)`` registers
one process that wakes on every active edge. Cycle numbers are read from a free-running
counter ``cycle`` in the design, so that events seen by different processes and testbenches
compare exactly.
"""

import collections
import random as _random
from dataclasses import dataclass


from ...hw.payload import PayloadCodec
from ..bus.port import channel_signals

__all__ = ["CpuAccess", "CpuPortDriver", "BurstMonitor"]


@dataclass(eq=False)
class CpuAccess:
    """One access queued on a :class:`CpuPortDriver`; the response fields fill in."""
    addr: int
    write: bool
    data: int
    strb: int
    cacheable: bool
    accepted_at: int = None
    responded_at: int = None
    rsp_data: int = None
    error: bool = None

    @property
    def done(self):
        return self.responded_at is not None


class CpuPortDriver:
    """Issues loads and stores on a CPU port (the ``In`` port of a cache or bridge).

    Accesses are presented in queue order, back to back unless ``valid_gap`` inserts idle
    cycles; responses are taken when they come unless ``ready_gap`` holds them off.

    Parameters
    ----------
    port : interface
        The CPU port (``req``/``rsp`` streams) to drive.
    cycle : Signal
        A free-running cycle counter of the design.
    rng : random.Random or None
    valid_gap, ready_gap : float
        Probability of an idle cycle before a request, and of not taking a response.
    """
    def __init__(self, port, cycle, *, rng=None, valid_gap=0.0, ready_gap=0.0):
        for name, value in (("valid_gap", valid_gap), ("ready_gap", ready_gap)):
            if not 0 <= value < 1:
                raise ValueError(f"{name} must be in [0, 1), not {value!r}")
        self.port = port
        self.cycle = cycle
        self.bytes_per_word = port.signature.data_width // 8
        self._rng = rng if rng is not None else _random.Random(0)
        self.valid_gap = valid_gap
        self.ready_gap = ready_gap
        self._req_codec = PayloadCodec(port.req.payload.shape())
        self._rsp_codec = PayloadCodec(port.rsp.payload.shape())
        self._queue = collections.deque()
        self._in_flight = collections.deque()
        self._shown = None

    def issue(self, addr, *, write=False, data=0, strb=None, cacheable=True):
        """Queue one access to the word holding ``addr``; returns its :class:`CpuAccess`."""
        if strb is None:
            strb = (1 << self.bytes_per_word) - 1
        access = CpuAccess(addr - addr % self.bytes_per_word, bool(write), data, strb,
                           bool(cacheable))
        self._queue.append(access)
        return access

    @property
    def idle(self):
        return not (self._queue or self._shown or self._in_flight)

    async def wait(self, ctx, *accesses):
        """Let cycles pass until the given accesses (all queued ones, if none) are done."""
        while not (all(a.done for a in accesses) if accesses else self.idle):
            await ctx.tick()

    def add_to(self, sim):
        sim.add_process(self._process)

    async def _process(self, ctx):
        req_valid, req_ready, req_payload = channel_signals(self.port.req)
        rsp_valid, rsp_ready, rsp_payload = channel_signals(self.port.rsp)
        taking = False
        async for _, _, cycle, req_rdy, rsp_vld, rsp_bits in ctx.tick().sample(
                self.cycle, req_ready, rsp_valid, rsp_payload):
            shown = self._shown
            if shown is not None and req_rdy:
                shown.accepted_at = cycle
                self._in_flight.append(shown)
                shown = None
            if taking and rsp_vld:
                access = self._in_flight.popleft()
                fields = self._rsp_codec.unpack(rsp_bits)
                access.rsp_data, access.error = fields["data"], bool(fields["error"])
                access.responded_at = cycle
            if shown is None and self._queue and not (
                    self.valid_gap and self._rng.random() < self.valid_gap):
                shown = self._queue.popleft()
                ctx.set(req_payload, self._req_codec.pack(
                    addr=shown.addr, write=shown.write, data=shown.data, strb=shown.strb,
                    cacheable=shown.cacheable))
            ctx.set(req_valid, shown is not None)
            self._shown = shown
            taking = not (self.ready_gap and self._rng.random() < self.ready_gap)
            ctx.set(rsp_ready, taking)


class BurstMonitor:
    """Records the bursts on an AXI4 port: reads as ``(addr, beats)`` in AR order, writes as
    ``(addr, [(data, strb), ...])`` once both the AW and the last W beat are seen, in AW
    order. Watches only; drives nothing.
    """
    def __init__(self, port):
        self.port = port
        self.reads = []
        self.writes = []
        self._aw_codec = PayloadCodec(port.aw.payload.shape())
        self._w_codec = PayloadCodec(port.w.payload.shape())
        self._addrs = collections.deque()
        self._bursts = collections.deque()
        self._beats = []

    def add_to(self, sim):
        sim.add_process(self._process)

    async def _process(self, ctx):
        aw, w, ar = (channel_signals(getattr(self.port, name)) for name in ("aw", "w", "ar"))
        async for _, _, *values in ctx.tick().sample(*aw, *w, *ar):
            aw_vld, aw_rdy, aw_bits, w_vld, w_rdy, w_bits, ar_vld, ar_rdy, ar_bits = values
            if ar_vld and ar_rdy:
                fields = self._aw_codec.unpack(ar_bits)
                self.reads.append((fields["addr"], fields["len"] + 1))
            if aw_vld and aw_rdy:
                self._addrs.append(self._aw_codec.unpack(aw_bits)["addr"])
            if w_vld and w_rdy:
                fields = self._w_codec.unpack(w_bits)
                self._beats.append((fields["data"], fields["strb"]))
                if fields["last"]:
                    self._bursts.append(self._beats)
                    self._beats = []
            while self._addrs and self._bursts:
                self.writes.append((self._addrs.popleft(), self._bursts.popleft()))
