"""A nuclide's dose-point kernel: ICRP-107 emissions folded with the monoenergetic basis."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from ..errors import KernelError
from ..nuclides import Nuclide
from ._dpk import ANNIHILATION_MEV, E_MIN_MEV, cumulative_energy_mev

__all__ = ["COMPONENTS", "NuclideDPK", "nuclide_dpk", "resolve_exclude"]

_log = logging.getLogger(__name__)

#: kernel component -> ICRP-107 classes it holds
COMPONENTS: dict[str, tuple[str, ...]] = {
    "beta": ("beta-", "beta+"),  # beta+ with its annihilation photons
    "ce_auger": ("IE", "auger"),
    "photon": ("gamma", "X"),
    "alpha": ("alpha", "alpha recoil"),
}
_ALL_CLASSES = tuple(c for cs in COMPONENTS.values() for c in cs) + ("annihilation",)
_IGNORED = ("neutron", "fission", "betaD")


def resolve_exclude(exclude: Iterable[str]) -> frozenset[str]:
    """ICRP-107 classes named by ``exclude`` (classes or component names)."""
    out: set[str] = set()
    for item in exclude:
        if item in COMPONENTS:
            out.update(COMPONENTS[item])
        elif item in _ALL_CLASSES:
            out.add(item)
        else:
            raise KernelError(
                f"exclude={item!r} is neither a kernel component ({', '.join(COMPONENTS)}) nor "
                f"an ICRP-107 class ({', '.join(_ALL_CLASSES)})"
            )
    if "beta+" in out:
        out.add("annihilation")
    return frozenset(out)


@dataclass(frozen=True)
class NuclideDPK:
    """Cumulative absorbed energy around a point source of one nuclide, per component.

    ``cum_mev[c][k]`` is the energy (MeV per decay) absorbed within ``r_cm[k]``.
    ``emitted_mev[c]`` is the energy emitted per decay by the component's classes.
    """

    r_cm: np.ndarray
    cum_mev: dict[str, np.ndarray]
    emitted_mev: dict[str, float]
    notes: tuple[str, ...]


def _beta_samples(nuc: Nuclide, e_beta_total: float) -> tuple[np.ndarray, np.ndarray]:
    """Energies and weights (particles per decay) of the beta spectrum, energy-normalised
    to the ICRP-107 mean energy per decay ``e_beta_total`` (MeV)."""
    spec = nuc.beta_spectrum
    if spec is None or spec.shape[0] < 2:
        return np.zeros(0), np.zeros(0)
    e, p = spec[:, 0], np.clip(spec[:, 1], 0.0, None)
    mid = 0.5 * (e[1:] + e[:-1])
    w = 0.5 * (p[1:] + p[:-1]) * np.diff(e)  # particles per decay in each bin
    ok = w > 0
    mid, w = mid[ok], w[ok]
    if w.sum() <= 0:
        return np.zeros(0), np.zeros(0)
    return mid, w * (e_beta_total / float(np.sum(w * mid)))


def nuclide_dpk(
    nuc: Nuclide,
    r_cm: np.ndarray,
    exclude: frozenset[str] = frozenset(),
    medium: str = "water",
) -> NuclideDPK:
    """Fold ``nuc``'s ICRP-107 emissions with the basis on the radial grid ``r_cm`` (cm in
    ``medium``, a key of :data:`dosimetry.kernels._dpk.MEDIA`; see
    :func:`~dosimetry.kernels._dpk.cumulative_energy_mev` for how other media than water
    are obtained).

    Beta spectra (ICRP-107 ``b-spectra``) are sampled at their tabulated bins and scaled so
    that the energy per decay equals ICRP-107's mean beta energies; lines (conversion and
    Auger electrons, gamma and X rays) are folded one by one. Alphas and recoils deposit at
    the source point. ICRP-107's annihilation lines are not added: the positron kernels
    include the annihilation photons.

    References
    ----------
    ICRP Publication 107 (2008), Ann ICRP 38(3).
    """
    r = np.asarray(r_cm, dtype=float)
    cum: dict[str, np.ndarray] = {c: np.zeros(r.shape) for c in COMPONENTS}
    emitted: dict[str, float] = dict.fromkeys(COMPONENTS, 0.0)
    notes: list[str] = []
    for cls in _IGNORED:
        if nuc.lines(cls).size and cls not in exclude:
            raise KernelError(
                f"{nuc.name} emits {cls!r} radiation, which the kernel library cannot "
                f"transport; pass exclude=({cls!r},) to build a kernel without it"
            )
    # beta- and beta+ share the one ICRP-107 spectrum; split it by their energies
    e_minus = 0.0 if "beta-" in exclude else nuc.energy_per_decay_mev("beta-")
    e_plus = 0.0 if "beta+" in exclude else nuc.energy_per_decay_mev("beta+")
    if e_minus > 0 and e_plus > 0:
        notes.append(
            "beta- and beta+ share ICRP-107's single beta spectrum: both were given its "
            "shape, scaled to their own mean energies per decay"
        )
    for particle, e_tot in (("electron", e_minus), ("positron", e_plus)):
        if e_tot <= 0:
            continue
        energies, weights = _beta_samples(nuc, e_tot)
        if energies.size == 0:  # no spectrum: use the mean-energy lines
            cls = "beta-" if particle == "electron" else "beta+"
            lines = nuc.lines(cls)
            energies, weights = lines[:, 0], lines[:, 1]
            notes.append(f"{cls}: no ICRP-107 spectrum; mean-energy lines used")
        for e, w in zip(energies, weights, strict=True):
            cum["beta"] += w * cumulative_energy_mev(particle, float(e), r, medium)
        emitted["beta"] += e_tot
        if particle == "positron":
            emitted["beta"] += 2.0 * ANNIHILATION_MEV * float(np.sum(weights))
    for comp, particle in (("ce_auger", "electron"), ("photon", "photon")):
        for cls in COMPONENTS[comp]:
            if cls in exclude:
                continue
            lines = nuc.lines(cls)
            for e, y in lines:
                if y <= 0 or e <= 0:
                    continue
                if e < E_MIN_MEV[particle]:
                    cum[comp] += y * e  # below the basis: deposited at the source point
                else:
                    cum[comp] += y * cumulative_energy_mev(particle, float(e), r, medium)
                emitted[comp] += y * e
    for cls in COMPONENTS["alpha"]:
        if cls in exclude:
            continue
        e = nuc.energy_per_decay_mev(cls)
        cum["alpha"] += e  # range < 0.1 mm: local
        emitted["alpha"] += e
    return NuclideDPK(r_cm=r, cum_mev=cum, emitted_mev=emitted, notes=tuple(notes))
