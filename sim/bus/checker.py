"""AXI4 and AXI4-Lite protocol checkers for simulation.

A checker watches one port, whatever its direction, from a simulator process that samples
every channel at every active clock edge. It never drives anything. Violations are collected,
with the cycle, channel and rule, and reported by :meth:`AXI4Checker.assert_clean`::

    checker = AXI4Checker(dut.managers[0], name="cpu")
    checker.add_to(sim)
    sim.run()
    checker.assert_clean()

Rules (the ``rule`` of each :class:`Violation`):

``valid-dropped``, ``payload-changed``
    A VALID was deasserted, or its payload changed, before READY (every channel).
``burst-type``, ``burst-length``, ``wrap-alignment``, ``size``, ``4k-boundary``
    AW/AR: reserved AxBURST; FIXED longer than 16 beats or WRAP not 2, 4, 8 or 16 beats;
    WRAP start not aligned to the transfer size; transfer wider than the bus; INCR burst
    crossing a 4 KiB boundary (INCR lengths up to 256 beats are what ``len`` can encode).
``wlast``
    WLAST not exactly on beat AWLEN + 1 (write data may lead its address: a W burst that
    arrives first is checked when its AW does).
``b-unexpected``, ``r-unexpected``
    A B response with no write of that ID whose address and last data beat were both
    accepted in an earlier cycle; an R beat with no read of that ID outstanding (accepted
    in an earlier cycle).
``rlast``
    RLAST not exactly on the last beat of the oldest outstanding read with that ID
    (same-ID reads are answered in order, so beats are attributed to the oldest).
``exokay``
    EXOKAY response (there are no exclusive accesses: AxLOCK is not carried).
``unfinished``
    Transactions still outstanding, reported by ``assert_clean(idle=True)``.
"""

import collections
from dataclasses import dataclass

from ...hw.bus.axi import BOUNDARY, Burst, Resp
from .port import PortModel

__all__ = ["Violation", "AXI4Checker", "AXI4LiteChecker"]


@dataclass(frozen=True)
class Violation:
    """One protocol violation seen by a checker."""
    cycle: int
    channel: str
    rule: str
    message: str

    def __str__(self):
        return f"cycle {self.cycle}: {self.channel}: {self.rule}: {self.message}"


class _Checker(PortModel):
    def __init__(self, port, *, name, record):
        super().__init__(port)
        self.name = name
        self.cycle = 0
        self.violations = []
        self.transfers = dict.fromkeys(self._channels, 0)
        self.log = [] if record else None
        self._held = [None] * len(self._channels)
        self._reset()

    def _violation(self, channel, rule, message):
        self.violations.append(Violation(self.cycle, channel, rule, message))

    def assert_clean(self, *, idle=False):
        """Raise :exc:`AssertionError` listing the violations seen, if any. With ``idle``,
        transactions still outstanding count as violations too."""
        violations = list(self.violations)
        if idle:
            violations += [Violation(self.cycle, ch, "unfinished", what)
                           for ch, what in self._unfinished()]
        if violations:
            shown = "\n  ".join(map(str, violations[:50]))
            more = f"\n  ... and {len(violations) - 50} more" if len(violations) > 50 else ""
            raise AssertionError(f"{self.name}: {len(violations)} AXI protocol violation(s):"
                                 f"\n  {shown}{more}")

    async def _process(self, ctx):
        async for _, rst, *values in ctx.tick().sample(*self._signals()):
            self.step(rst, values)

    def step(self, rst, values):
        """Take one active clock edge: ``rst`` as sampled, and ``values`` the sampled
        ``valid, ready, payload`` (raw bits) of every channel in ``aw, w, b, ar, r`` order.

        :meth:`add_to` calls it from an Amaranth simulator process; a testbench of another
        simulator (cocotb) may call it with the values it samples.
        """
        self.cycle += 1
        if rst:
            self._held = [None] * len(self._channels)
            self._reset()
            return
        transfers = []
        for index, channel in enumerate(self._channels):
            valid, ready, payload = values[3 * index:3 * index + 3]
            held = self._held[index]        # payload of a VALID not yet accepted
            if held is not None:
                if not valid:
                    self._violation(channel, "valid-dropped", "VALID deasserted before READY")
                elif payload != held:
                    self._violation(channel, "payload-changed",
                                    f"payload changed from {held:#x} to {payload:#x} "
                                    f"before READY")
            self._held[index] = payload if valid and not ready else None
            if valid and ready:
                self.transfers[channel] += 1
                fields = self._codecs[channel].unpack(payload)
                transfers.append((channel, fields))
                if self.log is not None:
                    self.log.append((self.cycle, channel, fields))
        # Responses first: one must not be accepted in the cycle its request is.
        for channel, fields in sorted(transfers, key=lambda t: t[0] not in ("b", "r")):
            getattr(self, f"_on_{channel}")(fields)


class AXI4Checker(_Checker):
    """AXI4 protocol checker.

    Parameters
    ----------
    port : interface
        An AXI4 port (manager or subordinate side, or a bare interface).
    name : str
        Shown in reports.
    record : bool
        Keep a :attr:`log` of every transfer.

    Attributes
    ----------
    violations : list of Violation
    transfers : dict
        Transfers seen per channel (``"aw"``, ``"w"``, ``"b"``, ``"ar"``, ``"r"``).
    log : list or None
        With ``record``: ``(cycle, channel, fields)`` of each transfer, ``fields`` a
        :class:`dict` of the payload's integer fields.
    cycle : int
        Active clock edges sampled.
    """
    def __init__(self, port, *, name="axi4", record=False):
        self.bytes_per_beat = port.signature.data_width // 8
        super().__init__(port, name=name, record=record)

    def _reset(self):
        self._aw_waiting_w = collections.deque()  # (id, beats) in AW order, data incomplete
        self._w_early = collections.deque()       # beat counts of W bursts ahead of their AW
        self._w_beats = 0                         # beats of the W burst in progress
        self._b_allowed = collections.Counter()   # id -> writes ready for their B
        self._reads = collections.defaultdict(collections.deque)   # id -> [beats, seen]

    def _unfinished(self):
        for id, count in self._b_allowed.items():
            if count:
                yield "b", f"{count} write(s) with ID {id} await B"
        for id, _ in self._aw_waiting_w:
            yield "w", f"write with ID {id} awaits data"
        for id, reads in self._reads.items():
            if reads:
                yield "r", f"{len(reads)} read(s) with ID {id} await data"

    def _check_address(self, channel, a):
        nbytes = 1 << a["size"]
        beats = a["len"] + 1
        if nbytes > self.bytes_per_beat:
            self._violation(channel, "size", f"size {nbytes} bytes is wider than the "
                                             f"{self.bytes_per_beat}-byte bus")
        if a["burst"] not in (Burst.FIXED.value, Burst.INCR.value, Burst.WRAP.value):
            self._violation(channel, "burst-type", f"reserved burst type {a['burst']:#b}")
        elif a["burst"] == Burst.FIXED.value and beats > 16:
            self._violation(channel, "burst-length", f"FIXED burst of {beats} beats (max 16)")
        elif a["burst"] == Burst.WRAP.value:
            if beats not in (2, 4, 8, 16):
                self._violation(channel, "burst-length",
                                f"WRAP burst of {beats} beats (must be 2, 4, 8 or 16)")
            if a["addr"] % nbytes:
                self._violation(channel, "wrap-alignment", f"WRAP burst at {a['addr']:#x} is "
                                                           f"not aligned to {nbytes} bytes")
        elif a["burst"] == Burst.INCR.value:
            last = (a["addr"] & ~(nbytes - 1)) + beats * nbytes - 1
            if a["addr"] // BOUNDARY != last // BOUNDARY:
                self._violation(channel, "4k-boundary",
                                f"INCR burst {a['addr']:#x}..{last:#x} crosses a 4 KiB boundary")

    def _on_aw(self, a):
        self._check_address("aw", a)
        beats = a["len"] + 1
        if self._w_early:
            seen = self._w_early.popleft()
            if seen != beats:
                self._violation("w", "wlast", f"W burst of {seen} beats led an AW with "
                                              f"AWLEN+1={beats} (ID {a['id']})")
            self._b_allowed[a["id"]] += 1
        else:
            if not self._aw_waiting_w and self._w_beats >= beats:
                self._violation("w", "wlast", f"{self._w_beats} W beats without WLAST led an "
                                              f"AW with AWLEN+1={beats}")
            self._aw_waiting_w.append((a["id"], beats))

    def _on_w(self, w):
        self._w_beats += 1
        if self._aw_waiting_w:
            id, beats = self._aw_waiting_w[0]
            if w["last"] and self._w_beats != beats:
                self._violation("w", "wlast", f"WLAST on beat {self._w_beats} of {beats} "
                                              f"(ID {id})")
            elif not w["last"] and self._w_beats == beats:
                self._violation("w", "wlast", f"no WLAST on beat {beats} of {beats} (ID {id})")
            if w["last"] or self._w_beats == beats:
                self._aw_waiting_w.popleft()
                self._b_allowed[id] += 1
                self._w_beats = 0
        elif w["last"]:
            self._w_early.append(self._w_beats)
            self._w_beats = 0

    def _on_b(self, b):
        if b["resp"] == Resp.EXOKAY.value:
            self._violation("b", "exokay", f"EXOKAY for ID {b['id']} without exclusive access")
        if self._b_allowed[b["id"]]:
            self._b_allowed[b["id"]] -= 1
        elif any(id == b["id"] for id, _ in self._aw_waiting_w):
            self._violation("b", "b-unexpected", f"B for ID {b['id']} before its last W beat")
        else:
            self._violation("b", "b-unexpected", f"B for ID {b['id']} with no write outstanding")

    def _on_ar(self, a):
        self._check_address("ar", a)
        self._reads[a["id"]].append([a["len"] + 1, 0])

    def _on_r(self, r):
        if r["resp"] == Resp.EXOKAY.value:
            self._violation("r", "exokay", f"EXOKAY for ID {r['id']} without exclusive access")
        reads = self._reads.get(r["id"])
        if not reads:
            self._violation("r", "r-unexpected", f"R beat for ID {r['id']} with no read "
                                                 f"outstanding")
            return
        read = reads[0]
        read[1] += 1
        beats, seen = read
        if r["last"] and seen != beats:
            self._violation("r", "rlast", f"RLAST on beat {seen} of {beats} (ID {r['id']})")
        elif not r["last"] and seen == beats:
            self._violation("r", "rlast", f"no RLAST on beat {beats} of {beats} (ID {r['id']})")
        if r["last"] or seen == beats:
            reads.popleft()


class AXI4LiteChecker(_Checker):
    """AXI4-Lite protocol checker: VALID/payload stability, and no B or R response without
    a request (for B, both its address and data) accepted in an earlier cycle.

    Parameters and attributes are those of :class:`AXI4Checker`.
    """
    def __init__(self, port, *, name="axi4-lite", record=False):
        super().__init__(port, name=name, record=record)

    def _reset(self):
        self._addresses = self._data = self._writes = self._reads = 0

    def _unfinished(self):
        if self._writes or self._addresses or self._data:
            yield "b", "write outstanding"
        if self._reads:
            yield "r", f"{self._reads} read(s) outstanding"

    def _on_aw(self, a):
        self._addresses += 1
        self._pair_write()

    def _on_w(self, w):
        self._data += 1
        self._pair_write()

    def _pair_write(self):
        paired = min(self._addresses, self._data)
        self._addresses -= paired
        self._data -= paired
        self._writes += paired

    def _on_b(self, b):
        if b["resp"] == Resp.EXOKAY.value:
            self._violation("b", "exokay", "EXOKAY without exclusive access")
        if self._writes:
            self._writes -= 1
        else:
            self._violation("b", "b-unexpected", "B with no complete write outstanding")

    def _on_ar(self, a):
        self._reads += 1

    def _on_r(self, r):
        if r["resp"] == Resp.EXOKAY.value:
            self._violation("r", "exokay", "EXOKAY without exclusive access")
        if self._reads:
            self._reads -= 1
        else:
            self._violation("r", "r-unexpected", "R with no read outstanding")
