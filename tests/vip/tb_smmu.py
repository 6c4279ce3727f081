"""The SMMU's Verilog (two translation ports) under cocotb and cocotbext-axi, against the
reference model.

cocotbext-axi's :class:`AxiMaster` on ``s00_axi`` and ``s01_axi`` plays the two DMA masters
(AxUSER carries the stream ID; IDs, lengths and byte offsets at random; random pauses on
every channel). The table port ``m_axi_table`` is an :class:`~harness.AxiMemory` (read
beats of different IDs interleaved, write responses reordered, random pauses, error
injection) over the stream table, the command and event queues and the page tables, built
as ``tests/smmu_tables.py`` builds them for ``tests/hw/smmu/test_smmu.py``; the downstream ports are
two more :class:`~harness.AxiMemory` over one data memory, as the SoC's DDR behind its
interconnect. The registers are programmed by the driver's own register bank over
cocotbext-axi's AXI4-Lite manager. Every input is held at 0 through reset: the SMMU passes
R and B payloads up and W payloads down combinationally, so its outputs are defined after
reset only if its inputs are.

Every transaction is compared with :class:`~dmabuf_soc.sim.smmu.model.SmmuModel`: the
upstream response; the address, length, size, ID and stream ID of every burst that reaches
a downstream port, in order, per port and channel (and none for a transaction that faults);
the data read, byte for byte; the data memory after the writes, byte for byte; and the
event records the SMMU writes to its event queue.
"""

import logging
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import cocotb
from cocotb.triggers import ClockCycles
from cocotbext.axi import AxiBus, AxiMaster, AxiProt

from dmabuf_soc.hw.bus.axi import Resp
from dmabuf_soc.hw.smmu.format import (CMD_BYTES, EVENT_BYTES, GRANULE, IA_BITS,
                                       CommandLayout, DescriptorLayout, EventLayout, EventType,
                                       Opcode, StreamConfig, pack, table_index, unpack)
from dmabuf_soc.sim.smmu.model import Event, FetchError, SmmuModel, Status

from harness import (AxiMemory, Memory, RegisterPort, ports, quiet, random_pauses,
                     seeded_rng, start)

sys.path.append(str(Path(__file__).resolve().parent.parent))        # tests/: smmu_tables
from smmu_tables import (CMDQ, EVTQ, STRTAB, Tables, cmd_cfgi_ste, cmd_sync,  # noqa: E402
                         cmd_tlbi_va, write_ste)

#: The table port's memory: stream table, queues and the table pool (``smmu_tables``).
TABLE_BASE, TABLE_SIZE = STRTAB, 0x20_0000
#: The data memory behind both downstream ports: 2 MiB of pages, then a 2 MiB block.
DATA_BASE, DATA_SIZE = 0x1_0000_0000, 0x40_0000
PAGES_BASE, BLOCK_BASE = DATA_BASE, DATA_BASE + 0x20_0000
PAGES = 0x20_0000 // GRANULE
#: A table address that no memory answers (DECERR on the table port).
NOWHERE = 0x9000_0000

STRTAB_LOG2SIZE = 4
CMDQ_LOG2SIZE = 6
EVTQ_LOG2SIZE = 6

#: Stream contexts: stream ID -> ASID. Streams 1 and 3 share a domain; 3 records no faults.
CONTEXTS = {1: 5, 2: 9, 3: 5}
SILENT_SID = 3
BYPASS_SID, ABORT_SID, INVALID_SID, RESERVED_SID = 4, 6, 7, 8
UNKNOWN_SID = 1 << STRTAB_LOG2SIZE          # beyond the stream table

ROUNDS = int(os.environ.get("VIP_ROUNDS", "2"))
TRANSFERS = int(os.environ.get("VIP_TRANSFERS", "8"))
MAX_LENGTH = int(os.environ.get("VIP_MAX_LENGTH", "256"))

_DESC = DescriptorLayout()


def descriptor(**fields):
    return int.from_bytes(pack(_DESC, **fields), "little")


# The world: stream table, page tables ---------------------------------------------------------

class World:
    """The stream table and random page tables of :data:`CONTEXTS` in ``table_memory``, and
    the model that reads them.

    Attributes
    ----------
    contexts : dict of int to int
        The ASID of each translating stream ID (:data:`CONTEXTS`, as STE changes leave it).
    regions : dict of int to list of (int, int)
        Mapped, readable and writable input ranges ``(iova, size)`` by ASID: runs of
        consecutive pages, and a 2 MiB block.
    bad : set of int
        8-byte words of table memory whose reads answer SLVERR (the model's fetch errors).
    """
    def __init__(self, rng, table_memory, *, runs=6):
        self.rng = rng
        self.memory = table_memory
        self.tables = Tables(table_memory)
        self.bad = set()
        self.contexts = dict(CONTEXTS)
        self.ttb = {asid: self.tables.page() for asid in sorted(set(CONTEXTS.values()))}
        self.regions = {asid: [] for asid in self.ttb}
        self.used = set()               # (asid, "slot" | "table" | "page", iova)
        for sid, asid in CONTEXTS.items():
            write_ste(table_memory, sid, ttb=self.ttb[asid], asid=asid,
                      record=int(sid != SILENT_SID))
        write_ste(table_memory, BYPASS_SID, config=StreamConfig.BYPASS)
        write_ste(table_memory, ABORT_SID, config=StreamConfig.ABORT)
        write_ste(table_memory, INVALID_SID, valid=0)
        write_ste(table_memory, RESERVED_SID, config=0b011)
        # Two 1 GiB regions per domain hold most mappings, so that tables are shared.
        self.gigs = {asid: [rng.randrange(0, 1 << IA_BITS, 1 << 30) for _ in range(2)]
                     for asid in self.ttb}
        for asid in self.ttb:
            block = self.free_iova(asid, 1 << 21)
            self.tables.map(self.ttb[asid], block, BLOCK_BASE, 2)
            self.regions[asid].append((block, 1 << 21))
            for _ in range(runs):
                pages = rng.randrange(1, 4)
                iova = self.free_iova(asid, pages * GRANULE)
                for n in range(pages):
                    self.tables.map(self.ttb[asid], iova + n * GRANULE, self.random_page(), 3)
                self.regions[asid].append((iova, pages * GRANULE))
        self.model = SmmuModel(self.read64, strtab_base=STRTAB,
                               strtab_log2size=STRTAB_LOG2SIZE)

    def random_page(self):
        return PAGES_BASE + self.rng.randrange(PAGES) * GRANULE

    def free_iova(self, asid, size):
        """An input range of ``size`` (a 2 MiB block, or pages within one 2 MiB slot) that
        no mapping of ``asid`` uses; marks it used."""
        rng, used = self.rng, self.used
        while True:
            if size == 1 << 21:
                iova = rng.choice(self.gigs[asid]) + rng.randrange(512) * (1 << 21)
                if (asid, "slot", iova) not in used and (asid, "table", iova) not in used:
                    used.add((asid, "slot", iova))
                    return iova
                continue
            if rng.random() < 0.1:
                slot = (1 << IA_BITS) - (1 << 21)                   # the last 2 MiB
            elif rng.random() < 0.2:
                slot = rng.randrange(0, 1 << IA_BITS, 1 << 21)      # anywhere
            else:
                slot = rng.choice(self.gigs[asid]) + rng.randrange(4) * (1 << 21)
            if (asid, "slot", slot) in used:
                continue
            first = slot + rng.randrange(0, (1 << 21) - size + 1, GRANULE)
            pages = range(first, first + size, GRANULE)
            if any((asid, "page", page) in used for page in pages):
                continue
            used.add((asid, "table", slot))
            used.update((asid, "page", page) for page in pages)
            return first

    def fresh_iova(self, asid):
        """A page in a 1 GiB region of ``asid`` that has no level-1 descriptor yet, so that
        every descriptor of its walk is new; marks its region used."""
        while True:
            iova = self.rng.randrange(0, 1 << IA_BITS, GRANULE)
            l1 = self.ttb[asid] + 8 * table_index(1, iova)
            region = iova >> 30 << 30
            if self.tables.read64(l1) & 1 == 0 and region not in self.gigs[asid] \
                    and (asid, "gig", region) not in self.used:
                self.used.add((asid, "gig", region))
                self.used.update((asid, kind, iova >> 21 << 21) for kind in ("slot", "table"))
                return iova

    def read64(self, addr):
        if addr - addr % 8 in self.bad or not self.memory.contains(addr, 8):
            raise FetchError(addr)
        return int.from_bytes(self.memory.read(addr, 8), "little")

    def table_error(self, write, addr):
        """The table port's error injection: SLVERR on the words of :attr:`bad`."""
        return Resp.SLVERR if not write and addr - addr % 8 in self.bad else None

    def sids(self, asid):
        """The stream IDs of domain ``asid``, lowest first."""
        return sorted(sid for sid, a in self.contexts.items() if a == asid)

    def unmapped_iova(self, asid):
        """A page of ``asid`` whose walk meets an invalid descriptor (at any level)."""
        while True:
            iova = self.free_iova(asid, GRANULE)
            if self.model.translate(self.sids(asid)[0], iova, write=False).event is not None:
                return iova

    def snapshot(self):
        """A model of the tables as they are now, unchanged by later changes."""
        memory = self.memory.copy()
        bad = set(self.bad)

        def read64(addr):
            if addr - addr % 8 in bad or not memory.contains(addr, 8):
                raise FetchError(addr)
            return int.from_bytes(memory.read(addr, 8), "little")
        return SmmuModel(read64, strtab_base=STRTAB, strtab_log2size=STRTAB_LOG2SIZE)


# Transfers -----------------------------------------------------------------------------------

def pieces(addr, length):
    """``(addr, length)`` of each 4 KiB piece of a transfer: each is one burst of
    :class:`AxiMaster`'s, translated on its own."""
    out = []
    while length:
        size = min(length, GRANULE - addr % GRANULE)
        out.append((addr, size))
        addr, length = addr + size, length - size
    return out


@dataclass
class Transfer:
    """One read or write of a DMA master, and what the model says of each of its bursts."""
    port: int
    sid: int
    write: bool
    addr: int
    length: int
    id: int
    instr: bool = False
    data: bytes = b""
    outcomes: list = field(default_factory=list)       # a model Outcome per piece
    result: object = None

    def predict(self, model):
        self.outcomes = [model.translate(self.sid, addr, write=self.write, instr=self.instr)
                         for addr, _ in pieces(self.addr, self.length)]
        return self

    @property
    def ok(self):
        return all(o.status is Status.OK for o in self.outcomes)

    @property
    def events(self):
        return [o.event for o in self.outcomes if o.event is not None]

    def physical(self):
        """``(pa, length, offset in the transfer)`` of each piece the model translates."""
        out, offset = [], 0
        for (_, size), outcome in zip(pieces(self.addr, self.length), self.outcomes):
            if outcome.status is Status.OK:
                out.append((outcome.pa, size, offset))
            offset += size
        return out

    def bursts(self):
        """``(addr, len, size, id, stream ID)`` of each burst the model sends downstream."""
        return [(pa, (size + pa % 8 + 7) // 8 - 1, 3, self.id, self.sid)
                for pa, size, _ in self.physical()]

    def __str__(self):
        kind = "write" if self.write else "instr read" if self.instr else "read"
        outcomes = [o.status.value + (f" {o.pa:#x}" if o.pa is not None else "") +
                    (f" {o.event.type.name}" if o.event else "") for o in self.outcomes]
        return (f"port {self.port} {kind} sid {self.sid} id {self.id} "
                f"{self.addr:#x}+{self.length:#x}: {', '.join(outcomes)}")


def fmt_bursts(bursts):
    return [f"{addr:#x} len {length} id {id} sid {sid}" for addr, length, _, id, sid in bursts]


class Traffic:
    """The two DMA masters, and the batches of transfers they run.

    A batch starts every transfer at once (on both ports, reads and writes, in random
    order), waits for all and checks each against the model. A transfer whose physical
    bytes a write of the same batch touches is not put in it, so that the data memory after
    the batch does not depend on the order the transfers take.
    """
    def __init__(self, dut, rng, world, data_memory, records):
        self.dut, self.rng, self.world, self.memory = dut, rng, world, data_memory
        self.records = records           # the downstream ports' checker logs, by port
        self.seen = [0, 0]               # their entries of earlier batches
        self.masters = []
        for port in range(2):
            master = AxiMaster(AxiBus.from_prefix(dut, f"s{port:02d}_axi"), dut.clk, dut.rst)
            for interface in (master.write_if, master.read_if):
                interface.log.setLevel(logging.WARNING)
            for channel in (master.write_if.aw_channel, master.write_if.w_channel,
                            master.write_if.b_channel, master.read_if.ar_channel,
                            master.read_if.r_channel):
                channel.set_pause_generator(random_pauses(rng, 0.2))
            self.masters.append(master)

    def transfer(self, sid, addr, length=None, *, port=None, write=None, instr=False,
                 model=None):
        """A transfer of stream ``sid`` at ``addr`` (random length within its page, port,
        direction and ID where not given), as ``model`` (the world's) translates it."""
        rng = self.rng
        if length is None:
            length = rng.randrange(1, min(MAX_LENGTH, GRANULE - addr % GRANULE) + 1)
        write = rng.random() < 0.5 if write is None else write
        transfer = Transfer(port=rng.randrange(2) if port is None else port, sid=sid,
                            write=write, addr=addr, length=length, id=rng.randrange(16),
                            instr=instr and not write,
                            data=rng.randbytes(length) if write else b"")
        return transfer.predict(model or self.world.model)

    def random_transfer(self, sids=None):
        """A transfer of a stream of ``sids`` (by default, every translating stream)
        within its mapped regions, or of the bypassing stream."""
        rng, world = self.rng, self.world
        length = rng.randrange(1, MAX_LENGTH + 1)
        sids = sorted(world.contexts if sids is None else sids)
        if not sids or rng.random() < 0.1:
            return self.transfer(BYPASS_SID, DATA_BASE + rng.randrange(DATA_SIZE - length),
                                 length)
        sid = rng.choice(sids)
        iova, size = rng.choice(world.regions[world.contexts[sid]])
        length = min(length, size)
        if rng.random() < 0.3:                  # across a page boundary, if it can
            start = iova + size - length - rng.randrange(min(GRANULE, size - length + 1))
        else:
            start = iova + rng.randrange(size - length + 1)
        return self.transfer(sid, start, length)

    def batch(self, count, extra=(), sids=None):
        """``count`` random transfers (of streams ``sids``) that the model translates, and
        ``extra``, none of whose physical bytes a write among them touches."""
        chosen, reads, writes = [], [], []

        def overlaps(spans, pa, end):
            return any(pa < e and s < end for s, e in spans)

        def fits(transfer):
            spans = [(pa, pa + size) for pa, size, _ in transfer.physical()]
            if any(overlaps(writes, *span) for span in spans):
                return False
            if transfer.write and any(overlaps(reads, *span) for span in spans):
                return False
            (writes if transfer.write else reads).extend(spans)
            return True

        for transfer in extra:
            assert fits(transfer), f"{transfer} overlaps another transfer of its batch"
            chosen.append(transfer)
        while len(chosen) < count + len(extra):
            transfer = self.random_transfer(sids)
            assert transfer.ok, f"{transfer}: a mapped region does not translate"
            if fits(transfer):
                chosen.append(transfer)
        self.rng.shuffle(chosen)
        return chosen

    async def run(self, transfers):
        """Run ``transfers`` at once; check responses, downstream bursts and data."""
        before = self.memory.copy()
        expected = self.memory.copy()
        tasks = []
        for transfer in transfers:
            master = self.masters[transfer.port]
            prot = AxiProt.NONSECURE | (AxiProt.INSTRUCTION if transfer.instr else 0)
            if transfer.write:
                coroutine = master.write(transfer.addr, transfer.data, awid=transfer.id,
                                         prot=prot, user=transfer.sid)
                for pa, size, offset in transfer.physical():
                    expected.write(pa, transfer.data[offset:offset + size])
            else:
                coroutine = master.read(transfer.addr, transfer.length, arid=transfer.id,
                                        prot=prot, user=transfer.sid)
            tasks.append(cocotb.start_soon(coroutine))
        for transfer, task in zip(transfers, tasks):
            transfer.result = await task
        self.check(transfers, before, expected)

    def check(self, transfers, before, expected):
        batch = "; the batch:\n" + "\n".join(map(str, transfers))
        for transfer in transfers:
            want = Resp.OKAY if transfer.ok else Resp.SLVERR
            got = Resp(int(transfer.result.resp))
            assert got == want, f"{transfer}: answered {got.name}, the model says {want.name}"
            if not transfer.write:
                for pa, size, offset in transfer.physical():
                    assert bytes(transfer.result.data[offset:offset + size]) == \
                        before.read(pa, size), \
                        f"{transfer}: the data read at {pa:#x}+{size:#x} is not memory's"
        for port in range(2):
            for channel, write in (("ar", False), ("aw", True)):
                want = [burst for transfer in transfers
                        if transfer.port == port and transfer.write == write
                        for burst in transfer.bursts()]
                got = [(f["addr"], f["len"], f["size"], f["id"], f["sid"])
                       for _, ch, f in self.records[port][self.seen[port]:] if ch == channel]
                assert sorted(got) == sorted(want), \
                    (f"port {port} {channel.upper()} downstream: {fmt_bursts(got)}; the "
                     f"model says {fmt_bursts(want)}{batch}")
                assert got == want, f"port {port} {channel.upper()}: not in upstream order"
        self.seen = [len(log) for log in self.records]
        if self.memory.data != expected.data:
            differ = [DATA_BASE + n for n, (a, b) in
                      enumerate(zip(self.memory.data, expected.data)) if a != b]
            raise AssertionError(f"{len(differ)} bytes of data memory differ from the model, "
                                 f"first at {[hex(a) for a in differ[:8]]}{batch}")


# Registers and queues ------------------------------------------------------------------------

class Smmu:
    """The SMMU's registers (the driver's register bank) and its queues in table memory."""
    def __init__(self, dut, table_memory):
        self.dut = dut
        port = RegisterPort(dut, "smmu")
        for interface in (port.master.write_if, port.master.read_if):
            interface.log.setLevel(logging.WARNING)
        self.regs = port.bank
        self.memory = table_memory
        self.cmdq_prod = 0
        self.evtq_cons = 0

    async def configure(self):
        regs = self.regs
        for name, base in (("STRTAB", STRTAB), ("CMDQ", CMDQ), ("EVTQ", EVTQ)):
            await regs.write(f"{name}_BASE_LO", addr=base & 0xffff_ffff)
            await regs.write(f"{name}_BASE_HI", addr=base >> 32)
        await regs.write("STRTAB_CFG", log2size=STRTAB_LOG2SIZE)
        await regs.write("CMDQ_CFG", log2size=CMDQ_LOG2SIZE)
        await regs.write("EVTQ_CFG", log2size=EVTQ_LOG2SIZE)
        await regs.write("IRQ_ENABLE", event=1, sync=1, cmdq_err=1)
        # walk_cache_en and prefetch_en keep their reset values: on.
        await regs.write("CR0", smmuen=1, cmdqen=1, evtqen=1)

    def next_command_slot(self):
        return CMDQ + CMD_BYTES * (self.cmdq_prod & ((1 << CMDQ_LOG2SIZE) - 1))

    async def commands(self, *commands, timeout=4000):
        """Write ``commands`` into the command queue, move ``CMDQ_PROD`` past them and wait
        until ``CMDQ_CONS`` has followed; returns ``CMDQ_CONS``'s fields."""
        wrap = (2 << CMDQ_LOG2SIZE) - 1
        for fields in commands:
            self.memory.write(self.next_command_slot(), pack(CommandLayout(), **fields))
            self.cmdq_prod = (self.cmdq_prod + 1) & wrap
        await self.regs.write("CMDQ_PROD", index=self.cmdq_prod)
        for _ in range(timeout // 16):
            cons = await self.regs.read_fields("CMDQ_CONS")
            if cons["index"] == self.cmdq_prod:
                return cons
            await ClockCycles(self.dut.clk, 8)
        raise AssertionError(f"commands not consumed in {timeout} cycles")

    async def events(self):
        """The records written since the last call, as model :class:`Event` s; moves
        ``EVTQ_CONS`` past them."""
        prod = await self.regs.read_fields("EVTQ_PROD")
        assert prod["ovflg"] == 0, "event queue overflow"
        events = []
        while self.evtq_cons != prod["index"]:
            slot = self.evtq_cons & ((1 << EVTQ_LOG2SIZE) - 1)
            record = unpack(EventLayout(), self.memory.read(EVTQ + EVENT_BYTES * slot,
                                                            EVENT_BYTES))
            events.append(Event(EventType(record["type"]), record["sid"],
                                record["input_addr"], not record["rnw"],
                                record["fetch_addr"]))
            self.evtq_cons = (self.evtq_cons + 1) & ((2 << EVTQ_LOG2SIZE) - 1)
        await self.regs.write("EVTQ_CONS", index=self.evtq_cons)
        return events

    async def expect_irq(self, **status):
        """The irq is high, with exactly the ``IRQ_STATUS`` bits ``status`` set; clears
        them and checks that the irq falls."""
        assert self.dut.irq.value == 1, "no interrupt"
        fields = await self.regs.read_fields("IRQ_STATUS")
        want = {name: status.get(name, 0) for name in fields}
        assert fields == want, f"IRQ_STATUS is {fields}, not {want}"
        await self.regs.write("IRQ_STATUS", **status)
        await ClockCycles(self.dut.clk, 2)
        assert self.dut.irq.value == 0, "the interrupt stays high once cleared"


def cmd(opcode, **fields):
    return dict(opcode=opcode, **fields)


# Setting up ----------------------------------------------------------------------------------

def idle_inputs():
    """Every input 0 through reset. The SMMU passes R and B payloads through from its
    downstream ports to its upstream ports and W payloads down, so its outputs are only
    defined if its inputs are (the VIP models take the ports over after reset)."""
    return {port["name"]: 0 for port in ports()["ports"] if port["direction"] == "input"}


async def setup(dut, rng, *, world=None, table_pause=0.3):
    """Reset; the world in table memory, the VIP models on every port, the SMMU
    configured. Returns ``(rules, world, traffic, smmu)``."""
    rules = await start(dut, inputs=idle_inputs(), record=True)
    logs = {rule.prefix: rule.checker.log for rule in rules}
    table_memory = Memory(TABLE_BASE, TABLE_SIZE)
    world = (world or World)(rng, table_memory)
    data_memory = Memory(DATA_BASE, DATA_SIZE)
    data_memory.write(DATA_BASE, rng.randbytes(DATA_SIZE))
    AxiMemory(dut, "m_axi_table", table_memory, rng=rng, pause=table_pause, interleave=True,
              error=world.table_error)
    for port in range(2):
        AxiMemory(dut, f"m{port:02d}_axi", data_memory, rng=rng, pause=0.2, interleave=True)
    smmu = Smmu(dut, table_memory)
    await smmu.configure()
    traffic = Traffic(dut, rng, world, data_memory, [logs["m00_axi"], logs["m01_axi"]])
    return rules, world, traffic, smmu


async def settle(dut, rules):
    """Wait until every port has been quiet for a while (the walker's prefetches may walk
    on after the masters are done)."""
    await quiet(dut, rules, cycles=64, timeout=20_000)


async def run_among_traffic(traffic, transfers):
    """Run ``transfers`` spread over :data:`ROUNDS` batches of random translated traffic;
    returns the event records the model says they write."""
    want = []
    for round in range(ROUNDS):
        share = transfers[round::ROUNDS]
        await traffic.run(traffic.batch(TRANSFERS, extra=share))
        want += [event for transfer in share for event in transfer.events]
    return want


async def check_events(dut, rules, smmu, want):
    """Once the ports are quiet, the records written since the last look are ``want``, in
    any order (the ports' faults race for the walker); returns them."""
    await settle(dut, rules)
    events = await smmu.events()
    assert sorted(events, key=repr) == sorted(want, key=repr), \
        f"event records:\n{events}\nthe model says:\n{want}"
    return events


async def finish(dut, rules, smmu):
    """No event left unread, no interrupt, and every port's AXI rules kept, with nothing
    outstanding."""
    await settle(dut, rules)
    assert await smmu.events() == []
    assert dut.irq.value == 0
    for rule in rules:
        rule.assert_clean()


# Tests ---------------------------------------------------------------------------------------

@cocotb.test()
async def translated_traffic_on_both_ports(dut):
    """Random reads and writes of every context (and of a bypassing stream) on both ports
    at once, through random page and block mappings, at unaligned addresses and lengths and
    across page boundaries: every burst reaches its port's downstream at the model's
    physical address, reads return the bytes there, writes change exactly the bytes the
    model says; no event, no interrupt."""
    rng = seeded_rng()
    rules, world, traffic, smmu = await setup(dut, rng)
    for _ in range(ROUNDS):
        await traffic.run(traffic.batch(TRANSFERS))
    await finish(dut, rules, smmu)


class FaultWorld(World):
    """A world with a page of every kind of fault in each domain, besides its mappings.

    Attributes
    ----------
    faults : list of (str, int, int)
        ``(kind, asid, iova)`` of the faulting pages.
    """
    def __init__(self, rng, table_memory):
        super().__init__(rng, table_memory)
        self.faults = []
        for asid, ttb in self.ttb.items():
            for kind in ("ro", "xn", "noaf", "oa", "reserved"):
                iova, pa = self.free_iova(asid, GRANULE), self.random_page()
                extra = {"oa": dict(oa=(pa >> 12) | 1 << 28 + rng.randrange(8)),
                         "reserved": dict(table=0)}.get(kind, {})
                self.tables.map(ttb, iova, pa, 3, read_only=kind == "ro", xn=kind == "xn",
                                af=kind != "noaf", **extra)
                self.faults.append((kind, asid, iova))
            self.faults.append(("unmapped", asid, self.unmapped_iova(asid)))
            self.faults.append(("fresh", asid, self.fresh_iova(asid)))
            self.faults.append(("beyond", asid, (1 << IA_BITS) + self.free_iova(asid, GRANULE)))


@cocotb.test()
async def translation_faults_answer_slverr_and_record_events(dut):
    """Transactions that fault (unmapped pages, at every level; permission, access flag,
    address size, reserved descriptor, input address beyond 39 bits; a stream that records
    no faults; abort, invalid and reserved stream table entries; a stream ID beyond the
    table), among translated traffic on both ports: each gets SLVERR (on every read beat),
    sends nothing downstream and changes no memory; the event queue holds the model's
    records, and the irq rises with ``IRQ_STATUS.event`` alone, and falls once cleared."""
    rng = seeded_rng()
    rules, world, traffic, smmu = await setup(dut, rng, world=FaultWorld)
    faulting, allowed = [], []
    for kind, asid, iova in world.faults:
        sid = rng.choice(world.sids(asid))
        offset = rng.randrange(0, GRANULE - 64)
        write = {"ro": True, "xn": False}.get(kind)
        faulting.append(traffic.transfer(sid, iova + offset, write=write, instr=kind == "xn"))
    for sid in (ABORT_SID, INVALID_SID, RESERVED_SID, UNKNOWN_SID):
        faulting.append(traffic.transfer(sid, DATA_BASE + rng.randrange(DATA_SIZE - 64),
                                         length=rng.randrange(1, 64)))
    # The read-only and execute-never pages translate the other kind of access.
    for kind, asid, iova in world.faults:
        if kind in ("ro", "xn"):
            allowed.append(traffic.transfer(world.sids(asid)[0], iova + 0x100, write=False))
    assert not any(t.ok for t in faulting) and all(t.ok for t in allowed)
    events = await check_events(dut, rules, smmu,
                                await run_among_traffic(traffic, faulting + allowed))
    assert {event.type for event in events} == set(EventType) - {
        EventType.STE_FETCH, EventType.WALK_EABT}
    await smmu.expect_irq(event=1)
    await finish(dut, rules, smmu)


@cocotb.test()
async def invalidation_through_the_command_queue(dut):
    """A mapping changes under traffic: a page is moved, unmapped or made read-only, a
    table of pages is replaced, or a stream moves to another domain. Until it is
    invalidated the SMMU goes on using the cached translation; after the command queue's
    invalidation (TLBI by address, leaf or not, by ASID or all; CFGI_STE or CFGI_ALL) and a
    SYNC (with or without its interrupt), issued while the other domain's traffic runs on
    both ports, every access translates as the model says of the new tables."""
    rng = seeded_rng()
    rules, world, traffic, smmu = await setup(dut, rng)
    await traffic.run(traffic.batch(TRANSFERS))
    kinds = ["move", "unmap", "read-only", "table", "stream"]
    rng.shuffle(kinds)
    for kind in kinds[:ROUNDS + 2]:
        asid = rng.choice(sorted(set(world.contexts.values())))
        sid = world.sids(asid)[0]
        others = [s for s, a in world.contexts.items() if a != asid]
        ttb, tables = world.ttb[asid], world.tables
        pages = [(iova, size) for iova, size in world.regions[asid] if size < 1 << 21]
        if kind == "move" and rng.random() < 0.5:
            pages = [(iova, size) for iova, size in world.regions[asid] if size == 1 << 21]
        region = rng.choice(pages)
        victim = region[0] + rng.randrange(0, region[1], GRANULE)
        if kind == "stream":
            sid, asid = rng.choice([(s, a) for s, a in world.contexts.items()
                                    if s != SILENT_SID])
            others = [s for s in world.contexts if s != sid]
            victim = rng.choice(world.regions[asid])[0]
        # The victim, used before the change: in the SMMU's caches from here on.
        used = [traffic.transfer(sid, victim + rng.randrange(0, GRANULE - 64), 64,
                                 write=False) for _ in range(2)]
        await traffic.run(traffic.batch(0, extra=used))
        old = world.snapshot()
        level = 2 if region[1] == 1 << 21 else 3
        leaf = tables.descend(ttb, victim, level)
        if kind == "move":
            tables.write64(leaf, descriptor(valid=1, table=int(level == 3), af=1,
                                            oa=(PAGES_BASE if level == 2 else
                                                world.random_page()) >> 12))
            commands = [cmd_tlbi_va(asid, victim, leaf=rng.randrange(2))]
        elif kind == "unmap":
            tables.write64(leaf, 0)
            commands = [cmd_tlbi_va(asid, victim, leaf=1)]
        elif kind == "read-only":
            tables.write64(leaf, tables.read64(leaf) | descriptor(ap=0b10))
            commands = [cmd(Opcode.TLBI_NH_ASID, arg=asid << 16)]
        elif kind == "table":
            # A new table of pages, the same but for the victim, which moves: TLBI by
            # address, not leaf-only, drops the walk cache's entry for the old table.
            table_desc = tables.descend(ttb, victim, 2)
            new = tables.page()
            old_table = tables.read64(table_desc) >> 12 << 12 & (1 << 40) - 1
            tables.memory.write(new, tables.memory.read(old_table, GRANULE))
            tables.write64(new + 8 * table_index(3, victim),
                           descriptor(valid=1, table=1, af=1, oa=world.random_page() >> 12))
            tables.write64(table_desc, descriptor(valid=1, table=1, oa=new >> 12))
            commands = [cmd_tlbi_va(asid, victim, leaf=0)]
        else:
            # The stream moves to the other domain.
            new_asid = next(a for a in world.ttb if a != asid)
            write_ste(world.memory, sid, ttb=world.ttb[new_asid], asid=new_asid)
            world.contexts[sid] = asid = new_asid
            commands = [rng.choice([cmd_cfgi_ste(sid), cmd(Opcode.CFGI_ALL)])]
            victim = rng.choice(world.regions[asid])[0]
        if kind != "stream" and rng.random() < 0.3:
            commands = [rng.choice([cmd(Opcode.TLBI_NH_ALL), cmd(Opcode.TLBI_NSNH_ALL)])]
        # Not invalidated yet: the cached translation is still used (else the
        # invalidation below would prove nothing).
        stale = [traffic.transfer(sid, u.addr, u.length, write=False, model=old)
                 for u in used]
        await traffic.run(traffic.batch(0, extra=stale))
        # Invalidate and sync while the other domain's traffic runs.
        cs = rng.randrange(2)
        busy = cocotb.start_soon(traffic.run(traffic.batch(TRANSFERS, sids=others)))
        cons = await smmu.commands(*commands, cmd_sync(cs=cs))
        await busy
        assert cons["err"] == 0, cons
        if cs:
            await smmu.expect_irq(sync=1)
        # The new tables.
        if kind in ("unmap", "read-only"):
            world.regions[asid].remove(region)
        after = [traffic.transfer(sid, victim + offset, 64)        # reads and writes
                 for offset in rng.sample(range(0, GRANULE, 64), 3)]
        await traffic.run(traffic.batch(TRANSFERS // 2, extra=after))
        want = [event for transfer in after for event in transfer.events]
        await check_events(dut, rules, smmu, want)
        if want:
            await smmu.expect_irq(event=1)
        assert dut.irq.value == 0
    await finish(dut, rules, smmu)


class ErrorWorld(World):
    """A world with table reads that fail: the STE of a stream, a descriptor of each
    level (all new, so no cache holds them), and a table that no memory answers (DECERR).

    Attributes
    ----------
    failing : list of (int, int)
        ``(sid, iova)`` whose translation meets a failing read.
    """
    STE_SID = 10

    def __init__(self, rng, table_memory):
        super().__init__(rng, table_memory)
        self.failing = []
        write_ste(table_memory, self.STE_SID, ttb=self.ttb[5], asid=5)
        self.bad.add(STRTAB + 16 * self.STE_SID + 8 * rng.randrange(2))
        self.failing.append((self.STE_SID, self.regions[5][0][0]))
        for asid, ttb in self.ttb.items():
            for sid in self.sids(asid):
                for level in (1, 2, 3):
                    iova = self.fresh_iova(asid)
                    self.tables.map(ttb, iova, self.random_page(), 3)
                    self.bad.add(self.tables.descend(ttb, iova, level))
                    self.failing.append((sid, iova))
                iova = self.fresh_iova(asid)
                self.tables.write64(self.tables.descend(ttb, iova, 2),
                                    descriptor(valid=1, table=1, oa=NOWHERE >> 12))
                self.failing.append((sid, iova))


@cocotb.test()
async def table_port_errors_give_the_models_walk_faults(dut):
    """SLVERR on a stream table entry and on a descriptor of each level, DECERR from a
    table outside memory, with the table port answering out of order and pausing: each
    transaction that needs the failing read gets SLVERR and sends nothing downstream, the
    event queue holds the model's STE_FETCH and WALK_EABT records (with the failing
    address; none for the stream that records no faults), and translated traffic around
    them is unaffected. A command whose fetch fails is skipped with ``CMDQ_CONS.err`` =
    ABT and the ``cmdq_err`` interrupt, and the next command runs."""
    rng = seeded_rng()
    rules, world, traffic, smmu = await setup(dut, rng, world=ErrorWorld, table_pause=0.4)
    faulting = [traffic.transfer(sid, iova + rng.randrange(0, GRANULE - 64))
                for sid, iova in world.failing]
    assert not any(t.ok for t in faulting)
    events = await check_events(dut, rules, smmu, await run_among_traffic(traffic, faulting))
    assert {event.type for event in events} == {EventType.STE_FETCH, EventType.WALK_EABT}
    await smmu.expect_irq(event=1)
    # A command fetch that fails, while traffic runs.
    slot = smmu.next_command_slot()
    world.bad.add(slot + 8 * rng.randrange(2))
    busy = cocotb.start_soon(traffic.run(traffic.batch(TRANSFERS)))
    cons = await smmu.commands(cmd(Opcode.TLBI_NH_ALL), cmd_sync())
    await busy
    assert cons["err"] == 2, f"CMDQ_CONS is {cons}: the failed fetch is not reported as ABT"
    await settle(dut, rules)
    await smmu.expect_irq(cmdq_err=1)
    world.bad.discard(slot)
    world.bad.discard(slot + 8)
    await finish(dut, rules, smmu)
