"""The transaction trace: its records, how the backends' raw events become records, and the
one writer and reader of its file format (JSON Lines).

A :class:`Trace` holds the :class:`Run` of each simulation of a traced command (``demo`` runs
one, ``bench share`` two). The built-in simulator's monitor hands a run raw events, each
``(cycle, index, bits)`` as the rising edge of ``cycle`` sampled it: a handshake on probe
channel ``index`` with its packed payload ``bits``, or, for ``index`` past the channels, a
change of level probe ``index - len(channels)`` to ``bits``
(:mod:`~dmabuf_soc.sim.trace.probes`). Of a data channel (R, W) only the first and the last
beat of each burst are events (:class:`BeatFilter`). :meth:`Run.records` pairs them into
transactions. The compiled models' monitor (``sw/machine/compiled/driver.cc``) pairs the same
events itself, as the simulation runs, and hands the run finished transactions and level
changes instead: rows of numbers (:data:`ROW_COLUMNS`), which :meth:`Run.records` only names.

Every record is a JSON object with a ``kind`` and the ``run`` it belongs to; cycles are the
SoC's cycle counter (:attr:`~dmabuf_soc.sw.machine.base.Machine.cycle`) at the edge that
sampled the event. The kinds, and their other keys:

``run``
    ``backend``, ``bytes_per_beat``, ``ports`` (the AXI4 ports, in lane order), ``start``
    and ``end`` (cycles), ``title``.
``axi``
    An AXI4 transaction on ``port``: ``dir`` (``read`` or ``write``), ``id``, ``addr``,
    ``beats``, ``bytes``, ``resp`` (the worst of the first and last beats, or the B), ``start`` (address
    handshake), ``first`` and ``last`` (data beats), and for writes ``end`` (B).
``mmio``
    A register access on the AXI4-Lite port: ``dir``, ``addr``, ``resp``, ``start``,
    ``end``.
``cpu``
    A CPU load or store through the machine (all its words): ``dir``, ``addr``, ``bytes``,
    ``cacheable``, ``start``, ``end``.
``level``
    ``name`` (``irq``, ``smmu_walk``, ``smmu_fault``, ``cache_maintenance``) took ``value`` at
    ``cycle``.
``span``
    A driver span: ``layer``, ``name``, ``start``, ``end``.
``mark``
    A driver event: ``layer``, ``name``, ``cycle``.
"""

import json
from collections import defaultdict, deque

import numpy as np

from ...hw.bus.axi import Resp

__all__ = ["Trace", "Run", "BeatFilter", "write_jsonl", "read_jsonl", "FORMAT_VERSION",
           "ROW_COLUMNS", "ROW_AXI", "ROW_LITE", "ROW_LEVEL", "CHANNEL_KINDS"]

#: The version of the record format, in the first line of a trace file.
FORMAT_VERSION = 1

_RESP_NAMES = {resp.value: resp.name for resp in Resp}

#: The columns of a row of the compiled monitor (``Column`` in ``driver.cc``): the row's kind
#: (:data:`ROW_AXI`, :data:`ROW_LITE`, :data:`ROW_LEVEL`); its source (the port's index in
#: :attr:`Run.probe_ports`, or the level's in :attr:`Run.levels`); the direction (0 read, 1
#: write); then the transaction's ID, address, beats, response and cycles. A level change has
#: its cycle in ``start`` and its value in ``addr``.
ROW_COLUMNS = ("kind", "source", "dir", "id", "addr", "beats", "resp", "start", "first",
               "last", "end")
#: The kinds of row: an AXI4 transaction, an AXI4-Lite register access, a level change.
ROW_AXI, ROW_LITE, ROW_LEVEL = range(3)
#: The channels' numbers in the compiled monitor's table (``ChannelKind`` in ``driver.cc``).
CHANNEL_KINDS = ("ar", "aw", "w", "r", "b")


class BeatFilter:
    """Which beats of a data channel become events: the first and the last of each burst, per
    ID (bursts of different IDs may interleave on R).

    Parameters
    ----------
    channels : list of Channel
        The probe channels; the filter is for those with a ``last`` field.
    """
    def __init__(self, channels):
        self._in_burst = [set() if "last" in dict(channel.fields) else None
                          for channel in channels]
        self._decoders = channels

    def keep(self, index, bits):
        """Whether the handshake of ``bits`` on channel ``index`` is an event (the filter
        follows the bursts, so call it for every handshake, in order)."""
        in_burst = self._in_burst[index]
        if in_burst is None:
            return True
        fields = self._decoders[index].decode(bits)
        key = fields.get("id", 0)
        first = key not in in_burst
        if fields["last"]:
            in_burst.discard(key)
            return True
        in_burst.add(key)
        return first


class Run:
    """What one simulation of a traced command recorded.

    Made by :meth:`Trace.begin_run`, which a backend calls when it starts a traced simulation.

    Parameters
    ----------
    index : int
        The run's place in its trace.
    backend : str
    channels : list of Channel
    levels : list of Level
    bytes_per_beat : int
    title : str

    Attributes
    ----------
    events : list of tuple
        The raw ``(cycle, index, bits)`` events of the built-in simulator's monitor.
    rows : list of numpy.ndarray
        The compiled monitor's rows (:data:`ROW_COLUMNS`), as it handed them over.
    monitored : int
        How many events the compiled monitor paired itself.
    driver : list of dict
        The records of the driver's own spans and marks, and of the machine's CPU accesses.
    start, end : int
        The first and the last cycle of the run.
    """
    def __init__(self, index, backend, channels, levels, *, bytes_per_beat, title=""):
        self.index = index
        self.backend = backend
        self.channels = channels
        self.levels = levels
        self.bytes_per_beat = bytes_per_beat
        self.title = title
        self.events = []
        self.rows = []
        self.monitored = 0
        self.driver = []
        self.start = 0
        self.end = 0
        self.cycle = lambda: 0
        self._transactions = None
        self._records = None

    @property
    def ports(self):
        """The AXI4 ports of the trace, in probe order."""
        seen = []
        for channel in self.channels:
            if channel.protocol == "axi4" and channel.port not in seen:
                seen.append(channel.port)
        return seen

    @property
    def probe_ports(self):
        """Every port of the probe channels (the AXI4-Lite one too), in probe order."""
        return list(dict.fromkeys(channel.port for channel in self.channels))

    @property
    def event_count(self):
        """How many events (handshakes and level changes) the monitor kept."""
        return len(self.events) + self.monitored

    def add_rows(self, rows):
        """Add rows of the compiled monitor (an array of :data:`ROW_COLUMNS` columns)."""
        if len(rows):
            self.rows.append(rows)
            self._transactions = self._records = None

    def add(self, record):
        """Add a driver record (``span``, ``mark`` or ``cpu``)."""
        record["run"] = self.index
        self.driver.append(record)
        self._records = None

    def span(self, layer, name, start, end, **extra):
        """Add a driver span: ``name`` of ``layer`` from cycle ``start`` to ``end``."""
        self.add({"kind": "span", "layer": layer, "name": name, "start": start, "end": end,
                  **extra})

    def mark(self, layer, name, cycle, **extra):
        """Add a driver mark: ``name`` of ``layer`` at ``cycle``."""
        self.add({"kind": "mark", "layer": layer, "name": name, "cycle": cycle, **extra})

    def cpu(self, direction, addr, size, cacheable, start, end):
        """Add a CPU access of ``size`` bytes at ``addr`` made through the machine from
        cycle ``start`` to ``end``; one that continues the previous (same direction and
        cacheability, the next address, begun at most two cycles after) extends it."""
        last = self.driver[-1] if self.driver else None
        if (last is not None and last["kind"] == "cpu" and last["dir"] == direction
                and last["cacheable"] == cacheable and last["addr"] + last["bytes"] == addr
                and start - last["end"] <= 2):
            last["bytes"] += size
            last["end"] = end
        else:
            self.add({"kind": "cpu", "dir": direction, "addr": addr, "bytes": size,
                      "cacheable": cacheable, "start": start, "end": end})
        self._records = None

    def header(self):
        """The run's ``run`` record."""
        return {"kind": "run", "run": self.index, "backend": self.backend,
                "bytes_per_beat": self.bytes_per_beat, "ports": self.ports,
                "start": self.start, "end": self.end, "title": self.title}

    def transactions(self):
        """The run's transactions and level changes as rows of numbers (:data:`ROW_COLUMNS`,
        a ``numpy`` array), in the order of their start (of those of the same start, in the
        order they completed): the compiled monitor's rows, or the built-in simulator's events
        paired here (:func:`_pair`)."""
        if self._transactions is None:
            parts = [*self.rows]
            if self.events:
                parts.append(np.array(_pair(self), dtype=np.uint64).reshape(-1, len(ROW_COLUMNS)))
            rows = (np.concatenate(parts) if len(parts) > 1 else parts[0] if parts
                    else np.zeros((0, len(ROW_COLUMNS)), dtype=np.uint64))
            self._transactions = rows[np.argsort(rows[:, _START], kind="stable")]
        return self._transactions

    def records(self):
        """Every record of the run: its header, then the hardware's (:meth:`transactions`)
        and the driver's, each list in the order of its start."""
        if self._records is None:
            self._records = [self.header(), *_name_rows(self, self.transactions()),
                             *self.driver]
        return self._records


_START = ROW_COLUMNS.index("start")


def _resp_name(value):
    return _RESP_NAMES.get(value, str(value))


def _name_rows(run, rows):
    """The ``axi``, ``mmio`` and ``level`` records of ``rows`` (:data:`ROW_COLUMNS`) of
    ``run``, in their order."""
    index, bpb = run.index, run.bytes_per_beat
    ports, levels = run.probe_ports, [level.name for level in run.levels]
    resps = [_resp_name(value) for value in range(max(_RESP_NAMES) + 1)]
    records = []
    append = records.append
    for kind, source, write, id_, addr, beats, resp, start, first, last, end \
            in zip(*rows.T.tolist()):
        if kind == ROW_AXI:
            if write:
                append({"kind": "axi", "run": index, "port": ports[source], "dir": "write",
                        "id": id_, "addr": addr, "beats": beats, "bytes": beats * bpb,
                        "resp": resps[resp], "start": start, "first": first, "last": last,
                        "end": end})
            else:
                append({"kind": "axi", "run": index, "port": ports[source], "dir": "read",
                        "id": id_, "addr": addr, "beats": beats, "bytes": beats * bpb,
                        "resp": resps[resp], "start": start, "first": first, "last": last})
        elif kind == ROW_LITE:
            append({"kind": "mmio", "run": index, "port": ports[source],
                    "dir": "write" if write else "read", "addr": addr, "resp": resps[resp],
                    "start": start, "end": end})
        else:
            append({"kind": "level", "run": index, "name": levels[source], "cycle": start,
                    "value": addr})
    return records


def _pair(run):
    """The rows (:data:`ROW_COLUMNS`, as tuples) of a run's raw events, in the order the
    transactions completed: the pairing the compiled monitor does as it records
    (``Pairing`` in ``sw/machine/compiled/driver.cc``)."""
    rows = []
    n = len(run.channels)
    port_numbers = {port: number for number, port in enumerate(run.probe_ports)}
    reads = defaultdict(deque)        # (port, id) → ARs waiting for their data
    reading = {}                      # (port, id) → the AR whose burst is under way
    writes = defaultdict(deque)       # port → AWs waiting for their W burst
    w_burst = {}                      # port → the first beat cycle of the W burst under way
    w_done = defaultdict(deque)       # port → W bursts (first, last) waiting for their AW
    responses = defaultdict(deque)    # (port, id) → AWs waiting for their B
    lite = defaultdict(deque)         # (port, dir) → address handshakes of the AXI4-Lite port
    # A transaction under way: [port, dir, id, addr, beats, resp, start, first, last].
    first, last = 7, 8

    def pair_writes(port):
        while writes[port] and w_done[port]:
            transaction = writes[port].popleft()
            transaction[first], transaction[last] = w_done[port].popleft()

    for cycle, index, bits in run.events:
        if index >= n:
            rows.append((ROW_LEVEL, index - n, 0, 0, bits, 0, 0, cycle, 0, 0, 0))
            continue
        channel = run.channels[index]
        port, kind = channel.port, channel.channel
        number = port_numbers[port]
        fields = channel.decode(bits)
        if channel.protocol == "axi4lite":
            if kind in ("ar", "aw"):
                lite[port, kind].append((cycle, fields["addr"]))
            elif kind in ("r", "b"):
                queue = lite[port, "ar" if kind == "r" else "aw"]
                if queue:
                    start, addr = queue.popleft()
                    rows.append((ROW_LITE, number, int(kind == "b"), 0, addr, 0,
                                 fields["resp"], start, 0, 0, cycle))
            continue
        if kind in ("ar", "aw"):
            transaction = [number, int(kind == "aw"), fields["id"], fields["addr"],
                           fields["len"] + 1, 0, cycle, None, None]
            if kind == "ar":
                reads[port, fields["id"]].append(transaction)
            else:
                writes[port].append(transaction)
                responses[port, fields["id"]].append(transaction)
                pair_writes(port)
        elif kind == "r":
            key = port, fields["id"]
            transaction = reading.get(key)
            if transaction is None:
                if not reads[key]:
                    continue                # data of a burst begun before the trace
                transaction = reading[key] = reads[key].popleft()
                transaction[first] = cycle
            transaction[5] = max(transaction[5], fields["resp"])
            if fields["last"]:
                transaction[last] = cycle
                del reading[key]
                rows.append((ROW_AXI, *transaction, 0))
        elif kind == "w":
            if port not in w_burst:
                w_burst[port] = cycle
            if fields["last"]:
                w_done[port].append((w_burst.pop(port), cycle))
                pair_writes(port)
        elif kind == "b":
            queue = responses[port, fields["id"]]
            if queue:
                transaction = queue.popleft()
                transaction[5] = fields["resp"]
                if transaction[first] is None:     # no W seen (begun before the trace)
                    transaction[first] = transaction[last] = transaction[6]
                    writes[port] = deque(waiting for waiting in writes[port]
                                         if waiting is not transaction)
                rows.append((ROW_AXI, *transaction, cycle))
    return rows


class Trace:
    """The trace of a command: a :class:`Run` per simulation.

    Attributes
    ----------
    runs : list of Run
    """
    def __init__(self):
        self.runs = []

    def begin_run(self, backend, channels, levels, *, bytes_per_beat, title=""):
        """A new :class:`Run`, for a backend starting a traced simulation."""
        if not isinstance(bytes_per_beat, int) or bytes_per_beat <= 0:
            raise ValueError(f"Bytes per beat must be a positive integer, "
                             f"not {bytes_per_beat!r}")
        run = Run(len(self.runs), backend, channels, levels, bytes_per_beat=bytes_per_beat,
                  title=title)
        self.runs.append(run)
        return run

    def records(self):
        """Every record of every run, run by run."""
        return [record for run in self.runs for record in run.records()]


def write_jsonl(records, path):
    """Write ``records`` (dicts) to ``path``, one JSON object a line, after a first line that
    names the format: ``{"kind": "trace", "format": "dmabuf-soc", "version": ...}``."""
    with open(path, "w") as file:
        file.write(json.dumps({"kind": "trace", "format": "dmabuf-soc",
                               "version": FORMAT_VERSION}) + "\n")
        for record in records:
            file.write(json.dumps(record, separators=(",", ":")) + "\n")


def read_jsonl(path):
    """The records of a trace file written by :func:`write_jsonl`; :exc:`ValueError` if it is
    not one."""
    with open(path) as file:
        first = file.readline()
        try:
            header = json.loads(first)
        except json.JSONDecodeError:
            header = None
        if not isinstance(header, dict) or header.get("format") != "dmabuf-soc":
            raise ValueError(f"{path} is not a dmabuf-soc trace file")
        if header.get("version") != FORMAT_VERSION:
            raise ValueError(f"{path} is a trace of format version {header.get('version')!r}, "
                             f"this reads version {FORMAT_VERSION}")
        return [json.loads(line) for line in file if line.strip()]
