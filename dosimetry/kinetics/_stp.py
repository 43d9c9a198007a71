"""Single-time-point (STP) estimates of the time-integrated activity.

Three published approaches, each returning a :class:`StpTia` (a ``float`` in Bq s that
also carries the method, the assumption it rests on and the citation):

``"hanscheid2018"``
    ``TIA ~ 2 A(t) t / ln 2`` (Hänscheid et al. 2018). For mono-exponential kinetics
    with effective half-life ``T`` the ratio to the true TIA is ``2x 2^(-x)``,
    ``x = t/T``: exact for ``T = t`` and ``T = t/2``, at most +6.2 % (at
    ``x = 1/ln 2``) and within -10 % for ``0.764 < x < 2.44`` (values computed from the
    ratio formula).
``"madsen2018"``
    ``TIA = A(t) exp(ln2 t/T_eff) T_eff / ln2`` with a population effective half-life
    (Madsen et al. 2018): mono-exponential clearance from injection with the population
    half-life.
``"prior"``
    The fitted curve of an earlier cycle of the same patient scaled to the new
    measurement: ``TIA = TIA_prior A(t) / A_prior(t)`` (the shape of the kinetics is
    assumed unchanged between cycles; only the amplitude differs).

References
----------
Hänscheid H, Lapa C, Buck AK, Lassmann M, Werner RA. Dose mapping after endoradiotherapy
with 177Lu-DOTATATE/DOTATOC by a single measurement after 4 days. J Nucl Med
2018;59:75-81.

Madsen MT, Menda Y, O'Dorisio TM, O'Dorisio MS. Technical Note: Single time point dose
estimate for exponential clearance. Med Phys 2018;45:2318-2324.

Feasibility and accuracy of single time point imaging for renal dosimetry following
177Lu-DOTATATE ("Lutate") therapy. EJNMMI Phys 2018;5. doi:10.1186/s40658-018-0232-9
(cycle-1 patient-specific half-life reused in later cycles).

Spink S et al. EJNMMI Phys 2024;11. doi:10.1186/s40658-024-00665-9 (consistent
effective half-life across cycles).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..errors import InputDataError
from ..units import activity_to_bq, time_to_s
from ._population import population_effective_half_life_s
from ._tac import TacFit

__all__ = ["stp_tia", "StpTia", "hanscheid_ratio"]

LN2 = math.log(2.0)

_CITATIONS = {
    "hanscheid2018": "Hänscheid H et al. J Nucl Med 2018;59:75-81",
    "madsen2018": "Madsen MT et al. Med Phys 2018;45:2318-2324",
    "prior": (
        "prior-cycle kinetics reuse: EJNMMI Phys 2018;5 doi:10.1186/s40658-018-0232-9; "
        "Spink S et al. EJNMMI Phys 2024;11 doi:10.1186/s40658-024-00665-9"
    ),
}


class StpTia(float):
    """A TIA in Bq s (behaves as a ``float``) with the method's assumption attached.

    Attributes
    ----------
    method
        ``"hanscheid2018"``, ``"madsen2018"`` or ``"prior"``.
    assumption
        What the estimate assumes.
    citation
        The paper that the method comes from (and of the half-life used, if any).
    effective_half_life_s
        Half-life used (``madsen2018``), or ``None``.
    """

    method: str
    assumption: str
    citation: str
    effective_half_life_s: float | None

    def __new__(
        cls,
        value: float,
        method: str,
        assumption: str,
        citation: str,
        effective_half_life_s: float | None = None,
    ) -> StpTia:
        obj = super().__new__(cls, value)
        obj.method = method
        obj.assumption = assumption
        obj.citation = citation
        obj.effective_half_life_s = effective_half_life_s
        return obj

    def __repr__(self) -> str:
        return f"StpTia({float(self):.6g} Bq s, method={self.method!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (
            StpTia,
            (
                float(self),
                self.method,
                self.assumption,
                self.citation,
                self.effective_half_life_s,
            ),
        )


def hanscheid_ratio(t_s: float, effective_half_life_s: float) -> float:
    """Ratio of the Hänscheid estimate to the true TIA for mono-exponential kinetics.

    ``2x 2^(-x)`` with ``x = t / T_eff``.

    >>> hanscheid_ratio(96.0, 96.0), hanscheid_ratio(96.0, 48.0)
    (1.0, 1.0)
    """
    x = float(t_s) / float(effective_half_life_s)
    return 2.0 * x * 2.0 ** (-x)


def stp_tia(
    activity: float,
    time: float,
    method: str = "hanscheid2018",
    time_unit: str = "h",
    activity_unit: str = "MBq",
    *,
    effective_half_life: float | None = None,
    agent: str | None = None,
    organ: str | None = None,
    prior_fit: TacFit | None = None,
) -> StpTia:
    """Time-integrated activity (Bq s) from one measurement.

    Parameters
    ----------
    activity
        Activity at ``time`` (not decay corrected), in ``activity_unit``.
    time
        Time after injection, in ``time_unit`` (> 0).
    method
        ``"hanscheid2018"``, ``"madsen2018"`` or ``"prior"`` (see module docstring).
    time_unit, activity_unit
        Units of the inputs (and of ``effective_half_life``).
    effective_half_life
        Effective half-life for ``madsen2018``, in ``time_unit``. When omitted, the
        population value of ``agent`` in ``organ`` is used
        (:func:`population_effective_half_life_s`).
    agent, organ
        Select the population half-life for ``madsen2018``.
    prior_fit
        :class:`TacFit` of an earlier cycle, for ``method="prior"``.

    Returns
    -------
    StpTia
        A float (Bq s) with ``.method``, ``.assumption`` and ``.citation``.

    Raises
    ------
    InputDataError
        Non-positive time, negative activity, missing half-life or prior fit.

    References
    ----------
    Hänscheid H et al. J Nucl Med 2018;59:75-81.
    Madsen MT et al. Med Phys 2018;45:2318-2324.

    Examples
    --------
    >>> r = stp_tia(100.0, 96.0, "hanscheid2018")
    >>> round(r / 3.6e9, 1)  # MBq h: 2 x 100 MBq x 96 h / ln 2
    27699.7
    >>> r.method
    'hanscheid2018'
    """
    a_bq = activity_to_bq(activity, activity_unit)
    t_s = time_to_s(time, time_unit)
    if not np.isfinite(a_bq) or a_bq < 0:
        raise InputDataError(f"activity must be finite and >= 0, got {activity!r} {activity_unit}")
    if not np.isfinite(t_s) or t_s <= 0:
        raise InputDataError(f"time must be > 0 after injection, got {time!r} {time_unit}")
    if method not in _CITATIONS:
        raise InputDataError(f"method={method!r}; valid: {', '.join(_CITATIONS)}")

    if method == "hanscheid2018":
        value = 2.0 * a_bq * t_s / LN2
        return StpTia(
            value,
            method,
            "mono-exponential clearance with effective half-life between about t/2.44 and "
            "t/0.764 (within -10 %; exact for T_eff = t and t/2; ratio to truth 2x 2^-x, "
            "x = t/T_eff)",
            _CITATIONS[method],
        )
    if method == "madsen2018":
        if effective_half_life is not None:
            t_eff = time_to_s(effective_half_life, time_unit)
            source = "user-supplied effective half-life"
        else:
            if agent is None or organ is None:
                raise InputDataError(
                    "madsen2018 needs effective_half_life=..., or agent= and organ= to use "
                    "the population table"
                )
            t_eff, source = population_effective_half_life_s(agent, organ)
        if not np.isfinite(t_eff) or t_eff <= 0:
            raise InputDataError(f"effective half-life must be > 0, got {t_eff!r} s")
        lam = LN2 / t_eff
        value = a_bq * math.exp(lam * t_s) / lam
        return StpTia(
            value,
            method,
            f"mono-exponential clearance from injection with T_eff = {t_eff / 3600:.4g} h "
            f"({source})",
            f"{_CITATIONS[method]}; half-life: {source}",
            effective_half_life_s=t_eff,
        )
    # prior
    if prior_fit is None:
        raise InputDataError("method='prior' needs prior_fit= (a TacFit of an earlier cycle)")
    a_prior = float(prior_fit.predict(np.array([t_s]))[0])
    if not np.isfinite(a_prior) or a_prior <= 0:
        raise InputDataError(
            f"the prior fit predicts {a_prior:.3g} Bq at t = {t_s:.6g} s: cannot scale it"
        )
    value = prior_fit.tia_bq_s * a_bq / a_prior
    return StpTia(
        value,
        method,
        f"kinetics shape of the prior cycle ({prior_fit.model} fit) unchanged; amplitude "
        f"scaled by {a_bq / a_prior:.4g}",
        _CITATIONS[method],
    )
