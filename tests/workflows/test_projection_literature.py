"""#18: the PET-based prediction of the demo patient against published 177Lu-PSMA-617 doses.

The check range of an organ is the spread between patients in the literature table
(dosimetry/data/literature_doses.csv): the envelope of each cohort's reported range or,
where a cohort reports mean and SD only, mean -/+ 1.96 SD (95 % of patients under a normal
spread). The phantom's 68Ga uptake and its 177Lu kinetics come from their own literature,
and the relations from cohort-level data, so agreement is not built in voxel by voxel.
"""

from __future__ import annotations

import pytest
from _literature_ranges import organ_gy_per_gbq, patient_range

import dosimetry as ds
import phantoms
from dosimetry.kinetics import literature_doses
from dosimetry.workflows import pet_plan

ORGANS = {  # alias-table organ of the VOIs -> literature organ
    "kidneys": "kidneys",
    "salivary_glands": "salivary_glands",
    "bone_marrow": "red_marrow",
    "liver": "liver",
}


def _patient_range(organ: str) -> tuple[float, float]:
    groups = {"salivary_glands": ("salivary_glands", "parotid_glands", "submandibular_glands")}
    return patient_range("Lu-177-PSMA-617", groups.get(organ, (organ,)))


@pytest.fixture(scope="module", params=["Ga-68-PSMA-11", "F-18-PSMA-1007"])
def prediction(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp(request.param) / "study"
    phantoms.write_pet_ct_study(folder, seed=0, tracer=request.param)
    study = ds.load_study(folder)
    with_rel = pet_plan.run(study, therapy="Lu-177-PSMA-617", activity="7.4 GBq")
    without = pet_plan.run(
        study, therapy="Lu-177-PSMA-617", activity="7.4 GBq", uptake_relations=False
    )
    return request.param, with_rel, without


@pytest.mark.slow
@pytest.mark.parametrize("organ", list(ORGANS))
def test_predicted_organ_doses_fall_in_the_published_range(prediction, organ, request):
    tracer, r, _ = prediction
    if tracer == "F-18-PSMA-1007" and organ == "liver":
        request.applymarker(
            pytest.mark.xfail(
                strict=True,
                reason="known gap: 0.114 Gy/GBq vs 0.070-0.110 (one 10-patient cohort, mean -/+ "
                "1.96 SD); 14 % of it is VSV cross-fire from the liver lesion, which the "
                "cohort's low-volume patients lack (docs/literature_doses.md)",
            )
        )
    lo, hi = _patient_range(ORGANS[organ])
    got = organ_gy_per_gbq(r, organ)
    assert lo <= got <= hi, f"{tracer}: {organ} {got:.3f} Gy/GBq outside {lo:.3f}-{hi:.3f}"
    names = {a.name for a in r.assumptions}
    assert any(n.startswith("uptake relation kidney") for n in names)


@pytest.mark.slow
def test_removing_the_relations_leaves_the_range(prediction):
    """Without the agent-pair relations (shared biodistribution) some organ leaves the
    published range: PSMA-11 kidneys, PSMA-1007 liver."""
    tracer, _, r = prediction
    outside = []
    for organ, lit in ORGANS.items():
        lo, hi = _patient_range(lit)
        got = organ_gy_per_gbq(r, organ)
        if not lo <= got <= hi:
            outside.append(organ)
    assert outside, f"{tracer}: every organ inside the range without relations"
    assert ("kidneys" if tracer == "Ga-68-PSMA-11" else "liver") in outside


def test_spleen_has_no_published_psma617_dose_in_the_table():
    """The issue lists the spleen; no cohort could be sourced, and the docs say so."""
    assert literature_doses("Lu-177-PSMA-617", "spleen") == []
