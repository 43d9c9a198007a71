"""The diagnostic's own dose to the patient: ICRP coefficients and a voxel estimate.

:func:`run` reads a diagnostic PET (¹⁸F-FDG; also ⁶⁸Ga-PSMA-11 and ⁶⁸Ga-DOTATATE where
study coefficients could be sourced) and returns a :class:`~dosimetry.results.WorkflowResult`
with

* organ absorbed doses (mGy) and the effective dose (mSv) from the tabulated dose
  coefficients (ICRP Publication 106/128 for FDG) times the injected activity, the age row
  chosen from the header's age or birth date (adult by default; the rule stated), the
  effective dose labelled as a reference-person quantity
  (:func:`dosimetry.diagnostic.diagnostic_organ_doses`), written as
  ``diagnostic_dose.csv``;
* a voxel dose estimate from the PET itself that counts the decays during the uptake
  period as well as after the scan (stated model,
  :func:`dosimetry.diagnostic.pet_voxel_tia`), with the dose method of ``plan``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from ..checks import Policy, check_fraction_in_fov, check_no_activity, check_uptake_time
from ..results import WorkflowResult
from ..voi import VoiMap
from ..volume import Volume
from ._run import Progress, Run
from ._table import build_table, roles_of

__all__ = ["run", "run_folder", "DiagnosticDoseOutput", "age_from_header"]


class DiagnosticDoseOutput:
    """``diagnostic_dose.csv`` and the report section of a DiagnosticDose."""

    def __init__(self, dose: Any):
        self.dose = dose

    def output_files(self) -> dict[str, str]:
        """``diagnostic_dose.csv``: one row per quantity; the effective dose row is
        ``effective_dose_msv``, organ rows ``<organ>_mgy``."""
        from .._text import csv_cell

        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(
            [
                "quantity",
                "value",
                "unit",
                "coefficient",
                "coefficient_unit",
                "agent",
                "age_group",
                "injected_activity_bq",
                "derivation",
                "source",
            ]
        )
        d = self.dose
        for r in d.rows:
            name = "effective_dose_msv" if r.quantity == "effective_dose" else f"{r.quantity}_mgy"
            w.writerow(
                [
                    name,
                    f"{r.dose:.6g}",
                    r.dose_unit,
                    f"{r.coefficient:.6g}",
                    r.coefficient_unit,
                    d.agent,
                    d.age_group,
                    f"{d.injected_activity_bq:.6g}",
                    csv_cell(r.derivation),
                    csv_cell(r.citation),
                ]
            )
        return {"diagnostic_dose.csv": buf.getvalue()}

    def report_blocks(self) -> tuple[str, list[Any]]:
        """Title and blocks for the reports."""
        from ..report.blocks import KeyValues, Paragraph, Table, format_activity

        d = self.dose
        rows = tuple(
            (
                r.quantity.replace("_", " "),
                f"{r.coefficient:.3g} {r.coefficient_unit}",
                f"{r.dose:.3g} {r.dose_unit}",
                r.derivation,
            )
            for r in d.rows
        )
        return "Diagnostic dose (tabulated coefficients)", [
            KeyValues(
                (
                    ("Agent", d.agent),
                    ("Injected activity", format_activity(d.injected_activity_bq)),
                    ("Age group", f"{d.age_group} ({d.age_rule})"),
                    (
                        "Effective dose",
                        f"{d.effective_dose_msv:.3g} mSv" if d.effective_dose_msv else "-",
                    ),
                )
            ),
            Paragraph(d.effective_dose_label, "note"),
            Table(("quantity", "coefficient", "dose", "derivation"), rows),
        ]


def age_from_header(patient: Mapping[str, str], when: datetime | None) -> float | None:
    """Age in years from PatientAge (``"065Y"``, ``"006M"``) or PatientBirthDate and the
    acquisition date; ``None`` when neither is in the header."""
    age = patient.get("age", "")
    if len(age) == 4 and age[:3].isdigit() and age[3] in "DWMY":
        n = int(age[:3])
        return {"D": n / 365.25, "W": n * 7 / 365.25, "M": n / 12, "Y": float(n)}[age[3]]
    birth = patient.get("birth_date", "")
    if len(birth) == 8 and birth.isdigit() and when is not None:
        b = datetime.strptime(birth, "%Y%m%d")
        return (when - b).days / 365.25
    return None


def run(
    study: Any,
    *,
    pet: int | str | None = None,
    ct: int | str | None = None,
    age_years: float | None = None,
    masks: Mapping[str, Volume] | str | Path | None = None,
    method: str = "auto",
    model: Literal["linear_uptake", "instant_uptake"] = "linear_uptake",
    voi_map: VoiMap | None = None,
    pet_overrides: Mapping[str, Any] | None = None,
    policy: Policy | str | Mapping[str, str] | None = None,
    accept: Iterable[str] | bool = (),
    parameters: Mapping[str, float] | None = None,
    progress: Progress | None = None,
) -> WorkflowResult:
    """The diagnostic administration's dose to this patient (see the module docstring).

    Parameters
    ----------
    study
        A :class:`dosimetry.io.Study` with the diagnostic PET (and CT, VOIs when present).
    pet, ct
        Series selection when several.
    age_years
        Patient age for the coefficient row; default from the header (PatientAge or birth
        date), adult when absent.
    masks
        VOIs for the voxel estimate (default: the study's RTSTRUCT/SEG, else the body).
    method
        Dose method of the voxel estimate (``auto``, ``led``, ``vsv``, ``vsv-density``).
    model
        TIA model of the voxel estimate: ``"linear_uptake"`` or ``"instant_uptake"``.
    voi_map, pet_overrides, policy, accept, parameters, progress
        As for :func:`dosimetry.workflows.pet_plan.run`.
    """
    from ..diagnostic import diagnostic_organ_doses, pet_voxel_tia
    from ..errors import DosimetryError
    from ..io.records import input_record, patient_record, radiopharmaceutical_name
    from .pet_plan import _choose_method, _density_on_grid, _dose_maps, _voi_masks, diagnostic_agent

    run_ = Run("diagnostic", progress=progress, policy=policy, accept=accept, parameters=parameters)
    with run_.active():
        run_.step("reading the PET (activity at acquisition, decay correction undone)")
        series = study.pet(pet, **dict(pet_overrides or {}))
        activity = series.activity_at_acquisition()
        agent = diagnostic_agent(radiopharmaceutical_name(series), series.nuclide)
        if agent is None:
            raise DosimetryError(
                "the PET header names no known diagnostic agent (Radiopharmaceutical "
                "(0018,0031)); the dose coefficients depend on the agent"
            )
        run_.add(check_no_activity(activity.total(), "the PET"))
        t_uptake = (activity.reference_time - series.injection_time).total_seconds()
        run_.add(check_uptake_time(t_uptake / 60.0, agent))
        decayed = series.injected_activity_bq * 2.0 ** (-t_uptake / series.half_life_s)
        run_.add(check_fraction_in_fov(activity.total() / decayed, "PET", "PET"))
        patient = patient_record(series)
        age = (
            age_years
            if age_years is not None
            else age_from_header(patient, activity.reference_time)
        )
        coefficients = diagnostic_organ_doses(agent, series.injected_activity_bq, age)
        run_.assume(
            "dose coefficients",
            f"{agent}, age group {coefficients.age_group}",
            coefficients.age_rule,
        )
        run_.assume("effective dose", "reference person", coefficients.effective_dose_label)

        ct_series, density = _density_on_grid(run_, study, activity, ct)
        try:
            vois, external = _voi_masks(run_, study, activity, density, masks, body_only=False)
        except DosimetryError:
            vois, external = _voi_masks(run_, study, activity, density, None, body_only=True)
        roles = roles_of(list(vois), voi_map or VoiMap.default(), external)
        run_.step(f"voxel TIA of the diagnostic ({model})")
        tia = pet_voxel_tia(
            activity, series.injection_time, activity.reference_time, series.nuclide, model
        )
        desc = tia.provenance["tia_model"]["description"]
        run_.assume(
            "voxel TIA model",
            desc,
            "dosimetry.diagnostic.pet_voxel_tia (physical decay only after the scan: an upper bound)",
        )
        chosen, kernel = _choose_method(
            run_, method, series.nuclide, tia.spacing_mm, density, False
        )
        run_.step(f"absorbed dose ({chosen.upper()})")
        dose, _, uncertainty = _dose_maps(
            tia,
            series.nuclide,
            method=chosen,
            kernel=kernel,
            density=density,
            chain=False,
            alpha=False,
            rbe=None,
            mc=None,
        )
        run_.assume_kernel(dose)
        table = build_table(
            dose,
            vois,
            roles,
            density=density,
            tia=tia,
            administered_activity_bq=series.injected_activity_bq,
        )
        images: dict[str, Volume] = {"PET": activity}
        inputs = [input_record(series, "PET")]
        if ct_series is not None:
            images["CT"] = ct_series.volume
            inputs.append(input_record(ct_series, "CT"))
        return WorkflowResult(
            kind="diagnostic",
            title=f"{agent}: the diagnostic administration's dose",
            agent=agent,
            nuclide=series.nuclide,
            administered_activity_bq=float(series.injected_activity_bq),
            method=chosen,
            inputs=tuple(inputs),
            masks=vois,
            tia=tia,
            dose=dose,
            dose_uncertainty=uncertainty,
            density=density,
            images=images,
            table=table,
            provenance={"dose": dict(dose.provenance)},
            reference=series,
            details={"diagnostic_dose": DiagnosticDoseOutput(coefficients)},
            patient=patient,
            **run_.common(),
        )


def run_folder(folder: str | Path, **kwargs: Any) -> WorkflowResult:
    """:func:`run` on a DICOM folder."""
    from ..io import load_study

    return run(load_study(folder), **kwargs)
