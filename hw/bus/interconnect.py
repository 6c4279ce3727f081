"""AXI4 interconnect: several managers to several subordinate address windows.

Per direction (reads and writes are fully independent)::

    manager i ──AR/AW──▶ s1 register (+ decoded target) ──▶ round-robin per target ──▶ subordinate
    manager i ◀──R/B──── round-robin per manager, by the ID prefix ◀───────────────── subordinate

* Subordinate-side IDs are the manager's ID with the manager index above it, so responses
  find their way back and IDs of different managers never collide.
* Ordering: a manager's request is held in s1 while requests with the same ID and direction
  are outstanding to another target, so same-ID responses come back in order. Each manager
  has at most ``max_outstanding`` requests outstanding per direction.
* Write data follows AW order: each manager has a queue of the targets of its accepted AWs,
  each target a queue of the managers whose AWs it accepted; a W beat passes when both
  queue heads agree. W data is accepted only once its AW has been (a manager may present W
  first, and must not wait for WREADY before presenting AW, as AXI requires).
* A read burst from one target is not interleaved with a burst from another target on the
  manager's R channel: the R arbiter holds its grant until RLAST. Beats of different IDs
  from one target pass as that target interleaves them.
* An address in no window goes to an internal subordinate answering DECERR (one R beat per
  requested beat, RLAST on the last; one B after the last W beat).

Latency (measured in tests/hw/bus/test_interconnect.py): AR and AW take one cycle more than a wire
(the s1 register), and one more when the target's grant is with another manager: each
target's round-robin grant is a register, chosen a cycle ahead from the requests waiting in
s1, and a request's ordering check is registered as it enters s1, so no manager's request
reaches another manager's ready (that loop limited the clock). A manager's AR and AW ready
are registers too: a request arriving while s1's waits is held in a skid register beside s1
and enters it, checked, as s1's leaves, so a stalled target costs no bubble. A manager
streaming to a target keeps its grant and pays no extra cycle. R and B are combinational
while a manager's grant is on the target that answers: each manager's grant is a register,
chosen a cycle ahead among the targets with a response for it, so a response from a target
other than the one last granted waits a cycle (in practice, the first response from memory
after a decode error). A subordinate's R and B ready are registers: a response its manager
does not take when offered waits in a skid register, so no ready waits on a response, nor
on the ID that routes it (undefined while valid is low, as AXI allows). W beats are
combinational once their AW has reached the subordinate and its place in the W order is at
the head of the (buffered) routing queues, so a write presenting AW and W together sees its
first W beat three cycles later than on a wire. Responses are counted out of the outstanding
tables a cycle after they pass. One beat per cycle on every channel; back-to-back bursts of
one manager stream without bubbles (given ``max_outstanding`` covers the subordinate's
latency).
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import fifo, wiring
from amaranth.lib.wiring import In, Out, connect, flipped
from amaranth.utils import ceil_log2

from .axi import AXI4Signature, Resp
from .skid import StreamSkid
from ..one_hot import one_hot_fsm

__all__ = ["Window", "DecodeErrorSubordinate", "Interconnect"]

_ADDR_FIELDS = ("addr", "len", "size", "burst", "prot", "sid")


class Window:
    """An address window of the interconnect: ``size`` bytes at ``base``, named ``name``."""
    def __init__(self, name, base, size):
        if not isinstance(name, str):
            raise TypeError(f"Window name must be a string, not {name!r}")
        for what, value in (("base", base), ("size", size)):
            if not isinstance(value, int) or value < 0 or value % 4096:
                raise ValueError(f"Window {name!r} {what} must be a non-negative multiple of "
                                 f"4096, not {value!r}")
        if size == 0:
            raise ValueError(f"Window {name!r} is empty")
        self.name, self.base, self.size = name, base, size

    @classmethod
    def cast(cls, obj):
        """A :class:`Window` from a window, a ``(name, base, size)`` tuple, or any object
        with ``name``, ``base`` and ``size`` attributes (such as a DDR ``Bank``)."""
        if isinstance(obj, cls):
            return obj
        if isinstance(obj, tuple) and len(obj) == 3:
            return cls(*obj)
        if all(hasattr(obj, attr) for attr in ("name", "base", "size")):
            return cls(obj.name, obj.base, obj.size)
        raise TypeError(f"Window must be a (name, base, size) tuple or have name, base and "
                        f"size attributes, not {obj!r}")

    @property
    def end(self):
        return self.base + self.size

    def __repr__(self):
        return f"Window({self.name!r}, {self.base:#x}, {self.size:#x})"


class DecodeErrorSubordinate(wiring.Component):
    """The default subordinate: answers every transaction with DECERR.

    One read and one write at a time: a read gets ``ARLEN + 1`` beats, the last with RLAST;
    a write gets one B after its W beat with WLAST.

    Parameters
    ----------
    signature : AXI4Signature
        Signature of the bus, from the manager's side.

    Members
    -------
    bus : ``In(signature)``
    """
    def __init__(self, signature):
        if not isinstance(signature, AXI4Signature):
            raise TypeError(f"Signature must be an AXI4Signature, not {signature!r}")
        super().__init__({"bus": In(signature)})

    def elaborate(self, platform):
        m = Module()
        bus = self.bus

        r_id = Signal.like(bus.r.payload.id)
        r_beats_left = Signal(8)
        m.d.comb += [
            bus.r.payload.id.eq(r_id),
            bus.r.payload.resp.eq(Resp.DECERR),
            bus.r.payload.last.eq(r_beats_left == 0),
        ]
        with one_hot_fsm(m, name="read"):
            with m.State("IDLE"):
                m.d.comb += bus.ar.ready.eq(1)
                with m.If(bus.ar.valid):
                    m.d.sync += [r_id.eq(bus.ar.payload.id), r_beats_left.eq(bus.ar.payload.len)]
                    m.next = "DATA"
            with m.State("DATA"):
                m.d.comb += bus.r.valid.eq(1)
                with m.If(bus.r.ready):
                    m.d.sync += r_beats_left.eq(r_beats_left - 1)
                    with m.If(bus.r.payload.last):
                        m.next = "IDLE"

        b_id = Signal.like(bus.b.payload.id)
        m.d.comb += [bus.b.payload.id.eq(b_id), bus.b.payload.resp.eq(Resp.DECERR)]
        with one_hot_fsm(m, name="write"):
            with m.State("IDLE"):
                m.d.comb += bus.aw.ready.eq(1)
                with m.If(bus.aw.valid):
                    m.d.sync += b_id.eq(bus.aw.payload.id)
                    m.next = "DATA"
            with m.State("DATA"):
                m.d.comb += bus.w.ready.eq(1)
                with m.If(bus.w.valid & bus.w.payload.last):
                    m.next = "RESPONSE"
            with m.State("RESPONSE"):
                m.d.comb += bus.b.valid.eq(1)
                with m.If(bus.b.ready):
                    m.next = "IDLE"
        return m


def _at_least(value, bound):
    """Whether the unsigned ``value`` is at least the constant ``bound``, as gates rather than
    a subtraction: yosys maps a compare to a carry chain, which the LUTs around it cannot
    absorb and which the placer must put in a column of its own. Taken from the least
    significant bit up, ``value >= bound`` holds on bit ``i`` if ``value[i]`` beats
    ``bound[i]``, or ties it and the bits below hold; a window's 4 KiB alignment leaves its
    low bits out."""
    if bound >= 1 << len(value):
        return Const(0)
    holds = None                    # the bits below hold (None: no bit yet, so they do)
    for i, bit in enumerate(value):
        if (bound >> i) & 1:
            holds = bit if holds is None else bit & holds
        elif holds is not None:
            holds = bit | holds
    return Const(1) if holds is None else holds


def _registered_round_robin(m, name, requests, *, hold):
    """A round-robin grant among ``requests``, as a register: in each cycle the grant for the
    next one is chosen, starting after the current grant, unless ``hold``; it stays where it
    is while none requests. So a grant never depends on this cycle's requests; a request
    arriving to a grant elsewhere waits one cycle, one of the granted requester streams on."""
    grant = Signal(range(max(len(requests), 2)), name=f"{name}_grant")
    with m.If(~hold):
        with m.Switch(grant):
            for last in range(len(requests)):
                with m.Case(last):
                    order = [(last + k) % len(requests) for k in range(1, len(requests) + 1)]
                    with m.If(requests[order[0]]):
                        m.d.sync += grant.eq(order[0])
                    for candidate in order[1:]:
                        with m.Elif(requests[candidate]):
                            m.d.sync += grant.eq(candidate)
    return grant


def _hold_grant(m, locked, valid, ready, last=None):
    """Keep an arbiter's grant while a transfer is presented but not accepted, and (with
    ``last``) until the last beat of a burst."""
    with m.If(valid & ready):
        m.d.sync += locked.eq(0 if last is None else ~last)
    with m.Elif(valid):
        m.d.sync += locked.eq(1)


class _OutstandingTable:
    """Count and target of a manager's outstanding requests in one direction, per ID.

    A manager has at most ``max_outstanding`` requests outstanding, so at most that many IDs:
    the table has that many slots, each an ID with its count and target. A slot is live while
    its count is not zero; no two live slots hold the same ID. Issuing an ID with no live slot
    takes the first free one (there is one: the issue is within bounds).

    An issue is counted in its slot a cycle late, from a register (``pending``), so that the
    targets' ready never reaches the slots' enables; :meth:`allows` counts the pending issue
    as if it were in the table, so its answers are those of a table updated at once.
    """
    def __init__(self, m, name, *, id_width, n_targets, max_outstanding):
        self.ids = [Signal(id_width, name=f"{name}_slot{i}_id")
                    for i in range(max_outstanding)]
        self.counts = [Signal(range(max_outstanding + 1), name=f"{name}_slot{i}_count")
                       for i in range(max_outstanding)]
        self.targets = [Signal(range(max(n_targets, 2)), name=f"{name}_slot{i}_target")
                        for i in range(max_outstanding)]
        self.total = Signal(range(max_outstanding + 1), name=f"{name}_total")
        self.pending        = Signal(name=f"{name}_pending")
        self.pending_id     = Signal(id_width, name=f"{name}_pending_id")
        self.pending_target = Signal.like(self.targets[0], name=f"{name}_pending_target")
        self.max_outstanding = max_outstanding
        self.n_targets = n_targets
        # A module of its own: the built-in simulator then re-evaluates the lookups only when
        # their own inputs move, not with every signal of the interconnect.
        self._m = m.submodules[f"{name}_table"] = Module()
        self._name = name

    def lookup(self, id, name):
        """The live slots holding ``id`` (at most one bit set), as a signal called ``name``:
        look an ID up once, and pass the result to :meth:`allows`."""
        hits = Signal(self.max_outstanding, name=f"{self._name}_{name}_hits")
        self._m.d.comb += hits.eq(Cat((count != 0) & (slot_id == id)
                                      for slot_id, count in zip(self.ids, self.counts)))
        return hits

    def allows(self, hits, id, target, *, issuing=None):
        """Whether a new request with ``id`` (looked up as ``hits``) to ``target`` keeps
        same-ID responses in order and the outstanding count within bounds, counting the
        pending issue and ``issuing``, a ``(valid, id, target)`` issued this cycle.

        The answer is worked out for every target, and with and without the issue, and
        those two are chosen last: they arrive late (the address decode of a request just
        offered, the targets' ready), while the rest starts at registers."""
        def check(candidate, in_flight):
            # Every outstanding request with this ID goes to one target: each must be
            # ``candidate``.
            outstanding_target = 0
            for hit, slot_target in zip(hits, self.targets):
                outstanding_target = outstanding_target | Mux(hit, slot_target, 0)
            same_target = ~hits.any() | (outstanding_target == candidate)
            for valid, other_id, other_target in in_flight:
                same_target = same_target & (~valid | (other_id != id) |
                                             (other_target == candidate))
            in_flight_count = sum(valid for valid, _, _ in in_flight)
            within_bounds = self.total + in_flight_count < self.max_outstanding
            return same_target & within_bounds

        pending = [(self.pending, self.pending_id, self.pending_target)]
        cases = [pending]
        if issuing is not None:
            issuing_valid, issuing_id, issuing_target = issuing
            cases.append([*pending, (Const(1), issuing_id, issuing_target)])
        answers = [Cat(check(candidate, in_flight) for candidate in range(self.n_targets))
                   .bit_select(target, 1) for in_flight in cases]
        return answers[0] if issuing is None else Mux(issuing_valid, answers[1], answers[0])

    def update(self, *, issue, issue_id, issue_target, retire, retire_hits):
        """Count a request issued with ``issue_id`` to ``issue_target`` if ``issue`` (a
        cycle later), and a retirement of the ID looked up as ``retire_hits`` if
        ``retire``."""
        m = self._m
        m.d.sync += [self.pending.eq(issue), self.pending_id.eq(issue_id),
                     self.pending_target.eq(issue_target)]
        issue_hits = self.lookup(self.pending_id, "pending")
        # The slot an issue counts in: the live one with its ID, else the first free one.
        issue_slot = Signal(range(self.max_outstanding), name=f"{self._name}_issue_slot")
        retire_slot = Signal.like(issue_slot, name=f"{self._name}_retire_slot")
        for i, count in reversed(list(enumerate(self.counts))):
            with m.If(count == 0):
                m.d.comb += issue_slot.eq(i)
        for i in range(self.max_outstanding):
            with m.If(issue_hits[i]):
                m.d.comb += issue_slot.eq(i)
            with m.If(retire_hits[i]):
                m.d.comb += retire_slot.eq(i)
        with m.If(self.pending):
            with m.Switch(issue_slot):
                for i in range(self.max_outstanding):
                    with m.Case(i):
                        m.d.sync += [self.ids[i].eq(self.pending_id),
                                     self.targets[i].eq(self.pending_target),
                                     self.counts[i].eq(self.counts[i] + 1)]
        with m.If(retire & retire_hits.any()):
            with m.Switch(retire_slot):
                for i, count in enumerate(self.counts):
                    with m.Case(i):
                        # Written after the issue: it accounts for both in the same slot.
                        m.d.sync += count.eq(count - 1 +
                                             (self.pending & (issue_slot == i)))
        with m.If(self.pending ^ retire):
            m.d.sync += self.total.eq(Mux(self.pending, self.total + 1, self.total - 1))


class Interconnect(wiring.Component):
    """AXI4 interconnect from ``n_managers`` managers to subordinates at address windows.

    Parameters
    ----------
    signature : AXI4Signature
        Signature of the manager ports. The subordinate ports have the same signature with
        ``id_width`` widened by ``ceil_log2(n_managers)`` bits (the manager index, on top).
    n_managers : int
        Number of manager ports.
    windows : list
        One entry per subordinate port: a :class:`Window`, a ``(name, base, size)`` tuple or
        an object with ``name``, ``base`` and ``size`` (such as a DDR bank). Bases and sizes
        are multiples of 4 KiB (no burst may cross one); windows do not overlap.
    max_outstanding : int
        Requests each manager may have outstanding per direction.

    Raises
    ------
    TypeError
        If ``signature`` is not an :class:`AXI4Signature` or a window is malformed.
    ValueError
        If ``n_managers`` or ``max_outstanding`` is not positive, or windows are misaligned,
        overlap, share a name or leave the address space.

    Members
    -------
    managers : ``In(signature).array(n_managers)``
        Manager ports; ``managers[i]`` is where manager ``i`` connects.
    subordinates : ``Out(subordinate_signature).array(len(windows))``
        Subordinate ports, in the order of ``windows``; see also :meth:`subordinate`.
    """
    def __init__(self, signature, n_managers, windows, *, max_outstanding=4):
        if not isinstance(signature, AXI4Signature):
            raise TypeError(f"Signature must be an AXI4Signature, not {signature!r}")
        if not isinstance(n_managers, int) or n_managers < 1:
            raise ValueError(f"Number of managers must be a positive integer, "
                             f"not {n_managers!r}")
        if not isinstance(max_outstanding, int) or max_outstanding < 1:
            raise ValueError(f"max_outstanding must be a positive integer, "
                             f"not {max_outstanding!r}")
        windows = [Window.cast(window) for window in windows]
        if not windows:
            raise ValueError("Need at least one window")
        ordered = sorted(windows, key=lambda window: window.base)
        for lower, upper in zip(ordered, ordered[1:]):
            if lower.end > upper.base:
                raise ValueError(f"Windows {lower!r} and {upper!r} overlap")
        if len({window.name for window in windows}) != len(windows):
            raise ValueError(f"Window names must be unique: {windows!r}")
        for window in windows:
            if window.end > 1 << signature.addr_width:
                raise ValueError(f"Window {window!r} is beyond the {signature.addr_width}-bit "
                                 f"address space")
        self._manager_signature = signature
        self._n_managers = n_managers
        self._max_outstanding = max_outstanding
        self._index_width = ceil_log2(n_managers)
        self._windows = windows
        subordinate_signature = signature.replace(id_width=signature.id_width + self._index_width)
        self._subordinate_signature = subordinate_signature
        super().__init__({
            "managers": In(signature).array(n_managers),
            "subordinates": Out(subordinate_signature).array(len(windows)),
        })

    windows = property(lambda self: list(self._windows))
    n_managers = property(lambda self: self._n_managers)
    max_outstanding = property(lambda self: self._max_outstanding)
    manager_signature = property(lambda self: self._manager_signature)

    subordinate_signature = property(lambda self: self._subordinate_signature)

    def subordinate(self, name):
        """The subordinate port of the window called ``name``."""
        for window, port in zip(self._windows, self.subordinates):
            if window.name == name:
                return port
        raise KeyError(f"No window named {name!r}")

    def elaborate(self, platform):
        m = Module()
        default = m.submodules.decode_error = DecodeErrorSubordinate(self.subordinate_signature)
        targets = list(self.subordinates) + [default.bus]
        self._read_path(m, targets)
        self._write_path(m, targets)
        return m

    # Address channels (AR, AW) --------------------------------------------------------------

    def _decode(self, m, name, addr):
        target = Signal(range(len(self._windows) + 1), name=f"{name}_target")
        m.d.comb += target.eq(len(self._windows))
        for index, window in enumerate(self._windows):
            with m.If(_at_least(addr, window.base) & ~_at_least(addr, window.end)):
                m.d.comb += target.eq(index)
        return target

    def _address_path(self, m, channel, targets, tables):
        """Register each manager's requests on ``channel`` (s1), decode their targets and
        arbitrate them onto the targets; returns, per manager, ``(taken, id, target)`` of the
        request leaving s1 this cycle."""
        n_targets = len(targets)
        stages = []
        for index, manager in enumerate(self.managers):
            bus = getattr(manager, channel)
            name = f"m{index}_{channel}"
            s1_valid = Signal(name=f"{name}_s1_valid")
            s1_payload = Signal.like(bus.payload, name=f"{name}_s1_payload")
            s1_target = Signal(range(n_targets), name=f"{name}_s1_target")
            s1_taken = Signal(name=f"{name}_s1_taken")
            # Whether the ordering and outstanding checks let s1's request go, as of the
            # previous cycle: kept off the arbitration paths. It can only be conservative: the
            # table changes by retirements, or by s1's own request, counted when it enters.
            s1_allowed = Signal(name=f"{name}_s1_allowed")
            # A request that arrives while s1 holds one that is not taken waits in the skid
            # register, so the manager's ready is a register, not the target's ready.
            skid_valid = Signal(name=f"{name}_skid_valid")
            skid_payload = Signal.like(bus.payload, name=f"{name}_skid_payload")
            skid_target = Signal.like(s1_target, name=f"{name}_skid_target")
            in_target = self._decode(m, name, bus.payload.addr)
            in_hits = tables[index].lookup(bus.payload.id, f"{channel}_in")
            s1_hits = tables[index].lookup(s1_payload.id, f"{channel}_s1")
            skid_hits = tables[index].lookup(skid_payload.id, f"{channel}_skid")

            def enter_s1(payload, target, hits):
                # A request enters s1 only when s1 is empty or its request is taken, so s1's
                # own valid (a register) says whether one is issuing: the targets' ready
                # reaches s1's enable alone.
                return [s1_valid.eq(1), s1_payload.eq(payload), s1_target.eq(target),
                        s1_allowed.eq(tables[index].allows(
                            hits, payload.id, target,
                            issuing=(s1_valid, s1_payload.id, s1_target)))]

            m.d.comb += bus.ready.eq(~skid_valid)
            with m.If(~s1_valid | s1_taken):
                # s1 takes the skid register's request, else the manager's, whether or not
                # there is one: its enable waits on the targets alone, not on the manager.
                with m.If(skid_valid):
                    m.d.sync += [*enter_s1(skid_payload, skid_target, skid_hits),
                                 skid_valid.eq(0)]
                with m.Else():
                    m.d.sync += [*enter_s1(bus.payload, in_target, in_hits),
                                 s1_valid.eq(bus.valid)]
            with m.Else():
                # Once allowed, a waiting request stays allowed: only retirements change the
                # table meanwhile. (Rechecking only a refused one keeps simulation fast.)
                with m.If(~s1_allowed):
                    m.d.sync += s1_allowed.eq(
                        tables[index].allows(s1_hits, s1_payload.id, s1_target))
                with m.If(bus.valid & ~skid_valid):
                    m.d.sync += skid_valid.eq(1)
            # The skid register takes the manager's request whenever it is empty, so that its
            # enable is a register rather than the targets' ready.
            with m.If(~skid_valid):
                m.d.sync += [skid_payload.eq(bus.payload), skid_target.eq(in_target)]
            requests = [s1_valid & s1_allowed & (s1_target == target)
                        for target in range(n_targets)]
            stages.append((s1_payload, s1_target, s1_taken, requests))

        taken = [[] for _ in stages]
        for target, subordinate in enumerate(targets):
            bus = getattr(subordinate, channel)
            name = f"t{target}_{channel}"
            grant = _registered_round_robin(m, name, [stage[3][target] for stage in stages],
                                            hold=bus.valid & ~bus.ready)
            with m.Switch(grant):
                for index, (s1_payload, _, _, requests) in enumerate(stages):
                    with m.Case(index):
                        m.d.comb += bus.valid.eq(requests[target])
                        m.d.comb += [getattr(bus.payload, field).eq(getattr(s1_payload, field))
                                     for field in _ADDR_FIELDS]
                        m.d.comb += bus.payload.id.eq(
                            Cat(s1_payload.id, Const(index, self._index_width)))
            for index, (_, _, _, requests) in enumerate(stages):
                taken[index].append((grant == index) & requests[target] & bus.ready)
        for (_, _, s1_taken, _), takers in zip(stages, taken):
            m.d.comb += s1_taken.eq(Cat(*takers).any())
        return [(s1_taken, s1_payload.id, s1_target)
                for s1_payload, s1_target, s1_taken, _ in stages]

    # Response channels (R, B) ---------------------------------------------------------------

    def _response_path(self, m, channel, targets, fields):
        """Route responses on ``channel`` from the targets back to the managers by the ID
        prefix, one burst at a time per manager; returns, per manager, ``(transfer, last)``.

        Each manager's grant is a register, chosen a cycle ahead among the targets that have
        a response for it. So which response a manager takes depends on the targets' own
        responses and on registers (the grants, the managers' ready), never on another
        target's: the managers sit far apart on a chip, and no path goes from a target to a
        manager's arbiter and back. A grant stays on a target while it answers, so a stream
        of responses from one target never waits; a response from another target waits one
        cycle for the grant.

        A subordinate's ready must not depend on the ID that routes its response, as the ID
        may be undefined while valid is low (AXI allows it): each subordinate's responses pass
        a :class:`StreamSkid`, whose ready is a register, at no cost in latency. (The
        decode-error subordinate's responses come from registers.)
        """
        id_width = self._manager_signature.id_width
        sources = [getattr(subordinate, channel) for subordinate in targets]
        for target, source in enumerate(sources[:len(self._windows)]):
            skid = m.submodules[f"t{target}_{channel}_skid"] = StreamSkid(source.payload.shape())
            connect(m, flipped(source), skid.upstream)
            sources[target] = skid.downstream
        taken = [[] for _ in targets]
        results = []
        for index, manager in enumerate(self.managers):
            bus = getattr(manager, channel)
            name = f"m{index}_{channel}"
            requests = [source.valid & (source.payload.id[id_width:] == index)
                        for source in sources]
            last = bus.payload.last if channel == "r" else None
            # Within a burst (``locked``), or while a transfer waits, the grant stays.
            locked = Signal(name=f"{name}_locked")
            ends = bus.valid & bus.ready & (1 if last is None else last)
            grant = _registered_round_robin(m, name, requests,
                                            hold=(locked | bus.valid) & ~ends)
            with m.Switch(grant):
                for target, source in enumerate(sources):
                    with m.Case(target):
                        m.d.comb += bus.valid.eq(requests[target])
                        m.d.comb += [getattr(bus.payload, field).eq(getattr(source.payload, field))
                                     for field in fields]
                        m.d.comb += bus.payload.id.eq(source.payload.id[:id_width])
            for target, request in enumerate(requests):
                taken[target].append((grant == target) & request & bus.ready)
            _hold_grant(m, locked, bus.valid, bus.ready, last)
            results.append((bus.valid & bus.ready, last))
        for source, takers in zip(sources, taken):
            m.d.comb += source.ready.eq(Cat(*takers).any())
        return results

    def _tables(self, m, direction, n_targets):
        return [_OutstandingTable(m, f"m{index}_{direction}",
                                  id_width=self._manager_signature.id_width,
                                  n_targets=n_targets, max_outstanding=self._max_outstanding)
                for index in range(self._n_managers)]

    def _read_path(self, m, targets):
        tables = self._tables(m, "read", len(targets))
        issued = self._address_path(m, "ar", targets, tables)
        returned = self._response_path(m, "r", targets, ("data", "resp", "last"))
        for index, (manager, table, (taken, id, target), (transfer, last)) in \
                enumerate(zip(self.managers, tables, issued, returned)):
            retire, retire_id = self._registered_retirement(m, f"m{index}_r", transfer & last,
                                                            manager.r.payload.id)
            table.update(issue=taken, issue_id=id, issue_target=target,
                         retire=retire, retire_hits=table.lookup(retire_id, "r"))

    @staticmethod
    def _registered_retirement(m, name, retire, id):
        """A response that retires a request, counted in the outstanding table a cycle
        later: the response's routing then stays off the table's paths. A count that stays a
        cycle longer only holds a request back, never lets one through too early."""
        registered = Signal(name=f"{name}_retire")
        registered_id = Signal.like(id, name=f"{name}_retire_id")
        m.d.sync += [registered.eq(retire), registered_id.eq(id)]
        return registered, registered_id

    def _write_path(self, m, targets):
        tables = self._tables(m, "write", len(targets))
        issued = self._address_path(m, "aw", targets, tables)
        returned = self._response_path(m, "b", targets, ("resp",))
        for index, (manager, table, (taken, id, target), (transfer, _)) in \
                enumerate(zip(self.managers, tables, issued, returned)):
            retire, retire_id = self._registered_retirement(m, f"m{index}_b", transfer,
                                                            manager.b.payload.id)
            table.update(issue=taken, issue_id=id, issue_target=target,
                         retire=retire, retire_hits=table.lookup(retire_id, "b"))

        # W follows AW order: per manager the targets of its AWs, per target the managers.
        # The queues' heads are registers (buffered FIFOs), so the W routing starts at
        # registers. They are written without looking at `w_rdy`: the outstanding limit
        # bounds the entries, and a buffered FIFO needs one place more than that, as it
        # holds its head outside its memory.
        target_queues = []
        for index, (taken, _, target) in enumerate(issued):
            queue = fifo.SyncFIFOBuffered(width=max(1, ceil_log2(len(targets))),
                                          depth=self._max_outstanding + 1)
            m.submodules[f"m{index}_w_targets"] = queue
            m.d.comb += [queue.w_en.eq(taken), queue.w_data.eq(target)]
            target_queues.append(queue)
        manager_queues = []
        for target_index in range(len(targets)):
            queue = fifo.SyncFIFOBuffered(width=max(1, self._index_width),
                                          depth=self._n_managers * self._max_outstanding + 1)
            m.submodules[f"t{target_index}_w_managers"] = queue
            m.d.comb += queue.w_en.eq(Cat(*(taken & (target == target_index)
                                            for taken, _, target in issued)).any())
            with m.Switch(Cat(*(taken & (target == target_index)
                                for taken, _, target in issued))):
                for index in range(self._n_managers):
                    with m.Case(1 << index):
                        m.d.comb += queue.w_data.eq(index)
            manager_queues.append(queue)

        for target_index, (subordinate, queue) in enumerate(zip(targets, manager_queues)):
            w = subordinate.w
            # An empty queue's head is 0, not the memory's read register, which a four-state
            # simulator starts as X (the cases cover every value: no default would catch it).
            with m.Switch(Mux(queue.r_rdy, queue.r_data, 0)):
                for index, (manager, target_queue) in enumerate(zip(self.managers,
                                                                    target_queues)):
                    with m.Case(index):
                        routed = (queue.r_rdy & target_queue.r_rdy &
                                  (target_queue.r_data == target_index))
                        m.d.comb += [w.valid.eq(routed & manager.w.valid),
                                     w.payload.eq(manager.w.payload)]
                        with m.If(routed):
                            m.d.comb += manager.w.ready.eq(w.ready)
            done = w.valid & w.ready & w.payload.last
            m.d.comb += queue.r_en.eq(done)
            for index, target_queue in enumerate(target_queues):
                with m.If(done & (queue.r_data == index)):
                    m.d.comb += target_queue.r_en.eq(1)
