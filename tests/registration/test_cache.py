"""The registration cache: a re-run does not register again and returns the same transform."""

from __future__ import annotations

import numpy as np
import pytest

from dosimetry import registration
from dosimetry.registration import RegistrationCache, register_ct


@pytest.fixture
def counted(monkeypatch):
    """Counts the calls of the registration itself."""
    calls = []
    real = registration._run_registration

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(registration, "_run_registration", counting)
    return calls


# caching is under test here, not accuracy: a cheap registration
FAST = {"min_samples": 2000, "iterations": 20}


@pytest.fixture(scope="module")
def pair(make_ct):
    return make_ct(shape=(24, 28, 32)), make_ct(shape=(24, 28, 32), translation_mm=(3.0, -2.0, 1.0))


def test_hit_returns_the_identical_transform_without_registering(pair, counted):
    fixed, moving = pair
    cache = RegistrationCache()
    first = register_ct(fixed, moving, cache=cache, **FAST)
    second = register_ct(fixed, moving, cache=cache, **FAST)
    assert len(counted) == 1  # the second call did not register
    assert (cache.hits, cache.misses) == (1, 1)
    assert not first.cache_hit and second.cache_hit
    assert second.provenance["registration"]["cache_hit"] is True
    assert second.transform.GetParameters() == first.transform.GetParameters()  # exact
    assert second.transform.GetFixedParameters() == first.transform.GetFixedParameters()
    assert second.translation_mm == first.translation_mm
    assert second.ncc_after == first.ncc_after
    assert second.fixed is fixed
    # the caller's copy is its own: changing it leaves the cached transform alone
    second.transform.SetParameters((0.0,) * 6)
    third = register_ct(fixed, moving, cache=cache, **FAST)
    assert third.transform.GetParameters() == first.transform.GetParameters()
    assert len(counted) == 1


def test_other_data_or_settings_miss(pair, counted):
    fixed, moving = pair
    cache = RegistrationCache()
    register_ct(fixed, moving, cache=cache, **FAST)
    register_ct(fixed, moving, cache=cache, metric="mean_squares", **FAST)  # other settings
    changed = moving.with_array(np.asarray(moving.array) + 1.0)  # other data
    register_ct(fixed, changed, cache=cache, **FAST)
    assert len(counted) == 3 and cache.hits == 0 and len(cache) == 3
    register_ct(fixed, moving, cache=None, **FAST)  # no cache: always registers
    assert len(counted) == 4


def test_folder_cache_is_found_by_a_new_process(pair, counted, tmp_path):
    fixed, moving = pair
    first = register_ct(fixed, moving, cache=RegistrationCache(tmp_path), **FAST)
    assert len(list(tmp_path.glob("*.tfm"))) == 1 and len(list(tmp_path.glob("*.json"))) == 1
    again = register_ct(fixed, moving, cache=tmp_path, **FAST)  # a fresh cache on the same folder
    assert len(counted) == 1 and again.cache_hit
    assert again.transform.GetParameters() == first.transform.GetParameters()  # exact
    assert again.transform.GetFixedParameters() == first.transform.GetFixedParameters()
    assert again.translation_mm == first.translation_mm
    assert (
        again.provenance["registration"]["cache_key"]
        == first.provenance["registration"]["cache_key"]
    )


def test_unreadable_folder_entry_is_ignored(pair, counted, tmp_path):
    fixed, moving = pair
    first = register_ct(fixed, moving, cache=RegistrationCache(tmp_path), **FAST)
    (json_file,) = tmp_path.glob("*.json")
    json_file.write_text("{not json", encoding="utf-8")
    again = register_ct(fixed, moving, cache=RegistrationCache(tmp_path), **FAST)
    assert len(counted) == 2 and not again.cache_hit
    assert again.transform.GetParameters() == pytest.approx(first.transform.GetParameters())


def test_memory_cache_is_bounded(pair):
    fixed, moving = pair
    cache = RegistrationCache(max_entries=1)
    register_ct(fixed, moving, cache=cache, **FAST)
    register_ct(fixed, moving, cache=cache, metric="mean_squares", **FAST)
    assert len(cache) == 1
