"""Volume geometry, validation and quantity-aware resampling."""

from __future__ import annotations

import numpy as np
import pytest

from dosimetry import GeometryMismatchError, InputDataError, UnitError, Volume, resample
from dosimetry.volume import affine_from_geometry


def _rot(theta: float) -> np.ndarray:
    c, s = np.cos(theta), np.sin(theta)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def test_spacing_origin_direction_derived_from_affine():
    d = _rot(0.3)
    v = Volume.from_spacing(np.zeros((3, 4, 5)), (3.0, 2.0, 1.5), (10.0, -5.0, 7.0), d, unit="Gy")
    np.testing.assert_allclose(v.spacing_mm, (3.0, 2.0, 1.5), rtol=1e-12)
    np.testing.assert_allclose(v.origin_mm, (10.0, -5.0, 7.0), rtol=0, atol=1e-12)
    np.testing.assert_allclose(v.direction, d, atol=1e-12)
    assert v.voxel_volume_ml == pytest.approx(3.0 * 2.0 * 1.5 / 1000.0, rel=1e-12)


def test_index_world_round_trip():
    v = Volume.from_spacing(np.zeros((3, 4, 5)), (3.0, 2.0, 1.5), (1, 2, 3), _rot(1.0), unit="1")
    idx = np.array([[0, 0, 0], [2, 3, 4], [1.5, 0.25, 3.0]])
    np.testing.assert_allclose(v.world_to_index(v.index_to_world(idx)), idx, atol=1e-12)
    # voxel [0,0,0] sits at the origin; one step along the column index moves 1.5 mm
    np.testing.assert_allclose(v.index_to_world([0, 0, 1]) - v.origin_mm, _rot(1.0)[:, 2] * 1.5)


@pytest.mark.parametrize(
    "kwargs, err",
    [
        ({"array": np.zeros((3, 3))}, GeometryMismatchError),
        ({"array": np.zeros((0, 3, 3))}, InputDataError),
        ({"affine": np.eye(3)}, GeometryMismatchError),
        ({"affine": np.diag([1.0, 0.0, 1.0, 1.0])}, GeometryMismatchError),
        ({"affine": np.full((4, 4), np.nan)}, GeometryMismatchError),
        ({"unit": "furlongs"}, UnitError),
    ],
)
def test_constructor_refuses_bad_input(kwargs, err):
    base = {"array": np.zeros((2, 2, 2)), "affine": np.eye(4), "unit": "Gy"}
    base.update(kwargs)
    with pytest.raises(err):
        Volume(**base)


def test_affine_is_read_only_and_with_array_keeps_grid():
    v = Volume.from_spacing(np.ones((2, 3, 4)), (2.0, 2.0, 2.0), unit="Bq")
    with pytest.raises(ValueError):
        v.affine[0, 0] = 5.0
    w = v.with_array(np.zeros((2, 3, 4)), unit="Gy")
    assert w.unit == "Gy" and w.same_grid(v)
    with pytest.raises(GeometryMismatchError):
        v.with_array(np.zeros((3, 3, 3)))


def test_grid_comparisons_unequal_branches():
    a = Volume.from_spacing(np.zeros((2, 3, 4)), (2.0, 2.0, 2.0), unit="Gy")
    shape = Volume.from_spacing(np.zeros((2, 3, 5)), (2.0, 2.0, 2.0), unit="Gy")
    spacing = Volume.from_spacing(np.zeros((2, 3, 4)), (2.0, 2.0, 2.5), unit="Gy")
    origin = Volume.from_spacing(np.zeros((2, 3, 4)), (2.0, 2.0, 2.0), (0, 0, 0.01), unit="Gy")
    for other in (shape, spacing, origin):
        assert not a.same_grid(other)
        with pytest.raises(GeometryMismatchError):
            a.check_same_grid(other)
    a.check_same_grid(Volume(np.zeros((2, 3, 4)), a.affine, "Bq"))
    fa = Volume(np.zeros((2, 3, 4)), a.affine, "Gy", frame_of_reference_uid="1.2.3")
    fb = Volume(np.zeros((2, 3, 4)), a.affine, "Gy", frame_of_reference_uid="1.2.4")
    with pytest.raises(GeometryMismatchError, match="FrameOfReferenceUID"):
        fa.check_same_grid(fb)
    # the predicate agrees with the check: another frame of reference is another grid
    assert not fa.same_grid(fb)
    assert fa.same_grid(Volume(np.zeros((2, 3, 4)), a.affine, "Gy", frame_of_reference_uid="1.2.3"))
    assert fa.same_grid(a)  # an unknown frame of reference is not a contradiction


def test_resample_identity_grid_is_a_copy():
    v = Volume.from_spacing(np.arange(24.0).reshape(2, 3, 4), (2.0, 2.0, 2.0), unit="Bq/mL")
    r = resample(v, v, "concentration")
    np.testing.assert_array_equal(r.array, v.array)
    assert r.array is not v.array


def test_resample_concentration_linear_field_is_exact():
    # trilinear interpolation reproduces a linear field exactly inside the source grid
    k, j, i = np.meshgrid(np.arange(10), np.arange(12), np.arange(14), indexing="ij")
    src = Volume.from_spacing(1.0 + 2 * k + 3 * j - i * 0.5, (4.0, 4.0, 4.0), unit="Bq/mL")
    dst = Volume.from_spacing(np.zeros((15, 20, 22)), (2.5, 2.0, 2.2), (1.0, 1.0, 1.0), unit="1")
    r = resample(src, dst, "concentration")
    w = src.world_to_index(dst.index_to_world(np.stack(np.indices(dst.shape), -1)))
    expected = 1.0 + 2 * w[..., 0] + 3 * w[..., 1] - 0.5 * w[..., 2]
    np.testing.assert_allclose(r.array, expected, rtol=1e-10)
    assert r.unit == "Bq/mL"


def test_resample_mask_nearest_keeps_dtype():
    m = np.zeros((10, 10, 10), dtype=bool)
    m[3:7, 3:7, 3:7] = True
    src = Volume.from_spacing(m, (2.0, 2.0, 2.0), unit="1")
    dst = Volume.from_spacing(np.zeros((20, 20, 20)), (1.0, 1.0, 1.0), (-0.25, -0.25, -0.25))
    r = resample(src, dst, "mask")
    assert r.array.dtype == bool
    # volume preserved to within one fine-voxel shell
    assert abs(r.array.sum() * 1.0 - m.sum() * 8.0) <= 6 * 8 * 8


@pytest.mark.parametrize("spacing", [(1.0, 1.0, 1.0), (5.0, 4.0, 3.0), (2.0, 7.0, 1.3)])
def test_resample_extensive_conserves_total(spacing):
    rng = np.random.default_rng(1)
    a = rng.random((12, 14, 16))
    src = Volume.from_spacing(a, (2.5, 2.5, 2.5), unit="Bq s")
    # target covers the source field of view completely
    n = [int(np.ceil((s * 2.5 + 30.0) / sp)) for s, sp in zip(a.shape, spacing, strict=True)]
    dst = Volume.from_spacing(np.zeros(n), spacing, (-15.0, -15.0, -15.0), _rot(0.2), unit="1")
    r = resample(src, dst, "extensive")
    assert r.total() == pytest.approx(a.sum(), rel=1e-12)
    # and where the target covers only part of the source, only that part is kept
    half = Volume.from_spacing(np.zeros((6, 40, 40)), (2.5, 2.5, 2.5), (0.0, -5, -5), unit="1")
    assert resample(src, half, "extensive").total() == pytest.approx(a[:6].sum(), rel=1e-12)


def test_resample_refuses_other_frame_of_reference():
    a = Volume.from_spacing(np.zeros((2, 2, 2)), (1, 1, 1), unit="Gy", frame_of_reference_uid="1.2")
    b = Volume.from_spacing(np.zeros((3, 3, 3)), (1, 1, 1), unit="Gy", frame_of_reference_uid="1.3")
    with pytest.raises(GeometryMismatchError, match="register"):
        resample(a, b, "concentration")


def test_affine_from_geometry_rejects_zero_spacing():
    with pytest.raises(GeometryMismatchError):
        affine_from_geometry((0.0, 1.0, 1.0))
