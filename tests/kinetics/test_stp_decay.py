"""Single-time-point methods and decay-correction round trips."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dosimetry.errors import DosimetryError, InputDataError
from dosimetry.kinetics import (
    decay_correct,
    decay_factor,
    fit_tac,
    hanscheid_ratio,
    population_effective_half_life_s,
    stp_tia,
    undo_decay_correction,
)

LN2 = math.log(2.0)


def _mono(a0_mbq, t_eff_h, t_h):
    return a0_mbq * math.exp(-LN2 * t_h / t_eff_h)


@pytest.mark.parametrize("x", [0.25, 0.5, 1.0, 1.5, 2.0, 3.0])
def test_hanscheid_ratio_for_mono_exponential(x):
    """Ratio to the true TIA is 2x 2^-x (Hänscheid et al. 2018), x = t/T_eff."""
    t_eff = 60.0
    t = x * t_eff
    est = stp_tia(_mono(100.0, t_eff, t), t, "hanscheid2018")
    true = 100e6 * t_eff * 3600 / LN2
    assert est / true == pytest.approx(2 * x * 2.0 ** (-x), rel=1e-12)
    assert est / true == pytest.approx(hanscheid_ratio(t, t_eff), rel=1e-12)


def test_hanscheid_exact_at_x_1_and_2():
    for t in (60.0, 120.0):
        est = stp_tia(_mono(100.0, 60.0, t), t, "hanscheid2018")
        assert est == pytest.approx(100e6 * 60 * 3600 / LN2, rel=1e-12)
    assert "Hänscheid" in est.citation and "mono-exponential" in est.assumption


def test_madsen_exact_for_mono_exponential():
    est = stp_tia(_mono(50.0, 45.0, 72.0), 72.0, "madsen2018", effective_half_life=45.0)
    assert est == pytest.approx(50e6 * 45 * 3600 / LN2, rel=1e-12)
    assert isinstance(est, float) and est.effective_half_life_s == pytest.approx(45 * 3600)
    assert "Madsen" in est.citation
    assert float(est) * 2 == pytest.approx(2 * 50e6 * 45 * 3600 / LN2)


def test_madsen_population_half_life():
    t_eff_s, cite = population_effective_half_life_s("Lu-177-DOTATATE", "kidneys")
    est = stp_tia(10.0, 96.0, "madsen2018", agent="Lutathera", organ="kidney_right")
    lam = LN2 / t_eff_s
    assert est == pytest.approx(10e6 * math.exp(lam * 96 * 3600) / lam, rel=1e-12)
    assert "Spink" in est.citation
    with pytest.raises(InputDataError, match="effective_half_life"):
        stp_tia(10.0, 96.0, "madsen2018")
    with pytest.raises(DosimetryError, match="The table has"):
        stp_tia(10.0, 96.0, "madsen2018", agent="Lutathera", organ="brain")


def test_prior_cycle_scaling():
    t = np.array([24.0, 48.0, 96.0, 168.0])
    prior = fit_tac(t, [_mono(100.0, 50.0, x) for x in t], model="mono")
    # new cycle: same kinetics, 80 % of the amplitude, one measurement at 72 h
    est = stp_tia(0.8 * _mono(100.0, 50.0, 72.0), 72.0, "prior", prior_fit=prior)
    assert est == pytest.approx(0.8 * 100e6 * 50 * 3600 / LN2, rel=1e-9)
    with pytest.raises(InputDataError, match="prior_fit"):
        stp_tia(1.0, 72.0, "prior")


def test_stp_errors():
    with pytest.raises(InputDataError):
        stp_tia(-1.0, 24.0)
    with pytest.raises(InputDataError):
        stp_tia(1.0, 0.0)
    with pytest.raises(InputDataError, match="method"):
        stp_tia(1.0, 24.0, "guess")


def test_decay_correction_round_trip():
    rng = np.random.default_rng(0)
    a = rng.uniform(1, 1e9, 50)
    dt = rng.uniform(0, 1e6, 50)
    t_half = 574300.0
    back = undo_decay_correction(decay_correct(a, dt, t_half), dt, t_half)
    np.testing.assert_allclose(back, a, rtol=1e-12)
    assert decay_factor(2 * t_half, t_half) == pytest.approx(0.25, rel=1e-15)
    with pytest.raises(InputDataError):
        decay_factor(1.0, 0.0)


def test_population_table_lookup():
    v, cite = population_effective_half_life_s("[177Lu]Lu-PSMA-617", "Whole body")
    assert v == pytest.approx(40.5 * 3600)
    assert "Kurth" in cite and "n=50" in cite
    with pytest.raises(DosimetryError, match="unknown agent"):
        population_effective_half_life_s("Y-90-ibritumomab", "liver")
