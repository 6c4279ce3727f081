"""What ``--timeline FILE`` and ``--report DIR`` make of a command's runs: the checks before
any work, the recording around the work, and the files after it."""

import contextlib
import os
from pathlib import Path

from .record import write_jsonl
from .spans import recording
from .timeline import check_path, require_matplotlib

__all__ = ["TraceOutputs"]


class TraceOutputs:
    """The trace outputs one command asked for.

    Parameters
    ----------
    timeline : str or path or None
        The picture to write (PNG or SVG, by the extension).
    report : str or path or None
        The folder of the HTML report (made here if missing; its parent must exist).
    title : str
        What the picture and the page are titled.

    Raises
    ------
    ValueError
        With the one-line reason, if an output cannot be written (checked before any work).
    """
    def __init__(self, timeline=None, report=None, *, title):
        self.timeline = None if timeline is None else Path(timeline)
        self.report = None if report is None else Path(report)
        self.title = title
        self.trace = None
        if self.timeline is None and self.report is None:
            return
        try:
            require_matplotlib()
        except RuntimeError as error:
            raise ValueError(str(error)) from None
        if self.timeline is not None:
            check_path(self.timeline)
        if self.report is not None:
            if self.report.exists() and not self.report.is_dir():
                raise ValueError(f"--report {self.report}: is a file, not a folder")
            parent = self.report.resolve().parent
            if not parent.is_dir():
                raise ValueError(f"--report {self.report}: the folder {parent} does not exist")
            if not os.access(self.report if self.report.exists() else parent, os.W_OK):
                raise ValueError(f"--report {self.report}: cannot write there")
            self.report.mkdir(exist_ok=True)

    @property
    def wanted(self):
        """Whether any output was asked for."""
        return self.timeline is not None or self.report is not None

    @property
    def vcd(self):
        """The VCD file the report holds (in its folder), or ``None``."""
        return None if self.report is None else self.report / "waves.vcd"

    @contextlib.contextmanager
    def recording(self):
        """Trace the block's simulations, if any output was asked for."""
        if not self.wanted:
            yield None
            return
        with recording() as trace:
            self.trace = trace
            yield trace

    def write(self, result, *, panels=None, comparison=None):
        """Write the outputs from the recorded trace and the command's ``result`` (its report
        dict); ``panels`` for the picture (:func:`~.timeline.render`), ``comparison`` a dict
        of bar name to cycles for the report's bar chart."""
        if not self.wanted:
            return
        from .timeline import render
        for run in self.trace.runs:
            if not run.title:
                run.title = (f"{self.title} on {run.backend}" if len(self.trace.runs) == 1
                             else f"{self.title}, run {run.index + 1} on {run.backend}")
        records = self.trace.records()
        if self.timeline is not None:
            render(records, self.timeline, panels=panels, title=self.title)
        if self.report is not None:
            from .report import write_report
            write_jsonl(records, self.report / "trace.jsonl")
            write_report(self.report, records, result, title=self.title, panels=panels,
                         comparison=comparison,
                         vcd=self.vcd if self.vcd.exists() else None)
