"""Time-activity curve (TAC) fits and time-integrated activity (TIA).

:func:`fit_tac` fits sums of exponentials (with or without an uptake phase) by weighted
least squares in physical units, or integrates the points with the trapezoidal rule and
a physical-decay tail, and returns a :class:`TacFit` with the TIA (Bq s) from 0 to
infinity, its uncertainty and goodness-of-fit measures.

Model selection (``model="auto"``, ``selection="physiological"``, the default):

1. Candidates are the models with fewer parameters than data points minus one
   (``n - k - 1 > 0``, so that the corrected Akaike criterion AICc is defined) that
   converge to physically valid parameters: every amplitude > 0 and every rate above the
   floor (>= 0, or >= the physical decay constant when ``nuclide`` is given), the uptake
   rate above every clearance rate, no parameter at a bound (a parameter at a bound means
   the data do not support that component), and a finite covariance matrix.
2. Physiological constraint: a sum of decaying exponentials with positive amplitudes can
   only decrease. When the data rise (a later point above the first) and a model with an
   uptake phase is valid, the models without one are rejected.
3. Nested test: a model without uptake phase is also rejected when the uptake model with
   the same clearance phases (one parameter more, the uptake rate) fits significantly
   better: extra-sum-of-squares F-test ``F = (WRSS_s - WRSS_u) / (WRSS_u / (n - k_u))``
   on (1, n - k_u) degrees of freedom (Bates and Watts 1988), or, with absolute
   uncertainties, the likelihood-ratio test ``chi2_s - chi2_u`` against chi-square with 1
   degree of freedom; at ``selection_alpha`` (5 %). The F-test needs ``n - k_u >= 2``
   (with one residual degree of freedom its variance estimate is too unstable). (The simpler model is the limit of an
   infinitely fast uptake, a boundary of the fuller one, so the test is approximate.)
4. The lowest AICc among the remaining candidates wins. With weights known in absolute
   terms (``uncertainties`` given) ``AIC = chi2 + 2k``; otherwise
   ``AIC = n ln(WRSS/n) + 2k``; ``AICc = AIC + 2k(k+1)/(n-k-1)``. A model with one
   clearance phase and ``n = k + 1`` points (AICc undefined: the mono-exponential from
   three points, the bi-exponential with uptake from four) is fitted too and used only
   when no other model remains.
5. If no exponential model qualifies, the trapezoidal rule with a physical tail is used
   when the nuclide is known, else an error explains why.

Why not AICc alone (``selection="aicc"``, the rule before, kept for comparison): with
five points the AICc penalty of the third parameter is ``2 + 2*3*4/1 - 2*2*3/2 = 20``, so
the uptake model must reduce ``n ln WRSS`` by 20, i.e. WRSS by a factor e^4 = 55. On noisy
kidney and liver curves sampled at 1, 4, 24, 96 and 168 h the mono-exponential (which
cannot follow the rise) then wins for 11-28 % of the curves at 5 % noise and the
90th-percentile TIA error grows four- to five-fold (e.g. kidney 29 % instead of 6 %); AICc
model averaging helps little, because the mono-exponential keeps most of the Akaike weight
in exactly those cases (``benchmarks/kinetics_selection.py``, ``benchmarks/README.md``).

Identifiability. A named model with as many parameters as points (no residual degree of
freedom) is refused: the curve then passes through every noisy point. The one exception
is the mono-exponential through two points, solved exactly and flagged
(``status="exactly determined"``); its uncertainty comes from a stated measurement
uncertainty (``measurement_rsd`` or ``uncertainties``), not from a fit covariance. A
singular covariance gives ``identifiable=False``. A parameter whose coefficient of
variation exceeds 50 % is named in ``status`` (the acceptance criterion of Hardiansyah et
al. 2021).

References
----------
Glatting G, Kletting P, Reske SN, Hohl K, Ring C. Choosing the optimal fit function:
comparison of the Akaike information criterion and the F-test. Med Phys
2007;34:4285-4292.

Kletting P, Schimmel S, Kestler HA, Hänscheid H, Luster M, Fernández M, Bröer JH,
Nosske D, Lassmann M, Glatting G. Molecular radiotherapy: the NUKFIT software for
calculating the time-integrated activity coefficient. Med Phys 2013;40:102504.

Burnham KP, Anderson DR. Model Selection and Multimodel Inference. 2nd ed. Springer, 2002
(AICc).

Bates DM, Watts DG. Nonlinear Regression Analysis and Its Applications. Wiley, 1988
(extra-sum-of-squares F-test for nested nonlinear models).

Hardiansyah D, et al. A population-based method to determine the time-integrated
activity in molecular radiotherapy. EJNMMI Phys 2021;8. doi:10.1186/s40658-021-00427-x
(fits acceptable with coefficients of variation < 50 %).

Gear JI, Cox MG, Gustafsson J, et al. EANM practical guidance on uncertainty analysis for
molecular radiotherapy absorbed dose calculations. Eur J Nucl Med Mol Imaging
2018;45:2456-2474 (propagation of the TIA uncertainty from the fit covariance).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import optimize, special

from ..errors import InputDataError, UnitError
from ..units import ACTIVITY_UNITS_BQ, TIME_UNITS_S, activity_to_bq, time_to_s
from ._models import EXP_MODELS, ExpModel

__all__ = ["fit_tac", "TacFit", "MODELS"]

log = logging.getLogger(__name__)

MODELS: tuple[str, ...] = (*EXP_MODELS, "trapezoid")
_HEADS = ("model", "linear", "zero", "constant")
_TAILS = ("fit", "physical")
_WEIGHTS = ("relative", "uniform", "poisson")
_SELECTIONS = ("physiological", "aicc")
#: Largest coefficient of variation of a fitted parameter for a well-determined fit:
#: 50 %, the acceptance criterion of Hardiansyah et al. EJNMMI Phys 2021 (doi:10.1186/
#: s40658-021-00427-x).
_MAX_CV = 0.5


@dataclass(frozen=True)
class TacFit:
    """Result of :func:`fit_tac`.

    Attributes
    ----------
    model
        The model used (``"mono"``, ``"biexp-uptake"``, ``"trapezoid"``, ...).
    params
        Fitted parameters in physical units, names carrying the unit
        (``"A1_bq"``, ``"lambda1_per_s"``, ``"lambda_uptake_per_s"``); empty for the
        trapezoid.
    covariance
        Parameter covariance in the order of ``params`` (Bq, 1/s); scaled by the reduced
        chi-square when the weights are relative (``uncertainties`` not given).
    tia_bq_s
        Integral of the activity from 0 to infinity (Bq s) with the stated head and tail.
    tia_uncertainty_bq_s
        One standard uncertainty of ``tia_bq_s`` (NaN when it cannot be estimated).
    tia_uncertainty_method
        How it was obtained: ``"delta method (analytic gradient)"``, ``"sampling"`` or,
        for the trapezoid, ``"linear propagation of point uncertainties"``.
    tia_parts_bq_s
        ``{"head": ..., "body": ..., "tail": ...}``: 0 -> first point, first -> last point,
        last point -> infinity.
    chi2, reduced_chi2, r2, aicc
        Weighted residual sum of squares, chi2/dof, coefficient of determination
        (unweighted) and corrected Akaike criterion (NaN where undefined).
    candidates
        For ``model="auto"``: model -> AICc, or the reason it was rejected.
    selection_rule
        The rule that chose the model (``model="auto"``).
    identifiable
        False when the data do not determine the parameters (singular or non-finite
        covariance); the TIA is then a number without a meaningful uncertainty.
    status
        ``"ok"``; ``"exactly determined"`` (mono-exponential through two points: no fit
        residuals, uncertainty from the stated measurement uncertainty); ``"poorly
        determined: ..."`` (a parameter with a coefficient of variation above 50 %,
        Hardiansyah et al. 2021); ``"not identifiable: ..."``; for a named model that
        converged to invalid parameters, the reason (e.g. a parameter at a bound);
        ``"trapezoid"``.
    candidate_tia_bq_s
        For ``model="auto"``: the TIA (Bq s, same head and tail) of every candidate that
        converged to valid parameters, rejected by a rule or not, for comparison.
    """

    model: str
    params: dict[str, float]
    covariance: np.ndarray
    tia_bq_s: float
    tia_uncertainty_bq_s: float
    tia_uncertainty_method: str
    tia_parts_bq_s: dict[str, float]
    chi2: float
    reduced_chi2: float
    r2: float
    aicc: float
    n_points: int
    dof: int
    head: str
    tail: str
    weighting: str
    times_s: np.ndarray = field(repr=False)
    activities_bq: np.ndarray = field(repr=False)
    sigma_bq: np.ndarray | None = field(repr=False, default=None)
    physical_decay_constant_per_s: float | None = None
    candidates: dict[str, Any] = field(default_factory=dict)
    selection_rule: str = ""
    identifiable: bool = True
    status: str = "ok"
    candidate_tia_bq_s: dict[str, float] = field(default_factory=dict)

    @property
    def tia_sd_bq_s(self) -> float:
        """One standard uncertainty of :attr:`tia_bq_s` (Bq s); the same number as
        :attr:`tia_uncertainty_bq_s` (how it was obtained: :attr:`tia_uncertainty_method`).
        From the fit covariance by the delta method by default, as the EANM guidance
        describes (Gear et al. 2018); NaN when it cannot be estimated."""
        return self.tia_uncertainty_bq_s

    # ------------------------------------------------------------------------------
    @property
    def _exp(self) -> ExpModel | None:
        return EXP_MODELS.get(self.model)

    def _pvec(self) -> np.ndarray:
        return np.array(list(self.params.values()), dtype=float)

    def predict(self, t_s: float | np.ndarray) -> np.ndarray:
        """Fitted activity (Bq) at times ``t_s`` (s), including the chosen head and tail.

        For the trapezoid the curve is the piecewise-linear interpolation with the head and
        the tail used for the TIA.
        """
        t = np.asarray(t_s, dtype=float)
        m = self._exp
        t0, tn = float(self.times_s[0]), float(self.times_s[-1])
        if m is not None:
            core = m.evaluate(self._pvec(), t)
            a_first = float(m.evaluate(self._pvec(), np.array([t0]))[0])
            a_last = float(m.evaluate(self._pvec(), np.array([tn]))[0])
        else:
            core = np.interp(t, self.times_s, self.activities_bq)
            a_first, a_last = float(self.activities_bq[0]), float(self.activities_bq[-1])
        out = np.array(core, dtype=float)
        if self.head != "model":
            before = t < t0
            if self.head == "linear":
                out = np.where(before, a_first * t / t0 if t0 > 0 else 0.0, out)
            elif self.head == "constant":
                out = np.where(before, a_first, out)
            else:
                out = np.where(before, 0.0, out)
        after = t > tn
        if self.tail == "physical":
            lam = float(self.physical_decay_constant_per_s or 0.0)
            out = np.where(after, a_last * np.exp(-lam * (t - tn)), out)
        elif m is None:  # trapezoid with mono-exponential tail through the last two points
            lam = _tail_rate(self.times_s, self.activities_bq)
            out = np.where(after, a_last * np.exp(-lam * (t - tn)), out)
        return out

    def effective_half_lives_s(self) -> list[float]:
        """ln 2 / rate for each clearance phase (s), slowest first."""
        return [
            math.log(2.0) / v
            for k, v in self.params.items()
            if k.startswith("lambda") and "uptake" not in k
        ]

    def summary(self) -> str:
        """Human-readable fit report."""
        lines = [
            f"TAC fit: model={self.model}, n={self.n_points}, dof={self.dof}, "
            f"weights={self.weighting}, head={self.head}, tail={self.tail}"
        ]
        if self.params:
            for i, (k, v) in enumerate(self.params.items()):
                sd = (
                    math.sqrt(self.covariance[i, i])
                    if np.isfinite(self.covariance[i, i])
                    else math.nan
                )
                extra = ""
                if k.startswith("lambda") and v > 0:
                    extra = f"  (half-life {math.log(2) / v / 3600:.4g} h)"
                lines.append(f"  {k:<22} {v:.6g} +/- {sd:.3g}{extra}")
        parts = ", ".join(f"{k} {v:.4g}" for k, v in self.tia_parts_bq_s.items())
        lines.append(
            f"  TIA = {self.tia_bq_s:.6g} Bq s ({self.tia_bq_s / 3.6e9:.6g} MBq h) "
            f"+/- {self.tia_uncertainty_bq_s:.3g} ({self.tia_uncertainty_method}); parts: {parts}"
        )
        lines.append(
            f"  chi2={self.chi2:.4g}, reduced chi2={self.reduced_chi2:.4g}, R2={self.r2:.5f}, "
            f"AICc={self.aicc:.4g}"
        )
        lines.append(f"  status: {self.status} (identifiable: {self.identifiable})")
        if self.candidates:
            cand = "; ".join(
                f"{k}: {v:.4g}" if isinstance(v, float) else f"{k}: {v}"
                for k, v in self.candidates.items()
            )
            lines.append(f"  candidates (AICc or reason rejected): {cand}")
            lines.append(f"  selection: {self.selection_rule}")
        return "\n".join(lines)


# --------------------------------------------------------------------------------------
def _tail_rate(t: np.ndarray, a: np.ndarray) -> float:
    """Mono-exponential rate through the last two points (>= 0)."""
    if a[-1] <= 0 or a[-2] <= 0:
        return math.inf
    lam = math.log(a[-2] / a[-1]) / (t[-1] - t[-2])
    return max(lam, 0.0)


def _validate(
    times: Sequence[float] | np.ndarray,
    activities: Sequence[float] | np.ndarray,
    time_unit: str,
    activity_unit: str,
) -> tuple[np.ndarray, np.ndarray]:
    if time_unit not in TIME_UNITS_S:
        raise UnitError(f"time_unit={time_unit!r}; valid: {', '.join(TIME_UNITS_S)}")
    if activity_unit not in ACTIVITY_UNITS_BQ:
        raise UnitError(f"activity_unit={activity_unit!r}; valid: {', '.join(ACTIVITY_UNITS_BQ)}")
    t = np.asarray(times, dtype=float).ravel() * time_to_s(1.0, time_unit)
    a = np.asarray(activities, dtype=float).ravel() * activity_to_bq(1.0, activity_unit)
    if t.size != a.size:
        raise InputDataError(f"times ({t.size}) and activities ({a.size}) differ in length")
    if t.size < 2:
        raise InputDataError(
            f"need at least 2 time points, got {t.size}; for one time point use "
            "dosimetry.kinetics.stp_tia (Hänscheid et al. 2018, Madsen et al. 2018)"
        )
    if not (np.all(np.isfinite(t)) and np.all(np.isfinite(a))):
        raise InputDataError("times and activities must be finite (no NaN/inf)")
    if np.any(t < 0):
        raise InputDataError(f"times must be >= 0 after injection, got {times!r} {time_unit}")
    if np.any(np.diff(t) <= 0):
        raise InputDataError(f"times must be strictly increasing, got {times!r} {time_unit}")
    if np.any(a < 0):
        raise InputDataError(
            f"activities must be >= 0, got {activities!r} {activity_unit}; a negative organ "
            "activity is a quantification problem, not a kinetic one"
        )
    if not np.any(a > 0):
        raise InputDataError("all activities are zero: nothing to fit")
    return t, a


@dataclass
class _FitOutcome:
    model: ExpModel
    physical: np.ndarray
    cov: np.ndarray
    wrss: float
    valid: bool
    reason: str


def _starts(model: ExpModel, t: np.ndarray, y: np.ndarray, floor: float) -> list[np.ndarray]:
    """Internal-parameter start vectors (scaled units) from a log-linear fit of the tail."""
    pos = y > 0
    tt, yy = t[pos], y[pos]
    if tt.size >= 2:
        k = max(2, tt.size // 2)
        slope, icpt = np.polyfit(tt[-k:], np.log(yy[-k:]), 1)
        lam0 = max(-slope, floor * 1.5 + 1e-3, 0.05)
        a0 = float(np.exp(icpt))
    else:
        lam0, a0 = max(1.0, floor * 1.5), float(yy[0])
    starts: list[np.ndarray] = []
    n = model.n_exp
    for spread in (4.0, 15.0, 60.0):
        amps = [a0] + [a0 * 0.5**i for i in range(1, n)]
        rates = [lam0 * spread**i for i in range(n)]
        phys: list[float] = []
        for a_i, l_i in zip(amps, rates, strict=True):
            phys += [a_i, l_i]
        if model.uptake:
            for up in (5.0, 30.0):
                p = np.array(phys + [rates[-1] * up + 1.0])
                if n == 1:
                    # uptake models: the amplitude is what the curve would reach at t = 0
                    p[0] = a0 * 1.2
                starts.append(model.to_internal(p))
        else:
            starts.append(model.to_internal(np.array(phys)))
        if n == 1 and not model.uptake:
            break
    return starts


def _fit_exp(
    model: ExpModel,
    t: np.ndarray,
    y: np.ndarray,
    sigma: np.ndarray,
    absolute: bool,
    floor_per_s: float,
) -> _FitOutcome:
    k = model.n_params
    n = t.size
    # scaled units: time / t_scale, activity / a_scale
    t_scale = float(t[-1]) if t[-1] > 0 else 1.0
    a_scale = float(np.max(y))
    ts, ys, ss = t / t_scale, y / a_scale, sigma / a_scale
    floor = floor_per_s * t_scale
    lower = np.zeros(k)
    lower[model.n_exp] = floor  # l_1
    upper = np.full(k, np.inf)
    upper[: model.n_exp] = 1e3  # amplitudes (x max activity)
    upper[model.n_exp :] = 1e4  # rates (x 1/t_last)

    def resid(q: np.ndarray) -> np.ndarray:
        return (model.evaluate(model.to_physical(q), ts) - ys) / ss

    def jac(q: np.ndarray) -> np.ndarray:
        return (model.jacobian(model.to_physical(q), ts) @ model.transform_matrix()) / ss[:, None]

    best: optimize.OptimizeResult | None = None
    for q0 in _starts(model, ts, ys, floor):
        q0 = np.clip(q0, lower + 1e-9, np.minimum(upper * 0.999, np.maximum(q0, lower + 1e-9)))
        try:
            res = optimize.least_squares(
                resid,
                q0,
                jac=jac,
                bounds=(lower, upper),
                method="trf",
                x_scale="jac",
                xtol=1e-12,
                ftol=1e-12,
                gtol=1e-12,
                max_nfev=2000,
            )
        except (ValueError, np.linalg.LinAlgError):
            continue
        if best is None or res.cost < best.cost:
            best = res
    if best is None:
        return _FitOutcome(
            model, np.full(k, np.nan), np.full((k, k), np.nan), math.inf, False, "no convergence"
        )
    q = best.x
    wrss = float(np.sum(best.fun**2))
    phys_scaled = model.to_physical(q)
    # back to physical units
    scale = np.ones(k)
    scale[0 : 2 * model.n_exp : 2] = a_scale
    scale[1 : 2 * model.n_exp : 2] = 1.0 / t_scale
    if model.uptake:
        scale[-1] = 1.0 / t_scale
    physical = phys_scaled * scale
    # covariance of the internal parameters from the Jacobian at the solution
    j = best.jac
    reason = ""
    valid = True
    dof = n - k
    try:
        jtj = j.T @ j
        if np.linalg.cond(jtj) > 1e14:
            raise np.linalg.LinAlgError("ill-conditioned")
        cov_int = np.linalg.inv(jtj)
    except np.linalg.LinAlgError:
        cov_int = np.full((k, k), np.nan)
        valid, reason = False, "singular covariance (parameters not identifiable)"
    if not absolute:
        cov_int = cov_int * (wrss / dof if dof > 0 else np.nan)
    m = model.transform_matrix()
    cov_phys_scaled = m @ cov_int @ m.T
    cov = cov_phys_scaled * np.outer(scale, scale)
    # physical validity: nothing at a bound
    tol = 1e-7
    at_lower = np.abs(q - lower) <= tol * np.maximum(1.0, np.abs(lower))
    at_upper = np.isfinite(upper) & (np.abs(q - upper) <= tol * np.abs(upper))
    if valid and (np.any(at_lower[: model.n_exp]) or np.any(q[: model.n_exp] <= 0)):
        valid, reason = False, "an amplitude is zero (component not supported by the data)"
    elif valid and np.any(at_lower[model.n_exp + 1 :]):
        valid, reason = False, "two rates coincide (component not supported by the data)"
    elif valid and at_lower[model.n_exp]:
        valid, reason = False, f"slowest rate at its floor ({floor_per_s:.3g} 1/s)"
    elif valid and np.any(at_upper):
        valid, reason = False, "a parameter at its upper bound"
    elif valid and not np.all(np.isfinite(np.diag(cov))):
        valid, reason = False, "non-finite covariance"
    return _FitOutcome(model, physical, cov, wrss, valid, reason)


def _aicc(wrss: float, n: int, k: int, absolute: bool) -> float:
    if n - k - 1 <= 0:
        return math.nan
    aic = wrss + 2 * k if absolute else n * math.log(max(wrss, 1e-300) / n) + 2 * k
    return aic + 2.0 * k * (k + 1) / (n - k - 1)


def _nested_p(wrss_simple: float, wrss_full: float, n: int, k_full: int, absolute: bool) -> float:
    """p-value of the null hypothesis that the one extra parameter of the fuller of two
    nested models is not needed.

    Relative weights (scale unknown): extra-sum-of-squares F-test,
    ``F = (WRSS_s - WRSS_f) / (WRSS_f / (n - k_f))`` with (1, n - k_f) degrees of freedom,
    applied when ``n - k_f >= 2`` (NaN otherwise).
    Absolute uncertainties: likelihood-ratio test, ``chi2_s - chi2_f`` against chi-square
    with 1 degree of freedom.
    """
    dof = n - k_full
    if dof <= 0:
        return math.nan
    gain = max(wrss_simple - wrss_full, 0.0)
    if absolute:
        return float(special.chdtrc(1.0, gain))
    if dof < 2:
        # one residual degree of freedom: the variance estimate WRSS_f / 1 is too unstable
        # (a chance near-perfect fit passes F(1, 1) > 161); measured: with four points from
        # 24 h the test rejected a correct mono-exponential description for ~3 % of curves
        # and the uptake model then raised the 90th-percentile TIA error
        return math.nan
    if wrss_full <= 0.0:
        return 0.0 if gain > 0.0 else 1.0
    return float(special.fdtrc(1.0, float(dof), gain / (wrss_full / dof)))


def _uptake_extension(name: str) -> str | None:
    """The uptake model with the same clearance phases (one parameter more), if any."""
    m = EXP_MODELS[name]
    if m.uptake:
        return None
    for other, om in EXP_MODELS.items():
        if om.uptake and om.n_exp == m.n_exp:
            return other
    return None


@dataclass
class _Selection:
    outcome: _FitOutcome | None
    chosen: str
    candidates: dict[str, Any]
    valid: dict[str, _FitOutcome]
    rule: str


_RULE_AICC = (
    "lowest AICc among models with n - k - 1 > 0 and physically valid parameters "
    "(Glatting 2007; Kletting 2013)"
)


def _rule_physiological(alpha: float) -> str:
    return (
        "physiological constraint, nested test, then AICc: models without an uptake phase "
        "(which can only decrease) are rejected when the data rise (a later point above "
        "the first) and an uptake model is valid, or when the extra-sum-of-squares F-test "
        "(at least 2 residual degrees of freedom; with absolute uncertainties the "
        "likelihood-ratio chi-square test) prefers the uptake model with the same clearance "
        f"phases at alpha = {alpha:g}; among the remaining models with n - k - 1 > 0 and "
        "physically valid parameters the lowest AICc (Glatting 2007; Kletting 2013); a model "
        "with one clearance phase and n = k + 1 (AICc undefined) only when no other model "
        "remains"
    )


def _select_auto(
    t: np.ndarray,
    y: np.ndarray,
    sigma: np.ndarray,
    absolute: bool,
    floor: float,
    selection: str,
    alpha: float,
) -> _Selection:
    """Fit the candidate models and choose one (see the module docstring)."""
    n = t.size
    physio = selection == "physiological"
    candidates: dict[str, Any] = {}
    valid: dict[str, _FitOutcome] = {}
    reserve: set[str] = set()
    for name, m in EXP_MODELS.items():
        k = m.n_params
        if n - k - 1 <= 0:
            if physio and m.n_exp == 1 and n - k == 1:
                reserve.add(name)
            else:
                candidates[name] = f"needs > {k + 1} points"
                continue
        res = _fit_exp(m, t, y, sigma, absolute, floor)
        if not res.valid:
            candidates[name] = f"rejected: {res.reason}"
            continue
        valid[name] = res
        candidates[name] = (
            "AICc undefined (n = k + 1): used only if no other model remains"
            if name in reserve
            else _aicc(res.wrss, n, k, absolute)
        )
    pool = dict(valid)
    if physio:
        i_max = int(np.argmax(y))
        rises = i_max > 0 and bool(y[i_max] > y[0])
        uptake_valid = [nm for nm in valid if EXP_MODELS[nm].uptake]
        for nm in list(pool):
            if EXP_MODELS[nm].uptake:
                continue
            aicc = candidates[nm]
            reason = ""
            ext = _uptake_extension(nm)
            if rises and uptake_valid:
                reason = (
                    f"rejected (AICc {aicc:.4g}): the data rise (point {i_max + 1} of {n} is "
                    "the maximum) and a model without an uptake phase can only decrease"
                )
            elif ext is not None and ext in valid:
                p = _nested_p(
                    valid[nm].wrss, valid[ext].wrss, n, EXP_MODELS[ext].n_params, absolute
                )
                if p < alpha:
                    test = "likelihood-ratio test" if absolute else "F-test"
                    reason = (
                        f"rejected (AICc {aicc:.4g}): the {test} prefers {ext} "
                        f"(p = {p:.3g} < {alpha:g})"
                    )
            if reason:
                del pool[nm]
                candidates[nm] = reason
    ranked = {nm: float(candidates[nm]) for nm in pool if nm not in reserve}
    rule = _rule_physiological(alpha) if physio else _RULE_AICC
    if ranked:
        chosen = min(ranked, key=lambda nm: ranked[nm])
    elif pool:
        chosen = min(pool, key=lambda nm: EXP_MODELS[nm].n_params)
        rule += f"; only {chosen} (n = k + 1) remained"
    else:
        return _Selection(None, "trapezoid", candidates, valid, rule)
    return _Selection(pool[chosen], chosen, candidates, valid, rule)


def _integrate(
    m: ExpModel,
    p: np.ndarray,
    t0: float,
    tn: float,
    head: str,
    tail: str,
    lam_phys: float | None,
) -> tuple[dict[str, float], np.ndarray]:
    """TIA parts (head, body, tail; Bq s) and the gradient of their sum w.r.t. ``p``."""
    grad = np.zeros(m.n_params)
    if head == "model":
        h = m.integral(p, 0.0, t0)
        grad += m.integral_gradient(p, 0.0, t0)
    elif head in ("linear", "constant"):
        fac = 0.5 if head == "linear" else 1.0
        h = fac * t0 * float(m.evaluate(p, np.array([t0]))[0])
        grad += fac * t0 * m.jacobian(p, np.array([t0]))[0]
    else:
        h = 0.0
    body = m.integral(p, t0, tn)
    grad += m.integral_gradient(p, t0, tn)
    if tail == "fit":
        tl = m.integral(p, tn, math.inf)
        grad += m.integral_gradient(p, tn, math.inf)
    else:
        if lam_phys is None:  # checked by the caller
            raise InputDataError("tail='physical' needs nuclide=")
        tl = float(m.evaluate(p, np.array([tn]))[0]) / lam_phys
        grad += m.jacobian(p, np.array([tn]))[0] / lam_phys
    return {"head": h, "body": body, "tail": tl}, grad


def _two_point_mono(
    t: np.ndarray, y: np.ndarray, sigma_abs: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """Mono-exponential through two points: parameters ``[A, lambda]`` and their covariance
    propagated from the point uncertainties ``sigma_abs`` (NaN without them).

    ``lambda = ln(y1/y2) / (t2 - t1)``, ``A = y1 exp(lambda t1)``; the derivatives are
    ``dlambda/dy1 = 1/(y1 dt)``, ``dlambda/dy2 = -1/(y2 dt)``,
    ``dA/dy1 = exp(lambda t1) (1 + t1/dt)``, ``dA/dy2 = -A t1/(y2 dt)``.
    """
    (t1, t2), (y1, y2) = t, y
    dt = float(t2 - t1)
    lam = math.log(y1 / y2) / dt
    a = float(y1 * math.exp(lam * t1))
    p = np.array([a, lam])
    if sigma_abs is None:
        return p, np.full((2, 2), np.nan)
    jac = np.array(
        [
            [math.exp(lam * t1) * (1.0 + t1 / dt), -a * t1 / (y2 * dt)],
            [1.0 / (y1 * dt), -1.0 / (y2 * dt)],
        ]
    )
    return p, jac @ np.diag(np.asarray(sigma_abs, dtype=float) ** 2) @ jac.T


def _precision_note(names: list[str], p: np.ndarray, cov: np.ndarray) -> str:
    """'' or which parameters have a coefficient of variation above 50 %."""
    with np.errstate(divide="ignore", invalid="ignore"):
        cv = np.sqrt(np.abs(np.diag(cov))) / np.abs(p)
    bad = [f"{nm} {100 * c:.0f} %" for nm, c in zip(names, cv, strict=True) if c > _MAX_CV]
    if not bad:
        return ""
    return (
        f"poorly determined: coefficient of variation above {100 * _MAX_CV:.0f} % "
        f"(Hardiansyah 2021) for {', '.join(bad)}"
    )


def fit_tac(
    times: Sequence[float] | np.ndarray,
    activities: Sequence[float] | np.ndarray,
    time_unit: str = "h",
    activity_unit: str = "MBq",
    model: str = "auto",
    *,
    weights: str = "relative",
    uncertainties: Sequence[float] | np.ndarray | None = None,
    measurement_rsd: float | None = None,
    nuclide: str | None = None,
    head: str | None = None,
    tail: str = "fit",
    rate_floor: str = "auto",
    selection: str = "physiological",
    selection_alpha: float = 0.05,
    uncertainty_method: str = "delta",
    n_samples: int = 2000,
    seed: int | None = 0,
) -> TacFit:
    """Fit a time-activity curve and integrate it from 0 to infinity.

    Parameters
    ----------
    times
        Acquisition times after injection, in ``time_unit``, strictly increasing.
    activities
        Activity at each time (not decay corrected), in ``activity_unit``, >= 0.
    time_unit, activity_unit
        Units of the inputs (``"h"``, ``"d"``, ``"s"``, ...; ``"MBq"``, ``"Bq"``, ...).
    model
        ``"auto"`` (see ``selection`` and the module docstring),
        ``"mono"`` (``A1 e^-l1t``), ``"biexp-uptake"`` (``A1 (e^-l1t - e^-lut)``),
        ``"biexp"``, ``"triexp-uptake"`` (``A1 e^-l1t + A2 e^-l2t - (A1+A2) e^-lut``),
        ``"triexp"`` or ``"trapezoid"`` (needs ``nuclide`` for its physical tail
        unless ``tail="fit"``, which then uses a mono-exponential through the last two
        points). A named model needs more points than parameters (at least one residual
        degree of freedom), except the mono-exponential through two points.
    weights
        Weighting when ``uncertainties`` is not given: ``"relative"`` (sigma proportional
        to the activity, constant coefficient of variation, default), ``"uniform"`` or
        ``"poisson"`` (sigma proportional to sqrt(activity)); the scale is estimated from
        the residuals (covariance multiplied by the reduced chi-square).
    uncertainties
        Absolute one-sigma uncertainty of each activity (``activity_unit``). When given,
        chi-square is absolute and the covariance is not rescaled.
    measurement_rsd
        Relative standard uncertainty of each activity (e.g. 0.1 for a 10 % SD of a SPECT
        VOI activity; EANM guidance, Gear et al. 2018). Used where there are no fit
        residuals to estimate the scatter: the mono-exponential through two points.
        Ignored when ``uncertainties`` is given.
    nuclide
        Radionuclide of the measured activity (``"Lu-177"``). Needed for
        ``tail="physical"`` and the trapezoid; it also sets the rate floor.
    head
        0 -> first point: ``"model"`` (the fitted curve; default for fitted models),
        ``"linear"`` (straight line from 0 at t=0; default for the trapezoid),
        ``"constant"`` (first value back to t=0) or ``"zero"``.
    tail
        Last point -> infinity: ``"fit"`` (the fitted curve, default) or ``"physical"``
        (the fitted value at the last point decaying with the physical half-life only,
        an upper bound without further clearance).
    rate_floor
        Lower bound of the clearance rates: ``"auto"`` (the physical decay constant when
        ``nuclide`` is given, else 0), ``"physical"`` or ``"zero"``.
    selection
        Rule of ``model="auto"``: ``"physiological"`` (default: models without an uptake
        phase are rejected when the data rise or when a nested test prefers the uptake
        model, then the lowest AICc) or ``"aicc"`` (the lowest AICc alone, the rule before
        this option existed). See the module docstring.
    selection_alpha
        Significance level of the nested test of ``selection="physiological"`` (the
        conventional 5 %).
    uncertainty_method
        ``"delta"`` (first-order propagation of the parameter covariance with the analytic
        gradient of the integral) or ``"sampling"`` (``n_samples`` draws from the
        multivariate normal of the parameters, standard deviation of the integrals).
    n_samples, seed
        Sampling settings.

    Returns
    -------
    TacFit
        With ``identifiable`` and ``status`` saying how well the data determine the fit.

    Raises
    ------
    InputDataError
        Bad data (NaN, negative activity, unsorted times), too few points for the model
        (a named model needs more points than parameters), or no model qualifies.
    UnitError
        Unknown unit strings.

    References
    ----------
    Kletting P et al. Med Phys 2013;40:102504 (NUKFIT; AICc model selection).
    Glatting G et al. Med Phys 2007;34:4285-4292 (AIC and F-test compared).
    Bates DM, Watts DG. Nonlinear Regression Analysis and Its Applications. Wiley, 1988
    (extra-sum-of-squares F-test for nested models).
    Hardiansyah D et al. EJNMMI Phys 2021, doi:10.1186/s40658-021-00427-x (fit acceptable when every parameter's
    coefficient of variation is below 50 %).
    Gear JI et al. Eur J Nucl Med Mol Imaging 2018;45:2456-2474 (uncertainty propagation).

    Examples
    --------
    >>> import numpy as np
    >>> t = np.array([24.0, 48.0, 96.0, 168.0])
    >>> a = 100.0 * np.exp(-np.log(2) / 40.0 * t)
    >>> fit = fit_tac(t, a, "h", "MBq", model="mono")
    >>> float(round(fit.tia_bq_s / (100e6 * 40 * 3600 / np.log(2)), 8))
    1.0
    >>> two = fit_tac([24.0, 96.0], [80.0, 35.0], model="mono", measurement_rsd=0.1)
    >>> two.status, two.identifiable, two.dof
    ('exactly determined', True, 0)
    """
    t, y = _validate(times, activities, time_unit, activity_unit)
    n = t.size
    if model not in (*MODELS, "auto"):
        raise InputDataError(f"model={model!r}; valid: 'auto', {', '.join(map(repr, MODELS))}")
    if tail not in _TAILS:
        raise InputDataError(f"tail={tail!r}; valid: {', '.join(_TAILS)}")
    if uncertainty_method not in ("delta", "sampling"):
        raise InputDataError(
            f"uncertainty_method={uncertainty_method!r}; valid: 'delta', 'sampling'"
        )
    if selection not in _SELECTIONS:
        raise InputDataError(f"selection={selection!r}; valid: {', '.join(_SELECTIONS)}")
    if not (isinstance(selection_alpha, int | float) and 0.0 < selection_alpha < 1.0):
        raise InputDataError(
            f"selection_alpha={selection_alpha!r} must be a probability in (0, 1), e.g. 0.05"
        )
    if measurement_rsd is not None and not (
        isinstance(measurement_rsd, int | float)
        and math.isfinite(measurement_rsd)
        and measurement_rsd > 0
    ):
        raise InputDataError(
            f"measurement_rsd={measurement_rsd!r} must be a positive relative standard "
            "uncertainty, e.g. 0.1 for 10 %"
        )
    lam_phys: float | None = None
    if nuclide is not None:
        from ..nuclides import nuclide as _nuclide

        lam_phys = _nuclide(nuclide).decay_constant_per_s
    if rate_floor not in ("auto", "physical", "zero"):
        raise InputDataError(f"rate_floor={rate_floor!r}; valid: 'auto', 'physical', 'zero'")
    if rate_floor == "physical" and lam_phys is None:
        raise InputDataError("rate_floor='physical' needs nuclide=...")
    floor = lam_phys if (rate_floor in ("auto", "physical") and lam_phys is not None) else 0.0
    if tail == "physical" and lam_phys is None:
        raise InputDataError("tail='physical' needs nuclide= (e.g. nuclide='Lu-177')")

    # weights
    sigma_abs: np.ndarray | None = None
    if uncertainties is not None:
        sigma = np.asarray(uncertainties, dtype=float).ravel() * activity_to_bq(1.0, activity_unit)
        if sigma.size != n or not np.all(np.isfinite(sigma)) or np.any(sigma <= 0):
            raise InputDataError(
                f"uncertainties must be {n} positive finite numbers ({activity_unit}), got "
                f"{uncertainties!r}"
            )
        absolute, weighting = True, "absolute uncertainties"
        sigma_abs = sigma
    else:
        if weights not in _WEIGHTS:
            raise InputDataError(f"weights={weights!r}; valid: {', '.join(_WEIGHTS)}")
        if weights == "relative":
            if np.any(y <= 0):
                raise InputDataError(
                    "weights='relative' needs activities > 0; use weights='uniform' or give "
                    "uncertainties"
                )
            sigma = y.copy()
        elif weights == "poisson":
            sigma = np.sqrt(np.maximum(y, np.max(y) * 1e-6))
        else:
            sigma = np.ones_like(y)
        absolute, weighting = False, f"{weights} (scale from residuals)"
        if measurement_rsd is not None:
            sigma_abs = float(measurement_rsd) * y

    candidates: dict[str, Any] = {}
    valid: dict[str, _FitOutcome] = {}
    rule = ""
    outcome: _FitOutcome | None = None
    chosen = model
    exact = n == 2 and model in ("auto", "mono")
    if exact:
        rule = "two points: mono-exponential through both (exactly determined)"
        decreasing = y[0] > 0 and y[1] > 0 and y[1] < y[0]
        lam2 = math.log(y[0] / y[1]) / float(t[1] - t[0]) if decreasing else -math.inf
        if lam2 <= floor and model == "auto":
            if lam_phys is None:
                raise InputDataError(
                    f"two points that do not decrease faster than the rate floor "
                    f"({floor:.3g} 1/s) have no mono-exponential clearance; give nuclide= for "
                    "the trapezoid with a physical tail, or more time points"
                )
            chosen = "trapezoid"
            candidates["mono"] = (
                f"rejected: rate {lam2:.3g} 1/s through the two points is not above the "
                f"floor {floor:.3g} 1/s"
            )
            rule += "; not decreasing faster than the floor -> trapezoid with physical tail"
        elif not decreasing:
            raise InputDataError(
                f"model='mono' through two points needs a decreasing activity, got "
                f"{activities!r} {activity_unit}; use model='trapezoid' with nuclide= and "
                "tail='physical'"
            )
        else:
            chosen = "mono"
            p2, cov2 = _two_point_mono(t, y, sigma_abs)
            reason = ""
            if lam2 <= floor:
                reason = f"slowest rate at or below its floor ({floor:.3g} 1/s)"
                log.warning("fit_tac: model mono through two points: %s", reason)
            outcome = _FitOutcome(EXP_MODELS["mono"], p2, cov2, 0.0, not reason, reason)
    elif model == "auto":
        sel = _select_auto(t, y, sigma, absolute, floor, selection, float(selection_alpha))
        outcome, chosen, candidates, valid, rule = (
            sel.outcome,
            sel.chosen,
            sel.candidates,
            sel.valid,
            sel.rule,
        )
        if outcome is None:
            if lam_phys is None:
                raise InputDataError(
                    f"no exponential model qualifies for these {n} points ({candidates}); "
                    "give nuclide= for the trapezoid fallback or choose a model explicitly"
                )
            rule += "; none qualified -> trapezoid with physical tail"
    elif model != "trapezoid":
        m = EXP_MODELS[model]
        if n < m.n_params:
            raise InputDataError(
                f"model {model!r} has {m.n_params} parameters but only {n} points were given"
            )
        if n == m.n_params:
            raise InputDataError(
                f"model {model!r} has {m.n_params} parameters and {n} points: the parameters "
                "are not identifiable from these data (no residual degree of freedom, the "
                "curve passes through every noisy point and its integral follows the noise). "
                "Use a model with fewer parameters than points (model='auto' chooses one), "
                "or add time points"
            )
        outcome = _fit_exp(m, t, y, sigma, absolute, floor)
        if not np.all(np.isfinite(outcome.physical)):
            raise InputDataError(f"model {model!r} did not converge on these data")
        if not outcome.valid:
            log.warning("fit_tac: model %s: %s", model, outcome.reason)

    if head is None:
        head = "linear" if chosen == "trapezoid" else "model"
    if head not in _HEADS:
        raise InputDataError(f"head={head!r}; valid: {', '.join(_HEADS)}")

    if chosen == "trapezoid":
        if head == "model":
            raise InputDataError("head='model' has no meaning for the trapezoid; use 'linear'")
        return _trapezoid(
            t, y, sigma if absolute else None, head, tail, lam_phys, weighting, candidates, rule
        )

    if outcome is None:  # pragma: no cover - set on every exponential path above
        raise InputDataError(f"model {chosen!r}: no fit outcome")
    m = outcome.model
    p = outcome.physical
    k = m.n_params
    t0, tn = float(t[0]), float(t[-1])
    parts, grad = _integrate(m, p, t0, tn, head, tail, lam_phys)
    tia = float(sum(parts.values()))
    cov = outcome.cov
    if uncertainty_method == "delta":
        var = float(grad @ cov @ grad)
        unc = math.sqrt(var) if np.isfinite(var) and var >= 0 else math.nan
        method = "delta method (analytic gradient)"
    else:
        unc = _sampled_sd(
            lambda pp: float(sum(_integrate(m, pp, t0, tn, head, tail, lam_phys)[0].values())),
            p,
            cov,
            n_samples,
            seed,
        )
        method = f"sampling ({n_samples} draws, multivariate normal parameters)"
    if exact:
        src = (
            "absolute uncertainties"
            if uncertainties is not None
            else f"a {100 * measurement_rsd:g} % relative SD per point"
            if measurement_rsd is not None
            else ""
        )
        if src:
            method += f" on the measurement uncertainty ({src}; exactly determined, no fit)"
        else:
            method = (
                "not available: exactly determined (no fit residuals); give measurement_rsd= "
                "or uncertainties="
            )
    model_y = m.evaluate(p, t)
    dof = n - k
    chi2 = float(np.sum(((model_y - y) / sigma) ** 2))
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    r2 = 1.0 - float(np.sum((model_y - y) ** 2)) / ss_tot if ss_tot > 0 else math.nan
    if exact:
        status, identifiable = (
            ("exactly determined", True)
            if outcome.valid
            else (
                f"exactly determined; {outcome.reason}",
                True,
            )
        )
    elif not outcome.valid:
        identifiable = "covariance" not in outcome.reason
        status = ("not identifiable: " if not identifiable else "") + outcome.reason
    else:
        identifiable = True
        status = _precision_note(m.param_names(), p, cov) or "ok"
    cand_tia: dict[str, float] = {}
    for nm, res in valid.items():
        cand_tia[nm] = float(
            sum(_integrate(res.model, res.physical, t0, tn, head, tail, lam_phys)[0].values())
        )
    return TacFit(
        model=chosen,
        params=dict(zip(m.param_names(), (float(v) for v in p), strict=True)),
        covariance=cov,
        tia_bq_s=tia,
        tia_uncertainty_bq_s=unc,
        tia_uncertainty_method=method,
        tia_parts_bq_s=parts,
        chi2=chi2,
        reduced_chi2=chi2 / dof if dof > 0 else math.nan,
        r2=r2,
        aicc=_aicc(outcome.wrss, n, k, absolute),
        n_points=n,
        dof=dof,
        head=head,
        tail=tail,
        weighting=weighting,
        times_s=t,
        activities_bq=y,
        sigma_bq=sigma if absolute else None,
        physical_decay_constant_per_s=lam_phys,
        candidates=candidates,
        selection_rule=rule,
        identifiable=identifiable,
        status=status,
        candidate_tia_bq_s=cand_tia,
    )


def _sampled_sd(
    func: Any, p: np.ndarray, cov: np.ndarray, n_samples: int, seed: int | None
) -> float:
    if not np.all(np.isfinite(cov)):
        return math.nan
    rng = np.random.default_rng(seed)
    draws = rng.multivariate_normal(p, cov, size=int(n_samples), check_valid="ignore")
    vals = []
    for d in draws:
        if np.any(d[1::2] <= 0):  # a non-positive rate has no finite integral
            continue
        v = func(d)
        if np.isfinite(v):
            vals.append(v)
    if len(vals) < 10:
        return math.nan
    return float(np.std(vals, ddof=1))


def _trapezoid(
    t: np.ndarray,
    y: np.ndarray,
    sigma: np.ndarray | None,
    head: str,
    tail: str,
    lam_phys: float | None,
    weighting: str,
    candidates: dict[str, Any],
    rule: str,
) -> TacFit:
    n = t.size
    w = np.zeros(n)  # TIA = sum w_i y_i (+ nonlinear tail for tail='fit')
    t0 = float(t[0])
    if head == "linear":
        w[0] += 0.5 * t0
    elif head == "constant":
        w[0] += t0
    dt = np.diff(t)
    w[:-1] += 0.5 * dt
    w[1:] += 0.5 * dt
    head_part = float((0.5 if head == "linear" else 1.0 if head == "constant" else 0.0) * t0 * y[0])
    body = float(np.sum(0.5 * dt * (y[:-1] + y[1:])))
    if tail == "physical":
        if lam_phys is None:
            raise InputDataError("the trapezoid with tail='physical' needs nuclide=")
        tl = float(y[-1] / lam_phys)
        w[-1] += 1.0 / lam_phys
        linear = True
    else:
        lam = _tail_rate(t, y)
        if lam_phys is not None:
            lam = max(lam, lam_phys)
        if not np.isfinite(lam) or lam <= 0:
            raise InputDataError(
                "trapezoid tail='fit': the last two points do not decrease; use "
                "tail='physical' with nuclide="
            )
        tl = float(y[-1] / lam)
        linear = False
    tia = head_part + body + tl
    if sigma is not None and linear:
        unc = float(math.sqrt(np.sum((w * sigma) ** 2)))
        method = "linear propagation of point uncertainties"
    else:
        unc = math.nan
        method = "not available (give uncertainties and tail='physical')"
    return TacFit(
        model="trapezoid",
        params={},
        covariance=np.zeros((0, 0)),
        tia_bq_s=tia,
        tia_uncertainty_bq_s=unc,
        tia_uncertainty_method=method,
        tia_parts_bq_s={"head": head_part, "body": body, "tail": tl},
        chi2=0.0,
        reduced_chi2=math.nan,
        r2=1.0,
        aicc=math.nan,
        n_points=n,
        dof=0,
        head=head,
        tail=tail,
        weighting=weighting,
        times_s=t,
        activities_bq=y,
        sigma_bq=sigma,
        physical_decay_constant_per_s=lam_phys,
        candidates=candidates,
        selection_rule=rule,
        status="trapezoid",
    )
