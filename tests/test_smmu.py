"""The SMMU RTL against its reference model (hw/smmu/model.py), transaction by transaction,
with a protocol checker on every port."""

import random

import pytest

from dmabuf_soc.hw.bus.axi import Resp
from dmabuf_soc.hw.smmu.format import IA_BITS, EventType, StreamConfig
from dmabuf_soc.hw.smmu.model import Event, FetchError, SmmuModel, Status
from dmabuf_soc.hw.smmu.sim import SmmuHarness

from smmu_tables import (STRTAB, CommandWriter, Tables, cmd_cfgi_ste, cmd_sync, cmd_tlbi_va,
                         configure, read_events, write_ste)

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


def run_random(seed, transactions, *, walk_cache=True, gaps=0.0):
    rng = random.Random(seed)
    bad = set()
    harness = make_harness(rng, bad, valid_gap=gaps, ready_gap=gaps)
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
        txns.append(await read_events(harness, ctx))

    harness.run(testbench)
    harness.assert_clean()
    events = txns.pop()

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


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(2, 8))
def test_random_traffic_soak(seed):
    run_random(seed, 400, walk_cache=seed % 2 == 0, gaps=0.3)
