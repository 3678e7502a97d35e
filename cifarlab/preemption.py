"""Preemption: SIGTERM (a scheduler reclaiming the machine) and Ctrl-C stop a run cleanly.

The command line makes SIGTERM raise :class:`Interrupted`, as Python makes
SIGINT raise :class:`KeyboardInterrupt`; both are ``KeyboardInterrupt``, so
every ``finally`` runs and Optuna marks a sweep's trial failed, to be retried.
Training cannot stop halfway through an optimizer step and still save a
checkpoint worth resuming, so it wraps its loop in :func:`deferred_signals`:
there a signal only records a request, which the loop honours at its next step
boundary. A second Ctrl-C still stops at once (the user means it); a repeated
SIGTERM does not (schedulers send SIGKILL when they stop waiting).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from dataclasses import dataclass
from typing import Iterator

_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Interrupted(KeyboardInterrupt):
    """The process was told to stop by ``signum``; it exits with the shell's status for it, 128 + signum."""

    def __init__(self, signum: int, message: str = ""):
        super().__init__(message or f"stopped by {signal.Signals(signum).name}")
        self.signum = signum

    @property
    def exit_status(self) -> int:
        """143 for SIGTERM, 130 for SIGINT."""
        return 128 + self.signum


def _raise_interrupted(signum: int, frame) -> None:
    raise Interrupted(signum)


@contextlib.contextmanager
def sigterm_raises() -> Iterator[None]:
    """While the block runs, SIGTERM raises :class:`Interrupted` instead of killing the process."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_interrupted)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@dataclass
class StopRequest:
    """The signal received inside :func:`deferred_signals`, if any; checked by the loop between steps."""

    signum: int | None = None

    def __bool__(self) -> bool:
        return self.signum is not None

    @property
    def name(self) -> str:
        """``SIGTERM`` or ``SIGINT``."""
        return signal.Signals(self.signum).name if self.signum else ""


@contextlib.contextmanager
def deferred_signals() -> Iterator[StopRequest]:
    """Hold SIGTERM and SIGINT as a :class:`StopRequest` while the block runs.

    The block checks the request at points where stopping is safe and raises
    :class:`Interrupted` itself. A request the block never acted on is
    delivered again when it ends, to the handlers that were there before.
    Off the main thread, where Python delivers no signals, this does nothing.
    """
    request = StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield request
        return

    def hold(signum: int, frame) -> None:
        if signum == signal.SIGINT and request.signum == signal.SIGINT:
            raise KeyboardInterrupt  # Ctrl-C twice: stop now, mid-step, without a checkpoint
        request.signum = request.signum or signum

    previous = {s: signal.signal(s, hold) for s in _SIGNALS}
    try:
        yield request
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    if request:
        signal.raise_signal(request.signum)
