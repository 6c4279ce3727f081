"""Driver of the SMMU (``drivers/iommu/arm/arm-smmu-v3``, in the subset the hardware has).

The stream table and both queues are allocated at probe and accessed by the CPU uncached,
as Linux maps its coherent DMA allocations on a non-coherent system; page tables belong to
io-pgtable (:mod:`.io_pgtable`). Commands are written into the command queue, published by
writing ``CMDQ_PROD``, and completed by a ``CMD_SYNC`` whose completion the driver polls
(``CMDQ_CONS`` moving past it), as Linux does without MSIs.

An event queue overflow (``EVTQ_PROD.ovflg`` differing from the ``ovackflg`` the driver last
wrote) is logged as an error with the number of records lost (``EVTQ_LOST``), counted in
:attr:`ArmSmmu.events_lost`, and acknowledged, as ``arm_smmu_evtq_thread()`` does.
"""

import errno
import logging

from ...hw.smmu.format import (CMD_BYTES, EVENT_BYTES, GRANULE, OA_BITS, STE_BYTES,
                               CommandLayout, EventLayout, EventType, Opcode, StreamConfig,
                               StreamTableEntryLayout, pack, unpack)
from ...sim.smmu.model import Event
from ..errors import KernelError
from ..machine.base import MachineTimeout
from ..mm.page_alloc import GFP_KERNEL, get_order
from .io_pgtable import IommuFlushOps

__all__ = ["ArmSmmu", "SmmuFlushOps", "CMDQ_MAX_TLBI_OPS"]

#: Beyond this many invalidations by address, invalidate the whole ASID (as Linux does
#: without range invalidation).
CMDQ_MAX_TLBI_OPS = GRANULE // 8

_ATOS_STATUS = {0: "ok", 1: "fault", 2: "abort"}

_log = logging.getLogger(__name__)


class ArmSmmu:
    """The SMMU, as its driver sees it.

    Parameters
    ----------
    machine : Machine
    regs : RegisterBank
        The SMMU's register block.
    mm : PageAllocator
        For the stream table and queue pages.
    strtab_log2size, cmdq_log2size, evtq_log2size : int
        Sizes of the stream table (entries) and of the queues.
    timeout_cycles : int
        How long a command may take before :class:`MachineTimeout`.

    Attributes
    ----------
    masters : dict of int to (Device, IommuDomain)
        The devices attached, by stream ID.
    events : list of Event
        Every fault record read from the event queue.
    events_lost : int
        Fault records the SMMU lost to a full event queue, as reported so far.
    evtq_overflows : int
        Overflows of the event queue reported so far.
    """
    def __init__(self, machine, regs, mm, *, strtab_log2size=8, cmdq_log2size=8,
                 evtq_log2size=7, timeout_cycles=200_000):
        for name, value, maximum in (("strtab_log2size", strtab_log2size, 8),
                                     ("cmdq_log2size", cmdq_log2size, 15),
                                     ("evtq_log2size", evtq_log2size, 15)):
            if not isinstance(value, int) or not 1 <= value <= maximum:
                raise ValueError(f"{name} must be from 1 to {maximum}, not {value!r}")
        self.machine = machine
        self.regs = regs
        self.mm = mm
        self.strtab_log2size = strtab_log2size
        self.cmdq_log2size = cmdq_log2size
        self.evtq_log2size = evtq_log2size
        self.timeout_cycles = timeout_cycles
        self.strtab = self.cmdq = self.evtq = None
        self.cmdq_prod = 0
        self.evtq_cons = 0
        self.evtq_ovack = 0
        self._evtq_lost_seen = 0
        self.masters = {}
        self.events = []
        self.events_lost = 0
        self.evtq_overflows = 0
        self.commands_issued = 0
        self._asids = set()
        self._pages = []

    # Probe.

    async def _alloc_zeroed(self, size):
        order = get_order(size)
        page = self.mm.alloc_pages(GFP_KERNEL, order, owner="arm-smmu-v3")
        if page is None:
            raise KernelError(errno.ENOMEM, f"arm-smmu-v3: cannot allocate {size} bytes")
        self._pages.append((page, order))
        if not self.mm.is_fresh(page):
            await self.machine.store(page.phys, bytes(size), cacheable=False)
        return page.phys

    async def probe(self):
        """Allocate the stream table (every stream aborting) and the queues, program them,
        invalidate everything and turn translation on (``arm_smmu_device_reset()``)."""
        self.strtab = await self._alloc_zeroed(STE_BYTES << self.strtab_log2size)
        self.cmdq = await self._alloc_zeroed(CMD_BYTES << self.cmdq_log2size)
        self.evtq = await self._alloc_zeroed(EVENT_BYTES << self.evtq_log2size)
        abort = pack(StreamTableEntryLayout(), valid=1, config=StreamConfig.ABORT)
        await self.machine.store(self.strtab, abort * (1 << self.strtab_log2size),
                                 cacheable=False)
        await self.regs.write("CR0", 0)
        for name, base in (("STRTAB", self.strtab), ("CMDQ", self.cmdq), ("EVTQ", self.evtq)):
            await self.regs.write(f"{name}_BASE_LO", addr=base & 0xffff_ffff)
            await self.regs.write(f"{name}_BASE_HI", addr=base >> 32)
        await self.regs.write("STRTAB_CFG", log2size=self.strtab_log2size)
        await self.regs.write("CMDQ_CFG", log2size=self.cmdq_log2size)
        await self.regs.write("EVTQ_CFG", log2size=self.evtq_log2size)
        await self.regs.write("CMDQ_PROD", index=0)
        await self.regs.write("EVTQ_CONS", index=0)
        self.cmdq_prod = self.evtq_cons = self.evtq_ovack = self._evtq_lost_seen = 0
        await self.regs.write("IRQ_ENABLE", event=1, cmdq_err=1)
        await self.regs.write("CR0", cmdqen=1, evtqen=1)
        await self.issue([dict(opcode=Opcode.CFGI_ALL), dict(opcode=Opcode.TLBI_NSNH_ALL)])
        await self.regs.modify("CR0", smmuen=1)

    async def remove(self):
        """Turn the SMMU off and free its memory."""
        await self.regs.write("CR0", 0)
        for page, order in self._pages:
            self.mm.free_pages(page, order)
        self._pages.clear()

    # Commands.

    async def issue(self, commands, *, sync=True):
        """Write ``commands`` (field dicts of :class:`CommandLayout`) into the queue, then a
        ``CMD_SYNC`` and wait for it (``arm_smmu_cmdq_issue_cmdlist()``).

        Raises
        ------
        KernelError
            ``EIO`` if the SMMU skipped a command as illegal or unreadable.
        MachineTimeout
            If the queue is not consumed in time.
        """
        commands = list(commands) + ([dict(opcode=Opcode.SYNC)] if sync else [])
        size = 1 << self.cmdq_log2size
        mask = (size << 1) - 1
        while commands:
            cons = await self._cmdq_cons()
            space = size - ((self.cmdq_prod - cons) & mask)
            batch, commands = commands[:space], commands[space:]
            for fields in batch:
                slot = self.cmdq_prod & (size - 1)
                await self.machine.store(self.cmdq + CMD_BYTES * slot,
                                         pack(CommandLayout(), **fields), cacheable=False)
                self.cmdq_prod = (self.cmdq_prod + 1) & mask
            self.commands_issued += len(batch)
            await self.regs.write("CMDQ_PROD", index=self.cmdq_prod)
            deadline = self.machine.cycle + self.timeout_cycles
            while await self._cmdq_cons() != self.cmdq_prod:
                if self.machine.cycle > deadline:
                    raise MachineTimeout(f"arm-smmu-v3: command queue stuck "
                                         f"(prod {self.cmdq_prod:#x})")
        status = await self.regs.read_fields("IRQ_STATUS")
        if status["cmdq_err"]:
            err = (await self.regs.read_fields("CMDQ_CONS"))["err"]
            await self.regs.write("IRQ_STATUS", cmdq_err=1)
            raise KernelError(errno.EIO, f"arm-smmu-v3: command skipped (CMDQ_CONS.ERR {err})")

    async def _cmdq_cons(self):
        return (await self.regs.read_fields("CMDQ_CONS"))["index"]

    async def tlb_inv_asid(self, asid):
        await self.issue([dict(opcode=Opcode.TLBI_NH_ASID, arg=asid << 16)])

    async def tlb_inv_range(self, asid, iova, size, granule, *, leaf):
        """``arm_smmu_tlb_inv_range_asid()``: one ``TLBI_NH_VA`` per granule, or the whole
        ASID beyond :data:`CMDQ_MAX_TLBI_OPS` of them."""
        if size > CMDQ_MAX_TLBI_OPS * granule:
            await self.tlb_inv_asid(asid)
            return
        await self.issue([dict(opcode=Opcode.TLBI_NH_VA, arg=asid << 16, addr=addr >> 12,
                               leaf=int(leaf))
                          for addr in range(iova, iova + size, granule)])

    # Streams.

    def _check_sid(self, sid):
        if not isinstance(sid, int) or not 0 <= sid < 1 << self.strtab_log2size:
            raise KernelError(errno.ERANGE, f"arm-smmu-v3: stream ID {sid!r} is beyond the "
                                            f"{1 << self.strtab_log2size}-entry stream table")

    async def write_ste(self, sid, config, *, asid=0, ttb=0, record=True):
        """Write stream ``sid``'s entry, invalidate its cached copy and sync
        (``arm_smmu_write_ste()``)."""
        self._check_sid(sid)
        ste = pack(StreamTableEntryLayout(), valid=1, config=StreamConfig(config),
                   record=int(record), asid=asid, ttb=ttb >> 12)
        await self.machine.store(self.strtab + STE_BYTES * sid, ste, cacheable=False)
        await self.issue([dict(opcode=Opcode.CFGI_STE, arg=sid)])

    def alloc_asid(self):
        asid = next(n for n in range(1, 1 << 16) if n not in self._asids)
        self._asids.add(asid)
        return asid

    def free_asid(self, asid):
        self._asids.discard(asid)

    # Translation and faults.

    async def atos(self, sid, iova, *, write=False):
        """Translate ``iova`` for stream ``sid`` with the ATOS registers; returns the
        physical address, or raises :class:`KernelError` ``EFAULT`` (fault) / ``EPERM``
        (the stream aborts)."""
        self._check_sid(sid)
        if not isinstance(iova, int) or not 0 <= iova < 1 << OA_BITS:
            raise ValueError(f"Address must be a {OA_BITS}-bit integer, not {iova!r}")
        await self.regs.write("ATOS_SID", sid=sid)
        await self.regs.write("ATOS_ADDR_LO", addr=iova & 0xffff_ffff)
        await self.regs.write("ATOS_ADDR_HI", addr=iova >> 32)
        await self.regs.write("ATOS_CTRL", go=1, write=int(write))
        deadline = self.machine.cycle + self.timeout_cycles
        while (status := await self.regs.read_fields("ATOS_STATUS"))["busy"]:
            if self.machine.cycle > deadline:
                raise MachineTimeout("arm-smmu-v3: ATOS did not complete")
        outcome = _ATOS_STATUS.get(status["status"])
        if outcome == "fault":
            raise KernelError(errno.EFAULT, f"arm-smmu-v3: stream {sid} faults at {iova:#x}")
        if outcome == "abort":
            raise KernelError(errno.EPERM, f"arm-smmu-v3: stream {sid} aborts")
        lo = (await self.regs.read_fields("ATOS_PAR_LO"))["addr"]
        hi = (await self.regs.read_fields("ATOS_PAR_HI"))["addr"]
        return hi << 32 | lo

    async def read_events(self):
        """Consume the event queue; returns the new records as
        :class:`~dmabuf_soc.sim.smmu.model.Event` (``arm_smmu_evtq_thread()``).

        An overflow is acknowledged with the consumer index and then reported: an error
        logged with the number of records lost since the last report, added to
        :attr:`events_lost`."""
        mask = (2 << self.evtq_log2size) - 1
        prod_fields = await self.regs.read_fields("EVTQ_PROD")
        prod = prod_fields["index"]
        events = []
        while self.evtq_cons != prod:
            slot = self.evtq_cons & ((1 << self.evtq_log2size) - 1)
            raw = await self.machine.load(self.evtq + EVENT_BYTES * slot, EVENT_BYTES,
                                          cacheable=False)
            e = unpack(EventLayout(), raw)
            events.append(Event(EventType(e["type"]), e["sid"], e["input_addr"],
                                not e["rnw"], e["fetch_addr"]))
            self.evtq_cons = (self.evtq_cons + 1) & mask
        overflow = prod_fields["ovflg"] != self.evtq_ovack
        self.evtq_ovack = prod_fields["ovflg"]
        await self.regs.write("EVTQ_CONS", index=self.evtq_cons, ovackflg=self.evtq_ovack)
        await self.regs.write("IRQ_STATUS", event=1)
        if overflow:
            await self._report_overflow()
        self.events += events
        return events

    async def _report_overflow(self):
        # Read after the acknowledgement: every record lost in the episode is counted.
        lost_total = (await self.regs.read_fields("EVTQ_LOST"))["count"]
        lost = (lost_total - self._evtq_lost_seen) & 0xffff_ffff
        self._evtq_lost_seen = lost_total
        self.events_lost += lost
        self.evtq_overflows += 1
        _log.error("arm-smmu-v3: EVTQ overflow detected -- %d event records lost (the "
                   "%d-entry queue was full)", lost, 1 << self.evtq_log2size)

    async def handle_events(self):
        """The event IRQ handler: report each record to the fault handler of the domain its
        stream is attached to (``report_iommu_fault()``); returns the records."""
        events = await self.read_events()
        for event in events:
            master = self.masters.get(event.sid)
            if master is not None:
                dev, domain = master
                await domain.report_fault(dev, event)
        return events

    async def counters(self):
        """``hits``, ``misses``, ``walks``, ``walk_cycles``, ``walk_reads``, ``prefetches``."""
        return {name.lower(): await self.regs.read(name)
                for name in ("HITS", "MISSES", "WALKS", "WALK_CYCLES", "WALK_READS",
                             "PREFETCHES")}


class SmmuFlushOps(IommuFlushOps):
    """io-pgtable's TLB maintenance for one domain's ASID (``arm_smmu_flush_ops``)."""

    def __init__(self, smmu, asid):
        self.smmu = smmu
        self.asid = asid

    async def tlb_flush_all(self):
        await self.smmu.tlb_inv_asid(self.asid)

    async def tlb_flush_walk(self, iova, size, granule):
        await self.smmu.tlb_inv_range(self.asid, iova, size, granule, leaf=False)

    async def iotlb_sync(self, gather):
        """``arm_smmu_iotlb_sync()``: invalidate the gathered leaves and sync."""
        if not gather.empty:
            await self.smmu.tlb_inv_range(self.asid, gather.start,
                                          gather.end - gather.start + 1, gather.pgsize,
                                          leaf=True)
