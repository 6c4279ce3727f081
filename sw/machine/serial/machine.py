"""The machine on a board: every call one or more commands of the host link."""

from ....hw.board import protocol
from ....hw.board.board import BOARD_CONFIG
from ....hw.board.protocol import Command
from ....hw.bus.axi import Resp
from ....hw.config import SocConfig
from ..access import split_words
from ..base import BusError, Machine, MachineTimeout, check_resp
from ..compiled.machine import run_until_complete
from .link import Link, LinkFailure

__all__ = ["SerialMachine", "LinkFailure", "simulate"]

#: Cycles per WAIT command (the bridge counts 32 bits).
_WAIT_CHUNK = 1 << 24


class SerialMachine(Machine):
    """:class:`Machine` on a board (or a simulation of one) through the host bridge.

    Every call is carried out by the board's hardware: MMIO through its AXI4-Lite manager,
    loads and stores through the CPU port and cache, :meth:`peek`/:meth:`poke` as single
    beats through the interconnect's external manager port (they take bus cycles, unlike a
    simulator's backdoor), :meth:`tick` as the bridge counting cycles, :meth:`wait_irq` on
    the bridge's interrupt notifications. The SoC runs on its own between commands, so
    cycle counts include the link's latency: they are not cycle-exact (:attr:`cycle_exact`).

    Parameters
    ----------
    transport : Transport
        The bytes' way to the board.
    config : SocConfig, optional
        The board's SoC (:data:`~dmabuf_soc.hw.board.board.BOARD_CONFIG` if omitted).
    timeout : float
        Seconds to wait for a reply.
    reset : bool
        Reset the SoC on connecting (memory keeps its contents).
    """
    #: Whether cycle counts are those of the SoC alone.
    cycle_exact = False

    def __init__(self, transport, config=None, *, timeout=1.0, retries=4, reset=True):
        config = BOARD_CONFIG if config is None else config
        if not isinstance(config, SocConfig):
            raise TypeError(f"Configuration must be a SocConfig, not {config!r}")
        self.config = config
        self.link = Link(transport, timeout=timeout, retries=retries)
        hello = self.link.request(Command.HELLO)
        magic = hello["magic"].to_bytes(4, "little")
        if magic != protocol.MAGIC or hello["version"] != protocol.VERSION:
            raise LinkFailure(f"{transport.name} answered HELLO with magic {magic!r} version "
                              f"{hello['version']}, not {protocol.MAGIC!r} version "
                              f"{protocol.VERSION}: not a dmabuf-soc board of this version")
        self.irq_lines = hello["irq_lines"]
        #: The board's clock in Hz, or ``None`` in simulation.
        self.clock_hz = hello["clock_hz"] or None
        if reset:
            self.reset()

    def close(self):
        self.link.transport.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def _seconds(self, cycles):
        # A simulated board runs at some thousands of cycles a second at the least.
        return cycles / (self.clock_hz or 2_000)

    def reset(self):
        """Reset the SoC (not its memory, not the bridge)."""
        self.link.request(Command.RESET)
        self.link.notifications.clear()

    @property
    def cycle(self):
        return self.link.request(Command.CYCLE)["cycle"]

    async def tick(self, n=1):
        if not isinstance(n, int) or n < 0:
            raise ValueError(f"Cycle count must be a non-negative integer, not {n!r}")
        while n > 0:
            chunk = min(n, _WAIT_CHUNK)
            self.link.request(Command.WAIT, self._seconds(chunk), cycles=chunk)
            n -= chunk

    async def mmio_read(self, addr):
        self._check_mmio(addr)
        reply = self.link.request(Command.MMIO_READ, addr=addr)
        check_resp(Resp(reply["resp"]), "MMIO read", addr)
        return reply["data"]

    async def mmio_write(self, addr, value):
        self._check_mmio(addr)
        if not isinstance(value, int) or not 0 <= value < 1 << 32:
            raise ValueError(f"MMIO value must be a 32-bit unsigned integer, not {value!r}")
        reply = self.link.request(Command.MMIO_WRITE, addr=addr, data=value)
        check_resp(Resp(reply["resp"]), "MMIO write", addr)

    def _words(self, addr, size):
        return split_words(addr, size, self.config.bytes_per_beat)

    async def load(self, addr, size, *, cacheable=True):
        self._check_range(addr, size)
        flags = protocol.FLAG_CACHEABLE if cacheable else 0
        out = bytearray()
        for word_addr, offset, length in self._words(addr, size):
            reply = self.link.request(Command.CPU_LOAD, addr=word_addr, flags=flags,
                                      strb=((1 << length) - 1) << offset)
            if reply["error"]:
                raise BusError(f"CPU load at {word_addr:#x} was answered with a bus error")
            out += reply["data"].to_bytes(8, "little")[offset:offset + length]
        return bytes(out)

    async def store(self, addr, data, *, cacheable=True):
        data = bytes(data)
        self._check_range(addr, len(data))
        flags = protocol.FLAG_CACHEABLE if cacheable else 0
        pos = 0
        for word_addr, offset, length in self._words(addr, len(data)):
            word = int.from_bytes(bytes(offset) + data[pos:pos + length] +
                                  bytes(8 - offset - length), "little")
            reply = self.link.request(Command.CPU_STORE, addr=word_addr, flags=flags,
                                      strb=((1 << length) - 1) << offset, data=word)
            if reply["error"]:
                raise BusError(f"CPU store at {word_addr:#x} was answered with a bus error")
            pos += length

    def _check_memory(self, addr, n):
        if not isinstance(addr, int) or addr < 0:
            raise ValueError(f"Address must be a non-negative integer, not {addr!r}")
        if not isinstance(n, int) or n < 0:
            raise ValueError(f"Length must be a non-negative integer, not {n!r}")
        for pos in (addr, addr + n - 1) if n else ():
            if self.config.bank_at(pos) is None or \
                    self.config.bank_at(pos) is not self.config.bank_at(addr):
                raise ValueError(f"The range {addr:#x}+{n:#x} does not lie in one memory bank")

    async def peek(self, addr, n):
        self._check_memory(addr, n)
        out = bytearray()
        for word_addr, offset, length in self._words(addr, n):
            reply = self.link.request(Command.MEM_READ, addr=word_addr)
            check_resp(Resp(reply["resp"]), "Backdoor read", word_addr)
            out += reply["data"].to_bytes(8, "little")[offset:offset + length]
        return bytes(out)

    async def poke(self, addr, data):
        data = bytes(data)
        self._check_memory(addr, len(data))
        pos = 0
        for word_addr, offset, length in self._words(addr, len(data)):
            word = int.from_bytes(bytes(offset) + data[pos:pos + length] +
                                  bytes(8 - offset - length), "little")
            reply = self.link.request(Command.MEM_WRITE, addr=word_addr, data=word,
                                      strb=((1 << length) - 1) << offset)
            check_resp(Resp(reply["resp"]), "Backdoor write", word_addr)
            pos += length

    def _check_irq_line(self, line):
        if not isinstance(line, int) or not 0 <= line < self.irq_lines:
            raise ValueError(f"IRQ line must be from 0 to {self.irq_lines - 1}, not {line!r}")

    def irq_pending(self, line):
        self._check_irq_line(line)
        return bool(self.link.request(Command.IRQ)["lines"] >> line & 1)

    async def wait_irq(self, line, *, timeout_cycles):
        self._check_irq_line(line)
        if not isinstance(timeout_cycles, int) or timeout_cycles < 0:
            raise ValueError(f"Timeout must be a non-negative number of cycles, "
                             f"not {timeout_cycles!r}")
        self.link.notifications.clear()
        status = self.link.request(Command.IRQ)
        deadline = status["cycle"] + timeout_cycles
        poll = min(max(self._seconds(timeout_cycles) / 4, 0.01), 0.5)
        while True:
            if status["lines"] >> line & 1:
                return
            if status["cycle"] >= deadline:
                raise MachineTimeout(f"IRQ {line} not raised within {timeout_cycles} cycles "
                                     f"(cycle {status['cycle']})")
            for note in self.link.wait_notification(poll):
                if note["rising"] >> line & 1 and note["cycle"] <= deadline:
                    return
            status = self.link.request(Command.IRQ)

    async def set_error_window(self, index, **kwargs):
        raise NotImplementedError("A board's memory has no error injection windows: they "
                                  "are the DDR model's, in simulation only")

    async def clear_error_window(self, index):
        raise NotImplementedError("A board's memory has no error injection windows: they "
                                  "are the DDR model's, in simulation only")


def simulate(scenario, *, port, config=None, vcd=None, timeout=1.0):
    """Run ``async def scenario(machine)`` on the board at serial ``port`` (``PORT[@BAUD]``)
    and return what it returns."""
    from .transport import SerialTransport, parse_port
    if vcd is not None:
        raise ValueError("A board writes no VCD; drop --vcd for the serial backend")
    if config is not None and config not in (SocConfig(), BOARD_CONFIG):
        raise ValueError(f"A board's SoC is the one it was built from ({BOARD_CONFIG!r}); "
                         f"other configurations do not apply to it, not {config!r}")
    config = BOARD_CONFIG
    name, baud = parse_port(port)
    with SerialMachine(SerialTransport(name, baud), config, timeout=timeout) as machine:
        return run_until_complete(scenario(machine))
