"""Shared pytest configuration: ``--run-slow`` enables the tests marked ``slow``;
``--cxxrtl`` adds the compiled backend to the co-verification tests."""

import os

import pytest

from dmabuf_soc.sw.machine.cxxrtl.builder import DISABLE_ENV


def pytest_addoption(parser):
    parser.addoption("--run-slow", action="store_true", default=False,
                     help="also run the tests marked slow (long random soaks)")
    parser.addoption("--cxxrtl", action="store_true", default=False,
                     help="also run the co-verification tests on the compiled CXXRTL backend "
                          "(the first run builds the SoC with the C++ compiler: minutes)")


def pytest_configure(config):
    # Without --cxxrtl the compiled backend counts as unavailable, so the co-verification
    # tests run on the built-in simulator alone and the default run stays short.
    if not config.getoption("--cxxrtl"):
        os.environ[DISABLE_ENV] = "1"


def pytest_collection_modifyitems(config, items):
    if config.getoption("--run-slow"):
        return
    skip_slow = pytest.mark.skip(reason="slow: run with --run-slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip_slow)
