"""Testbench access to the DDR model outside the bus: memory contents and error injection.

:func:`peek` and :func:`poke` read and write DDR bytes in zero simulated time, through
``ctx.get``/``ctx.set`` on the rows of the bank memories (see :meth:`DDRModel.memory_data`).
:func:`row_spans` and :class:`RowSpan`, which say which rows and bytes a byte range covers,
are pure so that a compiled backend can reuse them with its own row accessors::

    for span in row_spans(config, addr, len(data)):
        old = read_row(span.bank, span.row)
        write_row(span.bank, span.row, span.insert(old, data))
"""

from typing import NamedTuple

from ...hw.bus.axi import Resp
from ...hw.config import Bank, SocConfig
from .model import DDRModel

__all__ = ["RowSpan", "row_spans", "peek", "poke", "check_window_index", "error_window",
           "set_error_window", "clear_error_window"]


class RowSpan(NamedTuple):
    """The bytes ``start`` to ``stop - 1`` of row ``row`` of ``bank``, which hold the bytes
    ``offset`` to ``offset + stop - start - 1`` of an access."""
    bank: Bank
    row: int
    start: int
    stop: int
    offset: int

    @property
    def length(self):
        return self.stop - self.start

    @property
    def mask(self):
        """The bits of the row this span covers."""
        return ((1 << 8 * self.length) - 1) << 8 * self.start

    def extract(self, row_value):
        """The span's bytes of the row value ``row_value``."""
        return ((row_value & self.mask) >> 8 * self.start).to_bytes(self.length, "little")

    def insert(self, row_value, data):
        """``row_value`` with the span's bytes replaced by those of the access buffer ``data``."""
        chunk = int.from_bytes(data[self.offset:self.offset + self.length], "little")
        return (row_value & ~self.mask) | (chunk << 8 * self.start)


def row_spans(config, addr, n):
    """The rows covering the ``n`` bytes at physical address ``addr``, in address order.

    Parameters
    ----------
    config : SocConfig
        Banks and data width (one row per bus beat).
    addr : int
        Physical address of the first byte; any alignment.
    n : int
        Number of bytes; may be 0.

    Returns
    -------
    list of RowSpan

    Raises
    ------
    ValueError
        If any byte of the range lies outside every bank.
    """
    if not isinstance(config, SocConfig):
        raise TypeError(f"Configuration must be a SocConfig, not {config!r}")
    if not isinstance(addr, int) or addr < 0:
        raise ValueError(f"Address must be a non-negative integer, not {addr!r}")
    if not isinstance(n, int) or n < 0:
        raise ValueError(f"Length must be a non-negative integer, not {n!r}")
    width = config.bytes_per_beat
    spans = []
    pos, end = addr, addr + n
    while pos < end:
        bank = config.bank_at(pos)
        if bank is None:
            raise ValueError(f"Address {pos:#x} of the range {addr:#x}+{n:#x} lies in no "
                             f"DDR bank")
        stop = min(end, bank.end)
        while pos < stop:
            start = pos % width
            length = min(width - start, stop - pos)
            spans.append(RowSpan(bank, (pos - bank.base) // width, start, start + length,
                                 pos - addr))
            pos += length
    return spans


def _check_model(ddr):
    if not isinstance(ddr, DDRModel):
        raise TypeError(f"Expected a DDRModel, not {ddr!r}")


async def peek(ctx, ddr, addr, n):
    """Read ``n`` bytes of DDR at physical address ``addr`` without bus cycles.

    ``ctx`` is a testbench context. Raises :exc:`ValueError` if any byte lies outside the banks.
    """
    _check_model(ddr)
    result = bytearray()
    for span in row_spans(ddr.config, addr, n):
        result += span.extract(ctx.get(ddr.memory_data(span.bank)[span.row]))
    return bytes(result)


async def poke(ctx, ddr, addr, data):
    """Write the bytes-like ``data`` into DDR at physical address ``addr`` without bus cycles.

    ``ctx`` is a testbench context. Raises :exc:`ValueError`, writing nothing, if any byte lies
    outside the banks.
    """
    _check_model(ddr)
    data = bytes(data)
    width = ddr.config.bytes_per_beat
    for span in row_spans(ddr.config, addr, len(data)):
        row = ddr.memory_data(span.bank)[span.row]
        if span.length < width:
            row = row[8 * span.start:8 * span.stop]
        ctx.set(row, int.from_bytes(data[span.offset:span.offset + span.length], "little"))


def _window_controls(target):
    """The config and error windows of ``target``: a :class:`DDRModel` (its ``ctrl``) or the
    SoC around one (its ``ddr_ctrl`` port, which drives the model's)."""
    if isinstance(target, DDRModel):
        return target.config, target.ctrl.windows
    if isinstance(getattr(target, "ddr", None), DDRModel) and hasattr(target, "ddr_ctrl"):
        return target.config, target.ddr_ctrl.windows
    raise TypeError(f"Expected a DDRModel or a SoC with one, not {target!r}")


def check_window_index(windows, index):
    """Raise :exc:`ValueError` unless ``index`` names one of ``windows`` error windows."""
    if not isinstance(index, int) or not 0 <= index < windows:
        raise ValueError(f"Error window index must be from 0 to {windows - 1}, not {index!r}")


def error_window(config, *, base, size, resp=Resp.SLVERR, read=True, write=True):
    """The value of an enabled :class:`~.model.ErrorWindowLayout` answering ``resp`` to the
    beats touching the ``size`` bytes at ``base``, for the directions ``read`` and ``write``;
    the arguments checked."""
    resp = Resp(resp)
    if resp not in (Resp.SLVERR, Resp.DECERR):
        raise ValueError(f"Error window response must be SLVERR or DECERR, not {resp!r}")
    if not isinstance(base, int) or base < 0:
        raise ValueError(f"Window base must be a non-negative integer, not {base!r}")
    if not isinstance(size, int) or size < 1 or base + size > 1 << config.addr_width:
        raise ValueError(f"Window size must be a positive integer keeping the window in the "
                         f"{config.addr_width}-bit address space, not {size!r}")
    return {"enable": 1, "read": bool(read), "write": bool(write), "resp": resp,
            "base": base, "limit": base + size - 1}


async def set_error_window(ctx, ddr, index, *, base, size, resp=Resp.SLVERR, read=True,
                           write=True):
    """Answer ``resp`` to beats touching the ``size`` bytes at ``base``, for the directions
    selected by ``read`` and ``write``, through error window ``index`` of ``ddr`` (a
    :class:`DDRModel`, or the SoC whose ``ddr_ctrl`` port drives one)."""
    config, windows = _window_controls(ddr)
    check_window_index(len(windows), index)
    ctx.set(windows[index], error_window(config, base=base, size=size, resp=resp, read=read,
                                         write=write))


async def clear_error_window(ctx, ddr, index):
    """Disable error window ``index`` of ``ddr`` (as for :func:`set_error_window`)."""
    _, windows = _window_controls(ddr)
    check_window_index(len(windows), index)
    ctx.set(windows[index].enable, 0)
