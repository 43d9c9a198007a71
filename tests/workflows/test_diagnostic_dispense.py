"""Diagnostic dose (ICRP coefficients + voxel estimate) and dispensing, from DICOM / the
prescription, against independent numbers (ICRP 106/128 table value, the decay law)."""

from __future__ import annotations

import csv
import json
import math
from datetime import datetime

import numpy as np
import pytest

import dosimetry as ds
import phantoms
from dosimetry.cli import EXIT_OK, main
from dosimetry.workflows import diagnostic


@pytest.fixture(scope="module")
def fdg(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fdg") / "study"
    truth = phantoms.write_pet_ct_study(folder, seed=1, tracer="F-18-FDG")
    return folder, truth


def test_diagnostic_dose_cli_writes_the_icrp_effective_dose(fdg, tmp_path, capsys):
    folder, truth = fdg
    out = tmp_path / "out"
    assert main(["diagnostic-dose", str(folder), "--out", str(out), "--method", "led"]) == EXIT_OK
    with (out / "diagnostic_dose.csv").open() as f:
        rows = {r["quantity"]: r for r in csv.DictReader(f)}
    # ICRP Publication 106 (compiled in ICRP 128): adult 18F-FDG effective dose 0.019 mSv/MBq
    expected = 0.019 * truth.injected_activity_bq / 1e6
    assert float(rows["effective_dose_msv"]["value"]) == pytest.approx(expected, rel=1e-6)
    assert rows["effective_dose_msv"]["age_group"] == "adult"
    assert "reference person" in capsys.readouterr().out


def test_voxel_estimate_counts_uptake_and_post_scan_decays(fdg):
    """LED: sum(dose x mass) = sum(TIA) x locally absorbed F-18 energy, with
    TIA = A (t/2 + 1/lambda) (linear uptake, then physical decay) per voxel."""
    folder, _ = fdg
    r = diagnostic.run(ds.load_study(folder), method="led")
    pet = r.reference
    act = pet.activity_at_acquisition()
    t = (act.reference_time - pet.injection_time).total_seconds()
    lam = math.log(2) / ds.nuclide("F-18").half_life_s
    a = act.array.astype(np.float64) * act.voxel_volume_ml
    np.testing.assert_allclose(r.tia.array, a * (t / 2 + 1 / lam), rtol=1e-12)
    mass = r.density.array * r.dose.voxel_volume_ml * 1e-3
    air = r.density.array < ds.parameters.get("density_air_max_g_per_ml")
    e = ds.nuclide("F-18").nonpenetrating_energy_mev() * ds.units.MEV_TO_J
    assert float(np.sum(r.dose.array * mass)) == pytest.approx(
        float(r.tia.array[~air].sum()) * e, rel=1e-6
    )


def test_age_from_header():
    when = datetime(2026, 6, 1)
    assert diagnostic.age_from_header({"age": "010Y"}, when) == 10.0
    assert diagnostic.age_from_header({"age": "006M"}, when) == pytest.approx(0.5)
    assert diagnostic.age_from_header({"birth_date": "20160601"}, when) == pytest.approx(
        10.0, abs=0.01
    )
    assert diagnostic.age_from_header({}, when) is None


def test_dispense_cli_follows_the_decay_law(capsys):
    rc = main(
        [
            "dispense",
            "Lu-177",
            "7.4 GBq",
            "--injection",
            "2026-12-08 10:00",
            "--draw",
            "2026-12-07 10:00",
            "--json",
        ]
    )
    assert rc == EXIT_OK
    doc = json.loads(capsys.readouterr().out)
    t_half_s = 6.647 * 86400.0  # ICRP-107 Lu-177
    expect = 7.4e9 * 2.0 ** (86400.0 / t_half_s)
    assert doc["draw_activity_bq"] == pytest.approx(expect, rel=1e-4)
    assert doc["calibrator_reading_bq"] == pytest.approx(doc["draw_activity_bq"], rel=1e-12)
    assert (
        main(
            [
                "dispense",
                "F-18",
                "300 MBq",
                "--injection",
                "2026-12-08 10:00",
                "--draw",
                "2026-12-08 08:10",
            ]
        )
        == EXIT_OK
    )
    text = capsys.readouterr().out
    assert text.startswith("draw ") and "MBq of F-18" in text


def test_dispense_refuses_a_draw_after_injection(capsys):
    rc = main(
        [
            "dispense",
            "Ga-68",
            "150 MBq",
            "--injection",
            "2026-12-08 10:00",
            "--draw",
            "2026-12-08 11:00",
        ]
    )
    assert rc == 2 and "after" in capsys.readouterr().err
