"""Prescription and treatment history: closed forms, re-planning at the prescribed activity,
cumulative BED over cycles against an independent calculation."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import dosimetry as ds
import phantoms
from dosimetry.errors import InputDataError
from dosimetry.workflows import pet_plan
from dosimetry.workflows.prescription import (
    CycleRecord,
    Limit,
    TreatmentHistory,
    default_limits,
    max_activity,
    parse_limit,
    parse_lq,
)


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    folder = tmp_path_factory.mktemp("rx") / "study"
    phantoms.write_pet_ct_study(folder, seed=2)
    return ds.load_study(folder)


@pytest.fixture(scope="module")
def plan(study):
    return pet_plan.run(study, therapy="Lu-177-PSMA-617", activity="7.4 GBq", method="led")


def test_parse_limits_and_lq():
    assert parse_limit("kidneys=23Gy") == Limit("kidneys", "absorbed_dose", 23.0, "user (--limit)")
    assert parse_limit("kidneys=BED:40Gy").quantity == "bed"
    assert parse_limit("kidneys = eqd2:28 Gy").quantity == "eqd2"
    for bad in ("kidneys", "kidneys=BED", "kidneys=-3Gy", "=23Gy"):
        with pytest.raises(InputDataError):
            parse_limit(bad)
    assert parse_lq("liver=2.5/1.5") == ("liver", (2.5, 5400.0))
    lims = {(x.organ, x.quantity): x.value_gy for x in default_limits()}
    assert lims[("kidneys", "bed")] == 28.0 and lims[("kidneys", "absorbed_dose")] == 23.0
    assert {(x.organ, x.quantity): x.value_gy for x in default_limits(renal_risk_factors=False)}[
        ("kidneys", "bed")
    ] == 40.0


def _kidneys_mean(result) -> float:
    rows = [r for r in result.table if r.organ == "kidneys"]
    return sum(r.mass_g * r.dose.mean for r in rows) / sum(r.mass_g for r in rows)


def test_replanning_at_the_prescribed_activity_meets_the_dose_limit(study, plan):
    p = max_activity(plan, [Limit("kidneys", "absorbed_dose", 23.0)])
    assert p.limiting_organ == "kidneys" and p.limiting_voi.startswith("kidney")
    # one cycle to 23 Gy allows more than the 15 GBq a single Lu-177 administration usually
    # is (plausibility.csv): the prescription says so rather than capping it
    assert p.max_activity_bq > 15e9  # the phantom's kidneys: about 0.56 Gy/GBq
    assert any("above the usual range" in n for n in p.notes)
    eight = max_activity(plan, [Limit("kidneys", "absorbed_dose", 23.0)], cycles=8)
    assert eight.max_activity_bq < 15e9
    assert not any("above the usual range" in n for n in eight.notes)
    again = pet_plan.run(
        study,
        therapy="Lu-177-PSMA-617",
        activity=f"{p.max_activity_bq} Bq",
        method="led",
        accept=["administered_activity"],
    )
    assert _kidneys_mean(again) == pytest.approx(23.0, rel=0.005)


def test_bed_limit_matches_the_mono_exponential_closed_form(plan):
    """BED = n (d A)(1 + G d A / ab) with G = T_rep / (T_rep + T_eff) for instant uptake and
    mono-exponential clearance: solved here independently by the quadratic formula."""
    p = max_activity(plan, [Limit("kidneys", "bed", 40.0)], cycles=4)
    od = p.outcomes[0].organ_dose
    ab = ds.parameters.get("alpha_beta_kidney_gy")
    t_rep = ds.parameters.get("repair_half_time_kidney_s")
    proj = plan.details["projection"]
    rows = [r for r in plan.table if r.organ == "kidneys"]
    t_eff = proj.row(rows[0].name).effective_half_life_s
    g = t_rep / (t_rep + t_eff)
    assert od.g_factor == pytest.approx(g, rel=1e-6)
    d = od.dose_per_bq
    # 4 (dA + g (dA)^2 / ab) = 40  ->  g/ab x^2 + x - 10 = 0 with x = dA
    x = (-1 + math.sqrt(1 + 4 * (g / ab) * 10.0)) / (2 * g / ab)
    assert p.max_activity_bq == pytest.approx(x / d, rel=1e-9)
    assert p.outcomes[0].total_at_prescription_gy == pytest.approx(40.0, rel=0.01)
    # the BED's uncertainty: the dose's, through dBED/dD = 1 + 2 G D / ab (first order)
    for r in rows:
        g_r = t_rep / (t_rep + proj.row(r.name).effective_half_life_s)
        expect = (1 + 2 * g_r * r.dose.mean / ab) * r.mean_u
        assert r.extra["bed_gy_u"] == pytest.approx(expect, rel=1e-9)


def test_voxel_bed_map_is_the_lq_formula_voxel_by_voxel(plan):
    """In kidney voxels BED = D (1 + G D / ab) with the closed-form G of the kidneys'
    mono-exponential kinetics; 0 outside VOIs with radiobiology; the voxel-mean BED is at
    least the BED of the mean dose (BED is convex in D: Jensen's inequality)."""
    bed = plan.bed
    assert bed is not None and bed.unit == "Gy_BED" and bed.same_grid(plan.dose)
    ab = ds.parameters.get("alpha_beta_kidney_gy")
    t_rep = ds.parameters.get("repair_half_time_kidney_s")
    proj = plan.details["projection"]
    covered = np.zeros(bed.shape, bool)
    for r in plan.table:
        if r.bed_gy is not None and r.name in plan.masks:
            covered |= np.asarray(plan.masks[r.name].array) >= 0.5
    assert np.all(np.asarray(bed.array)[~covered] == 0.0)
    kid = next(r for r in plan.table if r.name == "kidney_left")
    m = np.asarray(plan.masks[kid.name].array) >= 0.5
    for other in plan.table:  # voxels shared with a smaller VOI carry that VOI's parameters
        if other.name != kid.name and other.name in plan.masks and other.role != "body":
            om = np.asarray(plan.masks[other.name].array) >= 0.5
            if om.sum() < m.sum():
                m &= ~om
    t_eff = proj.row(kid.name).effective_half_life_s
    g = t_rep / (t_rep + t_eff)
    d = np.asarray(plan.dose.array, np.float64)[m]
    np.testing.assert_allclose(np.asarray(bed.array)[m], d * (1 + g * d / ab), rtol=1e-5)
    assert float(np.asarray(bed.array)[m].mean()) >= kid.bed_gy * (1 - 1e-3)


def test_history_counts_and_three_cycle_bed_is_independently_summed(plan, tmp_path):
    ab = ds.parameters.get("alpha_beta_kidney_gy")
    cycles = [
        CycleRecord(
            1,
            "2026-01-10",
            "Lu-177-PSMA-617",
            7.4e9,
            "measured (SPECT)",
            {"kidneys": {"mean_gy": 4.1, "g_factor": 0.071, "alpha_beta_gy": ab}},
        ),
        CycleRecord(
            2,
            "2026-03-07",
            "Lu-177-PSMA-617",
            7.4e9,
            "measured (SPECT)",
            {"kidneys": {"mean_gy": 3.6, "bed_gy": 3.6 * (1 + 0.08 * 3.6 / ab)}},
        ),
    ]
    hist = TreatmentHistory(tuple(cycles), "P1")
    path = tmp_path / "history.json"
    path.write_text(hist.to_json())
    before = path.read_bytes()
    loaded = TreatmentHistory.load(path)
    assert path.read_bytes() == before  # never modified
    dose, bed = loaded.totals("kidneys")
    assert dose == pytest.approx(7.7)
    assert bed == pytest.approx(
        4.1 * (1 + 0.071 * 4.1 / ab) + 3.6 * (1 + 0.08 * 3.6 / ab), rel=1e-12
    )
    p = max_activity(plan, [Limit("kidneys", "bed", 28.0)], history=loaded, cycles=1)
    out = p.outcomes[0]
    d3 = out.organ_dose.dose_per_bq * p.max_activity_bq
    g3 = out.organ_dose.g_factor
    independent = bed + d3 * (1 + g3 * d3 / ab)
    assert independent == pytest.approx(28.0, rel=1e-9)
    assert json.loads(p.to_json())["previous_cycles"] == 2
    assert out.remaining_gy == pytest.approx(28.0 - bed, rel=1e-12)  # BED budget left
    assert json.loads(p.to_json())["limits"][0]["remaining_gy"] == pytest.approx(28.0 - bed)


def test_no_bed_without_radiobiology_and_lq_override(plan):
    with pytest.raises(InputDataError, match="--lq"):
        max_activity(plan, [Limit("liver", "bed", 40.0)])
    p = max_activity(plan, [Limit("liver", "bed", 40.0)], lq={"liver": (2.5, 1.5 * 3600)})
    assert p.outcomes[0].organ_dose.g_factor is not None
    with pytest.raises(InputDataError, match="no limit applies"):
        max_activity(plan, [Limit("thyroid", "absorbed_dose", 10.0)])


def test_plan_with_prescription_writes_json_and_history(study, tmp_path):
    from dosimetry.workflows.save import save

    r = pet_plan.run(
        study,
        therapy="Lu-177-PSMA-617",
        activity="7.4 GBq",
        method="led",
        limits=["kidneys=23Gy", "red_marrow=2Gy"],
        cycles=2,
    )
    out = save(r, tmp_path / "o")
    rx = json.loads((out / "prescription.json").read_text())
    assert rx["max_activity_bq"] > 0 and rx["limiting_voi"] and len(rx["limits"]) == 2
    assert "not a prescription order" in rx["decision_support"]
    # the organs the table reports without limiting, beside their literature threshold
    notes = " | ".join(rx["notes"])
    assert "salivary_glands (reported, not a limit)" in notes and "threshold 25 Gy" in notes
    assert "lacrimal_glands (reported, not a limit)" in notes and "no accepted" in notes
    hist = json.loads((out / "history.json").read_text())
    assert hist["format"] == "dosimetry-treatment-history/1" and len(hist["cycles"]) == 2
    # lesions are followed by name beside the organs, and the report sums every cycle
    lesion = hist["cycles"][0]["organs"]["lesion:lesion_1"]
    assert lesion["mean_gy"] == pytest.approx(r.table.row("lesion_1").dose.mean, rel=1e-9)
    cum = TreatmentHistory.load(out / "history.json").cumulative()
    assert cum["lesion:lesion_1"][0] == pytest.approx(2 * lesion["mean_gy"], rel=1e-9)
    assert cum["kidneys"][2] == 2
    html = (out / "report.html").read_text()
    assert "Prescription (decision support)" in html and "Treatment history" in html
    csv_text = (out / "dose_table.csv").read_text().splitlines()
    header = csv_text[0].split(",")
    kid = next(line.split(",") for line in csv_text if line.startswith("kidney_left,"))
    assert float(kid[header.index("bed_gy")]) > float(kid[header.index("mean_gy")])
    assert float(kid[header.index("eqd2_gy")]) > 0
    # the voxel BED map as RTDOSE (DoseType EFFECTIVE, unit restored from DoseComment)
    import pydicom

    dcm = pydicom.dcmread(out / "bed.dcm")
    assert dcm.DoseType == "EFFECTIVE" and dcm.DoseUnits == "GY"
    back = ds.io.read_rtdose(out / "bed.dcm")
    assert back.unit == "Gy_BED"
    np.testing.assert_allclose(
        np.asarray(back.array), np.asarray(r.bed.array), atol=float(dcm.DoseGridScaling)
    )
    assert (out / "bed.nii.gz").is_file()


def test_sphere_model_and_blood_based_marrow_rows(study, tmp_path):
    """Blood samples of a mono-exponential: [A~] = C0 / lambda; self-dose
    RMBLR x [A~] x 1000 g/kg x E_electron (ICRP-107 Lu-177 electron energy 0.1479 MeV)."""
    lam = math.log(2) / (10 * 3600.0)
    c0 = 2e4  # Bq/mL at t=0
    times_h = [1.0, 4.0, 24.0, 48.0]
    f = tmp_path / "blood.csv"
    f.write_text(
        "time [h],concentration [kBq/mL]\n"
        + "".join(
            f"{t},{c0 * math.exp(-lam * t * 3600) * math.exp(-math.log(2) * t * 3600 / (6.647 * 86400)) / 1e3}\n"
            for t in times_h
        )
    )
    r = pet_plan.run(study, therapy="Lu-177-PSMA-617", activity="7.4 GBq", method="led", blood=f)
    row = r.table.row("red_marrow (blood)")
    lam_eff = lam + math.log(2) / (6.647 * 86400)
    expect = 1.0 * (c0 / lam_eff) * 1e3 * 0.1479 * 1.602176634e-13
    assert row.dose.mean == pytest.approx(expect, rel=0.02)
    # a red_marrow limit: the larger of the blood-based and the image-based estimate, never
    # their mass average (the blood row's 1170 g is the whole marrow, not extra tissue)
    from dosimetry.workflows.prescription import organ_doses

    od = organ_doses(r, ["red_marrow"])["red_marrow"]
    image = [x for x in r.table if x.organ == "bone_marrow" and x.name != row.name]
    img_mean = sum(x.mass_g * x.dose.mean for x in image) / sum(x.mass_g for x in image)
    assert od.dose_per_bq * 7.4e9 == pytest.approx(max(row.dose.mean, img_mean), rel=1e-9)
    lesion = r.table.row("lesion_1")
    assert lesion.extra["sphere_model_mean_gy"] > 0
    # a 14 mL sphere keeps nearly all beta energy: the sphere model is near LED's lesion dose
    assert lesion.extra["sphere_model_mean_gy"] == pytest.approx(lesion.dose.mean, rel=0.35)


def test_g_of_a_fitted_uptake_curve_sees_the_uptake_phase():
    """The Lea-Catcheside G of a fitted uptake-washout TAC against Dale's double integral
    evaluated with nested scipy quadrature on the true curve; the clearance phase alone
    (a mono-exponential) gives a clearly different G."""
    from scipy.integrate import quad

    from dosimetry.kinetics import fit_tac
    from dosimetry.radiobiology import DoseRateShape, lea_catcheside_g
    from dosimetry.workflows.prescription import _shape_of_fit

    h = 3600.0
    lam, lam_u, mu = math.log(2) / (40 * h), math.log(2) / (8 * h), math.log(2) / (2.8 * h)
    t_h = np.array([1.0, 4.0, 24.0, 48.0, 96.0, 168.0])

    def rate(t):
        return math.exp(-lam * t) - math.exp(-lam_u * t)

    fit = fit_tac(t_h, 100.0 * np.vectorize(rate)(t_h * h), "h", "MBq", model="biexp-uptake")
    g = lea_catcheside_g(_shape_of_fit(fit), 2.8 * h)
    end, knots = 60 * 40 * h, [3 * h, 12 * h, 40 * h, 200 * h, 800 * h]  # 60 half-lives
    d = quad(rate, 0, end, points=knots, limit=400)[0]
    inner = lambda t: quad(lambda w: rate(w) * math.exp(-mu * (t - w)), 0, t, limit=200)[0]  # noqa: E731
    g_true = 2.0 / d**2 * quad(lambda t: rate(t) * inner(t), 0, end, points=knots, limit=400)[0]
    assert g == pytest.approx(g_true, rel=1e-3)
    g_clearance_only = lea_catcheside_g(DoseRateShape.mono_exponential(40 * h), 2.8 * h)
    assert abs(g_clearance_only / g_true - 1) > 0.05


def test_a_history_cycle_without_the_limited_organ_is_refused(plan):
    """Counting a missing organ dose as 0 would understate what was given: refused, naming
    the cycle and the organ."""
    hist = TreatmentHistory().with_cycles(
        [
            CycleRecord(
                0, "2026-01-12", "Lu-177-PSMA-617", 7.4e9, "cycle 1", {"kidneys": {"mean_gy": 3.0}}
            )
        ]
    )
    with pytest.raises(InputDataError, match=r"cycle 1 .*no mean dose of red_marrow"):
        max_activity(plan, [Limit("red_marrow", "absorbed_dose", 2.0)], history=hist)
    p = max_activity(plan, [Limit("kidneys", "absorbed_dose", 23.0)], history=hist)
    assert p.outcomes[0].prior_dose_gy == pytest.approx(3.0)
    assert p.outcomes[0].remaining_gy == pytest.approx(20.0)  # 23 Gy limit - 3 Gy given
    # an organ reported without a limit is not counted as 0 in that cycle either: its note
    # says the sum covers the planned cycle only
    reported = [n for n in p.notes if "(reported, not a limit)" in n]
    assert reported and all("planned cycle(s) only" in n for n in reported)
    assert not [n for n in reported if "over the treatment" in n]


def test_ac225_limits_apply_to_the_rbe_weighted_dose(study):
    """For Ac-225 the kidney limit is on the RBE-weighted dose (Gy_RBE), the RBE named:
    A = L / (N d_RBE) with d_RBE the kidneys' mass-weighted Gy_RBE per Bq (closed form)."""
    ac = pet_plan.run(study, therapy="Ac-225-PSMA-617", activity="8 MBq", method="led")
    p = max_activity(ac, [Limit("kidneys", "absorbed_dose", 23.0)], cycles=4)
    od = p.outcomes[0].organ_dose
    assert od.unit == "Gy_RBE" and "RBE 5" in p.rbe_note and "extrapolation" in p.rbe_note
    rows = [r for r in ac.table if r.organ == "kidneys"]
    d_rbe = sum(r.mass_g * r.dose_rbe.mean for r in rows) / sum(r.mass_g for r in rows) / 8e6
    assert p.max_activity_bq == pytest.approx(23.0 / (4 * d_rbe), rel=1e-9)
    assert json.loads(p.to_json())["rbe"] == p.rbe_note


def test_limit_on_the_upper_uncertainty_bound(plan):
    """--limit-bound upper: the limit applies to mean x (1 + k u_rel), k the coverage
    factor, so the activity is the mean-bound activity divided by that factor."""
    lim = [Limit("kidneys", "absorbed_dose", 23.0)]
    mean = max_activity(plan, lim)
    upper = max_activity(plan, lim, bound="upper")
    od = upper.outcomes[0].organ_dose
    assert od.relative_u and od.relative_u > 0
    ratio = mean.max_activity_bq / upper.max_activity_bq
    k = (ratio - 1) / od.relative_u  # the coverage factor the bound used
    # the default is the two-sided 95 % quantile of the normal distribution
    assert k == pytest.approx(1.959964, rel=1e-3)
    assert "mean + 1.96 x standard uncertainty" in upper.bound
    one = max_activity(plan, lim, bound="upper", coverage=1.0)
    assert mean.max_activity_bq / one.max_activity_bq == pytest.approx(1 + od.relative_u)
