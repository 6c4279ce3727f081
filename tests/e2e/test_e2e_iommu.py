"""The IOMMU path of the dma-buf end to end, on the SoC with its SMMU (the built-in
simulator), with an AXI protocol checker on every port: the demo's story through a DMA
domain (scattered pages, one contiguous IOVA range, one descriptor, every byte checked, every
address the device and the SMMU put on the bus accounted for), and a device DMA running past
its mapping (fault record through the event queue, SLVERR, the fence signaled with -EIO,
memory outside the mapping untouched)."""

import errno

from dmabuf_soc.hw.bus.axi import Resp
from dmabuf_soc.sim.bus.checker import AXI4Checker
from dmabuf_soc.hw.config import SocConfig
from dmabuf_soc.hw.smmu.format import EventType
from dmabuf_soc.hw.soc import Soc
from dmabuf_soc.sw.dma.copy_engine import CopyEngine, engine_fence
from dmabuf_soc.sw.device import Device
from dmabuf_soc.sw.errors import KernelError
from dmabuf_soc.sw.iommu.iommu import IOMMU_FAULT_WRITE, iommu_set_fault_handler
from dmabuf_soc.sw.machine.pysim import simulate
from dmabuf_soc.sw.mm.page_alloc import PAGE_SIZE
from dmabuf_soc.sw.scenarios import demo
from dmabuf_soc.sw.scenarios._e2e import pattern, session

from soc_checkers import checkers_for

#: The demo's importer: DMA channel 1, so stream ID 1 and the SMMU's second port pair.
PORT = 1


def run_recorded(body, **kwargs):
    """Run ``body(machine, **kwargs)`` with a checker on every port, and recording ones on
    the importer's side of the SMMU (IOVAs) and on the memory side (physical addresses).
    Returns the body's result and the two logs."""
    soc = Soc(SocConfig())
    upstream = AXI4Checker(soc.dma[PORT].bus, name=f"dma{PORT}", record=True)
    downstream = AXI4Checker(soc.smmu.downstream[PORT], name=f"smmu.downstream{PORT}",
                             record=True)
    checkers = [checker for checker in checkers_for(soc)
                if checker.name not in (upstream.name, downstream.name)]
    checkers += [upstream, downstream]

    async def scenario(machine):
        return await body(machine, **kwargs)

    result = simulate(scenario, soc=soc, models=checkers)
    for checker in checkers:
        checker.assert_clean()
    return result, upstream.log, downstream.log


def _ring(platform):
    """The importer's descriptor ring, identity-mapped in its domain."""
    channel = platform.channels[f"dma{PORT}"]
    return channel.desc_base, channel.desc_count * 64


async def _demo(machine):
    async with session(machine) as s:
        report = await demo.tell(s)
    return dict(report, ring=_ring(s.platform), accounting=s.platform.accounting())


def _range(text):
    start, length = (int(part, 16) for part in text.split("+"))
    return start, length


def _requests(log, channel):
    """``(addr, bytes)`` of each request on ``channel`` (``"ar"`` or ``"aw"``)."""
    return [(f["addr"], (f["len"] + 1) << f["size"]) for _, ch, f in log if ch == channel]


def _inside(requests, regions):
    return all(any(base <= addr and addr + size <= base + length for base, length in regions)
               for addr, size in requests)


def test_demo_story_through_the_smmu():
    report, iova_log, pa_log = run_recorded(_demo)
    assert report["ok"] and report["fence_status"] == 1
    assert report["bytes_checked"] == demo.DEMO_BYTES
    assert report["stream_id"] == PORT
    where = report["where"]
    assert where["descriptors"] == 1
    ranges = {}
    for side in ("source", "destination"):
        iova, length = _range(where[side]["iova"])
        assert length == demo.DEMO_BYTES and iova % PAGE_SIZE == 0
        pairs = [tuple(int(x, 16) for x in entry.split(" -> ")) for entry in where[side]["pages"]]
        assert [v for v, _ in pairs] == list(range(iova, iova + length, PAGE_SIZE))
        ranges[side] = (iova, length, [p for _, p in pairs])
    source_pages = ranges["source"][2]
    assert source_pages[1] - source_pages[0] != PAGE_SIZE, "the source is not scattered"
    # The IOTLB missed, walked and then hit for the rest of each page.
    iotlb = report["iotlb"]
    assert iotlb["misses"] >= 1 and iotlb["walks"] >= 1 and iotlb["walk_reads"] >= 1
    assert iotlb["hits"] > iotlb["misses"]
    assert report["smmu_events"] == 0
    assert report["cache"]["lines_cleaned"] > 0
    # Every data access of the device used an address inside one of the two IOVA ranges,
    # and what the SMMU passed to memory was inside the buffers' pages (or the ring).
    data_iovas = [(iova, length) for iova, length, _ in ranges.values()]
    pages = [(p, PAGE_SIZE) for _, _, phys in ranges.values() for p in phys]
    (src_iova, _), (dst_iova, _) = data_iovas
    # The descriptor ring is the one region outside them: identity-mapped.
    ring = [report["ring"]]
    reads, writes = _requests(iova_log, "ar"), _requests(iova_log, "aw")
    assert _inside(reads, [data_iovas[0], *ring]) and _inside(writes, [data_iovas[1], *ring])
    assert sum(n for r, n in reads if _inside([(r, n)], [data_iovas[0]])) == demo.DEMO_BYTES
    assert sum(n for w, n in writes if _inside([(w, n)], [data_iovas[1]])) == demo.DEMO_BYTES
    assert _inside(_requests(pa_log, "ar") + _requests(pa_log, "aw"), pages + ring)
    assert report["pages_zeroed"]["by_cpu"] == 0
    assert set(report["accounting"].values()) == {0}


async def _overrun(machine):
    """dma1 in a DMA domain copies 8 KiB to one page below a mapped 8 KiB buffer: the first
    4 KiB run into unmapped IOVA space, the rest would land in the buffer's first page.
    (The page above the buffer is the source's read-only mapping: the IOVA allocator works
    top-down.)"""
    async with session(machine) as s:
        result = await _overrun_in(s)
    return dict(result, ring=_ring(s.platform), accounting=s.platform.accounting())


async def _overrun_in(s):
    machine = s.machine
    p = s.platform
    dev = p.devices["dma1"]
    misuse = {}

    async def errno_of(call):
        try:
            await call
        except KernelError as error:
            return errno.errorcode[error.errno]
    misuse["detach_unattached"] = await errno_of(p.detach_iommu(dev))
    misuse["attach_stranger"] = await errno_of(p.attach_iommu(Device("dma1")))
    domain = await p.attach_iommu(dev)
    misuse["attach_twice"] = await errno_of(p.attach_iommu(dev))
    faults = []

    async def handler(domain, dev, iova, flags, token, event):
        faults.append((dev.name, iova, flags, token, event.type))
        return 0
    iommu_set_fault_handler(domain, handler, token="overrun")
    size = 2 * PAGE_SIZE
    src = s.get(await s.alloc("system", size))
    dst = s.get(await s.alloc("system", size))
    reference = pattern(size, seed=5)
    for (page, length), offset in zip(src.priv.blocks, range(0, size, PAGE_SIZE)):
        await machine.poke(page.phys, reference[offset:offset + length])
    engine = CopyEngine(dev, p.channels["dma1"])
    job = await engine.prepare(src, dst)
    (src_iova, _), = job.src_sgt.dma_segments()
    (dst_iova, _), = job.dst_sgt.dma_segments()
    dst_pages = [page.phys for page in dst.priv.pages()]
    misuse["detach_while_mapped"] = await errno_of(p.detach_iommu(dev))
    watched = sorted({page.phys + delta * PAGE_SIZE for page in [*src.priv.pages(),
                                                                 *dst.priv.pages()]
                      for delta in (-1, 0, 1)})
    before = {addr: await machine.peek(addr, PAGE_SIZE) for addr in watched}

    channel = p.channels["dma1"]
    tx = channel.prep_sg([(dst_iova - PAGE_SIZE, size)], [(src_iova, size)])
    fence = engine_fence(tx, engine.context, 1, "overrun")
    channel.submit(tx)
    await channel.issue_pending()
    await fence.wait()
    status = fence.get_status()
    await p.iommu.handle_events()       # whatever the interrupt handler left
    after = {addr: await machine.peek(addr, PAGE_SIZE) for addr in watched}
    copied = after[dst_pages[0]]
    changed = [addr for addr in watched if after[addr] != before[addr]]

    assert await job.finish() is None   # unmap and detach; the job itself never ran
    await p.detach_iommu(dev)
    src.put()
    dst.put()
    fence.put()
    return dict(status=status, faults=faults, events=list(p.iommu.events),
                dst_iova=dst_iova, size=size, dst_pages=dst_pages, changed=changed,
                copied=copied, reference=reference, misuse=misuse)


def test_dma_past_the_mapping_faults_with_slverr_and_an_event():
    r, iova_log, pa_log = run_recorded(_overrun)
    assert r["misuse"] == {"detach_unattached": "EINVAL", "attach_stranger": "ENODEV",
                           "attach_twice": "EBUSY", "detach_while_mapped": "EBUSY"}
    assert r["status"] == -errno.EIO
    hole = r["dst_iova"] - PAGE_SIZE
    # Fault records through the event queue, each naming the stream, the address, the
    # direction; the domain's fault handler saw each one.
    events = r["events"]
    assert events and all(e.type == EventType.TRANSLATION and e.sid == PORT and e.write
                          and hole <= e.addr < r["dst_iova"] for e in events)
    assert min(e.addr for e in events) == hole
    assert r["faults"] == [("dma1", e.addr, IOMMU_FAULT_WRITE, "overrun", e.type)
                           for e in events]
    # The device was answered SLVERR for the writes into the hole, none of which reached
    # memory: every write the SMMU let through went to the destination's first page or to
    # the descriptor ring (the engine's status write-back).
    responses = [f["resp"] for _, ch, f in iova_log if ch == "b"]
    assert Resp.SLVERR.value in responses
    assert _inside(_requests(pa_log, "aw"), [(r["dst_pages"][0], PAGE_SIZE), r["ring"]])
    # Memory: nothing changed but, at most, the destination's first page, and what it got
    # is the source's second page (the part of the transfer inside the mapping).
    assert set(r["changed"]) <= {r["dst_pages"][0]}
    copied = r["copied"]
    assert all(got in (0, want) for got, want in zip(copied, r["reference"][PAGE_SIZE:]))
    assert set(r["accounting"].values()) == {0}
