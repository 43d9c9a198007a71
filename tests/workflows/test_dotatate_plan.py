"""The PET-based plan of 68Ga-DOTATATE -> 177Lu-DOTATATE against published patient doses.

The check range of an organ is the spread between patients in the literature table
(dosimetry/data/literature_doses.csv, Lu-177-DOTATATE rows): the envelope of each
independent cohort's reported range or, where a cohort reports mean and SD only,
mean -/+ 1.96 SD (as in test_projection_literature.py). The phantom defines no
177Lu-DOTATATE kinetics of its own (phantoms/_kinetics.py holds 177Lu-PSMA-617 only), so
the published doses are the only reference.

Population effective half-lives of 177Lu-DOTATATE (dosimetry/data/population_kinetics.csv)
exist for the kidneys only (Spink et al. EJNMMI Phys 2024). No liver, spleen, tumour,
whole-body or marrow value could be read in a citable source with the project's search
tools (docs/literature_doses.md, section 3), so those VOIs keep physical decay (an upper
bound the plan states in a finding and an assumption) and their agent-pair uptake relation
stays "no data" (ratio 1). The liver and spleen therefore lie far above the published
range; they are strict expected failures that turn into errors the day sourced half-lives
are added, so that this file is revisited then.
"""

from __future__ import annotations

import pytest
from _literature_ranges import organ_gy_per_gbq, patient_range

import dosimetry as ds
import phantoms
from dosimetry.workflows import pet_plan

AGENT = "Lu-177-DOTATATE"

#: organ -> (VOI whose half-life assumption is checked, expected-failure reason or None)
_NO_PRIOR = (
    "no population effective half-life of 177Lu-DOTATATE in the {organ} could be sourced "
    "(docs/literature_doses.md, section 3): the VOI keeps physical decay and uptake ratio 1 "
    "(no agent-pair relation without a T_eff), {got} Gy/GBq against {lo}-{hi}"
)
ORGANS = {
    "kidneys": ("kidney_left", None),
    # measured with LED on the seed-0 Ga-68-DOTATATE phantom: liver 2.00, spleen 5.14 Gy/GBq
    "liver": ("liver", _NO_PRIOR.format(organ="liver", got="2.00", lo="0.17", hi="0.37")),
    "spleen": ("spleen", _NO_PRIOR.format(organ="spleen", got="5.14", lo="0.90", hi="1.44")),
}


def _patient_range(organ: str) -> tuple[float, float]:
    return patient_range(AGENT, (organ,))


@pytest.fixture(scope="module")
def plan(tmp_path_factory):
    folder = tmp_path_factory.mktemp("dotatate") / "study"
    phantoms.write_pet_ct_study(folder, seed=0, tracer="Ga-68-DOTATATE")
    study = ds.load_study(folder)
    return pet_plan.run(study, therapy=AGENT, activity="7.4 GBq", method="led")


def _xfail_if_unsourced(request, organ: str) -> None:
    reason = ORGANS[organ][1]
    if reason is not None:
        request.applymarker(pytest.mark.xfail(strict=True, reason=reason))


@pytest.mark.slow
@pytest.mark.parametrize("organ", list(ORGANS))
def test_predicted_organ_dose_falls_in_the_published_range(plan, organ, request):
    _xfail_if_unsourced(request, organ)
    lo, hi = _patient_range(organ)
    got = organ_gy_per_gbq(plan, organ)
    assert lo <= got <= hi, f"{organ} {got:.3f} Gy/GBq outside {lo:.3f}-{hi:.3f}"


@pytest.mark.slow
@pytest.mark.parametrize("organ", list(ORGANS))
def test_half_life_assumption_cites_the_population_table(plan, organ, request):
    """Each organ VOI's half-life assumption names a published population value."""
    _xfail_if_unsourced(request, organ)
    voi = ORGANS[organ][0]
    found = {a.name: a for a in plan.assumptions}
    a = found.get(f"half-life {voi}")
    assert a is not None, f"no 'half-life {voi}' assumption; have {sorted(found)}"
    assert a.source.startswith("population:"), a.source
    assert "doi:" in a.source, a.source


@pytest.mark.slow
def test_kidney_half_life_is_the_spink_2024_row(plan):
    """The kidney VOIs use the one sourced DOTATATE row: 56 h (Spink et al. 2024)."""
    a = {x.name: x for x in plan.assumptions}["half-life kidney_left"]
    assert "56 h" in a.value, a.value
    assert "Spink S" in a.source and "10.1186/s40658-024-00665-9" in a.source, a.source


@pytest.mark.slow
def test_missing_kinetics_are_declared_not_hidden(plan):
    """Without a sourced whole-body half-life the plan says that the background (and the
    organs without a prior) keep physical decay: an upper bound, in a finding and an
    assumption, rather than a silent default."""
    codes = {f.code for f in plan.findings}
    assert "no_whole_body_kinetics" in codes
    assert "voi_without_kinetics" in codes
    background = {a.name: a for a in plan.assumptions}["background kinetics"]
    assert "physical decay only" in background.value
    assert "upper bound" in background.value
