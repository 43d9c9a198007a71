"""Local energy deposition: energy conservation and hand calculations from ICRP-107 sums.

The reference energies come from tests/data/icrp107_energy_per_decay.csv (ICRP-107 sums
prepared independently of the package code; see tests/data/SOURCES.md).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from dosimetry import GeometryMismatchError, InputDataError, UnitError, Volume
from dosimetry import nuclide as nuclide_data
from dosimetry.dose import absorbed_dose, dose_rate

DATA = Path(__file__).resolve().parents[1] / "data"
MEV_J = 1.602176634e-13  # CODATA 2018 exact eV definition


def _icrp107() -> dict[str, dict[str, str]]:
    with open(DATA / "icrp107_energy_per_decay.csv", encoding="utf-8") as fh:
        rows = [line for line in fh if not line.startswith("#")]
    return {r["nuclide"]: r for r in csv.DictReader(rows)}


REF = _icrp107()


def _nonpen_mev(name: str) -> float:
    r = REF[name]
    return (
        float(r["E_electron_total_MeV"]) + float(r["E_alpha_MeV"]) + float(r["E_alpha_recoil_MeV"])
    )


def _blob_tia(shape=(12, 14, 16), seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    a = rng.gamma(2.0, 1e8, size=shape)
    a[rng.random(shape) < 0.7] = 0.0
    return a


@pytest.mark.parametrize("nuclide", ["Lu-177", "Y-90", "Tb-161", "I-131"])
def test_led_energy_conservation_default_density(nuclide):
    tia_arr = _blob_tia()
    tia = Volume.from_spacing(tia_arr, (3.0, 4.42, 4.42), unit="Bq s")
    dose = absorbed_dose(tia, nuclide, method="led")
    assert dose.unit == "Gy" and dose.shape == tia.shape
    mass_kg = 1.04e-3 * tia.voxel_volume_ml  # ICRP-23 soft tissue 1.04 g/mL
    deposited_j = float(np.sum(dose.array * mass_kg))
    # conservation: sum(dose x mass) == sum(TIA x energy absorbed locally)
    e_local_mev = nuclide_data(nuclide).nonpenetrating_energy_mev()
    assert deposited_j == pytest.approx(float(tia_arr.sum()) * e_local_mev * MEV_J, rel=1e-6)
    # and that energy is ICRP-107's (independent sums, rounded to 1e-6 MeV)
    emitted_j = float(tia_arr.sum()) * _nonpen_mev(nuclide) * MEV_J
    assert deposited_j == pytest.approx(emitted_j, rel=1e-5)


def test_led_energy_conservation_with_density_map_and_photons():
    tia_arr = _blob_tia(seed=3)
    rng = np.random.default_rng(4)
    rho = rng.uniform(0.2, 1.9, size=tia_arr.shape)
    tia = Volume.from_spacing(tia_arr, (4.8, 4.8, 4.8), unit="Bq s")
    density = tia.with_array(rho, unit="g/mL")
    r = REF["I-131"]
    e_photon = float(r["E_photon_total_MeV"])
    for f in (False, True, 0.25):
        dose = absorbed_dose(tia, "I-131", density=density, include_photons=f)
        mass_kg = rho * 1e-3 * tia.voxel_volume_ml
        deposited = float(np.sum(dose.array * mass_kg))
        e_local = _nonpen_mev("I-131") + float(f) * e_photon
        assert deposited == pytest.approx(float(tia_arr.sum()) * e_local * MEV_J, rel=1e-5)
        n = nuclide_data("I-131")
        e_exact = n.nonpenetrating_energy_mev() + float(f) * n.energy_per_decay_mev("photon")
        assert deposited == pytest.approx(float(tia_arr.sum()) * e_exact * MEV_J, rel=1e-6)
        # voxel-wise: D = A~ E / m
        nz = tia_arr > 0
        np.testing.assert_allclose(
            dose.array[nz], tia_arr[nz] * e_exact * MEV_J / mass_kg[nz], rtol=1e-10
        )
        assert np.all(dose.array[~nz] == 0.0)


def test_led_lu177_hand_value():
    # 1 GBq h in a 4.8 mm cube of soft tissue: D = 3.6e12 * 0.147923 MeV / m
    tia = Volume.from_spacing(np.full((1, 1, 1), 3.6e12), (4.8, 4.8, 4.8), unit="Bq s")
    m_kg = 1.04 * 4.8**3 * 1e-3 * 1e-3
    expected = 3.6e12 * 0.147923 * MEV_J / m_kg
    got = float(absorbed_dose(tia, "177Lu").array[0, 0, 0])
    assert got == pytest.approx(expected, rel=1e-5)  # CSV rounded to 1e-6 MeV


def test_ac225_chain_alpha_rbe_weighting():
    tia_arr = _blob_tia(shape=(4, 5, 6), seed=8)
    tia = Volume.from_spacing(tia_arr, (2.0, 2.0, 2.0), unit="Bq s")
    chain = {  # members per parent decay (in-situ equilibrium), branching from the CSV
        "Ac-225": 1.0,
        "Fr-221": 1.0,
        "At-217": 1.0,
        "Bi-213": 0.99988,
        "Po-213": 0.99988 * 0.9791,
        "Tl-209": 0.99988 * 0.0209,
        "Pb-209": 0.99988,
    }
    e_alpha = sum(
        w * (float(REF[n]["E_alpha_MeV"]) + float(REF[n]["E_alpha_recoil_MeV"]))
        for n, w in chain.items()
    )
    e_el = sum(w * float(REF[n]["E_electron_total_MeV"]) for n, w in chain.items())
    m_kg = 1.04e-3 * tia.voxel_volume_ml
    phys = absorbed_dose(tia, "Ac-225", chain=True)
    rbe5 = absorbed_dose(tia, "Ac-225", chain=True, weighting="rbe")
    rbe3 = absorbed_dose(tia, "Ac-225", chain=True, weighting="rbe", rbe=3.0)
    assert rbe5.unit == "Gy_RBE" and phys.unit == "Gy"
    np.testing.assert_allclose(phys.array, tia_arr * (e_alpha + e_el) * MEV_J / m_kg, rtol=1e-5)
    np.testing.assert_allclose(
        rbe5.array, tia_arr * (5.0 * e_alpha + e_el) * MEV_J / m_kg, rtol=1e-5
    )
    np.testing.assert_allclose(
        rbe3.array, tia_arr * (3.0 * e_alpha + e_el) * MEV_J / m_kg, rtol=1e-5
    )
    assert rbe5.provenance["rbe_alpha"] == 5.0
    # without the chain only Ac-225 itself counts
    alone = absorbed_dose(tia, "Ac-225")
    e_alone = _nonpen_mev("Ac-225")
    np.testing.assert_allclose(alone.array, tia_arr * e_alone * MEV_J / m_kg, rtol=1e-5)


def test_per_administered_activity_and_dose_rate_units():
    arr = _blob_tia(shape=(3, 3, 3), seed=1)
    per_bq = absorbed_dose(Volume.from_spacing(arr * 1e-9, (4, 4, 4), unit="Bq s/Bq"), "Lu-177")
    assert per_bq.unit == "Gy/Bq"
    rate = dose_rate(Volume.from_spacing(arr, (4, 4, 4), unit="Bq"), "Lu-177")
    full = absorbed_dose(Volume.from_spacing(arr, (4, 4, 4), unit="Bq s"), "Lu-177")
    assert rate.unit == "Gy/s"
    np.testing.assert_allclose(rate.array, full.array, rtol=1e-12)
    np.testing.assert_allclose(per_bq.array * 1e9, full.array, rtol=1e-12)


def test_provenance_records_method_and_energies():
    tia = Volume.from_spacing(_blob_tia(shape=(3, 3, 3)), (4, 4, 4), unit="Bq s")
    p = absorbed_dose(tia, "Lu-177").provenance
    assert p["method"] == "led" and p["nuclide"] == "Lu-177"
    assert p["energy_absorbed_locally_mev"] == pytest.approx(0.147923, rel=1e-5)
    assert p["density_g_per_ml"] == 1.04


def test_input_not_modified():
    arr = _blob_tia(shape=(3, 4, 5))
    copy = arr.copy()
    tia = Volume.from_spacing(arr, (4, 4, 4), unit="Bq s")
    absorbed_dose(tia, "Lu-177")
    np.testing.assert_array_equal(arr, copy)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -1.0])
def test_bad_values_refused(bad):
    arr = np.ones((3, 3, 3))
    arr[1, 2, 0] = bad
    tia = Volume.from_spacing(arr, (4, 4, 4), unit="Bq s")
    with pytest.raises(InputDataError, match=r"\(first at index \(1, 2, 0\)\)|index \(1, 2, 0\)"):
        absorbed_dose(tia, "Lu-177")


def test_wrong_units_and_arguments_refused():
    arr = np.ones((3, 3, 3))
    with pytest.raises(UnitError, match="dose_rate"):
        absorbed_dose(Volume.from_spacing(arr, (4, 4, 4), unit="Bq"), "Lu-177")
    with pytest.raises(UnitError, match="voxel_volume_ml"):
        dose_rate(Volume.from_spacing(arr, (4, 4, 4), unit="Bq/mL"), "Lu-177")
    tia = Volume.from_spacing(arr, (4, 4, 4), unit="Bq s")
    with pytest.raises(InputDataError, match="method"):
        absorbed_dose(tia, "Lu-177", method="gate")  # type: ignore[arg-type]
    with pytest.raises(InputDataError, match="include_photons"):
        absorbed_dose(tia, "Lu-177", include_photons=1.5)
    with pytest.raises(UnitError, match="rbe"):
        absorbed_dose(tia.with_array(arr, unit="Bq s/Bq"), "Ac-225", weighting="rbe")


def test_density_checks():
    arr = np.ones((3, 3, 3))
    tia = Volume.from_spacing(arr, (4, 4, 4), unit="Bq s")
    with pytest.raises(UnitError, match="g/mL"):
        absorbed_dose(tia, "Lu-177", density=tia.with_array(arr, unit="HU"))
    with pytest.raises(InputDataError, match="> 0"):
        absorbed_dose(tia, "Lu-177", density=tia.with_array(np.zeros((3, 3, 3)), unit="g/mL"))
    other = Volume.from_spacing(arr, (4, 4, 5), unit="g/mL")
    with pytest.raises(GeometryMismatchError):
        absorbed_dose(tia, "Lu-177", density=other)
    shifted = Volume.from_spacing(arr, (4, 4, 4), (1.0, 0.0, 0.0), unit="g/mL")
    with pytest.raises(GeometryMismatchError):
        absorbed_dose(tia, "Lu-177", density=shifted)
