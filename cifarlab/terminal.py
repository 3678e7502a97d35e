"""Whether output goes to a person at a terminal, who can be shown redrawing progress bars."""

from __future__ import annotations

import sys


def interactive(requested: bool = True) -> bool:
    """Whether progress bars may be drawn: asked for, and a notebook or a terminal on stdout and stderr.

    Redirected to a file or a pipe, a carriage-return bar becomes hundreds of
    partial lines, so there commands print their one-line-per-step output only.
    """
    if not requested:
        return False
    from tqdm.auto import tqdm

    if tqdm.__module__ == "tqdm.notebook":  # Jupyter widgets redraw without carriage returns
        return True
    return all(getattr(stream, "isatty", lambda: False)() for stream in (sys.stdout, sys.stderr))
