"""Byte transports of the host link: a serial port (pyserial), or an in-process pipe."""

import queue
import time

from .link import LinkFailure

__all__ = ["Transport", "SerialTransport", "PipeTransport", "FaultyTransport", "parse_port"]

#: The baud rate of a board build (:data:`dmabuf_soc.hw.board.ulx3s.BAUD`).
DEFAULT_BAUD = 1_000_000


def parse_port(text):
    """``(port, baud)`` of ``"PORT[@BAUD]"`` (``"/dev/ttyUSB0@3000000"``); :exc:`ValueError`
    says what is wrong."""
    if not isinstance(text, str) or not text:
        raise ValueError(f"A serial port must be named as PORT[@BAUD], not {text!r}")
    port, at, baud = text.rpartition("@") if "@" in text else (text, "", "")
    if not at:
        return text, DEFAULT_BAUD
    if not port or not baud.isdigit() or not 300 <= int(baud) <= 12_000_000:
        raise ValueError(f"A serial port must be named as PORT[@BAUD] with BAUD from 300 to "
                         f"12000000, not {text!r}")
    return port, int(baud)


class Transport:
    """Bytes to and from the board. :meth:`read` returns what arrives before ``timeout``
    seconds pass (perhaps nothing); :meth:`write` sends all it is given."""

    name = "transport"

    def write(self, data):
        raise NotImplementedError

    def read(self, n, timeout):
        raise NotImplementedError

    def close(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


class SerialTransport(Transport):
    """A serial port, through pyserial (the ``serial`` extra).

    Parameters
    ----------
    port : str
        The device (``/dev/ttyUSB0``, ``COM3``) or a pyserial URL.
    baud : int
        The board's baud rate.
    """
    def __init__(self, port, baud=DEFAULT_BAUD):
        try:
            import serial
        except ImportError:
            raise ImportError("The serial backend needs pyserial: pip install "
                              "'dmabuf-soc[serial]'") from None
        self.name = f"{port}@{baud}"
        try:
            self._port = serial.serial_for_url(port, baudrate=baud, timeout=0,
                                               write_timeout=5)
        except (serial.SerialException, ValueError) as error:
            raise LinkFailure(f"Cannot open the serial port {port}: {error}") from None

    def write(self, data):
        self._port.write(bytes(data))
        self._port.flush()

    def read(self, n, timeout):
        self._port.timeout = max(timeout, 0)
        return bytes(self._port.read(n))

    def close(self):
        self._port.close()


class PipeTransport(Transport):
    """An in-process byte pipe: the host's end of two queues whose other ends a simulation
    serves (:attr:`to_board` it takes bytes from, :attr:`to_host` it puts bytes into)."""

    name = "pipe"

    def __init__(self):
        self.to_board = queue.SimpleQueue()
        self.to_host = queue.SimpleQueue()
        self._pending = bytearray()

    def write(self, data):
        for byte in bytes(data):
            self.to_board.put(byte)

    def read(self, n, timeout):
        deadline = time.monotonic() + max(timeout, 0)
        while len(self._pending) < n:
            try:
                self._pending.append(self.to_host.get(
                    timeout=max(deadline - time.monotonic(), 0) if not self._pending else 0))
            except queue.Empty:
                if self._pending or time.monotonic() >= deadline:
                    break
        out, self._pending = bytes(self._pending[:n]), self._pending[n:]
        return out


class FaultyTransport(Transport):
    """A transport that damages the bytes of another, for testing the link's recovery: each
    byte either way is dropped with probability ``drop``, has a bit flipped with probability
    ``corrupt``, or is held back ``delay_seconds`` with probability ``delay``.

    Parameters
    ----------
    inner : Transport
    seed : int
        Seed of the faults' random choices.
    """
    def __init__(self, inner, *, drop=0.0, corrupt=0.0, delay=0.0, delay_seconds=0.3, seed=0):
        import random
        for name, value in (("drop", drop), ("corrupt", corrupt), ("delay", delay)):
            if not isinstance(value, (int, float)) or not 0 <= value <= 1:
                raise ValueError(f"{name} must be a probability from 0 to 1, not {value!r}")
        self.inner = inner
        self.name = f"{inner.name} (with faults)"
        self._rng = random.Random(seed)
        self._drop, self._corrupt, self._delay = drop, corrupt, delay
        self._delay_seconds = delay_seconds
        self._held = []             # (release time, bytes) towards the host
        self.faults = {"dropped": 0, "corrupted": 0, "delayed": 0}

    def _damage(self, data):
        out = bytearray()
        for byte in data:
            roll = self._rng.random()
            if roll < self._drop:
                self.faults["dropped"] += 1
            elif roll < self._drop + self._corrupt:
                self.faults["corrupted"] += 1
                out.append(byte ^ 1 << self._rng.randrange(8))
            else:
                out.append(byte)
        return bytes(out)

    def write(self, data):
        data = self._damage(data)
        if data and self._rng.random() < self._delay:
            self.faults["delayed"] += 1
            time.sleep(self._delay_seconds)
        self.inner.write(data)

    def read(self, n, timeout):
        deadline = time.monotonic() + max(timeout, 0)
        while True:
            now = time.monotonic()
            ready = [item for item in self._held if item[0] <= now]
            if ready:
                self._held.remove(ready[0])
                release, data = ready[0]
                if len(data) > n:
                    self._held.insert(0, (release, data[n:]))
                return data[:n]
            data = self._damage(self.inner.read(n, min(max(deadline - now, 0), 0.02)))
            if data and self._rng.random() < self._delay:
                self.faults["delayed"] += 1
                self._held.append((now + self._delay_seconds, data))
            elif data:
                return data
            if time.monotonic() >= deadline:
                return b""

    def close(self):
        self.inner.close()
