"""Reference model of the SMMU's translation: what each transaction becomes.

The model is stateless: it reads the stream table and the translation tables from memory
for every transaction, as an SMMU without caches would. The RTL, with its STE cache, IOTLB
and walk cache, must give the same answer transaction by transaction as long as software
invalidates what it changes (the tests check exactly that, and the invalidation rules).

::

    model = SmmuModel(memory_read64, strtab_base=0x8000_0000, strtab_log2size=4)
    outcome = model.translate(sid=3, addr=0x4000_1234, write=True)
    outcome.status, outcome.pa, outcome.event

:class:`EventQueueModel` is the event queue's producer side: which records are written and
which are lost to a full queue, ``EVTQ_PROD.ovflg`` and ``EVTQ_LOST``.
"""

import enum
from dataclasses import dataclass

from ...hw.smmu.format import (EVENT_BYTES, IA_BITS, OA_BITS, GRANULE_SHIFT, LEVELS, STE_BYTES,
                               DescriptorLayout, EventLayout, EventType, StreamConfig,
                               StreamTableEntryLayout, level_shift, pack, table_index, unpack)

__all__ = ["FetchError", "Status", "Translation", "Fault", "Event", "Outcome", "walk",
           "SmmuModel", "EventQueueModel"]

_DESCRIPTOR = DescriptorLayout()
_STE = StreamTableEntryLayout()
_AP_READ_ONLY = 0b10


class FetchError(Exception):
    """A descriptor or STE read answered with a bus error (raised by the ``read64``
    callables the model is given)."""


class Status(enum.Enum):
    OK = "ok"
    FAULT = "fault"      # answered SLVERR, perhaps with an event
    ABORT = "abort"      # STE.Config = abort: answered SLVERR, no event


@dataclass(frozen=True)
class Translation:
    """A successful walk: the output address and the leaf's level and permissions."""
    pa: int
    level: int
    read_only: bool
    xn: bool


@dataclass(frozen=True)
class Fault:
    """A failed walk; ``fetch_addr`` is the descriptor address of a bus error, else 0."""
    type: EventType
    fetch_addr: int = 0


@dataclass(frozen=True)
class Event:
    """A fault record as the event queue holds it."""
    type: EventType
    sid: int
    addr: int
    write: bool
    fetch_addr: int = 0


@dataclass(frozen=True)
class Outcome:
    """What one transaction becomes: ``pa`` for :attr:`Status.OK`; the ``event`` written
    to the event queue, if any."""
    status: Status
    pa: int = None
    event: Event = None


def walk(read64, ttb, iova, *, write=False, instr=False):
    """Walk the tables at ``ttb`` for ``iova``; returns a :class:`Translation` or a
    :class:`Fault`.

    Fault priority is the architecture's: translation (invalid descriptor, reserved
    descriptor, input address out of range), address size (an output or table address
    beyond ``OA_BITS``), access flag, permission (a write to a read-only page, an
    instruction fetch from an execute-never page). A bus error reading a descriptor is
    :attr:`EventType.WALK_EABT`.
    """
    if iova >> IA_BITS:
        return Fault(EventType.TRANSLATION)
    table = ttb
    for level in LEVELS:
        desc_addr = table + 8 * table_index(level, iova)
        try:
            raw = read64(desc_addr)
        except FetchError:
            return Fault(EventType.WALK_EABT, desc_addr)
        d = unpack(_DESCRIPTOR, raw.to_bytes(8, "little"))
        if not d["valid"] or (level == 3 and not d["table"]):
            return Fault(EventType.TRANSLATION)
        if d["oa"] >> (OA_BITS - GRANULE_SHIFT):
            return Fault(EventType.ADDR_SIZE)
        if level < 3 and d["table"]:
            table = d["oa"] << GRANULE_SHIFT
            continue
        if not d["af"]:
            return Fault(EventType.ACCESS)
        shift = level_shift(level)
        base = (d["oa"] << GRANULE_SHIFT) & ~((1 << shift) - 1)
        translation = Translation(base | iova & ((1 << shift) - 1), level,
                                  bool(d["ap"] & _AP_READ_ONLY), bool(d["xn"]))
        if write and translation.read_only or instr and translation.xn:
            return Fault(EventType.PERMISSION)
        return translation
    raise AssertionError("unreachable")


class SmmuModel:
    """The SMMU's translation of a transaction, from memory contents.

    Parameters
    ----------
    read64 : callable
        ``read64(addr)`` returns the 64-bit little-endian word at ``addr``, or raises
        :class:`FetchError`.
    strtab_base : int
        Physical address of the linear stream table.
    strtab_log2size : int
        The table holds ``2**strtab_log2size`` entries; a higher stream ID is unknown.
    enabled : bool
        ``CR0.smmuen``; when clear every transaction bypasses.
    """
    def __init__(self, read64, *, strtab_base, strtab_log2size, enabled=True):
        self.read64 = read64
        self.strtab_base = strtab_base
        self.strtab_log2size = strtab_log2size
        self.enabled = enabled

    def stream_entry(self, sid):
        """The decoded STE of ``sid`` (raises :class:`FetchError`)."""
        addr = self.strtab_base + STE_BYTES * sid
        raw = b"".join(self.read64(addr + 8 * n).to_bytes(8, "little") for n in range(2))
        return unpack(_STE, raw)

    def translate(self, sid, addr, *, write, instr=False):
        """The :class:`Outcome` of a transaction of stream ``sid`` at ``addr``."""
        if not self.enabled:
            return Outcome(Status.OK, addr)

        def fault(event_type, fetch_addr=0, *, record=True):
            event = Event(event_type, sid, addr, write, fetch_addr) if record else None
            return Outcome(Status.FAULT, event=event)

        if sid >> self.strtab_log2size:
            return fault(EventType.BAD_STREAMID)
        try:
            ste = self.stream_entry(sid)
        except FetchError:
            return fault(EventType.STE_FETCH, self.strtab_base + STE_BYTES * sid)
        if not ste["valid"] or ste["config"] not in {c.value for c in StreamConfig}:
            return fault(EventType.BAD_STE)
        config = StreamConfig(ste["config"])
        if config is StreamConfig.ABORT:
            return Outcome(Status.ABORT)
        if config is StreamConfig.BYPASS:
            return Outcome(Status.OK, addr)
        result = walk(self.read64, ste["ttb"] << GRANULE_SHIFT, addr, write=write, instr=instr)
        if isinstance(result, Fault):
            return fault(result.type, result.fetch_addr, record=bool(ste["record"]))
        return Outcome(Status.OK, result.pa)


class EventQueueModel:
    """The producer side of the event queue of ``2**log2size`` records, as software sees it
    through ``EVTQ_PROD``, ``EVTQ_CONS`` and ``EVTQ_LOST`` (from ``CR0.evtqen`` set).

    A record that finds the queue full is lost: ``lost`` counts it, and ``ovflg`` toggles if
    it equals ``ovackflg`` (the first loss of an overflow *episode*, as SMMUv3 specifies);
    losses before software acknowledges the episode (writes ``EVTQ_CONS.ovackflg`` equal to
    ``ovflg``) belong to it and toggle nothing.

    Attributes
    ----------
    prod, cons : int
        Indices with their wrap bit.
    ovflg, ovackflg : int
    lost : int
        Records lost, wrapping at ``2**32``.
    episodes : int
        Times ``ovflg`` toggled.
    written : list of Event
        Every record written, in order.
    """
    def __init__(self, log2size):
        self.log2size = log2size
        self.prod = self.cons = self.ovflg = self.ovackflg = self.lost = self.episodes = 0
        self.written = []
        self._slots = {}

    @property
    def full(self):
        return (self.prod - self.cons) & ((2 << self.log2size) - 1) == 1 << self.log2size

    def record(self, event):
        """A fault ``event`` to record (``None``: none); returns whether it was written."""
        if event is None:
            return False
        if self.full:
            self.lost = (self.lost + 1) & 0xffff_ffff
            if self.ovflg == self.ovackflg:
                self.ovflg ^= 1
                self.episodes += 1
            return False
        self._slots[self.prod & ((1 << self.log2size) - 1)] = event
        self.written.append(event)
        self.prod = (self.prod + 1) & ((2 << self.log2size) - 1)
        return True

    def consume(self, cons, *, ovackflg):
        """Software writes ``EVTQ_CONS``."""
        self.cons, self.ovackflg = cons, ovackflg

    def slot_bytes(self, slot):
        """The record in ``slot`` as memory holds it (zeros if none was written)."""
        event = self._slots.get(slot)
        if event is None:
            return bytes(EVENT_BYTES)
        return pack(EventLayout(), type=event.type, sid=event.sid, rnw=int(not event.write),
                    input_addr=event.addr, fetch_addr=event.fetch_addr)
