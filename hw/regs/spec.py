"""Plain descriptions of register blocks, taken from a compiled SystemRDL model.

Everything that generates something from SystemRDL (the Amaranth register block, its Python
reference model, the driver's register map) reads these specs instead of the compiler's node
tree. This module is the single place that decides which SystemRDL features are supported:
anything else raises :class:`UnsupportedRdlError` naming the register and property.
"""

from dataclasses import dataclass, field as dataclass_field
from typing import NamedTuple

from amaranth.utils import ceil_log2
from systemrdl.node import AddrmapNode, FieldNode, MemNode, RegfileNode, RegNode, SignalNode
from systemrdl.rdltypes import AccessType, PrecedenceType

__all__ = [
    "UnsupportedRdlError", "FieldSpec", "RegisterSpec", "BlockSpec", "Window",
    "block_spec", "window_size", "address_windows", "apply_sw_write", "REGISTER_WIDTH",
    "MIN_WINDOW_SIZE",
]

#: The only register width supported: every register is one 32-bit AXI4-Lite word.
REGISTER_WIDTH = 32
#: The smallest address window a block occupies in the MMIO space.
MIN_WINDOW_SIZE = 4096

_ONWRITE = ("woclr", "woset", "wot", "wzs", "wzc", "wzt", "wclr", "wset")
_ONREAD = ("rclr", "rset")
_INTR_TYPES = ("level", "posedge", "negedge", "bothedge")

# Properties that change behaviour and that the generator does not implement; each is
# rejected when set to anything but its default.
_UNSUPPORTED_FIELD_PROPERTIES = (
    "counter", "swwe", "swwel", "wel", "hwenable", "hwmask", "next", "resetsignal",
    "sticky", "haltenable", "haltmask", "paritycheck", "anded", "ored", "xored",
    "overflow", "underflow",
)


class UnsupportedRdlError(ValueError):
    """A SystemRDL construct that the register generator does not implement."""


def apply_sw_write(onwrite, old, data, mask, ones):
    """The value of a field after a software write.

    Works on Python integers (the reference model) and on Amaranth values (the RTL) alike.

    Parameters
    ----------
    onwrite : str or None
        The field's ``onwrite`` behaviour (``None`` for a plain write).
    old : int or Value
        The field's value before the write.
    data : int or Value
        The written bits of the field.
    mask : int or Value
        Which bits of the field the write covers (byte strobes; zero when the register is
        not written, which makes every behaviour an identity).
    ones : int
        All-ones of the field's width.
    """
    if onwrite is None:
        return (old & (ones ^ mask)) | (data & mask)
    ones_written  = data & mask
    zeros_written = (ones ^ data) & mask
    return {
        "woclr": lambda: old & (ones ^ ones_written),
        "woset": lambda: old | ones_written,
        "wot":   lambda: old ^ ones_written,
        "wzc":   lambda: old & (ones ^ zeros_written),
        "wzs":   lambda: old | zeros_written,
        "wzt":   lambda: old ^ zeros_written,
        "wclr":  lambda: old & (ones ^ mask),
        "wset":  lambda: old | mask,
    }[onwrite]()


@dataclass(frozen=True)
class FieldSpec:
    """One field of a register.

    Attributes
    ----------
    name : str
    lsb, width : int
    sw, hw : str
        Access of software and hardware: ``"rw"``, ``"r"``, ``"w"`` or ``"na"``.
    reset : int
        Reset value (0 when the RDL gives none).
    storage : bool
        Whether the field is a flip-flop; otherwise it reads a hardware input live, or a
        constant.
    onwrite : str or None
        ``"woclr"``, ``"woset"``, ``"wot"``, ``"wzs"``, ``"wzc"``, ``"wzt"``, ``"wclr"``,
        ``"wset"`` or ``None``.
    onread : str or None
        ``"rclr"``, ``"rset"`` or ``None``.
    singlepulse : bool
        The field is 1 for one cycle after software writes 1, then 0 again.
    we : bool
        Hardware writes the field through ``d`` only while ``we`` is high.
    hwset, hwclr : bool
        Hardware pulse inputs that set / clear every bit (clear wins).
    swmod, swacc : bool
        Pulse outputs: software wrote the field (or read it with a side effect) / read it.
    intr : str or None
        ``"level"``, ``"posedge"``, ``"negedge"`` or ``"bothedge"`` for an interrupt field:
        a sticky status bit set by its hardware input.
    enable, mask : tuple of (str, str) or None
        ``(register name, field name)`` of an interrupt field's enable or mask.
    precedence : str
        ``"sw"`` or ``"hw"``: who wins when both change the field in the same cycle.
    desc : str or None
    """
    name: str
    lsb: int
    width: int
    sw: str
    hw: str
    reset: int = 0
    storage: bool = True
    onwrite: object = None
    onread: object = None
    singlepulse: bool = False
    we: bool = False
    hwset: bool = False
    hwclr: bool = False
    swmod: bool = False
    swacc: bool = False
    intr: object = None
    enable: object = None
    mask: object = None
    precedence: str = "sw"
    desc: object = None

    @property
    def msb(self):
        return self.lsb + self.width - 1

    @property
    def ones(self):
        """All-ones of the field's width."""
        return (1 << self.width) - 1

    @property
    def bitmask(self):
        """The field's bits within its register."""
        return self.ones << self.lsb

    @property
    def sw_readable(self):
        return self.sw in ("rw", "r")

    @property
    def sw_writable(self):
        return self.sw in ("rw", "w")

    @property
    def hw_readable(self):
        return self.hw in ("rw", "r")

    @property
    def hw_writable(self):
        return self.hw in ("rw", "w")

    @property
    def hw_loads_every_cycle(self):
        """A hardware-writable storage field without ``we``: it loads ``d`` every cycle."""
        return self.storage and self.hw_writable and not self.we and not self.intr

    @property
    def access(self):
        """Software access as a documentation string, e.g. ``"rw"``, ``"r/woclr"``."""
        parts = [self.sw]
        if self.onwrite:
            parts.append(self.onwrite)
        if self.onread:
            parts.append(self.onread)
        if self.singlepulse:
            parts.append("singlepulse")
        return "/".join(parts)

    @property
    def neutral_write(self):
        """The value that, written to this field, changes nothing; ``None`` if no value is
        neutral (``wclr``/``wset``) or if a plain write stores it (then it is not a side
        effect and the caller chooses)."""
        if self.onwrite in ("woclr", "woset", "wot") or self.singlepulse:
            return 0
        if self.onwrite in ("wzc", "wzs", "wzt"):
            return self.ones
        return None

    def hw_ports(self):
        """Hardware-side ports of the field: ``{name: (direction, width)}`` with direction
        ``"in"`` (into the register block) or ``"out"``."""
        ports = {}
        if self.hw_writable:
            ports["d"] = ("in", self.width)
        if self.we:
            ports["we"] = ("in", 1)
        if self.hwset:
            ports["hwset"] = ("in", 1)
        if self.hwclr:
            ports["hwclr"] = ("in", 1)
        if self.hw_readable:
            ports["q"] = ("out", self.width)
        if self.swmod:
            ports["swmod"] = ("out", 1)
        if self.swacc:
            ports["swacc"] = ("out", 1)
        return ports


@dataclass(frozen=True)
class RegisterSpec:
    """One 32-bit register.

    Attributes
    ----------
    name : str
        Path below the block, e.g. ``"CTRL"`` or ``"ch[1].CTRL"``.
    path : tuple of str and int
        The same path as attribute names and array indices (``("ch", 1, "CTRL")``), as
        used to reach the register's hardware interface.
    offset : int
        Byte offset from the start of the block.
    address : int
        Byte address in the compiled map (the block's base plus ``offset``).
    fields : tuple of FieldSpec
        Ordered by ``lsb``.
    desc : str or None
    """
    name: str
    path: tuple
    offset: int
    address: int
    fields: tuple
    desc: object = None

    @property
    def reset(self):
        """The register's reset value: every field's ``reset``, except fields that read a
        hardware input live, which count as 0. (Software reads 0 from write-only fields.)"""
        value = 0
        for f in self.fields:
            if f.storage or not f.hw_writable:
                value |= f.reset << f.lsb
        return value

    @property
    def has_intr(self):
        return any(f.intr for f in self.fields)

    def field(self, name):
        """The field called ``name``; :exc:`KeyError` listing the fields if there is none."""
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"Register {self.name!r} has no field {name!r}; its fields are "
                       f"{', '.join(f.name for f in self.fields)}")

    def encode(self, base=None, /, **values):
        """Assemble a register value.

        Fields named in ``values`` take those values. Every other field takes its
        neutral value if writing has a side effect (0 for ``woclr``/``woset``/``wot`` and
        ``singlepulse``, all-ones for ``wzc``/``wzs``/``wzt``), else its bits of ``base``
        (the register's reset value if ``base`` is ``None``).

        Raises
        ------
        KeyError
            For an unknown field name.
        ValueError
            For a value that does not fit its field, or a field software cannot write.
        """
        value = self.reset if base is None else base
        if not isinstance(value, int) or not 0 <= value < 1 << REGISTER_WIDTH:
            raise ValueError(f"Register {self.name!r}: base value must be a 32-bit "
                             f"unsigned integer, not {value!r}")
        for f in self.fields:
            if f.neutral_write is not None:
                value = (value & ~f.bitmask) | (f.neutral_write << f.lsb)
        for name, field_value in values.items():
            f = self.field(name)
            if not f.sw_writable:
                raise ValueError(f"Field {self.name}.{name} is not writable by software "
                                 f"(sw={f.sw})")
            if not isinstance(field_value, int) or not 0 <= field_value <= f.ones:
                raise ValueError(f"Field {self.name}.{name} is {f.width} bits wide; "
                                 f"{field_value!r} does not fit")
            value = (value & ~f.bitmask) | (field_value << f.lsb)
        return value

    def decode(self, value):
        """Split a register value into ``{field name: value}``."""
        if not isinstance(value, int) or not 0 <= value < 1 << REGISTER_WIDTH:
            raise ValueError(f"Register {self.name!r}: value must be a 32-bit unsigned "
                             f"integer, not {value!r}")
        return {f.name: (value >> f.lsb) & f.ones for f in self.fields}


@dataclass(frozen=True)
class BlockSpec:
    """A register block: the registers of one addrmap (or regfile).

    Attributes
    ----------
    name : str
        Instance name of the addrmap.
    base : int
        Its byte address in the compiled map.
    size : int
        Its address window: a power of two of at least :data:`MIN_WINDOW_SIZE` bytes.
    registers : tuple of RegisterSpec
        Ordered by offset.
    desc : str or None
    """
    name: str
    base: int
    size: int
    registers: tuple
    desc: object = None
    _by_name: dict = dataclass_field(default=None, repr=False, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "_by_name", {reg.name: reg for reg in self.registers})

    @property
    def addr_width(self):
        """Address bits that select a byte within the block's window."""
        return ceil_log2(self.size)

    @property
    def has_intr(self):
        return any(reg.has_intr for reg in self.registers)

    def register(self, name):
        """The register called ``name``; :exc:`KeyError` listing the registers if there
        is none."""
        try:
            return self._by_name[name]
        except KeyError:
            raise KeyError(f"Block {self.name!r} has no register {name!r}; its registers "
                           f"are {', '.join(self._by_name)}") from None

    def __iter__(self):
        return iter(self.registers)

    def __contains__(self, name):
        return name in self._by_name

    def at(self, offset):
        """The register at byte ``offset`` of the block, or ``None``."""
        for reg in self.registers:
            if reg.offset == offset:
                return reg
        return None


class Window(NamedTuple):
    """An address window of the MMIO space: ``size`` bytes at ``base``, named ``name``
    (a named tuple, so it unpacks as ``name, base, size``)."""
    name: str
    base: int
    size: int

    @property
    def end(self):
        return self.base + self.size


def window_size(node):
    """The address window a block occupies: its size rounded up to a power of two, and at
    least :data:`MIN_WINDOW_SIZE` bytes."""
    return max(MIN_WINDOW_SIZE, 1 << ceil_log2(max(node.size, 1)))


def address_windows(top):
    """The windows of the blocks (addrmap children) of a top-level addrmap.

    Returns
    -------
    tuple of Window
        ``(instance name, base, size)`` for every block, in address order; an element of
        a block array is named ``name_i``.
    """
    if not isinstance(top, AddrmapNode):
        raise TypeError(f"Expected a SystemRDL addrmap node, not {top!r}")
    windows = []
    for child in top.children(unroll=True):
        if not isinstance(child, AddrmapNode):
            raise UnsupportedRdlError(
                f"{child.get_path()}: the top-level map may hold only addrmap blocks, not "
                f"a {type(child).__name__}")
        name = child.inst_name
        if child.is_array:
            name += "".join(f"_{i}" for i in child.current_idx)
        windows.append(Window(name, child.absolute_address, window_size(child)))
    return tuple(sorted(windows, key=lambda window: window.base))


def _access(node, prop):
    value = node.get_property(prop)
    if value in (AccessType.rw1, AccessType.w1):
        raise UnsupportedRdlError(f"{node.get_path()}: {prop}={value.name} (write-once) is "
                                  f"not supported")
    return {AccessType.rw: "rw", AccessType.r: "r", AccessType.w: "w",
            AccessType.na: "na"}[value]


def _flag(node, prop):
    value = node.get_property(prop)
    if not isinstance(value, bool):
        raise UnsupportedRdlError(f"{node.get_path()}: {prop} must be a plain boolean, "
                                  f"not a reference to {value!r}")
    return value


def _reference(node, prop, registers_by_address):
    target = node.get_property(prop)
    if target is None:
        return None
    if not isinstance(target, FieldNode):
        raise UnsupportedRdlError(f"{node.get_path()}: {prop} must reference a field, not "
                                  f"{target!r}")
    register = registers_by_address.get(target.parent.absolute_address)
    if register is None:
        raise UnsupportedRdlError(f"{node.get_path()}: {prop} references "
                                  f"{target.get_path()}, outside this block")
    if target.width != node.width:
        raise UnsupportedRdlError(f"{node.get_path()}: {prop} references "
                                  f"{target.get_path()} of width {target.width}, but the "
                                  f"field is {node.width} bits wide")
    return (register, target.inst_name)


def _field_spec(node, registers_by_address):
    where = node.get_path()
    for prop in _UNSUPPORTED_FIELD_PROPERTIES:
        value = node.get_property(prop, default=None)
        if value not in (None, False):
            raise UnsupportedRdlError(f"{where}: property {prop!r} is not supported")
    if node.get_property("intr") and not node.get_property("stickybit"):
        raise UnsupportedRdlError(f"{where}: non-sticky interrupts are not supported")
    if node.is_alias or node.parent.has_aliases:
        raise UnsupportedRdlError(f"{where}: aliases are not supported")

    sw, hw = _access(node, "sw"), _access(node, "hw")
    reset = node.get_property("reset")
    if reset is None:
        reset = 0
    elif not isinstance(reset, int):
        raise UnsupportedRdlError(f"{where}: reset must be a constant, not {reset!r}")

    onwrite = node.get_property("onwrite")
    if onwrite is not None:
        if onwrite.name not in _ONWRITE:
            raise UnsupportedRdlError(f"{where}: onwrite={onwrite.name} is not supported")
        onwrite = onwrite.name
    onread = node.get_property("onread")
    if onread is not None:
        if onread.name not in _ONREAD:
            raise UnsupportedRdlError(f"{where}: onread={onread.name} is not supported")
        onread = onread.name

    intr = None
    if node.get_property("intr"):
        intr = node.get_property("intr type").name
        if intr not in _INTR_TYPES:
            raise UnsupportedRdlError(f"{where}: interrupt type {intr} is not supported")
        if not (hw in ("w", "rw") or _flag(node, "hwset")):
            raise UnsupportedRdlError(f"{where}: an interrupt field needs a hardware input "
                                      f"(hw=w or hwset)")

    return FieldSpec(
        name=node.inst_name, lsb=node.lsb, width=node.width, sw=sw, hw=hw, reset=reset,
        storage=node.implements_storage, onwrite=onwrite, onread=onread,
        singlepulse=_flag(node, "singlepulse"), we=_flag(node, "we"),
        hwset=_flag(node, "hwset"), hwclr=_flag(node, "hwclr"),
        swmod=_flag(node, "swmod"), swacc=_flag(node, "swacc"), intr=intr,
        enable=_reference(node, "enable", registers_by_address),
        mask=_reference(node, "mask", registers_by_address),
        precedence="hw" if node.get_property("precedence") == PrecedenceType.hw else "sw",
        desc=node.get_property("desc"))


def _registers(node, block):
    """Unrolled register nodes below ``node``, with their paths relative to ``block``."""
    for child in node.children(unroll=True):
        if isinstance(child, RegNode):
            yield child
        elif isinstance(child, RegfileNode):
            yield from _registers(child, block)
        elif isinstance(child, (AddrmapNode, MemNode)):
            raise UnsupportedRdlError(
                f"{child.get_path()}: a register block may not contain a "
                f"{type(child).__name__} (give it its own block in the top-level map)")
        elif isinstance(child, SignalNode):
            raise UnsupportedRdlError(f"{child.get_path()}: signals are not supported")


def _path(reg, block):
    path = []
    node = reg
    while node is not block:
        if node.is_array:
            path[:0] = [node.inst_name, *node.current_idx]
        else:
            path[:0] = [node.inst_name]
        node = node.parent
    return tuple(path)


def _path_name(path):
    name = ""
    for part in path:
        if isinstance(part, int):
            name += f"[{part}]"
        else:
            name += f".{part}" if name else part
    return name


def block_spec(node):
    """Describe the register block of a compiled addrmap or regfile node.

    Raises
    ------
    UnsupportedRdlError
        If the block uses a SystemRDL feature the generator does not implement; the
        message names the register or field and the property.
    """
    if not isinstance(node, (AddrmapNode, RegfileNode)):
        raise TypeError(f"Expected a SystemRDL addrmap or regfile node, not {node!r}")
    reg_nodes = list(_registers(node, node))
    registers_by_address = {}
    for reg in reg_nodes:
        where = reg.get_path()
        if reg.get_property("regwidth") != REGISTER_WIDTH:
            raise UnsupportedRdlError(f"{where}: regwidth={reg.get_property('regwidth')}; "
                                      f"only {REGISTER_WIDTH}-bit registers are supported")
        if reg.get_property("accesswidth") != REGISTER_WIDTH:
            raise UnsupportedRdlError(f"{where}: accesswidth="
                                      f"{reg.get_property('accesswidth')} is not supported")
        if reg.external:
            raise UnsupportedRdlError(f"{where}: external registers are not supported")
        registers_by_address[reg.absolute_address] = _path_name(_path(reg, node))

    registers = []
    for reg in reg_nodes:
        path = _path(reg, node)
        fields = tuple(sorted((_field_spec(f, registers_by_address) for f in reg.fields()),
                              key=lambda f: f.lsb))
        if any(f.intr for f in fields) and any(f.name == "intr" for f in fields):
            raise UnsupportedRdlError(f"{reg.get_path()}: a register with interrupt fields "
                                      f"may not have a field named 'intr' (the name of its "
                                      f"interrupt output)")
        registers.append(RegisterSpec(
            name=_path_name(path), path=path,
            offset=reg.absolute_address - node.absolute_address,
            address=reg.absolute_address, fields=fields, desc=reg.get_property("desc")))
    registers.sort(key=lambda reg: reg.offset)
    return BlockSpec(name=node.inst_name, base=node.absolute_address, size=window_size(node),
                     registers=tuple(registers), desc=node.get_property("desc"))
