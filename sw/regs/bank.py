"""Async register accessors bound to a machine: the driver's way to its registers."""

from ...hw.regs.spec import BlockSpec
from .map import register_map

__all__ = ["RegisterBank"]


class RegisterBank:
    """The registers of one block, read and written through a
    :class:`~dmabuf_soc.sw.machine.base.Machine`.

    Write semantics:

    * :meth:`write` with a ``value`` (positional, so that a field may be called
      ``value``) writes it verbatim;
    * :meth:`write` with field keywords writes **from reset**: named fields take the
      given values, fields with a write side effect take their neutral value (0 for
      ``woclr``/``woset``/``wot``/``singlepulse``, all-ones for ``wzc``/``wzs``/``wzt``),
      every other field its reset value;
    * :meth:`modify` is a **read-modify-write**: as :meth:`write` with fields, but the
      other fields keep the value just read (side-effect fields still get their neutral
      value, so that nothing is cleared, set or pulsed by accident).

    Parameters
    ----------
    machine : Machine
    block : str or BlockSpec
        A block of the MMIO map (:func:`~.map.register_map`), by name, or a block spec
        whose registers' ``address`` is their MMIO offset.
    """
    def __init__(self, machine, block):
        if isinstance(block, str):
            block = register_map()[block]
        if not isinstance(block, BlockSpec):
            raise TypeError(f"Expected a block name or a BlockSpec, not {block!r}")
        self.machine = machine
        self.block = block

    def __repr__(self):
        return f"RegisterBank({self.block.name!r} at {self.block.base:#x})"

    def register(self, name):
        """The :class:`~dmabuf_soc.hw.regs.spec.RegisterSpec` called ``name``
        (:exc:`KeyError` naming it and listing the block's registers if there is none)."""
        return self.block.register(name)

    def address(self, name):
        """Absolute MMIO offset of register ``name``."""
        return self.register(name).address

    async def read(self, name):
        """Read register ``name``; returns its 32-bit value."""
        return await self.machine.mmio_read(self.address(name))

    async def read_fields(self, name):
        """Read register ``name``; returns ``{field: value}``."""
        register = self.register(name)
        return register.decode(await self.machine.mmio_read(register.address))

    async def read_field(self, name, field):
        """Read register ``name``; returns the value of its field ``field``."""
        register = self.register(name)
        spec = register.field(field)
        value = await self.machine.mmio_read(register.address)
        return (value >> spec.lsb) & spec.ones

    async def write(self, name, value=None, /, **fields):
        """Write register ``name``: ``value`` verbatim, or from reset with ``fields``.

        Raises
        ------
        KeyError
            Unknown register or field.
        ValueError
            A field value that does not fit, or a field software cannot write.
        TypeError
            Both ``value`` and fields given.
        """
        register = self.register(name)
        if value is not None:
            if fields:
                raise TypeError(f"Write {name!r} either a value or fields, not both")
            if not isinstance(value, int) or not 0 <= value < 1 << 32:
                raise ValueError(f"Register {name!r}: value must be a 32-bit unsigned "
                                 f"integer, not {value!r}")
        else:
            value = register.encode(**fields)
        await self.machine.mmio_write(register.address, value)

    async def modify(self, name, /, **fields):
        """Read-modify-write of register ``name``: change ``fields``, keep the others.

        Raises
        ------
        ValueError
            If reading the register has a side effect (``rclr``/``rset``), or for a field
            value that does not fit.
        """
        register = self.register(name)
        for spec in register.fields:
            if spec.onread:
                raise ValueError(f"Register {name!r} cannot be read-modify-written: reading "
                                 f"field {spec.name!r} has a side effect ({spec.onread})")
        current = await self.machine.mmio_read(register.address)
        await self.machine.mmio_write(register.address, register.encode(current, **fields))
