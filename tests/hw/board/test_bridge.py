"""The host bridge alone on the built-in simulator, its UART driven by the host's link code,
its ports answered by Python models: every command, errors, repeats and resynchronisation."""

import threading
import time

import pytest
from amaranth.sim import Simulator

from dmabuf_soc.hw.board import protocol
from dmabuf_soc.hw.board.board import BOARD_CONFIG
from dmabuf_soc.hw.board.bridge import HostBridge
from dmabuf_soc.hw.board.protocol import Command, LinkError
from dmabuf_soc.sw.machine.serial.link import Link
from dmabuf_soc.sw.machine.serial.pysim_board import add_uart
from dmabuf_soc.sw.machine.serial.transport import PipeTransport

DIVISOR = 4


class _Models:
    """What the bridge's ports reach: registers, the CPU's memory, the backdoor memory."""
    def __init__(self):
        self.regs = {}
        self.cpu = {}
        self.mem = {}
        self.cpu_requests = []
        self.mmio_writes = 0
        self.resets = 0
        self.irq = 0


def _merge(old, data, strb):
    mask = sum(0xFF << 8 * i for i in range(8) if strb >> i & 1)
    return (old & ~mask) | (data & mask)


def _processes(sim, bridge, models, stop):
    def axi(port, read, write):
        """A responder on AXI port ``port``: ``read(ar)`` gives the R payload,
        ``write(aw, w)`` the B payload."""
        async def respond(ctx):
            while not stop.is_set():
                for channel in (port.ar, port.aw, port.w):
                    ctx.set(channel.ready, 1)
                _, _, ar_valid, ar, aw_valid, aw, w_valid, w = await ctx.tick().sample(
                    port.ar.valid, port.ar.payload, port.aw.valid, port.aw.payload,
                    port.w.valid, port.w.payload)
                if ar_valid:
                    ctx.set(port.ar.ready, 0)
                    ctx.set(port.r.payload, read(ar))
                    ctx.set(port.r.valid, 1)
                    await ctx.tick().until(port.r.ready)
                    ctx.set(port.r.valid, 0)
                if aw_valid:
                    ctx.set(port.aw.ready, 0)
                    ctx.set(port.w.ready, 0)
                    if not w_valid:
                        _, _, w = await ctx.tick().sample(port.w.payload).until(port.w.valid)
                    ctx.set(port.b.payload, write(aw, w))
                    ctx.set(port.b.valid, 1)
                    await ctx.tick().until(port.b.ready)
                    ctx.set(port.b.valid, 0)
        return respond

    def mmio_write(aw, w):
        models.regs[aw.addr] = w.data
        models.mmio_writes += 1
        return {"resp": 0}

    def mem_read(ar):
        assert ar.len == 0 and ar.size == 3
        return {"data": models.mem.get(ar.addr, 0), "resp": 0, "last": 1, "id": ar.id}

    def mem_write(aw, w):
        models.mem[aw.addr] = _merge(models.mem.get(aw.addr, 0), w.data, w.strb)
        return {"resp": 0, "id": aw.id}

    mmio = axi(bridge.mmio, lambda ar: {"data": models.regs.get(ar.addr, 0),
                                        "resp": 2 if ar.addr >= 0x8000 else 0}, mmio_write)
    mem = axi(bridge.mem, mem_read, mem_write)

    async def cpu(ctx):
        port = bridge.cpu
        while not stop.is_set():
            ctx.set(port.req.ready, 1)
            _, _, valid, req = await ctx.tick().sample(port.req.valid, port.req.payload)
            if not valid:
                continue
            ctx.set(port.req.ready, 0)
            models.cpu_requests.append((req.addr, req.write, req.strb, req.cacheable))
            old = models.cpu.get(req.addr, 0)
            if req.write:
                models.cpu[req.addr] = _merge(old, req.data, req.strb)
            ctx.set(port.rsp.payload, {"data": 0 if req.write else old,
                                       "error": int(req.addr >= 1 << 39)})
            ctx.set(port.rsp.valid, 1)
            await ctx.tick().until(port.rsp.ready)
            ctx.set(port.rsp.valid, 0)

    async def clock(ctx):
        cycle = 0
        while not stop.is_set():
            ctx.set(bridge.cycle, cycle)
            ctx.set(bridge.irq, models.irq)
            _, _, reset = await ctx.tick().sample(bridge.soc_reset)
            models.resets += reset
            cycle = 0 if reset else cycle + 1

    for process in (mmio, cpu, mem):
        sim.add_testbench(process)
    sim.add_process(clock)


@pytest.fixture(scope="module")
def bridge():
    dut = HostBridge(BOARD_CONFIG, divisor=DIVISOR, clock_hz=1234, frame_timeout=400)
    models = _Models()
    transport = PipeTransport()
    stop = threading.Event()
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    add_uart(sim, rx=dut.rx, tx=dut.tx, divisor=DIVISOR, transport=transport, stop=stop)
    _processes(sim, dut, models, stop)
    errors = []

    def run():
        try:
            sim.run()
        except BaseException as error:
            errors.append(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    yield Link(transport, timeout=5.0), models, transport
    stop.set()
    thread.join()
    assert not errors


def _reply(transport, seconds=5.0):
    """The frames that come back within ``seconds``, once they stop coming."""
    out = bytearray()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        data = transport.read(64, 0.3 if out else deadline - time.monotonic())
        if not data and out:
            break
        out += data
    return bytes(out)


def test_crc16_reference():
    assert protocol.crc16(b"123456789") == 0x29B1


def test_hello(bridge):
    link, _, _ = bridge
    hello = link.request(Command.HELLO)
    assert hello["magic"].to_bytes(4, "little") == protocol.MAGIC
    assert (hello["version"], hello["irq_lines"], hello["clock_hz"]) == (protocol.VERSION, 8, 1234)


def test_mmio(bridge):
    link, models, _ = bridge
    assert link.request(Command.MMIO_WRITE, addr=0x104, data=0xDEADBEEF)["resp"] == 0
    assert models.regs[0x104] == 0xDEADBEEF
    assert link.request(Command.MMIO_READ, addr=0x104) == {"resp": 0, "data": 0xDEADBEEF}
    assert link.request(Command.MMIO_READ, addr=0x8000)["resp"] == 2


def test_cpu(bridge):
    link, models, _ = bridge
    addr = 0x8000_0010
    link.request(Command.CPU_STORE, addr=addr, strb=0xFF, flags=1, data=0x0102030405060708)
    link.request(Command.CPU_STORE, addr=addr, strb=0x0F, flags=0, data=0xAAAAAAAA_11223344)
    reply = link.request(Command.CPU_LOAD, addr=addr, strb=0xFF, flags=1)
    assert reply == {"error": 0, "data": 0x01020304_11223344}
    assert models.cpu_requests[-3:] == [(addr, 1, 0xFF, 1), (addr, 1, 0x0F, 0),
                                        (addr, 0, 0xFF, 1)]
    assert link.request(Command.CPU_LOAD, addr=1 << 39, strb=1, flags=0)["error"] == 1


def test_backdoor_memory(bridge):
    link, models, _ = bridge
    addr = 0x1_0000_0008
    link.request(Command.MEM_WRITE, addr=addr, strb=0xFF, data=0x1111_2222_3333_4444)
    link.request(Command.MEM_WRITE, addr=addr + 3, strb=0xF0, data=0x5555_6666_0000_0000)
    assert models.mem[addr] == 0x5555_6666_3333_4444
    assert link.request(Command.MEM_READ, addr=addr + 5) == {"resp": 0,
                                                             "data": 0x5555_6666_3333_4444}


def test_cycle_wait_reset(bridge):
    link, models, _ = bridge
    before = link.request(Command.CYCLE)["cycle"]
    after = link.request(Command.WAIT, cycles=500)["cycle"]
    assert after >= before + 500
    resets = models.resets
    link.request(Command.RESET)
    assert models.resets - resets == 16
    assert link.request(Command.CYCLE)["cycle"] < after


def test_interrupt_notification(bridge):
    link, models, _ = bridge
    link.notifications.clear()
    models.irq = 0b100
    notes = link.wait_notification(5.0)
    assert notes and notes[0]["rising"] == 0b100 and notes[0]["lines"] & 0b100
    assert link.request(Command.IRQ)["lines"] == 0b100
    models.irq = 0


def test_errors_and_repeat(bridge):
    link, models, transport = bridge
    link.resync()
    good = protocol.frame(0x42, Command.MMIO_WRITE, bytes(4) + (7).to_bytes(4, "little"))
    corrupt = good[:-1] + bytes([good[-1] ^ 1])
    transport.write(corrupt)
    assert _reply(transport) == protocol.frame(0x42, protocol.ERROR,
                                               bytes([LinkError.BAD_CRC, Command.MMIO_WRITE]))
    transport.write(protocol.frame(0x43, 0x33))
    assert _reply(transport) == protocol.frame(0x43, protocol.ERROR,
                                               bytes([LinkError.UNKNOWN, 0x33]))
    transport.write(protocol.frame(0x44, Command.CYCLE, b"\x00"))
    assert _reply(transport) == protocol.frame(0x44, protocol.ERROR,
                                               bytes([LinkError.BAD_LENGTH, Command.CYCLE]))
    writes = models.mmio_writes
    transport.write(good)
    first = _reply(transport)
    transport.write(good)
    assert _reply(transport) == first == protocol.frame(0x42, Command.MMIO_WRITE | 0x80, b"\0")
    assert models.mmio_writes == writes + 1
    # A frame cut short is dropped after the frame timeout; the next one is carried out.
    transport.write(good[:5])
    time.sleep(0.5)
    assert _reply(transport, 1.0) == b""
    assert link.request(Command.MMIO_READ, addr=0) == {"resp": 0, "data": 7}
