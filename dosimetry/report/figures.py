"""The report's figures, drawn with the viewer's static figure functions.

* dose over the CT in three planes through the hottest point of the dose map, with
  orientation labels, VOI outlines, labelled isodoses and a colour bar;
* the emission image (PET or SPECT activity) over the CT through the same point;
* cumulative DVHs of every VOI;
* TAC fits, when the workflow fitted kinetics (``result.details["tac_fits"]``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import numpy as np

from ..errors import DosimetryError
from ..results import WorkflowResult
from ..volume import Volume

__all__ = ["result_figures", "isodose_levels"]


def isodose_levels(max_dose: float) -> list[float]:
    """Up to four round isodose levels below the maximum (1-2-5 series)."""
    if not np.isfinite(max_dose) or max_dose <= 0:
        return []
    levels = []
    exp = int(np.floor(np.log10(max_dose)))
    for e in range(exp - 1, exp + 1):
        for m in (1, 2, 5):
            v = m * 10.0**e
            if 0.05 * max_dose <= v < 0.95 * max_dose:
                levels.append(round(v, 6))
    return levels[-4:]


def _cursor(dose: Volume) -> list[float]:
    idx = np.unravel_index(int(np.argmax(dose.array)), dose.shape)
    return [float(x) for x in dose.index_to_world(np.array(idx, dtype=float))]


def result_figures(
    result: WorkflowResult, *, dpi: float = 90.0
) -> Iterator[tuple[bytes, str, str]]:
    """Figures of a result as ``(png bytes, caption, file name)``."""
    from ..viewer import dvh_figure, figure_to_png, tac_figure, three_plane_figure

    def Figure(png: bytes, caption: str, name: str) -> tuple[bytes, str, str]:  # noqa: N802
        return png, caption, name

    ct = result.images.get("CT")
    masks: Mapping[str, Volume] = result.masks
    for label, dose in (("dose", result.dose), ("RBE-weighted dose", result.dose_rbe)):
        if dose is None:
            continue
        cursor = _cursor(dose)
        levels = isodose_levels(float(np.max(dose.array)))
        fig = three_plane_figure(
            dose,
            ct,
            masks=masks,
            isodoses=levels,
            cursor_mm=cursor,
            title=f"{result.agent}: {label} ({dose.unit}) over CT",
            dpi=dpi,
        )
        yield Figure(
            figure_to_png(fig),
            f"{label.capitalize()} over the CT in three planes through its maximum "
            f"(LPS {', '.join(f'{c:.0f}' for c in cursor)} mm); isodoses "
            f"{', '.join(f'{v:g}' for v in levels)} {dose.unit}; VOI outlines with legend.",
            f"{label.replace(' ', '_').replace('-', '_')}_planes.png",
        )
        if label == "dose":
            emission = next(
                (result.images[k] for k in ("PET", "SPECT") if k in result.images), None
            )
            if emission is not None:
                fig = three_plane_figure(
                    emission,
                    ct,
                    masks=masks,
                    cursor_mm=cursor,
                    title=f"{'PET' if 'PET' in result.images else 'SPECT'} activity over CT",
                    dpi=dpi,
                )
                yield Figure(
                    figure_to_png(fig),
                    "Emission image (activity concentration at acquisition) over the CT, same planes.",
                    "emission_planes.png",
                )
    if result.dose is not None and masks:
        from ..metrics import dvh

        dvhs = {}
        for name, m in masks.items():
            try:
                dvhs[name] = dvh(result.dose, m, name=name)
            except DosimetryError:  # an empty VOI on the grid has no DVH; the table says so
                continue
        if dvhs:
            fig = dvh_figure(dvhs, title="Cumulative dose-volume histograms", dpi=dpi)
            yield Figure(
                figure_to_png(fig), "Cumulative DVH of every VOI (volume in %).", "dvh.png"
            )
    fits = result.details.get("tac_fits")
    if isinstance(fits, Mapping) and fits:
        fig = tac_figure(dict(fits), yscale="log", title="Time-activity curves and fits", dpi=dpi)
        yield Figure(
            figure_to_png(fig),
            "Measured VOI activities (points) and fitted curves used for the TIA.",
            "tac_fits.png",
        )
