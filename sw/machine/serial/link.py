"""The host's end of the host link: frames, sequence numbers, retries and resynchronisation
(docs/host-link.md)."""

import time

from ....hw.board import protocol
from ....hw.board.protocol import ARGUMENTS, RESULTS, Command

__all__ = ["LinkFailure", "Link"]


class LinkFailure(OSError):
    """The board did not answer a command as the protocol says, even after retries.

    Attributes
    ----------
    sent : bytes
        The frame of the command.
    received : bytes
        What came back (every byte of the last attempt).
    executed : bool or None
        Whether the board carried the command out: ``None`` if that is unknown.
    """
    def __init__(self, message, *, sent=b"", received=b"", executed=None):
        super().__init__(message)
        self.sent = sent
        self.received = received
        self.executed = executed


class _Problem(Exception):
    pass


def _fields(spec, payload):
    out, pos = {}, 0
    for name, size in spec:
        out[name] = int.from_bytes(payload[pos:pos + size], "little")
        pos += size
    return out


class Link:
    """Commands to the board's bridge, one at a time, each answered exactly once.

    A command whose reply does not come within ``timeout`` seconds (plus the time of its
    wait), or comes corrupted, is sent again with the same sequence number after a
    resynchronisation (bytes that end any partial frame, then silence): the bridge carries
    a command out once and answers a repeat with the reply it gave. After ``retries``
    repeats :class:`LinkFailure` says what was sent and what came back.

    Parameters
    ----------
    transport : Transport
    timeout : float
        Seconds to wait for a reply.
    retries : int
        Repeats of a command before giving up.
    """
    def __init__(self, transport, *, timeout=1.0, retries=4):
        if not isinstance(timeout, (int, float)) or timeout <= 0:
            raise ValueError(f"Timeout must be a positive number of seconds, not {timeout!r}")
        if not isinstance(retries, int) or retries < 0:
            raise ValueError(f"Retries must be a non-negative integer, not {retries!r}")
        self.transport = transport
        self.timeout = timeout
        self.retries = retries
        self._seq = int(time.monotonic_ns()) & 0xFF
        self._buffer = bytearray()
        self.notifications = []
        #: Counts of what went wrong and was recovered from.
        self.recovered = {"timeouts": 0, "bad_frames": 0, "error_replies": 0,
                          "stale_replies": 0}
        self._received = bytearray()

    def request(self, command, extra_seconds=0.0, **arguments):
        """Carry out ``command`` with its ``arguments`` (:data:`~protocol.ARGUMENTS`); returns
        the reply's fields (:data:`~protocol.RESULTS`)."""
        command = Command(command)
        payload = b""
        for name, size in ARGUMENTS[command]:
            value = arguments.pop(name)
            if not isinstance(value, int) or not 0 <= value < 1 << 8 * size:
                raise ValueError(f"{command.name} {name} must be an integer from 0 to "
                                 f"{(1 << 8 * size) - 1:#x}, not {value!r}")
            payload += value.to_bytes(size, "little")
        if arguments:
            raise TypeError(f"{command.name} takes no {', '.join(arguments)}")
        self._seq = (self._seq + 1) & 0xFF
        sent = protocol.frame(self._seq, command, payload)
        problems = []
        for attempt in range(self.retries + 1):
            if attempt:
                self.resync()
            self._received = bytearray()
            self.transport.write(sent)
            try:
                return self._await(self._seq, command, self.timeout + extra_seconds)
            except _Problem as problem:
                problems.append(str(problem))
        raise LinkFailure(
            f"{command.name} got no good reply in {self.retries + 1} attempts over "
            f"{self.transport.name} ({'; '.join(problems)}); sent {sent.hex(' ')}, last "
            f"received {bytes(self._received).hex(' ') or 'nothing'}; whether the board "
            f"carried it out is unknown", sent=sent, received=bytes(self._received))

    def resync(self):
        """End any partial frame at the bridge and drop what is in flight."""
        self.transport.write(protocol.flush_bytes())
        while True:
            data = self.transport.read(256, 0.05)
            if not data:
                break
            self._buffer += data
        self._scan_notifications()
        self._buffer.clear()

    def _scan_notifications(self):
        while True:
            try:
                got = self._frame(time.monotonic())
            except _Problem:
                continue
            if got is None:
                return
            seq, code, payload = got
            if code == protocol.NOTIFY:
                self.notifications.append(_fields(_NOTIFY, payload))

    def _fill(self, n, deadline):
        while len(self._buffer) < n:
            data = self.transport.read(n - len(self._buffer), deadline - time.monotonic())
            if not data:
                return False
            self._buffer += data
            self._received += data
        return True

    def _frame(self, deadline):
        """The next ``(seq, code, payload)``; ``None`` at the deadline; :class:`_Problem` for
        a corrupt frame (its bytes are dropped)."""
        while True:
            if not self._fill(1, deadline):
                return None
            if self._buffer[0] == protocol.SYNC:
                break
            del self._buffer[0]
        if not self._fill(4, deadline):
            return None
        length = self._buffer[3]
        if length > protocol.MAX_PAYLOAD:
            del self._buffer[0]
            self.recovered["bad_frames"] += 1
            raise _Problem(f"a frame of length {length}")
        if not self._fill(6 + length, deadline):
            return None
        raw = bytes(self._buffer[:6 + length])
        if protocol.crc16(raw[1:4 + length]) != int.from_bytes(raw[4 + length:], "big"):
            del self._buffer[0]
            self.recovered["bad_frames"] += 1
            raise _Problem(f"a frame with a bad checksum ({raw.hex(' ')})")
        del self._buffer[:6 + length]
        return raw[1], raw[2], raw[4:4 + length]

    def _await(self, seq, command, seconds):
        deadline = time.monotonic() + seconds
        while True:
            got = self._frame(deadline)
            if got is None:
                self.recovered["timeouts"] += 1
                raise _Problem(f"no reply within {seconds:.3g} s")
            got_seq, code, payload = got
            if code == protocol.NOTIFY and len(payload) == protocol.NOTIFY_LENGTH:
                self.notifications.append(_fields(_NOTIFY, payload))
            elif got_seq != seq:
                self.recovered["stale_replies"] += 1
            elif code == protocol.ERROR and len(payload) == 2:
                self.recovered["error_replies"] += 1
                reason = protocol.LinkError(payload[0]) if payload[0] in \
                    set(protocol.LinkError) else payload[0]
                raise _Problem(f"the bridge answered {getattr(reason, 'name', reason)}")
            elif code == command | protocol.REPLY and \
                    len(payload) == sum(size for _, size in RESULTS[command]):
                return _fields(RESULTS[command], payload)
            else:
                self.recovered["stale_replies"] += 1

    def wait_notification(self, seconds):
        """Wait up to ``seconds`` for a notification; returns the notifications so far (and
        forgets them)."""
        deadline = time.monotonic() + seconds
        while not self.notifications and time.monotonic() < deadline:
            try:
                got = self._frame(deadline)
            except _Problem:
                continue
            if got is None:
                break
            _, code, payload = got
            if code == protocol.NOTIFY and len(payload) == protocol.NOTIFY_LENGTH:
                self.notifications.append(_fields(_NOTIFY, payload))
        notes, self.notifications = self.notifications, []
        return notes


_NOTIFY = (("lines", 1), ("rising", 1), ("cycle", 8))
