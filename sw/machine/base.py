"""The machine: the one small interface the whole driver layer is written against.

Every backend (the built-in Amaranth simulator, a compiled CXXRTL model) implements
:class:`Machine`. Driver code only ever awaits these methods, so it runs unchanged on any
backend. Addresses are physical (``load``/``store``/``peek``/``poke``) or offsets into the
AXI4-Lite register space (``mmio_read``/``mmio_write``).
"""

import abc

__all__ = ["Machine", "MachineTimeout", "BusError", "check_resp"]


class MachineTimeout(TimeoutError):
    """A wait on the hardware ran out of cycles."""


class BusError(OSError):
    """An access through the machine was answered with SLVERR or DECERR."""


def check_resp(resp, what, addr):
    """Raise :class:`BusError` unless the bus response ``resp`` is OKAY."""
    from ...hw.bus.axi import Resp
    if resp != Resp.OKAY:
        raise BusError(f"{what} at {addr:#x} was answered with {Resp(resp).name}")


class Machine(abc.ABC):
    """Abstract simulation machine.

    Attributes
    ----------
    config : SocConfig
        Parameters of the simulated SoC.
    """

    config = None

    @property
    @abc.abstractmethod
    def cycle(self):
        """Clock cycles elapsed since reset."""

    @abc.abstractmethod
    async def tick(self, n=1):
        """Let ``n`` clock cycles pass."""

    @abc.abstractmethod
    async def mmio_read(self, addr):
        """Read the 32-bit register at byte offset ``addr`` of the register space."""

    @abc.abstractmethod
    async def mmio_write(self, addr, value):
        """Write the 32-bit register at byte offset ``addr`` of the register space."""

    @abc.abstractmethod
    async def load(self, addr, size, *, cacheable=True):
        """Load ``size`` bytes (any length, any alignment) at physical ``addr`` through the
        CPU port; returns :class:`bytes`."""

    @abc.abstractmethod
    async def store(self, addr, data, *, cacheable=True):
        """Store ``data`` (bytes-like, any length and alignment) at physical ``addr`` through
        the CPU port."""

    @abc.abstractmethod
    async def wait_irq(self, line, *, timeout_cycles):
        """Wait for a clock edge that samples interrupt ``line`` asserted and return after
        it (the CPU takes an interrupt at an edge, even one already pending); raise
        :class:`MachineTimeout` if none of the next ``timeout_cycles`` edges does."""

    @abc.abstractmethod
    def irq_pending(self, line):
        """Whether interrupt ``line`` is asserted now."""

    @abc.abstractmethod
    async def peek(self, addr, n):
        """Read ``n`` bytes of DDR at physical ``addr`` through the backdoor (no bus cycles,
        no cache)."""

    @abc.abstractmethod
    async def poke(self, addr, data):
        """Write ``data`` into DDR at physical ``addr`` through the backdoor."""

    async def set_error_window(self, index, *, base, size, resp=None, read=True, write=True):
        """Make the DDR model answer ``resp`` (SLVERR by default, or DECERR) to every beat
        that touches the ``size`` bytes at physical ``base``, reads if ``read`` and writes if
        ``write``, through its error window ``index``; a write beat so answered writes
        nothing. For simulations only: the DDR model's windows are not hardware."""
        from ...hw.bus.axi import Resp
        from ...sim.ddr.backdoor import check_window_index, error_window
        check_window_index(len(self.soc.ddr_ctrl.windows), index)
        value = error_window(self.config, base=base, size=size,
                             resp=Resp.SLVERR if resp is None else resp, read=read, write=write)
        await self._drive_error_window(index, value)

    async def clear_error_window(self, index):
        """Disable the DDR model's error window ``index``."""
        from ...sim.ddr.backdoor import check_window_index
        check_window_index(len(self.soc.ddr_ctrl.windows), index)
        await self._drive_error_window(index, None)

    async def _drive_error_window(self, index, value):
        """Drive error window ``index`` of the SoC's ``ddr_ctrl`` port with ``value`` (a
        dict of :class:`~dmabuf_soc.sim.ddr.model.ErrorWindowLayout` fields), or disable it
        (``None``)."""
        raise NotImplementedError(f"{type(self).__name__} has no DDR model to inject errors "
                                  f"into")

    # Argument checks shared by the backends that drive a simulated ``Soc`` (``self.soc``).

    def _check_mmio(self, addr):
        if not isinstance(addr, int) or addr < 0 or addr % 4 or \
                addr >= 1 << self.config.mmio_addr_width:
            raise ValueError(f"MMIO address must be a 4-byte aligned offset below "
                             f"{1 << self.config.mmio_addr_width:#x}, not {addr!r}")

    def _check_range(self, addr, size):
        if not isinstance(addr, int) or addr < 0 or not isinstance(size, int) or size < 0 or \
                addr + size > 1 << self.config.addr_width:
            raise ValueError(f"Access of {size!r} bytes at {addr!r} is outside the "
                             f"{self.config.addr_width}-bit physical address space")

    def _check_irq_line(self, line):
        lines = len(self.soc.irq)
        if not isinstance(line, int) or not 0 <= line < lines:
            raise ValueError(f"IRQ line must be from 0 to {lines - 1}, not {line!r}")
