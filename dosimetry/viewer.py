"""Figures and interactive viewers for notebooks and reports (matplotlib + ipywidgets).

Static figures (return a standalone :class:`matplotlib.figure.Figure`; no pyplot state,
Agg-safe, shown by Jupyter as PNG; :func:`figure_to_png` gives bytes for the HTML report):

* :func:`three_plane_figure` — axial, coronal and sagittal planes of a dose/PET map fused on
  CT, orientation letters on every edge, mm axes, colour bar with the unit, labelled
  isodoses, VOI outlines with a legend.
* :func:`dvh_figure`, :func:`tac_figure`, :func:`bland_altman_figure`.

Widgets (``ipywidgets``; display as the last expression of a cell):

* :func:`ortho_viewer` — three linked planes with a cursor in mm, the value under it, slice
  sliders in mm, "jump to VOI", colour map / log scale / threshold / opacity, CT and
  PET/SPECT window presets, isodose and VOI toggles. Clicking the image moves the cursor
  when the optional package ``ipyevents`` is installed.
* :func:`slice_viewer` — one plane at a time with a view selector (the same viewer).
* :func:`dvh_widget`, :func:`tac_widget`.

Notebook logging: :func:`notebook_logging` shows the library's log records as readable
notices.

Earlier helpers are kept: :func:`fused_slice`, :func:`dvh_plot`, :func:`tac_plot`,
:func:`extract_slice`.

Everything is drawn on the overlay's grid (the background is resampled onto it, trilinear)
and oriented from the affine in the radiological convention: patient right on the image's
left in axial and coronal views, anterior on the left in sagittal views, anterior/head at
the top. See :mod:`dosimetry._figures` for the geometry and ``docs/viewer.md``.
"""

from __future__ import annotations

import html
import logging
import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from ._figures import (
    CT_WINDOWS,
    FUNCTIONAL_WINDOWS,
    SUV_WINDOWS,
    VIEWS,
    Scene,
    View,
    bland_altman_figure,
    bland_altman_limits,
    clamp_index,
    cursor_from_mm,
    default_cursor,
    dose_colormap,
    draw_dvh,
    draw_plane,
    draw_tac,
    dvh_figure,
    figure_to_data_uri,
    figure_to_png,
    make_style,
    mask_center_index,
    new_figure,
    orientation_labels,
    plane,
    prepare_scene,
    render_planes,
    tac_figure,
    three_plane_figure,
    voi_colors,
)
from .errors import DosimetryError, InputDataError
from .units import VOLUME_UNITS
from .volume import Volume

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "three_plane_figure",
    "dvh_figure",
    "tac_figure",
    "bland_altman_figure",
    "bland_altman_limits",
    "figure_to_png",
    "figure_to_data_uri",
    "voi_colors",
    "orientation_labels",
    "dose_colormap",
    "ortho_viewer",
    "OrthoViewer",
    "slice_viewer",
    "dvh_widget",
    "DVHWidget",
    "tac_widget",
    "TacWidget",
    "notebook_logging",
    "fused_slice",
    "dvh_plot",
    "tac_plot",
    "extract_slice",
    "CT_WINDOWS",
    "SUV_WINDOWS",
    "VIEWS",
]

log = logging.getLogger(__name__)

#: colour maps offered by the viewer (perceptually uniform, sequential)
VIEWER_CMAPS: tuple[str, ...] = ("inferno", "magma", "plasma", "viridis", "cividis")


# ----------------------------------------------------------------------------- legacy helpers
def extract_slice(array: np.ndarray, volume: Volume, view: View, index: int) -> np.ndarray:
    """2-D slice of ``array`` (on ``volume``'s grid) for ``view`` at ``index``.

    The returned image is oriented for display (radiological convention, from the affine):
    anterior (axial) or head (coronal, sagittal) at the top, the patient's right on the
    image's left in axial and coronal views, anterior on the left in sagittal views.
    ``index`` counts along the array axis closest to the view's normal.
    """
    pl = plane(volume, view)
    if not 0 <= index < pl.n_slices:
        raise DosimetryError(
            f"slice index {index} outside 0..{pl.n_slices - 1} for the {view} view"
        )
    return np.ascontiguousarray(pl.extract(np.asarray(array), int(index)))


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
    cmap: str | None = None,
    window: str | tuple[float, float] | None = None,
    ax: Axes | None = None,
    title: str | None = None,
    scale: Literal["linear", "log"] = "linear",
    vmax: float | None = None,
) -> Figure:
    """Draw one plane of ``overlay`` over ``background`` (with colour bar and legend).

    Parameters
    ----------
    overlay
        Functional map (PET Bq/mL, TIA, dose Gy); its grid is the drawing grid.
    background
        Anatomical image (CT in HU) or PET/SPECT, resampled onto the overlay grid.
    view, index
        Orientation and slice index along the view's normal axis (default: the slice with
        the highest overlay sum).
    masks
        VOIs on the overlay grid, drawn as outlines with a legend.
    isodoses
        Overlay levels drawn as labelled lines (in the overlay's unit).
    threshold
        Overlay values below it are transparent (default: 1 % of the maximum).
    alpha, cmap, window
        Wash opacity, colour map (default perceptual inferno) and background window (a
        preset name of :data:`CT_WINDOWS`, ``"0..max"``, or ``(low, high)``).
    ax
        Axes to draw into (a new standalone figure otherwise).
    title
        Axes title (default: view and slice position in mm).
    scale, vmax
        Linear or logarithmic colour scale; top of the scale.
    """
    scene = prepare_scene(overlay, background, masks)
    style = make_style(
        scene,
        cmap=cmap,
        vmax=vmax,
        threshold=threshold,
        scale=scale,
        alpha=alpha,
        window=window,
        isodoses=isodoses,
    )
    pl = plane(overlay, view)
    cursor = list(default_cursor(scene))
    if index is not None:
        if not 0 <= index < pl.n_slices:
            raise DosimetryError(
                f"slice index {index} outside 0..{pl.n_slices - 1} for the {view} view"
            )
        cursor[pl.normal_axis] = int(index)
    else:
        v = np.clip(np.nan_to_num(scene.values), 0.0, None)
        sums = v.sum(axis=tuple(a for a in range(3) if a != pl.normal_axis))
        cursor[pl.normal_axis] = int(np.argmax(sums))
    if ax is None:
        fig = new_figure((5.8, 5.0), layout="constrained")
        ax = fig.subplots()
    else:
        fig = ax.figure  # type: ignore[assignment]
    wash = draw_plane(ax, scene, style, view, cursor, title=title)
    cbar = fig.colorbar(wash, ax=ax, shrink=0.8)
    cbar.set_label(style.unit_label, fontsize=8)
    if scene.masks:
        from matplotlib.lines import Line2D

        ax.legend(
            handles=[Line2D([], [], color=c, lw=2, label=n) for n, c in scene.colors.items()],
            loc="lower left",
            fontsize=7,
            framealpha=0.6,
        )
    return fig


def dvh_plot(dvhs: Mapping[str, Any], ax: Axes | None = None, *, unit: str = "Gy") -> Figure:
    """Cumulative DVHs (volume % vs dose) of several VOIs into ``ax`` (or a new figure).

    ``dvhs`` maps VOI name to a :class:`dosimetry.metrics.DVH`. See :func:`dvh_figure`.
    """
    if ax is None:
        return dvh_figure(dvhs, unit=unit)
    draw_dvh(ax, dvhs, unit=unit)
    return ax.figure  # type: ignore[return-value]


def tac_plot(
    fits: Mapping[str, Any],
    ax: Axes | None = None,
    *,
    time_unit: str = "h",
    activity_unit: str = "MBq",
) -> Figure:
    """Measured points and fitted curves of time-activity fits (see :func:`tac_figure`).

    ``fits`` maps VOI name to a :class:`dosimetry.kinetics.TacFit`.
    """
    if ax is None:
        return tac_figure(fits, time_unit=time_unit, activity_unit=activity_unit)
    draw_tac(ax, fits, time_unit=time_unit, activity_unit=activity_unit)
    return ax.figure  # type: ignore[return-value]


# ----------------------------------------------------------------------------- widgets
def _link_back(widget: Any, controller: Any) -> Any:
    widget.viewer = controller  # programmatic access from the returned widget
    return widget


class OrthoViewer:
    """Three linked planes of a fused image with a cursor in mm (controller of the widget).

    Build it with :func:`ortho_viewer` (which returns :attr:`widget`); the controller is
    reachable as ``widget.viewer`` for programmatic use (``set_cursor_mm``, ``jump_to``).

    The cursor is a voxel of the overlay grid: the three planes pass through it, the
    sliders show each plane's position in mm (LPS), and the readout line gives the cursor's
    LPS position, voxel index, overlay value (with unit), background value and the VOIs that
    contain it. With ``layout="single"`` one plane is shown with a view selector; the slice
    of each view is the cursor's, so switching views never leaves an index out of range.
    """

    def __init__(
        self,
        overlay: Volume,
        background: Volume | None = None,
        *,
        masks: Mapping[str, Volume] | None = None,
        isodoses: Sequence[float] | None = None,
        isodose_reference: float | None = None,
        cmap: str | None = None,
        vmax: float | None = None,
        threshold: float | None = None,
        scale: Literal["linear", "log"] = "linear",
        alpha: float | None = None,
        window: str | tuple[float, float] | None = None,
        unit_label: str | None = None,
        cursor_mm: Sequence[float] | None = None,
        layout: Literal["ortho", "single"] = "ortho",
        view: View = "axial",
        figsize: tuple[float, float] | None = None,
        dpi: float = 80.0,
    ) -> None:
        import ipywidgets as w

        if layout not in ("ortho", "single"):
            raise InputDataError(f"layout={layout!r}; valid: 'ortho', 'single'")
        if view not in VIEWS:
            raise InputDataError(f"view={view!r}; valid: {', '.join(VIEWS)}")
        self._w = w
        self.scene: Scene = prepare_scene(overlay, background, masks)
        self._isodose_reference = isodose_reference
        self._isodoses = tuple(isodoses or ())
        self._unit_label = unit_label
        self._vmax = vmax
        self._custom_cmap = cmap if cmap is not None and str(cmap) not in VIEWER_CMAPS else None
        base = make_style(
            self.scene,
            cmap=cmap,
            vmax=vmax,
            threshold=threshold,
            scale=scale,
            alpha=alpha,
            window=window,
            isodoses=isodoses,
            isodose_reference=isodose_reference,
            unit_label=unit_label,
        )
        self.layout = layout
        self.dpi = float(dpi)
        self._figsize = figsize
        self._syncing = False
        self._last_axes: dict[str, Any] = {}
        self._last_fig: Any = None
        self.index: tuple[int, int, int] = (
            default_cursor(self.scene)
            if cursor_mm is None
            else cursor_from_mm(self.scene.overlay, cursor_mm)
        )
        ov = self.scene.overlay
        unit = ov.unit
        wide = {"description_width": "initial"}

        # --- slice sliders, one per view, labelled in mm
        self.sliders: dict[str, Any] = {}
        for v in VIEWS:
            pl = plane(ov, v)
            wn = {"axial": 2, "coronal": 1, "sagittal": 0}[v]
            coords = [
                float(ov.index_to_world(self._with(pl.normal_axis, n))[wn])
                for n in range(pl.n_slices)
            ]
            order = np.argsort(coords, kind="stable")
            options = [(f"{'xyz'[wn]} = {coords[n]:+.1f} mm", int(n)) for n in order]
            s = w.SelectionSlider(
                options=options,
                value=int(self.index[pl.normal_axis]),
                description=f"{v}",
                continuous_update=False,
                style=wide,
                layout=w.Layout(width="340px", margin="0 48px 0 0"),
            )
            s.observe(self._slider_changed, names="value")
            self.sliders[v] = s
        self.view_selector = w.Dropdown(
            options=list(VIEWS), value=view, description="view", layout=w.Layout(width="190px")
        )
        self.view_selector.observe(self._view_changed, names="value")

        # --- jump to VOI
        self.voi_selector = w.Dropdown(
            options=[("(choose)", "")] + [(n, n) for n in self.scene.masks],
            value="",
            description="jump to VOI",
            style=wide,
            layout=w.Layout(width="260px"),
        )
        self.voi_selector.observe(self._voi_changed, names="value")

        # --- overlay display
        cmap_options = list(VIEWER_CMAPS)
        if self._custom_cmap is not None:
            cmap_options.insert(0, "custom")
        self.cmap_selector = w.Dropdown(
            options=cmap_options,
            value="custom" if self._custom_cmap is not None else (cmap or "inferno"),
            description="colour map",
            style=wide,
            layout=w.Layout(width="230px"),
        )
        self.scale_selector = w.ToggleButtons(
            options=["linear", "log"],
            value=scale,
            description="scale",
            style={"description_width": "initial", "button_width": "60px"},
        )
        top = base.vmax
        self.threshold = w.FloatSlider(
            min=0.0,
            max=top,
            step=top / 1000.0,
            value=min(base.threshold, top),
            description=f"threshold ({unit})",
            readout_format=".3g",
            continuous_update=False,
            style=wide,
            layout=w.Layout(width="380px"),
        )
        self.opacity = w.FloatSlider(
            min=0.0,
            max=1.0,
            step=0.05,
            value=base.alpha,
            description="opacity",
            continuous_update=False,
            style=wide,
        )
        self.show_isodoses = w.Checkbox(value=True, description="isodoses", indent=False)
        self.show_vois = w.Checkbox(value=True, description="VOI outlines", indent=False)
        self.show_cursor = w.Checkbox(value=True, description="cursor lines", indent=False)

        # --- background window
        self.window_preset = None
        self.window_range = None
        bg_controls: list[Any] = []
        if self.scene.background is not None:
            bg = self.scene.background[np.isfinite(self.scene.background)]
            lo_data = float(bg.min()) if bg.size else 0.0
            hi_data = float(bg.max()) if bg.size else 1.0
            if self.scene.background_unit == "HU":
                presets = list(CT_WINDOWS)
                bounds = [lo_data, hi_data] + [
                    lv + s * wd / 2.0 for wd, lv in CT_WINDOWS.values() for s in (-1, 1)
                ]
            else:
                presets = list(FUNCTIONAL_WINDOWS)
                if self.scene.background_unit in ("SUV", "g/mL SUV"):
                    presets += list(SUV_WINDOWS)
                bounds = [min(lo_data, 0.0), hi_data] + [
                    x for pair in SUV_WINDOWS.values() for x in pair
                ]
            lo_b, hi_b = min(bounds), max(bounds)
            if hi_b <= lo_b:
                hi_b = lo_b + 1.0
            assert base.window is not None
            preset_value = window if isinstance(window, str) else None
            if window is None:
                preset_value = presets[0]
            self.window_preset = w.Dropdown(
                options=presets + ["custom"],
                value=preset_value if preset_value in presets else "custom",
                description=f"window ({self.scene.background_unit})",
                style=wide,
                layout=w.Layout(width="260px"),
            )
            self.window_range = w.FloatRangeSlider(
                min=lo_b,
                max=hi_b,
                step=(hi_b - lo_b) / 1000.0,
                value=(max(base.window[0], lo_b), min(base.window[1], hi_b)),
                description="low / high",
                readout_format=".4g",
                continuous_update=False,
                style=wide,
                layout=w.Layout(width="420px"),
            )
            self.window_preset.observe(self._preset_changed, names="value")
            self.window_range.observe(self._window_range_changed, names="value")
            bg_controls = [self.window_preset, self.window_range]

        for c in (
            self.cmap_selector,
            self.scale_selector,
            self.threshold,
            self.opacity,
            self.show_isodoses,
            self.show_vois,
            self.show_cursor,
        ):
            c.observe(self._redraw, names="value")

        # --- output
        self.image = w.Image(format="png", layout=w.Layout(max_width="100%", height="auto"))
        self.readout = w.HTML()
        self._connect_clicks()

        if layout == "ortho":
            nav = w.HBox([self.sliders[v] for v in VIEWS])
        else:
            nav = w.HBox([self.view_selector, self.sliders[view]])
        self._nav = nav
        rows = [
            nav,
            w.HBox([self.voi_selector, self.cmap_selector, self.scale_selector]),
            w.HBox([self.threshold, self.opacity]),
        ]
        if bg_controls:
            rows.append(w.HBox(bg_controls))
        rows.append(w.HBox([self.show_isodoses, self.show_vois, self.show_cursor]))
        rows += [self.readout, self.image]
        self.widget = _link_back(w.VBox(rows), self)
        self._redraw()

    # -- helpers ------------------------------------------------------------------
    def _with(self, axis: int, value: int) -> np.ndarray:
        idx = np.array(self.index, dtype=float)
        idx[axis] = value
        return idx

    @property
    def views(self) -> tuple[str, ...]:
        """The views drawn now."""
        return tuple(VIEWS) if self.layout == "ortho" else (str(self.view_selector.value),)

    @property
    def cursor_mm(self) -> np.ndarray:
        """LPS position (mm) of the cursor voxel's centre."""
        return self.scene.overlay.index_to_world(np.asarray(self.index, dtype=float))

    def slice_index(self, view: str) -> int:
        """Index of ``view``'s plane along its normal array axis."""
        return int(self.index[plane(self.scene.overlay, view).normal_axis])

    def style(self) -> Any:
        """The display settings chosen in the controls."""
        name = self.cmap_selector.value
        cmap = self._custom_cmap if name == "custom" else name
        if name == "inferno":
            cmap = None  # the trimmed default
        thr = float(self.threshold.value)
        if self.scale_selector.value == "log" and thr <= 0.0:
            thr = 0.01 * float(self.threshold.max)
        window = None
        if self.window_range is not None:
            window = tuple(float(x) for x in self.window_range.value)
            if window[1] <= window[0]:
                window = (window[0], window[0] + 1e-6 * max(1.0, abs(window[0])))
        st = make_style(
            self.scene,
            cmap=cmap,
            vmax=self._vmax,
            threshold=thr,
            scale=self.scale_selector.value,
            alpha=float(self.opacity.value),
            window=window,  # type: ignore[arg-type]
            isodoses=self._isodoses,
            isodose_reference=self._isodose_reference,
            unit_label=self._unit_label,
            crosshair=bool(self.show_cursor.value),
        )
        st.show_isodoses = bool(self.show_isodoses.value)
        st.show_masks = bool(self.show_vois.value)
        return st

    # -- cursor ---------------------------------------------------------------------
    def set_cursor_index(self, index: Sequence[int]) -> None:
        """Move the cursor to voxel ``(k, j, i)`` (clamped into the grid) and redraw."""
        self.index = clamp_index(self.scene.overlay, index)
        self._sync_sliders()
        self._redraw()

    def set_cursor_mm(self, point_mm: Sequence[float]) -> None:
        """Move the cursor to the voxel nearest the LPS point (mm); error outside the grid."""
        self.set_cursor_index(cursor_from_mm(self.scene.overlay, point_mm))

    def jump_to(self, voi: str) -> None:
        """Move the cursor to VOI ``voi``: its voxel nearest to its centre of mass."""
        if voi not in self.scene.masks:
            raise InputDataError(
                f"voi={voi!r} is not one of the masks: {', '.join(self.scene.masks) or 'none'}"
            )
        idx = mask_center_index(self.scene.overlay, self.scene.masks[voi])
        if idx is None:
            log.warning("VOI %r is empty on the overlay grid; the cursor stays", voi)
            return
        self.set_cursor_index(idx)

    def click(self, x_px: float, y_px: float) -> bool:
        """Move the cursor to the point clicked in the image (pixels, origin top-left).

        Returns whether the click fell on one of the views.
        """
        if self._last_fig is None:
            return False
        height = float(self._last_fig.bbox.height)
        xd, yd = float(x_px), height - float(y_px)
        for v, ax in self._last_axes.items():
            if not ax.bbox.contains(xd, yd):
                continue
            h, vert = ax.transData.inverted().transform((xd, yd))
            pl = plane(self.scene.overlay, v)
            left, right, bottom, top = pl.extent_mm(self.index, self.cursor_mm)
            col = int(np.floor((h - left) / (right - left) * pl.n_cols))
            row = int(np.floor((vert - top) / (bottom - top) * pl.n_rows))
            if not (0 <= col < pl.n_cols and 0 <= row < pl.n_rows):
                return False
            self.set_cursor_index(pl.array_index(self.index, row, col))
            return True
        return False

    def cursor_text(self) -> str:
        """The readout line as plain text."""
        ov = self.scene.overlay
        p = self.cursor_mm
        k, j, i = self.index
        what = VOLUME_UNITS.get(ov.unit, "value")
        parts = [
            f"cursor LPS ({p[0]:.1f}, {p[1]:.1f}, {p[2]:.1f}) mm",
            f"voxel [{k}, {j}, {i}]",
            f"{what}: {self.scene.values[k, j, i]:.4g} {ov.unit}",
        ]
        if self.scene.background is not None:
            parts.append(
                f"background: {self.scene.background[k, j, i]:.4g} {self.scene.background_unit}"
            )
        inside = self.scene.mask_names_at(self.index)
        if self.scene.masks:
            parts.append(f"in: {', '.join(inside) if inside else '(no VOI)'}")
        return " | ".join(parts)

    # -- rendering ------------------------------------------------------------------
    def render(self) -> bytes:
        """PNG of the current views (also kept for mapping clicks back to voxels)."""
        fig, axes = render_planes(
            self.scene,
            self.style(),
            self.views,
            self.index,
            legend=True,
            footer=False,
            figsize=self._figsize,
            dpi=self.dpi,
            panel_height_in=4.2 if self.layout == "single" else 3.0,
        )
        # shown at its natural size (never stretched), shrunk only by a narrow page
        self.image.layout.width = f"{int(round(fig.bbox.width))}px"
        png = figure_to_png(fig, tight=False)
        self._last_fig, self._last_axes = fig, axes
        return png

    def _redraw(self, *_: Any) -> None:
        if self._syncing:
            return
        self.image.value = self.render()
        self.readout.value = (
            "<div style='font-family:monospace;font-size:12px'>"
            + html.escape(self.cursor_text())
            + "</div>"
        )

    def _sync_sliders(self) -> None:
        self._syncing = True
        try:
            for v, s in self.sliders.items():
                s.value = self.slice_index(v)
        finally:
            self._syncing = False

    # -- callbacks ------------------------------------------------------------------
    def _slider_changed(self, change: Any) -> None:
        if self._syncing:
            return
        view = next(v for v, s in self.sliders.items() if s is change["owner"])
        axis = plane(self.scene.overlay, view).normal_axis
        idx = list(self.index)
        idx[axis] = int(change["new"])
        self.index = clamp_index(self.scene.overlay, idx)
        self._redraw()

    def _view_changed(self, change: Any) -> None:
        view = str(change["new"])
        # the slider of the new view shows the cursor's slice: always within range
        self.index = clamp_index(self.scene.overlay, self.index)
        self._sync_sliders()
        self._nav.children = (self.view_selector, self.sliders[view])
        self._redraw()

    def _voi_changed(self, change: Any) -> None:
        if change["new"]:
            self.jump_to(str(change["new"]))

    def _preset_changed(self, change: Any) -> None:
        name = change["new"]
        if name == "custom" or self.window_range is None:
            return
        from ._figures import resolve_window

        lo, hi = resolve_window(name, self.scene) or (0.0, 1.0)
        self._syncing = True
        try:
            self.window_range.value = (
                max(lo, self.window_range.min),
                min(hi, self.window_range.max),
            )
        finally:
            self._syncing = False
        self._redraw()

    def _window_range_changed(self, change: Any) -> None:
        if self._syncing:
            return
        if self.window_preset is not None and self.window_preset.value != "custom":
            self._syncing = True
            try:
                self.window_preset.value = "custom"
            finally:
                self._syncing = False
        self._redraw()

    def _connect_clicks(self) -> None:
        try:
            from ipyevents import Event  # optional: clicks on the image move the cursor
        except ImportError:
            self._events = None
            return
        self._events = Event(source=self.image, watched_events=["click"])
        self._events.on_dom_event(self._on_dom_event)

    def _on_dom_event(self, event: Mapping[str, Any]) -> None:
        if "dataX" in event and "dataY" in event:
            self.click(float(event["dataX"]), float(event["dataY"]))

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)


def ortho_viewer(
    overlay: Volume,
    background: Volume | None = None,
    *,
    masks: Mapping[str, Volume] | None = None,
    isodoses: Sequence[float] | None = None,
    isodose_reference: float | None = None,
    cmap: str | None = None,
    vmax: float | None = None,
    threshold: float | None = None,
    scale: Literal["linear", "log"] = "linear",
    alpha: float | None = None,
    window: str | tuple[float, float] | None = None,
    unit_label: str | None = None,
    cursor_mm: Sequence[float] | None = None,
    dpi: float = 80.0,
) -> Any:
    """Three linked planes (axial, coronal, sagittal) of ``overlay`` fused on ``background``.

    Parameters
    ----------
    overlay
        Dose (Gy), PET/SPECT (Bq/mL), TIA, ...; the drawing grid.
    background
        CT (HU) or PET/SPECT shown in grey, resampled onto the overlay grid.
    masks
        ``{name: mask}`` on the overlay grid: outlines, legend, "jump to VOI" entries.
    isodoses, isodose_reference
        Isodose levels in the overlay's unit, or in % of ``isodose_reference``.
    cmap, vmax, threshold, scale, alpha, unit_label
        Initial wash settings (see :func:`three_plane_figure`); all adjustable in the widget.
    window
        Initial background window: CT preset name (``"soft tissue"``, ``"lung"``,
        ``"liver"``, ``"bone"``), ``"0..max"``, ``"0..50 % max"``, ``"SUV 0-5"``, or
        ``(low, high)``.
    cursor_mm
        Initial cursor (LPS mm); default through the bulk of the overlay.
    dpi
        Rendering resolution of the image.

    Returns
    -------
    ipywidgets.VBox
        The widget; ``widget.viewer`` is its :class:`OrthoViewer` controller.
    """
    return OrthoViewer(
        overlay,
        background,
        masks=masks,
        isodoses=isodoses,
        isodose_reference=isodose_reference,
        cmap=cmap,
        vmax=vmax,
        threshold=threshold,
        scale=scale,
        alpha=alpha,
        window=window,
        unit_label=unit_label,
        cursor_mm=cursor_mm,
        dpi=dpi,
    ).widget


def slice_viewer(
    overlay: Volume,
    background: Volume | None = None,
    *,
    masks: Mapping[str, Volume] | None = None,
    isodoses: Sequence[float] = (),
    cmap: str | None = None,
    view: View = "axial",
    dpi: float = 80.0,
) -> Any:
    """One plane at a time with a view selector (axial/coronal/sagittal).

    The same viewer as :func:`ortho_viewer` with ``layout="single"``: slice slider in mm,
    opacity, threshold, window, jump to VOI. Returns an ``ipywidgets`` widget (its
    controller is ``widget.viewer``).
    """
    return OrthoViewer(
        overlay,
        background,
        masks=masks,
        isodoses=isodoses,
        cmap=cmap,
        layout="single",
        view=view,
        dpi=dpi,
    ).widget


class DVHWidget:
    """DVH plot with one checkbox per VOI and a statistics table (see :func:`dvh_widget`)."""

    def __init__(
        self,
        dose: Volume,
        masks: Mapping[str, Volume],
        density: Volume | None = None,
        *,
        bin_width_gy: float | None = None,
        dpi: float = 80.0,
    ) -> None:
        import ipywidgets as w

        from .metrics import dose_statistics, dvh

        if not masks:
            raise InputDataError("masks is empty: pass {name: mask} on the dose grid")
        self.dpi = float(dpi)
        self.colors = voi_colors(list(masks))
        self.dvhs = {}
        empty = []
        for name, m in masks.items():
            try:
                self.dvhs[name] = dvh(dose, m, bin_width_gy=bin_width_gy, name=name)
            except InputDataError as exc:
                if "empty" not in str(exc):
                    raise
                empty.append(name)
        if empty:
            log.warning("VOIs empty on the dose grid, left out of the DVH: %s", ", ".join(empty))
        if not self.dvhs:
            raise InputDataError("every mask is empty on the dose grid: nothing to plot")
        self.unit = dose.unit
        rows = dose_statistics(dose, {n: masks[n] for n in self.dvhs}, density=density, v_gy=())
        self.checkboxes = {
            n: w.Checkbox(value=True, description=n, indent=False) for n in self.dvhs
        }
        self.volume_mode = w.ToggleButtons(
            options=[("volume %", "percent"), ("volume mL", "ml")], value="percent"
        )
        for c in (*self.checkboxes.values(), self.volume_mode):
            c.observe(self._redraw, names="value")
        self.image = w.Image(format="png")
        self.table = w.HTML(self._table_html(rows))
        self.widget = _link_back(
            w.VBox(
                [
                    w.HBox(list(self.checkboxes.values())),
                    self.volume_mode,
                    self.image,
                    self.table,
                ]
            ),
            self,
        )
        self._redraw()

    def _table_html(self, rows: Sequence[Mapping[str, Any]]) -> str:
        u = html.escape(self.unit)
        head = (
            f"<tr><th>VOI</th><th>volume (mL)</th><th>mass (g)</th><th>mean ({u})</th>"
            f"<th>D98 ({u})</th><th>D50 ({u})</th><th>D2 ({u})</th><th>max ({u})</th></tr>"
        )
        body = "".join(
            f"<tr><td>{html.escape(str(r['name']))}</td><td>{r['volume_ml']:.4g}</td>"
            f"<td>{r['mass_g']:.4g}</td><td>{r['mean_gy']:.4g}</td><td>{r['d98_gy']:.4g}</td>"
            f"<td>{r['d50_gy']:.4g}</td><td>{r['d2_gy']:.4g}</td><td>{r['max_gy']:.4g}</td></tr>"
            for r in rows
        )
        return (
            "<table style='font-size:12px;border-collapse:collapse' border='1' "
            f"cellpadding='3'>{head}{body}</table>"
        )

    def selected(self) -> list[str]:
        """Names of the VOIs ticked."""
        return [n for n, c in self.checkboxes.items() if c.value]

    def render(self) -> bytes:
        """PNG of the DVHs of the ticked VOIs."""
        chosen = {n: self.dvhs[n] for n in self.selected()}
        fig = new_figure((6.4, 4.0), dpi=self.dpi, layout="constrained")
        ax = fig.subplots()
        if chosen:
            draw_dvh(
                ax,
                chosen,
                unit=self.unit,
                volume=self.volume_mode.value,
                colors=self.colors,
            )
        else:
            ax.text(0.5, 0.5, "no VOI selected", ha="center", va="center")
            ax.set_axis_off()
        return figure_to_png(fig)

    def _redraw(self, *_: Any) -> None:
        self.image.value = self.render()


def dvh_widget(
    dose: Volume,
    masks: Mapping[str, Volume],
    density: Volume | None = None,
    *,
    bin_width_gy: float | None = None,
    dpi: float = 80.0,
) -> Any:
    """Cumulative DVHs with a checkbox per VOI, volume in % or mL, and a statistics table.

    Parameters
    ----------
    dose
        Dose map (Gy, Gy_RBE, ...).
    masks
        ``{name: mask}`` on the dose grid. Empty masks are left out (logged).
    density
        Mass density (g/mL) on the dose grid for the masses and mass-weighted means of the
        table (default: the soft-tissue density parameter, see
        :func:`dosimetry.metrics.dose_statistics`).
    bin_width_gy
        DVH bin width (default automatic, see :func:`dosimetry.dvh`).
    dpi
        Image resolution.

    Returns
    -------
    ipywidgets.VBox
        ``widget.viewer`` is the :class:`DVHWidget`.
    """
    return DVHWidget(dose, masks, density, bin_width_gy=bin_width_gy, dpi=dpi).widget


class TacWidget:
    """TAC fits plot with VOI checkboxes, log/linear axis and the fit summary."""

    def __init__(self, fits: Mapping[str, Any], *, activity_unit: str = "MBq", dpi: float = 80.0):
        import ipywidgets as w

        if not isinstance(fits, Mapping):
            fits = {"VOI": fits}
        if not fits:
            raise InputDataError("fits is empty: pass {name: dosimetry.fit_tac(...)}")
        self.fits = dict(fits)
        self.dpi = float(dpi)
        self.activity_unit = activity_unit
        self.colors = voi_colors(list(self.fits))
        self.checkboxes = {n: w.Checkbox(value=True, description=n, indent=False) for n in fits}
        self.yscale = w.ToggleButtons(options=["linear", "log"], value="linear")
        self.time_unit = w.Dropdown(options=["h", "d", "min", "s"], value="h", description="time")
        for c in (*self.checkboxes.values(), self.yscale, self.time_unit):
            c.observe(self._redraw, names="value")
        self.image = w.Image(format="png")
        self.summary = w.HTML()
        self.widget = _link_back(
            w.VBox(
                [
                    w.HBox(list(self.checkboxes.values())),
                    w.HBox([self.yscale, self.time_unit]),
                    self.image,
                    self.summary,
                ]
            ),
            self,
        )
        self._redraw()

    def selected(self) -> list[str]:
        """Names of the fits ticked."""
        return [n for n, c in self.checkboxes.items() if c.value]

    def render(self) -> bytes:
        """PNG of the ticked fits."""
        chosen = {n: self.fits[n] for n in self.selected()}
        fig = new_figure((6.4, 4.0), dpi=self.dpi, layout="constrained")
        ax = fig.subplots()
        if chosen:
            draw_tac(
                ax,
                chosen,
                time_unit=self.time_unit.value,
                activity_unit=self.activity_unit,
                yscale=self.yscale.value,
                colors=self.colors,
            )
        else:
            ax.text(0.5, 0.5, "no VOI selected", ha="center", va="center")
            ax.set_axis_off()
        return figure_to_png(fig)

    def _redraw(self, *_: Any) -> None:
        self.image.value = self.render()
        text = "\n\n".join(
            f"{n}\n{self.fits[n].summary()}"
            for n in self.selected()
            if hasattr(self.fits[n], "summary")
        )
        self.summary.value = (
            f"<pre style='font-size:11px;line-height:1.25'>{html.escape(text)}</pre>"
            if text
            else ""
        )


def tac_widget(fits: Mapping[str, Any], *, activity_unit: str = "MBq", dpi: float = 80.0) -> Any:
    """Time-activity fits with a checkbox per VOI, linear/log axis, time unit and summaries.

    Parameters
    ----------
    fits
        ``{name: TacFit}`` from :func:`dosimetry.fit_tac` (or one fit).
    activity_unit
        Activity axis unit.
    dpi
        Image resolution.

    Returns
    -------
    ipywidgets.VBox
        ``widget.viewer`` is the :class:`TacWidget`.
    """
    return TacWidget(fits, activity_unit=activity_unit, dpi=dpi).widget


# ----------------------------------------------------------------------------- logging
_NOTICE_STYLE = {
    "DEBUG": ("#6c757d", "#f4f5f6", "Debug"),
    "INFO": ("#1c7ed6", "#e7f1fb", "Note"),
    "WARNING": ("#e8a400", "#fff8e1", "Warning"),
    "ERROR": ("#d6336c", "#fdecef", "Error"),
    "CRITICAL": ("#a61e4d", "#fbe3ea", "Critical"),
}


def _in_kernel() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython is a dependency of ipywidgets
        return False
    ip = get_ipython()
    return ip is not None and getattr(ip, "kernel", None) is not None


class NotebookNoticeHandler(logging.Handler):
    """Logging handler: each record as a small styled HTML notice in Jupyter.

    Outside a Jupyter kernel it writes ``LEVEL logger: message`` lines to ``sys.stderr``.
    The notice's plain-text alternative is the same line, so notebook tests that compare
    text outputs see a stable string.
    """

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
            if record.exc_info:
                message += "\n" + logging.Formatter().formatException(record.exc_info)
            plain = f"{record.levelname} {record.name}: {message}"
            if _in_kernel():
                from IPython.display import display

                colour, bg, title = _NOTICE_STYLE.get(
                    record.levelname, ("#6c757d", "#f4f5f6", record.levelname.title())
                )
                body = html.escape(message).replace("\n", "<br>")
                notice = (
                    f"<div class='dosimetry-notice dosimetry-{record.levelname.lower()}' "
                    f"style='border-left:4px solid {colour};background:{bg};color:#212529;"
                    "padding:4px 10px;margin:3px 0;font-family:sans-serif;font-size:13px;"
                    f"line-height:1.35'><b>{title}</b> "
                    f"<span style='color:#6c757d;font-size:11px'>"
                    f"({html.escape(record.name)})</span><br>{body}</div>"
                )
                display({"text/html": notice, "text/plain": plain}, raw=True)
            else:
                sys.stderr.write(plain + "\n")
                sys.stderr.flush()
        except Exception:  # noqa: BLE001 - logging must never raise into the caller
            self.handleError(record)


def notebook_logging(level: int | str = "WARNING", *, enable: bool = True) -> None:
    """Show the ``dosimetry`` logger's records as readable notices in a notebook.

    Installs one :class:`NotebookNoticeHandler` on the ``dosimetry`` logger (calling again
    replaces it: never two) and stops propagation to the root logger while it is installed,
    so a record is not printed twice (a notebook's root handler would print it as raw
    ``WARNING:dosimetry...`` text on stderr). Outside IPython the handler writes plain lines
    to stderr.

    Parameters
    ----------
    level
        Lowest level shown (``"INFO"``, ``"WARNING"``, ... or a number). The ``dosimetry``
        logger's own level is lowered to it when needed.
    enable
        ``False`` removes the handler and restores propagation.

    Returns nothing, so that a cell ending with the call shows no output.
    """
    lg = logging.getLogger("dosimetry")
    if isinstance(level, str):
        number = logging.getLevelName(level.upper())
        if not isinstance(number, int):
            raise InputDataError(
                f"level={level!r} is not a logging level; valid: DEBUG, INFO, WARNING, ERROR"
            )
        level_no = number
    else:
        level_no = int(level)
    previous = [h for h in lg.handlers if isinstance(h, NotebookNoticeHandler)]
    for h in previous:
        lg.removeHandler(h)
    if not enable:
        if previous:
            lg.propagate = True
        return
    lg.addHandler(NotebookNoticeHandler(level=level_no))
    lg.propagate = False
    if lg.getEffectiveLevel() > level_no:
        lg.setLevel(level_no)
