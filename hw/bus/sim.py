"""Bus-functional models of AXI4 and AXI4-Lite for async Amaranth testbenches.

* :class:`ReferenceMemory` — sparse byte-addressed memory and what an AXI burst does to it;
  the reference model every memory-side block is checked against.
* :func:`lite_read`, :func:`lite_write` — one AXI4-Lite access, awaited from a testbench.
* :class:`AXI4Manager` — issues read and write bursts with several outstanding, random
  valid/ready gaps, and collects responses by ID.
* :class:`AXI4Subordinate` — answers bursts from a :class:`ReferenceMemory`, with latency,
  random gaps, reordering across IDs and injected errors.
* :class:`AXI4LiteSubordinate` — answers AXI4-Lite accesses from a :class:`ReferenceMemory`.

The models are clocked: each registers one simulator process (``model.add_to(sim)``) that wakes
on every active edge, samples the port, and drives its outputs for the next cycle, like a
register would. They drive raw payload bits through :class:`PayloadCodec` rather than through
:class:`~amaranth.lib.data.View` objects, which keeps long random runs fast::

    memory  = ReferenceMemory()
    manager = AXI4Manager(dut.managers[0], rng=random.Random(1), valid_gap=0.2)
    memory_model = AXI4Subordinate(dut.subordinates[0], memory, read_latency=5)
    manager.add_to(sim)
    memory_model.add_to(sim)

    async def testbench(ctx):
        write = manager.write(0x8000_0000, [0x1122334455667788, 0x99], id=3)
        read  = manager.read(0x8000_0000, len=1, id=3)
        await manager.wait(ctx, write, read)
        assert read.data == [0x1122334455667788, 0x99]
"""

import collections
import random as _random
from dataclasses import dataclass, field

from amaranth.hdl import Value

from .axi import Burst, Resp

__all__ = [
    "PayloadCodec", "channel_signals", "burst_beats", "ReferenceMemory",
    "lite_read", "lite_write",
    "ReadTransaction", "WriteTransaction", "AXI4Manager", "AXI4Subordinate",
    "AXI4LiteSubordinate",
]


class PayloadCodec:
    """Packs and unpacks the raw bits of a :class:`~amaranth.lib.data.StructLayout` payload.

    Parameters
    ----------
    layout : StructLayout
        The payload layout.
    """
    def __init__(self, layout):
        self._fields = [(name, f.offset, (1 << f.width) - 1) for name, f in layout]

    def unpack(self, bits):
        """A :class:`dict` of the integer value of every field in ``bits``."""
        return {name: (bits >> offset) & mask for name, offset, mask in self._fields}

    def pack(self, **values):
        """The raw bits of a payload with the given field values (others are zero)."""
        bits = 0
        for name, offset, mask in self._fields:
            value = int(values.get(name, 0))
            if value & ~mask and mask:
                raise ValueError(f"Value {value:#x} does not fit field {name!r}")
            bits |= (value & mask) << offset
        return bits


def channel_signals(stream):
    """``(valid, ready, raw payload)`` signals of a stream interface, whatever its flow."""
    return stream.valid, stream.ready, Value.cast(stream.payload)


def burst_beats(addr, length, size, burst, bytes_per_beat):
    """The beats of an AXI4 burst, as the AXI specification defines them.

    Parameters
    ----------
    addr : int
        ``AxADDR``, the start address (may be unaligned for INCR and FIXED bursts).
    length : int
        ``AxLEN`` (beats minus one).
    size : int
        ``AxSIZE`` (log2 of the bytes per beat).
    burst : Burst or int
        ``AxBURST``.
    bytes_per_beat : int
        Width of the data bus in bytes.

    Returns
    -------
    list of (int, int)
        For each beat, its address and the mask of the byte lanes it uses (bit ``i`` set:
        lane ``i`` of the data bus carries a byte of this beat).
    """
    burst = Burst(burst)
    nbytes = 1 << size
    if nbytes > bytes_per_beat:
        raise ValueError(f"Transfer size {nbytes} is wider than the {bytes_per_beat}-byte bus")
    aligned = addr & ~(nbytes - 1)
    beats = []
    for n in range(length + 1):
        if burst == Burst.FIXED:
            beat_addr = addr
        elif burst == Burst.INCR:
            beat_addr = addr if n == 0 else aligned + n * nbytes
        else:
            wrap_bytes = nbytes * (length + 1)
            wrap_base = addr - addr % wrap_bytes
            beat_addr = wrap_base + (addr - wrap_base + n * nbytes) % wrap_bytes
        lower = beat_addr % bytes_per_beat
        upper = (beat_addr & ~(nbytes - 1)) % bytes_per_beat + nbytes - 1
        beats.append((beat_addr, ((1 << (upper + 1)) - 1) & ~((1 << lower) - 1)))
    return beats


class ReferenceMemory:
    """Sparse byte-addressed memory; bytes never written read as zero.

    Stored as 4 KiB pages of :class:`bytearray`, created on first write.
    """
    PAGE_SIZE = 4096

    def __init__(self):
        self._pages = {}

    def _page(self, number, *, create):
        page = self._pages.get(number)
        if page is None and create:
            page = self._pages[number] = bytearray(self.PAGE_SIZE)
        return page

    def read(self, addr, n):
        """``n`` bytes at ``addr``, as :class:`bytes`."""
        if addr < 0 or n < 0:
            raise ValueError(f"Cannot read {n!r} bytes at {addr!r}")
        out = bytearray()
        while n:
            offset = addr % self.PAGE_SIZE
            chunk = min(n, self.PAGE_SIZE - offset)
            page = self._page(addr // self.PAGE_SIZE, create=False)
            out += bytes(chunk) if page is None else page[offset:offset + chunk]
            addr += chunk
            n -= chunk
        return bytes(out)

    def write(self, addr, data):
        """Store the bytes-like ``data`` at ``addr``."""
        if addr < 0:
            raise ValueError(f"Cannot write at {addr!r}")
        data = memoryview(bytes(data))
        while data:
            offset = addr % self.PAGE_SIZE
            chunk = min(len(data), self.PAGE_SIZE - offset)
            self._page(addr // self.PAGE_SIZE, create=True)[offset:offset + chunk] = data[:chunk]
            addr += chunk
            data = data[chunk:]

    def read_beat(self, addr, bytes_per_beat):
        """The bus word holding ``addr`` (all lanes, little-endian), as an integer."""
        base = addr - addr % bytes_per_beat
        return int.from_bytes(self.read(base, bytes_per_beat), "little")

    def write_beat(self, addr, data, strb, bytes_per_beat):
        """Write the lanes of bus word ``data`` selected by ``strb`` into the bus word
        holding ``addr``."""
        base = addr - addr % bytes_per_beat
        raw = data.to_bytes(bytes_per_beat, "little")
        lane = 0
        while strb >> lane:
            if not strb >> lane & 1:
                lane += 1
                continue
            end = lane
            while strb >> end & 1:
                end += 1
            self.write(base + lane, raw[lane:end])
            lane = end

    def read_burst(self, addr, length, size, bytes_per_beat, burst=Burst.INCR):
        """The R data beats of a read burst: whole bus words; only the beats' lanes matter."""
        return [self.read_beat(beat_addr, bytes_per_beat)
                for beat_addr, _ in burst_beats(addr, length, size, burst, bytes_per_beat)]

    def write_burst(self, addr, data, strb, size, bytes_per_beat, burst=Burst.INCR):
        """Apply the W beats ``data``/``strb`` of a write burst starting at ``addr``; strobes
        outside each beat's lanes are ignored, as a subordinate must."""
        beats = burst_beats(addr, len(data) - 1, size, burst, bytes_per_beat)
        for (beat_addr, lanes), word, mask in zip(beats, data, strb):
            self.write_beat(beat_addr, word, mask & lanes, bytes_per_beat)


class _PortModel:
    """A model clocked by one simulator process that watches or drives all five channels of
    ``port``; ``_codecs`` packs and unpacks each channel's payload."""
    _channels = ("aw", "w", "b", "ar", "r")

    def __init__(self, port):
        self.port = port
        self._codecs = {channel: PayloadCodec(getattr(port, channel).payload.shape())
                        for channel in self._channels}

    def add_to(self, sim):
        """Register the model's process with the simulator ``sim``."""
        sim.add_process(self._process)

    def _signals(self):
        """``(valid, ready, raw payload)`` of every channel, in ``_channels`` order."""
        return [signal for channel in self._channels
                for signal in channel_signals(getattr(self.port, channel))]


def _error_response(error, write, addr):
    resp = error(write, addr) if error is not None else None
    return Resp.OKAY if resp is None else Resp(resp)


# AXI4-Lite accesses, awaited from a testbench --------------------------------------------------

async def lite_write(ctx, port, addr, data, strb=0xF):
    """Write ``data`` at ``addr`` through the AXI4-Lite manager-side ``port``; returns the
    :class:`Resp`. AW and W are presented together and may be accepted in either order."""
    ctx.set(port.aw.payload, {"addr": addr, "prot": 0})
    ctx.set(port.w.payload, {"data": data, "strb": strb})
    ctx.set(port.aw.valid, 1)
    ctx.set(port.w.valid, 1)
    ctx.set(port.b.ready, 1)
    aw_pending = w_pending = True
    try:
        while True:
            _, _, aw_ready, w_ready, b_valid, b_payload = \
                await ctx.tick().sample(port.aw.ready, port.w.ready, port.b.valid, port.b.payload)
            if b_valid and not (aw_pending or w_pending):
                return Resp(b_payload.resp)
            if aw_pending and aw_ready:
                aw_pending = False
                ctx.set(port.aw.valid, 0)
            if w_pending and w_ready:
                w_pending = False
                ctx.set(port.w.valid, 0)
    finally:
        ctx.set(port.b.ready, 0)


async def lite_read(ctx, port, addr):
    """Read ``addr`` through the AXI4-Lite manager-side ``port``; returns ``(data, resp)``."""
    ctx.set(port.ar.payload, {"addr": addr, "prot": 0})
    ctx.set(port.ar.valid, 1)
    await ctx.tick().until(port.ar.ready)
    ctx.set(port.ar.valid, 0)
    ctx.set(port.r.ready, 1)
    payload, = await ctx.tick().sample(port.r.payload).until(port.r.valid)
    ctx.set(port.r.ready, 0)
    return payload.data, Resp(payload.resp)


# AXI4 manager ----------------------------------------------------------------------------------

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


class _Gap:
    """Random idle cycles: ``hold()`` is true on a fraction ``probability`` of cycles."""
    def __init__(self, rng, probability):
        if not 0 <= probability < 1:
            raise ValueError(f"Gap probability must be in [0, 1), not {probability!r}")
        self._rng = rng
        self._probability = probability

    def hold(self):
        return self._probability and self._rng.random() < self._probability


class AXI4Manager(_PortModel):
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
        self._valid_gap = _Gap(rng, valid_gap)
        self._ready_gap = _Gap(rng, ready_gap)
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


# AXI4 subordinate ------------------------------------------------------------------------------

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


class AXI4Subordinate(_PortModel):
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
        self._ready_gap = _Gap(self._rng, ready_gap)
        self._valid_gap = _Gap(self._rng, valid_gap)
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
                access.resp = _error_response(self.error, False, access.addr)
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
                access.resp = _error_response(self.error, True, access.addr)
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


class AXI4LiteSubordinate(_PortModel):
    """AXI4-Lite subordinate bus-functional model backed by a :class:`ReferenceMemory`.

    Answers one read and one write at a time, ``latency`` cycles after accepting them.

    Parameters
    ----------
    port : interface
        The AXI4-Lite port to answer.
    memory : ReferenceMemory
        Backing store.
    latency : int
        Cycles from the request accepted to its response being presented.
    error : callable or None
        As for :class:`AXI4Subordinate`.
    """
    def __init__(self, port, memory, *, latency=1, error=None):
        if not isinstance(latency, int) or latency < 1:
            raise ValueError(f"latency must be a positive integer, not {latency!r}")
        super().__init__(port)
        self.memory = memory
        self.latency = latency
        self.error = error
        self.bytes_per_beat = port.signature.data_width // 8

    async def _process(self, ctx):
        port, codecs = self.port, self._codecs
        aw = w = None
        b_due = r_due = None        # (cycle, payload bits)
        aw_ready = w_ready = ar_ready = False
        cycle = 0
        async for _, _, aw_vld, aw_bits, w_vld, w_bits, b_rdy, ar_vld, ar_bits, r_rdy in \
                ctx.tick().sample(port.aw.valid, Value.cast(port.aw.payload),
                                  port.w.valid, Value.cast(port.w.payload), port.b.ready,
                                  port.ar.valid, Value.cast(port.ar.payload), port.r.ready):
            cycle += 1
            if aw_vld and aw_ready:
                aw = codecs["aw"].unpack(aw_bits)
            if w_vld and w_ready:
                w = codecs["w"].unpack(w_bits)
            if b_due is not None and b_due[0] <= cycle and b_rdy:
                b_due = None
            if aw is not None and w is not None:
                resp = _error_response(self.error, True, aw["addr"])
                if resp == Resp.OKAY:
                    self.memory.write_beat(aw["addr"], w["data"], w["strb"], self.bytes_per_beat)
                b_due = (cycle + self.latency, codecs["b"].pack(resp=resp.value))
                aw = w = None
            if r_due is not None and r_due[0] <= cycle and r_rdy:
                r_due = None
            elif ar_vld and ar_ready:
                addr = codecs["ar"].unpack(ar_bits)["addr"]
                resp = _error_response(self.error, False, addr)
                data = self.memory.read_beat(addr, self.bytes_per_beat)
                r_due = (cycle + self.latency, codecs["r"].pack(data=data, resp=resp.value))
            aw_ready = aw is None and b_due is None
            w_ready = w is None and b_due is None
            ar_ready = r_due is None
            ctx.set(port.aw.ready, aw_ready)
            ctx.set(port.w.ready, w_ready)
            ctx.set(port.ar.ready, ar_ready)
            for stream, due in ((port.b, b_due), (port.r, r_due)):
                presented = due is not None and due[0] <= cycle + 1
                if presented:
                    ctx.set(Value.cast(stream.payload), due[1])
                ctx.set(stream.valid, presented)
