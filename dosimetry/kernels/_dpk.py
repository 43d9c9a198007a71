"""Dose-point kernels: the monoenergetic basis and its folding with nuclide spectra."""

from __future__ import annotations

import csv
import io
from functools import cache
from importlib import resources

import numpy as np

__all__ = ["estar_water", "csda_range_cm"]


@cache
def estar_water() -> tuple[np.ndarray, np.ndarray]:
    """ESTAR liquid-water table: kinetic energy (MeV) and CSDA range (g/cm2).

    References
    ----------
    Berger MJ, Coursey JS, Zucker MA, Chang J. ESTAR: stopping-power and range tables for
    electrons. NIST Standard Reference Database 124 (public domain).
    """
    text = resources.files("dosimetry.kernels").joinpath("data/estar_water_liquid.csv")
    lines = [ln for ln in io.StringIO(text.read_text("utf-8")) if not ln.startswith("#")]
    rows = list(csv.DictReader(lines))
    e = np.array([float(r["kinetic_energy_MeV"]) for r in rows])
    r = np.array([float(r["csda_range_g_cm2"]) for r in rows])
    e.setflags(write=False)
    r.setflags(write=False)
    return e, r


def csda_range_cm(energy_mev: float | np.ndarray, density_g_per_ml: float = 1.0) -> np.ndarray:
    """CSDA range of electrons in water (cm), log-log interpolation of ESTAR.

    Below the table's first energy (10 keV) the range is extrapolated as E^1.75 (the local
    slope of the table there); above its last energy, log-log linearly.

    >>> float(np.round(csda_range_cm(1.0), 4))
    0.4367
    """
    e_tab, r_tab = estar_water()
    e = np.asarray(energy_mev, dtype=float)
    le, lr = np.log(e_tab), np.log(r_tab)
    x = np.log(np.maximum(e, 1e-6))
    slope_lo = (lr[1] - lr[0]) / (le[1] - le[0])
    slope_hi = (lr[-1] - lr[-2]) / (le[-1] - le[-2])
    y = np.interp(x, le, lr)
    y = np.where(x < le[0], lr[0] + slope_lo * (x - le[0]), y)
    y = np.where(x > le[-1], lr[-1] + slope_hi * (x - le[-1]), y)
    return np.exp(y) / density_g_per_ml
