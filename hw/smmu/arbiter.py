"""The walker's requests: the clients that ask for translations, the prefetch requests it
takes while none asks, and the arbiter that chooses one, holds it and answers its client."""

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import enum, wiring
from amaranth.lib.wiring import In, Out

from ..parameters import check_integer
from .format import OA_BITS

__all__ = ["TranslationStatus", "TranslationClientSignature", "PrefetchRequestSignature",
           "ClientArbiter"]


class TranslationStatus(enum.Enum, shape=2):
    OK    = 0
    FAULT = 1
    ABORT = 2


class TranslationClientSignature(wiring.Signature):
    """A client of the walker, from the client's side: ``valid`` is held with the request
    until ``done`` pulses with the answer."""
    def __init__(self, *, sid_width, addr_width=OA_BITS):
        super().__init__({
            "valid":  Out(1),
            "sid":    Out(sid_width),
            "addr":   Out(addr_width),
            "write":  Out(1),
            "instr":  Out(1),
            "done":   In(1),
            "status": In(TranslationStatus),
            "pa":     In(addr_width),
        })


class PrefetchRequestSignature(wiring.Signature):
    """A prefetch request to the walker, from the requester's side: ``valid`` with the
    stream and the page address (``addr`` with bits [11:0] clear), until ``ready``."""
    def __init__(self, *, sid_width, addr_width=OA_BITS):
        super().__init__({
            "valid": Out(1),
            "sid":   Out(sid_width),
            "addr":  Out(addr_width),
            "ready": In(1),
        })


class ClientArbiter(wiring.Component):
    """Chooses the request the walker serves, holds it, and answers its client.

    Clients are chosen round-robin, a cycle ahead from registers: a client holds ``valid``
    until ``done``, so only the one answered in a cycle is left out of the next choice, and
    a client that starts asking is seen a cycle later. While no client asks, the
    lowest-numbered valid prefetch request is taken instead.

    The request is registered in every cycle of ``take`` (a client's if one asks, else the
    first valid prefetch's), so that the enables of its registers, which feed the caches'
    lookups, are ``take`` alone.

    Parameters
    ----------
    clients : int
    prefetchers : int
        Prefetch request ports (0: none).
    sid_width : int

    Members
    -------
    clients : ``In(TranslationClientSignature(...)).array(clients)``
    prefetch : ``In(PrefetchRequestSignature(...)).array(prefetchers)``
    take : ``In(1)``
        The walker is idle: take the next request, if there is one.
    prefetch_enable : ``In(1)``
        Prefetch requests may be taken.
    asking : ``Out(1)``
        A client asks (seen a cycle late, from registers).
    taken : ``Out(1)``
        A request is taken this cycle (while ``take``).
    sid, addr, write, instr : ``Out``
        The request taken last.
    prefetching : ``Out(1)``
        It is a prefetch: it answers no one.
    respond : ``In(1)``
        Answer the request's client with ``status`` and ``pa`` (its ``done`` is registered:
        it pulses in the next cycle).
    withhold : ``In(1)``
        Hold back the ``done`` due this cycle: the request starts over.
    status : ``In(TranslationStatus)``, pa : ``In(OA_BITS)``
        The answer, given to every client.
    """
    def __init__(self, *, clients, prefetchers=0, sid_width):
        check_integer("Number of clients", clients, minimum=1)
        check_integer("Number of prefetchers", prefetchers, minimum=0)
        check_integer("Stream ID width", sid_width, minimum=1)
        self.n_clients = clients
        self.n_prefetchers = prefetchers
        super().__init__({
            "clients": In(TranslationClientSignature(sid_width=sid_width)).array(clients),
            "prefetch": In(PrefetchRequestSignature(sid_width=sid_width)).array(prefetchers),
            "take": In(1),
            "prefetch_enable": In(1),
            "asking": Out(1),
            "taken": Out(1),
            "sid": Out(sid_width),
            "addr": Out(OA_BITS),
            "write": Out(1),
            "instr": Out(1),
            "prefetching": Out(1),
            "respond": In(1),
            "withhold": In(1),
            "status": In(TranslationStatus),
            "pa": In(OA_BITS),
        })

    def elaborate(self, platform):
        m = Module()
        n = self.n_clients
        grant = Signal(range(n))            # the client served last

        pick = Signal(range(n))
        asking = self.asking
        next_pick = Signal(range(n))
        next_asking = Signal()
        for last in range(n):
            with m.If(grant == last):
                for k in reversed(range(n)):
                    index = (last + 1 + k) % n
                    client = self.clients[index]
                    with m.If(client.valid & ~client.done):
                        m.d.comb += [next_pick.eq(index), next_asking.eq(1)]
        m.d.sync += [pick.eq(next_pick), asking.eq(next_asking)]

        with m.If(self.take):
            m.d.sync += [self.write.eq(0), self.instr.eq(0)]
            if self.n_prefetchers:
                last = self.prefetch[-1]
                m.d.sync += [self.sid.eq(last.sid), self.addr.eq(last.addr)]
            for request in reversed(self.prefetch):
                with m.If(request.valid):
                    m.d.sync += [self.sid.eq(request.sid), self.addr.eq(request.addr)]
            with m.If(asking):
                for k, client in enumerate(self.clients):
                    with m.If(pick == k):
                        m.d.sync += [self.sid.eq(client.sid), self.addr.eq(client.addr),
                                     self.write.eq(client.write), self.instr.eq(client.instr)]
                m.d.sync += [grant.eq(pick), self.prefetching.eq(0)]
                m.d.comb += self.taken.eq(1)
            if self.n_prefetchers:
                with m.Elif(self.prefetch_enable &
                            Cat(request.valid for request in self.prefetch).any()):
                    earlier = Const(0)
                    for request in self.prefetch:
                        m.d.comb += request.ready.eq(request.valid & ~earlier)
                        earlier = earlier | request.valid
                    m.d.sync += self.prefetching.eq(1)
                    m.d.comb += self.taken.eq(1)

        # ``done`` comes from a register (one-hot, for the clients' wide enables).
        answering = Signal(n)
        m.d.sync += answering.eq(0)
        with m.If(self.respond):
            m.d.sync += answering.eq(Mux(self.prefetching, 0,
                                         Cat(grant == k for k in range(n))))
        for k, client in enumerate(self.clients):
            m.d.comb += [client.done.eq(answering[k] & ~self.withhold),
                         client.status.eq(self.status), client.pa.eq(self.pa)]
        return m
