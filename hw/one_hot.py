"""FSMs that synthesis encodes one-hot: one flip-flop per state, so that being in a state
is one bit on every timing path that decodes it."""

from contextlib import contextmanager

__all__ = ["one_hot_fsm"]


@contextmanager
def one_hot_fsm(m, **kwargs):
    """``with one_hot_fsm(m, ...) as fsm:`` is ``with m.FSM(...) as fsm:`` with synthesis asked
    to give the FSM one flip-flop per state.

    Amaranth encodes an FSM's state in binary and gives its register an initial value, and
    yosys re-encodes no register that has one. So every ``m.State`` body and every
    ``fsm.ongoing()`` decodes all the state bits: two LUT levels where there are more than
    sixteen states, before any condition of the state is looked at. The ``fsm_encoding``
    attribute makes yosys extract the FSM and re-encode it one-hot, where being in a state is
    one flip-flop.

    Yosys then drops the initial value, with a warning, and makes reset one of the FSM's
    transitions: the state is right only after a reset, not at power-up (its flip-flops start
    at 0 on ECP5 and iCE40 alike, no state at all). An AXI component needs a reset after
    configuration anyway (``ARESETn``); a board top holds ``rst`` for a cycle at start.
    Simulation is unaffected.

    Parameters
    ----------
    m : Module
    **kwargs
        Passed to :meth:`Module.FSM` (``init``, ``domain``, ``name``).
    """
    with m.FSM(**kwargs) as fsm:
        yield fsm
    fsm.state.attrs["fsm_encoding"] = "one-hot"    # the state register exists only now
