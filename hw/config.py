"""One configuration object for the whole SoC: widths, memory map, latencies."""

from dataclasses import dataclass, field, replace

__all__ = ["MAX_LATENCY", "Bank", "SocConfig"]

GiB = 1 << 30
MiB = 1 << 20
#: The longest DDR read or write latency, in cycles.
MAX_LATENCY = 256


@dataclass(frozen=True)
class Bank:
    """A DDR bank: ``size`` bytes of memory at physical address ``base``."""
    name: str
    base: int
    size: int

    def __post_init__(self):
        if not isinstance(self.base, int) or self.base < 0:
            raise ValueError(f"Bank {self.name!r} base must be a non-negative integer, "
                             f"not {self.base!r}")
        if not isinstance(self.size, int) or self.size < 4096 or self.size & (self.size - 1):
            raise ValueError(f"Bank {self.name!r} size must be a power of two of at least "
                             f"4096 bytes, not {self.size!r}")
        if self.base % self.size:
            raise ValueError(f"Bank {self.name!r} base {self.base:#x} is not aligned to its "
                             f"size {self.size:#x}")

    @property
    def end(self):
        """One past the last byte of the bank."""
        return self.base + self.size

    def __contains__(self, addr):
        return self.base <= addr < self.end


def _default_banks():
    # One bank below 4 GiB and one above, so 32-bit DMA masks and bouncing are real.
    # Small by default so that the built-in simulator elaborates them quickly.
    return (Bank("low", base=0x8000_0000, size=1 * MiB),
            Bank("high", base=0x1_0000_0000, size=1 * MiB))


@dataclass(frozen=True)
class SocConfig:
    """Parameters of the SoC, shared by the gateware, the simulator and the driver.

    Attributes
    ----------
    addr_width : int
        Physical address width in bits.
    data_width : int
        Data width of the AXI4 memory buses in bits.
    id_width : int
        AXI ID width of each manager port, before the interconnect widens it.
    sid_width : int
        Width of the stream-ID sideband.
    mmio_addr_width : int
        Address width of the AXI4-Lite register space.
    banks : tuple of Bank
        DDR banks.
    read_latency, write_latency : int
        DDR model latency in cycles, from address accepted to first read beat / to write
        response after the last write beat; 1 to :data:`MAX_LATENCY`. A compiled model runs
        with any (the DDR model takes them at run time), so configurations differing only in
        them share a build.
    max_outstanding : int
        Requests the DDR model holds per direction before it stops accepting addresses.
    cache_size, cache_ways, cache_line_size : int
        Geometry of the CPU data cache (bytes, ways, bytes per line).
    dma_max_burst_beats : int
        Longest burst a DMA channel issues.
    external_managers : int
        AXI4 manager ports the SoC top exposes into its interconnect, for traffic from
        outside the SoC (testbenches, benchmarks, an FPGA user's own masters).
    register_slices : bool
        An AXI4 register slice between each internal manager (the cache, the SMMU's
        downstream ports and its table walker) and the interconnect, and between each DMA
        channel and its SMMU port, so that no path runs between those blocks without a
        register: the clock of an FPGA build then depends on each block alone. Costs two
        cycles per round trip (a cycle each way) per slice.
    """
    addr_width: int = 40
    data_width: int = 64
    id_width: int = 4
    sid_width: int = 8
    mmio_addr_width: int = 16
    banks: tuple = field(default_factory=_default_banks)
    read_latency: int = 20
    write_latency: int = 10
    max_outstanding: int = 8
    cache_size: int = 8192
    cache_ways: int = 4
    cache_line_size: int = 64
    dma_max_burst_beats: int = 16
    external_managers: int = 1
    register_slices: bool = True

    def __post_init__(self):
        for name in ("read_latency", "write_latency"):
            value = getattr(self, name)
            if not isinstance(value, int) or not 1 <= value <= MAX_LATENCY:
                raise ValueError(f"{name} must be an integer from 1 to {MAX_LATENCY}, "
                                 f"not {value!r}")
        if not isinstance(self.max_outstanding, int) or self.max_outstanding < 1:
            raise ValueError(f"max_outstanding must be a positive integer, "
                             f"not {self.max_outstanding!r}")
        if not isinstance(self.external_managers, int) or self.external_managers < 0:
            raise ValueError(f"external_managers must be a non-negative integer, "
                             f"not {self.external_managers!r}")
        if not isinstance(self.register_slices, bool):
            raise TypeError(f"register_slices must be a bool, not {self.register_slices!r}")
        banks = sorted(self.banks, key=lambda bank: bank.base)
        for lower, upper in zip(banks, banks[1:]):
            if lower.end > upper.base:
                raise ValueError(f"Banks {lower.name!r} and {upper.name!r} overlap")
        for bank in banks:
            if bank.end > 1 << self.addr_width:
                raise ValueError(f"Bank {bank.name!r} ends at {bank.end:#x}, beyond the "
                                 f"{self.addr_width}-bit address space")

    @property
    def bytes_per_beat(self):
        return self.data_width // 8

    @property
    def manager_signature(self):
        """Signature of every AXI4 manager port into the interconnect."""
        from .bus.axi import AXI4Signature
        return AXI4Signature(addr_width=self.addr_width, data_width=self.data_width,
                             id_width=self.id_width, sid_width=self.sid_width)

    @property
    def ddr_span(self):
        """``(base, size)`` of the interconnect window of the DDR model: from the lowest bank
        to the end of the highest, 4 KiB aligned. The DDR model answers DECERR between banks."""
        base = min(bank.base for bank in self.banks)
        end = max(bank.end for bank in self.banks)
        return base, end - base

    def bank_at(self, addr):
        """The bank holding physical address ``addr``, or ``None``."""
        for bank in self.banks:
            if addr in bank:
                return bank
        return None

    def replace(self, **changes):
        return replace(self, **changes)
