"""On-chip memory for a board build: the SoC's banks in block RAM behind an AXI4 subordinate."""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In
from amaranth.utils import exact_log2

from ..bus.axi import AXI4Signature, Burst, Resp
from ..config import SocConfig
from ..one_hot import one_hot_fsm

__all__ = ["OnChipMemory"]


class OnChipMemory(wiring.Component):
    """The banks of :attr:`SocConfig.banks`, each a :class:`~amaranth.lib.memory.Memory` of
    ``data_width``-bit rows (block RAM on an FPGA), served on an AXI4 subordinate port.

    Reads and writes run at once, each one burst at a time, a beat every cycle once a burst
    streams (a read's first beat two cycles after its address). INCR bursts advance a row
    per beat and FIXED bursts stay on theirs; every beat is taken as full width, with the
    write strobes choosing its bytes. A beat outside every bank is answered DECERR (a read's
    data is then zero) and writes nothing.

    With ``clear``, the memory zeroes every row after a reset, a row a cycle, before it takes
    a request (as a simulation's memory starts at zero, so the driver may assume it does at
    boot); without, contents start at zero and survive a reset.

    Parameters
    ----------
    config : SocConfig
        Banks and data width.
    signature : AXI4Signature
        The port's signature (the interconnect's subordinate side: wider IDs).
    clear : bool
        Zero the memory after each reset.

    Members
    -------
    bus : ``In(signature)``
    """
    def __init__(self, config, signature, *, clear=True):
        if not isinstance(config, SocConfig):
            raise TypeError(f"Configuration must be a SocConfig, not {config!r}")
        if not isinstance(signature, AXI4Signature):
            raise TypeError(f"Signature must be an AXI4Signature, not {signature!r}")
        if signature.data_width != config.data_width:
            raise ValueError(f"The port's data width {signature.data_width} is not the "
                             f"configuration's {config.data_width}")
        self._config = config
        self._clear = bool(clear)
        self.banks = {bank.name: Memory(shape=config.data_width,
                                        depth=bank.size // config.bytes_per_beat, init=[])
                      for bank in config.banks}
        super().__init__({"bus": In(signature)})

    def elaborate(self, platform):
        m = Module()
        bus, config = self.bus, self._config
        shift = exact_log2(config.bytes_per_beat)

        def decode(addr, hits, rows):
            stmts = []
            for index, bank in enumerate(config.banks):
                top = exact_log2(bank.size)
                stmts += [hits[index].eq(addr[top:] == bank.base >> top),
                          rows[index].eq(addr[shift:top])]
            return stmts

        r_id = Signal.like(bus.r.payload.id)
        r_left = Signal(8)
        r_fixed = Signal()
        r_hits = [Signal(name=f"r_hit_{bank.name}") for bank in config.banks]
        r_rows = [Signal(exact_log2(bank.size) - shift, name=f"r_row_{bank.name}")
                  for bank in config.banks]
        w_id = Signal.like(bus.b.payload.id)
        w_fixed = Signal()
        w_hits = [Signal(name=f"w_hit_{bank.name}") for bank in config.banks]
        w_rows = [Signal(exact_log2(bank.size) - shift, name=f"w_row_{bank.name}")
                  for bank in config.banks]
        w_error = Signal()

        rows = max(bank.size for bank in config.banks) // config.bytes_per_beat
        clearing = Signal(init=int(self._clear))
        sweep = Signal(range(rows))

        read_ports, write_ports = [], []
        for name, memory in self.banks.items():
            m.submodules[f"bank_{name}"] = memory
            read_ports.append(memory.read_port())
            write_ports.append(memory.write_port(granularity=8))

        r_data = 0
        for hit, port in zip(r_hits, read_ports):
            r_data = Mux(hit, port.data, r_data)
        r_hit_any = Signal()
        m.d.comb += [
            r_hit_any.eq(sum(r_hits) != 0 if len(r_hits) > 1 else r_hits[0]),
            bus.r.payload.id.eq(r_id),
            bus.r.payload.data.eq(r_data),
            bus.r.payload.resp.eq(Mux(r_hit_any, Resp.OKAY, Resp.DECERR)),
            bus.r.payload.last.eq(r_left == 0),
        ]
        with one_hot_fsm(m, name="read"):
            with m.State("IDLE"):
                m.d.comb += bus.ar.ready.eq(~clearing)
                with m.If(bus.ar.valid & ~clearing):
                    m.d.sync += [r_id.eq(bus.ar.payload.id), r_left.eq(bus.ar.payload.len),
                                 r_fixed.eq(bus.ar.payload.burst == Burst.FIXED),
                                 *decode(bus.ar.payload.addr, r_hits, r_rows)]
                    m.next = "FETCH"
            with m.State("FETCH"):
                for row, port in zip(r_rows, read_ports):
                    m.d.comb += [port.addr.eq(row), port.en.eq(1)]
                m.next = "SEND"
            with m.State("SEND"):
                m.d.comb += bus.r.valid.eq(1)
                with m.If(bus.r.ready):
                    with m.If(r_left == 0):
                        m.next = "IDLE"
                    with m.Else():
                        m.d.sync += r_left.eq(r_left - 1)
                        for row, port in zip(r_rows, read_ports):
                            following = Mux(r_fixed, row, row + 1)
                            m.d.sync += row.eq(following)
                            m.d.comb += [port.addr.eq(following), port.en.eq(1)]

        m.d.comb += bus.b.payload.id.eq(w_id)
        m.d.comb += bus.b.payload.resp.eq(Mux(w_error, Resp.DECERR, Resp.OKAY))
        w_hit_any = sum(w_hits) != 0 if len(w_hits) > 1 else w_hits[0]
        for hit, row, port in zip(w_hits, w_rows, write_ports):
            m.d.comb += [port.addr.eq(row), port.data.eq(bus.w.payload.data)]
        with one_hot_fsm(m, name="write"):
            with m.State("IDLE"):
                m.d.comb += bus.aw.ready.eq(~clearing)
                with m.If(bus.aw.valid & ~clearing):
                    m.d.sync += [w_id.eq(bus.aw.payload.id), w_error.eq(0),
                                 w_fixed.eq(bus.aw.payload.burst == Burst.FIXED),
                                 *decode(bus.aw.payload.addr, w_hits, w_rows)]
                    m.next = "DATA"
            with m.State("DATA"):
                m.d.comb += bus.w.ready.eq(1)
                with m.If(bus.w.valid):
                    for hit, row, port in zip(w_hits, w_rows, write_ports):
                        m.d.comb += port.en.eq(Mux(hit, bus.w.payload.strb, 0))
                        m.d.sync += row.eq(Mux(w_fixed, row, row + 1))
                    with m.If(~w_hit_any):
                        m.d.sync += w_error.eq(1)
                    with m.If(bus.w.payload.last):
                        m.next = "RESPOND"
            with m.State("RESPOND"):
                m.d.comb += bus.b.valid.eq(1)
                with m.If(bus.b.ready):
                    m.next = "IDLE"

        with m.If(clearing):
            for port in write_ports:
                m.d.comb += [port.addr.eq(sweep), port.data.eq(0), port.en.eq(~0)]
            m.d.sync += sweep.eq(sweep + 1)
            with m.If(sweep == rows - 1):
                m.d.sync += clearing.eq(0)
        return m
