"""Head-and-neck organs, red marrow and the cited tracer uptake of the PET/CT phantom."""

from __future__ import annotations

import math

import numpy as np
import pydicom
import pytest
from scipy import ndimage

import phantoms
from dosimetry.io import load_study

GA68_HALF_LIFE_S = 67.71 * 60.0  # ICRP Publication 107
F18_HALF_LIFE_S = 109.77 * 60.0  # ICRP Publication 107
BASES = {"SUVmean", "median SUVmean", "SUVmax", "assumption"}


@pytest.fixture(scope="module")
def torso() -> phantoms.TorsoPhantom:
    return phantoms.make_torso(voxel_mm=4.0)


@pytest.fixture(scope="module")
def dotatate(tmp_path_factory, torso):
    """A Ga-68-DOTATATE study of the 4 mm phantom, noise-free, and its reading."""
    folder = tmp_path_factory.mktemp("dotatate") / "study"
    truth = phantoms.write_pet_ct_study(
        folder, torso, tracer="Ga-68-DOTATATE", noise=False, pet_matrix=(96, 96)
    )
    return truth, load_study(folder)


def test_every_region_of_every_tracer_has_a_cited_or_declared_uptake(torso) -> None:
    regions = torso.region_names[1:]
    organs = [n for n in regions if n not in torso.lesion_names]
    for name, tr in phantoms.TRACERS.items():
        assert set(organs) <= set(tr.uptake), name
        assert len(tr.lesion_uptake) >= len(torso.lesion_names), name
        for region, u in [*tr.uptake.items(), *enumerate(tr.lesion_uptake)]:
            assert u.basis in BASES, (name, region)
            assert math.isfinite(u.suv) and u.suv >= 0, (name, region)
            assert u.source.strip(), (name, region)
            if u.basis == "assumption":
                assert u.source.startswith("not sourced"), (name, region)
        assert tr.activity_source.strip(), name
    # the organs that limit therapy carry a published value for the PSMA tracers
    cited = {
        "Ga-68-PSMA-11": ("kidney_left", "liver", "spleen", "parotid_left", "lacrimal_left"),
        "F-18-PSMA-1007": ("kidney_left", "liver", "spleen", "parotid_left"),
        "F-18-DCFPyL": ("kidney_left", "liver", "spleen", "submandibular_left"),
        "Ga-68-DOTATATE": ("kidney_left", "liver", "spleen"),
    }
    for name, regs in cited.items():
        for r in regs:
            assert phantoms.TRACERS[name].uptake[r].basis != "assumption", (name, r)


def test_published_uptake_values(torso) -> None:
    """The numbers quoted by the sources (tests pin them against accidental edits)."""
    tr = phantoms.TRACERS
    assert tr["Ga-68-PSMA-11"].suv["kidney_left"] == 41.7  # Muchnik Kurash 2020, SUVmean
    assert tr["Ga-68-PSMA-11"].suv["parotid_right"] == 14.5
    assert tr["Ga-68-PSMA-11"].suv["submandibular_right"] == 13.02
    assert tr["Ga-68-PSMA-11"].suv["liver"] == 5.4  # EJNMMI Res 2024, 50 patients
    assert tr["F-18-PSMA-1007"].suv["liver"] == 11.8  # Trägårdh 2025, median SUVmean
    assert tr["F-18-DCFPyL"].suv["lacrimal_right"] == 6.6  # J Nucl Med 2017;58:942
    assert tr["Ga-68-DOTATATE"].suv["spleen"] == 24.67  # Ann Nucl Med 2013, SUVmax
    # PSMA-1007 liver uptake is about twice PSMA-11's (11.7 vs 5.4 SUVmean in the paired
    # cohort); the phantom keeps that order
    assert tr["F-18-PSMA-1007"].suv["liver"] > 2 * tr["Ga-68-PSMA-11"].suv["liver"]


def test_dotatate_study_is_readable_and_coded(dotatate) -> None:
    truth, study = dotatate
    assert truth.tracer == "Ga-68-DOTATATE" and truth.nuclide == "Ga-68"
    assert truth.injected_activity_bq == 185e6  # Walker et al. 2013, Table 3
    d = pydicom.dcmread(truth.pet_paths[0], stop_before_pixels=True)
    rp = d.RadiopharmaceuticalInformationSequence[0]
    assert rp.Radiopharmaceutical == "Ga-68 DOTATATE"
    code = rp.RadiopharmaceuticalCodeSequence[0]
    # PS3.16 CID 4021 "Dotatate Ga^68^" (pydicom 3 concept tables)
    assert (code.CodeValue, code.CodingSchemeDesignator) == ("724025002", "SCT")
    assert rp.RadionuclideCodeSequence[0].CodeValue == "C-131A3"  # ^68^Gallium (SRT)
    assert float(rp.RadionuclideHalfLife) == pytest.approx(GA68_HALF_LIFE_S)
    pet = study.pet()
    act = pet.activity_at_acquisition()
    np.testing.assert_allclose(act.array, truth.pet_expected_bqml.array, rtol=1e-9, atol=1e-9)
    assert pet.nuclide == "Ga-68"
    # interior voxels hold the cited SUVmax of spleen, kidneys and liver (24.7, 14.3, 9.1)
    w_g = truth.patient.weight_kg * 1000.0
    a_acq = truth.injected_activity_bq * 2.0 ** (-truth.uptake_time_s / GA68_HALF_LIFE_S)
    c = truth.activity_concentration.array
    for organ, expected in (("spleen", 24.67), ("kidney_left", 14.30), ("liver", 9.12)):
        inner = truth.masks_pet[organ].array & ~truth.masks_pet["lesion_1"].array
        inner = ndimage.binary_erosion(inner, iterations=1)
        assert inner.sum() > 10, organ
        assert np.median(c[inner]) * w_g / a_acq == pytest.approx(expected, rel=1e-6), organ


def test_rtstruct_has_the_glands_and_marrow_with_clear_names(dotatate) -> None:
    truth, study = dotatate
    rt = study.rtstruct()
    rois = {r.ROIName: r for r in rt.StructureSetROISequence}
    for name in phantoms.HEAD_NECK_ORGANS:
        assert name in rois, name
    assert rois["red_marrow"].ROIDescription == "image-based red marrow: lumbar vertebral bodies"
    # masks from the RTSTRUCT on the PET grid: the glands and marrow have their volumes
    act = study.pet().activity_at_acquisition()
    names = ["parotid_left", "submandibular_right", "red_marrow", "lacrimal_left"]
    masks = study.masks(grid=act, names=names, mode="fraction")
    vml = act.voxel_volume_ml
    for name, rel in (("parotid_left", 0.1), ("submandibular_right", 0.15), ("red_marrow", 0.1)):
        got = float(masks[name].array.sum()) * vml
        assert got == pytest.approx(truth.phantom.analytic_volume_ml(name), rel=rel), name
    # the 0.67 mL lacrimal gland is cut by a single 4 mm CT plane: present, coarse
    assert 0.2 < float(masks["lacrimal_left"].array.sum()) * vml < 1.2


def test_gland_activity_and_fraction_of_injected_activity(tmp_path, torso) -> None:
    """%IA at the PET time = SUV x V / W (independent of the writer's bookkeeping)."""
    truth = phantoms.write_pet_ct_study(tmp_path / "s", torso, noise=False)
    w_g = truth.patient.weight_kg * 1000.0
    frac = truth.organ_fraction_injected
    for organ, suv in (
        ("parotid_left", 14.5),
        ("submandibular_right", 13.02),
        ("kidney_left", 41.7),
    ):
        analytic = suv * truth.phantom.analytic_volume_ml(organ) / w_g
        # the region on the 2 mm sub-voxel grid of the 4 mm PET: within 3 % of analytic
        assert frac[organ] == pytest.approx(analytic, rel=0.03), organ
    # decay correction: fraction x injected = activity at acquisition x 2^(t/T)
    f = 2.0 ** (truth.uptake_time_s / GA68_HALF_LIFE_S)
    assert frac["liver"] * truth.injected_activity_bq == pytest.approx(
        truth.organ_activity_bq["liver"] * f, rel=1e-12
    )
    # the red marrow lies inside the vertebral column ROI and carries its own uptake
    assert truth.uptake_sources["red_marrow"].startswith("not sourced")
    assert "Muchnik" in truth.uptake_sources["kidney_left"]
    over = phantoms.write_pet_ct_study(
        tmp_path / "o", torso, noise=False, suv={"parotid_left": 20.0}, pet_matrix=(64, 64)
    )
    assert over.uptake_sources["parotid_left"] == "user override (suv=20)"


def test_dcfpyl_and_psma1007_tracers(tmp_path, torso) -> None:
    truth = phantoms.write_pet_ct_study(
        tmp_path / "s", torso, tracer="F-18-DCFPyL", noise=False, pet_matrix=(64, 64)
    )
    rp = pydicom.dcmread(truth.pet_paths[0], stop_before_pixels=True)
    item = rp.RadiopharmaceuticalInformationSequence[0]
    # PS3.16 CID 4021 "Piflufolastat F^18^" (NCIt C116352)
    assert item.RadiopharmaceuticalCodeSequence[0].CodeValue == "C116352"
    assert float(item.RadionuclideHalfLife) == pytest.approx(F18_HALF_LIFE_S)
    assert truth.injected_activity_bq == 370e6  # Szabo et al. 2015
    assert truth.suv["kidney_right"] == 20.1 and truth.suv["kidney_left"] == 19.4
    # PSMA-1007: hepatobiliary tracer, the liver holds more than with PSMA-11, the kidneys
    # less (SUV x V / W of the cited values, the same for both tracers' volumes)
    suv1007, suv11 = phantoms.TRACERS["F-18-PSMA-1007"].suv, phantoms.TRACERS["Ga-68-PSMA-11"].suv
    assert suv1007["liver"] > 2 * suv11["liver"]
    assert suv1007["kidney_left"] < suv11["kidney_left"]


def test_lesion_classes_name_the_default_lesions(torso) -> None:
    from dosimetry.kinetics import RELATION_ORGANS

    assert set(phantoms.DEFAULT_LESION_CLASSES) == set(torso.lesion_names)
    assert set(phantoms.DEFAULT_LESION_CLASSES.values()) <= set(RELATION_ORGANS)
