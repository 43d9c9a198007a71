"""Diagnostic -> therapy uptake relations per organ, and measured therapy doses.

A PET-based therapy prediction needs, for each organ, how the therapy agent's uptake
relates to the diagnostic agent's: PSMA-11 and PSMA-617 (and PSMA-1007 with its
hepatobiliary clearance, or DCFPyL) do not share organ uptake fractions, and uptake at
1 h p.i. is not the therapy agent's plateau. ``dosimetry/data/agent_uptake_relations.csv``
holds one row per theranostic pair (``dosimetry/data/theranostic_pairs.csv``) and organ:

``ratio``
    therapy-agent concentration per administered activity at its early plateau divided
    by the diagnostic agent's concentration per injected activity at the PET time (the
    decay-corrected, biological fraction). In a voxel or VOI:
    ``f_therapy(plateau) = ratio * f_diagnostic(t_PET)``. A row may instead give a
    regression (``relation = "regression"``: ``f_T = slope * f_D + intercept``).
``rel_sd``, ``ratio_low``, ``ratio_high``
    its relative standard deviation and a 95 % range (``ratio * exp(-+2 rel_sd)``).
``evidence``
    ``"paired"`` (per-patient paired data), ``"paired_cohort"`` (both agents measured in
    the same cohort, ratio of cohort means), ``"unpaired"`` (ratio of population means of
    separate cohorts, spread widened), ``"via_other_tracer"`` (taken from another
    diagnostic agent's relation, spread widened) or ``"no_data"`` (ratio 1 with a
    relative SD of 100 %, said so in the row -- never a silent 1.0).

Unpaired rows are derived from a measured mean absorbed dose per activity ``D/A`` of the
therapy agent, its population effective half-life ``T_eff`` (the priority-1 row of
``population_kinetics.csv``) and a published diagnostic SUV::

    ratio = (D/A) rho ln2 W / (E_np T_eff SUV)

with ``rho`` the tissue density, ``W`` = 80 kg the body weight of the SUV normalisation
and ``E_np`` the Lu-177 non-penetrating energy per decay (ICRP-107, 0.147923 MeV). The
inputs are columns of the row; ``tools/build_literature_tables.py`` writes both tables.

``dosimetry/data/literature_doses.csv`` lists the measured therapy doses (Gy/GBq) the
relations use, with cohort size, statistic, method and citation
(``docs/literature_doses.md``): :func:`literature_doses`, :func:`literature_dose_range`.

Organ vocabulary (:data:`RELATION_ORGANS`): kidneys, parotid_glands,
submandibular_glands, salivary_glands, lacrimal_glands, liver, spleen, red_marrow,
bowel, tumour, tumour_bone, tumour_lymph_node, tumour_soft_tissue. VOI names are read
with :func:`relation_organ` (``"parotid_left"`` -> ``"parotid_glands"``,
``"red_marrow"`` -> ``"red_marrow"``, ``"lesion_2"`` -> ``"tumour"``).
"""

from __future__ import annotations

import csv
import importlib
import io
import math
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from ..errors import DosimetryError, InputDataError
from ._population import canonical_organ

__all__ = [
    "UptakeRelation",
    "LiteratureDose",
    "RELATION_ORGANS",
    "uptake_relation",
    "uptake_relations",
    "uptake_relation_table",
    "relation_organ",
    "literature_doses",
    "literature_dose_range",
]

#: Organs of the relation table (one row per theranostic pair and organ).
RELATION_ORGANS: tuple[str, ...] = (
    "kidneys",
    "parotid_glands",
    "submandibular_glands",
    "salivary_glands",
    "lacrimal_glands",
    "liver",
    "spleen",
    "red_marrow",
    "bowel",
    "tumour",
    "tumour_bone",
    "tumour_lymph_node",
    "tumour_soft_tissue",
)

EVIDENCE = ("paired", "paired_cohort", "unpaired", "via_other_tracer", "no_data")

_TUMOUR_WORDS = {"tumour", "tumor", "tumours", "tumors", "lesion", "lesions", "gtv"}
_TUMOUR_WORDS |= {"metastasis", "metastases", "met", "mets"}
_TUMOUR_CLASS_WORDS: tuple[tuple[str, frozenset[str]], ...] = (
    ("tumour_bone", frozenset({"bone", "osseous", "skeletal", "vertebra", "vertebral"})),
    ("tumour_lymph_node", frozenset({"node", "nodes", "nodal", "lymph", "ln"})),
    ("tumour_soft_tissue", frozenset({"soft", "visceral", "liver", "hepatic", "lung"})),
)
_ORGAN_WORDS: tuple[tuple[str, frozenset[str]], ...] = (
    ("parotid_glands", frozenset({"parotid", "parotids"})),
    ("submandibular_glands", frozenset({"submandibular", "submandibulars"})),
    ("salivary_glands", frozenset({"salivary", "sublingual"})),
    ("lacrimal_glands", frozenset({"lacrimal", "lacrimals"})),
    ("red_marrow", frozenset({"marrow", "redmarrow", "bonemarrow"})),
    ("bowel", frozenset({"bowel", "intestine", "intestines", "duodenum", "jejunum"})),
    ("bowel", frozenset({"ileum", "colon"})),
)
#: canonical organ of the population table -> relation organ
_FROM_POPULATION = {
    "kidneys": "kidneys",
    "liver": "liver",
    "spleen": "spleen",
    "salivary_glands": "salivary_glands",
    "lacrimal_glands": "lacrimal_glands",
    "bone_marrow": "red_marrow",
    "bowel": "bowel",
    "tumour": "tumour",
}


@dataclass(frozen=True)
class UptakeRelation:
    """How a therapy agent's uptake in an organ relates to a diagnostic agent's.

    Attributes
    ----------
    diagnostic_agent, therapy_agent
        Canonical names, e.g. ``"Ga-68-PSMA-11"`` and ``"Lu-177-PSMA-617"``.
    organ
        Relation organ (:data:`RELATION_ORGANS`).
    ratio
        Therapy fraction of administered activity at its early plateau over the
        diagnostic fraction (decay-corrected) at the PET time, per unit volume
        (dimensionless). For a regression row, the slope.
    slope, intercept
        ``f_T = slope * f_D + intercept`` for a regression row (fractions); ``None`` for a
        ratio row.
    rel_sd
        Relative standard deviation of ``ratio`` (> 0).
    ratio_low, ratio_high
        A 95 % range of ``ratio``.
    n_patients
        Patients behind the row (``None`` for no-data rows).
    paired
        Whether both agents were measured in the same patients (or cohort).
    evidence
        ``"paired"``, ``"paired_cohort"``, ``"unpaired"``, ``"via_other_tracer"`` or
        ``"no_data"``.
    diagnostic_imaging, therapy_imaging, method
        How each side was measured and how the relation was obtained.
    citation
        Sources (``" | "``-separated), or the statement that none was found.
    note
        Caveats, the inputs of a derived ratio, what is missing.
    therapy_dose_gy_per_gbq, therapy_t_eff_h, diagnostic_suv
        Inputs of a derived ratio (``None`` where not applicable).
    """

    diagnostic_agent: str
    therapy_agent: str
    organ: str
    ratio: float
    slope: float | None
    intercept: float | None
    rel_sd: float
    ratio_low: float
    ratio_high: float
    n_patients: int | None
    paired: bool
    evidence: str
    diagnostic_imaging: str
    therapy_imaging: str
    method: str
    citation: str
    note: str
    therapy_dose_gy_per_gbq: float | None = None
    therapy_t_eff_h: float | None = None
    diagnostic_suv: float | None = None

    @property
    def has_data(self) -> bool:
        """``False`` for an explicit no-data row."""
        return self.evidence != "no_data"

    @property
    def spread(self) -> float:
        """Relative standard deviation of the relation (alias of :attr:`rel_sd`)."""
        return self.rel_sd

    def therapy_fraction(self, diagnostic_fraction: float) -> float:
        """Therapy plateau fraction for a diagnostic fraction (same volume).

        >>> r = UptakeRelation("a", "b", "kidneys", 0.5, None, None, 0.3, 0.3, 0.9, 7,
        ...     False, "unpaired", "", "", "", "", "")
        >>> r.therapy_fraction(0.1)
        0.05
        """
        if self.slope is not None:
            return self.slope * diagnostic_fraction + (self.intercept or 0.0)
        return self.ratio * diagnostic_fraction

    def summary(self) -> str:
        """One line for a report's assumption table."""
        kind = {
            "paired": "paired patients",
            "paired_cohort": "same cohort, ratio of means",
            "unpaired": "unpaired: ratio of population means",
            "via_other_tracer": "via another tracer's relation",
            "no_data": "NO DATA: ratio 1 assumed",
        }[self.evidence]
        return (
            f"{self.organ}: {self.therapy_agent}/{self.diagnostic_agent} uptake ratio "
            f"{self.ratio:.3g} (relative SD {self.rel_sd:.0%}, 95 % range "
            f"{self.ratio_low:.3g}-{self.ratio_high:.3g}; {kind}"
            + (f", n={self.n_patients}" if self.n_patients else "")
            + ")"
        )


@dataclass(frozen=True)
class LiteratureDose:
    """One published absorbed dose per administered activity (a cohort statistic).

    ``value_gy_per_gbq`` is the cohort ``statistic`` (``"mean"`` or ``"median"``);
    ``sd`` its standard deviation and ``low``/``high`` its reported range, when given.
    ``independent_cohort`` is ``False`` for rows that repeat a cohort of another row or
    describe a special population; ranges use independent cohorts only by default.
    """

    agent: str
    organ: str
    statistic: str
    value_gy_per_gbq: float
    sd: float | None
    low: float | None
    high: float | None
    n_patients: int
    method: str
    citation: str
    independent_cohort: bool
    note: str


# --- parsing ----------------------------------------------------------------------------
_REL_COLUMNS = (
    "diagnostic_agent",
    "therapy_agent",
    "organ",
    "evidence",
    "relation",
    "ratio",
    "slope",
    "intercept",
    "rel_sd",
    "ratio_low",
    "ratio_high",
    "n_patients",
    "paired",
    "diagnostic_imaging",
    "therapy_imaging",
    "method",
    "citation",
    "note",
)


def _num(row: dict[str, str], key: str, where: str) -> float | None:
    text = (row.get(key) or "").strip()
    if not text:
        return None
    try:
        v = float(text)
    except ValueError as exc:
        raise DosimetryError(f"{where}: column {key!r} is not a number: {text!r}") from exc
    if not math.isfinite(v):
        raise DosimetryError(f"{where}: column {key!r} must be finite, got {text!r}")
    return v


def _yes(text: str, where: str) -> bool:
    t = text.strip().lower()
    if t not in ("yes", "no"):
        raise DosimetryError(f"{where}: expected 'yes' or 'no', got {text!r}")
    return t == "yes"


def _parse_relations(text: str) -> list[UptakeRelation]:
    """Rows of an agent_uptake_relations.csv text, validated.

    Checks: required columns; organ in :data:`RELATION_ORGANS`; evidence known; ratio (or
    slope) finite and > 0; 0 < rel_sd; ratio_low <= ratio <= ratio_high; a non-empty
    citation and method; no (diagnostic, therapy, organ) twice; a no-data row has ratio 1.
    """
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in _REL_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise DosimetryError(f"agent_uptake_relations.csv lacks the column(s) {missing}")
    out: list[UptakeRelation] = []
    seen: set[tuple[str, str, str]] = set()
    for i, row in enumerate(reader, start=2):
        key = (row["diagnostic_agent"].strip(), row["therapy_agent"].strip(), row["organ"])
        where = f"agent_uptake_relations.csv line {i} {key}"
        if key[2] not in RELATION_ORGANS:
            raise DosimetryError(f"{where}: organ must be one of {RELATION_ORGANS}")
        evidence = row["evidence"].strip()
        if evidence not in EVIDENCE:
            raise DosimetryError(f"{where}: evidence must be one of {EVIDENCE}, got {evidence!r}")
        relation = row["relation"].strip()
        ratio = _num(row, "ratio", where)
        slope = _num(row, "slope", where)
        intercept = _num(row, "intercept", where)
        if relation == "regression":
            if slope is None or slope <= 0:
                raise DosimetryError(f"{where}: a regression row needs a slope > 0")
            ratio = slope
        elif relation != "ratio" or ratio is None or ratio <= 0 or slope is not None:
            raise DosimetryError(
                f"{where}: relation must be 'ratio' with a ratio > 0 (and no slope) or "
                f"'regression' with a slope, got relation={relation!r}, ratio={ratio!r}"
            )
        rel_sd = _num(row, "rel_sd", where)
        lo, hi = _num(row, "ratio_low", where), _num(row, "ratio_high", where)
        if rel_sd is None or rel_sd <= 0 or lo is None or hi is None or not lo <= ratio <= hi:
            raise DosimetryError(
                f"{where}: needs rel_sd > 0 and ratio_low <= ratio <= ratio_high, got "
                f"rel_sd={rel_sd}, range=({lo}, {hi}), ratio={ratio}"
            )
        if evidence == "no_data" and ratio != 1.0:
            raise DosimetryError(f"{where}: a no-data row states ratio 1, got {ratio}")
        citation, method = row["citation"].strip(), row["method"].strip()
        if not citation or not method:
            raise DosimetryError(f"{where}: citation and method must not be empty")
        if key in seen:
            raise DosimetryError(f"{where}: the pair and organ appear twice")
        seen.add(key)
        n = _num(row, "n_patients", where)
        out.append(
            UptakeRelation(
                diagnostic_agent=key[0],
                therapy_agent=key[1],
                organ=key[2],
                ratio=float(ratio),
                slope=slope,
                intercept=intercept,
                rel_sd=rel_sd,
                ratio_low=lo,
                ratio_high=hi,
                n_patients=None if n is None else int(n),
                paired=_yes(row["paired"], where),
                evidence=evidence,
                diagnostic_imaging=row["diagnostic_imaging"].strip(),
                therapy_imaging=row["therapy_imaging"].strip(),
                method=method,
                citation=citation,
                note=row["note"].strip(),
                therapy_dose_gy_per_gbq=_num(row, "therapy_dose_gy_per_gbq", where),
                therapy_t_eff_h=_num(row, "therapy_t_eff_h", where),
                diagnostic_suv=_num(row, "diagnostic_suv", where),
            )
        )
    return out


_DOSE_COLUMNS = (
    "agent",
    "organ",
    "statistic",
    "value",
    "sd",
    "low",
    "high",
    "n",
    "method",
    "citation",
    "independent_cohort",
    "note",
)


def _parse_doses(text: str) -> list[LiteratureDose]:
    """Rows of a literature_doses.csv text, validated (values > 0, statistic, citation)."""
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in _DOSE_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise DosimetryError(f"literature_doses.csv lacks the column(s) {missing}")
    out = []
    for i, row in enumerate(reader, start=2):
        where = f"literature_doses.csv line {i} ({row['agent']}, {row['organ']})"
        value = _num(row, "value", where)
        n = _num(row, "n", where)
        if value is None or value <= 0 or n is None or n < 1:
            raise DosimetryError(f"{where}: needs a value > 0 and n >= 1")
        if row["statistic"] not in ("mean", "median"):
            raise DosimetryError(f"{where}: statistic must be 'mean' or 'median'")
        if not row["citation"].strip() or not row["method"].strip():
            raise DosimetryError(f"{where}: citation and method must not be empty")
        out.append(
            LiteratureDose(
                agent=row["agent"].strip(),
                organ=row["organ"].strip(),
                statistic=row["statistic"],
                value_gy_per_gbq=value,
                sd=_num(row, "sd", where),
                low=_num(row, "low", where),
                high=_num(row, "high", where),
                n_patients=int(n),
                method=row["method"].strip(),
                citation=row["citation"].strip(),
                independent_cohort=_yes(row["independent_cohort"], where),
                note=row["note"].strip(),
            )
        )
    return out


def _read(name: str) -> str:
    return resources.files("dosimetry").joinpath(f"data/{name}").read_text("utf-8")


@lru_cache(maxsize=1)
def _relations() -> tuple[UptakeRelation, ...]:
    return tuple(_parse_relations(_read("agent_uptake_relations.csv")))


@lru_cache(maxsize=1)
def _doses() -> tuple[LiteratureDose, ...]:
    return tuple(_parse_doses(_read("literature_doses.csv")))


# --- names --------------------------------------------------------------------------------
def _squash(text: str) -> str:
    return re.sub(r"[^a-z0-9&]", "", str(text).lower())


def _agent(name: str, known: set[str]) -> str | None:
    """Canonical agent of the tables for ``name`` (any spelling), or ``None``."""
    if name in known:
        return name
    parse = getattr(importlib.import_module("dosimetry.nuclides"), "parse_agent", None)
    if parse is not None:
        try:
            canon = str(parse(name).name)
        except DosimetryError:
            canon = ""
        if canon in known:
            return canon
    key = _squash(name)
    for k in known:
        if _squash(k) == key:
            return k
    # "177Lu-PSMA-617" / "[177Lu]Lu-PSMA-617": mass number before the element symbol
    m = re.match(r"^\[?(\d{1,3})([a-z]{1,2})\]?(?:\2)?(.*)$", key)
    if m:
        key2 = f"{m.group(2)}{m.group(1)}{m.group(3)}"
        for k in known:
            if _squash(k) == key2:
                return k
    return None


def relation_organ(name: str) -> str | None:
    """Relation organ (:data:`RELATION_ORGANS`) of a VOI name, or ``None``.

    Lesion names map to a tumour class when the name says which (``"lesion_bone"`` ->
    ``"tumour_bone"``, ``"lymph_node_3"`` -> ``"tumour_lymph_node"``,
    ``"lesion_liver"`` -> ``"tumour_soft_tissue"``), else to ``"tumour"``. Other names
    are matched by their words (parotid, submandibular, lacrimal, marrow, bowel ...),
    then by :func:`dosimetry.kinetics.canonical_organ`.

    >>> relation_organ("Parotid_L"), relation_organ("submandibular_right")
    ('parotid_glands', 'submandibular_glands')
    >>> relation_organ("lacrimal_left"), relation_organ("red_marrow"), relation_organ("lesion_2")
    ('lacrimal_glands', 'red_marrow', 'tumour')
    >>> relation_organ("kidney_left"), relation_organ("bone lesion"), relation_organ("brain")
    ('kidneys', 'tumour_bone', None)
    """
    text = str(name).strip()
    if text in RELATION_ORGANS:
        return text
    words = {w for w in re.split(r"[^a-z]+", text.lower()) if w}
    canon = canonical_organ(text)
    if words & _TUMOUR_WORDS or canon == "tumour":
        for organ, cls in _TUMOUR_CLASS_WORDS:
            if words & cls:
                return organ
        return "tumour"
    for organ, w in _ORGAN_WORDS:
        if words & w:
            return organ
    return _FROM_POPULATION.get(canon) if canon is not None else None


# --- public API ------------------------------------------------------------------------
def uptake_relation_table() -> list[UptakeRelation]:
    """All rows of ``dosimetry/data/agent_uptake_relations.csv``."""
    return list(_relations())


def _pair_rows(diagnostic_agent: str, therapy_agent: str) -> dict[str, UptakeRelation]:
    rows = _relations()
    diags = {r.diagnostic_agent for r in rows}
    thers = {r.therapy_agent for r in rows}
    d = _agent(diagnostic_agent, diags)
    t = _agent(therapy_agent, thers)
    pairs = sorted({(r.diagnostic_agent, r.therapy_agent) for r in rows})
    found = {r.organ: r for r in rows if (r.diagnostic_agent, r.therapy_agent) == (d, t)}
    if not found:
        raise InputDataError(
            f"no uptake relations for diagnostic_agent={diagnostic_agent!r} (read as {d!r}) "
            f"and therapy_agent={therapy_agent!r} (read as {t!r}); the table has the pairs "
            f"{', '.join(f'{a} -> {b}' for a, b in pairs)}. Add rows to "
            "dosimetry/data/agent_uptake_relations.csv for another pair."
        )
    return found


def uptake_relations(diagnostic_agent: str, therapy_agent: str) -> dict[str, UptakeRelation]:
    """Relation organ -> :class:`UptakeRelation` for one theranostic pair.

    Every organ of :data:`RELATION_ORGANS` is present (no-data rows included).

    >>> rel = uptake_relations("68Ga-PSMA-11", "177Lu-PSMA-617")
    >>> sorted(rel) == sorted(RELATION_ORGANS)
    True
    >>> rel["spleen"].evidence, rel["kidneys"].evidence
    ('no_data', 'unpaired')
    """
    return dict(_pair_rows(diagnostic_agent, therapy_agent))


def uptake_relation(
    diagnostic_agent: str, therapy_agent: str, organ: str, *, missing: str = "raise"
) -> UptakeRelation:
    """The uptake relation of one organ (or VOI name) for a diagnostic -> therapy pair.

    Parameters
    ----------
    diagnostic_agent, therapy_agent
        Agent names in any common spelling (``"68Ga-PSMA-11"``, ``"[177Lu]Lu-PSMA-617"``,
        ``"Pluvicto"``).
    organ
        A relation organ or a VOI name read by :func:`relation_organ`
        (``"parotid_left"``, ``"kidney_right"``, ``"lesion_1"``, ``"tumour_bone"``).
    missing
        What to do when ``organ`` names no organ of the table (e.g. ``"lungs"``):
        ``"raise"`` (default) or ``"no_data"`` (return an explicit no-data relation:
        ratio 1, relative SD 100 %, evidence ``"no_data"``, the reason in ``note``).

    Returns
    -------
    UptakeRelation

    Raises
    ------
    InputDataError
        Unknown pair; an organ outside the vocabulary with ``missing="raise"``.

    Examples
    --------
    >>> r = uptake_relation("Ga-68-PSMA-11", "Lu-177-PSMA-617", "kidney_left")
    >>> r.organ, r.evidence, r.paired, 0.1 < r.ratio < 1.0
    ('kidneys', 'unpaired', False, True)
    >>> uptake_relation("Ga-68-PSMA-11", "Lu-177-PSMA-617", "lungs", missing="no_data").ratio
    1.0
    """
    if missing not in ("raise", "no_data"):
        raise InputDataError(f"missing must be 'raise' or 'no_data', got {missing!r}")
    rows = _pair_rows(diagnostic_agent, therapy_agent)
    key = relation_organ(organ)
    if key is not None and key in rows:
        return rows[key]
    any_row = next(iter(rows.values()))
    if missing == "no_data":
        return UptakeRelation(
            diagnostic_agent=any_row.diagnostic_agent,
            therapy_agent=any_row.therapy_agent,
            organ=str(organ),
            ratio=1.0,
            slope=None,
            intercept=None,
            rel_sd=1.0,
            ratio_low=math.exp(-2.0),
            ratio_high=math.exp(2.0),
            n_patients=None,
            paired=False,
            evidence="no_data",
            diagnostic_imaging="",
            therapy_imaging="",
            method="none: organ not in the relation table; ratio 1 with relative SD 1.0",
            citation="no source: the organ is not in dosimetry/data/agent_uptake_relations.csv",
            note=f"{organ!r} names no organ of the relation table ({', '.join(RELATION_ORGANS)})",
        )
    raise InputDataError(
        f"organ={organ!r} names no organ of the uptake-relation table (read as {key!r}); "
        f"known: {', '.join(RELATION_ORGANS)}. Name the VOI after one of them (e.g. "
        "'parotid_left', 'lesion_bone') or pass missing='no_data' for an explicit no-data "
        "relation."
    )


_DOSE_GROUPS: dict[str, tuple[str, ...]] = {
    "salivary_glands": ("parotid_glands", "submandibular_glands", "salivary_glands"),
    "parotid_glands": ("parotid_glands", "salivary_glands"),
    "submandibular_glands": ("submandibular_glands", "salivary_glands"),
    "tumour": ("tumour", "tumour_bone", "tumour_lymph_node", "tumour_soft_tissue"),
}


def literature_doses(agent: str | None = None, organ: str | None = None) -> list[LiteratureDose]:
    """Rows of ``dosimetry/data/literature_doses.csv`` (optionally one agent / organ).

    ``organ`` matches exactly (``"kidneys"``, ``"parotid_glands"``, ``"red_marrow"``, ...).

    >>> rows = literature_doses("Lu-177-PSMA-617", "kidneys")
    >>> len({r.citation for r in rows if r.independent_cohort}) >= 3
    True
    """
    rows = _doses()
    if agent is not None:
        known = {r.agent for r in rows}
        canon = _agent(agent, known)
        if canon is None:
            raise InputDataError(
                f"agent={agent!r} is not in literature_doses.csv; known: {', '.join(sorted(known))}"
            )
        rows = tuple(r for r in rows if r.agent == canon)
    if organ is not None:
        rows = tuple(r for r in rows if r.organ == organ)
    return list(rows)


def literature_dose_range(
    agent: str,
    organ: str,
    *,
    kind: str = "cohorts",
    independent_only: bool = True,
) -> tuple[float, float, int]:
    """Range of published absorbed doses per activity (Gy/GBq) of an agent in an organ.

    Parameters
    ----------
    agent
        Therapy agent (``"Lu-177-PSMA-617"``, ``"Lu-177-DOTATATE"``; any spelling).
    organ
        Organ of the dose table. ``"salivary_glands"`` gathers parotid, submandibular and
        combined salivary rows; ``"parotid_glands"`` and ``"submandibular_glands"`` add
        the combined salivary rows; ``"tumour"`` gathers all tumour classes.
    kind
        ``"cohorts"``: from the smallest to the largest cohort mean/median (the spread
        between cohorts); ``"patients"``: the envelope of the cohorts' reported ranges, or
        mean -+ SD where no range is given (the spread between patients).
    independent_only
        Use only rows marked as independent cohorts.

    Returns
    -------
    (low, high, n_cohorts)
        Gy/GBq, and how many cohort rows contributed.

    Raises
    ------
    InputDataError
        When the table has no row for the agent and organ.

    Examples
    --------
    >>> lo, hi, n = literature_dose_range("177Lu-PSMA-617", "kidneys")
    >>> (lo, hi, n)
    (0.49, 0.82, 5)
    """
    if kind not in ("cohorts", "patients"):
        raise InputDataError(f"kind must be 'cohorts' or 'patients', got {kind!r}")
    organs = _DOSE_GROUPS.get(organ, (organ,))
    rows = [
        r
        for o in organs
        for r in literature_doses(agent, o)
        if r.independent_cohort or not independent_only
    ]
    if not rows:
        raise InputDataError(
            f"no published dose of {agent!r} in organ={organ!r} in literature_doses.csv "
            "(see docs/literature_doses.md for what was found)"
        )
    if kind == "cohorts":
        vals = [r.value_gy_per_gbq for r in rows]
        return _clean(min(vals)), _clean(max(vals)), len(rows)
    lows, highs = [], []
    for r in rows:
        if r.low is not None and r.high is not None:
            lows.append(r.low)
            highs.append(r.high)
        elif r.sd is not None:
            lows.append(max(r.value_gy_per_gbq - r.sd, 0.0))
            highs.append(r.value_gy_per_gbq + r.sd)
        else:
            lows.append(r.value_gy_per_gbq)
            highs.append(r.value_gy_per_gbq)
    return _clean(min(lows)), _clean(max(highs)), len(rows)


def _clean(x: float) -> float:
    """``x`` rounded to 12 significant digits (0.026 - 0.017 -> 0.009, not 0.00900...1)."""
    return float(f"{x:.12g}")
