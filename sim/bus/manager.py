"""The AXI4 manager bus-functional model: bursts queued by a testbench, issued with random
gaps and several outstanding, responses collected by ID."""

import collections
import random as _random
from dataclasses import dataclass, field

from ...hw.bus.axi import Burst, Resp
from .port import Gap, PortModel

__all__ = ["ReadTransaction", "WriteTransaction", "AXI4Manager"]


@dataclass(eq=False)
class ReadTransaction:
    """A read burst issued by :class:`AXI4Manager`; ``data``/``resp`` fill in beat by beat."""
    addr: int
    len: int
    size: int
    burst: Burst
    id: int
    sid: int
    prot: int
    data: list = field(default_factory=list)
    resp: list = field(default_factory=list)
    done: bool = False
    issued_at: int = None
    done_at: int = None


@dataclass(eq=False)
class WriteTransaction:
    """A write burst issued by :class:`AXI4Manager`; ``resp`` is set by the B response."""
    addr: int
    len: int
    size: int
    burst: Burst
    id: int
    sid: int
    prot: int
    data: list
    strb: list
    resp: Resp = None
    done: bool = False
    issued_at: int = None
    done_at: int = None


class AXI4Manager(PortModel):
    """AXI4 manager bus-functional model.

    Transactions are queued with :meth:`read` and :meth:`write` (which return at once) and
    issued in queue order, up to ``max_outstanding`` per direction. AW and W are driven
    independently, so write data may lead its address. Responses are matched to the oldest
    outstanding transaction with their ID; a response no transaction expects raises
    :exc:`AssertionError` from the simulation.

    Parameters
    ----------
    port : interface
        The AXI4 port to drive (the ``In`` port of a component, or a bare interface).
    rng : random.Random
        Source of the random gaps.
    valid_gap : float
        Probability of an idle cycle before each AW, W and AR transfer.
    ready_gap : float
        Probability of holding B and R ready low in a cycle.
    max_outstanding : int
        Transactions issued and not yet completed, per direction.

    Attributes
    ----------
    cycle : int
        Active clock edges seen.
    completed : list
        Transactions in the order they completed.
    """
    def __init__(self, port, *, rng=None, valid_gap=0.0, ready_gap=0.0, max_outstanding=8):
        if not isinstance(max_outstanding, int) or max_outstanding < 1:
            raise ValueError(f"max_outstanding must be a positive integer, "
                             f"not {max_outstanding!r}")
        super().__init__(port)
        sig = port.signature
        self.bytes_per_beat = sig.data_width // 8
        self._id_mask = (1 << sig.id_width) - 1
        self._sid_mask = (1 << sig.sid_width) - 1
        rng = rng if rng is not None else _random.Random(0)
        self._valid_gap = Gap(rng, valid_gap)
        self._ready_gap = Gap(rng, ready_gap)
        self.max_outstanding = max_outstanding

        self.cycle = 0
        self.completed = []
        self._ar_queue = collections.deque()
        self._aw_queue = collections.deque()
        self._w_queue = collections.deque()         # (data, strb, last)
        self._reads = collections.defaultdict(collections.deque)    # id -> in flight
        self._writes = collections.defaultdict(collections.deque)
        self._reads_in_flight = self._writes_in_flight = 0

    def _transaction(self, addr, length, size, burst, id, sid, prot):
        if size is None:
            size = self.bytes_per_beat.bit_length() - 1
        if not 0 <= length <= 255:
            raise ValueError(f"Burst length must be 0 to 255 (beats minus one), not {length!r}")
        if (1 << size) > self.bytes_per_beat:
            raise ValueError(f"Size {size!r} is wider than the {self.bytes_per_beat}-byte bus")
        if id & ~self._id_mask or sid & ~self._sid_mask:
            raise ValueError(f"ID {id!r} or stream ID {sid!r} does not fit the port")
        return dict(addr=addr, len=length, size=size, burst=Burst(burst), id=id, sid=sid,
                    prot=prot)

    def read(self, addr, *, len=0, size=None, burst=Burst.INCR, id=0, sid=0, prot=0):
        """Queue a read burst of ``len + 1`` beats of ``2**size`` bytes (bus width by default);
        returns its :class:`ReadTransaction`."""
        txn = ReadTransaction(**self._transaction(addr, len, size, burst, id, sid, prot))
        self._ar_queue.append(txn)
        return txn

    def write(self, addr, data, *, strb=None, size=None, burst=Burst.INCR, id=0, sid=0, prot=0):
        """Queue a write burst of the bus words ``data`` (one per beat) with strobes ``strb``
        (all lanes by default; the model does not mask them to the beat's lanes, so that tests
        can check subordinates do); returns its :class:`WriteTransaction`."""
        data = list(data)
        if strb is None:
            strb = [(1 << self.bytes_per_beat) - 1] * len(data)
        if not data or len(strb) != len(data):
            raise ValueError(f"Need one or more data beats and one strobe per beat, not "
                             f"{len(data)} beats and {len(strb)} strobes")
        txn = WriteTransaction(**self._transaction(addr, len(data) - 1, size, burst, id, sid,
                                                   prot), data=data, strb=list(strb))
        self._aw_queue.append(txn)
        return txn

    @property
    def idle(self):
        """Nothing queued and nothing in flight."""
        return not (self._ar_queue or self._aw_queue or self._w_queue or
                    self._reads_in_flight or self._writes_in_flight)

    async def wait(self, ctx, *transactions, timeout=100_000):
        """Let cycles pass until the given transactions (all queued ones, if none are given)
        have completed; raise :exc:`TimeoutError` after ``timeout`` cycles (``None``: never)."""
        waited = 0
        while not (all(t.done for t in transactions) if transactions else self.idle):
            if timeout is not None and waited >= timeout:
                pending = [t for t in transactions if not t.done] or "all queued transactions"
                raise TimeoutError(f"AXI4 transactions not done after {timeout} cycles: "
                                   f"{pending}")
            await ctx.tick()
            waited += 1

    async def _process(self, ctx):
        (aw_valid, aw_ready, aw_payload, w_valid, w_ready, w_payload, b_valid, b_ready, b_payload,
         ar_valid, ar_ready, ar_payload, r_valid, r_ready, r_payload) = self._signals()
        aw_txn = ar_txn = w_beat = None
        b_ready_now = r_ready_now = False

        async for _, _, aw_rdy, w_rdy, b_vld, b_bits, ar_rdy, r_vld, r_bits in \
                ctx.tick().sample(aw_ready, w_ready, b_valid, b_payload, ar_ready, r_valid,
                                  r_payload):
            self.cycle += 1
            # Transfers at this edge.
            if aw_txn is not None and aw_rdy:
                aw_txn = None
            if ar_txn is not None and ar_rdy:
                ar_txn = None
            if w_beat is not None and w_rdy:
                w_beat = None
            if b_vld and b_ready_now:
                self._complete_write(self._codecs["b"].unpack(b_bits))
            if r_vld and r_ready_now:
                self._receive_read(self._codecs["r"].unpack(r_bits))

            # Outputs for the next cycle.
            if aw_txn is None:
                aw_txn = self._issue(self._aw_queue, self._writes, "_writes_in_flight")
                if aw_txn is not None:
                    ctx.set(aw_payload, self._addr_bits(aw_txn))
                    for n, (data, strb) in enumerate(zip(aw_txn.data, aw_txn.strb)):
                        self._w_queue.append((data, strb, n == aw_txn.len))
                ctx.set(aw_valid, aw_txn is not None)
            if ar_txn is None:
                ar_txn = self._issue(self._ar_queue, self._reads, "_reads_in_flight")
                if ar_txn is not None:
                    ctx.set(ar_payload, self._addr_bits(ar_txn))
                ctx.set(ar_valid, ar_txn is not None)
            if w_beat is None:
                if self._w_queue and not self._valid_gap.hold():
                    w_beat = self._w_queue.popleft()
                    data, strb, last = w_beat
                    ctx.set(w_payload, self._codecs["w"].pack(data=data, strb=strb, last=last))
                ctx.set(w_valid, w_beat is not None)
            b_ready_now = not self._ready_gap.hold()
            r_ready_now = not self._ready_gap.hold()
            ctx.set(b_ready, b_ready_now)
            ctx.set(r_ready, r_ready_now)

    def _issue(self, queue, in_flight, count_name):
        if (not queue or getattr(self, count_name) >= self.max_outstanding or
                self._valid_gap.hold()):
            return None
        txn = queue.popleft()
        txn.issued_at = self.cycle
        in_flight[txn.id].append(txn)
        setattr(self, count_name, getattr(self, count_name) + 1)
        return txn

    def _addr_bits(self, txn):
        return self._codecs["aw"].pack(id=txn.id, addr=txn.addr, len=txn.len, size=txn.size,
                                     burst=txn.burst.value, prot=txn.prot, sid=txn.sid)

    def _finish(self, txn):
        txn.done = True
        txn.done_at = self.cycle
        self.completed.append(txn)

    def _complete_write(self, b):
        pending = self._writes.get(b["id"])
        if not pending:
            raise AssertionError(f"B response with ID {b['id']} matches no outstanding write "
                                 f"(cycle {self.cycle})")
        txn = pending.popleft()
        txn.resp = Resp(b["resp"])
        self._writes_in_flight -= 1
        self._finish(txn)

    def _receive_read(self, r):
        pending = self._reads.get(r["id"])
        if not pending:
            raise AssertionError(f"R beat with ID {r['id']} matches no outstanding read "
                                 f"(cycle {self.cycle})")
        txn = pending[0]
        txn.data.append(r["data"])
        txn.resp.append(Resp(r["resp"]))
        if r["last"] != (len(txn.data) == txn.len + 1):
            raise AssertionError(f"R beat {len(txn.data)} of {txn.len + 1} for ID {r['id']} has "
                                 f"RLAST={r['last']} (cycle {self.cycle})")
        if r["last"]:
            pending.popleft()
            self._reads_in_flight -= 1
            self._finish(txn)
