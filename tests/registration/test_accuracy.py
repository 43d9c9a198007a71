"""register_ct recovers known rigid transforms of an analytic torso CT.

The truth is the transform used to make the moving image (conftest.torso_ct), not the
code's own output; errors are measured where it matters, at points inside the body.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import SimpleITK as sitk

from dosimetry.errors import InputDataError
from dosimetry.registration import register_ct

from .conftest import rotation_matrix

# points inside the body (LPS mm, the phantom is centred on the origin)
POINTS = np.random.default_rng(1).uniform(-35.0, 35.0, (200, 3))


def _point_error_mm(reg, rotation_deg, translation_mm) -> float:
    true = POINTS @ rotation_matrix(rotation_deg).T + np.asarray(translation_mm)
    est = np.array([reg.transform.TransformPoint(tuple(map(float, p))) for p in POINTS])
    return float(np.abs(est - true).max())


def _rotation_error_deg(reg, rotation_deg) -> float:
    est = np.array(sitk.Euler3DTransform(reg.transform).GetMatrix()).reshape(3, 3)
    cos = (np.trace(est.T @ rotation_matrix(rotation_deg)) - 1.0) / 2.0
    return math.degrees(math.acos(min(1.0, max(-1.0, cos))))


@pytest.mark.parametrize("metric", ["mattes", "mean_squares"])
def test_known_shift_recovered_within_1_mm(make_ct, metric):
    shift = (5.0, -3.0, 4.0)
    reg = register_ct(make_ct(), make_ct(translation_mm=shift, seed=1), metric=metric, cache=None)
    np.testing.assert_allclose(reg.translation_mm, shift, atol=1.0)  # mm, the bound
    assert _point_error_mm(reg, (0.0, 0.0, 0.0), shift) < 1.0  # mm
    assert reg.ncc_after > reg.ncc_before
    assert reg.mi_after > reg.mi_before


def test_small_rotation_recovered_within_half_degree(make_ct):
    rotation, shift = (1.5, -2.0, 2.5), (-3.0, 2.0, -5.0)
    moving = make_ct(rotation_deg=rotation, translation_mm=shift, seed=1)
    reg = register_ct(make_ct(), moving, cache=None)
    assert _rotation_error_deg(reg, rotation) < 0.5  # degrees
    assert _point_error_mm(reg, rotation, shift) < 1.0  # mm
    assert reg.center_mm == pytest.approx((0.0, 0.0, 0.0), abs=1e-9)  # grid centre


def test_large_shift_found_by_the_translation_search(make_ct):
    # 30 mm is far outside the optimizer's own capture range on this phantom
    shift = (18.0, -24.0, 30.0)
    moving = make_ct(translation_mm=shift, seed=1)
    reg = register_ct(make_ct(), moving, cache=None)
    np.testing.assert_allclose(reg.translation_mm, shift, atol=1.0)  # mm
    assert reg.provenance["registration"]["initialization"] == "search"


def test_record_carries_settings_and_qa(make_ct):
    reg = register_ct(make_ct(), make_ct(translation_mm=(2.0, 0.0, 0.0), seed=1), cache=None)
    info = reg.provenance["registration"]
    assert info["working_spacing_mm"] == [3.0, 3.0, 3.0]  # mm: a 3 mm CT is not binned to 4 mm
    assert info["cache_hit"] is False and info["cache_key"] is None
    assert 0.0 < info["sampling_fraction_used"] <= 1.0
    assert set(reg.similarity) == {"ncc_before", "ncc_after", "mi_before", "mi_after"}
    assert reg.method == "rigid" and reg.metric == "mattes"
    assert reg.elapsed_s > 0.0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"method": "affine"}, "method="),
        ({"initialization": "centre"}, "initialization="),
        ({"sampling_fraction": 0.0}, "sampling_fraction"),
        ({"shrink_factors": (2, 1), "smoothing_sigmas_mm": (0.0,)}, "equal length"),
        ({"working_voxel_mm": -4.0}, "working_voxel_mm"),
        ({"cache": 3}, "cache="),
    ],
)
def test_bad_settings_are_refused_with_the_argument_named(make_ct, kwargs, match):
    ct = make_ct(shape=(8, 8, 8))
    with pytest.raises(InputDataError, match=match):
        register_ct(ct, ct, **kwargs)
