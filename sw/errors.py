"""Kernel-style failures: an :class:`OSError` carrying the errno Linux returns, and bugs.

Linux reports a failed call by returning ``-errno`` (or ``ERR_PTR(-errno)``); here the same
call raises :class:`KernelError` with that errno and a message saying which rule was broken.
What Linux treats as a kernel bug (``BUG_ON``, or a ``WARN_ON`` that the caller cannot recover
from, such as freeing a page twice) raises :class:`KernelBug` instead: there is no errno for it.
"""

import errno as _errno
import os

__all__ = ["KernelError", "KernelBug", "errno_name"]


def errno_name(code):
    """The symbolic name of ``code`` (``"EINVAL"``), or its number as a string."""
    return _errno.errorcode.get(code, str(code))


class KernelError(OSError):
    """A call failed with ``errno``, as the Linux function it models would.

    Parameters
    ----------
    code : int
        Positive errno value (``errno.EINVAL``, ...).
    message : str
        Which rule the call broke, with the offending values.

    Attributes
    ----------
    errno : int
        The errno, as for every :class:`OSError`.
    """

    def __init__(self, code, message):
        if not isinstance(code, int) or code <= 0 or code not in _errno.errorcode:
            raise ValueError(f"errno must be a known positive errno value, not {code!r}")
        super().__init__(code, message)

    def __str__(self):
        return f"[{errno_name(self.errno)}] {self.strerror}"

    def __repr__(self):
        return f"KernelError({errno_name(self.errno)}, {self.strerror!r})"

    @property
    def name(self):
        """The symbolic errno name, e.g. ``"EBUSY"``."""
        return errno_name(self.errno)

    @property
    def description(self):
        """The C library's text for the errno, e.g. ``"Device or resource busy"``."""
        return os.strerror(self.errno)


class KernelBug(RuntimeError):
    """A condition Linux treats as a kernel bug (``BUG_ON`` or an unrecoverable ``WARN_ON``)."""
