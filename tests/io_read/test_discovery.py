"""Folder discovery, grouping, Study listing and selection errors."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

from dosimetry.errors import DicomInputError
from dosimetry.io import Study, find_series, load_study

from .conftest import write_ct_series, write_pet_series


def test_ct5n_real_series_sorted_by_position(ct5n_folder):
    """pydicom's CT5N: file names and InstanceNumber run opposite to z; the volume is
    sorted by position along the normal (+z) and matches plain pydicom values."""
    study = load_study(ct5n_folder)
    ct = study.ct()
    v = ct.volume
    assert v.shape == (5, 16, 16)
    assert [p.name for p in ct.files] == ["3353", "3023", "2693", "2392", "2062"]
    zs = [float(pydicom.dcmread(p).ImagePositionPatient[2]) for p in ct.files]
    assert zs == sorted(zs)
    for k, p in enumerate(ct.files):
        ds = pydicom.dcmread(p)
        hu = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
        np.testing.assert_array_equal(v.array[k], hu)  # exact
        np.testing.assert_allclose(v.index_to_world([k, 0, 0]), ds.ImagePositionPatient, atol=1e-6)
    assert v.spacing_mm == pytest.approx((2.5, 0.488281, 0.488281))
    assert v.unit == "HU"
    assert v.frame_of_reference_uid == ct.frame_of_reference_uid
    assert ct.sop_instance_uids == [pydicom.dcmread(p).SOPInstanceUID for p in ct.files]
    assert "PixelData" not in ct.header
    assert ct.header.SOPInstanceUID == ct.sop_instance_uids[0]
    prov = ct.provenance
    assert prov["files"] == [str(p) for p in ct.files]
    assert any("sorted" in d for d in prov["derivations"])


def test_dicomdir_tree_several_patients_and_localizer():
    root = Path(get_testdata_file("DICOMDIR", download=False)).parent
    study = load_study(root)
    rows = study.series_table()
    assert {r["patient_id"] for r in rows} >= {"77654033", "98890234"}
    # the 2-image scout (ImageType LOCALIZER) is listed but not selectable as CT
    scout = next(r for r in rows if r["series_description"] == "Scout")
    assert scout["index"] is None
    ct_rows = [r for r in rows if r["modality"] == "CT" and r["index"] is not None]
    assert len(ct_rows) == 3
    with pytest.raises(DicomInputError, match=r"3 CT series") as e:
        study.ct()
    assert "study.ct(<index>)" in str(e.value)
    assert "SmartScore" in str(e.value)
    ct = study.ct("SmartScore - Gated 0.5 sec")
    assert ct.volume.shape == (5, 16, 16)
    assert any(reason.startswith("DICOMDIR") for _, reason in study.skipped)
    assert any("not a DICOM file" in reason for _, reason in study.skipped)
    text = str(study)
    assert "SmartScore" in text and "77654033" in text
    assert "<table>" in study._repr_html_()


def test_non_dicom_skipped_with_logged_reason(tmp_path, caplog):
    write_ct_series(tmp_path / "ct", n_slices=3)
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "ct" / ".DS_Store").write_bytes(b"\x00\x01binary")
    with caplog.at_level(logging.INFO, logger="dosimetry.io.discovery"):
        study = load_study(tmp_path)
    skipped = {p.name: r for p, r in study.skipped}
    assert set(skipped) == {"notes.txt", ".DS_Store"}
    assert all("not a DICOM file" in r for r in skipped.values())
    assert "notes.txt" in caplog.text and "not a DICOM file" in caplog.text
    assert len(study.series) == 1


def test_grouping_by_series_and_frame_of_reference(tmp_path):
    uid = pydicom.uid.generate_uid()
    write_ct_series(tmp_path / "a", n_slices=2, SeriesInstanceUID=uid, FrameOfReferenceUID="1.2.3")
    write_ct_series(tmp_path / "b", n_slices=2, SeriesInstanceUID=uid, FrameOfReferenceUID="1.2.4")
    write_pet_series(tmp_path / "pet", n_slices=2, FrameOfReferenceUID="1.2.5")
    series = find_series(tmp_path)
    assert sorted((s.modality, s.frame_of_reference_uid, len(s.files)) for s in series) == [
        ("CT", "1.2.3", 2),
        ("CT", "1.2.4", 2),
        ("PT", "1.2.5", 2),
    ]


def test_duplicate_copy_of_a_file_is_skipped(tmp_path):
    paths = write_ct_series(tmp_path / "ct", n_slices=3)
    shutil.copy(paths[0], tmp_path / "copy.dcm")
    study = load_study(tmp_path)
    assert any("duplicate of" in r for _, r in study.skipped)
    assert study.ct().volume.shape[0] == 3


def test_no_pet_error_names_folder_and_contents(tmp_path):
    write_ct_series(tmp_path, n_slices=2)
    study = load_study(tmp_path)
    with pytest.raises(DicomInputError) as e:
        study.pet()
    msg = str(e.value)
    assert "no PET series" in msg and str(tmp_path) in msg and "CT (1 series)" in msg


def test_two_pets_ambiguous_then_selected(tmp_path):
    study_uid = pydicom.uid.generate_uid()
    a = write_pet_series(
        tmp_path / "a",
        n_slices=2,
        SeriesDescription="PET AC",
        SeriesNumber=3,
        StudyInstanceUID=study_uid,
    )
    write_pet_series(
        tmp_path / "b",
        n_slices=2,
        SeriesDescription="PET NAC",
        SeriesNumber=4,
        StudyInstanceUID=study_uid,
    )
    study = load_study(tmp_path)
    with pytest.raises(DicomInputError, match="2 PET series") as e:
        study.pet()
    assert "PET AC" in str(e.value) and "PET NAC" in str(e.value)
    uid = pydicom.dcmread(a[0]).SeriesInstanceUID
    assert study.pet(uid).series_instance_uid == uid
    assert study.pet("PET NAC").series_description == "PET NAC"
    assert study.pet(0).series_description == "PET AC"
    with pytest.raises(DicomInputError, match="no PET series with"):
        study.pet("nope")
    with pytest.raises(DicomInputError, match="there are 2 PET"):
        study.pet(5)


def test_truncated_and_header_only_files(tmp_path):
    paths = write_ct_series(tmp_path / "trunc", n_slices=3)
    data = paths[1].read_bytes()
    paths[1].write_bytes(data[: len(data) - 10])  # pixel data cut short
    ct = load_study(tmp_path / "trunc").ct()
    with pytest.raises(DicomInputError) as e:
        _ = ct.volume
    assert e.value.path == paths[1]

    paths = write_ct_series(tmp_path / "nopix", n_slices=2)
    ds = pydicom.dcmread(paths[0])
    del ds.PixelData
    ds.save_as(paths[0])
    with pytest.raises(DicomInputError, match="no PixelData") as e:
        _ = load_study(tmp_path / "nopix").ct().volume
    assert e.value.tag == "PixelData"

    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "x.dcm").write_bytes(paths[1].read_bytes()[:200])
    study = load_study(tmp_path / "half")
    assert study.series == [] and len(study.skipped) == 1


def test_missing_position_tag_named(tmp_path):
    paths = write_ct_series(tmp_path, n_slices=2)
    ds = pydicom.dcmread(paths[0])
    del ds.ImagePositionPatient
    ds.save_as(paths[0])
    with pytest.raises(DicomInputError) as e:
        _ = load_study(tmp_path).ct().volume
    assert e.value.tag == "ImagePositionPatient" and e.value.path == paths[0]


def test_unknown_override_rejected(tmp_path):
    write_pet_series(tmp_path, n_slices=2)
    with pytest.raises(DicomInputError, match="unknown override"):
        load_study(tmp_path, overrides={"weight": 70})
    with pytest.raises(DicomInputError, match="unknown override"):
        load_study(tmp_path).pet(weight=70)
    study = load_study(tmp_path, overrides={"patient_weight_kg": 70.0})
    assert isinstance(study, Study)
    assert study.pet().patient_weight_kg == 70.0
    assert study.pet(patient_weight_kg=71.0).patient_weight_kg == 71.0
