"""Radiobiology of radiopharmaceutical therapy: BED, EQD2 and the Lea-Catcheside factor.

The linear-quadratic (LQ) model with mono-exponential repair of sublethal damage gives,
for an absorbed dose ``D`` delivered with a time-varying dose rate ``R(t)`` (``t >= 0``,
``D = integral R``), the biologically effective dose (Dale 1985; Dale 1996)::

    BED = D * (1 + G * D / (alpha/beta))

    G = (2 / D**2) * integral_0^inf R(t) * integral_0^t R(w) exp(-mu (t - w)) dw dt

``G`` is the Lea-Catcheside dose-protraction factor and ``mu = ln 2 / T_rep`` the repair
rate. ``G`` depends only on the *shape* of ``R(t)``, not on its scale, so for a fixed
kinetic shape BED is quadratic in the dose (and in the administered activity).

Kinetic shapes are :class:`DoseRateShape` objects: a sum of exponentials
``R(t) ∝ sum_i a_i exp(-lambda_i t)``. Amplitudes may be negative, which expresses an
uptake phase (e.g. ``exp(-lambda t) - exp(-lambda_u t)``, Dale's uptake-washout form). For
such a sum the double integral has the closed form (derived in ``docs/radiobiology.md``)::

    G = (1/D**2) sum_ij a_i a_j (lambda_i + lambda_j + 2 mu)
                   / ((lambda_i + lambda_j)(lambda_i + mu)(lambda_j + mu)),
    D = sum_i a_i / lambda_i

which reduces to ``G = lambda / (lambda + mu) = T_rep / (T_rep + T_eff)`` for a
mono-exponential with instant uptake. :func:`lea_catcheside_g_numeric` evaluates the double
integral numerically for any sampled or callable dose rate (used for the checks and for
dose rates that are not sums of exponentials).

Conventions (see ``docs/radiobiology.md``)
------------------------------------------
* Cycles are assumed to be separated by much more than the repair half-time (weeks
  versus hours): sublethal damage from one cycle is fully repaired before the next, so the
  BED of a treatment is the sum of the per-cycle BEDs (:func:`cumulative_bed`).
  Repopulation between cycles is neglected (conservative for normal tissue).
* Alpha emitters (²²⁵Ac): the alpha part of the absorbed dose is taken as non-repairable
  (no quadratic term, ``G = 0``) and RBE-weighted; the beta/photon part keeps the LQ term
  with its own ``G``: ``BED = RBE * D_alpha + D_beta (1 + G D_beta / (alpha/beta))``
  (:func:`bed_alpha_beta_mixture`). This is a convention of this project; no published
  BED convention for ²²⁵Ac could be verified. Organ limits derived from beta-emitter
  (and external-beam) experience are an extrapolation when applied to it.

References
----------
Dale RG. The application of the linear-quadratic dose-effect equation to fractionated and
protracted radiotherapy. Br J Radiol 1985;58:515-528.

Dale RG. Dose-rate effects in targeted radiotherapy. Phys Med Biol 1996;41:1871-1884
(uptake and clearance phases of the dose rate).

Wessels BW et al. MIRD Pamphlet No. 20: the effect of model assumptions on kidney dosimetry
and response. J Nucl Med 2008;49:1884-1899.

Sgouros G et al. MIRD Pamphlet No. 22: radiobiology and dosimetry of alpha-particle
emitters for targeted radionuclide therapy. J Nucl Med 2010;51:311-328 (RBE for
deterministic effects).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import overload

import numpy as np
from scipy import signal

from . import parameters
from .errors import InputDataError, UnitError
from .volume import Volume

_log = logging.getLogger(__name__)

__all__ = [
    "DoseRateShape",
    "TissueRadiobiology",
    "TISSUE_PARAMETER_NAMES",
    "tissue_parameters",
    "lea_catcheside_g",
    "lea_catcheside_g_numeric",
    "bed_gy",
    "bed",
    "eqd2",
    "cumulative_bed",
    "dose_for_bed",
    "bed_alpha_beta_mixture",
    "bed_map",
    "bed_map_from_voi_kinetics",
    "ALPHA_BED_CONVENTION",
]

LN2 = math.log(2.0)

#: The convention this module applies to mixed alpha/beta dose (documented in reports).
ALPHA_BED_CONVENTION = (
    "BED = RBE * D_alpha + D_beta * (1 + G * D_beta / (alpha/beta)): alpha dose RBE-weighted "
    "and non-repairable (G = 0 for the alpha part), beta/photon part with its Lea-Catcheside "
    "factor; cross terms between alpha and beta damage neglected. Project convention (no "
    "published BED convention for Ac-225 verified); limits derived from beta-emitter data "
    "are an extrapolation for alpha emitters."
)


# ------------------------------------------------------------------------ kinetic shapes
@dataclass(frozen=True)
class DoseRateShape:
    """Shape of a dose rate ``R(t) ∝ sum_i a_i exp(-lambda_i t)`` for ``t >= 0``.

    Only the shape matters for the Lea-Catcheside factor; the scale is arbitrary.

    Attributes
    ----------
    amplitudes
        ``a_i`` (any unit, may be negative for an uptake term).
    rates_per_s
        ``lambda_i`` (1/s), all > 0 (the dose must be finite).
    description
        How the shape was made (for provenance).
    """

    amplitudes: tuple[float, ...]
    rates_per_s: tuple[float, ...]
    description: str = ""

    def __post_init__(self) -> None:
        a = np.asarray(self.amplitudes, dtype=float)
        lam = np.asarray(self.rates_per_s, dtype=float)
        if a.ndim != 1 or a.size == 0 or a.shape != lam.shape:
            raise InputDataError(
                "DoseRateShape needs as many amplitudes as rates (at least one); got "
                f"{len(self.amplitudes)} amplitudes and {len(self.rates_per_s)} rates"
            )
        if not (np.all(np.isfinite(a)) and np.all(np.isfinite(lam))) or np.any(lam <= 0):
            raise InputDataError(
                f"DoseRateShape rates_per_s must be finite and > 0 (a dose rate that never "
                f"decays gives an infinite dose); got {list(self.rates_per_s)}"
            )
        if not self.integral() > 0:
            raise InputDataError(
                f"DoseRateShape integrates to {self.integral()!r} <= 0: amplitudes "
                f"{list(self.amplitudes)} with rates {list(self.rates_per_s)} give no dose"
            )
        t = np.concatenate(([0.0], np.geomspace(1e-3, 50.0, 400) / float(lam.min())))
        r = self(t)
        if np.any(r < -1e-9 * float(np.max(np.abs(r)))):
            raise InputDataError(
                "DoseRateShape is negative at some time: an uptake term must not exceed the "
                f"clearance terms (amplitudes {list(self.amplitudes)}, rates "
                f"{list(self.rates_per_s)})"
            )

    # -- constructors -----------------------------------------------------------------
    @classmethod
    def mono_exponential(cls, effective_half_life_s: float) -> DoseRateShape:
        """Instant uptake, mono-exponential clearance with ``effective_half_life_s``."""
        t = _positive(effective_half_life_s, "effective_half_life_s")
        return cls((1.0,), (LN2 / t,), f"mono-exponential, T_eff = {t / 3600:.4g} h")

    @classmethod
    def uptake_washout(
        cls, effective_half_life_s: float, uptake_half_life_s: float
    ) -> DoseRateShape:
        """``R(t) ∝ exp(-lambda t) - exp(-lambda_u t)`` (Dale 1996 uptake-washout form).

        ``uptake_half_life_s`` must be shorter than ``effective_half_life_s``.
        """
        t = _positive(effective_half_life_s, "effective_half_life_s")
        tu = _positive(uptake_half_life_s, "uptake_half_life_s")
        if tu >= t:
            raise InputDataError(
                f"uptake_half_life_s={tu} must be shorter than effective_half_life_s={t} "
                "(otherwise the curve is not an uptake followed by washout)"
            )
        return cls(
            (1.0, -1.0),
            (LN2 / t, LN2 / tu),
            f"uptake-washout, T_eff = {t / 3600:.4g} h, T_uptake = {tu / 3600:.4g} h",
        )

    @classmethod
    def bi_exponential(
        cls,
        fraction_fast: float,
        fast_half_life_s: float,
        slow_half_life_s: float,
    ) -> DoseRateShape:
        """Two clearance phases; ``fraction_fast`` of the *initial dose rate* clears fast."""
        f = float(fraction_fast)
        if not 0.0 <= f <= 1.0:
            raise InputDataError(f"fraction_fast must be in [0, 1], got {fraction_fast}")
        t1 = _positive(fast_half_life_s, "fast_half_life_s")
        t2 = _positive(slow_half_life_s, "slow_half_life_s")
        return cls(
            (f, 1.0 - f),
            (LN2 / t1, LN2 / t2),
            f"bi-exponential, {f:.3g} at {t1 / 3600:.4g} h + {1 - f:.3g} at {t2 / 3600:.4g} h",
        )

    @classmethod
    def from_tac(
        cls,
        amplitudes_bq: Sequence[float],
        rates_per_s: Sequence[float],
        uptake_rate_per_s: float | None = None,
    ) -> DoseRateShape:
        """Shape of a fitted TAC of :mod:`dosimetry.kinetics` (``ExpModel`` physical form).

        ``A(t) = sum_i A_i exp(-l_i t) - [uptake] (sum_i A_i) exp(-l_u t)`` with effective
        (not decay-corrected) rates. Dose rate ∝ activity in the VOI (local absorbed dose).
        """
        a = [float(x) for x in amplitudes_bq]
        lam = [float(x) for x in rates_per_s]
        if uptake_rate_per_s is not None and math.isfinite(uptake_rate_per_s):
            a.append(-sum(a))
            lam.append(float(uptake_rate_per_s))
        return cls(tuple(a), tuple(lam), "fitted time-activity curve")

    # -- evaluation ---------------------------------------------------------------------
    def __call__(self, t_s: float | np.ndarray) -> np.ndarray:
        """Relative dose rate at ``t_s`` (s)."""
        t = np.asarray(t_s, dtype=float)[..., None]
        return np.asarray(
            np.sum(np.asarray(self.amplitudes) * np.exp(-np.asarray(self.rates_per_s) * t), -1)
        )

    def integral(self) -> float:
        """``integral_0^inf R(t) dt`` in the amplitudes' unit times s."""
        return float(np.sum(np.asarray(self.amplitudes) / np.asarray(self.rates_per_s)))


def _positive(value: float, name: str) -> float:
    v = float(value)
    if not (v > 0 and math.isfinite(v)):
        raise InputDataError(f"{name} must be finite and > 0, got {value!r}")
    return v


# ------------------------------------------------------------------------ the G factor
def lea_catcheside_g(shape: DoseRateShape | float, repair_half_time_s: float) -> float:
    """Lea-Catcheside factor ``G`` of a sum-of-exponentials dose rate, closed form.

    Parameters
    ----------
    shape
        A :class:`DoseRateShape`, or a number: the effective half-life (s) of a
        mono-exponential with instant uptake.
    repair_half_time_s
        Sublethal-damage repair half-time (s), > 0.

    Returns
    -------
    float
        ``G`` in [0, 1] (1 = acute delivery, 0 = infinitely protracted).

    Notes
    -----
    ``G = (1/D^2) sum_ij a_i a_j (l_i + l_j + 2 mu) / ((l_i + l_j)(l_i + mu)(l_j + mu))``
    with ``D = sum a_i / l_i`` (double integral of Dale 1985 evaluated term by term; no
    singularity when a rate equals ``mu``).

    References
    ----------
    Dale RG. Br J Radiol 1985;58:515-528. Dale RG. Phys Med Biol 1996;41:1871-1884.

    Examples
    --------
    >>> round(lea_catcheside_g(50 * 3600.0, 2.8 * 3600.0), 6)  # T_rep / (T_rep + T_eff)
    0.05303
    """
    if not isinstance(shape, DoseRateShape):
        shape = DoseRateShape.mono_exponential(float(shape))
    mu = LN2 / _positive(repair_half_time_s, "repair_half_time_s")
    a = np.asarray(shape.amplitudes, dtype=float)
    lam = np.asarray(shape.rates_per_s, dtype=float)
    li, lj = lam[:, None], lam[None, :]
    terms = (a[:, None] * a[None, :]) * (li + lj + 2 * mu) / ((li + lj) * (li + mu) * (lj + mu))
    d = shape.integral()
    return float(np.sum(terms) / d**2)


def lea_catcheside_g_numeric(
    dose_rate: Callable[[np.ndarray], np.ndarray] | DoseRateShape | tuple[np.ndarray, np.ndarray],
    repair_half_time_s: float,
    t_max_s: float | None = None,
    n_steps: int = 200_000,
) -> float:
    """Lea-Catcheside factor by numerical quadrature of the double integral.

    The inner integral ``q(t) = integral_0^t R(w) exp(-mu (t - w)) dw`` (the dose not yet
    repaired) is advanced step by step with the exact exponential factor and the
    trapezoidal rule for ``R``; the outer integral ``(2/D^2) integral R q dt`` and ``D``
    use the trapezoidal rule on the same grid.

    Parameters
    ----------
    dose_rate
        A callable ``R(t_s)`` (any scale), a :class:`DoseRateShape`, or sampled values
        ``(t_s, r)`` with ``t_s[0] == 0`` (linearly interpolated; nothing after the last
        sample).
    repair_half_time_s
        Repair half-time (s).
    t_max_s
        Integration end (s) for callables; default 60 slowest half-lives for a
        :class:`DoseRateShape`, required otherwise.
    n_steps
        Number of uniform steps (callables and shapes).

    Returns
    -------
    float
        ``G``.
    """
    mu = LN2 / _positive(repair_half_time_s, "repair_half_time_s")
    if isinstance(dose_rate, tuple):
        t_s, r = (np.asarray(x, dtype=float) for x in dose_rate)
        if t_s.ndim != 1 or t_s.shape != r.shape or t_s.size < 2 or t_s[0] != 0:
            raise InputDataError("sampled dose_rate needs 1-D (t_s, r) of equal length, t_s[0]=0")
        if np.any(np.diff(t_s) <= 0):
            raise InputDataError("sampled dose_rate times must increase")
        t, rv = t_s, r
    else:
        if isinstance(dose_rate, DoseRateShape):
            if t_max_s is None:
                t_max_s = 60.0 * LN2 / float(min(dose_rate.rates_per_s))
        elif t_max_s is None:
            raise InputDataError("t_max_s is required for a callable dose_rate")
        t = np.linspace(0.0, _positive(t_max_s, "t_max_s"), int(n_steps) + 1)
        rv = np.asarray(dose_rate(t), dtype=float)
    h = np.diff(t)
    e = np.exp(-mu * h)
    # q_{k+1} = q_k e + h/2 (R_k e + R_{k+1})  (trapezoid on R(w) exp(-mu (t_{k+1} - w)))
    inc = 0.5 * h * (rv[:-1] * e + rv[1:])
    q = np.zeros_like(rv)
    if np.allclose(h, h[0], rtol=1e-12, atol=0.0):  # uniform grid: a first-order IIR filter
        q[1:] = signal.lfilter([1.0], [1.0, -float(e[0])], inc)
    else:
        acc = 0.0
        for k in range(h.size):
            acc = acc * e[k] + inc[k]
            q[k + 1] = acc
    d = float(np.sum(0.5 * h * (rv[:-1] + rv[1:])))
    outer = float(np.sum(0.5 * h * (rv[:-1] * q[:-1] + rv[1:] * q[1:])))
    if not d > 0:
        raise InputDataError("dose_rate integrates to <= 0")
    return 2.0 * outer / d**2


# ------------------------------------------------------------------------ tissue table
@dataclass(frozen=True)
class TissueRadiobiology:
    """alpha/beta and repair half-time of a tissue, with their sources.

    ``None`` means the project's parameter table holds no sourced value: the caller must
    give one explicitly.
    """

    tissue: str
    alpha_beta_gy: float | None
    repair_half_time_s: float | None
    alpha_beta_source: str
    repair_source: str


#: Tissue -> (parameter name of alpha/beta, parameter name of the repair half-time) in
#: ``dosimetry/data/parameters.csv``; ``None`` where no value could be sourced.
TISSUE_PARAMETER_NAMES: dict[str, tuple[str | None, str | None]] = {
    "kidneys": ("alpha_beta_kidney_gy", "repair_half_time_kidney_s"),
    "tumour": ("alpha_beta_tumour_gy", None),
    "red_marrow": (None, None),
    "salivary_glands": (None, None),
    "lacrimal_glands": (None, None),
    "liver": (None, None),
}

_TISSUE_ALIASES = {
    "kidney": "kidneys",
    "tumor": "tumour",
    "tumours": "tumour",
    "tumors": "tumour",
    "lesion": "tumour",
    "bone_marrow": "red_marrow",
    "marrow": "red_marrow",
    "salivary": "salivary_glands",
    "parotid": "salivary_glands",
    "parotids": "salivary_glands",
    "submandibular": "salivary_glands",
    "lacrimal": "lacrimal_glands",
}

_NOT_SOURCED = "no sourced value in dosimetry/data/parameters.csv (see docs/radiobiology.md)"


def _tissue_key(tissue: str) -> str:
    key = str(tissue).strip().lower().replace(" ", "_").replace("-", "_")
    key = _TISSUE_ALIASES.get(key, key)
    if key not in TISSUE_PARAMETER_NAMES:
        raise InputDataError(
            f"tissue={tissue!r} is not in the radiobiology table; known: "
            f"{', '.join(TISSUE_PARAMETER_NAMES)}. Give alpha_beta_gy= and "
            "repair_half_time_s= explicitly for other tissues."
        )
    return key


def tissue_parameters(tissue: str) -> TissueRadiobiology:
    """alpha/beta and repair half-time of ``tissue`` from the parameter table.

    Overrides through :func:`dosimetry.parameters.override` apply. Values that could not be
    sourced are ``None``.

    >>> p = tissue_parameters("kidney")
    >>> p.alpha_beta_gy, round(p.repair_half_time_s / 3600, 2)
    (2.6, 2.8)
    """
    key = _tissue_key(tissue)
    ab_name, rep_name = TISSUE_PARAMETER_NAMES[key]
    ab = parameters.get(ab_name) if ab_name else None
    rep = parameters.get(rep_name) if rep_name else None
    return TissueRadiobiology(
        tissue=key,
        alpha_beta_gy=ab,
        repair_half_time_s=rep,
        alpha_beta_source=parameters.describe(ab_name).citation if ab_name else _NOT_SOURCED,
        repair_source=parameters.describe(rep_name).citation if rep_name else _NOT_SOURCED,
    )


def _resolve_tissue(
    tissue: str | None, alpha_beta_gy: float | None, repair_half_time_s: float | None
) -> tuple[float, float]:
    ab, rep = alpha_beta_gy, repair_half_time_s
    if tissue is not None and (ab is None or rep is None):
        p = tissue_parameters(tissue)
        ab = p.alpha_beta_gy if ab is None else ab
        rep = p.repair_half_time_s if rep is None else rep
    missing = [n for n, v in (("alpha_beta_gy", ab), ("repair_half_time_s", rep)) if v is None]
    if missing:
        raise InputDataError(
            f"{' and '.join(missing)} not given and not sourced for tissue={tissue!r}; the "
            "parameter table has sourced radiobiology only for: kidneys (alpha/beta, repair "
            "half-time), tumour (alpha/beta). Pass the value(s) explicitly with their source."
        )
    assert ab is not None and rep is not None  # for mypy; checked above
    return _positive(ab, "alpha_beta_gy"), _positive(rep, "repair_half_time_s")


# ------------------------------------------------------------------------ BED and EQD2
def _dose_array(dose: Volume | float | np.ndarray, name: str = "dose") -> np.ndarray:
    if isinstance(dose, Volume):
        if dose.unit not in ("Gy", "Gy_RBE"):
            raise UnitError(f"{name}.unit={dose.unit!r}; BED needs 'Gy' or 'Gy_RBE'")
        d = np.asarray(dose.array, dtype=np.float64)
    else:
        d = np.asarray(dose, dtype=np.float64)
    if not np.all(np.isfinite(d)) or np.any(d < 0):
        raise InputDataError(f"{name} must be finite and >= 0 (Gy)")
    return d


def bed_gy(
    dose_gy: float | np.ndarray, alpha_beta_gy: float, g_factor: float | np.ndarray
) -> np.ndarray:
    """``BED = D (1 + G D / (alpha/beta))`` (Gy), element-wise.

    >>> float(bed_gy(10.0, 2.6, 1.0))  # acute single fraction
    48.46153846153846
    """
    d = _dose_array(dose_gy)
    ab = _positive(alpha_beta_gy, "alpha_beta_gy")
    g = np.asarray(g_factor, dtype=float)
    if np.any(~np.isfinite(g)) or np.any(g < 0) or np.any(g > 1 + 1e-12):
        raise InputDataError(f"g_factor must be in [0, 1], got {g_factor!r}")
    return np.asarray(d * (1.0 + g * d / ab))


@overload
def bed(
    dose: Volume,
    kinetics: DoseRateShape | float | np.ndarray | Volume,
    *,
    tissue: str | None = ...,
    alpha_beta_gy: float | None = ...,
    repair_half_time_s: float | None = ...,
) -> Volume: ...
@overload
def bed(
    dose: float | np.ndarray,
    kinetics: DoseRateShape | float | np.ndarray | Volume,
    *,
    tissue: str | None = ...,
    alpha_beta_gy: float | None = ...,
    repair_half_time_s: float | None = ...,
) -> np.ndarray: ...
def bed(
    dose: Volume | float | np.ndarray,
    kinetics: DoseRateShape | float | np.ndarray | Volume,
    *,
    tissue: str | None = None,
    alpha_beta_gy: float | None = None,
    repair_half_time_s: float | None = None,
) -> Volume | np.ndarray:
    """Biologically effective dose for a dose delivered with the given kinetics.

    Parameters
    ----------
    dose
        Absorbed dose (Gy, or Gy_RBE): Volume, array or number.
    kinetics
        A :class:`DoseRateShape` (any kinetics: mono-, bi-exponential, with uptake), or the
        effective half-life (s) of a mono-exponential with instant uptake: a number, an
        array or a Volume (unit ``"s"``) on the dose grid (per-voxel half-lives).
    tissue
        Tissue name whose alpha/beta and repair half-time come from the parameter table
        (:func:`tissue_parameters`); explicit values win.
    alpha_beta_gy, repair_half_time_s
        Explicit alpha/beta (Gy) and repair half-time (s).

    Returns
    -------
    Volume or numpy.ndarray
        BED in Gy (Volume unit ``"Gy_BED"``, with the model in its provenance).

    References
    ----------
    Dale RG. Br J Radiol 1985;58:515-528; Phys Med Biol 1996;41:1871-1884.

    Examples
    --------
    >>> round(float(bed(10.0, 50 * 3600.0, tissue="kidneys")), 4)
    12.0396
    """
    ab, rep = _resolve_tissue(tissue, alpha_beta_gy, repair_half_time_s)
    d = _dose_array(dose)
    if isinstance(kinetics, DoseRateShape):
        g: float | np.ndarray = lea_catcheside_g(kinetics, rep)
        model = kinetics.description or "sum of exponentials"
    else:
        if isinstance(kinetics, Volume):
            if isinstance(dose, Volume):
                dose.check_same_grid(kinetics, name="kinetics")
            if kinetics.unit != "s":
                raise UnitError(f"kinetics.unit={kinetics.unit!r}; a half-life map needs 's'")
            t_eff = np.asarray(kinetics.array, dtype=np.float64)
        else:
            t_eff = np.asarray(kinetics, dtype=np.float64)
        if not np.all(np.isfinite(t_eff)) or np.any(t_eff <= 0):
            raise InputDataError("effective half-life (kinetics) must be finite and > 0 (s)")
        g = rep / (rep + t_eff)  # = lambda / (lambda + mu), closed form for mono-exponential
        model = "mono-exponential dose rate, instant uptake, complete decay"
    out = d * (1.0 + np.asarray(g) * d / ab)
    if isinstance(dose, Volume):
        return dose.with_array(
            out,
            unit="Gy_BED",
            provenance={
                **dict(dose.provenance),
                "bed": {
                    "alpha_beta_gy": ab,
                    "repair_half_time_s": rep,
                    "tissue": tissue,
                    "model": f"Dale LQ with Lea-Catcheside G; {model}",
                    "dose_unit": dose.unit,
                },
            },
        )
    return np.asarray(out)


def eqd2(bed_gy: Volume | float | np.ndarray, alpha_beta_gy: float) -> Volume | np.ndarray:
    """Equieffective dose in 2 Gy fractions ``EQD2 = BED / (1 + 2 / (alpha/beta))``.

    >>> round(float(eqd2(12.0, 2.6)), 4)
    6.7826
    """
    ab = _positive(alpha_beta_gy, "alpha_beta_gy")
    factor = 1.0 / (1.0 + 2.0 / ab)
    if isinstance(bed_gy, Volume):
        if bed_gy.unit != "Gy_BED":
            raise UnitError(f"eqd2 needs a BED Volume (unit 'Gy_BED'), got {bed_gy.unit!r}")
        return bed_gy.with_array(
            np.asarray(bed_gy.array, dtype=np.float64) * factor, unit="Gy_EQD2"
        )
    return np.asarray(bed_gy, dtype=np.float64) * factor


def cumulative_bed(
    doses_gy: Sequence[float] | np.ndarray,
    g_factors: Sequence[float] | np.ndarray | float,
    alpha_beta_gy: float,
) -> float:
    """BED of a treatment of several cycles: the sum of the per-cycle BEDs.

    Valid when cycles are separated by much more than the repair half-time (weeks versus
    hours: sublethal damage of one cycle is repaired before the next) and repopulation is
    neglected. ``g_factors`` is one ``G`` per cycle (its own kinetics) or one for all.

    >>> round(cumulative_bed([5.0, 5.0], 0.05, 2.6), 6)  # two identical cycles
    10.961538
    """
    d = _dose_array(np.asarray(doses_gy, dtype=float), "doses_gy")
    g = np.broadcast_to(np.asarray(g_factors, dtype=float), d.shape)
    return float(np.sum(bed_gy(d, alpha_beta_gy, g)))


def dose_for_bed(
    target_bed_gy: float,
    alpha_beta_gy: float,
    g_factor: float,
    n_cycles: int = 1,
    prior_bed_gy: float = 0.0,
) -> float:
    """Absorbed dose per cycle that brings the treatment BED to ``target_bed_gy``.

    Solves ``prior + n (d + G d^2 / (alpha/beta)) = target`` for ``d >= 0`` (quadratic in
    ``d`` for a fixed kinetic shape) in the cancellation-free form
    ``d = 2 B / (1 + sqrt(1 + 4 G B / (alpha/beta)))`` with ``B = (target - prior) / n``.
    For an activity, divide by the dose per unit activity (the kinetic shape, hence ``G``,
    does not change with the activity).

    Returns 0 when the prior BED already reaches the target.

    >>> d = dose_for_bed(40.0, 2.6, 0.05)
    >>> round(d * (1 + 0.05 * d / 2.6), 10)
    40.0
    """
    ab = _positive(alpha_beta_gy, "alpha_beta_gy")
    g = float(g_factor)
    if not (0.0 <= g <= 1.0):
        raise InputDataError(f"g_factor must be in [0, 1], got {g_factor}")
    n = int(n_cycles)
    if n < 1:
        raise InputDataError(f"n_cycles must be >= 1, got {n_cycles}")
    if not (math.isfinite(target_bed_gy) and math.isfinite(prior_bed_gy) and prior_bed_gy >= 0):
        raise InputDataError("target_bed_gy and prior_bed_gy must be finite, prior >= 0")
    b = (float(target_bed_gy) - float(prior_bed_gy)) / n
    if b <= 0:
        return 0.0
    return 2.0 * b / (1.0 + math.sqrt(1.0 + 4.0 * g * b / ab))


def bed_alpha_beta_mixture(
    dose_alpha_gy: float | np.ndarray,
    dose_beta_gy: float | np.ndarray,
    alpha_beta_gy: float,
    g_factor_beta: float | np.ndarray,
    rbe_alpha: float | None = None,
) -> np.ndarray:
    """BED of mixed alpha + beta/photon absorbed dose (²²⁵Ac and its chain).

    ``BED = RBE * D_alpha + D_beta (1 + G D_beta / (alpha/beta))`` (see
    :data:`ALPHA_BED_CONVENTION`). ``dose_alpha_gy`` is the *physical* alpha dose;
    ``rbe_alpha`` defaults to parameter ``rbe_alpha`` (MIRD Pamphlet 22).

    >>> float(bed_alpha_beta_mixture(1.0, 0.0, 2.6, 0.1, rbe_alpha=5.0))
    5.0
    """
    rbe = parameters.resolve(rbe_alpha, "rbe_alpha")
    if not (rbe > 0 and math.isfinite(rbe)):
        raise InputDataError(f"rbe_alpha must be finite and > 0, got {rbe_alpha}")
    da = _dose_array(dose_alpha_gy, "dose_alpha_gy")
    return np.asarray(rbe * da + bed_gy(dose_beta_gy, alpha_beta_gy, g_factor_beta))


def bed_map(
    dose: Volume,
    effective_half_life_s: Volume | float | np.ndarray,
    *,
    tissue: str | None = None,
    alpha_beta_gy: float | None = None,
    repair_half_time_s: float | None = None,
) -> Volume:
    """Voxel BED map (unit ``"Gy_BED"``) from a per-voxel effective half-life map.

    Mono-exponential, instant-uptake kinetics per voxel (e.g. the half-life map of
    :func:`dosimetry.kinetics.fit_voxels`). The result is a dose-like Volume in Gy that can
    be exported like a dose (its unit string says it is a BED).
    """
    if not isinstance(dose, Volume):
        raise InputDataError("bed_map needs dose as a Volume (use bed() for arrays)")
    return bed(
        dose,
        effective_half_life_s,
        tissue=tissue,
        alpha_beta_gy=alpha_beta_gy,
        repair_half_time_s=repair_half_time_s,
    )


@dataclass(frozen=True)
class _VoiBio:
    shape: DoseRateShape
    alpha_beta_gy: float
    repair_half_time_s: float
    g: float = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "g", lea_catcheside_g(self.shape, self.repair_half_time_s))


def bed_map_from_voi_kinetics(
    dose: Volume,
    masks: Mapping[str, Volume],
    kinetics: Mapping[str, DoseRateShape | float],
    *,
    tissues: Mapping[str, str] | None = None,
    alpha_beta_gy: Mapping[str, float] | None = None,
    repair_half_time_s: Mapping[str, float] | None = None,
    outside: float | None = None,
) -> Volume:
    """Voxel BED map with one kinetic shape (and tissue) per VOI.

    Each voxel of VOI ``name`` (mask value > 0.5) gets ``D (1 + G_name D / (a/b)_name)``;
    a voxel in several VOIs takes the *largest* BED (conservative; a warning is logged).
    Voxels in no VOI get the BED with ``G = outside`` and ``alpha_beta_gy["_default"]``
    when ``outside`` is given, else the physical dose itself (``G = 0``, BED = D: a lower
    bound), which is logged and recorded in the provenance.

    Parameters
    ----------
    dose
        Dose Volume (Gy or Gy_RBE).
    masks
        VOI name -> mask Volume on the dose grid.
    kinetics
        VOI name -> :class:`DoseRateShape` or effective half-life (s).
    tissues
        VOI name -> tissue for the parameter table (default: the VOI name itself).
    alpha_beta_gy, repair_half_time_s
        Explicit per-VOI values (win over the table).
    outside
        ``G`` applied outside every VOI, with ``alpha_beta_gy["_default"]``; default: BED = D.

    Returns
    -------
    Volume
        Unit ``"Gy_BED"``; provenance lists the per-VOI ``G``, alpha/beta and repair
        half-time.
    """
    d = _dose_array(dose)
    tissues = dict(tissues or {})
    ab_map = dict(alpha_beta_gy or {})
    rep_map = dict(repair_half_time_s or {})
    out = np.full(d.shape, -np.inf)
    covered = np.zeros(d.shape, dtype=bool)
    record: dict[str, dict[str, float | str]] = {}
    for name, mask in masks.items():
        if name not in kinetics:
            raise InputDataError(
                f"no kinetics given for VOI {name!r}; kinetics has {list(kinetics)}"
            )
        dose.check_same_grid(mask, name=f"masks[{name!r}]")
        k = kinetics[name]
        shape = k if isinstance(k, DoseRateShape) else DoseRateShape.mono_exponential(float(k))
        tissue = tissues.get(name, name)
        try:
            ab, rep = _resolve_tissue(tissue, ab_map.get(name), rep_map.get(name))
        except InputDataError as exc:
            raise InputDataError(f"VOI {name!r}: {exc}") from exc
        bio = _VoiBio(shape, ab, rep)
        sel = np.asarray(mask.array) > 0.5
        overlap = sel & covered
        if np.any(overlap):
            _log.warning(
                "VOI %s overlaps earlier VOIs in %d voxels: largest BED kept",
                name,
                int(overlap.sum()),
            )
        vals = d * (1.0 + bio.g * d / ab)
        out[sel] = np.maximum(out[sel], vals[sel])
        covered |= sel
        record[name] = {
            "g": bio.g,
            "alpha_beta_gy": ab,
            "repair_half_time_s": rep,
            "kinetics": shape.description,
            "tissue": tissue,
        }
    rest = ~covered
    if outside is None:
        out[rest] = d[rest]
        rest_note = "outside all VOIs: BED = physical dose (G = 0), a lower bound"
    else:
        ab_def = ab_map.get("_default")
        if ab_def is None:
            raise InputDataError('outside= needs alpha_beta_gy["_default"]')
        out[rest] = bed_gy(d[rest], ab_def, outside)
        rest_note = f"outside all VOIs: G = {outside}, alpha/beta = {ab_def} Gy"
    if np.any(rest):
        _log.info("bed_map_from_voi_kinetics: %d voxels %s", int(rest.sum()), rest_note)
    return dose.with_array(
        out,
        unit="Gy_BED",
        provenance={
            **dict(dose.provenance),
            "bed": {"per_voi": record, "outside": rest_note, "model": "Dale LQ, Lea-Catcheside G"},
        },
    )
