"""Errors that the command line reports as one line and a non-zero exit.

Anything raised as a :class:`CifarlabError` is a problem with the user's input
(a file, a field, a layer); the CLI prints ``error: <message>`` and exits 2.
Any other exception is a bug and keeps its traceback.
"""

import difflib
import errno
import os
from collections.abc import Iterable


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type name when it has none), for a one-line error."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def did_you_mean(name: object, known: Iterable[str], prefix: str = "") -> str:
    """`` (did you mean 'prefix+x'?)``, ``x`` the entry of ``known`` closest to a misspelt ``name``; '' if none is."""
    close = difflib.get_close_matches(str(name), list(known), n=1)
    return f" (did you mean '{prefix}{close[0]}'?)" if close else ""


class CifarlabError(Exception):
    """Base class for user-facing errors: the message names what is wrong and where."""


class ConfigError(CifarlabError):
    """A config file, preset, override or sweep file is invalid."""


class DataError(CifarlabError):
    """A dataset, archive, download or image cannot be used."""


class ModelError(CifarlabError):
    """A model name, layer definition or weights file is invalid."""


class DiskError(CifarlabError):
    """A file could not be written: no space left, read-only file system, permission denied, I/O error.

    ``path`` is the file the caller meant to write (never a temporary file's
    name), ``reason`` the operating system's words for it and ``errno`` its
    code, e.g. ``errno.ENOSPC``.
    """

    def __init__(self, path: str | os.PathLike, exc: OSError):
        self.path, self.errno, self.reason = str(path), exc.errno, exc.strerror or first_line(exc)
        self.hint = ""  # what to do about it, added by whoever knows (the trainer: how to resume)
        code = errno.errorcode.get(exc.errno) if exc.errno else None
        super().__init__(f"{path}: cannot write: {self.reason}" + (f" ({code})" if code else ""))

    def __str__(self) -> str:
        return super().__str__() + (f"; {self.hint}" if self.hint else "")
