"""A block under proof with the property sets on its ports: the top of one formal job."""

import weakref

from amaranth.back import rtlil
from amaranth.hdl import Elaboratable, Fragment, Module, Value
from amaranth.lib import wiring

from .properties import PropertySet

__all__ = ["Harness", "Inside"]

#: The blocks elaborated for a look inside, and their elaboration.
_ELABORATED = weakref.WeakKeyDictionary()


class Inside:
    """A look inside a block under proof: its internal signals, by name, for invariants.

    Elaborates ``block`` once, now; a :class:`Harness` of the block puts that elaboration in
    its design, so the signals found are the block's own. ``inside["name"]`` is the signal
    ``name`` the block drives; ``inside["sub.name"]`` one of its submodule ``sub``.

    Raises
    ------
    KeyError
        If no signal, or more than one, of that name is driven there.
    """
    def __init__(self, block):
        if block not in _ELABORATED:
            _ELABORATED[block] = Fragment.get(block, None)
        self.fragment = _ELABORATED[block]

    def __getitem__(self, path):
        return self.find(path)

    def find(self, path, *, domain=None):
        """The signal ``path``; with ``domain`` (``"sync"`` for a register), only one driven
        in that domain, where two of the same name are driven."""
        *scopes, name = path.split(".")
        fragment = self.fragment
        for scope in scopes:
            found = [sub for sub, sub_name, _ in fragment.subfragments if sub_name == scope]
            if len(found) != 1:
                raise KeyError(f"No submodule {scope!r} in {path!r}")
            fragment = found[0]
        signals = {id(signal): signal for statement_domain, statements
                   in fragment.statements.items() if domain in (None, statement_domain)
                   for statement in statements for signal in statement._lhs_signals()
                   if signal.name == name}
        if len(signals) != 1:
            raise KeyError(f"{len(signals)} signals {path!r} driven in the block")
        return next(iter(signals.values()))

    def fsm(self, path):
        """``(state, encoding)`` of the FSM whose state signal is ``path``: the signal, and
        ``{state name: value}`` as Amaranth numbered the states."""
        state = self[path]
        encoding = {}
        for value in range(1 << len(state)):
            try:
                name, _, number = state.decoder(value).rpartition("/")
            except KeyError:        # a value no state has
                continue
            if name and number == str(value):
                encoding[name] = value
        return state, encoding


class Harness(Elaboratable):
    """The block ``dut`` and the property sets on its ports, its inputs left free.

    Parameters
    ----------
    dut : :class:`~amaranth.lib.wiring.Component`
        The block under proof; every port of its signature becomes a port of the top, so
        that the environment drives its inputs (within the sets' assumptions).
    sets : iterable of :class:`~.properties.PropertySet`
        Interface rules and block-specific ones; each becomes a submodule of its name.
    inputs : iterable of Signal
        More free inputs (of a wrapper around the block, say).

    Raises
    ------
    TypeError
        If ``dut`` is not a component or a set is not a :class:`PropertySet`.
    ValueError
        If two sets share a name.
    """
    def __init__(self, dut, sets, *, inputs=()):
        if not isinstance(dut, wiring.Component):
            raise TypeError(f"Block under proof must be a Component, not {dut!r}")
        sets = list(sets)
        names = set()
        for property_set in sets:
            if not isinstance(property_set, PropertySet):
                raise TypeError(f"Property set must be a PropertySet, not {property_set!r}")
            if property_set.name in names or property_set.name == "dut":
                raise ValueError(f"Property set name {property_set.name!r} is used twice")
            names.add(property_set.name)
        self.dut = dut
        self.sets = sets
        self.inputs = list(inputs)

    def elaborate(self, platform):
        m = Module()
        m.submodules.dut = _ELABORATED.get(self.dut, self.dut)
        for property_set in self.sets:
            m.submodules[property_set.name] = property_set
        return m

    def rtlil(self):
        """The RTLIL text of the top, module ``top``, with the block's ports and the free
        inputs as its ports. Elaborates the sets (which fills their ``rules`` and ``covers``)."""
        ports = [Value.cast(value) for _, _, value in self.dut.signature.flatten(self.dut)]
        ports = [value for value in ports if len(value)]
        free = [signal for property_set in self.sets for signal in property_set.free]
        return rtlil.convert(self, name="top", ports=[*ports, *free, *self.inputs])
