"""Property sets of the SoC's interfaces, for formal proofs: a formal VIP, written once and
attached to any port.

A property set watches one port and knows which side of it the block under proof is on
(``role``): the rules that side must keep are asserted (proven), the rules of the other side
are assumed (they constrain the environment, which is otherwise free). The same set on a
manager port proves what a subordinate port of the same set assumes, and the other way round::

    m.submodules.up   = AXI4Properties(dut.upstream,   role="subordinate", name="up")
    m.submodules.down = AXI4Properties(dut.downstream, role="manager",     name="down")

Every rule is a named wire, ``assert__<rule>`` or ``assume__<rule>``, true unless the rule is
broken in that cycle, and every cover point a wire ``cover__<name>``; the runner finds in a
counterexample's trace which rule failed, and in a cover trace which points were reached.
Past values are registers of the set's own (``past_valid`` is low in the first cycle and in
the cycle after a reset, when no rule about the previous cycle applies).

The AXI4 rules (:class:`AXI4Properties`) are those of the SoC's subset of AXI4 (INCR bursts,
IDs, no exclusive access): VALID held until READY and the payload stable meanwhile, on every
channel; no VALID in the first cycle after a reset; AxBURST INCR, AxSIZE within the bus, no
burst across 4 KiB; WLAST on beat AWLEN + 1 exactly (write data may lead its address); a B
only for a write whose address and last data beat were taken in earlier cycles, an R beat only
for an outstanding read of its ID, RLAST on its last beat; no EXOKAY; at most
``max_reads`` / ``max_writes`` transactions outstanding. Responses are checked in detail for
one ID, ``track_id``, free but constant in a run: a proof holds for every value it may take,
and so for every ID.
"""

from amaranth.hdl import Array, Assert, Assume, Cat, Const, Cover, Elaboratable, Module, Mux
from amaranth.hdl import ResetSignal, Signal, Value
from amaranth.utils import ceil_log2, exact_log2

from ...hw.bus.axi import AXI4LiteSignature, AXI4Signature, BOUNDARY, Burst, Resp
from ...hw.cpu.port import CpuPortSignature
from ...hw.parameters import check_integer

__all__ = ["ROLES", "PropertySet", "AXI4Properties", "AXI4LiteProperties", "CpuPortProperties",
           "rule_kind"]

#: The sides of a port a block under proof can be on.
ROLES = ("manager", "subordinate")

_KINDS = ("assert", "assume", "cover")


def rule_kind(name):
    """``("assert" | "assume" | "cover", rule)`` of a property wire's name, or ``None`` for
    any other wire."""
    kind, sep, rule = name.partition("__")
    return (kind, rule) if sep and kind in _KINDS and rule else None


class _Queue:
    """A FIFO of registers: push and pop in the same cycle, the entries readable at once."""

    def __init__(self, shape, depth, name):
        self.depth = depth
        self.entries = Array(Signal(shape, name=f"{name}{i}") for i in range(depth))
        self.level = Signal(range(depth + 1), name=f"{name}_level")

    @property
    def head(self):
        return self.entries[0]

    def update(self, m, *, push, data, pop):
        level = self.level
        for index in range(self.depth):
            following = self.entries[index + 1] if index + 1 < self.depth else self.entries[index]
            with m.If(push & (level - pop == index)):
                m.d.sync += self.entries[index].eq(data)
            with m.Elif(pop):
                m.d.sync += self.entries[index].eq(following)
        # The rules that bound the outstanding transactions keep the level in range.
        m.d.sync += level.eq(level + push - pop)


class PropertySet(Elaboratable):
    """What every property set shares: the role, the named rules, past values.

    Parameters
    ----------
    port : interface
        The port watched, as the block under proof has it (its members are read, never
        driven).
    role : str
        The block's side of the port: ``"manager"`` or ``"subordinate"``.
    name : str
        Names the set in reports (an identifier; the harness names its submodule so).

    Attributes
    ----------
    rules : dict
        ``{rule: "assert" | "assume"}`` once elaborated.
    covers : list of str
        The cover points, once elaborated.
    free : list of Signal
        Inputs the set leaves free (ports of the proof's top).
    """
    #: The signature class of the ports the set watches.
    port_signature = None

    def __init__(self, port, *, role, name):
        # Refused arguments leave a set that is never used: no warning about it.
        self._MustUse__silence = True
        expected = self.port_signature
        if expected is not None and not isinstance(getattr(port, "signature", None), expected):
            raise TypeError(f"Port must have a {expected.__name__}, not {port!r}")
        if role not in ROLES:
            raise ValueError(f"Role must be one of {', '.join(ROLES)}, not {role!r}")
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(f"Property set name must be an identifier, not {name!r}")
        self.port = port
        self.role = role
        self.name = name
        self.rules = {}
        self.covers = []
        self.free = []
        self.state = {}
        self._constants = []
        self._invariants = []

    def rule(self, m, side, rule, holds, *, when=1):
        """Rule ``rule``, kept by ``side`` (``"manager"`` or ``"subordinate"``): ``holds``
        is true in every cycle ``when`` is. Asserted if ``side`` is the block's role,
        assumed otherwise."""
        kind = "assert" if side == self.role else "assume"
        if rule in self.rules:
            raise ValueError(f"{self.name}: rule {rule!r} given twice")
        self.rules[rule] = kind
        ok = Signal(name=f"{kind}__{rule}")
        m.d.comb += ok.eq(~Value.cast(when) | holds)
        m.d.comb += (Assert if kind == "assert" else Assume)(ok, f"{self.name}: {rule}")

    def add_invariants(self, invariants):
        """Add invariants: ``invariants(self, m)`` returns ``{name: holds}``, each asserted
        in every cycle as rule ``inv_<name>``. They tie the set's own state (``state``:
        its counters and queues, once elaborated) to the block's, so that k-induction can
        close; being asserted, each is proven with the rules. Returns the set."""
        self._invariants.append(invariants)
        return self

    def invariant(self, m, name, holds):
        """Invariant ``name``: ``holds`` in every cycle, asserted whatever the role."""
        rule = f"inv_{name}"
        if rule in self.rules:
            raise ValueError(f"{self.name}: rule {rule!r} given twice")
        self.rules[rule] = "assert"
        ok = Signal(name=f"assert__{rule}")
        m.d.comb += [ok.eq(holds), Assert(ok, f"{self.name}: {rule}")]

    def cover(self, m, name, reached):
        """Cover point ``name``: some run reaches a cycle where ``reached`` is true."""
        if name in self.covers:
            raise ValueError(f"{self.name}: cover {name!r} given twice")
        self.covers.append(name)
        hit = Signal(name=f"cover__{name}")
        m.d.comb += [hit.eq(reached), Cover(hit, f"{self.name}: {name}")]

    def past(self, m, value, name):
        """A register holding ``value`` of the previous cycle."""
        value = Value.cast(value)
        previous = Signal(len(value), name=f"past_{name}")
        m.d.sync += previous.eq(value)
        return previous

    def elaborate(self, platform):
        m = Module()
        self.past_valid = Signal()
        m.d.sync += self.past_valid.eq(1)
        self.reset = ResetSignal("sync")
        for value in self._constants:
            previous = self.past(m, value, value.name)
            m.d.comb += Assume(~self.past_valid | (value == previous),
                               f"{self.name}: {value.name} constant")
        self.build(m)
        for invariants in self._invariants:
            for name, holds in invariants(self, m).items():
                self.invariant(m, name, holds)
        return m

    def build(self, m):
        raise NotImplementedError

    def free_constant(self, shape, name):
        """A value the environment picks, constant from reset to reset (a port of the
        proof's top, held by an assumption made when the set elaborates)."""
        value = Signal(shape, name=name)
        if len(value):
            self.free.append(value)
        self._constants.append(value)
        return value

    def handshake(self, m, channel, source, label):
        """The stream rules of ``channel`` (named ``label``) driven by ``source``; its
        handshake."""
        valid, ready = channel.valid, channel.ready
        payload = Value.cast(channel.payload)
        was_waiting = self.past(m, valid & ~ready, f"{label}_waiting")
        was_payload = self.past(m, payload, f"{label}_payload")
        held = self.past_valid & was_waiting
        self.rule(m, source, f"{label}_valid_held", valid, when=held)
        if len(payload):
            self.rule(m, source, f"{label}_payload_stable", payload == was_payload, when=held)
        self.rule(m, source, f"{label}_reset", ~valid, when=~self.past_valid)
        return valid & ready


class AXI4Properties(PropertySet):
    """The AXI4 rules (see the module's documentation) on one port.

    Parameters
    ----------
    port : interface of :class:`~dmabuf_soc.hw.bus.axi.AXI4Signature`
    role, name : see :class:`PropertySet`
    max_reads, max_writes : int
        Transactions outstanding at most, per direction, all IDs together (1 to 16).
    max_len : int
        Longest burst the manager issues, as AxLEN (0 to 255).
    max_id_bits : int
        IDs up to this width are tracked each; wider ones through ``track_id``.
    max_w_leading : int or None
        W bursts complete ahead of their AW at most (``max_writes`` if ``None``): a bound
        of the model, not of AXI.
    """
    port_signature = AXI4Signature

    def __init__(self, port, *, role, name, max_reads=2, max_writes=2, max_len=255,
                 max_id_bits=2, max_w_leading=None):
        super().__init__(port, role=role, name=name)
        check_integer("Reads outstanding", max_reads, minimum=1, maximum=16)
        check_integer("Writes outstanding", max_writes, minimum=1, maximum=16)
        check_integer("Longest AxLEN", max_len, minimum=0, maximum=255)
        max_w_leading = max_writes if max_w_leading is None else max_w_leading
        check_integer("W bursts ahead of their AW", max_w_leading, minimum=1, maximum=16)
        check_integer("Tracked ID width", max_id_bits, minimum=0, maximum=4)
        self.max_reads = max_reads
        self.max_writes = max_writes
        self.max_len = max_len
        self.max_w_leading = max_w_leading
        id_width = port.signature.id_width
        if id_width <= max_id_bits:
            self.ids = [Const(ident, id_width) for ident in range(1 << id_width)]
        else:
            self.ids = [self.free_constant(id_width, "track_id")]

    def address_rules(self, m, channel, label):
        bus = self.port.signature
        payload = channel.payload
        start = (payload.addr[:exact_log2(BOUNDARY)] >> payload.size) << payload.size
        end = start + ((payload.len + 1) << payload.size)
        valid = channel.valid
        self.rule(m, "manager", f"{label}_burst", payload.burst == Burst.INCR, when=valid)
        self.rule(m, "manager", f"{label}_size",
                  payload.size <= exact_log2(bus.bytes_per_beat), when=valid)
        self.rule(m, "manager", f"{label}_len", payload.len <= self.max_len, when=valid)
        self.rule(m, "manager", f"{label}_4k", end <= BOUNDARY, when=valid)
        self.cover(m, f"{label}_ends_at_4k",
                   valid & channel.ready & (end == BOUNDARY) & (payload.len != 0))

    def build(self, m):
        port = self.port
        sig = port.signature
        id_shape = sig.id_width
        aw_hs = self.handshake(m, port.aw, "manager", "aw")
        w_hs = self.handshake(m, port.w, "manager", "w")
        b_hs = self.handshake(m, port.b, "subordinate", "b")
        ar_hs = self.handshake(m, port.ar, "manager", "ar")
        r_hs = self.handshake(m, port.r, "subordinate", "r")
        self.address_rules(m, port.aw, "aw")
        self.address_rules(m, port.ar, "ar")

        # Outstanding counts, all IDs.
        reads = Signal(range(self.max_reads + 2))
        writes = Signal(range(self.max_writes + 2))
        m.d.sync += [reads.eq(reads + ar_hs - (r_hs & port.r.payload.last)),
                     writes.eq(writes + aw_hs - b_hs)]
        self.rule(m, "manager", "reads_outstanding", reads <= self.max_reads)
        self.rule(m, "manager", "writes_outstanding", writes <= self.max_writes)
        self.rule(m, "subordinate", "r_without_read", reads != 0, when=port.r.valid)
        self.rule(m, "subordinate", "b_without_write", writes != 0, when=port.b.valid)
        self.rule(m, "subordinate", "r_exokay", port.r.payload.resp != Resp.EXOKAY,
                  when=port.r.valid)
        self.rule(m, "subordinate", "b_exokay", port.b.payload.resp != Resp.EXOKAY,
                  when=port.b.valid)

        # Write data against the addresses: W bursts and AWs are paired in order.
        aws = _Queue(id_shape + 8, self.max_writes, "aw_queue")
        bursts = _Queue(9, self.max_w_leading + 1, "w_bursts")
        beat = Signal(8)                      # beats of the W burst under way
        matched = (aws.level != 0) & (bursts.level != 0)
        head_len = aws.head[id_shape:]
        head_id = aws.head[:id_shape]
        self.rule(m, "manager", "w_beats", bursts.head == head_len + 1, when=matched)
        # The address of the W burst under way: the AW paired with it, queued, or offered
        # now if every queued AW has its burst (an offered AW is the next one taken).
        queued = aws.level > bursts.level
        known = queued | (port.aw.valid & (aws.level == bursts.level))
        known_len = Mux(queued, aws.entries[bursts.level][id_shape:], port.aw.payload.len)
        w_last = port.w.payload.last
        self.rule(m, "manager", "wlast", w_last == (beat == known_len),
                  when=port.w.valid & known)
        self.rule(m, "manager", "w_overrun", beat <= known_len, when=known)
        self.rule(m, "manager", "w_burst_length", w_last | (beat != 255), when=port.w.valid)
        self.rule(m, "manager", "w_leading", bursts.level - matched < self.max_w_leading,
                  when=port.w.valid & ~known)
        aws.update(m, push=aw_hs, data=Cat(port.aw.payload.id, port.aw.payload.len), pop=matched)
        bursts.update(m, push=w_hs & w_last, data=beat + 1, pop=matched)
        with m.If(w_hs):
            m.d.sync += beat.eq(Mux(w_last, 0, beat + 1))

        # Per ID (each, or the one tracked): a B only for a write whose address and data
        # were both taken; R beats in order, RLAST on the last beat of the oldest read.
        r_last = port.r.payload.last
        b_ok, r_ok, rlast_ok, read_burst, full_read = [], [], [], [], []
        owed_counts, read_queues, r_beats = [], [], []
        for index, ident in enumerate(self.ids):
            owed = Signal(range(self.max_writes + 2), name=f"owed{index}")
            available = owed + (matched & (head_id == ident))
            b_of_id = port.b.payload.id == ident
            b_ok.append(~b_of_id | (available != 0))
            m.d.sync += owed.eq(available - (b_hs & b_of_id))
            owed_counts.append(owed)

            reads_of_id = _Queue(8, self.max_reads, f"ar_queue{index}_")
            r_beat = Signal(8, name=f"r_beat{index}")
            read_queues.append(reads_of_id)
            r_beats.append(r_beat)
            r_of_id = port.r.payload.id == ident
            r_ok.append(~r_of_id | (reads_of_id.level != 0))
            rlast_ok.append(~r_of_id | (reads_of_id.level == 0) |
                            (r_last == (r_beat == reads_of_id.head)))
            read_burst.append(r_hs & r_of_id & r_last & (r_beat != 0))
            full_read.append(r_hs & r_of_id & r_last & (r_beat == self.max_len))
            reads_of_id.update(m, push=ar_hs & (port.ar.payload.id == ident),
                               data=port.ar.payload.len, pop=r_hs & r_of_id & r_last)
            with m.If(r_hs & r_of_id):
                m.d.sync += r_beat.eq(Mux(r_last, 0, r_beat + 1))
        self.state = {"reads": reads, "writes": writes, "aws": aws, "bursts": bursts,
                      "beat": beat, "matched": matched, "owed": owed_counts,
                      "read_queues": read_queues, "r_beats": r_beats}
        self.rule(m, "subordinate", "b_unexpected", Cat(*b_ok).all(), when=port.b.valid)
        self.rule(m, "subordinate", "r_unexpected", Cat(*r_ok).all(), when=port.r.valid)
        self.rule(m, "subordinate", "rlast", Cat(*rlast_ok).all(), when=port.r.valid)

        self.cover(m, "write_burst", w_hs & w_last & (beat != 0))
        self.cover(m, "write_response", b_hs)
        self.cover(m, "read_burst", Cat(*read_burst).any())
        self.cover(m, "full_burst", (w_hs & w_last & (beat == self.max_len)) |
                                    Cat(*full_read).any())
        self.cover(m, "error_response", (b_hs & Value.cast(port.b.payload.resp)[1]) |
                                        (r_hs & Value.cast(port.r.payload.resp)[1]))
        self.cover(m, "reset_mid_burst", self.reset & ((reads != 0) | (writes != 0)))


class _AccessSet(PropertySet):
    """A set that bounds the accesses outstanding, ``max_outstanding`` (1 to 8; by default
    ``default_outstanding``)."""
    default_outstanding = 1

    def __init__(self, port, *, role, name, max_outstanding=None):
        super().__init__(port, role=role, name=name)
        if max_outstanding is None:
            max_outstanding = self.default_outstanding
        check_integer("Accesses outstanding", max_outstanding, minimum=1, maximum=8)
        self.max_outstanding = max_outstanding


class AXI4LiteProperties(_AccessSet):
    """The AXI4-Lite rules on one port: the stream rules of every channel, a B only after
    both the AW and the W of a write, an R only after an AR, no EXOKAY, at most
    ``max_outstanding`` accesses per direction.

    Parameters
    ----------
    port : interface of :class:`~dmabuf_soc.hw.bus.axi.AXI4LiteSignature`
    role, name : see :class:`PropertySet`
    max_outstanding : int or None
        1 to 8 (2 for AXI4-Lite, 1 for the CPU port by default).
    """
    port_signature = AXI4LiteSignature
    default_outstanding = 2

    def build(self, m):
        port = self.port
        hs = {name: self.handshake(m, getattr(port, name),
                                   "subordinate" if name in ("b", "r") else "manager", name)
              for name in ("aw", "w", "b", "ar", "r")}
        limit = self.max_outstanding
        counts = {}
        for name, done in (("aw", "b"), ("w", "b"), ("ar", "r")):
            count = counts[name] = Signal(range(limit + 2), name=f"{name}_pending")
            m.d.sync += count.eq(count + hs[name] - hs[done])
            self.rule(m, "manager", f"{name}_outstanding", count <= limit)
        self.state = dict(counts)
        self.rule(m, "subordinate", "b_unexpected", (counts["aw"] != 0) & (counts["w"] != 0),
                  when=port.b.valid)
        self.rule(m, "subordinate", "r_unexpected", counts["ar"] != 0, when=port.r.valid)
        for name in ("b", "r"):
            self.rule(m, "subordinate", f"{name}_exokay",
                      getattr(port, name).payload.resp != Resp.EXOKAY,
                      when=getattr(port, name).valid)
        self.cover(m, "write", hs["b"])
        self.cover(m, "read", hs["r"])
        self.cover(m, "error_response", (hs["b"] & Value.cast(port.b.payload.resp)[1]) |
                                        (hs["r"] & Value.cast(port.r.payload.resp)[1]))
        self.cover(m, "reset_mid_access", self.reset &
                   ((counts["aw"] != 0) | (counts["w"] != 0) | (counts["ar"] != 0)))


class CpuPortProperties(_AccessSet):
    """The CPU port's rules: the stream rules of ``req`` and ``rsp``, requests aligned to
    the port width, a response only for an outstanding request, at most ``max_outstanding``
    outstanding. The CPU is the manager, the cache (or bridge) the subordinate.

    Parameters
    ----------
    port : interface of :class:`~dmabuf_soc.hw.cpu.port.CpuPortSignature`
    role, name : see :class:`PropertySet`
    max_outstanding : int or None
        1 to 8 (2 for AXI4-Lite, 1 for the CPU port by default).
    """
    port_signature = CpuPortSignature

    def build(self, m):
        port = self.port
        req_hs = self.handshake(m, port.req, "manager", "req")
        rsp_hs = self.handshake(m, port.rsp, "subordinate", "rsp")
        pending = Signal(range(self.max_outstanding + 2))
        m.d.sync += pending.eq(pending + req_hs - rsp_hs)
        offset_bits = ceil_log2(port.signature.data_width // 8)
        self.rule(m, "manager", "req_aligned", port.req.payload.addr[:offset_bits] == 0,
                  when=port.req.valid)
        self.rule(m, "manager", "outstanding", pending <= self.max_outstanding)
        self.rule(m, "subordinate", "rsp_unexpected", pending != 0, when=port.rsp.valid)
        self.cover(m, "response", rsp_hs)
        self.cover(m, "store", req_hs & port.req.payload.write)
        self.cover(m, "error_response", rsp_hs & port.rsp.payload.error)
