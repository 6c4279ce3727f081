"""AXI4-Lite address decoder: one manager, N subordinate windows."""

from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import exact_log2

from .axi import AXI4LiteSignature, Resp
from ..one_hot import one_hot_fsm

__all__ = ["LiteDecoder"]


class LiteDecoder(wiring.Component):
    """Routes AXI4-Lite accesses to address windows.

    Each window is a power-of-two number of bytes at a base aligned to its size. The
    subordinate of a window sees the offset within it: its port's address is
    ``log2(size)`` bits wide. An access that hits no window is answered by the decoder
    itself with ``DECERR`` (reads return 0, write data is accepted and dropped).

    Reads and writes are decoded independently, one outstanding transaction each. A write
    waits for its address, then passes AW and W to the window in any order and returns
    its B response; a read passes AR then R. The decoder adds one cycle to each access.

    Parameters
    ----------
    windows : iterable of (str, int, int)
        ``(name, base, size)`` of each window (e.g. :func:`~dmabuf_soc.hw.regs.soc_windows`
        of the SoC map, whose ``Window`` objects unpack that way).
    addr_width : int
        Address width of the manager port.
    data_width : int
        32 or 64.

    Members
    -------
    bus : ``In(AXI4LiteSignature(addr_width=addr_width, data_width=data_width))``
    <name> : ``Out(AXI4LiteSignature(addr_width=log2(size), data_width=data_width))``
        One member per window, named after it.

    Raises
    ------
    ValueError
        For a window name that is not an identifier or clashes with a member or attribute,
        a size that is not a power of two of at least 4 bytes, a base not aligned to its
        size, a window beyond the address space, or overlapping windows.
    """
    def __init__(self, windows, *, addr_width=16, data_width=32):
        if not isinstance(addr_width, int) or not 2 <= addr_width <= 64:
            raise ValueError(f"Address width must be an integer from 2 to 64, not "
                             f"{addr_width!r}")
        checked = []
        for window in windows:
            try:
                name, base, size = window
            except (TypeError, ValueError):
                raise TypeError(f"A window must be a (name, base, size) tuple, not "
                                f"{window!r}") from None
            if not isinstance(name, str) or not name.isidentifier() or name.startswith("_"):
                raise ValueError(f"Window name must be an identifier not starting with '_', "
                                 f"not {name!r}")
            if name == "bus" or hasattr(type(self), name) or name in {w[0] for w in checked}:
                raise ValueError(f"Window name {name!r} is already used")
            if not isinstance(size, int) or size < 4 or size & (size - 1):
                raise ValueError(f"Window {name!r}: size must be a power of two of at least "
                                 f"4 bytes, not {size!r}")
            if not isinstance(base, int):
                raise TypeError(f"Window {name!r}: base must be an integer, not {base!r}")
            if base < 0 or base % size:
                raise ValueError(f"Window {name!r}: base {base:#x} is not a non-negative "
                                 f"multiple of its size {size:#x}")
            if base + size > 1 << addr_width:
                raise ValueError(f"Window {name!r} ({base:#x}..{base + size - 1:#x}) is "
                                 f"beyond the {addr_width}-bit address space")
            checked.append((name, base, size))
        ordered = sorted(checked, key=lambda w: w[1])
        for (lower, lower_base, lower_size), (upper, upper_base, _) in zip(ordered, ordered[1:]):
            if lower_base + lower_size > upper_base:
                raise ValueError(f"Windows {lower!r} ({lower_base:#x}..{lower_base + lower_size - 1:#x}) "
                                 f"and {upper!r} (from {upper_base:#x}) overlap")
        self._windows = tuple(checked)
        members = {"bus": In(AXI4LiteSignature(addr_width=addr_width, data_width=data_width))}
        for name, base, size in checked:
            members[name] = Out(AXI4LiteSignature(addr_width=exact_log2(size),
                                                  data_width=data_width))
        super().__init__(members)

    @property
    def windows(self):
        """``(name, base, size)`` of each window, in the order given."""
        return self._windows

    def elaborate(self, platform):
        m = Module()
        bus = self.bus
        subs = [(getattr(self, name), base, size) for name, base, size in self._windows]

        def decode(addr, index):
            # One-hot window selection of ``addr`` into the register ``index``.
            return [index[n].eq(addr[exact_log2(size):] == base >> exact_log2(size))
                    for n, (_, base, size) in enumerate(subs)]

        def respond(channel, select):
            # Pass the selected window's response through, or answer DECERR (and, for a
            # read, zero data) if no window was hit; back to IDLE when it is taken.
            response = getattr(bus, channel)
            for n, (sub, _, _) in enumerate(subs):
                with m.If(select[n]):
                    sub_response = getattr(sub, channel)
                    m.d.comb += [
                        response.valid.eq(sub_response.valid),
                        response.payload.eq(sub_response.payload),
                        sub_response.ready.eq(response.ready),
                    ]
            with m.If(select == 0):
                m.d.comb += [response.valid.eq(1), response.payload.resp.eq(Resp.DECERR)]
            with m.If(response.valid & response.ready):
                m.next = "IDLE"

        # Write path.
        w_addr = Signal.like(bus.aw.payload.addr)
        w_prot = Signal.like(bus.aw.payload.prot)
        w_sel  = Signal(len(subs))
        aw_done = Signal()
        w_done  = Signal()
        with one_hot_fsm(m, name="write"):
            with m.State("IDLE"):
                m.d.comb += bus.aw.ready.eq(1)
                with m.If(bus.aw.valid):
                    m.d.sync += [w_addr.eq(bus.aw.payload.addr), w_prot.eq(bus.aw.payload.prot),
                                 aw_done.eq(0), w_done.eq(0)]
                    m.d.sync += decode(bus.aw.payload.addr, w_sel)
                    m.next = "FORWARD"
            with m.State("FORWARD"):
                for n, (sub, _, size) in enumerate(subs):
                    with m.If(w_sel[n]):
                        m.d.comb += [
                            sub.aw.valid.eq(~aw_done),
                            sub.aw.payload.addr.eq(w_addr[:exact_log2(size)]),
                            sub.aw.payload.prot.eq(w_prot),
                            sub.w.valid.eq(bus.w.valid & ~w_done),
                            sub.w.payload.eq(bus.w.payload),
                            bus.w.ready.eq(sub.w.ready & ~w_done),
                        ]
                        with m.If(sub.aw.valid & sub.aw.ready):
                            m.d.sync += aw_done.eq(1)
                with m.If(w_sel == 0):
                    m.d.comb += bus.w.ready.eq(~w_done)
                    m.d.sync += aw_done.eq(1)
                with m.If(bus.w.valid & bus.w.ready):
                    m.d.sync += w_done.eq(1)
                with m.If(aw_done & w_done):
                    m.next = "RESPOND"
            with m.State("RESPOND"):
                respond("b", w_sel)

        # Read path.
        r_addr = Signal.like(bus.ar.payload.addr)
        r_prot = Signal.like(bus.ar.payload.prot)
        r_sel  = Signal(len(subs))
        with one_hot_fsm(m, name="read"):
            with m.State("IDLE"):
                m.d.comb += bus.ar.ready.eq(1)
                with m.If(bus.ar.valid):
                    m.d.sync += [r_addr.eq(bus.ar.payload.addr), r_prot.eq(bus.ar.payload.prot)]
                    m.d.sync += decode(bus.ar.payload.addr, r_sel)
                    m.next = "FORWARD"
            with m.State("FORWARD"):
                for n, (sub, _, size) in enumerate(subs):
                    with m.If(r_sel[n]):
                        m.d.comb += [
                            sub.ar.valid.eq(1),
                            sub.ar.payload.addr.eq(r_addr[:exact_log2(size)]),
                            sub.ar.payload.prot.eq(r_prot),
                        ]
                        with m.If(sub.ar.ready):
                            m.next = "RESPOND"
                with m.If(r_sel == 0):
                    m.next = "RESPOND"
            with m.State("RESPOND"):
                respond("r", r_sel)
        return m
