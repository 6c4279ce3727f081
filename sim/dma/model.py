"""Reference model of a DMA channel: what memory and descriptors look like after a run.

The model executes transfers one after the other, burst by burst, on a memory object with
``read(addr, n)`` and ``write(addr, data)`` (such as :class:`~dmabuf_soc.sim.bus.memory.ReferenceMemory`),
asking an optional ``error(write, addr)`` callback — the one :class:`~dmabuf_soc.sim.bus.subordinate.AXI4Subordinate`
takes — for the response to each burst. It predicts the data bursts of every completed
transfer, the status words written back, and where and why the channel halts.

The engine pipelines transfers, so transfers of one chain must not overlap (a descriptor must
not read what an earlier one writes). After a halt only the transfers reported completed have
moved their data; the destinations of the faulting transfer and of those after it are undefined
(the model leaves them untouched and lists them in :attr:`Outcome.undefined`).
"""

from dataclasses import dataclass, field

from ...hw.bus.axi import BOUNDARY, Resp
from ...hw.dma.descriptor import (DESCRIPTOR_BYTES, STATUS_OFFSET, ErrorCode, StatusLayout,
                                  unpack_descriptor)

__all__ = ["bursts", "status_word", "Outcome", "DMAModel"]


def bursts(addr, length, *, bytes_per_beat=8, max_burst_beats=16):
    """The ``(address, beats)`` bursts that cover ``length`` bytes at ``addr``: whole beats from
    the aligned address, at most ``max_burst_beats`` long, never crossing 4 KiB."""
    if length <= 0:
        return []
    beat = addr - addr % bytes_per_beat
    left = -(-(addr + length - beat) // bytes_per_beat)
    result = []
    while left:
        beats = min(max_burst_beats, left, (BOUNDARY - beat % BOUNDARY) // bytes_per_beat)
        result.append((beat, beats))
        beat += beats * bytes_per_beat
        left -= beats
    return result


def status_word(*, completed, error=ErrorCode.NONE, resp=Resp.OKAY, bytes_moved=0):
    """The 8 bytes the engine writes at a descriptor's :data:`STATUS_OFFSET`."""
    status = StatusLayout().const({"completed": int(completed), "error": ErrorCode(error),
                                   "resp": Resp(resp)}).as_value().value
    return (status | bytes_moved << 32).to_bytes(8, "little")


@dataclass
class Outcome:
    """What a run of the channel did.

    Attributes
    ----------
    completed : list of int
        Descriptor addresses of the completed transfers, in order (0 for register mode).
    error : ErrorCode
    resp : Resp
        The bus response behind a bus error.
    err_desc : int
        Faulting descriptor (0 in register mode or without error); for
        :attr:`ErrorCode.MISALIGNED`, the misaligned pointer.
    reads, writes : list of (int, int)
        ``(address, beats)`` of the data bursts of the completed transfers, in order.
    bytes_moved : int
        Bytes of the completed transfers.
    undefined : list of (int, int)
        ``(address, length)`` destinations whose contents the model does not predict.
    """
    completed: list = field(default_factory=list)
    error: ErrorCode = ErrorCode.NONE
    resp: Resp = Resp.OKAY
    err_desc: int = 0
    reads: list = field(default_factory=list)
    writes: list = field(default_factory=list)
    bytes_moved: int = 0
    undefined: list = field(default_factory=list)


class _Fault(Exception):
    def __init__(self, code, resp=Resp.OKAY):
        self.code, self.resp = code, resp


class DMAModel:
    """Transaction-level model of one DMA channel.

    Parameters
    ----------
    memory : object
        With ``read(addr, n) -> bytes`` and ``write(addr, data)``; updated in place.
    bytes_per_beat : int
        Bus width in bytes.
    max_burst_beats : int
        Longest burst.
    error : callable or None
        ``error(write, addr)``: the :class:`Resp` of the burst starting at ``addr``
        (``None`` for OKAY).
    """
    def __init__(self, memory, *, bytes_per_beat=8, max_burst_beats=16, error=None):
        self.memory = memory
        self.bytes_per_beat = bytes_per_beat
        self.max_burst_beats = max_burst_beats
        self.error = error

    def _resp(self, write, addr):
        resp = self.error(write, addr) if self.error is not None else None
        return Resp.OKAY if resp is None else Resp(resp)

    def _bursts(self, addr, length):
        return bursts(addr, length, bytes_per_beat=self.bytes_per_beat,
                      max_burst_beats=self.max_burst_beats)

    def _copy(self, outcome, src, dst, length):
        reads, writes = self._bursts(src, length), self._bursts(dst, length)
        for addr, _ in reads:
            resp = self._resp(False, addr)
            if resp != Resp.OKAY:
                raise _Fault(ErrorCode.READ, resp)
        for addr, _ in writes:
            resp = self._resp(True, addr)
            if resp != Resp.OKAY:
                raise _Fault(ErrorCode.WRITE, resp)
        self.memory.write(dst, self.memory.read(src, length))
        outcome.reads += reads
        outcome.writes += writes

    def register_transfer(self, src, dst, length):
        """Run one register-mode transfer; returns an :class:`Outcome`."""
        outcome = Outcome()
        if length == 0:
            outcome.error = ErrorCode.ZERO_LEN
            return outcome
        try:
            self._copy(outcome, src, dst, length)
        except _Fault as fault:
            outcome.error, outcome.resp = fault.code, fault.resp
            outcome.undefined.append((dst, length))
        else:
            outcome.completed.append(0)
            outcome.bytes_moved = length
        return outcome

    def chain(self, cur_desc, tail_desc, *, cyclic=False, limit=None):
        """Walk a descriptor chain from ``cur_desc`` to ``tail_desc`` (in cyclic mode, for
        ``limit`` descriptors); returns an :class:`Outcome`.

        A pointer not aligned to :data:`DESCRIPTOR_BYTES` halts the walk with
        :attr:`ErrorCode.MISALIGNED` before anything is fetched from it, ``err_desc`` being
        the pointer itself: ``cur_desc``, a ``next`` about to be followed, or (outside cyclic
        mode) ``tail_desc``, checked before each fetch. A descriptor fetched with
        ``completed`` set halts it with :attr:`ErrorCode.STALE` (outside cyclic mode), so a
        ``next`` pointing back into the chain runs each descriptor once."""
        outcome = Outcome()
        addr = cur_desc
        count = 0
        while True:
            try:
                # A pointer about to be followed is checked before it is fetched: the one
                # being fetched, then (outside cyclic mode) the tail it is compared against.
                if addr % DESCRIPTOR_BYTES:
                    raise _Fault(ErrorCode.MISALIGNED)
                if not cyclic and tail_desc % DESCRIPTOR_BYTES:
                    addr = tail_desc
                    raise _Fault(ErrorCode.MISALIGNED)
                resp = self._resp(False, addr)
                if resp != Resp.OKAY:
                    raise _Fault(ErrorCode.DESC_FETCH, resp)
                desc = unpack_descriptor(self.memory.read(addr, DESCRIPTOR_BYTES))
                if desc["completed"] and not cyclic:
                    raise _Fault(ErrorCode.STALE)
                if desc["length"] == 0:
                    raise _Fault(ErrorCode.ZERO_LEN)
                try:
                    self._copy(outcome, desc["src"], desc["dst"], desc["length"])
                except _Fault:
                    outcome.undefined.append((desc["dst"], desc["length"]))
                    raise
                resp = self._resp(True, addr + STATUS_OFFSET)
                if resp != Resp.OKAY:
                    raise _Fault(ErrorCode.STATUS_WB, resp)
                self.memory.write(addr + STATUS_OFFSET,
                                  status_word(completed=True, bytes_moved=desc["length"]))
            except _Fault as fault:
                outcome.error, outcome.resp, outcome.err_desc = fault.code, fault.resp, addr
                if fault.code in (ErrorCode.READ, ErrorCode.WRITE, ErrorCode.ZERO_LEN):
                    self.memory.write(addr + STATUS_OFFSET, status_word(
                        completed=False, error=fault.code, resp=fault.resp))
                return outcome
            outcome.completed.append(addr)
            outcome.bytes_moved += desc["length"]
            count += 1
            if (not cyclic and addr == tail_desc) or count == limit:
                return outcome
            addr = desc["next"]
