"""Diagnostic PET -> planned ¹⁷⁷Lu / ²²⁵Ac therapy: TIA and absorbed-dose maps.

:func:`run` takes a loaded study (a ⁶⁸Ga / ¹⁸F PET, ideally a CT and VOIs in the same
frame of reference) and a planned therapy and activity, and returns a
:class:`~dosimetry.results.WorkflowResult`. Its steps are functions of their own, each
tested alone:

* :func:`_pet_activity` -- the PET series, activity at acquisition and its plausibility
  (activity present, uptake time, fraction of the injected activity in the field of view,
  SUV range);
* :func:`_density_on_grid` -- CT -> mass density on the PET grid;
* :func:`_voi_masks` -- VOIs from the study's RTSTRUCT/SEG, a mask file or folder, or the
  body outline alone;
* :func:`_kinetic_masks` -- which VOIs carry their own kinetics (organs and lesions with a
  half-life), smaller VOIs first where they overlap;
* :func:`_choose_method` -- the dose method (``auto``: VSV when a kernel exists for the
  voxel size, else LED, recorded as a finding);
* :func:`_dose_maps` -- absorbed dose (and RBE-weighted dose for alpha emitters);
* :func:`_assumptions` -- the workflow's own assumptions, each with its source.

:func:`run_folder` reads a DICOM folder first.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ..checks import (
    Policy,
    check_administered_activity,
    check_fraction_in_fov,
    check_grid_extent,
    check_no_activity,
    check_organ_dose,
    check_suv_max,
    check_uptake_time,
    method_fallback,
)
from ..errors import DosimetryError, InputDataError
from ..kinetics.projection import PetFrame, ProjectionResult, UptakeRatio, project_tia
from ..nuclides import Agent, parse_agent
from ..results import InputRecord, WorkflowResult
from ..voi import VoiMap
from ..volume import Volume, resample
from ._run import Progress, Run, parse_activity_arg
from ._table import build_table, roles_of, with_uncertainty

__all__ = ["run", "run_folder", "diagnostic_agent"]

log = logging.getLogger(__name__)

METHOD_CHOICES: tuple[str, ...] = ("auto", "led", "vsv", "vsv-density", "mc")


def _electron_reach_mm(nuclide: str) -> float:
    """CSDA range in water of the nuclide's most energetic electron line or beta endpoint
    (NIST ESTAR table shipped with the kernels), the reach of its non-photon dose."""
    from ..kernels import electron_reach_mm

    return electron_reach_mm(nuclide)


def diagnostic_agent(text: str | None, nuclide: str) -> str | None:
    """Canonical diagnostic agent from a header's radiopharmaceutical text (``"Ga-68
    PSMA-11"``, ``"PSMA-11 Ga^68^"``) and the PET nuclide, or ``None``."""
    from ..nuclides import canonical_ligand

    if not text:
        return None
    try:
        return parse_agent(text).name
    except DosimetryError:
        pass
    cleaned = text.replace("^", " ")
    for token in [cleaned, *cleaned.split()]:
        lig = canonical_ligand(token)
        if lig:
            return f"{nuclide}-{lig}"
    return None


# --------------------------------------------------------------------------------------
# steps
# --------------------------------------------------------------------------------------
def _pet_activity(
    run: Run, study: Any, pet: int | str | None, overrides: Mapping[str, Any]
) -> tuple[Any, Volume, str | None]:
    """The PET series and its activity at acquisition, checked for plausibility."""
    from ..io.records import radiopharmaceutical_name

    series = study.pet(pet, **dict(overrides))
    activity = series.activity_at_acquisition()
    agent = diagnostic_agent(radiopharmaceutical_name(series), series.nuclide)
    total = activity.total()
    run.add(check_no_activity(total, "the PET"))
    uptake_min = (activity.reference_time - series.injection_time).total_seconds() / 60.0
    run.add(check_uptake_time(uptake_min, agent))
    decayed = series.injected_activity_bq * 2.0 ** (-uptake_min * 60.0 / series.half_life_s)
    run.add(check_fraction_in_fov(total / decayed, "PET", "PET"))
    try:
        weight_kg = float(series.patient_weight_kg)
    except DosimetryError:
        weight_kg = math.nan
    if math.isfinite(weight_kg) and weight_kg > 0:
        # SUV (body weight) of the hottest voxel: concentration / (injected / weight)
        suv_max = float(np.max(activity.array)) / (decayed / (weight_kg * 1000.0))
        run.add(check_suv_max(suv_max))
    return series, activity, agent


def _density_on_grid(
    run: Run, study: Any, grid: Volume, ct: int | str | None
) -> tuple[Any, Volume | None]:
    """The CT series and its mass density resampled onto ``grid`` (``None`` without a CT)."""
    from .. import parameters as _parameters

    try:
        ct_series = study.ct(ct)
    except DosimetryError as exc:
        if ct is not None:
            raise
        log.warning("no CT used for densities (%s); soft-tissue density assumed", exc)
        run.assume(
            "mass density",
            f"no CT in the study ({exc}): soft tissue, "
            f"{run.parameter('density_soft_tissue_g_per_ml'):g} g/mL, everywhere (VOI masses "
            "and the dose kernel's medium; lungs and bone are not distinguished)",
            _parameters.describe("density_soft_tissue_g_per_ml").citation,
        )
        return None, None
    rho_air = run.parameter("density_air_g_per_ml")
    density = resample(ct_series.density(), grid, "concentration", fill_value=rho_air)
    return ct_series, density.with_array(np.clip(density.array, rho_air, None))


def _body_mask(grid: Volume, density: Volume | None) -> Volume:
    """The body outline: voxels denser than the lung-class bound's half (about -700 HU),
    the largest connected component with holes filled; the whole grid without a CT."""
    if density is None:
        return grid.with_array(np.ones(grid.shape, dtype=np.float32), unit="1")
    from scipy import ndimage

    thr = 0.3  # g/mL: between air (0.0012) and inflated lung (0.26-0.38, ICRP 110)
    inside = np.asarray(density.array) > thr
    labels, n = ndimage.label(inside)
    if n == 0:
        raise InputDataError("--body-only: the CT has no voxel denser than 0.3 g/mL (no body)")
    sizes = ndimage.sum_labels(inside, labels, index=np.arange(1, n + 1))
    body = labels == (1 + int(np.argmax(sizes)))
    body = ndimage.binary_fill_holes(body)
    return grid.with_array(body.astype(np.float32), unit="1")


def _voi_masks(
    run: Run,
    study: Any,
    grid: Volume,
    density: Volume | None,
    masks: Mapping[str, Volume] | str | Path | None,
    body_only: bool,
) -> tuple[dict[str, Volume], set[str]]:
    """VOIs on the PET grid and the names of body outlines (EXTERNAL ROIs)."""
    if body_only:
        if masks is not None:
            raise InputDataError("--body-only and --masks exclude each other; choose one")
        run.step("body outline from the CT (no organ VOIs)")
        body = _body_mask(grid, density)
        run.assume(
            "VOIs",
            "body outline only (CT > 0.3 g/mL, largest component)"
            if density is not None
            else "the whole PET field of view (no CT)",
            "--body-only: whole-body kinetics everywhere",
        )
        return {"body": body}, {"body"}
    if masks is None:
        run.step("rasterising the study's RTSTRUCT/SEG onto the PET grid")
        return dict(study.masks(grid=grid, mode="fraction")), study.external_roi_names()
    if isinstance(masks, str | Path):
        from ..io.records import load_masks

        run.step(f"masks from {masks}")
        out = load_masks(masks, grid, mode="fraction", option="--masks")
        run.assume(
            "VOI source",
            str(Path(masks).name),
            "user masks (NIfTI carries no frame of reference: taken in the PET's patient "
            "coordinates)"
            if not str(masks).lower().endswith(".dcm")
            else "user masks",
        )
        return out, set()
    return dict(masks), set()


#: Organs without a sourced population half-life -> the organ whose half-life is used as a
#: stated proxy (the agent-pair relation table makes the same choice for these organs).
KINETIC_PROXIES: dict[str, tuple[str, str]] = {
    "lacrimal_glands": (
        "salivary_glands",
        "no lacrimal-gland effective half-life could be sourced; the salivary glands' (a "
        "gland of similar uptake with PSMA ligands) is used, as in the agent-pair relation "
        "table (dosimetry/data/agent_uptake_relations.csv)",
    ),
}


def _kinetic_masks(
    run: Run,
    masks: Mapping[str, Volume],
    roles: Mapping[str, tuple[str | None, str]],
    agent: str,
    user_half_lives: Mapping[str, float] | None,
    background: Literal["whole_body", "physical"] = "whole_body",
) -> tuple[dict[str, Volume], dict[str, str]]:
    """VOIs with kinetics of their own, smaller first (where VOIs overlap, e.g. a lesion in
    the liver, the smaller, more specific VOI's kinetics apply), and the proxy organ of
    VOIs that borrow another organ's population half-life; body outlines and VOIs without
    a population prior, proxy or user half-life are background (whole-body kinetics),
    with a warning that names them."""
    from ..checks import Finding
    from ..kinetics import population_effective_half_life_s

    chosen = {}
    proxies: dict[str, str] = {}
    no_prior = []
    for name, mask in masks.items():
        organ, role = roles[name]
        if role == "body":
            continue
        if user_half_lives and name in user_half_lives:
            chosen[name] = mask
            continue
        try:
            if organ is None:
                raise DosimetryError("not in the alias table")
            population_effective_half_life_s(agent, organ)
            chosen[name] = mask
        except DosimetryError:
            proxy = KINETIC_PROXIES.get(organ or "")
            try:
                if proxy is None:
                    raise
                population_effective_half_life_s(agent, proxy[0])
            except DosimetryError:
                no_prior.append(name)
                continue
            chosen[name] = mask
            proxies[name] = proxy[0]
            run.assume(f"{name} kinetics", f"population half-life of {proxy[0]} (proxy)", proxy[1])
    treated = (
        "treated as background (whole-body kinetics)"
        if background == "whole_body"
        else "treated as background, which has no sourced clearance for this agent (physical "
        "decay only: an upper bound that can exceed the published doses several-fold)"
    )
    if no_prior:
        run.add(
            Finding(
                "voi_without_kinetics",
                "warning",
                f"no organ or population half-life for VOI(s) {', '.join(sorted(no_prior))}: "
                f"{treated}",
                "--half-life VOI=40h, --kinetics FILE or --voi-map FILE "
                "(effective_half_life_s= / voi_map= in Python)",
            )
        )
        for name in sorted(no_prior):
            run.assume(
                f"{name} kinetics",
                "background (whole-body clearance)"
                if background == "whole_body"
                else "background (physical decay only: upper bound)",
                "no prior, no user value",
            )
    ordered = dict(
        sorted(chosen.items(), key=lambda kv: float(np.sum(kv[1].array, dtype=np.float64)))
    )
    return ordered, proxies


class UncertaintyBudget:
    """Per-VOI uncertainty budgets (terms with their sources) for the reports."""

    def __init__(self, budgets: Mapping[str, Any]):
        self.budgets = dict(budgets)

    def report_blocks(self) -> tuple[str, list[Any]]:
        """Title and blocks: one row per VOI and term."""
        from ..report.blocks import Paragraph, Table
        from ..uncertainty import combine

        rows = []
        for voi, terms in self.budgets.items():
            for t in terms:
                rows.append(
                    (
                        voi,
                        t.name,
                        f"{100 * t.relative_sd:.1f} %",
                        f"{t.sensitivity:.2f}",
                        f"{100 * t.contribution:.1f} %",
                        t.source,
                    )
                )
            rows.append(
                (voi, "combined (first order)", "", "", f"{100 * combine(terms):.1f} %", "")
            )
        return "Uncertainty budget", [
            Paragraph(
                "Relative standard uncertainty of each VOI's mean dose: independent factors "
                "combined in quadrature with their sensitivity coefficients (EANM practical "
                "guidance, Gear JI et al. Eur J Nucl Med Mol Imaging 2018;45:2456-2474); the "
                "table gives mean +/- u and the 95 % interval mean +/- 1.96 u."
            ),
            Table(
                ("VOI", "term", "relative SD", "sensitivity", "contribution", "source"), tuple(rows)
            ),
        ]


def _budget(
    run: Run,
    projection: ProjectionResult,
    ratios: Mapping[str, UptakeRatio],
    agent: str,
    kinetic: Mapping[str, Volume],
    proxies: Mapping[str, str],
    method: str,
    dose: Volume,
    heterogeneity: Any,
) -> dict[str, list[Any]]:
    """Each VOI's uncertainty terms: PET calibration, uptake relation, population
    half-life spread (with the TIA's sensitivity to it), VOI mass and dose method."""
    from .. import parameters
    from ..kinetics import population_record
    from ..nuclides import nuclide as nuclide_data
    from ..uncertainty import Term, relative_sd_from_spread, tia_half_life_sensitivity
    from ._heterogeneity import method_terms

    t_phys = nuclide_data(projection.therapy_nuclide).half_life_s
    common = [
        Term(
            "PET activity calibration",
            parameters.get("pet_activity_relative_sd"),
            1.0,
            parameters.describe("pet_activity_relative_sd").citation,
        ),
        Term(
            "VOI mass",
            parameters.get("voi_mass_relative_sd"),
            1.0,
            parameters.describe("voi_mass_relative_sd").citation,
        ),
    ]
    out: dict[str, list[Any]] = {}
    for row in projection.voi_table:
        terms = list(common) + method_terms(run, method, row.voi, dose, heterogeneity)
        r = ratios.get(row.voi)
        if r is not None and r.relative_sd > 0:
            terms.append(Term("uptake relation", r.relative_sd, 1.0, r.source[:120]))
        organ = "whole_body" if row.voi == "background" else (proxies.get(row.voi) or row.organ)
        try:
            rec = population_record(agent, organ) if organ else None
        except Exception:  # a user half-life: no population spread to propagate
            rec = None
        if rec is not None and row.source.startswith("population"):
            rel, how = relative_sd_from_spread(rec.effective_half_life_s / 3600.0, rec.spread)
            s = tia_half_life_sensitivity(
                row.effective_half_life_s, t_phys, projection.pet_time_after_injection_s
            )
            terms.append(Term("effective half-life (population spread)", rel, s, how))
        out[row.voi] = terms
    return out


def _background_kinetics(run: Run, agent: str) -> Literal["whole_body", "physical"]:
    """``"whole_body"`` when the agent has a population whole-body half-life; otherwise no
    biological clearance outside the VOIs (physical decay only: an upper bound), said in a
    finding and an assumption so that the agent still plans."""
    from ..checks import Finding
    from ..kinetics import population_effective_half_life_s

    try:
        population_effective_half_life_s(agent, "whole_body")
        return "whole_body"
    except DosimetryError:
        run.add(
            Finding(
                "no_whole_body_kinetics",
                "warning",
                f"no sourced population whole-body half-life for {agent}: outside the VOIs with "
                "their own kinetics the therapy agent is taken not to clear (physical decay "
                "only), an upper bound for background and unsourced organs",
                "--half-life VOI=DURATION or --kinetics FILE",
            )
        )
        run.assume(
            "background kinetics",
            "physical decay only (no biological clearance): upper bound",
            f"no population whole-body half-life for {agent} could be sourced "
            "(dosimetry/data/population_kinetics.csv)",
        )
        return "physical"


def _uptake_ratios(
    run: Run, diagnostic: str | None, therapy: str, vois: Iterable[str], enabled: bool
) -> dict[str, UptakeRatio]:
    """Therapy-agent uptake relative to the diagnostic agent's per VOI, from the agent-pair
    relations table (``dosimetry/data/agent_uptake_relations.csv``); VOIs without paired or
    population data keep ratio 1 with a wide spread, said in their row."""
    from ..checks import Finding
    from ..kinetics import relation_organ, uptake_relation

    if not enabled:
        run.assume(
            "uptake relations",
            "not used: the therapy agent is assumed to reach the diagnostic agent's fractions",
            "user choice (--shared-biodistribution)",
        )
        return {}
    if diagnostic is None:
        run.add(
            Finding(
                "unknown_diagnostic_agent",
                "warning",
                "the PET header does not name a known diagnostic agent: no agent-pair uptake "
                "relations; the therapy agent is assumed to reach the diagnostic fractions",
                "check Radiopharmaceutical (0018,0031)",
            )
        )
        return {}
    out: dict[str, UptakeRatio] = {}
    for name in vois:
        organ = relation_organ(name)
        if organ is None:
            continue
        try:
            rel = uptake_relation(diagnostic, therapy, organ, missing="no_data")
        except DosimetryError as exc:
            run.add(
                Finding(
                    "no_uptake_relation",
                    "warning",
                    f"no uptake relation for {diagnostic} -> {therapy} ({exc}); shared "
                    "biodistribution assumed",
                    "",
                )
            )
            return {}
        what = (
            "no paired or population data: ratio 1 with a wide spread"
            if rel.evidence == "no_data"
            else rel.evidence
        )
        out[name] = UptakeRatio(
            float(rel.ratio),
            float(rel.rel_sd or 0.0),
            f"{what}; {organ}: {rel.citation}" + (f" ({rel.note})" if rel.note else ""),
        )
    return out


def _choose_method(
    run: Run,
    method: str,
    nuclide: str,
    spacing_mm: tuple[float, float, float],
    density: Volume | None,
    chain: bool,
) -> tuple[str, Any]:
    """The dose method to use and its kernel (for ``vsv``)."""
    if method not in METHOD_CHOICES:
        raise InputDataError(f"method={method!r}; valid: {', '.join(METHOD_CHOICES)}")
    if method in ("vsv-density", "mc") and density is None:
        raise InputDataError(
            f"method {method!r} needs a CT in the study (mass density per voxel); none was "
            "usable. Use --method vsv (homogeneous soft tissue) or add the CT series (--ct)."
        )
    if method in ("led", "vsv-density", "mc"):
        return method, None
    from ..kernels import vsv_kernel

    try:
        kernel = vsv_kernel(nuclide, spacing_mm, medium="soft tissue", chain=chain)
    except (DosimetryError, ImportError) as exc:
        if method == "vsv":
            raise
        run.add(
            method_fallback(
                "auto (vsv)", "led", f"no VSV kernel for {nuclide} at {spacing_mm} mm: {exc}"
            )
        )
        return "led", None
    return "vsv", kernel


def _dose_maps(
    tia: Volume,
    nuclide: str,
    *,
    method: str,
    kernel: Any,
    density: Volume | None,
    chain: bool,
    alpha: bool,
    rbe: float | None,
    mc: Mapping[str, Any] | None,
    target_vois: Mapping[str, Volume] | None = None,
) -> tuple[Volume, Volume | None, Volume | None]:
    """Absorbed dose, RBE-weighted dose (alpha emitters) and the dose uncertainty (MC)."""
    from ..dose import absorbed_dose

    if method == "mc":
        from ..mc import patient_dose

        opts = dict(mc or {})
        if target_vois and "target_vois" not in opts and "histories" not in opts:
            opts["target_vois"] = dict(target_vois)  # stop at the target uncertainty on these
        res = patient_dose(tia, nuclide, density=density, chain=chain, **opts)
        dose_rbe = None
        if alpha:
            from .. import parameters

            w = parameters.resolve(rbe, "rbe_alpha")
            w_e = parameters.get("rbe_electron")
            arr = w_e * (res.dose.array - res.alpha_dose.array) + w * res.alpha_dose.array
            dose_rbe = res.dose.with_array(arr, unit="Gy_RBE")
        return res.dose, dose_rbe, res.uncertainty
    kw: dict[str, Any] = {"method": method}
    if method == "vsv":
        kw["kernel"] = kernel
    else:
        kw["density"] = density
    dose = absorbed_dose(tia, nuclide, chain=chain, **kw)
    dose_rbe = (
        absorbed_dose(tia, nuclide, chain=chain, weighting="rbe", rbe=rbe, **kw) if alpha else None
    )
    return dose, dose_rbe, None


def _assumptions(
    run: Run,
    *,
    nuclide: str,
    members: tuple[str, ...],
    method: str,
    requested: str,
    density: Volume | None,
    alpha: bool,
    rbe: float | None,
) -> None:
    """The workflow's assumptions (the projection adds its own)."""
    from .. import parameters

    run.assume(
        "overlapping VOIs",
        "the smaller VOI's kinetics apply where VOIs overlap (e.g. a lesion in the liver); "
        "body outlines (RTROIInterpretedType EXTERNAL) are the background",
        "planning convention",
    )
    if len(members) > 1:
        run.assume(
            "daughters",
            f"{', '.join(members[1:])} decay where {nuclide} decayed (in-situ equilibrium)",
            "default daughter scenario (ICRP-107 branching)",
        )
    if alpha:
        run.assume(
            "rbe_alpha",
            parameters.resolve(rbe, "rbe_alpha"),
            "user" if rbe is not None else parameters.describe("rbe_alpha").citation,
        )
    run.assume("dose method", method, "user" if requested != "auto" else "automatic choice")
    if method == "vsv-density":
        run.assume(
            "tissue classes",
            "lung below "
            f"{parameters.get('density_class_lung_max_g_per_ml')} g/mL, bone from "
            f"{parameters.get('density_class_bone_min_g_per_ml')} g/mL (CT density); "
            "class kernel of the target voxel, dose x rho_kernel / rho_voxel; voxels next "
            "to lung or bone interfaces are off by tens of percent (docs/dose.md)",
            parameters.describe("density_class_lung_max_g_per_ml").citation,
        )
    if density is None:
        run.assume(
            "density_soft_tissue_g_per_ml",
            parameters.get("density_soft_tissue_g_per_ml"),
            parameters.describe("density_soft_tissue_g_per_ml").citation,
        )


# --------------------------------------------------------------------------------------
# the workflow
# --------------------------------------------------------------------------------------
def run(
    study: Any,
    *,
    therapy: str,
    activity: str,
    method: str = "auto",
    pet: int | str | None = None,
    ct: int | str | None = None,
    masks: Mapping[str, Volume] | str | Path | None = None,
    body_only: bool = False,
    effective_half_life_s: Mapping[str, float] | None = None,
    voi_map: VoiMap | None = None,
    rbe: float | None = None,
    minus_lesions: bool = True,
    pet_overrides: Mapping[str, Any] | None = None,
    mc: Mapping[str, Any] | None = None,
    limits: Sequence[Any] | None = None,
    prescribe: bool = False,
    cycles: int = 1,
    history: Any = None,
    limit_bound: str = "mean",
    lq: Mapping[str, tuple[float, float]] | None = None,
    renal_risk_factors: bool = True,
    blood: str | Path | None = None,
    uptake_relations: bool = True,
    policy: Policy | str | Mapping[str, str] | None = None,
    accept: Iterable[str] | bool = (),
    parameters: Mapping[str, float] | None = None,
    progress: Progress | None = None,
) -> WorkflowResult:
    """Plan a therapy's absorbed dose from a diagnostic PET study.

    Parameters
    ----------
    study
        A :class:`dosimetry.io.Study` (``dosimetry.load_study(folder)``).
    therapy
        Therapy agent, e.g. ``"Lu-177-PSMA-617"``, ``"Ac-225-PSMA-617"``,
        ``"Lu-177-DOTATATE"`` (any spelling :func:`dosimetry.nuclides.parse_agent` reads).
    activity
        Planned administered activity per administration, with its unit (``"7.4 GBq"``).
        Required: there is no default activity, and a bare number is refused.
    method
        ``"auto"`` (VSV when a kernel exists for the PET voxel size, else LED; recorded),
        ``"led"``, ``"vsv"``, ``"vsv-density"`` (needs the CT) or ``"mc"`` (patient Monte
        Carlo on the CT, the ``[mc]`` extra).
    pet, ct
        Which PET / CT series when the study has several (index as listed in the error
        message, SeriesInstanceUID or SeriesDescription).
    masks
        VOIs: a mapping name -> mask on the PET grid, or a path (RTSTRUCT, SEG, NIfTI label
        map, or a folder of one-organ NIfTI masks). Default: the study's RTSTRUCT (or SEG).
    body_only
        No organ VOIs: the body outline from the CT, whole-body kinetics (a first look).
    effective_half_life_s
        Per-VOI effective half-lives (s) of the therapy agent, overriding population priors.
    voi_map
        VOI name -> organ table (default: the built-in alias table).
    rbe
        RBE of alpha particles (default the parameter ``rbe_alpha``, MIRD Pamphlet 22).
    minus_lesions
        Organ rows exclude lesion voxels (default).
    pet_overrides
        Header overrides for the PET series (``injected_activity_bq``, ``injection_time``,
        ``patient_weight_kg``, ...; see :class:`dosimetry.io.pet.PetSeries`).
    mc
        Options of the patient Monte Carlo (``method="mc"``).
    limits, prescribe, cycles, history, limit_bound, renal_risk_factors
        Prescription (:func:`dosimetry.workflows.prescription.max_activity`): organ limits
        (``Limit`` or ``"kidneys=BED:40Gy"`` text; ``prescribe=True`` uses the table's
        default limits), planned identical cycles, the treatment history (a
        ``TreatmentHistory`` or its JSON file, never modified), ``"mean"`` or ``"upper"``
        (limits applied to mean + 1.96 u), and which renal BED limit applies.
    lq
        User alpha/beta (Gy) and repair half-time (s) per organ, for BED where the table
        has no sourced value.
    uptake_relations
        Apply the agent-pair uptake relations (default); ``False`` assumes the therapy
        agent reaches the diagnostic agent's fractions everywhere.
    blood
        Blood samples (CSV) for the blood-based red-marrow dose, reported beside the
        image-based marrow VOI (:mod:`dosimetry.workflows._organ_level`).
    policy, accept
        What to do with findings (:meth:`dosimetry.checks.Policy.of`); ``accept`` lists
        the implausible-input codes the user accepts.
    parameters
        Parameter values for this run (recorded in the result).
    progress
        Callback receiving one line per step.

    Returns
    -------
    WorkflowResult
        ``kind="pet_plan"``.
    """
    run_ = Run("pet_plan", progress=progress, policy=policy, accept=accept, parameters=parameters)
    with run_.active():
        agent: Agent = parse_agent(therapy)
        activity_bq = parse_activity_arg(activity, "--activity (activity=)")
        run_.add(check_administered_activity(activity_bq, agent.nuclide))

        run_.step("reading the PET (activity at acquisition, decay correction undone)")
        pet_series, pet_activity, diag_agent = _pet_activity(run_, study, pet, pet_overrides or {})
        run_.add(
            check_grid_extent(
                pet_activity.shape,
                pet_activity.spacing_mm,
                _electron_reach_mm(agent.nuclide),
                "the PET",
            )
        )
        ct_series, density = _density_on_grid(run_, study, pet_activity, ct)
        vois, external = _voi_masks(run_, study, pet_activity, density, masks, body_only)
        voi_map = voi_map or VoiMap.default()
        roles = roles_of(list(vois), voi_map, external)
        from .options import expand_half_lives

        effective_half_life_s = expand_half_lives(effective_half_life_s, vois)
        background = _background_kinetics(run_, agent.name)
        kinetic, proxies = _kinetic_masks(
            run_, vois, roles, agent.name, effective_half_life_s, background
        )

        ratios = _uptake_ratios(run_, diag_agent, agent.name, kinetic, uptake_relations)
        run_.step(f"projecting {agent.name} kinetics from the PET (time-integrated activity)")
        projection = project_tia(
            PetFrame.from_activity(
                pet_activity,
                pet_series.injected_activity_bq,
                pet_series.injection_time,
                pet_series.nuclide,
            ),
            kinetic,
            agent=agent.name,
            overlap="first",
            background=background,
            uptake_ratio=ratios,
            prior_organ=proxies,
            effective_half_life_s=dict(effective_half_life_s) if effective_half_life_s else None,
        )
        run_.extend(projection.findings)
        tia = projection.tia_per_bq.with_array(
            projection.tia_per_bq.array * activity_bq, unit="Bq s"
        )

        from ..nuclides import decay_chain
        from ..nuclides import nuclide as nuclide_data

        members = decay_chain(agent.nuclide).members
        chain = len(members) > 1
        alpha = any(nuclide_data(m).energy_per_decay_mev("alpha") > 0 for m in members)
        chosen, kernel = _choose_method(run_, method, agent.nuclide, tia.spacing_mm, density, chain)
        run_.step(f"absorbed dose ({chosen.upper()})")
        dose, dose_rbe, uncertainty = _dose_maps(
            tia,
            agent.nuclide,
            method=chosen,
            kernel=kernel,
            density=density,
            chain=chain,
            alpha=alpha,
            rbe=rbe,
            mc=mc,
            target_vois={k: v for k, v in vois.items() if roles[k][1] in ("organ", "lesion")},
        )
        run_.assume_kernel(dose)
        run_.step("dose statistics per VOI")
        table = build_table(
            dose,
            vois,
            roles,
            density=density,
            dose_rbe=dose_rbe,
            tia=tia,
            administered_activity_bq=activity_bq,
            minus_lesions=minus_lesions,
        )
        for row in table:
            stats = row.dose_rbe or row.dose
            run_.add(check_organ_dose(row.name, row.role, stats.mean, stats.unit))
        from ._heterogeneity import flag_table

        table, heterogeneity = flag_table(
            run_, table, vois, density, agent.nuclide, chain=chain, method=chosen
        )
        terms = _budget(
            run_, projection, ratios, agent.name, kinetic, proxies, chosen, dose, heterogeneity
        )
        if "background" in terms:  # VOIs without kinetics of their own (and the body)
            for name in vois:
                terms.setdefault(name, terms["background"])
        table, budgets = with_uncertainty(table, terms)
        for a in projection.assumptions:
            run_.assumptions.append(a)
        _assumptions(
            run_,
            nuclide=agent.nuclide,
            members=members,
            method=chosen,
            requested=method,
            density=density,
            alpha=alpha,
            rbe=rbe,
        )
        from ..io.records import patient_record

        inputs = _inputs(pet_series, ct_series, study, masks, body_only)
        images: dict[str, Volume] = {"PET": pet_activity}
        if ct_series is not None:
            images["CT"] = ct_series.volume
        result = WorkflowResult(
            kind="pet_plan",
            title=f"{agent.name} plan from {diag_agent or pet_series.nuclide + ' PET'}",
            agent=agent.name,
            nuclide=agent.nuclide,
            administered_activity_bq=activity_bq,
            method=chosen,
            inputs=inputs,
            masks=vois,
            tia=tia,
            dose=dose,
            dose_rbe=dose_rbe,
            dose_uncertainty=uncertainty,
            density=density,
            images=images,
            table=table,
            sensitivity=projection.sensitivity,
            provenance={"dose": dict(dose.provenance), "diagnostic_agent": diag_agent},
            reference=pet_series,
            details={
                "projection": projection,
                "uncertainty": UncertaintyBudget(budgets),
                **({"heterogeneity": heterogeneity} if heterogeneity is not None else {}),
            },
            patient=patient_record(pet_series),
            **run_.common(),
        )
        from ._organ_level import with_organ_level_methods
        from .prescription import finish_with_prescription

        result = with_organ_level_methods(run_, result, blood=blood)
        return finish_with_prescription(
            run_,
            result,
            limits=limits,
            prescribe=prescribe,
            cycles=cycles,
            history=history,
            limit_bound=limit_bound,
            lq=lq,
            renal_risk_factors=renal_risk_factors,
            history_source="planned",
        )


def _inputs(
    pet_series: Any, ct_series: Any, study: Any, masks: Any, body_only: bool
) -> tuple[InputRecord, ...]:
    from ..io.records import input_record

    out = [input_record(pet_series, "PET")]
    if ct_series is not None:
        out.append(input_record(ct_series, "CT"))
    if masks is None and not body_only:
        for info in study.series_of("RTSTRUCT")[:1] or study.series_of("SEG")[:1]:
            out.append(
                InputRecord(
                    role="VOIs",
                    modality=info.modality,
                    series_instance_uid=info.series_instance_uid,
                    study_instance_uid=info.study_instance_uid,
                    frame_of_reference_uid=info.frame_of_reference_uid,
                    description=info.series_description or "",
                    n_files=len(info.files),
                )
            )
    elif isinstance(masks, str | Path):
        out.append(InputRecord(role="VOIs", modality="file", description=str(masks)))
    return tuple(out)


def run_folder(
    folder: str | Path, *, header_overrides: Mapping[str, Any] | None = None, **kwargs: Any
) -> WorkflowResult:
    """:func:`run` on a DICOM folder (read with :func:`dosimetry.load_study`;
    ``header_overrides`` are its study-wide overrides, ``--header`` on the command line)."""
    from ..io import load_study

    progress = kwargs.get("progress")
    if progress is not None:
        progress(f"reading DICOM folder {folder}")
    return run(load_study(folder, overrides=header_overrides), **kwargs)


def projection_of(result: WorkflowResult) -> ProjectionResult | None:
    """The projection record of a PET plan (``None`` for other results)."""
    p = result.details.get("projection")
    return p if isinstance(p, ProjectionResult) else None
