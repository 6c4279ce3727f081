"""Silencing Amaranth's ``UnusedElaboratable`` warning for designs built on purpose and never
elaborated (a block taken out of the SoC, a SoC whose ports alone are looked at)."""

from amaranth.hdl import Elaboratable

__all__ = ["never_elaborated"]


def never_elaborated(obj):
    """Mark ``obj`` and every elaboratable it holds (in attributes, lists, tuples and dicts,
    at any depth) as not meant to be elaborated; returns ``obj``."""
    seen = set()

    def visit(obj):
        if id(obj) in seen:
            return
        seen.add(id(obj))
        if isinstance(obj, Elaboratable):
            obj._MustUse__silence = True
            children = vars(obj).values()
        elif isinstance(obj, (list, tuple)):
            children = obj
        elif isinstance(obj, dict):
            children = obj.values()
        else:
            return
        for child in children:
            visit(child)

    visit(obj)
    return obj
