"""Reference model of a generated register block, one software access at a time."""

from ...hw.bus.axi import Resp
from ...hw.regs.spec import REGISTER_WIDTH, BlockSpec, apply_sw_write

__all__ = ["RegisterBlockModel"]


class RegisterBlockModel:
    """What a :class:`~.block.RegisterBlock` does, access by access, in Python.

    Software accesses (:meth:`read`, :meth:`write`) and hardware events (:meth:`hw_write`,
    :meth:`hw_set`, :meth:`hw_clr`, :meth:`interrupt`, :meth:`set_input`) are applied in
    the order they are called, as if each took place in a cycle of its own.

    Parameters
    ----------
    spec : BlockSpec

    Attributes
    ----------
    events : list of tuple
        Pulses the block's outputs show, in order: ``("pulse", register, field, value)``
        for a ``singlepulse`` field written non-zero, ``("swmod", register, field)`` and
        ``("swacc", register, field)``.
    """
    def __init__(self, spec):
        if not isinstance(spec, BlockSpec):
            raise TypeError(f"Expected a BlockSpec, not {spec!r}")
        self.spec = spec
        self.events = []
        self._values = {}
        for reg in spec.registers:
            for f in reg.fields:
                if f.storage:
                    # A field loading d every cycle holds d (0 at the start) from the first.
                    initial = f.singlepulse or f.hw_loads_every_cycle
                    self._values[reg.name, f.name] = 0 if initial else f.reset
                elif f.hw_writable:
                    self._values[reg.name, f.name] = 0      # the live input
                else:
                    self._values[reg.name, f.name] = f.reset

    def _field(self, register, field):
        reg = self.spec.register(register)
        return reg, reg.field(field)

    # Software side.

    def write(self, offset, data, strb=0b1111):
        """A software write of the 32-bit ``data`` with byte strobes ``strb`` at byte
        ``offset`` of the block; returns the :class:`Resp`."""
        reg = self.spec.at(offset & ~3)
        if reg is None:
            return Resp.SLVERR
        mask = 0
        for byte in range(REGISTER_WIDTH // 8):
            if strb >> byte & 1:
                mask |= 0xFF << (8 * byte)
        for f in reg.fields:
            field_data = (data >> f.lsb) & f.ones
            field_mask = (mask >> f.lsb) & f.ones
            if f.sw_writable and f.storage and not f.hw_loads_every_cycle:
                old = 0 if f.singlepulse else self._values[reg.name, f.name]
                new = apply_sw_write(f.onwrite, old, field_data, field_mask, f.ones)
                if f.singlepulse:
                    if new:
                        self.events.append(("pulse", reg.name, f.name, new))
                else:
                    self._values[reg.name, f.name] = new
            if f.swmod and field_mask:
                self.events.append(("swmod", reg.name, f.name))
        return Resp.OKAY

    def read(self, offset):
        """A software read at byte ``offset`` of the block; returns ``(data, resp)``."""
        reg = self.spec.at(offset & ~3)
        if reg is None:
            return 0, Resp.SLVERR
        data = 0
        for f in reg.fields:
            if f.sw_readable:
                data |= self._values[reg.name, f.name] << f.lsb
            if f.onread == "rclr":
                self._values[reg.name, f.name] = 0
            elif f.onread == "rset":
                self._values[reg.name, f.name] = f.ones
            if f.swmod and f.onread:
                self.events.append(("swmod", reg.name, f.name))
            if f.swacc:
                self.events.append(("swacc", reg.name, f.name))
        return data, Resp.OKAY

    # Hardware side.

    def set_input(self, register, field, value):
        """Set the live input ``d`` of a field software reads straight from hardware."""
        reg, f = self._field(register, field)
        if f.storage or not f.hw_writable:
            raise ValueError(f"{register}.{field} has no live hardware input")
        self._values[register, field] = value & f.ones

    def hw_write(self, register, field, value):
        """Hardware loads ``value`` through ``d`` (with ``we`` if the field has one; a
        field without ``we`` keeps loading it, so software writes do not last)."""
        reg, f = self._field(register, field)
        if not (f.storage and f.hw_writable and not f.intr):
            raise ValueError(f"{register}.{field} is not a hardware-written storage field")
        self._values[register, field] = value & f.ones

    def hw_set(self, register, field):
        """A pulse on ``hwset``: every bit of the field set (an interrupt event too)."""
        reg, f = self._field(register, field)
        if not f.hwset:
            raise ValueError(f"{register}.{field} has no hwset input")
        self._values[register, field] = f.ones

    def hw_clr(self, register, field):
        """A pulse on ``hwclr``: every bit of the field cleared."""
        reg, f = self._field(register, field)
        if not f.hwclr:
            raise ValueError(f"{register}.{field} has no hwclr input")
        self._values[register, field] = 0

    def interrupt(self, register, field, bits):
        """Interrupt events on the bits ``bits`` of an interrupt field (whatever edge or
        level its type needs was seen on those bits of ``d``)."""
        reg, f = self._field(register, field)
        if not f.intr:
            raise ValueError(f"{register}.{field} is not an interrupt field")
        self._values[register, field] |= bits & f.ones

    # Outputs.

    def value(self, register, field):
        """The field's value: what ``q`` shows and, if readable, what software reads."""
        self._field(register, field)
        return self._values[register, field]

    def intr(self, register):
        """The register's interrupt output."""
        reg = self.spec.register(register)
        for f in reg.fields:
            if not f.intr:
                continue
            status = self._values[reg.name, f.name]
            if f.enable is not None:
                status &= self._values[f.enable]
            elif f.mask is not None:
                status &= ~self._values[f.mask]
            if status:
                return True
        return False

    @property
    def irq(self):
        """The block's interrupt output."""
        return any(self.intr(reg.name) for reg in self.spec.registers if reg.has_intr)
