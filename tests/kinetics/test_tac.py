"""fit_tac: analytic TACs, model integrals vs quadrature, coverage of the uncertainty."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate

import dosimetry as ds
from dosimetry.errors import InputDataError, UnitError
from dosimetry.kinetics import EXP_MODELS, fit_tac

LN2 = math.log(2.0)
LAM_LU = ds.nuclide("Lu-177").decay_constant_per_s


@pytest.mark.parametrize("name", list(EXP_MODELS))
def test_model_integrals_match_quadrature(name):
    """Analytic integrals and their gradients vs scipy.integrate.quad / finite differences."""
    m = EXP_MODELS[name]
    rng = np.random.default_rng(3)
    phys = []
    rates = np.sort(rng.uniform(0.05, 1.0, m.n_exp)) / 3600.0
    for i in range(m.n_exp):
        phys += [rng.uniform(10, 100), rates[i]]
    if m.uptake:
        phys.append(rates[-1] * 5)
    p = np.array(phys)
    for a, b in ((0.0, 2 * 3600.0), (3600.0, 50 * 3600.0), (7200.0, math.inf)):
        f = lambda th: float(m.evaluate(p, np.array([th * 3600.0]))[0])  # noqa: E731
        ref, _ = integrate.quad(f, a / 3600.0, b / 3600.0 if np.isfinite(b) else np.inf, limit=200)
        assert m.integral(p, a, b) == pytest.approx(3600.0 * ref, rel=1e-8)
        g = m.integral_gradient(p, a, b)
        for k in range(p.size):
            h = p[k] * 1e-6
            pp, pm = p.copy(), p.copy()
            pp[k] += h
            pm[k] -= h
            fd = (m.integral(pp, a, b) - m.integral(pm, a, b)) / (2 * h)
            assert g[k] == pytest.approx(fd, rel=1e-5, abs=1e-12 * abs(fd) + 1e-30)


def test_mono_exact_tia():
    t = np.array([24.0, 48.0, 96.0, 168.0])
    a = 100.0 * np.exp(-LN2 / 40.0 * t)
    fit = fit_tac(t, a, "h", "MBq", model="mono")
    assert fit.tia_bq_s == pytest.approx(100e6 * 40 * 3600 / LN2, rel=1e-9)
    assert fit.params["lambda1_per_s"] == pytest.approx(LN2 / (40 * 3600), rel=1e-9)
    np.testing.assert_allclose(fit.predict(t * 3600), a * 1e6, rtol=1e-9)
    assert fit.r2 == pytest.approx(1.0)
    assert "mono" in fit.summary()


def test_biexp_uptake_exact_tia():
    t = np.array([1.0, 4.0, 24.0, 48.0, 96.0, 168.0])
    a0, l1, lu = 80.0, LN2 / 50.0, LN2 / 2.0
    a = a0 * (np.exp(-l1 * t) - np.exp(-lu * t))
    fit = fit_tac(t, a, model="biexp-uptake")
    assert fit.tia_bq_s == pytest.approx(a0 * 1e6 * 3600 * (1 / l1 - 1 / lu), rel=1e-7)


def test_triexp_uptake_exact_tia():
    t = np.array([0.5, 1.0, 2.0, 4.0, 24.0, 48.0, 96.0, 168.0])
    a1, a2, l1, l2, lu = 60.0, 40.0, LN2 / 60, LN2 / 6, LN2 / 0.5
    a = a1 * np.exp(-l1 * t) + a2 * np.exp(-l2 * t) - (a1 + a2) * np.exp(-lu * t)
    fit = fit_tac(t, a, model="triexp-uptake")
    true = 1e6 * 3600 * (a1 / l1 + a2 / l2 - (a1 + a2) / lu)
    assert fit.tia_bq_s == pytest.approx(true, rel=1e-6)


def test_head_and_tail_options():
    t = np.array([24.0, 48.0, 96.0, 168.0])
    lam = LN2 / 40.0 / 3600
    a = 100.0 * np.exp(-LN2 / 40.0 * t)
    ts = t * 3600
    f = lambda x: 100e6 * np.exp(-lam * x)  # noqa: E731
    body = (f(ts[0]) - f(ts[-1])) / lam
    lin = fit_tac(t, a, model="mono", head="linear")
    assert lin.tia_parts_bq_s["head"] == pytest.approx(0.5 * ts[0] * f(ts[0]), rel=1e-9)
    zero = fit_tac(t, a, model="mono", head="zero")
    assert zero.tia_bq_s == pytest.approx(body + f(ts[-1]) / lam, rel=1e-9)
    phys = fit_tac(t, a, model="mono", tail="physical", nuclide="Lu-177")
    assert phys.tia_parts_bq_s["tail"] == pytest.approx(f(ts[-1]) / LAM_LU, rel=1e-9)
    assert phys.predict(np.array([ts[-1] + 3600.0]))[0] == pytest.approx(
        f(ts[-1]) * math.exp(-LAM_LU * 3600.0), rel=1e-9
    )


def test_trapezoid_with_physical_tail():
    t = np.array([24.0, 48.0, 96.0])
    a = np.array([10.0, 8.0, 4.0])
    sig = np.array([0.5, 0.4, 0.3])
    fit = fit_tac(t, a, model="trapezoid", nuclide="Lu-177", tail="physical", uncertainties=sig)
    ts = t * 3600
    y = a * 1e6
    head = 0.5 * ts[0] * y[0]
    body = 0.5 * (ts[1] - ts[0]) * (y[0] + y[1]) + 0.5 * (ts[2] - ts[1]) * (y[1] + y[2])
    tail = y[2] / LAM_LU
    assert fit.tia_bq_s == pytest.approx(head + body + tail, rel=1e-12)
    w = np.array(
        [
            0.5 * ts[0] + 0.5 * (ts[1] - ts[0]),
            0.5 * (ts[2] - ts[0]),
            0.5 * (ts[2] - ts[1]) + 1 / LAM_LU,
        ]
    )
    assert fit.tia_uncertainty_bq_s == pytest.approx(
        np.sqrt(np.sum((w * sig * 1e6) ** 2)), rel=1e-12
    )
    assert "linear propagation" in fit.tia_uncertainty_method


def test_auto_selects_by_aicc_and_reports_rule():
    t = np.array([24.0, 48.0, 96.0, 168.0])
    a = 100.0 * np.exp(-LN2 / 40.0 * t) * np.array([1.01, 0.99, 1.02, 0.98])
    fit = fit_tac(t, a, nuclide="Lu-177")
    assert fit.model == "mono"  # the only model with n - k - 1 > 0 for 4 points
    assert "needs" in str(fit.candidates["biexp"])
    assert "AICc" in fit.selection_rule
    # richer data with a clear uptake phase: an uptake model wins
    t2 = np.array([0.5, 1.0, 2.0, 4.0, 8.0, 24.0, 48.0, 96.0, 168.0])
    a2 = 80.0 * (np.exp(-LN2 / 50.0 * t2) - np.exp(-LN2 / 1.5 * t2))
    fit2 = fit_tac(t2, a2 * (1 + 0.01 * np.cos(np.arange(t2.size))), nuclide="Lu-177")
    assert fit2.model == "biexp-uptake"


@pytest.mark.parametrize("method", ["delta", "sampling"])
def test_uncertainty_coverage_mono(method):
    """~68 % of 1-sigma intervals cover the true TIA (known absolute noise)."""
    rng = np.random.default_rng(11)
    t = np.array([4.0, 24.0, 48.0, 96.0, 168.0])
    true_a = 100.0 * np.exp(-LN2 / 40.0 * t)
    true_tia = 100e6 * 40 * 3600 / LN2
    sig = 0.05 * true_a
    n, hit = 150 if method == "delta" else 40, 0
    for _ in range(n):
        y = true_a + sig * rng.standard_normal(t.size)
        fit = fit_tac(
            t, y, model="mono", uncertainties=sig, uncertainty_method=method, n_samples=400
        )
        hit += abs(fit.tia_bq_s - true_tia) <= fit.tia_uncertainty_bq_s
    frac = hit / n
    # binomial 3-sigma band around 0.683
    band = 3 * math.sqrt(0.683 * 0.317 / n)
    assert 0.683 - band <= frac <= 0.683 + band


def test_delta_and_sampling_agree():
    t = np.array([4.0, 24.0, 48.0, 96.0, 168.0])
    y = 100.0 * np.exp(-LN2 / 40.0 * t) * np.array([1.03, 0.97, 1.02, 0.99, 1.01])
    d = fit_tac(t, y, model="mono")
    s = fit_tac(t, y, model="mono", uncertainty_method="sampling", n_samples=4000)
    assert s.tia_uncertainty_bq_s == pytest.approx(d.tia_uncertainty_bq_s, rel=0.1)
    assert "sampling" in s.tia_uncertainty_method and "delta" in d.tia_uncertainty_method


def test_input_errors():
    t = [24.0, 48.0, 96.0]
    with pytest.raises(InputDataError, match="finite"):
        fit_tac(t, [1.0, np.nan, 0.5])
    with pytest.raises(InputDataError, match=">= 0"):
        fit_tac(t, [1.0, -0.1, 0.5])
    with pytest.raises(InputDataError, match="increasing"):
        fit_tac([48.0, 24.0, 96.0], [1.0, 0.8, 0.5])
    with pytest.raises(UnitError):
        fit_tac(t, [1.0, 0.8, 0.5], time_unit="fortnight")
    with pytest.raises(InputDataError, match="nuclide"):
        fit_tac(t, [1.0, 0.8, 0.5], model="mono", tail="physical")
    with pytest.raises(InputDataError, match="parameters but only"):
        fit_tac(t, [1.0, 0.8, 0.5], model="biexp")
    with pytest.raises(InputDataError, match="model="):
        fit_tac(t, [1.0, 0.8, 0.5], model="quadexp")
