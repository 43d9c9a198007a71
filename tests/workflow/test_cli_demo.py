"""The end-to-end path: phantom DICOM -> 177Lu dose map -> RTDOSE, NIfTI, table; the CLI."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest

import dosimetry as ds
from dosimetry.cli import main
from dosimetry.planning import plan_from_pet, run_demo


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    plan = run_demo(out, activity="7.4 GBq", seed=0)
    return out, plan


def test_demo_writes_every_output(demo):
    out, plan = demo
    for name in ("dose.dcm", "dose.nii.gz", "dose_table.csv", "report.md"):
        assert (out / name).is_file(), name
    assert any((out / "phantom_study").rglob("*")), "phantom study not written"
    assert plan.dose.unit == "Gy"
    assert np.all(np.isfinite(plan.dose.array)) and plan.dose.array.min() >= 0


def test_rtdose_reads_back_the_computed_map(demo):
    out, plan = demo
    rd = pydicom.dcmread(out / "dose.dcm")
    assert rd.Modality == "RTDOSE"
    assert rd.DoseUnits == "GY"
    back = rd.pixel_array.astype(np.float64) * float(rd.DoseGridScaling)
    dose = plan.dose.array.astype(np.float64)
    assert back.shape == dose.shape
    # 32-bit quantisation: |error| <= DoseGridScaling / 2 everywhere, so every voxel above
    # 1e-5 of the peak is reproduced to 1e-4 relative (the acceptance criterion).
    scale = float(rd.DoseGridScaling)
    assert np.max(np.abs(back - dose)) <= 0.5 * scale * (1 + 1e-9)
    big = dose > 1e-5 * dose.max()
    rel = np.abs(back[big] - dose[big]) / dose[big]
    assert rel.max() <= 1e-4


def test_rtdose_geometry_matches_the_reference_series(demo):
    out, plan = demo
    rd = pydicom.dcmread(out / "dose.dcm")
    study = ds.load_study(out / "phantom_study")
    pet = study.pet()
    first = pydicom.dcmread(pet.files[0], stop_before_pixels=True)
    assert rd.FrameOfReferenceUID == first.FrameOfReferenceUID
    assert rd.StudyInstanceUID == first.StudyInstanceUID
    assert rd.PatientID == first.PatientID
    np.testing.assert_allclose(
        [float(v) for v in rd.ImageOrientationPatient],
        [float(v) for v in first.ImageOrientationPatient],
        atol=1e-6,
    )
    np.testing.assert_allclose(
        [float(v) for v in rd.ImagePositionPatient],
        [float(v) for v in first.ImagePositionPatient],
        atol=1e-3,
    )
    np.testing.assert_allclose(
        [float(v) for v in rd.PixelSpacing], [float(v) for v in first.PixelSpacing], atol=1e-6
    )
    # every frame sits on a PET slice position
    z_pet = [
        float(pydicom.dcmread(f, stop_before_pixels=True).ImagePositionPatient[2])
        for f in pet.files
    ]
    z_dose = float(rd.ImagePositionPatient[2]) + np.array(
        [float(v) for v in rd.GridFrameOffsetVector]
    )
    np.testing.assert_allclose(np.sort(z_dose), np.sort(z_pet), atol=1e-3)
    back = ds.io.read_rtdose(out / "dose.dcm")
    assert back.same_grid(plan.dose, atol_mm=1e-3)


def test_nifti_and_table(demo):
    out, plan = demo
    nii = ds.io.read_nifti(out / "dose.nii.gz")
    assert nii.unit == "Gy"
    np.testing.assert_allclose(nii.array, plan.dose.array, rtol=1e-6, atol=0)
    assert nii.same_grid(plan.dose, atol_mm=1e-3)
    with (out / "dose_table.csv").open() as f:
        rows = list(csv.DictReader(f))
    names = {r["name"] for r in rows}
    assert {"liver", "kidney_left", "kidney_right", "spleen"} <= names
    for r in rows:
        assert float(r["mean_gy_per_gbq"]) == pytest.approx(float(r["mean_gy"]) / 7.4, rel=1e-4)
        assert float(r["max_gy"]) >= float(r["mean_gy"]) >= 0


def test_led_plan_conserves_energy(demo):
    """Sum(dose x voxel mass) equals Sum(TIA x energy absorbed locally) for LED."""
    out, _ = demo
    study = ds.load_study(out / "phantom_study")
    plan = plan_from_pet(study, activity="7.4 GBq", method="led")
    assert plan.method == "led"
    rho = (
        plan.density.array
        if plan.density is not None
        else ds.parameters.get("density_soft_tissue_g_per_ml")
    )
    mass_kg = rho * plan.dose.voxel_volume_ml * 1e-3
    deposited = float(np.sum(plan.dose.array.astype(np.float64) * mass_kg))
    lu = ds.nuclide("Lu-177")
    # decays in air voxels (density below density_air_max_g_per_ml) get no dose
    air = np.asarray(rho) < ds.parameters.get("density_air_max_g_per_ml")
    decays = float(plan.tia.array[~air].sum()) if air.ndim else plan.tia.total()
    released = decays * lu.nonpenetrating_energy_mev() * ds.units.MEV_TO_J
    assert deposited == pytest.approx(released, rel=1e-6)
    assert 0 < plan.dose.provenance.get("source_fraction_in_air", 0.0) < 0.05


def test_demo_refuses_to_overwrite(demo, capsys):
    out, _ = demo
    assert main(["demo", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("dosimetry: error:") and "overwrite" in err[-1]
    assert sum(line.startswith("dosimetry: error:") for line in err) == 1


def test_cli_help_and_bad_folder(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    assert "demo" in capsys.readouterr().out
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["plan", str(empty), "--out", str(tmp_path / "o"), "--activity", "7.4 GBq"]) == 2
    err = capsys.readouterr().err.splitlines()
    # progress lines, then exactly one error line naming the folder
    assert err[-1].startswith("dosimetry: error:") and "empty" in err[-1]
    assert sum(line.startswith("dosimetry: error:") for line in err) == 1


def test_console_script_runs():
    r = subprocess.run(
        [sys.executable, "-m", "dosimetry.cli", "--help"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert r.returncode == 0 and "demo" in r.stdout


def test_plan_rejects_bad_activity(demo):
    out, _ = demo
    study = ds.load_study(out / "phantom_study")
    with pytest.raises(ds.UnitError):
        plan_from_pet(study, activity="7.4 furlongs")
    with pytest.raises(ds.DosimetryError):
        plan_from_pet(study, activity=-1.0)


def test_demo_output_path_is_reported(demo):
    out, plan = demo
    text = plan.summary()
    assert "kidney_left" in text and str(Path(out) / "dose.dcm") in text


def test_report_states_inputs_assumptions_and_table(demo):
    out, plan = demo
    text = (out / "report.md").read_text()
    assert "## Assumptions" in text and "## Absorbed dose per VOI" in text
    # every assumption and every VOI of the plan appears in the report
    for a in plan.assumptions:
        assert str(a["name"]) in text
    for row in plan.table:
        assert f"| {row['name']} |" in text
    assert str(plan.reference.series_instance_uid) in text
    sha = plan.dose.provenance["kernel"]["sha256"][:16]
    assert "- kernel: Lu-177 in soft tissue (1.04 g/mL)" in text and sha in text


def test_vsv_density_plan_from_the_ct(demo):
    """method="vsv-density": tissue classes from the study's CT. Soft-tissue organs agree
    with the homogeneous plan to the density scaling (the liver's CT density differs from
    the kernel's 1.04 g/mL by a few percent); lung dose per lung mass is higher (the
    homogeneous plan reports energy per soft-tissue mass); air voxels get no dose, so the
    body maximum stays at tissue levels."""
    out, vsv_plan = demo
    study = ds.load_study(out / "phantom_study")
    plan = plan_from_pet(study, activity="7.4 GBq", method="vsv-density")
    assert plan.method == "vsv-density"
    rows = {r["name"]: r for r in plan.table}
    ref = {r["name"]: r for r in vsv_plan.table}
    for organ in ("liver", "kidney_left", "spleen"):
        assert rows[organ]["mean_gy"] == pytest.approx(ref[organ]["mean_gy"], rel=0.05)
    assert rows["lung_left"]["mean_gy"] > 2.0 * ref["lung_left"]["mean_gy"]
    assert rows["body"]["max_gy"] < 1.5 * ref["body"]["max_gy"]
    assert any(a["name"] == "tissue classes" for a in plan.assumptions)
    assert plan.dose.provenance["kernels"].keys() >= {"lung", "soft tissue", "bone"}
    from dosimetry.report import plan_report

    text = plan_report(plan)
    for medium in ("lung", "soft tissue", "bone"):
        sha = plan.dose.provenance["kernels"][medium]["sha256"][:16]
        assert f"- kernel ({medium}): Lu-177 in {medium}" in text and sha in text
    assert "- source_fraction_in_air: " in text


def test_vsv_density_needs_a_ct(demo, tmp_path):
    import shutil

    out, _ = demo
    study_dir = tmp_path / "no_ct"
    shutil.copytree(out / "phantom_study", study_dir)
    ct_files = [
        p
        for p in study_dir.rglob("*.dcm")
        if pydicom.dcmread(p, stop_before_pixels=True).Modality == "CT"
    ]
    assert ct_files
    for f in ct_files:
        f.unlink()
    with pytest.raises(ds.errors.DosimetryError, match="vsv-density.*CT"):
        plan_from_pet(ds.load_study(study_dir), method="vsv-density")
