"""Counting the instructions that a piece of Python executes, with valgrind's cachegrind: a
measure of work that neither a busy nor a noisy machine changes (the same run counts the same
to a few hundred instructions in a billion), where time varies by several percent from one
run to the next. What instructions do not show is how fast the processor runs them: code that
misses its caches or predictors more runs slower for the same count."""

import os
import re
import shutil
import subprocess
import sys

__all__ = ["CountError", "available", "version", "count"]

_TOTAL = re.compile(r"I\s+refs:\s+([\d,]+)")


class CountError(Exception):
    """valgrind is missing, or a counted run failed."""


def available():
    """Whether valgrind is installed (Debian's ``valgrind``)."""
    return shutil.which("valgrind") is not None


def version():
    """valgrind's version, such as ``valgrind-3.19.0``."""
    return subprocess.run(["valgrind", "--version"], capture_output=True, text=True,
                          check=True).stdout.strip()


def count(code, *args, env=None):
    """Run ``python -c code args...`` under cachegrind; the instructions it executed (the
    whole process's, from the interpreter's start) and what it printed.

    The run's hash seed is fixed, so that the interpreter's dictionaries, and the count, are
    the same from one run to the next; ``env`` adds to the environment.
    """
    if not available():
        raise CountError("Counting instructions needs valgrind: install Debian's valgrind")
    environment = {**os.environ, **(env or {}), "PYTHONHASHSEED": "0"}
    command = ["valgrind", "--tool=cachegrind", "--cache-sim=no", "--branch-sim=no",
               "--cachegrind-out-file=/dev/null", sys.executable, "-c", code, *map(str, args)]
    result = subprocess.run(command, capture_output=True, text=True, env=environment)
    total = _TOTAL.search(result.stderr)
    if result.returncode or total is None:
        raise CountError(f"A counted run failed ({' '.join(map(str, args))}):\n"
                         f"{result.stderr[-3000:]}")
    return int(total.group(1).replace(",", "")), result.stdout
