"""The SMMU walker's client interface as a property set, the walker's cover points, and
the translation stage's own properties."""

from amaranth.hdl import Cat, Const, Mux, Signal
from amaranth.lib import data

from ...hw.bus.axi import Resp
from ...hw.smmu.arbiter import TranslationClientSignature, TranslationStatus
from ...hw.smmu.caches import leaf_covers
from ...hw.smmu.format import (ASID_BITS, GRANULE_SHIFT, IA_BITS, STE_BYTES, StreamConfig,
                               StreamTableEntryLayout)
from ...hw.smmu.queue import aligned
from ...hw.smmu.micro_tlb import MicroContextLayout, MicroPageLayout
from .properties import PropertySet

__all__ = ["TranslationClientProperties", "WalkCovers", "StreamAbortProperties",
           "StageSafetyProperties", "stage_invariants"]


class TranslationClientProperties(PropertySet):
    """The rules of a :class:`~dmabuf_soc.hw.smmu.arbiter.TranslationClientSignature` port:
    the client (manager) holds ``valid`` and its request stable until ``done``, and asks
    nothing in the first cycle after a reset; the walker (subordinate) answers ``done`` only
    while asked.

    Parameters
    ----------
    port, role, name : see :class:`~.properties.PropertySet`
    """
    port_signature = TranslationClientSignature

    def build(self, m):
        port = self.port
        request = Cat(port.sid, port.addr, port.write, port.instr)
        waiting = self.past(m, port.valid & ~port.done, "waiting")
        was_request = self.past(m, request, "request")
        held = self.past_valid & waiting
        self.rule(m, "manager", "valid_held", port.valid, when=held)
        self.rule(m, "manager", "request_stable", request == was_request, when=held)
        self.rule(m, "manager", "reset", ~port.valid, when=~self.past_valid)
        self.rule(m, "subordinate", "done_when_asked", port.valid, when=port.done)
        self.cover(m, "translated", port.done & (port.status == TranslationStatus.OK))
        self.cover(m, "faulted", port.done & (port.status == TranslationStatus.FAULT))


class _WalkerSet(PropertySet):
    """A set of a :class:`~dmabuf_soc.hw.smmu.walker.Walker`'s own, the walker on the
    subordinate side (it serves its clients).

    Parameters
    ----------
    walker : Walker
    name : str
        ``default_name`` if not given.
    """
    default_name = None

    def __init__(self, walker, *, name=None):
        super().__init__(walker, role="subordinate", name=name or self.default_name)


class WalkCovers(_WalkerSet):
    """Cover points of a walker: a page-table descriptor read for a client (an IOTLB miss
    walked), and a fault record written. Parameters as :class:`_WalkerSet`."""
    default_name = "walk"

    def build(self, m):
        walker = self.port
        self.cover(m, "iotlb_miss_walk", walker.walk_read)
        self.cover(m, "fault_record", walker.event)


def _usable(word):
    """Whether the first word of a stream table entry is valid and bypasses or translates."""
    entry = data.View(StreamTableEntryLayout(), Cat(word, Const(0, 64)))
    return entry.valid & ((entry.config == StreamConfig.BYPASS) |
                          (entry.config == StreamConfig.TRANSLATE))


class StreamAbortProperties(_WalkerSet):
    """The walker (:class:`~dmabuf_soc.hw.smmu.walker.Walker`) answers every request of a
    stream whose STE is invalid or aborting with a fault or an abort.

    Stream ``abort_sid``, free and constant in a run, has such an STE: the STE cache,
    asked for it, misses or answers ``ABORT``; every read of its entry in the stream table
    (at the table's base, ignoring the bits below an entry, plus ``abort_sid`` entries)
    returns a first word that is not valid or does not bypass or translate. The table's base
    and size do not change, and the SMMU is enabled. Proven: the walker's first client is
    never answered OK for that stream (``no_ok_for_abort``). Covers: such a request
    answered with a fault after the entry was read from the table, and one answered with an
    abort (from an STE cache entry). Parameters as :class:`_WalkerSet`.
    """
    default_name = "abort"

    def __init__(self, walker, *, name=None):
        super().__init__(walker, name=name)
        self.abort_sid = self.free_constant(len(walker.clients[0].sid), "abort_sid")

    def build(self, m):
        walker = self.port
        env = "manager"
        self.rule(m, env, "enabled", walker.enable)
        base = self.past(m, walker.strtab_base, "strtab_base")
        size = self.past(m, walker.strtab_log2size, "strtab_log2size")
        self.rule(m, env, "table_fixed",
                  (walker.strtab_base == base) & (walker.strtab_log2size == size),
                  when=self.past_valid)
        asked = self.past(m, walker.ste.sid, "ste_sid")
        self.rule(m, env, "abort_ste_cached",
                  ~walker.ste.hit | (walker.ste.config == StreamConfig.ABORT),
                  when=self.past_valid & (asked == self.abort_sid))

        # Reads of the stream's entry in the table, one at a time.
        bus = walker.bus
        entry = (aligned(walker.strtab_base, STE_BYTES) +
                 self.abort_sid * STE_BYTES)[:len(bus.ar.payload.addr)]
        reading = Signal()          # the read under way is of the entry
        first = Signal()            # and its first beat is to come
        read_entry = Signal()       # the entry was read from the table
        self.state.update(entry=entry, reading=reading, first=first)
        with m.If(bus.ar.valid & bus.ar.ready):
            m.d.sync += [reading.eq(bus.ar.payload.addr == entry), first.eq(1)]
        with m.If(bus.r.valid & bus.r.ready):
            m.d.sync += first.eq(0)
            with m.If(reading):
                m.d.sync += read_entry.eq(1)
        self.rule(m, env, "abort_ste_in_table", ~_usable(bus.r.payload.data),
                  when=bus.r.valid & reading & first)

        client = walker.clients[0]
        ours = client.done & (client.sid == self.abort_sid)
        self.rule(m, "subordinate", "no_ok_for_abort",
                  client.status != TranslationStatus.OK, when=ours)
        self.cover(m, "fault_from_table",
                   ours & (client.status == TranslationStatus.FAULT) & read_entry)
        self.cover(m, "abort_from_cache", ours & (client.status == TranslationStatus.ABORT))


class StageSafetyProperties(PropertySet):
    """A :class:`~dmabuf_soc.hw.smmu.translate.TranslationStage` sends downstream no
    transaction of an aborting stream, nor one whose translation faults.

    The stage's answers come from outside it (the STE cache, the IOTLB and the walker),
    free here but for what makes them those of one fixed set of stream table entries and
    page tables, picked by the environment and constant in a run:

    * stream ``abort_sid`` has an invalid or aborting STE: the STE cache, asked for it,
      misses or answers ``ABORT``; the walker, asked for it, answers a fault or an abort;
    * page ``fault_page`` of stream ``fault_sid`` faults for the stage's accesses: the
      stream's STE translates, in context ``fault_asid``; unless ``mapped``, the page is
      unmapped (the IOTLB holds no leaf of that ASID that covers it), else mapped with a
      permission the access lacks (read-only for the write stage; execute-never for the read
      stage, whose instruction reads alone fault); the walker, asked for such an access,
      answers a fault or an abort;
    * the IOTLB holds no translation of an address beyond the input address space, and
      answers a lookup two cycles after it is made.

    The SMMU is enabled throughout (with ``CR0.smmuen`` clear every stream bypasses).
    A downstream address carries the translated address, not the IOVA; to know a
    transaction on the faulting page again downstream, the environment marks it: the
    transactions of ``fault_sid`` that fault (and those alone) have ``AxSIZE`` equal to
    ``mark`` (the stage passes ``AxSIZE`` on unchanged and never reads it, so the proof holds
    for every size). Downstream responses come only for transactions sent downstream, and
    at most ``max_outstanding`` are outstanding.

    Proven: no downstream address is valid for stream ``abort_sid``
    (``no_abort_forwarded``) nor for a marked transaction (``no_fault_forwarded``); the
    stage's own streams (``up_addr`` ready, ``down_addr`` and ``up_resp``) keep the
    handshake rules. Covers: the SLVERR answer of an aborted transaction and of a faulting
    one with nothing sent downstream; a transaction translated from the micro-TLB (an IOTLB
    hit) and one translated by a walk, each sent downstream.

    Parameters
    ----------
    stage : TranslationStage
    name : str
    max_outstanding : int
        Downstream transactions outstanding at most (the environment holds ``ready`` low
        at that count).
    """
    def __init__(self, stage, *, name="safety", max_outstanding=3):
        super().__init__(stage, role="manager", name=name)
        self.write = "up_w" in stage.signature.members
        self.max_outstanding = max_outstanding
        sid_width = len(stage.up_addr.payload.sid)
        self.abort_sid = self.free_constant(sid_width, "abort_sid")
        self.fault_sid = self.free_constant(sid_width, "fault_sid")
        self.fault_asid = self.free_constant(ASID_BITS, "fault_asid")
        self.fault_page = self.free_constant(IA_BITS - GRANULE_SHIFT, "fault_page")
        self.mapped = self.free_constant(1, "mapped")
        self.mark = self.free_constant(len(stage.up_addr.payload.size), "mark")

    def _refused(self, instr):
        """Whether an access (``instr``: an instruction read) to the faulting page faults."""
        return ~self.mapped | (1 if self.write else instr)

    def _on_page(self, addr):
        return (addr[GRANULE_SHIFT:IA_BITS] == self.fault_page) & ~addr[IA_BITS]

    def build(self, m):
        stage = self.port
        up, down, walk, ste, tlb = (stage.up_addr, stage.down_addr, stage.walk, stage.ste,
                                    stage.tlb)
        env = "subordinate"
        self.rule(m, env, "enabled", stage.enable)

        # The streams: upstream and downstream responses from the environment, the others
        # from the stage.
        taken = self.handshake(m, up, env, "up")
        sent = self.handshake(m, down, "manager", "down")
        answered = self.handshake(m, stage.up_resp, "manager", "up_resp")
        self.handshake(m, stage.down_resp, env, "down_resp")
        outstanding = Signal(range(self.max_outstanding + 1))
        down_resp = stage.down_resp
        last = 1 if self.write else down_resp.payload.last
        completed = down_resp.valid & down_resp.ready & last
        m.d.sync += outstanding.eq(outstanding + sent - completed)
        self.state["outstanding"] = outstanding
        self.rule(m, env, "response_outstanding", outstanding != 0, when=down_resp.valid)
        self.rule(m, env, "max_outstanding", ~down.ready,
                  when=outstanding == self.max_outstanding)

        # The marked transactions are those of the faulting stream that fault.
        request = up.payload
        faulting = ((request.sid == self.fault_sid) & self._on_page(request.addr) &
                    self._refused(request.prot[2]))
        self.rule(m, env, "marked", (request.size == self.mark) == faulting, when=up.valid)

        # The STE cache answers the stream asked for a cycle before.
        asked_sid = self.past(m, ste.sid, "ste_sid")
        self.rule(m, env, "abort_ste", ~ste.hit | (ste.config == StreamConfig.ABORT),
                  when=self.past_valid & (asked_sid == self.abort_sid))
        self.rule(m, env, "fault_ste",
                  ~ste.hit | ((ste.config == StreamConfig.TRANSLATE) &
                              (ste.asid == self.fault_asid)),
                  when=self.past_valid & (asked_sid == self.fault_sid))

        # The IOTLB answers the lookup of two cycles before.
        va1, asid1 = self.past(m, tlb.va, "tlb_va1"), self.past(m, tlb.asid, "tlb_asid1")
        asked_va, asked_asid = self.past(m, va1, "tlb_va2"), self.past(m, asid1, "tlb_asid2")
        asked_twice = self.past(m, self.past_valid, "past_valid2")
        self.state.update(va1=va1, va2=asked_va, asid1=asid1, asid2=asked_asid,
                          asked_twice=asked_twice)
        self.rule(m, env, "tlb_in_space", ~asked_va[IA_BITS], when=asked_twice & tlb.hit)
        covers_page = leaf_covers(tlb.level, asked_va[GRANULE_SHIFT:IA_BITS], self.fault_page)
        refusing = self.mapped & (tlb.read_only if self.write else tlb.xn)
        self.rule(m, env, "tlb_fault_page", refusing,
                  when=asked_twice & tlb.hit & (asked_asid == self.fault_asid) & covers_page)

        # The walker answers the request it holds.
        walk_ok = walk.status == TranslationStatus.OK
        self.rule(m, env, "abort_walk", ~walk_ok, when=walk.done & (walk.sid == self.abort_sid))
        self.rule(m, env, "fault_walk", ~walk_ok,
                  when=walk.done & (walk.sid == self.fault_sid) & self._on_page(walk.addr) &
                  self._refused(walk.instr))

        self.rule(m, "manager", "no_abort_forwarded", down.payload.sid != self.abort_sid,
                  when=down.valid)
        self.rule(m, "manager", "no_fault_forwarded",
                  (down.payload.sid != self.fault_sid) | (down.payload.size != self.mark),
                  when=down.valid)

        # Covers: the SLVERR answers of a failed transaction, nothing sent downstream;
        # translations, from the micro-TLB and by a walk, that go downstream.
        took_abort = Signal()
        took_fault = Signal()
        ever_sent = Signal()
        with m.If(taken & (request.sid == self.abort_sid)):
            m.d.sync += took_abort.eq(1)
        with m.If(taken & (request.sid == self.fault_sid) & (request.size == self.mark)):
            m.d.sync += took_fault.eq(1)
        with m.If(sent):
            m.d.sync += ever_sent.eq(1)
        error = answered & (stage.up_resp.payload.resp == Resp.SLVERR) & ~ever_sent
        self.cover(m, "abort_answered", error & took_abort & ~took_fault)
        self.cover(m, "fault_answered", error & took_fault & ~took_abort)
        self.cover(m, "translated_from_iotlb",
                   sent & stage.hit & (down.payload.sid == self.fault_sid))
        walked = Signal()
        with m.If(walk.done & walk_ok & (walk.sid == self.fault_sid)):
            m.d.sync += walked.eq(1)
        self.cover(m, "translated_by_walk",
                   sent & walked & (down.payload.sid == self.fault_sid) & ~stage.hit)


def stage_invariants(inside, stage, *, max_outstanding):
    """The invariants of a translation stage, ``inside`` it, for ``add_invariants`` of its
    :class:`StageSafetyProperties`: the micro-TLB holds only what the tables allow (its
    context, its pages, the page it is taking, the lookup the IOTLB answers), the
    transactions in the stage are marked as the environment marked them, a hit registered
    for the one in ``s1`` is one the micro-TLB still gives, its flags agree with one another,
    the responses owed are those the set counts, and (a write stage, of ``max_outstanding``
    routes) the W route FIFO holds at most its depth."""
    signature = stage.up_addr.payload.shape()
    sid_width = len(stage.up_addr.payload.sid)
    context = data.View(MicroContextLayout(sid_width=sid_width), inside["micro_tlb.context"])
    pages = [data.View(MicroPageLayout(), inside[f"micro_tlb.pages__{n}"]) for n in range(2)]
    refill = data.View(MicroPageLayout(), inside["micro_tlb.refill"])
    state, encoding = inside.fsm("micro_tlb.lookup_state")
    in_state = {name: state == value for name, value in encoding.items()}
    lookup_addr = inside["micro_tlb.lookup_addr"]
    s1 = data.View(signature, inside["s1"])
    skid = data.View(signature, inside["skid"])
    flags = {name: inside[name] for name in (
        "s1_valid", "s1_looked", "s1_asking", "s1_resolved", "s1_status", "s1_pass",
        "s1_open", "s1_ok", "s1_bypass", "s1_way", "skid_valid")}
    outstanding = inside["responses.outstanding"]
    answerable = inside["responses.answerable"]
    write = "up_w" in stage.signature.members
    if write:
        routes = inside["responses.routes.level"]

    def invariants(safety, m):
        ghost = safety.state
        out = {"lookup_state": Cat(*in_state.values()).any()}
        # The context and the pages: what the STE cache and the IOTLB may have given.
        out["abort_context"] = ~context.valid | (context.sid != safety.abort_sid) | \
            (context.config == StreamConfig.ABORT)
        out["fault_context"] = ~context.valid | (context.sid != safety.fault_sid) | (
            (context.config == StreamConfig.TRANSLATE) & (context.asid == safety.fault_asid))
        translating = context.valid & (context.config == StreamConfig.TRANSLATE)

        def allowed(page):
            refusing = safety.mapped & (page.read_only if write else page.xn)
            return ~page.valid | (context.asid != safety.fault_asid) | refusing | \
                ~leaf_covers(page.level, page.vpn, safety.fault_page)
        for n, page in enumerate(pages):
            out[f"page{n}_context"] = ~page.valid | translating
            out[f"page{n}_allowed"] = allowed(page)
        out["refill_allowed"] = ~in_state["PAGE"] | allowed(refill)
        out["refill_vpn"] = ~in_state["PAGE"] | \
            (refill.vpn == lookup_addr[GRANULE_SHIFT:IA_BITS])
        # The lookup's address and ASID, as the IOTLB was asked them.
        out["tlb_asked"] = Cat(
            ~in_state["TLB"] | (stage.tlb.va == lookup_addr),
            ~in_state["MATCH"] | ((ghost["va1"] == lookup_addr) &
                                  (ghost["asid1"] == context.asid)),
            ~in_state["ANSWER"] | ((ghost["va2"] == lookup_addr) &
                                   (ghost["asid2"] == context.asid) & ghost["asked_twice"]),
            ~(in_state["TLB"] | in_state["MATCH"] | in_state["ANSWER"]) | translating).all()

        # The transactions held are marked as they came.
        def marked(payload):
            faulting = ((payload.sid == safety.fault_sid) & safety._on_page(payload.addr) &
                        safety._refused(payload.prot[2]))
            return (payload.size == safety.mark) == faulting
        s1_valid = flags["s1_valid"]
        out["skid_marked"] = ~flags["skid_valid"] | marked(skid)
        out["s1_marked"] = ~s1_valid | marked(s1)
        failing = (s1.sid == safety.abort_sid) | \
            ((s1.sid == safety.fault_sid) & (s1.size == safety.mark))
        out["no_pass_failing"] = ~s1_valid | ~failing | ~flags["s1_pass"]
        # The flags of the transaction in the stage.
        resolved, asking, open_, ok = (flags[name] for name in
                                       ("s1_resolved", "s1_asking", "s1_open", "s1_ok"))
        status_ok = flags["s1_status"] == TranslationStatus.OK
        out["pass"] = flags["s1_pass"] == (s1_valid & resolved & status_ok)
        out["open"] = open_ == (s1_valid & ~resolved & ~asking)
        out["asking"] = ~asking | (s1_valid & ~resolved)
        # A hit registered for it is one the micro-TLB still gives.
        vpn = s1.addr[GRANULE_SHIFT:IA_BITS]
        context_hit = context.valid & (context.sid == s1.sid)
        bypass = context_hit & (context.config == StreamConfig.BYPASS)
        page = [pages[n] for n in range(2)]
        page_ok = [context_hit & ~s1.addr[IA_BITS] & p.valid &
                   leaf_covers(p.level, p.vpn, vpn) &
                   ~(write & p.read_only) & ~(s1.prot[2] & p.xn) for p in page]
        way_ok = (flags["s1_way"] & page_ok[1]) | (~flags["s1_way"] & page_ok[0])
        out["ok"] = ~s1_valid | resolved | ~ok | (flags["s1_bypass"] & bypass) | \
            (~flags["s1_bypass"] & way_ok)
        # The responses owed.
        out["outstanding"] = ghost["outstanding"] == outstanding
        failed = s1_valid & resolved & ~status_ok
        out["answerable"] = ~answerable | ~s1_valid | (failed & (outstanding == 0))
        if write:
            out["routes"] = routes <= max_outstanding
        return out
    return invariants


def walker_invariants(inside, walker, bus):
    """The invariants of a walker with one client and no prefetch, ``inside`` it, for
    ``add_invariants`` of its :class:`StreamAbortProperties` (``bus``: the
    :class:`~.properties.AXI4Properties` of its memory port, elaborated before)."""
    states = {}
    for name, path in (("walker", "fsm_state"), ("walk", "page_walk.walk_state"),
                       ("reader", "reader.read_state"), ("events", "events.write_state")):
        state, encoding = inside.fsm(path)
        states[name] = {key: state == value for key, value in encoding.items()}
    w, p, r, e = (states[name] for name in ("walker", "walk", "reader", "events"))
    arbiter = {name: inside[f"arbiter.{name}"] for name in
               ("sid", "addr", "write", "instr", "prefetching", "answering", "asking")}
    config, status = (inside.find(name, domain="sync") for name in ("config", "status"))
    ste_addr = inside["ste_addr"]
    reader_beat, reader_error = inside["reader.beat"], inside["reader.error"]
    word0 = inside["reader.data"][:64]
    events_beat = inside["events.beat"]
    waiting, held = inside["events.waiting"], inside["events.held"]

    def invariants(abort, m):
        ghost, axi = abort.state, bus.state
        if not axi:
            raise RuntimeError("The bus set must elaborate before the abort set")
        client = walker.clients[0]
        out = {f"{name}_state": Cat(*states[name].values()).any() for name in states}
        idle = w["IDLE"]
        out["no_prefetch"] = ~arbiter["prefetching"]
        out["serving"] = idle | (client.valid & (arbiter["sid"] == client.sid) &
                                 (arbiter["addr"] == client.addr) &
                                 (arbiter["write"] == client.write) &
                                 (arbiter["instr"] == client.instr))
        out["answering"] = arbiter["answering"] == w["RESPOND"]
        out["walking"] = ~p["IDLE"] == w["TRANSLATE"]
        out["walk_reads"] = ~(p["READ"] | p["DECODE"]) | ((config != StreamConfig.ABORT) &
                                                           (config != StreamConfig.BYPASS))
        # The reader and the bus set's reads.
        reading = r["R"]
        out["reader"] = ~reading | w["STE_READ"] | (w["TRANSLATE"] & p["READ"])
        queue0, queue1 = axi["read_queues"]
        out["reads"] = (axi["reads"] == reading) & (queue0.level == reading) & \
            (queue1.level == 0)
        length = Mux(w["STE_READ"], STE_BYTES // 8 - 1, 0)
        out["read_len"] = ~reading | ((queue0.head == length) &
                                      (axi["r_beats"][0] == reader_beat) &
                                      (reader_beat <= length))
        out["r_beat_idle"] = reading | (axi["r_beats"][0] == 0)
        out["ste_addr"] = ~(w["STE_READ"] | w["STE_DECODE"]) | \
            (ste_addr == (aligned(walker.strtab_base, STE_BYTES) +
                          arbiter["sid"] * STE_BYTES)[:len(ste_addr)])
        # The event writer and the bus set's writes.
        aws, bursts, owed = axi["aws"], axi["bursts"], axi["owed"]
        event_len = Cat(Const(0, 1), Const(3, 8))       # ID 0, four beats
        out["events"] = (e["AW"] | w["EVENT"]) & (axi["writes"] == ~e["AW"]) & \
            (owed[1] == 0)
        out["events_aw"] = ~e["AW"] | ((aws.level == 0) & (bursts.level == 0) &
                                       (owed[0] == 0) & (axi["beat"] == 0))
        out["events_w"] = ~e["W"] | ((aws.level == 1) & (bursts.level == 0) &
                                     (owed[0] == 0) & (aws.head == event_len) &
                                     (axi["beat"] == events_beat))
        out["events_b"] = ~e["B"] | (axi["beat"] == 0) & (
            ((aws.level == 1) & (bursts.level == 1) & (owed[0] == 0) &
             (aws.head == event_len) & (bursts.head == 4)) |
            ((aws.level == 0) & (bursts.level == 0) & (owed[0] == 1)))
        out["events_held"] = ~waiting | (e["AW"] & w["EVENT"] & (held[:5] == 0))
        # The aborting stream.
        ours = ~idle & (arbiter["sid"] == abort.abort_sid)
        entry = ste_addr == ghost["entry"]
        out["abort_reading"] = ~(reading & w["STE_READ"]) | (ghost["reading"] == entry)
        out["abort_first"] = ~(reading & w["STE_READ"]) | (ghost["first"] == (reader_beat == 0))
        out["abort_word"] = ~ours | ~entry | reader_error | ~_usable(word0) | \
            ~((w["STE_READ"] & reading & (reader_beat == 1)) | w["STE_DECODE"])
        out["abort_config"] = ~ours | ~w["TRANSLATE"] | (config == StreamConfig.ABORT)
        out["abort_status"] = ~ours | ~(w["FAULT"] | w["EVENT"] | w["RESPOND"]) | \
            (status != TranslationStatus.OK)
        return out
    return invariants
