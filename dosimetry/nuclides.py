"""Radionuclide decay data: half-lives, emissions by radiation class, progeny.

Emissions come from ICRP Publication 107 through the ``icrp107-database`` package
(one JSON file per nuclide, lines as ``[energy_MeV, yield_per_decay]``; beta entries are
mean energies, ``"b-spectra"`` the beta spectrum). Progeny and branching fractions come
from the ``radioactivedecay`` package (its ICRP-107-based default data set). Neither
data set is retyped here.

References
----------
ICRP, 2008. Nuclear Decay Data for Dosimetric Calculations. ICRP Publication 107.
Ann. ICRP 38(3).

Malins A, Lemoine T. radioactivedecay: A Python package for radioactive decay
calculations. J Open Source Softw 2022;7(71):3318.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache, lru_cache
from importlib import resources

import numpy as np

from .errors import NuclideError
from .units import MEV_TO_J, TIME_UNITS_S

__all__ = [
    "Nuclide",
    "nuclide",
    "normalize_name",
    "available_nuclides",
    "RADIATION_CLASSES",
    "ELECTRON_CLASSES",
    "PHOTON_CLASSES",
    "ALPHA_CLASSES",
]

#: Radiation classes of ICRP-107 as named in the icrp107-database files.
RADIATION_CLASSES: tuple[str, ...] = (
    "alpha",
    "alpha recoil",
    "beta-",
    "beta+",
    "IE",
    "auger",
    "gamma",
    "X",
    "annihilation",
    "neutron",
    "fission",
    "betaD",
)
ELECTRON_CLASSES: tuple[str, ...] = ("beta-", "beta+", "IE", "auger")
PHOTON_CLASSES: tuple[str, ...] = ("gamma", "X", "annihilation")
ALPHA_CLASSES: tuple[str, ...] = ("alpha", "alpha recoil")

_NAME = re.compile(
    r"^\s*(?:(\d+)\s*-?\s*([A-Za-z]{1,2})|([A-Za-z]{1,2})\s*-?\s*(\d+))\s*(m\d?|M\d?)?\s*$"
)


@lru_cache(maxsize=1)
def available_nuclides() -> tuple[str, ...]:
    """Canonical names of every nuclide in the ICRP-107 data set."""
    folder = resources.files("icrp107_database").joinpath("icrp107")
    return tuple(sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".json")))


def normalize_name(name: str) -> str:
    """Canonical ``"Lu-177"`` spelling of ``"177Lu"``, ``"Lu177"``, ``"lu-177"``, ``"Tc-99m"``.

    >>> normalize_name("177Lu"), normalize_name("lu177"), normalize_name("99mTc")
    ('Lu-177', 'Lu-177', 'Tc-99m')

    Raises
    ------
    NuclideError
        If the name is not a nuclide of the ICRP-107 data set (close matches suggested).
    """
    if not isinstance(name, str):
        raise NuclideError(f"nuclide name must be a string such as 'Lu-177', got {name!r}")
    raw = name.strip()
    # "99mTc" puts the isomer flag between mass number and symbol
    m_iso = re.match(r"^\s*(\d+)(m\d?)([A-Za-z]{1,2})\s*$", raw)
    if m_iso:
        mass, iso, sym = m_iso.group(1), m_iso.group(2), m_iso.group(3)
    else:
        m = _NAME.match(raw)
        if not m:
            raise NuclideError(_unknown_message(name))
        if m.group(1):
            mass, sym = m.group(1), m.group(2)
        else:
            sym, mass = m.group(3), m.group(4)
        iso = m.group(5) or ""
    canonical = f"{sym.capitalize()}-{int(mass)}{iso.lower()}"
    if canonical not in set(available_nuclides()):
        raise NuclideError(_unknown_message(name))
    return canonical


def _unknown_message(name: str) -> str:
    close = difflib.get_close_matches(str(name), available_nuclides(), n=5, cutoff=0.5)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    return (
        f"unknown nuclide {name!r}: not in the ICRP-107 data set (write e.g. 'Lu-177', "
        f"'177Lu', 'Ac-225').{hint}"
    )


@dataclass(frozen=True)
class Nuclide:
    """Decay data of one nuclide (ICRP-107 emissions, radioactivedecay progeny).

    Attributes
    ----------
    name
        Canonical name, e.g. ``"Lu-177"``.
    half_life_s
        Physical half-life in seconds.
    emissions
        Radiation class -> array ``(n, 2)`` of ``[energy_MeV, yield_per_decay]``.
    beta_spectrum
        ``(n, 2)`` array ``[energy_MeV, probability density per MeV]`` from ICRP-107, or
        ``None`` for nuclides without beta decay.
    progeny
        ``(daughter, branching_fraction, decay_mode)`` triples.

    Examples
    --------
    >>> lu = nuclide("Lu-177")
    >>> round(lu.half_life_s / 86400, 3)
    6.647
    >>> round(lu.energy_per_decay_mev("electron"), 4)
    0.1479
    """

    name: str
    half_life_s: float
    emissions: Mapping[str, np.ndarray] = field(repr=False)
    beta_spectrum: np.ndarray | None = field(repr=False, default=None)
    progeny: tuple[tuple[str, float, str], ...] = ()

    @property
    def decay_constant_per_s(self) -> float:
        """Decay constant lambda = ln 2 / T_1/2 in 1/s."""
        return float(np.log(2.0) / self.half_life_s)

    @property
    def mean_life_s(self) -> float:
        """Mean life 1/lambda in s (TIA per Bq for physical decay only)."""
        return float(self.half_life_s / np.log(2.0))

    def lines(self, radiation: str) -> np.ndarray:
        """``(n, 2)`` array of ``[energy_MeV, yield]`` for one ICRP-107 radiation class."""
        if radiation not in RADIATION_CLASSES:
            raise NuclideError(
                f"unknown radiation class {radiation!r}; valid: {', '.join(RADIATION_CLASSES)}"
            )
        return self.emissions.get(radiation, np.zeros((0, 2)))

    def energy_per_decay_mev(self, radiation: str) -> float:
        """Mean energy emitted per decay (MeV) for a class or a group.

        ``radiation`` is an ICRP-107 class (``"beta-"``, ``"IE"``, ``"auger"``, ``"gamma"``,
        ``"X"``, ``"annihilation"``, ``"alpha"``, ``"alpha recoil"``, ...) or a group:
        ``"electron"`` (beta-, beta+, IE, Auger), ``"photon"`` (gamma, X, annihilation),
        ``"alpha"`` is the alpha particles only; ``"alpha+recoil"`` adds recoils;
        ``"total"`` sums all classes.
        """
        groups = {
            "electron": ELECTRON_CLASSES,
            "photon": PHOTON_CLASSES,
            "alpha+recoil": ALPHA_CLASSES,
            "total": RADIATION_CLASSES,
        }
        classes = groups.get(radiation, (radiation,))
        total = 0.0
        for c in classes:
            arr = self.lines(c)
            if arr.size:
                total += float(np.sum(arr[:, 0] * arr[:, 1]))
        return total

    def energy_per_decay_j(self, radiation: str) -> float:
        """:meth:`energy_per_decay_mev` in joules."""
        return self.energy_per_decay_mev(radiation) * MEV_TO_J

    def energy_table_mev(self) -> dict[str, float]:
        """Energy per decay (MeV) for every ICRP-107 class with emissions."""
        return {c: self.energy_per_decay_mev(c) for c in RADIATION_CLASSES if self.lines(c).size}

    def nonpenetrating_energy_mev(self) -> float:
        """Electrons + alphas + recoils per decay (MeV): what local deposition assumes.

        Photons (gamma, X, annihilation) are excluded.
        """
        return self.energy_per_decay_mev("electron") + self.energy_per_decay_mev("alpha+recoil")


@cache
def _load_icrp107(canonical: str) -> tuple[float, dict[str, np.ndarray], np.ndarray | None]:
    path = resources.files("icrp107_database").joinpath(f"icrp107/{canonical}.json")
    raw = json.loads(path.read_text("utf-8"))
    data = json.loads(raw) if isinstance(raw, str) else raw  # the files are JSON-encoded twice
    unit = str(data["time_unit"]).strip()
    unit_map = {"s": "s", "m": "min", "h": "h", "d": "d", "y": "y", "ms": "ms", "us": "us"}
    if unit not in unit_map:
        raise NuclideError(f"{canonical}: unknown half-life unit {unit!r} in ICRP-107 data")
    half_life_s = float(data["half_life"]) * TIME_UNITS_S[unit_map[unit]]
    emissions: dict[str, np.ndarray] = {}
    for key, values in data["emissions"].items():
        if key == "b-spectra":
            continue
        arr = np.asarray(values, dtype=float).reshape(-1, 2)
        if arr.size:
            emissions[key] = arr
    spec = data["emissions"].get("b-spectra") or []
    beta_spectrum = np.asarray(spec, dtype=float).reshape(-1, 2) if spec else None
    return half_life_s, emissions, beta_spectrum


@cache
def _progeny(canonical: str) -> tuple[tuple[str, float, str], ...]:
    import radioactivedecay as rd

    try:
        n = rd.Nuclide(canonical)
    except ValueError:
        return ()
    return tuple(
        (str(d), float(b), str(m))
        for d, b, m in zip(n.progeny(), n.branching_fractions(), n.decay_modes(), strict=True)
    )


def nuclide(name: str) -> Nuclide:
    """Decay data for ``name`` (``"Lu-177"``, ``"177Lu"``, ``"Lu177"``, ``"lu-177"``).

    Parameters
    ----------
    name
        Nuclide name in any common spelling.

    Returns
    -------
    Nuclide
        Half-life (s), ICRP-107 emission lines by class, beta spectrum, progeny.

    Raises
    ------
    NuclideError
        Unknown name (close matches are suggested).

    References
    ----------
    ICRP Publication 107 (2008), Ann. ICRP 38(3).
    """
    canonical = normalize_name(name)
    half_life_s, emissions, spectrum = _load_icrp107(canonical)
    return Nuclide(
        name=canonical,
        half_life_s=half_life_s,
        emissions=emissions,
        beta_spectrum=spectrum,
        progeny=_progeny(canonical),
    )
