"""Reference model of the data cache: a cache-less memory plus the cache's own state.

The model keeps what the hardware keeps (per line: valid, dirty, tag and data; per set: the
pseudo-LRU tree) and, for each CPU access or maintenance operation, says what the hardware
must answer and which bus transactions it must make. Tests compare the RTL against it
transaction by transaction.
"""

from dataclasses import dataclass, field

from ...hw.cache import plru
from ...hw.cache.core import MaintenanceOp, MaintenanceScope
from ...hw.cache.geometry import check_geometry

__all__ = ["LineState", "Outcome", "CacheModel"]


@dataclass
class LineState:
    """What one way of one set holds."""
    valid: bool = False
    dirty: bool = False
    tag: int = 0
    data: bytearray = None


@dataclass
class Outcome:
    """What one access or maintenance operation does.

    Attributes
    ----------
    data : int
        Load data (0 for stores and maintenance).
    reads : list of (int, int)
        ``(address, beats)`` of each read burst made, in order.
    writes : list of (int, list of (int, int))
        ``(address, [(data, strb), ...])`` of each write burst made, in order.
    """
    data: int = 0
    reads: list = field(default_factory=list)
    writes: list = field(default_factory=list)


class CacheModel:
    """The cache and the memory behind it, in Python.

    Parameters
    ----------
    geometry : CacheGeometry
    memory : ReferenceMemory-like
        The memory as the bus sees it: an object with ``read(addr, n) -> bytes`` and
        ``write(addr, data)``. Write-backs and uncached stores update it; refills and uncached
        loads read it. A DMA write is a write to it, outside the model.

    Attributes
    ----------
    lines : list of list of LineState
        ``lines[set][way]``.
    lru : list of int
        Pseudo-LRU tree bits of each set.
    counters : dict
        ``hits``, ``misses``, ``writebacks``, ``lines_cleaned``, ``lines_invalidated``.
    """
    def __init__(self, geometry, memory):
        check_geometry(geometry)
        self.geometry = geometry
        self.memory = memory
        self.reset()

    def reset(self):
        """What a reset does, as at power-up: every line invalid and clean (dirty data that
        was never written back is lost), the pseudo-LRU bits and the counters zero. Memory
        is left as it is."""
        g = self.geometry
        self.lines = [[LineState() for _ in range(g.ways)] for _ in range(g.sets)]
        self.lru = [0] * g.sets
        self.counters = dict.fromkeys(
            ("hits", "misses", "writebacks", "lines_cleaned", "lines_invalidated"), 0)

    def _write_back(self, index, line, outcome):
        g = self.geometry
        addr = g.line_addr(line.tag, index)
        self.memory.write(addr, line.data)
        full = (1 << g.bytes_per_word) - 1
        beats = [(int.from_bytes(line.data[i:i + g.bytes_per_word], "little"), full)
                 for i in range(0, g.line_size, g.bytes_per_word)]
        outcome.writes.append((addr, beats))
        self.counters["writebacks"] += 1
        line.dirty = False

    def _lookup(self, tag, index):
        for way, line in enumerate(self.lines[index]):
            if line.valid and line.tag == tag:
                return way
        return None

    def _victim(self, index):
        for way, line in enumerate(self.lines[index]):
            if not line.valid:
                return way
        return plru.victim(self.lru[index], self.geometry.ways)

    def access(self, addr, *, write=False, data=0, strb=None, cacheable=True):
        """One CPU access to the bus word holding ``addr``; returns an :class:`Outcome`.

        ``strb`` selects the bytes a store writes (all of them if ``None``).
        """
        g = self.geometry
        nbytes = g.bytes_per_word
        if strb is None:
            strb = (1 << nbytes) - 1
        word_addr = addr - addr % nbytes
        outcome = Outcome()
        if not cacheable:
            if write:
                self._merge(self.memory, word_addr, data, strb)
                outcome.writes.append((word_addr, [(data, strb)]))
            else:
                outcome.data = int.from_bytes(self.memory.read(word_addr, nbytes), "little")
                outcome.reads.append((word_addr, 1))
            return outcome

        tag, index, word = g.split(addr)
        way = self._lookup(tag, index)
        if way is None:
            self.counters["misses"] += 1
            way = self._victim(index)
            line = self.lines[index][way]
            if line.valid and line.dirty:
                self._write_back(index, line, outcome)
            line_addr = g.line_addr(tag, index)
            line.data = bytearray(self.memory.read(line_addr, g.line_size))
            line.valid, line.dirty, line.tag = True, False, tag
            outcome.reads.append((line_addr, g.words_per_line))
        else:
            self.counters["hits"] += 1
        self.lru[index] = plru.touch(self.lru[index], way, g.ways)
        line = self.lines[index][way]
        offset = word * nbytes
        if write:
            line.data[offset:offset + nbytes] = self._merged(
                line.data[offset:offset + nbytes], data, strb)
            line.dirty = True
        else:
            outcome.data = int.from_bytes(line.data[offset:offset + nbytes], "little")
        return outcome

    @staticmethod
    def _merged(old, data, strb):
        new = bytearray(old)
        raw = data.to_bytes(len(old), "little")
        for lane in range(len(old)):
            if strb >> lane & 1:
                new[lane] = raw[lane]
        return new

    def _merge(self, memory, addr, data, strb):
        nbytes = self.geometry.bytes_per_word
        memory.write(addr, self._merged(memory.read(addr, nbytes), data, strb))

    def _selected(self, scope, start, end, set, way):
        """``(index, way)`` of every line a maintenance operation selects, in the order the
        hardware visits them."""
        g = self.geometry
        if scope == MaintenanceScope.RANGE:
            if end <= start:
                return
            for line_number in range(start >> g.offset_bits, -(-end >> g.offset_bits)):
                tag, index, _ = g.split(line_number << g.offset_bits)
                hit = self._lookup(tag, index)
                if hit is not None:
                    yield index, hit
        elif scope == MaintenanceScope.SET_WAY:
            index, way = set % g.sets, way % g.ways
            if self.lines[index][way].valid:
                yield index, way
        else:
            for way in range(g.ways):
                for index in range(g.sets):
                    if self.lines[index][way].valid:
                        yield index, way

    def maintain(self, op, scope, *, start=0, end=0, set=0, way=0):
        """One maintenance operation; returns an :class:`Outcome` listing its write-backs."""
        op, scope = MaintenanceOp(op), MaintenanceScope(scope)
        clean = op in (MaintenanceOp.CLEAN, MaintenanceOp.CLEAN_INVALIDATE)
        invalidate = op in (MaintenanceOp.INVALIDATE, MaintenanceOp.CLEAN_INVALIDATE)
        outcome = Outcome()
        for index, hit in list(self._selected(scope, start, end, set, way)):
            line = self.lines[index][hit]
            if clean and line.dirty:
                self._write_back(index, line, outcome)
                self.counters["lines_cleaned"] += 1
            if invalidate:
                line.valid = line.dirty = False
                self.counters["lines_invalidated"] += 1
        return outcome
