"""A checker for DMA-API misuse in the spirit of ``CONFIG_DMA_API_DEBUG``
(``kernel/dma/debug.c``).

Every mapping and coherent allocation is recorded per device; unmaps, frees and syncs are
checked against the record, and a device removed with mappings still live is reported.
The messages are Linux's. In strict mode (the default) each finding raises
:class:`DmaApiDebugError` once the operation itself has run, as Linux prints its splat after
the unmap or sync; otherwise findings are collected in :attr:`DmaDebug.errors`.
"""

from dataclasses import dataclass

from ..errors import KernelBug
from .direction import DMA_MAPPING_ERROR, DmaDirection

__all__ = ["DmaApiDebugError", "DmaDebug"]


class DmaApiDebugError(KernelBug):
    """A DMA-API rule was broken."""


_TYPE_NAMES = {"single": "single", "sg": "scatter-gather", "coherent": "coherent"}


@dataclass
class _Entry:
    dev: object
    type: str
    dev_addr: int
    size: int
    direction: DmaDirection
    paddr: int
    cpu_addr: int = None
    sg_call_ents: int = 0
    sg_mapped_ents: int = 0
    map_err_checked: bool = True

    def describe(self):
        return (f"{self.dev.name}: {_TYPE_NAMES[self.type]} mapping at device address "
                f"{self.dev_addr:#018x} size {self.size} {self.direction}")


class DmaDebug:
    """The DMA-API debug checker.

    Parameters
    ----------
    strict : bool
        Raise on the first finding instead of collecting it.
    """

    def __init__(self, *, strict=True):
        self.strict = strict
        self.errors = []
        self._entries = []

    def _report(self, dev, message):
        message = f"DMA-API: {dev.name}: {message}"
        self.errors.append(message)
        if self.strict:
            raise DmaApiDebugError(message)

    def entries(self, dev=None):
        """Live records, for one device or all."""
        return [e for e in self._entries if dev is None or e.dev is dev]

    def _find_exact(self, dev, dev_addr, ref):
        matches = [e for e in self._entries if e.dev is dev and e.dev_addr == dev_addr]
        if not matches:
            return None

        def score(entry):
            return ((entry.size == ref.get("size")) + (entry.type == ref.get("type"))
                    + (entry.direction == ref.get("direction"))
                    + (entry.sg_call_ents == ref.get("sg_call_ents", entry.sg_call_ents)))
        return max(matches, key=score)

    def _find_containing(self, dev, dev_addr, size):
        for entry in self._entries:
            if (entry.dev is dev and entry.dev_addr <= dev_addr
                    and dev_addr < entry.dev_addr + entry.size):
                return entry
        return None

    # Recording.

    def map_single(self, dev, dma_addr, paddr, size, direction):
        if dma_addr == DMA_MAPPING_ERROR:
            return
        self._entries.append(_Entry(dev, "single", dma_addr, size, direction, paddr,
                                    map_err_checked=False))

    def mapping_error(self, dev, dma_addr):
        entry = self._find_exact(dev, dma_addr, {})
        if entry is not None:
            entry.map_err_checked = True

    def map_sg(self, dev, sgl, nents, mapped_ents, direction):
        for sg in sgl[:mapped_ents]:
            self._check_sg_segment(dev, sg)
            self._entries.append(_Entry(dev, "sg", sg.dma_address, sg.dma_length, direction,
                                        sg.phys, sg_call_ents=nents,
                                        sg_mapped_ents=mapped_ents))

    def _check_sg_segment(self, dev, sg):
        if sg.dma_length > dev.max_segment_size:
            self._report(dev, f"mapping sg segment longer than device claims to support "
                              f"[len={sg.dma_length}] [max={dev.max_segment_size}]")
        boundary = dev.segment_boundary_mask
        start, end = sg.dma_address, sg.dma_address + sg.dma_length - 1
        if (start ^ end) & ~boundary:
            self._report(dev, f"mapping sg segment across boundary [start={start:#018x}] "
                              f"[end={end:#018x}] [boundary={boundary:#018x}]")

    def alloc_coherent(self, dev, size, dma_addr, cpu_addr, paddr):
        self._entries.append(_Entry(dev, "coherent", dma_addr, size,
                                    DmaDirection.BIDIRECTIONAL, paddr, cpu_addr=cpu_addr))

    # Checks.

    def _check_unmap(self, dev, ref):
        entry = self._find_exact(dev, ref["dev_addr"], ref)
        if entry is None:
            if ref["dev_addr"] == DMA_MAPPING_ERROR:
                self._report(dev, "device driver tries to free an invalid DMA memory address")
            else:
                self._report(dev, f"device driver tries to free DMA memory it has not "
                                  f"allocated [device address={ref['dev_addr']:#018x}] "
                                  f"[size={ref['size']} bytes]")
            return
        self._entries.remove(entry)
        where = f"[device address={entry.dev_addr:#018x}] [size={entry.size} bytes]"
        if entry.size != ref["size"]:
            self._report(dev, f"device driver frees DMA memory with different size "
                              f"[device address={entry.dev_addr:#018x}] "
                              f"[map size={entry.size} bytes] [unmap size={ref['size']} bytes]")
        if entry.type != ref["type"]:
            self._report(dev, f"device driver frees DMA memory with wrong function {where} "
                              f"[mapped as {_TYPE_NAMES[entry.type]}] "
                              f"[unmapped as {_TYPE_NAMES[ref['type']]}]")
        elif entry.type == "coherent" and entry.cpu_addr != ref["cpu_addr"]:
            self._report(dev, f"device driver frees DMA memory with different CPU address "
                              f"{where} [cpu alloc address={entry.cpu_addr:#x}] "
                              f"[cpu free address={ref['cpu_addr']:#x}]")
        if entry.type == "sg" and entry.sg_call_ents != ref["sg_call_ents"]:
            self._report(dev, f"device driver frees DMA sg list with different entry count "
                              f"[map count={entry.sg_call_ents}] "
                              f"[unmap count={ref['sg_call_ents']}]")
        if entry.direction != ref["direction"]:
            self._report(dev, f"device driver frees DMA memory with different direction "
                              f"{where} [mapped with {entry.direction}] "
                              f"[unmapped with {ref['direction']}]")
        if not entry.map_err_checked:
            self._report(dev, f"device driver failed to check map error {where} "
                              f"[mapped as {_TYPE_NAMES[entry.type]}]")

    def unmap_single(self, dev, dma_addr, size, direction):
        self._check_unmap(dev, dict(dev_addr=dma_addr, size=size, type="single",
                                    direction=direction))

    def unmap_sg(self, dev, sgl, nelems, direction):
        mapped_ents = None
        for index, sg in enumerate(sgl[:nelems]):
            if mapped_ents is None:
                entry = self._find_exact(dev, sg.dma_address, {"type": "sg"})
                mapped_ents = entry.sg_mapped_ents if entry is not None else 0
            if index >= mapped_ents:
                break
            self._check_unmap(dev, dict(dev_addr=sg.dma_address, size=sg.dma_length,
                                        type="sg", direction=direction,
                                        sg_call_ents=nelems))
        if not mapped_ents:
            first = sgl[0].dma_address if sgl and sgl[0].dma_address is not None else 0
            self._report(dev, f"device driver tries to free DMA memory it has not allocated "
                              f"[device address={first:#018x}] [sg list of {nelems}]")

    def free_coherent(self, dev, size, cpu_addr, dma_addr):
        self._check_unmap(dev, dict(dev_addr=dma_addr, size=size, type="coherent",
                                    direction=DmaDirection.BIDIRECTIONAL, cpu_addr=cpu_addr))

    def sync_single(self, dev, dma_addr, size, direction, *, to_cpu, sg_call_ents=None):
        entry = self._find_containing(dev, dma_addr, size)
        if entry is None:
            self._report(dev, f"device driver tries to sync DMA memory it has not allocated "
                              f"[device address={dma_addr:#018x}] [size={size} bytes]")
            return
        if dma_addr + size > entry.dev_addr + entry.size:
            self._report(dev, f"device driver syncs DMA memory outside allocated range "
                              f"[device address={entry.dev_addr:#018x}] "
                              f"[allocation size={entry.size} bytes] "
                              f"[sync offset+size={dma_addr - entry.dev_addr + size}]")
        if sg_call_ents is not None and entry.sg_call_ents != sg_call_ents:
            self._report(dev, f"device driver syncs DMA sg list with different entry count "
                              f"[map count={entry.sg_call_ents}] [sync count={sg_call_ents}]")
        if entry.direction is DmaDirection.BIDIRECTIONAL:
            return
        if direction != entry.direction:
            self._report(dev, f"device driver syncs DMA memory with different direction "
                              f"[device address={dma_addr:#018x}] [size={size} bytes] "
                              f"[mapped with {entry.direction}] [synced with {direction}]")
        if (to_cpu and entry.direction is not DmaDirection.FROM_DEVICE
                and direction is not DmaDirection.TO_DEVICE):
            self._report(dev, f"device driver syncs device read-only DMA memory for cpu "
                              f"[device address={dma_addr:#018x}] [size={size} bytes]")
        if (not to_cpu and entry.direction is not DmaDirection.TO_DEVICE
                and direction is not DmaDirection.FROM_DEVICE):
            self._report(dev, f"device driver syncs device write-only DMA memory to device "
                              f"[device address={dma_addr:#018x}] [size={size} bytes]")

    def sync_sg(self, dev, sgl, nelems, direction, *, to_cpu):
        entry = self._find_exact(dev, sgl[0].dma_address, {"type": "sg"}) if sgl else None
        mapped_ents = entry.sg_mapped_ents if entry is not None else 1
        for sg in sgl[:min(nelems, mapped_ents)]:
            self.sync_single(dev, sg.dma_address, sg.dma_length, direction, to_cpu=to_cpu,
                             sg_call_ents=nelems)

    def device_removed(self, dev):
        """``dma_debug_device_change()`` on driver unbind: report leaked mappings."""
        leaked = self.entries(dev)
        if leaked:
            self._report(dev, f"device driver has pending DMA allocations while released "
                              f"from device [count={len(leaked)}]\nOne of leaked entries "
                              f"details: {leaked[0].describe()}")
