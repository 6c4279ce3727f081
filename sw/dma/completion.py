"""The completion of a DMA transfer (Linux's ``struct completion`` with a result): done
once, with or without an error. Not a ``dma_fence``: that is
:mod:`dmabuf_soc.sw.dmabuf.fence`."""

__all__ = ["Completion"]


class Completion:
    """Signalled once when the work it stands for is done (or failed).

    Parameters
    ----------
    waiter : async callable or None
        Awaited repeatedly by :meth:`wait` until the completion is signalled: whatever makes
        progress (the DMA driver polls its channel or waits for its interrupt).

    Attributes
    ----------
    error : Exception or None
        Why the work failed, once signalled.
    """
    def __init__(self, waiter=None):
        self._waiter = waiter
        self._signaled = False
        self._callbacks = []
        self.error = None

    @property
    def signaled(self):
        return self._signaled

    def signal(self, error=None):
        """Mark the completion done (failed if ``error``) and run its callbacks, once."""
        if self._signaled:
            raise RuntimeError("Completion already signalled")
        self._signaled = True
        self.error = error
        callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            callback(self)

    def add_callback(self, callback):
        """Call ``callback(completion)`` when signalled (at once if already)."""
        if self._signaled:
            callback(self)
        else:
            self._callbacks.append(callback)

    async def wait(self):
        """Wait until signalled; raise :attr:`error` if the work failed."""
        while not self._signaled:
            if self._waiter is None:
                raise RuntimeError("Completion has no way to make progress")
            await self._waiter()
        if self.error is not None:
            raise self.error

    def __repr__(self):
        state = "pending" if not self._signaled else ("error" if self.error else "signaled")
        return f"<Completion {state}>"
