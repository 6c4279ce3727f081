"""The host link under faults: bytes dropped, corrupted and delayed both ways between the
host's link code and the bridge (on the built-in simulator); every command is carried out
exactly once with the right answer, or the link says clearly that it failed."""

import pytest

from dmabuf_soc.hw.board.protocol import Command
from dmabuf_soc.sw.machine.backends import backend_argument
from dmabuf_soc.sw.machine.serial.link import Link, LinkFailure
from dmabuf_soc.sw.machine.serial.transport import FaultyTransport, Transport, parse_port

from bridge_harness import bridge_sim


def test_commands_survive_faults():
    with bridge_sim() as (pipe, models):
        faulty = FaultyTransport(pipe, drop=0.01, corrupt=0.01, delay=0.01, delay_seconds=0.3,
                                 seed=7)
        link = Link(faulty, timeout=1.0, retries=8)
        writes = models.mmio_writes
        for index in range(4):
            addr = 0x8000_0000 + 8 * index
            value = 0x0101_0101_0101_0101 * (index + 1)
            link.request(Command.MEM_WRITE, addr=addr, strb=0xFF, data=value)
            link.request(Command.MMIO_WRITE, addr=4 * index, data=index)
            assert link.request(Command.MEM_READ, addr=addr) == {"resp": 0, "data": value}
        assert models.mmio_writes - writes == 4           # each exactly once
        assert all(models.regs[4 * index] == index for index in range(4))
        assert sum(faulty.faults.values()) > 0
        assert sum(link.recovered.values()) > 0


class _Silent(Transport):
    name = "a silent line"

    def __init__(self):
        self.sent = bytearray()

    def write(self, data):
        self.sent += data

    def read(self, n, timeout):
        return b""


def test_dead_link_is_reported():
    link = Link(_Silent(), timeout=0.05, retries=1)
    with pytest.raises(LinkFailure, match=r"MMIO_WRITE got no good reply in 2 attempts over "
                                          r"a silent line .*sent a5 .*unknown") as info:
        link.request(Command.MMIO_WRITE, addr=4, data=1)
    assert info.value.sent[0] == 0xA5 and info.value.received == b""


def test_misuse():
    link = Link(_Silent(), timeout=0.05, retries=0)
    with pytest.raises(ValueError, match="MMIO_READ addr must be an integer from 0 to "
                                         "0xffffffff, not -1"):
        link.request(Command.MMIO_READ, addr=-1)
    with pytest.raises(TypeError, match="CYCLE takes no addr"):
        link.request(Command.CYCLE, addr=1)
    with pytest.raises(ValueError, match="Timeout must be a positive number"):
        Link(_Silent(), timeout=0)
    with pytest.raises(ValueError, match="drop must be a probability"):
        FaultyTransport(_Silent(), drop=2)
    assert parse_port("/dev/ttyUSB0") == ("/dev/ttyUSB0", 1_000_000)
    assert parse_port("/dev/ttyUSB0@3000000") == ("/dev/ttyUSB0", 3_000_000)
    for bad in ("", "/dev/x@", "/dev/x@fast", "@9600"):
        with pytest.raises(ValueError, match="PORT\\[@BAUD\\]"):
            parse_port(bad)
    assert backend_argument("serial:/dev/ttyUSB0@3000000") == "serial:/dev/ttyUSB0@3000000"
    with pytest.raises(ValueError, match="serial:PORT"):
        backend_argument("usb")
