"""What sweeps/study.py relies on in Optuna, checked against the installed version.

The study's storage rides out database outages by wrapping RDBStorage's methods, found by name and some private.
If an Optuna release renames one, moves it to a base class, or has its cache layer call another, that call would
quietly lose its retries: these tests fail instead, and the range in pyproject.toml says which versions passed them.
"""

from __future__ import annotations

import inspect
import re
import tomllib
from importlib import metadata
from pathlib import Path

import optuna
import optuna.storages._cached_storage as cached_storage
from optuna.storages import BaseStorage, RDBStorage
from packaging.requirements import Requirement

from cifarlab.sweeps import study as study_mod

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"
# Public methods study.py (or the Optuna calls it makes) relies on by name: its own override, the one left
# unwrapped, and what the heartbeat and retry machinery calls.
RELIED_ON = ("record_heartbeat", "remove_session", "get_heartbeat_interval", "get_heartbeat_stale_trial_callback",
             "get_trial", "get_all_trials", "set_trial_state_values", "set_trial_user_attr", "create_new_trial")


def _wrapped(name: str) -> bool:
    """Whether PatientStorage's ``name`` is RDBStorage's own method behind the patient wrapper."""
    member = vars(study_mod._patient_storage()).get(name)
    return getattr(member, "__wrapped__", None) is vars(RDBStorage).get(name)


def test_the_installed_optuna_is_in_the_range_pyproject_declares():
    dependencies = tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]
    optuna_req = next(Requirement(d) for d in dependencies if Requirement(d).name == "optuna")
    assert list(optuna_req.specifier.filter(["4.8.0"])) == [], "the lower bound must exclude 4.8 (no retry callback)"
    assert list(optuna_req.specifier.filter(["6.0.0"])) == [], "an upper bound must exclude the next major version"
    assert optuna_req.specifier.contains(metadata.version("optuna"), prereleases=True)
    assert optuna.__version__ == metadata.version("optuna")


def test_every_private_method_study_wraps_is_defined_on_rdbstorage_itself():
    # vars(), not hasattr(): study.py wraps what RDBStorage defines itself; an inherited one would go unwrapped
    missing = [name for name in study_mod.WRAPPED_PRIVATE if not callable(vars(RDBStorage).get(name))]
    assert missing == [], f"optuna {optuna.__version__} RDBStorage lacks {missing}"
    assert [name for name in study_mod.WRAPPED_PRIVATE if not _wrapped(name)] == []


def test_every_storage_method_optunas_cache_layer_calls_is_made_patient():
    # Optuna puts its _CachedStorage in front of the RDBStorage it is given: what that calls must retry.
    called = set(re.findall(r"_backend\.(\w+)\(", inspect.getsource(cached_storage)))
    assert {"_get_trials", "get_trial"} <= called  # the source is what this test thinks it is
    private = {name for name in called if name.startswith("_")}
    assert private <= set(study_mod.WRAPPED_PRIVATE), f"unwrapped: {private - set(study_mod.WRAPPED_PRIVATE)}"
    unwrapped = sorted(name for name in called - {"record_heartbeat"} if not _wrapped(name))
    assert unwrapped == []


def test_every_abstract_storage_method_and_those_study_relies_on_are_rdbstorages_own_and_patient():
    names = sorted(set(BaseStorage.__abstractmethods__) | set(RELIED_ON))
    assert [name for name in names if not callable(vars(RDBStorage).get(name))] == []
    # record_heartbeat has its own override (it must not raise in its thread); remove_session is left alone
    assert [name for name in names if name not in ("record_heartbeat", "remove_session") and not _wrapped(name)] == []
    assert "record_heartbeat" in vars(study_mod._patient_storage())
    assert "remove_session" not in vars(study_mod._patient_storage())


def test_the_constructor_arguments_and_helpers_study_uses_exist():
    params = inspect.signature(RDBStorage.__init__).parameters
    for name in ("engine_kwargs", "heartbeat_interval", "grace_period", "heartbeat_stale_trial_callback",
                 "skip_table_creation"):
        assert name in params, name
    assert callable(optuna.storages.RetryHeartbeatStaleTrialCallback)
    assert callable(optuna.storages.fail_stale_trials)
