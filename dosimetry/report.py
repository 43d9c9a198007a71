"""A dosimetry report a physicist can file: Markdown text from a :class:`TherapyPlan`.

The report states what went in (series, injected activity, times), every assumption with
its source, the method and kernel identity, the per-VOI table in Gy and Gy/GBq, and the
software version. It is plain Markdown so that it diffs, prints and converts (pandoc)
without extra dependencies.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from .planning import TherapyPlan

__all__ = ["plan_report"]


def _cell(value: Any) -> str:
    text = f"{value:.4g}" if isinstance(value, float) else str(value)
    return text.replace("|", "/").replace("\n", " ")


def _kernel_line(label: str, rec: Mapping[str, Any]) -> str:
    """One line naming a kernel record of the dose provenance (``dose._kernel_record``)."""
    if not isinstance(rec, Mapping):
        return f"- {label}: {_cell(rec)}"
    parts = [
        f"{rec.get('nuclide')} in {rec.get('medium')} ({rec.get('density_g_per_ml')} g/mL)",
        f"voxel {rec.get('voxel_mm')} mm",
        f"source {rec.get('source')} {rec.get('library_version')}",
        f"energy fraction {_cell(rec.get('energy_fraction'))}",
        f"sha256 {str(rec.get('sha256'))[:16]}",
    ]
    return f"- {label}: " + ", ".join(parts)


def _provenance_lines(prov: Mapping[str, Any]) -> list[str]:
    keys = (
        "method",
        "path",
        "kernel_source",
        "kernel_sha256",
        "nuclide",
        "energy_fraction",
        "library_version",
        "dtype",
        "convolution_path",
        "density_correction",
        "tissue_class_bounds_g_per_ml",
        "air_density_max_g_per_ml",
        "air_voxels",
        "source_fraction_in_air",
    )
    out = []
    for k in keys:
        if k in prov:
            out.append(f"- {k}: {_cell(prov[k])}")
    if "kernel" in prov:
        out.append(_kernel_line("kernel", prov["kernel"]))
    for medium, rec in dict(prov.get("kernels", {})).items():
        out.append(_kernel_line(f"kernel ({medium})", rec))
    return out


def plan_report(plan: TherapyPlan, *, title: str | None = None) -> str:
    """Markdown report of a therapy plan.

    Parameters
    ----------
    plan
        The result of :func:`dosimetry.planning.plan_from_pet`.
    title
        Heading; default names the agent and activity.

    Returns
    -------
    str
        Markdown text.
    """
    from . import __version__

    gbq = plan.administered_activity_bq / 1e9
    lines = [
        f"# {title or f'Dosimetry plan: {plan.agent}, {gbq:.2f} GBq'}",
        "",
        f"Generated {datetime.now().isoformat(timespec='seconds')} by dosimetry {__version__}.",
        "",
        "## Input",
        "",
    ]
    ref = plan.reference
    if ref is not None:
        for label, attr in (
            ("PET series", "series_instance_uid"),
            ("Study", "study_instance_uid"),
            ("Frame of reference", "frame_of_reference_uid"),
            ("Diagnostic nuclide", "nuclide"),
            ("Injected activity (Bq)", "injected_activity_bq"),
            ("Injection time", "injection_time"),
            ("Acquisition time", "acquisition_time"),
        ):
            value = getattr(ref, attr, None)
            if value is not None:
                lines.append(f"- {label}: {_cell(value)}")
    lines += [
        f"- Therapy: {plan.agent} ({plan.nuclide}), {gbq:.3f} GBq planned",
        f"- Dose grid: {'x'.join(map(str, plan.dose.shape))} voxels of "
        f"{', '.join(f'{s:.3f}' for s in plan.dose.spacing_mm)} mm",
        "",
        "## Method",
        "",
        f"- Dose method: {plan.method}",
        *_provenance_lines(plan.dose.provenance),
        "",
        "## Assumptions",
        "",
        "| assumption | value | source |",
        "|---|---|---|",
    ]
    for a in plan.assumptions:
        lines.append(
            f"| {_cell(a.get('name', ''))} | {_cell(a.get('value', ''))} | "
            f"{_cell(a.get('source', ''))} |"
        )
    lines += [
        "",
        "## Absorbed dose per VOI",
        "",
        "| VOI | volume (mL) | mean (Gy) | max (Gy) | D2 (Gy) | D98 (Gy) | mean (Gy/GBq) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in plan.table:
        lines.append(
            f"| {row['name']} | {row['volume_ml']:.1f} | {row['mean_gy']:.3g} | "
            f"{row['max_gy']:.3g} | {row['d2_gy']:.3g} | {row['d98_gy']:.3g} | "
            f"{row['mean_gy'] / gbq:.3g} |"
        )
    if plan.files:
        lines += ["", "## Files", ""]
        lines += [f"- {name}: `{path}`" for name, path in plan.files.items()]
    if plan.notes:
        lines += ["", "## Notes", ""]
        lines += [f"- {n}" for n in plan.notes]
    lines.append("")
    return "\n".join(lines)
