"""Errors that the command line reports as one line and a non-zero exit.

Anything raised as a :class:`CifarlabError` is a problem with the user's input
(a file, a field, a layer); the CLI prints ``error: <message>`` and exits 2.
Any other exception is a bug and keeps its traceback.
"""


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type name when it has none), for a one-line error."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class CifarlabError(Exception):
    """Base class for user-facing errors: the message names what is wrong and where."""


class ConfigError(CifarlabError):
    """A config file, preset, override or sweep file is invalid."""


class DataError(CifarlabError):
    """A dataset, archive, download or image cannot be used."""


class ModelError(CifarlabError):
    """A model name, layer definition or weights file is invalid."""
