"""A board simulated by Amaranth's built-in simulator, its UART served through a
:class:`~.transport.PipeTransport`: the host link end to end without a board, bridge
included (slow: for short tests)."""

import queue
import threading

from amaranth.sim import Simulator

from ....hw.board.board import Board
from .transport import PipeTransport

__all__ = ["add_uart", "PysimBoard"]


def add_uart(sim, *, rx, tx, divisor, transport, stop):
    """Add to ``sim`` the host's UART: bytes from ``transport.to_board`` driven onto ``rx``,
    bytes sampled from ``tx`` put into ``transport.to_host``, ``divisor`` cycles a bit,
    until the :class:`threading.Event` ``stop`` is set."""
    async def send(ctx):
        ctx.set(rx, 1)
        while not stop.is_set():
            try:
                byte = transport.to_board.get_nowait()
            except queue.Empty:
                await ctx.tick().repeat(divisor * 4)
                continue
            for bit in [0, *((byte >> i) & 1 for i in range(8)), 1]:
                ctx.set(rx, bit)
                await ctx.tick().repeat(divisor)

    async def receive(ctx):
        while not stop.is_set():
            await ctx.tick()
            if ctx.get(tx):
                continue
            await ctx.tick().repeat(divisor // 2)
            byte = 0
            for i in range(8):
                await ctx.tick().repeat(divisor)
                byte |= ctx.get(tx) << i
            await ctx.tick().repeat(divisor)
            transport.to_host.put(byte)

    sim.add_testbench(send)
    sim.add_testbench(receive)


class PysimBoard:
    """:class:`~dmabuf_soc.hw.board.board.Board` running in a thread on the built-in
    simulator; :attr:`transport` is the host's end of its UART.

    Parameters
    ----------
    config : SocConfig, optional
        As for :class:`Board`.
    divisor : int
        UART clock cycles per bit.
    """
    def __init__(self, config=None, *, divisor=4, dut=None):
        self.board = Board(config, divisor=divisor) if dut is None else dut
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
