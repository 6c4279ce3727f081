"""The SMMU walker's client interface as a property set, and the walker's cover points."""

from amaranth.hdl import Cat

from ...hw.smmu.arbiter import TranslationClientSignature, TranslationStatus
from .properties import PropertySet

__all__ = ["TranslationClientProperties", "WalkCovers"]


class TranslationClientProperties(PropertySet):
    """The rules of a :class:`~dmabuf_soc.hw.smmu.arbiter.TranslationClientSignature` port:
    the client (manager) holds ``valid`` and its request stable until ``done``, and asks
    nothing in the first cycle after a reset; the walker (subordinate) answers ``done`` only
    while asked.

    Parameters
    ----------
    port, role, name : see :class:`~.properties.PropertySet`
    """
    port_signature = TranslationClientSignature

    def build(self, m):
        port = self.port
        request = Cat(port.sid, port.addr, port.write, port.instr)
        waiting = self.past(m, port.valid & ~port.done, "waiting")
        was_request = self.past(m, request, "request")
        held = self.past_valid & waiting
        self.rule(m, "manager", "valid_held", port.valid, when=held)
        self.rule(m, "manager", "request_stable", request == was_request, when=held)
        self.rule(m, "manager", "reset", ~port.valid, when=~self.past_valid)
        self.rule(m, "subordinate", "done_when_asked", port.valid, when=port.done)
        self.cover(m, "translated", port.done & (port.status == TranslationStatus.OK))
        self.cover(m, "faulted", port.done & (port.status == TranslationStatus.FAULT))


class WalkCovers(PropertySet):
    """Cover points of a :class:`~dmabuf_soc.hw.smmu.walker.Walker`: a page-table
    descriptor read for a client (an IOTLB miss walked), and a fault record written.

    Parameters
    ----------
    walker : Walker
    name : str
    """
    def __init__(self, walker, *, name="walk"):
        super().__init__(walker, role="subordinate", name=name)

    def build(self, m):
        walker = self.port
        self.cover(m, "iotlb_miss_walk", walker.walk_read)
        self.cover(m, "fault_record", walker.event)
