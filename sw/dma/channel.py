"""Driver of one DMA channel, in the manner of Linux dmaengine.

A client prepares a transfer (:meth:`DmaChannel.prep_memcpy`, :meth:`DmaChannel.prep_sg`),
submits it, then calls :meth:`DmaChannel.issue_pending`; the transfer's :class:`Completion` is
signalled when the engine has completed it::

    tx = chan.prep_memcpy(dst, src, 4096)
    chan.submit(tx)
    await chan.issue_pending()
    await tx.completion.wait()

Descriptors live in a ring in DMA-able memory, written with uncached stores (so the engine
sees them: the cache is not coherent with DMA). Transfers are appended to the running chain by
linking the old tail's ``next`` and moving the tail pointer.
"""

import errno

from ...hw.dma.descriptor import (DESCRIPTOR_BYTES, ErrorCode, pack_descriptor,
                                  unpack_descriptor)
from .completion import Completion

__all__ = ["DmaError", "DmaTransaction", "DmaChannel"]

#: Longest segment one descriptor moves.
MAX_SEGMENT = (1 << 32) - 1

#: Engine errors that mean the descriptor chain was invalid (a pointer to a descriptor, not
#: the data or the bus): reported with EINVAL rather than EIO.
_EINVAL_CODES = {ErrorCode.MISALIGNED, ErrorCode.STALE}

#: What each engine error means, for the message.
_ERROR_TEXT = {
    ErrorCode.READ: "bus error reading the source",
    ErrorCode.WRITE: "bus error writing the destination",
    ErrorCode.DESC_FETCH: "bus error fetching the descriptor",
    ErrorCode.STATUS_WB: "bus error writing the descriptor's status back",
    ErrorCode.ZERO_LEN: "transfer of length 0",
    ErrorCode.STALE: "descriptor already completed (a next pointer back into the chain?)",
    ErrorCode.MISALIGNED: f"descriptor pointer not {DESCRIPTOR_BYTES}-byte aligned "
                          f"(CURDESC, TAILDESC or a next pointer)",
}


def _check_desc_pointer(name, addr):
    if addr % DESCRIPTOR_BYTES:
        raise DmaError(errno.EINVAL, f"{name} {addr:#x} is not {DESCRIPTOR_BYTES}-byte aligned: "
                                     f"the engine would refuse it (MISALIGNED)")


class DmaError(OSError):
    """A transfer failed in the engine or was terminated (ECANCELED), or a channel was set up
    wrongly (EINVAL).

    A failure in the engine carries its :class:`ErrorCode` (``code``) and faulting descriptor
    (``desc``, ``ERR_DESC``); its errno is EINVAL when the descriptor chain was invalid (a
    misaligned descriptor pointer, a stale descriptor: :data:`_EINVAL_CODES`), EIO
    otherwise (a bus error, a zero length)."""
    def __init__(self, err, message, *, code=ErrorCode.NONE, desc=0):
        super().__init__(err, message)
        self.code, self.desc = code, desc


class DmaTransaction:
    """A prepared transfer: ``segments`` of ``(src, dst, length)`` and its :attr:`completion`."""
    def __init__(self, channel, segments, interrupt):
        self.channel = channel
        self.segments = segments
        self.interrupt = interrupt
        self.completion = Completion(waiter=channel.wait_step)
        self.cookie = None
        self.descs = []       # descriptor addresses, once issued

    @property
    def length(self):
        return sum(length for _, _, length in self.segments)


def _pair_segments(dst_list, src_list):
    """Split two scatter lists into ``(src, dst, length)`` pieces that are contiguous on both
    sides."""
    dst_list = [(a, n) for a, n in dst_list if n]
    src_list = [(a, n) for a, n in src_list if n]
    if sum(n for _, n in dst_list) != sum(n for _, n in src_list):
        raise ValueError("Source and destination scatter lists differ in total length")
    pieces, di, si, doff, soff = [], 0, 0, 0, 0
    while di < len(dst_list):
        (dst, dlen), (src, slen) = dst_list[di], src_list[si]
        n = min(dlen - doff, slen - soff, MAX_SEGMENT)
        pieces.append((src + soff, dst + doff, n))
        doff, soff = doff + n, soff + n
        if doff == dlen:
            di, doff = di + 1, 0
        if soff == slen:
            si, soff = si + 1, 0
    return pieces


class DmaChannel:
    """One DMA channel, driven through its registers.

    Parameters
    ----------
    machine : Machine
    regs : RegisterBank
        The channel's registers (``dma.rdl``).
    desc_base : int
        Physical address of the descriptor ring (64-byte aligned, DMA-able).
    desc_count : int
        Descriptors in the ring.
    irq_line : int or None
        The channel's interrupt line; ``None`` to poll.
    use_descriptors : bool
        Scatter-gather mode (default); ``False`` programs the registers once per segment.
    timeout_cycles : int
        Longest wait for the engine.

    Attributes
    ----------
    mmio_writes : int
        Register writes made so far.
    """
    def __init__(self, machine, regs, *, desc_base, desc_count=64, irq_line=None,
                 use_descriptors=True, timeout_cycles=10_000_000):
        if not isinstance(desc_base, int) or desc_base % DESCRIPTOR_BYTES:
            raise DmaError(errno.EINVAL, f"Descriptor ring base must be {DESCRIPTOR_BYTES}-byte "
                                         f"aligned, not {desc_base!r}")
        if not isinstance(desc_count, int) or desc_count < 2:
            raise ValueError(f"Descriptor ring needs at least 2 descriptors, not {desc_count!r}")
        self.machine = machine
        self.regs = regs
        self.desc_base = desc_base
        self.desc_count = desc_count
        self.irq_line = irq_line
        self.use_descriptors = use_descriptors
        self.timeout_cycles = timeout_cycles
        self.mmio_writes = 0
        self._next_cookie = 1
        self._submitted = []      # submitted, not yet issued
        self._active = []         # issued, in order: (transaction, descriptor addresses left)
        self._in_flight = []      # descriptor addresses issued and not completed, in order
        self._free = list(range(desc_count))
        self._tail = None         # last descriptor given to the engine
        self._hw_completed = 0
        self._configured = False

    # ---- Preparation and submission ----

    def prep_memcpy(self, dst, src, length, *, interrupt=True):
        """Prepare a copy of ``length`` bytes from ``src`` to ``dst``."""
        if not isinstance(length, int) or length <= 0:
            raise DmaError(errno.EINVAL, f"Copy length must be a positive integer, not {length!r}")
        return DmaTransaction(self, _pair_segments([(dst, length)], [(src, length)]), interrupt)

    def prep_sg(self, dst_list, src_list, *, interrupt=True):
        """Prepare a scatter-gather copy between lists of ``(address, length)``."""
        try:
            segments = _pair_segments(list(dst_list), list(src_list))
        except ValueError as error:
            raise DmaError(errno.EINVAL, str(error)) from None
        if not segments:
            raise DmaError(errno.EINVAL, "Scatter-gather transfer of zero bytes")
        return DmaTransaction(self, segments, interrupt)

    def submit(self, tx):
        """Queue ``tx`` for the next :meth:`issue_pending`; returns its cookie."""
        if tx.channel is not self or tx.cookie is not None:
            raise DmaError(errno.EINVAL, "Transaction already submitted or of another channel")
        if self.use_descriptors and len(tx.segments) > self.desc_count - 1:
            raise DmaError(errno.ENOMEM, f"Transaction needs {len(tx.segments)} descriptors, "
                                         f"the ring has {self.desc_count - 1} usable")
        tx.cookie = self._next_cookie
        self._next_cookie += 1
        self._submitted.append(tx)
        return tx.cookie

    # ---- Register access ----

    async def _write(self, name, value=None, **fields):
        self.mmio_writes += 1
        await self.regs.write(name, value, **fields)

    async def _write_addr(self, name, addr):
        await self._write(f"{name}_HI", addr >> 32)
        await self._write(f"{name}_LO", addr & 0xffff_ffff)

    async def configure(self, *, threshold=1, delay=0):
        """Enable the channel's interrupts with coalescing ``threshold`` and ``delay``."""
        await self._write("COALESCE", threshold=threshold, delay=delay)
        await self._write("INTR_EN", done=1, error=1)
        self._configured = True

    def busy(self):
        """Whether transfers were issued to the engine and have not completed yet (a
        submitted transfer never issued with :meth:`issue_pending` does not count: nothing
        will ever complete it)."""
        return bool(self._active)

    # ---- Issue ----

    async def issue_pending(self):
        """Hand every submitted transaction to the engine."""
        if not self._configured:
            await self.configure()
        if not self.use_descriptors:
            while self._submitted:
                tx = self._submitted.pop(0)
                self._active.append([tx, []])
                await self._run_register_mode(tx)
            return
        while self._submitted:
            tx = self._submitted[0]
            if len(tx.segments) > len(self._free):
                await self.wait_step()      # ring full: let completions free descriptors
                continue
            self._submitted.pop(0)
            await self._issue(tx)

    async def _issue(self, tx):
        addrs = [self.desc_base + DESCRIPTOR_BYTES * self._free.pop(0) for _ in tx.segments]
        # Every pointer the engine will follow is checked before anything is written: the
        # engine halts on a misaligned one (MISALIGNED), the driver refuses it first.
        for addr in addrs:
            _check_desc_pointer("Descriptor", addr)
        for index, (addr, (src, dst, length)) in enumerate(zip(addrs, tx.segments)):
            last = index == len(addrs) - 1
            await self.machine.store(addr, pack_descriptor(
                next=0 if last else addrs[index + 1], src=src, dst=dst, length=length,
                irq_on_complete=tx.interrupt and last), cacheable=False)
        tx.descs = addrs
        self._active.append([tx, list(addrs)])
        restart = not self._in_flight
        if not restart:
            await self.machine.store(self._tail, addrs[0].to_bytes(8, "little"), cacheable=False)
        self._in_flight += addrs
        self._tail = addrs[-1]
        if restart:
            await self._write_addr("CURDESC", addrs[0])
        await self._write_addr("TAILDESC", addrs[-1])

    async def _run_register_mode(self, tx):
        for src, dst, length in tx.segments:
            await self._write_addr("SRC", src)
            await self._write_addr("DST", dst)
            await self._write("LEN", length)
            await self._write("CTRL", go=1)
            if self.irq_line is not None:
                await self.machine.wait_irq(self.irq_line, timeout_cycles=self.timeout_cycles)
                await self._write("INTR", done=1, error=1)
            else:
                while await self.regs.read_field("STATUS", "busy"):
                    await self.machine.tick(8)
            if await self._check_error():
                return
        self._hw_completed = await self.regs.read("COMPLETED")
        self._active.pop(0)
        tx.completion.signal()

    # ---- Completion ----

    async def poll(self):
        """Complete the completed transactions; handle a halt. Returns ``True`` if
        anything completed or failed."""
        await self._clear_interrupt()
        if await self._check_error():
            return True
        count = await self.regs.read("COMPLETED")
        progress = (count - self._hw_completed) & 0xffff_ffff
        self._hw_completed = count
        self._retire(progress)
        return progress != 0

    def _retire(self, count):
        for _ in range(count):
            addr = self._in_flight.pop(0)
            self._free.append((addr - self.desc_base) // DESCRIPTOR_BYTES)
            tx, left = self._active[0]
            left.remove(addr)
            if not left:
                self._active.pop(0)
                tx.completion.signal()

    async def _clear_interrupt(self):
        if self.irq_line is not None and self.machine.irq_pending(self.irq_line):
            await self._write("INTR", done=1, error=1)

    async def _check_error(self):
        status = await self.regs.read_fields("STATUS")
        if not status["halted"]:
            return False
        code = ErrorCode(status["err_code"])
        lo, hi = await self.regs.read("ERR_DESC_LO"), await self.regs.read("ERR_DESC_HI")
        desc = hi << 32 | lo
        done = (await self.regs.read("COMPLETED") - self._hw_completed) & 0xffff_ffff
        self._retire(done)
        failed = None
        if self._active:
            if desc:
                failed = next((entry for entry in self._active if desc in entry[0].descs),
                              self._active[0])
            else:
                failed = self._active[0]
        await self._reset()
        if failed is not None:
            self._active.remove(failed)
            err = errno.EINVAL if code in _EINVAL_CODES else errno.EIO
            failed[0].completion.signal(DmaError(
                err, f"DMA transfer failed: {code.name} ({_ERROR_TEXT.get(code, 'error')}) "
                     f"at descriptor {desc:#x}", code=code, desc=desc))
        # The rest of the chain is resubmitted from the start of each transaction.
        requeue = [tx for tx, _ in self._active]
        self._active, self._in_flight = [], []
        self._free = list(range(self.desc_count))
        self._submitted = requeue + self._submitted
        if requeue:
            await self.issue_pending()
        return True

    async def _reset(self):
        await self._write("CTRL", soft_reset=1)
        for _ in range(self.timeout_cycles // 16):
            status = await self.regs.read_fields("STATUS")
            if not status["resetting"]:
                break
            await self.machine.tick(16)
        await self._write("INTR", done=1, error=1)
        self._hw_completed = 0
        self._tail = None

    async def wait_step(self):
        """Make progress once: wait for the interrupt (or a while), then :meth:`poll`."""
        if self.irq_line is not None and all(tx.interrupt for tx, _ in self._active):
            await self.machine.wait_irq(self.irq_line, timeout_cycles=self.timeout_cycles)
        else:
            await self.machine.tick(64)
        await self.poll()

    async def wait(self, tx):
        """Wait for ``tx`` to complete; raises its :class:`DmaError` if it failed."""
        await tx.completion.wait()

    async def residue(self, tx):
        """Bytes of ``tx`` not yet moved (descriptor granularity)."""
        if tx.completion.signaled:
            return 0 if tx.completion.error is None else tx.length
        if not tx.descs:
            return tx.length
        moved = 0
        for addr in tx.descs:
            desc = unpack_descriptor(await self.machine.load(addr, DESCRIPTOR_BYTES,
                                                             cacheable=False))
            if desc["completed"]:
                moved += desc["bytes_moved"]
        return tx.length - moved

    async def terminate_all(self):
        """Stop the channel and fail every transaction not completed with ECANCELED."""
        await self.poll()
        await self._reset()
        cancelled = [tx for tx, _ in self._active] + self._submitted
        self._active, self._in_flight, self._submitted = [], [], []
        self._free = list(range(self.desc_count))
        for tx in cancelled:
            tx.completion.signal(DmaError(errno.ECANCELED, "DMA transfer terminated"))
