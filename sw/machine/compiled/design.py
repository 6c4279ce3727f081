"""The design every compiled backend starts from: the SoC's RTLIL, ready for yosys."""

import re
from pathlib import Path

from amaranth.back import rtlil

from ....hw.config import SocConfig
from ....hw.soc import Soc

__all__ = ["TIE_RESET", "RUN_TIME", "soc_config", "build_config", "soc_rtlil", "probes_key",
           "drop_zero_meminit"]

#: yosys commands run on the prepared design of every compiled model: ``rst`` is no longer an
#: input but tied low, and the reset logic of every register goes with it. The machine never
#: resets the SoC (a model starts in its power-up state: every register at its reset value,
#: the cache's tags invalid, so the reset sweep a warm reset runs is not needed), and a
#: synchronous reset checked by every register is a tenth of a compiled model's work per
#: cycle.
TIE_RESET = "delete -port soc/rst; cd soc; connect -set rst 1'b0; cd; opt; opt_clean"

_MEMINIT = re.compile(r'(?:  attribute \\src "[^"\n]*"\n)?  cell \$meminit_v2 \S+\n'
                      r'(?:    [^\n]*\n)*?  end\n')
_MEMINIT_DATA = re.compile(r"    connect \\DATA \d+'([01]*)\n")


def soc_config(config):
    """``config``, or the default :class:`SocConfig` if it is ``None``; :exc:`TypeError` if it
    is something else."""
    config = SocConfig() if config is None else config
    if not isinstance(config, SocConfig):
        raise TypeError(f"Configuration must be a SocConfig, not {config!r}")
    return config


#: The parameters a compiled model takes at run time (from the SoC's ``ddr_ctrl`` port), so
#: that configurations differing only in them share a build.
RUN_TIME = ("read_latency", "write_latency")


def build_config(config):
    """The configuration a compiled model of ``config`` is built from: ``config`` with the
    :data:`RUN_TIME` parameters at their defaults."""
    return config.replace(**{name: SocConfig.__dataclass_fields__[name].default
                             for name in RUN_TIME})


def drop_zero_meminit(text):
    """``text`` without the memory initialisers that only hold zeros (the compiled models
    start their memories at zero): the DDR banks' would be megabytes of code to compile."""
    def replace(match):
        data = _MEMINIT_DATA.search(match.group(0))
        return "" if data is not None and "1" not in data.group(1) else match.group(0)
    return _MEMINIT.sub(replace, text)


def soc_rtlil(config, *, probes=False):
    """The RTLIL of the SoC made from ``config`` (with the transaction trace's ``probe`` port
    if ``probes``), its top module named ``soc``, without its all-zero memory initialisers."""
    return drop_zero_meminit(rtlil.convert(Soc(config, probes=probes), name="soc"))


def probes_key(probes):
    """What a build's cache key adds for the ``probe`` port: nothing without it, else the
    source of the probe table."""
    if not probes:
        return ()
    from ....sim.trace import probes as table
    return ("probes", Path(table.__file__).read_bytes())
