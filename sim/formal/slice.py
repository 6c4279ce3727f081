"""The invariants that let k-induction close on the AXI4 register slice
(:class:`~dmabuf_soc.hw.bus.register_slice.AXI4RegisterSlice`): the downstream property
set's state, and the upstream set's, are what the slice's registers say they are.

A slice holds at most two transfers per channel, in order. The upstream set counts what
went in, the downstream set what came out; the difference is what the slice holds:

* reads: the upstream set's outstanding reads of an ID are, in order, those whose last R
  beat the slice holds, the downstream set's, and the ARs the slice holds;
* writes: the AWs and the W bursts that are matched upstream but not downstream come
  first in the downstream set's queues (and the AW and W slices) and are the same writes;
  what the upstream set has not matched is what follows. The W beats the slice holds end
  the bursts they belong to where their AW says; the B responses it holds are owed upstream.
"""

from amaranth.hdl import Cat, Mux, Value
from amaranth.lib import data
from amaranth.utils import exact_log2

from ...hw.bus.axi import BOUNDARY, Burst, Resp

__all__ = ["slice_invariants"]


class _Held:
    """The transfers a stream register slice holds: ``count``, and the first and second
    (``items``: ``(present, payload)`` in order)."""
    def __init__(self, inside, name, layout):
        self.held, self.read = inside[f"{name}.held"], inside[f"{name}.read"]
        self.write = inside[f"{name}.write"]
        self.valid, self.ready = inside[f"{name}.valid"], inside[f"{name}.ready"]
        entries = [Value.cast(inside[f"{name}.entry{n}"]) for n in range(2)]
        self.count = self.held[0] + self.held[1]
        first = data.View(layout, Mux(self.read, entries[1], entries[0]))
        second = data.View(layout, Mux(self.read, entries[0], entries[1]))
        self.items = [(self.count >= 1, first), (self.count == 2, second)]

    def structure(self):
        held, read, write = self.held, self.read, self.write
        return (((held == 1) & (read == 0) & (write == 1)) |
                ((held == 2) & (read == 1) & (write == 0)) |
                (((held == 0) | (held == 3)) & (read == write))) & \
            (self.valid == (held != 0)) & (self.ready == (held != 3))


def _positions(items):
    """``(present, position, value)`` of each item of a sequence whose items are each
    present or not: its position among those present."""
    out = []
    before = 0
    for present, value in items:
        out.append((present, before, value))
        before = before + present
    return out, before


def _queue_items(queue):
    return [(queue.level > k, queue.entries[k]) for k in range(queue.depth)]


def _maps(items, queue, drop=0):
    """Each present item at position ``drop`` or later is entry ``position - drop`` of
    ``queue``."""
    checks = []
    placed, _ = _positions(items)
    for present, position, value in placed:
        for k in range(queue.depth):
            checks.append(~present | (position != k + drop) |
                          (queue.entries[k] == value))
    return Cat(*checks).all()


def _legal_address(payload, max_len, bytes_per_beat):
    start = (payload.addr[:exact_log2(BOUNDARY)] >> payload.size) << payload.size
    end = start + ((payload.len + 1) << payload.size)
    return ((payload.burst == Burst.INCR) & (payload.size <= exact_log2(bytes_per_beat)) &
            (payload.len <= max_len) & (end <= BOUNDARY))


def slice_invariants(inside, upstream, downstream):
    """The invariants of a register slice, ``inside`` it, between its ``upstream`` and
    ``downstream`` sets (:class:`~.properties.AXI4Properties`); for ``add_invariants`` of
    the downstream set, which elaborates after the upstream one."""
    def invariants(_, m):
        up, down = upstream.state, downstream.state
        if not up or not down:
            raise RuntimeError("The upstream set must elaborate before the downstream one")
        port = upstream.port
        bytes_per_beat = port.signature.bytes_per_beat
        shapes = {name: getattr(port, name).payload.shape() for name in
                  ("aw", "w", "b", "ar", "r")}
        held = {name: _Held(inside, name, shape) for name, shape in shapes.items()}
        out = {f"{name}_slice": h.structure() for name, h in held.items()}
        ids = range(len(upstream.ids))
        for name in ("aw", "ar"):
            out[f"{name}_legal"] = Cat(~present | _legal_address(payload, upstream.max_len,
                                                                 bytes_per_beat)
                                       for present, payload in held[name].items).all()
        for name in ("b", "r"):
            out[f"{name}_not_exokay"] = Cat(~present | (payload.resp != Resp.EXOKAY)
                                            for present, payload in held[name].items).all()
        for label, state in (("up", up), ("down", down)):
            queues = [state["aws"], state["bursts"], *state["read_queues"]]
            out[f"{label}_levels"] = Cat(q.level <= q.depth for q in queues).all()
            out[f"{label}_reads"] = state["reads"] == sum(q.level for q in state["read_queues"])
            out[f"{label}_writes"] = state["writes"] == state["aws"].level + sum(state["owed"])
            for i in ids:
                queue, beat = state["read_queues"][i], state["r_beats"][i]
                out[f"{label}_r_beat{i}"] = Mux(queue.level == 0, beat == 0,
                                                beat <= queue.head)

        # Reads.
        r_items, ar_items = held["r"].items, held["ar"].items
        lasts = sum(present & payload.last for present, payload in r_items)
        out["reads"] = up["reads"] == down["reads"] + held["ar"].count + lasts
        for i in ids:
            (p1, r1), (p2, r2) = r_items
            of1, of2 = p1 & (r1.id == i), p2 & (r2.id == i)
            last1, last2 = of1 & r1.last, of2 & r2.last
            up_beat = up["r_beats"][i]
            finished = [(last1, up_beat), (last2, Mux(last1, 0, up_beat + of1))]
            items = (finished + [(present, value) for present, value in
                                 _queue_items(down["read_queues"][i])] +
                     [(present & (payload.id == i), payload.len)
                      for present, payload in ar_items])
            _, count = _positions(items)
            out[f"read_level{i}"] = up["read_queues"][i].level == count
            out[f"read_queue{i}"] = _maps(items, up["read_queues"][i])
            out[f"r_beat{i}"] = down["r_beats"][i] == Mux(last2, 0, Mux(last1, of2,
                                                                         up_beat + of1 + of2))

        # Writes: the AWs and W bursts not matched downstream, in order, from the
        # downstream set's queues and the slices.
        aw_items = ([(present, value) for present, value in _queue_items(down["aws"])] +
                    [(present, Cat(payload.id, payload.len))
                     for present, payload in held["aw"].items])
        (w1p, w1), (w2p, w2) = held["w"].items
        w_last1, w_last2 = w1p & w1.last, w2p & w2.last
        d_beat = down["beat"]
        burst_items = ([(present, value) for present, value in _queue_items(down["bursts"])] +
                       [(w_last1, d_beat + 1), (w_last2, Mux(w_last1, 1, d_beat + 2))])
        _, aw_count = _positions(aw_items)
        _, burst_count = _positions(burst_items)
        matched_up = aw_count - up["aws"].level      # matched upstream, not downstream
        out["aw_suffix"] = (aw_count >= up["aws"].level) & \
            _maps(aw_items, up["aws"], drop=matched_up)
        out["burst_suffix"] = (burst_count >= up["bursts"].level) & \
            (burst_count - up["bursts"].level == matched_up) & \
            _maps(burst_items, up["bursts"], drop=matched_up)
        out["up_beat"] = up["beat"] == Mux(w_last2, 0, Mux(w_last1, w2p,
                                                           d_beat + held["w"].count))
        out["up_leading"] = up["bursts"].level <= up["aws"].level + 2
        # A burst under way upstream was begun knowing its AW, or with at most one burst
        # ahead of the AWs.
        up_aws, up_bursts = up["aws"].level, up["bursts"].level
        up_known = (up_aws > up_bursts) | (port.aw.valid & (up_aws == up_bursts))
        out["up_burst_begun"] = (up["beat"] == 0) | up_known | (up_bursts <= 1)
        id_width = len(port.aw.payload.id)
        # Write k's AW and burst agree where both are known.
        aw_placed, _ = _positions(aw_items)
        burst_placed, _ = _positions(burst_items)
        agree = []
        for a_present, a_position, a_value in aw_placed:
            for b_present, b_position, b_value in burst_placed:
                agree.append(~a_present | ~b_present | (a_position != b_position) |
                             (b_value == a_value[id_width:] + 1))
        out["lengths_agree"] = Cat(*agree).all()
        # The W beats held end their bursts where the AW says, and no burst overruns it.
        current = down["bursts"].level             # write of the burst under way
        beats = []
        for a_present, a_position, a_value in aw_placed:
            length = a_value[id_width:]
            this = a_present & (a_position == current)
            after = a_present & (a_position == current + 1)
            beats.append(~this | (d_beat <= length))
            beats.append(~this | ~w1p | (w1.last == (d_beat == length)))
            beats.append(~this | ~w2p | w_last1 | (w2.last == (d_beat + 1 == length)))
            beats.append(~after | ~w2p | ~w_last1 | (w2.last == (length == 0)))
        out["w_beats"] = Cat(*beats).all()
        # Responses owed: matched upstream, less those answered downstream and held.
        for i in ids:
            answers = sum(present & (payload.id == i) for present, payload in held["b"].items)
            pending = sum(present & (position < matched_up) & (value[:id_width] == i)
                          for present, position, value in aw_placed)
            out[f"owed{i}"] = up["owed"][i] == down["owed"][i] + answers + pending
        out["writes"] = up["writes"] == down["writes"] + held["aw"].count + held["b"].count
        return out
    return invariants
