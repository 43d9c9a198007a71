"""The one result type of every clinical workflow, and the typed records inside it.

A workflow (``dosimetry.workflows.pet_plan.run``, ``dosimetry.workflows.spect.run``, ...)
returns one frozen :class:`WorkflowResult`. The command line, the reports
(:mod:`dosimetry.report`), the output writer (:func:`dosimetry.io.write_result`), the cohort
runner and the notebooks all read that same object, so a quantity is computed once and
shown the same way everywhere.

The records are typed (no ``dict[str, Any]`` crossing module boundaries):

* :class:`Assumption` -- what was assumed, the value used and where it came from;
* :class:`Finding` -- what a plausibility or consistency check found (see
  :mod:`dosimetry.checks`);
* :class:`InputRecord` -- one input series with its identity and times;
* :class:`DoseStats`, :class:`VoiDose`, :class:`DoseTable` -- the per-VOI table, whose rows
  carry their unit (``"Gy"`` or ``"Gy_RBE"``) instead of encoding it in key names;
* :class:`SensitivityRow` -- one line of a half-life sensitivity analysis.

This module sits at the bottom of the package (it imports only ``volume``, ``units`` and
``_text``), so every layer can use it without an import circle.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any, Literal

from .volume import Volume

__all__ = [
    "Assumption",
    "Finding",
    "Level",
    "InputRecord",
    "DoseStats",
    "VoiDose",
    "DoseTable",
    "SensitivityRow",
    "WorkflowResult",
    "TABLE_COLUMNS",
]

Level = Literal["info", "warning", "error"]
Role = Literal["organ", "lesion", "body", "background", "other"]


@dataclass(frozen=True)
class Assumption:
    """One assumption that entered a result.

    Attributes
    ----------
    name
        What was assumed (``"half-life kidney_left"``, ``"rbe_alpha"``).
    value
        The value used, as text (numbers with their unit).
    source
        Where the value came from: a citation, ``"user"`` or a named convention.
    """

    name: str
    value: str
    source: str

    @classmethod
    def of(cls, name: str, value: Any, source: str) -> Assumption:
        """An assumption whose value is formatted (4 significant digits for floats)."""
        text = f"{value:.4g}" if isinstance(value, float) else str(value)
        return cls(str(name), text, str(source))


@dataclass(frozen=True)
class Finding:
    """What a check found (see :mod:`dosimetry.checks`).

    Attributes
    ----------
    code
        Stable identifier of the check (``"uptake_time"``, ``"fraction_in_fov"``); the key
        of a policy entry and of ``--accept CODE``.
    level
        ``"info"``, ``"warning"`` or ``"error"`` (an implausible input: refused unless the
        user accepts it).
    message
        What is wrong, with the value found and the bound it broke.
    override
        How to accept or change it (CLI option and Python keyword), empty for infos.
    accepted
        ``True`` for an error-level finding the user accepted explicitly.
    """

    code: str
    level: Level
    message: str
    override: str = ""
    accepted: bool = False


@dataclass(frozen=True)
class InputRecord:
    """One input series (or file) of a workflow, with what identifies it.

    Attributes
    ----------
    role
        What it was used for (``"PET"``, ``"CT"``, ``"RTSTRUCT"``, ``"SPECT 24 h"``, ...).
    modality
        DICOM Modality (``"PT"``, ``"NM"``, ``"CT"``, ``"RTSTRUCT"``), or ``"NIfTI"``.
    series_instance_uid, study_instance_uid, frame_of_reference_uid
        DICOM identifiers, when the input is DICOM.
    description
        SeriesDescription or file name (untrusted text: escaped by every renderer).
    n_files
        Number of files read.
    nuclide
        Radionuclide of an emission image.
    injected_activity_bq, injection_time, acquisition_time
        Administration and acquisition, when known.
    sha256
        Hash of the input files' content (sorted by path), for the record.
    overrides
        Header values the user stated instead of the file's (``--header``, the readers'
        keyword overrides), as ``(name, value as text)`` pairs.
    """

    role: str
    modality: str
    series_instance_uid: str | None = None
    study_instance_uid: str | None = None
    frame_of_reference_uid: str | None = None
    description: str = ""
    n_files: int = 0
    nuclide: str | None = None
    injected_activity_bq: float | None = None
    injection_time: datetime | None = None
    acquisition_time: datetime | None = None
    sha256: str | None = None
    overrides: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class DoseStats:
    """Dose statistics of one VOI in one unit.

    ``mean`` is the mass-weighted mean (energy / mass, MIRD); ``d2``...``d98`` are the
    minimum dose to the hottest x % of the volume (ICRU 83); ``v`` maps a dose level (in
    ``unit``) to the volume fraction receiving at least that much.
    """

    unit: str
    mean: float
    min: float
    max: float
    d2: float
    d50: float
    d70: float
    d98: float
    v: Mapping[float, float] = field(default_factory=dict)

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> DoseStats:
        """From a row of :func:`dosimetry.metrics.dose_statistics`."""
        v = {}
        for key, value in row.items():
            if key.startswith("v") and key.endswith("gy") and key[1:-2]:
                try:
                    v[float(key[1:-2])] = float(value)
                except ValueError:
                    continue
        return cls(
            unit=str(row["unit"]),
            mean=float(row["mean_gy"]),
            min=float(row["min_gy"]),
            max=float(row["max_gy"]),
            d2=float(row.get("d2_gy", math.nan)),
            d50=float(row.get("d50_gy", math.nan)),
            d70=float(row.get("d70_gy", math.nan)),
            d98=float(row.get("d98_gy", math.nan)),
            v=v,
        )

    def scaled(self, factor: float) -> DoseStats:
        """The same statistics for a dose scaled by ``factor`` (linear in activity)."""
        f = float(factor)
        return DoseStats(
            self.unit,
            self.mean * f,
            self.min * f,
            self.max * f,
            self.d2 * f,
            self.d50 * f,
            self.d70 * f,
            self.d98 * f,
            {},  # volume fractions at fixed levels do not scale
        )


@dataclass(frozen=True)
class VoiDose:
    """One row of the dose table: a VOI's size, TIA and dose.

    Attributes
    ----------
    name
        VOI name as in the input (untrusted text: escaped by every renderer).
    organ
        Organ the name maps to (alias table), or ``None``.
    role
        ``"organ"``, ``"lesion"``, ``"body"``, ``"background"`` or ``"other"``.
    volume_ml, mass_g
        Volume and mass (fractional masks count their occupancy).
    dose
        Physical absorbed dose statistics (``unit`` ``"Gy"``).
    dose_rbe
        RBE-weighted dose statistics (``"Gy_RBE"``) for alpha emitters, else ``None``.
    tia_bq_s
        Time-integrated activity in the VOI (Bq s), when the workflow has it.
    mean_u
        Standard uncertainty of ``dose.mean`` (Gy), when propagated.
    bed_gy, eqd2_gy
        Biologically effective dose and its 2-Gy equivalent for the VOI, when computed.
    notes
        Short remarks for this row (e.g. ``"lesions subtracted"``).
    extra
        Workflow-specific numbers (recovery coefficient, fraction of injected activity,
        ...), name -> value; names carry units.
    """

    name: str
    organ: str | None
    role: Role
    volume_ml: float
    mass_g: float
    dose: DoseStats
    dose_rbe: DoseStats | None = None
    tia_bq_s: float | None = None
    mean_u: float | None = None
    bed_gy: float | None = None
    eqd2_gy: float | None = None
    notes: str = ""
    extra: Mapping[str, float] = field(default_factory=dict)


#: Columns of ``dose_table.csv`` (one schema for every nuclide and workflow: columns that
#: do not apply are empty).
TABLE_COLUMNS: tuple[str, ...] = (
    "name",
    "organ",
    "role",
    "volume_ml",
    "mass_g",
    "tia_bq_s",
    "tia_corrected_bq_s",
    "recovery",
    "mean_gy",
    "mean_gy_u",
    "mean_gy_ci95_low",
    "mean_gy_ci95_high",
    "min_gy",
    "max_gy",
    "d2_gy",
    "d50_gy",
    "d70_gy",
    "d98_gy",
    "mean_gy_per_gbq",
    "max_gy_per_gbq",
    "mean_gy_rbe",
    "max_gy_rbe",
    "mean_gy_rbe_per_gbq",
    "bed_gy",
    "bed_gy_u",
    "eqd2_gy",
    "mean_gy_corrected",
    "mean_gy_corrected_u",
    "sphere_model_mean_gy",
    "v2gy",
    "v5gy",
    "v10gy",
    "v20gy",
    "v30gy",
    "interface_fraction",
    "method_error_low",
    "method_error_high",
    "notes",
)


def _num(value: float | None) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    return f"{float(value):.6g}"


@dataclass(frozen=True)
class DoseTable:
    """The per-VOI dose table of a result.

    Attributes
    ----------
    rows
        One :class:`VoiDose` per VOI.
    administered_activity_bq
        Activity the doses refer to (for the per-GBq columns), or ``None``.
    convention
        How the rows were computed (mask convention, means), shown with the table.
    """

    rows: tuple[VoiDose, ...] = ()
    administered_activity_bq: float | None = None
    convention: str = ""

    def __iter__(self) -> Iterator[VoiDose]:
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def names(self) -> tuple[str, ...]:
        """VOI names in table order."""
        return tuple(r.name for r in self.rows)

    def row(self, name: str) -> VoiDose:
        """The row of VOI ``name`` (``KeyError`` naming the VOIs when absent)."""
        for r in self.rows:
            if r.name == name:
                return r
        raise KeyError(f"no VOI {name!r} in the table; VOIs: {', '.join(self.names)}")

    def per_activity(self, value: float, unit: str = "GBq") -> float:
        """``value`` (a dose) per administered activity in ``unit`` (``"GBq"``, ``"MBq"``)."""
        from .units import bq_to_activity

        if self.administered_activity_bq is None or self.administered_activity_bq <= 0:
            return math.nan
        return float(value) / bq_to_activity(self.administered_activity_bq, unit)

    def csv_rows(self) -> list[dict[str, str]]:
        """Rows as strings keyed by :data:`TABLE_COLUMNS` (untrusted text neutralised)."""
        from ._text import csv_cell

        out = []
        for r in self.rows:
            ci: tuple[float | None, float | None] = (None, None)
            if r.mean_u is not None and math.isfinite(r.mean_u):
                ci = (max(r.dose.mean - 1.96 * r.mean_u, 0.0), r.dose.mean + 1.96 * r.mean_u)
            rbe = r.dose_rbe
            out.append(
                {
                    "name": csv_cell(r.name),
                    "organ": csv_cell(r.organ or ""),
                    "role": r.role,
                    "volume_ml": _num(r.volume_ml),
                    "mass_g": _num(r.mass_g),
                    "tia_bq_s": _num(r.tia_bq_s),
                    "mean_gy": _num(r.dose.mean),
                    "mean_gy_u": _num(r.mean_u),
                    "mean_gy_ci95_low": _num(ci[0]),
                    "mean_gy_ci95_high": _num(ci[1]),
                    "min_gy": _num(r.dose.min),
                    "max_gy": _num(r.dose.max),
                    "d2_gy": _num(r.dose.d2),
                    "d50_gy": _num(r.dose.d50),
                    "d70_gy": _num(r.dose.d70),
                    "d98_gy": _num(r.dose.d98),
                    "mean_gy_per_gbq": _num(self.per_activity(r.dose.mean)),
                    "max_gy_per_gbq": _num(self.per_activity(r.dose.max)),
                    "mean_gy_rbe": _num(rbe.mean if rbe else None),
                    "max_gy_rbe": _num(rbe.max if rbe else None),
                    "mean_gy_rbe_per_gbq": _num(self.per_activity(rbe.mean) if rbe else None),
                    "bed_gy": _num(r.bed_gy),
                    "bed_gy_u": _num(r.extra.get("bed_gy_u")),
                    "eqd2_gy": _num(r.eqd2_gy),
                    "tia_corrected_bq_s": _num(r.extra.get("tia_corrected_bq_s")),
                    "recovery": _num(r.extra.get("recovery")),
                    "mean_gy_corrected": _num(r.extra.get("mean_gy_corrected")),
                    "mean_gy_corrected_u": _num(r.extra.get("mean_gy_corrected_u")),
                    "sphere_model_mean_gy": _num(r.extra.get("sphere_model_mean_gy")),
                    "interface_fraction": _num(r.extra.get("interface_fraction")),
                    "method_error_low": _num(r.extra.get("method_error_low")),
                    "method_error_high": _num(r.extra.get("method_error_high")),
                    **{f"v{x:g}gy": _num(r.dose.v.get(x)) for x in (2.0, 5.0, 10.0, 20.0, 30.0)},
                    "notes": csv_cell(r.notes),
                }
            )
        return out

    def to_csv(self) -> str:
        """The table as CSV text with the fixed :data:`TABLE_COLUMNS` header."""
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=list(TABLE_COLUMNS), lineterminator="\n")
        w.writeheader()
        for row in self.csv_rows():
            w.writerow(row)
        return buf.getvalue()


@dataclass(frozen=True)
class SensitivityRow:
    """TIA (and dose) of one VOI when one assumed half-life is scaled down and up."""

    voi: str
    half_life_kind: str
    half_life_s: float
    change: float
    tia_per_bq_s: float
    tia_minus_per_bq_s: float
    tia_plus_per_bq_s: float

    @property
    def relative_change_minus(self) -> float:
        """Relative TIA change when the half-life is scaled by ``1 - change``."""
        return self.tia_minus_per_bq_s / self.tia_per_bq_s - 1.0 if self.tia_per_bq_s else 0.0

    @property
    def relative_change_plus(self) -> float:
        """Relative TIA change when the half-life is scaled by ``1 + change``."""
        return self.tia_plus_per_bq_s / self.tia_per_bq_s - 1.0 if self.tia_per_bq_s else 0.0


@dataclass(frozen=True, eq=False)
class WorkflowResult:
    """What a clinical workflow returns.

    Attributes
    ----------
    kind
        Which workflow made it (``"pet_plan"``, ``"spect"``, ``"diagnostic"``, ...).
    title
        One-line description (agent and activity).
    agent, nuclide
        Therapy (or diagnostic) agent and its radionuclide.
    administered_activity_bq
        The activity the dose refers to, or ``None``.
    method
        Dose method used (``"led"``, ``"vsv"``, ``"vsv-density"``, ``"mc"``).
    inputs
        The input series with their identity.
    masks
        VOI name -> mask on the dose grid (fractional occupancy in [0, 1]).
    tia
        Time-integrated activity map (``"Bq s"``) of the therapy nuclide.
    dose, dose_rbe, dose_uncertainty
        Absorbed dose (``"Gy"``), RBE-weighted dose (``"Gy_RBE"``, alpha emitters) and the
        per-voxel standard uncertainty of ``dose`` (Gy), when available.
    bed
        Voxel BED map (``"Gy_BED"``) in the VOIs with radiobiology parameters, 0 elsewhere
        (:func:`dosimetry.workflows.prescription.bed_volume`), when computed.
    density
        Mass density (g/mL) on the dose grid, when a CT was used.
    images
        Images for display (``"CT"`` on the dose grid's frame, ``"PET"`` or ``"SPECT"``
        activity), name -> Volume; not written as outputs.
    table
        The per-VOI dose table.
    assumptions
        Every assumption with its source.
    findings
        What the checks found (warnings, accepted implausible inputs).
    sensitivity
        Half-life sensitivity rows, when kinetics were assumed.
    parameters
        Snapshot of the parameter table as used (name -> value).
    provenance
        Dose provenance (method, kernel identity and hash, convolution path, ...) and the
        workflow's own records (JSON-serialisable).
    elapsed_s
        Wall time of the workflow.
    reference
        The series object whose geometry and identifiers the RTDOSE refers to.
    details
        Workflow-specific typed records (TAC fits, registrations, prescription, ...), name
        -> object; renderers show the ones they know.
    patient
        Patient identifiers from the input headers (``name``, ``id``, ``birth_date``,
        ``sex``, ``weight_kg``): untrusted text, left out of anonymised reports.
    """

    kind: str
    title: str
    agent: str
    nuclide: str
    administered_activity_bq: float | None
    method: str
    inputs: tuple[InputRecord, ...]
    masks: Mapping[str, Volume]
    tia: Volume | None
    dose: Volume | None
    table: DoseTable
    assumptions: tuple[Assumption, ...] = ()
    findings: tuple[Finding, ...] = ()
    sensitivity: tuple[SensitivityRow, ...] = ()
    dose_rbe: Volume | None = None
    dose_uncertainty: Volume | None = None
    bed: Volume | None = None
    density: Volume | None = None
    images: Mapping[str, Volume] = field(default_factory=dict)
    parameters: Mapping[str, float] = field(default_factory=dict)
    provenance: Mapping[str, Any] = field(default_factory=dict)
    elapsed_s: float = 0.0
    reference: Any = None
    details: Mapping[str, Any] = field(default_factory=dict)
    patient: Mapping[str, str] = field(default_factory=dict)

    @property
    def is_alpha(self) -> bool:
        """True when an RBE-weighted dose was computed (alpha emitters)."""
        return self.dose_rbe is not None

    def replace(self, **changes: Any) -> WorkflowResult:
        """A copy with some fields replaced (results are immutable)."""
        kwargs = {f.name: getattr(self, f.name) for f in fields(self)}
        unknown = set(changes) - set(kwargs)
        if unknown:
            raise TypeError(f"WorkflowResult has no field(s) {sorted(unknown)}")
        kwargs.update(changes)
        return WorkflowResult(**kwargs)
