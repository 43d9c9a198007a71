"""The patient Monte Carlo's source terms against ICRP-107 energies per decay summed
independently of the code (tests/data/icrp107_energy_per_decay.csv)."""

from __future__ import annotations

import numpy as np
import pytest

from dosimetry.errors import NuclideError
from dosimetry.mc import decay_source, sample_emissions

#: 2 m_e c^2 (MeV, CODATA 2018)
ANNIHILATION_MEV = 1.0219978


def _total(row) -> float:
    keys = ("E_electron_total_MeV", "E_photon_total_MeV", "E_alpha_MeV", "E_alpha_recoil_MeV")
    return sum(float(row[k]) for k in keys)


@pytest.mark.parametrize(
    "name", ["Lu-177", "Y-90", "I-131", "Tb-161", "Ac-225", "Fr-221", "Bi-213", "Tl-209", "Pb-209"]
)
def test_energy_per_decay_is_icrp107(name, icrp107):
    """Transported + local (below the 10 keV cut) + alpha/recoil = ICRP-107 total (the
    same sums, made independently and rounded to 1e-6 MeV); alpha/recoil alone too."""
    src = decay_source(name)
    row = icrp107[name]
    parts = src.transported_mev_per_decay + src.local_mev_per_decay + src.alpha_mev_per_decay
    assert parts == pytest.approx(_total(row), abs=5e-6)  # the table rounds to 1e-6 MeV
    alpha = float(row["E_alpha_MeV"]) + float(row["E_alpha_recoil_MeV"])
    assert src.alpha_mev_per_decay == pytest.approx(alpha, abs=2e-6)


@pytest.mark.parametrize("name", ["F-18", "Ga-68"])
def test_positron_emitters(name, icrp107):
    """Positrons are transported from 0 keV (they annihilate even below the cut) and the
    listed annihilation photons are not emitted twice: kinetic energy + 2 m_e c^2 per
    positron + the rest = ICRP-107 total within 0.2 % (the positron count follows from
    the spectrum scaled to ICRP-107's positron energy; ICRP-107's annihilation yield is
    from its branching: they differ by 0.1-0.2 %)."""
    src = decay_source(name)
    assert src.beta_e_mev is not None and src.beta_e_mev[0] == 0.0
    assert 3 in src.component_code and src.local_mev_per_decay < 1e-3
    total = (
        src.transported_mev_per_decay
        + ANNIHILATION_MEV * src.positrons_per_decay
        + src.local_mev_per_decay
    )
    assert total == pytest.approx(_total(icrp107[name]), rel=2e-3)
    annihilation = float(icrp107[name]["E_annihilation_MeV"])
    assert ANNIHILATION_MEV * src.positrons_per_decay == pytest.approx(annihilation, rel=3e-3)


@pytest.mark.parametrize("name", ["Lu-177", "Y-90", "F-18"])
def test_sampled_energy_matches_expectation(name):
    """The sampled particles carry the expected energy per particle: 1e6 draws, within
    4 standard errors (the beta spectrum's exact piecewise-linear mean is used; the
    trapezoidal rule on E p would bias it by +0.3 %)."""
    src = decay_source(name)
    e, code = sample_emissions(src, 1_000_000, np.random.default_rng(11))
    expected = src.transported_mev_per_decay / src.particles_per_decay
    assert abs(e.mean() - expected) < 4 * e.std() / np.sqrt(e.size)
    assert set(np.unique(code)) <= {1, 2, 3}
    assert e.min() >= 0.0


def test_excluded_components_are_accounted():
    full = decay_source("Lu-177")
    beta_only = decay_source("Lu-177", exclude=("ce_auger", "photon"))
    assert set(beta_only.component_code) == {2}
    assert beta_only.transported_mev_per_decay + beta_only.local_mev_per_decay == pytest.approx(
        0.133270, rel=1e-5
    )  # ICRP-107 beta- energy per decay of Lu-177 (tests/data)
    assert beta_only.excluded_mev_per_decay + 0.133270 == pytest.approx(
        full.total_mev_per_decay, rel=1e-5
    )
    with pytest.raises(NuclideError, match="unknown emission component"):
        decay_source("Lu-177", exclude=("neutrino",))


@pytest.mark.parametrize(
    ("name", "match"), [("Cu-64", "both beta- and beta"), ("Cf-252", "ompmc does not transport")]
)
def test_unsupported_nuclides(name, match):
    with pytest.raises(NuclideError, match=match):
        decay_source(name)


@pytest.mark.parametrize("name", ["Lu-177", "Y-90"])
def test_stratified_emissions_follow_the_spectrum_closely(name):
    """Systematic sampling: the lines get their expected counts to within one particle and
    the mean energy is the expectation to within 2e-4 with 1e5 draws (independent draws:
    ~2e-3); the order is random (no trend along the draws)."""
    src = decay_source(name)
    n = 100_000
    e, code = sample_emissions(src, n, np.random.default_rng(5), stratified=True)
    expected = src.transported_mev_per_decay / src.particles_per_decay
    assert e.mean() == pytest.approx(expected, rel=2e-4)
    p_photon = float(
        np.diff(np.concatenate([[0.0], src.component_cdf]))[src.component_code == 1].sum()
    )
    assert abs(int(np.count_nonzero(code == 1)) - p_photon * n) <= np.count_nonzero(
        src.component_code == 1
    )
    halves = e[: n // 2].mean(), e[n // 2 :].mean()
    assert abs(halves[0] - halves[1]) < 4 * e.std() * np.sqrt(2 / (n // 2))
