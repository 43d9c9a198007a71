"""Internals of the FFT path: padding copies and in-place transforms."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import scipy.fft as sfft

from dosimetry.engine import _numba
from dosimetry.engine.fft import _in_place


def test_in_place_transform_views_and_fallback():
    rng = np.random.default_rng(0)
    a = (rng.standard_normal((6, 8, 5)) + 1j * rng.standard_normal((6, 8, 5))).astype(np.complex128)
    ref = sfft.fft(a[1:4], axis=1)
    b = a.copy()
    _in_place(sfft.fft, b[1:4], 1, 1)  # contiguous leading-axis view: in place
    np.testing.assert_allclose(b[1:4], ref, rtol=1e-12)
    np.testing.assert_array_equal(b[0], a[0])
    c = a.copy()
    _in_place(sfft.fft, c[:, ::2], 1, 1)  # strided view: computed, then copied back
    np.testing.assert_allclose(c[:, ::2], sfft.fft(a[:, ::2], axis=1), rtol=1e-12)
    np.testing.assert_array_equal(c[:, 1::2], a[:, 1::2])


def test_padding_copies_write_every_element():
    rng = np.random.default_rng(1)
    src = rng.standard_normal((7, 9, 11))
    dst = np.full((3, 4, 16), np.nan, dtype=np.float32)  # uninitialised stand-in
    _numba.embed_box_real(src, 2, 3, 4, dst, 5, 6)
    ref = np.zeros((3, 4, 16), dtype=np.float32)
    ref[:, :, 5:11] = src[2:5, 3:7, 4:10]
    np.testing.assert_array_equal(dst, ref)

    f = (rng.standard_normal((3, 4, 5)) + 1j).astype(np.complex64)
    g = np.full((3, 9, 5), np.nan, dtype=np.complex64)
    _numba.embed_axis1(f, g, 2)
    ref_g = np.zeros_like(g)
    ref_g[:, 2:6] = f
    np.testing.assert_array_equal(g, ref_g)

    h = np.full((6, 2, 3), 7.0 + 1j, dtype=np.complex64)
    _numba.zero_planes_outside(h, 2, 4)
    assert np.all(h[:2] == 0) and np.all(h[4:] == 0) and np.all(h[2:4] == 7.0 + 1j)

    res = rng.standard_normal((2, 3, 4))
    out = np.full((5, 6, 7), np.nan)
    counts = _numba.place_result(res, out, 1, 2, 3, 2, 3, 4, np.inf, False)
    ref_o = np.zeros((5, 6, 7))
    ref_o[1:3, 2:5, 3:7] = res
    np.testing.assert_array_equal(out, ref_o)
    assert counts == (0, 0)


def test_place_result_checks_and_clips_like_clip_roundoff():
    """The placing pass counts non-finite values and values below -tol, and with clip
    zeroes round-off in [-tol, 0), exactly as the separate clip_roundoff pass does."""
    res = np.array([[[1.0, -1e-9, -0.5, np.nan, 2.0]]])
    for clip in (True, False):
        out = np.full((1, 1, 7), 9.0)
        bad, deep = _numba.place_result(res, out, 0, 0, 1, 1, 1, 5, 1e-6, clip)
        ref = np.zeros((1, 1, 7))
        ref[0, 0, 1:6] = res[0, 0]
        ref_bad, ref_deep = _numba.clip_roundoff(ref, 1e-6, clip)
        assert (bad, deep) == (ref_bad, ref_deep) == (1, 1 if clip else 0)
        np.testing.assert_array_equal(out, ref)  # NaN positions equal too


def test_run_blocks_covers_in_order_and_reraises():
    from dosimetry.engine._blocks import run_blocks

    for threads in (1, 2, 3):
        got = run_blocks(lambda a, b: list(range(a, b)), 37, 1, threads)
        assert [i for block in got for i in block] == list(range(37))

    def boom(a: int, b: int) -> None:
        if a <= 20 < b:
            raise ValueError("block with 20")

    with pytest.raises(ValueError, match="block with 20"):
        run_blocks(boom, 37, 1, 2)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_fft_path_independent_of_thread_count_and_block_size(dtype, monkeypatch):
    """The blocked FFT path gives the same numbers for any number of threads and any
    block size (blocks only partition independent 1-D transforms)."""
    from dosimetry.engine import _blocks, convolve

    rng = np.random.default_rng(3)
    src = np.zeros((23, 31, 29))
    src[3:19, 5:27, 2:25] = rng.random((16, 22, 23))
    k = rng.random((7, 9, 5))
    ref = convolve(src, k, path="fft", dtype=dtype, workers=1)
    direct = convolve(src, k, path="direct", dtype="float64")
    tol = 1e-5 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(ref, direct, atol=tol * direct.max(), rtol=0)
    for block_bytes in (1, 1 << 12, 1 << 30):
        monkeypatch.setattr(_blocks, "BLOCK_BYTES", block_bytes)
        for workers in (2, 3):
            got = convolve(src, k, path="fft", dtype=dtype, workers=workers)
            np.testing.assert_array_equal(got, ref)


def test_run_blocks_nested_call_runs_inline():
    """A task that itself calls run_blocks (from a pool thread) must not wait on the
    pool it occupies."""
    from dosimetry.engine._blocks import run_blocks

    def outer(a: int, b: int) -> list[int]:
        inner = run_blocks(lambda c, d: list(range(c, d)), 10, 1, 2)
        return [len([i for block in inner for i in block])] * (b - a)

    # in a thread of its own: a deadlock fails the test instead of hanging the suite
    import threading

    result: list[list[list[int]]] = []
    t = threading.Thread(target=lambda: result.append(run_blocks(outer, 8, 1, 2)), daemon=True)
    t.start()
    t.join(timeout=60)
    assert not t.is_alive(), "nested run_blocks deadlocked on its own pool"
    assert [n for block in result[0] for n in block] == [10] * 8


@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_fft_path_works_in_a_forked_child():
    """The thread pool is rebuilt in a forked child (its threads do not survive fork)."""
    import multiprocessing as mp

    from dosimetry.engine import convolve

    src = np.zeros((12, 14, 16))
    src[3:9, 4:10, 5:11] = 1.0
    k = np.ones((3, 3, 3))
    ref = convolve(src, k, path="fft", workers=2)  # parent's pool exists now
    ctx = mp.get_context("fork")
    q = ctx.Queue()

    def child() -> None:
        q.put(float(convolve(src, k, path="fft", workers=2).sum()))

    p = ctx.Process(target=child)
    p.start()
    p.join(timeout=120)
    if p.is_alive():
        p.kill()
        pytest.fail("the FFT path hung in a forked child")
    assert p.exitcode == 0
    assert q.get(timeout=5) == pytest.approx(float(ref.sum()), rel=1e-12)


@pytest.mark.parametrize("shape", [(16, 21, 30), (15, 18, 19)])
def test_cosine_spectrum_equals_fft_of_wrapped_kernel(shape):
    """The separable cosine sums give the DFT of the kernel wrapped around index 0 (a
    kernel symmetric under each axis flip), on the rfft grid, in both precisions."""
    from dosimetry.engine.fft import _cosine_spectrum

    rng = np.random.default_rng(5)
    octant = rng.random((3, 4, 5))
    idx = [np.abs(np.arange(-(n - 1), n)) for n in octant.shape]
    kernel = octant[np.ix_(*idx)]  # sides 5, 7, 9, symmetric under each flip
    wrapped = np.zeros(shape)
    for d0 in range(-2, 3):
        for d1 in range(-3, 4):
            for d2 in range(-4, 5):
                wrapped[d0 % shape[0], d1 % shape[1], d2 % shape[2]] = kernel[
                    d0 + 2, d1 + 3, d2 + 4
                ]
    ref = np.fft.rfftn(wrapped)
    assert np.max(np.abs(ref.imag)) < 1e-12 * np.max(np.abs(ref))
    for dt, tol in ((np.float64, 1e-13), (np.float32, 1e-6)):
        got = _cosine_spectrum(kernel, shape, np.dtype(dt), 2)
        assert got.dtype == dt and got.shape == ref.shape
        np.testing.assert_allclose(got, ref.real, rtol=0, atol=tol * np.max(np.abs(ref)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_spectrum_routes_agree(dtype, monkeypatch):
    """A symmetric kernel's spectrum is the same by cosine sums and by the pruned FFT
    (the route is chosen by the kernel's side)."""
    from dosimetry.engine import fft as F

    rng = np.random.default_rng(6)
    octant = rng.random((4, 3, 6))
    kernel = octant[np.ix_(*[np.abs(np.arange(-(n - 1), n)) for n in octant.shape])]
    shape = (24, 20, 30)
    got = {}
    for side in (0, 1000):
        monkeypatch.setattr(F, "_COSINE_MAX_SIDE", side)
        F.clear_spectrum_cache()
        got[side] = F._spectrum(kernel, shape, f"k{side}", np.dtype(dtype), 2)
    F.clear_spectrum_cache()
    assert got[0].dtype == got[1000].dtype == dtype  # real spectra both ways
    tol = 1e-6 if dtype == np.float32 else 1e-13
    np.testing.assert_allclose(got[1000], got[0], rtol=0, atol=tol * np.abs(got[0]).max())


def _symmetric_kernel(rng: np.random.Generator, octant_shape: tuple[int, int, int]) -> np.ndarray:
    octant = rng.random(octant_shape)
    return octant[np.ix_(*[np.abs(np.arange(-(n - 1), n)) for n in octant_shape])]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_axial_spectrum_equals_fft_of_wrapped_kernel_planes(dtype):
    """Each plane of the axial spectrum is the 2-D DFT (axes 1, 2, rfft grid) of the
    kernel plane at that axis-0 offset, wrapped around index 0; values stored twice."""
    from dosimetry.engine.fft import _axial_spectrum

    rng = np.random.default_rng(7)
    kernel = _symmetric_kernel(rng, (3, 4, 5))  # sides 5, 7, 9
    shape = (99, 18, 21)  # axis-0 length is not used
    got = _axial_spectrum(kernel, shape, np.dtype(dtype), 2)
    nc = shape[2] // 2 + 1
    assert got.shape == (3, 18, 2 * nc) and got.dtype == dtype
    for d in range(3):
        wrapped = np.zeros(shape[1:])
        for d1 in range(-3, 4):
            for d2 in range(-4, 5):
                wrapped[d1 % shape[1], d2 % shape[2]] = kernel[2 + d, d1 + 3, d2 + 4]
        ref = np.fft.rfft2(wrapped)
        assert np.max(np.abs(ref.imag)) < 1e-12 * np.max(np.abs(ref))
        tol = 1e-6 if dtype == np.float32 else 1e-13
        scale = np.max(np.abs(ref))
        np.testing.assert_allclose(got[d, :, 0::2], ref.real, rtol=0, atol=tol * scale)
        np.testing.assert_array_equal(got[d, :, 0::2], got[d, :, 1::2])


def test_axial_taps_is_a_linear_convolution_along_axis_0():
    rng = np.random.default_rng(8)
    fp = rng.standard_normal((12, 10))
    fp[:3] = 0.0
    fp[9:] = 0.0  # zero planes around the data, as the FFT path lays them out
    km = rng.standard_normal((3, 10))  # offsets 0, +-1, +-2
    g = np.full((6, 10), np.nan)
    _numba.axial_taps(fp, km, g, 3)
    for p in range(6):
        c = 3 + p
        ref = km[0] * fp[c] + sum(km[d] * (fp[c - d] + fp[c + d]) for d in (1, 2))
        np.testing.assert_allclose(g[p], ref, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_axis0_taps_and_fft_pair_give_the_linear_convolution(dtype, monkeypatch):
    """Both ways of doing axis 0 (direct taps in the planes' spectra; FFT pair), with
    forward transforms from padded copies or from views of the map, equal scipy's direct
    linear convolution: sources at the grid's faces and corners (reach
    clipped), a box narrower than the kernel (kernel cropped), anisotropic kernels, and
    several maps sharing one box."""
    from scipy import signal

    from dosimetry.engine import clear_spectrum_cache, convolve, convolve_many
    from dosimetry.engine import fft as F

    rng = np.random.default_rng(9)
    maps = []
    a = np.zeros((17, 20, 23))
    a[0, 0, 0] = 1.0
    a[16, 19, 22] = 2.0
    a[8, 3:9, 14] = rng.random(6)
    maps.append(a)
    b = np.zeros((17, 20, 23))
    b[5:7, 8:10, 9:12] = rng.random((2, 2, 3))  # box narrower than the kernel
    maps.append(b)
    maps.append(rng.random((17, 20, 23)) * (rng.random((17, 20, 23)) < 0.3))
    kernels = [_symmetric_kernel(rng, s) for s in ((4, 3, 5), (2, 6, 3), (6, 2, 2))]
    tol = 1e-5 if dtype == "float32" else 1e-12
    for k in kernels:
        refs = [signal.convolve(m, k, mode="same", method="direct") for m in maps]
        for ratio, view in itertools.product((0.0, 1e9), (False, True)):
            # FFT pair always / taps always; forward transforms from a padded copy /
            # from views of maps already in the working dtype
            monkeypatch.setitem(F.TAPS_RATIO, dtype, ratio)
            monkeypatch.setattr(F, "VIEW_FORWARD", view)
            inputs = [m.astype(dtype) for m in maps] if view else maps
            clear_spectrum_cache()
            for m, ref in zip(inputs, refs, strict=True):
                got = convolve(m, k, path="fft", dtype=dtype, workers=2)
                np.testing.assert_allclose(got, ref, rtol=0, atol=tol * ref.max())
            many = convolve_many(inputs, k, path="fft", dtype=dtype, workers=2)
            for got, ref in zip(many, refs, strict=True):
                np.testing.assert_allclose(got, ref, rtol=0, atol=tol * ref.max())
    clear_spectrum_cache()


def test_taps_only_for_symmetric_kernels_with_short_axis0_reach():
    from dosimetry.engine import fft as F

    rng = np.random.default_rng(10)
    sym = _symmetric_kernel(rng, (3, 3, 3))
    asym = rng.random((5, 5, 5))
    n = (64, 64, 64)
    lo, hi = [10, 10, 10], [50, 50, 50]
    f32 = np.dtype(np.float32)
    assert F._box_and_spectrum(n, lo, hi, sym, "sym", f32, 1)[5]
    assert not F._box_and_spectrum(n, lo, hi, asym, "asym", f32, 1)[5]
    assert not F._box_and_spectrum(n, lo, hi, sym, "sym", f32, 1, allow_taps=False)[5]
    big = _symmetric_kernel(rng, (31, 2, 2))  # side 61 along axis 0: FFT pair
    assert not F._box_and_spectrum(n, lo, hi, big, "big", f32, 1)[5]
    F.clear_spectrum_cache()


def test_workspace_is_reused_and_never_shared_or_read_stale():
    """The FFT path's work array is kept between calls and reused; results do not depend
    on what a previous call left in it (a larger and a smaller geometry, both routes,
    after the buffer was filled with NaN), a call from another thread takes its own, and
    release_workspace frees it."""
    import threading

    from scipy import signal

    from dosimetry.engine import convolve, release_workspace
    from dosimetry.engine import fft as F

    rng = np.random.default_rng(11)
    big = rng.random((20, 22, 24))
    small = np.zeros((9, 10, 11))
    small[2:7, 3:8, 4:9] = rng.random((5, 5, 5))
    k = _symmetric_kernel(rng, (3, 4, 2))
    refs = [signal.convolve(m, k, mode="same", method="direct") for m in (big, small)]
    release_workspace()
    convolve(big, k, path="fft")
    assert len(F._WORKSPACE) == 1
    kept = F._WORKSPACE[0]
    kept[...] = 255  # NaN patterns in every float view of it
    for ratio in (0.0, 1e9):  # FFT pair / taps along axis 0
        F.TAPS_RATIO["float64"], saved = ratio, F.TAPS_RATIO["float64"]
        try:
            for m, ref in zip((big, small), refs, strict=True):
                got = convolve(m, k, path="fft")
                np.testing.assert_allclose(got, ref, rtol=0, atol=1e-12 * ref.max())
        finally:
            F.TAPS_RATIO["float64"] = saved
    assert F._WORKSPACE[0] is kept  # reused, not reallocated
    # while one call holds the buffer, another thread's call makes its own
    taken, buf = F._take_workspace((2, 3, 4), np.dtype(np.complex128))
    assert buf is kept and not F._WORKSPACE
    out: list[np.ndarray] = []
    t = threading.Thread(target=lambda: out.append(convolve(big, k, path="fft")))
    t.start()
    t.join(timeout=60)
    np.testing.assert_allclose(out[0], refs[0], rtol=0, atol=1e-12 * refs[0].max())
    assert len(F._WORKSPACE) == 1 and F._WORKSPACE[0] is not kept  # the thread's own
    F._give_workspace(buf)
    assert len(F._WORKSPACE) == 1 and F._WORKSPACE[0].nbytes == kept.nbytes  # one kept
    release_workspace()
    assert not F._WORKSPACE
    F.clear_spectrum_cache()


def test_workspace_cache_keeps_one_buffer_within_its_byte_bound(monkeypatch):
    from dosimetry.engine import fft as F

    F.release_workspace()
    monkeypatch.setattr(F, "WORKSPACE_MAX_BYTES", 1000)
    F._give_workspace(np.empty(2000, dtype=np.uint8))  # larger than the bound: not kept
    assert not F._WORKSPACE
    F._give_workspace(np.empty(600, dtype=np.uint8))
    F._give_workspace(np.empty(300, dtype=np.uint8))  # smaller: the larger one stays
    assert [x.nbytes for x in F._WORKSPACE] == [600]
    got, buf = F._take_workspace((10,), np.dtype(np.complex128))  # 160 bytes: fits
    assert buf.nbytes == 600 and got.shape == (10,) and not F._WORKSPACE
    F._give_workspace(buf)
    got, buf = F._take_workspace((100,), np.dtype(np.complex128))  # 1600 bytes: new
    assert buf.nbytes == 1600 and not F._WORKSPACE  # the too-small kept one freed
    F.release_workspace()


def test_symmetry_cache_is_bounded(monkeypatch):
    from dosimetry.engine import fft as F

    monkeypatch.setattr(F, "_SYMMETRIC", {})
    monkeypatch.setattr(F, "_SYMMETRIC_MAX", 3)
    rng = np.random.default_rng(12)
    sym = _symmetric_kernel(rng, (2, 2, 2))
    asym = rng.random((3, 3, 3))
    for i in range(7):
        assert F.symmetric_kernel(sym, f"s{i}") and not F.symmetric_kernel(asym, f"a{i}")
        assert len(F._SYMMETRIC) <= 3
