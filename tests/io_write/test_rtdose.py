"""RT Dose writer/reader: DICOM conformance, quantisation, geometry, independent read-back."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from pydicom.uid import RTDoseStorage

from dosimetry import Volume
from dosimetry.errors import (
    DicomInputError,
    GeometryMismatchError,
    InputDataError,
    OutputError,
    UnitError,
)
from dosimetry.io.rtdose import read_rtdose, write_rtdose

from .conftest import AXIAL, DICOMPYLER

RNG = np.random.default_rng(20240501)


def _dose(ct_header, shape=(6, 7, 8), unit="Gy") -> Volume:
    """Dose with a wide dynamic range: zeros, tiny values and a ~5 Gy maximum."""
    values = 5.0 * 10.0 ** RNG.uniform(-9.0, 0.0, size=shape)
    values[0, 0, :3] = 0.0
    values[1, 2, 3] = 5.0
    return Volume.from_spacing(
        values,
        (3.0, 2.5, 2.0),
        (-100.0, -80.0, 40.0),
        direction=AXIAL,
        unit=unit,
        frame_of_reference_uid=ct_header.FrameOfReferenceUID,
    )


def _sitk_geometry_affine(img: sitk.Image) -> np.ndarray:
    """Index (slice,row,col) -> LPS affine from SimpleITK's (x,y,z)-ordered geometry."""
    d = np.array(img.GetDirection()).reshape(3, 3)
    sp = np.array(img.GetSpacing())
    a = np.eye(4)
    a[:3, :3] = (d * sp[np.newaxis, :])[:, ::-1]
    a[:3, 3] = img.GetOrigin()
    return a


# --------------------------------------------------------------------------- round trip
def test_quantisation_error_within_documented_bound(tmp_path, ct_header):
    dose = _dose(ct_header)
    path = write_rtdose(dose, tmp_path / "d.dcm", ct_header)
    back = read_rtdose(path)
    ds = pydicom.dcmread(path)
    s = float(ds.DoseGridScaling)
    d = dose.array
    err = np.abs(back.array - d)
    # absolute: half a quantisation step, s = max / (2**32 - 1) (module docstring)
    assert s <= d.max() / (2**32 - 1) * (1 + 1e-8)
    assert np.all(err <= 0.5 * s * (1 + 1e-9) + 1e-15 * d.max())
    # relative 1e-4 on every voxel above the documented threshold 1.2e-6 x max
    big = d >= 1.2e-6 * d.max()
    assert big.sum() > 0.5 * d.size
    assert np.all(err[big] <= 1e-4 * d[big])
    # zeros stay exactly zero, and the maximum uses the full 32-bit range
    assert np.all(back.array[d == 0] == 0)
    assert ds.pixel_array.max() > 0.999 * (2**32 - 1)


def test_small_values_acceptance(tmp_path, ct_header):
    """A map spanning 0.1 mGy .. 20 Gy: every voxel back to 1e-4 relative."""
    values = np.geomspace(1e-4, 20.0, 6 * 7 * 8).reshape(6, 7, 8)
    dose = _dose(ct_header).with_array(values)
    back = read_rtdose(write_rtdose(dose, tmp_path / "d.dcm", ct_header))
    np.testing.assert_allclose(back.array, values, rtol=1e-4, atol=0)


def test_geometry_round_trip_exact(tmp_path, ct_header):
    dose = _dose(ct_header)
    back = read_rtdose(write_rtdose(dose, tmp_path / "d.dcm", ct_header))
    assert back.shape == dose.shape
    np.testing.assert_allclose(back.affine, dose.affine, atol=1e-9)
    assert back.unit == "Gy"
    assert back.frame_of_reference_uid == ct_header.FrameOfReferenceUID


def test_oblique_and_reversed_grid(tmp_path, ct_header):
    """Slice axis opposite to row x column: frames are reordered, world positions kept."""
    angle = np.deg2rad(20.0)
    rot = np.array(
        [[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]]
    )
    direction = rot @ AXIAL
    direction[:, 0] *= -1.0  # slices run towards feet: normal . slice step < 0
    values = RNG.uniform(0.5, 2.0, size=(5, 4, 6))
    dose = Volume.from_spacing(
        values,
        (4.0, 3.0, 2.0),
        (10.0, 20.0, 30.0),
        direction=direction,
        unit="Gy",
        frame_of_reference_uid=ct_header.FrameOfReferenceUID,
    )
    path = write_rtdose(dose, tmp_path / "d.dcm", ct_header)
    ds = pydicom.dcmread(path)
    offsets = np.array([float(v) for v in ds.GridFrameOffsetVector])
    assert offsets[0] == 0.0 and np.all(np.diff(offsets) > 0)
    back = read_rtdose(path)
    # same voxel centres in the world, same values
    idx = np.stack(np.meshgrid(*[np.arange(n) for n in dose.shape], indexing="ij"), -1)
    world = dose.index_to_world(idx.reshape(-1, 3))
    idx_back = np.rint(back.world_to_index(world)).astype(int)
    np.testing.assert_allclose(back.world_to_index(world), idx_back, atol=1e-6)
    np.testing.assert_allclose(
        back.array[idx_back[:, 0], idx_back[:, 1], idx_back[:, 2]], values.ravel(), rtol=1e-6
    )


# --------------------------------------------------------------------------- attributes
def test_required_attributes(tmp_path, ct_header):
    dose = _dose(ct_header)
    path = write_rtdose(dose, tmp_path / "d.dcm", ct_header, series_description="Lu-177 dose")
    ds = pydicom.dcmread(path)
    assert ds.file_meta.MediaStorageSOPClassUID == RTDoseStorage
    assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
    assert ds.SOPClassUID == RTDoseStorage
    assert ds.Modality == "RTDOSE"
    assert ds.DoseUnits == "GY"
    assert ds.DoseType == "PHYSICAL"
    assert ds.DoseSummationType == "ADMINISTRATION"
    assert ds.BitsAllocated == 32 and ds.BitsStored == 32 and ds.HighBit == 31
    assert ds.PixelRepresentation == 0
    assert ds.FrameIncrementPointer == pydicom.tag.Tag("GridFrameOffsetVector")
    assert ds.NumberOfFrames == 6 and ds.Rows == 7 and ds.Columns == 8
    np.testing.assert_allclose([float(v) for v in ds.GridFrameOffsetVector], np.arange(6) * 3.0)
    assert float(ds.SliceThickness) == 3.0
    np.testing.assert_allclose([float(v) for v in ds.PixelSpacing], [2.5, 2.0])
    np.testing.assert_allclose([float(v) for v in ds.ImagePositionPatient], [-100, -80, 40])
    np.testing.assert_allclose([float(v) for v in ds.ImageOrientationPatient], [1, 0, 0, 0, 1, 0])
    assert ds.FrameOfReferenceUID == ct_header.FrameOfReferenceUID
    assert ds.StudyInstanceUID == ct_header.StudyInstanceUID
    assert ds.PatientID == ct_header.PatientID and ds.PatientName == ct_header.PatientName
    assert ds.SeriesInstanceUID != ct_header.SeriesInstanceUID
    assert ds.SeriesDescription == "Lu-177 dose"
    assert ds.DoseComment.startswith("[Gy]")
    assert "ReferencedRTPlanSequence" not in ds


def test_plan_reference(tmp_path, ct_header):
    plan = pydicom.dcmread(DICOMPYLER / "rtplan.dcm", stop_before_pixels=True)
    path = write_rtdose(_dose(ct_header), tmp_path / "d.dcm", ct_header, referenced_rt_plan=plan)
    ds = pydicom.dcmread(path)
    assert ds.DoseSummationType == "PLAN"
    assert ds.ReferencedRTPlanSequence[0].ReferencedSOPInstanceUID == plan.SOPInstanceUID
    assert ds.ReferencedRTPlanSequence[0].ReferencedSOPClassUID == plan.SOPClassUID


def test_effective_units(tmp_path, ct_header):
    dose = _dose(ct_header, unit="Gy_RBE")
    path = write_rtdose(dose, tmp_path / "d.dcm", ct_header, comment="Ac-225, RBE 5")
    ds = pydicom.dcmread(path)
    assert ds.DoseType == "EFFECTIVE" and ds.DoseUnits == "GY"
    assert ds.DoseComment == "[Gy_RBE] Ac-225, RBE 5"
    assert read_rtdose(path).unit == "Gy_RBE"
    with pytest.raises(UnitError, match="contradicts"):
        write_rtdose(dose, tmp_path / "e.dcm", ct_header, dose_type="PHYSICAL")


def test_reference_via_header_attribute(tmp_path, ct_header):
    class Series:
        header = ct_header

    ds = pydicom.dcmread(write_rtdose(_dose(ct_header), tmp_path / "d.dcm", Series()))
    assert ds.StudyInstanceUID == ct_header.StudyInstanceUID


# --------------------------------------------------------------------------- validators
def _to_16_bits(src: Path, dst: Path) -> None:
    ds = pydicom.dcmread(src)
    d = ds.pixel_array.astype(np.float64) * float(ds.DoseGridScaling)
    s16 = d.max() / 65535.0
    ds.PixelData = np.rint(d / s16).astype("<u2").tobytes()
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
    ds.DoseGridScaling = f"{s16:.10g}"
    ds.save_as(dst)


@pytest.mark.skipif(shutil.which("dciodvfy") is None, reason="dciodvfy (dicom3tools) not installed")
@pytest.mark.parametrize("with_plan", [False, True])
def test_dciodvfy_zero_errors(tmp_path, ct_header, with_plan):
    """dicom3tools' IOD validator; it cannot read 32-bit pixels, so a 16-bit copy is checked."""
    plan = DICOMPYLER / "rtplan.dcm" if with_plan else None
    src = write_rtdose(_dose(ct_header), tmp_path / "d.dcm", ct_header, referenced_rt_plan=plan)
    _to_16_bits(src, tmp_path / "d16.dcm")
    res = subprocess.run(["dciodvfy", str(tmp_path / "d16.dcm")], capture_output=True, text=True)
    lines = (res.stdout + res.stderr).splitlines()
    errors = [line for line in lines if line.lstrip().startswith("Error")]
    warnings = [line for line in lines if line.lstrip().startswith("Warning")]
    assert errors == [], "\n".join(lines)
    # Warnings we accept: the reference CT's PN value (copied as is) and, without a plan,
    # the extended Defined Term ADMINISTRATION.
    for w in warnings:
        assert "Referring Physician" in w or "ADMINISTRATION" in w, w


def test_simpleitk_reads_same_geometry(tmp_path, ct_header):
    dose = _dose(ct_header)
    path = write_rtdose(dose, tmp_path / "d.dcm", ct_header)
    img = sitk.ReadImage(str(path))
    np.testing.assert_allclose(_sitk_geometry_affine(img), dose.affine, atol=1e-6)
    raw = sitk.GetArrayFromImage(img).astype(np.float64)  # GDCM does not apply the scaling
    scale = float(pydicom.dcmread(path, stop_before_pixels=True).DoseGridScaling)
    np.testing.assert_allclose(raw * scale, dose.array, rtol=0, atol=scale)


@pytest.mark.skipif(shutil.which("plastimatch") is None, reason="plastimatch not installed")
def test_plastimatch_reads_same_geometry_and_dose(tmp_path, ct_header):
    dose = _dose(ct_header)
    path = write_rtdose(dose, tmp_path / "d.dcm", ct_header)
    out = tmp_path / "p.mha"
    res = subprocess.run(
        ["plastimatch", "convert", "--input", str(path), "--output-dose-img", str(out)],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    img = sitk.ReadImage(str(out))
    np.testing.assert_allclose(_sitk_geometry_affine(img), dose.affine, atol=1e-4)
    # plastimatch returns float32 Gy
    np.testing.assert_allclose(sitk.GetArrayFromImage(img), dose.array, rtol=1e-6, atol=1e-6)


# --------------------------------------------------------------------------- reading
def test_read_real_rtdose(dicompyler_dose_path):
    vol = read_rtdose(dicompyler_dose_path)
    ds = pydicom.dcmread(dicompyler_dose_path)
    assert vol.shape == (98, 129, 194)
    np.testing.assert_allclose(vol.spacing_mm, (3.0, 2.5, 2.5))
    np.testing.assert_allclose(vol.origin_mm, [-228.6541915, -419.2444776, -122.4407])
    np.testing.assert_allclose(vol.array.max(), ds.pixel_array.max() * 1.4e-5, rtol=1e-12)
    # independent geometry: SimpleITK/GDCM
    img = sitk.ReadImage(str(dicompyler_dose_path))
    np.testing.assert_allclose(_sitk_geometry_affine(img), vol.affine, atol=1e-4)
    assert vol.frame_of_reference_uid == ds.FrameOfReferenceUID


def test_read_absolute_grid_frame_offsets(tmp_path, ct_header):
    dose = _dose(ct_header)
    path = write_rtdose(dose, tmp_path / "d.dcm", ct_header)
    ds = pydicom.dcmread(path)
    z0 = float(ds.ImagePositionPatient[2])
    ds.GridFrameOffsetVector = [z0 + 3.0 * k for k in range(6)]
    np.testing.assert_allclose(read_rtdose(ds).affine, dose.affine, atol=1e-9)
    ds.GridFrameOffsetVector = [7.0 + 3.0 * k for k in range(6)]  # neither 0 nor z0
    with pytest.raises(DicomInputError, match="GridFrameOffsetVector"):
        read_rtdose(ds)


def test_read_missing_scaling_names_tag(tmp_path, ct_header):
    ds = pydicom.dcmread(write_rtdose(_dose(ct_header), tmp_path / "d.dcm", ct_header))
    del ds.DoseGridScaling
    with pytest.raises(DicomInputError, match="DoseGridScaling"):
        read_rtdose(ds)


def test_read_effective_without_unit_needs_override(tmp_path, ct_header):
    ds = pydicom.dcmread(
        write_rtdose(_dose(ct_header, unit="Gy_BED"), tmp_path / "d.dcm", ct_header)
    )
    ds.DoseComment = "from another system"
    with pytest.raises(DicomInputError, match="unit="):
        read_rtdose(ds)
    assert read_rtdose(ds, unit="Gy_BED").unit == "Gy_BED"


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("bad", [np.nan, np.inf, -1e-3])
def test_refuses_invalid_dose(tmp_path, ct_header, bad):
    dose = _dose(ct_header)
    arr = dose.array.copy()
    arr[2, 2, 2] = bad
    with pytest.raises(InputDataError):
        write_rtdose(dose.with_array(arr), tmp_path / "d.dcm", ct_header)
    assert list(tmp_path.iterdir()) == []


def test_refuses_non_dose_unit(tmp_path, ct_header):
    with pytest.raises(UnitError, match="Bq"):
        write_rtdose(
            _dose(ct_header).with_array(np.ones((6, 7, 8)), unit="Bq"), tmp_path / "d", ct_header
        )


def test_refuses_other_frame_of_reference(tmp_path, ct_header):
    dose = Volume(np.ones((2, 3, 4)), np.eye(4), "Gy", frame_of_reference_uid="1.2.3.999")
    with pytest.raises(GeometryMismatchError) as exc:
        write_rtdose(dose, tmp_path / "d.dcm", ct_header)
    assert "1.2.3.999" in str(exc.value) and ct_header.FrameOfReferenceUID in str(exc.value)


def test_existing_output_not_overwritten(tmp_path, ct_header):
    target = tmp_path / "d.dcm"
    target.write_bytes(b"precious")
    with pytest.raises(OutputError, match="overwrite=True"):
        write_rtdose(_dose(ct_header), target, ct_header)
    assert target.read_bytes() == b"precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.dcm"]  # no temporary left
    write_rtdose(_dose(ct_header), target, ct_header, overwrite=True)
    assert pydicom.dcmread(target).Modality == "RTDOSE"


def test_refuses_input_folder(tmp_path, ct_header):
    inp = tmp_path / "study"
    (inp / "sub").mkdir(parents=True)
    with pytest.raises(OutputError, match="input folder"):
        write_rtdose(_dose(ct_header), inp / "sub" / "d.dcm", ct_header, input_dirs=[inp])
    assert list((inp / "sub").iterdir()) == []


def test_plan_summation_needs_plan(tmp_path, ct_header):
    with pytest.raises(OutputError, match="referenced_rt_plan"):
        write_rtdose(_dose(ct_header), tmp_path / "d.dcm", ct_header, summation_type="PLAN")


def test_comment_too_long(tmp_path, ct_header):
    with pytest.raises(OutputError, match="64"):
        write_rtdose(_dose(ct_header), tmp_path / "d.dcm", ct_header, comment="x" * 70)


def test_reference_without_study_uid(tmp_path, ct_header):
    ref = pydicom.Dataset()
    ref.FrameOfReferenceUID = ct_header.FrameOfReferenceUID
    with pytest.raises(DicomInputError, match="StudyInstanceUID"):
        write_rtdose(_dose(ct_header), tmp_path / "d.dcm", ref)


def test_does_not_modify_input(tmp_path, ct_header):
    dose = _dose(ct_header)
    before = dose.array.copy()
    ref_before = ct_header.to_json_dict()
    write_rtdose(dose, tmp_path / "d.dcm", ct_header)
    np.testing.assert_array_equal(dose.array, before)
    assert ct_header.to_json_dict() == ref_before


def test_16_bit_quantisation_bound(tmp_path, ct_header):
    """16 bits: error within half a step, s = max / 65535 (module docstring)."""
    dose = _dose(ct_header)
    path = write_rtdose(dose, tmp_path / "d16.dcm", ct_header, bits=16)
    ds = pydicom.dcmread(path)
    assert ds.BitsAllocated == 16 and ds.pixel_array.dtype == np.uint16
    s = float(ds.DoseGridScaling)
    assert s <= dose.array.max() / 65535 * (1 + 1e-8)
    err = np.abs(read_rtdose(path).array - dose.array)
    assert np.all(err <= 0.5 * s * (1 + 1e-9))
