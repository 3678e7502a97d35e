"""The one helper that decides every skip (tests/skips.py): skip on a developer's machine, fail in CI, and the
session's last line counting the skips by reason."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import skips

TESTS = Path(__file__).resolve().parent
SAMPLE_ENV = "CIFARLAB_SKIPS_SAMPLE"  # set only by the session test below: the sample tests then skip


@pytest.fixture
def lenient(monkeypatch):
    monkeypatch.delenv(skips.REQUIRE_ENV, raising=False)


@pytest.fixture
def strict(monkeypatch):
    monkeypatch.setenv(skips.REQUIRE_ENV, "1")


def test_without_the_variable_a_missing_service_extra_or_data_set_skips(lenient):
    with pytest.raises(pytest.skip.Exception, match=r"^missing: PostgreSQL server binaries not found$"):
        skips.skip_or_fail("PostgreSQL server binaries not found")
    with pytest.raises(pytest.skip.Exception) as info:
        skips.require_module("cifarlab_no_such_module", "tensorboard")
    assert str(info.value).startswith("missing: cifarlab_no_such_module not importable")
    assert "pip install -e '.[tensorboard]'" in str(info.value)


@pytest.mark.parametrize("value", ["", "0", "true"])
def test_only_the_value_1_requires_the_services(monkeypatch, value):
    monkeypatch.setenv(skips.REQUIRE_ENV, value)
    assert not skips.required()
    with pytest.raises(pytest.skip.Exception):
        skips.skip_or_fail("chromium not installed")


def test_with_the_variable_a_missing_service_extra_or_data_set_fails_with_the_reason(strict):
    assert skips.required()
    with pytest.raises(pytest.fail.Exception, match=r"^chromium not installed \(CIFARLAB_REQUIRE_SERVICES=1"):
        skips.skip_or_fail("chromium not installed")
    with pytest.raises(pytest.fail.Exception, match=r"cifarlab_no_such_module not importable .*'\.\[dev\]'"):
        skips.require_module("cifarlab_no_such_module", "dev")


@pytest.mark.parametrize("env", ["lenient", "strict"])
def test_an_installed_module_is_returned_and_not_applicable_always_skips(request, env):
    request.getfixturevalue(env)
    assert skips.require_module("json", "dev") is json
    assert skips.require_module("os.path", "dev") is os.path
    with pytest.raises(pytest.skip.Exception, match=r"^not applicable: this machine has a GPU$"):
        skips.not_applicable("this machine has a GPU")


def _skipped(reason: str) -> SimpleNamespace:
    """A skip report as pytest keeps it: (file, line, reason) in ``longrepr``."""
    return SimpleNamespace(longrepr=("tests/x.py", 1, f"Skipped: {reason}"))


def test_the_summary_line_counts_skips_by_reason_and_is_loud_unless_all_are_not_applicable():
    cuda = "not applicable: needs a CUDA GPU"
    assert skips.summary_line([]) == ("0 tests skipped", False)
    assert skips.summary_line([_skipped(cuda)] * 3) == (f"3 skipped: 3 × {cuda}", False)
    line, loud = skips.summary_line([_skipped(cuda), _skipped("missing: psycopg"), _skipped(cuda),
                                     SimpleNamespace(longrepr=("t.py", 2, "make not installed"))])
    assert line == f"4 skipped: 2 × {cuda}; 1 × make not installed; 1 × missing: psycopg" and loud


def test_no_test_module_skips_by_itself():
    """Every skip goes through skips.py, which knows whether this run must have what the test needs."""
    pattern = re.compile(r"pytest\.(skip|importorskip)\(|\bskipif\(|pytest\.mark\.skip\b")
    offenders = [f"{path.name}:{n}" for path in sorted(TESTS.glob("*.py")) if path.name not in ("skips.py",)
                 for n, line in enumerate(path.read_text().splitlines(), 1)
                 if pattern.search(line) and "pattern = re.compile" not in line and "pytest.skip.Exception" not in line]
    assert offenders == []


# Run by the session test alone (SAMPLE_ENV set): one skip of each kind.
def test_sample_missing_service():
    if os.environ.get(SAMPLE_ENV):
        skips.skip_or_fail("sample service not installed")


def test_sample_not_applicable():
    if os.environ.get(SAMPLE_ENV):
        skips.not_applicable("sample: this machine has a GPU")


def _session(require: bool) -> list[str]:
    env = {k: v for k, v in os.environ.items() if k != skips.REQUIRE_ENV} | {SAMPLE_ENV: "1"}
    if require:
        env[skips.REQUIRE_ENV] = "1"
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", "sample",
                           str(Path(__file__))], capture_output=True, text=True, timeout=300, env=env, cwd=TESTS.parent)
    return done.stdout.strip().splitlines()


@pytest.mark.slow
def test_a_session_ends_with_a_line_of_its_skips_and_fails_the_missing_ones_in_ci():
    lines = _session(require=False)
    assert re.search(r"\b2 skipped\b", lines[-2])  # pytest's own counts, then ours: the very last line
    assert re.fullmatch(r"!+ 2 skipped: 1 × missing: sample service not installed; 1 × not applicable: sample: "
                        r"this machine has a GPU !+", lines[-1]), lines[-1]
    lines = _session(require=True)
    assert re.search(r"\b1 failed\b.*\b1 skipped\b", lines[-2])
    assert any("sample service not installed (CIFARLAB_REQUIRE_SERVICES=1: CI must have it)" in line
               for line in lines)
    assert re.fullmatch(r"-+ 1 skipped: 1 × not applicable: sample: this machine has a GPU -+", lines[-1]), lines[-1]
