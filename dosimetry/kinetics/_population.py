"""Population effective half-lives of therapy agents, with their literature source.

The table ``dosimetry/data/population_kinetics.csv`` holds, per (agent, organ), one or
more rows: the published effective half-life (hours, as reported), which statistic it is
(mean or median), its spread, the number of patients, how it was measured, the citation,
free-text notes (caveats, other sources) and a ``priority``. The row with priority 1 is
the default that :func:`population_effective_half_life_s` returns; rows with a larger
priority are published alternatives kept for comparison and listed by
:func:`population_table`. Only values that the cited source reports are listed; a
missing (agent, organ) pair is an error that tells the user to supply the half-life
explicitly.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import numpy as np

from ..errors import DosimetryError

__all__ = [
    "PopulationHalfLife",
    "population_effective_half_life_s",
    "population_biological_half_life_s",
    "population_table",
    "canonical_agent",
    "canonical_organ",
    "agent_reference_nuclide",
    "population_record",
]

#: nuclide whose physical decay is contained in each agent's tabulated effective half-life
#: is the nuclide of the agent's own name (the table lists agents as measured, e.g.
#: "Lu-177-PSMA-617"), read by :func:`dosimetry.nuclides.parse_agent`.


@dataclass(frozen=True)
class PopulationHalfLife:
    """One row of the population table (``priority`` 1 = the default for its organ)."""

    agent: str
    organ: str
    effective_half_life_s: float
    statistic: str
    spread: str
    n_patients: str
    method: str
    citation: str
    priority: int = 1
    notes: str = ""


_REQUIRED_COLUMNS = (
    "agent",
    "organ",
    "effective_half_life_h",
    "statistic",
    "spread_h",
    "n_patients",
    "method",
    "citation",
)


def _parse(text: str) -> list[PopulationHalfLife]:
    """Rows of a population-table CSV text, validated.

    Checks: the required columns exist; every half-life is finite and > 0; the statistic
    is ``mean`` or ``median``; the priority is an integer >= 1 (empty means 1); no
    (agent, organ, priority) appears twice; every (agent, organ) has a priority-1 row.
    """
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in _REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise DosimetryError(f"population_kinetics.csv lacks the column(s) {', '.join(missing)}")
    rows: list[PopulationHalfLife] = []
    seen: set[tuple[str, str, int]] = set()
    for row in reader:
        agent, organ = row["agent"].strip(), row["organ"].strip()
        try:
            value_h = float(row["effective_half_life_h"])
            priority = int((row.get("priority") or "1").strip() or "1")
        except ValueError as exc:
            raise DosimetryError(
                f"population_kinetics.csv: bad number for {(agent, organ)}: {exc}"
            ) from exc
        if not np.isfinite(value_h) or value_h <= 0:
            raise DosimetryError(
                f"population_kinetics.csv: bad half-life for {(agent, organ)}: {value_h}"
            )
        if priority < 1:
            raise DosimetryError(
                f"population_kinetics.csv: priority of {(agent, organ)} must be >= 1, got {priority}"
            )
        statistic = row["statistic"].strip()
        if statistic not in ("mean", "median"):
            raise DosimetryError(
                f"population_kinetics.csv: statistic of {(agent, organ)} must be 'mean' or "
                f"'median', got {statistic!r}"
            )
        key = (agent, organ, priority)
        if key in seen:
            raise DosimetryError(f"population_kinetics.csv lists {key} twice")
        seen.add(key)
        rows.append(
            PopulationHalfLife(
                agent=agent,
                organ=organ,
                effective_half_life_s=value_h * 3600.0,
                statistic=statistic,
                spread=row["spread_h"].strip(),
                n_patients=row["n_patients"].strip(),
                method=row["method"].strip(),
                citation=row["citation"].strip(),
                priority=priority,
                notes=(row.get("notes") or "").strip(),
            )
        )
    for agent, organ in {(r.agent, r.organ) for r in rows}:
        if (agent, organ, 1) not in seen:
            raise DosimetryError(
                f"population_kinetics.csv: {(agent, organ)} has no default (priority 1) row"
            )
    return sorted(rows, key=lambda r: (r.agent, r.organ, r.priority))


@lru_cache(maxsize=1)
def _all_rows() -> tuple[PopulationHalfLife, ...]:
    text = resources.files("dosimetry").joinpath("data/population_kinetics.csv").read_text("utf-8")
    return tuple(_parse(text))


def _load() -> dict[tuple[str, str], PopulationHalfLife]:
    """Default (priority 1) row per (agent, organ)."""
    return {(r.agent, r.organ): r for r in _all_rows() if r.priority == 1}


def population_table() -> list[PopulationHalfLife]:
    """All rows of the population table, sorted by agent, organ and priority.

    Rows with ``priority == 1`` are the defaults used by
    :func:`population_effective_half_life_s`; the others are published alternatives.

    >>> defaults = [r for r in population_table() if r.priority == 1]
    >>> len({(r.agent, r.organ) for r in defaults}) == len(defaults)
    True
    """
    return list(_all_rows())


def _squash(text: str) -> str:
    return re.sub(r"[\s\[\]\-_()/.,]+", "", text.lower())


def canonical_agent(agent: str) -> str:
    """Canonical agent name of the population table (``"Lu-177-PSMA-617"``, ...).

    The name is read by the one agent parser, :func:`dosimetry.nuclides.parse_agent`
    (a ligand alone, ``"PSMA-617"``, is accepted too); the table row is the one with the
    same ligand, so a ligand's kinetics serve every nuclide it is labelled with
    (``"[225Ac]Ac-PSMA-617"`` -> the PSMA-617 rows).

    >>> canonical_agent("[177Lu]Lu-PSMA-617")
    'Lu-177-PSMA-617'
    >>> canonical_agent("Lutathera")
    'Lu-177-DOTATATE'
    """
    from ..errors import NuclideError
    from ..nuclides import canonical_ligand, parse_agent

    try:
        ligand: str | None = parse_agent(str(agent)).ligand
    except NuclideError:
        ligand = canonical_ligand(str(agent))
    for canon in _table_agents():
        if parse_agent(canon).ligand == ligand:
            return canon
    raise DosimetryError(
        f"unknown agent {agent!r}; the population table knows: {', '.join(_table_agents())} "
        "(any nuclide spelling and ligand alias is accepted, e.g. '177Lu-PSMA-617', "
        "'[225Ac]Ac-PSMA-617', 'Lutathera'). For another agent, give the half-lives "
        "explicitly (--half-life VOI=40h on the command line; effective_half_life_s= or "
        "biological_half_life_s= in Python)."
    )


def _table_agents() -> tuple[str, ...]:
    """Agents that have rows in the population table, sorted."""
    return tuple(sorted({r.agent for r in _all_rows()}))


def canonical_organ(name: str) -> str | None:
    """Organ of a VOI name by the explicit alias table (:class:`dosimetry.voi.VoiMap`), or
    ``None`` when the table does not name it (no substring or fuzzy matching).

    >>> canonical_organ("Kidney_L"), canonical_organ("Parotid R"), canonical_organ("brain")
    ('kidneys', 'salivary_glands', None)
    >>> canonical_organ("not_a_lesion") is None
    True
    """
    from ..voi import VoiMap

    return VoiMap.default().organ(name)


def agent_reference_nuclide(agent: str) -> str:
    """The nuclide whose physical decay is inside the agent's tabulated effective half-lives."""
    from ..nuclides import parse_agent

    return parse_agent(canonical_agent(agent)).nuclide


def _row(agent: str, organ: str) -> PopulationHalfLife:
    canon_agent = canonical_agent(agent)
    canon_organ = canonical_organ(organ)
    table = _load()
    if canon_organ is None or (canon_agent, canon_organ) not in table:
        have = sorted(o for (a, o) in table if a == canon_agent)
        raise DosimetryError(
            f"no population effective half-life for agent {canon_agent!r}, organ {organ!r}"
            f"{'' if canon_organ is None else f' (read as {canon_organ!r})'}. The table has, "
            f"for this agent: {', '.join(have)}; agents: {', '.join(_table_agents())}. "
            "Give the value explicitly (effective_half_life_s= or biological_half_life_s=, a "
            "number or a dict per VOI)."
        )
    return table[(canon_agent, canon_organ)]


def population_record(agent: str, organ: str) -> PopulationHalfLife:
    """The default (priority 1) population row of ``agent`` in ``organ`` (statistic,
    spread, cohort size, method, citation), e.g. for its spread in an uncertainty budget."""
    return _row(agent, organ)


def population_effective_half_life_s(agent: str, organ: str) -> tuple[float, str]:
    """Published population effective half-life (s) of ``agent`` in ``organ`` and its citation.

    Parameters
    ----------
    agent
        ``"Lu-177-PSMA-617"`` or ``"Lu-177-DOTATATE"`` (common spellings accepted).
    organ
        ``"kidneys"``, ``"liver"``, ``"spleen"``, ``"salivary_glands"``, ``"bone_marrow"``,
        ``"tumour"``, ``"whole_body"``, ``"lungs"`` or a VOI name containing one of their
        aliases (``"kidney_left"``, ``"parotid"``, ``"lesion_2"``).

    Returns
    -------
    (float, str)
        Effective half-life in seconds (for the agent's own nuclide, ¹⁷⁷Lu) of the default
        (priority 1) row, and a citation string that also names the statistic (mean/median),
        cohort size, method and the row's notes (caveats, alternative published values).

    Raises
    ------
    DosimetryError
        Unknown agent, or no published value in the table for this organ; the message
        lists what the table has.

    Examples
    --------
    >>> value_s, cite = population_effective_half_life_s("177Lu-PSMA-617", "whole body")
    >>> round(value_s / 3600, 1), cite.startswith("Kurth J")
    (40.5, True)
    """
    row = _row(agent, organ)
    cite = f"{row.citation} [{row.statistic}, {row.spread} h, n={row.n_patients}; {row.method}]"
    if row.notes:
        cite = f"{cite} (note: {row.notes})"
    return row.effective_half_life_s, cite


def population_biological_half_life_s(agent: str, organ: str) -> tuple[float, str]:
    """Biological half-life (s) implied by the population effective half-life.

    ``1/T_bio = 1/T_eff - 1/T_phys`` with ``T_phys`` the physical half-life of the agent's
    nuclide (¹⁷⁷Lu, from :func:`dosimetry.nuclide`). The result is what transfers to the
    same ligand labelled with another nuclide (e.g. ²²⁵Ac-PSMA-617), under the assumption
    that the label does not change the pharmacokinetics.

    Raises
    ------
    DosimetryError
        When the tabulated effective half-life is not shorter than the physical half-life
        (no biological clearance can be derived).
    """
    from ..nuclides import nuclide

    t_eff, cite = population_effective_half_life_s(agent, organ)
    t_phys = nuclide(agent_reference_nuclide(agent)).half_life_s
    if t_eff >= t_phys:
        raise DosimetryError(
            f"population effective half-life {t_eff / 3600:.1f} h of {agent} in {organ} is not "
            f"shorter than the physical half-life {t_phys / 3600:.1f} h: no biological "
            "half-life follows. Give biological_half_life_s explicitly."
        )
    t_bio = 1.0 / (1.0 / t_eff - 1.0 / t_phys)
    return t_bio, f"{cite}; converted to biological with T_phys({agent_reference_nuclide(agent)})"
