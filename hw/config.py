"""One configuration object for the whole SoC: widths, memory map, latencies; and the one
table of what each of its parameters may be (:data:`PARAMETERS`, :data:`RULES`), which the
SoC checks a configuration against before any block sees it, the command line before any
work, and ``docs/parameters.md`` is generated from."""

from dataclasses import dataclass, field, replace

__all__ = ["MAX_LATENCY", "Bank", "SocConfig", "ConfigError", "Parameter", "Rule",
           "PARAMETERS", "RULES", "BLOCK_PARAMETERS", "check_config"]

GiB = 1 << 30
KiB = 1 << 10
MiB = 1 << 20
#: The longest DDR read or write latency, in cycles.
MAX_LATENCY = 256


class ConfigError(ValueError):
    """A parameter, or a combination of parameters, that the SoC's blocks do not accept; the
    message names the parameter, the value given and the values allowed."""


def _amount(value, unit):
    if unit == "bytes" and value >= KiB and value % KiB == 0:
        return f"{value} ({value // MiB} MiB)" if value % MiB == 0 else \
            f"{value} ({value // KiB} KiB)"
    return str(value)


@dataclass(frozen=True)
class Parameter:
    """What one parameter may be: an integer from ``minimum`` to ``maximum`` (a power of two
    if ``power_of_two``, a multiple of ``multiple_of``), or with ``boolean`` false or true.

    ``meaning`` says what it is, ``why`` where the bounds come from; both go into
    ``docs/parameters.md``.
    """
    name: str
    minimum: int
    maximum: int
    meaning: str
    why: str = ""
    unit: str = ""
    power_of_two: bool = False
    multiple_of: int = 1
    boolean: bool = False

    @property
    def allowed(self):
        """The values allowed, in words: ``"a power of two from 16 to 2048"``."""
        if self.boolean:
            return "0 or 1 (false or true)"
        if self.minimum == self.maximum:
            return f"{self.minimum}"
        kind = ("a power of two" if self.power_of_two else
                f"a multiple of {self.multiple_of}" if self.multiple_of > 1 else "an integer")
        return (f"{kind} from {_amount(self.minimum, self.unit)} to "
                f"{_amount(self.maximum, self.unit)}")

    def is_allowed(self, value):
        if self.boolean:
            return isinstance(value, bool) or (isinstance(value, int) and value in (0, 1))
        return (isinstance(value, int) and not isinstance(value, bool)
                and self.minimum <= value <= self.maximum and value % self.multiple_of == 0
                and not (self.power_of_two and value & (value - 1)))

    def check(self, value):
        """Raise :exc:`ConfigError` unless ``value`` is allowed."""
        if not self.is_allowed(value):
            why = f" ({self.why})" if self.why else ""
            raise ConfigError(f"{self.name} must be {self.allowed}, not {value!r}{why}")
        return value

    def parse(self, text):
        """The value of ``text`` (``"0x1000"``, ``"4096"``; ``"true"`` for a boolean),
        checked; :exc:`ConfigError` names the parameter if it is not allowed."""
        words = {"true": 1, "false": 0, "yes": 1, "no": 0} if self.boolean else {}
        try:
            value = words[text.strip().lower()] if text.strip().lower() in words \
                else int(text, 0)
        except ValueError:
            raise ConfigError(f"{self.name} must be {self.allowed}, not {text!r}") from None
        self.check(value)
        return bool(value) if self.boolean else value


@dataclass(frozen=True)
class Rule:
    """A condition between parameters: ``holds(config)`` must be true; ``text`` says it."""
    names: tuple
    text: str
    holds: object
    why: str = ""

    def check(self, config):
        if not self.holds(config):
            values = ", ".join(f"{name}={getattr(config, name)!r}" for name in self.names)
            why = f" ({self.why})" if self.why else ""
            raise ConfigError(f"{self.text}, not so for {values}{why}")


#: Every integer (and boolean) parameter of :class:`SocConfig` and what the SoC's blocks
#: accept for it. The blocks' own checks are a second line behind this table.
PARAMETERS = {p.name: p for p in (
    Parameter("addr_width", 40, 40, "physical address width of the memory buses, in bits",
              "the SMMU's page tables and the DMA channels' LO/HI address registers are "
              "40-bit", unit="bits"),
    Parameter("data_width", 64, 64, "data width of the AXI4 memory buses, in bits",
              "the SMMU reads 64-bit descriptors, the cache and CPU port take 32 or 64, the "
              "DMA engine 64 to 512: 64 is the one width all of them take", unit="bits"),
    Parameter("id_width", 2, 16, "AXI ID width of each manager port, in bits, before the "
              "interconnect widens it",
              "the SMMU's table port shares its IDs between the walker and the command "
              "queue; with the interconnect's manager index the IDs stay within AXI's 32 "
              "bits", unit="bits"),
    Parameter("sid_width", 1, 8, "width of the stream-ID sideband, in bits",
              "the SMMU's stream table takes 1 to 8 bits; the DMA channels are streams 0 "
              "and 1", unit="bits"),
    Parameter("mmio_addr_width", 15, 64, "address width of the AXI4-Lite register space, "
              "in bits", "the register windows end at 0x5000; AXI addresses have at most 64 "
              "bits", unit="bits"),
    Parameter("read_latency", 1, MAX_LATENCY, "DDR model latency, in cycles, from a read "
              "address accepted to its first data beat",
              "the DDR model's latency counters; a compiled model takes it at run time",
              unit="cycles"),
    Parameter("write_latency", 1, MAX_LATENCY, "DDR model latency, in cycles, from the last "
              "write beat to the write response",
              "the DDR model's latency counters; a compiled model takes it at run time",
              unit="cycles"),
    Parameter("max_outstanding", 1, 64, "requests the DDR model and the interconnect hold "
              "per direction",
              "their queues grow with it: 64 takes half a minute to elaborate, 256 minutes "
              "and gigabytes, 1024 overflows the elaborator's recursion"),
    Parameter("cache_size", 16, 256 * KiB, "capacity of the CPU data cache, in bytes",
              "at least one line per way; 1 MiB takes over a minute to elaborate the cache "
              "alone", unit="bytes", power_of_two=True),
    Parameter("cache_ways", 1, 16, "associativity of the CPU data cache",
              "a way is a tag compare and a data memory: 64 ways take 20 s to elaborate the "
              "cache alone", power_of_two=True),
    Parameter("cache_line_size", 16, 2048, "bytes per line of the CPU data cache",
              "a line is one AXI4 burst of 2 to 256 beats of the 64-bit bus", unit="bytes",
              power_of_two=True),
    Parameter("dma_max_burst_beats", 1, 63, "longest burst a DMA channel issues, in beats",
              "the DMA engine's 128-beat data buffer must hold two bursts and a beat"),
    Parameter("external_managers", 0, 16, "AXI4 manager ports the SoC top exposes into its "
              "interconnect for traffic from outside the SoC",
              "the interconnect's arbitration grows with its managers: 32 take a minute to "
              "elaborate, 200 do not finish"),
    Parameter("register_slices", 0, 1, "an AXI4 register slice between each internal "
              "manager and the interconnect, and between each DMA channel and the SMMU",
              boolean=True),
)}

#: Conditions between parameters, checked after each parameter is in its range.
RULES = (
    Rule(("cache_size", "cache_ways", "cache_line_size"),
         "cache_size must be at least cache_ways × cache_line_size",
         lambda config: config.cache_size >= config.cache_ways * config.cache_line_size,
         "the cache needs at least one line per way"),
)

#: The parameters each block of :mod:`.catalog` is built from (the SoC top: all of them); a
#: ``--set`` of any other leaves the block as it was.
BLOCK_PARAMETERS = {
    "soc":          tuple(PARAMETERS),
    "ident":        ("addr_width", "data_width", "sid_width", "mmio_addr_width"),
    "ddr":          ("addr_width", "data_width", "id_width", "sid_width", "read_latency",
                     "write_latency", "max_outstanding", "external_managers"),
    "interconnect": ("addr_width", "data_width", "id_width", "sid_width", "max_outstanding",
                     "external_managers"),
    "dma":          ("addr_width", "data_width", "id_width", "sid_width",
                     "dma_max_burst_beats"),
    "smmu":         ("addr_width", "data_width", "id_width", "sid_width"),
    "cache":        ("addr_width", "data_width", "id_width", "sid_width", "cache_size",
                     "cache_ways", "cache_line_size"),
}


def check_config(config, names=None):
    """Raise :exc:`ConfigError` for the first of ``names`` (every parameter if ``None``) of
    ``config`` outside :data:`PARAMETERS`, then for the first :data:`RULES` entry among those
    names that does not hold."""
    names = tuple(PARAMETERS) if names is None else tuple(names)
    for name in names:
        PARAMETERS[name].check(getattr(config, name))
    for rule in RULES:
        if set(rule.names) <= set(names):
            rule.check(config)
    return config


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
        # What holds for any block built from a configuration; :meth:`check` (which the SoC
        # runs) holds the rest, the ranges of the whole SoC.
        if not isinstance(self.register_slices, bool):
            raise TypeError(f"register_slices must be a bool, not {self.register_slices!r}")
        check_config(self, ("read_latency", "write_latency", "max_outstanding",
                            "external_managers"))
        if not isinstance(self.addr_width, int) or not 1 <= self.addr_width <= 64:
            raise ConfigError(f"addr_width must be an integer from 1 to 64, "
                              f"not {self.addr_width!r}")
        banks = sorted(self.banks, key=lambda bank: bank.base)
        for lower, upper in zip(banks, banks[1:]):
            if lower.end > upper.base:
                raise ValueError(f"Banks {lower.name!r} and {upper.name!r} overlap")
        for bank in banks:
            if bank.end > 1 << self.addr_width:
                raise ValueError(f"Bank {bank.name!r} ends at {bank.end:#x}, beyond the "
                                 f"{self.addr_width}-bit address space")

    def check(self, names=None):
        """This configuration, if every parameter (of ``names``, if given) is within what the
        SoC's blocks take (:data:`PARAMETERS`, :data:`RULES`); else :exc:`ConfigError`
        naming the first one that is not."""
        return check_config(self, names)

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
