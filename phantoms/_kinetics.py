"""Time-activity curves of the phantom's regions after a Lu-177-PSMA-617 administration.

Each region follows a sum of exponentials (effective half-lives, physical decay
included), with ``t`` the time after administration::

    A(t) = A_admin * sum_k c_k exp(-ln 2 t / T_k)
    TIA  = A_admin * sum_k c_k T_k / ln 2          (integral from 0 to infinity)

Organs take up activity with a half-time ``T_up`` and clear with an effective half-life
``T_eff`` (``c = (f, -f)``, ``1/T_2 = 1/T_eff + 1/T_up``); the background (fat, soft
tissue, lungs, bone) clears bi-exponentially (``c = (f_fast, f_slow)``).

Where the values come from. The phantom's Lu-177 kinetics are built from the
post-therapy Lu-177-PSMA-617 literature only (measured absorbed doses per administered
activity and population effective half-lives), never from the PET tracers' uptake, so
that a PET-based prediction compared with this SPECT truth is not tuned by construction.
For an organ with a cited mean absorbed dose ``D/A`` (Gy/GBq) and effective half-life,
the plateau fraction ``f`` is the one for which local energy deposition (LED) of the
Lu-177 non-penetrating energy in the nominal phantom region reproduces ``D/A``::

    f = (D/A) rho V ln2 / (E_np (T_eff - T_2))

with ``E_np`` = 0.147923 MeV per decay (ICRP Publication 107 electrons: beta, internal
conversion and Auger), ``rho V`` the mass of the nominal region. Photons (0.035 MeV per
decay) are left out, as the published organ doses are dominated by the electron
self-dose.

==================  =============  ==========  =======  ======================================
region              D/A (Gy/GBq)   T_eff (h)   T_up(h)  sources (D/A; T_eff)
==================  =============  ==========  =======  ======================================
kidney (each)       0.49           31.4        1.5*     Peters 2022; Molecules 2019
liver               0.09           22.9        1.0*     Peters 2022; AAPM 2026 abstract
spleen              -- (f 0.6 %*)  16.8        1.0*     none found; AAPM 2026 abstract
red_marrow          0.017          8.2         0.5*     Peters 2022; Molecules 2019
parotid (each)      0.39           33.0        1.0*     Peters 2022 (salivary); Molecules 2019
submandibular (ea)  0.39           33.0        1.0*     Peters 2022 (salivary); Molecules 2019
lacrimal (each)     2.82           33.0 (**)   1.0*     Hohberg/MIB 2016; Molecules 2019
lesions             3.25 (per mL)  74.9        4.0*     Peters 2022; Khreish 2026
soft_tissue         --             2 / 40      --       assumption: 15 % / 2 %
body (fat)          --             2 / 40      --       assumption: 1 % / 0.3 %
each lung           --             2 / 35      --       assumption: 1 % / 0.2 %
vertebral_column    --             2 / 45      --       assumption: 0.3 % / 0.2 %
==================  =============  ==========  =======  ======================================

``*`` uptake half-times, the spleen fraction and the background curves are phantom
assumptions (not sourced). ``**`` no lacrimal effective half-life was found; the
parotid value is used. The effective half-lives are the priority-1 rows of
``dosimetry/data/population_kinetics.csv`` at the time of writing (copied here so that a
change of that table does not change the phantom truth). Lesion doses assume soft-tissue
density (1.05 g/mL); the vertebral lesion (1.42 g/mL) therefore receives less.

Sources:

* Peters SMB, Privé BM, de Bakker M, de Lange F, Jentzen W, Eek A, Muselaers CHJ, Mehra N,
  Witjes JA, Gotthardt M, Nagarajah J, Konijnenberg MW. Intra-therapeutic dosimetry of
  [177Lu]Lu-PSMA-617 in low-volume hormone-sensitive metastatic prostate cancer patients
  and correlation with treatment outcome. Eur J Nucl Med Mol Imaging 2022;49(2) (10
  patients, 3-bed SPECT/CT at 5 time points; mean: salivary glands 0.39, kidneys 0.49,
  liver 0.09, bone marrow 0.017, lesions 3.25 Gy/GBq).
* Lacrimal glands may represent organs at risk for radionuclide therapy of prostate cancer
  with [177Lu]DKFZ-PSMA-617. Mol Imaging Biol 2016;18(3):437-445.
  doi:10.1007/s11307-016-0942-0 (9 patients, planar whole-body 0.5-168 h; mean lacrimal
  glands 2.82 mGy/MBq).
* Dosimetry of 177Lu-PSMA-617 after mannitol infusion and glutamate tablet
  administration: preliminary results of EUDRACT/RSO 2016-002732-32 IRST protocol.
  Molecules 2019;24(3):621. doi:10.3390/molecules24030621 (median T_eff: kidneys 31.4 h,
  parotid glands 33.0 h, red marrow 8.2 h).
* Normal-organ effective half-lives for 177Lu-PSMA. AAPM Annual Meeting 2026, conference
  abstract 2620 (median T_eff: liver 22.9 h, spleen 16.8 h; not peer reviewed).
* Khreish F et al. EJNMMI Res 2026. doi:10.1186/s13550-026-01394-z (tumour T_eff 74.9 h,
  mCRPC).

Lu-177 physical half-life 6.647 d (ICRP Publication 107).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

__all__ = [
    "TimeActivityCurve",
    "LU177_PSMA617_KINETICS",
    "LU177_PSMA617_LESION",
    "LU177_NONPENETRATING_MEV",
    "NOMINAL_REGION_ML",
    "fraction_for_dose",
]

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


#: ICRP-107 Lu-177 non-penetrating energy per decay (MeV): beta 0.133270 + internal
#: conversion 0.013522 + Auger 0.001132 (as summed by dosimetry.nuclide("Lu-177")).
LU177_NONPENETRATING_MEV = 0.147923
_MEV_TO_J = 1.602176634e-13


def fraction_for_dose(
    dose_gy_per_gbq: float,
    mass_g: float,
    t_eff_h: float,
    t_uptake_h: float,
    energy_mev: float = LU177_NONPENETRATING_MEV,
) -> float:
    """Plateau fraction ``f`` whose uptake-washout curve gives ``dose_gy_per_gbq`` by LED.

    ``f = (D/A) m ln2 / (E (T_eff - T_2))``, ``1/T_2 = 1/T_eff + 1/T_up`` (see the module
    docstring).

    >>> round(fraction_for_dose(0.49, 148.6, 31.4, 1.5), 4)
    0.0197
    """
    t2 = 1.0 / (1.0 / t_eff_h + 1.0 / t_uptake_h)
    tia_s_per_bq = (t_eff_h - t2) * 3600.0 / _LN2
    return dose_gy_per_gbq * 1e-9 * (mass_g / 1000.0) / (energy_mev * _MEV_TO_J * tia_s_per_bq)


def _ellipsoid_ml(a: float, b: float, c: float) -> float:
    return 4.0 / 3.0 * math.pi * a * b * c / 1000.0


#: Nominal volumes (mL) of the exclusive phantom regions the fractions are derived for
#: (semi-axes as in :mod:`phantoms._torso`; the liver region excludes lesion_1).
NOMINAL_REGION_ML: Mapping[str, float] = {
    "kidney": _ellipsoid_ml(32.0, 24.0, 44.0),
    "liver": _ellipsoid_ml(80.0, 65.0, 50.0) - _ellipsoid_ml(15.0, 15.0, 15.0),
    "red_marrow": math.pi * 12.0 * 12.0 * 120.0 / 1000.0,
    "parotid": _ellipsoid_ml(12.0, 20.0, 22.0),
    "submandibular": _ellipsoid_ml(11.0, 14.0, 11.0),
    "lacrimal": _ellipsoid_ml(8.0, 5.0, 4.0),
}


def _organ(key: str, dose: float, rho: float, t_eff_h: float, t_up_h: float) -> TimeActivityCurve:
    f = fraction_for_dose(dose, NOMINAL_REGION_ML[key] * rho, t_eff_h, t_up_h)
    return TimeActivityCurve.uptake_washout(f, t_eff_h, t_up_h)


_KIDNEY = _organ("kidney", 0.49, 1.05, 31.4, 1.5)
_PAROTID = _organ("parotid", 0.39, 1.05, 33.0, 1.0)
_SUBMANDIBULAR = _organ("submandibular", 0.39, 1.05, 33.0, 1.0)
_LACRIMAL = _organ("lacrimal", 2.82, 1.05, 33.0, 1.0)

#: Region -> curve for the default phantom (see the module docstring).
LU177_PSMA617_KINETICS: Mapping[str, TimeActivityCurve] = {
    "kidney_right": _KIDNEY,
    "kidney_left": _KIDNEY,
    "liver": _organ("liver", 0.09, 1.06, 22.9, 1.0),
    "spleen": TimeActivityCurve.uptake_washout(0.006, 16.8, 1.0),
    "red_marrow": _organ("red_marrow", 0.017, 1.42, 8.2, 0.5),
    "parotid_right": _PAROTID,
    "parotid_left": _PAROTID,
    "submandibular_right": _SUBMANDIBULAR,
    "submandibular_left": _SUBMANDIBULAR,
    "lacrimal_right": _LACRIMAL,
    "lacrimal_left": _LACRIMAL,
    "soft_tissue": TimeActivityCurve.biexponential(0.15, 2.0, 0.02, 40.0),
    "body": TimeActivityCurve.biexponential(0.01, 2.0, 0.003, 40.0),
    "lung_right": TimeActivityCurve.biexponential(0.01, 2.0, 0.002, 35.0),
    "lung_left": TimeActivityCurve.biexponential(0.01, 2.0, 0.002, 35.0),
    "vertebral_column": TimeActivityCurve.biexponential(0.003, 2.0, 0.002, 45.0),
}

#: Lesion curve per mL of lesion (analytic volume): 3.25 Gy/GBq at 1.05 g/mL,
#: T_eff 74.9 h, T_up 4 h (Peters 2022; Khreish 2026).
LU177_PSMA617_LESION: TimeActivityCurve = TimeActivityCurve.uptake_washout(
    fraction_for_dose(3.25, 1.05, 74.9, 4.0), 74.9, 4.0
)
