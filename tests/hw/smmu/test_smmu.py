"""The SMMU RTL against its reference model (sim/smmu/model.py), transaction by transaction,
with a protocol checker on every port; and its next-page prefetch, which must change no
translation: silent faults, invalidation during a prefetch walk, sequential streams."""

import random

import pytest

from dmabuf_soc.hw.bus.axi import Resp
from dmabuf_soc.hw.smmu.caches import InvalidateKind
from dmabuf_soc.hw.smmu.format import EVENT_BYTES, IA_BITS, EventType, StreamConfig
from dmabuf_soc.sim.smmu.model import Event, EventQueueModel, FetchError, SmmuModel, Status
from dmabuf_soc.sim.smmu.harness import SmmuHarness

from smmu_tables import (EVTQ, STRTAB, CommandWriter, Tables, cmd_cfgi_ste, cmd_sync,
                         cmd_tlbi_va, configure, read_events, write_ste)

GiB, MiB = 1 << 30, 1 << 20
DATA = 0x20_0000_0000


def model_for(harness, bad=frozenset(), log2size=4):
    def read64(addr):
        if addr - addr % 8 in bad:
            raise FetchError(addr)
        return int.from_bytes(harness.memory.read(addr, 8), "little")
    return SmmuModel(read64, strtab_base=STRTAB, strtab_log2size=log2size)


def random_world(rng, harness, tables):
    """Random contexts with every descriptor type and fault; returns the interesting input
    addresses and the set of descriptor addresses that answer bus errors."""
    bad = set()
    addresses = []
    contexts = {1: 5, 2: 9, 3: 5}          # sid -> asid; sids 1 and 3 share a domain
    ttbs = {5: tables.page(), 9: tables.page()}
    for sid, asid in contexts.items():
        write_ste(harness.memory, sid, ttb=ttbs[asid], asid=asid, record=int(sid != 3))
    write_ste(harness.memory, 4, config=StreamConfig.BYPASS)
    write_ste(harness.memory, 6, config=StreamConfig.ABORT)
    write_ste(harness.memory, 7, valid=0)
    write_ste(harness.memory, 8, config=0b011)                     # reserved config
    bad.add(STRTAB + 16 * 10)                                      # STE fetch error
    kinds = ["ok", "ok", "ok", "ro", "xn", "noaf", "invalid", "reserved", "oa", "eabt"]
    for asid, ttb in ttbs.items():
        rng.shuffle(kinds)
        for kind in kinds:
            level = rng.choice((1, 2, 3, 3, 3))
            size = 1 << {1: 30, 2: 21, 3: 12}[level]
            iova = rng.randrange(0, 1 << IA_BITS, size)
            if level == 3 and rng.random() < 0.2:
                iova = (1 << IA_BITS) - size                      # last page of the space
            pa = DATA + rng.randrange(0, 1 << 36, size) % (1 << 37)
            extra = {}
            if kind == "invalid":
                extra = dict(valid=0)
            elif kind == "reserved" and level == 3:
                extra = dict(table=0)
            elif kind == "oa":
                extra = dict(oa=(pa >> 12) | 1 << 28 + rng.randrange(8))
            desc = tables.map(ttb, iova, pa, level, read_only=kind == "ro", xn=kind == "xn",
                              af=kind != "noaf", **extra)
            if level == 3 and iova + size < 1 << IA_BITS and rng.random() < 0.5:
                # The next page mapped too, so that its prefetch fills the IOTLB.
                tables.map(ttb, iova + size, pa ^ size, 3)
                addresses.append(iova + size + rng.randrange(0, size, 8))
            if kind == "eabt":
                bad.add(desc)
            for _ in range(3):
                addresses.append(iova + rng.randrange(0, size, 8))
        # A table descriptor pointing beyond the output address space.
        iova = rng.randrange(0, 1 << IA_BITS, GiB)
        l1 = tables.descend(ttb, iova, 1)
        tables.write64(l1, 3 | (1 << 41))
        addresses.append(iova + 0x1238)
    addresses += [(1 << IA_BITS) + 0x1000, rng.randrange(0, 1 << IA_BITS, 8)]
    return addresses, bad


def make_harness(rng, bad, **params):
    return SmmuHarness(rng=rng, table_error=lambda write, addr: Resp.SLVERR
                       if addr - addr % 8 in bad or addr in bad else None, **params)


def run_random(seed, transactions, *, walk_cache=True, gaps=0.0, **params):
    rng = random.Random(seed)
    bad = set()
    harness = make_harness(rng, bad, valid_gap=gaps, ready_gap=gaps, **params)
    tables = Tables(harness.memory)
    addresses, bad_addrs = random_world(rng, harness, tables)
    bad |= bad_addrs
    model = model_for(harness, bad)
    manager = harness.managers[0]
    sids = [1, 1, 2, 2, 3, 4, 6, 7, 8, 10, 17]
    plan = []
    rng.shuffle(addresses)
    for n in range(transactions):
        # Every interesting address once, with a context that translates it; then at random.
        sid = rng.choice(sids[:5] if n < len(addresses) else sids)
        addr = (addresses[n] if n < len(addresses) else rng.choice(addresses)) & ~7
        beats = min(rng.randrange(1, 5), (4096 - addr % 4096) // 8)
        write = rng.random() < 0.5
        instr = rng.random() < 0.1
        plan.append((sid, addr, beats, write, instr))
    outcomes = [model.translate(sid, addr, write=write, instr=instr)
                for sid, addr, beats, write, instr in plan]
    written_pages = {o.pa >> 12 for o, p in zip(outcomes, plan) if p[3] and o.pa is not None}
    for page in {o.pa >> 12 for o in outcomes if o.pa is not None}:
        harness.memory.write(page << 12, rng.randbytes(4096))
    initial = {page: harness.memory.read(page << 12, 4096)
               for page in {o.pa >> 12 for o in outcomes if o.pa is not None}}
    txns = []

    async def testbench(ctx):
        await configure(harness, ctx, walk_cache=walk_cache)
        for n, (sid, addr, beats, write, instr) in enumerate(plan):
            prot = 4 if instr else 0
            if write:
                txns.append(manager.write(addr, [rng.getrandbits(64) for _ in range(beats)],
                                          id=n % 4, sid=sid, prot=prot))
            else:
                txns.append(manager.read(addr, len=beats - 1, id=n % 4, sid=sid, prot=prot))
        await manager.wait(ctx, timeout=200_000)
        await ctx.tick().repeat(20)
        txns.append(await counters(harness, ctx))
        txns.append(await read_events(harness, ctx))

    harness.run(testbench)
    harness.assert_clean()
    events = txns.pop()
    harness.counters = txns.pop()

    # Transaction by transaction: responses, and where each one went downstream.
    down = harness.checkers["downstream0"].log
    expected = {"ar": [], "aw": []}
    for txn, outcome, (sid, addr, beats, write, instr) in zip(txns, outcomes, plan):
        ok = outcome.status is Status.OK
        resp = txn.resp if write else set(txn.resp)
        assert resp == ({Resp.OKAY} if ok and not write else
                        Resp.OKAY if ok else {Resp.SLVERR} if not write else Resp.SLVERR), \
            (sid, hex(addr), write, outcome)
        if ok:
            expected["aw" if write else "ar"].append((outcome.pa, beats - 1, sid))
            page = outcome.pa >> 12
            if not write and page not in written_pages:
                offset = outcome.pa % 4096
                want = [int.from_bytes(initial[page][offset - offset % 8 + 8 * n:][:8], "little")
                        for n in range(beats)]
                assert txn.data == want
    for channel in ("ar", "aw"):
        actual = [(f["addr"], f["len"], f["sid"]) for _, ch, f in down if ch == channel]
        assert actual == expected[channel]
    want_events = sorted((o.event for o in outcomes if o.event is not None), key=repr)
    assert sorted(events, key=repr) == want_events
    return harness, outcomes


def test_random_traffic_matches_model():
    harness, outcomes = run_random(1, 160)
    kinds = {o.event.type for o in outcomes if o.event is not None}
    # The random world exercises every fault type.
    assert kinds == set(EventType), kinds
    assert any(o.status is Status.ABORT for o in outcomes)
    assert harness.smmu.prefetch and harness.counters["PREFETCHES"] > 0


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(2, 8))
def test_random_traffic_soak(seed):
    run_random(seed, 400, walk_cache=seed % 2 == 0, gaps=0.3, prefetch=seed % 3 != 0)


COUNTERS = ("HITS", "MISSES", "WALKS", "WALK_READS", "PREFETCHES")


async def counters(harness, ctx):
    return {name: (await harness.read_reg(ctx, name))["count"] for name in COUNTERS}


def test_prefetch_faults_are_silent():
    """A prefetch of a page whose walk faults, in each way a walk can, writes no record,
    answers nothing, fills nothing: using that page later faults exactly as without
    prefetch."""
    rng = random.Random(3)
    bad = set()
    harness = make_harness(rng, bad)
    tables = Tables(harness.memory)
    ttb = tables.page()
    write_ste(harness.memory, 1, ttb=ttb, asid=7, record=1)
    kinds = {"invalid": dict(valid=0), "reserved": dict(table=0), "noaf": dict(af=False),
             "oa": dict(oa=1 << 28), "eabt": {}}
    pages = []
    for n, (kind, extra) in enumerate(kinds.items()):
        iova = 0x4000_0000 + n * 0x20_0000
        tables.map(ttb, iova, DATA + n * 0x1000, 3)
        desc = tables.map(ttb, iova + 0x1000, DATA + 0x10_0000, 3, **extra)
        if kind == "eabt":
            bad.add(desc)
        pages.append(iova)
    model = model_for(harness, bad)
    manager = harness.managers[0]
    seen = {}

    async def testbench(ctx):
        await configure(harness, ctx)
        for n, iova in enumerate(pages):
            # Each page's prefetch walk has ended before the next page is used.
            await manager.wait(ctx, manager.read(iova + 8 * n, len=3, sid=1))
            await ctx.tick().repeat(40)
        seen["counters"] = await counters(harness, ctx)
        seen["events"] = await read_events(harness, ctx)
        seen["irq"] = await harness.read_reg(ctx, "IRQ_STATUS")
        seen["upstream"] = list(harness.checkers["upstream0"].log)
        seen["faults"] = [manager.read(iova + 0x1000, sid=1) for iova in pages]
        await manager.wait(ctx)
        seen["after"] = await counters(harness, ctx)
        seen["events_after"] = await read_events(harness, ctx)

    harness.run(testbench)
    harness.assert_clean()
    assert seen["counters"]["PREFETCHES"] == len(pages)
    assert seen["counters"]["MISSES"] == seen["counters"]["WALKS"] == len(pages)
    assert seen["events"] == [] and seen["irq"]["event"] == 0
    # Upstream saw the reads and their 4-beat answers, nothing else.
    assert [ch for _, ch, _ in seen["upstream"]] == ["ar", "r", "r", "r", "r"] * len(pages)
    assert all(Resp(f["resp"]) is Resp.OKAY for _, ch, f in seen["upstream"] if ch == "r")
    # The faulting pages were not filled: each access walks and faults as the model says.
    assert [t.resp for t in seen["faults"]] == [[Resp.SLVERR]] * len(pages)
    assert seen["after"]["MISSES"] - seen["counters"]["MISSES"] == len(pages)
    assert seen["events_after"] == [model.translate(1, iova + 0x1000, write=False).event
                                    for iova in pages]


def test_invalidation_during_prefetch_walk_fills_nothing():
    """The page a prefetch walk is walking is remapped and invalidated before the walk
    ends: the walk fills nothing, so the next access walks again and uses the new page."""
    harness = make_harness(random.Random(4), set(), read_latency=20)
    smmu = harness.smmu
    tables = Tables(harness.memory)
    ttb = tables.page()
    write_ste(harness.memory, 1, ttb=ttb, asid=7)
    iova = 0x1234_5000
    tables.map(ttb, iova, DATA, 3)
    tables.map(ttb, iova + 0x1000, DATA + 0xA000, 3)
    new_pa = DATA + 0xB000
    manager = harness.managers[0]
    commands = CommandWriter(harness)
    seen = {"fills": [], "invalidations": []}

    async def monitor(ctx):
        async for _, _, start, fill, vpn, kind in ctx.tick().sample(
                smmu.walker.prefetch_start, smmu.walker.tlb_fill,
                smmu.walker.tlb_fill_entry.vpn, smmu.cmdq.invalidate.kind):
            cycle = harness.checkers["table"].cycle
            if start:
                seen.setdefault("prefetch_start", cycle)
            if fill:
                seen["fills"].append((cycle, vpn << 12))
            if kind != InvalidateKind.NONE:
                seen["invalidations"].append(cycle)

    async def testbench(ctx):
        # Without the walk cache the prefetch walk reads three descriptors.
        await configure(harness, ctx, walk_cache=False)
        txn = manager.read(iova, sid=1)
        await ctx.tick().until(smmu.walker.prefetch_start)
        tables.map(ttb, iova + 0x1000, new_pa, 3)
        await commands.issue(ctx, cmd_tlbi_va(7, iova + 0x1000, leaf=1), cmd_sync())
        await manager.wait(ctx, txn)
        before = await counters(harness, ctx)
        seen["again"] = harness.checkers["table"].cycle
        again = manager.read(iova + 0x1000, sid=1)
        await manager.wait(ctx, again)
        seen["delta"] = {name: value - before[name]
                         for name, value in (await counters(harness, ctx)).items()}
        await ctx.tick().repeat(60)         # the prefetch of the page after, unmapped

    harness.sim.add_testbench(monitor, background=True)
    harness.run(testbench)
    harness.assert_clean()
    start, (inv,) = seen["prefetch_start"], seen["invalidations"]
    assert start < inv, "the invalidation must land during the prefetch walk"
    assert not [c for c, va in seen["fills"] if va == iova + 0x1000 and c < seen["again"]], \
        "a prefetch walk that saw an invalidation filled the IOTLB"
    assert seen["delta"]["MISSES"] == seen["delta"]["WALKS"] == 1
    ars = [f["addr"] for _, ch, f in harness.checkers["downstream0"].log if ch == "ar"]
    assert ars == [DATA, new_pa]


def test_sequential_streams_miss_once():
    """A read stream and a write stream, each over consecutive pages: with prefetch, each
    misses on its first page only (and the prefetch of the page past the last, unmapped,
    faults silently); with ``CR0.prefetch_en`` clear, on every page."""
    pages = 6
    harness = make_harness(random.Random(5), set())
    tables = Tables(harness.memory)
    ttb = tables.page()
    write_ste(harness.memory, 2, ttb=ttb, asid=3)
    runs = {True: (0x10_0000, 0x7f_f000_0000), False: (0x20_0000, 0x7f_f010_0000)}
    for n in range(pages):
        for src, dst in runs.values():
            tables.map(ttb, src + n * 0x1000, DATA + n * 0x1000, 3)
            tables.map(ttb, dst + n * 0x1000, DATA + 0x10_0000 + n * 0x1000, 3)
    manager = harness.managers[0]
    seen = {}

    async def testbench(ctx):
        await configure(harness, ctx)
        for prefetch, (src, dst) in runs.items():
            await harness.write_reg(ctx, "CR0", smmuen=1, cmdqen=1, evtqen=1,
                                    prefetch_en=int(prefetch))
            before = await counters(harness, ctx)
            for n in range(pages):
                for offset in (0, 0x800):
                    data = [manager.read(src + n * 0x1000 + offset, len=15, sid=2),
                            manager.write(dst + n * 0x1000 + offset, range(16), sid=2)]
                    await manager.wait(ctx, *data)
            await ctx.tick().repeat(30)
            seen[prefetch] = {name: value - before[name]
                              for name, value in (await counters(harness, ctx)).items()}
        seen["events"] = await read_events(harness, ctx)

    harness.run(testbench)
    harness.assert_clean()
    transactions = 2 * 2 * pages
    on, off = seen[True], seen[False]
    assert on["MISSES"] == on["WALKS"] == 2
    assert on["PREFETCHES"] == 2 * pages
    assert off["MISSES"] == off["WALKS"] == 2 * pages
    assert off["PREFETCHES"] == 0
    assert on["HITS"] == off["HITS"] + 2 * pages - 2 == transactions - 2
    assert seen["events"] == []
    assert harness.memory.read(DATA + 0x10_0000 + (pages - 1) * 0x1000 + 0x800, 128) == \
        b"".join(n.to_bytes(8, "little") for n in range(16))


def test_stage_latency():
    """A read that hits the stage's micro-TLB reaches downstream one cycle after it is
    taken; one whose page is in the IOTLB but not in the micro-TLB (a stream moving to the
    next, prefetched, page), six cycles: the stage's IOTLB lookup (three cycles) and the
    refill of its micro-TLB."""
    harness = make_harness(random.Random(6), set())
    tables = Tables(harness.memory)
    ttb = tables.page()
    write_ste(harness.memory, 2, ttb=ttb, asid=3)
    for n in range(3):
        tables.map(ttb, 0x10_0000 + n * 0x1000, DATA + n * 0x1000, 3)
    manager = harness.managers[0]

    async def testbench(ctx):
        await configure(harness, ctx)
        await harness.write_reg(ctx, "CR0", smmuen=1, cmdqen=1, evtqen=1, prefetch_en=1)
        await manager.wait(ctx, manager.read(0x10_0000, sid=2))    # walks; prefetches 0x10_1000
        await ctx.tick().repeat(40)
        for addr in (0x10_0008, 0x10_1000, 0x10_1008, 0x10_0010):
            await manager.wait(ctx, manager.read(addr, sid=2))

    harness.run(testbench)
    harness.assert_clean()
    taken = [cycle for cycle, ch, _ in harness.checkers["upstream0"].log if ch == "ar"]
    issued = [cycle for cycle, ch, _ in harness.checkers["downstream0"].log if ch == "ar"]
    # micro-TLB hit, next page from the IOTLB, hit, the other micro-TLB page
    assert [d - t for t, d in zip(taken, issued)][1:] == [1, 6, 1, 1]


def test_waiting_transaction_sees_micro_tlb_refill():
    """A transaction waits in the stage's skid register, having hit the micro-TLB as it
    arrived, while the transaction ahead of it refills the micro-TLB over that very page:
    it must be translated afresh, not by the page that was replaced."""
    harness = make_harness(random.Random(7), set())
    tables = Tables(harness.memory)
    ttb = tables.page()
    write_ste(harness.memory, 2, ttb=ttb, asid=3)
    q, p, r = (0x30_0000 + n * 0x1000 for n in range(3))
    pas = {iova: DATA + 0x10_0000 * (n + 1) for n, iova in enumerate((q, p, r))}
    for iova, pa in pas.items():
        tables.map(ttb, iova, pa, 3)
    manager = harness.managers[0]

    async def testbench(ctx):
        await configure(harness, ctx)
        for iova in (q, p, r):                  # the micro-TLB then holds p and r, r last
            await manager.wait(ctx, manager.read(iova, sid=2))
        # q hits the IOTLB only, and its refill replaces p while the read of p waits.
        await manager.wait(ctx, manager.read(q + 8, sid=2), manager.read(p + 8, sid=2))

    harness.run(testbench)
    harness.assert_clean()
    ars = [f["addr"] for _, ch, f in harness.checkers["downstream0"].log if ch == "ar"]
    assert ars == [pas[q], pas[p], pas[r], pas[q] + 8, pas[p] + 8]


def test_iotlb_keeps_pages_in_use_and_prefetched_pages_once():
    """Replacement: the entry a stage's lookup hits, and fills not yet used, stay while
    other entries can go; an unused fill is passed over once only."""
    from amaranth.sim import Simulator
    from dmabuf_soc.hw.smmu.caches import IOTLB

    tlb = IOTLB(entries=4, lookups=2, users=1)
    stage, walker = tlb.lookup
    sim = Simulator(tlb)
    sim.add_clock(1e-8)
    held = []

    async def testbench(ctx):
        async def fill(page):                       # fills are at least 4 cycles apart
            ctx.set(tlb.fill, 1)
            ctx.set(tlb.fill_entry, {"asid": 1, "level": 3, "vpn": page, "ppn": page})
            await ctx.tick()
            ctx.set(tlb.fill, 0)
            await ctx.tick().repeat(3)

        async def resident():
            found = set()
            for page in range(10, 30):
                ctx.set(walker.asid, 1)             # the walker's port only looks
                ctx.set(walker.va, page << 12)
                await ctx.tick().repeat(2)          # the compare takes two cycles
                if ctx.get(walker.hit):
                    found.add(page)
            return found

        async def use(page):                        # and stay on it: in use
            ctx.set(stage.asid, 1)
            ctx.set(stage.va, page << 12)
            await ctx.tick().repeat(6)              # compared, held, next victim chosen

        for page in (10, 11, 12, 13):
            await fill(page)
        for page in (10, 11, 12):                   # 13 is never used
            await use(page)
        for page in (20, 21, 22, 23, 24, 25, 26):
            await fill(page)
            held.append(await resident())
            await use(page)

    sim.add_testbench(testbench)
    sim.run()
    assert held == [
        {11, 12, 13, 20},       # not 12 (in use) nor 13 (unused fill)
        {12, 13, 20, 21},
        {13, 20, 21, 22},
        {13, 21, 22, 23},       # the pointer passes 13 once ...
        {13, 22, 23, 24},
        {13, 23, 24, 25},
        {23, 24, 25, 26},       # ... and takes it the next time
    ]


@pytest.mark.parametrize("delay", [0, 1], ids=["first cycle", "second cycle"])
def test_iotlb_fill_in_the_cycle_of_an_invalidation_is_dropped(delay):
    """A fill in the first two cycles of an invalidation of IOTLB entries is dropped
    whatever it maps (so no fill escapes); one in those of an STE invalidation stays."""
    from amaranth.sim import Simulator
    from dmabuf_soc.hw.smmu.caches import IOTLB, InvalidateKind

    tlb = IOTLB(entries=4, lookups=1)
    port, = tlb.lookup
    sim = Simulator(tlb)
    sim.add_clock(1e-8)
    seen = {}
    cases = [
        ("covered", 1, {"kind": InvalidateKind.TLB_ASID, "asid": 1}),
        ("other asid", 2, {"kind": InvalidateKind.TLB_ASID, "asid": 1}),
        ("other page", 3, {"kind": InvalidateKind.TLB_VA, "asid": 3, "va": 8 << 12}),
        ("ste", 4, {"kind": InvalidateKind.STE, "sid": 0}),
    ]

    async def testbench(ctx):
        async def resident(asid, page):
            ctx.set(port.asid, asid)
            ctx.set(port.va, page << 12)
            await ctx.tick().repeat(2)              # the compare takes two cycles
            return bool(ctx.get(port.hit))

        for name, asid, invalidation in cases:
            ctx.set(tlb.invalidate, invalidation)
            for cycle in range(4):                  # fills are four cycles apart
                ctx.set(tlb.fill, cycle == delay)
                ctx.set(tlb.fill_entry, {"asid": asid, "level": 3, "vpn": 7,
                                         "ppn": 70 + asid})
                await ctx.tick()
                ctx.set(tlb.invalidate.kind, InvalidateKind.NONE)
            seen[name] = await resident(asid, 7)
            await ctx.tick()

    sim.add_testbench(testbench)
    sim.run()
    assert seen == {"covered": False, "other asid": False, "other page": False, "ste": True}


# The event queue's overflow: OVFLG toggles once per episode, EVTQ_LOST counts every record.

def fault_harness(seed):
    """A harness whose stream 1 records faults and maps nothing; and its model."""
    rng = random.Random(seed)
    harness = make_harness(rng, set())
    write_ste(harness.memory, 1, ttb=Tables(harness.memory).page(), asid=1, record=1)
    return rng, harness, model_for(harness)


async def fault(harness, ctx, model, queue, n):
    """A read of stream 1 that faults at page ``n``, and the same fault in ``queue``."""
    manager = harness.managers[0]
    txn = manager.read(0x4000_0000 + n * 0x1000, sid=1)
    await manager.wait(ctx, txn)
    assert txn.resp == [Resp.SLVERR]
    queue.record(model.translate(1, 0x4000_0000 + n * 0x1000, write=False).event)


async def queue_state(harness, ctx):
    """``(EVTQ_PROD.index, EVTQ_PROD.ovflg, EVTQ_LOST)``."""
    prod = await harness.read_reg(ctx, "EVTQ_PROD")
    return prod["index"], prod["ovflg"], (await harness.read_reg(ctx, "EVTQ_LOST"))["count"]


@pytest.mark.parametrize("lost", [1, 2, 3])
def test_event_queue_overflow_toggles_once_per_episode(lost):
    """``lost`` records lost to a full queue toggle EVTQ_PROD.ovflg once, whatever their
    number; after software acknowledges (EVTQ_CONS.ovackflg = ovflg), the next episode
    toggles it again. EVTQ_LOST counts every lost record; both are held at 0 while
    CR0.evtqen is clear."""
    _, harness, model = fault_harness(lost)
    queue = EventQueueModel(log2size=1)
    seen = {}

    async def testbench(ctx):
        await configure(harness, ctx, evtq_log2size=1)
        for n in range(2 + lost):
            await fault(harness, ctx, model, queue, n)
        seen["first"] = await queue_state(harness, ctx)
        seen["records"] = await read_events(harness, ctx)
        await harness.write_reg(ctx, "EVTQ_CONS", index=2, ovackflg=1)
        queue.consume(2, ovackflg=1)
        seen["acked"] = await queue_state(harness, ctx)
        for n in range(2 + lost, 4 + 2 * lost):
            await fault(harness, ctx, model, queue, n)
        seen["second"] = await queue_state(harness, ctx)
        seen["second_records"] = await read_events(harness, ctx, cons=2)
        await harness.write_reg(ctx, "CR0", smmuen=1, cmdqen=1, evtqen=0)
        seen["disabled"] = await queue_state(harness, ctx)

    harness.run(testbench)
    harness.assert_clean()
    assert seen["first"] == (2, 1, lost)
    assert seen["acked"] == (2, 1, lost)
    assert seen["second"] == (0, 0, 2 * lost) == (queue.prod, queue.ovflg, queue.lost)
    assert seen["disabled"] == (0, 0, 0)
    events = [model.translate(1, 0x4000_0000 + n * 0x1000, write=False).event
              for n in (0, 1, 2 + lost, 3 + lost)]
    assert seen["records"] + seen["second_records"] == events == queue.written


def test_event_queue_overflow_unacknowledged_does_not_toggle():
    """Records lost again before the acknowledgement (software consumed the queue but left
    EVTQ_CONS.ovackflg alone) belong to the same episode: counted, no toggle."""
    _, harness, model = fault_harness(7)
    queue = EventQueueModel(log2size=1)
    seen = {}

    async def testbench(ctx):
        await configure(harness, ctx, evtq_log2size=1)
        for n in range(3):
            await fault(harness, ctx, model, queue, n)
        await harness.write_reg(ctx, "EVTQ_CONS", index=2)
        queue.consume(2, ovackflg=0)
        for n in range(3, 6):
            await fault(harness, ctx, model, queue, n)
        seen["state"] = await queue_state(harness, ctx)

    harness.run(testbench)
    assert seen["state"] == (0, 1, 2) == (queue.prod, queue.ovflg, queue.lost)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_event_queue_matches_model(seed):
    """Random faults, consumption and acknowledgements: after each step the RTL's PROD,
    OVFLG and EVTQ_LOST are the model's, and the queue holds the model's records."""
    rng, harness, model = fault_harness(seed)
    queue = EventQueueModel(log2size=2)
    steps = []

    async def testbench(ctx):
        await configure(harness, ctx, evtq_log2size=2)
        cons = ack = 0
        for n in range(64):
            if rng.random() < 0.65:
                await fault(harness, ctx, model, queue, n)
            else:
                cons = (cons + rng.randrange(((queue.prod - cons) & 7) + 1)) & 7
                ack = queue.ovflg if rng.random() < 0.5 else ack
                await harness.write_reg(ctx, "EVTQ_CONS", index=cons, ovackflg=ack)
                queue.consume(cons, ovackflg=ack)
            steps.append((await queue_state(harness, ctx),
                          (queue.prod, queue.ovflg, queue.lost)))
        steps.append((harness.memory.read(EVTQ, 4 * EVENT_BYTES),
                      b"".join(queue.slot_bytes(slot) for slot in range(4))))

    harness.run(testbench)
    harness.assert_clean()
    for rtl, want in steps:
        assert rtl == want
    assert queue.lost > 0 and queue.episodes > 1
