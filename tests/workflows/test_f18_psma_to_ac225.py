"""¹⁸F-DCFPyL PET → ²²⁵Ac-PSMA-617 and ¹⁷⁷Lu-PSMA-617 plans from DICOM (#17 §4): the PET's
activity against the phantom's truth (¹⁸F decay law, the reader's decay correction), the
RBE-weighted outputs, and the DCFPyL uptake relations named in the assumptions."""

from __future__ import annotations

import csv

import pytest

import dosimetry as ds
import phantoms
from dosimetry.cli import EXIT_OK, main


def _table_ratio(tracer: str, organ: str) -> float:
    """The ratio of dosimetry/data/agent_uptake_relations.csv for tracer -> Lu-177-PSMA-617."""
    from importlib import resources

    text = resources.files("dosimetry").joinpath("data/agent_uptake_relations.csv").read_text()
    rows = [r for r in csv.reader(text.splitlines()) if r and not r[0].startswith("#")]
    for r in rows:
        if r[:3] == [tracer, "Lu-177-PSMA-617", organ]:
            return float(r[5])
    raise AssertionError(f"no {tracer} {organ} row")


@pytest.fixture(scope="module")
def dcfpyl(tmp_path_factory):
    folder = tmp_path_factory.mktemp("dcfpyl") / "study"
    truth = phantoms.write_pet_ct_study(folder, seed=4, tracer="F-18-DCFPyL")
    return folder, truth


@pytest.mark.slow
def test_dcfpyl_pet_plans_ac225_from_dicom(dcfpyl, tmp_path):
    folder, truth = dcfpyl
    out = tmp_path / "ac"
    argv = ["plan", str(folder), "--out", str(out), "--therapy", "[225Ac]Ac-PSMA-617"]
    assert main([*argv, "--activity", "8 MBq", "--method", "led"]) == EXIT_OK
    with (out / "dose_table.csv").open() as f:
        rows = {r["name"]: r for r in csv.DictReader(f)}
    kid = rows["kidney_left"]
    assert float(kid["mean_gy_rbe"]) > float(kid["mean_gy"]) > 0  # alpha part weighted
    assert (out / "dose_rbe.dcm").is_file()
    # the PET read back holds the phantom's activity in the field of view at the scan
    # (blur and noise conserve it; decay-corrected to the series start by the reader)
    plan = ds.workflows.pet_plan.run_folder(
        folder, therapy="Ac-225-PSMA-617", activity="8 MBq", method="led"
    )
    in_fov = truth.total_activity_in_phantom_bq - truth.activity_outside_pet_fov_bq
    assert plan.images["PET"].total() == pytest.approx(in_fov, rel=0.03)
    # the kidneys' relation is the F-18-DCFPyL row of the data table (same ligand for Ac-225)
    rel = next(a for a in plan.assumptions if a.name == "uptake relation kidney_left")
    assert f"{_table_ratio('F-18-DCFPyL', 'kidneys'):.3g} x diagnostic" in rel.value


@pytest.mark.slow
def test_dcfpyl_pet_plans_lu177_with_its_relations(dcfpyl):
    folder, _ = dcfpyl
    plan = ds.workflows.pet_plan.run_folder(
        folder, therapy="Lu-177-PSMA-617", activity="7.4 GBq", method="led"
    )
    rel = next(a for a in plan.assumptions if a.name == "uptake relation kidney_left")
    assert f"{_table_ratio('F-18-DCFPyL', 'kidneys'):.3g} x diagnostic" in rel.value
    assert plan.table.row("kidney_left").dose.mean > 0
