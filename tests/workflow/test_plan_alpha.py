"""225Ac plan: daughters in situ, physical and RBE-weighted dose, energy bookkeeping."""

from __future__ import annotations

import numpy as np
import pytest

import dosimetry as ds
import phantoms
from dosimetry.planning import plan_from_pet, write_plan


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ac225") / "study"
    phantoms.write_pet_ct_study(folder, seed=1)
    return ds.load_study(folder)


def test_ac225_led_plan_conserves_chain_energy_and_weights_alphas(study):
    plan = plan_from_pet(study, therapy="Ac-225-PSMA-617", activity="8 MBq", method="led")
    assert plan.nuclide == "Ac-225"
    assert plan.dose.unit == "Gy" and plan.dose_rbe is not None
    assert plan.dose_rbe.unit == "Gy_RBE"
    chain = ds.decay_chain("Ac-225")
    assert set(chain.members) >= {"Fr-221", "At-217", "Bi-213", "Po-213", "Tl-209", "Pb-209"}
    # independent bookkeeping: every member's locally absorbed energy per parent decay
    e_local = sum(
        chain.decays_per_parent_decay[m] * ds.nuclide(m).nonpenetrating_energy_mev()
        for m in chain.members
    )
    e_alpha = sum(
        chain.decays_per_parent_decay[m] * ds.nuclide(m).energy_per_decay_mev("alpha+recoil")
        for m in chain.members
    )
    mass_kg = plan.density.array * plan.dose.voxel_volume_ml * 1e-3
    # decays in air voxels (PET counts outside the body) get no dose: they are recorded
    air = plan.density.array < ds.parameters.get("density_air_max_g_per_ml")
    decays = float(plan.tia.array[~air].sum())
    frac = plan.dose.provenance["source_fraction_in_air"]
    assert frac == pytest.approx(float(plan.tia.array[air].sum()) / plan.tia.total(), rel=1e-9)
    deposited = float(np.sum(plan.dose.array.astype(np.float64) * mass_kg))
    assert deposited == pytest.approx(decays * e_local * ds.units.MEV_TO_J, rel=1e-6)
    # RBE weighting: alpha part x rbe_alpha, electrons x 1
    rbe = ds.parameters.get("rbe_alpha")
    weighted = float(np.sum(plan.dose_rbe.array.astype(np.float64) * mass_kg))
    expected = decays * (e_local + (rbe - 1.0) * e_alpha) * ds.units.MEV_TO_J
    assert weighted == pytest.approx(expected, rel=1e-6)
    assert any(a["name"] == "daughters" for a in plan.assumptions)
    assert any(a["name"] == "rbe_alpha" and a["value"] == rbe for a in plan.assumptions)


def test_ac225_rbe_override_and_outputs(study, tmp_path):
    plan = plan_from_pet(study, therapy="Ac-225-PSMA-617", activity="8 MBq", method="led", rbe=3.0)
    five = plan_from_pet(study, therapy="Ac-225-PSMA-617", activity="8 MBq", method="led")
    k = plan.table[[r["name"] for r in plan.table].index("kidney_left")]
    k5 = five.table[[r["name"] for r in five.table].index("kidney_left")]
    assert k["mean_gy"] == pytest.approx(k5["mean_gy"], rel=1e-12)
    assert 1.0 < k["mean_gy_rbe"] / k["mean_gy"] < k5["mean_gy_rbe"] / k5["mean_gy"] < 5.0
    files = write_plan(plan, tmp_path / "out")
    assert (tmp_path / "out" / "dose_rbe.dcm").is_file()
    back = ds.io.read_rtdose(files["RTDOSE (RBE-weighted)"])
    assert back.unit == "Gy_RBE"
    header = (tmp_path / "out" / "dose_table.csv").read_text().splitlines()[0]
    assert "mean_gy_rbe" in header


def test_cli_plan_for_ac225(study, tmp_path, capsys):
    from dosimetry.cli import main

    folder = study.folder
    rc = main(
        [
            "plan",
            str(folder),
            "--out",
            str(tmp_path / "o"),
            "--therapy",
            "Ac-225-PSMA-617",
            "--activity",
            "8 MBq",
            "--method",
            "led",
            "--rbe",
            "5",
        ]
    )
    assert rc == 0
    out = capsys.readouterr().out
    assert "8.00 MBq" in out and "Gy_RBE" in out
    assert (tmp_path / "o" / "dose_rbe.dcm").is_file()
