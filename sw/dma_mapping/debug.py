"""A checker for DMA-API misuse in the spirit of ``CONFIG_DMA_API_DEBUG``
(``kernel/dma/debug.c``).

Every mapping and coherent allocation is recorded per device; unmaps, frees and syncs are
checked against the record, and a device removed with mappings still live is reported.
The messages are Linux's. In strict mode (the default) each finding raises
:class:`DmaApiDebugError` *before* the operation runs, and the refused call changes nothing:
no cache line is invalidated, no record dropped, no page or IOVA freed, so the caller can
still make the correct call afterwards (stricter than Linux, which prints its splat and goes
on). Otherwise findings are collected in :attr:`DmaDebug.errors` and the operation runs as it
would on Linux.
"""

from dataclasses import dataclass

from ..errors import KernelBug
from .direction import DMA_MAPPING_ERROR, DmaDirection

__all__ = ["DmaApiDebugError", "DmaDebug"]


class DmaApiDebugError(KernelBug):
    """A DMA-API rule was broken."""


def _hex(addr):
    return f"{addr:#018x}" if isinstance(addr, int) else repr(addr)


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

    def refuse(self, check, dev, *args, **kwargs):
        """Run ``check``'s rules before the operation: in strict mode, the first finding
        raises and nothing has changed; otherwise findings wait for the call after the
        operation, as Linux reports them."""
        if not self.strict:
            return
        findings = getattr(self, f"_{check}_findings")(dev, *args, **kwargs)
        if findings:
            self._report(dev, findings[0])

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
        if not isinstance(dev_addr, int):
            return None
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

    def _map_sg_findings(self, dev, sgl, nents, mapped_ents, direction):
        return [message for sg in sgl[:mapped_ents]
                for message in self._sg_segment_findings(dev, sg)]

    def map_sg(self, dev, sgl, nents, mapped_ents, direction):
        for message in self._map_sg_findings(dev, sgl, nents, mapped_ents, direction):
            self._report(dev, message)
        for sg in sgl[:mapped_ents]:
            self._entries.append(_Entry(dev, "sg", sg.dma_address, sg.dma_length, direction,
                                        sg.phys, sg_call_ents=nents,
                                        sg_mapped_ents=mapped_ents))

    @staticmethod
    def _sg_segment_findings(dev, sg):
        findings = []
        if sg.dma_length > dev.max_segment_size:
            findings.append(f"mapping sg segment longer than device claims to support "
                            f"[len={sg.dma_length}] [max={dev.max_segment_size}]")
        boundary = dev.segment_boundary_mask
        start, end = sg.dma_address, sg.dma_address + sg.dma_length - 1
        if (start ^ end) & ~boundary:
            findings.append(f"mapping sg segment across boundary [start={start:#018x}] "
                            f"[end={end:#018x}] [boundary={boundary:#018x}]")
        return findings

    def alloc_coherent(self, dev, size, dma_addr, cpu_addr, paddr):
        self._entries.append(_Entry(dev, "coherent", dma_addr, size,
                                    DmaDirection.BIDIRECTIONAL, paddr, cpu_addr=cpu_addr))

    # Checks: each ``_*_findings`` method only looks; the public method reports and
    # updates the records after the operation, :meth:`refuse` runs the rules before it.

    def _unmap_findings_for(self, dev, ref):
        """The record an unmap or free matches and the rules it breaks."""
        entry = self._find_exact(dev, ref["dev_addr"], ref)
        if entry is None:
            if ref["dev_addr"] == DMA_MAPPING_ERROR:
                return None, ["device driver tries to free an invalid DMA memory address"]
            return None, [f"device driver tries to free DMA memory it has not allocated "
                          f"[device address={_hex(ref['dev_addr'])}] "
                          f"[size={ref['size']} bytes]"]
        findings = []
        where = f"[device address={entry.dev_addr:#018x}] [size={entry.size} bytes]"
        if entry.size != ref["size"]:
            findings.append(f"device driver frees DMA memory with different size "
                            f"[device address={entry.dev_addr:#018x}] "
                            f"[map size={entry.size} bytes] [unmap size={ref['size']} bytes]")
        if entry.type != ref["type"]:
            findings.append(f"device driver frees DMA memory with wrong function {where} "
                            f"[mapped as {_TYPE_NAMES[entry.type]}] "
                            f"[unmapped as {_TYPE_NAMES[ref['type']]}]")
        elif entry.type == "coherent" and entry.cpu_addr != ref["cpu_addr"]:
            findings.append(f"device driver frees DMA memory with different CPU address "
                            f"{where} [cpu alloc address={entry.cpu_addr:#x}] "
                            f"[cpu free address={ref['cpu_addr']:#x}]")
        if entry.type == "sg" and entry.sg_call_ents != ref["sg_call_ents"]:
            findings.append(f"device driver frees DMA sg list with different entry count "
                            f"[map count={entry.sg_call_ents}] "
                            f"[unmap count={ref['sg_call_ents']}]")
        if entry.direction != ref["direction"]:
            findings.append(f"device driver frees DMA memory with different direction "
                            f"{where} [mapped with {entry.direction}] "
                            f"[unmapped with {ref['direction']}]")
        if not entry.map_err_checked:
            findings.append(f"device driver failed to check map error {where} "
                            f"[mapped as {_TYPE_NAMES[entry.type]}]")
        return entry, findings

    def _check_unmap(self, dev, ref):
        entry, findings = self._unmap_findings_for(dev, ref)
        if entry is not None:
            self._entries.remove(entry)
        for message in findings:
            self._report(dev, message)

    @staticmethod
    def _single_ref(dma_addr, size, direction):
        return dict(dev_addr=dma_addr, size=size, type="single", direction=direction)

    def _unmap_single_findings(self, dev, dma_addr, size, direction):
        return self._unmap_findings_for(dev, self._single_ref(dma_addr, size, direction))[1]

    def unmap_single(self, dev, dma_addr, size, direction):
        self._check_unmap(dev, self._single_ref(dma_addr, size, direction))

    def _sg_refs(self, dev, sgl, nelems, direction):
        """The per-segment unmap references of an sg unmap, and whether the list was
        mapped at all."""
        refs = []
        mapped_ents = None
        for index, sg in enumerate(sgl[:nelems]):
            if mapped_ents is None:
                entry = self._find_exact(dev, sg.dma_address, {"type": "sg"})
                mapped_ents = entry.sg_mapped_ents if entry is not None else 0
            if index >= mapped_ents:
                break
            refs.append(dict(dev_addr=sg.dma_address, size=sg.dma_length, type="sg",
                             direction=direction, sg_call_ents=nelems))
        not_mapped = None
        if not mapped_ents:
            first = sgl[0].dma_address if sgl and sgl[0].dma_address is not None else 0
            not_mapped = (f"device driver tries to free DMA memory it has not allocated "
                          f"[device address={first:#018x}] [sg list of {nelems}]")
        return refs, not_mapped

    def _unmap_sg_findings(self, dev, sgl, nelems, direction):
        refs, not_mapped = self._sg_refs(dev, sgl, nelems, direction)
        findings = [message for ref in refs
                    for message in self._unmap_findings_for(dev, ref)[1]]
        return findings + ([not_mapped] if not_mapped else [])

    def unmap_sg(self, dev, sgl, nelems, direction):
        refs, not_mapped = self._sg_refs(dev, sgl, nelems, direction)
        for ref in refs:
            self._check_unmap(dev, ref)
        if not_mapped:
            self._report(dev, not_mapped)

    @staticmethod
    def _coherent_ref(size, cpu_addr, dma_addr):
        return dict(dev_addr=dma_addr, size=size, type="coherent",
                    direction=DmaDirection.BIDIRECTIONAL, cpu_addr=cpu_addr)

    def _free_coherent_findings(self, dev, size, cpu_addr, dma_addr):
        return self._unmap_findings_for(dev, self._coherent_ref(size, cpu_addr, dma_addr))[1]

    def free_coherent(self, dev, size, cpu_addr, dma_addr):
        self._check_unmap(dev, self._coherent_ref(size, cpu_addr, dma_addr))

    def _sync_single_findings(self, dev, dma_addr, size, direction, *, to_cpu,
                              sg_call_ents=None):
        entry = self._find_containing(dev, dma_addr, size)
        if entry is None:
            return [f"device driver tries to sync DMA memory it has not allocated "
                    f"[device address={_hex(dma_addr)}] [size={size} bytes]"]
        findings = []
        if dma_addr + size > entry.dev_addr + entry.size:
            findings.append(f"device driver syncs DMA memory outside allocated range "
                            f"[device address={entry.dev_addr:#018x}] "
                            f"[allocation size={entry.size} bytes] "
                            f"[sync offset+size={dma_addr - entry.dev_addr + size}]")
        if sg_call_ents is not None and entry.sg_call_ents != sg_call_ents:
            findings.append(f"device driver syncs DMA sg list with different entry count "
                            f"[map count={entry.sg_call_ents}] [sync count={sg_call_ents}]")
        if entry.direction is DmaDirection.BIDIRECTIONAL:
            return findings
        if direction != entry.direction:
            findings.append(f"device driver syncs DMA memory with different direction "
                            f"[device address={dma_addr:#018x}] [size={size} bytes] "
                            f"[mapped with {entry.direction}] [synced with {direction}]")
        if (to_cpu and entry.direction is not DmaDirection.FROM_DEVICE
                and direction is not DmaDirection.TO_DEVICE):
            findings.append(f"device driver syncs device read-only DMA memory for cpu "
                            f"[device address={dma_addr:#018x}] [size={size} bytes]")
        if (not to_cpu and entry.direction is not DmaDirection.TO_DEVICE
                and direction is not DmaDirection.FROM_DEVICE):
            findings.append(f"device driver syncs device write-only DMA memory to device "
                            f"[device address={dma_addr:#018x}] [size={size} bytes]")
        return findings

    def sync_single(self, dev, dma_addr, size, direction, *, to_cpu, sg_call_ents=None):
        for message in self._sync_single_findings(dev, dma_addr, size, direction,
                                                  to_cpu=to_cpu, sg_call_ents=sg_call_ents):
            self._report(dev, message)

    def _sync_sg_findings(self, dev, sgl, nelems, direction, *, to_cpu):
        entry = self._find_exact(dev, sgl[0].dma_address, {"type": "sg"}) if sgl else None
        mapped_ents = entry.sg_mapped_ents if entry is not None else 1
        return [message for sg in sgl[:min(nelems, mapped_ents)]
                for message in self._sync_single_findings(
                    dev, sg.dma_address, sg.dma_length, direction, to_cpu=to_cpu,
                    sg_call_ents=nelems)]

    def sync_sg(self, dev, sgl, nelems, direction, *, to_cpu):
        for message in self._sync_sg_findings(dev, sgl, nelems, direction, to_cpu=to_cpu):
            self._report(dev, message)

    def device_removed(self, dev):
        """``dma_debug_device_change()`` on driver unbind: report leaked mappings."""
        leaked = self.entries(dev)
        if leaked:
            self._report(dev, f"device driver has pending DMA allocations while released "
                              f"from device [count={len(leaked)}]\nOne of leaked entries "
                              f"details: {leaked[0].describe()}")
