"""Cache geometry: size, ways and line size, and how a physical address splits into fields."""

from amaranth.utils import exact_log2

from ..parameters import check_integer

__all__ = ["CacheGeometry", "check_geometry"]


class CacheGeometry:
    """Shape of a set-associative cache.

    A physical address splits, from the least significant bit, into the byte offset within a
    line, the set index and the tag::

        | tag | index | offset |

    Parameters
    ----------
    size : int
        Capacity in bytes (8 KiB by default).
    ways : int
        Associativity (4 by default).
    line_size : int
        Bytes per line (64 by default); a line is one AXI4 burst of ``line_size / (data_width
        / 8)`` beats.
    addr_width : int
        Physical address width in bits.
    data_width : int
        Width of the CPU port and of the memory bus in bits.

    Raises
    ------
    ValueError
        If a parameter is not a power of two, if a line is narrower than two bus words or
        longer than an AXI4 burst, or if the cache holds fewer lines than it has ways.
    """
    def __init__(self, *, size=8192, ways=4, line_size=64, addr_width=40, data_width=64):
        check_integer("Cache size", size, power_of_two=True)
        check_integer("Number of ways", ways, power_of_two=True)
        check_integer("Line size", line_size, power_of_two=True)
        if data_width not in (32, 64):
            raise ValueError(f"Data width must be 32 or 64, not {data_width!r}")
        if not isinstance(addr_width, int) or not 16 <= addr_width <= 64:
            raise ValueError(f"Address width must be an integer from 16 to 64, "
                             f"not {addr_width!r}")
        bytes_per_word = data_width // 8
        if not 2 * bytes_per_word <= line_size <= 256 * bytes_per_word:
            raise ValueError(f"Line size must be from {2 * bytes_per_word} to "
                             f"{256 * bytes_per_word} bytes (2 to 256 bus words), "
                             f"not {line_size!r}")
        if line_size > 4096:
            raise ValueError(f"Line size must not exceed the 4 KiB AXI burst boundary, "
                             f"not {line_size!r}")
        if size < ways * line_size:
            raise ValueError(f"Cache size {size} holds fewer than one {line_size}-byte line "
                             f"per way for {ways} ways")
        self.size = size
        self.ways = ways
        self.line_size = line_size
        self.addr_width = addr_width
        self.data_width = data_width

    @property
    def bytes_per_word(self):
        return self.data_width // 8

    @property
    def words_per_line(self):
        """Bus words (burst beats) per line."""
        return self.line_size // self.bytes_per_word

    @property
    def sets(self):
        return self.size // (self.ways * self.line_size)

    @property
    def offset_bits(self):
        return exact_log2(self.line_size)

    @property
    def word_bits(self):
        """Bits of the word index within a line."""
        return exact_log2(self.words_per_line)

    @property
    def index_bits(self):
        return exact_log2(self.sets)

    @property
    def way_bits(self):
        return exact_log2(self.ways)

    @property
    def tag_bits(self):
        return self.addr_width - self.offset_bits - self.index_bits

    def split(self, addr):
        """``(tag, index, word)`` of physical address ``addr`` (an integer)."""
        word = (addr % self.line_size) // self.bytes_per_word
        index = (addr >> self.offset_bits) % self.sets
        tag = addr >> (self.offset_bits + self.index_bits)
        return tag, index, word

    def fields(self, addr):
        """``(tag, index, row)`` of address ``addr`` (a value): its tag, its set, and its row of
        the data memories (set and word)."""
        line = self.offset_bits + self.index_bits
        return addr[line:], addr[self.offset_bits:line], addr[self.offset_bits - self.word_bits:line]

    def line_addr(self, tag, index):
        """Physical address of the first byte of the line ``tag`` holds in set ``index``."""
        return ((tag << self.index_bits) | index) << self.offset_bits

    def __eq__(self, other):
        return type(other) is type(self) and vars(other) == vars(self)

    def __hash__(self):
        return hash(tuple(sorted(vars(self).items())))

    def __repr__(self):
        return (f"CacheGeometry(size={self.size}, ways={self.ways}, "
                f"line_size={self.line_size}, addr_width={self.addr_width}, "
                f"data_width={self.data_width})")


def check_geometry(geometry):
    """Check that ``geometry`` is a :class:`CacheGeometry`, and return it.

    Raises
    ------
    TypeError
        If it is not.
    """
    if not isinstance(geometry, CacheGeometry):
        raise TypeError(f"Geometry must be a CacheGeometry, not {geometry!r}")
    return geometry
