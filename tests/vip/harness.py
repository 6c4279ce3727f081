"""The cocotb side of the third-party VIP tests: clock and reset, the AXI rules on every
port, and an AXI4 memory that answers out of order.

The test that starts the simulator (``tests/test_vip.py``) writes the block's Verilog with
``dmabuf-soc verilog`` and a description of its ports (:func:`ports`, from
:class:`~dmabuf_soc.hw.bus.ports.StandardPorts`), so that everything here binds to the ports
by their AMBA names, as a user's own testbench would.

The AXI rules are checked twice: by cocotbext-axi's own models (each asserts the rules of
what it receives) and by :class:`AxiRules`, which samples every channel of every AXI port at
each rising edge and feeds the project's protocol checker
(:class:`~dmabuf_soc.sim.bus.checker.AXI4Checker`), and fails on an X or Z on a VALID or READY
after reset, or in a payload while its VALID is high.
"""

import collections
import json
import os
import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge
from cocotbext.axi import AxiBus, AxiLiteBus, AxiLiteMaster
from cocotbext.axi.axi_channels import (AxiARSink, AxiAWSink, AxiBSource, AxiRSource,
                                        AxiWSink)

from dmabuf_soc.hw.bus.axi import AXI4LiteSignature, AXI4Signature, Resp
from dmabuf_soc.sim.bus.checker import AXI4Checker, AXI4LiteChecker
from dmabuf_soc.hw.regs.soc_map import soc_block_spec
from dmabuf_soc.sw.regs.bank import RegisterBank

__all__ = ["ports", "start", "quiet", "AxiRules", "Memory", "AxiMemory", "RegisterPort", "random_pauses",
           "seeded_rng"]

#: Environment variable naming the JSON description of the block's ports.
PORTS_ENV = "DMABUF_SOC_VIP_PORTS"

_CHANNELS = ("aw", "w", "b", "ar", "r")
_FIELD_NAMES = {"sid": "user"}


def ports():
    """The block's ports as ``tests/test_vip.py`` described them: ``{"ports": [{name,
    direction, width, group, note}], "axi": {prefix: {kind, role, widths...}}}``."""
    with open(os.environ[PORTS_ENV]) as file:
        return json.load(file)


def _signature(info):
    if info["kind"] == "axil":
        return AXI4LiteSignature(addr_width=info["addr_width"], data_width=info["data_width"])
    return AXI4Signature(addr_width=info["addr_width"], data_width=info["data_width"],
                         id_width=info["id_width"], sid_width=info["sid_width"])


def random_pauses(rng, probability):
    """A cocotbext-axi pause generator: pause in each cycle with ``probability``."""
    while True:
        yield rng.random() < probability


async def start(dut, *, reset_cycles=4, inputs=None, record=False):
    """Start a 100 MHz clock on ``clk``, hold ``rst`` for ``reset_cycles`` cycles with every
    VALID and READY input low and the ``inputs`` given (name: value) driven, and check that no output is X or Z once reset is
    released; returns the :class:`AxiRules` of every AXI port, already watching (with
    ``record``, each one's checker keeps a log of every transfer)."""
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    # Every VALID and READY input low (a quiet bus) until the VIP models take them over;
    # payload inputs stay X, as cocotbext-axi leaves them.
    quiet = {port["name"]: 0 for port in ports()["ports"] if port["direction"] == "input"
             and port["name"].endswith(("valid", "ready"))}
    for name, value in {**quiet, **(inputs or {})}.items():
        getattr(dut, name).value = value
    dut.rst.value = 1
    rules = [AxiRules(dut, prefix, info, record=record)
             for prefix, info in ports()["axi"].items()]
    for rule in rules:
        cocotb.start_soon(rule.run())
    await ClockCycles(dut.clk, reset_cycles)
    dut.rst.value = 0
    await RisingEdge(dut.clk)
    unknown = [f"{port['name']}={getattr(dut, port['name']).value}"
               for port in ports()["ports"] if port["direction"] == "output"
               and not getattr(dut, port["name"]).value.is_resolvable]
    assert not unknown, f"outputs X or Z after reset: {', '.join(unknown)}"
    return rules


async def quiet(dut, rules, *, cycles=32, timeout=100_000):
    """Wait until no transfer has crossed any of the ports that ``rules`` watch for
    ``cycles`` cycles in a row (at most ``timeout`` cycles)."""
    def transfers():
        return [dict(rule.checker.transfers) for rule in rules]
    last, still = transfers(), 0
    for _ in range(timeout):
        await RisingEdge(dut.clk)
        now = transfers()
        still = still + 1 if now == last else 0
        last = now
        if still >= cycles:
            return
    raise AssertionError(f"the bus did not fall quiet in {timeout} cycles")


class AxiRules:
    """The AXI rules of one port (``prefix``), checked at every rising edge of ``clk``.

    Attributes
    ----------
    checker : AXI4Checker or AXI4LiteChecker
        The project's checker, fed with what this monitor samples; with ``record``, its
        ``log`` holds ``(cycle, channel, fields)`` of every transfer.
    unknown : list of str
        The X or Z values seen on a VALID or READY, or in a payload under VALID.
    """
    def __init__(self, dut, prefix, info, *, record=False):
        self.dut = dut
        self.prefix = prefix
        signature = _signature(info)
        lite = info["kind"] == "axil"
        self.checker = (AXI4LiteChecker if lite else AXI4Checker)(signature.create(),
                                                                  name=prefix, record=record)
        self.unknown = []
        self._channels = []
        for channel in _CHANNELS:
            layout = signature.members[channel].signature.members["payload"].shape
            fields = [(name, getattr(dut, f"{prefix}_{channel}{_FIELD_NAMES.get(name, name)}"))
                      for name, _ in layout]
            self._channels.append((channel, getattr(dut, f"{prefix}_{channel}valid"),
                                   getattr(dut, f"{prefix}_{channel}ready"), fields))

    async def run(self):
        while True:
            await RisingEdge(self.dut.clk)
            rst = self.dut.rst.value
            values = []
            for channel, valid, ready, fields in self._channels:
                valid_value, ready_value = valid.value, ready.value
                for what, value in (("valid", valid_value), ("ready", ready_value)):
                    if not value.is_resolvable and rst == 0:
                        self._unknown(f"{channel}{what} is {value}")
                valid_bit = int(valid_value) if valid_value.is_resolvable else 0
                ready_bit = int(ready_value) if ready_value.is_resolvable else 0
                payload = {}
                if valid_bit:
                    for name, handle in fields:
                        value = handle.value
                        if value.is_resolvable:
                            payload[name] = int(value)
                        elif rst == 0:
                            self._unknown(f"{channel}{name} is {value} under {channel}valid")
                values += [valid_bit, ready_bit, self.checker._codecs[channel].pack(**payload)]
            self.checker.step(rst == 1, values)

    def _unknown(self, what):
        if len(self.unknown) < 20:
            self.unknown.append(f"cycle {self.checker.cycle}: {self.prefix}: {what}")

    def assert_clean(self, *, idle=True):
        """Fail on any violation or unknown value seen; with ``idle``, also on transactions
        still outstanding."""
        assert not self.unknown, "\n".join(self.unknown)
        self.checker.assert_clean(idle=idle)


class Memory:
    """``size`` bytes at ``base``, zero at first, read and written by address."""
    def __init__(self, base, size):
        self.base, self.size = base, size
        self.data = bytearray(size)

    def contains(self, addr, length=1):
        return self.base <= addr and addr + length <= self.base + self.size

    def read(self, addr, length):
        offset = self._offset(addr, length)
        return bytes(self.data[offset:offset + length])

    def write(self, addr, data):
        offset = self._offset(addr, len(data))
        self.data[offset:offset + len(data)] = data

    def copy(self):
        other = Memory(self.base, self.size)
        other.data[:] = self.data
        return other

    def _offset(self, addr, length):
        if not self.contains(addr, length):
            raise ValueError(f"{addr:#x}+{length:#x} is outside the memory "
                             f"{self.base:#x}+{self.size:#x}")
        return addr - self.base


class AxiMemory:
    """An AXI4 subordinate over a byte array, on cocotbext-axi's channel drivers, that
    answers out of order.

    Reads of different IDs are answered beat by beat in random interleaving, writes' B
    responses in random order across IDs; transactions of one ID stay in order, as AXI
    requires. Every channel can pause at random.

    Parameters
    ----------
    dut, prefix :
        The DUT and the prefix of its AXI4 manager port (``m_axi``).
    memory : Memory
        What the port reads and writes; addresses outside its window get DECERR.
    rng : random.Random
    latency : (int, int)
        Range of cycles from a request's acceptance to its first response.
    pause : float
        Probability that each channel pauses in a cycle.
    interleave : bool
        Whether read beats of different IDs interleave.
    error : callable or None
        ``error(write, addr)`` returns a :class:`Resp` for a beat at ``addr`` that must fail
        (the beat reads zeros or writes nothing), or ``None``.
    """
    def __init__(self, dut, prefix, memory, *, rng, latency=(1, 12), pause=0.2,
                 interleave=True, error=None):
        bus = AxiBus.from_prefix(dut, prefix)
        clock, reset = dut.clk, dut.rst
        self.aw = AxiAWSink(bus.write.aw, clock, reset)
        self.w = AxiWSink(bus.write.w, clock, reset)
        self.b = AxiBSource(bus.write.b, clock, reset)
        self.ar = AxiARSink(bus.read.ar, clock, reset)
        self.r = AxiRSource(bus.read.r, clock, reset)
        for channel in (self.aw, self.w, self.b, self.ar, self.r):
            channel.set_pause_generator(random_pauses(rng, pause))
        self.b.queue_occupancy_limit = self.r.queue_occupancy_limit = 2
        self.clock = clock
        self.memory = memory
        self.rng = rng
        self.latency = latency
        self.interleave = interleave
        self.error = error
        self.bytes_per_beat = len(bus.read.r.rdata) // 8
        self.cycle = 0
        self.reads = collections.OrderedDict()     # id -> deque of [due, addr, beats left, size]
        self.writes = collections.OrderedDict()    # id -> deque of [due, resp]
        self.accepted = collections.Counter()
        for coroutine in (self._clock(), self._take_reads(), self._answer_reads(),
                          self._take_writes(), self._answer_writes()):
            cocotb.start_soon(coroutine)

    # The bus -------------------------------------------------------------------------------

    def _resp(self, addr, write):
        if not self.memory.contains(addr):
            return Resp.DECERR
        resp = self.error(write, addr) if self.error is not None else None
        return Resp.OKAY if resp is None else Resp(resp)

    def _deadline(self):
        return self.cycle + self.rng.randint(*self.latency)

    async def _clock(self):
        while True:
            await RisingEdge(self.clock)
            self.cycle += 1

    async def _take_reads(self):
        while True:
            ar = await self.ar.recv()
            self.accepted["ar"] += 1
            self.reads.setdefault(int(ar.arid), collections.deque()).append(
                [self._deadline(), int(ar.araddr), int(ar.arlen) + 1, 1 << int(ar.arsize)])

    async def _due_ids(self, queues, source):
        """Wait for a cycle in which ``source`` has room and the oldest transaction of some
        ID in ``queues`` is due; return those IDs."""
        while True:
            await RisingEdge(self.clock)
            if not source.full():
                due = [id for id, queue in queues.items()
                       if queue and queue[0][0] <= self.cycle]
                if due:
                    return due

    async def _answer_reads(self):
        current = None
        while True:
            ready = await self._due_ids(self.reads, self.r)
            if current not in ready or (self.interleave and self.rng.random() < 0.5):
                current = self.rng.choice(ready)
            queue = self.reads[current]
            burst = queue[0]
            _, addr, left, size = burst
            word = addr - addr % self.bytes_per_beat
            resp = self._resp(addr, write=False)
            data = (int.from_bytes(self.memory.read(word, self.bytes_per_beat), "little")
                    if resp == Resp.OKAY else 0)
            beat = self.r._transaction_obj()
            beat.rid, beat.rdata, beat.rresp, beat.rlast = current, data, resp.value, left == 1
            self.r.send_nowait(beat)
            burst[1] = addr - addr % size + size
            burst[2] -= 1
            if burst[2] == 0:
                queue.popleft()
                current = None

    async def _take_writes(self):
        while True:
            aw = await self.aw.recv()
            self.accepted["aw"] += 1
            addr, size, resp = int(aw.awaddr), 1 << int(aw.awsize), Resp.OKAY
            for beat in range(int(aw.awlen) + 1):
                w = await self.w.recv()
                beat_resp = self._resp(addr, write=True)
                if beat_resp == Resp.OKAY:
                    word = addr - addr % self.bytes_per_beat
                    data = int(w.wdata).to_bytes(self.bytes_per_beat, "little")
                    strb = int(w.wstrb)
                    for lane in range(self.bytes_per_beat):
                        if strb >> lane & 1:
                            self.memory.write(word + lane, data[lane:lane + 1])
                elif resp == Resp.OKAY:
                    resp = beat_resp
                addr = addr - addr % size + size
            self.writes.setdefault(int(aw.awid), collections.deque()).append(
                [self._deadline(), resp])

    async def _answer_writes(self):
        while True:
            id = self.rng.choice(await self._due_ids(self.writes, self.b))
            _, resp = self.writes[id].popleft()
            b = self.b._transaction_obj()
            b.bid, b.bresp = id, resp.value
            self.b.send_nowait(b)

    def idle(self):
        """Whether every request taken has been answered."""
        return (not any(self.reads.values()) and not any(self.writes.values())
                and self.r.empty() and self.b.empty() and not self.r.active
                and not self.b.active)


def seeded_rng():
    """A :class:`random.Random` seeded from cocotb's random seed (``COCOTB_RANDOM_SEED``),
    so that a failing run can be repeated."""
    return random.Random(cocotb.RANDOM_SEED)


class RegisterPort:
    """The block's AXI4-Lite port, driven by cocotbext-axi's :class:`AxiLiteMaster`, with the
    two MMIO calls of the project's machine interface, so that the driver's
    :class:`~dmabuf_soc.sw.regs.bank.RegisterBank` (offsets and fields from the RDL) programs
    it. The bank's addresses are the SoC's; the port takes them relative to the block's base.

    Attributes
    ----------
    bank : RegisterBank
        The registers of MMIO block ``block`` (``"dma0"``, ``"cache"``, ``"smmu"``).
    """
    def __init__(self, dut, block, prefix="s_axil"):
        self.master = AxiLiteMaster(AxiLiteBus.from_prefix(dut, prefix), dut.clk, dut.rst)
        self.base = soc_block_spec(block).base
        self.bank = RegisterBank(self, block)

    async def mmio_read(self, addr):
        result = await self.master.read(addr - self.base, 4)
        assert int(result.resp) == Resp.OKAY.value, f"read of {addr:#x}: {result.resp!r}"
        return int.from_bytes(result.data, "little")

    async def mmio_write(self, addr, value):
        result = await self.master.write(addr - self.base, value.to_bytes(4, "little"))
        assert int(result.resp) == Resp.OKAY.value, f"write of {addr:#x}: {result.resp!r}"
