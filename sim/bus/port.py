"""What every bus-functional model of a port shares: payloads as raw bits, one clocked
process per model, random gaps and injected error responses."""

from amaranth.hdl import Value

from ...hw.bus.axi import Resp
from ...hw.payload import PayloadCodec

__all__ = ["channel_signals", "PortModel", "Gap", "error_response"]


def channel_signals(stream):
    """``(valid, ready, raw payload)`` signals of a stream interface, whatever its flow."""
    return stream.valid, stream.ready, Value.cast(stream.payload)


class PortModel:
    """A model clocked by one simulator process that watches or drives all five channels of
    ``port``; ``_codecs`` packs and unpacks each channel's payload."""
    _channels = ("aw", "w", "b", "ar", "r")

    def __init__(self, port):
        self.port = port
        self._codecs = {channel: PayloadCodec(getattr(port, channel).payload.shape())
                        for channel in self._channels}

    def add_to(self, sim):
        """Register the model's process with the simulator ``sim``."""
        sim.add_process(self._process)

    def _signals(self):
        """``(valid, ready, raw payload)`` of every channel, in ``_channels`` order."""
        return [signal for channel in self._channels
                for signal in channel_signals(getattr(self.port, channel))]


class Gap:
    """Random idle cycles: ``hold()`` is true on a fraction ``probability`` of cycles."""
    def __init__(self, rng, probability):
        if not 0 <= probability < 1:
            raise ValueError(f"Gap probability must be in [0, 1), not {probability!r}")
        self._rng = rng
        self._probability = probability

    def hold(self):
        return self._probability and self._rng.random() < self._probability


def error_response(error, write, addr):
    """The response to an access at ``addr``: what ``error(write, addr)`` returns, OKAY if
    it returns ``None`` or there is no ``error``."""
    resp = error(write, addr) if error is not None else None
    return Resp.OKAY if resp is None else Resp(resp)
