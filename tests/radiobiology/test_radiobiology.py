"""BED, EQD2 and the Lea-Catcheside factor against closed forms and independent quadrature."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, optimize

from dosimetry import Volume, parameters
from dosimetry.errors import InputDataError, UnitError
from dosimetry.kinetics import EXP_MODELS
from dosimetry.metrics import bed as metrics_bed
from dosimetry.radiobiology import (
    ALPHA_BED_CONVENTION,
    DoseRateShape,
    bed,
    bed_alpha_beta_mixture,
    bed_gy,
    bed_map,
    bed_map_from_voi_kinetics,
    cumulative_bed,
    dose_for_bed,
    eqd2,
    lea_catcheside_g,
    lea_catcheside_g_numeric,
    tissue_parameters,
)

H = 3600.0
LN2 = math.log(2.0)


def _g_scipy(rate, mu: float, t_end: float) -> float:
    """G by nested scipy quadrature of Dale's double integral (independent of the module)."""

    def inner(t: float) -> float:
        return integrate.quad(lambda w: rate(w) * math.exp(-mu * (t - w)), 0.0, t, limit=200)[0]

    outer = integrate.quad(lambda t: rate(t) * inner(t), 0.0, t_end, limit=400)[0]
    dose = integrate.quad(rate, 0.0, t_end, limit=400)[0]
    return 2.0 * outer / dose**2


def _vol(a: np.ndarray, unit: str = "Gy") -> Volume:
    return Volume.from_spacing(np.asarray(a, dtype=float), (2.0, 2.0, 2.0), unit=unit)


# ----------------------------------------------------------------------------- G factor
def test_mono_exponential_g_is_dale_closed_form():
    # G = T_rep / (T_rep + T_eff) (Dale 1985; MIRD Pamphlet 20 kidney BED)
    for t_eff, t_rep in ((50 * H, 2.8 * H), (6 * H, 0.5 * H), (160 * H, 1.5 * H)):
        assert lea_catcheside_g(t_eff, t_rep) == pytest.approx(t_rep / (t_rep + t_eff), rel=1e-12)
        shape = DoseRateShape.mono_exponential(t_eff)
        assert lea_catcheside_g(shape, t_rep) == pytest.approx(t_rep / (t_rep + t_eff), rel=1e-12)


def test_g_limits_acute_and_protracted():
    assert lea_catcheside_g(1e-3, 1e6) == pytest.approx(1.0, abs=1e-8)  # acute
    assert lea_catcheside_g(1e9, 1.0) == pytest.approx(0.0, abs=1e-8)  # protracted


@pytest.mark.parametrize(
    "shape",
    [
        DoseRateShape.uptake_washout(50 * H, 1.5 * H),
        DoseRateShape.uptake_washout(30 * H, 10 * H),
        DoseRateShape.bi_exponential(0.4, 2 * H, 70 * H),
        DoseRateShape((2.0, 1.0, -3.0), (LN2 / (5 * H), LN2 / (80 * H), LN2 / (0.5 * H))),
    ],
    ids=["uptake-fast", "uptake-slow", "biexp", "biexp+uptake"],
)
def test_closed_form_g_matches_independent_quadrature(shape):
    t_rep = 2.8 * H
    mu = LN2 / t_rep
    t_end = 40 * LN2 / min(shape.rates_per_s)
    ref = _g_scipy(lambda t: float(shape(t)), mu, t_end)
    assert lea_catcheside_g(shape, t_rep) == pytest.approx(ref, rel=2e-6)  # quad tolerance
    # the module's own numeric route (recursive trapezoid) agrees too
    assert lea_catcheside_g_numeric(shape, t_rep) == pytest.approx(ref, rel=1e-5)


def test_g_when_a_rate_equals_the_repair_rate():
    """No 1/(mu - lambda) singularity in the closed form."""
    t_rep = 2.8 * H
    shape = DoseRateShape.bi_exponential(0.5, t_rep, 40 * H)
    ref = _g_scipy(lambda t: float(shape(t)), LN2 / t_rep, 40 * 40 * H)
    assert lea_catcheside_g(shape, t_rep) == pytest.approx(ref, rel=2e-6)


def test_numeric_g_on_sampled_dose_rate_and_callable():
    t_eff, t_rep = 40 * H, 2.8 * H
    t = np.linspace(0, 60 * t_eff, 300_001)
    r = np.exp(-LN2 / t_eff * t)
    g = lea_catcheside_g_numeric((t, r), t_rep)
    assert g == pytest.approx(t_rep / (t_rep + t_eff), rel=1e-5)
    g2 = lea_catcheside_g_numeric(lambda x: 3.0 * np.exp(-LN2 / t_eff * x), t_rep, t_max_s=t[-1])
    assert g2 == pytest.approx(t_rep / (t_rep + t_eff), rel=1e-5)
    with pytest.raises(InputDataError):
        lea_catcheside_g_numeric(lambda x: x, t_rep)  # t_max_s required


def test_shape_from_tac_equals_kinetics_model():
    model = EXP_MODELS["triexp-uptake"]  # two clearance phases + uptake
    phys = np.array([5e6, LN2 / (3 * H), 2e6, LN2 / (60 * H), LN2 / (0.4 * H)])
    shape = DoseRateShape.from_tac(phys[0:4:2], phys[1:4:2], phys[4])
    t = np.linspace(0, 300 * H, 50)
    np.testing.assert_allclose(shape(t), model.evaluate(phys, t), rtol=1e-12, atol=1e-6)
    assert shape.integral() == pytest.approx(model.integral(phys, 0.0, np.inf), rel=1e-12)


def test_shape_validation():
    with pytest.raises(InputDataError):
        DoseRateShape.uptake_washout(2 * H, 5 * H)  # uptake slower than clearance
    with pytest.raises(InputDataError):
        DoseRateShape((1.0, -2.0), (1e-5, 1e-3))  # negative early on
    with pytest.raises(InputDataError):
        DoseRateShape((1.0,), (0.0,))


# ----------------------------------------------------------------------------- BED
def test_bed_matches_metrics_bed_and_limits():
    ab, t_rep, t_eff = 2.6, 2.8 * H, 50 * H
    d = np.array([0.0, 5.0, 23.0])
    np.testing.assert_allclose(
        bed(d, t_eff, alpha_beta_gy=ab, repair_half_time_s=t_rep),
        metrics_bed(d, ab, t_rep, t_eff),
        rtol=1e-14,
    )
    # hand calculation: 23 Gy to kidney, T_eff 50 h: G = 2.8/52.8
    assert float(bed(23.0, t_eff, tissue="kidneys")) == pytest.approx(
        23.0 * (1 + 23.0 / 2.6 * 2.8 / 52.8), rel=1e-12
    )


def test_bed_with_uptake_shape_uses_its_g():
    shape = DoseRateShape.uptake_washout(60 * H, 2 * H)
    g = lea_catcheside_g(shape, 2.8 * H)
    assert float(bed(10.0, shape, tissue="kidney")) == pytest.approx(10 * (1 + g * 10 / 2.6))


def test_tissue_table_and_unsourced_tissue_errors():
    p = tissue_parameters("Kidneys")
    assert p.alpha_beta_gy == parameters.get("alpha_beta_kidney_gy")
    assert p.repair_half_time_s == parameters.get("repair_half_time_kidney_s")
    assert "Wessels" in p.alpha_beta_source
    assert tissue_parameters("tumor").repair_half_time_s is None
    with pytest.raises(InputDataError, match="not sourced"):
        bed(5.0, 40 * H, tissue="red_marrow")
    with pytest.raises(InputDataError, match="not in the radiobiology table"):
        tissue_parameters("brain")
    # explicit values make any tissue usable
    assert (
        float(bed(5.0, 40 * H, tissue="red_marrow", alpha_beta_gy=10.0, repair_half_time_s=H)) > 5.0
    )
    with parameters.override(alpha_beta_kidney_gy=3.0):
        assert tissue_parameters("kidneys").alpha_beta_gy == 3.0


def test_eqd2_of_2gy_fractions_is_the_dose():
    ab = 2.6
    bed_fx = 25 * 2.0 * (1 + 2.0 / ab)
    assert float(eqd2(bed_fx, ab)) == pytest.approx(50.0, rel=1e-14)


def test_cumulative_bed_sums_cycles():
    ab = 2.6
    doses = [4.0, 5.5, 3.2]
    gs = [0.05, 0.06, 0.045]
    expected = sum(d + g * d * d / ab for d, g in zip(doses, gs, strict=True))
    assert cumulative_bed(doses, gs, ab) == pytest.approx(expected, rel=1e-14)
    # summing BEDs is not the BED of the summed dose (quadratic term)
    assert cumulative_bed(doses, 0.05, ab) < float(bed_gy(sum(doses), ab, 0.05))


@pytest.mark.parametrize(
    ("target", "g", "n", "prior"),
    [(40.0, 0.053, 1, 0.0), (28.0, 0.2, 4, 0.0), (40.0, 0.05, 2, 15.0), (10.0, 1.0, 1, 0.0)],
)
def test_dose_for_bed_closed_form_vs_bisection(target, g, n, prior):
    ab = 2.6
    d = dose_for_bed(target, ab, g, n_cycles=n, prior_bed_gy=prior)

    def total(x: float) -> float:
        return prior + n * (x + g * x * x / ab) - target

    ref = optimize.brentq(total, 0.0, target, xtol=1e-14, rtol=1e-14)
    assert d == pytest.approx(ref, rel=1e-12)
    assert prior + cumulative_bed([d] * n, g, ab) == pytest.approx(target, rel=1e-12)


def test_dose_for_bed_zero_g_and_exhausted_budget():
    assert dose_for_bed(30.0, 2.6, 0.0) == pytest.approx(30.0)
    assert dose_for_bed(30.0, 2.6, 0.1, prior_bed_gy=31.0) == 0.0


def test_activity_scale_for_target_bed_mono_exponential():
    """Max activity for a BED limit: dose per activity k, T_eff fixed -> solve the quadratic."""
    ab, t_rep, t_eff = 2.6, 2.8 * H, 45 * H
    k_gy_per_gbq = 0.6
    a_gbq = dose_for_bed(40.0, ab, t_rep / (t_rep + t_eff)) / k_gy_per_gbq
    # independent: BED(A) = kA (1 + kA T_rep / ((T_rep + T_eff) ab))
    assert float(bed(k_gy_per_gbq * a_gbq, t_eff, alpha_beta_gy=ab, repair_half_time_s=t_rep)) == (
        pytest.approx(40.0, rel=1e-12)
    )


def test_alpha_beta_mixture_convention():
    d_a, d_b, ab, g = 0.4, 3.0, 2.6, 0.07
    expected = 5.0 * d_a + d_b * (1 + g * d_b / ab)
    assert float(bed_alpha_beta_mixture(d_a, d_b, ab, g, rbe_alpha=5.0)) == pytest.approx(expected)
    with parameters.override(rbe_alpha=3.0):
        assert float(bed_alpha_beta_mixture(1.0, 0.0, ab, g)) == pytest.approx(3.0)
    assert "extrapolation" in ALPHA_BED_CONVENTION


# ----------------------------------------------------------------------------- maps
def test_bed_map_per_voxel_half_life():
    dose = _vol(np.array([[[10.0, 20.0]]]))
    t_eff = dose.with_array(np.array([[[30 * H, 90 * H]]]), unit="s")
    out = bed_map(dose, t_eff, tissue="kidneys")
    assert out.unit == "Gy_BED"
    t_rep = 2.8 * H
    expected = [d * (1 + d / 2.6 * t_rep / (t_rep + t)) for d, t in ((10, 30 * H), (20, 90 * H))]
    np.testing.assert_allclose(out.array[0, 0], expected, rtol=1e-12)
    assert out.provenance["bed"]["alpha_beta_gy"] == 2.6
    with pytest.raises(UnitError):
        bed_map(dose, dose, tissue="kidneys")


def test_bed_map_from_voi_kinetics():
    dose = _vol(np.array([[[10.0, 20.0, 4.0]]]))
    kid = dose.with_array(np.array([[[1.0, 0.0, 0.0]]]), unit="1")
    tum = dose.with_array(np.array([[[0.0, 1.0, 0.0]]]), unit="1")
    shape = DoseRateShape.uptake_washout(60 * H, 3 * H)
    out = bed_map_from_voi_kinetics(
        dose,
        {"kidney_left": kid, "lesion_1": tum},
        {"kidney_left": 40 * H, "lesion_1": shape},
        tissues={"kidney_left": "kidneys", "lesion_1": "tumour"},
        repair_half_time_s={"lesion_1": 1.5 * H},
    )
    g_k = 2.8 / 42.8
    g_t = lea_catcheside_g(shape, 1.5 * H)
    np.testing.assert_allclose(
        out.array[0, 0], [10 * (1 + g_k * 10 / 2.6), 20 * (1 + g_t * 20 / 10.0), 4.0], rtol=1e-12
    )
    assert set(out.provenance["bed"]["per_voi"]) == {"kidney_left", "lesion_1"}
    with pytest.raises(InputDataError, match="lesion_1"):
        bed_map_from_voi_kinetics(
            dose, {"lesion_1": tum}, {"lesion_1": shape}, tissues={"lesion_1": "tumour"}
        )  # tumour repair half-time not sourced
