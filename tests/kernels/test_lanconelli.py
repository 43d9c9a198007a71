"""The published Lanconelli 2012 VSV tables served as kernels."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

import dosimetry as ds
from dosimetry.errors import KernelError, NuclideError
from dosimetry.kernels import lanconelli_available, lanconelli_kernel

DATA = Path(__file__).resolve().parents[1] / "data"


def _test_copy() -> dict[tuple[str, str, str], np.ndarray]:
    """Independent reader of tests/data/lanconelli2012_vsv.csv (the reference copy)."""
    out: dict[tuple[str, str, str], np.ndarray] = {}
    with open(DATA / "lanconelli2012_vsv.csv", encoding="utf-8") as fh:
        rows = csv.reader(ln for ln in fh if not ln.startswith("#"))
        next(rows)
        for nuc, v, t, i, j, k, s in rows:
            out.setdefault((nuc, v, t), np.zeros((6, 6, 6)))[int(i), int(j), int(k)] = float(s)
    return out


REF = _test_copy()
NAMES = {
    "89Sr": "Sr-89",
    "90Y": "Y-90",
    "131I": "I-131",
    "153Sm": "Sm-153",
    "177Lu": "Lu-177",
    "186Re": "Re-186",
    "188Re": "Re-188",
}


def test_available_is_7_nuclides_13_sizes():
    avail = lanconelli_available()
    assert sorted(avail) == sorted(NAMES.values())
    assert all(len(v) == 13 for v in avail.values())
    assert avail["Y-90"][0] == 2.21 and avail["Y-90"][-1] == 9.28


@pytest.mark.parametrize("key", sorted(REF))
def test_every_published_value_is_served_by_reflection(key):
    nuc, v, t = key
    medium = "soft tissue" if t == "soft" else "bone"
    k = ds.vsv_kernel(NAMES[nuc], float(v), medium=medium, source="lanconelli2012")
    assert k.shape == (11, 11, 11)
    octant = REF[key] * 1e-9  # mGy/(MBq s) -> Gy/(Bq s)
    a = k.array
    for si in (1, -1):
        for sj in (1, -1):
            for sk in (1, -1):
                sub = a[5::si, 5::sj, 5::sk]
                np.testing.assert_allclose(sub, octant, rtol=1e-12)  # exact copy


def test_kernel_metadata_and_units():
    k = lanconelli_kernel("Lu177", (4.8, 4.8, 4.8))
    assert k.nuclide == "Lu-177" and k.medium == "soft tissue"
    assert k.density_g_per_ml == pytest.approx(1.04)
    assert k.voxel_mm == (4.8, 4.8, 4.8)
    assert k.source == "lanconelli2012" and "Phys Med Biol" in k.metadata["citation"]
    # published self value 0.178 mGy/(MBq s)
    assert k.array[5, 5, 5] == pytest.approx(0.178e-9, rel=1e-12)
    kb = lanconelli_kernel("Lu-177", 4.8, medium="compact bone")
    assert kb.density_g_per_ml == pytest.approx(1.85)
    assert kb.array[5, 5, 5] == pytest.approx(0.104e-9, rel=1e-12)


@pytest.mark.parametrize(("medium", "rho"), [("soft tissue", 1.04), ("bone", 1.85)])
def test_table_density_consistent_with_beta_energy(medium, rho):
    """Sr-89 is a pure beta emitter (mean 0.587 MeV, range << 5 voxels of 9.28 mm): the
    sum of the published kernel x voxel volume x density must equal its ICRP-107 beta
    energy per decay. This checks the densities against the table itself."""
    k = lanconelli_kernel("Sr-89", 9.28, medium=medium)
    e_beta_j = ds.nuclide("Sr-89").energy_per_decay_j("beta-")
    vol_ml = 0.928**3
    implied_rho = e_beta_j / (k.array.sum() * vol_ml * 1e-3)
    assert implied_rho == pytest.approx(rho, rel=0.01)  # vs Lanconelli 2012 media
    assert k.energy_fraction == pytest.approx(1.0, abs=0.01)


def test_energy_fraction_shows_photon_escape():
    # I-131 emits 0.38 MeV of photons per decay, most of which escapes the 11^3 cube.
    i131 = lanconelli_kernel("I-131", 4.8)
    y90 = lanconelli_kernel("Y-90", 4.8)
    assert 0.3 < i131.energy_fraction < 0.6
    assert y90.energy_fraction == pytest.approx(1.0, abs=0.01)
    assert "conversion and Auger" in i131.metadata["note"]


def test_radius_crops_and_keeps_fraction_honest():
    full = lanconelli_kernel("Y-90", 3.0)
    cropped = lanconelli_kernel("Y-90", 3.0, radius_mm=6.0)
    assert cropped.radius_mm == 6.0
    assert cropped.array[5, 5, 5] == full.array[5, 5, 5]
    assert cropped.array[5, 5, 7] == full.array[5, 5, 7]  # 6 mm: kept
    assert cropped.array[5, 6, 7] == 0.0  # 6.7 mm: dropped
    assert cropped.energy_fraction < full.energy_fraction
    with pytest.raises(KernelError, match="published extent"):
        lanconelli_kernel("Y-90", 3.0, radius_mm=16.0)
    with pytest.raises(KernelError, match="positive"):
        lanconelli_kernel("Y-90", 3.0, radius_mm=-1.0)


def test_errors_list_what_is_available():
    with pytest.raises(KernelError, match=r"2\.21, 2\.33"):
        lanconelli_kernel("Lu-177", 4.7)
    with pytest.raises(KernelError, match="Sr-89"):
        lanconelli_kernel("Ga-68", 4.8)
    with pytest.raises(KernelError, match="cubic"):
        lanconelli_kernel("Lu-177", (4.8, 4.8, 3.0))
    with pytest.raises(KernelError, match="soft tissue"):
        lanconelli_kernel("Lu-177", 4.8, medium="lung")
    with pytest.raises(KernelError, match="positive"):
        lanconelli_kernel("Lu-177", float("nan"))
    with pytest.raises(NuclideError):
        lanconelli_kernel("Xx-999", 4.8)
    with pytest.raises(KernelError, match="chain"):
        ds.vsv_kernel("Lu-177", 4.8, chain=True, source="lanconelli2012")
    with pytest.raises(KernelError, match="exclude"):
        ds.vsv_kernel("Lu-177", 4.8, exclude=("IE",), source="lanconelli2012")
    with pytest.raises(KernelError, match="unknown"):
        ds.vsv_kernel("Lu-177", 4.8, source="mird")


def test_kernel_is_read_only_and_hashed():
    k = lanconelli_kernel("Re-188", 6.0)
    with pytest.raises(ValueError, match="read-only"):
        k.array[0, 0, 0] = 1.0
    assert k.sha256 == lanconelli_kernel("Re-188", 6.0).sha256
    assert k.sha256 != lanconelli_kernel("Re-188", 6.0, medium="bone").sha256
