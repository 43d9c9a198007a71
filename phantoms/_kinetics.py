"""Time-activity curves of the phantom's regions after a Lu-177-PSMA-617 administration.

Each region follows a sum of exponentials (effective half-lives, physical decay
included), with ``t`` the time after administration::

    A(t) = A_admin * sum_k c_k exp(-ln 2 t / T_k)
    TIA  = A_admin * sum_k c_k T_k / ln 2          (integral from 0 to infinity)

Organs take up activity with a half-time ``T_up`` and clear with an effective half-life
``T_eff`` (``c = (f, -f)``, ``1/T_2 = 1/T_eff + 1/T_up``); the background (fat, soft
tissue, lungs, marrow) clears bi-exponentially (``c = (f_fast, f_slow)``).

Assumed values for Lu-177-PSMA-617 (phantom assumptions, set to reproduce published
absorbed doses per administered activity with the phantom's organ masses; they are not a
measurement):

====================  ==============  =========  ========  =============================
region                f (of A_admin)  T_eff / h  T_up / h  check: LED dose (Gy/GBq)
====================  ==============  =========  ========  =============================
kidney (each)         1.25 %          40         1.5       ~0.4 (published 0.39-0.88)
liver                 3.0 %           50         1.0       ~0.12 (published ~0.1)
spleen                0.6 %           45         1.0       ~0.2
lesions               0.05 % per mL   70         4.0       ~3.5
soft_tissue           15 % / 2 %      2 / 40     --
body (fat)            1 % / 0.3 %     2 / 40     --
each lung             1 % / 0.2 %     2 / 35     --
vertebral_column      0.3 % / 0.2 %   2 / 45     --
====================  ==============  =========  ========  =============================

Sources for the ranges: Violet J et al., "Dosimetry of 177Lu-PSMA-617 in metastatic
castration-resistant prostate cancer: correlations between pretherapeutic imaging and
whole-body tumor dosimetry with treatment outcomes", J Nucl Med 2019;60:517-523 (kidneys
0.39, liver 0.1 Gy/GBq); Delker A et al., "Dosimetry for 177Lu-DKFZ-PSMA-617: a new
radiopharmaceutical for the treatment of metastatic prostate cancer", Eur J Nucl Med Mol
Imaging 2016;43:42-51 (kidneys ~0.6 Gy/GBq, effective half-lives of tens of hours);
Kabasakal L et al., Eur J Nucl Med Mol Imaging 2015;42:1976-1983 (kidneys 0.88 Gy/GBq).
Lu-177 physical half-life 6.647 d (ICRP Publication 107).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

__all__ = ["TimeActivityCurve", "LU177_PSMA617_KINETICS", "LU177_PSMA617_LESION"]

_LN2 = math.log(2.0)


@dataclass(frozen=True)
class TimeActivityCurve:
    """Fraction of the administered activity in a region: a sum of exponentials.

    Parameters
    ----------
    coefficients
        ``c_k`` (fractions of the administered activity; may be negative).
    half_lives_s
        Effective half-lives ``T_k`` (s, physical decay included), all > 0.

    Examples
    --------
    >>> tac = TimeActivityCurve.uptake_washout(0.02, t_eff_h=40.0, t_uptake_h=1.5)
    >>> round(float(tac.fraction(0.0)), 12)
    0.0
    >>> round(tac.integral_s() / 3600.0, 4)  # 0.02 * (40 - 1/(1/40 + 1/1.5)) / ln 2
    1.1124
    """

    coefficients: tuple[float, ...]
    half_lives_s: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.coefficients) != len(self.half_lives_s) or not self.coefficients:
            raise ValueError("coefficients and half_lives_s must be non-empty and of equal length")
        if any(not (math.isfinite(t) and t > 0) for t in self.half_lives_s):
            raise ValueError(f"half-lives must be positive, got {self.half_lives_s}")

    @classmethod
    def uptake_washout(
        cls, fraction: float, t_eff_h: float, t_uptake_h: float
    ) -> TimeActivityCurve:
        """``f (exp(-ln2 t/T_eff) - exp(-ln2 t (1/T_eff + 1/T_up)))``."""
        t2 = 1.0 / (1.0 / t_eff_h + 1.0 / t_uptake_h)
        return cls((fraction, -fraction), (t_eff_h * 3600.0, t2 * 3600.0))

    @classmethod
    def biexponential(
        cls, f_fast: float, t_fast_h: float, f_slow: float, t_slow_h: float
    ) -> TimeActivityCurve:
        """``f_fast exp(-ln2 t/T_fast) + f_slow exp(-ln2 t/T_slow)``."""
        return cls((f_fast, f_slow), (t_fast_h * 3600.0, t_slow_h * 3600.0))

    def scaled(self, factor: float) -> TimeActivityCurve:
        """The same curve times ``factor``."""
        return TimeActivityCurve(tuple(c * factor for c in self.coefficients), self.half_lives_s)

    def fraction(self, t_s: float | np.ndarray) -> np.ndarray:
        """Fraction of the administered activity at ``t_s`` seconds after administration."""
        t = np.asarray(t_s, dtype=float)
        out = np.zeros_like(t)
        for c, th in zip(self.coefficients, self.half_lives_s, strict=True):
            out = out + c * np.exp(-_LN2 * t / th)
        return out

    def integral_s(self, t0_s: float = 0.0, t1_s: float = math.inf) -> float:
        """Integral of :meth:`fraction` from ``t0_s`` to ``t1_s`` (s)."""
        total = 0.0
        for c, th in zip(self.coefficients, self.half_lives_s, strict=True):
            lam = _LN2 / th
            e1 = 0.0 if math.isinf(t1_s) else math.exp(-lam * t1_s)
            total += c / lam * (math.exp(-lam * t0_s) - e1)
        return total


#: Region -> curve for the default phantom (see the module docstring).
LU177_PSMA617_KINETICS: Mapping[str, TimeActivityCurve] = {
    "kidney_right": TimeActivityCurve.uptake_washout(0.0125, 40.0, 1.5),
    "kidney_left": TimeActivityCurve.uptake_washout(0.0125, 40.0, 1.5),
    "liver": TimeActivityCurve.uptake_washout(0.03, 50.0, 1.0),
    "spleen": TimeActivityCurve.uptake_washout(0.006, 45.0, 1.0),
    "soft_tissue": TimeActivityCurve.biexponential(0.15, 2.0, 0.02, 40.0),
    "body": TimeActivityCurve.biexponential(0.01, 2.0, 0.003, 40.0),
    "lung_right": TimeActivityCurve.biexponential(0.01, 2.0, 0.002, 35.0),
    "lung_left": TimeActivityCurve.biexponential(0.01, 2.0, 0.002, 35.0),
    "vertebral_column": TimeActivityCurve.biexponential(0.003, 2.0, 0.002, 45.0),
}

#: Lesion curve per mL of lesion (analytic volume): 0.05 %/mL, T_eff 70 h, T_up 4 h.
LU177_PSMA617_LESION: TimeActivityCurve = TimeActivityCurve.uptake_washout(5e-4, 70.0, 4.0)
