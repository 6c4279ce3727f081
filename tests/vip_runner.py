"""Running a block's generated Verilog under cocotb, with third-party VIP (cocotbext-axi).

:func:`run` writes the block's Verilog as ``dmabuf-soc verilog --block NAME`` writes it, with
a JSON description of its ports beside it (for ``tests/vip/harness.py``), compiles it with
Icarus Verilog in its default SystemVerilog mode (``-g2012``, cocotb's default) and runs one
cocotb test module from ``tests/vip/``. A failing cocotb test fails the calling pytest test.

Icarus comes from Debian's ``iverilog`` package (``.ci/run`` installs it). Without it the
tests skip, except under CI (``CI=true``), where they fail.
"""

import hashlib
import json
import os
import shutil
import sys
from pathlib import Path

import pytest

from dmabuf_soc.hw import catalog
from dmabuf_soc.hw.bus.axi import AXI4LiteSignature
from dmabuf_soc.hw.config import SocConfig
from dmabuf_soc.sw import cli

__all__ = ["VIP_DIR", "run"]

VIP_DIR = Path(__file__).resolve().parent / "vip"


def _require_tools():
    missing = [name for name in ("iverilog", "vvp") if shutil.which(name) is None]
    try:
        import cocotb  # noqa: F401
        import cocotbext.axi  # noqa: F401
    except ImportError as error:
        missing.append(f"Python package {error.name}")
    if missing:
        message = (f"the VIP tests need {', '.join(missing)} (Icarus Verilog: Debian package "
                   f"iverilog; cocotb, cocotbext-axi: pip install -e '.[test]')")
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


def build(block, config, build_root):
    """Write block ``block``'s Verilog and port description under ``build_root`` (once per
    block and configuration); returns ``(verilog path, ports path)``."""
    key = hashlib.sha256(repr((block, config)).encode()).hexdigest()[:12]
    folder = Path(build_root) / f"{block}-{key}"
    verilog, ports = folder / f"{block}.v", folder / "ports.json"
    if not verilog.exists():
        folder.mkdir(parents=True, exist_ok=True)
        argv = ["verilog", "--block", block, "-o", str(verilog)]
        for name, field in SocConfig.__dataclass_fields__.items():
            value = getattr(config, name)
            if field.type in (int, "int") and value != getattr(SocConfig(), name):
                argv += ["--set", f"{name}={value}"]
        assert cli.main(argv) == 0
        top = catalog.standard_ports(block, config)
        from dmabuf_soc.hw.unused import never_elaborated
        never_elaborated(top)
        ports.write_text(json.dumps(_ports_json(top), indent=1))
    return verilog, ports


def run(block, module, build_root, *, config=None, testcase=None, seed=1, extra_env=None):
    """Run the cocotb tests of ``tests/vip/<module>.py`` (all, or ``testcase``) on block
    ``block``'s Verilog under Icarus; fails the calling test if one of them fails."""
    _require_tools()
    from cocotb_tools.runner import get_runner
    config = SocConfig() if config is None else config
    verilog, ports = build(block, config, build_root)
    sim_build = verilog.parent / "icarus"
    runner = get_runner("icarus")
    runner.build(sources=[verilog], hdl_toplevel=block, build_dir=sim_build,
                 timescale=("1ns", "1ps"))
    if str(VIP_DIR) not in sys.path:
        sys.path.append(str(VIP_DIR))       # the runner passes sys.path on as PYTHONPATH
    env = {"DMABUF_SOC_VIP_PORTS": str(ports), **(extra_env or {})}
    test_dir = verilog.parent / f"run-{module}-{testcase or 'all'}-{seed}"
    runner.test(test_module=module, hdl_toplevel=block, build_dir=sim_build,
                test_dir=test_dir, testcase=testcase, seed=seed, extra_env=env)
