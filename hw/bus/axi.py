"""AXI4 and AXI4-Lite as :class:`amaranth.lib.wiring` signatures.

Each AXI channel is an :class:`amaranth.lib.stream` (``payload``, ``valid``, ``ready``) whose
payload is a :class:`~amaranth.lib.data.StructLayout`. A manager port of an AXI4 bus is
``Out(AXI4Signature(...))``; a subordinate port is ``In(AXI4Signature(...))``::

    m.d.comb += [
        bus.ar.valid.eq(1),
        bus.ar.payload.addr.eq(0x8000_0000),
        bus.ar.payload.len.eq(15),                 # 16 beats
        bus.ar.payload.size.eq(Size.from_bytes(8)),
        bus.ar.payload.burst.eq(Burst.INCR),
    ]

The subset modelled is the one a memory-to-memory SoC needs: IDs, INCR bursts of up to 256
beats, transfer size, write strobes and the OKAY/SLVERR/DECERR responses. ``AxLOCK``,
``AxCACHE``, ``AxQOS`` and ``AxREGION`` are not carried. ``AxPROT`` is. Every address
channel also carries ``sid``, the stream ID of the requesting device (the SMMU's
``StreamID``, sent by real interconnects as ``AxUSER`` or ``AxMMUSID``).
"""

from amaranth.hdl import unsigned
from amaranth.lib import data, enum, stream
from amaranth.lib.wiring import In, Out

from ..parameters import ParameterSignature, check_integer

__all__ = [
    "Burst", "Resp", "Size", "MAX_BURST_BEATS", "BOUNDARY",
    "AddrLayout", "WriteDataLayout", "WriteRespLayout", "ReadDataLayout", "AXI4Signature",
    "LiteAddrLayout", "LiteWriteDataLayout", "LiteRespLayout", "LiteReadDataLayout",
    "AXI4LiteSignature",
]

#: The longest INCR burst AXI4 allows (``AxLEN`` = 255).
MAX_BURST_BEATS = 256
#: No burst may cross an address boundary of this many bytes.
BOUNDARY = 4096


class Burst(enum.Enum, shape=2):
    """``AxBURST``: burst type."""
    FIXED = 0b00
    INCR  = 0b01
    WRAP  = 0b10


class Resp(enum.Enum, shape=2):
    """``xRESP``: transaction response."""
    OKAY   = 0b00
    EXOKAY = 0b01
    SLVERR = 0b10
    DECERR = 0b11


class Size:
    """``AxSIZE`` helpers: the field holds log2 of the bytes per beat."""

    @staticmethod
    def from_bytes(nbytes):
        if not isinstance(nbytes, int) or nbytes < 1 or nbytes & (nbytes - 1) or nbytes > 128:
            raise ValueError(f"Transfer size must be a power of two from 1 to 128 bytes, "
                             f"not {nbytes!r}")
        return nbytes.bit_length() - 1


class AddrLayout(data.StructLayout):
    """Payload of the AW and AR channels.

    Parameters
    ----------
    addr_width : int
        Width of ``addr`` (40 for the SoC's physical address space).
    id_width : int
        Width of ``id``; may be 0.
    sid_width : int
        Width of the ``sid`` stream-ID sideband; may be 0.
    """
    def __init__(self, *, addr_width, id_width, sid_width):
        check_integer("Address width", addr_width, minimum=1, maximum=64)
        check_integer("ID width", id_width, minimum=0, maximum=32)
        check_integer("Stream ID width", sid_width, minimum=0, maximum=32)
        super().__init__({
            "id":    unsigned(id_width),
            "addr":  unsigned(addr_width),
            "len":   unsigned(8),
            "size":  unsigned(3),
            "burst": Burst,
            "prot":  unsigned(3),
            "sid":   unsigned(sid_width),
        })


class WriteDataLayout(data.StructLayout):
    """Payload of the W channel (AXI4 has no ``WID``)."""
    def __init__(self, *, data_width):
        super().__init__({
            "data": unsigned(data_width),
            "strb": unsigned(data_width // 8),
            "last": unsigned(1),
        })


class WriteRespLayout(data.StructLayout):
    """Payload of the B channel."""
    def __init__(self, *, id_width):
        super().__init__({
            "id":   unsigned(id_width),
            "resp": Resp,
        })


class ReadDataLayout(data.StructLayout):
    """Payload of the R channel."""
    def __init__(self, *, data_width, id_width):
        super().__init__({
            "id":   unsigned(id_width),
            "data": unsigned(data_width),
            "resp": Resp,
            "last": unsigned(1),
        })


class AXI4Signature(ParameterSignature):
    """Signature of an AXI4 port, from the manager's side.

    Parameters
    ----------
    addr_width : int
        Address width in bits (40 by default: the SoC's physical address space).
    data_width : int
        Data width in bits: 32, 64, 128, 256 or 512 (64 by default).
    id_width : int
        Transaction ID width in bits; may be 0.
    sid_width : int
        Width of the stream-ID sideband on AW and AR; may be 0.

    Members
    -------
    aw : ``Out(stream.Signature(AddrLayout))``
    w : ``Out(stream.Signature(WriteDataLayout))``
    b : ``In(stream.Signature(WriteRespLayout))``
    ar : ``Out(stream.Signature(AddrLayout))``
    r : ``In(stream.Signature(ReadDataLayout))``
    """
    parameters = ("addr_width", "data_width", "id_width", "sid_width")

    def __init__(self, *, addr_width=40, data_width=64, id_width=4, sid_width=0):
        check_integer("Address width", addr_width, minimum=1, maximum=64)
        check_integer("Data width", data_width, allowed=(32, 64, 128, 256, 512))
        addr_layout = AddrLayout(addr_width=addr_width, id_width=id_width, sid_width=sid_width)
        self._addr_width = addr_width
        self._data_width = data_width
        self._id_width   = id_width
        self._sid_width  = sid_width
        super().__init__({
            "aw": Out(stream.Signature(addr_layout)),
            "w":  Out(stream.Signature(WriteDataLayout(data_width=data_width))),
            "b":  In(stream.Signature(WriteRespLayout(id_width=id_width))),
            "ar": Out(stream.Signature(addr_layout)),
            "r":  In(stream.Signature(ReadDataLayout(data_width=data_width, id_width=id_width))),
        })

    addr_width = property(lambda self: self._addr_width)
    data_width = property(lambda self: self._data_width)
    id_width   = property(lambda self: self._id_width)
    sid_width  = property(lambda self: self._sid_width)

    @property
    def bytes_per_beat(self):
        return self._data_width // 8

    def replace(self, **kwargs):
        """A signature like this one with some parameters changed."""
        params = dict(addr_width=self._addr_width, data_width=self._data_width,
                      id_width=self._id_width, sid_width=self._sid_width)
        params.update(kwargs)
        return AXI4Signature(**params)



class LiteAddrLayout(data.StructLayout):
    """Payload of the AXI4-Lite AW and AR channels."""
    def __init__(self, *, addr_width):
        check_integer("Address width", addr_width, minimum=1, maximum=64)
        super().__init__({
            "addr": unsigned(addr_width),
            "prot": unsigned(3),
        })


class LiteWriteDataLayout(data.StructLayout):
    """Payload of the AXI4-Lite W channel."""
    def __init__(self, *, data_width):
        super().__init__({
            "data": unsigned(data_width),
            "strb": unsigned(data_width // 8),
        })


class LiteRespLayout(data.StructLayout):
    """Payload of the AXI4-Lite B channel."""
    def __init__(self):
        super().__init__({"resp": Resp})


class LiteReadDataLayout(data.StructLayout):
    """Payload of the AXI4-Lite R channel."""
    def __init__(self, *, data_width):
        super().__init__({
            "data": unsigned(data_width),
            "resp": Resp,
        })


class AXI4LiteSignature(ParameterSignature):
    """Signature of an AXI4-Lite port, from the manager's side.

    Parameters
    ----------
    addr_width : int
        Address width in bits.
    data_width : int
        32 or 64 (32 by default: registers are 32 bits wide).

    Members
    -------
    aw, w, b, ar, r : streams, as for :class:`AXI4Signature` without bursts or IDs.
    """
    parameters = ("addr_width", "data_width")

    def __init__(self, *, addr_width=16, data_width=32):
        check_integer("Data width", data_width, allowed=(32, 64))
        self._addr_width = addr_width
        self._data_width = data_width
        addr_layout = LiteAddrLayout(addr_width=addr_width)
        super().__init__({
            "aw": Out(stream.Signature(addr_layout)),
            "w":  Out(stream.Signature(LiteWriteDataLayout(data_width=data_width))),
            "b":  In(stream.Signature(LiteRespLayout())),
            "ar": Out(stream.Signature(addr_layout)),
            "r":  In(stream.Signature(LiteReadDataLayout(data_width=data_width))),
        })

    addr_width = property(lambda self: self._addr_width)
    data_width = property(lambda self: self._data_width)

