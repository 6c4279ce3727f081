"""What every block does with its parameters: check them, and make signatures of them.

A block's constructor checks each integer parameter with :func:`check_integer`, so that a bad
value stops elaboration with the parameter's name, the value and what is allowed. A signature
that is a function of a few parameters derives from :class:`ParameterSignature`, which makes
two such signatures equal when they are of one class with equal parameters.
"""

from amaranth.lib import wiring

__all__ = ["check_integer", "ParameterSignature"]


def check_integer(name, value, *, minimum=None, maximum=None, power_of_two=False,
                  allowed=None):
    """Check that ``value`` is an integer that parameter ``name`` may take.

    Parameters
    ----------
    name : str
        The parameter as the error names it (``"Address width"``).
    value : object
        The value given.
    minimum, maximum : int or None
        Bounds, both included.
    power_of_two : bool
        Whether ``value`` must be a power of two.
    allowed : iterable of int or None
        The only values allowed.

    Raises
    ------
    TypeError
        If ``value`` is not an integer (a ``bool`` is not one here).
    ValueError
        If ``value`` is out of bounds, not a power of two, or not allowed.
    """
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an integer, not {value!r}")
    if allowed is not None:
        allowed = tuple(allowed)
        if value not in allowed:
            raise ValueError(f"{name} must be one of {', '.join(map(str, allowed))}, "
                             f"not {value!r}")
    if power_of_two and (value < max(1, minimum or 1) or value & (value - 1)):
        raise ValueError(f"{name} must be a power of two of at least {max(1, minimum or 1)}, "
                         f"not {value!r}")
    if minimum is not None and maximum is not None:
        if not minimum <= value <= maximum:
            raise ValueError(f"{name} must be from {minimum} to {maximum}, not {value!r}")
    elif minimum is not None and value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, not {value!r}")
    elif maximum is not None and value > maximum:
        raise ValueError(f"{name} must be at most {maximum}, not {value!r}")


class ParameterSignature(wiring.Signature):
    """A signature made from a few parameters, and equal to another of its class with equal
    parameters.

    A subclass names its parameters in ``parameters`` and keeps each as an attribute of that
    name; :meth:`__repr__` shows them as a call of the class.
    """
    parameters = ()

    def _parameter_values(self):
        return tuple(getattr(self, name) for name in self.parameters)

    def __eq__(self, other):
        return (type(other) is type(self) and
                other._parameter_values() == self._parameter_values())

    def __hash__(self):
        return hash((type(self), self._parameter_values()))

    def __repr__(self):
        arguments = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.parameters)
        return f"{type(self).__name__}({arguments})"
