"""A component with its ports flattened into one signal per field, named as a netlist reader
expects: ``mem_awaddr``, ``mmio_rdata``, ``cpu_req_valid``, ``irq``."""

from amaranth.hdl import Module, Value
from amaranth.lib import data, wiring
from amaranth.lib.wiring import Flow, In, Out

from ..bus.axi import AXI4LiteSignature, AXI4Signature

__all__ = ["FlatPorts", "flat_port_name"]

_AXI_SIGNATURES = (AXI4Signature, AXI4LiteSignature)


def flat_port_name(path, *, axi=False):
    """The top-level port name of a field at ``path`` (its member path, ``payload`` included).

    The ``payload`` level is dropped and the levels joined with ``_``; on an AXI port the
    channel and the field are joined without one, as the AXI specification names its signals
    (``("mem", "aw", "payload", "addr")`` is ``mem_awaddr``).
    """
    parts = [str(part) for part in path if part != "payload"]
    if not parts or not all(parts):
        raise ValueError(f"Cannot name a port at path {path!r}")
    if axi and len(parts) >= 3:
        *outer, channel, field = parts
        parts = [*outer, channel + field]
    return "_".join(parts)


def _fields(value, shape, path):
    """``(path, value)`` of every leaf field of a (nested) struct view, or the value itself."""
    if isinstance(shape, data.StructLayout):
        for name, field in shape:
            yield from _fields(value[name], field.shape, (*path, name))
    else:
        yield path, Value.cast(value)


class FlatPorts(wiring.Component):
    """Wraps ``component`` so that every field of its signature is a port of its own.

    Amaranth names the ports of a component after its members and passes a stream's payload
    as one vector; a synthesis report or a pin file wants ``mem_awaddr``, ``mem_awlen``, ….
    This wrapper instantiates the component and connects one port per leaf field, so that
    :func:`amaranth.back.rtlil.convert` of the wrapper has readable port names.

    Parameters
    ----------
    component : wiring.Component
        The block to wrap; its fields keep their direction.

    Members
    -------
    <name> : ``In(width)`` or ``Out(width)``
        One per leaf field of ``component``'s signature, named by :func:`flat_port_name`.

    Attributes
    ----------
    block : wiring.Component
        The wrapped component.
    """
    def __init__(self, component):
        if not isinstance(component, wiring.Component):
            self._MustUse__silence = True
            raise TypeError(f"Expected a wiring.Component, not {component!r}")
        members = {}
        fields = []
        declared = component.signature.members
        for path, member, value in component.signature.flatten(component):
            top = declared[path[0]]
            axi = top.is_signature and isinstance(top.signature, _AXI_SIGNATURES)
            for field_path, field_value in _fields(value, member.shape, path):
                name = flat_port_name(field_path, axi=axi)
                if name in members or name in ("clk", "rst", "block"):
                    raise ValueError(f"Two fields of {component!r} flatten to the port name "
                                     f"{name!r}")
                flow = Out if member.flow == Flow.Out else In
                members[name] = flow(len(field_value))
                fields.append((name, field_value, member.flow))
        self.block = component
        self._fields = fields
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        m.submodules.block = self.block
        for name, field_value, flow in self._fields:
            port = getattr(self, name)
            if flow == Flow.Out:
                m.d.comb += port.eq(field_value)
            else:
                m.d.comb += field_value.eq(port)
        return m
