"""Byte transports of the host link: a serial port (pyserial), or an in-process pipe."""

import queue
import time

__all__ = ["Transport", "SerialTransport", "PipeTransport", "parse_port"]

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
            raise OSError(f"Cannot open the serial port {port}: {error}") from None

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
