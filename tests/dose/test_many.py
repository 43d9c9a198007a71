"""Several maps on one grid: absorbed_dose_many / dose_rate_many against per-map oracles."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import signal

import dosimetry as ds
from dosimetry import GeometryMismatchError, InputDataError, UnitError, Volume
from dosimetry.dose import absorbed_dose, absorbed_dose_many, dose_rate, dose_rate_many
from dosimetry.engine import clear_spectrum_cache, spectrum_cache_info

SPACING = (4.8, 4.8, 4.8)


def _maps(shape=(16, 14, 18), seed=5) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    dense = rng.gamma(2.0, 1e8, size=shape)
    dense[rng.random(shape) >= 0.25] = 0.0
    sparse = np.zeros(shape)
    sparse[2:5, 3:6, 10:14] = 3e9
    corner = np.zeros(shape)
    corner[0, -1, 0] = 1e10
    return [dense, sparse, corner, np.zeros(shape)]


@pytest.fixture(scope="module")
def kernel():
    return ds.vsv_kernel("Lu-177", SPACING, source="lanconelli2012")


@pytest.mark.parametrize("path", ["auto", "fft", "direct"])
@pytest.mark.parametrize("stack", [True, False])
def test_vsv_equals_scipy_convolution_of_each_map(kernel, path, stack):
    # Lu-177 has no alpha part: the vsv dose is the plain convolution TIA * S
    tias = [Volume.from_spacing(m, SPACING, unit="Bq s") for m in _maps()]
    doses = absorbed_dose_many(tias, "Lu-177", kernel=kernel, path=path, stack=stack)
    assert len(doses) == len(tias)
    for t, d in zip(tias, doses, strict=True):
        ref = signal.convolve(t.array, kernel.array, mode="same", method="direct")
        assert d.unit == "Gy" and d.shape == t.shape and d.array.dtype == np.float64
        np.testing.assert_allclose(d.array, ref, rtol=0, atol=1e-6 * max(float(ref.max()), 1e-300))
        assert d.provenance["convolution_path"] in ("fft", "direct")
        assert d.provenance["kernel"]["sha256"] == kernel.sha256


def test_same_as_absorbed_dose_per_map_with_default_kernel_and_spectrum_once(kernel):
    tias = [Volume.from_spacing(m, SPACING, unit="Bq s") for m in _maps()[:3]]
    clear_spectrum_cache()
    doses = absorbed_dose_many(tias, "Lu-177", method="vsv", path="fft")
    assert spectrum_cache_info()["misses"] == 1
    for t, d in zip(tias, doses, strict=True):
        one = absorbed_dose(t, "Lu-177", method="vsv", path="fft")
        np.testing.assert_allclose(d.array, one.array, rtol=0, atol=1e-6 * float(one.array.max()))
        assert d.provenance["kernel"] == one.provenance["kernel"]


def test_alpha_emitter_rbe_and_led_match_per_map():
    rng = np.random.default_rng(2)
    maps = [rng.random((6, 7, 8)) * 1e6 * f for f in (1.0, 0.3)]
    tias = [Volume.from_spacing(m, SPACING, unit="Bq s") for m in maps]
    for method in ("led",):
        many = absorbed_dose_many(tias, "Ac-225", method=method, weighting="rbe", chain=True)
        for t, d in zip(tias, many, strict=True):
            one = absorbed_dose(t, "Ac-225", method=method, weighting="rbe", chain=True)
            np.testing.assert_allclose(d.array, one.array, rtol=1e-12)
            assert d.unit == "Gy_RBE"


def test_dose_rate_many_equals_dose_rate(kernel):
    acts = [Volume.from_spacing(m * 1e-3, SPACING, unit="Bq") for m in _maps()[:2]]
    many = dose_rate_many(acts, "Lu-177", kernel=kernel)
    for a, r in zip(acts, many, strict=True):
        one = dose_rate(a, "Lu-177", method="vsv", kernel=kernel)
        assert r.unit == one.unit == "Gy/s"
        np.testing.assert_allclose(r.array, one.array, rtol=0, atol=1e-6 * float(one.array.max()))


def test_errors(kernel):
    a = Volume.from_spacing(np.ones((5, 5, 5)), SPACING, unit="Bq s")
    with pytest.raises(InputDataError, match="at least one"):
        absorbed_dose_many([], "Lu-177", kernel=kernel)
    other = Volume.from_spacing(np.ones((5, 5, 6)), SPACING, unit="Bq s")
    with pytest.raises(GeometryMismatchError):
        absorbed_dose_many([a, other], "Lu-177", kernel=kernel)
    with pytest.raises(UnitError):
        absorbed_dose_many([a, a.with_array(a.array, unit="Bq")], "Lu-177", kernel=kernel)
    with pytest.raises(UnitError):
        dose_rate_many([a], "Lu-177", kernel=kernel)
    neg = a.with_array(-a.array)
    with pytest.raises(InputDataError, match="negative"):
        absorbed_dose_many([a, neg], "Lu-177", kernel=kernel)
    with pytest.raises(InputDataError, match="path"):
        absorbed_dose_many([a], "Lu-177", kernel=kernel, path="spline")
    with pytest.raises(InputDataError):
        absorbed_dose_many([a], "Lu-177", method="vsv", kernel=kernel, density=a)


def test_each_map_is_read_once_for_validation(kernel, monkeypatch):
    """absorbed_dose / absorbed_dose_many validate each TIA in one pass and hand that
    scan to the engine (no second validating pass); the results equal scipy's."""
    from dosimetry.engine import _numba

    calls: list[tuple[int, ...]] = []
    real = _numba.scan_rows

    def counting(a, workers=None):
        calls.append(a.shape)
        return real(a, workers)

    monkeypatch.setattr(_numba, "scan_rows", counting)
    maps = _maps()
    tias = [Volume.from_spacing(m, SPACING, unit="Bq s") for m in maps]
    one = absorbed_dose(tias[0], "Lu-177", method="vsv", kernel=kernel)
    assert len(calls) == 1
    calls.clear()
    many = absorbed_dose_many(tias, "Lu-177", kernel=kernel)
    assert len(calls) == len(tias)
    for m, d in zip(maps, [one, *many[1:]], strict=True):
        ref = signal.convolve(m, kernel.array, mode="same", method="direct")
        np.testing.assert_allclose(d.array, ref, rtol=0, atol=1e-6 * max(ref.max(), 1e-30))


def test_engine_scan_of_another_array_is_refused():
    from dosimetry.engine import convolve, convolve_many, scan_map

    a = np.ones((4, 5, 6))
    k = np.ones((3, 3, 3))
    with pytest.raises(InputDataError, match="scan="):
        convolve(a, k, scan=scan_map(np.ones((4, 6, 6))))
    with pytest.raises(InputDataError, match="scans"):
        convolve_many([a, a], k, scans=[scan_map(a)])
    bad = a.copy()
    bad[1, 1, 1] = np.nan
    with pytest.raises(InputDataError, match="NaN"):  # a scan that found NaN still refuses
        convolve(a, k, scan=scan_map(bad))
    got = convolve(a, k, scan=scan_map(a))
    np.testing.assert_allclose(got, signal.convolve(a, k, mode="same"), rtol=1e-12)
    with pytest.raises(InputDataError, match="3-D float"):
        scan_map(np.ones((4, 5)))
