"""RTSTRUCT and SEG writers: round trips (write -> read back -> Dice), validators, bad input."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pydicom
import pytest

from dosimetry import Volume
from dosimetry.errors import GeometryMismatchError, OutputError
from dosimetry.io.masks import rasterize_polygons, rtstruct_to_masks, seg_to_masks
from dosimetry.io.rtstruct_write import isodose_masks, mask_outlines, write_rtstruct
from dosimetry.io.seg_write import write_seg

from .conftest import AXIAL

FOR = "1.2.826.0.1.3680043.8.498.4242"
SHAPE = (12, 40, 44)
SPACING = (3.0, 1.5, 1.5)
ORIGIN = (-30.0, -25.0, 100.0)


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2.0 * float(np.logical_and(a, b).sum()) / float(a.sum() + b.sum())


@pytest.fixture
def ct(make_ct_series):
    return make_ct_series(SHAPE, SPACING, ORIGIN, FOR)


@pytest.fixture
def grid():
    return Volume.from_spacing(
        np.zeros(SHAPE), SPACING, ORIGIN, direction=AXIAL, unit="HU", frame_of_reference_uid=FOR
    )


@pytest.fixture
def masks(grid):
    """An ellipsoid with a spherical cavity, and a small off-centre sphere."""
    idx = np.stack(np.meshgrid(*[np.arange(n) for n in SHAPE], indexing="ij"), -1)
    xyz = grid.index_to_world(idx.reshape(-1, 3)).reshape(*SHAPE, 3)
    c = grid.center_mm()
    r = (xyz - c) / np.array([25.0, 18.0, 14.0])
    shell = (np.sum(r**2, -1) <= 1.0) & (np.linalg.norm(xyz - c, axis=-1) > 6.0)
    ball = np.linalg.norm(xyz - (c + [18.0, -14.0, 6.0]), axis=-1) <= 5.0
    return {
        "organ": grid.with_array(shell, unit="1"),
        "lesion": grid.with_array(ball, unit="1"),
    }


def test_outlines_reproduce_random_masks_exactly():
    rng = np.random.default_rng(0)
    for _ in range(100):
        m = rng.random((int(rng.integers(1, 12)), int(rng.integers(1, 12)))) < rng.random()
        frac = rasterize_polygons(mask_outlines(m), m.shape, supersample=2)
        np.testing.assert_array_equal(frac, m.astype(np.float32))


def test_rtstruct_round_trip_same_grid(tmp_path, ct, grid, masks):
    path = write_rtstruct(masks, tmp_path / "rs.dcm", ct)
    back = rtstruct_to_masks(path, grid)
    for name, m in masks.items():
        assert _dice(back[name].array, m.array) > 0.95
        np.testing.assert_array_equal(back[name].array, m.array)  # voxel outlines: exact
    ds = pydicom.dcmread(path)
    assert ds.Modality == "RTSTRUCT" and ds.StudyInstanceUID == ct[0].StudyInstanceUID
    # each contour references the CT image in its plane
    uid_by_z = {round(float(d.ImagePositionPatient[2]), 3): d.SOPInstanceUID for d in ct}
    for c in ds.ROIContourSequence[0].ContourSequence:
        z = round(float(c.ContourData[2]), 3)
        assert c.ContourImageSequence[0].ReferencedSOPInstanceUID == uid_by_z[z]


def test_rtstruct_round_trip_other_grid(tmp_path, ct, masks):
    """Written on the CT grid, rasterised on a coarser PET-like grid: volume kept."""
    path = write_rtstruct(masks, tmp_path / "rs.dcm", ct)
    pet = Volume.from_spacing(
        np.zeros((10, 16, 16)),
        (4.0, 4.0, 4.0),
        (-29.0, -24.0, 98.5),
        direction=AXIAL,
        unit="Bq/mL",
        frame_of_reference_uid=FOR,
    )
    frac = rtstruct_to_masks(path, pet, mode="fraction")
    v_ct = masks["organ"].array.sum() * masks["organ"].voxel_volume_ml
    v_pet = frac["organ"].array.sum(dtype=np.float64) * pet.voxel_volume_ml
    assert v_pet == pytest.approx(v_ct, rel=0.01)


@pytest.mark.skipif(shutil.which("dciodvfy") is None, reason="dciodvfy (dicom3tools) not installed")
def test_rtstruct_dciodvfy(tmp_path, ct, masks):
    path = write_rtstruct(masks, tmp_path / "rs.dcm", ct, interpreted_types={"organ": "ORGAN"})
    res = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True)
    lines = (res.stdout + res.stderr).splitlines()
    assert [x for x in lines if x.lstrip().startswith("Error")] == [], "\n".join(lines)


def test_isodose_vois(tmp_path, ct, grid):
    idx = np.stack(np.meshgrid(*[np.arange(n) for n in SHAPE], indexing="ij"), -1)
    r = np.linalg.norm(grid.index_to_world(idx.reshape(-1, 3)) - grid.center_mm(), axis=-1)
    dose = grid.with_array(30.0 * np.exp(-r / 10.0).reshape(SHAPE), unit="Gy")
    vois = isodose_masks(dose, [5.0, 20.0])
    assert set(vois) == {"Isodose 5 Gy", "Isodose 20 Gy"}
    back = rtstruct_to_masks(write_rtstruct(vois, tmp_path / "iso.dcm", ct), grid)
    np.testing.assert_array_equal(back["Isodose 20 Gy"].array, dose.array >= 20.0)


def test_seg_round_trip(tmp_path, ct, grid, masks):
    path = write_seg(masks, tmp_path / "seg.dcm", ct)
    back = seg_to_masks(path, grid)
    for name, m in masks.items():
        assert back[name].same_grid(grid)
        assert _dice(back[name].array, m.array) > 0.95
        np.testing.assert_array_equal(back[name].array, m.array)
    # onto a coarser grid: occupied volume kept (sub-voxel sampling, unbiased)
    pet = Volume.from_spacing(
        np.zeros((10, 16, 16)),
        (4.0, 4.0, 4.0),
        (-29.0, -24.0, 98.5),
        direction=AXIAL,
        unit="Bq/mL",
        frame_of_reference_uid=FOR,
    )
    frac = seg_to_masks(path, pet, ["organ"], mode="fraction")["organ"]
    v_ct = masks["organ"].array.sum() * masks["organ"].voxel_volume_ml
    assert frac.array.sum(dtype=np.float64) * pet.voxel_volume_ml == pytest.approx(v_ct, rel=0.01)


def test_seg_fractional(tmp_path, ct, grid, masks):
    occ = masks["organ"].array * 0.5
    path = write_seg({"half": grid.with_array(occ, unit="1")}, tmp_path / "f.dcm", ct)
    assert pydicom.dcmread(path, stop_before_pixels=True).SegmentationType == "FRACTIONAL"
    back = seg_to_masks(path, grid, mode="fraction")["half"]
    np.testing.assert_allclose(back.array, occ, atol=1 / 255)


@pytest.mark.skipif(shutil.which("dciodvfy") is None, reason="dciodvfy (dicom3tools) not installed")
def test_seg_dciodvfy(tmp_path, ct, masks):
    path = write_seg(masks, tmp_path / "seg.dcm", ct)
    res = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True)
    lines = (res.stdout + res.stderr).splitlines()
    assert [x for x in lines if x.lstrip().startswith("Error")] == [], "\n".join(lines)


# ------------------------------------------------------------------------ bad input
def test_seg_mask_on_other_grid_refused(tmp_path, ct, masks):
    other = Volume.from_spacing(
        masks["organ"].array,
        (3.0, 1.5, 1.5),
        (-30.0, -25.0, 103.0),
        direction=AXIAL,
        unit="1",
        frame_of_reference_uid=FOR,
    )
    with pytest.raises(GeometryMismatchError):
        write_seg({"organ": other}, tmp_path / "seg.dcm", ct)
    assert not (tmp_path / "seg.dcm").exists()


def test_seg_other_frame_of_reference_refused(tmp_path, ct, grid, masks):
    path = write_seg(masks, tmp_path / "seg.dcm", ct)
    elsewhere = Volume(grid.array, grid.affine, "HU", frame_of_reference_uid="1.2.3.4")
    with pytest.raises(GeometryMismatchError) as exc:
        seg_to_masks(path, elsewhere)
    assert "1.2.3.4" in str(exc.value) and FOR in str(exc.value)


def test_rtstruct_mask_of_other_frame_refused(tmp_path, ct, masks):
    bad = Volume(masks["organ"].array, masks["organ"].affine, "1", frame_of_reference_uid="9.9")
    with pytest.raises(GeometryMismatchError, match="9.9"):
        write_rtstruct({"organ": bad}, tmp_path / "rs.dcm", ct)
    assert list(tmp_path.iterdir()) == []


def test_rtstruct_no_overwrite(tmp_path, ct, masks):
    target = tmp_path / "rs.dcm"
    target.write_bytes(b"old")
    with pytest.raises(OutputError):
        write_rtstruct(masks, target, ct)
    assert target.read_bytes() == b"old"
