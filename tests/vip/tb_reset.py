"""Every output of a block after reset, with every input held at zero: none X or Z, and the
same whatever the simulator chose for the registers' and memories' initial contents
(Verilator's ``--x-initial unique`` with a random seed).

(With payload inputs left X, as third-party VIP leaves them, the payloads that a block passes
straight through, such as the SMMU's write data, are X too; the VIP tests check that no VALID
or READY ever is.)"""

import json
import os

import cocotb

from harness import ports, start


@cocotb.test()
async def outputs_after_reset(dut):
    """Write every output's value in the cycle after reset to a file (``start`` fails on an
    X or Z)."""
    await start(dut, inputs={port["name"]: 0 for port in ports()["ports"]
                             if port["direction"] == "input"})
    values = {port["name"]: str(getattr(dut, port["name"]).value)
              for port in ports()["ports"] if port["direction"] == "output"}
    with open(os.environ["VIP_RESET_VALUES"], "w") as file:
        json.dump(values, file, indent=1, sort_keys=True)
