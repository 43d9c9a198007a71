"""VSV and density-corrected VSV dose: conservation laws, analytic cases, alpha handling.

Kernels are built here straight from tests/data/lanconelli2012_vsv.csv (Lanconelli et al.
Phys Med Biol 2012;57:517-533) or are synthetic, so the engine is checked independently of
the kernel library.
"""

from __future__ import annotations

import csv
from functools import cache
from itertools import permutations, product
from pathlib import Path

import numpy as np
import pytest

from dosimetry import GeometryMismatchError, InputDataError, KernelError, Volume
from dosimetry.dose import absorbed_dose, dose_rate
from dosimetry.kernels import Kernel

DATA = Path(__file__).resolve().parents[1] / "data"
MEV_J = 1.602176634e-13


@cache
def lanconelli_kernel(nuclide: str, voxel: str, tissue: str = "soft") -> Kernel:
    """11^3 kernel (Gy/(Bq s)) unfolded from the published octant (mGy/(MBq s) = 1e-9)."""
    with open(DATA / "lanconelli2012_vsv.csv", encoding="utf-8") as fh:
        rows = csv.DictReader(line for line in fh if not line.startswith("#"))
        octant = np.zeros((6, 6, 6))
        for r in rows:
            if (r["nuclide"], r["voxel_mm"], r["tissue"]) == (nuclide, voxel, tissue):
                octant[int(r["i"]), int(r["j"]), int(r["k"])] = float(r["S_mGy_per_MBq_s"]) * 1e-9
    assert octant[0, 0, 0] > 0
    full = np.zeros((11, 11, 11))
    for a, b, c in product(range(-5, 6), repeat=3):
        full[a + 5, b + 5, c + 5] = octant[abs(a), abs(b), abs(c)]
    name = {"177Lu": "Lu-177", "90Y": "Y-90", "131I": "I-131"}[nuclide]
    v = float(voxel)
    return Kernel(full, (v, v, v), name, "soft tissue", 1.04, 5 * v, 1.0, source="test-csv")


def _uniform_sphere(n: int, radius_vox: float, value: float) -> np.ndarray:
    c = (n - 1) / 2
    k, j, i = np.ogrid[:n, :n, :n]
    return np.where((k - c) ** 2 + (j - c) ** 2 + (i - c) ** 2 <= radius_vox**2, value, 0.0)


def test_kernel_octant_symmetry_of_table():
    k = lanconelli_kernel("177Lu", "4.80").array
    for p in permutations(range(3)):
        np.testing.assert_array_equal(k, np.transpose(k, p))


@pytest.mark.parametrize("path", ["direct", "fft"])
def test_single_source_voxel_gives_the_kernel(path):
    kern = lanconelli_kernel("177Lu", "4.80")
    a = np.zeros((15, 15, 15))
    a[0, 7, 14] = 1e9  # at a border: kernel cropped, not wrapped
    tia = Volume.from_spacing(a, (4.8, 4.8, 4.8), unit="Bq s")
    d = absorbed_dose(tia, "Lu-177", method="vsv", kernel=kern, path=path)
    expected = np.zeros_like(a)
    expected[0:6, 2:13, 9:15] = 1e9 * kern.array[5:, :, :6]
    np.testing.assert_allclose(d.array, expected, rtol=1e-10, atol=1e-13 * expected.max())
    assert d.provenance["kernel"]["sha256"] == kern.sha256
    assert d.provenance["convolution_path"] == path
    assert d.provenance["method"] == "vsv"


def test_energy_conservation_sources_inside():
    """Sum(dose x mass) = sum(TIA) x sum(kernel x mass) when no kernel reaches the border."""
    kern = lanconelli_kernel("177Lu", "4.80")
    rng = np.random.default_rng(0)
    a = np.zeros((24, 26, 28))
    a[5:-5, 5:-5, 5:-5] = rng.gamma(2, 1e8, size=(14, 16, 18))
    tia = Volume.from_spacing(a, (4.8, 4.8, 4.8), unit="Bq s")
    d = absorbed_dose(tia, "Lu-177", method="vsv", kernel=kern)
    m = 1.04e-3 * tia.voxel_volume_ml
    assert float(np.sum(d.array) * m) == pytest.approx(
        float(a.sum()) * float(kern.array.sum()) * m, rel=1e-10
    )


@pytest.mark.validation
def test_large_uniform_region_dose_equals_absorbed_energy_over_mass():
    # Y-90 (pure beta- emitter) at 4.8 mm: a uniform region larger than kernel + range.
    # Central dose = A E_absorbed / m with E_absorbed the ICRP-107 electron energy
    # (0.933106 MeV, tests/data/icrp107_energy_per_decay.csv): the LED dose of the
    # non-penetrating part. Tolerance 1 %: Monte Carlo kernel vs ICRP-107 spectrum.
    kern = lanconelli_kernel("90Y", "4.80")
    a = _uniform_sphere(25, 11.0, 1e9)
    tia = Volume.from_spacing(a, (4.8, 4.8, 4.8), unit="Bq s")
    vsv = absorbed_dose(tia, "Y-90", method="vsv", kernel=kern)
    led = absorbed_dose(tia, "Y-90", method="led")
    centre = vsv.array[12, 12, 12]
    m_kg = 1.04e-3 * tia.voxel_volume_ml
    assert centre == pytest.approx(1e9 * 0.933106 * MEV_J / m_kg, rel=0.01)
    assert centre == pytest.approx(led.array[12, 12, 12], rel=0.01)
    # and every voxel whose whole kernel cube (corner reach 5 sqrt 3 = 8.7 voxels) lies
    # inside the sphere sees the same dose
    core = vsv.array[10:15, 10:15, 10:15][_uniform_sphere(5, 2.0, 1.0) > 0]
    np.testing.assert_allclose(core, centre, rtol=1e-12)


@pytest.mark.validation
def test_lu177_uniform_region_between_beta_and_beta_plus_photon_led():
    # Lu-177 kernel holds the beta energy plus the photon energy absorbed within 26 mm.
    kern = lanconelli_kernel("177Lu", "4.80")
    a = _uniform_sphere(25, 11.0, 1e9)
    tia = Volume.from_spacing(a, (4.8, 4.8, 4.8), unit="Bq s")
    centre = absorbed_dose(tia, "Lu-177", method="vsv", kernel=kern).array[12, 12, 12]
    m_kg = 1.04e-3 * tia.voxel_volume_ml
    e_beta, e_photon = 0.133270, 0.035098  # ICRP-107 sums (tests/data)
    assert 1e9 * e_beta * MEV_J / m_kg < centre < 1e9 * (e_beta + e_photon) * MEV_J / m_kg


def test_float32_and_dose_rate():
    kern = lanconelli_kernel("177Lu", "4.80")
    a = _uniform_sphere(15, 5.0, 1e6)
    d64 = dose_rate(Volume.from_spacing(a, (4.8,) * 3, unit="Bq"), "Lu-177", "vsv", kernel=kern)
    d32 = dose_rate(
        Volume.from_spacing(a, (4.8,) * 3, unit="Bq"),
        "Lu-177",
        "vsv",
        kernel=kern,
        dtype="float32",
        path="fft",
    )
    assert d64.unit == "Gy/s" and d32.array.dtype == np.float32
    assert np.abs(d32.array - d64.array).max() <= 1e-6 * d64.array.max()


def test_kernel_geometry_and_identity_checks():
    kern = lanconelli_kernel("177Lu", "4.80")
    tia = Volume.from_spacing(np.ones((5, 5, 5)), (4.42, 4.42, 4.42), unit="Bq s")
    with pytest.raises(GeometryMismatchError, match="voxel_mm"):
        absorbed_dose(tia, "Lu-177", method="vsv", kernel=kern)
    tia48 = Volume.from_spacing(np.ones((5, 5, 5)), (4.8, 4.8, 4.8), unit="Bq s")
    with pytest.raises(KernelError, match="Lu-177"):
        absorbed_dose(tia48, "Y-90", method="vsv", kernel=kern)
    with pytest.raises(InputDataError, match="vsv-density"):
        absorbed_dose(
            tia48,
            "Lu-177",
            method="vsv",
            kernel=kern,
            density=tia48.with_array(np.ones((5, 5, 5)), unit="g/mL"),
        )
    with pytest.raises(InputDataError, match="density"):
        absorbed_dose(tia48, "Lu-177", method="vsv-density", kernel=kern)
    with pytest.raises(InputDataError, match="led"):
        absorbed_dose(tia48, "Lu-177", method="led", kernel=kern)


# ---- density correction ------------------------------------------------------------
def test_vsv_density_reference_density_equals_vsv():
    kern = lanconelli_kernel("177Lu", "4.80")
    a = _uniform_sphere(13, 4.0, 1e8)
    tia = Volume.from_spacing(a, (4.8,) * 3, unit="Bq s")
    rho = tia.with_array(np.full(a.shape, 1.04), unit="g/mL")
    hom = absorbed_dose(tia, "Lu-177", method="vsv", kernel=kern)
    den = absorbed_dose(tia, "Lu-177", method="vsv-density", kernel=kern, density=rho)
    np.testing.assert_allclose(den.array, hom.array, rtol=1e-12)
    assert den.provenance["kernels"]["soft tissue"]["sha256"] == kern.sha256


def test_vsv_density_scales_by_rho_ratio_and_selects_class_kernel():
    soft = lanconelli_kernel("177Lu", "4.80")
    lung_arr = soft.array * 0.5
    lung = Kernel(lung_arr, soft.voxel_mm, "Lu-177", "lung", 0.3, soft.radius_mm, 1.0)
    bone = Kernel(soft.array * 0.25, soft.voxel_mm, "Lu-177", "bone", 1.92, soft.radius_mm, 1.0)
    a = _uniform_sphere(13, 4.0, 1e8)
    rho_arr = np.full(a.shape, 1.04)
    rho_arr[:, :, :4] = 0.25  # lung slab (class by density < 0.6 g/mL)
    rho_arr[:, :, 10:] = 1.5  # bone slab (>= 1.3 g/mL)
    rho_arr[0, 0, 5] = 0.9  # soft tissue below the reference density
    tia = Volume.from_spacing(a, (4.8,) * 3, unit="Bq s")
    rho = tia.with_array(rho_arr, unit="g/mL")
    d = absorbed_dose(
        tia,
        "Lu-177",
        method="vsv-density",
        kernel={"lung": lung, "soft tissue": soft, "bone": bone},
        density=rho,
    )
    hom = absorbed_dose(tia, "Lu-177", method="vsv", kernel=soft).array
    exp = hom * 1.04 / rho_arr
    exp[:, :, :4] = (0.5 * hom * 0.3 / rho_arr)[:, :, :4]
    exp[:, :, 10:] = (0.25 * hom * 1.92 / rho_arr)[:, :, 10:]
    np.testing.assert_allclose(d.array, exp, rtol=1e-10)
    assert set(d.provenance["kernels"]) == {"lung", "soft tissue", "bone"}
    with pytest.raises(KernelError, match="no .lung. entry"):
        absorbed_dose(
            tia, "Lu-177", method="vsv-density", kernel={"soft tissue": soft}, density=rho
        )


# ---- alpha emitters ------------------------------------------------------------------
def _ac225_kernel(voxel: float) -> Kernel:
    rng = np.random.default_rng(3)
    el = rng.random((5, 5, 5)) * 1e-12
    for ax in range(3):
        el = el + np.flip(el, axis=ax)
    alpha = np.zeros((5, 5, 5))
    alpha[2, 2, 2] = 7e-10
    return Kernel(
        el + alpha,
        (voxel,) * 3,
        "Ac-225",
        "soft tissue",
        1.04,
        2 * voxel,
        1.0,
        components={"electron": el, "alpha": alpha},
        source="synthetic",
    )


def test_alpha_part_local_and_rbe_weighted():
    kern = _ac225_kernel(2.0)
    el = kern.components["electron"]
    rng = np.random.default_rng(5)
    a = np.zeros((9, 10, 11))
    a[2:7, 3:8, 3:9] = rng.gamma(2, 1e6, size=(5, 5, 6))
    tia = Volume.from_spacing(a, (2.0,) * 3, unit="Bq s")
    from scipy import signal

    conv_el = signal.convolve(a, el, mode="same", method="direct")
    m_kg = 1.04e-3 * tia.voxel_volume_ml
    e_alpha = (5.787177 + 0.104813) * MEV_J  # Ac-225 alone, ICRP-107 (tests/data)
    phys = absorbed_dose(tia, "Ac-225", method="vsv", kernel=kern)
    np.testing.assert_allclose(phys.array, conv_el + a * e_alpha / m_kg, rtol=1e-5)
    rbe = absorbed_dose(tia, "Ac-225", method="vsv", kernel=kern, weighting="rbe", rbe=4.0)
    assert rbe.unit == "Gy_RBE"
    np.testing.assert_allclose(rbe.array, conv_el + 4.0 * a * e_alpha / m_kg, rtol=1e-5)
    assert phys.provenance["kernel"]["components_removed"] == ["alpha"]


def test_alpha_emitter_kernel_without_components_refused():
    kern = _ac225_kernel(2.0)
    bare = Kernel(kern.array, kern.voxel_mm, "Ac-225", "soft tissue", 1.04, 4.0, 1.0)
    tia = Volume.from_spacing(np.ones((5, 5, 5)), (2.0,) * 3, unit="Bq s")
    with pytest.raises(KernelError, match="components"):
        absorbed_dose(tia, "Ac-225", method="vsv", kernel=bare)
    lu = lanconelli_kernel("177Lu", "4.80")
    tia48 = Volume.from_spacing(np.ones((5, 5, 5)), (4.8,) * 3, unit="Bq s")
    with pytest.raises(KernelError, match="include_photons"):
        absorbed_dose(tia48, "Lu-177", method="vsv", kernel=lu, include_photons=False)


def test_overflow_after_the_convolution_is_refused():
    # float32 dose whose alpha term (added after the engine's checked convolution)
    # overflows, through a kernel medium of absurdly low density (tiny voxel mass): the
    # final check still catches it
    k = _ac225_kernel(2.0)
    thin = Kernel(
        k.array, k.voxel_mm, "Ac-225", "soft tissue", 1e-36, 4.0, 1.0,
        components=dict(k.components), source="synthetic",
    )  # fmt: skip
    a = np.zeros((7, 7, 7))
    a[3, 3, 3] = 1e10
    tia = Volume.from_spacing(a, (2.0,) * 3, unit="Bq s")
    with pytest.raises(InputDataError, match="non-finite"), np.errstate(over="ignore"):
        absorbed_dose(tia, "Ac-225", method="vsv", kernel=thin, dtype="float32")
