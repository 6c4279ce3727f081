"""The DDR model: an AXI4 subordinate with configurable latency over the SoC's DDR banks.

Each bank of :class:`~dmabuf_soc.hw.config.SocConfig` is one
:class:`amaranth.lib.memory.Memory` of ``data_width``-bit rows, so the same design runs in the
built-in simulator and in a compiled (CXXRTL) backend; :mod:`.backdoor` reads and writes those
rows from testbenches without bus cycles.

Timing. A read burst's first R beat is presented ``read_latency`` cycles after the cycle its AR
handshake completed, and the B response of a write ``write_latency`` cycles after the cycle of
its last W handshake, unless earlier bursts of the same direction still hold the channel:
responses come strictly in order, one queue per direction. Once a burst streams, the model
moves one R beat and one W beat every cycle; read and write channels are independent and run
concurrently, and back-to-back bursts stream without a bubble. Each direction holds at most
``max_outstanding`` requests (accepted, not yet answered in full); beyond that AWREADY or
ARREADY stays low. The model accepts W beats only for a burst whose AW it has accepted.
The latencies are the config's, unless :attr:`DDRModel.ctrl` gives others (any from 1 to
:data:`~dmabuf_soc.hw.config.MAX_LATENCY`, at run time): a compiled model of the SoC is built
once and told the config's latencies there.

Bursts. INCR (up to 256 beats), FIXED and WRAP bursts, narrow transfers (``size`` below the bus
width: the address advances by the transfer size and data sits on the byte lanes of the address)
and unaligned start addresses (the lanes below the address are neither written nor meaningful on
reads) are all served. Write strobes are honoured byte by byte, within the lanes of the beat.
A burst the protocol forbids (``size`` wider than the bus, the reserved burst type, a WRAP whose
length is not 2, 4, 8 or 16 beats or whose address is not aligned to ``size``) is answered
SLVERR on every beat and writes nothing.

Errors, decided beat by beat. A beat whose address lies in no bank (for instance the part of a
burst that runs off the end of a bank) is answered DECERR and writes nothing. Error injection
windows on :attr:`DDRModel.ctrl` override that: a beat any byte of which falls in an enabled
window for its direction is answered with the window's response (the lowest-numbered window
wins), and a write beat hit so writes nothing, while the burst's other beats proceed. A read beat
with an error returns zero data. A write burst's B response is that of its first erring beat, or
OKAY. Priority: forbidden burst, then windows, then address decode.
"""

from types import SimpleNamespace

from amaranth.hdl import Cat, Const, Module, Mux, Shape, Signal, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.memory import Memory, MemoryData
from amaranth.lib.wiring import In, Out
from amaranth.utils import exact_log2

from ...hw.bus.axi import AXI4Signature, Burst, Resp
from ...hw.config import MAX_LATENCY, SocConfig

__all__ = ["MAX_LATENCY", "ErrorWindowLayout", "DDRControlSignature", "DDRStatsSignature", "DDRModel"]

STATS_WIDTH = 32


class ErrorWindowLayout(data.StructLayout):
    """One error injection window: the addresses ``base`` to ``limit``, both inclusive.

    ``read`` and ``write`` select the directions it applies to; ``resp`` is the answer
    (SLVERR or DECERR) to the beats that touch it while ``enable`` is set.
    """
    def __init__(self, *, addr_width):
        super().__init__({
            "enable": unsigned(1),
            "read":   unsigned(1),
            "write":  unsigned(1),
            "resp":   Resp,
            "base":   unsigned(addr_width),
            "limit":  unsigned(addr_width),
        })


class DDRControlSignature(wiring.Signature):
    """Simulation controls of the DDR model, from the testbench's side.

    Parameters
    ----------
    addr_width : int
        Width of the window addresses.
    windows : int
        Number of error injection windows; may be 0.

    Members
    -------
    windows : ``Out(ErrorWindowLayout).array(windows)``
        Left at reset (all disabled) by the SoC; testbenches drive them with ``ctx.set``
        (see :func:`~dmabuf_soc.sim.ddr.backdoor.set_error_window`).
    read_latency, write_latency : ``Out(range(MAX_LATENCY + 1))``
        The latencies the model runs with, if not 0; 0 (at reset) keeps those of its
        :class:`SocConfig`. A compiled model is built once for every latency and told the
        configuration's by these.
    """
    def __init__(self, *, addr_width, windows):
        if not isinstance(windows, int) or isinstance(windows, bool) or windows < 0:
            raise TypeError(f"Number of error windows must be a non-negative integer, "
                            f"not {windows!r}")
        super().__init__({
            "windows": Out(ErrorWindowLayout(addr_width=addr_width)).array(windows),
            "read_latency":  Out(range(MAX_LATENCY + 1)),
            "write_latency": Out(range(MAX_LATENCY + 1)),
        })


class DDRStatsSignature(wiring.Signature):
    """Traffic counters of the DDR model (wrapping, 32 bits), from the model's side.

    Members
    -------
    read_bursts, write_bursts : ``Out(32)``
        AR and AW handshakes.
    read_beats, write_beats : ``Out(32)``
        R and W handshakes.
    """
    def __init__(self):
        super().__init__({name: Out(STATS_WIDTH) for name in
                          ("read_bursts", "write_bursts", "read_beats", "write_beats")})


class _RequestLayout(data.StructLayout):
    # An accepted AR or AW, as queued and as the burst sequencer walks it beat by beat.
    def __init__(self, *, addr_width, id_width):
        super().__init__({
            "id":        unsigned(id_width),
            "addr":      unsigned(addr_width),
            "len":       unsigned(8),
            "size":      unsigned(3),
            "burst":     Burst,
            "forbidden": unsigned(1),
        })


class _WriteResponseLayout(data.StructLayout):
    def __init__(self, *, id_width):
        super().__init__({"id": unsigned(id_width), "resp": Resp})


class DDRModel(wiring.Component):
    """DDR memory behind an AXI4 subordinate port (see the module documentation for timing,
    burst and error semantics).

    Parameters
    ----------
    config : SocConfig
        Banks, widths, ``read_latency``, ``write_latency`` and ``max_outstanding``.
    id_width : int
        AXI ID width of :attr:`bus` (``config.id_width`` by default; the interconnect in front
        of the model usually widens IDs).
    sid_width : int
        Stream-ID sideband width of :attr:`bus` (``config.sid_width`` by default; ignored).
    error_windows : int
        Number of error injection windows on :attr:`ctrl`.
    init : dict of str to bytes-like, optional
        Initial contents of banks, by bank name, from the bank's base; the rest is zero.

    Members
    -------
    bus : ``In(AXI4Signature(...))``
        The subordinate port.
    ctrl : ``In(DDRControlSignature(...))``
        Error injection windows.
    stats : ``Out(DDRStatsSignature())``
        Traffic counters.

    Attributes
    ----------
    config : SocConfig
    """
    def __init__(self, config, *, id_width=None, sid_width=None, error_windows=4, init=None):
        if not isinstance(config, SocConfig):
            raise TypeError(f"Configuration must be a SocConfig, not {config!r}")
        if not config.banks:
            raise ValueError("The configuration has no DDR bank")
        id_width  = config.id_width  if id_width  is None else id_width
        sid_width = config.sid_width if sid_width is None else sid_width
        self._config = config
        self._memory_data = {}
        init = {} if init is None else dict(init)
        for name in init:
            if name not in {bank.name for bank in config.banks}:
                raise ValueError(f"No bank named {name!r} to initialize")
        for bank in config.banks:
            rows = self._init_rows(bank, init.get(bank.name, b""))
            self._memory_data[bank.name] = MemoryData(
                shape=config.data_width, depth=bank.size // config.bytes_per_beat, init=rows,
                src_loc_at=1)
        super().__init__({
            "bus":   In(AXI4Signature(addr_width=config.addr_width, data_width=config.data_width,
                                      id_width=id_width, sid_width=sid_width)),
            "ctrl":  In(DDRControlSignature(addr_width=config.addr_width, windows=error_windows)),
            "stats": Out(DDRStatsSignature()),
        })

    def _init_rows(self, bank, contents):
        contents = bytes(contents)
        if len(contents) > bank.size:
            raise ValueError(f"Initial contents of bank {bank.name!r} are {len(contents)} bytes "
                             f"long, more than its {bank.size} bytes")
        width = self._config.bytes_per_beat
        return [int.from_bytes(contents[pos:pos + width], "little")
                for pos in range(0, len(contents), width)]

    @property
    def config(self):
        return self._config

    def memory_data(self, bank):
        """The :class:`~amaranth.hdl.MemoryData` holding ``bank`` (a :class:`Bank` or its name):
        one row per bus beat, byte ``i`` of a row at bits ``8*i`` to ``8*i+7``."""
        name = getattr(bank, "name", bank)
        try:
            return self._memory_data[name]
        except KeyError:
            raise ValueError(f"No bank named {name!r}") from None

    def elaborate(self, platform):
        m = Module()
        config = self._config
        bus = self.bus

        memories = []
        for bank in config.banks:
            memories.append(Memory(data=self._memory_data[bank.name]))
            m.submodules[f"bank_{bank.name}"] = memories[-1]

        request_layout = _RequestLayout(addr_width=config.addr_width,
                                        id_width=bus.ar.payload.id.shape().width)

        # Read path. s1 picks the beat to read (the walking burst, else the queue head once due)
        # and addresses the bank memories; s2 holds the R beat while the memories' read data
        # stands still under backpressure.
        rd_hs      = Signal()
        rd_pending = Signal(range(config.max_outstanding + 1))
        m.d.comb += [
            bus.ar.ready.eq(rd_pending < config.max_outstanding),
            rd_hs.eq(bus.ar.valid & bus.ar.ready),
        ]
        rd_incoming = self._accept(m, "rd", bus.ar.payload, request_layout)
        rd_queue = m.submodules.rd_queue = SyncFIFO(width=Shape.cast(request_layout).width,
                                                    depth=config.max_outstanding)
        rd_head = Signal(request_layout)
        rd_head_valid = Signal()
        read_latency = self._latency(m, "read", self.ctrl.read_latency, config.read_latency)
        write_latency = self._latency(m, "write", self.ctrl.write_latency, config.write_latency)
        # With a latency of 1, a request due in the cycle it is accepted goes straight to s1
        # if the queue is empty (bypass); otherwise it falls due from the queue.
        rd_bypass = Signal()
        rd_arrive = Signal()
        m.d.comb += [
            rd_bypass.eq(read_latency == 1),
            rd_arrive.eq(Mux(rd_bypass, rd_hs,
                             self._delay(m, "rd", rd_hs, read_latency - 1))),
            rd_head.eq(Mux(rd_bypass & ~rd_queue.r_rdy, rd_incoming, rd_queue.r_data)),
            rd_head_valid.eq(rd_queue.r_rdy | (rd_bypass & rd_hs)),
        ]
        # Requests fall due in acceptance order: rd_arrive pulses when the next one does, and
        # rd_due counts the queued requests already due but not yet started.
        rd_due = Signal(range(config.max_outstanding + 1))
        rd_head_due = Signal()
        m.d.comb += rd_head_due.eq(rd_head_valid & ((rd_due != 0) | rd_arrive))

        s1_walking = Signal()
        s1_burst   = Signal(request_layout)
        s1_left    = Signal(8)                # beats of the walking burst after the current one
        s1_valid   = Signal()
        s1_req     = Signal(request_layout)
        s1_remain  = Signal(8)
        s1_advance = Signal()
        s1_take    = Signal()
        s1_start   = Signal()
        m.d.comb += [
            s1_valid.eq(s1_walking | rd_head_due),
            s1_req.eq(Mux(s1_walking, s1_burst, rd_head)),
            s1_remain.eq(Mux(s1_walking, s1_left, rd_head.len)),
            s1_take.eq(s1_valid & s1_advance),
            s1_start.eq(s1_take & ~s1_walking),
        ]
        s1_beat = self._beat(m, "s1", s1_req, write=False)

        m.d.comb += [
            rd_queue.w_data.eq(rd_incoming),
            rd_queue.r_en.eq(s1_start & rd_queue.r_rdy),
        ]
        m.d.comb += rd_queue.w_en.eq(rd_hs & ~(rd_bypass & s1_start & ~rd_queue.r_rdy))
        m.d.sync += rd_due.eq(rd_due + rd_arrive - s1_start)

        with m.If(s1_take):
            m.d.sync += [
                s1_walking.eq(s1_remain != 0),
                s1_burst.eq(s1_req),
                s1_burst.addr.eq(s1_beat.next_addr),
                s1_left.eq(s1_remain - 1),
            ]

        s2_valid = Signal()
        s2_id    = Signal.like(bus.r.payload.id)
        s2_resp  = Signal(Resp)
        s2_last  = Signal()
        s2_banks = Signal(len(memories))      # one-hot bank whose read data s2 returns, or none
        m.d.comb += s1_advance.eq(~s2_valid | bus.r.ready)
        with m.If(s1_advance):
            m.d.sync += [
                s2_valid.eq(s1_valid),
                s2_id.eq(s1_req.id),
                s2_resp.eq(s1_beat.resp),
                s2_last.eq(s1_remain == 0),
                s2_banks.eq(Mux(s1_beat.resp == Resp.OKAY, s1_beat.banks, 0)),
            ]
        for index, (bank, memory) in enumerate(zip(config.banks, memories)):
            read_port = memory.read_port()
            m.d.comb += [
                read_port.addr.eq(s1_beat.rows[index]),
                read_port.en.eq(s1_advance),
            ]
            with m.If(s2_banks[index]):
                m.d.comb += bus.r.payload.data.eq(read_port.data)
        m.d.comb += [
            bus.r.valid.eq(s2_valid),
            bus.r.payload.id.eq(s2_id),
            bus.r.payload.resp.eq(s2_resp),
            bus.r.payload.last.eq(s2_last),
        ]
        r_hs = Signal()
        m.d.comb += r_hs.eq(bus.r.valid & bus.r.ready)
        m.d.sync += rd_pending.eq(rd_pending + rd_hs - (r_hs & bus.r.payload.last))

        # Write path. W beats of the burst at the head of the queue are written as they come;
        # its B response waits in b_queue until write_latency cycles after its last beat.
        wr_hs      = Signal()
        wr_pending = Signal(range(config.max_outstanding + 1))
        m.d.comb += [
            bus.aw.ready.eq(wr_pending < config.max_outstanding),
            wr_hs.eq(bus.aw.valid & bus.aw.ready),
        ]
        wr_queue = m.submodules.wr_queue = SyncFIFO(width=Shape.cast(request_layout).width,
                                                    depth=config.max_outstanding)
        m.d.comb += [
            wr_queue.w_data.eq(self._accept(m, "wr", bus.aw.payload, request_layout)),
            wr_queue.w_en.eq(wr_hs),
        ]

        w_walking = Signal()
        w_burst   = Signal(request_layout)
        w_left    = Signal(8)
        w_resp    = Signal(Resp)              # response of the walking burst so far
        w_req     = Signal(request_layout)
        w_remain  = Signal(8)
        w_hs      = Signal()
        w_last    = Signal()
        w_resp_next = Signal(Resp)
        m.d.comb += [
            w_req.eq(Mux(w_walking, w_burst, wr_queue.r_data)),
            w_remain.eq(Mux(w_walking, w_left, w_req.len)),
            bus.w.ready.eq(w_walking | wr_queue.r_rdy),
            w_hs.eq(bus.w.valid & bus.w.ready),
            w_last.eq(w_remain == 0),
            wr_queue.r_en.eq(w_hs & ~w_walking),
        ]
        w_beat = self._beat(m, "w", w_req, write=True)
        with m.If(w_walking & (w_resp != Resp.OKAY)):
            m.d.comb += w_resp_next.eq(w_resp)
        with m.Else():
            m.d.comb += w_resp_next.eq(w_beat.resp)
        with m.If(w_hs):
            m.d.sync += [
                w_walking.eq(~w_last),
                w_burst.eq(w_req),
                w_burst.addr.eq(w_beat.next_addr),
                w_left.eq(w_remain - 1),
                w_resp.eq(w_resp_next),
            ]
        w_strobes = Signal(config.bytes_per_beat)
        m.d.comb += w_strobes.eq(Mux(w_hs & (w_beat.resp == Resp.OKAY),
                                     bus.w.payload.strb & w_beat.lanes, 0))
        for index, memory in enumerate(memories):
            write_port = memory.write_port(granularity=8)
            m.d.comb += [
                write_port.addr.eq(w_beat.rows[index]),
                write_port.data.eq(bus.w.payload.data),
                write_port.en.eq(Mux(w_beat.banks[index], w_strobes, 0)),
            ]

        response_layout = _WriteResponseLayout(id_width=bus.b.payload.id.shape().width)
        b_queue = m.submodules.b_queue = SyncFIFO(width=Shape.cast(response_layout).width,
                                                  depth=config.max_outstanding)
        b_done = Signal()
        b_tail = Signal(response_layout)
        m.d.comb += [
            b_done.eq(w_hs & w_last),
            b_tail.id.eq(w_req.id),
            b_tail.resp.eq(w_resp_next),
            b_queue.w_data.eq(b_tail),
            b_queue.w_en.eq(b_done),
        ]
        b_arrive = self._delay(m, "b", b_done, write_latency)
        b_due  = Signal(range(config.max_outstanding + 1))
        b_hs   = Signal()
        b_head = response_layout(b_queue.r_data)
        m.d.comb += [
            bus.b.valid.eq(b_queue.r_rdy & ((b_due != 0) | b_arrive)),
            bus.b.payload.id.eq(b_head.id),
            bus.b.payload.resp.eq(b_head.resp),
            b_hs.eq(bus.b.valid & bus.b.ready),
            b_queue.r_en.eq(b_hs),
        ]
        m.d.sync += [
            b_due.eq(b_due + b_arrive - b_hs),
            wr_pending.eq(wr_pending + wr_hs - b_hs),
        ]

        m.d.sync += [
            self.stats.read_bursts.eq(self.stats.read_bursts + rd_hs),
            self.stats.write_bursts.eq(self.stats.write_bursts + wr_hs),
            self.stats.read_beats.eq(self.stats.read_beats + r_hs),
            self.stats.write_beats.eq(self.stats.write_beats + w_hs),
        ]
        return m

    def _accept(self, m, prefix, payload, request_layout):
        """The queue entry of an address channel payload, with the forbidden-burst check."""
        request = Signal(request_layout, name=f"{prefix}_incoming")
        aligned = Signal(name=f"{prefix}_incoming_aligned")
        m.d.comb += aligned.eq((payload.addr & ((Const(1, 1) << payload.size) - 1)) == 0)
        wrap_ok = aligned & payload.len.matches(1, 3, 7, 15)
        m.d.comb += [
            request.id.eq(payload.id),
            request.addr.eq(payload.addr),
            request.len.eq(payload.len),
            request.size.eq(payload.size),
            request.burst.eq(payload.burst),
            request.forbidden.eq((payload.size > exact_log2(self._config.bytes_per_beat)) |
                                 payload.burst.as_value().matches(0b11) |
                                 ((payload.burst == Burst.WRAP) & ~wrap_ok)),
        ]
        return request

    @staticmethod
    def _latency(m, direction, control, configured):
        """The latency of ``direction``: ``control`` if not 0, else ``configured``."""
        latency = Signal(range(MAX_LATENCY + 1), name=f"{direction}_latency")
        m.d.comb += latency.eq(Mux(control != 0, control, configured))
        return latency

    @staticmethod
    def _delay(m, prefix, value, cycles):
        """``value`` delayed by ``cycles`` (a signal, 1 to :data:`MAX_LATENCY`) clock
        cycles: a tap of a delay line as long as the longest latency."""
        line = Signal(MAX_LATENCY, name=f"{prefix}_delay")
        tap = Signal(range(MAX_LATENCY), name=f"{prefix}_tap")
        m.d.sync += line.eq(Cat(value, line[:-1]))
        m.d.comb += tap.eq(cycles - 1)
        return line.bit_select(tap, 1)

    def _beat(self, m, prefix, request, *, write):
        """Decode the beat at ``request.addr`` of burst ``request``.

        Returns an object with ``banks`` (one-hot bank hit), ``rows`` (the row in each bank),
        ``lanes`` (byte lanes the beat carries), ``resp`` and ``next_addr``.
        """
        config = self._config
        offset_bits = exact_log2(config.bytes_per_beat)

        beat = SimpleNamespace()

        size_mask = Signal(config.addr_width, name=f"{prefix}_size_mask")
        wrap_mask = Signal(config.addr_width, name=f"{prefix}_wrap_mask")
        increment = Signal(config.addr_width, name=f"{prefix}_increment")
        beat.next_addr = Signal(config.addr_width, name=f"{prefix}_next_addr")
        m.d.comb += [
            size_mask.eq((Const(1, 1) << request.size) - 1),
            wrap_mask.eq((request.len << request.size) | size_mask),
            increment.eq((request.addr & ~size_mask) + size_mask + 1),
        ]
        with m.Switch(request.burst):
            with m.Case(Burst.FIXED):
                m.d.comb += beat.next_addr.eq(request.addr)
            with m.Case(Burst.WRAP):
                m.d.comb += beat.next_addr.eq((request.addr & ~wrap_mask) |
                                              (increment & wrap_mask))
            with m.Default():
                m.d.comb += beat.next_addr.eq(increment)

        first_lane = request.addr[:offset_bits]
        last_lane  = first_lane | size_mask[:offset_bits]
        beat.lanes = Signal(config.bytes_per_beat, name=f"{prefix}_lanes")
        m.d.comb += beat.lanes.eq(Cat((first_lane <= lane) & (lane <= last_lane)
                                      for lane in range(config.bytes_per_beat)))

        beat.banks = Signal(len(config.banks), name=f"{prefix}_banks")
        beat.rows = []
        for index, bank in enumerate(config.banks):
            bank_bits = exact_log2(bank.size)
            m.d.comb += beat.banks[index].eq(request.addr[bank_bits:] == bank.base >> bank_bits)
            beat.rows.append(request.addr[offset_bits:bank_bits])

        last_byte = request.addr | size_mask
        beat.resp = Signal(Resp, name=f"{prefix}_resp")
        with m.If(request.forbidden):
            m.d.comb += beat.resp.eq(Resp.SLVERR)
        for window in self.ctrl.windows:
            applies = window.write if write else window.read
            with m.Elif(window.enable & applies &
                        (request.addr <= window.limit) & (last_byte >= window.base)):
                m.d.comb += beat.resp.eq(window.resp)
        with m.Elif(beat.banks == 0):
            m.d.comb += beat.resp.eq(Resp.DECERR)
        with m.Else():
            m.d.comb += beat.resp.eq(Resp.OKAY)
        return beat
