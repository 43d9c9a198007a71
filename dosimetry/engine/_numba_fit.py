"""Numba kernels for voxel-wise time-activity fits.

Arrays and scalars only (no Volume, no units): times in any consistent unit, activities
per voxel. Each voxel is fitted independently (``prange`` over voxels) by a weighted
log-linear start followed by a projected Levenberg-Marquardt refinement.

Models (``t`` times, per voxel):

* mono: ``A exp(-l t)``; parameters ``(A, l)``, ``A >= 0``, ``l >= floor``.
* biexp-uptake: ``A (exp(-l t) - exp(-lu t))``; internal parameters ``(A, l, d)`` with
  ``lu = l + d``, ``d >= 0``.

Status codes (per voxel): 0 converged, 1 no positive data (left at zero), 2 not converged
within ``max_iter``, 3 parameters at a bound / degenerate (e.g. uptake rate unresolved),
4 too few positive points for a start.

Weights ``w`` multiply squared residuals (``w = 1/sigma^2``).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

__all__ = [
    "fit_mono_voxels",
    "fit_biexp_uptake_voxels",
    "STATUS_OK",
    "STATUS_EMPTY",
    "STATUS_NOT_CONVERGED",
    "STATUS_DEGENERATE",
    "STATUS_NO_START",
]

STATUS_OK = 0
STATUS_EMPTY = 1
STATUS_NOT_CONVERGED = 2
STATUS_DEGENERATE = 3
STATUS_NO_START = 4


@njit(cache=True)
def _loglinear(t: np.ndarray, y: np.ndarray, first: int) -> tuple[float, float, int]:
    """Weighted (w = y^2) regression of log y on t over points ``first:``; (A, l, n_used)."""
    sw = 0.0
    st = 0.0
    sl = 0.0
    stt = 0.0
    stl = 0.0
    n = 0
    for i in range(first, t.size):
        if y[i] > 0.0:
            w = y[i] * y[i]
            lv = np.log(y[i])
            sw += w
            st += w * t[i]
            sl += w * lv
            stt += w * t[i] * t[i]
            stl += w * t[i] * lv
            n += 1
    if n < 2:
        return 0.0, 0.0, n
    den = sw * stt - st * st
    if den <= 0.0:
        return 0.0, 0.0, n
    slope = (sw * stl - st * sl) / den
    icpt = (sl - slope * st) / sw
    return np.exp(icpt), -slope, n


@njit(cache=True)
def _solve3(a: np.ndarray, b: np.ndarray, out: np.ndarray, mv: np.ndarray) -> bool:
    """Solve the 3x3 system ``a x = b`` by elimination with pivoting (``mv`` 3x4 work)."""
    n = 3
    for r in range(n):
        for c in range(n):
            mv[r, c] = a[r, c]
        mv[r, 3] = b[r]
    for c in range(n):
        p = c
        best = abs(mv[c, c])
        for r in range(c + 1, n):
            if abs(mv[r, c]) > best:
                best = abs(mv[r, c])
                p = r
        if best < 1e-300:
            return False
        if p != c:
            for k in range(n + 1):
                tmp = mv[c, k]
                mv[c, k] = mv[p, k]
                mv[p, k] = tmp
        for r in range(c + 1, n):
            f = mv[r, c] / mv[c, c]
            for k in range(c, n):
                mv[r, k] -= f * mv[c, k]
            mv[r, 3] -= f * mv[c, 3]
    for c in range(n - 1, -1, -1):
        s = mv[c, 3]
        for k in range(c + 1, n):
            s -= mv[c, k] * out[k]
        out[c] = s / mv[c, c]
    return True


@njit(cache=True)
def _model_jac(q: np.ndarray, t: np.ndarray, uptake: bool, f: np.ndarray, jac: np.ndarray) -> None:
    """Model values ``f`` and Jacobian wrt the internal parameters."""
    a = q[0]
    lam = q[1]
    for i in range(t.size):
        e = np.exp(-lam * t[i])
        if uptake:
            lu = lam + q[2]
            eu = np.exp(-lu * t[i])
            f[i] = a * (e - eu)
            jac[i, 0] = e - eu
            jac[i, 1] = -a * t[i] * e + a * t[i] * eu
            jac[i, 2] = a * t[i] * eu
        else:
            f[i] = a * e
            jac[i, 0] = e
            jac[i, 1] = -a * t[i] * e
            jac[i, 2] = 0.0


@njit(cache=True)
def _cost(q: np.ndarray, t: np.ndarray, y: np.ndarray, w: np.ndarray, uptake: bool) -> float:
    c = 0.0
    for i in range(t.size):
        e = np.exp(-q[1] * t[i])
        if uptake:
            fi = q[0] * (e - np.exp(-(q[1] + q[2]) * t[i]))
        else:
            fi = q[0] * e
        r = fi - y[i]
        c += w[i] * r * r
    return c


@njit(cache=True)
def _lm(
    q: np.ndarray,
    t: np.ndarray,
    y: np.ndarray,
    w: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    uptake: bool,
    max_iter: int,
    tol: float,
    f: np.ndarray,
    jac: np.ndarray,
    jtj: np.ndarray,
    a: np.ndarray,
    g: np.ndarray,
    rhs: np.ndarray,
    step: np.ndarray,
    trial: np.ndarray,
    mv: np.ndarray,
) -> tuple[float, int, bool]:
    """Projected Levenberg-Marquardt in place on ``q``; returns (cost, iterations, converged).

    ``f`` (n_t), ``jac`` (n_t, 3), ``jtj``/``a`` (3, 3), ``g``/``rhs``/``step``/``trial``
    (3), ``mv`` (3, 4) are work buffers (no allocation in the voxel loop).
    """
    npar = 3 if uptake else 2
    nt = t.size
    mu = 1e-3
    cost = _cost(q, t, y, w, uptake)
    for it in range(max_iter):
        _model_jac(q, t, uptake, f, jac)
        for r in range(3):
            g[r] = 0.0
            for c in range(3):
                jtj[r, c] = 0.0
        for i in range(nt):
            ri = f[i] - y[i]
            for r in range(npar):
                g[r] += w[i] * jac[i, r] * ri
                for c in range(npar):
                    jtj[r, c] += w[i] * jac[i, r] * jac[i, c]
        if npar == 2:
            jtj[2, 2] = 1.0
        improved = False
        for _ in range(30):
            for r in range(3):
                rhs[r] = -g[r]
                for c in range(3):
                    a[r, c] = jtj[r, c]
            for r in range(npar):
                a[r, r] += mu * (jtj[r, r] + 1e-30)
            if not _solve3(a, rhs, step, mv):
                mu *= 10.0
                continue
            for r in range(3):
                trial[r] = q[r] + (step[r] if r < npar else 0.0)
                if trial[r] < lower[r]:
                    trial[r] = lower[r]
                if trial[r] > upper[r]:
                    trial[r] = upper[r]
            new_cost = _cost(trial, t, y, w, uptake)
            if new_cost <= cost:
                rel = 0.0
                for r in range(npar):
                    d = abs(trial[r] - q[r]) / (abs(q[r]) + 1e-12)
                    if d > rel:
                        rel = d
                dc = cost - new_cost
                for r in range(3):
                    q[r] = trial[r]
                cost = new_cost
                mu = max(mu / 10.0, 1e-12)
                improved = True
                if rel < tol or dc <= tol * (cost + 1e-300):
                    return cost, it + 1, True
                break
            mu *= 10.0
        if not improved:
            # no downhill step at any damping: a (constrained) minimum
            return cost, it + 1, True
    return cost, max_iter, False


@njit(cache=True)
def _fit_one_mono(
    t: np.ndarray,
    yv: np.ndarray,
    wv: np.ndarray,
    rate_floor: float,
    lower: np.ndarray,
    upper: np.ndarray,
    max_iter: int,
    tol: float,
    out: np.ndarray,
    q: np.ndarray,
    f: np.ndarray,
    jac: np.ndarray,
    jtj: np.ndarray,
    a: np.ndarray,
    g: np.ndarray,
    rhs: np.ndarray,
    step: np.ndarray,
    trial: np.ndarray,
    mv: np.ndarray,
) -> tuple[int, float]:
    ymax = 0.0
    for i in range(yv.size):
        if yv[i] > ymax:
            ymax = yv[i]
    if ymax <= 0.0:
        return STATUS_EMPTY, 0.0
    a0, l0, nused = _loglinear(t, yv, 0)
    if nused < 2:
        return STATUS_NO_START, 0.0
    q[0] = a0
    q[1] = max(l0, rate_floor * 1.01 + 1e-30)
    q[2] = 0.0
    if q[1] > upper[1]:
        q[1] = upper[1] * 0.5
    c, _it, ok = _lm(
        q, t, yv, wv, lower, upper, False, max_iter, tol, f, jac, jtj, a, g, rhs, step, trial, mv
    )
    out[0] = q[0]
    out[1] = q[1]
    if not ok:
        return STATUS_NOT_CONVERGED, c
    if q[0] <= 0.0 or q[1] >= upper[1] * 0.999999:
        return STATUS_DEGENERATE, c
    return STATUS_OK, c


@njit(cache=True)
def _fit_one_biexp_uptake(
    t: np.ndarray,
    yv: np.ndarray,
    wv: np.ndarray,
    rate_floor: float,
    lower: np.ndarray,
    upper: np.ndarray,
    max_iter: int,
    tol: float,
    out: np.ndarray,
    q: np.ndarray,
    best: np.ndarray,
    f: np.ndarray,
    jac: np.ndarray,
    jtj: np.ndarray,
    a: np.ndarray,
    g: np.ndarray,
    rhs: np.ndarray,
    step: np.ndarray,
    trial: np.ndarray,
    mv: np.ndarray,
) -> tuple[int, float]:
    t_last = t[-1] if t[-1] > 0 else 1.0
    rate_max = upper[2]
    imax = 0
    for i in range(yv.size):
        if yv[i] > yv[imax]:
            imax = i
    if yv[imax] <= 0.0:
        return STATUS_EMPTY, 0.0
    first = imax if imax < yv.size - 1 else yv.size - 2
    a0, l0, nused = _loglinear(t, yv, first)
    if nused < 2:
        a0, l0, nused = _loglinear(t, yv, 0)
    if nused < 2:
        return STATUS_NO_START, 0.0
    l0 = min(max(l0, rate_floor * 1.01 + 1e-30), rate_max * 0.5)
    best_c = np.inf
    best_ok = False
    for s in range(2):
        q[1] = l0
        if s == 0:
            rhs0 = np.exp(-l0 * t[0]) - yv[0] / a0 if a0 > 0 else -1.0
            if rhs0 > 1e-12 and t[0] > 0:
                lu = -np.log(rhs0) / t[0]
            else:
                lu = 20.0 / t_last + l0
            if lu <= l0:
                lu = l0 + 1.0 / t_last
        else:
            lu = 5.0 * l0 + 5.0 / t_last
        q[2] = min(lu - l0, rate_max * 0.5)
        q[0] = a0
        c, _it, ok = _lm(
            q, t, yv, wv, lower, upper, True, max_iter, tol, f, jac, jtj, a, g, rhs, step, trial, mv
        )
        if c < best_c:
            best_c = c
            best[0] = q[0]
            best[1] = q[1]
            best[2] = q[2]
            best_ok = ok
    out[0] = best[0]
    out[1] = best[1]
    out[2] = best[1] + best[2]
    if not best_ok:
        return STATUS_NOT_CONVERGED, best_c
    if (
        best[0] <= 0.0
        or best[2] <= 0.0
        or best[2] >= rate_max * 0.999999
        or best[1] >= rate_max * 0.999999
    ):
        return STATUS_DEGENERATE, best_c
    return STATUS_OK, best_c


@njit(cache=True, parallel=True)
def _fit_voxels(
    t: np.ndarray,
    y: np.ndarray,
    w: np.ndarray,
    rate_floor: float,
    max_iter: int,
    tol: float,
    uptake: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n_vox = y.shape[0]
    nt = t.size
    npar = 3 if uptake else 2
    params = np.zeros((n_vox, npar))
    status = np.zeros(n_vox, dtype=np.int8)
    cost = np.zeros(n_vox)
    t_last = t[-1] if t[-1] > 0 else 1.0
    rate_max = 1e3 / t_last
    lower = np.array([0.0, rate_floor, 0.0])
    upper = np.array([np.inf, rate_max, rate_max if uptake else 0.0])
    chunk = 256
    n_chunks = (n_vox + chunk - 1) // chunk
    for ch in prange(n_chunks):
        # work buffers, allocated once per chunk
        out = np.zeros(3)
        q = np.zeros(3)
        best = np.zeros(3)
        f = np.empty(nt)
        jac = np.empty((nt, 3))
        jtj = np.zeros((3, 3))
        a = np.zeros((3, 3))
        g = np.zeros(3)
        rhs = np.zeros(3)
        step = np.zeros(3)
        trial = np.zeros(3)
        mv = np.zeros((3, 4))
        for v in range(ch * chunk, min(n_vox, (ch + 1) * chunk)):
            out[:] = 0.0
            if uptake:
                st, c = _fit_one_biexp_uptake(
                    t,
                    y[v],
                    w[v],
                    rate_floor,
                    lower,
                    upper,
                    max_iter,
                    tol,
                    out,
                    q,
                    best,
                    f,
                    jac,
                    jtj,
                    a,
                    g,
                    rhs,
                    step,
                    trial,
                    mv,
                )
            else:
                st, c = _fit_one_mono(
                    t,
                    y[v],
                    w[v],
                    rate_floor,
                    lower,
                    upper,
                    max_iter,
                    tol,
                    out,
                    q,
                    f,
                    jac,
                    jtj,
                    a,
                    g,
                    rhs,
                    step,
                    trial,
                    mv,
                )
            status[v] = st
            cost[v] = c
            for k in range(npar):
                params[v, k] = out[k]
    return params, status, cost


def fit_mono_voxels(
    t: np.ndarray,
    y: np.ndarray,
    w: np.ndarray,
    rate_floor: float,
    max_iter: int = 50,
    tol: float = 1e-8,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fit ``A exp(-l t)`` to each row of ``y`` (shape ``(n_vox, n_t)``, C-contiguous).

    Parameters
    ----------
    t
        ``(n_t,)`` increasing times.
    y
        ``(n_vox, n_t)`` activities.
    w
        ``(n_vox, n_t)`` weights (1/sigma^2).
    rate_floor
        Lower bound of ``l`` (same time unit as ``t``).
    max_iter, tol
        Levenberg-Marquardt iteration limit and relative step tolerance.

    Returns
    -------
    params
        ``(n_vox, 2)``: A, l.
    status
        ``(n_vox,)`` int8 status codes (module docstring).
    cost
        ``(n_vox,)`` weighted residual sum of squares.
    """
    return _fit_voxels(t, y, w, float(rate_floor), int(max_iter), float(tol), False)


def fit_biexp_uptake_voxels(
    t: np.ndarray,
    y: np.ndarray,
    w: np.ndarray,
    rate_floor: float,
    max_iter: int = 50,
    tol: float = 1e-8,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fit ``A (exp(-l t) - exp(-lu t))`` to each row of ``y``.

    Start: log-linear fit of the points from the maximum on gives ``(A, l)``; ``lu`` from
    matching the first point (or ``l + 20/t_last`` when that has no solution); a second
    start with ``lu = 5 l + 5/t_last``; the lower-cost solution is kept.

    Returns
    -------
    params
        ``(n_vox, 3)``: A, l, lu.
    status, cost
        As :func:`fit_mono_voxels`; status 3 also flags an uptake rate at its upper bound
        (``1000/t_last``: uptake faster than the data resolve).
    """
    return _fit_voxels(t, y, w, float(rate_floor), int(max_iter), float(tol), True)
