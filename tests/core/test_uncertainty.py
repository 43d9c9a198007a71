"""First-order uncertainty propagation against Monte Carlo resampling of the same inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest

import dosimetry as ds
from dosimetry.kinetics.projection import _tia_factor
from dosimetry.uncertainty import (
    Term,
    combine,
    relative_sd_from_spread,
    resample,
    tia_half_life_sensitivity,
)

T_LU = 6.647 * 86400.0
T_PET = 3600.0


def _dose(draws, f=0.01, e=1.0):
    """Plan-like model: calibration x ratio x fraction x TIA factor(T_eff) / mass x method."""
    t_eff = draws["t_eff"]
    lp = math.log(2) / T_LU
    t_bio = 1.0 / (1.0 / t_eff - 1.0 / T_LU)
    tau = np.array([_tia_factor(tb, T_LU, T_PET, "plateau") for tb in np.atleast_1d(t_bio)])
    del lp
    return draws["cal"] * draws["ratio"] * f * tau * e / draws["mass"] * draws["method"]


def _terms(rel):
    t_eff = 40 * 3600.0
    return [
        Term("cal", rel["cal"]),
        Term("ratio", rel["ratio"]),
        Term("mass", rel["mass"], -1.0),
        Term("method", rel["method"]),
        Term("t_eff", rel["t_eff"], tia_half_life_sensitivity(t_eff, T_LU, T_PET)),
    ]


def test_first_order_matches_resampling_for_small_uncertainties():
    rel = {"cal": 0.05, "ratio": 0.08, "mass": 0.05, "method": 0.03, "t_eff": 0.10}
    inputs = {
        "cal": (1.0, rel["cal"]),
        "ratio": (1.0, rel["ratio"]),
        "mass": (1.0, rel["mass"]),
        "method": (1.0, rel["method"]),
        "t_eff": (40 * 3600.0, rel["t_eff"]),
    }
    mean, sd = resample(_dose, inputs, n=4000, seed=1)
    first = combine(_terms(rel))
    assert sd / mean == pytest.approx(first, rel=0.10)


def test_log_space_propagation_holds_for_the_wide_population_spreads():
    """With the plan's wide spreads (relations, population half-lives) the budget is read as
    the SD of ln D: log-normal inputs, exact nonlinear TIA, SD of ln D within 10 %."""
    rel = {"cal": 0.05, "ratio": 0.66, "mass": 0.05, "method": 0.03, "t_eff": 0.47}
    inputs = {
        "cal": (1.0, rel["cal"]),
        "ratio": (1.0, rel["ratio"]),
        "mass": (1.0, rel["mass"]),
        "method": (1.0, rel["method"]),
        "t_eff": (40 * 3600.0, rel["t_eff"]),
    }
    rng_inputs = dict(inputs)
    out = []
    for seed in (1,):
        rng = np.random.default_rng(seed)
        draws = {k: v * np.exp(r * rng.standard_normal(4000)) for k, (v, r) in rng_inputs.items()}
        draws["t_eff"] = np.minimum(draws["t_eff"], 0.999 * T_LU)  # cannot exceed physical
        out.append(np.std(np.log(_dose(draws)), ddof=1))
    assert out[0] == pytest.approx(combine(_terms(rel)), rel=0.10)


def test_sensitivity_of_the_tia_to_the_half_life_is_the_derivative():
    t = 30 * 3600.0
    h = 1e-6
    tau = lambda te: _tia_factor(1 / (1 / te - 1 / T_LU), T_LU, T_PET, "plateau")  # noqa: E731
    numeric = (math.log(tau(t * (1 + h))) - math.log(tau(t * (1 - h)))) / (2 * h)
    assert tia_half_life_sensitivity(t, T_LU, T_PET) == pytest.approx(numeric, rel=1e-5)


def test_spread_rules():
    assert relative_sd_from_spread(74.9, "SD 23.1")[0] == pytest.approx(23.1 / 74.9)
    assert relative_sd_from_spread(31.4, "range 12.2-80.6")[0] == pytest.approx(
        math.log(80.6 / 12.2) / 4
    )
    with pytest.raises(ds.InputDataError):
        relative_sd_from_spread(1.0, "wide")
    with pytest.raises(ds.InputDataError):
        combine([Term("x", -0.1)])
