"""Recovery coefficients: the analytic sphere model against a numerical convolution, and the
sphere phantom written as DICOM."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

import dosimetry as ds
from dosimetry.calibration import (
    FWHM_TO_SIGMA,
    RecoveryCurve,
    apply_recovery,
    blurred_sphere_profile,
    recovery_from_spheres,
    sphere_mask,
    sphere_recovery,
)
from phantoms import write_sphere_phantom


def _fine_sphere(diameter_mm: float, fwhm_mm: float, h: float = 0.8):
    """Oracle: a sphere on a 0.8 mm grid blurred numerically by scipy.ndimage."""
    n = int((diameter_mm + 4 * fwhm_mm) / h) | 1
    c = (n - 1) / 2
    z, y, x = np.ogrid[:n, :n, :n]
    r = np.sqrt((x - c) ** 2 + (y - c) ** 2 + (z - c) ** 2) * h
    sph = (r <= diameter_mm / 2).astype(float)
    blurred = ndimage.gaussian_filter(sph, fwhm_mm * FWHM_TO_SIGMA / h, truncate=4.0)
    return sph, blurred, int(c), h


@pytest.mark.parametrize("diameter_mm", [10.0, 37.0])
def test_sphere_recovery_against_numerical_convolution(diameter_mm):
    sph, blurred, c, h = _fine_sphere(diameter_mm, 11.0)
    numeric = float((blurred * sph).sum() / sph.sum())
    # 0.8 mm voxels: the voxelised sphere's volume differs by ~1 %
    assert float(sphere_recovery(diameter_mm, 11.0)) == pytest.approx(numeric, rel=0.015)
    r = np.array([0.0, 4.0, 8.0, 12.0, 16.0])  # multiples of 0.8 mm
    prof = blurred_sphere_profile(r, diameter_mm, 11.0)
    np.testing.assert_allclose(prof, blurred[c, c, c + (r / h).astype(int)], atol=0.005)


def test_sphere_recovery_limits():
    assert float(sphere_recovery(1000.0, 11.0)) == pytest.approx(1.0, abs=0.02)
    assert float(sphere_recovery(1.0, 11.0)) < 0.01
    d = np.array([10.0, 13.0, 17.0, 22.0, 28.0, 37.0])
    assert np.all(np.diff(sphere_recovery(d, 11.0)) > 0)


def test_sphere_mask_volume():
    ref = ds.Volume.from_spacing(np.zeros((24, 24, 24)), (4.0, 4.0, 4.0))
    m = sphere_mask(ref, (46.0, 46.0, 46.0), 37.0)
    vol = float(m.array.sum()) * ref.voxel_volume_ml
    assert vol == pytest.approx(np.pi * 37.0**3 / 6 / 1000, rel=0.01)  # 5^3 sub-voxels


@pytest.fixture(scope="module")
def spheres(tmp_path_factory):
    folder = tmp_path_factory.mktemp("spheres")
    truth = write_sphere_phantom(folder, seed=5)
    spect = ds.load_study(folder).spect()
    act = spect.activity_at_acquisition(calibration_cps_per_mbq=truth.cps_per_mbq)
    masks = {
        n: sphere_mask(act, c, d)
        for n, c, d in zip(
            truth.sphere_names, truth.sphere_centers_mm, truth.sphere_diameters_mm, strict=True
        )
    }
    return truth, act, masks


def test_recovery_curve_from_the_dicom_sphere_phantom(spheres, tmp_path):
    truth, act, masks = spheres
    cs, cb = truth.sphere_concentration_bq_per_ml, truth.background_concentration_bq_per_ml
    curve = recovery_from_spheres(
        act,
        masks,
        cs,
        sphere_volumes_ml=dict(zip(truth.sphere_names, truth.sphere_volumes_ml, strict=True)),
        background_bq_per_ml=cb,
        nuclide="Lu-177",
        source_geometry="6 spheres, 8:1",
    )
    # the phantom's noise-free expectation (its own blur of its own truth)
    expected = np.array(
        [(truth.expected_mean_bq_per_ml[n] - cb) / (cs - cb) for n in truth.sphere_names]
    )
    measured = np.array(curve.rc)
    # Poisson noise: the smallest sphere holds ~5 voxels of ~1000 counts: SD ~0.02
    np.testing.assert_allclose(measured, expected, atol=0.03)
    np.testing.assert_allclose(curve(np.array(truth.sphere_volumes_ml)), expected, atol=0.03)
    # effective resolution: 11 mm PSF plus the 4.8 mm voxels (box variance sp^2/12 per
    # stage, image and VOI): ~12 mm
    assert 11.0 < curve.parameters["fwhm_mm"] < 13.0
    assert curve.parameters["rc_max"] == pytest.approx(1.0, abs=0.05)
    assert curve.definition.startswith("(mean - background)")
    back = RecoveryCurve.load(curve.save(tmp_path / "rc.json"))
    assert float(back(5.0)) == pytest.approx(float(curve(5.0)), rel=1e-12)
    # correcting the 17 mm sphere's VOI activity restores the true activity (within noise)
    name = "sphere_17mm"
    vol = truth.sphere_volumes_ml[truth.sphere_names.index(name)]
    meas = float((act.array * masks[name].array).sum()) * act.voxel_volume_ml
    corr = apply_recovery(meas, vol, curve, background_bq_per_ml=cb)
    assert corr.corrected_activity_bq == pytest.approx(cs * vol, rel=0.08)


def test_recovery_without_background_and_table_model(spheres):
    truth, act, masks = spheres
    cs = truth.sphere_concentration_bq_per_ml
    table = recovery_from_spheres(act, masks, cs, model="table")
    plain = np.array([truth.expected_mean_bq_per_ml[n] / cs for n in truth.sphere_names])
    np.testing.assert_allclose(np.array(table.rc), plain, atol=0.03)
    assert table.definition == "mean / true" and table.parameters == {}
