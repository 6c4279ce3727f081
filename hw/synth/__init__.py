"""Synthesisable tops and out-of-context wrappers of the blocks, for FPGA builds."""
