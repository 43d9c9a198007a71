"""Decay chains (radioactivedecay branching, Bateman windows) and theranostic pairs."""

from __future__ import annotations

import numpy as np
import pytest

import dosimetry as ds
from dosimetry.errors import NuclideError
from dosimetry.nuclides import decay_chain, theranostic_pair, theranostic_pairs

LN2 = np.log(2.0)


def test_ac225_members_and_branching():
    ch = ds.decay_chain("225Ac")
    assert ch.members == ("Ac-225", "Fr-221", "At-217", "Bi-213", "Po-213", "Tl-209", "Pb-209")
    # Bi-213: 97.91 % beta- to Po-213, 2.09 % alpha to Tl-209 (ICRP-107 branching)
    assert ch.branching[("Bi-213", "Po-213")] == pytest.approx(0.9791, abs=1e-4)
    assert ch.branching[("Bi-213", "Tl-209")] == pytest.approx(0.0209, abs=1e-4)
    d = ch.decays_per_parent_decay
    assert d["Ac-225"] == 1.0 and d["Fr-221"] == pytest.approx(1.0)
    # both branches end in Pb-209: one Pb-209 decay per Bi-213 decay
    assert d["Pb-209"] == pytest.approx(d["Bi-213"], rel=1e-12)
    assert d["Po-213"] + d["Tl-209"] == pytest.approx(d["Bi-213"], rel=1e-12)


def test_finite_window_matches_two_member_bateman():
    """Parent -> daughter with lambda_p, lambda_d: decays of the daughter in [0, T] per
    parent decay, analytic Bateman solution (independent of radioactivedecay)."""
    t = 2.0 * 86400.0
    ch = decay_chain("Ac-225", window_s=t)
    lp = LN2 / ds.nuclide("Ac-225").half_life_s
    ld = LN2 / ds.nuclide("Fr-221").half_life_s
    n_p = 1.0 - np.exp(-lp * t)
    # daughter decays = atoms made - atoms left
    left_d = lp / (ld - lp) * (np.exp(-lp * t) - np.exp(-ld * t))
    n_d = n_p - left_d
    assert ch.decays_per_parent_decay["Fr-221"] == pytest.approx(n_d / n_p, rel=1e-6)
    # a window much longer than every daughter's half-life approaches complete decay
    long = decay_chain("Ac-225", window_s=200 * 86400.0).decays_per_parent_decay
    inf = decay_chain("Ac-225").decays_per_parent_decay
    assert long["Pb-209"] == pytest.approx(inf["Pb-209"], rel=2e-4)


def test_single_nuclide_chain_and_errors():
    ch = decay_chain("Lu-177")
    assert ch.members == ("Lu-177",) and ch.decays_per_parent_decay == {"Lu-177": 1.0}
    with pytest.raises(NuclideError, match="window_s"):
        decay_chain("Lu-177", window_s=-1.0)
    with pytest.raises(NuclideError, match="unknown nuclide"):
        decay_chain("Xx-1")


def test_theranostic_pairs_table():
    rows = theranostic_pairs()
    assert {(p.diagnostic_nuclide, p.therapy_nuclide) for p in rows} >= {
        ("Ga-68", "Lu-177"),
        ("Ga-68", "Ac-225"),
        ("F-18", "Lu-177"),
        ("F-18", None),
    }
    assert all(p.reference for p in rows)
    psma = theranostic_pair("Ga-68-PSMA-11")
    assert [p.therapy_nuclide for p in psma] == ["Lu-177", "Ac-225"]
    assert theranostic_pair("68Ga-DOTATATE")[0].therapy_agent == "Lu-177-DOTATATE"
    assert {p.therapy_nuclide for p in ds.theranostic_pair("18F-DCFPyL")} == {"Lu-177", "Ac-225"}
    assert {p.therapy_nuclide for p in theranostic_pair("F-18-PSMA-1007")} == {"Lu-177", "Ac-225"}
    fdg = theranostic_pair("18F-FDG")
    assert len(fdg) == 1 and fdg[0].therapy_nuclide is None
    with pytest.raises(NuclideError, match="known agents"):
        theranostic_pair("Tc-99m-MDP")
