"""Numba kernels of the dose engine: arrays and scalars in, arrays out.

The kernels are ``@njit(cache=True)``. The direct convolution loops run in parallel over
output slices (``prange``; the symmetric scatter over runs of slices of about equal
work), each thread owning its output slices (no write races), and
accumulate in the output's dtype (float64, or float32 where single precision was asked
for: twice the SIMD width, relative rounding ~1e-7 per voxel). The pieces of the FFT
path and the map scans are serial and ``nogil``: :mod:`dosimetry.engine._blocks` runs
them on blocks of planes on its thread pool (``scan_rows``, ``row_extents`` and
``count_nonfinite_negative`` are the Python wrappers that do so). The public functions
in :mod:`dosimetry.engine.convolve` check the arguments; these kernels trust them.

Convention (the same as ``scipy.signal.convolve(src, kernel, mode="same")`` for odd
kernel sides): ``out[x] = sum_d kernel[h + d] * src[x - d]`` with ``h`` the half widths,
``d`` running over ``-h..h`` per axis, and ``src`` taken as zero outside the grid.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from ._blocks import run_blocks, thread_count

__all__ = [
    "row_extents",
    "reachable_rows",
    "convolve_direct_symmetric",
    "direct_chunks",
    "convolve_direct_general",
    "nonzero_bounds",
    "count_nonfinite_negative",
    "clip_roundoff",
    "scan_rows",
    "scan_planes",
    "multiply_spectrum",
    "embed_box_real",
    "embed_axis1",
    "zero_planes_outside",
    "copy_planes",
    "cosine_spectrum_rows",
    "axial_taps",
    "place_result",
]


def row_extents(src: np.ndarray) -> np.ndarray:
    """First and last non-zero column of each row ``(k, j)``; ``(-1, -2)`` for empty rows.

    Returns an ``(n0, n1, 2)`` int64 array (from :func:`scan_rows`).
    """
    return scan_rows(src)[3]


@njit(cache=True)
def reachable_rows(ext: np.ndarray, h0: int, h1: int) -> np.ndarray:
    """``(n0, n1)`` bool: output row ``(k, j)`` has a non-empty source row within
    ``|dk| <= h0, |dj| <= h1`` (box dilation of the non-empty rows by running counts);
    other output rows receive nothing and are skipped by the direct loops."""
    n0, n1 = ext.shape[0], ext.shape[1]
    near = np.zeros((n0, n1), dtype=np.int64)  # non-empty rows within |dj| <= h1
    for k in range(n0):
        run = 0
        for j in range(min(h1, n1)):
            run += 1 if ext[k, j, 0] >= 0 else 0
        for j in range(n1):
            if j + h1 < n1:
                run += 1 if ext[k, j + h1, 0] >= 0 else 0
            if j - h1 - 1 >= 0:
                run -= 1 if ext[k, j - h1 - 1, 0] >= 0 else 0
            near[k, j] = run
    reach = np.zeros((n0, n1), dtype=np.bool_)
    for j in range(n1):
        run = 0
        for k in range(min(h0, n0)):
            run += near[k, j]
        for k in range(n0):
            if k + h0 < n0:
                run += near[k + h0, j]
            if k - h0 - 1 >= 0:
                run -= near[k - h0 - 1, j]
            reach[k, j] = run > 0
    return reach


@njit(cache=True)
def _kernel_rows(octant: np.ndarray, swap: bool) -> tuple[np.ndarray, np.ndarray]:
    """The distinct 1-D kernel rows ``octant[a, b, :]`` (with ``swap``, ``(a, b)`` and
    ``(b, a)`` share one) and the index of each ``(a, b)`` into them."""
    h0 = octant.shape[0] - 1
    h1 = octant.shape[1] - 1
    index = np.empty((h0 + 1, h1 + 1), dtype=np.int64)
    rows = np.empty(((h0 + 1) * (h1 + 1), octant.shape[2]), dtype=octant.dtype)
    n = 0
    for a in range(h0 + 1):
        for b in range(h1 + 1):
            if swap and b < a:
                index[a, b] = index[b, a]
            else:
                index[a, b] = n
                rows[n] = octant[a, b]
                n += 1
    return rows[:n].copy(), index


def direct_chunks(ext: np.ndarray, h0: int, h2: int, chunks: int) -> np.ndarray:
    """Boundaries of ``chunks`` runs of output slices of about equal work for
    :func:`convolve_direct_symmetric` (work of an output slice: the non-empty row
    lengths, padded by ``h2``, of the source slices within ``h0``).

    >>> ext = np.full((6, 1, 2), -1); ext[:, 0] = [0, 3]  # every row 4 long
    >>> direct_chunks(ext, 0, 0, 3).tolist()
    [0, 2, 4, 6]
    """
    n0 = ext.shape[0]
    nonempty = ext[:, :, 0] >= 0
    rows = np.where(nonempty, ext[:, :, 1] - ext[:, :, 0] + 1 + 2 * h2, 0).sum(axis=1)
    work = np.convolve(rows.astype(np.float64), np.ones(2 * h0 + 1))[h0 : h0 + n0]
    cum = np.concatenate([[0.0], np.cumsum(work + 1e-9)])  # + 1e-9: empty maps split too
    targets = cum[-1] * np.arange(1, chunks) / chunks
    inner = [int(np.argmin(np.abs(cum - x))) for x in targets]  # nearest boundary
    return np.array([0, *inner, n0], dtype=np.int64)


#: Loop length granule of :func:`convolve_direct_symmetric` (values). Measured on the
#: 2-vCPU Xeon of benchmarks/README.md: a 5-tap pass over 55 values took 5.6 ns, over 64
#: values 3.6 ns (LLVM's vector loop covers whole multiples of its step; the remainder
#: runs as scalar code), so the loops are padded to multiples of 32.
_VEC = 32


@njit(cache=True, nogil=True)
def _count_nonfinite_rows(out: np.ndarray, reach: np.ndarray, z0: int, z1: int) -> int:
    """Non-finite values in the rows ``(k, j)`` with ``reach[k, j]`` of slices ``z0..z1-1``."""
    count = 0
    for k in range(z0, z1):
        for j in range(out.shape[1]):
            if reach[k, j]:
                orow = out[k, j]
                for i in range(out.shape[2]):
                    v = orow[i]
                    count += 0 if (v == v) & (abs(v) != np.inf) else 1
    return count


@njit(cache=True, parallel=True, fastmath={"contract"})
def convolve_direct_symmetric(
    src: np.ndarray,
    octant: np.ndarray,
    ext: np.ndarray,
    out: np.ndarray,
    swap: bool,
    bounds: np.ndarray,
) -> int:
    """Linear "same" convolution with a kernel symmetric under each axis flip; returns
    the number of non-finite values written (overflow).

    Parameters
    ----------
    src
        ``(n0, n1, n2)`` source map (float32 or float64).
    octant
        ``(h0+1, h1+1, h2+1)``, ``out``'s dtype: ``kernel[h0+a, h1+b, h2+c]`` for offsets >= 0;
        the kernel equals it at ``(+-a, +-b, +-c)``.
    ext
        :func:`row_extents` of ``src``.
    out
        ``(n0, n1, n2)`` output (float32 or float64; sums are accumulated in its dtype),
        overwritten.
    swap
        The octant is also symmetric under exchanging its first two axes (cubic voxels,
        ``octant[a, b, :] == octant[b, a, :]``; requires ``h0 == h1``): the rows of
        ``(a, b)`` and ``(b, a)`` are computed once.
    bounds
        Non-decreasing output-slice boundaries ``0 = z_0 <= ... <= z_T = n0``
        (:func:`direct_chunks`): run ``t`` of the parallel loop owns the output slices
        ``z_t .. z_{t+1}-1`` (no write races) and visits the source slices within ``h0``
        of them.

    Notes
    -----
    A scatter from the non-empty source rows: for each, its full 1-D convolutions with
    the distinct kernel rows (``(h0+1)(h1+1)``, or about half with ``swap``) are
    computed once, from the row's symmetric shift sums ``s(i-c) + s(i+c)``, while the
    row is in cache, and each is added to the (up to four) output rows ``(k+-a, j+-b)``
    that share it, over the row's non-zero extent widened by ``h2``. Empty source rows
    cost nothing, which is what makes this path fast for sparse maps; the work is
    ~ (non-empty rows) x (2h0+1)(2h1+1) x (row length + 2 h2) additions plus the row
    convolutions. A source slice within ``h0`` of two runs is convolved by both.
    """
    n0, n1, n2 = out.shape
    h0 = octant.shape[0] - 1
    h1 = octant.shape[1] - 1
    h2 = octant.shape[2] - 1
    krows, index = _kernel_rows(octant, swap)
    nrows = krows.shape[0]
    reach = reachable_rows(ext, h0, h1)
    bad = 0
    for t in prange(bounds.shape[0] - 1):
        z0 = bounds[t]
        z1 = bounds[t + 1]
        for k in range(z0, z1):
            for j in range(n1):
                orow = out[k, j]
                for i in range(n2):
                    orow[i] = 0.0
        # loops run over whole multiples of _VEC values (LLVM's vector loop, no scalar
        # remainder): the buffers are wide enough, and zero beyond the data, so the
        # extra values computed are exact zeros
        width = n2 + 4 * h2 + 2 * _VEC
        padded = np.zeros(width + 2 * h2, dtype=out.dtype)  # row at 2 h2, zeros around
        shifts = np.empty((h2 + 1, width), dtype=out.dtype)
        conv = np.empty((nrows, width), dtype=out.dtype)
        for kk in range(max(0, z0 - h0), min(n0, z1 + h0)):
            for jj in range(n1):
                f = ext[kk, jj, 0]
                if f < 0:
                    continue
                g = ext[kk, jj, 1]
                length = g - f + 1
                m = length + 2 * h2  # full convolution: columns f - h2 .. g + h2
                mid = padded[2 * h2 : 2 * h2 + length]
                srow = src[kk, jj, f : g + 1]
                for i in range(length):
                    mid[i] = srow[i]
                mr = -(-m // _VEC) * _VEC + h2  # covers off + n below (off <= h2)
                centre = padded[h2 : h2 + mr]
                s0 = shifts[0, :mr]
                for i in range(mr):
                    s0[i] = centre[i]
                for c in range(1, h2 + 1):
                    sc = shifts[c, :mr]
                    left = padded[h2 - c : h2 - c + mr]
                    right = padded[h2 + c : h2 + c + mr]
                    for i in range(mr):
                        sc[i] = left[i] + right[i]
                for i in range(length):
                    mid[i] = 0.0
                # the part of the full convolution inside the grid
                x0 = max(0, f - h2)
                x1 = min(n2, g + h2 + 1)
                off = x0 - (f - h2)  # <= h2
                n = -(-(x1 - x0) // _VEC) * _VEC  # off + n <= mr; zeros beyond the data
                if x0 + n > n2:  # clipped at the row's end: the exact length
                    n = x1 - x0
                for q in range(nrows):
                    cq = conv[q, :n]
                    w0 = krows[q, 0]
                    sv = shifts[0, off : off + n]
                    for i in range(n):
                        cq[i] = w0 * sv[i]
                    for c in range(1, h2 + 1):
                        w = krows[q, c]
                        sv = shifts[c, off : off + n]
                        for i in range(n):
                            cq[i] += w * sv[i]
                for da in range(-h0, h0 + 1):
                    k = kk + da
                    if k < z0 or k >= z1:
                        continue
                    a = abs(da)
                    for db in range(-h1, h1 + 1):
                        j = jj + db
                        if j < 0 or j >= n1:
                            continue
                        cq = conv[index[a, abs(db)], :n]
                        dst = out[k, j, x0 : x0 + n]
                        for i in range(n):
                            dst[i] += cq[i]
        bad += _count_nonfinite_rows(out, reach, z0, z1)
    return bad


@njit(cache=True, parallel=True)
def convolve_direct_general(
    src: np.ndarray, kernel: np.ndarray, ext: np.ndarray, out: np.ndarray, order: np.ndarray
) -> int:
    """Linear "same" convolution with any odd-sided kernel (no symmetry assumed); returns
    the number of non-finite values written (overflow), counted while writing.

    ``out[k, j, i] = sum kernel[h0+a, h1+b, h2+c] * src[k-a, j-b, i-c]``, accumulated in
    ``out``'s dtype, empty source rows skipped (``ext`` from :func:`row_extents`).
    """
    n0, n1, n2 = src.shape
    h0 = kernel.shape[0] // 2
    h1 = kernel.shape[1] // 2
    h2 = kernel.shape[2] // 2
    reach = reachable_rows(ext, h0, h1)
    bad = 0
    for it in prange(n0):
        k = order[it]
        acc = np.zeros(n2, dtype=out.dtype)
        for j in range(n1):
            if not reach[k, j]:
                for i in range(n2):
                    out[k, j, i] = 0.0
                continue
            for i in range(n2):
                acc[i] = 0.0
            for a in range(-h0, h0 + 1):
                kk = k - a
                if kk < 0 or kk >= n0:
                    continue
                for b in range(-h1, h1 + 1):
                    jj = j - b
                    if jj < 0 or jj >= n1:
                        continue
                    f = ext[kk, jj, 0]
                    if f < 0:
                        continue
                    g = ext[kk, jj, 1]
                    for c in range(-h2, h2 + 1):
                        w = kernel[h0 + a, h1 + b, h2 + c]
                        # output i receives src[i - c]; src index in [f, g]
                        ilo = max(0, f + c)
                        ihi = min(n2 - 1, g + c)
                        if ihi < ilo:
                            continue
                        av = acc[ilo : ihi + 1]
                        sv = src[kk, jj, ilo - c : ihi + 1 - c]
                        for i in range(ihi + 1 - ilo):
                            av[i] += w * sv[i]
            for i in range(n2):
                v = acc[i]
                bad += 0 if (v == v) & (abs(v) != np.inf) else 1
                out[k, j, i] = v
    return bad


@njit(cache=True, parallel=True)
def nonzero_bounds(src: np.ndarray) -> np.ndarray:
    """``[[lo0, hi0], [lo1, hi1], [lo2, hi2]]`` (hi exclusive) of the non-zero voxels.

    All ``-1`` when ``src`` has no non-zero voxel.
    """
    n0, n1, n2 = src.shape
    per = np.full((n0, 4), -1, dtype=np.int64)  # jlo, jhi, ilo, ihi per slice
    for k in prange(n0):
        jlo = n1
        jhi = -1
        ilo = n2
        ihi = -1
        for j in range(n1):
            for i in range(n2):
                if src[k, j, i] != 0:
                    if j < jlo:
                        jlo = j
                    jhi = j
                    if i < ilo:
                        ilo = i
                    if i > ihi:
                        ihi = i
        if jhi >= 0:
            per[k, 0] = jlo
            per[k, 1] = jhi
            per[k, 2] = ilo
            per[k, 3] = ihi
    out = np.full((3, 2), -1, dtype=np.int64)
    for k in range(n0):
        if per[k, 1] < 0:
            continue
        if out[0, 0] < 0:
            out[0, 0] = k
            out[1, 0] = per[k, 0]
            out[1, 1] = per[k, 1]
            out[2, 0] = per[k, 2]
            out[2, 1] = per[k, 3]
        out[0, 1] = k
        out[1, 0] = min(out[1, 0], per[k, 0])
        out[1, 1] = max(out[1, 1], per[k, 1])
        out[2, 0] = min(out[2, 0], per[k, 2])
        out[2, 1] = max(out[2, 1], per[k, 3])
    if out[0, 0] >= 0:
        for a in range(3):
            out[a, 1] += 1
    return out


@njit(cache=True, nogil=True)
def _count_planes(a: np.ndarray, k0: int, k1: int) -> tuple[int, int]:
    bad = 0
    neg = 0
    for k in range(k0, k1):
        for j in range(a.shape[1]):
            row = a[k, j]
            for i in range(a.shape[2]):  # branch-free: vectorises
                v = row[i]
                fin = (v == v) & (abs(v) != np.inf)
                bad += 0 if fin else 1
                neg += 1 if (fin & (v < 0)) else 0
    return bad, neg


def count_nonfinite_negative(a: np.ndarray, workers: int | None = None) -> tuple[int, int]:
    """(number of NaN/inf values, number of finite negative values) of a 3-D float array,
    by blocks of planes on the thread pool of :mod:`dosimetry.engine._blocks`."""
    parts = run_blocks(
        lambda k0, k1: _count_planes(a, k0, k1), a.shape[0], 1, thread_count(workers)
    )
    return sum(int(p[0]) for p in parts), sum(int(p[1]) for p in parts)


@njit(cache=True, parallel=True)
def clip_roundoff(out: np.ndarray, tol: float, clip: bool) -> tuple[int, int]:
    """One pass over a 3-D result: count NaN/inf, zero round-off below zero.

    Returns ``(number of non-finite values, number of values below -tol)``; with
    ``clip``, values in ``[-tol, 0)`` are set to 0 in place (values below ``-tol`` are
    left for the caller to report). Branch-free (``v != v`` flags NaN) so
    that the loop vectorises.
    """
    n0 = out.shape[0]
    counts = np.zeros((n0, 2), dtype=np.int64)
    for k in prange(n0):
        b = 0
        d = 0
        for j in range(out.shape[1]):
            row = out[k, j]
            if clip:
                for i in range(row.shape[0]):
                    v = row[i]
                    b += 1 if (v != v) | (abs(v) == np.inf) else 0
                    d += 1 if v < -tol else 0
                    row[i] = 0.0 if (v < 0.0 and v >= -tol) else v
            else:
                for i in range(row.shape[0]):
                    v = row[i]
                    b += 1 if (v != v) | (abs(v) == np.inf) else 0
        counts[k, 0] = b
        counts[k, 1] = d
    return int(counts[:, 0].sum()), int(counts[:, 1].sum())


# ---------------------------------------------------------------------------------------
# pieces of the blocked FFT path (serial, ``nogil``: several Python threads run them at
# once on disjoint blocks; each writes every element of its destination once, so
# destinations can be allocated uninitialised)
# ---------------------------------------------------------------------------------------


@njit(cache=True, nogil=True)
def multiply_spectrum(f: np.ndarray, spec: np.ndarray) -> None:
    """``f *= spec`` (``spec`` real or complex, same shape; either may be a strided view)."""
    for k in range(f.shape[0]):
        fk = f[k]
        sk = spec[k]
        for j in range(fk.shape[0]):
            fr = fk[j]
            sr = sk[j]
            for i in range(fr.shape[0]):
                fr[i] *= sr[i]


@njit(cache=True, nogil=True)
def embed_box_real(
    src: np.ndarray, lo0: int, lo1: int, lo2: int, dst: np.ndarray, off2: int, n2: int
) -> None:
    """``dst[k, j, :] = 0`` except ``dst[k, j, off2:off2+n2] = src[lo0+k, lo1+j, lo2:lo2+n2]``
    for every ``(k, j)`` of ``dst`` (shape ``(b0, b1, L2)``); casts to ``dst``'s dtype."""
    b0, b1, length = dst.shape
    for k in range(b0):
        for j in range(b1):
            row = dst[k, j]
            srow = src[lo0 + k, lo1 + j, lo2 : lo2 + n2]
            for i in range(off2):
                row[i] = 0.0
            for i in range(n2):
                row[off2 + i] = srow[i]
            for i in range(off2 + n2, length):
                row[i] = 0.0


@njit(cache=True, nogil=True)
def embed_axis1(f: np.ndarray, dst: np.ndarray, off1: int) -> None:
    """``dst[k] = 0`` except ``dst[k, off1:off1+b1] = f[k]`` (``f``: ``(b0, b1, m)``,
    ``dst``: ``(b0, L1, m)``)."""
    b0, b1, m = f.shape
    length = dst.shape[1]
    for k in range(b0):
        for j in range(length):
            row = dst[k, j]
            if off1 <= j < off1 + b1:
                frow = f[k, j - off1]
                for i in range(m):
                    row[i] = frow[i]
            else:
                for i in range(m):
                    row[i] = 0.0


@njit(cache=True, nogil=True)
def zero_planes_outside(a: np.ndarray, start: int, stop: int) -> None:
    """``a[k] = 0`` for every leading-axis index ``k`` outside ``[start, stop)``."""
    n0, n1, m = a.shape
    for k in range(n0):
        if start <= k < stop:
            continue
        for j in range(n1):
            row = a[k, j]
            for i in range(m):
                row[i] = 0.0


@njit(cache=True, nogil=True)
def copy_planes(src: np.ndarray, dst: np.ndarray, n0: int) -> None:
    """``dst[:n0] = src[:n0]`` (same trailing shape; either may be a strided view)."""
    for k in range(n0):
        for j in range(src.shape[1]):
            srow = src[k, j]
            drow = dst[k, j]
            for i in range(srow.shape[0]):
                drow[i] = srow[i]


@njit(cache=True, nogil=True)
def cosine_spectrum_rows(
    t1: np.ndarray, c0: np.ndarray, c1: np.ndarray, spec: np.ndarray, j0: int, j1: int
) -> None:
    """Rows ``j0 .. j1-1`` (axis 1) of a separable cosine spectrum:
    ``spec[f, j, i] = sum_a c0[f, a] sum_b c1[j, b] t1[a, b, i]``, summed in float64
    (``t1``: ``(h0+1, h1+1, nc)`` float64, ``c0``: ``(L0, h0+1)``, ``c1``: ``(L1, h1+1)``)."""
    na, nb, nc = t1.shape
    tmp = np.empty((na, nc), dtype=np.float64)
    acc = np.empty(nc, dtype=np.float64)
    for j in range(j0, j1):
        for a in range(na):
            row = tmp[a]
            for i in range(nc):
                row[i] = 0.0
            for b in range(nb):
                w = c1[j, b]
                src = t1[a, b]
                for i in range(nc):
                    row[i] += w * src[i]
        for f in range(c0.shape[0]):
            for i in range(nc):
                acc[i] = 0.0
            for a in range(na):
                w = c0[f, a]
                row = tmp[a]
                for i in range(nc):
                    acc[i] += w * row[i]
            out = spec[f, j]
            for i in range(nc):
                out[i] = acc[i]


@njit(cache=True, nogil=True, fastmath={"reassoc", "contract"})
def axial_taps(fp: np.ndarray, km: np.ndarray, g: np.ndarray, c_start: int) -> None:
    """Convolution along axis 0 of planes held as flat real rows, with a kernel symmetric
    in that axis: ``g[p] = km[0] * fp[c] + sum_{d=1..h} km[d] * (fp[c - d] + fp[c + d])``
    with ``c = c_start + p`` (``fp``: ``(planes, m)``, zero planes around the data so that
    every ``c +- d`` exists; ``km``: ``(h + 1, m)``; ``g``: ``(n, m)``). Each row is a
    whole plane, so the inner loops are long, branch-free and vectorised."""
    m = fp.shape[1]
    h = km.shape[0] - 1
    for p in range(g.shape[0]):
        c = c_start + p
        gp = g[p]
        fc = fp[c]
        k = km[0]
        for i in range(m):
            gp[i] = k[i] * fc[i]
        for d in range(1, h + 1):
            fa = fp[c - d]
            fb = fp[c + d]
            k = km[d]
            for i in range(m):
                gp[i] += k[i] * (fa[i] + fb[i])


@njit(cache=True, nogil=True)
def place_result(
    res: np.ndarray,
    out: np.ndarray,
    s0: int,
    s1: int,
    s2: int,
    o0: int,
    o1: int,
    o2: int,
    tol: float,
    clip: bool,
) -> tuple[int, int]:
    """``out = 0`` except ``out[s0:s0+o0, s1:s1+o1, s2:s2+o2] = res[:o0, :o1, :o2]``, with
    the checks of :func:`clip_roundoff` on the placed values in the same pass: returns
    (non-finite count, count below ``-tol`` if ``clip`` else 0); with ``clip``, values in
    ``[-tol, 0)`` become 0."""
    n0, n1, n2 = out.shape
    b = 0
    d = 0
    for k in range(n0):
        for j in range(n1):
            row = out[k, j]
            if s0 <= k < s0 + o0 and s1 <= j < s1 + o1:
                rrow = res[k - s0, j - s1]
                for i in range(s2):
                    row[i] = 0.0
                for i in range(o2):
                    v = rrow[i]
                    b += 1 if (v != v) | (abs(v) == np.inf) else 0
                    d += 1 if (clip and v < -tol) else 0
                    row[s2 + i] = 0.0 if (clip and v < 0.0 and v >= -tol) else v
                for i in range(s2 + o2, n2):
                    row[i] = 0.0
            else:
                for i in range(n2):
                    row[i] = 0.0
    return b, d


@njit(cache=True, nogil=True, fastmath={"reassoc"})
def scan_planes(src: np.ndarray, k0: int, k1: int, ext: np.ndarray) -> tuple[int, int, float]:
    """:func:`scan_rows` of the planes ``k0 .. k1-1`` (their extents written to ``ext``)."""
    n2 = src.shape[2]
    n2i = np.int32(n2)
    none = np.int32(-1)
    bad = 0
    neg = 0
    total = 0.0
    zero = np.zeros(1, dtype=src.dtype)[0]
    for k in range(k0, k1):
        for j in range(src.shape[1]):
            row = src[k, j]
            # branch-free (vectorised): the sum, the negative count and the first and
            # last non-zero column as running min/max, in 32-bit lanes (twice as many
            # per vector as 64-bit ones; measured 1.8 -> 1.1 ms at 128^3 from memory)
            rs = zero  # the row's sum in the map's dtype (vectorises)
            rn = np.int32(0)
            first = n2i
            last = none
            for i in range(n2i):
                v = row[i]
                rs += v
                rn += np.int32(v < 0)
                nz = v != 0
                first = min(first, np.int32(i) if nz else n2i)
                last = max(last, np.int32(i) if nz else none)
            total += rs
            neg += int(rn)
            if not math.isfinite(rs):
                # NaN or inf in the row (or a float32 sum that overflowed): count
                # exactly; the caller refuses the map if any is found
                for i in range(n2):
                    v = row[i]
                    bad += (v != v) | (abs(v) == np.inf)
            if last < 0:  # empty row
                first = none
                last = np.int32(-2)
            ext[k, j, 0] = first
            ext[k, j, 1] = last
    return bad, neg, total


def scan_rows(src: np.ndarray, workers: int | None = None) -> tuple[int, int, float, np.ndarray]:
    """One pass over a 3-D map: (NaN/inf count, count of values < 0, sum (row sums in
    the map's dtype, added in float64; meaningless if the first count is not 0),
    :func:`row_extents`). Blocks of planes run on the thread pool of
    :mod:`dosimetry.engine._blocks` (``workers`` threads; ``None``: every core)."""
    n0, n1, n2 = src.shape
    ext = np.empty((n0, n1, 2), dtype=np.int64)
    parts = run_blocks(
        lambda k0, k1: scan_planes(src, k0, k1, ext),
        n0,
        1,  # one pass per element: blocks need not fit a cache, fewer is cheaper
        thread_count(workers),
    )
    return (
        sum(int(p[0]) for p in parts),
        sum(int(p[1]) for p in parts),
        float(sum(p[2] for p in parts)),
        ext,
    )
