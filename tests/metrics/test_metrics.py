"""Dose statistics, DVH and radiobiology: analytic cases, invariants and bad input."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate

from dosimetry import Volume, parameters
from dosimetry.errors import GeometryMismatchError, InputDataError, UnitError
from dosimetry.metrics import bed, dose_statistics, dvh, eqd2, geud


def _vol(array, unit="Gy", spacing=(2.0, 2.0, 2.0)) -> Volume:
    return Volume.from_spacing(np.asarray(array, dtype=float), spacing, unit=unit)


def _ramp(n=40) -> Volume:
    """Dose rising linearly along the columns: D(i) = 0.25 Gy x (i + 0.5), uniform in each slab."""
    d = np.broadcast_to(0.25 * (np.arange(n) + 0.5), (4, 5, n)).copy()
    return _vol(d)


# ------------------------------------------------------------------------ statistics
def test_uniform_ramp_statistics_analytic():
    dose = _ramp()
    mask = dose.with_array(np.ones(dose.shape, bool), unit="1")
    row = dose_statistics(dose, {"box": mask}, v_gy=(5.0,))[0]
    n = 40
    assert row["volume_ml"] == pytest.approx(4 * 5 * n * 0.008)
    assert row["mass_g"] == pytest.approx(
        row["volume_ml"] * parameters.get("density_soft_tissue_g_per_ml")
    )
    assert row["mean_gy"] == pytest.approx(0.25 * n / 2)  # mean of 0.125 ... 9.875
    assert row["min_gy"] == pytest.approx(0.125) and row["max_gy"] == pytest.approx(9.875)
    # D2: the hottest 2 % are the 0.8 hottest columns -> the hottest column's dose
    assert row["d2_gy"] == pytest.approx(9.875)
    assert row["d50_gy"] == pytest.approx(0.25 * 20 + 0.125)  # 20 columns >= 5.125 Gy
    assert row["d98_gy"] == pytest.approx(0.125)
    assert row["v5gy"] == pytest.approx(20 / 40)


def test_partial_volume_weights_equal_refined_grid():
    """Half-occupied coarse voxels == binary mask on a 2x finer grid with the same dose."""
    rng = np.random.default_rng(3)
    coarse = rng.uniform(1.0, 10.0, size=(3, 4, 5))
    occ = rng.integers(0, 9, size=coarse.shape) / 8.0  # occupancy in eighths
    fine_dose = coarse.repeat(2, 0).repeat(2, 1).repeat(2, 2)
    fine_mask = np.zeros(fine_dose.shape, bool)
    for k, j, i in np.ndindex(coarse.shape):
        flat = np.zeros(8, bool)
        flat[: int(round(occ[k, j, i] * 8))] = True
        fine_mask[2 * k : 2 * k + 2, 2 * j : 2 * j + 2, 2 * i : 2 * i + 2] = flat.reshape(2, 2, 2)
    dc, df = _vol(coarse, spacing=(2, 2, 2)), _vol(fine_dose, spacing=(1, 1, 1))
    rc = dose_statistics(dc, {"r": dc.with_array(occ, unit="1")}, v_gy=(4.0, 7.0))[0]
    rf = dose_statistics(df, {"r": df.with_array(fine_mask, unit="1")}, v_gy=(4.0, 7.0))[0]
    for key in (
        "volume_ml",
        "mass_g",
        "mean_gy",
        "min_gy",
        "max_gy",
        "d2_gy",
        "d50_gy",
        "d98_gy",
        "v4gy",
        "v7gy",
    ):
        assert rc[key] == pytest.approx(rf[key], rel=1e-12), key
    hc = dvh(dc, dc.with_array(occ, unit="1"), bin_width_gy=0.5)
    hf = dvh(df, df.with_array(fine_mask, unit="1"), bin_width_gy=0.5)
    np.testing.assert_allclose(hc.cumulative_ml, hf.cumulative_ml, rtol=1e-12)


def test_mass_weighted_mean_with_density():
    """Mean absorbed dose = energy / mass: two voxels, 1 and 3 g/mL, 2 and 6 Gy."""
    dose = _vol([[[2.0, 6.0]]], spacing=(10.0, 10.0, 10.0))
    rho = dose.with_array(np.array([[[1.0, 3.0]]]), unit="g/mL")
    mask = dose.with_array(np.ones((1, 1, 2), bool), unit="1")
    row = dose_statistics(dose, {"m": mask}, density=rho)[0]
    energy_j = (2.0 * 1.0 + 6.0 * 3.0) * 1e-3  # Gy x kg (1 mL = 1 g at rho 1)
    assert row["mass_g"] == pytest.approx(4.0)
    assert row["mean_gy"] == pytest.approx(energy_j / 4e-3)
    assert row["density"] == "density map"


# ------------------------------------------------------------------------ DVH
def test_dvh_invariants_and_accessors():
    rng = np.random.default_rng(11)
    dose = _vol(rng.gamma(2.0, 3.0, size=(6, 7, 8)))
    mask = dose.with_array(rng.uniform(0, 1, size=dose.shape), unit="1")
    h = dvh(dose, mask, name="x")
    c = h.cumulative_ml
    assert np.all(np.diff(c) <= 0)  # monotone
    assert c[0] == pytest.approx(h.total_volume_ml) and c[-1] == 0.0
    assert h.differential_ml.sum() == pytest.approx(h.total_volume_ml)
    assert h.bin_edges_gy[-1] > h.max_gy
    # the bin width is stated and round
    assert h.bin_width_gy in (0.01, 0.02, 0.05)
    # D_x from the histogram agrees with the exact voxel value within a bin
    row = dose_statistics(dose, {"x": mask})[0]
    for x, key in ((2, "d2_gy"), (50, "d50_gy"), (98, "d98_gy")):
        assert abs(h.d_gy(x) - row[key]) <= h.bin_width_gy
    assert h.v_fraction(5.0) == pytest.approx(row["v5gy"], abs=0.02)
    # V at a bin edge is exact
    e = h.bin_edges_gy[100]
    w = mask.array
    exact = (w * (dose.array >= e)).sum() * dose.voxel_volume_ml
    assert h.v_ml(e) == pytest.approx(exact, rel=1e-9)
    assert h.d_gy(0) == h.max_gy
    assert h.mean_gy == pytest.approx((w * dose.array).sum() / w.sum())


def test_dvh_uniform_ramp_against_analytic_curve():
    """D uniform in [0, 10] Gy: V(>= d) = 1 - d / 10 and D_x = 10 (1 - x/100)."""
    n = 1000
    d = np.broadcast_to(10.0 * (np.arange(n) + 0.5) / n, (1, 1, n)).copy()
    dose = _vol(d)
    h = dvh(dose, dose.with_array(np.ones(dose.shape), unit="1"), bin_width_gy=0.1)
    for x in (2.0, 25.0, 50.0, 98.0):
        assert h.d_gy(x) == pytest.approx(10.0 * (1 - x / 100), abs=0.011)
    for dd in (1.0, 3.3, 7.5):
        assert h.v_fraction(dd) == pytest.approx(1 - dd / 10, abs=1e-3)


# ------------------------------------------------------------------------ radiobiology
def test_bed_limits():
    d = np.array([1.0, 10.0, 40.0])
    ab = 2.6
    # acute delivery (T_eff << T_rep): single-fraction LQ, BED = D (1 + D / (a/b))
    np.testing.assert_allclose(bed(d, ab, 1e9, 1.0), d * (1 + d / ab), rtol=1e-8)
    # very slow delivery (T_eff >> T_rep): no quadratic term
    np.testing.assert_allclose(bed(d, ab, 1.0, 1e12), d, rtol=1e-10)


def test_bed_matches_lea_catcheside_integral():
    """Closed form vs numerical dose-protraction factor G (Lea-Catcheside) for R0 exp(-lt)."""
    t_eff, t_rep, dose_gy, ab = 60.0 * 3600, 2.8 * 3600, 20.0, 2.6
    lam, mu = np.log(2) / t_eff, np.log(2) / t_rep
    r0 = dose_gy * lam

    def inner(t):
        return integrate.quad(lambda u: r0 * np.exp(-lam * u) * np.exp(-mu * (t - u)), 0, t)[0]

    outer = integrate.quad(lambda t: r0 * np.exp(-lam * t) * inner(t), 0, 40 * t_eff, limit=200)[0]
    g = 2.0 * outer / dose_gy**2
    expected = dose_gy * (1 + dose_gy / ab * g)
    assert float(bed(dose_gy, ab, t_rep, t_eff)) == pytest.approx(expected, rel=1e-6)


def test_bed_volume_and_eqd2():
    dose = _vol(np.full((2, 2, 2), 20.0))
    t_eff = dose.with_array(np.full((2, 2, 2), 50 * 3600.0), unit="s")
    b = bed(
        dose,
        parameters.get("alpha_beta_kidney_gy"),
        parameters.get("repair_half_time_kidney_s"),
        t_eff,
    )
    assert b.unit == "Gy_BED"
    e = eqd2(b, parameters.get("alpha_beta_kidney_gy"))
    assert e.unit == "Gy_EQD2"
    # EQD2 of 2 Gy fractions is the physical dose: 10 x 2 Gy acute fractions
    bed_fx = 10 * 2.0 * (1 + 2.0 / 2.6)
    assert float(eqd2(bed_fx, 2.6)) == pytest.approx(20.0)
    with pytest.raises(UnitError):
        eqd2(dose, 2.6)
    with pytest.raises(InputDataError):
        bed(dose, 2.6, 10080.0, 0.0)


def test_geud_limits():
    rng = np.random.default_rng(5)
    dose = _vol(rng.uniform(1, 30, size=(3, 3, 3)))
    w = rng.uniform(0.1, 1, size=(3, 3, 3))
    mask = dose.with_array(w, unit="1")
    assert geud(dose, mask, 1.0) == pytest.approx((w * dose.array).sum() / w.sum())
    assert geud(dose, mask, 200.0) == pytest.approx(dose.array.max(), rel=0.02)
    assert geud(dose, mask, -200.0) == pytest.approx(dose.array.min(), rel=0.02)


# ------------------------------------------------------------------------ bad input
def test_mask_on_other_grid_refused():
    dose = _vol(np.ones((3, 3, 3)))
    other = Volume.from_spacing(np.ones((3, 3, 3), bool), (3.0, 2.0, 2.0), unit="1")
    with pytest.raises(GeometryMismatchError, match="mask 'liver'"):
        dose_statistics(dose, {"liver": other})
    shifted = Volume.from_spacing(np.ones((3, 3, 4), bool), (2.0, 2.0, 2.0), unit="1")
    with pytest.raises(GeometryMismatchError):
        dvh(dose, shifted)


def test_nan_dose_and_bad_masks_refused():
    d = np.ones((2, 2, 2))
    d[0, 0, 0] = np.nan
    dose = _vol(d)
    mask = dose.with_array(np.ones((2, 2, 2), bool), unit="1")
    with pytest.raises(InputDataError, match="NaN"):
        dose_statistics(dose, {"m": mask})
    good = _vol(np.ones((2, 2, 2)))
    with pytest.raises(InputDataError, match=r"\[0, 1\]"):
        dose_statistics(good, {"m": good.with_array(np.full((2, 2, 2), 2.0), unit="1")})
    with pytest.raises(UnitError):
        dose_statistics(good.with_array(np.ones((2, 2, 2)), unit="Bq"), {"m": mask})


def test_empty_mask_error_or_nan():
    dose = _vol(np.ones((2, 2, 2)))
    empty = dose.with_array(np.zeros((2, 2, 2), bool), unit="1")
    with pytest.raises(InputDataError, match="empty"):
        dose_statistics(dose, {"lesion": empty})
    row = dose_statistics(dose, {"lesion": empty}, on_empty="nan")[0]
    assert row["volume_ml"] == 0.0 and np.isnan(row["mean_gy"])


def test_inputs_not_modified():
    rng = np.random.default_rng(1)
    dose = _vol(rng.uniform(0, 5, size=(3, 4, 5)))
    mask = dose.with_array(rng.uniform(0, 1, size=(3, 4, 5)), unit="1")
    before = (dose.array.copy(), mask.array.copy())
    dose_statistics(dose, {"m": mask})
    dvh(dose, mask)
    np.testing.assert_array_equal(dose.array, before[0])
    np.testing.assert_array_equal(mask.array, before[1])
