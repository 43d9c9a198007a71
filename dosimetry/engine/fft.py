"""FFT path: exact linear convolution with real FFTs, zero padding and cached kernel spectra.

The source map is cropped to the bounding box of its non-zero voxels; only that box
(plus the kernel's reach, clipped to the grid) can receive dose, everything else is
exactly zero. The box is zero-padded to FFT lengths ``L >= b + h + max(h_lo, h_hi)``
per axis (``b`` box size, ``h`` kernel half width, ``h_lo``/``h_hi`` how far the output
extends before/after the box), which rules out wrap-around: the circular convolution
equals the linear one on every output voxel kept. The kernel is placed with its centre at
index 0 (negative offsets wrapped to the end), so no half-voxel shift arises, and its
real-FFT spectrum is cached by ``(L, kernel hash, dtype)`` and reused across maps.
A kernel symmetric under each axis flip has a real spectrum, stored as such (half the
memory, a real-by-complex product). For such a kernel with a short reach along axis 0,
that axis is not transformed: the 2-D spectra of the source planes are convolved along
it directly with the 2-D spectra of the kernel's planes (a linear convolution of
``2 h0 + 1`` taps, paired by symmetry), which is exact and, for short kernels, cheaper
than the padded FFT pair it replaces (:func:`use_taps`).

References
----------
Oppenheim AV, Schafer RW. Discrete-Time Signal Processing, 3rd ed. Prentice Hall 2010,
section 8.7 (linear convolution with the DFT; zero padding to avoid time aliasing).
"""

from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.fft as sfft

from ._blocks import run_blocks, thread_count
from ._numba import (
    axial_taps,
    copy_planes,
    cosine_spectrum_rows,
    embed_axis1,
    embed_box_real,
    multiply_spectrum,
    place_result,
    zero_planes_outside,
)

__all__ = [
    "fft_convolve",
    "clear_spectrum_cache",
    "spectrum_cache_info",
    "fft_shape",
    "use_taps",
    "TAPS_RATIO",
    "release_workspace",
    "WORKSPACE_MAX_BYTES",
]

log = logging.getLogger(__name__)

_CACHE: OrderedDict[tuple[Any, ...], np.ndarray] = OrderedDict()
_CACHE_LOCK = threading.Lock()
#: Upper bound on the bytes held by cached spectra (oldest dropped first).
CACHE_MAX_BYTES = 2 * 1024**3
#: Symmetric kernels up to this side along axes 0 and 1 (the contractions' lengths) get
#: their spectrum by cosine sums (:func:`_cosine_spectrum`), larger ones by the pruned
#: FFT of the kernel. Measured on 2 cores (float32 spectra, FFT grids 105-400 per axis):
#: cosine sums 1.3-3.3x faster for sides 11-41, equal or slower for side 81.
_COSINE_MAX_SIDE = 51
#: Axis 0 of a symmetric kernel is convolved directly in the planes' 2-D spectra (taps)
#: instead of by an FFT pair along axis 0 when ``o0 (h0 + 1) <= ratio * L0 log2 L0``
#: (``o0`` output planes, ``h0`` the kernel's half width along axis 0, ``L0`` the FFT
#: length it would need), per working precision. Measured on 2 cores (realistic
#: benchmark maps of 128^3 and 160x256x256, kernel sides 11-41, both ways forced): the
#: taps were faster below ratios of 1.6-1.9 (float32) and 1.3-1.5 (float64), i.e. for
#: sides up to ~25 (float32) and ~21 (float64); benchmarks/README.md has the sweep.
TAPS_RATIO = {"float32": 1.6, "float64": 1.3}
#: Largest complex work array (bytes) kept between calls for reuse: a new array of that
#: size costs a first touch of every page (page faults, measured at ~0.8 ms per 8 MiB on
#: the 2-vCPU VM of benchmarks/README.md, where keeping it made four 128^3 time points
#: ~15 % faster). Larger work arrays are freed after the call; :func:`release_workspace`
#: frees the kept one.
WORKSPACE_MAX_BYTES = 256 * 1024**2
#: Forward transforms read a map already in the working dtype through a view (the
#: box and its zero reach along axis 2; rfft pads to the FFT length) instead of a padded
#: copy. False: always copy (kept for the test that both give the same numbers).
VIEW_FORWARD = True
_STATS = {"hits": 0, "misses": 0}
_SYMMETRIC: dict[str, bool] = {}
_SYMMETRIC_MAX = 4096  # kernels remembered by symmetric_kernel (a long session stays small)
_WORKSPACE: list[np.ndarray] = []  # at most one flat byte buffer
_WORKSPACE_LOCK = threading.Lock()


def _new_locks_in_child() -> None:
    """A child forked while another thread held a lock would wait on it forever."""
    global _CACHE_LOCK, _WORKSPACE_LOCK
    _CACHE_LOCK = threading.Lock()
    _WORKSPACE_LOCK = threading.Lock()


os.register_at_fork(after_in_child=_new_locks_in_child)


def clear_spectrum_cache() -> None:
    """Forget every cached kernel spectrum."""
    with _CACHE_LOCK:
        _CACHE.clear()
        _STATS["hits"] = 0
        _STATS["misses"] = 0


def release_workspace() -> None:
    """Free the work array kept between calls of the FFT path (see
    :data:`WORKSPACE_MAX_BYTES`)."""
    with _WORKSPACE_LOCK:
        _WORKSPACE.clear()


def _take_workspace(shape: tuple[int, ...], dt: np.dtype[Any]) -> tuple[np.ndarray, np.ndarray]:
    """An uninitialised ``dt`` array of ``shape`` viewing the kept byte buffer if it is
    large enough (taken out of the cache while in use, so concurrent calls never share
    it), else a new buffer; returns ``(array, buffer)`` (give the buffer back with
    :func:`_give_workspace`)."""
    nbytes = int(np.prod(shape)) * dt.itemsize
    with _WORKSPACE_LOCK:
        buf = _WORKSPACE.pop() if _WORKSPACE else None
    if buf is None or buf.nbytes < nbytes:
        del buf  # freed before the new one is made
        buf = np.empty(nbytes, dtype=np.uint8)
    return buf[:nbytes].view(dt).reshape(shape), buf


def _give_workspace(buf: np.ndarray) -> None:
    if buf.nbytes > WORKSPACE_MAX_BYTES:
        return
    with _WORKSPACE_LOCK:
        if not _WORKSPACE or _WORKSPACE[0].nbytes < buf.nbytes:
            _WORKSPACE[:] = [buf]


def spectrum_cache_info() -> dict[str, int]:
    """Entries, bytes, hits and misses of the kernel-spectrum cache."""
    with _CACHE_LOCK:
        return {
            "entries": len(_CACHE),
            "bytes": int(sum(v.nbytes for v in _CACHE.values())),
            "hits": _STATS["hits"],
            "misses": _STATS["misses"],
        }


def _round_up(n: int, step: int) -> int:
    return -(-n // step) * step


def fft_shape(
    box: tuple[int, ...],
    reach_lo: tuple[int, ...],
    reach_hi: tuple[int, ...],
    half: tuple[int, ...],
) -> tuple[int, int, int]:
    """FFT lengths for a source box: ``L >= b + h + max(h_lo, h_hi)``, fast for scipy.

    The bound is rounded up to a multiple of 8 before taking the next fast length so that
    maps of slightly different extent on the same grid share a cached kernel spectrum.

    >>> fft_shape((100, 100, 100), (0, 0, 0), (0, 0, 0), (5, 5, 5))
    (112, 112, 120)
    """
    out = []
    for ax in range(3):
        need = box[ax] + half[ax] + max(reach_lo[ax], reach_hi[ax])
        out.append(int(sfft.next_fast_len(_round_up(need, 8), real=(ax == 2))))
    return (out[0], out[1], out[2])


def _wrap_along(a: np.ndarray, axis: int, length: int) -> np.ndarray:
    """Zero-pad the centred odd axis to ``length`` with the centre at index 0."""
    h = a.shape[axis] // 2
    pos = [slice(None)] * a.ndim
    pos[axis] = slice(h, None)
    neg = [slice(None)] * a.ndim
    neg[axis] = slice(0, h)
    out_shape = list(a.shape)
    out_shape[axis] = length
    out = np.zeros(out_shape, dtype=a.dtype)
    dst_pos = [slice(None)] * a.ndim
    dst_pos[axis] = slice(0, h + 1)
    out[tuple(dst_pos)] = a[tuple(pos)]
    if h:
        dst_neg = [slice(None)] * a.ndim
        dst_neg[axis] = slice(length - h, length)
        out[tuple(dst_neg)] = a[tuple(neg)]
    return out


def bounds_from_extents(ext: np.ndarray) -> tuple[list[int], list[int]] | None:
    """Non-zero bounding box from per-row extents (see ``_numba.row_extents``)."""
    rows = ext[:, :, 0] >= 0
    if not np.any(rows):
        return None
    k = np.flatnonzero(rows.any(axis=1))
    j = np.flatnonzero(rows.any(axis=0))
    i_lo = int(ext[:, :, 0][rows].min())
    i_hi = int(ext[:, :, 1][rows].max()) + 1
    return [int(k[0]), int(j[0]), i_lo], [int(k[-1]) + 1, int(j[-1]) + 1, i_hi]


def nonzero_bounds(src: np.ndarray) -> tuple[list[int], list[int]] | None:
    """``(lo, hi)`` index bounds (hi exclusive) of the non-zero voxels, or None if none."""
    from ._numba import nonzero_bounds as _bounds

    b = _bounds(src)
    if b[0, 0] < 0:
        return None
    return [int(v) for v in b[:, 0]], [int(v) for v in b[:, 1]]


def _is_symmetric(kernel: np.ndarray) -> bool:
    scale = float(np.max(np.abs(kernel))) or 1.0
    for ax in range(3):
        if not np.allclose(kernel, np.flip(kernel, axis=ax), rtol=0.0, atol=1e-13 * scale):
            return False
    return True


def _cosine_table(half: int, length: int, count: int) -> np.ndarray:
    """``(count, half + 1)`` float64: ``w_d cos(2 pi f d / length)`` for frequencies ``f``
    and offsets ``d >= 0`` (``w_0 = 1``, else 2: the pair of offsets ``+-d``)."""
    d = np.arange(half + 1)
    f = np.arange(count)
    weight = np.where(d == 0, 1.0, 2.0)
    return np.ascontiguousarray(weight * np.cos(2.0 * np.pi * np.outer(f, d) / length))


def _cosine_spectrum(
    kernel: np.ndarray, shape: tuple[int, int, int], dtype: np.dtype[Any], workers: int | None
) -> np.ndarray:
    """Real spectrum of a kernel symmetric under each axis flip, on the rfft grid of
    ``shape`` (``(L0, L1, L2 // 2 + 1)``), by separable cosine sums in float64.

    For such a kernel the DFT of its wrapped form is
    ``K(f) = sum_d k(d) prod_a cos(2 pi f_a d_a / L_a)``, i.e. per axis
    ``k(0) + 2 sum_{d>0} k(d) cos(2 pi f d / L)``: three contractions over the kernel's
    non-negative octant, exact to float64 rounding before the cast to ``dtype``. The
    large two run as Numba loops over blocks of axis-1 rows on the engine's thread pool
    (not in a multi-threaded BLAS, whose spinning threads would slow the FFT stages that
    follow).
    """
    h = [s // 2 for s in kernel.shape]
    octant = np.asarray(kernel[h[0] :, h[1] :, h[2] :], dtype=np.float64)
    nfreq = (shape[0], shape[1], shape[2] // 2 + 1)

    c0, c1, c2 = (_cosine_table(h[a], shape[a], nfreq[a]) for a in range(3))
    # the smallest contraction (octant x axis-2 cosines) in NumPy: (h0+1)(h1+1) rows
    t1 = np.ascontiguousarray(np.einsum("abc,ic->abi", octant, c2))
    spec = np.empty(nfreq, dtype=dtype)
    run_blocks(
        lambda j0, j1: cosine_spectrum_rows(t1, c0, c1, spec, j0, j1),
        nfreq[1],
        nfreq[0] * nfreq[2] * 8,
        thread_count(workers),
    )
    return spec


def _axial_spectrum(
    kernel: np.ndarray, shape: tuple[int, int, int], dtype: np.dtype[Any], workers: int | None
) -> np.ndarray:
    """Spectra of the kernel's planes ``d = 0 .. h0`` (axis-0 offsets) over axes 1 and 2,
    for a kernel symmetric under each axis flip: ``(h0 + 1, L1, 2 (L2 // 2 + 1))`` in
    ``dtype``, each real value stored twice (the real and imaginary parts of the complex
    values it multiplies in :func:`dosimetry.engine._numba.axial_taps`). Cosine sums in
    float64 as in :func:`_cosine_spectrum`, without the axis-0 sum."""
    h = [s // 2 for s in kernel.shape]
    octant = np.asarray(kernel[h[0] :, h[1] :, h[2] :], dtype=np.float64)
    nc = shape[2] // 2 + 1

    t1 = np.ascontiguousarray(np.einsum("abc,ic->abi", octant, _cosine_table(h[2], shape[2], nc)))
    planes = np.empty((h[0] + 1, shape[1], nc), dtype=np.float64)
    c1 = _cosine_table(h[1], shape[1], shape[1])
    identity = np.eye(h[0] + 1)  # no sum over axis 0: one output "frequency" per plane
    run_blocks(
        lambda j0, j1: cosine_spectrum_rows(t1, identity, c1, planes, j0, j1),
        shape[1],
        (h[0] + 1) * nc * 8,
        thread_count(workers),
    )
    out = np.empty((h[0] + 1, shape[1], 2 * nc), dtype=dtype)
    out[:, :, 0::2] = planes
    out[:, :, 1::2] = planes
    return out


def symmetric_kernel(kernel: np.ndarray, key: str) -> bool:
    """Whether ``kernel`` (identified by ``key``) is symmetric under each axis flip, to
    1e-13 of its largest magnitude; cached per key (at most :data:`_SYMMETRIC_MAX`
    keys: the cache starts afresh when full)."""
    sym = _SYMMETRIC.get(key)
    if sym is None:
        if len(_SYMMETRIC) >= _SYMMETRIC_MAX:
            _SYMMETRIC.clear()
        sym = _SYMMETRIC[key] = _is_symmetric(kernel)
    return sym


def use_taps(o0: int, h0: int, length0: int, dtype: str = "float64") -> bool:
    """Whether axis 0 goes by direct taps rather than an FFT pair (see :data:`TAPS_RATIO`).

    >>> use_taps(128, 5, 140), use_taps(128, 40, 216)
    (True, False)
    """
    return bool(o0 * (h0 + 1) <= TAPS_RATIO[dtype] * length0 * np.log2(max(length0, 2)))


def _spectrum(
    kernel: np.ndarray,
    shape: tuple[int, int, int],
    key: str,
    dtype: np.dtype[Any],
    workers: int | None,
    taps: bool = False,
) -> np.ndarray:
    ck = (("taps", shape[1], shape[2]) if taps else shape, key, dtype.str)
    with _CACHE_LOCK:
        spec = _CACHE.get(ck)
        if spec is not None:
            _CACHE.move_to_end(ck)
            _STATS["hits"] += 1
            return spec
        _STATS["misses"] += 1
    symmetric = symmetric_kernel(kernel, key)
    if taps:
        spec = _axial_spectrum(kernel, shape, dtype, workers)
    elif symmetric and max(kernel.shape[:2]) <= _COSINE_MAX_SIDE:
        spec = _cosine_spectrum(kernel, shape, dtype, workers)
    else:
        # Pruned transform of the kernel placed with its centre at index 0 (negative
        # offsets wrapped to the end): each axis is padded only when it is transformed,
        # so the first two passes touch only the kernel's own rows. Computed in the
        # working precision.
        work = np.float32 if dtype == np.float32 else np.float64
        full = sfft.rfft(_wrap_along(kernel.astype(work), 2, shape[2]), axis=2, workers=workers)
        full = sfft.fft(_wrap_along(full, 1, shape[1]), axis=1, workers=workers, overwrite_x=True)
        full = sfft.fft(_wrap_along(full, 0, shape[0]), axis=0, workers=workers, overwrite_x=True)
        if symmetric:  # real spectrum: stored as such (half the memory, real product)
            spec = np.ascontiguousarray(full.real, dtype=dtype)
        else:
            cdt = np.complex64 if dtype == np.float32 else np.complex128
            spec = np.ascontiguousarray(full, dtype=cdt)
        del full
    with _CACHE_LOCK:
        _CACHE[ck] = spec
        while len(_CACHE) > 1 and sum(v.nbytes for v in _CACHE.values()) > CACHE_MAX_BYTES:
            _CACHE.popitem(last=False)
    return spec


def _geometry(
    n: tuple[int, ...], lo: Sequence[int], hi: Sequence[int], kernel_shape: tuple[int, ...]
) -> tuple[
    tuple[int, ...], tuple[int, ...], tuple[int, ...], tuple[int, ...], tuple[int, int, int]
]:
    """Source box size, output reach below and above it (clipped to the grid), the
    kernel's effective half widths (offsets beyond box + reach link no source voxel to a
    kept output voxel) and the FFT lengths, for sources in ``[lo, hi)`` of a grid ``n``."""
    half = [s // 2 for s in kernel_shape]
    out_lo = [max(0, lo[a] - half[a]) for a in range(3)]
    out_hi = [min(n[a], hi[a] + half[a]) for a in range(3)]
    box = tuple(hi[a] - lo[a] for a in range(3))
    reach_lo = tuple(lo[a] - out_lo[a] for a in range(3))
    reach_hi = tuple(out_hi[a] - hi[a] for a in range(3))
    eff = tuple(min(half[a], box[a] - 1 + max(reach_lo[a], reach_hi[a])) for a in range(3))
    return box, reach_lo, reach_hi, eff, fft_shape(box, reach_lo, reach_hi, eff)


def _box_and_spectrum(
    n: tuple[int, ...],
    lo: Sequence[int],
    hi: Sequence[int],
    kernel: np.ndarray,
    key: str,
    dt: np.dtype,
    workers: int | None,
    allow_taps: bool = True,
) -> tuple[
    tuple[int, ...], tuple[int, ...], tuple[int, ...], tuple[int, int, int], np.ndarray, bool
]:
    """FFT geometry for sources in ``[lo, hi)`` of a grid ``n``, and the kernel spectrum.

    Returns the source box size, the output reach below and above it (clipped to the
    grid), the FFT lengths, the (cached) kernel spectrum and whether axis 0 goes by
    direct taps (:func:`use_taps`; the spectrum is then :func:`_axial_spectrum`'s).
    Kernel offsets beyond box + reach cannot link a source voxel to a kept output voxel,
    so they are cropped first.
    """
    box, reach_lo, reach_hi, eff, shape = _geometry(n, lo, hi, kernel.shape)
    half = tuple(s // 2 for s in kernel.shape)
    if eff != half:
        kernel = kernel[tuple(slice(half[a] - eff[a], half[a] + eff[a] + 1) for a in range(3))]
        key = f"{key}/crop{eff}"
    o0 = box[0] + reach_lo[0] + reach_hi[0]
    taps = (
        allow_taps
        and symmetric_kernel(kernel, key)
        and use_taps(o0, eff[0], shape[0], "float32" if dt == np.float32 else "float64")
    )
    spec = _spectrum(kernel, shape, key, dt, workers, taps)
    return box, reach_lo, reach_hi, shape, spec, taps


def fft_convolve(
    src: np.ndarray,
    kernel: np.ndarray,
    *,
    key: str,
    dtype: type[np.floating] | np.dtype[Any] = np.float64,
    workers: int | None = None,
    extents: np.ndarray | None = None,
    roundoff: tuple[float, bool] = (np.inf, False),
    counts: np.ndarray | None = None,
) -> np.ndarray:
    """Linear "same" convolution of ``src`` with the centred odd-sided ``kernel`` by FFT.

    Parameters
    ----------
    src
        ``(n0, n1, n2)`` real array (not modified).
    kernel
        Odd-sided real array, centre = source voxel.
    key
        Identity of ``kernel`` for the spectrum cache (e.g. its SHA-256).
    dtype
        ``float32`` or ``float64``: precision of the transforms.
    workers
        Threads for :mod:`scipy.fft` (``None``: all cores).
    extents
        :func:`dosimetry.engine._numba.row_extents` of ``src`` when already known.
    roundoff, counts
        ``(tol, clip)`` and a 2-element int64 array: while the result is placed, its
        non-finite values and values below ``-tol`` are counted into ``counts`` and, with
        ``clip``, values in ``[-tol, 0)`` are set to 0 (FFT round-off of a non-negative
        convolution; see :func:`dosimetry.engine.convolve.convolve`).

    Returns
    -------
    numpy.ndarray
        ``dtype`` array of ``src``'s shape; equals ``scipy.signal.convolve(src, kernel,
        mode="same")`` to rounding.
    """
    dt = np.dtype(dtype)
    n = src.shape
    bounds = nonzero_bounds(src) if extents is None else bounds_from_extents(extents)
    if bounds is None:
        return np.zeros(n, dtype=dt)
    lo, hi = bounds
    box, reach_lo, reach_hi, shape, spec, taps = _box_and_spectrum(
        n, lo, hi, kernel, key, dt, workers
    )
    # The box is placed at offset reach_lo inside the FFT lengths, so the kept output
    # (box start - reach_lo .. box end + reach_hi) occupies indices 0 .. o-1: no wrapped
    # pieces to reassemble. Pruned transforms: each axis is padded only when it is
    # transformed, and the inverse passes keep only the output rows that are needed.
    out = np.empty(n, dtype=dt)
    bad, deep = _blocked_convolve(
        src, lo, box, reach_lo, reach_hi, shape, spec, taps, dt, workers, out, roundoff
    )
    if counts is not None:
        counts += (bad, deep)
    log.debug("fft_convolve: box %s, fft shape %s, axis-0 taps %s, dtype %s", box, shape, taps, dt)
    return out


def _in_place(func: Any, a: np.ndarray, axis: int, workers: int | None) -> None:
    """``a[...] = func(a, axis=axis)`` for a complex transform, in place where scipy can
    (contiguous arrays and leading-axis views), else copied back."""
    res = func(a, axis=axis, workers=workers, overwrite_x=True)
    if res.ctypes.data != a.ctypes.data:
        a[...] = res


def _blocked_convolve(
    src: np.ndarray,
    lo: Sequence[int],
    box: tuple[int, ...],
    reach_lo: tuple[int, ...],
    reach_hi: tuple[int, ...],
    shape: tuple[int, ...],
    spec: np.ndarray,
    taps: bool,
    dt: np.dtype[Any],
    workers: int | None,
    out: np.ndarray,
    roundoff: tuple[float, bool],
) -> tuple[int, int]:
    """Circular convolution of the source box (zero-padded to ``shape``) with the kernel
    spectrum, placed into ``out`` (zero elsewhere) with the round-off checks of
    :func:`dosimetry.engine._numba.place_result`; returns its counts.

    Cache-blocked: the transforms run in stages over blocks of a few planes or columns,
    each block's passes done while it is in the cache of the core that owns it (one pass
    over main memory per stage instead of one per transform and copy):

    1. per block of source planes: zero-padded copy, real FFT along axis 2, zero-padded
       copy into the complex work array, FFT along axis 1;
    2. per block of axis-1 columns: FFT along axis 0, product with the spectrum, inverse
       FFT along axis 0 (only the kept output planes are written back);
    3. per block of kept planes: inverse FFT along axis 1, inverse real FFT along axis 2,
       placement into ``out`` with the checks.

    With ``taps`` (a symmetric kernel whose axis-0 reach is short, :func:`use_taps`)
    there is no stage 2 and no padding along axis 0: stage 3 first convolves the planes'
    2-D spectra along axis 0 with the kernel planes' spectra
    (:func:`dosimetry.engine._numba.axial_taps`; ``spec`` from :func:`_axial_spectrum`),
    which is exact, as axis 0 is then a plain linear convolution.

    Blocks run on a pool of ``workers`` threads (the transforms and Numba copies release
    the GIL), each transform single-threaded. The complex work array is kept between
    calls (:data:`WORKSPACE_MAX_BYTES`); every value of it that is read is written first
    in the same call.
    """
    o = [box[a] + reach_lo[a] + reach_hi[a] for a in range(3)]
    s = [lo[a] - reach_lo[a] for a in range(3)]
    cdt = np.dtype(np.complex64 if dt == np.float32 else np.complex128)
    threads = thread_count(workers)
    nc = shape[2] // 2 + 1
    h0 = spec.shape[0] - 1 if taps else 0
    # taps: the source planes with h0 + reach zero planes below and h0 + reach above,
    # so that every output plane's 2 h0 + 1 neighbours exist; else the FFT length
    planes = o[0] + 2 * h0 if taps else shape[0]
    first = reach_lo[0] + h0  # index of the box's first plane in f3
    # The output reach along axis 2 lies inside the map, outside the non-zero box: the
    # map's own columns there are zeros, so a map already in the working dtype is
    # transformed from a view (no padded copy); ``VIEW_FORWARD`` False forces the copy.
    view = VIEW_FORWARD and src.dtype == dt
    f3, workspace = _take_workspace((planes, shape[1], nc), cdt)
    tol, clip = roundoff

    def forward(q0: int, q1: int) -> None:
        # planes q0..q1-1 of f3: the source box's planes transformed, the others zero
        zero_planes_outside(f3[q0:q1], first - q0, first + box[0] - q0)
        p0 = max(q0 - first, 0)
        p1 = min(q1 - first, box[0])
        if p1 <= p0:
            return
        if view:  # the map's own zero columns around the box, then rfft's zero padding
            f1 = sfft.rfft(
                src[lo[0] + p0 : lo[0] + p1, lo[1] : lo[1] + box[1], s[2] : s[2] + o[2]],
                n=shape[2],
                axis=2,
                workers=1,
            )
        else:
            buf = np.empty((p1 - p0, box[1], shape[2]), dtype=dt)
            embed_box_real(src, lo[0] + p0, lo[1], lo[2], buf, reach_lo[2], box[2])
            f1 = sfft.rfft(buf, axis=2, workers=1, overwrite_x=True)
        slab = f3[first + p0 : first + p1]
        embed_axis1(f1, slab, reach_lo[1])
        _in_place(sfft.fft, slab, 1, 1)

    def middle(j0: int, j1: int) -> None:
        g = sfft.fft(f3[:, j0:j1], axis=0, workers=1)
        multiply_spectrum(g, spec[:, j0:j1])
        _in_place(sfft.ifft, g, 0, 1)
        copy_planes(g, f3[:, j0:j1], o[0])

    flat = f3.view(dt).reshape(planes, -1)
    flat_spec = spec.reshape(spec.shape[0], -1)

    def inverse(k0: int, k1: int) -> tuple[int, int]:
        # output planes k0..k1-1: the kept planes' inverse transforms placed, others zero
        zero_planes_outside(out[k0:k1], s[0] - k0, s[0] + o[0] - k0)
        p0 = max(k0 - s[0], 0)
        p1 = min(k1 - s[0], o[0])
        if p1 <= p0:
            return 0, 0
        if taps:  # output plane p: f3 planes p .. p + 2 h0 around its source plane
            slab = np.empty((p1 - p0, shape[1], nc), dtype=cdt)
            axial_taps(flat, flat_spec, slab.view(dt).reshape(p1 - p0, -1), p0 + h0)
        else:
            slab = f3[p0:p1]
        _in_place(sfft.ifft, slab, 1, 1)
        res = sfft.irfft(slab[:, : o[1]], n=shape[2], axis=2, workers=1)
        return place_result(
            res, out[s[0] + p0 : s[0] + p1], 0, s[1], s[2], p1 - p0, o[1], o[2], tol, clip
        )

    plane = shape[1] * nc * cdt.itemsize
    try:  # run_blocks returns (or raises) only when no thread uses f3 any more
        run_blocks(forward, planes, plane, threads)
        if not taps:
            run_blocks(middle, shape[1], shape[0] * nc * cdt.itemsize, threads)
        counts = run_blocks(inverse, out.shape[0], plane, threads)
    finally:
        _give_workspace(workspace)
    return sum(c[0] for c in counts), sum(c[1] for c in counts)


def _union_bounds(
    bounds: list[tuple[list[int], list[int]] | None],
) -> tuple[list[int], list[int]] | None:
    boxes = [b for b in bounds if b is not None]
    if not boxes:
        return None
    lo = [min(b[0][a] for b in boxes) for a in range(3)]
    hi = [max(b[1][a] for b in boxes) for a in range(3)]
    return lo, hi


def fft_convolve_many(
    srcs: list[np.ndarray],
    kernel: np.ndarray,
    *,
    key: str,
    dtype: type[np.floating] | np.dtype[Any] = np.float64,
    workers: int | None = None,
    extents: list[np.ndarray] | None = None,
    max_stack_bytes: int = 2 * 1024**3,
    roundoff: list[tuple[float, bool]] | None = None,
    counts: list[np.ndarray] | None = None,
) -> list[np.ndarray]:
    """:func:`fft_convolve` of several maps of one grid with one kernel, transformed together.

    The maps share one bounding box (the union of their non-zero boxes), hence one set of
    FFT lengths and one cached kernel spectrum; they are stacked along a new leading axis
    and transformed over the last three axes in one call per pass (fewer passes over
    memory and thread start-ups than map-by-map). Stacks are cut so that the largest
    intermediate complex array stays below ``max_stack_bytes`` (at least one map per stack;
    0: the maps one at a time, still sharing the box and the spectrum).

    Parameters
    ----------
    srcs
        ``(n0, n1, n2)`` real arrays of the same shape (not modified).
    kernel, key, dtype, workers
        As for :func:`fft_convolve`.
    extents
        :func:`dosimetry.engine._numba.row_extents` of each map when already known.
    max_stack_bytes
        Memory bound for one stack (bytes of the complex spectrum of the stacked maps).
    roundoff, counts
        Per map, as for :func:`fft_convolve` (one-at-a-time transforms only: stacked
        results are placed without the checks).

    Returns
    -------
    list of numpy.ndarray
        One ``dtype`` array per map, each equal to ``fft_convolve(src, kernel, ...)`` to
        rounding.
    """
    dt = np.dtype(dtype)
    if not srcs:
        return []
    n = srcs[0].shape
    if extents is None:
        per = [nonzero_bounds(s) for s in srcs]
    else:
        per = [bounds_from_extents(e) for e in extents]
    bounds = _union_bounds(per)
    live = [m for m, b in enumerate(per) if b is not None]
    if bounds is None:
        return [np.zeros(n, dtype=dt) for _ in srcs]
    lo, hi = bounds
    cdt = np.complex64 if dt == np.float32 else np.complex128
    shape = _geometry(n, lo, hi, kernel.shape)[4]
    per_map = shape[0] * shape[1] * (shape[2] // 2 + 1) * np.dtype(cdt).itemsize
    step = max(1, int(max_stack_bytes // max(per_map, 1)))
    one_at_a_time = step == 1 or len(live) == 1
    # the blocked route writes every value of a live map's output; maps without non-zero
    # voxels, and the stacked route (it writes only the kept region), start from zeros
    outs = [
        np.empty(n, dtype=dt) if one_at_a_time and b is not None else np.zeros(n, dtype=dt)
        for b in per
    ]
    box, reach_lo, reach_hi, shape, spec, taps = _box_and_spectrum(
        n, lo, hi, kernel, key, dt, workers, allow_taps=one_at_a_time
    )
    keep = tuple(slice(lo[a] - reach_lo[a], hi[a] + reach_hi[a]) for a in range(3))
    r = reach_lo
    o = [box[a] + reach_lo[a] + reach_hi[a] for a in range(3)]
    if one_at_a_time:  # the single-map transform
        for i in live:
            tc = (np.inf, False) if roundoff is None else roundoff[i]
            bad, deep = _blocked_convolve(
                srcs[i],
                lo,
                box,
                reach_lo,
                reach_hi,
                shape,
                spec,
                taps,
                dt,
                workers,
                outs[i],
                tc,
            )
            if counts is not None:
                counts[i] += (bad, deep)
        log.debug(
            "fft_convolve_many: %d maps one at a time, box %s, fft shape %s", len(srcs), box, shape
        )
        return outs
    for start in range(0, len(live), step):
        idx = live[start : start + step]
        m = len(idx)
        buf = np.zeros((m, box[0], box[1], shape[2]), dtype=dt)
        for t, i in enumerate(idx):
            buf[t, :, :, r[2] : r[2] + box[2]] = srcs[i][
                lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]
            ]
        f1 = sfft.rfft(buf, axis=3, workers=workers, overwrite_x=True)
        del buf
        f2 = np.zeros((m, box[0], shape[1], f1.shape[3]), dtype=cdt)
        f2[:, :, r[1] : r[1] + box[1]] = f1
        del f1
        f2 = sfft.fft(f2, axis=2, workers=workers, overwrite_x=True)
        f3 = np.zeros((m, shape[0], shape[1], f2.shape[3]), dtype=cdt)
        f3[:, r[0] : r[0] + box[0]] = f2
        del f2
        f3 = sfft.fft(f3, axis=1, workers=workers, overwrite_x=True)
        for t in range(m):
            multiply_spectrum(f3[t], spec)
        f3 = sfft.ifft(f3, axis=1, workers=workers, overwrite_x=True)
        g = sfft.ifft(f3[:, : o[0]], axis=2, workers=workers)
        del f3
        res = sfft.irfft(g[:, :, : o[1]], n=shape[2], axis=3, workers=workers)
        del g
        for t, i in enumerate(idx):
            outs[i][keep] = res[t, :, :, : o[2]]
        del res
    log.debug(
        "fft_convolve_many: %d maps, box %s, fft shape %s, dtype %s", len(srcs), box, shape, dt
    )
    return outs
