"""Uncertainty of a VOI's mean absorbed dose: an uncertainty budget in the EANM manner.

The mean dose of a VOI is a product of independent factors -- calibration, the VOI's
activity (or the diagnostic fraction and the agent-pair uptake ratio), the time integral
(fit covariance, or a population half-life and its spread), the VOI mass and the dose
method -- so to first order its relative standard uncertainty is

    u(D)/D = sqrt( sum_i (s_i u_i)^2 ),    s_i = d ln D / d ln x_i,

with ``u_i`` the relative standard uncertainty of factor ``x_i`` and ``s_i`` its
sensitivity coefficient (1 for a multiplicative factor, ``d ln TIA / d ln T_eff`` for a
half-life). :func:`combine` evaluates it; :class:`Term` records each contribution with its
source, and the budget is reported per VOI. :func:`resample` draws the same inputs and
recomputes the dose (a Monte Carlo check of the first-order propagation, used in the tests).

References
----------
Gear JI, Cox MG, Gustafsson J, et al. EANM practical guidance on uncertainty analysis for
molecular radiotherapy absorbed dose calculations. Eur J Nucl Med Mol Imaging
2018;45:2456-2474.

JCGM 100:2008, Evaluation of measurement data -- Guide to the expression of uncertainty in
measurement (GUM), section 5.1 (law of propagation of uncertainty).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from .errors import InputDataError

__all__ = [
    "Term",
    "combine",
    "tia_half_life_sensitivity",
    "relative_sd_from_spread",
    "resample",
    "COVERAGE_95",
]

#: Coverage factor of a 95 % interval for a normal distribution (GUM, section 6.2).
COVERAGE_95 = 1.96


@dataclass(frozen=True)
class Term:
    """One contribution to a VOI's dose uncertainty.

    Attributes
    ----------
    name
        What it is (``"calibration"``, ``"half-life kidneys"``).
    relative_sd
        Relative standard uncertainty of the input.
    sensitivity
        ``d ln D / d ln x`` (1 for a multiplicative factor).
    source
        Where the value comes from.
    """

    name: str
    relative_sd: float
    sensitivity: float = 1.0
    source: str = ""

    @property
    def contribution(self) -> float:
        """``|s u|``, this term's share of the relative dose uncertainty."""
        return abs(self.sensitivity * self.relative_sd)


def combine(terms: Iterable[Term]) -> float:
    """First-order relative standard uncertainty of a product of independent factors.

    >>> round(combine([Term("a", 0.03), Term("b", 0.04)]), 12)
    0.05
    """
    total = 0.0
    for t in terms:
        if not (math.isfinite(t.relative_sd) and t.relative_sd >= 0):
            raise InputDataError(f"uncertainty term {t.name!r}: relative_sd must be >= 0")
        total += (t.sensitivity * t.relative_sd) ** 2
    return math.sqrt(total)


def tia_half_life_sensitivity(
    effective_half_life_s: float, physical_half_life_s: float, t_pet_s: float = 0.0
) -> float:
    """``d ln TIA / d ln T_eff`` of the projection's plateau model.

    ``TIA = f [(1 - e^(-lp t)) / lp + e^(-lp t) / le]`` with ``le = ln2 / T_eff`` (the
    plateau until the PET time ``t``, then mono-exponential clearance): the second term
    scales as ``T_eff``, the first not at all, so the coefficient is that term's share.

    >>> tia_half_life_sensitivity(40 * 3600.0, 6.647 * 86400.0)  # no plateau: TIA ~ T_eff
    1.0
    """
    lp = math.log(2) / physical_half_life_s
    le = math.log(2) / effective_half_life_s
    head = -math.expm1(-lp * t_pet_s) / lp
    tail = math.exp(-lp * t_pet_s) / le
    return tail / (head + tail)


_SD = re.compile(r"SD\s*([0-9.]+)")
_RANGE = re.compile(r"range\s*([0-9.]+)\s*-\s*([0-9.]+)")


def relative_sd_from_spread(value: float, spread: str) -> tuple[float, str]:
    """Relative standard uncertainty of a population value from its published spread.

    ``"SD x"``: ``x / value``. ``"range a-b"``: ``ln(b/a) / 4`` (the range taken as about
    -/+ 2 SD of a log-normal population, whose half-lives are right-skewed: Hou X et al.
    J Nucl Med 2021, PMC8882881, found effective half-lives log-normally distributed).
    Project convention for the range rule; the returned text says which rule applied.

    >>> round(relative_sd_from_spread(40.5, "SD 9.6 (range 21.7-85.7)")[0], 4)
    0.237
    >>> round(relative_sd_from_spread(31.4, "range 12.2-80.6")[0], 3)
    0.472
    """
    m = _SD.search(spread)
    if m and value > 0:
        return float(m.group(1)) / value, f"published SD {m.group(1)} / {value:g}"
    m = _RANGE.search(spread)
    if m:
        a, b = float(m.group(1)), float(m.group(2))
        if a > 0 and b > a:
            return math.log(b / a) / 4.0, f"published range {a:g}-{b:g}: ln(b/a)/4 (log-normal)"
    raise InputDataError(f"cannot read a spread from {spread!r} (expected 'SD x' or 'range a-b')")


def resample(
    model: Callable[[Mapping[str, np.ndarray]], np.ndarray],
    inputs: Mapping[str, tuple[float, float]],
    *,
    n: int = 20000,
    seed: int = 0,
    distribution: str = "normal",
) -> tuple[float, float]:
    """Monte Carlo propagation: draw every input, evaluate ``model``, return mean and SD.

    Parameters
    ----------
    model
        Function of a mapping name -> array of draws, returning the dose per draw.
    inputs
        Name -> (value, relative standard uncertainty).
    n, seed
        Number of draws and the seed.
    distribution
        ``"normal"`` (relative SD of a normal) or ``"lognormal"`` (SD of the log).
    """
    rng = np.random.default_rng(seed)
    draws = {}
    for name, (value, rel) in inputs.items():
        z = rng.standard_normal(n)
        if distribution == "lognormal":
            draws[name] = value * np.exp(rel * z - 0.5 * rel**2)
        else:
            draws[name] = value * (1.0 + rel * z)
    out = np.asarray(model(draws), dtype=float)
    return float(out.mean()), float(out.std(ddof=1))


def budget_text(terms: Sequence[Term]) -> str:
    """One line per term: name, relative SD, sensitivity, contribution."""
    return "; ".join(f"{t.name} {100 * t.relative_sd:.1f} % x {t.sensitivity:.2f}" for t in terms)
