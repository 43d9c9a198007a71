"""Exact linear convolution of an activity map with a voxel kernel, by the fastest path.

:func:`convolve` is ``scipy.signal.convolve(src, kernel, mode="same")`` for odd-sided,
centred kernels (a single source voxel returns the kernel at its place, cropped at the
border; nothing wraps around), computed either by

* ``"direct"``: Numba loops over the non-empty rows only: for kernels symmetric under
  each axis flip a scatter of each source row's 1-D convolutions with the kernel's
  distinct rows (:func:`dosimetry.engine._numba.convolve_direct_symmetric`), otherwise a
  gather; accumulation in the requested dtype; or
* ``"fft"``: real FFTs on the zero-padded bounding box of the map with cached kernel
  spectra (:mod:`dosimetry.engine.fft`).

``path="auto"`` picks from an operation-count model of both paths (logged at INFO).
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Sequence
from typing import Any, Literal, NamedTuple

import numpy as np

from ..errors import InputDataError, KernelError
from . import _numba
from ._blocks import usable_cpus
from .fft import fft_convolve, fft_convolve_many
from .fft import symmetric_kernel as _symmetric

__all__ = [
    "convolve",
    "convolve_many",
    "choose_path",
    "kernel_key",
    "count_invalid",
    "scan_map",
    "MapScan",
    "PATHS",
]

log = logging.getLogger(__name__)

Path = Literal["auto", "fft", "direct"]
PATHS: tuple[str, ...] = ("auto", "fft", "direct")

#: Cost model of the automatic path choice (seconds per counted operation, per row
#: visit, per FFT unit, per axis-0 tap and per map voxel; float32 and float64). Only the
#: ratios between the two paths matter; they were fitted (non-negative relative least
#: squares) to the times of both paths measured on a 2-vCPU Xeon (AVX-512) with 2
#: threads: 128^3 and 160x256x256 maps (realistic 20 % non-zero, and lesion maps 2 %,
#: 0.5 %, 0.1 % non-zero), kernel sides 7, 11, 15 (benchmarks/engine.py maps; 24 cases
#: per dtype; refit with benchmarks/path_model.py). In the fitting run the model picked
#: the faster path in 24/24 (float32) and 23/24 (float64) cases (the other 1.29x
#: slower); in later runs with the final direct loops in 24/24 and 22/24, and (after
#: the cheaper map scan) 24/24 and 24/24. "op": an
#: addition or multiply-add of the direct loops as counted in :func:`work_counts`;
#: "row": one visit of an output row by a source row (loop set-up, extents); "unit":
#: L log2 L per transformed voxel of the FFT box; "tap": per box voxel and axis-0 tap
#: where that axis goes by direct taps (:func:`dosimetry.engine.fft.use_taps`); "voxel":
#: per voxel of the map (output zeroing, checks, placement).
_DIRECT_S_PER_OP = {"float32": 3.9e-11, "float64": 6.9e-11}
_DIRECT_S_PER_ROW = {"float32": 5.4e-9, "float64": 5.7e-9}
_DIRECT_S_PER_VOXEL = {"float32": 7.8e-10, "float64": 9.6e-10}
_FFT_S_PER_UNIT = {"float32": 3.4e-10, "float64": 6.0e-10}
_FFT_S_PER_TAP = {"float32": 3.7e-11, "float64": 4.6e-11}
_FFT_S_PER_VOXEL = _DIRECT_S_PER_VOXEL  # fitted as one cost (both write the output once)


def kernel_key(kernel: np.ndarray) -> str:
    """SHA-256 of the kernel's shape, dtype and bytes (the spectrum-cache key)."""
    h = hashlib.sha256()
    k = np.ascontiguousarray(kernel, dtype=np.float64)
    h.update(repr(k.shape).encode())
    h.update(k.tobytes())
    return h.hexdigest()


def count_invalid(a: np.ndarray) -> tuple[int, int]:
    """(NaN/inf count, negative count) of any real array, in one parallel pass if 3-D float."""
    if a.ndim == 3 and a.dtype in (np.float32, np.float64):
        return _numba.count_nonfinite_negative(a)
    if not np.issubdtype(a.dtype, np.floating):
        return 0, int(np.count_nonzero(a < 0))
    finite = np.isfinite(a)
    return int(a.size - np.count_nonzero(finite)), int(np.count_nonzero(a[finite] < 0))


class MapScan(NamedTuple):
    """One validating pass over a 3-D map (:func:`scan_map`)."""

    #: NaN and infinite values.
    nonfinite: int
    #: Values below zero.
    negative: int
    #: Sum of the values (meaningless if ``nonfinite``).
    total: float
    #: ``(n0, n1, 2)`` first and last non-zero column of each row (``(-1, -2)``: empty).
    extents: np.ndarray


def scan_map(a: np.ndarray, workers: int | None = None) -> MapScan:
    """The pass over a 3-D float32/float64 map that :func:`convolve` makes to validate it
    and to choose its path. A caller that validates the map itself can pass the result
    to :func:`convolve` / :func:`convolve_many` (``scan=``), which then do not read the
    map a second time.

    >>> import numpy as np
    >>> a = np.zeros((2, 2, 4)); a[1, 0, 1:3] = 2.0; a[0, 1, 3] = -1.0
    >>> s = scan_map(a)
    >>> s.nonfinite, s.negative, s.total, s.extents[1, 0].tolist()
    (0, 1, 3.0, [1, 2])
    """
    if a.ndim != 3 or a.dtype not in (np.float32, np.float64):
        raise InputDataError(f"scan_map needs a 3-D float32/float64 array, got {a.dtype} {a.shape}")
    bad, neg, total, ext = _numba.scan_rows(a, workers)
    return MapScan(int(bad), int(neg), float(total), ext)


def _check(
    src: np.ndarray, kernel: np.ndarray, scan: MapScan | None = None
) -> tuple[tuple[int, float], np.ndarray]:
    """Validate; return the map's (negative count, sum) for the round-off bound and its
    row extents (:func:`dosimetry.engine._numba.row_extents`), from one pass (or from
    the caller's ``scan`` of this map)."""
    if src.ndim != 3:
        raise InputDataError(f"the map must be 3-D [slice, row, column], got shape {src.shape}")
    if kernel.ndim != 3 or any(s % 2 == 0 for s in kernel.shape):
        raise KernelError(
            f"the kernel must be 3-D with odd sides (centred on the source voxel), got "
            f"shape {kernel.shape}"
        )
    if not np.all(np.isfinite(kernel)):
        raise KernelError("the kernel contains NaN or infinite values")
    if scan is None:
        bad, neg, total, ext = _numba.scan_rows(src)
    else:
        bad, neg, total, ext = scan
        if ext.shape != (src.shape[0], src.shape[1], 2):
            raise InputDataError(
                f"scan= has extents of shape {ext.shape}, not those of the map {src.shape}"
            )
    if bad:
        raise InputDataError("the map contains NaN or infinite values")
    return (neg, total), ext


def work_counts(
    kernel_shape: tuple[int, ...], ext: np.ndarray, symmetric: bool, dtype: str = "float64"
) -> tuple[float, float, float, float]:
    """Work of the two paths for a map with row extents ``ext``: the direct loops'
    counted additions and multiply-adds and source-row visits; the FFT path's ``L log2 L`` units of the
    transforms over the non-zero box padded by the kernel and, where axis 0 goes by
    direct taps (:func:`dosimetry.engine.fft.use_taps`), its values x taps (else 0).
    All 0 for an empty map."""
    h = [s // 2 for s in kernel_shape]
    nonempty = ext[:, :, 0] >= 0
    if not np.any(nonempty):
        return 0.0, 0.0, 0.0, 0.0
    lengths = (ext[:, :, 1] - ext[:, :, 0] + 1)[nonempty].astype(np.float64)
    # each non-empty source row feeds (2h0+1)(2h1+1) output rows over length + 2 h2
    visits = float(lengths.size) * (2 * h[0] + 1) * (2 * h[1] + 1)
    padded = float((lengths + 2 * h[2]).sum())
    if symmetric:
        # scatter: the row's convolutions with the distinct kernel rows (h2 + 1 taps
        # from its shift sums; (a, b) and (b, a) share a row when h0 == h1), then one
        # addition per output row and value
        krows = (h[0] + 1) * (h[0] + 2) // 2 if h[0] == h[1] else (h[0] + 1) * (h[1] + 1)
        ops = padded * (krows * (h[2] + 1) + (h[2] + 1) + (2 * h[0] + 1) * (2 * h[1] + 1))
    else:
        ops = padded * (2 * h[0] + 1) * (2 * h[1] + 1) * (2 * h[2] + 1)
    from .fft import bounds_from_extents, use_taps

    bounds = bounds_from_extents(ext)
    assert bounds is not None
    size = [bounds[1][a] - bounds[0][a] + 2 * h[a] for a in range(3)]
    vol = float(np.prod(size))
    if symmetric and use_taps(size[0], h[0], size[0], dtype):
        return ops, visits, vol * math.log2(max(size[1] * size[2], 2)), vol * (h[0] + 1)
    return ops, visits, vol * math.log2(max(vol, 2.0)), 0.0


def _costs(
    src: np.ndarray, kernel_shape: tuple[int, ...], ext: np.ndarray, symmetric: bool, dtype: str
) -> tuple[float, float]:
    """Estimated seconds of the direct and FFT paths (see the cost-model constants)."""
    ops, visits, units, taps = work_counts(kernel_shape, ext, symmetric, dtype)
    if units == 0.0:
        return 0.0, 0.0
    n = float(src.size)
    direct = (
        _DIRECT_S_PER_OP[dtype] * ops
        + _DIRECT_S_PER_ROW[dtype] * visits
        + _DIRECT_S_PER_VOXEL[dtype] * n
    )
    fft = (
        _FFT_S_PER_UNIT[dtype] * units + _FFT_S_PER_TAP[dtype] * taps + _FFT_S_PER_VOXEL[dtype] * n
    )
    return direct, fft


def choose_path(
    src: np.ndarray,
    kernel: np.ndarray,
    path: str = "auto",
    dtype: str = "float64",
    extents: np.ndarray | None = None,
) -> str:
    """The path :func:`convolve` will take: ``"direct"`` or ``"fft"``.

    ``"auto"`` compares the estimated times (:func:`work_counts` and the fitted cost
    constants of this module) of the direct loops (non-empty rows x kernel reach) and of
    the FFT path (``L log L`` of the transforms over the map's non-zero bounding box,
    axis-0 taps).
    """
    if path not in PATHS:
        raise InputDataError(f"path={path!r}; valid: {', '.join(PATHS)}")
    if path != "auto":
        return path
    src = np.ascontiguousarray(src)
    key = kernel_key(kernel)
    ext = _numba.row_extents(src) if extents is None else extents
    direct, fft = _costs(src, kernel.shape, ext, _symmetric(kernel, key), dtype)
    chosen = "direct" if direct <= fft else "fft"
    log.info(
        "convolve: path=%s (direct ~%.3g op, fft ~%.3g op; kernel %s, map %s)",
        chosen,
        direct,
        fft,
        kernel.shape,
        src.shape,
    )
    return chosen


def convolve(
    tia_array: np.ndarray,
    kernel_array: np.ndarray,
    path: Path | str = "auto",
    dtype: str = "float64",
    workers: int | None = None,
    *,
    key: str | None = None,
    info: dict[str, Any] | None = None,
    scan: MapScan | None = None,
) -> np.ndarray:
    """Exact linear convolution, ``"same"`` size, kernel centred on the source voxel.

    Parameters
    ----------
    tia_array
        ``(n0, n1, n2)`` map (e.g. decays per voxel, Bq s); finite. Not modified.
    kernel_array
        Odd-sided ``(2h0+1, 2h1+1, 2h2+1)`` kernel (e.g. Gy/(Bq s)), centre = source voxel.
    path
        ``"auto"`` (chosen by :func:`choose_path`, logged), ``"fft"`` or ``"direct"``.
    dtype
        ``"float64"`` or ``"float32"``: precision of the result and of the arithmetic of
        either path (the direct path accumulates in this dtype: float32 sums of
        non-negative terms have a relative rounding error of about ``1e-7 * log2(terms)``,
        below the float32 FFT's absolute floor of ~3e-7 of the peak).
    workers
        Threads of the FFT path and of the map scan (``None``: every CPU this process
        may use). The direct path uses Numba's thread pool (``numba.set_num_threads``).
    key
        Identity of the kernel for the spectrum cache (computed when omitted).
    info
        A dict that receives ``"path"``, the path taken (``path="auto"`` decides from the
        same pass over the map that validates it).
    scan
        :func:`scan_map` of ``tia_array`` when the caller has made it (the map is then
        not read a second time for validation; it must be the scan of this array).

    Returns
    -------
    numpy.ndarray
        Array of ``tia_array``'s shape in ``dtype``:
        ``out[x] = sum_d kernel[h + d] * tia[x - d]`` with ``tia`` zero outside the grid.

    References
    ----------
    Bolch WE et al. MIRD Pamphlet No. 17. J Nucl Med 1999;40:11S-36S (dose as the
    convolution of the activity map with voxel S values).

    Examples
    --------
    >>> import numpy as np
    >>> src = np.zeros((5, 5, 5)); src[0, 2, 4] = 1.0
    >>> k = np.arange(27, dtype=float).reshape(3, 3, 3)
    >>> out = convolve(src, k, path="direct")
    >>> bool(np.array_equal(out[0:2, 1:4, 3:5], k[1:3, :, 0:2]))
    True
    """
    if dtype not in ("float64", "float32"):
        raise InputDataError(f"dtype={dtype!r}; valid: 'float64', 'float32'")
    src = np.asarray(tia_array)
    if src.dtype not in (np.float32, np.float64):
        src = src.astype(np.float64)
    src = np.ascontiguousarray(src)
    kernel = np.asarray(kernel_array, dtype=np.float64)
    stats, ext = _check(src, kernel, scan)
    key = kernel_key(kernel) if key is None else key
    if workers is None:
        workers = usable_cpus()
    chosen = choose_path(src, kernel, path, dtype, extents=ext)
    if info is not None:
        info["path"] = chosen
    if path != "auto":
        log.info(
            "convolve: path=%s (requested), kernel %s, map %s", chosen, kernel.shape, src.shape
        )
    out: np.ndarray
    if chosen == "fft":
        counts = np.zeros(2, dtype=np.int64)
        roundoff = _roundoff(stats, kernel, chosen, src.size, dtype)
        out = fft_convolve(
            src,
            kernel,
            key=key,
            dtype=np.dtype(dtype),
            workers=workers,
            extents=ext,
            roundoff=roundoff,
            counts=counts,
        )
        _report(out, int(counts[0]), int(counts[1]), roundoff)
    else:
        out, bad = _direct(src, kernel, key, ext, dtype)
        _report(out, bad, 0, (0.0, False))
    return out


def slice_order(n0: int, threads: int) -> np.ndarray:
    """Output slices interleaved across threads: Numba's parallel loops give each thread
    one contiguous block of iterations, so iteration block ``r`` holds the slices
    ``r, r + threads, r + 2 threads, ...`` and every thread gets slices from the whole
    map (activity is rarely spread evenly along the slice axis).

    >>> slice_order(5, 2).tolist()
    [0, 2, 4, 1, 3]
    """
    t = max(1, int(threads))
    return np.concatenate([np.arange(r, n0, t) for r in range(t)]).astype(np.int64)


def _direct(
    src: np.ndarray, kernel: np.ndarray, key: str, ext: np.ndarray, dtype: str
) -> tuple[np.ndarray, int]:
    """The direct loop's result and its count of non-finite values (checked while
    written: the direct path has no round-off below zero to clip)."""
    import numba

    out = np.empty(src.shape, dtype=np.dtype(dtype))
    threads = numba.get_num_threads()
    if _symmetric(kernel, key):
        h = [s // 2 for s in kernel.shape]
        octant = kernel[h[0] :, h[1] :, h[2] :]
        scale = float(np.max(np.abs(octant))) or 1.0
        swap = h[0] == h[1] and bool(
            np.allclose(octant, octant.transpose(1, 0, 2), rtol=0.0, atol=1e-13 * scale)
        )
        octant = np.ascontiguousarray(octant, dtype=out.dtype)
        bounds = _numba.direct_chunks(ext, h[0], h[2], threads)
        bad = _numba.convolve_direct_symmetric(src, octant, ext, out, swap, bounds)
    else:
        order = slice_order(src.shape[0], threads)
        bad = _numba.convolve_direct_general(
            src, np.ascontiguousarray(kernel, dtype=out.dtype), ext, out, order
        )
    return out, int(bad)


def _finish(out: np.ndarray, stats: tuple[int, float], kernel: np.ndarray, chosen: str) -> None:
    """Check the result is finite; on the FFT path zero its round-off below zero.

    The convolution of non-negative arrays is non-negative; an FFT computes it with an
    absolute error of order ``eps * log2(N) * max(out)`` (Gentleman & Sande 1966), which
    shows as tiny negative values where the true result is zero. Values above
    ``-tol`` with ``tol = 64 * eps * log2(N) * sum(src) * max(kernel)`` (a bound on that
    error, ``sum(src) * max(kernel)`` bounding the peak) are set to 0, in the same pass
    that checks finiteness; anything more negative is not round-off and raises.
    """
    roundoff = _roundoff(stats, kernel, chosen, out.size, str(out.dtype))
    bad, deep = _numba.clip_roundoff(out, *roundoff)
    _report(out, bad, deep, roundoff)


def _roundoff(
    stats: tuple[int, float], kernel: np.ndarray, chosen: str, size: int, dtype: str
) -> tuple[float, bool]:
    """``(tol, clip)`` of :func:`_finish` for a result of ``size`` values in ``dtype``."""
    neg, total = stats
    clip = chosen == "fft" and neg == 0 and size > 0 and float(np.min(kernel)) >= 0.0
    tol = 0.0
    if clip:
        eps = float(np.finfo(np.dtype(dtype)).eps)
        tol = 64.0 * eps * max(np.log2(max(size, 2)), 1.0) * total * float(np.max(kernel))
    return tol, clip


def _report(out: np.ndarray, bad: int, deep: int, roundoff: tuple[float, bool]) -> None:
    """Raise for non-finite values, or for values below the round-off bound."""
    tol, clip = roundoff
    if bad:
        raise InputDataError("convolution produced non-finite values (overflow?)")
    if clip and deep:
        low = float(np.min(out))
        raise InputDataError(
            f"FFT convolution gave {low:.3g}, below the round-off bound -{tol:.3g} for "
            "non-negative inputs; use path='direct' and report this map"
        )


def convolve_many(
    tia_arrays: Sequence[np.ndarray],
    kernel_array: np.ndarray,
    path: Path | str | Sequence[str] = "auto",
    dtype: str = "float64",
    workers: int | None = None,
    *,
    key: str | None = None,
    stack: bool = False,
    info: dict[str, Any] | None = None,
    scans: Sequence[MapScan] | None = None,
) -> list[np.ndarray]:
    """:func:`convolve` of several maps of one grid (e.g. time points) with one kernel.

    The kernel is checked, hashed and (FFT path) transformed once for all maps. Each map
    is checked and its path chosen as in :func:`convolve` (``"auto"``: per map, so a
    sparse late time point may take the direct loop while the others take the FFT). The
    maps on the FFT path share one bounding box (the union of theirs), hence one set of
    FFT lengths and one cached kernel spectrum; with ``stack=True`` they are transformed
    together, stacked along a new leading axis (:func:`dosimetry.engine.fft.fft_convolve_many`;
    stacks are cut to keep the stacked spectrum under 2 GiB), otherwise one after the other.

    Parameters
    ----------
    tia_arrays
        Sequence of ``(n0, n1, n2)`` maps of the same shape; finite. Not modified.
    kernel_array, dtype, workers, key
        As for :func:`convolve`.
    path
        As for :func:`convolve`, for all maps, or one entry per map.
    stack
        Transform the FFT-path maps together (True) or one at a time (False, the
        default: one map's intermediates at a time). The results are the same to
        rounding. Stacking was measured no faster on 2 cores (benchmarks/engine.py: the
        transforms are already parallel over the other axes, and the stacked
        intermediates leave the cache) and needs about m times the memory.
    info
        A dict that receives ``"paths"``, the path taken for each map.
    scans
        :func:`scan_map` of each map when the caller has made them (as for
        :func:`convolve`).

    Returns
    -------
    list of numpy.ndarray
        ``convolve(m, kernel_array, path, dtype, workers)`` for each map ``m``, in order
        (equal to it to rounding: the FFT lengths may differ by the shared bounding box).

    Raises
    ------
    InputDataError
        Empty sequence, maps of different shapes, a map that is not 3-D or not finite.

    Examples
    --------
    >>> import numpy as np
    >>> a = np.zeros((6, 6, 6)); a[1, 2, 3] = 2.0
    >>> b = np.zeros((6, 6, 6)); b[4, 4, 4] = 1.0
    >>> k = np.ones((3, 3, 3))
    >>> outs = convolve_many([a, b], k, path="fft")
    >>> [round(float(o.sum()), 9) for o in outs]
    [54.0, 27.0]
    """
    if dtype not in ("float64", "float32"):
        raise InputDataError(f"dtype={dtype!r}; valid: 'float64', 'float32'")
    paths = [path] * len(tia_arrays) if isinstance(path, str) else list(path)
    if len(paths) != len(tia_arrays):
        raise InputDataError(f"{len(paths)} paths for {len(tia_arrays)} maps")
    for p in paths:
        if p not in PATHS:
            raise InputDataError(f"path={p!r}; valid: {', '.join(PATHS)}")
    srcs: list[np.ndarray] = []
    for m in tia_arrays:
        a = np.asarray(m)
        if a.dtype not in (np.float32, np.float64):
            a = a.astype(np.float64)
        srcs.append(np.ascontiguousarray(a))
    if not srcs:
        raise InputDataError("convolve_many needs at least one map")
    shapes = {a.shape for a in srcs}
    if len(shapes) != 1:
        raise InputDataError(f"all maps must have the same shape, got {sorted(shapes)}")
    kernel = np.asarray(kernel_array, dtype=np.float64)
    if scans is not None and len(scans) != len(srcs):
        raise InputDataError(f"{len(scans)} scans for {len(srcs)} maps")
    checked = [_check(a, kernel, None if scans is None else scans[i]) for i, a in enumerate(srcs)]
    stats = [c[0] for c in checked]
    exts = [c[1] for c in checked]
    key = kernel_key(kernel) if key is None else key
    if workers is None:
        workers = usable_cpus()
    chosen = [
        choose_path(a, kernel, p, dtype, extents=e)
        for a, e, p in zip(srcs, exts, paths, strict=True)
    ]
    if info is not None:
        info["paths"] = list(chosen)
    outs: list[np.ndarray | None] = [None] * len(srcs)
    fft_idx = [i for i, c in enumerate(chosen) if c == "fft"]
    checked_in_place: set[int] = set()
    if fft_idx:
        roundoffs = [_roundoff(stats[i], kernel, "fft", srcs[i].size, dtype) for i in fft_idx]
        counts = [np.zeros(2, dtype=np.int64) for _ in fft_idx]
        res = fft_convolve_many(
            [srcs[i] for i in fft_idx],
            kernel,
            key=key,
            dtype=np.dtype(dtype),
            workers=workers,
            extents=[exts[i] for i in fft_idx],
            max_stack_bytes=2 * 1024**3 if stack else 0,  # 0: one map per stack
            roundoff=None if stack else roundoffs,
            counts=None if stack else counts,
        )
        for j, (i, r) in enumerate(zip(fft_idx, res, strict=True)):
            outs[i] = r
            if not stack:  # checked while placed
                _report(r, int(counts[j][0]), int(counts[j][1]), roundoffs[j])
                checked_in_place.add(i)
    for i, c in enumerate(chosen):
        if c == "direct":
            res_i, bad = _direct(srcs[i], kernel, key, exts[i], dtype)
            _report(res_i, bad, 0, (0.0, False))
            outs[i] = res_i
            checked_in_place.add(i)
    log.info("convolve_many: %d maps, paths %s", len(srcs), chosen)
    done: list[np.ndarray] = []
    for i, (st, o, c) in enumerate(zip(stats, outs, chosen, strict=True)):
        assert o is not None
        if i not in checked_in_place:
            _finish(o, st, kernel, c)
        done.append(o)
    return done
