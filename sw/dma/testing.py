"""A :class:`~dmabuf_soc.sw.machine.base.Machine` made of one DMA channel and a memory.

For driver tests and the DMA benchmark before (and besides) the whole SoC: MMIO goes to the
channel's register port, and the CPU's loads and stores go straight to memory through the
``peek``/``poke`` backdoor, as uncached accesses to a coherent memory would.
"""

import errno

from ...hw.bus.axi import Resp
from ...sim.bus.lite import lite_read, lite_write
from ...hw.config import SocConfig
from ..machine.base import BusError, Machine
from ..machine.pysim import wait_irq_sampled

__all__ = ["ChannelMachine"]


class ChannelMachine(Machine):
    """The machine of one :class:`~dmabuf_soc.hw.dma.channel.DMAChannel` in a simulation.

    Parameters
    ----------
    ctx : SimulatorContext
        The testbench context the driver runs in.
    channel : DMAChannel
    peek, poke : async callables
        ``await peek(ctx, addr, n)`` and ``await poke(ctx, addr, data)``: the memory backdoor.
    clock : callable
        ``clock()`` returns the cycles elapsed (for instance a protocol checker's count).
    config : SocConfig
    """
    def __init__(self, ctx, channel, *, peek, poke, clock, config=None):
        self.ctx = ctx
        self.channel = channel
        self.config = config or SocConfig()
        self._peek, self._poke, self._clock = peek, poke, clock

    @property
    def cycle(self):
        return self._clock()

    async def tick(self, n=1):
        if n:
            await self.ctx.tick().repeat(n)

    async def mmio_read(self, addr):
        data, resp = await lite_read(self.ctx, self.channel.regs, addr)
        if resp != Resp.OKAY:
            raise BusError(errno.EIO, f"MMIO read at {addr:#x} answered {resp.name}")
        return data

    async def mmio_write(self, addr, value):
        resp = await lite_write(self.ctx, self.channel.regs, addr, value)
        if resp != Resp.OKAY:
            raise BusError(errno.EIO, f"MMIO write at {addr:#x} answered {resp.name}")

    async def load(self, addr, size, *, cacheable=True):
        return await self._peek(self.ctx, addr, size)

    async def store(self, addr, data, *, cacheable=True):
        await self._poke(self.ctx, addr, data)

    async def wait_irq(self, line, *, timeout_cycles):
        await wait_irq_sampled(self.ctx, self.channel.irq, line=line,
                               timeout_cycles=timeout_cycles, cycle=self._clock)

    def irq_pending(self, line):
        return bool(self.ctx.get(self.channel.irq))

    async def peek(self, addr, n):
        return await self._peek(self.ctx, addr, n)

    async def poke(self, addr, data):
        await self._poke(self.ctx, addr, data)
