"""Slice sorting and stack checks (dosimetry.io._geometry) on synthetic planes and files."""

from __future__ import annotations

import numpy as np
import pytest

from dosimetry.errors import DicomInputError
from dosimetry.io import load_study
from dosimetry.io._geometry import (
    SPACING_RTOL,
    Plane,
    resample_stack,
    stack_planes,
)

from .conftest import write_ct_series


def _planes(zs, iop=(1, 0, 0, 0, 1, 0), ps=(2.0, 3.0), shape=(4, 5), xy=(0.0, 0.0)):
    iop_a = np.array(iop, dtype=float)
    normal = np.cross(iop_a[:3], iop_a[3:])
    out = []
    for i, z in enumerate(zs):
        pos = np.array([xy[0], xy[1], 0.0]) + z * normal
        out.append(Plane(tuple(pos), tuple(iop), ps, shape, f"file{i}"))
    return out


def _dicom_pixel_position(ipp, iop, ps, j, i):
    """PS3.3 C.7.6.2.1.1: P = S + i * dc_row * col_spacing + j * dc_col * row_spacing,
    with i the column index, j the row index, PixelSpacing = (row, column) spacing."""
    iop = np.asarray(iop, dtype=float)
    return np.asarray(ipp) + i * iop[:3] * ps[1] + j * iop[3:] * ps[0]


def test_sorted_by_position_not_by_input_order():
    planes = _planes([9.0, 0.0, 3.0, 6.0])
    g = stack_planes(planes)
    assert g.order == [1, 2, 3, 0]
    np.testing.assert_allclose(g.positions_mm, [0.0, 3.0, 6.0, 9.0], atol=0)  # exact


@pytest.mark.parametrize(
    "iop",
    [
        (1, 0, 0, 0, 1, 0),  # axial
        (1, 0, 0, 0, 0, -1),  # coronal
        (0, 1, 0, 0, 0, -1),  # sagittal
        (0.8, 0.6, 0, -0.6, 0.8, 0),  # rotated axial
        (
            np.cos(0.3),
            0,
            np.sin(0.3),
            np.sin(0.1) * np.sin(0.3),
            np.cos(0.1),
            -np.sin(0.1) * np.cos(0.3),
        ),  # doubly oblique
    ],
)
def test_affine_maps_every_voxel_to_its_dicom_position(iop):
    """Independent check: every voxel centre from the affine equals the DICOM equation
    applied to the IPP of its own (sorted) plane."""
    iop = tuple(float(v) for v in iop)
    planes = _planes([4.0, -2.0, 1.0], iop=iop, ps=(2.0, 3.0), shape=(3, 4), xy=(5.0, -7.0))
    g = stack_planes(planes)
    for k, idx in enumerate(g.order):
        p = planes[idx]
        for j in range(3):
            for i in range(4):
                expect = _dicom_pixel_position(p.position_mm, iop, p.pixel_spacing_mm, j, i)
                got = g.affine @ np.array([k, j, i, 1.0])
                np.testing.assert_allclose(got[:3], expect, atol=1e-9)  # exact geometry
    # slice axis along +normal with the slice spacing
    normal = np.cross(iop[:3], iop[3:])
    np.testing.assert_allclose(g.affine[:3, 0], 3.0 * normal, atol=1e-12)


def test_duplicate_positions_refused():
    with pytest.raises(DicomInputError, match="duplicate slice position") as e:
        stack_planes(_planes([0.0, 3.0, 3.0, 6.0]))
    assert e.value.tag == "ImagePositionPatient"


def test_missing_slice_refused_and_resampled_on_request():
    zs = [0.0, 2.0, 4.0, 8.0, 10.0]  # 6.0 missing
    with pytest.raises(DicomInputError, match="missing slice") as e:
        stack_planes(_planes(zs))
    assert "allow_nonuniform='resample'" in str(e.value)
    g = stack_planes(_planes(zs), allow_nonuniform="resample")
    np.testing.assert_allclose(g.target_positions_mm, [0, 2, 4, 6, 8, 10], atol=1e-12)
    stack = np.array(zs, dtype=float).reshape(5, 1, 1) * np.ones((1, 4, 5))
    out = resample_stack(stack, g)
    # a field linear in z is reproduced exactly by linear interpolation
    np.testing.assert_allclose(out[:, 0, 0], [0, 2, 4, 6, 8, 10], atol=1e-12)
    assert g.affine[2, 0] == pytest.approx(2.0)


def test_spacing_jitter_within_tolerance_accepted_outside_refused():
    ok = [0.0, 3.0, 6.0 + 0.5 * SPACING_RTOL * 3.0, 9.0]
    g = stack_planes(_planes(ok))
    assert g.affine[2, 0] == pytest.approx(3.0)
    bad = [0.0, 3.0, 6.0 + 3.0 * SPACING_RTOL * 3.0, 9.0]
    with pytest.raises(DicomInputError, match="not uniform"):
        stack_planes(_planes(bad))


def test_gantry_tilt_refused():
    iop = (1, 0, 0, 0, 1, 0)
    tilt = np.tan(np.radians(10.0))  # y shifts 10 degrees with z
    planes = [Plane((0.0, z * tilt, z), iop, (1.0, 1.0), (2, 2), f"f{z}") for z in (0.0, 2.0, 4.0)]
    with pytest.raises(DicomInputError, match="gantry tilt"):
        stack_planes(planes)


def test_mixed_orientation_spacing_matrix_refused():
    with pytest.raises(DicomInputError, match="orientations") as e:
        stack_planes(_planes([0, 1])[:1] + _planes([2], iop=(1, 0, 0, 0, 0.995, 0.0998749)))
    assert e.value.tag == "ImageOrientationPatient"
    with pytest.raises(DicomInputError, match="pixel spacings"):
        stack_planes(_planes([0])[:1] + _planes([1], ps=(2.0, 3.1)))
    with pytest.raises(DicomInputError, match="matrices"):
        stack_planes(_planes([0])[:1] + _planes([1], shape=(4, 6)))


def test_zero_spacings_refused():
    with pytest.raises(DicomInputError, match="PixelSpacing"):
        stack_planes(_planes([0.0, 1.0], ps=(0.0, 1.0)))
    with pytest.raises(DicomInputError, match="not a positive slice spacing"):
        stack_planes(_planes([0.0]), single_slice_spacing_mm=0.0)
    with pytest.raises(DicomInputError, match="slice spacing is unknown"):
        stack_planes(_planes([0.0]))
    with pytest.raises(DicomInputError, match="orthogonal unit vectors"):
        stack_planes(_planes([0.0, 1.0], iop=(1, 0, 0, 1, 0, 0)))


def test_single_plane_uses_given_spacing():
    g = stack_planes(_planes([5.0]), single_slice_spacing_mm=4.0)
    assert g.affine[2, 0] == 4.0
    assert g.affine[2, 3] == 5.0


# ---------------------------------------------------------------------- through files
def test_files_shuffled_names_sorted_by_position(tmp_path):
    paths = write_ct_series(tmp_path, n_slices=6, spacing=(2.0, 0.5, 0.5))
    ct = load_study(tmp_path).ct()
    v = ct.volume
    # slice k holds 100 k + 10 j + i HU regardless of the random file names
    kk, jj, ii = np.mgrid[0:6, 0:4, 0:3]
    np.testing.assert_array_equal(v.array, 100 * kk + 10 * jj + ii)  # exact
    assert ct.files == paths  # written in ascending position
    assert v.spacing_mm == pytest.approx((2.0, 0.5, 0.5))


def test_files_nonuniform_duplicate_tilt_mixed(tmp_path):
    z = [0.0, 2.0, 4.0, 7.0, 9.0]
    write_ct_series(tmp_path / "nonuni", n_slices=5, positions=[(0, 0, v) for v in z])
    with pytest.raises(DicomInputError, match="not uniform"):
        _ = load_study(tmp_path / "nonuni").ct().volume
    v = load_study(tmp_path / "nonuni").ct(allow_nonuniform="resample").volume
    assert v.shape[0] == 5  # 0..9 at the median gap 2 mm -> 0,2,4,6,8
    # HU of slice at z=6 interpolated between z=4 (k=2) and z=7 (k=3): 2/3 of the way
    np.testing.assert_allclose(v.array[3, 0, 0], 200 + (300 - 200) * 2 / 3, rtol=1e-6)

    write_ct_series(tmp_path / "dup", n_slices=3, positions=[(0, 0, 0), (0, 0, 2), (0, 0, 2)])
    with pytest.raises(DicomInputError, match="duplicate"):
        _ = load_study(tmp_path / "dup").ct().volume

    write_ct_series(tmp_path / "tilt", n_slices=3, positions=[(0, 0, 0), (0, 0.5, 2), (0, 1, 4)])
    with pytest.raises(DicomInputError, match="gantry tilt"):
        _ = load_study(tmp_path / "tilt").ct().volume

    write_ct_series(
        tmp_path / "mixed", n_slices=3, pixel_spacings=[(0.8, 0.9), (0.8, 0.9), (0.7, 0.9)]
    )
    with pytest.raises(DicomInputError, match="pixel spacings"):
        _ = load_study(tmp_path / "mixed").ct().volume

    write_ct_series(tmp_path / "matrix", n_slices=2, shapes=[(4, 3), (4, 4)])
    with pytest.raises(DicomInputError, match="matrices"):
        _ = load_study(tmp_path / "matrix").ct().volume
