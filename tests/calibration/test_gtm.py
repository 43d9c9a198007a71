"""Geometric transfer matrix: exactness on its own model, and the Lu-177 SPECT phantom."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

import dosimetry as ds
from dosimetry.calibration import FWHM_TO_SIGMA
from dosimetry.errors import GeometryMismatchError, InputDataError
from dosimetry.kinetics import fit_tac
from dosimetry.pvc import REST, gtm_correct
from phantoms import write_lu177_spect_study


def _synthetic():
    """Background box with an 'organ' holding a 'lesion' (nested VOIs), blurred 10 mm."""
    shape, sp = (40, 48, 48), 2.5
    body = np.zeros(shape, bool)
    body[5:35, 6:42, 6:42] = True
    organ = np.zeros(shape, bool)
    organ[12:28, 14:30, 12:26] = True
    lesion = np.zeros(shape, bool)
    lesion[17:21, 19:23, 17:21] = True
    truth = np.where(body, 2.0, 0.0)
    truth = np.where(organ, 10.0, truth)
    truth = np.where(lesion, 50.0, truth)
    blurred = ndimage.gaussian_filter(truth, 10.0 * FWHM_TO_SIGMA / sp, mode="constant")
    img = ds.Volume.from_spacing(blurred, (sp, sp, sp), unit="Bq/mL")
    masks = {
        n: img.with_array(m, unit="1")
        for n, m in (("body", body), ("organ", organ), ("lesion", lesion))
    }
    return img, masks, truth


def test_gtm_is_exact_on_its_own_model():
    img, masks, truth = _synthetic()
    res = gtm_correct(img, masks, 10.0)
    assert res.names == ("body", "organ", "lesion", REST)
    # disjoint regions: the organ without the lesion, the body without both
    assert res.corrected_bq_per_ml["lesion"] == pytest.approx(50.0, rel=1e-6)
    assert res.corrected_bq_per_ml["organ"] == pytest.approx(10.0, rel=1e-6)
    assert res.corrected_bq_per_ml["body"] == pytest.approx(2.0, rel=1e-6)
    assert abs(res.corrected_bq_per_ml[REST]) < 1e-6
    v = img.voxel_volume_ml
    for name, m in masks.items():  # inclusive VOI activity: sum of the truth over the mask
        true_act = float((truth * m.array).sum()) * v
        assert res.corrected_activity_bq[name] == pytest.approx(true_act, rel=1e-6)
        assert res.observed_activity_bq[name] == pytest.approx(
            float((img.array * m.array).sum()) * v, rel=1e-12
        )
    assert res.recovery()["lesion"] < 0.5  # a 10 mm cube under a 10 mm FWHM
    # rows of regions far from the grid's edge: a uniform unit concentration everywhere is
    # seen as 1 (nothing is blurred out of the grid there)
    np.testing.assert_allclose(res.matrix[1:3].sum(axis=1), 1.0, atol=1e-9)
    assert res.matrix[3].sum() < 0.9  # the rest reaches the edge: blurred out of the grid


def test_gtm_input_errors():
    img, masks, _ = _synthetic()
    with pytest.raises(InputDataError, match="no voxels of its own"):
        gtm_correct(img, {**masks, "organ_copy": masks["organ"]}, 10.0)
    with pytest.raises(InputDataError, match="empty"):
        gtm_correct(img, {"none": img.with_array(np.zeros(img.shape), unit="1")}, 10.0)
    with pytest.raises(InputDataError, match="fwhm_mm"):
        gtm_correct(img, masks, (10.0, 10.0))
    other = ds.Volume.from_spacing(np.ones(img.shape), (2.0, 2.0, 2.0), unit="1")
    with pytest.raises(GeometryMismatchError):
        gtm_correct(img, {"x": other}, 10.0)


TIMES_H = (24.0, 96.0, 168.0)
ORGANS = ("kidney_left", "kidney_right", "liver", "spleen")
LESIONS = ("lesion_1", "lesion_2")


@pytest.fixture(scope="module")
def spect_study(tmp_path_factory):
    """The torso phantom's Lu-177 SPECT (11 mm FWHM, Poisson noise) at three time points,
    read back from DICOM. No couch shifts: the first session's masks fit every session."""
    folder = tmp_path_factory.mktemp("lu177")
    truth = write_lu177_spect_study(folder, TIMES_H, seed=11)
    study = ds.load_study(folder)
    act = [
        study.spect(i).activity_at_acquisition(
            calibration_cps_per_mbq=truth.calibration_cps_per_mbq
        )
        for i in range(len(TIMES_H))
    ]
    masks = {mode: study.masks(act[0], mode=mode) for mode in ("binary", "fraction")}
    return truth, act, masks


def _gtm_series(act, masks, fwhm_mm):
    out = []
    for a in act:
        # same anatomy and grid in every session; only the frame-of-reference UID differs
        m = {
            n: v.with_array(v.array, frame_of_reference_uid=a.frame_of_reference_uid)
            for n, v in masks.items()
        }
        out.append(gtm_correct(a, m, fwhm_mm))
    return out


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["binary", "fraction"])
def test_gtm_recovers_organ_and_lesion_activity_on_the_spect_phantom(spect_study, mode):
    truth, act, masks = spect_study
    results = _gtm_series(act, masks[mode], truth.fwhm_mm)
    # binary masks misstate small lesions' volumes by up to ~10 % on 4.8 mm voxels, and the
    # corrected activity is concentration x mask volume; occupancy fractions do not
    lesions = LESIONS if mode == "binary" else (*LESIONS, "lesion_3", "lesion_4")
    lesion_tol = 0.15 if mode == "binary" else 0.10
    for res, tp in zip(results, truth.time_points, strict=True):
        for name in ORGANS:
            ratio = res.corrected_activity_bq[name] / tp.organ_activity_bq[name]
            assert ratio == pytest.approx(1.0, abs=0.05), (name, tp.time_h)  # issue 16: ~5 %
        for name in lesions:
            ratio = res.corrected_activity_bq[name] / tp.organ_activity_bq[name]
            assert ratio == pytest.approx(1.0, abs=lesion_tol), (name, tp.time_h)  # issue: ~10 %
        # without the correction the kidneys lose about a fifth (11 mm FWHM)
        assert res.observed_activity_bq["kidney_left"] < 0.9 * tp.organ_activity_bq["kidney_left"]


@pytest.mark.slow
def test_gtm_corrected_tia_matches_the_true_curve(spect_study):
    """TIA from GTM-corrected VOI activities vs the TIA of the true VOI activities at the
    same times with the same model (so that only the partial-volume error remains)."""
    truth, act, masks = spect_study
    results = _gtm_series(act, masks["fraction"], truth.fwhm_mm)
    for name in (*ORGANS, *LESIONS):
        true_tac = [tp.organ_activity_bq[name] for tp in truth.time_points]
        ref = fit_tac(TIMES_H, true_tac, "h", "Bq", model="mono").tia_bq_s
        corr = [r.corrected_activity_bq[name] for r in results]
        obs = [r.observed_activity_bq[name] for r in results]
        tia = fit_tac(TIMES_H, corr, "h", "Bq", model="mono").tia_bq_s
        tol = 0.05 if name in ORGANS else 0.10
        assert tia / ref == pytest.approx(1.0, abs=tol), name
        if name in ("kidney_left", "lesion_1", "lesion_2"):
            assert fit_tac(TIMES_H, obs, "h", "Bq", model="mono").tia_bq_s / ref < 0.9


def test_gtm_table_rows():
    img, masks, truth = _synthetic()
    res = gtm_correct(img, masks, 10.0)
    rows = {r["name"]: r for r in res.table()}
    assert set(rows) == set(masks)
    v_organ = float(masks["organ"].array.sum()) * img.voxel_volume_ml
    assert rows["organ"]["volume_ml"] == pytest.approx(v_organ, rel=1e-12)
    # mean over the inclusive organ VOI (lesion included) from the corrected activities
    true_mean = float(truth[masks["organ"].array].mean())
    assert res.corrected_activity_bq["organ"] / res.voi_volume_ml["organ"] == pytest.approx(
        true_mean, rel=1e-6
    )
    assert rows["lesion"]["recovery"] == pytest.approx(
        res.observed_activity_bq["lesion"] / res.corrected_activity_bq["lesion"], rel=1e-12
    )
