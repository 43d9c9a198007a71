"""Diagnostic -> therapy projection on toy cases with analytic answers."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import numpy as np
import pytest
from scipy import integrate

import dosimetry as ds
from dosimetry.errors import DosimetryError, GeometryMismatchError, InputDataError, UnitError
from dosimetry.projection import chain_decays_per_parent, project_tia

LN2 = math.log(2.0)
T_LU = ds.nuclide("Lu-177").half_life_s
T_GA = ds.nuclide("Ga-68").half_life_s


def _grid(value=0.001, shape=(4, 4, 4), unit="1"):
    return ds.Volume.from_spacing(np.full(shape, value), (4.0, 4.0, 4.0), unit=unit)


def _masks(grid):
    a = np.zeros(grid.shape, bool)
    a[:2] = True
    b = np.zeros(grid.shape, bool)
    b[2:, :2] = True
    return {"kidney_left": grid.with_array(a, unit="1"), "parotid": grid.with_array(b, unit="1")}


def _numeric_tia(f, t_bio, t_phys, t_pet, head):
    """Independent quadrature of the stated retention model."""
    # integrate in hours (well-scaled for quadpack), return seconds
    lb, lp = 3600.0 * LN2 / t_bio, 3600.0 * LN2 / t_phys
    tp = t_pet / 3600.0
    if head == "plateau":
        a, _ = integrate.quad(lambda t: f * math.exp(-lp * t), 0, tp)
        b, _ = integrate.quad(lambda t: f * math.exp(-lb * (t - tp) - lp * t), tp, np.inf)
        return 3600.0 * (a + b)
    v, _ = integrate.quad(lambda t: f * math.exp(-lb * (t - tp) - lp * t), 0, np.inf)
    return 3600.0 * v


@pytest.mark.parametrize("head", ["plateau", "instant"])
def test_toy_case_matches_quadrature(head):
    grid = _grid(0.002)
    masks = _masks(grid)
    t_pet = 2 * 3600.0
    t_bio = {"kidney_left": 30 * 3600.0, "parotid": 80 * 3600.0}
    r = project_tia(
        grid,
        masks,
        "Lu-177",
        agent=None,
        biological_half_life_s=t_bio,
        pet_time_after_injection_s=t_pet,
        background=20 * 3600.0,
        head=head,
    )
    assert r.tia_per_bq.unit == "Bq s/Bq"
    for row in r.voi_table:
        tb = t_bio.get(row["voi"], 20 * 3600.0)
        expect = row["n_voxels"] * _numeric_tia(0.002, tb, T_LU, t_pet, head)
        assert row["tia_per_bq_s"] == pytest.approx(expect, rel=1e-8)
    # the map sums to the table
    total = sum(r_["tia_per_bq_s"] for r_ in r.voi_table)
    assert r.tia_per_bq.array.sum() == pytest.approx(total, rel=1e-12)


def test_activity_input_gives_fraction_of_decayed_injected_activity():
    """PET at acquisition (decay correction undone) -> biological fraction."""
    t_inj = datetime(2024, 5, 1, 9, 0, 0)
    t_acq = t_inj + timedelta(minutes=60)
    a_inj = 150e6
    f_true = 1e-3  # per voxel
    grid = _grid(1.0, unit="Bq/mL")
    v_ml = grid.voxel_volume_ml
    conc = f_true * a_inj * 2.0 ** (-3600.0 / T_GA) / v_ml
    pet = grid.with_array(np.full(grid.shape, conc), reference_time=t_acq)
    r = project_tia(
        (pet, a_inj, t_inj),
        _masks(grid),
        diagnostic_nuclide="Ga-68",
        biological_half_life_s=50 * 3600.0,
        background="zero",
    )
    for row in r.voi_table:
        assert row["fraction_injected"] == pytest.approx(row["n_voxels"] * f_true, rel=1e-12)
    # Bq per voxel input gives the same
    pet_bq = pet.with_array(pet.array * v_ml, unit="Bq")
    r2 = project_tia(
        (pet_bq, a_inj, t_inj),
        _masks(grid),
        diagnostic_nuclide="Ga-68",
        biological_half_life_s=50 * 3600.0,
        background="zero",
    )
    np.testing.assert_allclose(r2.tia_per_bq.array, r.tia_per_bq.array, rtol=1e-12)
    # background zero: nothing outside the VOIs
    outside = ~(r.tia_per_bq.array > 0)
    assert outside.sum() == grid.array.size - sum(x["n_voxels"] for x in r.voi_table)


def test_population_priors_are_used_and_cited():
    grid = _grid()
    r = project_tia(grid, _masks(grid), pet_time_after_injection_s=3600.0)
    kid = next(x for x in r.voi_table if x["voi"] == "kidney_left")
    # T_eff for Lu-177 must equal the tabulated value (round trip through T_bio)
    t_eff_tab, cite = ds.kinetics.population_effective_half_life_s("Lu-177-PSMA-617", "kidneys")
    assert kid["effective_half_life_s"] == pytest.approx(t_eff_tab, rel=1e-12)
    assert "AAPM" in kid["source"]
    items = [a["name"] for a in r.assumptions]
    assert "shared biodistribution" in items and "half-life background" in items
    assert "Kurth" in r.assumptions_text()


def test_ac225_uses_ligand_biology_and_chain_in_situ():
    grid = _grid()
    masks = _masks(grid)
    lu = project_tia(grid, masks, "Lu-177", "Lu-177-PSMA-617", pet_time_after_injection_s=1.0)
    ac = project_tia(grid, masks, "Ac-225", "Lu-177-PSMA-617", pet_time_after_injection_s=1.0)
    for a, b in zip(lu.voi_table, ac.voi_table, strict=True):
        assert a["biological_half_life_s"] == pytest.approx(b["biological_half_life_s"])
    counts = chain_decays_per_parent("Ac-225")
    for member, vol in ac.member_tia_per_bq.items():
        np.testing.assert_allclose(vol.array, counts[member] * ac.tia_per_bq.array, rtol=1e-12)


def test_chain_branching_conserves_decays():
    n = chain_decays_per_parent("Ac-225")
    assert n["Ac-225"] == 1.0 and n["Fr-221"] == pytest.approx(1.0)
    assert n["Po-213"] + n["Tl-209"] == pytest.approx(n["Bi-213"], rel=1e-12)
    assert n["Pb-209"] == pytest.approx(n["Bi-213"], rel=1e-12)
    assert 0.97 < n["Po-213"] < 0.99  # Bi-213 beta branch ~97.8-97.9 % (ICRP-107)
    assert chain_decays_per_parent("Lu-177") == {"Lu-177": 1.0}


def test_free_bi213_moves_tia_to_sink_and_conserves_total():
    grid = _grid()
    masks = _masks(grid)
    kw = dict(pet_time_after_injection_s=3600.0)
    base = project_tia(grid, masks, "Ac-225", **kw)
    moved = project_tia(
        grid, masks, "Ac-225", free_bi213_fraction=0.4, bi213_sink="kidney_left", **kw
    )
    lost = project_tia(grid, masks, "Ac-225", free_bi213_fraction=0.4, **kw)
    for m in ("Bi-213", "Po-213", "Pb-209"):
        assert moved.member_tia_per_bq[m].array.sum() == pytest.approx(
            base.member_tia_per_bq[m].array.sum(), rel=1e-12
        )
        in_map = lost.member_tia_per_bq[m].array.sum()
        assert in_map + lost.relocated_tia_per_bq[m] == pytest.approx(
            base.member_tia_per_bq[m].array.sum(), rel=1e-12
        )
    # parent and members above Bi-213 unchanged
    np.testing.assert_allclose(
        moved.member_tia_per_bq["Fr-221"].array, base.member_tia_per_bq["Fr-221"].array
    )
    # parotid lost 40 % of its Bi-213
    par = masks["parotid"].array.astype(bool)
    assert moved.member_tia_per_bq["Bi-213"].array[par].sum() == pytest.approx(
        0.6 * base.member_tia_per_bq["Bi-213"].array[par].sum(), rel=1e-12
    )


def test_sensitivity_matches_analytic_derivative():
    """For t_pet -> 0 the TIA is f/(lb+lp): scaling T_bio by k gives an analytic change."""
    grid = _grid()
    tb = 40 * 3600.0
    r = project_tia(
        grid,
        _masks(grid),
        therapy_nuclide="Lu-177",
        agent=None,
        biological_half_life_s=tb,
        pet_time_after_injection_s=1e-6,
        background="zero",
    )
    lp = LN2 / T_LU
    for row in r.sensitivity:
        for k, key in ((0.75, "relative_change_minus"), (1.25, "relative_change_plus")):
            expect = (LN2 / tb + lp) / (LN2 / (k * tb) + lp) - 1.0
            assert row[key] == pytest.approx(expect, rel=1e-6)


def test_tia_for_planned_activity():
    grid = _grid()
    r = project_tia(grid, _masks(grid), pet_time_after_injection_s=3600.0)
    t = r.tia(7.4e9)
    assert t.unit == "Bq s"
    np.testing.assert_allclose(t.array, 7.4e9 * r.tia_per_bq.array)


def test_errors():
    grid = _grid()
    masks = _masks(grid)
    with pytest.raises(InputDataError, match="pet_time_after_injection_s"):
        project_tia(grid, masks)
    with pytest.raises(InputDataError, match="overlaps"):
        project_tia(grid, {**masks, "liver": masks["kidney_left"]}, pet_time_after_injection_s=1.0)
    bad = grid.with_array(np.full(grid.shape, 1.5), unit="1")
    with pytest.raises(InputDataError, match=r"outside \[0, 1\]"):
        project_tia(grid, {"liver": bad}, pet_time_after_injection_s=1.0)
    other = ds.Volume.from_spacing(np.ones((4, 4, 4), bool), (2.0, 4.0, 4.0), unit="1")
    with pytest.raises(GeometryMismatchError):
        project_tia(grid, {"liver": other}, pet_time_after_injection_s=1.0)
    with pytest.raises(DosimetryError, match="no population effective half-life"):
        project_tia(grid, {"brain": masks["parotid"]}, pet_time_after_injection_s=1.0)
    with pytest.raises(InputDataError, match="exceeds the physical"):
        project_tia(
            grid,
            masks,
            effective_half_life_s=1e7,
            pet_time_after_injection_s=1.0,
            therapy_nuclide="Lu-177",
            agent=None,
            background="zero",
        )
    with pytest.raises(UnitError):
        project_tia(grid.with_array(grid.array, unit="Gy"), masks, pet_time_after_injection_s=1.0)
    nan = grid.with_array(np.where(masks["parotid"].array, np.nan, 0.001))
    with pytest.raises(InputDataError, match="NaN"):
        project_tia(nan, masks, pet_time_after_injection_s=1.0)
    pet = grid.with_array(grid.array, unit="Bq/mL")
    with pytest.raises(InputDataError, match="reference_time"):
        project_tia((pet, 1e8, datetime(2024, 1, 1)), masks, diagnostic_nuclide="Ga-68")
    with pytest.raises(InputDataError, match="diagnostic nuclide"):
        project_tia((pet, 1e8, datetime(2024, 1, 1)), masks)


def test_negative_voxels_are_clipped_and_reported(caplog):
    grid = _grid()
    arr = grid.array.copy()
    arr[0, 0, 0] = -0.001
    r = project_tia(grid.with_array(arr), _masks(grid), pet_time_after_injection_s=3600.0)
    assert r.tia_per_bq.array[0, 0, 0] == 0.0
    assert "clipped" in r.assumptions_text()
    assert any("negative" in rec.message for rec in caplog.records)


def test_plateau_check_with_two_time_points():
    g1 = _grid(0.001)
    g2 = _grid(0.002)
    r = project_tia([g1, g2], _masks(g1), pet_time_after_injection_s=[1800.0, 3600.0])
    checks = [a for a in r.assumptions if a["name"] == "plateau check"]
    assert checks and all("exceeds" in a["source"] for a in checks)
    # the latest time point is used
    assert r.voi_table[0]["fraction_injected"] == pytest.approx(0.002 * 32)


def test_activity_call_form_and_agent_names_the_nuclide():
    """project_tia(activity, A_inj, t_inj, masks, agent=...) equals the tuple form."""
    t_inj = datetime(2024, 5, 1, 9, 0, 0)
    grid = _grid(1000.0, unit="Bq/mL")
    pet = grid.with_array(grid.array, reference_time=t_inj + timedelta(hours=1))
    pet = ds.Volume(
        pet.array,
        pet.affine,
        "Bq/mL",
        reference_time=pet.reference_time,
        provenance={"nuclide": "Ga-68"},
    )
    masks = _masks(grid)
    a = project_tia(pet, 2e8, t_inj, masks, agent="Ac-225-PSMA-617")
    b = project_tia(
        (pet, 2e8, t_inj), masks, "Ac-225", "Lu-177-PSMA-617", diagnostic_nuclide="Ga-68"
    )
    assert a.therapy_nuclide == "Ac-225" and a.agent == "Lu-177-PSMA-617"
    np.testing.assert_allclose(a.tia_per_bq.array, b.tia_per_bq.array, rtol=1e-12)
    assert any(x["name"] == "ligand kinetics transfer" for x in a.assumptions)
    with pytest.raises(InputDataError, match="therapy_nuclide"):
        project_tia(pet, 2e8, t_inj, masks, agent=None, biological_half_life_s=1e5)


def test_fractional_masks_share_partial_voxels():
    """A voxel half in the kidney, half background gets the weighted mix of both models."""
    grid = _grid(0.001, shape=(1, 1, 2))
    w = grid.with_array(np.array([[[1.0, 0.5]]]), unit="1")
    tb_k, tb_bg = 30 * 3600.0, 90 * 3600.0
    r = project_tia(
        grid,
        {"kidneys": w},
        "Lu-177",
        None,
        biological_half_life_s=tb_k,
        background=tb_bg,
        pet_time_after_injection_s=3600.0,
    )
    k = _numeric_tia(0.001, tb_k, T_LU, 3600.0, "plateau")
    bg = _numeric_tia(0.001, tb_bg, T_LU, 3600.0, "plateau")
    np.testing.assert_allclose(r.tia_per_bq.array.ravel(), [k, 0.5 * k + 0.5 * bg], rtol=1e-8)
    with pytest.raises(InputDataError, match="overlaps"):
        project_tia(
            grid,
            {"kidneys": w, "liver": w},
            "Lu-177",
            None,
            biological_half_life_s=tb_k,
            pet_time_after_injection_s=3600.0,
        )
