"""Named theranostic workflows: a diagnostic PET study -> a planned therapy's dose map.

:func:`plan_from_pet` is the first workflow: from a ⁶⁸Ga/¹⁸F PET study with an RTSTRUCT it
computes, for a planned ¹⁷⁷Lu therapy, the voxel time-integrated activity under a stated
kinetic assumption (see :mod:`dosimetry.projection`) and the absorbed dose
(:func:`dosimetry.absorbed_dose`). :func:`write_plan` exports the result (RTDOSE, NIfTI,
dose table) and :func:`run_demo` runs everything on the built-in phantom patient.
"""

from __future__ import annotations

import csv
import io as _io
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import parameters
from .errors import DosimetryError, OutputError
from .units import parse_activity
from .volume import Volume, resample

__all__ = ["TherapyPlan", "plan_from_pet", "write_plan", "run_demo", "run_plan_from_folder"]

log = logging.getLogger(__name__)

Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    return None


@dataclass
class TherapyPlan:
    """Result of :func:`plan_from_pet`.

    Attributes
    ----------
    agent, nuclide
        Therapy agent (``"Lu-177-PSMA-617"``) and its nuclide (``"Lu-177"``).
    administered_activity_bq
        Planned administered activity (Bq).
    tia
        Time-integrated activity map (Volume, ``"Bq s"`` per voxel).
    dose
        Absorbed dose map (Volume, ``"Gy"``) on the PET grid (with the daughters for a
        chain such as ²²⁵Ac).
    dose_rbe
        RBE-weighted dose (``"Gy_RBE"``) for alpha emitters, else ``None``.
    density
        Mass density (g/mL) on the PET grid used for voxel masses, when a CT was found.
    masks
        ``{name: mask}`` on the PET grid (fractional occupancy in [0, 1]).
    table
        Per-VOI dose statistics rows (see :func:`dosimetry.dose_statistics`).
    method
        Dose method used (``"led"``, ``"vsv"`` or ``"vsv-density"``).
    assumptions
        Every assumption that entered the result (kinetics, daughters, densities).
    """

    agent: str
    nuclide: str
    administered_activity_bq: float
    tia: Volume
    dose: Volume
    density: Volume | None
    masks: dict[str, Volume]
    table: list[dict[str, Any]]
    method: str
    assumptions: list[dict[str, Any]] = field(default_factory=list)
    dose_rbe: Volume | None = None
    files: dict[str, Path] = field(default_factory=dict)
    reference: Any = None
    notes: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0

    def table_csv(self) -> str:
        """The per-VOI table as CSV text (Gy and Gy/GBq)."""
        buf = _io.StringIO()
        gbq = self.administered_activity_bq / 1e9
        cols = ["name", "volume_ml", "mass_g", "mean_gy", "max_gy", "d2_gy", "d98_gy"]
        w = csv.writer(buf, lineterminator="\n")
        rbe = self.dose_rbe is not None
        extra = ["mean_gy_rbe", "max_gy_rbe", "mean_gy_rbe_per_gbq"] if rbe else []
        w.writerow([*cols, "mean_gy_per_gbq", "max_gy_per_gbq", *extra])
        for row in self.table:
            values = [f"{float(row[c]):.6g}" for c in cols[1:]]
            values += [f"{row['mean_gy'] / gbq:.6g}", f"{row['max_gy'] / gbq:.6g}"]
            if rbe:
                values += [
                    f"{row['mean_gy_rbe']:.6g}",
                    f"{row['max_gy_rbe']:.6g}",
                    f"{row['mean_gy_rbe'] / gbq:.6g}",
                ]
            w.writerow([row["name"], *values])
        return buf.getvalue()

    def summary(self) -> str:
        """A short human-readable summary (what ``dosimetry demo`` prints)."""
        gbq = self.administered_activity_bq / 1e9
        amount = f"{gbq:.2f} GBq" if gbq >= 0.1 else f"{gbq * 1e3:.2f} MBq"
        lines = [
            f"{self.agent}: {amount} planned, dose by {self.method.upper()} "
            f"on a {'x'.join(map(str, self.dose.shape))} grid "
            f"({', '.join(f'{s:.2f}' for s in self.dose.spacing_mm)} mm)",
            f"{'VOI':<16s}{'volume mL':>11s}{'mean Gy':>10s}{'max Gy':>10s}{'Gy/GBq':>9s}",
        ]
        if self.dose_rbe is not None:
            lines[-1] += f"{'mean Gy_RBE':>13s}"
        for row in self.table:
            line = (
                f"{row['name']:<16s}{row['volume_ml']:>11.1f}{row['mean_gy']:>10.2f}"
                f"{row['max_gy']:>10.2f}{row['mean_gy'] / gbq:>9.3f}"
            )
            if self.dose_rbe is not None:
                line += f"{row['mean_gy_rbe']:>13.2f}"
            lines.append(line)
        for name, path in self.files.items():
            lines.append(f"{name}: {path}")
        lines.extend(self.notes)
        if self.elapsed_s:
            lines.append(f"done in {self.elapsed_s:.1f} s")
        return "\n".join(lines)


def _external_roi_names(study: Any) -> set[str]:
    """Names of RTSTRUCT ROIs whose RTROIInterpretedType is EXTERNAL (body outlines)."""
    try:
        rtstructs = study.rtstructs()
    except (DosimetryError, AttributeError):
        return set()
    names: set[str] = set()
    for ds in rtstructs:
        numbers = {
            int(o.ReferencedROINumber)
            for o in getattr(ds, "RTROIObservationsSequence", [])
            if str(getattr(o, "RTROIInterpretedType", "")).upper() == "EXTERNAL"
        }
        for roi in getattr(ds, "StructureSetROISequence", []):
            if int(roi.ROINumber) in numbers:
                names.add(str(roi.ROIName))
    return names


def _rois_without_prior(
    agent: str,
    masks: Mapping[str, Volume],
    external: set[str],
    user: Mapping[str, float] | None,
) -> set[str]:
    """VOIs for which neither the user nor the population table gives a half-life."""
    from .kinetics import population_effective_half_life_s

    missing: set[str] = set()
    for name in masks:
        if name in external or (user and name in user):
            continue
        try:
            population_effective_half_life_s(agent, name)
        except DosimetryError:
            missing.add(name)
    return missing


def plan_from_pet(
    study: Any,
    *,
    therapy: str = "Lu-177-PSMA-617",
    activity: str | float = "7.4 GBq",
    method: str = "auto",
    masks: Mapping[str, Volume] | None = None,
    effective_half_life_s: Mapping[str, float] | None = None,
    rbe: float | None = None,
    progress: Progress = _quiet,
) -> TherapyPlan:
    """Plan a therapy's absorbed dose from a diagnostic PET study.

    Parameters
    ----------
    study
        A :class:`dosimetry.io.study.Study` with one PET series (and ideally a CT and an
        RTSTRUCT in the same frame of reference).
    therapy
        Therapy agent, e.g. ``"Lu-177-PSMA-617"``.
    activity
        Planned administered activity with unit (``"7.4 GBq"``) or in Bq.
    method
        ``"led"`` (local energy deposition), ``"vsv"`` (voxel S-value convolution in soft
        tissue), ``"vsv-density"`` (lung / soft-tissue / bone kernels and density scaling
        from the study's CT; needs the CT) or ``"auto"`` (``"vsv"`` when a kernel is
        available for the PET voxel size, else ``"led"``; the choice is logged and
        recorded in the plan).
    masks
        VOIs on the PET grid; default: the study's RTSTRUCT rasterised onto the PET grid
        with fractional occupancy.
    effective_half_life_s
        Per-VOI effective half-lives (s) overriding the population priors.
    rbe
        RBE of alpha particles for the RBE-weighted dose of alpha emitters (default
        ``parameters.get("rbe_alpha")``, MIRD Pamphlet 22).
    progress
        Callback receiving one line per step.

    Returns
    -------
    TherapyPlan
    """
    from .dose import absorbed_dose
    from .metrics import dose_statistics
    from .nuclides import decay_chain
    from .nuclides import nuclide as nuclide_data
    from .projection import project_tia

    t0 = time.perf_counter()
    activity_bq = parse_activity(activity) if isinstance(activity, str) else float(activity)
    if not np.isfinite(activity_bq) or activity_bq <= 0:
        raise DosimetryError(f"activity must be a positive amount, got {activity!r}")

    progress("reading PET (activity at acquisition, decay correction undone)")
    pet = study.pet()
    pet_activity = pet.activity_at_acquisition()
    grid = pet_activity

    density: Volume | None = None
    try:
        ct = study.ct()
    except DosimetryError as exc:
        log.warning("no CT used for densities (%s); soft-tissue density assumed", exc)
        ct = None
    if ct is not None:
        progress("CT -> mass density on the PET grid")
        rho_air = parameters.get("density_air_g_per_ml")
        density = resample(ct.density(), grid, "concentration", fill_value=rho_air)
        density = density.with_array(np.clip(density.array, rho_air, None))

    if masks is None:
        progress("rasterising RTSTRUCT onto the PET grid")
        masks = study.masks(grid=grid, mode="fraction")
    masks = dict(masks)

    external = _external_roi_names(study)
    no_prior = _rois_without_prior(therapy, masks, external, effective_half_life_s)
    if no_prior:
        log.warning(
            "no population half-life for %s and none given: treated as background "
            "(whole-body clearance)",
            ", ".join(sorted(no_prior)),
        )
    # Where VOIs overlap (a lesion inside the liver) the smaller, more specific VOI's
    # kinetics apply: order by volume and let earlier masks keep their weight.
    kinetic_masks = dict(
        sorted(
            ((k, v) for k, v in masks.items() if k not in external | no_prior),
            key=lambda kv: float(np.sum(kv[1].array, dtype=np.float64)),
        )
    )
    if external:
        log.info("ROIs %s are body outlines: they are the background of the projection", external)

    progress(f"projecting {therapy} kinetics from the PET (time-integrated activity)")
    projection = project_tia(
        pet_activity,
        pet.injected_activity_bq,
        pet.injection_time,
        kinetic_masks,
        agent=therapy,
        diagnostic_nuclide=pet.nuclide,
        overlap="first",
        effective_half_life_s=dict(effective_half_life_s) if effective_half_life_s else None,
    )
    tia = projection.tia_per_bq.with_array(projection.tia_per_bq.array * activity_bq, unit="Bq s")

    nuclide = projection.therapy_nuclide  # read from the agent name by the projection
    members = decay_chain(nuclide).members

    # Radioactive progeny (225Ac: Fr-221 ... Pb-209) decay where the parent decayed
    # (in-situ equilibrium, the default daughter scenario of the projection).
    chain = len(members) > 1
    alpha = any(nuclide_data(m).energy_per_decay_mev("alpha") > 0 for m in members)

    chosen = method
    kernel = None
    if method == "vsv-density":
        if density is None:
            raise DosimetryError(
                "method='vsv-density' needs a CT in the study (mass density per voxel); none "
                "was usable. Use method='vsv' (homogeneous soft tissue) or add the CT series."
            )
    elif method in ("auto", "vsv"):
        try:
            from .kernels import vsv_kernel

            kernel = vsv_kernel(nuclide, tia.spacing_mm, medium="soft tissue", chain=chain)
            chosen = "vsv"
        except (DosimetryError, ImportError) as exc:
            if method == "vsv":
                raise
            log.info("no VSV kernel for %s at %s mm (%s): using LED", nuclide, tia.spacing_mm, exc)
            chosen = "led"
    elif method != "led":
        raise DosimetryError(f"method={method!r}; valid: 'auto', 'led', 'vsv', 'vsv-density'")

    progress(f"absorbed dose ({chosen.upper()})")
    dose_kw: dict[str, Any]
    if chosen == "vsv":
        dose_kw = {"method": "vsv", "kernel": kernel}
    elif chosen == "vsv-density":  # the library's lung / soft tissue / bone kernels
        dose_kw = {"method": "vsv-density", "density": density}
    else:
        dose_kw = {"method": "led", "density": density}
    dose = absorbed_dose(tia, nuclide, chain=chain, **dose_kw)
    dose_rbe = None
    if alpha:
        progress("RBE-weighted dose (alpha emitters)")
        dose_rbe = absorbed_dose(tia, nuclide, chain=chain, weighting="rbe", rbe=rbe, **dose_kw)

    progress("dose statistics per VOI")
    table = dose_statistics(dose, masks, density=density)
    if dose_rbe is not None:
        for row, row_rbe in zip(
            table, dose_statistics(dose_rbe, masks, density=density), strict=True
        ):
            row["mean_gy_rbe"] = row_rbe["mean_gy"]
            row["max_gy_rbe"] = row_rbe["max_gy"]

    assumptions = list(getattr(projection, "assumptions", []))
    assumptions.append(
        {
            "name": "overlapping VOIs",
            "value": "the smaller VOI's kinetics apply where VOIs overlap (e.g. a lesion in "
            "the liver); body outlines (RTROIInterpretedType EXTERNAL) are the background",
            "source": "planning convention",
        }
    )
    for name in sorted(no_prior):
        assumptions.append(
            {
                "name": f"{name} kinetics",
                "value": "background (whole-body clearance)",
                "source": "no population prior for this VOI and no user value",
            }
        )
    if chain:
        assumptions.append(
            {
                "name": "daughters",
                "value": f"{', '.join(members[1:])} decay where "
                f"{nuclide} decayed (in-situ equilibrium)",
                "source": "default daughter scenario (radioactivedecay branching)",
            }
        )
    if dose_rbe is not None:
        rbe_used = parameters.resolve(rbe, "rbe_alpha")
        assumptions.append(
            {
                "name": "rbe_alpha",
                "value": rbe_used,
                "source": "user" if rbe is not None else parameters.describe("rbe_alpha").citation,
            }
        )
    assumptions.append(
        {
            "name": "dose method",
            "value": chosen,
            "source": "user" if method != "auto" else "automatic choice",
        }
    )
    if chosen == "vsv-density":
        assumptions.append(
            {
                "name": "tissue classes",
                "value": "lung below "
                f"{parameters.get('density_class_lung_max_g_per_ml')} g/mL, bone from "
                f"{parameters.get('density_class_bone_min_g_per_ml')} g/mL (CT density); "
                "class kernel of the target voxel, dose x rho_kernel / rho_voxel; voxels next "
                "to lung or bone interfaces are off by tens of percent (docs/dose.md)",
                "source": parameters.describe("density_class_lung_max_g_per_ml").citation,
            }
        )
    if density is None:
        assumptions.append(
            {
                "name": "density_soft_tissue_g_per_ml",
                "value": parameters.get("density_soft_tissue_g_per_ml"),
                "source": parameters.describe("density_soft_tissue_g_per_ml").citation,
            }
        )
    return TherapyPlan(
        agent=therapy,
        nuclide=nuclide,
        administered_activity_bq=activity_bq,
        tia=tia,
        dose=dose,
        dose_rbe=dose_rbe,
        density=density,
        masks=masks,
        table=table,
        method=chosen,
        assumptions=assumptions,
        reference=pet,
        elapsed_s=time.perf_counter() - t0,
    )


def write_plan(
    plan: TherapyPlan,
    out: str | Path,
    *,
    overwrite: bool = False,
    input_dirs: tuple[str | Path, ...] = (),
) -> dict[str, Path]:
    """Write ``dose.dcm`` (RTDOSE), ``dose.nii.gz`` (+ JSON sidecar), ``dose_table.csv``, ``report.md``.

    Existing files are refused unless ``overwrite``; nothing is written into ``input_dirs``.
    """
    from .io import write_nifti, write_rtdose
    from .io._atomic import write_text_atomic

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    files = {
        "RTDOSE": write_rtdose(
            plan.dose,
            out / "dose.dcm",
            reference=plan.reference,
            overwrite=overwrite,
            input_dirs=input_dirs,
            comment=f"{plan.agent} {plan.administered_activity_bq / 1e9:.3g} GBq, {plan.method}",
        ),
        "NIfTI": write_nifti(
            plan.dose, out / "dose.nii.gz", overwrite=overwrite, input_dirs=input_dirs
        ),
    }
    if plan.dose_rbe is not None:
        files["RTDOSE (RBE-weighted)"] = write_rtdose(
            plan.dose_rbe,
            out / "dose_rbe.dcm",
            reference=plan.reference,
            overwrite=overwrite,
            input_dirs=input_dirs,
            comment=f"{plan.agent} RBE-weighted",
        )
        files["NIfTI (RBE-weighted)"] = write_nifti(
            plan.dose_rbe, out / "dose_rbe.nii.gz", overwrite=overwrite, input_dirs=input_dirs
        )
    table_path = out / "dose_table.csv"
    write_text_atomic(table_path, plan.table_csv(), overwrite=overwrite, input_dirs=input_dirs)
    files["dose table"] = table_path
    plan.files.update(files)
    from .report import plan_report

    report_path = out / "report.md"
    plan.files["report"] = report_path
    write_text_atomic(report_path, plan_report(plan), overwrite=overwrite, input_dirs=input_dirs)
    files["report"] = report_path
    return files


def run_plan_from_folder(
    folder: str | Path,
    out: str | Path,
    *,
    therapy: str = "Lu-177-PSMA-617",
    activity: str | float = "7.4 GBq",
    method: str = "auto",
    rbe: float | None = None,
    overwrite: bool = False,
    progress: Progress = _quiet,
) -> TherapyPlan:
    """Read a DICOM folder, plan the therapy and write the outputs to ``out``."""
    from .io import load_study

    t0 = time.perf_counter()
    progress(f"reading DICOM folder {folder}")
    study = load_study(folder)
    plan = plan_from_pet(
        study, therapy=therapy, activity=activity, method=method, rbe=rbe, progress=progress
    )
    progress(f"writing RTDOSE, NIfTI and the dose table to {out}")
    write_plan(plan, out, overwrite=overwrite, input_dirs=(folder,))
    plan.elapsed_s = time.perf_counter() - t0
    return plan


def run_demo(
    out: str | Path,
    *,
    activity: str | float = "7.4 GBq",
    method: str = "auto",
    seed: int = 0,
    overwrite: bool = False,
    progress: Progress = _quiet,
) -> TherapyPlan:
    """The whole pipeline on the built-in phantom patient.

    Writes the phantom PET/CT/RTSTRUCT study to ``out/phantom_study``, reads it back like
    any scanner export, plans a ¹⁷⁷Lu-PSMA-617 therapy and writes the outputs to ``out``.
    """
    import phantoms

    t0 = time.perf_counter()
    out = Path(out)
    study_dir = out / "phantom_study"
    if study_dir.exists() and any(study_dir.iterdir()):
        if not overwrite:
            raise OutputError(
                f"{study_dir} already exists and is not empty; choose another --out or pass "
                "--overwrite"
            )
        import shutil

        shutil.rmtree(study_dir)
    progress("generating the phantom patient (68Ga-PSMA-11 PET/CT + RTSTRUCT) as DICOM")
    truth = phantoms.write_pet_ct_study(study_dir, seed=seed)
    plan = run_plan_from_folder(
        study_dir, out, activity=activity, method=method, overwrite=overwrite, progress=progress
    )
    plan.notes.append(
        f"phantom: injected {truth.injected_activity_bq / 1e6:.0f} MBq 68Ga-PSMA-11, "
        f"study written to {study_dir}"
    )
    plan.elapsed_s = time.perf_counter() - t0
    return plan
