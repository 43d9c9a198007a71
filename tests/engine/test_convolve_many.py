"""Several maps of one grid with one kernel: convolve_many against scipy.signal.convolve."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import signal

from dosimetry import InputDataError, KernelError
from dosimetry.engine import clear_spectrum_cache, convolve, convolve_many, spectrum_cache_info
from dosimetry.engine.fft import fft_convolve_many


def _sym_kernel(shape=(7, 9, 5), seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    k = rng.random(shape)
    for ax in range(3):
        k = k + np.flip(k, axis=ax)
    return k


def _maps(shape=(14, 17, 19), seed=3) -> list[np.ndarray]:
    """Time points with different supports: dense, sparse, one voxel at a corner, empty."""
    rng = np.random.default_rng(seed)
    dense = rng.gamma(2.0, 1.0, size=shape)
    dense[rng.random(shape) >= 0.3] = 0.0
    sparse = np.zeros(shape)
    sparse[3:6, 8:12, 2:5] = rng.random((3, 4, 3))
    corner = np.zeros(shape)
    corner[-1, 0, -1] = 5.0
    return [dense, sparse, corner, np.zeros(shape)]


def _oracle(m: np.ndarray, k: np.ndarray) -> np.ndarray:
    return signal.convolve(m, k, mode="same", method="direct")


@pytest.mark.parametrize("path", ["auto", "fft", "direct"])
@pytest.mark.parametrize("stack", [True, False])
@pytest.mark.parametrize("kind", ["symmetric", "asymmetric"])
def test_matches_scipy_oracle_per_map(path, stack, kind):
    k = _sym_kernel() if kind == "symmetric" else np.random.default_rng(1).random((5, 3, 7))
    maps = _maps()
    outs = convolve_many(maps, k, path=path, stack=stack)
    assert len(outs) == len(maps)
    for m, o in zip(maps, outs, strict=True):
        ref = _oracle(m, k)
        assert o.shape == m.shape and o.dtype == np.float64
        scale = max(float(np.abs(ref).max()), 1e-300)
        np.testing.assert_allclose(o, ref, rtol=0, atol=1e-6 * scale)
        if not m.any():
            assert not o.any()


def test_same_as_convolve_per_map_float64_and_float32():
    k = _sym_kernel((9, 9, 9))
    maps = _maps((20, 18, 16))
    for dtype, tol in (("float64", 1e-6), ("float32", 3e-6)):
        outs = convolve_many(maps, k, path="fft", dtype=dtype)
        for m, o in zip(maps, outs, strict=True):
            ref = convolve(m, k, path="fft", dtype=dtype)
            assert o.dtype == np.dtype(dtype)
            np.testing.assert_allclose(o, ref, rtol=0, atol=tol * max(float(ref.max()), 1e-300))


def test_spectrum_computed_once_for_all_time_points():
    k = _sym_kernel()
    maps = _maps()[:3]
    clear_spectrum_cache()
    convolve_many(maps, k, path="fft")
    info = spectrum_cache_info()
    assert info["misses"] == 1 and info["entries"] == 1


def test_stack_split_by_memory_bound_is_exact():
    k = _sym_kernel()
    maps = _maps()[:3]
    from dosimetry.engine import kernel_key

    outs = fft_convolve_many(maps, k, key=kernel_key(k), max_stack_bytes=1)  # one per stack
    for m, o in zip(maps, outs, strict=True):
        ref = _oracle(m, k)
        np.testing.assert_allclose(o, ref, rtol=0, atol=1e-9 * float(ref.max()))


def test_inputs_not_modified_and_linearity_across_time_points():
    k = _sym_kernel()
    base = _maps()[0]
    maps = [base * 0.5**t for t in range(4)]
    copies = [m.copy() for m in maps]
    outs = convolve_many(maps, k, path="fft")
    for m, c in zip(maps, copies, strict=True):
        assert np.array_equal(m, c)
    for t in range(1, 4):
        np.testing.assert_allclose(
            outs[t], outs[0] * 0.5**t, rtol=1e-12, atol=1e-12 * outs[0].max()
        )


def test_bad_arguments():
    k = _sym_kernel()
    a = np.zeros((6, 6, 6))
    with pytest.raises(InputDataError, match="at least one"):
        convolve_many([], k)
    with pytest.raises(InputDataError, match="same shape"):
        convolve_many([a, np.zeros((6, 6, 7))], k)
    bad = a.copy()
    bad[1, 1, 1] = np.nan
    with pytest.raises(InputDataError, match="NaN"):
        convolve_many([a, bad], k)
    with pytest.raises(KernelError):
        convolve_many([a], np.ones((2, 3, 3)))
    with pytest.raises(InputDataError, match="path"):
        convolve_many([a], k, path="spline")
    with pytest.raises(InputDataError, match="dtype"):
        convolve_many([a], k, dtype="float16")


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_numba_scan_rows_oracle(dtype):
    from dosimetry.engine import _numba as nb

    rng = np.random.default_rng(4)
    a = rng.normal(size=(5, 6, 7)).astype(dtype)
    a[a > 1.0] = 0.0  # zeros so that row extents matter
    a[1, 2, :] = 0.0  # an empty row
    finite = a.copy()
    bad, neg, total, ext = nb.scan_rows(finite)
    assert bad == 0 and neg == int(np.count_nonzero(a < 0))
    assert total == pytest.approx(float(np.sum(a, dtype=np.float64)), rel=1e-5)
    # extents against a NumPy oracle: first and last non-zero column of each row
    nz = a != 0
    rows = nz.any(axis=2)
    first = np.where(rows, np.argmax(nz, axis=2), -1)
    last = np.where(rows, a.shape[2] - 1 - np.argmax(nz[:, :, ::-1], axis=2), -2)
    np.testing.assert_array_equal(ext, np.stack([first, last], axis=-1))
    assert tuple(ext[1, 2]) == (-1, -2)
    a[0, 1, 2] = np.nan
    a[3, 3, 3] = np.inf
    a[4, 0, 0] = -np.inf
    a[2, 2, 1] = np.inf  # +inf and -inf in one row: their sum is NaN, both counted
    a[2, 2, 5] = -np.inf
    with np.errstate(invalid="ignore"):  # (inf - inf in the row sum without the JIT)
        bad, neg, _, _ = nb.scan_rows(a)
    assert bad == 5 and neg == int(np.count_nonzero(a < 0))  # -inf included


def test_numba_scan_rows_overflowing_row_sum_is_not_invalid():
    from dosimetry.engine import _numba as nb

    a = np.zeros((2, 2, 40), dtype=np.float32)
    a[1, 0, 3:] = 3e38  # finite values whose float32 row sum overflows
    with np.errstate(over="ignore"):  # (warned without the JIT)
        bad, neg, _, ext = nb.scan_rows(a)
    assert bad == 0 and neg == 0
    assert tuple(ext[1, 0]) == (3, 39) and tuple(ext[0, 0]) == (-1, -2)


@pytest.mark.parametrize("clip", [True, False])
def test_numba_clip_roundoff_oracle(clip):
    from dosimetry.engine import _numba as nb

    rng = np.random.default_rng(5)
    out = rng.normal(scale=1e-3, size=(4, 5, 6))
    out[1, 2, 3] = -0.5  # not round-off: left as is
    out[2, 0, 0] = np.nan
    out[3, 4, 5] = -np.inf
    expected = out.copy()
    finite = np.isfinite(expected)
    deep_ref = int(np.count_nonzero(expected < -0.01)) if clip else 0  # -inf included
    if clip:
        sel = finite & (expected < 0) & (expected >= -0.01)
        expected[sel] = 0.0
    bad, deep = nb.clip_roundoff(out, 0.01, clip)
    assert bad == 2 and deep == deep_ref
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("spec_dtype", [np.float32, np.complex64, np.float64, np.complex128])
def test_numba_multiply_spectrum_oracle(spec_dtype):
    from dosimetry.engine import _numba as nb

    rng = np.random.default_rng(6)
    cdt = np.complex64 if spec_dtype in (np.float32, np.complex64) else np.complex128
    f = (rng.normal(size=(3, 4, 5)) + 1j * rng.normal(size=(3, 4, 5))).astype(cdt)
    spec = rng.normal(size=(3, 4, 5)).astype(spec_dtype)
    if np.iscomplexobj(spec):
        spec = spec + 1j * rng.normal(size=spec.shape).astype(spec_dtype)
    ref = f * spec
    nb.multiply_spectrum(f, spec)
    np.testing.assert_allclose(f, ref, rtol=1e-6 if cdt == np.complex64 else 1e-14)
