"""Every skip in the test suite is decided here, so that CI cannot pass by skipping what it was meant to run.

Two kinds of skip, told apart by the start of their reason:

- *missing*: a service (PostgreSQL, Chromium, a mountable tmpfs, ``make``), an optional extra (a module of
  ``pip install -e '.[extra]'``) or the shared CIFAR-10 copy is not on this machine. A developer's machine skips
  such tests; CI (``.ci/run`` sets ``CIFARLAB_REQUIRE_SERVICES=1``) must have all of them, so there the test FAILS
  with the reason instead. Use :func:`skip_or_fail` or :func:`require_module`.
- *not applicable*: the test cannot mean anything on this machine, in CI too: the CUDA tests without a GPU
  (:data:`needs_cuda`; ``benchmarks/gpu_check.py`` runs them on a GPU machine), a test of the no-GPU error on a
  machine with a GPU, Linux-only mechanisms (``/proc``, ``prctl``) elsewhere. Use :func:`not_applicable`.

Calling ``pytest.skip``, ``pytest.importorskip`` or ``pytest.mark.skipif`` anywhere else fails
``tests/test_skips.py``. The session's last line (:func:`summary_line`, from ``conftest.py``) counts the skips by
reason.

Typical use::

    nbformat = require_module("nbformat", "dev")     # module level or inside a test
    if shutil.which("pg_ctl") is None:
        skip_or_fail("PostgreSQL server binaries not found (apt-get install postgresql)")
"""

from __future__ import annotations

import importlib
import os
from collections import Counter
from types import ModuleType
from typing import NoReturn

import pytest
import torch

REQUIRE_ENV = "CIFARLAB_REQUIRE_SERVICES"
MISSING = "missing"  # the reason's prefix of a skip CI would have failed
NOT_APPLICABLE = "not applicable"  # the reason's prefix of a skip allowed in CI


def required() -> bool:
    """Whether this run must have every service, extra and data set (CI: ``CIFARLAB_REQUIRE_SERVICES=1``)."""
    return os.environ.get(REQUIRE_ENV) == "1"


def skip_or_fail(reason: str) -> NoReturn:
    """Skip the calling test (or module) because something it needs is missing; fail it where that is required.

    ``reason`` says what is missing and how to get it.
    """
    __tracebackhide__ = True  # pytest then names the calling test's line as the skip's, not this one
    if required():
        pytest.fail(f"{reason} ({REQUIRE_ENV}=1: CI must have it)", pytrace=False)
    # allow_module_level: the same call serves a test, a fixture and a module's top level
    pytest.skip(f"{MISSING}: {reason}", allow_module_level=True)


def require_module(name: str, extra: str) -> ModuleType:
    """The module ``name``, which ``pip install -e '.[extra]'`` provides; else :func:`skip_or_fail`."""
    __tracebackhide__ = True
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        skip_or_fail(f"{name} not importable ({exc}): pip install -e '.[{extra}]'")


def not_applicable(reason: str) -> NoReturn:
    """Skip the calling test (or module): it cannot mean anything on this machine, in CI either."""
    __tracebackhide__ = True
    pytest.skip(f"{NOT_APPLICABLE}: {reason}", allow_module_level=True)


needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(),
                                reason=f"{NOT_APPLICABLE}: needs a CUDA GPU (benchmarks/gpu_check.py runs them)")


def reason_of(report: pytest.TestReport | pytest.CollectReport) -> str:
    """The reason a skipped test (or module) gave."""
    longrepr = report.longrepr
    reason = longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)
    return reason.removeprefix("Skipped: ")


def summary_line(reports: list) -> tuple[str, bool]:
    """One line saying how many tests were skipped and why (most frequent reason first), and whether any skip was
    other than *not applicable*, so that CI would have run (or failed) it."""
    reasons = Counter(reason_of(r) for r in reports)
    if not reasons:
        return "0 tests skipped", False
    ranked = sorted(reasons.items(), key=lambda item: (-item[1], item[0]))
    groups = "; ".join(f"{n} × {reason}" for reason, n in ranked)
    loud = any(not reason.startswith(NOT_APPLICABLE) for reason in reasons)
    return f"{sum(reasons.values())} skipped: {groups}", loud
