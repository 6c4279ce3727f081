"""The AXI bus-functional models (sim/bus/) and protocol checkers (sim/bus/checker.py).

The checkers are tested on scripted, cycle-by-cycle traffic on a bare interface: each broken
rule must be reported as exactly that rule, and legal traffic (scripted corner cases, and random
traffic between the manager and subordinate models) must pass silently.
"""

import random

import pytest
from amaranth.hdl import ClockDomain, Module, Value
from amaranth.sim import Simulator

from dmabuf_soc.hw.bus.axi import AXI4LiteSignature, AXI4Signature, Burst, Resp
from dmabuf_soc.sim.bus.checker import AXI4Checker, AXI4LiteChecker, Violation
from dmabuf_soc.sim.bus.lite import AXI4LiteSubordinate, lite_read, lite_write
from dmabuf_soc.sim.bus.manager import AXI4Manager
from dmabuf_soc.sim.bus.subordinate import AXI4Subordinate
from dmabuf_soc.hw.payload import PayloadCodec
from dmabuf_soc.sim.bus.memory import ReferenceMemory, burst_beats

SIG = AXI4Signature(addr_width=32, data_width=64, id_width=4)


def bare_simulator(signature):
    """A bare interface of ``signature`` and a simulator with a ``sync`` clock to drive it."""
    port = signature.create()
    m = Module()
    m.domains.sync = ClockDomain()
    sim = Simulator(m)
    sim.add_clock(1e-6)
    return port, sim


# ReferenceMemory ---------------------------------------------------------------------------------

@pytest.mark.parametrize("addr, length, size, burst, bus_bytes, expected", [
    (0xFF9, 0, 3, Burst.INCR, 8, [(0xFF9, 0b11111110)]),
    # Unaligned INCR start: the first beat uses only the lanes from the start address up.
    (0x7, 1, 2, Burst.INCR, 4, [(0x7, 0b1000), (0x8, 0b1111)]),
    # Narrow INCR on a wide bus walks across the lanes.
    (0x3, 2, 1, Burst.INCR, 8, [(0x3, 0b1000), (0x4, 0b110000), (0x6, 0b11000000)]),
    (0x0, 1, 3, Burst.INCR, 8, [(0x0, 0xFF), (0x8, 0xFF)]),
    # WRAP wraps at (beats * size) bytes.
    (0x10, 3, 3, Burst.WRAP, 8, [(0x10, 0xFF), (0x18, 0xFF), (0x0, 0xFF), (0x8, 0xFF)]),
    # FIXED repeats the same address and lanes.
    (0x5, 2, 0, Burst.FIXED, 4, [(0x5, 0b10)] * 3),
])
def test_burst_beats(addr, length, size, burst, bus_bytes, expected):
    assert burst_beats(addr, length, size, burst, bus_bytes) == expected


def test_reference_memory_bursts():
    memory = ReferenceMemory()
    assert memory.read(0x1FFE, 4) == bytes(4)
    memory.write(0xFFE, b"\x01\x02\x03\x04")            # across a page boundary
    assert memory.read(0xFFD, 6) == b"\x00\x01\x02\x03\x04\x00"
    # Narrow unaligned burst with a strobe that reaches outside the beat lanes: ignored there.
    memory.write_burst(0x2003, [0xAABBCCDD_11223344] * 2, [0xFF, 0xFF], size=1,
                       bytes_per_beat=8)
    assert memory.read(0x2000, 8) == bytes([0, 0, 0, 0x11, 0xDD, 0xCC, 0, 0])
    memory.write_burst(0x3000, [0x1122334455667788, 0x99AABBCCDDEEFF00], [0x0F, 0xF0], size=3,
                       bytes_per_beat=8)
    assert memory.read(0x3000, 16) == bytes.fromhex("8877665500000000" "00000000ccbbaa99")
    assert memory.read_burst(0x3004, 1, 3, 8) == [0x0000000055667788, 0x99AABBCC00000000]
    with pytest.raises(ValueError, match="wider than the 8-byte bus"):
        burst_beats(0, 0, 4, Burst.INCR, 8)


def test_payload_codec_rejects_overflow():
    codec = PayloadCodec(SIG.members["aw"].signature.members["payload"].shape)
    assert codec.unpack(codec.pack(addr=0x1234, len=7, id=3))["len"] == 7
    with pytest.raises(ValueError, match="does not fit field 'id'"):
        codec.pack(id=16)


# Checker on scripted traffic --------------------------------------------------------------------

CODECS = {name: PayloadCodec(member.signature.members["payload"].shape)
          for name, member in SIG.members.items()}


def A(addr, len=0, size=3, burst=Burst.INCR.value, id=0):
    return dict(addr=addr, len=len, size=size, burst=burst, id=id)


def W(last, data=0, strb=0xFF):
    return dict(data=data, strb=strb, last=last)


def B(id=0, resp=Resp.OKAY.value):
    return dict(id=id, resp=resp)


def R(last, id=0, resp=Resp.OKAY.value, data=0):
    return dict(id=id, resp=resp, last=last, data=data)


def run_script(script, *, signature=SIG, checker_class=AXI4Checker, codecs=CODECS):
    """Drive ``script`` (one ``{channel: (valid, ready, fields)}`` dict per cycle, unnamed
    channels idle) on a bare interface watched by a checker; return the checker."""
    port, sim = bare_simulator(signature)
    checker = checker_class(port)
    checker.add_to(sim)

    async def testbench(ctx):
        for cycle in script + [{}]:
            for channel in ("aw", "w", "b", "ar", "r"):
                valid, ready, fields = cycle.get(channel, (0, 0, None))
                stream = getattr(port, channel)
                ctx.set(stream.valid, valid)
                ctx.set(stream.ready, ready)
                if fields is not None:
                    ctx.set(Value.cast(stream.payload), codecs[channel].pack(**fields))
            await ctx.tick()
    sim.add_testbench(testbench)
    sim.run()
    return checker


LEGAL = {
    "write": [{"aw": (1, 1, A(0x100, len=1)), "w": (1, 1, W(0))}, {"w": (1, 1, W(1))},
              {"b": (1, 1, B())}],
    "write data before address": [{"w": (1, 1, W(0))}, {"w": (1, 0, W(1, data=5))},
                                  {"w": (1, 1, W(1, data=5))}, {"aw": (1, 1, A(0x100, len=1))},
                                  {"b": (1, 1, B())}],
    "waits and interleaved IDs": [
        {"ar": (1, 0, A(0x200, len=1, id=1))}, {"ar": (1, 1, A(0x200, len=1, id=1))},
        {"ar": (1, 1, A(0x0, id=2, size=0, burst=Burst.FIXED.value)), "r": (1, 0, R(0, id=1))},
        {"r": (1, 1, R(0, id=1))}, {"r": (1, 1, R(1, id=2))}, {"r": (1, 1, R(1, id=1))}],
    "wrap and 4 KiB-ending INCR": [
        {"ar": (1, 1, A(0x18, len=3, burst=Burst.WRAP.value))},
        {"ar": (1, 1, A(0xF00, len=31))},
        {"r": (1, 1, R(0))}, {"r": (1, 1, R(0))}, {"r": (1, 1, R(0))}, {"r": (1, 1, R(1))},
        *[{"r": (1, 1, R(0))}] * 31, {"r": (1, 1, R(1))}],
}


@pytest.mark.parametrize("name", LEGAL)
def test_checker_silent_on_legal_traffic(name):
    checker = run_script(LEGAL[name])
    checker.assert_clean(idle=True)
    assert sum(checker.transfers.values()) > 0


ILLEGAL = {
    "valid dropped": ("aw", "valid-dropped", [{"aw": (1, 0, A(0x100))}, {}]),
    "payload changed": ("w", "payload-changed",
                        [{"w": (1, 0, W(1, data=1))}, {"w": (1, 1, W(1, data=2))}]),
    "ready-less R dropped": ("r", "valid-dropped",
                             [{"ar": (1, 1, A(0))}, {"r": (1, 0, R(1))}, {}]),
    "reserved burst": ("ar", "burst-type", [{"ar": (1, 1, A(0, burst=3))}]),
    "long FIXED": ("ar", "burst-length", [{"ar": (1, 1, A(0, len=16, burst=Burst.FIXED.value))}]),
    "3-beat WRAP": ("aw", "burst-length", [{"aw": (1, 1, A(0, len=2, burst=Burst.WRAP.value))}]),
    "unaligned WRAP": ("ar", "wrap-alignment",
                       [{"ar": (1, 1, A(0x4, len=1, burst=Burst.WRAP.value))}]),
    "too wide": ("ar", "size", [{"ar": (1, 1, A(0, size=4))}]),
    "4 KiB crossing": ("aw", "4k-boundary", [{"aw": (1, 1, A(0xFF8, len=1))}]),
    "unaligned 4 KiB crossing": ("ar", "4k-boundary", [{"ar": (1, 1, A(0xFF9, len=1, size=3))}]),
    "early WLAST": ("w", "wlast", [{"aw": (1, 1, A(0, len=2))}, {"w": (1, 1, W(0))},
                                   {"w": (1, 1, W(1))}]),
    "missing WLAST": ("w", "wlast", [{"aw": (1, 1, A(0, len=1))}, {"w": (1, 1, W(0))},
                                     {"w": (1, 1, W(0))}]),
    "leading W burst too short": ("w", "wlast", [{"w": (1, 1, W(1))},
                                                 {"aw": (1, 1, A(0, len=1))}]),
    "leading W burst without WLAST": ("w", "wlast", [{"w": (1, 1, W(0))}, {"w": (1, 1, W(0))},
                                                     {"aw": (1, 1, A(0, len=1))}]),
    "B without write": ("b", "b-unexpected", [{"b": (1, 1, B(3))}]),
    "B with another ID": ("b", "b-unexpected", [{"aw": (1, 1, A(0, id=1)), "w": (1, 1, W(1))},
                                                {"b": (1, 1, B(2))}]),
    "B before last W": ("b", "b-unexpected", [{"aw": (1, 1, A(0, len=1))}, {"w": (1, 1, W(0))},
                                              {"b": (1, 1, B())}]),
    "B with the last W": ("b", "b-unexpected", [{"aw": (1, 1, A(0)), "w": (1, 1, W(1)),
                                                 "b": (1, 1, B())}]),
    "R without read": ("r", "r-unexpected", [{"r": (1, 1, R(1))}]),
    "R with the AR": ("r", "r-unexpected", [{"ar": (1, 1, A(0)), "r": (1, 1, R(1))}]),
    "early RLAST": ("r", "rlast", [{"ar": (1, 1, A(0, len=3))}, {"r": (1, 1, R(0))},
                                   {"r": (1, 1, R(1))}]),
    "missing RLAST": ("r", "rlast", [{"ar": (1, 1, A(0))}, {"r": (1, 1, R(0))}]),
    "EXOKAY": ("r", "exokay", [{"ar": (1, 1, A(0))},
                               {"r": (1, 1, R(1, resp=Resp.EXOKAY.value))}]),
}


@pytest.mark.parametrize("name", ILLEGAL)
def test_checker_reports_each_rule(name):
    channel, rule, script = ILLEGAL[name]
    checker = run_script(script)
    assert {(v.channel, v.rule) for v in checker.violations} == {(channel, rule)}, \
        checker.violations
    with pytest.raises(AssertionError, match=rule):
        checker.assert_clean()


def test_checker_reports_unfinished_transactions():
    checker = run_script([{"ar": (1, 1, A(0, len=1, id=5))}, {"r": (1, 1, R(0, id=5))},
                          {"aw": (1, 1, A(0, id=2))}])
    checker.assert_clean()
    with pytest.raises(AssertionError) as info:
        checker.assert_clean(idle=True)
    assert "ID 5 await data" in str(info.value) and "ID 2 awaits data" in str(info.value)
    assert str(Violation(3, "r", "rlast", "x")) == "cycle 3: r: rlast: x"


LITE = AXI4LiteSignature(addr_width=16)
LITE_CODECS = {name: PayloadCodec(member.signature.members["payload"].shape)
               for name, member in LITE.members.items()}


@pytest.mark.parametrize("script, rule", [
    ([{"aw": (1, 1, {"addr": 4}), "w": (1, 1, {"data": 1})}, {"b": (1, 1, {})}], None),
    ([{"w": (1, 1, {"data": 1})}, {"aw": (1, 0, {"addr": 4})}, {"aw": (1, 1, {"addr": 4})},
      {"b": (1, 1, {})}, {"ar": (1, 1, {"addr": 8})}, {"r": (1, 1, {"data": 5})}], None),
    ([{"aw": (1, 0, {"addr": 4})}, {}], "valid-dropped"),
    ([{"ar": (1, 0, {"addr": 4})}, {"ar": (1, 1, {"addr": 8})}], "payload-changed"),
    ([{"aw": (1, 1, {"addr": 4})}, {"b": (1, 1, {})}], "b-unexpected"),
    ([{"ar": (1, 1, {"addr": 4}), "r": (1, 1, {})}], "r-unexpected"),
])
def test_lite_checker(script, rule):
    checker = run_script(script, signature=LITE, checker_class=AXI4LiteChecker,
                         codecs=LITE_CODECS)
    assert [v.rule for v in checker.violations] == ([rule] if rule else [])


# Bus-functional models ---------------------------------------------------------------------------

def test_lite_accesses_against_lite_subordinate():
    port, sim = bare_simulator(LITE)
    memory = ReferenceMemory()
    AXI4LiteSubordinate(port, memory, latency=3,
                        error=lambda write, addr: Resp.SLVERR if addr >= 0x100 else None
                        ).add_to(sim)
    checker = AXI4LiteChecker(port)
    checker.add_to(sim)

    async def testbench(ctx):
        assert await lite_write(ctx, port, 0x10, 0xDEADBEEF) == Resp.OKAY
        assert await lite_write(ctx, port, 0x14, 0x12345678, strb=0b0110) == Resp.OKAY
        assert await lite_read(ctx, port, 0x10) == (0xDEADBEEF, Resp.OKAY)
        assert await lite_read(ctx, port, 0x14) == (0x00345600, Resp.OKAY)
        assert await lite_write(ctx, port, 0x100, 1) == Resp.SLVERR
        assert (await lite_read(ctx, port, 0x100))[1] == Resp.SLVERR
    sim.add_testbench(testbench)
    sim.run()
    assert memory.read(0x100, 4) == bytes(4)
    checker.assert_clean(idle=True)


def run_models(seed, *, n_txns, max_len=16, gap=0.3, reorder=True, error=None):
    """Random bursts from :class:`AXI4Manager` to :class:`AXI4Subordinate` on one port, each
    write followed, once done, by a read of it; returns (manager, reads with expected data)."""
    rng = random.Random(seed)
    port, sim = bare_simulator(SIG)
    memory, reference = ReferenceMemory(), ReferenceMemory()
    manager = AXI4Manager(port, rng=rng, valid_gap=gap, ready_gap=gap, max_outstanding=4)
    subordinate = AXI4Subordinate(port, memory, rng=rng, read_latency=rng.randint(1, 6),
                                  write_latency=rng.randint(1, 6), ready_gap=gap,
                                  valid_gap=gap, reorder=reorder, error=error)
    checker = AXI4Checker(port, name="bare")
    for model in (manager, subordinate, checker):
        model.add_to(sim)
    checks = []

    async def testbench(ctx):
        pending = []
        for n in range(n_txns):
            size = rng.randint(0, 3)
            length = rng.randrange(max_len)
            # Writes in flight together get disjoint regions: their order is not defined.
            region = 0x1000 + 0x800 * (n % 4)
            addr = region + rng.randrange(0x800 - (length + 1) * 8) & ~rng.choice([0, 7])
            data = [rng.getrandbits(64) for _ in range(length + 1)]
            strb = [rng.getrandbits(8) for _ in range(length + 1)]
            write = manager.write(addr, data, strb=strb, size=size, id=n % 16)
            pending.append((write, addr, length, size, data, strb))
            if len(pending) == 4:
                await manager.wait(ctx, *(p[0] for p in pending))
                for write, addr, length, size, data, strb in pending:
                    if write.resp == Resp.OKAY:
                        reference.write_burst(addr, data, strb, size, 8)
                    read = manager.read(addr, len=length, size=size, id=rng.randrange(16))
                    beats = burst_beats(addr, length, size, Burst.INCR, 8)
                    checks.append((read, write, reference.read_burst(addr, length, size, 8),
                                   beats))
                pending = []
        await manager.wait(ctx)
    sim.add_testbench(testbench)
    sim.run()
    checker.assert_clean(idle=True)
    assert checker.transfers["b"] == checker.transfers["aw"] > 0
    return manager, subordinate, checks


def test_manager_and_subordinate_models_round_trip():
    manager, subordinate, checks = run_models(1, n_txns=120)
    assert len(checks) == 120
    for read, _, expected, beats in checks:
        assert read.resp == [Resp.OKAY] * (read.len + 1)
        for got, want, (_, lanes) in zip(read.data, expected, beats):
            mask = int.from_bytes(bytes(0xFF * (lanes >> i & 1) for i in range(8)), "little")
            assert got & mask == want & mask
    # Several transactions were in flight at once, and reordering across IDs happened.
    assert any(a.issued_at < b.done_at and b.issued_at < a.done_at and a is not b
               for a, b in zip(manager.completed, manager.completed[1:]))
    reads = [t for t in manager.completed if not hasattr(t, "strb")]
    assert any(a.issued_at > b.issued_at for a, b in zip(reads, reads[1:]))


def test_subordinate_model_injects_errors():
    error = lambda write, addr: Resp.SLVERR if addr >= 0x2000 else None
    manager, _, checks = run_models(2, n_txns=40, error=error)
    assert {read.addr >= 0x2000 for read, *_ in checks} == {True, False}
    for read, write, expected, _ in checks:
        resp = Resp.SLVERR if read.addr >= 0x2000 else Resp.OKAY
        assert write.resp == resp and read.resp == [resp] * (read.len + 1)


def test_manager_rejects_bad_bursts():
    port, _ = bare_simulator(SIG)
    manager = AXI4Manager(port)
    with pytest.raises(ValueError, match="Burst length"):
        manager.read(0, len=256)
    with pytest.raises(ValueError, match="wider than"):
        manager.read(0, size=4)
    with pytest.raises(ValueError, match="ID 16"):
        manager.write(0, [1], id=16)
    with pytest.raises(ValueError, match="one strobe per beat"):
        manager.write(0, [1, 2], strb=[0xFF])
