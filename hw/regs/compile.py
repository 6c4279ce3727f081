"""SystemRDL front end: compile ``.rdl`` files into elaborated register models, cached."""

import functools
import os

from systemrdl import RDLCompileError, RDLCompiler
from systemrdl.messages import MessagePrinter, Severity
from systemrdl.source_ref import DetailedFileSourceRef, FileSourceRef

__all__ = ["RdlError", "compile_rdl"]


class RdlError(Exception):
    """A SystemRDL source failed to compile or elaborate.

    Attributes
    ----------
    paths : tuple of str
        The files that were being compiled.
    messages : tuple of str
        The compiler's messages, each ``path:line:column: severity: text``.
    """
    def __init__(self, paths, messages):
        self.paths = tuple(paths)
        self.messages = tuple(messages)
        detail = "\n".join(self.messages) or "(no message from the compiler)"
        super().__init__(f"SystemRDL compilation of {', '.join(self.paths)} failed:\n{detail}")


class _CollectingPrinter(MessagePrinter):
    """Keeps the compiler's messages as plain text instead of printing them in colour."""

    def __init__(self):
        self.messages = []

    def print_message(self, severity, text, src_ref):
        if severity < Severity.WARNING:
            return
        if isinstance(src_ref, DetailedFileSourceRef):
            where = f"{src_ref.path}:{src_ref.line}:{src_ref.line_selection[0] + 1}: "
        elif isinstance(src_ref, FileSourceRef):
            where = f"{src_ref.path}: "
        else:
            where = ""
        self.messages.append(f"{where}{severity.name.lower()}: {text}")


def compile_rdl(*paths, top=None, parameters=None, include_paths=()):
    """Compile and elaborate SystemRDL files; return the top-level addrmap node.

    Results are cached: compiling the same files (unchanged on disk) with the same
    arguments again returns the same node objects, which callers must not modify.

    Parameters
    ----------
    *paths : str or os.PathLike
        Source files, compiled in order into one namespace.
    top : str or None
        Type name of the addrmap to elaborate; the last one defined if ``None``.
    parameters : dict or None
        Parameter overrides for the top-level addrmap.
    include_paths : iterable of str or os.PathLike
        Extra directories searched by ```include`` (the including file's own
        directory is always searched first).

    Returns
    -------
    :class:`systemrdl.node.AddrmapNode`

    Raises
    ------
    FileNotFoundError
        If a source file does not exist.
    RdlError
        If the sources do not compile or elaborate; the message names the file and
        carries the compiler's diagnostics.
    """
    if not paths:
        raise TypeError("compile_rdl() needs at least one source file")
    resolved = []
    for path in paths:
        path = os.path.abspath(os.fspath(path))
        if not os.path.isfile(path):
            raise FileNotFoundError(f"SystemRDL source {path!r} does not exist")
        resolved.append(path)
    stamps = tuple((path, os.stat(path).st_mtime_ns) for path in resolved)
    frozen_parameters = tuple(sorted((parameters or {}).items()))
    include_paths = tuple(os.path.abspath(os.fspath(path)) for path in include_paths)
    return _compile_cached(stamps, top, frozen_parameters, include_paths)


@functools.lru_cache(maxsize=64)
def _compile_cached(stamps, top, parameters, include_paths):
    printer = _CollectingPrinter()
    compiler = RDLCompiler(message_printer=printer)
    paths = [path for path, _ in stamps]
    try:
        for path in paths:
            compiler.compile_file(path, incl_search_paths=list(include_paths))
        root = compiler.elaborate(top_def_name=top, parameters=dict(parameters))
    except RDLCompileError:
        raise RdlError(paths, printer.messages) from None
    return root.top
