"""Test helpers for the SMMU RTL tests: page tables, stream tables and queues written
straight into a :class:`ReferenceMemory`, independently of the driver's io-pgtable."""

from dmabuf_soc.hw.smmu.format import (CMD_BYTES, EVENT_BYTES, GRANULE, STE_BYTES,
                                       CommandLayout, DescriptorLayout, EventLayout, EventType,
                                       Opcode, StreamConfig, StreamTableEntryLayout, pack,
                                       table_index, unpack)
from dmabuf_soc.sim.smmu.model import Event

STRTAB = 0x8000_0000
CMDQ = 0x8000_2000
EVTQ = 0x8000_4000
TABLE_POOL = 0x8010_0000

DESC = DescriptorLayout()


class Tables:
    """Allocates zeroed table pages from ``TABLE_POOL`` and writes descriptors."""

    def __init__(self, memory, base=TABLE_POOL):
        self.memory = memory
        self.next = base

    def page(self):
        addr = self.next
        self.next += GRANULE
        self.memory.write(addr, bytes(GRANULE))
        return addr

    def read64(self, addr):
        return int.from_bytes(self.memory.read(addr, 8), "little")

    def write64(self, addr, value):
        self.memory.write(addr, value.to_bytes(8, "little"))

    def descend(self, ttb, iova, level):
        """Address of the level-``level`` descriptor for ``iova``, creating tables above."""
        table = ttb
        for lvl in range(1, level):
            addr = table + 8 * table_index(lvl, iova)
            d = self.read64(addr)
            if d & 3 != 3:
                new = self.page()
                self.write64(addr, int.from_bytes(pack(DESC, valid=1, table=1,
                                                       oa=new >> 12), "little"))
                d = self.read64(addr)
            table = (unpack(DESC, d.to_bytes(8, "little"))["oa"]) << 12
        return table + 8 * table_index(level, iova)

    def map(self, ttb, iova, pa, level, *, read_only=False, xn=False, af=True, **raw):
        """Write a leaf for ``iova`` at ``level``; returns the descriptor's address."""
        fields = dict(valid=1, table=int(level == 3), af=int(af), ap=0b10 if read_only else 0,
                      xn=int(xn), oa=pa >> 12)
        fields.update(raw)
        addr = self.descend(ttb, iova, level)
        self.write64(addr, int.from_bytes(pack(DESC, **fields), "little"))
        return addr


def write_ste(memory, sid, *, config=StreamConfig.TRANSLATE, ttb=0, asid=0, record=1, valid=1):
    memory.write(STRTAB + STE_BYTES * sid,
                 pack(StreamTableEntryLayout(), valid=valid, config=config, record=record,
                      asid=asid, ttb=ttb >> 12))


async def configure(harness, ctx, *, strtab_log2size=4, cmdq_log2size=6, evtq_log2size=10,
                    enable=True, walk_cache=True):
    for name, base in (("STRTAB", STRTAB), ("CMDQ", CMDQ), ("EVTQ", EVTQ)):
        await harness.write_reg(ctx, f"{name}_BASE_LO", addr=base & 0xffff_ffff)
        await harness.write_reg(ctx, f"{name}_BASE_HI", addr=base >> 32)
    await harness.write_reg(ctx, "STRTAB_CFG", log2size=strtab_log2size)
    await harness.write_reg(ctx, "CMDQ_CFG", log2size=cmdq_log2size)
    await harness.write_reg(ctx, "EVTQ_CFG", log2size=evtq_log2size)
    await harness.write_reg(ctx, "IRQ_ENABLE", event=1, sync=1, cmdq_err=1)
    await harness.write_reg(ctx, "CR0", smmuen=int(enable), cmdqen=1, evtqen=1,
                            walk_cache_en=int(walk_cache))


class CommandWriter:
    """Writes commands into the queue and waits for the SMMU to consume them."""

    def __init__(self, harness, log2size=6):
        self.harness = harness
        self.log2size = log2size
        self.prod = 0

    async def issue(self, ctx, *commands, wait=True):
        mask = (2 << self.log2size) - 1
        for fields in commands:
            slot = self.prod & ((1 << self.log2size) - 1)
            self.harness.memory.write(CMDQ + CMD_BYTES * slot, pack(CommandLayout(), **fields))
            self.prod = (self.prod + 1) & mask
        await self.harness.write_reg(ctx, "CMDQ_PROD", index=self.prod)
        if wait:
            await self.wait(ctx)

    async def wait(self, ctx, timeout=5000):
        for _ in range(timeout):
            if (await self.harness.read_reg(ctx, "CMDQ_CONS"))["index"] == self.prod:
                return
        raise TimeoutError("command queue not consumed")


def cmd_sync(cs=0):
    return dict(opcode=Opcode.SYNC, cs=cs)


def cmd_tlbi_va(asid, iova, leaf=0):
    return dict(opcode=Opcode.TLBI_NH_VA, arg=asid << 16, addr=iova >> 12, leaf=leaf)


def cmd_cfgi_ste(sid):
    return dict(opcode=Opcode.CFGI_STE, arg=sid)


async def read_events(harness, ctx, cons=0):
    """The records between ``cons`` and the producer index, as model :class:`Event` s."""
    prod = (await harness.read_reg(ctx, "EVTQ_PROD"))["index"]
    log2size = (await harness.read_reg(ctx, "EVTQ_CFG"))["log2size"]
    events = []
    while cons != prod:
        slot = cons & ((1 << log2size) - 1)
        e = unpack(EventLayout(), harness.memory.read(EVTQ + EVENT_BYTES * slot, EVENT_BYTES))
        events.append(Event(EventType(e["type"]), e["sid"], e["input_addr"], not e["rnw"],
                            e["fetch_addr"]))
        cons = (cons + 1) & ((2 << log2size) - 1)
    return events
