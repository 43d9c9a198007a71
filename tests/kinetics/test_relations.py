"""Diagnostic -> therapy uptake relations and the published therapy doses behind them."""

from __future__ import annotations

import csv
import math
from importlib import resources
from pathlib import Path

import pytest

from dosimetry.errors import DosimetryError, InputDataError
from dosimetry.kinetics import (
    RELATION_ORGANS,
    literature_dose_range,
    literature_doses,
    population_effective_half_life_s,
    relation_organ,
    uptake_relation,
    uptake_relation_table,
    uptake_relations,
)
from dosimetry.kinetics._relations import _parse_doses, _parse_relations

DATA = Path(__file__).resolve().parents[1] / "data"
MEV_TO_J = 1.602176634e-13


def _pairs() -> list[tuple[str, str]]:
    text = resources.files("dosimetry").joinpath("data/theranostic_pairs.csv").read_text("utf-8")
    return [
        (r["diagnostic_agent"], r["therapy_agent"])
        for r in csv.DictReader(text.splitlines())
        if r["therapy_agent"].strip()
    ]


def _lu177_np_energy_j() -> float:
    """ICRP-107 Lu-177 electron energy per decay from the test reference file."""
    with open(DATA / "icrp107_energy_per_decay.csv") as f:
        rows = {r["nuclide"]: r for r in csv.DictReader(ln for ln in f if not ln.startswith("#"))}
    return float(rows["Lu-177"]["E_electron_total_MeV"]) * MEV_TO_J


# -- completeness --------------------------------------------------------------------------


def test_every_pair_and_organ_has_a_row() -> None:
    table = uptake_relation_table()
    keys = {(r.diagnostic_agent, r.therapy_agent, r.organ) for r in table}
    pairs = _pairs()
    assert len(pairs) == 7
    for diag, ther in pairs:
        for organ in RELATION_ORGANS:
            assert (diag, ther, organ) in keys, (diag, ther, organ)
    assert len(table) == len(pairs) * len(RELATION_ORGANS)


def test_rows_are_well_formed_and_no_data_is_explicit() -> None:
    for r in uptake_relation_table():
        where = (r.diagnostic_agent, r.therapy_agent, r.organ)
        assert r.rel_sd > 0 and r.spread == r.rel_sd, where
        assert 0 < r.ratio_low <= r.ratio <= r.ratio_high, where
        assert r.citation.strip() and r.method.strip(), where
        if r.evidence == "no_data":
            # never a silent 1.0: the row says so, with a wide spread and a reason
            assert r.ratio == 1.0 and r.rel_sd >= 1.0 and not r.has_data, where
            assert r.note.strip() and "NO DATA" in r.summary(), where
        else:
            assert r.n_patients and r.n_patients >= 1, where
            assert r.note.strip(), where
        if r.evidence == "unpaired":
            assert not r.paired and "unpaired" in r.note, where


def test_what_the_literature_gives_per_pair() -> None:
    """Which organs have data: a change of the table shows up here."""
    have = {
        (r.diagnostic_agent, r.organ): r.evidence
        for r in uptake_relation_table()
        if r.therapy_agent in ("Lu-177-PSMA-617", "Lu-177-DOTATATE")
    }
    psma11 = {o for (d, o), e in have.items() if d == "Ga-68-PSMA-11" and e != "no_data"}
    assert psma11 == {
        "kidneys",
        "parotid_glands",
        "submandibular_glands",
        "salivary_glands",
        "lacrimal_glands",
        "liver",
        "tumour",
        "tumour_bone",
        "tumour_lymph_node",
        "tumour_soft_tissue",
    }
    for d in ("Ga-68-PSMA-11", "F-18-PSMA-1007", "F-18-DCFPyL"):
        assert have[(d, "spleen")] == "no_data"  # no Lu-177-PSMA-617 spleen dose found
        assert have[(d, "red_marrow")] == "no_data"  # no diagnostic marrow SUV found
    assert have[("F-18-PSMA-1007", "liver")] == "unpaired"
    assert have[("Ga-68-DOTATATE", "kidneys")] == "unpaired"
    assert have[("Ga-68-PSMA-11", "tumour_bone")] == "paired_cohort"


def test_alpha_therapy_rows_repeat_the_ligand_rows() -> None:
    for diag in ("Ga-68-PSMA-11", "F-18-PSMA-1007", "F-18-DCFPyL"):
        lu = uptake_relations(diag, "Lu-177-PSMA-617")
        ac = uptake_relations(diag, "Ac-225-PSMA-617")
        for organ in RELATION_ORGANS:
            assert ac[organ].ratio == lu[organ].ratio, (diag, organ)
            assert ac[organ].rel_sd == lu[organ].rel_sd, (diag, organ)


# -- derived ratios ------------------------------------------------------------------------


def test_derived_ratios_follow_from_their_inputs() -> None:
    """ratio = (D/A) rho ln2 W / (E_np T_eff SUV), recomputed from the row's columns."""
    text = (
        resources.files("dosimetry").joinpath("data/agent_uptake_relations.csv").read_text("utf-8")
    )
    e_j = _lu177_np_energy_j()
    n = 0
    for row in csv.DictReader(text.splitlines()):
        if row["evidence"] in ("no_data",):
            continue
        d = float(row["therapy_dose_gy_per_gbq"]) * 1e-9  # Gy/Bq
        rho_kg_per_ml = float(row["tissue_density_g_per_ml"]) * 1e-3
        t_s = float(row["therapy_t_eff_h"]) * 3600.0
        w_g = float(row["body_weight_kg"]) * 1000.0
        suv = float(row["diagnostic_suv"])
        conc_therapy = d * rho_kg_per_ml * math.log(2) / (e_j * t_s)  # per mL, per Bq
        conc_diag = suv / w_g  # per mL, per Bq (SUV in g/mL)
        assert float(row["ratio"]) == pytest.approx(conc_therapy / conc_diag, rel=1e-4), row
        n += 1
    assert n >= 40


def test_effective_half_lives_are_the_population_table_defaults() -> None:
    """Each derived row used the priority-1 T_eff the projection will use; re-run
    tools/build_literature_tables.py when population_kinetics.csv changes."""
    text = (
        resources.files("dosimetry").joinpath("data/agent_uptake_relations.csv").read_text("utf-8")
    )
    for row in csv.DictReader(text.splitlines()):
        if row["evidence"] == "no_data":
            continue
        ligand_agent = "Lu-177-" + row["therapy_agent"].split("-", 2)[2]
        t_s, _ = population_effective_half_life_s(ligand_agent, row["t_eff_organ"])
        assert float(row["therapy_t_eff_h"]) == pytest.approx(t_s / 3600.0, rel=1e-9), row


def test_kidney_relation_of_psma11_and_the_hepatobiliary_psma1007() -> None:
    """PSMA-617 kidney plateau concentration is a fraction of PSMA-11's at 1 h; PSMA-1007
    (lower renal, higher hepatic uptake) needs a larger kidney and a smaller liver ratio."""
    k11 = uptake_relation("Ga-68-PSMA-11", "Lu-177-PSMA-617", "kidneys")
    k1007 = uptake_relation("F-18-PSMA-1007", "Lu-177-PSMA-617", "kidneys")
    l11 = uptake_relation("Ga-68-PSMA-11", "Lu-177-PSMA-617", "liver")
    l1007 = uptake_relation("F-18-PSMA-1007", "Lu-177-PSMA-617", "liver")
    assert 0.1 < k11.ratio < 0.6 and k1007.ratio > 2 * k11.ratio
    assert l1007.ratio < 0.5 * l11.ratio
    # the same therapy side, so the ratio scales with the inverse diagnostic SUV
    assert k11.ratio * k11.diagnostic_suv == pytest.approx(
        k1007.ratio * k1007.diagnostic_suv, rel=1e-4
    )


def test_demo_like_prediction_falls_in_the_literature_ranges() -> None:
    """Organ-level check with the phantom's cited diagnostic uptake (SUV x V / W), the
    relation and the population T_eff (plateau model, LED): kidneys, salivary glands and
    liver of a Lu-177-PSMA-617 plan from Ga-68-PSMA-11 or F-18-PSMA-1007 lie inside the
    published patient range (literature_doses.csv). Removing a relation (ratio 1) moves
    the PSMA-11 kidney and both liver predictions out of it."""
    import phantoms

    e_j = _lu177_np_energy_j()
    lam_p = math.log(2) / (6.647 * 86400.0)  # Lu-177, ICRP-107
    t_pet = 3600.0
    ph = phantoms.make_torso(voxel_mm=8.0)
    w_g = 80000.0
    cases = {
        "kidneys": (("kidney_left", "kidney_right"), "kidneys"),
        "parotid_glands": (("parotid_left", "parotid_right"), "salivary_glands"),
        "submandibular_glands": (("submandibular_left",), "salivary_glands"),
        "liver": (("liver",), "liver"),
    }
    # without a relation (ratio 1) these leave the range; PSMA-1007's kidney ratio is ~0.9
    removal_fails = {
        ("Ga-68-PSMA-11", "kidneys"),
        ("Ga-68-PSMA-11", "liver"),
        ("F-18-PSMA-1007", "liver"),
    }
    for tracer in ("Ga-68-PSMA-11", "F-18-PSMA-1007"):
        tr = phantoms.TRACERS[tracer]
        for organ, (regions, pop_organ) in cases.items():
            rel = uptake_relation(tracer, "Lu-177-PSMA-617", organ)
            t_eff, _ = population_effective_half_life_s("Lu-177-PSMA-617", pop_organ)
            lam_b = math.log(2) / t_eff - lam_p
            vol = {r: ph.analytic_volume_ml(r) for r in regions}
            f_diag = sum(tr.suv[r] * vol[r] / w_g for r in regions)
            mass_kg = sum(vol[r] * ph.structure(r).density_g_per_ml for r in regions) / 1000

            def dose(ratio: float, f_diag=f_diag, lam_b=lam_b, mass_kg=mass_kg) -> float:
                tia = (
                    ratio
                    * f_diag
                    * (
                        -math.expm1(-lam_p * t_pet) / lam_p
                        + math.exp(-lam_p * t_pet) / (lam_b + lam_p)
                    )
                )
                return tia * e_j / mass_kg * 1e9  # Gy/GBq

            lo, hi, n = literature_dose_range("Lu-177-PSMA-617", organ, kind="patients")
            got = dose(rel.ratio)
            if rel.has_data:
                assert lo <= got <= hi, (tracer, organ, got, lo, hi, n)
            if (tracer, organ) in removal_fails:
                assert not lo <= dose(1.0) <= hi, (tracer, organ, dose(1.0))


# -- names and errors ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "organ"),
    [
        ("parotid_left", "parotid_glands"),
        ("Parotid R", "parotid_glands"),
        ("submandibular_right", "submandibular_glands"),
        ("lacrimal_left", "lacrimal_glands"),
        ("red_marrow", "red_marrow"),
        ("lumbar_vertebrae", "red_marrow"),
        ("Kidney_L", "kidneys"),
        ("liver", "liver"),
        ("lesion_3", "tumour"),
        ("GTV_bone", "tumour_bone"),
        ("lesion_liver", "tumour_soft_tissue"),
        ("lymph_node_2", "tumour_lymph_node"),
        ("duodenum", "bowel"),
        ("tumour_bone", "tumour_bone"),
        ("lung_left", None),
        ("vertebral_column", None),
    ],
)
def test_relation_organ(name: str, organ: str | None) -> None:
    assert relation_organ(name) == organ


def test_agent_spellings_and_errors() -> None:
    a = uptake_relation("[68Ga]Ga-PSMA-11", "Pluvicto", "Kidney_L")
    b = uptake_relation("Ga-68-PSMA-11", "Lu-177-PSMA-617", "kidneys")
    assert a == b
    assert uptake_relation("68Ga-DOTATATE", "177Lu-DOTATATE", "kidneys").ratio > 0
    with pytest.raises(InputDataError, match="pairs"):
        uptake_relation("F-18-FDG", "Lu-177-PSMA-617", "kidneys")
    with pytest.raises(InputDataError, match="names no organ"):
        uptake_relation("Ga-68-PSMA-11", "Lu-177-PSMA-617", "brain")
    r = uptake_relation("Ga-68-PSMA-11", "Lu-177-PSMA-617", "brain", missing="no_data")
    assert r.evidence == "no_data" and r.ratio == 1.0 and r.rel_sd == 1.0 and "brain" in r.note
    with pytest.raises(InputDataError, match="missing"):
        uptake_relation("Ga-68-PSMA-11", "Lu-177-PSMA-617", "liver", missing="ignore")


# -- parser validation ---------------------------------------------------------------------

_HEADER = (
    "diagnostic_agent,therapy_agent,organ,evidence,relation,ratio,slope,intercept,rel_sd,"
    "ratio_low,ratio_high,n_patients,paired,diagnostic_imaging,therapy_imaging,method,"
    "citation,note\n"
)


def _row(**kw: str) -> str:
    base = {
        "diagnostic_agent": "A",
        "therapy_agent": "B",
        "organ": "kidneys",
        "evidence": "paired",
        "relation": "ratio",
        "ratio": "0.5",
        "slope": "",
        "intercept": "",
        "rel_sd": "0.2",
        "ratio_low": "0.3",
        "ratio_high": "0.8",
        "n_patients": "12",
        "paired": "yes",
        "diagnostic_imaging": "PET",
        "therapy_imaging": "SPECT/CT",
        "method": "per-patient ratio",
        "citation": "X et al. 2024",
        "note": "",
    }
    base.update(kw)
    return ",".join(base.values()) + "\n"


def test_parser_accepts_ratio_and_regression_rows() -> None:
    rows = _parse_relations(
        _HEADER
        + _row()
        + _row(organ="liver", relation="regression", ratio="", slope="0.4", intercept="0.001")
    )
    assert rows[0].therapy_fraction(0.1) == pytest.approx(0.05, rel=1e-12)
    assert rows[1].slope == 0.4 and rows[1].therapy_fraction(0.1) == pytest.approx(0.041)
    assert rows[1].ratio == 0.4  # a regression row reports its slope as the ratio


@pytest.mark.parametrize(
    ("row", "match"),
    [
        (_row(organ="brain"), "organ"),
        (_row(evidence="guess"), "evidence"),
        (_row(ratio="-1"), "ratio > 0"),
        (_row(rel_sd="0"), "rel_sd"),
        (_row(ratio_low="0.6"), "ratio_low"),
        (_row(citation=""), "citation"),
        (_row(paired="maybe"), "yes"),
        (_row(evidence="no_data", ratio="0.5"), "no-data row"),
        (_row(relation="regression", ratio="", slope=""), "slope"),
        (_row(ratio="nan"), "finite"),
    ],
)
def test_parser_rejects_bad_rows(row: str, match: str) -> None:
    with pytest.raises(DosimetryError, match=match):
        _parse_relations(_HEADER + row)


def test_parser_rejects_duplicates_and_missing_columns() -> None:
    with pytest.raises(DosimetryError, match="twice"):
        _parse_relations(_HEADER + _row() + _row())
    with pytest.raises(DosimetryError, match="column"):
        _parse_relations("diagnostic_agent,organ\nA,kidneys\n")


# -- literature doses ----------------------------------------------------------------------


def test_literature_dose_rows_are_complete() -> None:
    rows = literature_doses()
    assert len(rows) >= 30
    for r in rows:
        assert r.value_gy_per_gbq > 0 and r.n_patients >= 1, r
        assert r.statistic in ("mean", "median") and r.method and r.citation, r
        if r.low is not None:
            assert r.low <= r.value_gy_per_gbq <= r.high, r


def test_cohort_counts_per_organ() -> None:
    """At least three independent Lu-177-PSMA-617 cohorts for kidneys, salivary glands and
    red marrow; fewer were found for the others (docs/literature_doses.md says so)."""

    def cohorts(organ: str) -> int:
        return literature_dose_range("Lu-177-PSMA-617", organ)[2]

    assert cohorts("kidneys") >= 3
    assert cohorts("salivary_glands") >= 3
    assert cohorts("red_marrow") >= 3
    assert cohorts("lacrimal_glands") == 1
    assert cohorts("liver") == 1
    assert cohorts("tumour") >= 3
    with pytest.raises(InputDataError, match="no published dose"):
        literature_dose_range("Lu-177-PSMA-617", "spleen")
    assert literature_dose_range("Lu-177-DOTATATE", "kidneys")[2] == 4


def test_literature_dose_ranges() -> None:
    # kidneys: cohort means/medians 0.49 (Peters 2022) .. 0.82 (MIRT 2017)
    assert literature_dose_range("Lu-177-PSMA-617", "kidneys") == (0.49, 0.82, 5)
    lo, hi, n = literature_dose_range("177Lu-PSMA-617", "kidneys", kind="patients")
    assert (lo, hi) == (0.26, 1.07)  # Molecules 2019 range 0.26-1.07 is the widest
    assert literature_dose_range("Lu-177-PSMA-617", "red_marrow") == (0.017, 0.044, 3)
    # non-independent rows (a repeated cohort, a special population) are left out unless asked
    assert literature_dose_range("Lu-177-PSMA-617", "kidneys", independent_only=False)[2] == 7
    with pytest.raises(InputDataError, match="kind"):
        literature_dose_range("Lu-177-PSMA-617", "kidneys", kind="all")
    with pytest.raises(InputDataError, match="agent"):
        literature_doses("Tc-99m-MDP")


def test_dose_parser_rejects_bad_rows() -> None:
    head = "agent,organ,statistic,value,sd,low,high,n,method,citation,independent_cohort,note\n"
    ok = "A,kidneys,mean,0.5,0.1,,,10,SPECT/CT,X 2020,yes,\n"
    assert _parse_doses(head + ok)[0].value_gy_per_gbq == 0.5
    for bad, match in (
        ("A,kidneys,mode,0.5,,,,10,SPECT,X,yes,\n", "statistic"),
        ("A,kidneys,mean,0,,,,10,SPECT,X,yes,\n", "value > 0"),
        ("A,kidneys,mean,0.5,,,,10,,X,yes,\n", "method"),
        ("A,kidneys,mean,0.5,,,,10,SPECT,X,perhaps,\n", "yes"),
    ):
        with pytest.raises(DosimetryError, match=match):
            _parse_doses(head + bad)
