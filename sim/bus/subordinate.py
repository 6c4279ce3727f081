"""The AXI4 subordinate bus-functional model: bursts answered from a
:class:`~.memory.ReferenceMemory` with latency, random gaps, reordering across IDs and
injected errors."""

import collections
import random as _random
from dataclasses import dataclass

from ...hw.bus.axi import Resp
from .port import Gap, PortModel, error_response

__all__ = ["AXI4Subordinate"]


@dataclass(eq=False)
class _Access:
    id: int
    addr: int
    len: int
    size: int
    burst: int
    resp: Resp = Resp.OKAY
    due: int = 0
    beats: list = None          # read data / write (data, strb) pairs


class AXI4Subordinate(PortModel):
    """AXI4 subordinate bus-functional model backed by a :class:`ReferenceMemory`.

    A read takes its data from memory when its address is accepted; a write updates memory
    once its address and all its data beats have been accepted. Responses with the same ID
    are returned in order; with ``reorder`` those with different IDs are not.

    Parameters
    ----------
    port : interface
        The AXI4 port to answer (the ``Out`` port of a component, or a bare interface).
    memory : ReferenceMemory
        Backing store.
    rng : random.Random
        Source of the random gaps and reordering.
    read_latency : int
        Cycles from AR accepted to the first R beat being presented (at least 1).
    write_latency : int
        Cycles from the last W beat (or AW, if later) accepted to B being presented.
    ready_gap, valid_gap : float
        Probability of holding AW/W/AR ready low, and of an idle cycle before R/B beats.
    max_outstanding : int
        Accepted reads (and, separately, writes) not yet answered; then AR/AW ready go low.
    reorder : bool
        Answer ready transactions with different IDs in random order (never interleaving
        the beats of two read bursts).
    error : callable or None
        ``error(write, addr)`` returns the :class:`Resp` for a transaction (``None`` or
        :attr:`Resp.OKAY` for a normal access). An erring write leaves memory untouched.
    w_before_aw : bool
        Accept write data before its address.

    Attributes
    ----------
    reads, writes : list
        ``(cycle, id, addr, len)`` of each accepted AR/AW, for tests that count grants.
    """
    def __init__(self, port, memory, *, rng=None, read_latency=1, write_latency=1,
                 ready_gap=0.0, valid_gap=0.0, max_outstanding=8, reorder=False, error=None,
                 w_before_aw=True):
        for name, value in (("read_latency", read_latency), ("write_latency", write_latency),
                            ("max_outstanding", max_outstanding)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, not {value!r}")
        super().__init__(port)
        self.memory = memory
        self.bytes_per_beat = port.signature.data_width // 8
        self._rng = rng if rng is not None else _random.Random(0)
        self._ready_gap = Gap(self._rng, ready_gap)
        self._valid_gap = Gap(self._rng, valid_gap)
        self.read_latency = read_latency
        self.write_latency = write_latency
        self.max_outstanding = max_outstanding
        self.reorder = reorder
        self.error = error
        self.w_before_aw = w_before_aw
        self.cycle = 0
        self.reads = []
        self.writes = []
        self._read_queue = []       # accepted reads, oldest first
        self._aw_pending = collections.deque()  # accepted writes waiting for W data
        self._w_bursts = collections.deque()    # complete W bursts not yet matched to an AW
        self._w_current = []
        self._b_queue = []          # writes done, waiting for B

    def _pick(self, queue):
        """The next transaction to answer, or ``None``: the oldest ready one, or with
        ``reorder`` any ready one that is the oldest of its ID."""
        seen, ready = set(), []
        for index, access in enumerate(queue):
            if access.id in seen:
                continue
            seen.add(access.id)
            if access.due <= self.cycle:
                ready.append(index)
            if not self.reorder:
                break
        if not ready:
            return None
        return queue.pop(self._rng.choice(ready) if self.reorder else ready[0])

    async def _process(self, ctx):
        (aw_valid, aw_ready, aw_payload, w_valid, w_ready, w_payload, b_valid, b_ready, b_payload,
         ar_valid, ar_ready, ar_payload, r_valid, r_ready, r_payload) = self._signals()
        aw_ready_now = w_ready_now = ar_ready_now = False
        b_access = r_access = None
        r_beat = 0
        r_shown = False

        async for _, _, aw_vld, aw_bits, w_vld, w_bits, b_rdy, ar_vld, ar_bits, r_rdy in \
                ctx.tick().sample(aw_valid, aw_payload, w_valid, w_payload, b_ready,
                                  ar_valid, ar_payload, r_ready):
            self.cycle += 1
            # Transfers at this edge.
            if ar_vld and ar_ready_now:
                access = _Access(**self._unpack_addr(ar_bits))
                self.reads.append((self.cycle, access.id, access.addr, access.len))
                access.resp = error_response(self.error, False, access.addr)
                access.due = self.cycle + self.read_latency - 1
                access.beats = self.memory.read_burst(access.addr, access.len, access.size,
                                                      self.bytes_per_beat, access.burst)
                self._read_queue.append(access)
            if r_shown and r_rdy:
                r_shown = False
                r_beat += 1
                if r_beat > r_access.len:
                    r_access = None
            if aw_vld and aw_ready_now:
                access = _Access(**self._unpack_addr(aw_bits))
                self.writes.append((self.cycle, access.id, access.addr, access.len))
                access.resp = error_response(self.error, True, access.addr)
                self._aw_pending.append(access)
            if w_vld and w_ready_now:
                w = self._codecs["w"].unpack(w_bits)
                self._w_current.append((w["data"], w["strb"]))
                if w["last"]:
                    self._w_bursts.append(self._w_current)
                    self._w_current = []
            while self._aw_pending and self._w_bursts:
                access = self._aw_pending.popleft()
                access.beats = self._w_bursts.popleft()
                if access.resp == Resp.OKAY:
                    data, strb = zip(*access.beats)
                    self.memory.write_burst(access.addr, data, strb, access.size,
                                            self.bytes_per_beat, access.burst)
                access.due = self.cycle + self.write_latency - 1
                self._b_queue.append(access)
            if b_access is not None and b_rdy:
                b_access = None

            # Outputs for the next cycle.
            outstanding_reads = len(self._read_queue) + (r_access is not None)
            ar_ready_now = (outstanding_reads < self.max_outstanding and
                            not self._ready_gap.hold())
            outstanding_writes = (len(self._aw_pending) + len(self._b_queue) +
                                  (b_access is not None))
            aw_ready_now = (outstanding_writes < self.max_outstanding and
                            not self._ready_gap.hold())
            w_wanted = (self.w_before_aw and len(self._w_bursts) < self.max_outstanding or
                        len(self._aw_pending) > len(self._w_bursts))
            w_ready_now = w_wanted and not self._ready_gap.hold()
            ctx.set(ar_ready, ar_ready_now)
            ctx.set(aw_ready, aw_ready_now)
            ctx.set(w_ready, w_ready_now)

            if r_access is None and not self._valid_gap.hold():
                r_access = self._pick(self._read_queue)
                r_beat = 0
                r_shown = r_access is not None
            elif r_access is not None and not r_shown:
                r_shown = not self._valid_gap.hold()
            if r_shown:
                ctx.set(r_payload, self._codecs["r"].pack(
                    id=r_access.id, data=r_access.beats[r_beat], resp=r_access.resp.value,
                    last=r_beat == r_access.len))
            ctx.set(r_valid, r_shown)

            if b_access is None and not self._valid_gap.hold():
                b_access = self._pick(self._b_queue)
                if b_access is not None:
                    ctx.set(b_payload, self._codecs["b"].pack(id=b_access.id,
                                                          resp=b_access.resp.value))
            ctx.set(b_valid, b_access is not None)

    def _unpack_addr(self, bits):
        fields = self._codecs["aw"].unpack(bits)
        return {name: fields[name] for name in ("id", "addr", "len", "size", "burst")}
