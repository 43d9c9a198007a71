"""Radionuclide decay data: half-lives, emissions by radiation class, progeny.

Emissions come from ICRP Publication 107 through the ``icrp107-database`` package
(one JSON file per nuclide, lines as ``[energy_MeV, yield_per_decay]``; beta entries are
mean energies, ``"b-spectra"`` the beta spectrum). Progeny and branching fractions come
from the ``radioactivedecay`` package (its ICRP-107-based default data set), shipped
as a generated table (``data/progeny_icrp107``) so that only finite-window Bateman
solutions import radioactivedecay. Neither data set is retyped here.

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
import logging
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache, lru_cache
from importlib import resources

import numpy as np

from .errors import NuclideError
from .units import MEV_TO_J, TIME_UNITS_S

_log = logging.getLogger(__name__)

__all__ = [
    "Nuclide",
    "nuclide",
    "DecayChain",
    "decay_chain",
    "TheranosticPair",
    "theranostic_pair",
    "theranostic_pairs",
    "normalize_name",
    "available_nuclides",
    "Agent",
    "parse_agent",
    "canonical_ligand",
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


@lru_cache(maxsize=1)
def _available_set() -> frozenset[str]:
    return frozenset(available_nuclides())


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
    if canonical not in _available_set():
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
        ``(daughter, branching_fraction, decay_mode)`` triples (from radioactivedecay,
        looked up on first access: importing it takes about a second).

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

    @property
    def progeny(self) -> tuple[tuple[str, float, str], ...]:
        """``(daughter, branching_fraction, decay_mode)`` of each decay branch."""
        return _progeny(self.name)

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


@lru_cache(maxsize=1)
def _progeny_table() -> tuple[dict[str, tuple[tuple[str, float, str], ...]], dict[str, float]]:
    """Direct progeny of every ICRP-107 nuclide and the half-life of each daughter, from
    the table shipped with the package (``data/progeny_icrp107``, written from
    radioactivedecay's default data set by ``tools/make_progeny_table.py`` and checked
    against it in the tests), so that planning never imports radioactivedecay."""
    import csv
    import io

    text = (
        resources.files("dosimetry").joinpath("data/progeny_icrp107/progeny.csv").read_text("utf-8")
    )
    progeny: dict[str, list[tuple[str, float, str]]] = {}
    half_lives: dict[str, float] = {}
    for row in csv.DictReader(io.StringIO(text)):
        progeny.setdefault(row["parent"], []).append(
            (row["daughter"], float(row["branching_fraction"]), row["decay_mode"])
        )
        half_lives[row["daughter"]] = float(row["daughter_half_life_s"])
    return {k: tuple(v) for k, v in progeny.items()}, half_lives


def _rd_half_life_s(name: str) -> float:
    """Half-life (s) of a daughter (infinite when stable), from the shipped table."""
    half_lives = _progeny_table()[1]
    if name in half_lives:
        return half_lives[name]
    if name in _available_set():
        return _load_icrp107(name)[0]
    return float("inf")


def _progeny(canonical: str) -> tuple[tuple[str, float, str], ...]:
    return _progeny_table()[0].get(canonical, ())


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
    )


@dataclass(frozen=True)
class DecayChain:
    """A parent and its radioactive progeny with decays per parent decay.

    Attributes
    ----------
    parent
        Canonical name of the parent.
    members
        Parent first, then every radioactive descendant (stable end points excluded).
    branching
        ``(mother, daughter) -> branching fraction`` for every link of the chain.
    decays_per_parent_decay
        Number of decays of each member per decay of the parent over ``window_s``
        (all atoms stay where they were created: no redistribution).
    window_s
        Integration window ``[0, window_s]`` starting from pure parent; ``None`` means
        complete decay (the branching products: every path's product of fractions).
    """

    parent: str
    members: tuple[str, ...]
    branching: Mapping[tuple[str, str], float]
    decays_per_parent_decay: Mapping[str, float]
    window_s: float | None = None

    def __iter__(self) -> Iterator[str]:
        return iter(self.members)


def _chain_links(parent: str) -> tuple[tuple[str, ...], dict[tuple[str, str], float]]:
    members: list[str] = [parent]
    links: dict[tuple[str, str], float] = {}
    stack = [parent]
    while stack:
        mother = stack.pop()
        for daughter, fraction, _mode in _progeny(mother):
            if daughter not in set(available_nuclides()):
                # stable end point (e.g. Bi-209) or a progeny without ICRP-107 emissions
                # (e.g. Rn-217, 1.2e-4 of At-217 decays): left out, and said so
                if fraction > 0 and np.isfinite(_rd_half_life_s(daughter)):
                    _log.warning(
                        "%s -> %s (branching %.3g) left out of the chain: no ICRP-107 "
                        "emission data for %s",
                        mother,
                        daughter,
                        fraction,
                        daughter,
                    )
                continue
            if fraction <= 0:
                continue
            links[(mother, daughter)] = fraction
            if daughter not in members:
                members.append(daughter)
                stack.append(daughter)
    return tuple(members), links


def decay_chain(name: str, window_s: float | None = None) -> DecayChain:
    """Decay chain of ``name`` with the decays of each member per parent decay.

    Parameters
    ----------
    name
        Parent nuclide (any spelling).
    window_s
        Time window [0, window_s] in seconds after a pure parent sample was placed (e.g.
        the time to the end of dosimetry); ``None`` integrates to complete decay, where
        each member's decays per parent decay are the sum over decay paths of the products
        of branching fractions.

    Returns
    -------
    DecayChain

    Notes
    -----
    Finite windows use the Bateman solution of radioactivedecay
    (``Inventory.cumulative_decays``): decays of member i in [0, T] divided by decays of
    the parent in [0, T]. Daughters are assumed to decay where they are created.

    References
    ----------
    Bateman H. Proc Cambridge Philos Soc 1910;15:423-427. Malins A, Lemoine T. J Open
    Source Softw 2022;7(71):3318 (radioactivedecay). ICRP Publication 107 (2008).

    Examples
    --------
    >>> ch = decay_chain("Ac-225")
    >>> ch.members
    ('Ac-225', 'Fr-221', 'At-217', 'Bi-213', 'Po-213', 'Tl-209', 'Pb-209')
    >>> round(ch.decays_per_parent_decay["Po-213"], 3), round(ch.branching[("Bi-213", "Tl-209")], 4)
    (0.979, 0.0209)
    """
    parent = normalize_name(name)
    members, links = _chain_links(parent)
    order = _topological(members, links)
    if window_s is None:
        decays = {m: 0.0 for m in order}
        decays[parent] = 1.0
        for m in order:
            for (a, b), f in links.items():
                if a == m:
                    decays[b] += decays[m] * f
    else:
        t = float(window_s)
        if not np.isfinite(t) or t <= 0:
            raise NuclideError(f"window_s must be a positive number of seconds, got {window_s!r}")
        import radioactivedecay as rd

        inv = rd.Inventory({parent: 1.0}, "num")
        cum = {str(k): float(v) for k, v in inv.cumulative_decays(t, "s").items()}
        p = cum.get(parent, 0.0)
        if p <= 0:
            raise NuclideError(f"{parent} does not decay within window_s={t:g} s")
        decays = {m: cum.get(m, 0.0) / p for m in order}
    return DecayChain(
        parent=parent,
        members=tuple(order),
        branching=dict(links),
        decays_per_parent_decay=decays,
        window_s=None if window_s is None else float(window_s),
    )


def _topological(members: tuple[str, ...], links: Mapping[tuple[str, str], float]) -> list[str]:
    """Members ordered so that every mother precedes its daughters (stable otherwise)."""
    indeg = {m: 0 for m in members}
    for _a, b in links:
        indeg[b] += 1
    ready = [m for m in members if indeg[m] == 0]
    out: list[str] = []
    while ready:
        m = ready.pop(0)
        out.append(m)
        for a, b in links:
            if a == m:
                indeg[b] -= 1
                if indeg[b] == 0:
                    ready.append(b)
    return out


@dataclass(frozen=True)
class TheranosticPair:
    """A diagnostic agent and the therapy it is used to select or plan.

    ``therapy_nuclide``/``therapy_agent`` are ``None`` for a diagnostic-only agent.
    """

    diagnostic_agent: str
    diagnostic_nuclide: str
    therapy_agent: str | None
    therapy_nuclide: str | None
    target: str
    note: str
    reference: str


@cache
def theranostic_pairs() -> tuple[TheranosticPair, ...]:
    """All rows of ``dosimetry/data/theranostic_pairs.csv``."""
    import csv
    import io

    text = resources.files("dosimetry").joinpath("data/theranostic_pairs.csv").read_text("utf-8")
    rows = csv.DictReader(io.StringIO(text))
    out = []
    for r in rows:
        out.append(
            TheranosticPair(
                diagnostic_agent=r["diagnostic_agent"].strip(),
                diagnostic_nuclide=normalize_name(r["diagnostic_nuclide"]),
                therapy_agent=r["therapy_agent"].strip() or None,
                therapy_nuclide=normalize_name(r["therapy_nuclide"])
                if r["therapy_nuclide"].strip()
                else None,
                target=r["target"].strip(),
                note=r["note"].strip(),
                reference=r["reference"].strip(),
            )
        )
    return tuple(out)


#: Ligand spellings (lower case, letters and digits only) -> canonical ligand name.
#: International non-proprietary and brand names map to the ligand they contain.
_LIGANDS: dict[str, str] = {
    "psma617": "PSMA-617",
    "vipivotidetetraxetan": "PSMA-617",
    "pluvicto": "PSMA-617",
    "psma11": "PSMA-11",
    "psmahbedcc": "PSMA-11",
    "gozetotide": "PSMA-11",
    "locametz": "PSMA-11",
    "illuccix": "PSMA-11",
    "psmait": "PSMA-I&T",
    "psmaiandt": "PSMA-I&T",
    "zadavotide": "PSMA-I&T",
    "psma1007": "PSMA-1007",
    "dcfpyl": "DCFPyL",
    "piflufolastat": "DCFPyL",
    "pylarify": "DCFPyL",
    "dotatate": "DOTATATE",
    "dotaoctreotate": "DOTATATE",
    "oxodotreotide": "DOTATATE",
    "lutathera": "DOTATATE",
    "netspot": "DOTATATE",
    "dotatoc": "DOTATOC",
    "edotreotide": "DOTATOC",
    "dotanoc": "DOTANOC",
    "fdg": "FDG",
    "fludeoxyglucose": "FDG",
    "fluorodeoxyglucose": "FDG",
}

#: Brand names that fix the nuclide as well as the ligand.
_BRANDS: dict[str, str] = {
    "pluvicto": "Lu-177",
    "lutathera": "Lu-177",
    "locametz": "Ga-68",
    "illuccix": "Ga-68",
    "netspot": "Ga-68",
    "pylarify": "F-18",
}


@dataclass(frozen=True)
class Agent:
    """A radiopharmaceutical: nuclide + ligand, with its canonical name.

    >>> parse_agent("[177Lu]Lu-PSMA-617")
    Agent(name='Lu-177-PSMA-617', nuclide='Lu-177', ligand='PSMA-617')
    """

    name: str
    nuclide: str
    ligand: str


def _ligand_key(text: str) -> str:
    return re.sub(r"[^a-z0-9&]", "", text.lower()).replace("&", "and")


def canonical_ligand(text: str) -> str | None:
    """Canonical ligand of a name without nuclide (``"psma617"`` -> ``"PSMA-617"``,
    ``"Lutathera"`` -> ``"DOTATATE"``), or ``None`` when the table does not know it."""
    return _LIGANDS.get(_ligand_key(str(text)))


def parse_agent(text: str) -> Agent:
    """The one agent-name parser: ``"177Lu-PSMA-617"``, ``"[225Ac]Ac-PSMA-617"``,
    ``"Lu-177-DOTATATE"``, ``"68Ga-PSMA-11"``, ``"F-18-FDG"``, ``"Pluvicto"``.

    The nuclide part accepts every spelling of :func:`normalize_name`; the ligand part is
    matched, ignoring case and punctuation, against a table of ligand names and their
    non-proprietary and brand names. A ligand not in the table is kept as written.

    >>> parse_agent("225Ac-PSMA-617").name, parse_agent("lu177 dotatate").name
    ('Ac-225-PSMA-617', 'Lu-177-DOTATATE')
    >>> parse_agent("Lutathera").name, parse_agent("[18F]DCFPyL").name
    ('Lu-177-DOTATATE', 'F-18-DCFPyL')

    Raises
    ------
    NuclideError
        When no nuclide can be read from the name (the message shows the expected form).
    """
    if not isinstance(text, str) or not text.strip():
        raise NuclideError(f"agent must be a name such as 'Lu-177-PSMA-617', got {text!r}")
    raw = text.strip()
    key = _ligand_key(raw)
    if key in _BRANDS:
        return Agent(f"{_BRANDS[key]}-{_LIGANDS[key]}", _BRANDS[key], _LIGANDS[key])
    # [177Lu]Lu-PSMA-617 / [18F]DCFPyL
    m = re.match(
        r"^\[\s*([0-9]{1,3}m?\s*[A-Za-z]{1,2}|[A-Za-z]{1,2}\s*-?\s*[0-9]{1,3}m?)\s*\]\s*(.*)$", raw
    )
    if m:
        nuc_text, rest = m.group(1), m.group(2)
        # drop a repeated element symbol: "[177Lu]Lu-PSMA-617"
        sym = re.sub(r"[^A-Za-z]", "", nuc_text)
        rest = re.sub(rf"^{sym}\s*-\s*", "", rest, flags=re.IGNORECASE)
    else:
        m = re.match(
            r"^([0-9]{1,3}m?\s*-?\s*[A-Za-z]{1,2}(?=[^a-z])|[A-Za-z]{1,2}\s*-?\s*[0-9]{1,3}m?)"
            r"[\s\-_]*(.*)$",
            raw,
        )
        if not m:
            raise NuclideError(
                f"cannot read a nuclide from agent {text!r}; write it as 'Lu-177-PSMA-617', "
                "'177Lu-PSMA-617' or '[177Lu]Lu-PSMA-617'"
            )
        nuc_text, rest = m.group(1), m.group(2)
    nuc = normalize_name(nuc_text.replace(" ", ""))
    lig_key = _ligand_key(rest)
    ligand = _LIGANDS.get(lig_key, rest.strip(" -_")) if rest.strip() else ""
    if not ligand:
        raise NuclideError(
            f"agent {text!r} names the nuclide {nuc} but no ligand; write e.g. '{nuc}-PSMA-617'"
        )
    return Agent(f"{nuc}-{ligand}", nuc, ligand)


def theranostic_pair(diagnostic: str) -> tuple[TheranosticPair, ...]:
    """Therapies paired with a diagnostic agent (``"Ga-68-PSMA-11"``, ``"68Ga-DOTATATE"``).

    The agent name may carry the nuclide in any spelling; the match ignores case and
    punctuation. A diagnostic-only agent (``"F-18-FDG"``) returns its row with
    ``therapy_nuclide=None``.

    >>> [p.therapy_agent for p in theranostic_pair("68Ga-PSMA-11")]
    ['Lu-177-PSMA-617', 'Ac-225-PSMA-617']
    """
    pairs = theranostic_pairs()
    try:
        wanted = parse_agent(str(diagnostic)).name
    except NuclideError:
        wanted = str(diagnostic)
    hits = tuple(p for p in pairs if parse_agent(p.diagnostic_agent).name == wanted)
    if not hits:
        known = sorted({p.diagnostic_agent for p in pairs})
        raise NuclideError(
            f"no theranostic pair for diagnostic agent {diagnostic!r}; known agents: "
            f"{', '.join(known)}"
        )
    return hits
