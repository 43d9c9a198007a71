"""The multi-time-point Lu-177 SPECT/CT phantom study."""

from __future__ import annotations

import csv
import hashlib
import math
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.tag import Tag
from pydicom.uid import CTImageStorage, NuclearMedicineImageStorage, RTStructureSetStorage
from scipy import integrate

import phantoms

DATA = Path(__file__).resolve().parents[1] / "data"
LU177_HALF_LIFE_S = 6.647 * 86400.0  # ICRP Publication 107
MEV_TO_J = 1.602176634e-13


def frame_positions(ds: pydicom.Dataset) -> np.ndarray:
    """LPS centre of voxel [k, 0, 0] of each frame: IPP + k * spacing * (row x column)."""
    det = ds.DetectorInformationSequence[0]
    iop = np.array(det.ImageOrientationPatient, dtype=float)
    normal = np.cross(iop[:3], iop[3:])
    ipp = np.array(det.ImagePositionPatient, dtype=float)
    k = np.arange(int(ds.NumberOfFrames))
    return ipp + float(ds.SpacingBetweenSlices) * k[:, None] * normal


def test_files_and_sop_classes(spect_study) -> None:
    truth, wall_s = spect_study
    assert wall_s < 30.0  # 10 s budget on a developer machine; loaded CI runners are slower
    assert len(truth.time_points) == 4
    n_files = 0
    for tp in truth.time_points:
        (nm_path,) = tp.nm_paths
        nm = pydicom.dcmread(nm_path)
        assert nm.SOPClassUID == NuclearMedicineImageStorage and nm.Modality == "NM"
        assert list(nm.ImageType)[2:] == ["RECON TOMO", "EMISSION"]
        for p in tp.ct_paths[:2]:
            assert pydicom.dcmread(p, stop_before_pixels=True).SOPClassUID == CTImageStorage
        n_files += 1 + len(tp.ct_paths)
    rt = pydicom.dcmread(truth.rtstruct_path, stop_before_pixels=True)
    assert rt.SOPClassUID == RTStructureSetStorage
    assert len(list(truth.folder.iterdir())) == n_files + 1


def test_nm_geometry_and_acquisition_attributes(spect_study) -> None:
    truth, _ = spect_study
    tp = truth.time_points[0]
    nm = pydicom.dcmread(tp.nm_paths[0])
    vol = tp.activity
    assert int(nm.NumberOfFrames) == int(nm.NumberOfSlices) == vol.shape[0]
    assert nm.FrameIncrementPointer == Tag(0x0054, 0x0080)
    assert list(nm.SliceVector) == list(range(1, vol.shape[0] + 1))
    assert [float(v) for v in nm.PixelSpacing] == list(vol.spacing_mm[1:])
    assert float(nm.SpacingBetweenSlices) == pytest.approx(vol.spacing_mm[0])
    pos = frame_positions(nm)
    assert np.allclose(
        pos,
        vol.index_to_world(np.c_[np.arange(vol.shape[0]), np.zeros((vol.shape[0], 2))]),
        atol=1e-5,
    )
    assert nm.FrameOfReferenceUID == tp.frame_of_reference_uid
    ct0 = pydicom.dcmread(tp.ct_paths[0], stop_before_pixels=True)
    assert ct0.FrameOfReferenceUID == tp.frame_of_reference_uid
    assert ct0.StudyInstanceUID == nm.StudyInstanceUID
    # energy window around the 208 keV photopeak
    win = nm.EnergyWindowInformationSequence[0].EnergyWindowRangeSequence[0]
    assert float(win.EnergyWindowLowerLimit) < 208.366 < float(win.EnergyWindowUpperLimit)
    rot = nm.RotationInformationSequence[0]
    assert int(rot.NumberOfFramesInRotation) * int(rot.ActualFrameDuration) / 1000.0 == (
        tp.scan_duration_s
    )
    rp = nm.RadiopharmaceuticalInformationSequence[0]
    assert float(rp.RadionuclideTotalDose) == pytest.approx(7400.0)  # MBq in NM (PS3.3 C.8.4.10)
    assert rp.RadionuclideCodeSequence[0].CodeValue == "C-101ED"
    assert rp.RadiopharmaceuticalStartDateTime.startswith("20240402103000")
    assert nm.AcquisitionDate == "20240403" and nm.AcquisitionTime.startswith("103000")
    assert "Units" not in nm
    assert int(nm.CountsAccumulated) == tp.total_counts


def test_counts_decode_with_calibration_and_scan_duration(spect_study) -> None:
    truth, _ = spect_study
    for tp in truth.time_points:
        nm = pydicom.dcmread(tp.nm_paths[0])
        rot = nm.RotationInformationSequence[0]
        duration_s = int(rot.NumberOfFramesInRotation) * int(rot.ActualFrameDuration) / 1000.0
        counts = nm.pixel_array.astype(float) * float(nm.get("RescaleSlope", 1.0))
        lam = math.log(2) / LU177_HALF_LIFE_S
        t_eff = (1 - math.exp(-lam * duration_s)) / lam  # decay during the scan
        bq = counts / (truth.calibration_cps_per_mbq * 1e-6 * t_eff)
        assert np.allclose(bq, tp.expected_activity.array, rtol=1e-9)
        # E[sum counts] = CF x integral of the activity over the scan (Poisson, 5 sigma)
        mean_counts = (
            truth.calibration_cps_per_mbq
            * 1e-6
            * duration_s
            * sum(tp.organ_mean_activity_during_scan_bq[r] for r in ("body",))
        )
        assert abs(counts.sum() - mean_counts) < 5 * math.sqrt(mean_counts) + 1e-4 * mean_counts


def _icrp107_electron_energy_j(nuclide: str) -> float:
    with open(DATA / "icrp107_energy_per_decay.csv") as f:
        rows = {r["nuclide"]: r for r in csv.DictReader(ln for ln in f if not ln.startswith("#"))}
    return float(rows[nuclide]["E_electron_total_MeV"]) * MEV_TO_J


#: Cited inputs of the phantom's Lu-177-PSMA-617 kinetics (phantoms/_kinetics.py):
#: region -> (D/A Gy/GBq, density g/mL, T_eff h, T_up h). D/A: Peters et al., EJNMMI 2022
#: (SPECT/CT, 10 patients) except lacrimal (Mol Imaging Biol 2016, planar, 9 patients);
#: T_eff: population_kinetics.csv priority-1 rows (Molecules 2019, AAPM 2026 abstract).
CITED = {
    "kidney_left": (0.49, 1.05, 31.4, 1.5),
    "liver": (0.09, 1.06, 22.9, 1.0),
    "red_marrow": (0.017, 1.42, 8.2, 0.5),
    "parotid_right": (0.39, 1.05, 33.0, 1.0),
    "submandibular_left": (0.39, 1.05, 33.0, 1.0),
    "lacrimal_left": (2.82, 1.05, 33.0, 1.0),
}


def test_time_activity_curves_and_tia(spect_study) -> None:
    """Independent formulas: the documented exponentials, numerical quadrature for TIA."""
    truth, _ = spect_study
    a0 = truth.administered_activity_bq
    ln2 = math.log(2)
    e_j = _icrp107_electron_energy_j("Lu-177")
    # kidney plateau fraction from the cited dose: f = (D/A) m ln2 / (E (T_eff - T_2))
    d, rho, t_eff, t_up = CITED["kidney_left"]
    t2 = 1.0 / (1.0 / t_eff + 1.0 / t_up)
    mass_kg = truth.phantom.analytic_volume_ml("kidney_left") * rho / 1000.0
    f = d * 1e-9 * mass_kg * ln2 / (e_j * (t_eff - t2) * 3600.0)
    lam_eff, lam_up = ln2 / (t_eff * 3600.0), ln2 / (t_up * 3600.0)
    for tp in truth.time_points:
        t = tp.time_h * 3600.0
        kidney = f * a0 * (math.exp(-lam_eff * t) - math.exp(-(lam_eff + lam_up) * t))
        assert tp.region_activity_bq["kidney_left"] == pytest.approx(kidney, rel=1e-5)
        assert tp.organ_activity_bq["kidney_left"] == pytest.approx(kidney, rel=1e-5)
        total = sum(tp.region_activity_bq.values())
        assert tp.activity.total() == pytest.approx(total, rel=1e-9)
        assert tp.activity.unit == "Bq" and tp.activity.reference_time == tp.acquisition_datetime
        # the scan-mean activity lies within 2 % of the start activity (20 min scan; the
        # fastest region, red marrow with T_eff 8.2 h, loses ~1.4 % in 10 min)
        for roi, a in tp.organ_mean_activity_during_scan_bq.items():
            assert a == pytest.approx(tp.organ_activity_bq[roi], rel=0.02)
    # 91 slices of 4.7952 mm cover the 412 mm body with one FWHM (11 mm) to spare
    assert truth.time_points[0].activity.shape == (91, 128, 128)
    for region, tac in truth.kinetics.items():
        numeric, err = integrate.quad(
            lambda s, tac=tac: float(tac.fraction(s)), 0.0, 200 * 86400.0, limit=500
        )
        assert truth.region_tia_bq_s[region] == pytest.approx(a0 * numeric, rel=1e-6), region
        # effective half-lives never exceed the physical half-life
        assert max(tac.half_lives_s) <= LU177_HALF_LIFE_S
    assert truth.tia.unit == "Bq s"
    assert truth.tia.total() == pytest.approx(sum(truth.region_tia_bq_s.values()), rel=1e-9)
    assert truth.organ_tia_bq_s["liver"] == pytest.approx(
        truth.region_tia_bq_s["liver"] + truth.region_tia_bq_s["lesion_1"], rel=1e-9
    )


@pytest.mark.validation
def test_organ_absorbed_doses_per_activity_match_published_ranges(spect_study) -> None:
    """LED with the ICRP-107 Lu-177 electron energy: the phantom's organ doses per GBq.

    Each equals the cited cohort mean it was built from (Peters et al. EJNMMI 2022 and the
    lacrimal study, Mol Imaging Biol 2016; bookkeeping, rel 1e-4) and lies inside the
    patient range of the published Lu-177-PSMA-617 cohorts of
    dosimetry/data/literature_doses.csv (an independent check of the literature table).
    """
    from dosimetry.kinetics import literature_dose_range

    truth, _ = spect_study
    e_j = _icrp107_electron_energy_j("Lu-177")
    gbq = truth.administered_activity_bq / 1e9
    ph = truth.phantom

    def dose_per_gbq(region: str, density: float, volume_ml: float | None = None) -> float:
        mass_kg = (volume_ml or ph.analytic_volume_ml(region)) * density / 1000.0
        return truth.region_tia_bq_s[region] * e_j / mass_kg / gbq

    liver_ml = ph.analytic_volume_ml("liver") - ph.analytic_volume_ml("lesion_1")
    organs = {
        "kidney_left": "kidneys",
        "liver": "liver",
        "red_marrow": "red_marrow",
        "parotid_right": "parotid_glands",
        "submandibular_left": "submandibular_glands",
        "lacrimal_left": "lacrimal_glands",
    }
    for region, organ in organs.items():
        d, rho, _, _ = CITED[region]
        got = dose_per_gbq(region, rho, liver_ml if region == "liver" else None)
        assert got == pytest.approx(d, rel=1e-4), region
        lo, hi, _ = literature_dose_range("Lu-177-PSMA-617", organ, kind="patients")
        assert lo * (1 - 1e-9) <= got <= hi * (1 + 1e-9), (region, got, lo, hi)
    # the kidney dose lies between the smallest and largest published cohort means
    lo, hi, n = literature_dose_range("Lu-177-PSMA-617", "kidneys")
    assert n >= 3 and lo <= dose_per_gbq("kidney_left", 1.05) <= hi


def test_shifts_move_the_anatomy_and_frames_of_reference_differ(tmp_path) -> None:
    torso = phantoms.make_torso(voxel_mm=4.0)
    shift = (9.592, -4.7952, 14.3856)  # exactly (2, -1, 3) SPECT voxels
    truth = phantoms.write_lu177_spect_study(
        tmp_path / "s",
        (24.0, 72.0),
        phantom=torso,
        shifts_mm=[(0, 0, 0), shift],
        noise=False,
        ct_noise_hu=0.0,
    )
    tp0, tp1 = truth.time_points
    assert tp0.frame_of_reference_uid != tp1.frame_of_reference_uid
    m0 = tp0.masks["kidney_right"].array
    m1 = tp1.masks["kidney_right"].array
    c0 = np.argwhere(m0).mean(axis=0)
    c1 = np.argwhere(m1).mean(axis=0)
    assert np.allclose(c1 - c0, (3, -1, 2), atol=0.05)
    # the CT of the second session shows the spleen (the only 50 HU tissue) moved by the shift
    ct0, ct1 = tp0.ct_expected_hu, tp1.ct_expected_hu
    s0 = ct0.index_to_world(np.argwhere(ct0.array == 50.0)).mean(axis=0)
    s1 = ct1.index_to_world(np.argwhere(ct1.array == 50.0)).mean(axis=0)
    assert np.allclose(s1 - s0, shift, atol=1.0)
    # RTSTRUCT only on the first CT, in its frame of reference
    rt = pydicom.dcmread(truth.rtstruct_path, stop_before_pixels=True)
    assert rt.FrameOfReferenceUID == tp0.frame_of_reference_uid


def test_bqml_single_frame_files(tmp_path) -> None:
    torso = phantoms.make_torso(voxel_mm=4.0)
    truth = phantoms.write_lu177_spect_study(
        tmp_path / "s", (24.0,), phantom=torso, units="BQML", multiframe=False
    )
    tp = truth.time_points[0]
    assert len(tp.nm_paths) == tp.activity.shape[0]
    vml = tp.activity.voxel_volume_ml
    for k, p in enumerate(tp.nm_paths[::7]):
        ds = pydicom.dcmread(p)
        assert ds.Units == "BQML" and int(ds.NumberOfFrames) == 1
        rwv = ds.RealWorldValueMappingSequence[0]
        assert rwv.MeasurementUnitsCodeSequence[0].CodeValue == "Bq/ml"
        assert float(rwv.RealWorldValueSlope) == float(ds.RescaleSlope)
        z = float(ds.DetectorInformationSequence[0].ImagePositionPatient[2])
        kk = int(round(tp.activity.world_to_index(np.array([0.0, 0.0, z]))[0]))
        assert kk == 7 * k
        bqml = ds.pixel_array * float(ds.RescaleSlope)
        assert np.allclose(bqml * vml, tp.expected_activity.array[kk], rtol=1e-12)


def test_seed_determinism_and_bad_arguments(tmp_path) -> None:
    torso = phantoms.make_torso(voxel_mm=4.0)

    def digest(folder: Path) -> dict[str, str]:
        return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()}

    a = phantoms.write_lu177_spect_study(tmp_path / "a", (24.0,), phantom=torso, seed=2)
    b = phantoms.write_lu177_spect_study(tmp_path / "b", (24.0,), phantom=torso, seed=2)
    assert digest(a.folder) == digest(b.folder)
    for kwargs, match in (
        ({"times_h": (48.0, 24.0)}, "increasing"),
        ({"units": "cps"}, "units"),
        ({"agent": "Lu-177-DOTATATE"}, "agent"),
        ({"shifts_mm": [(0.0, 0.0, 0.0)] * 3}, "shifts_mm"),
        ({"calibration_cps_per_mbq": 0.0}, "calibration"),
        ({"n_projections": 3}, "n_projections"),
        (
            {"kinetics": {"liver": phantoms.TimeActivityCurve((0.1,), (200 * 86400.0,))}},
            "physical half-life",
        ),
    ):
        with pytest.raises(ValueError, match=match):
            phantoms.write_lu177_spect_study(tmp_path / "e", phantom=torso, **kwargs)
