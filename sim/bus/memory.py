"""The reference memory that every memory-side block is checked against, and what an AXI
burst does to it."""

from ...hw.bus.axi import Burst

__all__ = ["burst_beats", "ReferenceMemory"]


def burst_beats(addr, length, size, burst, bytes_per_beat):
    """The beats of an AXI4 burst, as the AXI specification defines them.

    Parameters
    ----------
    addr : int
        ``AxADDR``, the start address (may be unaligned for INCR and FIXED bursts).
    length : int
        ``AxLEN`` (beats minus one).
    size : int
        ``AxSIZE`` (log2 of the bytes per beat).
    burst : Burst or int
        ``AxBURST``.
    bytes_per_beat : int
        Width of the data bus in bytes.

    Returns
    -------
    list of (int, int)
        For each beat, its address and the mask of the byte lanes it uses (bit ``i`` set:
        lane ``i`` of the data bus carries a byte of this beat).
    """
    burst = Burst(burst)
    nbytes = 1 << size
    if nbytes > bytes_per_beat:
        raise ValueError(f"Transfer size {nbytes} is wider than the {bytes_per_beat}-byte bus")
    aligned = addr & ~(nbytes - 1)
    beats = []
    for n in range(length + 1):
        if burst == Burst.FIXED:
            beat_addr = addr
        elif burst == Burst.INCR:
            beat_addr = addr if n == 0 else aligned + n * nbytes
        else:
            wrap_bytes = nbytes * (length + 1)
            wrap_base = addr - addr % wrap_bytes
            beat_addr = wrap_base + (addr - wrap_base + n * nbytes) % wrap_bytes
        lower = beat_addr % bytes_per_beat
        upper = (beat_addr & ~(nbytes - 1)) % bytes_per_beat + nbytes - 1
        beats.append((beat_addr, ((1 << (upper + 1)) - 1) & ~((1 << lower) - 1)))
    return beats


class ReferenceMemory:
    """Sparse byte-addressed memory; bytes never written read as zero.

    Stored as 4 KiB pages of :class:`bytearray`, created on first write.
    """
    PAGE_SIZE = 4096

    def __init__(self):
        self._pages = {}

    def _page(self, number, *, create):
        page = self._pages.get(number)
        if page is None and create:
            page = self._pages[number] = bytearray(self.PAGE_SIZE)
        return page

    def read(self, addr, n):
        """``n`` bytes at ``addr``, as :class:`bytes`."""
        if addr < 0 or n < 0:
            raise ValueError(f"Cannot read {n!r} bytes at {addr!r}")
        out = bytearray()
        while n:
            offset = addr % self.PAGE_SIZE
            chunk = min(n, self.PAGE_SIZE - offset)
            page = self._page(addr // self.PAGE_SIZE, create=False)
            out += bytes(chunk) if page is None else page[offset:offset + chunk]
            addr += chunk
            n -= chunk
        return bytes(out)

    def write(self, addr, data):
        """Store the bytes-like ``data`` at ``addr``."""
        if addr < 0:
            raise ValueError(f"Cannot write at {addr!r}")
        data = memoryview(bytes(data))
        while data:
            offset = addr % self.PAGE_SIZE
            chunk = min(len(data), self.PAGE_SIZE - offset)
            self._page(addr // self.PAGE_SIZE, create=True)[offset:offset + chunk] = data[:chunk]
            addr += chunk
            data = data[chunk:]

    def read_beat(self, addr, bytes_per_beat):
        """The bus word holding ``addr`` (all lanes, little-endian), as an integer."""
        base = addr - addr % bytes_per_beat
        return int.from_bytes(self.read(base, bytes_per_beat), "little")

    def write_beat(self, addr, data, strb, bytes_per_beat):
        """Write the lanes of bus word ``data`` selected by ``strb`` into the bus word
        holding ``addr``."""
        base = addr - addr % bytes_per_beat
        raw = data.to_bytes(bytes_per_beat, "little")
        lane = 0
        while strb >> lane:
            if not strb >> lane & 1:
                lane += 1
                continue
            end = lane
            while strb >> end & 1:
                end += 1
            self.write(base + lane, raw[lane:end])
            lane = end

    def read_burst(self, addr, length, size, bytes_per_beat, burst=Burst.INCR):
        """The R data beats of a read burst: whole bus words; only the beats' lanes matter."""
        return [self.read_beat(beat_addr, bytes_per_beat)
                for beat_addr, _ in burst_beats(addr, length, size, burst, bytes_per_beat)]

    def write_burst(self, addr, data, strb, size, bytes_per_beat, burst=Burst.INCR):
        """Apply the W beats ``data``/``strb`` of a write burst starting at ``addr``; strobes
        outside each beat's lanes are ignored, as a subordinate must."""
        beats = burst_beats(addr, len(data) - 1, size, burst, bytes_per_beat)
        for (beat_addr, lanes), word, mask in zip(beats, data, strb):
            self.write_beat(beat_addr, word, mask & lanes, bytes_per_beat)
