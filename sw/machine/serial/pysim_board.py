"""A board simulated by Amaranth's built-in simulator, its UART served through a
:class:`~.transport.PipeTransport`: the host link end to end without a board, bridge
included (slow: for short tests)."""

import queue
import threading

from amaranth.hdl import Signal
from amaranth.sim import Simulator

from ....hw.board.board import Board
from .transport import PipeTransport

__all__ = ["add_uart", "PysimBoard"]


def add_uart(sim, *, rx, tx, divisor, transport, stop, poll=None):
    """Add to ``sim`` the host's UART: bytes from ``transport.to_board`` driven onto ``rx``,
    bytes sampled from ``tx`` put into ``transport.to_host``, ``divisor`` cycles a bit,
    until the :class:`threading.Event` ``stop`` is set; ``poll(ctx)``, if given, is called
    while the line is idle. Returns a signal that rises when ``stop`` is seen, for other
    testbenches to end on."""
    done = Signal()

    async def send(ctx):
        ctx.set(rx, 1)
        while not stop.is_set():
            if poll is not None:
                poll(ctx)
            try:
                byte = transport.to_board.get_nowait()
            except queue.Empty:
                await ctx.tick().repeat(divisor * 4)
                continue
            for bit in [0, *((byte >> i) & 1 for i in range(8)), 1]:
                ctx.set(rx, bit)
                await ctx.tick().repeat(divisor)
        ctx.set(done, 1)

    async def receive(ctx):
        while True:
            await ctx.tick().until((tx == 0) | done)
            if ctx.get(done):
                return
            await ctx.tick().repeat(divisor // 2)
            byte = 0
            for i in range(8):
                await ctx.tick().repeat(divisor)
                byte |= ctx.get(tx) << i
            await ctx.tick().repeat(divisor)
            transport.to_host.put(byte)

    sim.add_testbench(send)
    sim.add_testbench(receive)
    return done


class PysimBoard:
    """:class:`~dmabuf_soc.hw.board.board.Board` running in a thread on the built-in
    simulator; :attr:`transport` is the host's end of its UART.

    Parameters
    ----------
    config : SocConfig, optional
        As for :class:`Board`.
    divisor : int
        UART clock cycles per bit.
    clear : bool
        Zero the memory after each reset (tens of thousands of cycles: slow here).
    """
    def __init__(self, config=None, *, divisor=4, clear=False):
        self.board = Board(config, divisor=divisor, clear=clear)
        self.transport = PipeTransport()
        self._stop = threading.Event()
        self._error = None
        sim = Simulator(self.board)
        sim.add_clock(1e-8)
        add_uart(sim, rx=self.board.rx, tx=self.board.tx, divisor=divisor,
                 transport=self.transport, stop=self._stop)
        self._sim = sim
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        try:
            self._sim.run()
        except BaseException as error:     # reported by close()
            self._error = error

    def start(self):
        self._thread.start()
        return self

    def close(self):
        self._stop.set()
        self._thread.join()
        if self._error is not None:
            raise self._error

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.close()
