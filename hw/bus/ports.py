"""A block's ports as one signal per field, named as AMBA-based IP names them.

Amaranth names a component's ports after its members and passes each stream's payload as one
vector (``bus__aw__payload``). Verification IP, netlist readers and pin files expect one port
per AXI signal with the names AMBA-based IP uses::

    m_axi_awaddr  m_axi_awlen  m_axi_awvalid  m_axi_awready  ...  m_axi_rready
    s_axil_awaddr s_axil_wdata s_axil_bresp   ...                 s_axil_rready

:class:`StandardPorts` wraps a component and gives it such ports. The prefix of an AXI port
says its role and kind: ``m_`` (the block is the manager) or ``s_`` (the block is the
subordinate), then ``axi`` (AXI4) or ``axil`` (AXI4-Lite); the ports of an array of AXI ports
are numbered (``s00_axi_``, ``s01_axi_``). The stream-ID sideband ``sid`` is ``AxUSER``.
AXI4 fields that the SoC does not model are driven with :data:`MANAGER_CONSTANTS` on manager
ports and accepted (and ignored) on subordinate ports, so that any AXI4 IP binds to them.
Ports of other members keep their path, joined with ``_`` (``cpu_req_addr``, ``irq``).
"""

from amaranth.hdl import Const, Module, Value
from amaranth.lib import data, wiring
from amaranth.lib.wiring import Flow, In, Out

from .axi import AXI4LiteSignature, AXI4Signature

__all__ = ["MANAGER_CONSTANTS", "PortInfo", "StandardPorts", "axi_prefix"]

#: AXI4 fields a manager port drives with a constant, as ``field: (width, value, meaning)``.
MANAGER_CONSTANTS = {
    "cache": (4, 0b0011, "Normal Non-cacheable Bufferable"),
    "lock":  (1, 0,      "normal access (no exclusive accesses)"),
    "qos":   (4, 0,      "no QoS scheme"),
}

#: AXI fields renamed on the way out.
_FIELD_NAMES = {"sid": "user"}
_RESERVED = ("clk", "rst")


def axi_prefix(signature, flow, index=None):
    """The default prefix of an AXI port: ``m_axi``, ``s_axil``, ``s01_axi``, …

    Parameters
    ----------
    signature : AXI4Signature or AXI4LiteSignature
        The port's signature, from the manager's side.
    flow : Flow
        ``Flow.Out`` if the block is the manager of the port, ``Flow.In`` if it is the
        subordinate.
    index : int or None
        The port's index in an array of ports.
    """
    if not isinstance(signature, (AXI4Signature, AXI4LiteSignature)):
        raise TypeError(f"Expected an AXI4 or AXI4-Lite signature, not {signature!r}")
    role = "m" if flow == Flow.Out else "s"
    kind = "axil" if isinstance(signature, AXI4LiteSignature) else "axi"
    return f"{role}{'' if index is None else f'{index:02d}'}_{kind}"


class PortInfo:
    """One port of a :class:`StandardPorts` wrapper.

    Attributes
    ----------
    name : str
        The port's name (``m_axi_awaddr``).
    direction : str
        ``"input"`` or ``"output"``.
    width : int
    group : str
        The prefix of its AXI port (``m_axi``), or the name of the member it belongs to.
    note : str
        What a constant or ignored port carries, else ``""``.
    """
    def __init__(self, name, direction, width, group, note=""):
        self.name, self.direction, self.width = name, direction, width
        self.group, self.note = group, note

    def __repr__(self):
        return f"PortInfo({self.name!r}, {self.direction!r}, {self.width})"


def _leaves(value, shape, path):
    """``(path, value)`` of every leaf field of a (nested) struct view, or the value itself."""
    if isinstance(shape, data.StructLayout):
        for name, field in shape:
            yield from _leaves(value[name], field.shape, (*path, name))
    else:
        yield path, Value.cast(value)


class StandardPorts(wiring.Component):
    """Wraps ``component`` so that every field of its signature is a port of its own, named
    as AMBA-based IP names it.

    Parameters
    ----------
    component : wiring.Component
        The block to wrap; its fields keep their direction.
    prefixes : dict of str to str, optional
        The prefix of an AXI member's ports, by member name, where the default of
        :func:`axi_prefix` does not fit (a second manager port: ``{"table": "m_axi_ptw"}``).
        For an array of ports, the prefix may hold ``{index}``.

    Members
    -------
    <name> : ``In(width)`` or ``Out(width)``
        One per leaf field of ``component``'s signature, and one per constant or ignored
        AXI4 field (:data:`MANAGER_CONSTANTS`) of each AXI4 port.

    Attributes
    ----------
    block : wiring.Component
        The wrapped component.
    ports : list of PortInfo
        Every port, in signature order (``clk`` and ``rst`` are not among them).
    groups : dict of str to str
        What each AXI port is (``"m_axi": "AXI4 manager: address 40 bits, ..."``), by prefix.
    axi_ports : dict of str to (Flow, wiring.Signature)
        The flow and signature of each AXI port, by prefix: ``Flow.Out`` where the block is
        the manager.
    """
    def __init__(self, component, *, prefixes=None):
        if not isinstance(component, wiring.Component):
            self._MustUse__silence = True
            raise TypeError(f"Expected a wiring.Component, not {component!r}")
        prefixes = dict(prefixes or {})
        declared = component.signature.members
        for name in prefixes:
            if name not in declared or not self._is_axi(declared[name]):
                self._MustUse__silence = True
                raise ValueError(f"Prefix given for {name!r}, which is not an AXI port of "
                                 f"{component!r}")
        self.block = component
        self.ports = []
        self.groups = {}
        self.axi_ports = {}
        self._connections = []      # (port name, inner value or Const, flow)
        members = {}

        def add(name, flow, width, group, inner, note=""):
            if name in members or name in _RESERVED:
                raise ValueError(f"Two fields of {component!r} take the port name {name!r}")
            members[name] = (Out if flow == Flow.Out else In)(width)
            self.ports.append(PortInfo(name, "output" if flow == Flow.Out else "input",
                                       width, group, note))
            self._connections.append((name, inner, flow))

        done_constants = set()
        for path, member, value in component.signature.flatten(component):
            top = declared[path[0]]
            if not self._is_axi(top):
                group = str(path[0])
                for leaf_path, leaf in _leaves(value, member.shape, path):
                    name = "_".join(str(part) for part in leaf_path if part != "payload")
                    add(name, member.flow, len(leaf), group, leaf)
                continue
            index = path[1] if len(top.dimensions) == 1 else None
            if len(top.dimensions) > 1:
                raise ValueError(f"Cannot name the ports of {path[0]!r}: arrays of AXI ports "
                                 f"have one dimension here, not {len(top.dimensions)}")
            prefix = self._prefix(top, path[0], index, prefixes)
            self.groups.setdefault(prefix, self._describe(top))
            self.axi_ports.setdefault(prefix, (top.flow, top.signature))
            channel = path[-2]
            if isinstance(top.signature, AXI4Signature) and channel in ("aw", "ar") and \
                    (prefix, channel) not in done_constants:
                done_constants.add((prefix, channel))
                manager = top.flow == Flow.Out
                for field, (width, const, meaning) in MANAGER_CONSTANTS.items():
                    note = (f"driven with {width}'b{const:0{width}b}: {meaning}" if manager
                            else "ignored")
                    add(f"{prefix}_{channel}{field}", Flow.Out if manager else Flow.In,
                        width, prefix, Const(const, width) if manager else None, note)
            for leaf_path, leaf in _leaves(value, member.shape, path):
                field = leaf_path[-1]
                if leaf_path[-2] == "payload":
                    field = _FIELD_NAMES.get(field, field)
                add(f"{prefix}_{channel}{field}", member.flow, len(leaf), prefix, leaf,
                    "stream ID" if field == "user" else "")
        super().__init__(members)

    @staticmethod
    def _is_axi(member):
        return member.is_signature and isinstance(member.signature,
                                                  (AXI4Signature, AXI4LiteSignature))

    @staticmethod
    def _prefix(member, name, index, prefixes):
        if name in prefixes:
            return prefixes[name].format(index=index)
        return axi_prefix(member.signature, member.flow, index)

    @staticmethod
    def _describe(member):
        signature = member.signature
        role = "manager" if member.flow == Flow.Out else "subordinate"
        if isinstance(signature, AXI4LiteSignature):
            return (f"AXI4-Lite {role}: address {signature.addr_width} bits, "
                    f"data {signature.data_width}")
        return (f"AXI4 {role}: address {signature.addr_width} bits, data "
                f"{signature.data_width}, ID {signature.id_width}, AxUSER (stream ID) "
                f"{signature.sid_width}; INCR bursts, none crossing 4 KiB")

    def describe(self):
        """Lines of text saying what the ports are, for the head of a netlist."""
        lines = [
            "clk  clock: every register updates on its rising edge",
            "rst  reset: synchronous to clk, active high; hold it for a cycle after power-up",
        ]
        for prefix, text in self.groups.items():
            lines.append(f"{prefix}_*  {text}")
            lines += [f"    {port.name}: {port.note}" for port in self.ports
                      if port.group == prefix and port.note and port.note != "stream ID"]
        return lines

    def elaborate(self, platform):
        m = Module()
        m.submodules.block = self.block
        for name, inner, flow in self._connections:
            port = getattr(self, name)
            if inner is None:
                continue                    # an AXI4 field the block ignores
            if flow == Flow.Out:
                m.d.comb += port.eq(inner)
            else:
                m.d.comb += inner.eq(port)
        return m
