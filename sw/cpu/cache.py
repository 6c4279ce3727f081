"""Driver of the CPU data cache's maintenance registers (``hw/cache/cache.rdl``).

:class:`DataCache` is the :class:`~dmabuf_soc.sw.dma_mapping.arch.CacheMaintenance` that
arm64's DMA sync hooks (:class:`~dmabuf_soc.sw.dma_mapping.arch.ArchDmaSync`) run on: clean,
invalidate and clean+invalidate of a physical range, to the point of coherency. Each
operation is programmed into the cache's registers, started, and waited for; when it returns,
every line it cleaned is in memory, where DMA sees it.
"""

from ...hw.cache.core import MaintenanceOp, MaintenanceScope
from ..dma_mapping.arch import CacheMaintenance
from ..machine.base import MachineTimeout
from ..regs.bank import RegisterBank

__all__ = ["DataCache"]


class DataCache(CacheMaintenance):
    """The data cache, as its driver sees it.

    Parameters
    ----------
    machine : Machine
    block : str or BlockSpec
        The cache's register block: its name in the MMIO map, or a block spec.
    timeout_cycles : int
        How long an operation may take before :class:`MachineTimeout` is raised.

    Attributes
    ----------
    regs : RegisterBank
    """
    def __init__(self, machine, block="cache", *, timeout_cycles=1_000_000):
        if not isinstance(timeout_cycles, int) or timeout_cycles < 1:
            raise ValueError(f"Timeout must be a positive number of cycles, "
                             f"not {timeout_cycles!r}")
        self.regs = RegisterBank(machine, block)
        self.machine = machine
        self.timeout_cycles = timeout_cycles
        self._geometry = None

    async def geometry(self):
        """``{"line_size": ..., "ways": ..., "sets": ...}``, read from the GEOMETRY register
        once."""
        if self._geometry is None:
            fields = await self.regs.read_fields("GEOMETRY")
            self._geometry = {"line_size": 1 << fields["line_size_log2"],
                              "ways": 1 << fields["ways_log2"],
                              "sets": 1 << fields["sets_log2"]}
        return self._geometry

    async def counters(self):
        """The event counters: ``hits``, ``misses``, ``writebacks``, ``lines_cleaned``,
        ``lines_invalidated``."""
        return {name.lower(): await self.regs.read(name)
                for name in ("HITS", "MISSES", "WRITEBACKS", "LINES_CLEANED",
                             "LINES_INVALIDATED")}

    async def run(self, op, scope, *, start=0, end=0, set=0, way=0):
        """Run one maintenance operation and wait until it has completed.

        Parameters
        ----------
        op : MaintenanceOp
        scope : MaintenanceScope
        start, end : int
            Physical range ``[start, end)`` of a :attr:`MaintenanceScope.RANGE` operation.
        set, way : int
            Line of a :attr:`MaintenanceScope.SET_WAY` operation.
        """
        op, scope = MaintenanceOp(op), MaintenanceScope(scope)
        if scope is MaintenanceScope.RANGE:
            for name, value in (("START", start), ("END", end)):
                if not isinstance(value, int) or not 0 <= value < 1 << 40:
                    raise ValueError(f"Range {name.lower()} must be a 40-bit physical "
                                     f"address, not {value!r}")
                await self.regs.write(f"{name}_LO", addr=value & 0xffff_ffff)
                await self.regs.write(f"{name}_HI", addr=value >> 32)
        elif scope is MaintenanceScope.SET_WAY:
            await self.regs.write("SETWAY", set=set, way=way)
        await self.regs.write("MAINT_CTRL", op=op.value, scope=scope.value)
        await self.regs.write("MAINT_GO", go=1)
        deadline = self.machine.cycle + self.timeout_cycles
        while not await self.regs.read_field("IRQ_STATUS", "done"):
            if self.machine.cycle > deadline:
                raise MachineTimeout(f"Cache {op.name} of {scope.name} did not complete in "
                                     f"{self.timeout_cycles} cycles")
        await self.regs.write("IRQ_STATUS", done=1)

    async def _range(self, op, pa, size):
        if not isinstance(size, int) or size < 0:
            raise ValueError(f"Size must be a non-negative integer, not {size!r}")
        if size:
            await self.run(op, MaintenanceScope.RANGE, start=pa, end=pa + size)

    async def clean(self, pa, size):
        await self._range(MaintenanceOp.CLEAN, pa, size)

    async def clean_invalidate(self, pa, size):
        await self._range(MaintenanceOp.CLEAN_INVALIDATE, pa, size)

    async def invalidate(self, pa, size):
        # As arm64's dcache_inval_poc: a line only partly inside the range also holds bytes
        # outside it, which must not be lost, so it is cleaned and invalidated.
        if not isinstance(size, int) or size < 0:
            raise ValueError(f"Size must be a non-negative integer, not {size!r}")
        if not size:
            return
        line = (await self.geometry())["line_size"]
        start, end = pa, pa + size
        if start % line:
            head_end = start - start % line + line
            await self.clean_invalidate(start, min(head_end, end) - start)
            start = head_end
        if start < end and end % line:
            tail_start = end - end % line
            await self.clean_invalidate(max(tail_start, start), end - max(tail_start, start))
            end = tail_start
        if start < end:
            await self._range(MaintenanceOp.INVALIDATE, start, end - start)

    async def invalidate_range_unsafe(self, pa, size):
        """Invalidate every line touching ``[pa, pa + size)``, dirty or not, partial or not:
        the hardware operation as is. Dirty data in those lines is lost; Linux never does
        this to lines it may have written (see :meth:`invalidate`)."""
        await self._range(MaintenanceOp.INVALIDATE, pa, size)

    async def clean_invalidate_all(self):
        """Write back and drop every line (e.g. before turning the cache off)."""
        await self.run(MaintenanceOp.CLEAN_INVALIDATE, MaintenanceScope.ALL)
