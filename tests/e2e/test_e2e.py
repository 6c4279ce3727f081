"""The dma-buf framework end to end on the simulated SoC (the built-in simulator), with an
AXI protocol checker on every port: the DMA driver's completions as dma_fences (an engine
error signals the fence with -EIO), and the scenarios of ``dmabuf-soc sim``, each checking
every byte against its reference and ending with every page, mapping and reference back.

The SoC simulates at a few hundred cycles per second, so the default run keeps to two small
scenarios; the others (each 15 000 to 35 000 cycles) are marked slow."""

import errno

import pytest

from dmabuf_soc.hw.bus.axi import Resp
from dmabuf_soc.hw.config import SocConfig
from dmabuf_soc.hw.soc import Soc
from dmabuf_soc.sw.dma.copy_engine import CopyEngine
from dmabuf_soc.sw.dmabuf.resv import DmaResvUsage
from dmabuf_soc.sw.machine.pysim import simulate
from dmabuf_soc.sw.scenarios import demo, dma32, dma_modes, fd_passing, mmap_sync, stale
from dmabuf_soc.sw.scenarios._e2e import pattern, session

from soc_checkers import checkers_for


def run_checked(body, **kwargs):
    soc = Soc(SocConfig())
    checkers = checkers_for(soc)

    async def scenario(machine):
        return await body(machine, **kwargs)

    result = simulate(scenario, soc=soc, models=checkers)
    for checker in checkers:
        checker.assert_clean()
    return result


def test_dma_error_signals_the_fence_with_eio_and_the_channel_recovers():
    async def body(machine):
        async with session(machine) as s:
            p = s.platform
            src = s.get(await s.alloc("system", 4096))
            dst = s.get(await s.alloc("system", 4096))
            (page, _), = dst.priv.blocks
            await machine.poke((src.priv.blocks[0][0]).phys, pattern(4096, seed=9))
            await machine.set_error_window(0, base=page.phys + 0x800, size=64,
                                           resp=Resp.SLVERR, read=False)
            engine = CopyEngine(p.devices["dma0"], p.channels["dma0"])
            job = await engine.copy(src, dst)
            assert dst.resv.iter(DmaResvUsage.WRITE)[0][0] is job.fence
            assert await job.wait() == -errno.EIO
            assert job.fence.error == -errno.EIO
            await machine.clear_error_window(0)
            # The channel was reset: the same job runs again, fine this time.
            await job.start()
            assert await job.finish() == 1
            assert await s.memory_of(dst) == pattern(4096, seed=9)
            src.put()
            dst.put()
        return s.platform.accounting()

    accounting = run_checked(body)
    assert set(accounting.values()) == {0}


def test_mmap_and_sync_ioctl_from_a_process():
    report = run_checked(mmap_sync.user_access)
    assert report["ok"] and report["bytes_checked"] == 4096
    assert report["bad_sync_flags"] == "EINVAL"
    assert (report["poll_before"], report["poll_after"]) == (0, 1)


@pytest.mark.slow
def test_demo_story():
    report = run_checked(demo.story)
    assert report["ok"] and report["fence_status"] == 1
    assert report["bytes_checked"] == demo.DEMO_BYTES
    pages = demo.DEMO_BYTES // 4096
    # Every page of both buffers was translated by the SMMU (ATOS) to the buffer's own page.
    assert len(report["where"]["source"]["pages"]) == pages
    assert len(report["where"]["destination"]["pages"]) == pages
    assert set(report["accounting_after"].values()) == {0}


@pytest.mark.slow
def test_scatter_gather_and_register_modes_copy_the_same():
    report = run_checked(dma_modes.compare_modes)
    assert report["ok"]
    assert report["sg"]["pieces"] == report["register"]["pieces"] == 2
    assert report["register"]["mmio_writes"] > report["sg"]["mmio_writes"]


@pytest.mark.slow
def test_omitted_syncs_show_stale_data():
    report = run_checked(stale.omit_syncs)
    assert report["missing_begin_cpu_access"]["stale_lines"] > 0
    assert report["missing_end_cpu_access"]["stale_lines"] > 0


@pytest.mark.slow
def test_32bit_device_bounces_then_placement_migrates():
    report = run_checked(dma32.reach_high_memory)
    assert report["bounce"]["swiotlb_slots_while_mapped"] > 0
    assert report["placement"]["while_mapped_high"] == "EBUSY"
    assert report["placement"]["history"] == ["allocated", "migrated"]


@pytest.mark.slow
def test_fd_passed_between_processes():
    report = run_checked(fd_passing.pass_fd)
    assert report["ok"] and report["bytes_checked"] == 4096
