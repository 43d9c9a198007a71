"""Registration recovers a known rigid shift on a synthetic CT."""

from __future__ import annotations

import numpy as np
import pytest

import dosimetry as ds
from dosimetry.errors import UnitError
from dosimetry.registration import apply_registration, register_ct, registration_qa

SPACING = (4.0, 4.0, 4.0)
SHAPE = (32, 40, 40)


def _phantom_ct(shift_mm=(0.0, 0.0, 0.0)):
    """Analytic torso-like CT (HU) evaluated on a fixed grid, anatomy moved by shift (LPS)."""
    vol = ds.Volume.from_spacing(np.zeros(SHAPE), SPACING, origin_mm=(-80.0, -62.0, -78.0))
    idx = np.stack(np.indices(SHAPE), axis=-1).reshape(-1, 3)
    xyz = vol.index_to_world(idx) - np.asarray(shift_mm)
    x, y, z = xyz[:, 0], xyz[:, 1], xyz[:, 2]
    hu = np.full(x.shape, -1000.0)
    body = (x / 65) ** 2 + (y / 48) ** 2 + (z / 70) ** 2 <= 1
    hu[body] = 20.0
    lung_l = ((x - 28) / 18) ** 2 + ((y + 5) / 22) ** 2 + ((z - 20) / 30) ** 2 <= 1
    lung_r = ((x + 26) / 16) ** 2 + ((y + 2) / 20) ** 2 + ((z - 18) / 26) ** 2 <= 1
    hu[lung_l | lung_r] = -800.0
    spine = ((x - 3) ** 2 + (y - 28) ** 2 <= 10**2) & (np.abs(z) < 60)
    hu[spine] = 700.0
    liver = ((x + 25) / 22) ** 2 + ((y + 4) / 20) ** 2 + ((z + 25) / 16) ** 2 <= 1
    hu[liver] = 60.0
    return vol.with_array(hu.reshape(SHAPE), unit="HU")


@pytest.fixture(scope="module")
def shifted():
    shift = (5.0, -3.0, 4.0)  # mm, LPS
    fixed = _phantom_ct()
    moving = _phantom_ct(shift)
    return shift, fixed, moving, register_ct(fixed, moving, metric="mean_squares")


def test_recovers_known_rigid_shift(shifted):
    shift, _fixed, _moving, reg = shifted
    np.testing.assert_allclose(reg.translation_mm, shift, atol=0.6)  # mm, ~1/7 voxel
    assert max(abs(a) for a in reg.rotation_deg) < 1.0


def test_mattes_metric_also_recovers_shift():
    shift = (-4.0, 2.0, 6.0)
    reg = register_ct(_phantom_ct(), _phantom_ct(shift), metric="mattes")
    np.testing.assert_allclose(reg.translation_mm, shift, atol=1.0)


def test_apply_moves_activity_and_conserves_total(shifted):
    shift, fixed, _moving, reg = shifted
    # hot sphere in the moving frame at centre + shift; expect it at the centre after
    grid = fixed.with_array(np.zeros(SHAPE), unit="Bq")
    idx = np.stack(np.indices(SHAPE), axis=-1)
    xyz = grid.index_to_world(idx)
    centre = np.array([0.0, 0.0, 0.0])
    r2_moving = np.sum((xyz - (centre + np.asarray(shift))) ** 2, axis=-1)
    act = np.where(r2_moving <= 20.0**2, 1e6, 0.0)
    moved = apply_registration(reg, grid.with_array(act), fixed, "extensive")
    assert moved.unit == "Bq"
    info = moved.provenance["registration"]
    assert abs(info["total_relative_change"]) < 0.01
    assert moved.array.sum() == pytest.approx(act.sum(), rel=0.01)
    com = (moved.array[..., None] * xyz).sum(axis=(0, 1, 2)) / moved.array.sum()
    np.testing.assert_allclose(com, centre, atol=0.8)
    with pytest.raises(UnitError, match="extensive"):
        apply_registration(reg, grid.with_array(act), fixed, "concentration")


def test_qa_improves_difference(shifted):
    _shift, _fixed, moving, reg = shifted
    qa = registration_qa(reg, moving)
    assert qa.mean_abs_diff_hu_after < 0.5 * qa.mean_abs_diff_hu_before
    assert qa.checkerboard.shape == qa.fixed.shape == (SHAPE[1], SHAPE[2])
    assert qa.edges_fixed.any()


def test_rejects_non_ct():
    v = ds.Volume.from_spacing(np.zeros((4, 4, 4)), SPACING, unit="Bq/mL")
    with pytest.raises(UnitError):
        register_ct(v, v)
