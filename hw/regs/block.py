"""The register block generator: an AXI4-Lite subordinate built from a SystemRDL addrmap."""

from amaranth.hdl import C, Cat, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from systemrdl.node import Node

from ..bus.axi import AXI4LiteSignature, Resp
from .spec import REGISTER_WIDTH, BlockSpec, apply_sw_write, block_spec

__all__ = ["RegisterBlock", "hw_signature"]


def _port_member(direction, width):
    return Out(width) if direction == "out" else In(width)


def _as_member(node):
    # ``node`` is a register's signature or a dict of named / indexed children; a dict
    # keyed by 0..n-1 is an array of identical elements.
    if isinstance(node, wiring.Signature):
        return Out(node)
    keys = list(node)
    if all(isinstance(key, int) for key in keys):
        element = _as_member(node[0])
        return element.array(len(keys))
    return Out(wiring.Signature({key: _as_member(child) for key, child in node.items()}))


def hw_signature(spec):
    """The hardware-side signature of a register block, or ``None`` if it has no ports.

    It mirrors the register hierarchy: one member per register (regfiles and arrays nest),
    one per field within it, and that field's ports within that: ``d`` (``In``), ``we``,
    ``hwset``, ``hwclr`` (``In(1)`` pulses), ``q`` (``Out``), ``swmod`` and ``swacc``
    (``Out(1)`` pulses). A register with interrupt fields also has ``intr: Out(1)``.
    Fields and registers without hardware ports are left out.
    """
    tree = {}
    for reg in spec.registers:
        members = {}
        for f in reg.fields:
            ports = f.hw_ports()
            if ports:
                members[f.name] = Out(wiring.Signature({
                    name: _port_member(direction, width)
                    for name, (direction, width) in ports.items()}))
        if reg.has_intr:
            members["intr"] = Out(1)
        if not members:
            continue
        node = tree
        for part in reg.path[:-1]:
            node = node.setdefault(part, {})
        node[reg.path[-1]] = wiring.Signature(members)
    if not tree:
        return None
    return _as_member(tree).signature


class RegisterBlock(wiring.Component):
    """A block of 32-bit registers behind an AXI4-Lite subordinate port, generated from a
    SystemRDL addrmap (or regfile).

    Software accesses follow the SystemRDL access properties of each field (see
    :mod:`.spec` for the supported set). Registers are 32-bit words: ``addr[0:2]`` is
    ignored, and the byte strobes select which bytes of the word a write changes.

    An access to an offset with no register is answered with ``SLVERR`` (reads return 0);
    the MMIO decoder answers ``DECERR`` for addresses outside every block. Reads and writes
    are independent: each takes an address, returns its response one cycle later, and
    accepts the next address once the response is taken (a read every 2 cycles, a write
    every 3). When a read and a write hit the same field in the same cycle, the write's
    effect is applied after the read's side effect.

    Per field, within one cycle, hardware updates (``d``/``we``, interrupt events,
    ``hwset``, then ``hwclr``) and software updates (the write, then ``rclr``/``rset``) are
    ordered by the field's ``precedence``: the later one wins (``precedence = sw``, the
    SystemRDL default, applies software last). A hardware-writable storage field without
    ``we`` loads ``d`` every cycle.

    Interrupt fields are sticky: their input (``d``, edge-detected for posedge / negedge /
    bothedge interrupts, or ``hwset``) sets bits that software clears (usually with
    ``onwrite = woclr``). A register's ``intr`` output is the OR of its interrupt bits,
    each ANDed with its ``enable`` field or with the inverse of its ``mask`` field if it
    names one, and ``irq`` is the OR of every register's ``intr``.

    Parameters
    ----------
    spec : :class:`BlockSpec` or :class:`systemrdl.node.AddrmapNode`
        The block, or a compiled addrmap / regfile node to describe with
        :func:`block_spec`.
    addr_width : int or None
        Width of the bus address; by default enough for the block's window.

    Members
    -------
    bus : ``In(AXI4LiteSignature(addr_width=addr_width, data_width=32))``
    f : ``Out(hw_signature(spec))``
        The hardware side of the fields, e.g. ``f.STATUS.busy.d``, ``f.CTRL.enable.q``,
        ``f.ch[1].TAIL.ptr.swmod``. Absent if no field has a hardware port.
    irq : ``Out(1)``
        OR of the enabled interrupt status bits (0 if the block has no interrupt field).
    """
    def __init__(self, spec, *, addr_width=None):
        if isinstance(spec, Node):
            spec = block_spec(spec)
        if not isinstance(spec, BlockSpec):
            raise TypeError(f"Expected a BlockSpec or a SystemRDL node, not {spec!r}")
        if addr_width is None:
            addr_width = spec.addr_width
        span = max((reg.offset for reg in spec.registers), default=0) + REGISTER_WIDTH // 8
        if not isinstance(addr_width, int) or not 2 <= addr_width <= 64 or span > 1 << addr_width:
            raise ValueError(f"Address width must be an integer from 2 to 64 reaching every "
                             f"register of block {spec.name!r} ({span:#x} bytes), not "
                             f"{addr_width!r}")
        self._spec = spec
        members = {
            "bus": In(AXI4LiteSignature(addr_width=addr_width, data_width=REGISTER_WIDTH)),
            "irq": Out(1),
        }
        hw = hw_signature(spec)
        if hw is not None:
            members["f"] = Out(hw)
        super().__init__(members)

    @property
    def spec(self):
        return self._spec

    def register_interface(self, name):
        """The hardware interface of register ``name`` (e.g. ``"ch[1].DESC"``)."""
        reg = self._spec.register(name)
        interface = getattr(self, "f", None)
        try:
            for part in reg.path:
                interface = interface[part] if isinstance(part, int) else getattr(interface, part)
        except (AttributeError, TypeError):
            raise KeyError(f"Register {name!r} has no hardware port") from None
        return interface

    def elaborate(self, platform):
        m = Module()
        bus = self.bus

        # Write channel: hold AW and W (in either order), then commit both in one cycle.
        aw_held = Signal()
        aw_word = Signal(len(bus.aw.payload.addr) - 2)
        w_held  = Signal()
        w_data  = Signal(REGISTER_WIDTH)
        w_mask  = Signal(REGISTER_WIDTH)    # the byte strobes, one bit per data bit
        m.d.comb += [
            bus.aw.ready.eq(~aw_held),
            bus.w.ready.eq(~w_held),
        ]
        with m.If(bus.aw.valid & bus.aw.ready):
            m.d.sync += [aw_held.eq(1), aw_word.eq(bus.aw.payload.addr[2:])]
        with m.If(bus.w.valid & bus.w.ready):
            m.d.sync += [w_held.eq(1), w_data.eq(bus.w.payload.data),
                         w_mask.eq(Cat(bit.replicate(8) for bit in bus.w.payload.strb))]

        wr_commit = Signal()
        wr_hit    = Signal()
        m.d.comb += wr_commit.eq(aw_held & w_held & ~bus.b.valid)
        with m.If(bus.b.valid & bus.b.ready):
            m.d.sync += bus.b.valid.eq(0)
        with m.If(wr_commit):
            m.d.sync += [aw_held.eq(0), w_held.eq(0), bus.b.valid.eq(1)]
            with m.If(wr_hit):
                m.d.sync += bus.b.payload.resp.eq(Resp.OKAY)
            with m.Else():
                m.d.sync += bus.b.payload.resp.eq(Resp.SLVERR)

        # Read channel: take an address when no response is pending; answer next cycle. The
        # response registers take the value at the address as it is accepted, and keep it
        # otherwise: an address left X while ``ar.valid`` is low never reaches ``r.payload``.
        rd_strobe = Signal()
        rd_word   = bus.ar.payload.addr[2:]
        m.d.comb += [
            bus.ar.ready.eq(~bus.r.valid),
            rd_strobe.eq(bus.ar.valid & bus.ar.ready),
        ]
        with m.If(bus.r.valid & bus.r.ready):
            m.d.sync += bus.r.valid.eq(0)
        with m.If(rd_strobe):
            m.d.sync += [bus.r.valid.eq(1),
                         bus.r.payload.data.eq(0), bus.r.payload.resp.eq(Resp.SLVERR)]

        # Every field's current value first, so interrupt enables can refer to any of them.
        values = {}
        for reg in self._spec.registers:
            for f in reg.fields:
                ports = self._field_ports(reg, f)
                if f.storage:
                    value = Signal(f.width, init=f.reset, name=self._signal_name(reg, f))
                elif f.hw_writable:
                    value = ports.d
                else:
                    value = C(f.reset, f.width)
                values[reg.name, f.name] = value

        irq_terms = []
        hit_terms = []
        for reg in self._spec.registers:
            word = reg.offset >> 2
            wr_sel = Signal(name=f"{self._signal_name(reg)}__wr_sel")
            rd_sel = Signal(name=f"{self._signal_name(reg)}__rd_sel")
            rd_hit = rd_word == word
            m.d.comb += [wr_sel.eq(wr_commit & (aw_word == word)),
                         rd_sel.eq(rd_strobe & rd_hit)]
            hit_terms.append(aw_word == word)

            read_value = Signal(REGISTER_WIDTH, name=f"{self._signal_name(reg)}__read")
            intr_terms = []
            for f in reg.fields:
                value = values[reg.name, f.name]
                ports = self._field_ports(reg, f)
                if f.sw_readable:
                    m.d.comb += read_value[f.lsb:f.msb + 1].eq(value)
                if f.storage:
                    self._storage_logic(m, f, value, ports, wr_sel, rd_sel,
                                        w_data[f.lsb:f.msb + 1],
                                        w_mask[f.lsb:f.msb + 1] & wr_sel.replicate(f.width))
                if "q" in f.hw_ports():
                    m.d.comb += ports.q.eq(value)
                if f.swmod:
                    written = wr_sel & w_mask[f.lsb:f.msb + 1].any()
                    m.d.comb += ports.swmod.eq(written | (rd_sel if f.onread else 0))
                if f.swacc:
                    m.d.comb += ports.swacc.eq(rd_sel)
                if f.intr:
                    if f.enable is not None:
                        intr_terms.append((value & values[f.enable]).any())
                    elif f.mask is not None:
                        intr_terms.append((value & ~values[f.mask]).any())
                    else:
                        intr_terms.append(value.any())
            if intr_terms:
                intr = self.register_interface(reg.name).intr
                m.d.comb += intr.eq(Cat(intr_terms).any())
                irq_terms.append(intr)

            with m.If(rd_strobe & rd_hit):
                m.d.sync += [bus.r.payload.data.eq(read_value),
                             bus.r.payload.resp.eq(Resp.OKAY)]

        m.d.comb += wr_hit.eq(Cat(hit_terms).any() if hit_terms else 0)
        m.d.comb += self.irq.eq(Cat(irq_terms).any() if irq_terms else 0)
        return m

    def _field_ports(self, reg, f):
        return getattr(self.register_interface(reg.name), f.name) if f.hw_ports() else None

    @staticmethod
    def _signal_name(reg, f=None):
        name = "".join(f"_{part}" if isinstance(part, int) else f"__{part}"
                       for part in reg.path).lstrip("_")
        return f"{name}__{f.name}" if f is not None else name

    @staticmethod
    def _storage_logic(m, f, value, ports, wr_sel, rd_sel, data, mask):
        # Hardware updates happen in any cycle; software ones only in a cycle that accesses
        # the register, when the whole update is chosen instead (it is the identity on the
        # software side otherwise). Evaluating it only then keeps simulation fast.
        event = None
        if f.intr and f.hw_writable:
            if f.intr == "level":
                event = ports.d
            else:
                previous = Signal(f.width, name=f"{value.name}__prev")
                m.d.sync += previous.eq(ports.d)
                event = {"posedge":  ports.d & ~previous,
                         "negedge":  ~ports.d & previous,
                         "bothedge": ports.d ^ previous}[f.intr]

        def hw_stage(next_value):
            if event is not None:
                next_value = next_value | event
            elif f.hw_writable:
                next_value = Mux(ports.we, ports.d, next_value) if f.we else ports.d
            if f.hwset:
                next_value = Mux(ports.hwset, f.ones, next_value)
            if f.hwclr:
                next_value = Mux(ports.hwclr, 0, next_value)
            return next_value

        def sw_stage(next_value):
            if f.onread == "rclr":
                next_value = Mux(rd_sel, 0, next_value)
            elif f.onread == "rset":
                next_value = Mux(rd_sel, f.ones, next_value)
            if f.sw_writable:
                next_value = apply_sw_write(f.onwrite, next_value, data, mask, f.ones)
            return next_value

        base = C(0, f.width) if f.singlepulse else value
        idle_next = hw_stage(base)
        if idle_next is not value:
            m.d.sync += value.eq(idle_next)
        access = [sel for sel, used in ((wr_sel, f.sw_writable), (rd_sel, f.onread)) if used]
        if access:
            with m.If(Cat(access).any()):
                if f.precedence == "sw":
                    m.d.sync += value.eq(sw_stage(idle_next))
                else:
                    m.d.sync += value.eq(hw_stage(sw_stage(base)))
