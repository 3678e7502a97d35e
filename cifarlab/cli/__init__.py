"""The ``cifarlab`` command: one sub-command per module in this package, listed in ``_COMMANDS``.

Each module defines ``add_parser(subparsers)``, which registers its sub-command
under the module's name, and ``run(args)``, which runs it on the parsed arguments
and returns an exit code. Modules import heavy dependencies inside ``run`` so
that ``cifarlab --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import warnings

from cifarlab.errors import CifarlabError
from cifarlab.fileio import DISK_FAULTS
from cifarlab.preemption import Interrupted, sigterm_raises

# The sub-commands' modules, in the order --help lists them: the workflow's order.
_COMMANDS = ["data", "train", "evaluate", "predict", "inspect", "export", "sweep", "runs", "report"]


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser with every sub-command."""
    from cifarlab import __version__

    parser = argparse.ArgumentParser(prog="cifarlab",
                                     description="Design, verify, train, evaluate and compare CNNs on CIFAR-10.")
    parser.add_argument("--version", action="version", version=f"cifarlab {__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks for errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in _COMMANDS:
        importlib.import_module(f"{__name__}.{name}").add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``cifarlab`` console script; returns the exit code.

    A user's error, a disk fault or an interrupt is one line on stderr and an exit code.
    """
    args = build_parser().parse_args(argv)
    previous = warnings.formatwarning
    if not args.debug:  # a warning (a cache that cannot be written, ...) is one line too, without our source line
        warnings.formatwarning = lambda message, *_: f"cifarlab {args.command}: warning: {message}\n"
    try:
        with sigterm_raises():
            return int(importlib.import_module(f"{__name__}.{args.command}").run(args) or 0)
    except CifarlabError as exc:
        if args.debug:
            raise
        print(f"cifarlab {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into `head` and the like: not an error
        sys.stderr.close()
        return 0
    except OSError as exc:  # a disk fault in a write that fileio does not perform (a folder, a library's file)
        if args.debug or exc.errno not in DISK_FAULTS:
            raise
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"cifarlab {args.command}: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM (Interrupted): the shell's 128 + signal number
        print(f"cifarlab {args.command}: {str(exc) or 'interrupted'}", file=sys.stderr)
        return exc.exit_status if isinstance(exc, Interrupted) else 130
    finally:  # a program calling main() keeps its own warning format
        warnings.formatwarning = previous
