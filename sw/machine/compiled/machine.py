"""The machine on a compiled model of the SoC (``--backend cxxrtl`` or ``verilator``).

The driver stays in Python; each machine call is one call into the compiled library
(``driver.cc`` on the backend's model), which runs every cycle of the request there: the
AXI4-Lite handshakes of a register access, all the words of a CPU load or store, an IRQ wait,
the ticks of a delay, a backdoor copy. Hardware that works on its own (a DMA transfer, a page
walk, a cache clean) thus runs at compiled speed, and the handshakes are those of
:mod:`..pysim` edge for edge: every backend counts the same cycles for the same scenario.
"""

import ctypes
import functools

import numpy as np
from amaranth.hdl import Const, Shape

from ....hw.bus.axi import Resp
from ....hw.soc import Soc
from ....hw.unused import never_elaborated
from ..access import split_words
from ..base import BusError, Machine, MachineTimeout, check_resp
from ..pysim import CLOCK_PERIOD
from ...trace import spans
from .cache import Build
from .design import RUN_TIME, soc_config

__all__ = ["CompiledMachine", "run_until_complete", "simulate"]

#: The ports ``driver.cc`` drives and reads, in its ``PortIndex`` order, as paths of the SoC's
#: signature.
PORTS = (
    ("clk",), ("cycle",), ("irq",),
    *((("mmio", channel, member) for channel in ("aw", "w", "b", "ar", "r")
       for member in ("valid", "ready", "payload"))),
    *((("cpu", channel, member) for channel in ("req", "rsp")
       for member in ("valid", "ready", "payload"))),
)
#: The payload fields ``driver.cc`` packs and unpacks, in its ``FieldIndex`` order.
FIELDS = (
    ("mmio", "aw", "addr"), ("mmio", "aw", "prot"), ("mmio", "w", "data"),
    ("mmio", "w", "strb"), ("mmio", "b", "resp"), ("mmio", "ar", "addr"),
    ("mmio", "ar", "prot"), ("mmio", "r", "data"), ("mmio", "r", "resp"),
    ("cpu", "req", "addr"), ("cpu", "req", "write"), ("cpu", "req", "data"),
    ("cpu", "req", "strb"), ("cpu", "req", "cacheable"),
    ("cpu", "rsp", "data"), ("cpu", "rsp", "error"),
)
#: Hierarchical name of the DDR model in the SoC top, and of a bank's memory in the model.
DDR_BANK_NAME = "ddr bank_{}"

_u64 = ctypes.c_uint64
_u32 = ctypes.c_uint32
_PROTOTYPES = {
    "machine_create": (ctypes.c_void_p, [ctypes.POINTER(ctypes.c_char_p), _u32,
                                         ctypes.POINTER(_u32),
                                         ctypes.POINTER(ctypes.c_char_p), ctypes.POINTER(_u64),
                                         _u32, _u32, ctypes.c_char_p, ctypes.c_size_t]),
    "machine_destroy": (None, [ctypes.c_void_p]),
    "machine_vcd_open": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_char_p, _u32,
                                        ctypes.c_char_p]),
    "machine_set_input": (None, [ctypes.c_void_p, _u32, ctypes.POINTER(_u32)]),
    "machine_cycle": (_u64, [ctypes.c_void_p]),
    "machine_irq": (ctypes.c_int, [ctypes.c_void_p, _u32]),
    "machine_tick": (None, [ctypes.c_void_p, _u64]),
    "machine_wait_irq": (ctypes.c_int, [ctypes.c_void_p, _u32, _u64]),
    "machine_mmio_read": (_u32, [ctypes.c_void_p, _u64, ctypes.POINTER(_u32)]),
    "machine_mmio_write": (_u32, [ctypes.c_void_p, _u64, _u32]),
    "machine_cpu_access": (ctypes.c_int64, [ctypes.c_void_p, _u32, _u32, _u64,
                                            ctypes.POINTER(_u64), ctypes.POINTER(_u64),
                                            ctypes.c_void_p, _u32]),
    "machine_backdoor": (None, [ctypes.c_void_p, _u32, _u64, ctypes.c_void_p, _u64, _u32]),
    "machine_monitor_open": (ctypes.c_int, [ctypes.c_void_p, _u32, _u32, _u32, _u32,
                                            ctypes.POINTER(_u32), _u32, ctypes.POINTER(_u32)]),
    "machine_monitor_take": (_u64, [ctypes.c_void_p, ctypes.c_void_p]),
    "machine_monitor_events": (_u64, [ctypes.c_void_p]),
    "machine_monitor_feed": (None, [ctypes.c_void_p, ctypes.c_void_p, _u64]),
}


def _load(library):
    lib = ctypes.CDLL(str(library))
    for name, (restype, argtypes) in _PROTOTYPES.items():
        function = getattr(lib, name)
        function.restype, function.argtypes = restype, argtypes
    return lib


def _control_ports(soc):
    """The paths of the DDR model's control ports, which follow :data:`PORTS`: its error
    windows, then its :data:`~.design.RUN_TIME` parameters."""
    return [*(("ddr_ctrl", "windows", str(index))
              for index in range(len(soc.ddr_ctrl.windows))),
            *(("ddr_ctrl", name) for name in RUN_TIME)]


def _port_layout(soc):
    """The debug names of :data:`PORTS` and the DDR model's control ports, and the
    ``(offset, width)`` of :data:`FIELDS`."""
    names = ["__".join(path) for path in (*PORTS, *_control_ports(soc))]
    fields = []
    for *stream_path, name in FIELDS:
        stream = soc
        for step in stream_path:
            stream = getattr(stream, step)
        layout = stream.payload.shape()
        fields += [layout[name].offset, Shape.cast(layout[name].shape).width]
    return names, fields


def _probe_names(soc):
    """The debug names of the members of ``soc``'s ``probe`` port, in the order the monitor
    takes them: the handshakes, each channel's payload, the levels."""
    from ....sim.trace.probes import payload_member
    channels, _ = soc.probes
    return ["probe__handshake",
            *(f"probe__{payload_member(channel)}" for channel in channels if channel.fields),
            "probe__levels"]


@functools.lru_cache(maxsize=8)
def _ports_of(config, probes):
    """The SoC of ``config`` (with the ``probe`` port if ``probes``) whose ports a compiled
    model of it is opened with: never elaborated (the model is the hardware), only read, and
    one per configuration in a process, since making its signatures takes about half a
    second."""
    soc = Soc(config, probes=probes)
    never_elaborated(soc)
    return soc


class CompiledMachine(Machine):
    """:class:`Machine` on a compiled model of the SoC.

    Made by :func:`simulate`; or directly, for a session of several scenarios on one model
    (:meth:`close` it, or use it as a context manager).

    Parameters
    ----------
    backend : str
        ``"cxxrtl"`` or ``"verilator"``: the backend whose ``builder.build`` makes the model
        unless a build is cached.
    config : SocConfig, optional
        Parameters of the SoC (the defaults if omitted).
    vcd : str or path, optional
        Write a VCD waveform of the whole run there (the design's public signals, not the
        memories).
    build : Build, optional
        The model to load instead of the builder's: a library built from ``config`` for
        ``backend`` another way (the profile build of :mod:`..verilator.profile`).
    trace : Trace, optional
        Trace the transactions into a new run of this
        :class:`~dmabuf_soc.sw.trace.record.Trace`: the model is then the build of the SoC
        with the ``probe`` port, which the driver loops sample at every edge.

    Attributes
    ----------
    soc : Soc
        The SoC the model was built from (not simulated itself: its ports and config only;
        one object for every machine of its configuration in the process, to be read only).
    build : Build
        The model's library, its build time and whether it was cached.
    run : Run or None
        The trace's run this machine records, with ``trace``.
    """
    def __init__(self, backend, config=None, *, vcd=None, build=None, trace=None):
        from ..backends import COMPILED, compiled_backend
        if backend not in COMPILED:
            raise ValueError(f"Compiled backend must be one of {', '.join(sorted(COMPILED))}, "
                             f"not {backend!r}")
        config = soc_config(config)
        self._handle = None
        self.run = None
        self.soc = _ports_of(config, trace is not None)
        self.backend = backend
        self.config = config
        if build is None:
            build = compiled_backend(backend).build(config, trace=vcd is not None,
                                                    probes=trace is not None)
        elif not isinstance(build, Build):
            raise TypeError(f"build must be a Build, not {build!r}")
        self.build = build
        self._lib = _load(self.build.library)
        names, fields = _port_layout(self.soc)
        first_probe = len(names)
        if trace is not None:
            names += _probe_names(self.soc)
        banks = config.banks
        error = ctypes.create_string_buffer(512)
        handle = self._lib.machine_create(
            (ctypes.c_char_p * len(names))(*(name.encode() for name in names)), len(names),
            (_u32 * len(fields))(*fields),
            (ctypes.c_char_p * len(banks))(*(DDR_BANK_NAME.format(b.name).encode()
                                             for b in banks)),
            (_u64 * len(banks))(*(b.size // config.bytes_per_beat for b in banks)),
            len(banks), config.data_width, error, len(error))
        if not handle:
            raise RuntimeError(f"The compiled model does not fit the SoC: "
                               f"{error.value.decode()}")
        self._handle = handle
        self._windows = {}          # error window index → its value, as last set
        # The model was built for any value of these: it runs with the config's.
        first = len(PORTS) + len(self.soc.ddr_ctrl.windows)
        for index, name in enumerate(RUN_TIME, start=first):
            self._set_input(index, getattr(config, name), 1)
        if trace is not None:
            self._monitor(trace, first_probe)
        if vcd is not None:
            half_period = round(CLOCK_PERIOD / 2 * 1e9)
            if self._lib.machine_vcd_open(handle, str(vcd).encode(), half_period, b"ns"):
                self.close()
                raise OSError(f"Cannot write the VCD file {vcd}")

    def _monitor(self, trace, first):
        """Start the driver loops' monitor on the ``probe`` port's members (the inputs from
        ``first`` on, in :func:`_probe_names` order) for a new run of ``trace``."""
        from ....sim.trace.probes import probe_port_layout
        from ...trace.record import CHANNEL_KINDS
        channels, levels = self.soc.probes
        self.run = trace.begin_run(self.backend, channels, levels,
                                   bytes_per_beat=self.config.bytes_per_beat)
        ports = self.run.probe_ports
        table, payload_port = [], first + 1
        for channel in channels:
            places, position = {}, 0
            for name, field_width in channel.fields:
                places[name] = (position, field_width)
                position += field_width
            if channel.fields:
                table += [payload_port, position]
                payload_port += 1
            else:
                table += [0xFFFF_FFFF, 0]
            table += [ports.index(channel.port), CHANNEL_KINDS.index(channel.channel),
                      int(channel.protocol == "axi4lite"),
                      *(number for name in ("addr", "len", "id", "resp", "last")
                        for number in places.get(name, (0, 0)))]
        _, level_places, _ = probe_port_layout(channels, levels)
        base = level_places[0][0] if level_places else 0
        levels_table = [number for offset, width in level_places
                        for number in (offset - base, width)]
        if self._lib.machine_monitor_open(self._handle, first, payload_port, len(ports),
                                          len(channels), (_u32 * len(table))(*table),
                                          len(levels),
                                          (_u32 * len(levels_table))(*levels_table)):
            trace.runs.remove(self.run)
            self.run = None
            raise RuntimeError("A probe of the trace is wider than the monitor takes")
        self.run.cycle = lambda: self.cycle
        self.run.start = self.cycle

    def collect(self):
        """Move the monitor's finished transactions and level changes so far into :attr:`run`
        (and set its end cycle)."""
        if self.run is None or not self._handle:
            return
        from ...trace.record import ROW_COLUMNS
        count = self._lib.machine_monitor_take(self._handle, None)
        if count:
            rows = np.empty(count, dtype=np.uint64)
            self._lib.machine_monitor_take(self._handle, rows.ctypes.data)
            self.run.add_rows(rows.reshape(-1, len(ROW_COLUMNS)))
        self.run.monitored = self._lib.machine_monitor_events(self._handle)
        self.run.end = self.cycle

    def close(self):
        """Free the model (and finish the VCD file); a traced run gets its last events."""
        if self._handle:
            self.collect()
            self._lib.machine_destroy(self._handle)
            self._handle = None

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def __del__(self):
        if getattr(self, "_handle", None):
            self.close()

    @property
    def cycle(self):
        return self._lib.machine_cycle(self._handle)

    async def _drive_error_window(self, index, value):
        window = self.soc.ddr_ctrl.windows[index]
        if value is None:
            value = {**self._windows.get(index, {}), "enable": 0}
        self._windows[index] = value
        bits = Const.cast(window.shape().const(value)).value
        self._set_input(len(PORTS) + index, bits, (window.shape().size + 31) // 32)

    def _set_input(self, port, value, chunks):
        """Set input ``port`` (an index into the names given to ``machine_create``) to the
        integer ``value`` of ``chunks`` 32-bit chunks."""
        self._lib.machine_set_input(self._handle, port,
                                    (_u32 * chunks)(*((value >> 32 * i) & 0xFFFF_FFFF
                                                      for i in range(chunks))))

    async def tick(self, n=1):
        if not isinstance(n, int) or n < 0:
            raise ValueError(f"Cycle count must be a non-negative integer, not {n!r}")
        self._lib.machine_tick(self._handle, n)

    async def mmio_read(self, addr):
        self._check_mmio(addr)
        value = _u32()
        resp = self._lib.machine_mmio_read(self._handle, addr, ctypes.byref(value))
        check_resp(Resp(resp), "MMIO read", addr)
        return value.value

    async def mmio_write(self, addr, value):
        self._check_mmio(addr)
        if not isinstance(value, int) or not 0 <= value < 1 << 32:
            raise ValueError(f"MMIO value must be a 32-bit unsigned integer, not {value!r}")
        check_resp(Resp(self._lib.machine_mmio_write(self._handle, addr, value)), "MMIO write",
                    addr)

    def _cpu_access(self, addr, size, data, *, write, cacheable):
        """All the port words of an access in one call; returns the words' bytes."""
        word_bytes = self.config.bytes_per_beat
        words = list(split_words(addr, size, word_bytes))
        addrs = (_u64 * len(words))(*(word_addr for word_addr, _, _ in words))
        strbs = (_u64 * len(words))(*(((1 << length) - 1) << offset
                                      for _, offset, length in words))
        buffer = bytearray(len(words) * word_bytes)
        if write:
            pos = 0
            for index, (_, offset, length) in enumerate(words):
                start = index * word_bytes + offset
                buffer[start:start + length] = data[pos:pos + length]
                pos += length
        buffer = ctypes.create_string_buffer(bytes(buffer), len(buffer))
        failed = self._lib.machine_cpu_access(self._handle, int(write), int(bool(cacheable)),
                                              len(words), addrs, strbs,
                                              ctypes.addressof(buffer), word_bytes)
        if failed >= 0:
            raise BusError(f"CPU {'store' if write else 'load'} at {words[failed][0]:#x} was "
                           f"answered with a bus error")
        return words, buffer.raw

    async def load(self, addr, size, *, cacheable=True):
        self._check_range(addr, size)
        run = spans.current_run()
        start = self.cycle if run is not None else 0
        words, raw = self._cpu_access(addr, size, None, write=False, cacheable=cacheable)
        if run is not None:
            run.cpu("load", addr, size, bool(cacheable), start, self.cycle)
        word_bytes = self.config.bytes_per_beat
        return b"".join(raw[index * word_bytes + offset:index * word_bytes + offset + length]
                        for index, (_, offset, length) in enumerate(words))

    async def store(self, addr, data, *, cacheable=True):
        data = bytes(data)
        self._check_range(addr, len(data))
        run = spans.current_run()
        start = self.cycle if run is not None else 0
        self._cpu_access(addr, len(data), data, write=True, cacheable=cacheable)
        if run is not None:
            run.cpu("store", addr, len(data), bool(cacheable), start, self.cycle)

    def irq_pending(self, line):
        self._check_irq_line(line)
        return bool(self._lib.machine_irq(self._handle, line))

    async def wait_irq(self, line, *, timeout_cycles):
        self._check_irq_line(line)
        if not isinstance(timeout_cycles, int) or timeout_cycles < 0:
            raise ValueError(f"Timeout must be a non-negative number of cycles, "
                             f"not {timeout_cycles!r}")
        if not self._lib.machine_wait_irq(self._handle, line, timeout_cycles):
            raise MachineTimeout(f"IRQ {line} not raised within {timeout_cycles} cycles "
                                 f"(cycle {self.cycle})")

    def _bank_pieces(self, addr, n):
        """``(bank index, offset in bank, offset in access, length)`` of each bank a byte range
        touches; :exc:`ValueError` if any byte lies in no bank."""
        if not isinstance(addr, int) or addr < 0:
            raise ValueError(f"Address must be a non-negative integer, not {addr!r}")
        if not isinstance(n, int) or n < 0:
            raise ValueError(f"Length must be a non-negative integer, not {n!r}")
        pieces, pos, end = [], addr, addr + n
        while pos < end:
            bank = self.config.bank_at(pos)
            if bank is None:
                raise ValueError(f"Address {pos:#x} of the range {addr:#x}+{n:#x} lies in no "
                                 f"DDR bank")
            length = min(end, bank.end) - pos
            pieces.append((self.config.banks.index(bank), pos - bank.base, pos - addr, length))
            pos += length
        return pieces

    async def peek(self, addr, n):
        buffer = ctypes.create_string_buffer(n)
        for bank, offset, pos, length in self._bank_pieces(addr, n):
            self._lib.machine_backdoor(self._handle, bank, offset,
                                       ctypes.addressof(buffer) + pos, length, 0)
        return buffer.raw

    async def poke(self, addr, data):
        data = bytes(data)
        buffer = ctypes.create_string_buffer(data, len(data))
        for bank, offset, pos, length in self._bank_pieces(addr, len(data)):
            self._lib.machine_backdoor(self._handle, bank, offset,
                                       ctypes.addressof(buffer) + pos, length, 1)


def run_until_complete(coroutine):
    """Run a scenario coroutine whose awaits all end in machine calls (which never suspend on
    this backend); returns its result."""
    try:
        coroutine.send(None)
    except StopIteration as stop:
        return stop.value
    coroutine.close()
    raise RuntimeError("The scenario awaited something other than the machine; only machine "
                       "calls can be awaited on the compiled backend")


def simulate(scenario, *, backend, config=None, vcd=None, trace=None):
    """Run ``async def scenario(machine)`` on a compiled model of the SoC and return what it
    returns; the :func:`..pysim.simulate` of the compiled backends.

    Parameters
    ----------
    scenario : async callable
        Receives a :class:`CompiledMachine`.
    backend : str
        ``"cxxrtl"`` or ``"verilator"``.
    config : SocConfig, optional
        Parameters of the SoC (the defaults if omitted).
    vcd : str or path, optional
        Write a VCD waveform of the whole run there.
    trace : Trace, optional
        Trace the transactions into a new run of this
        :class:`~dmabuf_soc.sw.trace.record.Trace`.
    """
    with CompiledMachine(backend, config, vcd=vcd, trace=trace) as machine:
        if machine.run is None:
            return run_until_complete(scenario(machine))
        with spans.running(machine.run):
            return run_until_complete(scenario(machine))
