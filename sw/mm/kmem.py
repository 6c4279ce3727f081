"""The kernel's view of memory: the linear map, ``vmap`` areas, and CPU accesses through them.

Every physical page is visible at ``PAGE_OFFSET + phys`` through the cacheable linear map.
``vmap`` builds a virtually contiguous range over scattered pages, cacheable
(``PAGE_KERNEL``) or not (the Normal-NC mapping of ``dma_alloc_coherent`` on arm64). CPU loads
and stores go to the :class:`~dmabuf_soc.sw.machine.base.Machine` with the mapping's
cacheability, page by page, so they pass through the simulated data cache or bypass it.
"""

from dataclasses import dataclass

from ..errors import KernelBug
from .page_alloc import PAGE_SHIFT, PAGE_SIZE, Page

__all__ = ["PAGE_OFFSET", "VMALLOC_START", "VMALLOC_END", "VmArea", "KernelMemory"]

PAGE_OFFSET = 0xffff_0000_0000_0000
VMALLOC_START = 0xffff_8000_0000_0000
VMALLOC_END = 0xffff_c000_0000_0000


@dataclass(frozen=True)
class VmArea:
    """One ``vmap`` mapping: ``pages[i]`` appears at ``addr + i * PAGE_SIZE``."""
    addr: int
    pages: tuple
    cached: bool

    @property
    def size(self):
        return len(self.pages) * PAGE_SIZE


class KernelMemory:
    """Kernel address space and CPU accesses through it.

    Parameters
    ----------
    machine : Machine or None
        Where loads and stores go. ``None`` for pure bookkeeping (mapping without access);
        any access then raises :class:`RuntimeError`.
    """

    def __init__(self, machine=None):
        self.machine = machine
        self._areas = {}           # start address -> VmArea
        self._next_va = VMALLOC_START

    # Linear map.

    @staticmethod
    def phys_to_virt(addr):
        return PAGE_OFFSET + addr

    @staticmethod
    def virt_to_phys(addr):
        """Physical address behind a linear-map address (``virt_to_phys()``)."""
        if not PAGE_OFFSET <= addr < VMALLOC_START:
            raise KernelBug(f"virt_to_phys({addr:#x}): not a linear-map address")
        return addr - PAGE_OFFSET

    @staticmethod
    def is_vmalloc_addr(addr):
        return VMALLOC_START <= addr < VMALLOC_END

    # vmap.

    def vmap(self, pages, *, cached=True):
        """Map ``pages`` (single :class:`Page` frames) at consecutive virtual addresses;
        returns the start address (``vmap()``)."""
        pages = tuple(pages)
        if not pages:
            return None         # get_vm_area() of size 0: NULL
        if not all(isinstance(page, Page) for page in pages):
            raise KernelBug(f"vmap needs a sequence of Page, not {pages!r}")
        area = VmArea(self._next_va, pages, cached)
        # A guard page after each area, as vmalloc leaves one.
        self._next_va += area.size + PAGE_SIZE
        self._areas[area.addr] = area
        return area.addr

    def vunmap(self, addr):
        """Remove the mapping that :meth:`vmap` returned at ``addr`` (``vunmap()``)."""
        if self._areas.pop(addr, None) is None:
            raise KernelBug(f"vunmap({addr:#x}): trying to vunmap() nonexistent vm area")

    def find_area(self, addr):
        """The :class:`VmArea` containing ``addr``, or ``None``."""
        for area in self._areas.values():
            if area.addr <= addr < area.addr + area.size:
                return area
        return None

    @property
    def nr_vmap_areas(self):
        return len(self._areas)

    # Translation and access.

    def translate(self, addr, size):
        """Split ``[addr, addr + size)`` into ``[(phys, length, cacheable)]`` runs."""
        runs = []
        while size > 0:
            if PAGE_OFFSET <= addr < VMALLOC_START:
                phys, length, cached = addr - PAGE_OFFSET, size, True
            else:
                area = self.find_area(addr)
                if area is None:
                    raise KernelBug(f"Unable to handle kernel paging request at virtual "
                                    f"address {addr:#x}")
                index, offset = divmod(addr - area.addr, PAGE_SIZE)
                phys = area.pages[index].phys + offset
                length = min(size, PAGE_SIZE - offset)
                cached = area.cached
            if runs and runs[-1][0] + runs[-1][1] == phys and runs[-1][2] == cached:
                runs[-1] = (runs[-1][0], runs[-1][1] + length, cached)
            else:
                runs.append((phys, length, cached))
            addr += length
            size -= length
        return runs

    def _require_machine(self):
        if self.machine is None:
            raise RuntimeError("This KernelMemory has no machine: it cannot access memory")
        return self.machine

    async def read(self, addr, size):
        """CPU load of ``size`` bytes at kernel virtual address ``addr``."""
        machine = self._require_machine()
        data = bytearray()
        for phys, length, cached in self.translate(addr, size):
            data += await machine.load(phys, length, cacheable=cached)
        return bytes(data)

    async def write(self, addr, data):
        """CPU store of ``data`` at kernel virtual address ``addr``."""
        machine = self._require_machine()
        data = memoryview(bytes(data))
        for phys, length, cached in self.translate(addr, len(data)):
            await machine.store(phys, data[:length], cacheable=cached)
            data = data[length:]

    async def memset(self, addr, value, size):
        await self.write(addr, bytes([value]) * size)

    async def memcpy(self, dst, src, size):
        await self.write(dst, await self.read(src, size))

    async def clear_pages(self, page, count):
        """Zero ``count`` pages from ``page`` through the linear map (``clear_page()``)."""
        await self.memset(self.phys_to_virt(page.phys), 0, count << PAGE_SHIFT)
