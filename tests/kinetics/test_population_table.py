"""The cited population table of effective half-lives (dosimetry/data/population_kinetics.csv).

Independent references: the physical half-life of Lu-177 is 6.647 d (ENSDF/NNDC,
6.647(4) d), so no effective half-life of a Lu-177 agent can exceed 159.5 h; the other
checks are on the table's own bookkeeping (one default per organ, every row cited).
"""

from __future__ import annotations

import math
import re

import pytest

from dosimetry.errors import DosimetryError
from dosimetry.kinetics import (
    population_biological_half_life_s,
    population_effective_half_life_s,
    population_table,
)
from dosimetry.kinetics._population import _parse, agent_reference_nuclide, canonical_organ

LU177_HALF_LIFE_H = 6.647 * 24.0  # ENSDF/NNDC: 6.647(4) d = 159.5 h

YEAR = re.compile(r"\b(19[5-9]\d|20[0-4]\d)\b")
DOI = re.compile(r"doi:10\.\d{4,9}/\S+")
JOURNAL = re.compile(
    r"(J Nucl Med|Eur J Nucl Med|EJNMMI (Res|Phys)|Molecules|Phys Med Biol|Med Phys|Cancers)"
    r"\s.*\b(19|20)\d{2}\b"
)

ROWS = population_table()

HEADER = (
    "agent,organ,effective_half_life_h,statistic,spread_h,n_patients,method,citation,"
    "priority,notes\n"
)
GOOD = "A,kidneys,40,mean,SD 5,10,SPECT,X. J Nucl Med 2020;1:1. doi:10.1/x,1,\n"


def _ids(rows):
    return [f"{r.agent}/{r.organ}/p{r.priority}" for r in rows]


def test_table_is_not_empty_and_sorted():
    assert len(ROWS) >= 10
    keys = [(r.agent, r.organ, r.priority) for r in ROWS]
    assert keys == sorted(keys)


@pytest.mark.parametrize("row", ROWS, ids=_ids(ROWS))
def test_every_row_is_cited(row):
    cite = row.citation
    assert YEAR.search(cite), cite
    conference = "Annual Meeting" in cite and "abstract" in cite
    # peer-reviewed rows name a journal with its year and carry a DOI; the one conference
    # abstract kept in the table says so in its citation and in its notes
    if conference:
        assert "not peer reviewed" in row.notes
    else:
        assert JOURNAL.search(cite), cite
        assert DOI.search(cite), cite
    assert row.statistic in ("mean", "median")
    assert re.search(r"\d", row.spread), row.spread
    assert re.search(r"\d", row.n_patients), row.n_patients
    assert row.method


@pytest.mark.parametrize("row", ROWS, ids=_ids(ROWS))
def test_effective_half_life_within_physical_limit(row):
    t_h = row.effective_half_life_s / 3600.0
    assert math.isfinite(t_h) and t_h > 0.0
    if agent_reference_nuclide(row.agent) == "Lu-177":
        assert t_h <= LU177_HALF_LIFE_H


def test_project_lu177_half_life_matches_ensdf():
    import dosimetry as ds

    assert ds.nuclide("Lu-177").half_life_s / 3600.0 == pytest.approx(LU177_HALF_LIFE_H, rel=1e-3)


def test_one_default_per_organ_and_defaults_are_served():
    groups: dict[tuple[str, str], list[int]] = {}
    for r in ROWS:
        groups.setdefault((r.agent, r.organ), []).append(r.priority)
    for (agent, organ), prios in groups.items():
        assert prios.count(1) == 1, (agent, organ)
        assert len(set(prios)) == len(prios), (agent, organ)
        default = next(r for r in ROWS if (r.agent, r.organ, r.priority) == (agent, organ, 1))
        value_s, cite = population_effective_half_life_s(agent, organ)
        assert value_s == default.effective_half_life_s
        assert cite.startswith(default.citation)


def test_peer_reviewed_defaults_name_the_conference_abstract_they_replace():
    """Where the AAPM abstract is kept as an alternative, the default's notes mention it."""
    for r in ROWS:
        if r.priority > 1 and "AAPM" in r.citation:
            default = next(
                d for d in ROWS if (d.agent, d.organ, d.priority) == (r.agent, r.organ, 1)
            )
            assert "AAPM" not in default.citation
            assert "AAPM" in default.notes
            hours = f"{r.effective_half_life_s / 3600.0:.1f} h"
            assert hours in default.notes, (r.organ, hours)


# VOI names as they typically come out of an RTSTRUCT for a PSMA-617 patient
RTSTRUCT_NAMES = {
    "Kidney_L": "kidneys",
    "Kidney_R": "kidneys",
    "kidney_left": "kidneys",
    "Liver": "liver",
    "Spleen": "spleen",
    "Lesion_1": "tumour",
    "lesion 12": "tumour",
    "GTV_bone": "tumour",
    "Parotid_L": "salivary_glands",
    "Submandibular R": "salivary_glands",
    "BoneMarrow": "bone_marrow",
    "WholeBody": "whole_body",
}


@pytest.mark.parametrize("name", sorted(RTSTRUCT_NAMES))
def test_rtstruct_names_resolve_for_psma617(name):
    assert canonical_organ(name) == RTSTRUCT_NAMES[name]
    t_eff, cite = population_effective_half_life_s("177Lu-PSMA-617", name)
    assert 0.0 < t_eff <= LU177_HALF_LIFE_H * 3600.0
    assert YEAR.search(cite)
    # the projection needs a biological half-life: T_eff must be below T_phys
    t_bio, _ = population_biological_half_life_s("Lu-177-PSMA-617", name)
    assert t_bio > t_eff


def test_psma617_tumour_prior_is_peer_reviewed_and_prostate_specific():
    t_eff, cite = population_effective_half_life_s("Lu-177-PSMA-617", "lesion_1")
    assert t_eff / 3600.0 == pytest.approx(74.9)
    assert "Khreish" in cite and "doi:10.1186/s13550-026-01394-z" in cite
    assert "prostate cancer only" in cite


def test_dotatate_has_kidneys_only_and_says_so():
    t_eff, cite = population_effective_half_life_s("Lutathera", "Kidney_R")
    assert t_eff / 3600.0 == pytest.approx(56.0)
    assert "Spink" in cite
    with pytest.raises(DosimetryError, match="The table has, for this agent: kidneys"):
        population_effective_half_life_s("Lutathera", "Liver")


def test_parse_accepts_a_minimal_table_and_defaults_priority():
    rows = _parse(HEADER + GOOD)
    assert rows[0].priority == 1 and rows[0].effective_half_life_s == 40 * 3600.0
    legacy = _parse(
        "agent,organ,effective_half_life_h,statistic,spread_h,n_patients,method,citation\n"
        "A,liver,20,median,range 1-2,5,SPECT,X. J Nucl Med 2020;1:1.\n"
    )
    assert legacy[0].priority == 1 and legacy[0].notes == ""


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        (GOOD, "twice"),
        ("A,liver,20,mean,SD 1,5,SPECT,Y 2020,2,\n", "no default"),
        ("A,liver,20,average,SD 1,5,SPECT,Y 2020,1,\n", "statistic"),
        ("A,liver,0,mean,SD 1,5,SPECT,Y 2020,1,\n", "bad half-life"),
        ("A,liver,nan,mean,SD 1,5,SPECT,Y 2020,1,\n", "bad half-life"),
        ("A,liver,20,mean,SD 1,5,SPECT,Y 2020,0,\n", "priority"),
        ("A,liver,twenty,mean,SD 1,5,SPECT,Y 2020,1,\n", "bad number"),
    ],
)
def test_parse_rejects_bad_tables(extra, match):
    with pytest.raises(DosimetryError, match=match):
        _parse(HEADER + GOOD + extra)


def test_parse_rejects_missing_columns():
    with pytest.raises(DosimetryError, match="citation"):
        _parse("agent,organ,effective_half_life_h,statistic,spread_h,n_patients,method\n")
