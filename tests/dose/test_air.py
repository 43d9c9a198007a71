"""Air voxels in the density-dependent methods: no dose, decays there recorded."""

from __future__ import annotations

import logging

import numpy as np
import pytest

import dosimetry as ds
from dosimetry import Volume


@pytest.fixture(autouse=True)
def _tmp_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DOSIMETRY_CACHE_DIR", str(tmp_path))


def _maps():
    tia = np.zeros((9, 9, 9))
    tia[4, 4, 4] = 1e9
    tia[4, 4, 6] = 1e7  # counts spilled into an air voxel
    rho = np.full(tia.shape, 1.04)
    rho[:, :, 6:] = 0.0012  # air (ICRU dry air density)
    sp = (4.8, 4.8, 4.8)
    return (
        Volume.from_spacing(tia, spacing_mm=sp, unit="Bq s"),
        Volume.from_spacing(rho, spacing_mm=sp, unit="g/mL"),
    )


@pytest.mark.parametrize("method", ["led", "vsv-density"])
def test_air_gets_no_dose_and_is_recorded(method, caplog):
    tia, rho = _maps()
    with caplog.at_level(logging.WARNING, logger="dosimetry.dose"):
        dose = ds.absorbed_dose(tia, "Lu-177", method=method, density=rho)
    assert np.all(dose.array[:, :, 6:] == 0.0)
    assert dose.array[4, 4, 4] > 0
    prov = dose.provenance
    assert prov["air_voxels"] == 9 * 9 * 3
    assert prov["source_fraction_in_air"] == pytest.approx(1e7 / (1e9 + 1e7), rel=1e-12)
    assert "air voxels" in caplog.text  # 1 % of the decays: warned


def test_air_threshold_is_a_parameter():
    """With the threshold at 0 the air voxels get energy / (air mass): the divergence the
    convention avoids (LED: 1.04 / 0.0012 ~ 870 times the tissue dose per decay)."""
    tia, rho = _maps()
    with ds.parameters.override(density_air_max_g_per_ml=0.0):
        dose = ds.absorbed_dose(tia, "Lu-177", method="led", density=rho)
    per_decay_air = dose.array[4, 4, 6] / 1e7
    per_decay_tissue = dose.array[4, 4, 4] / 1e9
    assert per_decay_air / per_decay_tissue == pytest.approx(1.04 / 0.0012, rel=1e-9)
    assert dose.provenance["air_voxels"] == 0


def test_homogeneous_methods_are_unaffected():
    tia, _ = _maps()
    dose = ds.absorbed_dose(tia, "Lu-177", method="led")
    assert dose.array[4, 4, 6] > 0 and "air_voxels" not in dose.provenance
