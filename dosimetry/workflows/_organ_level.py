"""Organ-level methods beside the voxel result: the sphere model for small VOIs and the
blood-based red-marrow dose.

* Sphere model (:func:`dosimetry.marrow.sphere_dose`, unit-density spheres with electron
  and photon absorbed fractions from the project's dose-point-kernel library): for lesion
  VOIs and the salivary and lacrimal glands, the mean self-dose of a sphere of the VOI's
  volume holding the VOI's TIA; a voxel result much below it points to partial-volume loss
  and a kernel that cannot resolve the object. Column ``sphere_model_mean_gy``.
* Blood-based red-marrow dose (EANM 2010 formalism, :func:`dosimetry.marrow.
  red_marrow_dose_blood_based`): from blood samples (``--blood FILE``), a table row
  ``red_marrow (blood)`` beside the image-based marrow VOI.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..results import DoseStats, DoseTable, VoiDose, WorkflowResult

__all__ = ["with_organ_level_methods", "SPHERE_ORGANS"]

#: organs (besides lesions) whose VOIs get the sphere model
SPHERE_ORGANS = frozenset({"salivary_glands", "lacrimal_glands"})


def with_organ_level_methods(
    run: Any, result: WorkflowResult, *, blood: str | Path | None = None
) -> WorkflowResult:
    """The result with sphere-model doses of small VOIs and, with ``blood``, the
    blood-based red-marrow row."""
    from ..marrow import (
        blood_tia_bq_s_per_ml,
        read_blood_samples,
        red_marrow_dose_blood_based,
        sphere_dose,
    )
    from ..nuclides import decay_chain

    chain = len(decay_chain(result.nuclide).members) > 1
    rows = []
    used = False
    for r in result.table:
        if r.tia_bq_s and r.volume_ml > 0 and (r.role == "lesion" or r.organ in SPHERE_ORGANS):
            tia = r.extra.get("tia_corrected_bq_s", r.tia_bq_s)
            s = sphere_dose(result.nuclide, volume_ml=r.volume_ml, tia_bq_s=tia, chain=chain)
            if s.dose_gy is not None and math.isfinite(s.dose_gy):
                rows.append(replace(r, extra={**r.extra, "sphere_model_mean_gy": s.dose_gy}))
                used = True
                continue
        rows.append(r)
    if used:
        run.assume(
            "sphere model",
            "lesions and salivary/lacrimal glands also as unit-density spheres of the VOI's "
            "volume holding its TIA (self-dose, electrons and photons): sphere_model_mean_gy",
            "dosimetry.marrow.sphere_dose (project DPK library)",
        )
    if blood is not None:
        samples = read_blood_samples(blood)
        tia_ml, _fit = blood_tia_bq_s_per_ml(samples, result.nuclide)
        rm = red_marrow_dose_blood_based(tia_ml, result.nuclide)
        nan = float("nan")
        stats = DoseStats("Gy", rm.total_gy, nan, nan, nan, nan, nan, nan)
        rows.append(
            VoiDose(
                name="red_marrow (blood)",
                organ="bone_marrow",
                role="organ",
                volume_ml=nan,
                mass_g=rm.red_marrow_mass_kg * 1e3,
                dose=stats,
                notes="blood-based: " + "; ".join(rm.notes),
                extra={"blood_tia_bq_s_per_ml": tia_ml},
            )
        )
        run.assume(
            "red marrow (blood-based)",
            f"RMBLR {rm.rmblr:g}, marrow mass {rm.red_marrow_mass_kg * 1e3:.0f} g, blood samples "
            f"{samples.source}",
            "Hindorf C et al. EANM Dosimetry Committee guidelines for bone marrow and whole-body "
            "dosimetry. Eur J Nucl Med Mol Imaging 2010;37:1238-1250",
        )
    table = DoseTable(tuple(rows), result.table.administered_activity_bq, result.table.convention)
    return result.replace(table=table, assumptions=tuple(run.assumptions))
