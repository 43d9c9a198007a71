"""End-to-end reading of the digital phantom studies against their ground truth.

The phantom writer (package ``phantoms``) encodes a known activity distribution with the
DICOM conventions of each vendor style (Units BQML / CNTS / GML; DecayCorrection START /
ADMIN / NONE; several beds; NM counts or BQML); the reader must recover the activity
at the acquisition start.
"""

from __future__ import annotations

import importlib
import math
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from dosimetry.errors import DicomInputError
from dosimetry.io import load_study

ROOT = Path(__file__).resolve().parents[2]


def _load_phantoms() -> ModuleType | None:
    """The repository's ``phantoms`` package.

    ``tests/phantoms`` (a test folder without ``__init__.py``) can shadow it as a
    namespace package when ``tests/`` is on ``sys.path``; import from the repository root
    in that case.
    """
    mod = sys.modules.get("phantoms")
    if mod is not None and getattr(mod, "__file__", None):
        return mod
    sys.modules.pop("phantoms", None)
    sys.path.insert(0, str(ROOT))
    try:
        mod = importlib.import_module("phantoms")
    except ImportError:
        return None
    finally:
        sys.path.remove(str(ROOT))
    return mod if getattr(mod, "__file__", None) else None


phantoms = _load_phantoms()
if phantoms is None or not hasattr(phantoms, "write_pet_ct_study"):  # pragma: no cover
    pytest.skip("phantoms.write_pet_ct_study is not available", allow_module_level=True)


@pytest.fixture(scope="module")
def torso():
    return phantoms.make_torso(voxel_mm=4.0)


def _pet_study(tmp_path, torso, **kwargs):
    kwargs.setdefault("pet_matrix", (64, 64))
    truth = phantoms.write_pet_ct_study(tmp_path / "study", torso, **kwargs)
    return truth, load_study(truth.folder)


def _check_pet(truth, study):
    pet = study.pet()
    act = pet.activity_at_acquisition()
    assert act.reference_time == truth.acquisition_datetime
    assert act.same_grid(truth.pet_expected_bqml)
    # voxel by voxel: what the files encode (after rescale, units and decay handling)
    np.testing.assert_allclose(act.array, truth.pet_expected_bqml.array, rtol=1e-9, atol=1e-9)
    # total activity in the field of view vs the phantom's true activity at acquisition
    # (blur and Poisson noise change it by well under 2 %)
    in_fov = truth.total_activity_in_phantom_bq - truth.activity_outside_pet_fov_bq
    assert act.total() == pytest.approx(in_fov, rel=0.02)
    assert pet.injected_activity_bq == pytest.approx(truth.injected_activity_bq, rel=1e-6)
    assert pet.injection_time == truth.injection_datetime
    assert pet.nuclide == truth.nuclide
    assert pet.files == truth.pet_paths
    assert pet.sop_instance_uids == truth.pet_sop_instance_uids
    return pet, act


@pytest.fixture(scope="module")
def bqml_start(tmp_path_factory, torso):
    """The default study (BQML, START), written once for this module."""
    return _pet_study(tmp_path_factory.mktemp("bqml_start"), torso)


def test_pet_bqml_start(bqml_start):
    truth, study = bqml_start
    pet, act = _check_pet(truth, study)
    # CT: HU as written, on the phantom's CT grid
    ct = study.ct()
    assert ct.volume.same_grid(truth.ct_expected_hu)
    np.testing.assert_allclose(ct.volume.array, truth.ct_expected_hu.array, atol=1e-3)
    # SUVbw of the whole image: sum(C) * W / A(t_acq) (body-weight normalisation)
    a_acq = truth.injected_activity_bq * 2 ** (-truth.uptake_time_s / truth.half_life_s)
    w_g = float(truth.patient.weight_kg) * 1000.0
    np.testing.assert_allclose(pet.suv().array, act.array * w_g / a_acq, rtol=1e-9)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("units", "decay"),
    [
        ("BQML", "ADMIN"),
        ("BQML", "NONE"),
        ("CNTS", "START"),
        ("CNTS", "NONE"),
        ("GML", "START"),
        ("GML", "ADMIN"),
    ],
)
def test_pet_vendor_styles_two_beds(tmp_path, torso, units, decay):
    truth, study = _pet_study(tmp_path, torso, pet_units=units, decay_correction=decay, n_beds=2)
    _check_pet(truth, study)


@pytest.mark.slow
def test_pet_defects(tmp_path, torso):
    truth, study = _pet_study(tmp_path / "a", torso, defects=["pet_missing_slice"])
    with pytest.raises(DicomInputError, match="missing slice"):
        study.pet().activity_at_acquisition()
    truth, study = _pet_study(tmp_path / "b", torso, defects=["missing_patient_weight"])
    with pytest.raises(DicomInputError, match="patient_weight_kg"):
        study.pet().suv()
    w = float(truth.patient.weight_kg)
    assert study.pet(patient_weight_kg=w).suv().unit == "g/mL SUV"


def test_pet_masks_organ_activity(bqml_start):
    """RTSTRUCT organs on the PET grid: the liver's activity within blur/noise tolerance."""
    pytest.importorskip("dosimetry.io.masks")
    truth, study = bqml_start
    act = study.pet().activity_at_acquisition()
    masks = study.masks(grid=act, names=["liver"], mode="fraction")
    liver = float((act.array * masks["liver"].array).sum() * act.voxel_volume_ml)
    # 5.5 mm FWHM blur moves a few % across the liver surface
    assert liver == pytest.approx(truth.organ_activity_bq["liver"], rel=0.08)


@pytest.mark.skipif(
    not hasattr(phantoms, "write_lu177_spect_study"), reason="no SPECT phantom writer"
)
@pytest.mark.parametrize(
    ("units", "multiframe"), [("counts", True), pytest.param("BQML", False, marks=pytest.mark.slow)]
)
def test_spect_lu177_total_activity(tmp_path, torso, units, multiframe):
    truth = phantoms.write_lu177_spect_study(
        tmp_path / "spect",
        times_h=(24.0, 96.0),
        phantom=torso,
        units=units,
        multiframe=multiframe,
        spect_matrix=(64, 64),
        n_spect_slices=55,  # 440 mm: the 412 mm phantom (torso, neck, head) and margin
        spect_voxel_mm=8.0,
    )
    study = load_study(truth.folder)
    for i, tp in enumerate(truth.time_points):
        spect = study.spect(i)
        cal = truth.calibration_cps_per_mbq if units == "counts" else None
        act = spect.activity_at_acquisition(calibration_cps_per_mbq=cal)
        assert spect.acquisition_time == tp.acquisition_datetime
        assert spect.acquisition_duration_s == pytest.approx(tp.scan_duration_s)
        assert spect.injection_time == truth.administration_datetime
        assert spect.injected_activity_bq == pytest.approx(truth.administered_activity_bq)
        assert act.same_grid(tp.expected_activity)
        # expected_activity is the mean over the scan (Bq per voxel); the reader returns
        # the activity at the scan start: x lambda T / (1 - exp(-lambda T))
        lam_t = math.log(2) / truth.half_life_s * tp.scan_duration_s
        np.testing.assert_allclose(
            act.array * act.voxel_volume_ml,
            tp.expected_activity.array * lam_t / -math.expm1(-lam_t),
            rtol=1e-6,
            atol=1e-3 * float(tp.expected_activity.array.max()),
        )
        # total activity at acquisition vs the truth (blur spill-out and noise < 2 %)
        assert act.total() == pytest.approx(sum(tp.region_activity_bq.values()), rel=0.02)
