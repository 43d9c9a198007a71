"""Real-export shapes through `dosimetry plan` (#16): two PET series (`--pet 1`), NIfTI
masks from a folder (TotalSegmentator layout), and no masks at all (`--body-only`)."""

from __future__ import annotations

import csv
import shutil

import numpy as np
import pydicom
import pytest
from pydicom.uid import generate_uid

import dosimetry as ds
import phantoms
from dosimetry.cli import EXIT_OK, EXIT_USER, main


@pytest.fixture(scope="module")
def study_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("own") / "study"
    phantoms.write_pet_ct_study(folder, seed=3)
    return folder


@pytest.fixture(scope="module")
def two_pet(study_dir, tmp_path_factory):
    """The study plus a second PET series in the same frame of reference (a late
    reconstruction: the same images with new UIDs and half the pixel values)."""
    folder = tmp_path_factory.mktemp("two") / "study"
    shutil.copytree(study_dir, folder)
    series_uid = generate_uid()
    for p in sorted(folder.rglob("*.dcm")):
        ds_ = pydicom.dcmread(p)
        if ds_.Modality != "PT":
            continue
        ds_.SeriesInstanceUID = series_uid
        ds_.SOPInstanceUID = generate_uid()
        ds_.file_meta.MediaStorageSOPInstanceUID = ds_.SOPInstanceUID
        ds_.SeriesDescription = "PET second reconstruction"
        ds_.SeriesNumber = 99
        ds_.RescaleSlope = float(ds_.RescaleSlope) * 0.5
        ds_.save_as(p.with_name("second_" + p.name))
    return folder


def _table(out):
    with (out / "dose_table.csv").open() as f:
        return {r["name"]: r for r in csv.DictReader(f)}


def test_two_pet_series_need_a_choice_and_pet_1_plans(two_pet, tmp_path, capsys):
    rc = main(
        [
            "plan",
            str(two_pet),
            "--out",
            str(tmp_path / "a"),
            "--activity",
            "7.4 GBq",
            "--method",
            "led",
        ]
    )
    assert rc == EXIT_USER
    err = capsys.readouterr().err
    assert "2 PET series" in err and "[1]" in err and "--pet" in err
    rc0 = main(
        [
            "plan",
            str(two_pet),
            "--out",
            str(tmp_path / "p0"),
            "--activity",
            "7.4 GBq",
            "--method",
            "led",
            "--pet",
            "0",
            "--accept",
            "fraction_in_fov",
        ]
    )
    rc1 = main(
        [
            "plan",
            str(two_pet),
            "--out",
            str(tmp_path / "p1"),
            "--activity",
            "7.4 GBq",
            "--method",
            "led",
            "--pet",
            "1",
            "--accept",
            "fraction_in_fov",
        ]
    )
    assert rc0 == rc1 == EXIT_OK
    t0, t1 = _table(tmp_path / "p0"), _table(tmp_path / "p1")
    # one of the two series has half the activity everywhere: every dose halves (the CSV
    # keeps 6 significant digits)
    ratios = {float(t1[n]["mean_gy"]) / float(t0[n]["mean_gy"]) for n in ("kidney_left", "liver")}
    assert all(
        r == pytest.approx(0.5, rel=1e-4) or r == pytest.approx(2.0, rel=1e-4) for r in ratios
    )
    # the series can also be named by its description
    rc2 = main(
        [
            "plan",
            str(two_pet),
            "--out",
            str(tmp_path / "p2"),
            "--activity",
            "7.4 GBq",
            "--method",
            "led",
            "--pet",
            "PET second reconstruction",
            "--accept",
            "fraction_in_fov",
        ]
    )
    assert rc2 == EXIT_OK
    # or by its SeriesInstanceUID: the same series as by its description
    uid = str(pydicom.dcmread(next(two_pet.rglob("second_*.dcm"))).SeriesInstanceUID)
    argv = ["plan", str(two_pet), "--out", str(tmp_path / "p3"), "--activity", "7.4 GBq"]
    assert main([*argv, "--method", "led", "--pet", uid, "--accept", "fraction_in_fov"]) == 0
    t2, t3 = _table(tmp_path / "p2"), _table(tmp_path / "p3")
    assert t3["kidney_left"]["mean_gy"] == t2["kidney_left"]["mean_gy"]


def test_nifti_masks_from_a_folder(study_dir, tmp_path):
    """Masks exported as one NIfTI per VOI on the CT grid (file stem = VOI name) give the
    RTSTRUCT's organ doses within the difference of the two rasterisations."""
    study = ds.load_study(study_dir)
    ct = study.ct().volume
    masks = study.masks(grid=ct, names=["kidney_left", "liver", "spleen"], mode="binary")
    folder = tmp_path / "totalseg"
    folder.mkdir()
    for name, m in masks.items():
        ds.write_nifti(
            m.with_array(m.array.astype(np.uint8), unit="1"),
            folder / f"{name}.nii.gz",
            sidecar=False,
        )
    empty = masks["spleen"].with_array(np.zeros(ct.shape, np.uint8), unit="1")
    ds.write_nifti(empty, folder / "brain.nii.gz", sidecar=False)  # empty masks are left out
    assert (
        main(
            [
                "plan",
                str(study_dir),
                "--out",
                str(tmp_path / "n"),
                "--activity",
                "7.4 GBq",
                "--method",
                "led",
                "--masks",
                str(folder),
            ]
        )
        == EXIT_OK
    )
    assert (
        main(
            [
                "plan",
                str(study_dir),
                "--out",
                str(tmp_path / "r"),
                "--activity",
                "7.4 GBq",
                "--method",
                "led",
            ]
        )
        == EXIT_OK
    )
    tn, tr = _table(tmp_path / "n"), _table(tmp_path / "r")
    assert set(tn) == {"kidney_left", "liver", "spleen"}
    for name in ("kidney_left", "spleen"):
        assert float(tn[name]["mean_gy"]) == pytest.approx(float(tr[name]["mean_gy"]), rel=0.05), (
            name
        )


def test_body_only(study_dir, tmp_path):
    assert (
        main(
            [
                "plan",
                str(study_dir),
                "--out",
                str(tmp_path / "b"),
                "--activity",
                "7.4 GBq",
                "--method",
                "led",
                "--body-only",
            ]
        )
        == EXIT_OK
    )
    t = _table(tmp_path / "b")
    assert list(t) == ["body"] and float(t["body"]["mean_gy"]) > 0
