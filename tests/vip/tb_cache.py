"""The data cache's Verilog under cocotb and cocotbext-axi, against the reference model.

The CPU port is driven by :class:`CpuPort` (requests with random gaps and an unknown or
random payload between them, responses taken with random gaps), the registers through
cocotbext-axi's AXI4-Lite manager by the driver's own register bank, and memory is
:class:`~harness.AxiMemory` (random pauses and latencies, error windows) or cocotbext-axi's
``AxiRam``. Every access and maintenance operation is replayed on
:class:`~dmabuf_soc.sim.cache.model.CacheModel` in the order the cache took them, and each
response (load data and error flag), each burst on the memory port (refills and uncached
reads by address and length, write-backs and uncached stores by address, data and strobes),
the event counters and, in the end, all of memory must agree.

The model knows nothing of bus errors; :class:`Reference` adds what the RTL does with them:
a beat that fails reads nothing and writes nothing, an access whose refill or uncached beat
fails answers ``error``, a failed refill leaves its way invalid (and the set's pseudo-LRU
bits untouched), and a failed write-back is dropped silently.
"""

import collections
import os

import cocotb
from cocotb.triggers import ClockCycles, RisingEdge
from cocotb.types import Logic, LogicArray
from cocotbext.axi import AxiBus, AxiRam

from dmabuf_soc.hw.bus.axi import Resp
from dmabuf_soc.hw.cache.core import MaintenanceOp, MaintenanceScope
from dmabuf_soc.hw.cache.geometry import CacheGeometry
from dmabuf_soc.sim.cache.model import CacheModel
from dmabuf_soc.sim.cache.cpu_port import CpuAccess

from harness import AxiMemory, Memory, RegisterPort, ports, seeded_rng, start

BASE = 0x8000_0000
SIZE = 0x1_0000                          # 64 KiB: eight times the default cache
ROUNDS = int(os.environ.get("VIP_ROUNDS", "3"))
COUNTERS = ("hits", "misses", "writebacks", "lines_cleaned", "lines_invalidated")
#: The CPU port's inputs, defined through reset.
CPU_INPUTS = dict(cpu_req_valid=0, cpu_req_addr=0, cpu_req_write=0, cpu_req_data=0,
                  cpu_req_strb=0, cpu_req_cacheable=0, cpu_rsp_ready=0)


def _bit(handle, what):
    value = handle.value
    if not value.is_resolvable:
        raise AssertionError(f"{what} is {value}")
    return int(value)


# The CPU port ----------------------------------------------------------------------------------

def describe(access):
    """``access`` (a :class:`CpuAccess`) in words, for failure messages."""
    kind = "store" if access.write else "load"
    data = f" data={access.data:#x} strb={access.strb:#04x}" if access.write else ""
    return (f"{'' if access.cacheable else 'uncached '}{kind} {access.addr:#x}{data} "
            f"(taken in cycle {access.accepted_at})")


class CpuPort:
    """Drives ``cpu_req_*`` and takes ``cpu_rsp_*``, like the CPU: one request at a time,
    responses in request order.

    A request is shown after a random gap (``valid_gap``: probability of an idle cycle);
    between requests the payload is unknown (``idle_payload`` ``"x"``) or random junk
    (``"junk"``), which the cache must ignore either way. A response is taken unless
    ``ready_gap`` holds it off for the cycle. ``cycle`` counts rising edges;
    ``accepted_at``/``responded_at`` are the edges of the handshakes.
    """
    def __init__(self, dut, rng, *, valid_gap=0.3, ready_gap=0.3, idle_payload="x"):
        self.dut, self.rng = dut, rng
        self.valid_gap, self.ready_gap = valid_gap, ready_gap
        self.idle_payload = idle_payload
        self.bytes_per_word = len(dut.cpu_req_data) // 8
        self.addr_width = len(dut.cpu_req_addr)
        self.cycle = 0
        self.queue = collections.deque()
        self.in_flight = collections.deque()
        self.shown = None
        cocotb.start_soon(self._run())

    def issue(self, addr, *, write=False, data=0, strb=None, cacheable=True):
        if strb is None:
            strb = (1 << self.bytes_per_word) - 1
        access = CpuAccess(addr - addr % self.bytes_per_word, bool(write), data, strb,
                        bool(cacheable))
        self.queue.append(access)
        return access

    @property
    def idle(self):
        return not (self.queue or self.shown or self.in_flight)

    async def wait(self, timeout=100_000):
        for _ in range(timeout):
            if self.idle:
                return
            await RisingEdge(self.dut.clk)
        raise AssertionError(f"CPU accesses still waiting after {timeout} cycles: "
                             f"{[describe(a) for a in [self.shown, *self.in_flight] if a]}")

    def _drive(self, access):
        dut = self.dut
        if access is None:
            dut.cpu_req_valid.value = 0
            for handle in (dut.cpu_req_addr, dut.cpu_req_write, dut.cpu_req_data,
                           dut.cpu_req_strb, dut.cpu_req_cacheable):
                width = len(handle)
                if self.idle_payload == "x":
                    handle.value = LogicArray("X" * width) if width > 1 else Logic("X")
                else:
                    handle.value = self.rng.getrandbits(width)
        else:
            dut.cpu_req_valid.value = 1
            dut.cpu_req_addr.value = access.addr
            dut.cpu_req_write.value = int(access.write)
            dut.cpu_req_data.value = access.data
            dut.cpu_req_strb.value = access.strb
            dut.cpu_req_cacheable.value = int(access.cacheable)

    async def _run(self):
        dut = self.dut
        taking = False
        while True:
            await RisingEdge(dut.clk)
            self.cycle += 1
            if dut.rst.value != 0:
                continue
            ready = _bit(dut.cpu_req_ready, f"cycle {self.cycle}: cpu_req_ready")
            valid = _bit(dut.cpu_rsp_valid, f"cycle {self.cycle}: cpu_rsp_valid")
            if self.shown is not None and ready:
                self.shown.accepted_at = self.cycle
                self.in_flight.append(self.shown)
                self.shown = None
            if taking and valid:
                assert self.in_flight, f"cycle {self.cycle}: a response with no access"
                access = self.in_flight.popleft()
                access.rsp_data = _bit(dut.cpu_rsp_data,
                                       f"cycle {self.cycle}: cpu_rsp_data under valid")
                access.error = bool(_bit(dut.cpu_rsp_error,
                                         f"cycle {self.cycle}: cpu_rsp_error under valid"))
                access.responded_at = self.cycle
            if self.shown is None and self.queue and self.rng.random() >= self.valid_gap:
                self.shown = self.queue.popleft()
                self._drive(self.shown)
            elif self.shown is None:
                self._drive(None)
            taking = self.rng.random() >= self.ready_gap
            dut.cpu_rsp_ready.value = int(taking)


# The memory port -------------------------------------------------------------------------------

class BurstMonitor:
    """Records the bursts on the AXI4 manager port ``prefix``: reads as ``(addr, beats)`` in
    AR order, writes as ``(addr, [(data, strb), ...])`` in AW order. Watches only, but fails
    at once on an unknown AWVALID, WVALID or ARVALID (built before the memory, so that it
    sees one before cocotbext-axi's models trip on it)."""
    def __init__(self, dut, prefix="m_axi"):
        self.dut = dut
        self.sig = {name: getattr(dut, f"{prefix}_{name}") for name in (
            "awvalid", "awready", "awaddr", "wvalid", "wready", "wdata", "wstrb", "wlast",
            "arvalid", "arready", "araddr", "arlen", "rvalid", "bvalid")}
        self.reads, self.writes = [], []
        self._addrs, self._bursts, self._beats = collections.deque(), collections.deque(), []
        self.quiet_cycles = 0
        self.cycles = 0
        cocotb.start_soon(self._run())

    async def _run(self):
        s = self.sig
        while True:
            await RisingEdge(self.dut.clk)
            if self.dut.rst.value != 0:
                continue
            self.cycles += 1
            busy = False
            for channel in ("aw", "w", "ar"):
                if not _bit(s[f"{channel}valid"], f"m_axi_{channel}valid after "
                                                   f"{self.cycles} cycles out of reset"):
                    continue
                busy = True
                ready = s[f"{channel}ready"].value
                if not (ready.is_resolvable and int(ready)):
                    continue
                if channel == "ar":
                    self.reads.append((int(s["araddr"].value), int(s["arlen"].value) + 1))
                elif channel == "aw":
                    self._addrs.append(int(s["awaddr"].value))
                else:
                    self._beats.append((int(s["wdata"].value), int(s["wstrb"].value)))
                    if int(s["wlast"].value):
                        self._bursts.append(self._beats)
                        self._beats = []
            while self._addrs and self._bursts:
                self.writes.append((self._addrs.popleft(), self._bursts.popleft()))
            busy |= any(s[name].value.is_resolvable and int(s[name].value)
                        for name in ("rvalid", "bvalid"))
            self.quiet_cycles = 0 if busy else self.quiet_cycles + 1


async def settle(dut, monitor, memory=None, *, quiet=32, timeout=20_000):
    """Wait until the memory port has been quiet for ``quiet`` cycles (and ``memory``, an
    :class:`AxiMemory`, has answered everything): no write-back is still on its way."""
    for _ in range(timeout):
        await RisingEdge(dut.clk)
        if monitor.quiet_cycles >= quiet and (memory is None or memory.idle()):
            return
    raise AssertionError(f"the memory port is still busy after {timeout} cycles")


class BusView:
    """``memory`` as the bus shows it: a beat at a word for which ``error(write, addr)``
    names a response (or outside ``memory``) reads zeros and writes nothing."""
    def __init__(self, memory, error=None, bytes_per_word=8):
        self.memory, self.error, self.bytes_per_word = memory, error, bytes_per_word

    def fails(self, write, addr):
        word = addr - addr % self.bytes_per_word
        return (not self.memory.contains(word, self.bytes_per_word) or
                (self.error is not None and self.error(write, word) is not None))

    def read(self, addr, length):
        return bytes(0 if self.fails(False, a) else self.memory.read(a, 1)[0]
                     for a in range(addr, addr + length))

    def write(self, addr, data):
        for offset, byte in enumerate(data):
            if not self.fails(True, addr + offset):
                self.memory.write(addr + offset, bytes([byte]))


class Reference:
    """:class:`CacheModel` over a :class:`BusView` of ``memory``, with the RTL's answer to bus
    errors; collects the bursts the model makes."""
    def __init__(self, geometry, memory, error=None):
        self.geometry = geometry
        self.memory = memory
        self.bus = BusView(memory, error, geometry.bytes_per_word)
        self.model = CacheModel(geometry, self.bus)
        self.reads, self.writes = [], []
        self.checked = collections.Counter()

    @property
    def counters(self):
        return self.model.counters

    def access(self, access):
        """Replays ``access``; returns ``(load data, error)``."""
        g, model = self.geometry, self.model
        tag, index, _ = g.split(access.addr)
        lru = model.lru[index]
        outcome = model.access(access.addr, write=access.write, data=access.data,
                               strb=access.strb, cacheable=access.cacheable)
        self.reads += outcome.reads
        self.writes += outcome.writes
        if not access.cacheable:
            return outcome.data, self.bus.fails(access.write, access.addr)
        error = any(self.bus.fails(False, addr + beat * g.bytes_per_word)
                    for addr, beats in outcome.reads for beat in range(beats))
        if error:                                # the refill installed nothing
            line = model.lines[index][model._lookup(tag, index)]
            line.valid = line.dirty = False
            model.lru[index] = lru
        return outcome.data, error

    def maintain(self, **kwargs):
        outcome = self.model.maintain(**kwargs)
        self.writes += outcome.writes

    def check(self, accesses):
        """Replays ``accesses`` (done, in the order taken) and compares each response."""
        for access in accesses:
            assert access.done, f"{describe(access)} has no response"
            data, error = self.access(access)
            self.checked[("" if access.cacheable else "uncached ") +
                         ("stores" if access.write else "loads") + (" erring" if error else "")] += 1
            assert access.error == error, \
                f"{describe(access)}: cpu_rsp_error {int(access.error)}, the model says {int(error)}"
            if not access.write and not error:
                assert access.rsp_data == data, \
                    f"{describe(access)}: cache {access.rsp_data:#018x}, model {data:#018x}"

    def check_bursts(self, monitor):
        assert monitor.reads == self.reads, _first_difference("read bursts", monitor.reads,
                                                              self.reads)
        assert monitor.writes == self.writes, _first_difference("write bursts",
                                                                monitor.writes, self.writes)

    def check_memory(self, data, what="memory"):
        mismatches = [hex(self.memory.base + i)
                      for i, (a, b) in enumerate(zip(data, self.memory.data)) if a != b]
        assert not mismatches, f"{what}: {len(mismatches)} bytes differ from the model, " \
                               f"first at {mismatches[:8]}"


def _first_difference(what, seen, expected):
    for index, (a, b) in enumerate(zip(seen, expected)):
        if a != b:
            return f"{what}: #{index} is {_burst(a)} on the bus, {_burst(b)} in the model"
    return f"{what}: {len(seen)} on the bus, {len(expected)} in the model"


def _burst(burst):
    addr, rest = burst
    if isinstance(rest, int):
        return f"({addr:#x}, {rest} beats)"
    return f"({addr:#x}, {[(hex(d), hex(s)) for d, s in rest]})"


# Registers -------------------------------------------------------------------------------------

async def geometry_of(regs):
    """The cache's geometry from its GEOMETRY register and the widths of its ports."""
    fields = await regs.read_fields("GEOMETRY")
    info = ports()["axi"]["m_axi"]
    line_size, ways = 1 << fields["line_size_log2"], 1 << fields["ways_log2"]
    return CacheGeometry(size=line_size * ways << fields["sets_log2"], ways=ways,
                         line_size=line_size, addr_width=info["addr_width"],
                         data_width=info["data_width"])


async def start_maintenance(regs, op, scope, *, start=0, end=0, set=0, way=0):
    """Program one operation and write MAINT_GO (returns once the write is answered)."""
    if scope == MaintenanceScope.RANGE:
        for name, value in (("START", start), ("END", end)):
            await regs.write(f"{name}_LO", addr=value & 0xffff_ffff)
            await regs.write(f"{name}_HI", addr=value >> 32)
    elif scope == MaintenanceScope.SET_WAY:
        await regs.write("SETWAY", set=set, way=way)
    await regs.write("MAINT_CTRL", op=op.value, scope=scope.value)
    await regs.write("MAINT_GO", go=1)


async def wait_irq(dut, cycles=50_000):
    for _ in range(cycles):
        await RisingEdge(dut.clk)
        if _bit(dut.irq, "irq"):
            return
    raise AssertionError(f"no interrupt in {cycles} cycles")


async def wait_not_busy(dut, regs, cycles=50_000):
    for _ in range(cycles // 8):
        if not (await regs.read_fields("MAINT_STATUS"))["busy"]:
            return
        await ClockCycles(dut.clk, 8)
    raise AssertionError(f"MAINT_STATUS.busy still set after {cycles} cycles")


async def read_counters(regs):
    return {name: await regs.read(name.upper()) for name in COUNTERS}


# Traffic ---------------------------------------------------------------------------------------

class Addresses:
    """Random word addresses in ``[BASE, BASE + SIZE)``: mostly a few hot sets, each with
    more tags than ways (hits, evictions, write-backs), often the line just used, the rest
    anywhere."""
    def __init__(self, rng, g, *, sets=3, extra_tags=2):
        self.rng, self.g = rng, g
        first_tag = g.split(BASE)[0]
        tags_in_memory = SIZE // (g.sets * g.line_size)
        self.sets = rng.sample(range(g.sets), sets)
        self.tags = [first_tag + t for t in rng.sample(range(tags_in_memory),
                                                       min(tags_in_memory, g.ways + extra_tags))]
        self.last = None

    def hot_line(self):
        return self.g.line_addr(self.rng.choice(self.tags), self.rng.choice(self.sets))

    def word(self):
        g, rng = self.g, self.rng
        choice = rng.random()
        if choice < 0.3 and self.last is not None:
            line = self.last
        elif choice < 0.85:
            line = self.hot_line()
        else:
            line = BASE + rng.randrange(SIZE // g.line_size) * g.line_size
        self.last = line
        return line + rng.randrange(g.words_per_line) * g.bytes_per_word


def random_maintenance(rng, addrs):
    g = addrs.g
    scope = rng.choice([MaintenanceScope.RANGE] * 4 + [MaintenanceScope.SET_WAY] * 2 +
                       [MaintenanceScope.ALL])
    start = addrs.hot_line() + rng.randrange(-g.line_size, g.line_size)
    end = start + rng.choice([0, 1, g.line_size, rng.randrange(1, 4 * g.line_size),
                              rng.randrange(2 * g.sets * g.line_size), -rng.randrange(1, 64)])
    # SETWAY's bits above the cache's index and way widths are ignored.
    set = rng.choice(addrs.sets) + rng.choice([0, g.sets * rng.randrange(1, 2048)])
    way = rng.randrange(g.ways) + rng.choice([0, g.ways * rng.randrange(1, 256 // g.ways)])
    return dict(op=rng.choice(list(MaintenanceOp)), scope=scope, start=start,
                end=max(end, 0), set=set, way=way)


class Bench:
    """What one test drives and checks, built before reset so that every input is driven
    through it: memory (:class:`AxiMemory` over random contents, or ``AxiRam``), the CPU
    port, the register bank, the burst monitor, the AXI rules and, once :meth:`begin` has
    emptied the cache, the :class:`Reference`."""
    def __init__(self, dut, *, ram=False, pause=0.3, error=None, valid_gap=0.3,
                 ready_gap=0.3):
        self.dut = dut
        self.rng = rng = seeded_rng()
        self.image = Memory(BASE, SIZE)
        self.image.write(BASE, rng.randbytes(SIZE))
        self.error = error
        self.monitor = BurstMonitor(dut)
        if ram:
            self.axi = None
            self.ram = AxiRam(AxiBus.from_prefix(dut, "m_axi"), dut.clk, dut.rst,
                              size=2 ** 32)
            self.ram.write(BASE, self.image.data)
        else:
            self.axi = AxiMemory(dut, "m_axi", self.image.copy(), rng=rng, pause=pause,
                                 error=error)
        self.regs = RegisterPort(dut, "cache").bank
        self.cpu = CpuPort(dut, rng, valid_gap=valid_gap, ready_gap=ready_gap)
        self.rules = self.ref = self.g = self.addrs = None

    async def begin(self, **addresses):
        """Reset, and wait for MAINT_STATUS.busy to fall: out of reset the cache sweeps its
        tag memories (block RAM, which ``rst`` does not clear), so that neither the lines of
        an earlier test in the same simulation nor the random initial contents Verilator
        chose stay valid; no software invalidation. The model starts empty, with the cache's
        counters."""
        self.rules = await start(self.dut, inputs=CPU_INPUTS)
        self.ref = Reference(await geometry_of(self.regs), self.image, self.error)
        self.g = self.ref.geometry
        self.addrs = Addresses(self.rng, self.g, **addresses)
        await wait_not_busy(self.dut, self.regs)
        self.ref.counters.update(await read_counters(self.regs))

    def memory(self):
        """What memory holds now."""
        return bytes(self.axi.memory.data) if self.axi else self.ram.read(BASE, SIZE)

    def dma_write(self, addr, data):
        """A device writes memory behind the cache's back (the bus must be quiet)."""
        (self.axi.memory if self.axi else self.ram).write(addr, data)
        self.ref.memory.write(addr, data)

    def random_dma_write(self):
        addr = self.addrs.word() + self.rng.randrange(8)
        data = self.rng.randbytes(self.rng.randrange(1, 3 * self.g.line_size))
        self.dma_write(addr, data[:BASE + SIZE - addr])

    def issue_random(self, count, *, cacheable=1.0, writes=0.45, addr=None):
        """``count`` random accesses (byte strobes: all, none, one or any) on the CPU port."""
        rng, g = self.rng, self.g
        accesses = []
        for _ in range(count):
            strb = rng.choice([(1 << g.bytes_per_word) - 1, rng.getrandbits(g.bytes_per_word),
                               1 << rng.randrange(g.bytes_per_word), 0])
            accesses.append(self.cpu.issue(addr() if addr else self.addrs.word(),
                                           write=rng.random() < writes,
                                           data=rng.getrandbits(g.data_width), strb=strb,
                                           cacheable=rng.random() < cacheable))
        return accesses

    async def run(self, accesses):
        """Wait for ``accesses`` (issued), check them and, once the bus is quiet, the
        bursts."""
        await self.cpu.wait()
        self.ref.check(accesses)
        await self.settle()

    async def settle(self):
        await settle(self.dut, self.monitor, self.axi)
        self.ref.check_bursts(self.monitor)

    async def maintain(self, *, by_irq=True, **kwargs):
        """One maintenance operation on the cache and the model; waits for the interrupt
        (enabled) or for MAINT_STATUS.busy to fall (interrupt disabled)."""
        dut, regs = self.dut, self.regs
        await regs.write("IRQ_ENABLE", done=int(by_irq))
        await start_maintenance(regs, **kwargs)
        if by_irq:
            await wait_irq(dut)
        else:
            await wait_not_busy(dut, regs)
            assert not _bit(dut.irq, "irq"), "irq raised with IRQ_ENABLE.done clear"
        assert (await regs.read_fields("IRQ_STATUS"))["done"] == 1
        await regs.write("IRQ_STATUS", done=1)
        assert (await regs.read_fields("IRQ_STATUS"))["done"] == 0 and not _bit(dut.irq, "irq")
        self.ref.maintain(**kwargs)

    async def check_counters(self):
        seen = await read_counters(self.regs)
        assert seen == self.ref.counters, f"counters: cache {seen}, model {self.ref.counters}"

    async def finish(self):
        """CLEAN of the whole cache, then all of memory and the counters against the model,
        and the AXI rules of every port."""
        await self.maintain(op=MaintenanceOp.CLEAN, scope=MaintenanceScope.ALL)
        await self.settle()
        self.ref.check_memory(self.memory())
        await self.check_counters()
        self.dut._log.info("the model agreed on %s; counters %s; %d read and %d write bursts",
                           dict(self.ref.checked), self.ref.counters, len(self.ref.reads),
                           len(self.ref.writes))
        for rule in self.rules:
            rule.assert_clean()


# Tests -----------------------------------------------------------------------------------------

@cocotb.test()
async def random_loads_stores_out_of_order_memory(dut):
    """Random cacheable loads and stores with byte strobes, back to back or with gaps, on a
    memory that pauses every channel at random; each response, each burst and, after a
    CLEAN of everything, all of memory against the model. Devices write memory behind the
    cache's back between batches: loads keep seeing what the cache holds."""
    bench = Bench(dut)
    await bench.begin()
    rng, cpu = bench.rng, bench.cpu
    for _ in range(4 * ROUNDS):
        cpu.valid_gap = rng.choice([0.0, 0.3, 0.7])
        cpu.ready_gap = rng.choice([0.0, 0.3])
        cpu.idle_payload = rng.choice(["x", "junk"])
        await bench.run(bench.issue_random(rng.randrange(1, 40)))
        if rng.random() < 0.4:
            bench.random_dma_write()
    await bench.finish()


@cocotb.test()
async def maintenance_through_registers(dut):
    """Clean, invalidate and clean+invalidate by range, set/way and all, programmed through
    the register bank, waited on by interrupt or by MAINT_STATUS.busy: after a clean memory
    holds the dirty data, after an invalidate loads see what devices wrote behind the cache's
    back, and accesses queued while an operation runs wait for it."""
    bench = Bench(dut)
    await bench.begin()
    rng, cpu, g, ref = bench.rng, bench.cpu, bench.g, bench.ref

    # Directed: a buffer written through the cache, cleaned, overwritten by a device,
    # read stale, invalidated, read fresh.
    buf, length = BASE + 0x2000 + g.line_size // 2, 3 * g.line_size
    first, last = buf - buf % g.bytes_per_word, buf + length
    words = range(first, last, g.bytes_per_word)
    pattern = {addr: rng.getrandbits(g.data_width) for addr in words}
    stored = b"".join(pattern[addr].to_bytes(g.bytes_per_word, "little") for addr in words)

    def buffer():
        return bench.memory()[first - BASE:last - BASE]

    await bench.run([cpu.issue(addr, write=True, data=pattern[addr]) for addr in words])
    assert buffer() != stored, "stores must stay in the cache"
    await bench.maintain(op=MaintenanceOp.CLEAN, scope=MaintenanceScope.RANGE, start=buf,
                         end=last)
    assert buffer() == stored, "CLEAN by range: memory does not hold the stored data"
    fresh = rng.randbytes(last - first)
    bench.dma_write(first, fresh)
    loads = [cpu.issue(addr) for addr in words]
    await bench.run(loads)
    assert [a.rsp_data for a in loads] == [pattern[addr] for addr in words], \
        "loads before INVALIDATE must hit the cleaned lines"
    await bench.maintain(op=MaintenanceOp.INVALIDATE, scope=MaintenanceScope.RANGE,
                         start=buf, end=last, by_irq=False)
    loads = [cpu.issue(addr) for addr in words]
    await bench.run(loads)
    assert b"".join(a.rsp_data.to_bytes(g.bytes_per_word, "little") for a in loads) == fresh, \
        "loads after INVALIDATE must see what the device wrote"
    await bench.check_counters()

    # Random: accesses, then an operation with accesses queued behind it.
    for _ in range(3 * ROUNDS):
        await bench.run(bench.issue_random(rng.randrange(1, 30), writes=0.6))
        if rng.random() < 0.5:
            bench.random_dma_write()
        kwargs = random_maintenance(rng, bench.addrs)
        if rng.random() < 0.3:
            await bench.maintain(**kwargs, by_irq=False)
            ref.check_memory(bench.memory(), f"memory after {kwargs}")
        else:
            await bench.regs.write("IRQ_ENABLE", done=1)
            await start_maintenance(bench.regs, **kwargs)
            behind = bench.issue_random(rng.randrange(0, 8))
            await wait_irq(dut)
            irq_at = cpu.cycle
            image = bench.memory()       # as the operation left it: done means in memory
            await bench.regs.write("IRQ_STATUS", done=1)
            ref.maintain(**kwargs)
            ref.check_memory(image, f"memory at the interrupt of {kwargs}")
            await bench.run(behind)
            for access in behind:
                assert access.accepted_at >= irq_at, \
                    f"{describe(access)} taken before the interrupt (cycle {irq_at})"
        await bench.settle()
        await bench.check_counters()
    await bench.finish()


@cocotb.test()
async def uncached_accesses_and_bus_errors(dut):
    """Cacheable and uncached accesses over memory with a window answering SLVERR, one
    answering DECERR, one failing writes only (write-backs there are lost) and addresses
    past the end of memory (DECERR): ``cpu_rsp_error`` where the model says, nothing else
    corrupted."""
    windows = {}

    def error(write, addr):
        for (lo, hi), (resp, writes_only) in windows.items():
            if lo <= addr < hi and (write or not writes_only):
                return resp
        return None

    bench = Bench(dut, pause=0.2, error=error)
    await bench.begin(sets=2, extra_tags=3)
    rng, g, addrs = bench.rng, bench.g, bench.addrs
    lines = rng.sample(sorted({g.line_addr(t, s) for t in addrs.tags for s in addrs.sets}), 3)
    windows[(lines[0], lines[0] + 2 * g.line_size)] = (Resp.SLVERR, False)
    windows[(lines[1], lines[1] + g.line_size)] = (Resp.DECERR, False)
    windows[(lines[2], lines[2] + g.line_size)] = (Resp.SLVERR, True)

    def addr():
        if rng.random() < 0.05:                   # past the end of memory
            return BASE + SIZE + rng.randrange(4 * g.line_size)
        if rng.random() < 0.3:
            lo, hi = rng.choice(list(windows))
            return lo + rng.randrange((hi - lo) // g.bytes_per_word) * g.bytes_per_word
        return addrs.word()

    errors = collections.Counter()
    for _ in range(4 * ROUNDS):
        accesses = bench.issue_random(rng.randrange(1, 40), cacheable=0.6, addr=addr)
        await bench.run(accesses)
        errors.update((a.cacheable, a.write) for a in accesses if a.error)
        bench.ref.check_memory(bench.memory())
        if rng.random() < 0.3:
            await bench.maintain(**random_maintenance(rng, addrs))
            await bench.settle()
        await bench.check_counters()
    assert errors[(False, False)] and errors[(False, True)] and errors[(True, False)], \
        f"too few errors seen (by cacheable, write): {dict(errors)}"
    await bench.finish()


@cocotb.test()
async def traffic_on_vip_axi_ram(dut):
    """Cacheable and uncached loads and stores and maintenance on cocotbext-axi's own
    AxiRam, unmodified; the RAM against the model after a CLEAN of everything."""
    bench = Bench(dut, ram=True, valid_gap=0.2, ready_gap=0.2)
    await bench.begin()
    rng = bench.rng
    for _ in range(3 * ROUNDS):
        await bench.run(bench.issue_random(rng.randrange(1, 40), cacheable=0.85))
        if rng.random() < 0.4:
            await bench.maintain(**random_maintenance(rng, bench.addrs),
                                 by_irq=rng.random() < 0.5)
    await bench.finish()
