"""The CPU's load/store port: one access of up to 8 bytes at a time, with byte enables.

The driver (Python, "the CPU") issues loads and stores through this port. Until the data
cache sits in front of the interconnect, :class:`~dmabuf_soc.hw.cpu.bridge.UncachedBridge`
takes the port straight onto AXI4; the cache implements the same port.
"""

from amaranth.hdl import unsigned
from amaranth.lib import data, stream
from amaranth.lib.wiring import In, Out

from ..parameters import ParameterSignature, check_integer

__all__ = ["CpuRequestLayout", "CpuResponseLayout", "CpuPortSignature"]


class CpuRequestLayout(data.StructLayout):
    """One load or store.

    ``addr`` is a byte address aligned to the port width (8 bytes for a 64-bit port);
    ``strb`` selects the bytes of that word that are read or written. ``cacheable`` is the
    page attribute of the access: uncached accesses go to memory in order, bypassing the cache.
    """
    def __init__(self, *, addr_width, data_width):
        super().__init__({
            "addr":      unsigned(addr_width),
            "write":     unsigned(1),
            "data":      unsigned(data_width),
            "strb":      unsigned(data_width // 8),
            "cacheable": unsigned(1),
        })


class CpuResponseLayout(data.StructLayout):
    """Completion of one access: load data (stores answer too), and whether the bus erred."""
    def __init__(self, *, data_width):
        super().__init__({
            "data":  unsigned(data_width),
            "error": unsigned(1),
        })


class CpuPortSignature(ParameterSignature):
    """Signature of the CPU port, from the CPU's side.

    Parameters
    ----------
    addr_width : int
        Physical address width in bits.
    data_width : int
        Port width in bits (64 by default).

    Members
    -------
    req : ``Out(stream.Signature(CpuRequestLayout))``
        Accesses, one per handshake.
    rsp : ``In(stream.Signature(CpuResponseLayout))``
        One response per request, in request order.
    """
    parameters = ("addr_width", "data_width")

    def __init__(self, *, addr_width=40, data_width=64):
        check_integer("CPU port data width", data_width, allowed=(32, 64))
        self._addr_width = addr_width
        self._data_width = data_width
        super().__init__({
            "req": Out(stream.Signature(CpuRequestLayout(addr_width=addr_width,
                                                         data_width=data_width))),
            "rsp": In(stream.Signature(CpuResponseLayout(data_width=data_width))),
        })

    addr_width = property(lambda self: self._addr_width)
    data_width = property(lambda self: self._data_width)

