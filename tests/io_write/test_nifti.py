"""NIfTI/NRRD/MHA writer and reader, sidecar, label maps; RAS<->LPS checked byte by byte."""

from __future__ import annotations

import json
import struct
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from dosimetry import Volume
from dosimetry.errors import GeometryMismatchError, OutputError, UnitError
from dosimetry.io.masks import read_label_map
from dosimetry.io.nifti import read_nifti, sidecar_path, write_nifti

from .conftest import AXIAL

FOR = "1.2.826.0.1.3680043.8.498.77"


def _dose() -> Volume:
    rng = np.random.default_rng(2)
    rot = np.array([[0.96, -0.28, 0.0], [0.28, 0.96, 0.0], [0.0, 0.0, 1.0]])
    return Volume.from_spacing(
        rng.uniform(0, 5, size=(4, 5, 6)),
        (3.27, 0.977, 0.977),
        (-250.1234567, -180.98765, 33.3333333),
        direction=rot @ AXIAL,
        unit="Gy",
        frame_of_reference_uid=FOR,
        reference_time=datetime(2024, 3, 1, 10, 30, tzinfo=UTC),
        provenance={"method": "vsv", "kernel_sha256": "ab12", "files": [Path("a.dcm")]},
    )


@pytest.mark.parametrize("suffix", [".nii.gz", ".nii", ".nrrd", ".mha"])
def test_round_trip(tmp_path, suffix):
    dose = _dose()
    path = write_nifti(dose, tmp_path / f"dose{suffix}")
    assert path.is_file() and sidecar_path(path).is_file()
    back = read_nifti(path)
    np.testing.assert_array_equal(back.array, dose.array)
    np.testing.assert_allclose(back.affine, dose.affine, atol=1e-12)
    assert back.unit == "Gy"
    assert back.frame_of_reference_uid == FOR
    assert back.reference_time == dose.reference_time
    assert back.provenance["method"] == "vsv" and back.provenance["files"] == ["a.dcm"]
    meta = json.loads(sidecar_path(path).read_text())
    assert meta["unit"] == "Gy" and meta["reference_time"] == "2024-03-01T10:30:00+00:00"


def _nifti1_header(path: Path) -> dict:
    raw = path.read_bytes()[:348]
    assert struct.unpack("<i", raw[0:4])[0] == 348
    dim = struct.unpack("<8h", raw[40:56])
    sform_code = struct.unpack("<h", raw[254:256])[0]
    srow = np.array(struct.unpack("<12f", raw[280:328])).reshape(3, 4)
    return {"dim": dim, "sform_code": sform_code, "srow": srow}


def test_written_nifti_is_ras(tmp_path):
    """The file's sform (read here from the raw header bytes) is the LPS affine with x, y negated."""
    dose = _dose()
    path = write_nifti(dose, tmp_path / "d.nii", sidecar=False)
    hdr = _nifti1_header(path)
    assert hdr["dim"][:4] == (3, 6, 5, 4)  # (i, j, k) = (column, row, slice)
    assert hdr["sform_code"] > 0
    lps_ijk = dose.affine[:3][:, [2, 1, 0, 3]]  # NIfTI voxel order (i, j, k)
    ras = np.diag([-1.0, -1.0, 1.0]) @ lps_ijk
    np.testing.assert_allclose(hdr["srow"], ras, atol=1e-4)


def _write_nifti1_by_hand(path: Path, labels: np.ndarray, ras_affine: np.ndarray) -> None:
    """Minimal NIfTI-1 single file, uint8, sform only (NIfTI-1 standard, nifti1.h layout)."""
    nk, nj, ni = labels.shape
    hdr = bytearray(348)
    struct.pack_into("<i", hdr, 0, 348)
    struct.pack_into("<8h", hdr, 40, 3, ni, nj, nk, 1, 1, 1, 1)
    struct.pack_into("<hh", hdr, 70, 2, 8)  # DT_UNSIGNED_CHAR, 8 bits
    spacing = np.linalg.norm(ras_affine[:3, :3], axis=0)
    struct.pack_into("<8f", hdr, 76, 1.0, *spacing, 1, 1, 1, 1)
    struct.pack_into("<f", hdr, 108, 352.0)  # vox_offset
    struct.pack_into("<ff", hdr, 112, 1.0, 0.0)  # scl_slope, scl_inter
    struct.pack_into("<B", hdr, 123, 2)  # xyzt_units: mm
    struct.pack_into("<hh", hdr, 252, 0, 2)  # qform_code 0, sform_code ALIGNED_ANAT
    struct.pack_into("<12f", hdr, 280, *ras_affine[:3].ravel())
    hdr[344:348] = b"n+1\x00"
    path.write_bytes(
        bytes(hdr) + b"\x00" * 4 + np.ascontiguousarray(labels, dtype=np.uint8).tobytes()
    )


@pytest.fixture
def label_file(tmp_path):
    labels = np.zeros((6, 8, 10), dtype=np.uint8)
    labels[1:4, 2:5, 3:7] = 1
    labels[4, 6, 8] = 2
    # RAS affine of a TotalSegmentator-like output: i -> right-to-left (-x RAS), j -> anterior-
    # to-posterior (-y RAS), k -> inferior-to-superior
    ras = np.array([[-0.9, 0, 0, 120.0], [0, -0.8, 0, 95.0], [0, 0, 2.5, -60.0], [0, 0, 0, 1]])
    path = tmp_path / "seg.nii"
    _write_nifti1_by_hand(path, labels, ras)
    # the same grid as a Volume in LPS: x and y negated, axes in (slice, row, column) order
    lps = np.diag([-1.0, -1.0, 1.0, 1.0]) @ ras
    aff = np.eye(4)
    aff[:3, 0], aff[:3, 1], aff[:3, 2], aff[:3, 3] = lps[:3, 2], lps[:3, 1], lps[:3, 0], lps[:3, 3]
    reference = Volume(np.zeros(labels.shape), aff, "HU", frame_of_reference_uid=FOR)
    return path, labels, reference


def test_label_map_ras_to_lps(label_file):
    path, labels, reference = label_file
    masks = read_label_map(path, reference, {1: "liver", 2: "lesion", 7: "absent"})
    assert set(masks) == {"liver", "lesion"}
    np.testing.assert_array_equal(masks["liver"].array, labels == 1)
    np.testing.assert_array_equal(masks["lesion"].array, labels == 2)
    assert masks["liver"].frame_of_reference_uid == FOR
    assert masks["liver"].same_grid(reference)
    # the voxel labelled 2 is where the RAS affine says, in LPS
    k, j, i = 4, 6, 8
    ras_xyz = np.array([-0.9 * i + 120.0, -0.8 * j + 95.0, 2.5 * k - 60.0])
    np.testing.assert_allclose(reference.index_to_world([k, j, i]), ras_xyz * [-1, -1, 1])
    default = read_label_map(path, reference)
    assert set(default) == {"1", "2"}


def test_label_map_mismatch_refused_or_resampled(label_file):
    path, labels, reference = label_file
    shifted = Volume(
        reference.array, reference.affine + np.pad([[0], [0], [2.0]], ((0, 1), (3, 0))), "HU"
    )
    with pytest.raises(GeometryMismatchError, match="not on the reference grid"):
        read_label_map(path, shifted)
    coarse = Volume.from_spacing(
        np.zeros((3, 4, 5)),
        (5.0, 1.6, 1.8),
        reference.index_to_world([0.5, 0.5, 0.5]),
        direction=reference.direction,
        unit="HU",
    )
    masks = read_label_map(path, coarse, {1: "liver"}, on_mismatch="resample", mode="fraction")
    v_src = (labels == 1).sum() * reference.voxel_volume_ml
    v = masks["liver"].array.sum(dtype=np.float64) * coarse.voxel_volume_ml
    assert v == pytest.approx(v_src, rel=0.03)  # sub-voxel sampling of a 72-voxel label


def test_read_without_sidecar_needs_unit(tmp_path):
    path = write_nifti(_dose(), tmp_path / "d.nii.gz", sidecar=False)
    with pytest.raises(UnitError, match="unit="):
        read_nifti(path)
    assert read_nifti(path, unit="Gy").unit == "Gy"


def test_sidecar_conflicts(tmp_path):
    path = write_nifti(_dose(), tmp_path / "d.nii.gz")
    with pytest.raises(UnitError, match="contradicts"):
        read_nifti(path, unit="Bq")
    meta = json.loads(sidecar_path(path).read_text())
    meta["affine_lps"][0][3] += 5.0
    sidecar_path(path).write_text(json.dumps(meta))
    with pytest.raises(GeometryMismatchError, match="sidecar"):
        read_nifti(path)


def test_mask_written_as_uint8(tmp_path):
    m = _dose().with_array(np.ones((4, 5, 6), bool), unit="1")
    back = read_nifti(write_nifti(m, tmp_path / "m.nii.gz"))
    assert back.array.dtype == np.uint8 and back.array.all()


def test_no_overwrite_nothing_written(tmp_path):
    (tmp_path / "d.json").write_text("keep")
    with pytest.raises(OutputError, match="overwrite"):
        write_nifti(_dose(), tmp_path / "d.nii.gz")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.json"]
    assert (tmp_path / "d.json").read_text() == "keep"
    write_nifti(_dose(), tmp_path / "d.nii.gz", overwrite=True)
    assert json.loads((tmp_path / "d.json").read_text())["unit"] == "Gy"


def test_input_folder_refused(tmp_path):
    study = tmp_path / "study"
    study.mkdir()
    with pytest.raises(OutputError, match="input folder"):
        write_nifti(_dose(), study / "d.nii.gz", input_dirs=[study])
    assert list(study.iterdir()) == []


def test_unknown_suffix(tmp_path):
    with pytest.raises(OutputError, match="nii.gz"):
        write_nifti(_dose(), tmp_path / "d.img")
