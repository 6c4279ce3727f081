"""The host bridge alone on the built-in simulator, its UART driven by the host's link code,
its ports answered by Python models: every command, errors, repeats and resynchronisation."""

import time

import pytest

from dmabuf_soc.hw.board import protocol
from dmabuf_soc.hw.board.protocol import Command, LinkError
from dmabuf_soc.sw.machine.serial.link import Link

from bridge_harness import bridge_sim


@pytest.fixture(scope="module")
def bridge():
    with bridge_sim() as (transport, models):
        yield Link(transport, timeout=5.0), models, transport


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
