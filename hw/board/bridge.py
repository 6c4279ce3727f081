"""The host bridge: the board's end of the host link (docs/host-link.md)."""

from amaranth.hdl import Cat, Const, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..bus.axi import AXI4LiteSignature, Burst, Size
from ..config import SocConfig
from ..cpu.port import CpuPortSignature
from ..one_hot import one_hot_fsm
from ..parameters import check_integer
from . import protocol
from .protocol import ARGUMENTS, RESULTS, Command, LinkError
from .uart import UARTRx, UARTTx

__all__ = ["HostBridge"]


def _crc16_next(crc, byte):
    """The CRC-16/CCITT-FALSE register ``crc`` updated with ``byte``, as XOR gates: each bit of
    the result is the parity of some bits of ``crc`` and ``byte``, found by running the
    bit-serial algorithm on sets of input bits."""
    inputs = [*(crc[i] for i in range(16)), *(byte[i] for i in range(8))]
    bits = [{i} for i in range(16)]
    for i in range(8):
        bits[8 + i] = bits[8 + i] ^ {16 + i}
    for _ in range(8):
        top = bits[15]
        bits = [set()] + bits[:15]
        for i in (0, 5, 12):
            bits[i] = bits[i] ^ top
    out = []
    for terms in bits:
        value = Const(0, 1)
        for index in sorted(terms):
            value = value ^ inputs[index]
        out.append(value)
    return Cat(*out)


def _length(fields):
    return sum(size for _, size in fields)


class HostBridge(wiring.Component):
    """Carries out the commands of the host link, received on a UART, on the SoC's ports, and
    sends each one's reply; sends a notification when an interrupt line rises.

    One command at a time: bytes that arrive while a command runs or its reply is sent are
    dropped, and a frame whose bytes stop coming for ``frame_timeout`` cycles is dropped.
    A frame with the sequence number and code of the last command carried out is not carried
    out again: its reply is sent again (so a host may repeat a command whose reply it lost).

    Parameters
    ----------
    config : SocConfig
        The SoC's parameters (address and data widths).
    divisor : int
        UART clock cycles per bit (the clock frequency over the baud rate).
    clock_hz : int
        The clock frequency the reply to HELLO reports (0: unknown, as in simulation).
    frame_timeout : int
        Cycles without a byte after which a partly received frame is dropped (by default
        the time of 64 bytes).
    reset_cycles : int
        Cycles the RESET command holds ``soc_reset``.

    Members
    -------
    rx : ``In(1)``
        UART input from the host, high when idle.
    tx : ``Out(1)``
        UART output to the host.
    mmio : ``Out(AXI4LiteSignature(...))``
        Manager of the SoC's register space.
    cpu : ``Out(CpuPortSignature(...))``
        The CPU's loads and stores, through the cache.
    mem : ``Out(config.manager_signature)``
        Memory access past the cache (backdoor): single beats into an ``ext`` port of the
        interconnect.
    irq : ``In(8)``
        The SoC's interrupt lines.
    cycle : ``In(64)``
        The SoC's cycle counter.
    soc_reset : ``Out(1)``
        Resets the SoC (not the bridge) while high.
    """
    def __init__(self, config, *, divisor, clock_hz=0, frame_timeout=None, reset_cycles=16):
        if not isinstance(config, SocConfig):
            raise TypeError(f"Configuration must be a SocConfig, not {config!r}")
        if config.data_width != 64:
            raise ValueError(f"The host bridge carries 64-bit words; data width must be 64, "
                             f"not {config.data_width!r}")
        check_integer("UART divisor", divisor, minimum=4, maximum=1 << 20)
        check_integer("Clock frequency", clock_hz, minimum=0, maximum=(1 << 32) - 1)
        frame_timeout = 64 * 10 * divisor if frame_timeout is None else frame_timeout
        check_integer("Frame timeout", frame_timeout, minimum=16 * divisor,
                      maximum=(1 << 32) - 1)
        check_integer("Reset cycles", reset_cycles, minimum=1, maximum=1 << 16)
        self._config = config
        self._divisor = divisor
        self._clock_hz = clock_hz
        self._frame_timeout = frame_timeout
        self._reset_cycles = reset_cycles
        super().__init__({
            "rx": In(1, init=1),
            "tx": Out(1, init=1),
            "mmio": Out(AXI4LiteSignature(addr_width=config.mmio_addr_width)),
            "cpu": Out(CpuPortSignature(addr_width=config.addr_width,
                                        data_width=config.data_width)),
            "mem": Out(config.manager_signature),
            "irq": In(8),
            "cycle": In(64),
            "soc_reset": Out(1),
        })

    @property
    def divisor(self):
        return self._divisor

    def elaborate(self, platform):
        m = Module()
        m.submodules.uart_rx = uart_rx = UARTRx(self._divisor)
        m.submodules.uart_tx = uart_tx = UARTTx(self._divisor)
        m.d.comb += [uart_rx.rx.eq(self.rx), self.tx.eq(uart_tx.tx)]
        byte_in = uart_rx.data

        # The frame being received.
        seq = Signal(8)
        code = Signal(8)
        length = Signal(8)
        count = Signal(4)
        args = Signal(8 * protocol.MAX_PAYLOAD)
        crc = Signal(16)
        crc_hi = Signal(8)
        silent = Signal(range(self._frame_timeout + 1))

        # The last reply (sent again for a repeated command), the last command carried out.
        reply_seq = Signal(8)
        reply_code = Signal(8)
        reply_len = Signal(8)
        reply_data = Signal(80)
        last_valid = Signal()
        # An error reply.
        error_reason = Signal(8)

        # The sender's frame.
        t_seq = Signal(8)
        t_code = Signal(8)
        t_len = Signal(8)
        t_data = Signal(80)
        t_count = Signal(4)
        t_crc = Signal(16)
        send_reply = Signal()
        send_error = Signal()
        taken = Signal()

        irq_prev = Signal(8)
        rising = Signal(8)
        m.d.sync += irq_prev.eq(self.irq)

        # Receiving and carrying out.
        wait = Signal(32)
        aw_done = Signal()
        w_done = Signal()
        known = Signal()
        expected = Signal(8)
        with m.Switch(code):
            for command in Command:
                with m.Case(command):
                    m.d.comb += [known.eq(1), expected.eq(_length(ARGUMENTS[command]))]

        def reply(fields, value=0):
            return [reply_seq.eq(seq), reply_code.eq(code | protocol.REPLY),
                    reply_len.eq(_length(fields)), reply_data.eq(value)]

        def write(port, command):
            # AW and W offered together, each withdrawn once taken; then the response.
            m.d.comb += [port.aw.valid.eq(~aw_done), port.w.valid.eq(~w_done),
                         port.b.ready.eq(aw_done & w_done)]
            with m.If(port.aw.ready):
                m.d.sync += aw_done.eq(1)
            with m.If(port.w.ready):
                m.d.sync += w_done.eq(1)
            with m.If(port.b.valid & aw_done & w_done):
                m.d.sync += reply(RESULTS[command], port.b.payload.resp.as_value())
                m.next = "DONE"

        def request(stream, state):
            # Offer one request (an AR, a CPU request) and wait for its answer in ``state``.
            m.d.comb += stream.valid.eq(1)
            with m.If(stream.ready):
                m.next = state

        def count_down(fields, value=0):
            # Reply once ``wait`` has counted down to zero.
            with m.If(wait == 0):
                m.d.sync += reply(fields, value)
                m.next = "DONE"
            with m.Else():
                m.d.sync += wait.eq(wait - 1)

        addr40 = args[0:40]
        mmio_addr = args[0:32]
        word_addr = args[0:40] & ~Const(self._config.bytes_per_beat - 1, 40)
        for ax in (self.mem.aw.payload, self.mem.ar.payload):
            m.d.comb += [ax.addr.eq(word_addr), ax.len.eq(0), ax.burst.eq(Burst.INCR),
                         ax.size.eq(Size.from_bytes(self._config.bytes_per_beat))]
        m.d.comb += [
            self.mem.w.payload.strb.eq(args[40:48]),
            self.mem.w.payload.data.eq(args[48:112]),
            self.mem.w.payload.last.eq(1),
            self.mmio.aw.payload.addr.eq(mmio_addr),
            self.mmio.ar.payload.addr.eq(mmio_addr),
            self.mmio.w.payload.data.eq(args[32:64]),
            self.mmio.w.payload.strb.eq(0xF),
            self.cpu.req.payload.addr.eq(addr40),
            self.cpu.req.payload.strb.eq(args[40:48]),
            self.cpu.req.payload.cacheable.eq(args[48] & protocol.FLAG_CACHEABLE),
            self.cpu.req.payload.data.eq(args[56:120]),
            self.cpu.req.payload.write.eq(code == Command.CPU_STORE),
        ]

        in_frame = Signal()
        with m.If(in_frame & ~byte_in.valid):
            m.d.sync += silent.eq(silent + 1)
        with m.Else():
            m.d.sync += silent.eq(0)
        timed_out = silent == self._frame_timeout

        with one_hot_fsm(m, name="command"):
            with m.State("IDLE"):
                with m.If(byte_in.valid & (byte_in.payload == protocol.SYNC)):
                    m.d.sync += crc.eq(0xFFFF)
                    m.next = "SEQ"
            for state, target, after in (("SEQ", seq, "CODE"), ("CODE", code, "LEN")):
                with m.State(state):
                    m.d.comb += in_frame.eq(1)
                    with m.If(timed_out):
                        m.next = "IDLE"
                    with m.Elif(byte_in.valid):
                        m.d.sync += [target.eq(byte_in.payload),
                                     crc.eq(_crc16_next(crc, byte_in.payload))]
                        m.next = after
            with m.State("LEN"):
                m.d.comb += in_frame.eq(1)
                with m.If(timed_out):
                    m.next = "IDLE"
                with m.Elif(byte_in.valid):
                    m.d.sync += [length.eq(byte_in.payload), count.eq(0),
                                 crc.eq(_crc16_next(crc, byte_in.payload))]
                    with m.If(byte_in.payload > protocol.MAX_PAYLOAD):
                        m.d.sync += error_reason.eq(LinkError.BAD_LENGTH)
                        m.next = "SEND_ERROR"
                    with m.Elif(byte_in.payload == 0):
                        m.next = "CRC_HI"
                    with m.Else():
                        m.next = "DATA"
            with m.State("DATA"):
                m.d.comb += in_frame.eq(1)
                with m.If(timed_out):
                    m.next = "IDLE"
                with m.Elif(byte_in.valid):
                    m.d.sync += [args.word_select(count, 8).eq(byte_in.payload),
                                 count.eq(count + 1),
                                 crc.eq(_crc16_next(crc, byte_in.payload))]
                    with m.If(count + 1 == length):
                        m.next = "CRC_HI"
            with m.State("CRC_HI"):
                m.d.comb += in_frame.eq(1)
                with m.If(timed_out):
                    m.next = "IDLE"
                with m.Elif(byte_in.valid):
                    m.d.sync += crc_hi.eq(byte_in.payload)
                    m.next = "CRC_LO"
            with m.State("CRC_LO"):
                m.d.comb += in_frame.eq(1)
                with m.If(timed_out):
                    m.next = "IDLE"
                with m.Elif(byte_in.valid):
                    with m.If(crc != Cat(byte_in.payload, crc_hi)):
                        m.d.sync += error_reason.eq(LinkError.BAD_CRC)
                        m.next = "SEND_ERROR"
                    with m.Elif(~known):
                        m.d.sync += error_reason.eq(LinkError.UNKNOWN)
                        m.next = "SEND_ERROR"
                    with m.Elif(length != expected):
                        m.d.sync += error_reason.eq(LinkError.BAD_LENGTH)
                        m.next = "SEND_ERROR"
                    with m.Elif(last_valid & (seq == reply_seq) &
                                ((code | protocol.REPLY) == reply_code)):
                        m.next = "SEND_REPLY"
                    with m.Else():
                        m.d.sync += [aw_done.eq(0), w_done.eq(0), wait.eq(args[0:32])]
                        m.next = "EXECUTE"

            with m.State("EXECUTE"):
                with m.Switch(code):
                    with m.Case(Command.HELLO):
                        magic = int.from_bytes(protocol.MAGIC, "little")
                        m.d.sync += reply(RESULTS[Command.HELLO],
                                          magic | protocol.VERSION << 32 | 8 << 40 |
                                          self._clock_hz << 48)
                        m.next = "DONE"
                    with m.Case(Command.CYCLE):
                        m.d.sync += reply(RESULTS[Command.CYCLE], self.cycle)
                        m.next = "DONE"
                    with m.Case(Command.IRQ):
                        m.d.sync += reply(RESULTS[Command.IRQ], self.irq | self.cycle << 8)
                        m.next = "DONE"
                    with m.Case(Command.WAIT):
                        count_down(RESULTS[Command.WAIT], self.cycle)
                    with m.Case(Command.RESET):
                        m.d.sync += wait.eq(self._reset_cycles - 1)
                        m.next = "RESET"
                    with m.Case(Command.MMIO_READ):
                        request(self.mmio.ar, "MMIO_R")
                    with m.Case(Command.MMIO_WRITE):
                        write(self.mmio, Command.MMIO_WRITE)
                    with m.Case(Command.CPU_LOAD, Command.CPU_STORE):
                        request(self.cpu.req, "CPU_RSP")
                    with m.Case(Command.MEM_READ):
                        request(self.mem.ar, "MEM_R")
                    with m.Case(Command.MEM_WRITE):
                        write(self.mem, Command.MEM_WRITE)
            with m.State("RESET"):
                m.d.comb += self.soc_reset.eq(1)
                count_down(RESULTS[Command.RESET])
            for state, port, command in (("MMIO_R", self.mmio, Command.MMIO_READ),
                                         ("MEM_R", self.mem, Command.MEM_READ)):
                with m.State(state):
                    m.d.comb += port.r.ready.eq(1)
                    with m.If(port.r.valid):
                        m.d.sync += reply(RESULTS[command], port.r.payload.resp.as_value() |
                                          port.r.payload.data << 8)
                        m.next = "DONE"
            with m.State("CPU_RSP"):
                m.d.comb += self.cpu.rsp.ready.eq(1)
                with m.If(self.cpu.rsp.valid):
                    with m.If(code == Command.CPU_LOAD):
                        m.d.sync += reply(RESULTS[Command.CPU_LOAD],
                                          self.cpu.rsp.payload.error |
                                          self.cpu.rsp.payload.data << 8)
                    with m.Else():
                        m.d.sync += reply(RESULTS[Command.CPU_STORE],
                                          self.cpu.rsp.payload.error)
                    m.next = "DONE"
            with m.State("DONE"):
                m.d.sync += last_valid.eq(1)
                m.next = "SEND_REPLY"
            with m.State("SEND_REPLY"):
                m.d.comb += send_reply.eq(1)
                with m.If(taken):
                    m.next = "IDLE"
            with m.State("SEND_ERROR"):
                m.d.comb += send_error.eq(1)
                with m.If(taken):
                    m.next = "IDLE"

        # Sending: a reply, an error, or an interrupt notification, one whole frame at a time.
        tx_byte = uart_tx.data
        m.d.sync += rising.eq(rising | (self.irq & ~irq_prev))
        t_byte = Signal(8)
        with one_hot_fsm(m, name="sender"):
            with m.State("IDLE"):
                with m.If(send_reply):
                    m.d.comb += taken.eq(1)
                    m.d.sync += [t_seq.eq(reply_seq), t_code.eq(reply_code),
                                 t_len.eq(reply_len), t_data.eq(reply_data)]
                    m.next = "SYNC"
                with m.Elif(send_error):
                    m.d.comb += taken.eq(1)
                    m.d.sync += [t_seq.eq(seq), t_code.eq(protocol.ERROR), t_len.eq(2),
                                 t_data.eq(error_reason | code << 8)]
                    m.next = "SYNC"
                with m.Elif(rising != 0):
                    m.d.sync += [t_seq.eq(0), t_code.eq(protocol.NOTIFY),
                                 t_len.eq(protocol.NOTIFY_LENGTH),
                                 t_data.eq(self.irq | rising << 8 | self.cycle << 16),
                                 rising.eq(self.irq & ~irq_prev)]
                    m.next = "SYNC"
            for state, value, after in (("SYNC", protocol.SYNC, "SEQ"), ("SEQ", t_seq, "CODE"),
                                        ("CODE", t_code, "LEN")):
                with m.State(state):
                    m.d.comb += [tx_byte.valid.eq(1), t_byte.eq(value)]
                    with m.If(tx_byte.ready):
                        if state == "SYNC":
                            m.d.sync += t_crc.eq(0xFFFF)
                        else:
                            m.d.sync += t_crc.eq(_crc16_next(t_crc, t_byte))
                        m.next = after
            with m.State("LEN"):
                m.d.comb += [tx_byte.valid.eq(1), t_byte.eq(t_len)]
                with m.If(tx_byte.ready):
                    m.d.sync += [t_crc.eq(_crc16_next(t_crc, t_byte)), t_count.eq(0)]
                    with m.If(t_len == 0):
                        m.next = "CRC_HI"
                    with m.Else():
                        m.next = "DATA"
            with m.State("DATA"):
                m.d.comb += [tx_byte.valid.eq(1), t_byte.eq(t_data.word_select(t_count, 8))]
                with m.If(tx_byte.ready):
                    m.d.sync += [t_crc.eq(_crc16_next(t_crc, t_byte)),
                                 t_count.eq(t_count + 1)]
                    with m.If(t_count + 1 == t_len):
                        m.next = "CRC_HI"
            with m.State("CRC_HI"):
                m.d.comb += [tx_byte.valid.eq(1), t_byte.eq(t_crc[8:16])]
                with m.If(tx_byte.ready):
                    m.next = "CRC_LO"
            with m.State("CRC_LO"):
                m.d.comb += [tx_byte.valid.eq(1), t_byte.eq(t_crc[0:8])]
                with m.If(tx_byte.ready):
                    m.next = "IDLE"
        m.d.comb += tx_byte.payload.eq(t_byte)
        return m
