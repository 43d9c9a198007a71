"""Voxel-wise time-activity fits -> TIA map.

:func:`fit_voxels` takes co-registered activity Volumes at several times, fits each voxel
(Numba kernels in :mod:`dosimetry.engine._numba_fit`) and integrates the fitted curve
analytically from 0 to infinity.

Input handling (stated, never silent):

* All Volumes must lie on one grid (:class:`GeometryMismatchError` otherwise) and carry
  one unit, ``"Bq"`` (activity per voxel) or ``"Bq/mL"`` (multiplied by the voxel volume).
* NaN or infinite values inside the mask are an error.
* Negative values (SPECT noise around zero) are clipped to 0 before fitting
  (``negative="clip"``, the default; the count is logged and returned as
  ``VoxelFitResult.n_negative_clipped``) or rejected (``negative="error"``).
* Voxels whose fit fails (status != 0) get the ``on_failure`` replacement: the
  trapezoidal rule with a linear head and a physical-decay tail (``"trapezoid"``, needs
  the nuclide), the VOI curve scaled by the voxel's share (``"voi-scaled"``), ``"zero"``
  or ``"nan"``. ``failure`` records each voxel's status code.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from ..errors import InputDataError, UnitError
from ..units import time_to_s
from ..volume import Volume
from ._tac import TacFit, fit_tac

__all__ = ["fit_voxels", "VoxelFitResult", "STATUS_MEANING"]

log = logging.getLogger(__name__)

#: status code -> meaning (the kernels' codes plus the wrapper's)
STATUS_MEANING: dict[int, str] = {
    0: "fit converged",
    1: "no positive activity (TIA 0)",
    2: "not converged",
    3: "degenerate fit (parameter at a bound, e.g. uptake faster than the data resolve)",
    4: "too few positive points for a start",
    -1: "outside the mask",
}


@dataclass(frozen=True)
class VoxelFitResult:
    """Result of :func:`fit_voxels`.

    Attributes
    ----------
    tia
        Time-integrated activity per voxel, unit ``"Bq s"``.
    failure
        Status code per voxel (``"1"`` unit, int8; see :data:`STATUS_MEANING`); 0 = fitted.
    replaced
        Boolean map (``"1"``): voxels whose TIA comes from the ``on_failure`` replacement.
    residual
        RMS residual of the fit relative to the voxel's maximum activity (``"1"``).
    parameters
        Parameter maps: ``"A"`` (``"Bq"``), ``"effective_half_life"`` (``"s"``) and, for
        ``"biexp-uptake"``, ``"uptake_half_life"`` (``"s"``).
    model, on_failure, n_negative_clipped, times_s
        What was done.
    voi_fit
        The VOI TAC fit used by ``"voi-scaled"`` (else ``None``).
    """

    tia: Volume
    failure: Volume
    replaced: Volume
    residual: Volume
    parameters: dict[str, Volume]
    model: str
    on_failure: str
    n_negative_clipped: int
    times_s: np.ndarray = field(repr=False)
    voi_fit: TacFit | None = None
    counts: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        """Counts of each status and the total TIA."""
        lines = [
            f"voxel fits: model={self.model}, on_failure={self.on_failure}, "
            f"negative voxels clipped: {self.n_negative_clipped}",
            f"  total TIA {self.tia.array.sum():.6g} Bq s",
        ]
        lines += [f"  {k}: {v}" for k, v in self.counts.items()]
        return "\n".join(lines)


def _stack(
    activity_volumes: Sequence[Volume],
    times: Sequence[float] | None,
    time_unit: str,
    injection_time: datetime | None,
) -> tuple[np.ndarray, np.ndarray, Volume]:
    vols = list(activity_volumes)
    if len(vols) < 2:
        raise InputDataError(f"need at least 2 time points, got {len(vols)}")
    ref = vols[0]
    for i, v in enumerate(vols[1:], start=1):
        if not isinstance(v, Volume):
            raise InputDataError(f"activity_volumes[{i}] is not a Volume")
        ref.check_same_grid(v, name=f"activity_volumes[{i}]")
        if v.unit != ref.unit:
            raise UnitError(
                f"activity_volumes[{i}] has unit {v.unit!r}, activity_volumes[0] {ref.unit!r}"
            )
    if ref.unit not in ("Bq", "Bq/mL"):
        raise UnitError(f"activity Volumes must be 'Bq' (per voxel) or 'Bq/mL', got {ref.unit!r}")
    if times is None:
        if injection_time is None:
            raise InputDataError("give times= (after injection) or injection_time=")
        t_s = []
        for i, v in enumerate(vols):
            if v.reference_time is None:
                raise InputDataError(
                    f"activity_volumes[{i}] has no reference_time; give times= explicitly"
                )
            t_s.append((v.reference_time - injection_time).total_seconds())
        t = np.array(t_s, dtype=float)
    else:
        t = np.asarray(times, dtype=float).ravel() * time_to_s(1.0, time_unit)
    if t.size != len(vols):
        raise InputDataError(f"{t.size} times for {len(vols)} volumes")
    if not np.all(np.isfinite(t)) or np.any(t < 0) or np.any(np.diff(t) <= 0):
        raise InputDataError(f"times must be >= 0 and strictly increasing, got {t.tolist()} s")
    scale = ref.voxel_volume_ml if ref.unit == "Bq/mL" else 1.0
    data = np.stack([np.asarray(v.array, dtype=np.float64) * scale for v in vols], axis=-1)
    return data, t, ref


def fit_voxels(
    activity_volumes: Sequence[Volume],
    times: Sequence[float] | None = None,
    model: str = "mono",
    *,
    time_unit: str = "h",
    injection_time: datetime | None = None,
    mask: Volume | None = None,
    nuclide: str | None = None,
    weights: str = "uniform",
    negative: str = "clip",
    on_failure: str = "trapezoid",
    rate_floor: str = "auto",
    max_iter: int = 50,
    tol: float = 1e-8,
) -> VoxelFitResult:
    """Fit every voxel's time-activity curve and integrate it (TIA map in Bq s).

    Parameters
    ----------
    activity_volumes
        Activity at each time point (not decay corrected), one Volume per time, all on
        the same grid, unit ``"Bq"`` or ``"Bq/mL"``.
    times
        Times after injection in ``time_unit``; or ``None`` with ``injection_time`` to
        use each Volume's ``reference_time``.
    model
        ``"mono"`` (``A exp(-l t)``), ``"biexp-uptake"`` (``A (exp(-l t) - exp(-lu t))``)
        or ``"voi-scaled"`` (fit the mask's summed TAC with :func:`fit_tac` and give each
        voxel the VOI TIA times its share of the VOI activity summed over time points).
    time_unit
        Unit of ``times``.
    injection_time
        See ``times``.
    mask
        Voxels to fit (binary Volume on the same grid). Voxels outside get TIA 0 and
        status -1. Required for ``"voi-scaled"``.
    nuclide
        Measured nuclide (``"Lu-177"``): sets the rate floor (effective clearance at
        least physical decay) and the physical tail of the ``"trapezoid"`` replacement.
    weights
        ``"uniform"`` (default) or ``"poisson"`` (``1/sigma^2 = 1/max(y, 1e-3 y_max)``).
    negative
        ``"clip"`` (negative voxels -> 0, counted and logged) or ``"error"``.
    on_failure
        Replacement TIA for voxels whose fit failed: ``"trapezoid"``, ``"voi-scaled"``
        (needs ``mask``), ``"zero"`` or ``"nan"``.
    rate_floor
        ``"auto"`` (physical decay constant if ``nuclide`` is given, else 0),
        ``"physical"`` or ``"zero"``.
    max_iter, tol
        Levenberg-Marquardt iteration limit and relative tolerance.

    Returns
    -------
    VoxelFitResult

    Raises
    ------
    GeometryMismatchError
        Volumes or mask on different grids.
    InputDataError, UnitError
        NaN inside the mask, negative values with ``negative="error"``, bad times,
        missing nuclide for the trapezoid replacement.

    References
    ----------
    Levenberg K. Q Appl Math 1944;2:164-168; Marquardt DW. J Soc Ind Appl Math
    1963;11:431-441 (the refinement algorithm).
    """
    from ..engine import fit as nf

    if model not in ("mono", "biexp-uptake", "voi-scaled"):
        raise InputDataError(f"model={model!r}; valid: 'mono', 'biexp-uptake', 'voi-scaled'")
    if on_failure not in ("trapezoid", "voi-scaled", "zero", "nan"):
        raise InputDataError(
            f"on_failure={on_failure!r}; valid: 'trapezoid', 'voi-scaled', 'zero', 'nan'"
        )
    if negative not in ("clip", "error"):
        raise InputDataError(f"negative={negative!r}; valid: 'clip', 'error'")
    if weights not in ("uniform", "poisson"):
        raise InputDataError(f"weights={weights!r}; valid: 'uniform', 'poisson'")
    if rate_floor not in ("auto", "physical", "zero"):
        raise InputDataError(f"rate_floor={rate_floor!r}; valid: 'auto', 'physical', 'zero'")
    lam_phys: float | None = None
    if nuclide is not None:
        from ..nuclides import nuclide as _nuclide

        lam_phys = _nuclide(nuclide).decay_constant_per_s
    if on_failure == "trapezoid" and lam_phys is None and model != "voi-scaled":
        raise InputDataError(
            "on_failure='trapezoid' uses a physical-decay tail: give nuclide='Lu-177' (or "
            "choose on_failure='voi-scaled', 'zero' or 'nan')"
        )
    if rate_floor == "physical" and lam_phys is None:
        raise InputDataError("rate_floor='physical' needs nuclide=")
    floor = lam_phys if (rate_floor != "zero" and lam_phys is not None) else 0.0

    data, t, ref = _stack(activity_volumes, times, time_unit, injection_time)
    if mask is not None:
        ref.check_same_grid(mask, name="mask")
        m = np.asarray(mask.array)
        if m.dtype != bool:
            if not np.all(np.isin(m, (0, 1))):
                raise InputDataError("mask must be binary (0/1 or bool)")
            m = m.astype(bool)
    else:
        m = np.ones(ref.shape, dtype=bool)
    if (model == "voi-scaled" or on_failure == "voi-scaled") and mask is None:
        raise InputDataError("'voi-scaled' needs mask= (the VOI whose curve is scaled)")
    sel = data[m]  # (n_vox, n_t), a copy
    if not np.all(np.isfinite(sel)):
        raise InputDataError(
            f"{int(np.sum(~np.isfinite(sel)))} NaN/inf values inside the mask; fill or mask them"
        )
    neg = sel < 0
    n_neg = int(neg.sum())
    if n_neg:
        if negative == "error":
            raise InputDataError(
                f"{n_neg} negative activity values inside the mask (negative='error'); use "
                "negative='clip' to set them to 0"
            )
        log.info("fit_voxels: %d negative voxel values clipped to 0 before fitting", n_neg)
        sel = np.where(neg, 0.0, sel)

    n_vox, n_t = sel.shape
    tia_sel = np.zeros(n_vox)
    status = np.zeros(n_vox, dtype=np.int8)
    resid = np.zeros(n_vox)
    params: dict[str, np.ndarray] = {}
    voi_fit: TacFit | None = None

    voi_curve = sel.sum(axis=0)
    share = None
    if model == "voi-scaled" or on_failure == "voi-scaled":
        voi_fit = fit_tac(
            t,
            voi_curve,
            "s",
            "Bq",
            model="auto",
            nuclide=nuclide,
            tail="fit",
        )
        tot = voi_curve.sum()
        share = sel.sum(axis=1) / tot if tot > 0 else np.zeros(n_vox)

    if model == "voi-scaled":
        assert voi_fit is not None and share is not None
        tia_sel = share * voi_fit.tia_bq_s
        pred = voi_fit.predict(t)
        ymax = np.maximum(sel.max(axis=1), 1e-300)
        # residual of the scaled VOI curve vs the voxel curve
        ratio = sel.sum(axis=1) / np.maximum(pred.sum(), 1e-300)
        scaled = ratio[:, None] * pred[None, :]
        resid = np.sqrt(np.mean((scaled - sel) ** 2, axis=1)) / ymax
        replaced = np.zeros(n_vox, dtype=bool)
    else:
        # scaled units for conditioning: t / t_last, y / per-voxel max
        t_scale = float(t[-1])
        ts = t / t_scale
        ymax = sel.max(axis=1)
        ys = np.ascontiguousarray(sel / np.where(ymax > 0, ymax, 1.0)[:, None])
        if weights == "uniform":
            w = np.ones_like(ys)
        else:
            w = 1.0 / np.maximum(ys, 1e-3)
        kern = nf.fit_mono_voxels if model == "mono" else nf.fit_biexp_uptake_voxels
        p, status, cost = kern(ts, ys, np.ascontiguousarray(w), floor * t_scale, max_iter, tol)
        a_bq = p[:, 0] * ymax
        lam = p[:, 1] / t_scale
        with np.errstate(divide="ignore", invalid="ignore"):
            if model == "mono":
                tia_fit = a_bq / lam
                pred = a_bq[:, None] * np.exp(-lam[:, None] * t[None, :])
            else:
                lu = p[:, 2] / t_scale
                tia_fit = a_bq * (1.0 / lam - 1.0 / lu)
                pred = a_bq[:, None] * (
                    np.exp(-lam[:, None] * t[None, :]) - np.exp(-lu[:, None] * t[None, :])
                )
                params["uptake_half_life"] = np.where(status == 0, math.log(2) / lu, np.nan)
            params["A"] = np.where(status == 0, a_bq, np.nan)
            params["effective_half_life"] = np.where(status == 0, math.log(2) / lam, np.nan)
            resid = np.where(
                ymax > 0,
                np.sqrt(np.mean((pred - sel) ** 2, axis=1)) / np.maximum(ymax, 1e-300),
                0.0,
            )
        ok = status == 0
        tia_sel = np.where(ok, tia_fit, 0.0)
        tia_sel[~np.isfinite(tia_sel)] = 0.0
        replaced = ~ok & (status != 1)
        if replaced.any():
            idx = np.nonzero(replaced)[0]
            if on_failure == "trapezoid":
                assert lam_phys is not None
                tia_sel[idx] = _trapezoid_rows(t, sel[idx], lam_phys)
            elif on_failure == "voi-scaled":
                assert voi_fit is not None and share is not None
                tia_sel[idx] = share[idx] * voi_fit.tia_bq_s
            elif on_failure == "nan":
                tia_sel[idx] = np.nan
            else:
                tia_sel[idx] = 0.0
            log.info("fit_voxels: %d of %d voxels replaced (%s)", idx.size, n_vox, on_failure)

    def to_map(values: np.ndarray, fill: float, dtype: Any = np.float64) -> np.ndarray:
        out = np.full(ref.shape, fill, dtype=dtype)
        out[m] = values
        return out

    prov = {**dict(ref.provenance), "kinetics": {"model": model, "on_failure": on_failure}}
    tia_vol = Volume(
        to_map(tia_sel, 0.0),
        ref.affine,
        "Bq s",
        frame_of_reference_uid=ref.frame_of_reference_uid,
        provenance=prov,
    )
    fail_vol = tia_vol.with_array(to_map(status.astype(np.int8), -1, np.int8), unit="1")
    repl_vol = tia_vol.with_array(to_map(replaced, False, bool), unit="1")
    res_vol = tia_vol.with_array(to_map(resid, 0.0), unit="1")
    units = {"A": "Bq", "effective_half_life": "s", "uptake_half_life": "s"}
    pmaps = {k: tia_vol.with_array(to_map(v, np.nan), unit=units[k]) for k, v in params.items()}
    codes, cnt = np.unique(status, return_counts=True)
    if model == "voi-scaled":
        counts = {"VOI curve scaled by the voxel's share": n_vox}
    else:
        counts = {
            STATUS_MEANING.get(int(c), str(c)): int(n) for c, n in zip(codes, cnt, strict=True)
        }
    if mask is not None:
        counts[STATUS_MEANING[-1]] = int((~m).sum())
    return VoxelFitResult(
        tia=tia_vol,
        failure=fail_vol,
        replaced=repl_vol,
        residual=res_vol,
        parameters=pmaps,
        model=model,
        on_failure=on_failure,
        n_negative_clipped=n_neg,
        times_s=t,
        voi_fit=voi_fit,
        counts=counts,
    )


def _trapezoid_rows(t: np.ndarray, y: np.ndarray, lam_phys: float) -> np.ndarray:
    """Trapezoid per row with a linear head from (0, 0) and a physical-decay tail."""
    head = 0.5 * t[0] * y[:, 0]
    body = np.sum(0.5 * np.diff(t)[None, :] * (y[:, :-1] + y[:, 1:]), axis=1)
    return head + body + y[:, -1] / lam_phys
