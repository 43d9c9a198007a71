"""Diagnostic -> therapy projection on toy cases with analytic answers."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import numpy as np
import pytest
from scipy import integrate

import dosimetry as ds
from dosimetry.errors import DosimetryError, GeometryMismatchError, InputDataError, UnitError
from dosimetry.kinetics.projection import (
    PetFrame,
    UptakeRatio,
    _half_lives,
    _regions,
    _sensitivity,
    _tia_factor,
    _tia_map,
    chain_decays_per_parent,
    project_tia,
)

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
        therapy_nuclide="Lu-177",
        agent=None,
        biological_half_life_s=t_bio,
        pet_time_after_injection_s=t_pet,
        background=20 * 3600.0,
        head=head,
    )
    assert r.tia_per_bq.unit == "Bq s/Bq"
    for row in r.voi_table:
        tb = t_bio.get(row.voi, 20 * 3600.0)
        expect = row.n_voxels * _numeric_tia(0.002, tb, T_LU, t_pet, head)
        assert row.tia_per_bq_s == pytest.approx(expect, rel=1e-8)
    # the map sums to the table
    total = sum(r_.tia_per_bq_s for r_ in r.voi_table)
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
        PetFrame.from_activity(pet, a_inj, t_inj, "Ga-68"),
        _masks(grid),
        agent="Lu-177-PSMA-617",
        biological_half_life_s=50 * 3600.0,
        background="zero",
    )
    for row in r.voi_table:
        assert row.fraction_injected == pytest.approx(row.n_voxels * f_true, rel=1e-12)
    # Bq per voxel input gives the same
    pet_bq = pet.with_array(pet.array * v_ml, unit="Bq")
    r2 = project_tia(
        PetFrame.from_activity(pet_bq, a_inj, t_inj, "Ga-68"),
        _masks(grid),
        agent="Lu-177-PSMA-617",
        biological_half_life_s=50 * 3600.0,
        background="zero",
    )
    np.testing.assert_allclose(r2.tia_per_bq.array, r.tia_per_bq.array, rtol=1e-12)
    # background zero: nothing outside the VOIs
    outside = ~(r.tia_per_bq.array > 0)
    assert outside.sum() == grid.array.size - sum(x.n_voxels for x in r.voi_table)


def test_population_priors_are_used_and_cited():
    grid = _grid()
    r = project_tia(grid, _masks(grid), agent="Lu-177-PSMA-617", pet_time_after_injection_s=3600.0)
    kid = r.row("kidney_left")
    # T_eff for Lu-177 must equal the tabulated value (round trip through T_bio)
    t_eff_tab, cite = ds.kinetics.population_effective_half_life_s("Lu-177-PSMA-617", "kidneys")
    assert kid.effective_half_life_s == pytest.approx(t_eff_tab, rel=1e-12)
    assert "AAPM" in kid.source
    items = [a.name for a in r.assumptions]
    assert "shared biodistribution" in items and "half-life background" in items
    assert "Kurth" in r.assumptions_text()


def test_ac225_uses_ligand_biology_and_chain_in_situ():
    grid = _grid()
    masks = _masks(grid)
    lu = project_tia(grid, masks, agent="Lu-177-PSMA-617", pet_time_after_injection_s=1.0)
    ac = project_tia(grid, masks, agent="Ac-225-PSMA-617", pet_time_after_injection_s=1.0)
    for a, b in zip(lu.voi_table, ac.voi_table, strict=True):
        assert a.biological_half_life_s == pytest.approx(b.biological_half_life_s)
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
    kw = dict(pet_time_after_injection_s=3600.0, agent="Ac-225-PSMA-617")
    base = project_tia(grid, masks, **kw)
    moved = project_tia(grid, masks, free_bi213_fraction=0.4, bi213_sink="kidney_left", **kw)
    lost = project_tia(grid, masks, free_bi213_fraction=0.4, **kw)
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
            assert getattr(row, key) == pytest.approx(expect, rel=1e-6)


def test_tia_for_planned_activity():
    grid = _grid()
    r = project_tia(grid, _masks(grid), agent="Lu-177-PSMA-617", pet_time_after_injection_s=3600.0)
    t = r.tia(7.4e9)
    assert t.unit == "Bq s"
    np.testing.assert_allclose(t.array, 7.4e9 * r.tia_per_bq.array)


def test_errors():
    grid = _grid()
    masks = _masks(grid)
    kw = {"agent": "Lu-177-PSMA-617"}
    with pytest.raises(InputDataError, match="pet_time_after_injection_s"):
        project_tia(grid, masks, **kw)
    with pytest.raises(InputDataError, match="overlaps"):
        project_tia(
            grid,
            {**masks, "liver": masks["kidney_left"]},
            pet_time_after_injection_s=1.0,
            **kw,
        )
    bad = grid.with_array(np.full(grid.shape, 1.5), unit="1")
    with pytest.raises(InputDataError, match=r"outside \[0, 1\]"):
        project_tia(grid, {"liver": bad}, pet_time_after_injection_s=1.0, **kw)
    other = ds.Volume.from_spacing(np.ones((4, 4, 4), bool), (2.0, 4.0, 4.0), unit="1")
    with pytest.raises(GeometryMismatchError):
        project_tia(grid, {"liver": other}, pet_time_after_injection_s=1.0, **kw)
    with pytest.raises(DosimetryError, match="no population effective half-life"):
        project_tia(grid, {"brain": masks["parotid"]}, pet_time_after_injection_s=1.0, **kw)
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
        project_tia(
            grid.with_array(grid.array, unit="Gy"), masks, pet_time_after_injection_s=1.0, **kw
        )
    nan = grid.with_array(np.where(masks["parotid"].array, np.nan, 0.001))
    with pytest.raises(InputDataError, match="NaN"):
        project_tia(nan, masks, pet_time_after_injection_s=1.0, **kw)
    pet = grid.with_array(grid.array, unit="Bq/mL")
    with pytest.raises(InputDataError, match="reference_time"):
        PetFrame.from_activity(pet, 1e8, datetime(2024, 1, 1), "Ga-68")
    with pytest.raises(InputDataError, match="therapy_nuclide"):
        project_tia(grid, masks, agent=None, biological_half_life_s=1e5)
    with pytest.raises(TypeError):  # agent is a required keyword: no silent default agent
        project_tia(grid, masks, pet_time_after_injection_s=1.0)  # type: ignore[call-arg]


def test_negative_voxels_are_clipped_and_reported():
    grid = _grid()
    arr = grid.array.copy()
    arr[0, 0, 0] = -0.001
    r = project_tia(
        grid.with_array(arr),
        _masks(grid),
        agent="Lu-177-PSMA-617",
        pet_time_after_injection_s=3600.0,
    )
    assert r.tia_per_bq.array[0, 0, 0] == 0.0
    assert "clipped" in r.assumptions_text()
    (finding,) = [f for f in r.findings if f.code == "negative_voxels"]
    # 0.001 of a positive total of 0.063: over 1 %, so a warning
    assert "1 negative voxels" in finding.message and finding.level == "warning"


def test_plateau_check_with_two_time_points():
    g1 = _grid(0.001)
    g2 = _grid(0.002)
    r = project_tia(
        [g1, g2],
        _masks(g1),
        agent="Lu-177-PSMA-617",
        pet_time_after_injection_s=[1800.0, 3600.0],
    )
    checks = [a for a in r.assumptions if a.name == "plateau check"]
    assert checks and all("exceeds" in a.source for a in checks)
    assert {f.code for f in r.findings} == {"plateau"}
    # the latest time point is used
    assert r.voi_table[0].fraction_injected == pytest.approx(0.002 * 32)


def test_activity_frame_and_agent_names_the_nuclide():
    """The therapy nuclide is read from the agent name; ligand kinetics transfer."""
    t_inj = datetime(2024, 5, 1, 9, 0, 0)
    grid = _grid(1000.0, unit="Bq/mL")
    pet = grid.with_array(grid.array, reference_time=t_inj + timedelta(hours=1))
    masks = _masks(grid)
    frame = PetFrame.from_activity(pet, 2e8, t_inj, "Ga-68")
    a = project_tia(frame, masks, agent="Ac-225-PSMA-617")
    b = project_tia(frame, masks, agent="Lu-177-PSMA-617", therapy_nuclide="Ac-225")
    assert a.therapy_nuclide == "Ac-225" and a.agent == "Lu-177-PSMA-617"
    np.testing.assert_allclose(a.tia_per_bq.array, b.tia_per_bq.array, rtol=1e-12)
    assert any(x.name == "ligand kinetics transfer" for x in a.assumptions)
    assert any("Ga-68" in x.value for x in a.assumptions if x.name == "diagnostic nuclide")


def test_fractional_masks_share_partial_voxels():
    """A voxel half in the kidney, half background gets the weighted mix of both models."""
    grid = _grid(0.001, shape=(1, 1, 2))
    w = grid.with_array(np.array([[[1.0, 0.5]]]), unit="1")
    tb_k, tb_bg = 30 * 3600.0, 90 * 3600.0
    r = project_tia(
        grid,
        {"kidneys": w},
        therapy_nuclide="Lu-177",
        agent=None,
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
            therapy_nuclide="Lu-177",
            agent=None,
            biological_half_life_s=tb_k,
            pet_time_after_injection_s=3600.0,
        )


# ------------------------------------------------------------------------------ the steps alone
def test_regions_background_is_the_uncovered_weight():
    w1 = np.array([[[1.0, 0.5, 0.0]]])
    w2 = np.array([[[0.0, 0.25, 0.0]]])
    regions, bg = _regions({"a": w1, "b": w2}, (1, 1, 3))
    assert list(regions) == ["a", "b"]
    np.testing.assert_allclose(bg, [[[0.0, 0.25, 1.0]]], rtol=0, atol=0)


def test_half_lives_sources_and_background_choices():
    kw = dict(t_phys_s=T_LU, therapy_name="Lu-177")
    hl = _half_lives(
        ["kidney_left", "parotid"],
        "physical",
        agent="Lu-177-PSMA-617",
        biological={"parotid": 100 * 3600.0},
        effective=None,
        **kw,
    )
    assert hl["parotid"].t_bio_s == 100 * 3600.0 and hl["parotid"].source.startswith("user")
    assert hl["kidney_left"].source.startswith("population")
    assert math.isinf(hl["background"].t_bio_s)
    none = _half_lives(["x"], "zero", agent=None, biological=1e5, effective=None, **kw)
    assert none["background"] is None
    eff = _half_lives(["x"], None, agent=None, biological=None, effective=40 * 3600.0, **kw)
    # 1/T_bio = 1/T_eff - 1/T_phys
    assert 1 / eff["x"].t_bio_s == pytest.approx(1 / (40 * 3600.0) - 1 / T_LU, rel=1e-12)
    assert "background" not in eff
    with pytest.raises(InputDataError, match="background="):
        _half_lives(["x"], "nope", agent=None, biological=1e5, effective=None, **kw)


def test_tia_factor_limits():
    # no biological clearance: plateau head integrates pure physical decay, 1/lp
    assert _tia_factor(math.inf, T_LU, 3600.0, "plateau") == pytest.approx(T_LU / LN2, rel=1e-12)
    # t_pet -> 0: both heads give 1/(lb + lp)
    tb = 50 * 3600.0
    expect = 1 / (LN2 / tb + LN2 / T_LU)
    for head in ("plateau", "instant"):
        assert _tia_factor(tb, T_LU, 1e-9, head) == pytest.approx(expect, rel=1e-9)


def test_tia_map_applies_uptake_ratio_and_sums_to_table():
    grid = _grid(0.001)
    frame = PetFrame.from_fraction(grid, 3600.0)
    masks = {k: np.asarray(v.array, float) for k, v in _masks(grid).items()}
    regions, _ = _regions(masks, grid.shape)
    hl = _half_lives(
        list(masks),
        None,
        agent=None,
        biological=40 * 3600.0,
        effective=None,
        t_phys_s=T_LU,
        therapy_name="Lu-177",
    )
    ratios = {"kidney_left": UptakeRatio(0.4, 0.2, "test")}
    tia, rows = _tia_map(frame, regions, hl, ratios, t_phys_s=T_LU, head="plateau")
    one, _ = _tia_map(frame, regions, hl, {}, t_phys_s=T_LU, head="plateau")
    k = masks["kidney_left"] > 0
    np.testing.assert_allclose(tia[k], 0.4 * one[k], rtol=1e-12)
    np.testing.assert_allclose(tia[~k], one[~k], rtol=1e-12)
    assert sum(r.tia_per_bq_s for r in rows) == pytest.approx(tia.sum(), rel=1e-12)
    assert rows[0].uptake_ratio == 0.4


def test_sensitivity_rows_scale_with_the_ratio():
    grid = _grid(0.001)
    frame = PetFrame.from_fraction(grid, 3600.0)
    masks = {k: np.asarray(v.array, float) for k, v in _masks(grid).items()}
    regions, _ = _regions(masks, grid.shape)
    hl = _half_lives(
        list(masks),
        None,
        agent=None,
        biological=40 * 3600.0,
        effective=None,
        t_phys_s=T_LU,
        therapy_name="Lu-177",
    )
    _, rows = _tia_map(
        frame, regions, hl, {"parotid": UptakeRatio(2.0)}, t_phys_s=T_LU, head="plateau"
    )
    sens = _sensitivity(
        rows, hl, change=0.25, t_phys_s=T_LU, t_ref_phys_s=T_LU, t_pet_s=3600.0, head="plateau"
    )
    for s_row, row in zip(sens, rows, strict=True):
        f = row.fraction_injected * row.uptake_ratio
        assert s_row.tia_minus_per_bq_s == pytest.approx(
            f * _tia_factor(30 * 3600.0, T_LU, 3600.0, "plateau"), rel=1e-12
        )
        assert s_row.tia_plus_per_bq_s == pytest.approx(
            f * _tia_factor(50 * 3600.0, T_LU, 3600.0, "plateau"), rel=1e-12
        )
