"""Shared pytest configuration: ``--run-slow`` enables the tests marked ``slow``;
``--compiled`` adds the compiled backends (``--compiled=verilator`` or ``--compiled=cxxrtl``
one of them) to the co-verification tests."""

import os

import pytest

from dmabuf_soc.sw.machine.cxxrtl.builder import DISABLE_ENV as NO_CXXRTL
from dmabuf_soc.sw.machine.verilator.builder import DISABLE_ENV as NO_VERILATOR

#: What ``--compiled`` takes, and the backends each choice turns on.
COMPILED_CHOICES = {"all": ("verilator", "cxxrtl"), "verilator": ("verilator",),
                    "cxxrtl": ("cxxrtl",)}
_DISABLE = {"verilator": NO_VERILATOR, "cxxrtl": NO_CXXRTL}


def pytest_addoption(parser):
    parser.addoption("--run-slow", action="store_true", default=False,
                     help="also run the tests marked slow (long random soaks)")
    parser.addoption("--compiled", nargs="?", const="all", default=None,
                     choices=sorted(COMPILED_CHOICES),
                     help="also run the co-verification tests on the compiled backends: all "
                          "of them, or the one named (--compiled=verilator); the first run "
                          "builds each model: a minute for Verilator, minutes for CXXRTL")


def pytest_configure(config):
    # A compiled backend not asked for counts as unavailable, so the co-verification tests
    # run on the built-in simulator alone and the default run stays short.
    chosen = COMPILED_CHOICES.get(config.getoption("--compiled"), ())
    for backend, variable in _DISABLE.items():
        if backend not in chosen:
            os.environ[variable] = "1"


def pytest_collection_modifyitems(config, items):
    if config.getoption("--run-slow"):
        return
    skip_slow = pytest.mark.skip(reason="slow: run with --run-slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip_slow)
