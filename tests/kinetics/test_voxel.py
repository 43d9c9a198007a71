"""Voxel fits: Numba kernels vs scipy.optimize.curve_fit, wrapper semantics."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy.optimize import OptimizeWarning, curve_fit

import dosimetry as ds
from dosimetry.engine._numba_fit import fit_biexp_uptake_voxels, fit_mono_voxels
from dosimetry.errors import GeometryMismatchError, InputDataError, UnitError
from dosimetry.kinetics import fit_tac, fit_voxels

LN2 = math.log(2.0)
LAM_LU = ds.nuclide("Lu-177").decay_constant_per_s


def _mono(t, a, lam):
    return a * np.exp(-lam * t)


def _upt(t, a, lam, lu):
    return a * (np.exp(-lam * t) - np.exp(-lu * t))


def _scipy_fit(func, t, y, p0):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OptimizeWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        popt, _ = curve_fit(func, t, y, p0=p0, maxfev=20000)
    return popt


def test_mono_kernel_matches_curve_fit():
    rng = np.random.default_rng(5)
    t = np.array([0.1, 0.3, 0.6, 1.0])  # scaled time units, like the wrapper
    n = 60
    a = rng.uniform(0.5, 1.5, n)
    lam = rng.uniform(0.5, 5.0, n)
    y = _mono(t[None, :], a[:, None], lam[:, None]) * (1 + 0.05 * rng.standard_normal((n, t.size)))
    p, status, _ = fit_mono_voxels(t, y, np.ones_like(y), 0.0, 200, 1e-12)
    assert np.all(status == 0)
    for v in range(n):
        ref = _scipy_fit(_mono, t, y[v], [a[v], lam[v]])
        # TIA = A / lambda
        assert p[v, 0] / p[v, 1] == pytest.approx(ref[0] / ref[1], rel=1e-6)


def test_biexp_uptake_kernel_matches_curve_fit():
    rng = np.random.default_rng(6)
    t = np.array([2.0, 24.0, 48.0, 96.0, 168.0]) / 168.0
    n = 60
    a = rng.uniform(0.5, 1.5, n)
    lam = LN2 / (rng.uniform(30.0, 90.0, n) / 168.0)
    lu = LN2 / (rng.uniform(3.0, 8.0, n) / 168.0)
    y = _upt(t[None, :], a[:, None], lam[:, None], lu[:, None])
    y = y * (1 + 0.02 * rng.standard_normal(y.shape))
    p, status, _ = fit_biexp_uptake_voxels(t, y, np.ones_like(y), 0.0, 200, 1e-12)
    compared = 0
    for v in range(n):
        if status[v] != 0:
            continue
        ref = _scipy_fit(_upt, t, y[v], [a[v], lam[v], lu[v]])
        tia_ref = ref[0] * (1 / ref[1] - 1 / ref[2])
        tia = p[v, 0] * (1 / p[v, 1] - 1 / p[v, 2])
        assert tia == pytest.approx(tia_ref, rel=1e-5)
        compared += 1
    assert compared >= 0.8 * n


def _vols(arrs, unit="Bq", spacing=(4.0, 4.0, 4.0)):
    return [ds.Volume.from_spacing(a, spacing, unit=unit) for a in arrs]


def test_fit_voxels_noise_free_mono_is_exact():
    rng = np.random.default_rng(1)
    shape = (3, 4, 5)
    a0 = rng.uniform(1e5, 1e6, shape)
    t_eff_h = rng.uniform(20.0, 120.0, shape)
    t = np.array([24.0, 48.0, 96.0, 168.0])
    vols = _vols([a0 * np.exp(-LN2 / t_eff_h * x) for x in t])
    r = fit_voxels(vols, t, "mono", nuclide="Lu-177")
    np.testing.assert_allclose(r.tia.array, a0 * t_eff_h * 3600 / LN2, rtol=1e-7)
    assert r.tia.unit == "Bq s"
    np.testing.assert_allclose(r.parameters["effective_half_life"].array, t_eff_h * 3600, rtol=1e-7)
    assert np.all(r.failure.array == 0) and r.residual.array.max() < 1e-7


def test_concentration_input_is_converted_with_voxel_volume():
    t = np.array([24.0, 48.0, 96.0])
    arrs = [np.full((2, 2, 2), 1000.0 * math.exp(-0.01 * x)) for x in t]
    spacing = (2.0, 3.0, 4.0)
    r_c = fit_voxels(_vols(arrs, "Bq/mL", spacing), t, nuclide="Lu-177")
    vml = 2 * 3 * 4 / 1000.0
    r_a = fit_voxels(_vols([a * vml for a in arrs], "Bq", spacing), t, nuclide="Lu-177")
    np.testing.assert_allclose(r_c.tia.array, r_a.tia.array, rtol=1e-10)


def test_failed_voxels_replaced_by_trapezoid_and_flagged():
    t = np.array([24.0, 48.0, 96.0, 168.0])
    arrs = [np.full((1, 1, 2), 100.0 * math.exp(-0.02 * x)) for x in t]
    arrs[0][0, 0, 1] = 50.0  # one positive point only -> no log-linear start
    for a in arrs[1:]:
        a[0, 0, 1] = 0.0
    r = fit_voxels(_vols(arrs), t, nuclide="Lu-177")
    assert r.failure.array[0, 0, 1] == 4 and bool(r.replaced.array[0, 0, 1])
    ts = t * 3600
    expect = 0.5 * ts[0] * 50.0 + 0.5 * (ts[1] - ts[0]) * 50.0
    assert r.tia.array[0, 0, 1] == pytest.approx(expect, rel=1e-12)
    assert r.failure.array[0, 0, 0] == 0
    with pytest.raises(InputDataError, match="nuclide"):
        fit_voxels(_vols(arrs), t)


def test_negative_and_nan_policy():
    t = np.array([24.0, 48.0, 96.0])
    arrs = [np.full((2, 2, 2), 100.0 * math.exp(-0.02 * x)) for x in t]
    arrs[2][0, 0, 0] = -5.0
    r = fit_voxels(_vols(arrs), t, nuclide="Lu-177")
    assert r.n_negative_clipped == 1
    with pytest.raises(InputDataError, match="negative"):
        fit_voxels(_vols(arrs), t, nuclide="Lu-177", negative="error")
    arrs[1][1, 1, 1] = np.nan
    with pytest.raises(InputDataError, match="NaN"):
        fit_voxels(_vols(arrs), t, nuclide="Lu-177")
    # NaN outside the mask is ignored
    mask = np.ones((2, 2, 2), bool)
    mask[1, 1, 1] = False
    mvol = ds.Volume.from_spacing(mask, (4.0, 4.0, 4.0), unit="1")
    r = fit_voxels(_vols(arrs), t, nuclide="Lu-177", mask=mvol)
    assert r.failure.array[1, 1, 1] == -1 and r.tia.array[1, 1, 1] == 0.0


def test_geometry_and_unit_checks():
    t = [24.0, 48.0]
    a = ds.Volume.from_spacing(np.ones((2, 2, 2)), (4.0, 4.0, 4.0), unit="Bq")
    b = ds.Volume.from_spacing(np.ones((2, 2, 2)), (4.0, 4.0, 5.0), unit="Bq")
    with pytest.raises(GeometryMismatchError):
        fit_voxels([a, b], t, nuclide="Lu-177")
    c = ds.Volume.from_spacing(np.ones((2, 2, 2)), (4.0, 4.0, 4.0), unit="Gy")
    with pytest.raises(UnitError):
        fit_voxels([c, c], t, nuclide="Lu-177")


def test_voi_scaled_preserves_voi_tia():
    rng = np.random.default_rng(2)
    t = np.array([24.0, 48.0, 96.0, 168.0])
    shape = (2, 3, 3)
    a0 = rng.uniform(1e4, 1e5, shape)
    arrs = [a0 * np.exp(-LN2 / 50.0 * x) for x in t]
    mask = ds.Volume.from_spacing(np.ones(shape, bool), (4.0, 4.0, 4.0), unit="1")
    r = fit_voxels(_vols(arrs), t, "voi-scaled", mask=mask, nuclide="Lu-177")
    voi = fit_tac(t, [x.sum() for x in arrs], "h", "Bq", nuclide="Lu-177")
    assert r.tia.array.sum() == pytest.approx(voi.tia_bq_s, rel=1e-10)
    # identical shapes: each voxel gets its exact mono-exponential TIA
    np.testing.assert_allclose(r.tia.array, a0 * 50 * 3600 / LN2, rtol=1e-7)
