"""Exact linear convolution: placement, cropping, no wrap-around, paths vs SciPy oracles."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import signal

from dosimetry import InputDataError, KernelError
from dosimetry.engine import _numba as nb
from dosimetry.engine import (
    choose_path,
    clear_spectrum_cache,
    convolve,
    spectrum_cache_info,
)

PATHS = ["direct", "fft"]


def _sym_kernel(shape=(7, 9, 5), seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    k = rng.random(shape)
    for ax in range(3):
        k = k + np.flip(k, axis=ax)
    return k


def _asym_kernel(shape=(5, 3, 7), seed=1) -> np.ndarray:
    return np.random.default_rng(seed).random(shape)


def _map(shape, fraction, seed) -> np.ndarray:
    rng = np.random.default_rng(seed)
    a = rng.gamma(2.0, 1.0, size=shape)
    a[rng.random(shape) >= fraction] = 0.0
    return a


def _expected_single(shape, pos, kernel) -> np.ndarray:
    """Kernel pasted with its centre at ``pos``, cropped at the grid border (by hand)."""
    out = np.zeros(shape)
    h = [s // 2 for s in kernel.shape]
    src_sl, dst_sl = [], []
    for a in range(3):
        lo = max(0, pos[a] - h[a])
        hi = min(shape[a], pos[a] + h[a] + 1)
        dst_sl.append(slice(lo, hi))
        src_sl.append(slice(lo - (pos[a] - h[a]), hi - (pos[a] - h[a])))
    out[tuple(dst_sl)] = kernel[tuple(src_sl)]
    return out


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("kind", ["symmetric", "asymmetric"])
@pytest.mark.parametrize(
    "pos",
    [(6, 7, 8), (0, 0, 0), (12, 14, 16), (0, 7, 16), (6, 0, 8), (12, 3, 0), (1, 13, 2)],
    ids=["centre", "corner0", "corner1", "edge-edge", "face", "edge", "near-corner"],
)
def test_single_voxel_returns_kernel_in_place(path, kind, pos):
    shape = (13, 15, 17)
    k = _sym_kernel() if kind == "symmetric" else _asym_kernel()
    src = np.zeros(shape)
    src[pos] = 1.0
    out = convolve(src, k, path=path)
    np.testing.assert_allclose(out, _expected_single(shape, pos, k), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("path", PATHS)
def test_kernel_larger_than_map_is_cropped_not_wrapped(path):
    k = _sym_kernel(shape=(21, 21, 21), seed=5)
    shape = (4, 6, 5)
    src = np.zeros(shape)
    src[3, 0, 2] = 2.5
    out = convolve(src, k, path=path)
    np.testing.assert_allclose(
        out, 2.5 * _expected_single(shape, (3, 0, 2), k), rtol=1e-12, atol=1e-13
    )


@pytest.mark.parametrize("path", PATHS)
def test_no_wrap_around(path):
    # source on the first slice; a 7-wide kernel reaches 3 voxels: the far side stays 0
    shape = (20, 12, 12)
    src = np.zeros(shape)
    src[0, :, :] = 1.0
    out = convolve(src, np.ones((7, 7, 7)), path=path)
    assert np.all(out[4:] == 0.0)  # exactly zero, not merely small
    assert np.all(out[:4] > 0)


@pytest.mark.parametrize("fraction", [0.02, 0.2, 1.0])
@pytest.mark.parametrize("kind", ["symmetric", "asymmetric"])
def test_paths_match_scipy_oracle(fraction, kind):
    src = _map((14, 19, 23), fraction, seed=int(fraction * 100))
    k = _sym_kernel((9, 7, 11)) if kind == "symmetric" else _asym_kernel((7, 5, 9))
    ref = signal.convolve(src, k, mode="same", method="direct")
    direct = convolve(src, k, path="direct")
    fft = convolve(src, k, path="fft")
    peak = np.abs(ref).max()
    np.testing.assert_allclose(direct, ref, rtol=1e-10, atol=1e-12 * peak)
    np.testing.assert_allclose(fft, ref, rtol=1e-10, atol=1e-12 * peak)
    # the two paths agree to 1e-6 relative (float64), far better in practice
    np.testing.assert_allclose(direct, fft, rtol=1e-6, atol=1e-12 * peak)


def test_float32_fft_error_floor():
    src = _map((16, 20, 24), 0.3, seed=3)
    k = _sym_kernel((9, 9, 9), seed=2)
    ref = signal.fftconvolve(src, k, mode="same")
    out = convolve(src, k, path="fft", dtype="float32")
    assert out.dtype == np.float32
    assert np.abs(out - ref).max() <= 1e-6 * np.abs(ref).max()
    out_d = convolve(src, k, path="direct", dtype="float32")
    assert out_d.dtype == np.float32
    assert np.abs(out_d - ref).max() <= 1e-6 * np.abs(ref).max()


def test_input_not_modified_and_int_input():
    src = _map((8, 9, 10), 0.3, seed=4)
    copy = src.copy()
    k = _sym_kernel((3, 3, 3))
    convolve(src, k, path="fft")
    convolve(src, k, path="direct")
    np.testing.assert_array_equal(src, copy)
    ints = (src > 0).astype(np.int32)
    ref = signal.convolve(ints.astype(float), k, mode="same", method="direct")
    np.testing.assert_allclose(convolve(ints, k), ref, rtol=1e-10, atol=1e-13 * ref.max())


def test_empty_map_gives_zeros():
    for path in PATHS:
        out = convolve(np.zeros((5, 6, 7)), _sym_kernel((3, 3, 3)), path=path)
        assert out.shape == (5, 6, 7) and not out.any()


@settings(max_examples=25, deadline=None)
@given(
    a=st.floats(-3.0, 3.0),
    b=st.floats(-3.0, 3.0),
    seed=st.integers(0, 10_000),
    path=st.sampled_from(PATHS),
)
def test_linearity(a, b, seed, path):
    x = _map((7, 8, 9), 0.3, seed)
    y = _map((7, 8, 9), 0.5, seed + 1)
    k = _asym_kernel((3, 5, 3), seed=seed % 7)
    lhs = convolve(a * x + b * y, k, path=path)
    rhs = a * convolve(x, k, path=path) + b * convolve(y, k, path=path)
    scale = (abs(a) + abs(b) + 1.0) * np.abs(convolve(np.abs(x) + np.abs(y), k)).max()
    np.testing.assert_allclose(lhs, rhs, rtol=0, atol=1e-12 * scale)


@settings(max_examples=25, deadline=None)
@given(
    shift=st.tuples(st.integers(-3, 3), st.integers(-3, 3), st.integers(-3, 3)),
    seed=st.integers(0, 10_000),
    path=st.sampled_from(PATHS),
)
def test_shift_invariance(shift, seed, path):
    # sources kept 3 + h voxels away from the border so nothing is cropped
    n, h = 20, 2
    core = _map((6, 6, 6), 0.4, seed)
    x = np.zeros((n, n, n))
    x[7:13, 7:13, 7:13] = core
    xs = np.roll(x, shift, axis=(0, 1, 2))
    k = _asym_kernel((2 * h + 1,) * 3, seed=seed % 5)
    out = convolve(x, k, path=path)
    outs = convolve(xs, k, path=path)
    np.testing.assert_allclose(
        outs, np.roll(out, shift, axis=(0, 1, 2)), rtol=1e-12, atol=1e-13 * out.max()
    )


def test_spectrum_cache_reused_per_grid_kernel_dtype():
    clear_spectrum_cache()
    k = _sym_kernel((5, 5, 5))
    m1 = _map((10, 11, 12), 1.0, seed=1)
    convolve(m1, k, path="fft")
    convolve(2.0 * m1, k, path="fft")  # same grid and kernel: hit
    info = spectrum_cache_info()
    assert info["misses"] == 1 and info["hits"] == 1 and info["entries"] == 1
    convolve(m1, k, path="fft", dtype="float32")  # other dtype: miss
    convolve(m1, 2.0 * k, path="fft")  # other kernel: miss
    info = spectrum_cache_info()
    assert info["misses"] == 3 and info["entries"] == 3
    clear_spectrum_cache()
    assert spectrum_cache_info()["entries"] == 0


def test_choose_path():
    k11 = _sym_kernel((11, 11, 11))
    sparse = np.zeros((40, 60, 60))
    sparse[20, 30, 30] = 1.0
    assert choose_path(sparse, k11) == "direct"
    dense = np.ones((40, 60, 60))
    assert choose_path(dense, _sym_kernel((41, 41, 41))) == "fft"
    assert choose_path(dense, k11, path="direct") == "direct"
    with pytest.raises(InputDataError, match="path"):
        choose_path(dense, k11, path="gpu")


def test_bad_arguments():
    with pytest.raises(KernelError, match="odd"):
        convolve(np.ones((4, 4, 4)), np.ones((2, 3, 3)))
    with pytest.raises(KernelError, match="NaN"):
        convolve(np.ones((4, 4, 4)), np.full((3, 3, 3), np.nan))
    with pytest.raises(InputDataError, match="NaN"):
        bad = np.ones((4, 4, 4))
        bad[1, 1, 1] = np.inf
        convolve(bad, np.ones((3, 3, 3)))
    with pytest.raises(InputDataError, match="3-D"):
        convolve(np.ones((4, 4)), np.ones((3, 3, 3)))
    with pytest.raises(InputDataError, match="dtype"):
        convolve(np.ones((4, 4, 4)), np.ones((3, 3, 3)), dtype="float16")


# ---- Numba kernels against NumPy/SciPy oracles -----------------------------------------
def test_numba_row_extents_oracle():
    src = _map((5, 6, 30), 0.1, seed=9)
    ext = nb.row_extents(src)
    for k in range(5):
        for j in range(6):
            nz = np.flatnonzero(src[k, j])
            if nz.size:
                assert tuple(ext[k, j]) == (nz[0], nz[-1])
            else:
                assert tuple(ext[k, j]) == (-1, -2)


@pytest.mark.parametrize("h", [(0, 0), (1, 2), (3, 1), (9, 9)])
def test_numba_reachable_rows_oracle(h):
    """Output rows with a non-empty source row within the kernel's (h0, h1) reach:
    the box dilation of the non-empty rows (scipy.ndimage.maximum_filter)."""
    from scipy import ndimage

    src = _map((11, 13, 7), 0.02, seed=4)
    ext = nb.row_extents(src)
    nonempty = ext[:, :, 0] >= 0
    ref = ndimage.maximum_filter(nonempty, size=(2 * h[0] + 1, 2 * h[1] + 1), mode="constant")
    np.testing.assert_array_equal(nb.reachable_rows(ext, *h), ref)


def test_numba_nonzero_bounds_oracle():
    src = np.zeros((9, 10, 11))
    src[2, 7, 1] = 1.0
    src[5, 3, 9] = 2.0
    b = nb.nonzero_bounds(src)
    nz = np.argwhere(src)
    np.testing.assert_array_equal(b[:, 0], nz.min(axis=0))
    np.testing.assert_array_equal(b[:, 1], nz.max(axis=0) + 1)
    assert np.all(nb.nonzero_bounds(np.zeros((2, 2, 2))) == -1)


def _order(src):
    """Slices interleaved as for 3 threads (any permutation must give the same result)."""
    from dosimetry.engine.convolve import slice_order

    order = slice_order(src.shape[0], 3)
    assert sorted(order.tolist()) == list(range(src.shape[0]))
    return order


def _bounds(src, octant):
    """Output-slice runs as for 3 threads (any split must give the same result)."""
    b = nb.direct_chunks(nb.row_extents(src), octant.shape[0] - 1, octant.shape[2] - 1, 3)
    assert b[0] == 0 and b[-1] == src.shape[0] and np.all(np.diff(b) >= 0)
    return b


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_numba_direct_symmetric_oracle(dtype):
    src = _map((9, 12, 15), 0.3, seed=11).astype(dtype)
    k = _sym_kernel((5, 7, 9), seed=3)
    out = np.empty(src.shape, dtype=np.float64)
    octant = np.ascontiguousarray(k[2:, 3:, 4:])
    nb.convolve_direct_symmetric(src, octant, nb.row_extents(src), out, False, _bounds(src, octant))
    ref = signal.convolve(src.astype(np.float64), k, mode="same", method="direct")
    np.testing.assert_allclose(out, ref, rtol=1e-10, atol=1e-13 * ref.max())


def test_numba_direct_symmetric_swap_oracle():
    # kernel symmetric under axis flips and under exchanging the slice and row axes
    src = _map((11, 12, 13), 0.3, seed=13)
    k = _sym_kernel((7, 7, 5), seed=6)
    k = k + k.transpose(1, 0, 2)
    out = np.empty(src.shape)
    octant = np.ascontiguousarray(k[3:, 3:, 2:])
    nb.convolve_direct_symmetric(src, octant, nb.row_extents(src), out, True, _bounds(src, octant))
    ref = signal.convolve(src, k, mode="same", method="direct")
    np.testing.assert_allclose(out, ref, rtol=1e-10, atol=1e-13 * ref.max())


def test_numba_direct_symmetric_any_split_of_the_output_slices():
    """Runs of output slices are independent (each visits the source slices within
    reach): any boundaries, empty runs included, give the same numbers; sources at the
    grid's faces, corners and edges are cropped, not wrapped."""
    src = _map((13, 11, 9), 0.15, seed=14)
    src[0, 0, 0] = 3.0
    src[12, 10, 8] = 2.0
    src[6, 0, 4] = 1.5
    k = _sym_kernel((7, 5, 9), seed=15)  # reach beyond the grid along the last axis
    octant = np.ascontiguousarray(k[3:, 2:, 4:])
    ext = nb.row_extents(src)
    ref = signal.convolve(src, k, mode="same", method="direct")
    results = []
    for bounds in ([0, 13], [0, 0, 5, 5, 13, 13], [0, 1, 2, 3, 12, 13], list(range(14))):
        out = np.full(src.shape, np.nan)
        bad = nb.convolve_direct_symmetric(
            src, octant, ext, out, False, np.array(bounds, dtype=np.int64)
        )
        assert bad == 0
        np.testing.assert_allclose(out, ref, rtol=1e-10, atol=1e-13 * ref.max())
        results.append(out)
    for r in results[1:]:
        np.testing.assert_array_equal(r, results[0])


def test_direct_chunks_balance_the_work():
    src = np.zeros((40, 6, 30))
    src[30:40] = 1.0  # all the work in the last quarter
    b = nb.direct_chunks(nb.row_extents(src), 2, 3, 4)
    assert b[0] == 0 and b[-1] == 40 and np.all(np.diff(b) >= 0)
    assert b[1] >= 28  # the first run takes the empty slices and the first busy ones
    empty = nb.direct_chunks(nb.row_extents(np.zeros((5, 2, 2))), 1, 1, 2)
    assert empty[0] == 0 and empty[-1] == 5


def test_numba_direct_general_oracle():
    src = _map((9, 12, 15), 0.3, seed=12)
    k = _asym_kernel((5, 3, 7), seed=4)
    out = np.empty(src.shape)
    nb.convolve_direct_general(src, k, nb.row_extents(src), out, _order(src))
    ref = signal.convolve(src, k, mode="same", method="direct")
    np.testing.assert_allclose(out, ref, rtol=1e-10, atol=1e-13 * ref.max())


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_numba_count_nonfinite_negative_oracle(dtype):
    a = _map((6, 7, 8), 0.5, seed=21).astype(dtype)
    a[0, 1, 2] = np.nan
    a[3, 3, 3] = -np.inf
    a[5, 6, 7] = np.inf
    a[2, 2, 2] = -1.0
    a[4, 0, 0] = -0.5
    finite = np.isfinite(a)
    assert nb.count_nonfinite_negative(a) == (
        int((~finite).sum()),
        int((a[finite] < 0).sum()),
    )


@pytest.mark.parametrize("swap", [False, True])
def test_numba_direct_symmetric_float32_accumulation_oracle(swap):
    # float32 output: sums accumulated in float32, against float64 scipy.signal.convolve
    src = _map((10, 12, 14), 0.4, seed=31).astype(np.float32)
    k = _sym_kernel((7, 7, 5), seed=8)
    if swap:
        k = k + k.transpose(1, 0, 2)
    out = np.empty(src.shape, dtype=np.float32)
    octant = np.ascontiguousarray(k[3:, 3:, 2:], dtype=np.float32)
    nb.convolve_direct_symmetric(src, octant, nb.row_extents(src), out, swap, _bounds(src, octant))
    ref = signal.convolve(src.astype(np.float64), k, mode="same", method="direct")
    np.testing.assert_allclose(out, ref, rtol=2e-6, atol=1e-6 * ref.max())


def test_numba_direct_general_float32_accumulation_oracle():
    src = _map((9, 12, 15), 0.3, seed=32).astype(np.float32)
    k = _asym_kernel((5, 3, 7), seed=9)
    out = np.empty(src.shape, dtype=np.float32)
    nb.convolve_direct_general(src, k.astype(np.float32), nb.row_extents(src), out, _order(src))
    ref = signal.convolve(src.astype(np.float64), k, mode="same", method="direct")
    np.testing.assert_allclose(out, ref, rtol=2e-6, atol=1e-6 * np.abs(ref).max())


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")  # NumPy, no-JIT
@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
@pytest.mark.parametrize("path", ["direct", "fft"])
@pytest.mark.parametrize("symmetric", [True, False])
def test_overflow_to_infinity_is_refused(path, symmetric):
    """A finite float32 map whose convolution overflows (sums beyond 3.4e38) gives a
    clear error on either path, not an array with inf in it."""
    src = np.zeros((9, 9, 9), dtype=np.float32)
    src[3:6, 3:6, 3:6] = 3e38
    k = np.ones((3, 3, 3)) if symmetric else np.arange(1.0, 28.0).reshape(3, 3, 3)
    with pytest.raises(InputDataError, match="non-finite"):
        convolve(src, k, path=path, dtype="float32")


@pytest.mark.parametrize("n2", [5, 31, 32, 45, 70])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_numba_direct_symmetric_rows_of_any_length(n2, dtype):
    """The scatter's loops run over whole multiples of its vector granule where the
    row's end allows and over the exact length where it does not: rows of every length
    and extent, reaching either end of the grid, give scipy's convolution."""
    rng = np.random.default_rng(n2)
    src = np.zeros((7, 6, n2), dtype=dtype)
    for j in range(6):
        a = int(rng.integers(0, n2))
        b = int(rng.integers(a, n2))
        src[3, j, a : b + 1] = rng.random(b + 1 - a)
    src[1, 0, -1] = 1.0  # at the row's end
    src[5, 5, 0] = 2.0  # at its start
    k = _sym_kernel((5, 5, 9), seed=n2)
    octant = np.ascontiguousarray(k[2:, 2:, 4:], dtype=dtype)
    out = np.full(src.shape, np.nan, dtype=dtype)
    nb.convolve_direct_symmetric(src, octant, nb.row_extents(src), out, False, _bounds(src, octant))
    ref = signal.convolve(src.astype(np.float64), k, mode="same", method="direct")
    tol = 1e-6 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(out, ref, rtol=0, atol=tol * ref.max())
