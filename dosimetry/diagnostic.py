"""Dose to the patient from a diagnostic PET radiopharmaceutical.

Two estimates:

* :func:`diagnostic_organ_doses`: reference-person organ absorbed doses and effective dose
  from tabulated dose coefficients (mGy/MBq, mSv/MBq) times the injected activity:
  ¹⁸F-FDG from ICRP Publication 106/128 (``dosimetry/data/icrp128_fdg.csv``; only the rows
  whose values could be sourced, with paediatric rows derived from a published table and
  marked so), and study values for ⁶⁸Ga-PSMA-11 and ⁶⁸Ga-DOTATATE
  (``dosimetry/data/diagnostic_dose_coefficients.csv``). No coefficients could be
  sourced for ¹⁸F-PSMA-1007 or ¹⁸F-DCFPyL: these raise an error that says so. The
  effective dose is a reference-person quantity (ICRP), not this patient's risk.
* :func:`pet_voxel_tia`: the time-integrated activity per voxel from the PET itself, counting
  the decays during the uptake period (before the scan) and after it, under a stated model.

Age groups (ICRP): 1 y, 5 y, 10 y, 15 y, adult. Rule: the *nearest lower* ICRP age group
(age 7 -> 5 y; 17 -> 15 y; >= 18 -> adult); below 1 year no row exists and an error is
raised; no age given -> adult.
"""

from __future__ import annotations

import csv
import io
import logging
import math
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from importlib import resources
from typing import Literal

import numpy as np

from .errors import InputDataError, UnitError
from .nuclides import nuclide as _nuclide
from .volume import Volume

_log = logging.getLogger(__name__)

__all__ = [
    "DoseCoefficient",
    "DiagnosticDose",
    "OrganDoseRow",
    "dose_coefficients",
    "diagnostic_organ_doses",
    "icrp_age_group",
    "pet_voxel_tia",
    "DIAGNOSTIC_AGENTS",
    "EFFECTIVE_DOSE_LABEL",
]

EFFECTIVE_DOSE_LABEL = (
    "effective dose: a reference-person quantity for radiation protection (ICRP), computed "
    "with reference biokinetics and phantoms; not an estimate of this patient's individual risk"
)

#: canonical agent -> normalised spellings accepted
DIAGNOSTIC_AGENTS: dict[str, tuple[str, ...]] = {
    "F-18-FDG": (
        "f18fdg",
        "18ffdg",
        "fdg",
        "fludeoxyglucose",
        "fluorodeoxyglucose",
        "18ffludeoxyglucose",
    ),
    "Ga-68-PSMA-11": ("ga68psma11", "68gapsma11", "68gagapsma11", "psma11", "gozetotide"),
    "Ga-68-DOTATATE": ("ga68dotatate", "68gadotatate", "68gagadotatate", "dotatate68ga", "netspot"),
    "F-18-PSMA-1007": ("f18psma1007", "18fpsma1007", "psma1007"),
    "F-18-DCFPyL": ("f18dcfpyl", "18fdcfpyl", "dcfpyl", "piflufolastat"),
}
_AGENT_NUCLIDE = {
    "F-18-FDG": "F-18",
    "Ga-68-PSMA-11": "Ga-68",
    "Ga-68-DOTATATE": "Ga-68",
    "F-18-PSMA-1007": "F-18",
    "F-18-DCFPyL": "F-18",
}
_AGE_GROUPS: tuple[tuple[float, str], ...] = (
    (18.0, "adult"),
    (15.0, "15y"),
    (10.0, "10y"),
    (5.0, "5y"),
    (1.0, "1y"),
)


@dataclass(frozen=True)
class DoseCoefficient:
    """One tabulated coefficient: organ absorbed dose (mGy/MBq) or effective dose (mSv/MBq)."""

    agent: str
    age_group: str
    quantity: str
    value: float
    unit: str
    derivation: str
    citation: str
    notes: str = ""


@dataclass(frozen=True)
class OrganDoseRow:
    """A coefficient applied to the injected activity."""

    quantity: str
    coefficient: float
    coefficient_unit: str
    dose: float
    dose_unit: str
    derivation: str
    citation: str
    notes: str = ""


@dataclass(frozen=True)
class DiagnosticDose:
    """Organ absorbed doses and effective dose of a diagnostic administration."""

    agent: str
    injected_activity_bq: float
    age_years: float | None
    age_group: str
    age_rule: str
    rows: tuple[OrganDoseRow, ...]
    effective_dose_label: str = EFFECTIVE_DOSE_LABEL

    @property
    def effective_dose_msv(self) -> float | None:
        """Effective dose (mSv) of the reference person, if tabulated."""
        for r in self.rows:
            if r.quantity == "effective_dose":
                return r.dose
        return None

    def organ_doses_mgy(self) -> dict[str, float]:
        """Organ -> absorbed dose (mGy)."""
        return {r.quantity: r.dose for r in self.rows if r.quantity != "effective_dose"}


def canonical_agent(agent: str) -> str:
    """Canonical diagnostic agent name (``"F-18-FDG"``, ``"Ga-68-PSMA-11"``, ...), read by
    the one agent parser :func:`dosimetry.nuclides.parse_agent` (a ligand alone, such as
    ``"FDG"``, takes the nuclide of the table's agent with that ligand).

    >>> canonical_agent("[18F]FDG"), canonical_agent("gozetotide")
    ('F-18-FDG', 'Ga-68-PSMA-11')
    """
    from .errors import NuclideError
    from .nuclides import canonical_ligand, parse_agent

    ligand: str | None
    try:
        parsed = parse_agent(str(agent))
        name, ligand = parsed.name, parsed.ligand
    except NuclideError:
        name, ligand = "", canonical_ligand(str(agent))
    for canon in DIAGNOSTIC_AGENTS:
        if canon == name or (not name and ligand and parse_agent(canon).ligand == ligand):
            return canon
    raise InputDataError(
        f"unknown diagnostic agent {agent!r}; known: {', '.join(DIAGNOSTIC_AGENTS)}"
    )


def _parse(text: str, source: str) -> list[DoseCoefficient]:
    out = []
    for i, row in enumerate(csv.DictReader(io.StringIO(text)), start=2):
        try:
            value = float(row["value"])
        except ValueError as exc:
            raise InputDataError(f"{source} line {i}: value {row['value']!r}") from exc
        if not (value > 0 and math.isfinite(value)):
            raise InputDataError(f"{source} line {i}: value must be > 0")
        unit = row["unit"].strip()
        quantity = row["quantity"].strip()
        if (quantity == "effective_dose") != (unit == "mSv/MBq") or unit not in (
            "mSv/MBq",
            "mGy/MBq",
        ):
            raise InputDataError(
                f"{source} line {i}: effective_dose must be in mSv/MBq, organs in mGy/MBq; got "
                f"{quantity} in {unit}"
            )
        out.append(
            DoseCoefficient(
                agent=row["agent"].strip(),
                age_group=row["age_group"].strip(),
                quantity=quantity,
                value=value,
                unit=unit,
                derivation=row["derivation"].strip(),
                citation=row["citation"].strip(),
                notes=(row.get("notes") or "").strip(),
            )
        )
    return out


@lru_cache(maxsize=1)
def _all() -> tuple[DoseCoefficient, ...]:
    rows: list[DoseCoefficient] = []
    for name in ("icrp128_fdg.csv", "diagnostic_dose_coefficients.csv"):
        text = resources.files("dosimetry").joinpath(f"data/{name}").read_text("utf-8")
        rows.extend(_parse(text, name))
    return tuple(rows)


def dose_coefficients(agent: str | None = None) -> list[DoseCoefficient]:
    """All tabulated coefficients (of one agent if given)."""
    if agent is None:
        return list(_all())
    canon = canonical_agent(agent)
    return [r for r in _all() if r.agent == canon]


def icrp_age_group(age_years: float | None) -> tuple[str, str]:
    """ICRP age group for an age, and the rule applied.

    >>> icrp_age_group(7.5)[0], icrp_age_group(17.9)[0], icrp_age_group(None)[0]
    ('5y', '15y', 'adult')
    """
    rule = "nearest lower ICRP age group (1 y, 5 y, 10 y, 15 y, adult >= 18 y); adult if no age"
    if age_years is None:
        return "adult", rule + " (no age given: adult)"
    a = float(age_years)
    if not (math.isfinite(a) and a >= 0):
        raise InputDataError(f"age_years must be >= 0, got {age_years!r}")
    for lower, group in _AGE_GROUPS:
        if a >= lower:
            return group, rule
    raise InputDataError(
        f"age_years={a:g}: below 1 year no ICRP age group is tabulated here (newborn "
        "coefficients not sourced); give coefficients explicitly"
    )


def diagnostic_organ_doses(
    agent: str, injected_activity_bq: float, age_years: float | None = None
) -> DiagnosticDose:
    """Organ absorbed doses (mGy) and effective dose (mSv) from tabulated coefficients.

    Parameters
    ----------
    agent
        ``"F-18-FDG"`` (ICRP 106/128), ``"Ga-68-PSMA-11"`` or ``"Ga-68-DOTATATE"`` (study
        values, adult only); common spellings accepted.
    injected_activity_bq
        Injected activity (Bq).
    age_years
        Patient age; chooses the ICRP age group (nearest lower); adult when ``None``.

    Returns
    -------
    DiagnosticDose
        One row per tabulated quantity, each with its coefficient, source and derivation.

    Raises
    ------
    InputDataError
        Unknown agent; an agent or age group without sourced coefficients.

    References
    ----------
    ICRP Publication 106 (2008) and 128 (2015), Radiation dose to patients from
    radiopharmaceuticals (values as quoted by the sources named in each row).

    Examples
    --------
    >>> d = diagnostic_organ_doses("18F-FDG", 200e6)
    >>> round(d.effective_dose_msv, 2)
    3.8
    """
    canon = canonical_agent(agent)
    a = float(injected_activity_bq)
    if not (a > 0 and math.isfinite(a)):
        raise InputDataError(f"injected_activity_bq must be > 0 Bq, got {injected_activity_bq!r}")
    group, rule = icrp_age_group(age_years)
    coeffs = [c for c in _all() if c.agent == canon]
    if not coeffs:
        raise InputDataError(
            f"no dose coefficients could be sourced for {canon} (neither ICRP 128 nor a study "
            "value was verifiable); give the coefficients explicitly"
        )
    rows = [c for c in coeffs if c.age_group == group]
    if not rows:
        have = sorted({c.age_group for c in coeffs})
        raise InputDataError(
            f"{canon}: no coefficients for age group {group!r} (age {age_years}); the table has "
            f"{', '.join(have)}. Paediatric coefficients are not guessed from adult ones."
        )
    mbq = a / 1e6
    out = tuple(
        OrganDoseRow(
            quantity=c.quantity,
            coefficient=c.value,
            coefficient_unit=c.unit,
            dose=c.value * mbq,
            dose_unit="mSv" if c.quantity == "effective_dose" else "mGy",
            derivation=c.derivation,
            citation=c.citation,
            notes=c.notes,
        )
        for c in rows
    )
    return DiagnosticDose(
        agent=canon,
        injected_activity_bq=a,
        age_years=None if age_years is None else float(age_years),
        age_group=group,
        age_rule=rule,
        rows=out,
    )


def pet_voxel_tia(
    activity_at_acquisition: Volume,
    injection_time: datetime,
    acquisition_time: datetime,
    nuclide: str,
    model: Literal["linear_uptake", "instant_uptake"] = "linear_uptake",
) -> Volume:
    """Time-integrated activity per voxel (``"Bq s"``) of a diagnostic PET.

    Models (``A_s`` = activity in the voxel at the acquisition time ``t_s`` after
    injection, *not* decay corrected; ``lambda`` = physical decay constant):

    ``"linear_uptake"`` (default)
        Activity rises linearly from 0 at injection to ``A_s`` at ``t_s``, then decays
        physically only (no biological clearance): ``TIA = A_s t_s / 2 + A_s / lambda``.
        No biological washout after the scan makes the post-scan part an upper bound for
        tracers that are trapped or cleared (FDG is largely trapped); the uptake part is an
        estimate.
    ``"instant_uptake"``
        The activity seen at the scan was present since injection and decayed physically:
        ``TIA = A_s exp(lambda t_s) / lambda`` (upper bound unless the voxel washed out
        before the scan).

    Parameters
    ----------
    activity_at_acquisition
        Activity per voxel (``"Bq"``) or concentration (``"Bq/mL"``, multiplied by the
        voxel volume) at the acquisition time, without decay correction to injection.
    injection_time, acquisition_time
        Datetimes; the acquisition must not precede the injection.
    nuclide
        The PET nuclide (``"F-18"``, ``"Ga-68"``).
    model
        ``"linear_uptake"`` or ``"instant_uptake"``.

    Returns
    -------
    Volume
        TIA in ``"Bq s"`` on the PET grid, model recorded in the provenance.
    """
    if activity_at_acquisition.unit == "Bq":
        a = np.asarray(activity_at_acquisition.array, dtype=np.float64)
    elif activity_at_acquisition.unit == "Bq/mL":
        a = np.asarray(activity_at_acquisition.array, dtype=np.float64) * (
            activity_at_acquisition.voxel_volume_ml
        )
    else:
        raise UnitError(
            f"activity_at_acquisition.unit={activity_at_acquisition.unit!r}; expected 'Bq' or "
            "'Bq/mL' (activity at acquisition, not decay corrected)"
        )
    if not np.all(np.isfinite(a)) or np.any(a < 0):
        raise InputDataError("activity_at_acquisition must be finite and >= 0")
    t_s = (acquisition_time - injection_time).total_seconds()
    if t_s < 0:
        raise InputDataError(
            f"acquisition_time {acquisition_time.isoformat()} precedes injection_time "
            f"{injection_time.isoformat()}"
        )
    lam = _nuclide(nuclide).decay_constant_per_s
    if model == "linear_uptake":
        factor = t_s / 2.0 + 1.0 / lam
        desc = "linear uptake 0 -> A(t_scan), then physical decay only: TIA = A t/2 + A/lambda"
    elif model == "instant_uptake":
        factor = math.exp(lam * t_s) / lam
        desc = "activity present since injection, physical decay only: TIA = A exp(lambda t)/lambda"
    else:
        raise InputDataError(f"model={model!r}; valid: 'linear_uptake', 'instant_uptake'")
    return activity_at_acquisition.with_array(
        a * factor,
        unit="Bq s",
        provenance={
            **dict(activity_at_acquisition.provenance),
            "tia_model": {
                "model": model,
                "description": desc,
                "uptake_time_s": t_s,
                "nuclide": _nuclide(nuclide).name,
                "pre_scan_fraction": (
                    t_s / 2.0 if model == "linear_uptake" else (math.exp(lam * t_s) - 1) / lam
                )
                / factor,
            },
        },
    )
