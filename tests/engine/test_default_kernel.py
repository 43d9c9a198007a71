"""The engine with the library's default kernel (photon tail, issue 19): a kernel larger
than the map, against scipy.signal.fftconvolve (oracle, float64)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import signal

import dosimetry as ds
from dosimetry.engine import convolve
from dosimetry.kernels import _vsv


@pytest.fixture(autouse=True)
def _tmp_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DOSIMETRY_CACHE_DIR", str(tmp_path / "cache"))
    _vsv._cached.cache_clear()
    yield
    _vsv._cached.cache_clear()


@pytest.mark.parametrize("path", ["fft", "direct"])
def test_kernel_larger_than_the_map_equals_scipy(path):
    k = ds.vsv_kernel("Lu-177", 9.6).array  # 200 mm: 43^3, larger than the map
    assert k.shape == (43, 43, 43)
    rng = np.random.default_rng(3)
    tia = np.zeros((14, 20, 17))
    tia[2:12, 3:18, 4:15] = rng.uniform(0.0, 1e6, (10, 15, 11))
    tia[0, 0, 0] = 5e6  # a corner source: its kernel is cropped at three borders
    ref = signal.fftconvolve(tia, k, mode="same")
    got = convolve(tia, k, path=path, dtype="float64")
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-10 * ref.max())  # oracle


def test_absorbed_dose_default_kernel_energy():
    """absorbed_dose(method="vsv") with the default kernel: a single source voxel in a
    map wider than the kernel's reach receives the whole kernel, so the energy in the map
    is energy_fraction x the emitted energy (tested to 1e-9)."""
    h = 9.6
    n = 2 * 21 + 5
    tia = np.zeros((n, n, n))
    tia[n // 2, n // 2, n // 2] = 1e9
    vol = ds.Volume.from_spacing(tia, spacing_mm=(h, h, h), unit="Bq s")
    dose = ds.absorbed_dose(vol, "Lu-177", method="vsv")
    k = ds.vsv_kernel("Lu-177", h)
    e_j = float(dose.array.sum()) * k.voxel_mass_kg
    expected = 1e9 * k.energy_fraction * k.metadata["emitted_energy_j"]
    assert e_j == pytest.approx(expected, rel=1e-9)
    assert k.radius_mm == 200.0 and k.energy_fraction > 0.94  # the tail is in
