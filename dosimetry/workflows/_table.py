"""The per-VOI dose table every workflow builds, with one convention.

Convention (stated in the table and the report):

* masks are fractional occupancy on the dose grid (a voxel half inside a kidney counts
  half), and means are mass-weighted (energy / mass, MIRD) with the CT density when there
  is one, soft-tissue density otherwise;
* ``organs minus lesions`` (default): the voxels of lesion VOIs are removed from every
  organ and body VOI before its statistics, so an organ's maximum is not a lesion's
  (switch off with ``minus_lesions=False``); each lesion row is the lesion itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from ..metrics import dose_statistics
from ..results import DoseStats, DoseTable, VoiDose
from ..voi import VoiMap
from ..volume import Volume

__all__ = ["build_table", "roles_of", "CONVENTION"]

D_PERCENT: tuple[float, ...] = (2.0, 50.0, 70.0, 98.0)
V_GY: tuple[float, ...] = (2.0, 5.0, 10.0, 20.0, 30.0)


def CONVENTION(minus_lesions: bool, density: bool) -> str:  # noqa: N802 - reads as a constant
    """The table's convention as text."""
    parts = [
        "fractional masks on the dose grid",
        "mass-weighted means with the CT density"
        if density
        else "mass-weighted means with soft-tissue density",
    ]
    if minus_lesions:
        parts.append("organs minus lesions (lesion voxels removed from organ and body rows)")
    return "; ".join(parts)


def roles_of(
    names: Sequence[str], voi_map: VoiMap, external: set[str] | None = None
) -> dict[str, tuple[str | None, str]]:
    """VOI name -> (organ, role); RTSTRUCT EXTERNAL outlines are body."""
    out: dict[str, tuple[str | None, str]] = {}
    for n in names:
        organ, role = voi_map.organ(n), voi_map.role(n)
        if external and n in external:
            organ, role = "whole_body", "body"
        out[n] = (organ, role)
    return out


def build_table(
    dose: Volume,
    masks: Mapping[str, Volume],
    roles: Mapping[str, tuple[str | None, str]],
    *,
    density: Volume | None = None,
    dose_rbe: Volume | None = None,
    tia: Volume | None = None,
    administered_activity_bq: float | None = None,
    minus_lesions: bool = True,
    v_gy: Sequence[float] = V_GY,
) -> DoseTable:
    """Statistics of every VOI as a :class:`~dosimetry.results.DoseTable`."""
    lesions = [n for n in masks if roles.get(n, (None, "other"))[1] == "lesion"]
    lesion_union = None
    if minus_lesions and lesions:
        acc = np.zeros(dose.shape, dtype=np.float64)
        for n in lesions:
            acc += np.asarray(masks[n].array, dtype=np.float64)
        lesion_union = np.clip(acc, 0.0, 1.0)
    rows: list[VoiDose] = []
    for name, mask in masks.items():
        organ, role = roles.get(name, (None, "other"))
        w = np.asarray(mask.array, dtype=np.float64)
        note = ""
        if lesion_union is not None and role != "lesion":
            rest = w * (1.0 - lesion_union)
            if rest.any() and not np.array_equal(rest, w):
                w = rest
                note = "lesions subtracted"
            elif not rest.any():
                note = "entirely covered by lesions: reported whole"
        weights = mask.with_array(np.minimum(w, 1.0), unit="1")
        stats = dose_statistics(
            dose, {name: weights}, density=density, v_gy=v_gy, d_percent=D_PERCENT
        )[0]
        stats_rbe = None
        if dose_rbe is not None:
            stats_rbe = dose_statistics(
                dose_rbe, {name: weights}, density=density, v_gy=v_gy, d_percent=D_PERCENT
            )[0]
        tia_bq_s = None
        if tia is not None:
            tia_bq_s = float(np.sum(np.asarray(tia.array, dtype=np.float64) * weights.array))
        rows.append(
            VoiDose(
                name=name,
                organ=organ,
                role=role,  # type: ignore[arg-type]
                volume_ml=float(stats["volume_ml"]),
                mass_g=float(stats["mass_g"]),
                dose=DoseStats.from_row(stats),
                dose_rbe=None if stats_rbe is None else DoseStats.from_row(stats_rbe),
                tia_bq_s=tia_bq_s,
                notes=note,
            )
        )
    return DoseTable(
        tuple(rows),
        administered_activity_bq=administered_activity_bq,
        convention=CONVENTION(minus_lesions and bool(lesions), density is not None),
    )


def with_uncertainty(
    table: DoseTable, terms_of: Mapping[str, Sequence[object]]
) -> tuple[DoseTable, dict[str, tuple[object, ...]]]:
    """The table with each VOI's standard uncertainty of the mean dose from its budget
    (:func:`dosimetry.uncertainty.combine`; rows without a budget keep theirs)."""
    from dataclasses import replace

    from ..uncertainty import Term, combine

    rows = []
    budgets: dict[str, tuple[object, ...]] = {}
    for r in table:
        terms = [t for t in terms_of.get(r.name, ()) if isinstance(t, Term)]
        if not terms:
            rows.append(r)
            continue
        budgets[r.name] = tuple(terms)
        rows.append(replace(r, mean_u=r.dose.mean * combine(terms)))
    return DoseTable(tuple(rows), table.administered_activity_bq, table.convention), budgets
