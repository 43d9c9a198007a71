"""Figures and interactive viewers for the notebooks (matplotlib + ipywidgets).

* :func:`fused_slice` — one slice of an anatomical background (CT) with a functional
  overlay (PET, TIA or dose) as a colour wash, optional isodose lines and VOI outlines.
* :func:`slice_viewer` — the same as an interactive widget: slice slider, view
  (axial/coronal/sagittal), overlay opacity and threshold.
* :func:`dvh_plot` — cumulative DVHs of several VOIs.
* :func:`tac_plot` — measured time-activity points with fitted curves.

Everything is drawn on the overlay's grid: the background is resampled onto it (trilinear,
as a concentration); arrays are shown with the patient's left on the image's right
(radiological convention) for axial and coronal views.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from .errors import DosimetryError
from .volume import Volume, resample

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["fused_slice", "slice_viewer", "dvh_plot", "tac_plot", "extract_slice"]

View = Literal["axial", "coronal", "sagittal"]


def _on_grid(background: Volume | None, overlay: Volume) -> np.ndarray | None:
    if background is None:
        return None
    if background.same_grid(overlay):
        return np.asarray(background.array, dtype=float)
    fill = -1000.0 if background.unit == "HU" else 0.0
    return resample(background, overlay, "concentration", fill_value=fill).array


def _axis_of(volume: Volume, view: View) -> int:
    """Array axis whose direction is closest to the view's normal (S, P or L)."""
    normal = {"axial": 2, "coronal": 1, "sagittal": 0}[view]
    d = np.abs(volume.direction[normal, :])
    return int(np.argmax(d))


def extract_slice(array: np.ndarray, volume: Volume, view: View, index: int) -> np.ndarray:
    """2-D slice of ``array`` (on ``volume``'s grid) for ``view`` at ``index``.

    The returned image is oriented for display: rows run from anterior/superior at the top,
    columns put the patient's right on the image's left.
    """
    axis = _axis_of(volume, view)
    n = array.shape[axis]
    if not 0 <= index < n:
        raise DosimetryError(f"slice index {index} outside 0..{n - 1} for the {view} view")
    img = np.take(array, index, axis=axis)
    remaining = [a for a in range(3) if a != axis]
    # world direction of each remaining array axis
    dirs = [volume.direction[:, a] for a in remaining]
    # vertical display axis: S for coronal/sagittal, P for axial (anterior at the top)
    vertical_world = 1 if view == "axial" else 2
    v_idx = int(np.argmax([abs(d[vertical_world]) for d in dirs]))
    h_idx = 1 - v_idx
    if v_idx != 0:
        img = img.T
    # anterior (−P) at the top for axial; superior (+S) at the top otherwise
    v_sign = dirs[v_idx][vertical_world]
    if (view == "axial" and v_sign < 0) or (view != "axial" and v_sign > 0):
        img = img[::-1, :]
    # patient's right (−L) on the image's left for axial/coronal; anterior on the left for
    # sagittal
    horizontal_world = 1 if view == "sagittal" else 0
    h_sign = dirs[h_idx][horizontal_world]
    if h_sign < 0:
        img = img[:, ::-1]
    return np.ascontiguousarray(img)


def fused_slice(
    overlay: Volume,
    background: Volume | None = None,
    *,
    view: View = "axial",
    index: int | None = None,
    masks: Mapping[str, Volume] | None = None,
    isodoses: Sequence[float] = (),
    threshold: float | None = None,
    alpha: float = 0.5,
    cmap: str = "jet",
    window: tuple[float, float] = (-300.0, 400.0),
    ax: Axes | None = None,
    title: str | None = None,
) -> Figure:
    """Draw one slice of ``overlay`` over ``background``.

    Parameters
    ----------
    overlay
        Functional map (PET Bq/mL, TIA, dose Gy); its grid is the drawing grid.
    background
        Anatomical image (CT in HU), resampled onto the overlay grid.
    view, index
        Orientation and slice index (default: the slice with the highest overlay sum).
    masks
        VOIs on the overlay grid, drawn as outlines.
    isodoses
        Overlay levels drawn as white lines (in the overlay's unit).
    threshold
        Overlay values below it are transparent (default: 1 % of the maximum).
    alpha, cmap, window
        Wash opacity, colour map and background display window.
    ax
        Axes to draw into (a new figure otherwise).
    """
    import matplotlib.pyplot as plt

    if masks:
        for name, m in masks.items():
            overlay.check_same_grid(m, name=f"mask {name!r}")
    axis = _axis_of(overlay, view)
    if index is None:
        sums = overlay.array.sum(axis=tuple(a for a in range(3) if a != axis))
        index = int(np.argmax(sums))
    bg = _on_grid(background, overlay)
    if ax is None:
        fig, ax = plt.subplots(figsize=(5.5, 5.0))
    else:
        fig = ax.figure  # type: ignore[assignment]
    if bg is not None:
        ax.imshow(
            extract_slice(bg, overlay, view, index),
            cmap="gray",
            vmin=window[0],
            vmax=window[1],
            interpolation="nearest",
        )
    ov = extract_slice(np.asarray(overlay.array, dtype=float), overlay, view, index)
    vmax = float(np.max(overlay.array)) if overlay.array.size else 1.0
    thr = 0.01 * vmax if threshold is None else threshold
    wash = ax.imshow(
        np.ma.masked_less(ov, thr),
        cmap=cmap,
        alpha=alpha,
        vmin=thr,
        vmax=max(vmax, thr * 1.0001),
        interpolation="nearest",
    )
    if isodoses:
        ax.contour(ov, levels=sorted(isodoses), colors="w", linewidths=0.8)
    if masks:
        colors = plt.get_cmap("tab10")
        for n, (_, m) in enumerate(masks.items()):
            sl = extract_slice(np.asarray(m.array, dtype=float), overlay, view, index)
            if sl.max() >= 0.5:
                ax.contour(sl, levels=[0.5], colors=[colors(n % 10)], linewidths=0.8)
    fig.colorbar(wash, ax=ax, shrink=0.8, label=overlay.unit)
    ax.set_title(title or f"{view} slice {index}")
    ax.axis("off")
    return fig


def slice_viewer(
    overlay: Volume,
    background: Volume | None = None,
    *,
    masks: Mapping[str, Volume] | None = None,
    isodoses: Sequence[float] = (),
    cmap: str = "jet",
) -> Any:
    """Interactive fused viewer: slice slider, view selector, opacity and threshold.

    Returns an ``ipywidgets`` widget; display it as the last expression of a cell.
    """
    import ipywidgets as w
    import matplotlib.pyplot as plt

    bg = _on_grid(background, overlay)
    bg_vol = (
        None if bg is None else overlay.with_array(bg, unit=background.unit if background else "1")
    )
    vmax = float(np.max(overlay.array)) or 1.0
    view = w.Dropdown(options=["axial", "coronal", "sagittal"], value="axial", description="view")
    axis0 = _axis_of(overlay, "axial")
    sl = w.IntSlider(
        min=0,
        max=overlay.shape[axis0] - 1,
        value=overlay.shape[axis0] // 2,
        description="slice",
        continuous_update=False,
    )
    op = w.FloatSlider(min=0.0, max=1.0, step=0.05, value=0.5, description="opacity")
    th = w.FloatLogSlider(
        value=0.01 * vmax,
        base=10,
        min=np.log10(vmax) - 5,
        max=np.log10(vmax),
        description="threshold",
    )
    out = w.Output()

    def _view_changed(change: Any) -> None:
        ax_ = _axis_of(overlay, change["new"])
        sl.max = overlay.shape[ax_] - 1
        sl.value = min(sl.value, sl.max)
        _draw()

    def _draw(*_: Any) -> None:
        with out:
            out.clear_output(wait=True)
            fig = fused_slice(
                overlay,
                bg_vol,
                view=view.value,
                index=sl.value,
                masks=masks,
                isodoses=isodoses,
                threshold=th.value,
                alpha=op.value,
                cmap=cmap,
            )
            plt.show()
            plt.close(fig)

    view.observe(_view_changed, names="value")
    for c in (sl, op, th):
        c.observe(_draw, names="value")
    _draw()
    return w.VBox([w.HBox([view, sl]), w.HBox([op, th]), out])


def dvh_plot(dvhs: Mapping[str, Any], ax: Axes | None = None, *, unit: str = "Gy") -> Figure:
    """Cumulative DVHs (volume fraction vs dose) of several VOIs.

    ``dvhs`` maps VOI name to a :class:`dosimetry.metrics.DVH`.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        fig, ax = plt.subplots(figsize=(6, 4))
    else:
        fig = ax.figure  # type: ignore[assignment]
    for name, h in dvhs.items():
        edges = np.asarray(h.bin_edges_gy)
        ax.step(edges, np.asarray(h.cumulative_fraction) * 100.0, where="post", label=name)
    ax.set_xlabel(f"dose ({unit})")
    ax.set_ylabel("volume (%)")
    ax.set_ylim(0, 101)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def tac_plot(
    fits: Mapping[str, Any],
    ax: Axes | None = None,
    *,
    time_unit: str = "h",
    activity_unit: str = "MBq",
) -> Figure:
    """Measured points and fitted curves of time-activity fits.

    ``fits`` maps VOI name to a :class:`dosimetry.kinetics.TacFit` (its ``times_s``,
    ``activities_bq`` and ``predict(t_s)``).
    """
    import matplotlib.pyplot as plt

    from .units import ACTIVITY_UNITS_BQ, TIME_UNITS_S

    ts, ab = TIME_UNITS_S[time_unit], ACTIVITY_UNITS_BQ[activity_unit]
    if ax is None:
        fig, ax = plt.subplots(figsize=(6, 4))
    else:
        fig = ax.figure  # type: ignore[assignment]
    colors = plt.get_cmap("tab10")
    for n, (name, fit) in enumerate(fits.items()):
        t = np.asarray(fit.times_s, dtype=float)
        a = np.asarray(fit.activities_bq, dtype=float)
        grid = np.linspace(0.0, float(t.max()) * 1.3, 200)
        ax.plot(t / ts, a / ab, "o", color=colors(n % 10))
        ax.plot(
            grid / ts,
            np.asarray(fit.predict(grid)) / ab,
            "-",
            color=colors(n % 10),
            label=f"{name} ({fit.model})",
        )
    ax.set_xlabel(f"time after administration ({time_unit})")
    ax.set_ylabel(f"activity ({activity_unit})")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig
