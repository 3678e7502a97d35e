"""Preemption: SIGTERM and Ctrl-C stop at a safe point, keep a resumable checkpoint and exit 143 / 130."""

from __future__ import annotations

import os
import signal

import pytest

from cifarlab.preemption import Interrupted, deferred_signals, sigterm_raises


def _handlers():
    return signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)


def test_a_signal_inside_the_deferred_block_is_only_recorded():
    before = _handlers()
    with pytest.raises(Interrupted) as caught:
        with deferred_signals() as stop:
            os.kill(os.getpid(), signal.SIGTERM)
            assert stop.signum == signal.SIGTERM  # still running: the block decides where to stop
            raise Interrupted(stop.signum)
    assert caught.value.exit_status == 143 and str(caught.value) == "stopped by SIGTERM"
    assert _handlers() == before


def test_a_request_never_acted_on_is_delivered_when_the_block_ends():
    with pytest.raises(Interrupted) as caught, sigterm_raises():
        with deferred_signals():
            os.kill(os.getpid(), signal.SIGTERM)
    assert caught.value.signum == signal.SIGTERM
    with pytest.raises(KeyboardInterrupt), deferred_signals():  # Python's own Ctrl-C handler, afterwards
        os.kill(os.getpid(), signal.SIGINT)


def test_ctrl_c_twice_stops_at_once_but_sigterm_twice_waits():
    with pytest.raises(KeyboardInterrupt) as caught, deferred_signals() as stop:
        os.kill(os.getpid(), signal.SIGINT)
        assert stop.signum == signal.SIGINT
        os.kill(os.getpid(), signal.SIGINT)
    assert not isinstance(caught.value, Interrupted)  # not at a safe point: no checkpoint may be written
    with pytest.raises(Interrupted), sigterm_raises():
        with deferred_signals() as stop:
            os.kill(os.getpid(), signal.SIGTERM)
            os.kill(os.getpid(), signal.SIGTERM)
            assert stop.signum == signal.SIGTERM
