"""When kernels are not enough: heterogeneity flags per VOI.

Voxel S-value methods (``led``, ``vsv``, ``vsv-density``) are exact in a homogeneous
medium and wrong by tens of percent next to lung, bone and air (docs/dose.md measures it
against the patient Monte Carlo on a heterogeneous phantom). :func:`heterogeneity_flags`
says, per VOI, how much of it lies where that matters:

* the fraction of its voxels within one electron CSDA range of an interface with lung,
  bone, soft tissue or air (the range of the nuclide's most energetic electron, from the
  ESTAR water table shipped with the kernel library, scaled by 1 / the voxel's density;
  a voxel counts when the gap between it and a voxel of another class is at most that
  range: the voxels touching an interface always count);
* the fraction within ``photon_distance_mm`` of any interface (reported, not in the band);
* an estimated error band of each kernel method's VOI mean: each voxel takes the band its
  interface class showed in the project's own comparison with Monte Carlo
  (``dosimetry/data/mc_kernel_error_bands.csv``: the region means of docs/dose.md's
  phantom for the nuclide where it was run with it -- Lu-177, Y-90, Ac-225 -- else the
  envelope over those three), mixed by the voxel fractions;
* ``mc_recommended`` when even the best kernel method's band exceeds
  ``mc_recommended_error_band`` (parameter table; 10 %, a project convention).

The band is an estimate from one phantom's regions, not a bound: it says where kernels are
known to go wrong, and by about how much.

References
----------
Berger MJ et al. ESTAR, NIST Standard Reference Database 124 (CSDA ranges in water).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import numpy as np
from scipy import ndimage

from .. import parameters
from ..errors import InputDataError
from ..volume import Volume
from .materials import _check_density, classify_density

__all__ = [
    "HeterogeneityFlag",
    "heterogeneity_flags",
    "error_bands",
    "max_electron_energy_mev",
    "csda_range_water_g_per_cm2",
    "INTERFACE_CLASSES",
    "KERNEL_METHODS",
]

KERNEL_METHODS: tuple[str, ...] = ("led", "vsv", "vsv-density")
#: interface classes of a voxel (its own medium, and the other medium within range)
INTERFACE_CLASSES: tuple[str, ...] = (
    "soft tissue",
    "soft tissue next to lung",
    "soft tissue next to bone",
    "soft tissue next to air",
    "lung",
    "lung next to soft tissue",
    "bone",
)
_CLASS_NAME = {0: "air", 1: "lung", 2: "soft tissue", 3: "bone"}


@lru_cache(maxsize=1)
def _estar() -> tuple[np.ndarray, np.ndarray]:
    # read as package data of "dosimetry" (the kernels package itself is not imported)
    text = resources.files("dosimetry").joinpath("kernels/data/estar_water_liquid.csv")
    lines = [ln for ln in io.StringIO(text.read_text("utf-8")) if not ln.startswith("#")]
    rows = list(csv.DictReader(lines))
    e = np.array([float(r["kinetic_energy_MeV"]) for r in rows])
    r = np.array([float(r["csda_range_g_cm2"]) for r in rows])
    return e, r


def csda_range_water_g_per_cm2(energy_mev: float) -> float:
    """CSDA range (g/cm2) of an electron in liquid water, log-log interpolation of ESTAR
    (held at the table's ends: 10 keV to 1 GeV).

    >>> round(csda_range_water_g_per_cm2(1.0), 4)
    0.4367
    """
    e, r = _estar()
    x = float(np.clip(energy_mev, e[0], e[-1]))
    return float(np.exp(np.interp(np.log(x), np.log(e), np.log(r))))


def max_electron_energy_mev(nuclide: str, chain: bool = False) -> float:
    """Most energetic electron or positron of ``nuclide`` (or its chain): the beta
    spectrum's endpoint and the highest conversion/Auger line (ICRP-107).

    >>> round(max_electron_energy_mev("Y-90"), 4)
    2.2801
    """
    from ..nuclides import decay_chain
    from ..nuclides import nuclide as get_nuclide

    names = [nuclide]
    if chain:
        ch = decay_chain(nuclide)
        t = get_nuclide(ch.parent).half_life_s
        names = [m for m in ch.members if m == ch.parent or get_nuclide(m).half_life_s < t]
    e_max = 0.0
    for name in names:
        n = get_nuclide(name)
        if n.beta_spectrum is not None and n.beta_spectrum.size:
            e_max = max(e_max, float(np.max(n.beta_spectrum[:, 0])))
        for cls in ("IE", "auger"):
            lines = n.lines(cls)
            if lines.size:
                e_max = max(e_max, float(np.max(lines[lines[:, 1] > 0, 0], initial=0.0)))
    return e_max


@lru_cache(maxsize=1)
def error_bands(nuclide: str | None = None) -> dict[str, dict[str, tuple[float, float]]]:
    """``{method: {interface class: (low, high)}}`` relative errors of kernel-method region
    means against Monte Carlo (``dosimetry/data/mc_kernel_error_bands.csv``): the rows of
    ``nuclide`` where the validation phantom was run with it (Lu-177, Y-90, Ac-225), else
    the envelope over those nuclides (``None``, or a nuclide not in the table)."""
    rows = _band_rows()
    key = nuclide if nuclide is not None and any(r[0] == nuclide for r in rows) else "any"
    out: dict[str, dict[str, tuple[float, float]]] = {}
    for nuc, method, cls, low, high in rows:
        if nuc == key:
            out.setdefault(method, {})[cls] = (low, high)
    return out


def _reach_box(
    selections: Mapping[str, np.ndarray],
    rho: np.ndarray,
    r_gcm2: float,
    d_photon_mm: float,
    spacing: tuple[float, float, float],
) -> tuple[slice, ...]:
    """Bounding box of the VOIs grown by the largest distance any comparison uses (the
    whole grid when there is no VOI voxel, or a VOI voxel is in air: its electron range
    has no useful bound)."""
    union = np.zeros(rho.shape, bool)
    for sel in selections.values():
        union |= sel
    if not union.any():
        return tuple(slice(None) for _ in rho.shape)
    reach_mm = max(d_photon_mm, float(np.max(r_gcm2 * 10.0 / rho[union])))
    if not np.isfinite(reach_mm):
        return tuple(slice(None) for _ in rho.shape)
    box = []
    for axis, n in enumerate(rho.shape):
        other = tuple(i for i in range(rho.ndim) if i != axis)
        idx = np.flatnonzero(union.any(axis=other))
        pad = int(np.ceil(reach_mm / spacing[axis])) + 2
        box.append(slice(max(int(idx[0]) - pad, 0), min(int(idx[-1]) + pad + 1, n)))
    return tuple(box)


def _canonical(nuclide: str) -> str | None:
    from ..nuclides import normalize_name

    try:
        return normalize_name(nuclide)
    except Exception:  # an unknown name is refused later, where the nuclide is used
        return None


@lru_cache(maxsize=1)
def _band_rows() -> tuple[tuple[str, str, str, float, float], ...]:
    text = resources.files("dosimetry").joinpath("data/mc_kernel_error_bands.csv")
    rows = csv.DictReader(
        ln for ln in io.StringIO(text.read_text("utf-8")) if not ln.startswith("#")
    )
    return tuple(
        (r["nuclide"], r["method"], r["interface_class"], float(r["low"]), float(r["high"]))
        for r in rows
    )


@dataclass(frozen=True)
class HeterogeneityFlag:
    """Heterogeneity of one VOI and what it implies for the kernel methods.

    Attributes
    ----------
    voi
        Name.
    n_voxels
        Voxels of the VOI.
    electron_range_mm
        CSDA range (mm) of the most energetic electron in soft tissue (density 1.04 g/mL);
        each voxel uses the range at its own density.
    photon_distance_mm
        Distance used for the photon fraction.
    fraction_near
        ``{"lung", "bone", "soft tissue", "air": fraction}``: VOI voxels within one
        electron range of a voxel of that (other) medium.
    fraction_near_photon
        VOI voxels within ``photon_distance_mm`` of any interface.
    class_fractions
        ``{method: {interface class: fraction}}`` the band mixes.
    error_band
        ``{method: (low, high)}`` estimated relative error of the VOI mean dose.
    best_method
        The kernel method with the narrowest band.
    mc_recommended
        The best method's band exceeds the threshold.
    reason
        One line saying why.
    """

    voi: str
    n_voxels: int
    electron_range_mm: float
    photon_distance_mm: float
    fraction_near: Mapping[str, float]
    fraction_near_photon: float
    class_fractions: Mapping[str, Mapping[str, float]]
    error_band: Mapping[str, tuple[float, float]]
    best_method: str
    mc_recommended: bool
    reason: str


def _width(band: tuple[float, float]) -> float:
    return max(abs(band[0]), abs(band[1]))


def heterogeneity_flags(
    masks: Mapping[str, Volume],
    density: Volume,
    nuclide: str,
    *,
    chain: bool = False,
    photon_distance_mm: float | None = None,
    threshold: float | None = None,
) -> dict[str, HeterogeneityFlag]:
    """Per VOI: fraction near lung / bone / air interfaces, kernel error bands, and
    whether Monte Carlo is recommended (see the module docstring).

    Parameters
    ----------
    masks
        ``{name: mask}`` on ``density``'s grid (bool or occupancy; occupancy > 0 counts).
    density
        Mass density (g/mL; from CT with ``dosimetry.hu_to_density``). Classes by the
        shared parameters ``density_air_max_g_per_ml``, ``density_class_lung_max_g_per_ml``
        and ``density_class_bone_min_g_per_ml``.
    nuclide
        The nuclide (its most energetic electron sets the range).
    chain
        Include the chain's progeny in the electron range.
    photon_distance_mm
        Distance for the photon fraction (default: parameter
        ``heterogeneity_photon_distance_mm``).
    threshold
        Relative error above which Monte Carlo is recommended (default: parameter
        ``mc_recommended_error_band``).

    Returns
    -------
    dict[str, HeterogeneityFlag]

    Raises
    ------
    UnitError, InputDataError, GeometryMismatchError
        Density not in g/mL or not positive; a mask off the grid or empty.
    """
    rho = _check_density(density, density)
    d_photon = parameters.resolve(photon_distance_mm, "heterogeneity_photon_distance_mm")
    limit = parameters.resolve(threshold, "mc_recommended_error_band")
    spacing = density.spacing_mm
    s_max = max(spacing)
    r_gcm2 = csda_range_water_g_per_cm2(max_electron_energy_mev(nuclide, chain))
    selections = {}
    for voi, mask in masks.items():
        density.check_same_grid(mask, f"masks[{voi!r}]")
        selections[voi] = np.asarray(mask.array, dtype=float) > 0
    # Only the VOIs and what lies within reach of them matter: the distance maps are
    # computed on their bounding box grown by the largest distance compared (electron range
    # in the VOIs' own media, photon distance) plus two voxels. A class voxel outside that
    # box is farther than any distance compared, so every comparison is unchanged.
    box = _reach_box(selections, rho, r_gcm2, d_photon, spacing)
    rho = rho[box]
    selections = {k: v[box] for k, v in selections.items()}
    labels = classify_density(rho)
    range_mm = r_gcm2 * 10.0 / rho  # per voxel, in its own medium
    # distance (mm, centre to centre) from every voxel to the nearest voxel of each class
    dist = {}
    for lab, name in _CLASS_NAME.items():
        present = labels == lab
        dist[name] = (
            ndimage.distance_transform_edt(~present, sampling=spacing)
            if present.any()
            else np.full(rho.shape, np.inf)
        )
    any_interface = np.zeros(rho.shape, bool)
    for lab in _CLASS_NAME:
        other = np.minimum.reduce([dist[n] for k, n in _CLASS_NAME.items() if k != lab])
        any_interface |= (labels == lab) & (other - s_max <= d_photon)
    bands = error_bands(_canonical(nuclide))
    out: dict[str, HeterogeneityFlag] = {}
    for voi, sel in selections.items():
        n = int(sel.sum())
        if n == 0:
            raise InputDataError(f"masks[{voi!r}] is empty on the density grid")
        lab_v = labels[sel]
        r_v = range_mm[sel]
        near = {
            name: (lab_v != k) & (dist[name][sel] - s_max <= r_v) for k, name in _CLASS_NAME.items()
        }
        fraction_near = {name: float(v.mean()) for name, v in near.items()}
        candidates: dict[str, np.ndarray] = {
            "soft tissue next to lung": (lab_v == 2) & near["lung"],
            "soft tissue next to bone": (lab_v == 2) & near["bone"],
            "soft tissue next to air": ((lab_v == 2) & near["air"]) | (lab_v == 0),
            "lung next to soft tissue": (lab_v == 1) & (near["soft tissue"] | near["bone"]),
            "lung": (lab_v == 1) & ~(near["soft tissue"] | near["bone"]),
            "bone": lab_v == 3,
        }
        class_fractions: dict[str, dict[str, float]] = {}
        band: dict[str, tuple[float, float]] = {}
        for method in KERNEL_METHODS:
            table = bands[method]
            assigned = np.zeros(n, bool)
            fr: dict[str, float] = {}
            # a voxel with several interfaces takes the widest band of this method
            order = sorted(candidates, key=lambda c: -_width(table[c]))  # noqa: B023
            for c in order:
                m = candidates[c] & ~assigned
                fr[c] = float(m.mean())
                assigned |= m
            fr["soft tissue"] = float((~assigned).mean())
            class_fractions[method] = fr
            lo = sum(f * table[c][0] for c, f in fr.items())
            hi = sum(f * table[c][1] for c, f in fr.items())
            band[method] = (lo, hi)
        best = min(KERNEL_METHODS, key=lambda m: _width(band[m]))
        recommended = _width(band[best]) > limit
        worst = max(fraction_near, key=lambda k: fraction_near[k])
        reason = (
            f"best kernel method {best}: estimated error {100 * band[best][0]:+.0f} to "
            f"{100 * band[best][1]:+.0f} % ({'above' if recommended else 'within'} "
            f"{100 * limit:g} %); {100 * fraction_near[worst]:.0f} % of the VOI within "
            f"one electron range of {worst}"
        )
        out[str(voi)] = HeterogeneityFlag(
            voi=str(voi),
            n_voxels=n,
            electron_range_mm=r_gcm2 * 10.0 / 1.04,
            photon_distance_mm=d_photon,
            fraction_near=fraction_near,
            fraction_near_photon=float(any_interface[sel].mean()),
            class_fractions=class_fractions,
            error_band=band,
            best_method=best,
            mc_recommended=recommended,
            reason=reason,
        )
    return out
