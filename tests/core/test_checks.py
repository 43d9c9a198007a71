"""Findings and policy: checks return findings, the policy decides what they do."""

from __future__ import annotations

import math

import pytest

from dosimetry.checks import (
    FindingLog,
    ImplausibleInputError,
    Policy,
    bound,
    bounds_table,
    check_administered_activity,
    check_fraction_in_fov,
    check_negative_voxels,
    check_no_activity,
    check_organ_dose,
    check_spect_time,
    check_suv_max,
    check_uptake_time,
    override_bounds,
)
from dosimetry.errors import DosimetryError, InputDataError
from dosimetry.results import Finding


def test_every_bound_is_ordered_and_cited():
    rows = bounds_table()
    assert {(b.check, b.key) for b in rows} >= {
        ("uptake_time", "Ga-68-PSMA-11"),
        ("uptake_time", "F-18-FDG"),
        ("uptake_time", "default"),
        ("fraction_in_fov", "PET"),
        ("administered_activity", "Lu-177"),
        ("administered_activity", "Ac-225"),
    }
    for b in rows:
        assert b.error_low <= b.warn_low <= b.warn_high <= b.error_high
        assert len(b.citation) > 20, (b.check, b.key)


@pytest.mark.parametrize(
    ("minutes", "level"),
    [
        (60.0, None),
        (110.0, "warning"),
        (0.1 / 60, "error"),
        (25 * 60.0, "error"),
        (math.nan, "error"),
    ],
)
def test_uptake_time_levels(minutes, level):
    f = check_uptake_time(minutes, "Ga-68-PSMA-11")
    assert (f.level if f else None) == level
    if f:
        assert f.code == "uptake_time" and "--accept uptake_time" in f.override


def test_uptake_time_unknown_agent_uses_default_row():
    assert bound("uptake_time", "X-99-NOTHING").key == "default"
    assert check_uptake_time(60.0, None) is None


@pytest.mark.parametrize(
    ("bq", "level"),
    [
        (7.4e9, None),
        (2.0e10, "warning"),
        (1e30 * 1e9, "error"),
        (1e12 * 1e3, "error"),
        (1e3, "error"),
    ],
)
def test_administered_activity(bq, level):
    f = check_administered_activity(bq, "Lu-177")
    assert (f.level if f else None) == level


def test_fraction_suv_organ_and_spect_time():
    assert check_fraction_in_fov(0.3, "PET", "PET") is None
    assert check_fraction_in_fov(1014 * 0.3, "PET", "PET").level == "error"  # Units GML x1014
    assert check_fraction_in_fov(1e-6, "PET", "PET").level == "error"  # RescaleSlope 1e-310
    assert check_fraction_in_fov(0.001, "SPECT", "SPECT") is None  # late time points hold little
    assert check_fraction_in_fov(1.5, "SPECT", "SPECT").level == "error"
    assert check_suv_max(40.0) is None and check_suv_max(1e4).level == "error"
    assert check_organ_dose("kidneys", "organ", 20.0) is None
    assert check_organ_dose("kidneys", "organ", 1e6).level == "error"
    assert check_organ_dose("lesion_1", "lesion", 400.0) is None
    assert check_spect_time(24.0, "Lu-177", "SPECT") is None
    assert check_spect_time(24.0 * 365, "Lu-177", "SPECT").level == "error"


def test_no_activity_and_negative_voxels():
    assert check_no_activity(0.0, "the PET").level == "error"
    assert check_no_activity(1e6, "the PET") is None
    assert check_negative_voxels(0, 0.0, 1.0, "PET") is None
    assert check_negative_voxels(3, 0.001, 1.0, "PET").level == "info"
    assert check_negative_voxels(3, 0.5, 1.0, "PET").level == "warning"


def test_policy_record_raise_accept_and_strict():
    err = Finding("uptake_time", "error", "implausible", "--accept uptake_time")
    warn = Finding("plateau", "warning", "questionable")
    log = FindingLog(Policy.of())
    with pytest.raises(ImplausibleInputError, match="--accept uptake_time"):
        log.add(err)
    log.add(warn)
    assert [f.code for f in log] == ["plateau"]
    accepted = FindingLog(Policy.of(accept=["uptake_time"]))
    accepted.add(err)
    assert accepted.as_tuple()[0].accepted is True
    everything = FindingLog(Policy.of(accept=True))
    everything.add(err)
    assert len(everything) == 1
    strict = FindingLog(Policy.of("strict"))
    with pytest.raises(ImplausibleInputError):
        strict.add(warn)
    ignore = FindingLog(Policy.of({"plateau": "ignore"}))
    ignore.add(warn)
    assert len(ignore) == 0
    assert isinstance(ImplausibleInputError(err), InputDataError)


def test_policy_spec_errors():
    with pytest.raises(DosimetryError, match="policy"):
        Policy.of("loose")
    with pytest.raises(DosimetryError, match="actions"):
        Policy.of({"plateau": "shout"})


def test_override_bounds_is_scoped():
    assert check_uptake_time(120.0, "F-18-FDG").level == "warning"
    with override_bounds("uptake_time", "F-18-FDG", warn_high=130.0):
        assert check_uptake_time(120.0, "F-18-FDG") is None
        assert bound("uptake_time", "F-18-FDG").citation == "user override"
    assert check_uptake_time(120.0, "F-18-FDG").level == "warning"


def test_grid_extent():
    from dosimetry.checks import check_grid_extent

    assert check_grid_extent((1, 96, 96), (4.0, 4.0, 4.0), 1.8, "PET").level == "error"
    assert check_grid_extent((4, 96, 96), (4.0, 4.0, 4.0), 1.8, "PET").level == "warning"
    assert check_grid_extent((80, 96, 96), (4.0, 4.0, 4.0), 1.8, "PET") is None
    # a thick enough slab for a short-range emitter, too thin for 90Y's 11 mm electrons
    assert check_grid_extent((6, 96, 96), (2.0, 2.0, 2.0), 11.3, "PET").level == "warning"
