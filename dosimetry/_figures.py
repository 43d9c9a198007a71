"""Static figures: three planes, DVH, TAC fits, Bland-Altman (matplotlib, no pyplot).

Every public function here returns a :class:`matplotlib.figure.Figure` built directly (not
through :mod:`matplotlib.pyplot`), so no global figure state is created or leaked and the
functions work under any backend, Agg included. The figures display themselves in Jupyter
(they carry a ``_repr_png_``) and :func:`figure_to_png` turns them into PNG bytes for the
HTML report.

Geometry
--------
Images are drawn on the overlay's grid. For each view the array axis closest to the view's
normal is found from the affine (a permutation of the three axes, so permuted and flipped
grids are handled), and the slice is re-oriented for display in the radiological convention:

========  ======================  ======================  ==============================
view      image left -> right     image top -> bottom     LPS coordinate on the axes
========  ======================  ======================  ==============================
axial     patient right -> left   anterior -> posterior   x (horizontal), y (vertical)
coronal   patient right -> left   head -> feet            x, z
sagittal  anterior -> posterior   head -> feet            y, z
========  ======================  ======================  ==============================

The orientation letters on the image edges are computed from the affine (the world direction
of each image axis), so an oblique grid shows two-letter labels such as ``"LP"``. Axes are in
mm (LPS): along each image axis the coordinate of the dominant LPS axis, anchored at the
cursor, with the true pixel spacing (exact for grids aligned with the patient axes).
"""

from __future__ import annotations

import functools
import io
import itertools
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from .errors import InputDataError, UnitError
from .units import ACTIVITY_UNITS_BQ, TIME_UNITS_S, VOLUME_UNITS
from .volume import Volume, resample

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.colors import Colormap, Normalize
    from matplotlib.figure import Figure

    from .kinetics import TacFit
    from .metrics import DVH

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
    "CT_WINDOWS",
    "SUV_WINDOWS",
    "VIEWS",
]

log = logging.getLogger(__name__)

View = Literal["axial", "coronal", "sagittal"]
VIEWS: tuple[View, View, View] = ("axial", "coronal", "sagittal")

#: CT display windows ``name -> (width_hu, level_hu)``. Display conventions, not physics:
#: the default presets of the OHIF Viewer (OHIF/Viewers,
#: ``extensions/cornerstone/src/components/WindowLevelActionMenu/defaultWindowLevelPresets.ts``:
#: soft tissue W400/L40, lung W1500/L-600, liver W150/L90, bone W2500/L480). Override by
#: passing ``window=(low_hu, high_hu)``.
CT_WINDOWS: dict[str, tuple[float, float]] = {
    "soft tissue": (400.0, 40.0),
    "lung": (1500.0, -600.0),
    "liver": (150.0, 90.0),
    "bone": (2500.0, 480.0),
}

#: Windows for backgrounds in SUV units ``name -> (low, high)``: "SUV 0-5" is the OHIF
#: Viewer's default PT preset (W5/L2.5, same file as :data:`CT_WINDOWS`); "0..max" and
#: "0..50 % max" are offered for every functional image (PET/SPECT, any unit).
SUV_WINDOWS: dict[str, tuple[float, float]] = {"SUV 0-5": (0.0, 5.0)}

#: Window names offered for functional backgrounds; resolved from the data.
FUNCTIONAL_WINDOWS: tuple[str, ...] = ("0..max", "0..50 % max")

# world axis of each view's normal (0 = x/L, 1 = y/P, 2 = z/S)
_NORMAL = {"axial": 2, "coronal": 1, "sagittal": 0}
# (world axis, sign): the LPS coordinate that increases to the image's right / downwards
_HORIZONTAL = {"axial": (0, 1), "coronal": (0, 1), "sagittal": (1, 1)}
_VERTICAL = {"axial": (1, 1), "coronal": (2, -1), "sagittal": (2, -1)}
_POS_LETTER = ("L", "P", "H")
_NEG_LETTER = ("R", "A", "F")
_AXIS_NAME = ("x", "y", "z")
#: a world component at least this large (of the unit vector) adds a letter to an
#: orientation label (0.25 ~ 14.5 degrees off the main axis)
_LETTER_MIN_COMPONENT = 0.25


# ----------------------------------------------------------------------------- geometry
def _world_axes(matrix: np.ndarray) -> tuple[int, int, int]:
    """``perm[w]``: the array axis closest to world axis ``w`` (a permutation).

    ``matrix`` is the 3x3 part of the affine (columns: index axes in LPS).
    """
    d = np.abs(matrix / np.linalg.norm(matrix, axis=0)[np.newaxis, :])  # [world, array]
    best = max(
        itertools.permutations(range(3)),
        key=lambda p: float(d[0, p[0]] + d[1, p[1]] + d[2, p[2]]),
    )
    return (int(best[0]), int(best[1]), int(best[2]))


@dataclass(frozen=True)
class Plane:
    """How one view of a grid is cut and oriented for display (internal)."""

    view: str
    normal_axis: int
    row_axis: int
    col_axis: int
    row_flip: bool
    col_flip: bool
    n_rows: int
    n_cols: int
    n_slices: int
    row_step_mm: np.ndarray = field(repr=False)  # LPS vector of one display row down
    col_step_mm: np.ndarray = field(repr=False)  # LPS vector of one display column right
    normal_step_mm: np.ndarray = field(repr=False)  # LPS vector of one slice index up

    def extract(self, array: np.ndarray, index: int) -> np.ndarray:
        """The display image of ``array`` at slice ``index`` along the normal axis."""
        img = np.take(array, index, axis=self.normal_axis)
        remaining = [a for a in range(3) if a != self.normal_axis]
        if remaining.index(self.row_axis) == 1:
            img = img.T
        if self.row_flip:
            img = img[::-1, :]
        if self.col_flip:
            img = img[:, ::-1]
        return img

    def display_rc(self, index: Sequence[int]) -> tuple[int, int]:
        """Display (row, column) of array index ``(k, j, i)``."""
        r = int(index[self.row_axis])
        c = int(index[self.col_axis])
        if self.row_flip:
            r = self.n_rows - 1 - r
        if self.col_flip:
            c = self.n_cols - 1 - c
        return r, c

    def array_index(self, base: Sequence[int], row: int, col: int) -> tuple[int, int, int]:
        """Array index of display pixel ``(row, col)`` in the slice of ``base``."""
        row = min(max(int(row), 0), self.n_rows - 1)
        col = min(max(int(col), 0), self.n_cols - 1)
        out = [int(b) for b in base]
        out[self.row_axis] = self.n_rows - 1 - row if self.row_flip else row
        out[self.col_axis] = self.n_cols - 1 - col if self.col_flip else col
        return (out[0], out[1], out[2])

    def labels(self) -> dict[str, str]:
        """Orientation letters of the four image edges: ``left, right, top, bottom``."""
        return {
            "left": _letters(-self.col_step_mm),
            "right": _letters(self.col_step_mm),
            "top": _letters(-self.row_step_mm),
            "bottom": _letters(self.row_step_mm),
        }

    def extent_mm(self, cursor_index: Sequence[int], cursor_mm: np.ndarray) -> tuple[float, ...]:
        """``imshow`` extent (left, right, bottom, top) in mm, anchored at the cursor."""
        wh, sh = _HORIZONTAL[self.view]
        wv, sv = _VERTICAL[self.view]
        r_cur, c_cur = self.display_rc(cursor_index)
        sp_c = float(np.linalg.norm(self.col_step_mm)) * sh
        sp_r = float(np.linalg.norm(self.row_step_mm)) * sv
        h0 = float(cursor_mm[wh]) - c_cur * sp_c
        v0 = float(cursor_mm[wv]) - r_cur * sp_r
        return (
            h0 - 0.5 * sp_c,
            h0 + (self.n_cols - 0.5) * sp_c,
            v0 + (self.n_rows - 0.5) * sp_r,
            v0 - 0.5 * sp_r,
        )


def _letters(vec: np.ndarray) -> str:
    v = np.asarray(vec, dtype=float)
    v = v / float(np.linalg.norm(v))
    out = ""
    for w in np.argsort(-np.abs(v), kind="stable"):
        if out and abs(v[w]) < _LETTER_MIN_COMPONENT:
            break
        out += _POS_LETTER[w] if v[w] > 0 else _NEG_LETTER[w]
    return out


@functools.lru_cache(maxsize=32)
def _plane_cached(affine_bytes: bytes, shape: tuple[int, int, int], view: str) -> Plane:
    affine = np.frombuffer(affine_bytes, dtype=float).reshape(4, 4)
    perm = _world_axes(affine[:3, :3])
    wh, sh = _HORIZONTAL[view]
    wv, sv = _VERTICAL[view]
    n_ax, r_ax, c_ax = perm[_NORMAL[view]], perm[wv], perm[wh]
    a = affine[:3, :3]
    col_flip = bool(a[wh, c_ax] * sh < 0)
    row_flip = bool(a[wv, r_ax] * sv < 0)
    return Plane(
        view=view,
        normal_axis=n_ax,
        row_axis=r_ax,
        col_axis=c_ax,
        row_flip=row_flip,
        col_flip=col_flip,
        n_rows=shape[r_ax],
        n_cols=shape[c_ax],
        n_slices=shape[n_ax],
        row_step_mm=a[:, r_ax] * (-1.0 if row_flip else 1.0),
        col_step_mm=a[:, c_ax] * (-1.0 if col_flip else 1.0),
        normal_step_mm=a[:, n_ax].copy(),
    )


def plane(volume: Volume, view: str) -> Plane:
    """Display geometry of ``view`` (``"axial"``, ``"coronal"``, ``"sagittal"``) of a grid."""
    if view not in _NORMAL:
        raise InputDataError(f"view={view!r} is not a view; valid: {', '.join(VIEWS)}")
    aff = np.ascontiguousarray(volume.affine, dtype=float)
    return _plane_cached(aff.tobytes(), volume.shape, view)


def orientation_labels(volume: Volume, view: str) -> dict[str, str]:
    """Patient orientation letters on the four edges of ``view`` of ``volume``'s grid.

    Letters: R/L (x), A/P (y), H/F (z, head/feet). Computed from the affine, so they are
    right for flipped, permuted and oblique grids.

    Returns
    -------
    dict
        ``{"left": ..., "right": ..., "top": ..., "bottom": ...}``.

    Examples
    --------
    >>> import numpy as np
    >>> axial = np.array([[0.0, 0, 1], [0, 1, 0], [1, 0, 0]])  # slices +S, rows +P, cols +L
    >>> v = Volume.from_spacing(np.zeros((2, 3, 4)), (2.0, 1.0, 1.0), direction=axial)
    >>> orientation_labels(v, "axial")
    {'left': 'R', 'right': 'L', 'top': 'A', 'bottom': 'P'}
    """
    return plane(volume, view).labels()


# ----------------------------------------------------------------------------- colours
def dose_colormap() -> Colormap:
    """Default colour map of functional maps: perceptually uniform *inferno*, trimmed.

    The darkest 12 % of inferno (near-black) is cut so that the lowest drawn value is not
    confused with air or with the transparent region below the threshold.
    """
    from matplotlib import colormaps
    from matplotlib.colors import ListedColormap

    base = colormaps["inferno"]
    return ListedColormap(base(np.linspace(0.12, 1.0, 256)), name="inferno_wash")


def _resolve_cmap(cmap: str | Colormap | None) -> Colormap:
    from matplotlib import colormaps
    from matplotlib.colors import Colormap as _Colormap

    if cmap is None:
        return dose_colormap()
    if isinstance(cmap, _Colormap):
        return cmap
    try:
        return colormaps[str(cmap)]
    except KeyError:
        raise InputDataError(
            f"cmap={cmap!r} is not a matplotlib colour map; use a perceptual sequential map "
            "such as 'inferno', 'magma', 'viridis' or 'cividis' (or None for the default)"
        ) from None


def _plain_label(text: str) -> str:
    """Untrusted text (a VOI name from a structure set) as a matplotlib label.

    Control characters and escape sequences are removed (:func:`dosimetry._text.terminal`:
    matplotlib has no glyph for them and warns) and every ``$`` is escaped, so mathtext
    never parses the name (an unbalanced ``$\\frac{$`` raises while the figure is drawn).

    >>> _plain_label("a $x^{2$ \\x1b[31mred\\x1b[0m")
    'a \\\\$x^{2\\\\$ red'
    """
    from ._text import terminal

    return terminal(str(text)).replace("$", r"\$")


def voi_colors(names: Sequence[str]) -> dict[str, tuple[float, float, float, float]]:
    """Distinct colours for VOIs, by position: the same order gives the same colours.

    Uses matplotlib's qualitative *tab10* for up to 10 names, *tab20* beyond.
    """
    from matplotlib import colormaps

    names = list(names)
    cmap = colormaps["tab10" if len(names) <= 10 else "tab20"]
    n = cmap.N
    return {name: tuple(float(c) for c in cmap(k % n)) for k, name in enumerate(names)}  # type: ignore[misc]


def unit_label_for(unit: str) -> str:
    """Colour-bar label of a volume unit: ``"absorbed dose (Gy)"``."""
    what = VOLUME_UNITS.get(unit)
    return f"{what} ({unit})" if what else unit


# ----------------------------------------------------------------------------- figure
@functools.cache
def _figure_class() -> type:
    from matplotlib.figure import Figure

    class DosimetryFigure(Figure):
        """A matplotlib Figure that shows itself in Jupyter without pyplot."""

        def _repr_png_(self) -> bytes:
            return figure_to_png(self)

    return DosimetryFigure


def new_figure(figsize: tuple[float, float], dpi: float = 100.0, **kwargs: Any) -> Figure:
    """A standalone :class:`~matplotlib.figure.Figure` (never registered with pyplot)."""
    fig: Figure = _figure_class()(figsize=figsize, dpi=dpi, **kwargs)
    return fig


def figure_to_png(fig: Figure, *, dpi: float | None = None, tight: bool = True) -> bytes:
    """Render ``fig`` to PNG bytes with the Agg renderer (no display needed).

    Parameters
    ----------
    fig
        Any matplotlib figure.
    dpi
        Resolution (default: the figure's).
    tight
        Crop to the drawn content (``bbox_inches="tight"``); the widgets pass ``False`` so
        that pixel positions map back to the axes.
    """
    buf = io.BytesIO()
    fig.savefig(
        buf,
        format="png",
        dpi=fig.dpi if dpi is None else dpi,
        bbox_inches="tight" if tight else None,
        facecolor="white",
    )
    return buf.getvalue()


def figure_to_data_uri(fig: Figure, *, dpi: float | None = None) -> str:
    """``data:image/png;base64,...`` of ``fig``, for an ``<img src=...>`` in a
    self-contained HTML file (no external files, no network)."""
    import base64

    return "data:image/png;base64," + base64.b64encode(figure_to_png(fig, dpi=dpi)).decode()


# ----------------------------------------------------------------------------- scene
@dataclass
class Scene:
    """Arrays of one overlay, its background and masks on the overlay grid (internal)."""

    overlay: Volume
    values: np.ndarray
    background: np.ndarray | None
    background_unit: str | None
    masks: dict[str, np.ndarray]
    colors: dict[str, tuple[float, float, float, float]]
    data_max: float

    def mask_names_at(self, index: Sequence[int]) -> list[str]:
        k, j, i = (int(x) for x in index)
        return [n for n, m in self.masks.items() if m[k, j, i] >= 0.5]


def prepare_scene(
    overlay: Volume,
    background: Volume | None = None,
    masks: Mapping[str, Volume] | None = None,
) -> Scene:
    """Check inputs and put everything on the overlay grid (background resampled)."""
    if not isinstance(overlay, Volume):
        raise InputDataError(f"overlay must be a dosimetry.Volume, got {type(overlay).__name__}")
    if background is not None and not isinstance(background, Volume):
        raise InputDataError(
            f"background must be a dosimetry.Volume or None, got {type(background).__name__}"
        )
    mask_arrays: dict[str, np.ndarray] = {}
    for name, m in (masks or {}).items():
        if not isinstance(m, Volume):
            raise InputDataError(f"mask {name!r} must be a dosimetry.Volume, got {type(m)}")
        overlay.check_same_grid(m, name=f"mask {name!r}")
        mask_arrays[str(name)] = np.asarray(m.array)  # bool or occupancy; sliced on demand
    values = np.asarray(overlay.array)
    if not np.issubdtype(values.dtype, np.floating):
        values = values.astype(float)
    finite = values[np.isfinite(values)]
    data_max = float(finite.max()) if finite.size else 0.0
    bg = None
    if background is not None:
        if background.same_grid(overlay):
            bg = np.asarray(background.array)
            if not np.issubdtype(bg.dtype, np.floating):
                bg = bg.astype(np.float32)
        else:
            fill = -1000.0 if background.unit == "HU" else 0.0
            bg = resample(background, overlay, "concentration", fill_value=fill).array
    return Scene(
        overlay=overlay,
        values=values,
        background=bg,
        background_unit=None if background is None else background.unit,
        masks=mask_arrays,
        colors=voi_colors(list(mask_arrays)),
        data_max=data_max,
    )


def default_cursor(scene: Scene) -> tuple[int, int, int]:
    """Index through the most overlay: per axis, the slice with the largest sum."""
    v = np.where(np.isfinite(scene.values), scene.values, 0.0)
    v = np.clip(v, 0.0, None)
    if not np.any(v > 0):
        return tuple(s // 2 for s in scene.overlay.shape)  # type: ignore[return-value]
    out = []
    for axis in range(3):
        sums = v.sum(axis=tuple(a for a in range(3) if a != axis))
        out.append(int(np.argmax(sums)))
    return (out[0], out[1], out[2])


def cursor_from_mm(volume: Volume, cursor_mm: Sequence[float]) -> tuple[int, int, int]:
    """Nearest voxel index of an LPS point; an error when it lies outside the grid."""
    p = np.asarray(cursor_mm, dtype=float)
    if p.shape != (3,) or not np.all(np.isfinite(p)):
        raise InputDataError(
            f"cursor_mm must be three finite LPS coordinates in mm, got {cursor_mm!r}"
        )
    idx = np.rint(volume.world_to_index(p)).astype(int)
    shape = np.array(volume.shape)
    if np.any(idx < 0) or np.any(idx >= shape):
        lo, hi = volume.index_to_world(np.zeros(3)), volume.index_to_world(shape - 1)
        raise InputDataError(
            f"cursor_mm={p.tolist()} lies outside the overlay grid (voxel index "
            f"{idx.tolist()} for shape {volume.shape}; corners at {np.round(lo, 1).tolist()} "
            f"and {np.round(hi, 1).tolist()} mm). Pass a point inside the grid or None."
        )
    return (int(idx[0]), int(idx[1]), int(idx[2]))


def clamp_index(volume: Volume, index: Sequence[int]) -> tuple[int, int, int]:
    """``index`` clipped into the grid (each component in ``0..n-1``)."""
    s = volume.shape
    k, j, i = (min(max(int(x), 0), n - 1) for x, n in zip(index, s, strict=True))
    return (k, j, i)


def mask_center_index(volume: Volume, mask: np.ndarray) -> tuple[int, int, int] | None:
    """Voxel of the mask nearest (in mm) to its centre of mass; ``None`` for an empty mask."""
    w = np.clip(np.nan_to_num(np.asarray(mask, dtype=float)), 0.0, None)
    total = float(w.sum())
    if total <= 0.0:
        return None
    grids = np.indices(w.shape, dtype=float)
    com = np.array([float((g * w).sum()) / total for g in grids])
    inside = np.argwhere(w >= 0.5)
    if inside.size == 0:
        inside = np.argwhere(w > 0)
    d = volume.index_to_world(inside) - volume.index_to_world(com)
    best = inside[int(np.argmin(np.einsum("ij,ij->i", d, d)))]
    return (int(best[0]), int(best[1]), int(best[2]))


# ----------------------------------------------------------------------------- style
@dataclass
class Style:
    """Display settings of a fused image (internal; every field has a public argument)."""

    cmap: Any
    vmax: float
    threshold: float
    scale: str
    alpha: float
    window: tuple[float, float] | None
    isodose_levels: tuple[float, ...]
    isodose_labels: tuple[str, ...]
    unit_label: str
    show_masks: bool = True
    show_isodoses: bool = True
    crosshair: bool = False

    def norm(self) -> Normalize:
        from matplotlib.colors import LogNorm, Normalize

        if self.scale == "log":
            lo = self.threshold
            return LogNorm(vmin=lo, vmax=max(self.vmax, lo * 1.0001))
        return Normalize(vmin=0.0, vmax=self.vmax)


def resolve_window(
    window: str | tuple[float, float] | None, scene: Scene
) -> tuple[float, float] | None:
    """Background display range (low, high) from a preset name, a pair, or the default."""
    if scene.background is None:
        return None
    unit = scene.background_unit
    bg = scene.background
    if window is None:
        window = "soft tissue" if unit == "HU" else "0..max"
    if isinstance(window, str):
        if window in CT_WINDOWS:
            width, level = CT_WINDOWS[window]
            return (level - width / 2.0, level + width / 2.0)
        if window in SUV_WINDOWS:
            return SUV_WINDOWS[window]
        finite = bg[np.isfinite(bg)]
        top = float(finite.max()) if finite.size else 1.0
        if window == "0..max":
            return (0.0, top if top > 0 else 1.0)
        if window == "0..50 % max":
            return (0.0, 0.5 * top if top > 0 else 1.0)
        valid = [*CT_WINDOWS, *SUV_WINDOWS, *FUNCTIONAL_WINDOWS]
        raise InputDataError(
            f"window={window!r} is not a preset; valid: {', '.join(valid)}, or a pair "
            "(low, high) in the background's unit"
        )
    lo, hi = (float(x) for x in window)
    if not (math.isfinite(lo) and math.isfinite(hi) and hi > lo):
        raise InputDataError(f"window=({lo}, {hi}) must be two finite numbers, low < high")
    return (lo, hi)


def make_style(
    scene: Scene,
    *,
    cmap: Any = None,
    vmax: float | None = None,
    threshold: float | None = None,
    scale: str = "linear",
    alpha: float | None = None,
    window: str | tuple[float, float] | None = None,
    isodoses: Sequence[float] | None = None,
    isodose_reference: float | None = None,
    unit_label: str | None = None,
    crosshair: bool = False,
) -> Style:
    """Validate display arguments and fill in the defaults."""
    if scale not in ("linear", "log"):
        raise InputDataError(f"scale={scale!r}; valid: 'linear', 'log'")
    top = scene.data_max if vmax is None else float(vmax)
    if not math.isfinite(top) or top <= 0.0:
        if vmax is not None:
            raise InputDataError(f"vmax={vmax!r} must be a finite number > 0")
        top = 1.0  # an empty (all-zero) overlay: nothing above the threshold is drawn
    thr = 0.01 * top if threshold is None else float(threshold)
    if not math.isfinite(thr):
        raise InputDataError(f"threshold={threshold!r} must be finite")
    if scale == "log" and thr <= 0.0:
        raise InputDataError(
            f"threshold={thr!r} must be > 0 with scale='log' (the colour scale starts there); "
            "pass e.g. threshold=0.01 * vmax"
        )
    a = (0.5 if scene.background is not None else 1.0) if alpha is None else float(alpha)
    if not 0.0 <= a <= 1.0:
        raise InputDataError(f"alpha={alpha!r} must be in [0, 1]")
    unit = scene.overlay.unit
    levels: list[float] = []
    labels: list[str] = []
    for x in isodoses or ():
        x = float(x)
        if not math.isfinite(x) or x <= 0:
            raise InputDataError(f"isodose levels must be finite and > 0, got {x!r}")
        if isodose_reference is None:
            levels.append(x)
            labels.append(f"{x:g} {unit}")
        else:
            ref = float(isodose_reference)
            if not math.isfinite(ref) or ref <= 0:
                raise InputDataError(
                    f"isodose_reference={isodose_reference!r} must be finite and > 0 (in {unit})"
                )
            levels.append(x / 100.0 * ref)
            labels.append(f"{x:g} %")
    order = np.argsort(levels, kind="stable")
    return Style(
        cmap=_resolve_cmap(cmap),
        vmax=top,
        threshold=thr,
        scale=scale,
        alpha=a,
        window=resolve_window(window, scene),
        isodose_levels=tuple(levels[k] for k in order),
        isodose_labels=tuple(labels[k] for k in order),
        unit_label=unit_label or unit_label_for(unit),
        crosshair=crosshair,
    )


# ----------------------------------------------------------------------------- drawing
def _stroke(width: float = 2.0, colour: Any = "black") -> list[Any]:
    from matplotlib import patheffects

    return [patheffects.withStroke(linewidth=width, foreground=colour)]


def _halo(colour: Any) -> str:
    """Black behind light colours, white behind dark ones (relative luminance 0.4)."""
    from matplotlib.colors import to_rgb

    r, g, b = to_rgb(colour)
    return "black" if 0.2126 * r + 0.7152 * g + 0.0722 * b > 0.4 else "white"


def draw_plane(
    ax: Axes,
    scene: Scene,
    style: Style,
    view: str,
    cursor: Sequence[int],
    *,
    title: str | None = None,
) -> Any:
    """Draw one fused view into ``ax``; returns the colour-wash image (a ScalarMappable)."""
    pl = plane(scene.overlay, view)
    cursor_mm = scene.overlay.index_to_world(np.asarray(cursor, dtype=float))
    k = int(cursor[pl.normal_axis])
    extent = pl.extent_mm(cursor, cursor_mm)
    ax.set_facecolor("black")
    common: dict[str, Any] = {"extent": extent, "origin": "upper", "interpolation": "nearest"}
    if scene.background is not None and style.window is not None:
        ax.imshow(
            pl.extract(scene.background, k),
            cmap="gray",
            vmin=style.window[0],
            vmax=style.window[1],
            **common,
        )
    ov = pl.extract(scene.values, k)
    shown = np.ma.masked_where(~(ov >= style.threshold), ov)  # NaN and below: not drawn
    norm = style.norm()
    wash = ax.imshow(shown, cmap=style.cmap, norm=norm, alpha=style.alpha, **common)
    if style.show_isodoses and style.isodose_levels:
        _draw_isodoses(ax, ov, style, norm, extent, up=-float(_VERTICAL[view][1]))
    if style.show_masks:
        for name, m in scene.masks.items():
            sl = np.asarray(pl.extract(m, k), dtype=float)
            if sl.max() >= 0.5 > sl.min():
                ax.contour(
                    sl,
                    levels=[0.5],
                    colors=[scene.colors[name]],
                    linewidths=1.3,
                    origin="upper",
                    extent=extent,
                )
    for edge, text in pl.labels().items():
        x, y, ha, va = {
            "left": (0.015, 0.5, "left", "center"),
            "right": (0.985, 0.5, "right", "center"),
            "top": (0.5, 0.985, "center", "top"),
            "bottom": (0.5, 0.015, "center", "bottom"),
        }[edge]
        ax.text(
            x,
            y,
            text,
            transform=ax.transAxes,
            ha=ha,
            va=va,
            color="white",
            fontsize=9,
            fontweight="bold",
            gid=f"orientation-{edge}",
            path_effects=_stroke(2.5),
        )
    if style.crosshair:
        wh, _ = _HORIZONTAL[view]
        wv, _ = _VERTICAL[view]
        kw: dict[str, Any] = {"color": "#00e5ff", "lw": 0.7, "alpha": 0.8, "ls": (0, (4, 3))}
        ax.axvline(float(cursor_mm[wh]), **kw)
        ax.axhline(float(cursor_mm[wv]), **kw)
    wn = _NORMAL[view]
    wh, _ = _HORIZONTAL[view]
    wv, _ = _VERTICAL[view]
    ax.set_title(
        title or f"{view}  {_AXIS_NAME[wn]} = {cursor_mm[wn]:+.1f} mm",
        fontsize=9,
        y=1.0,  # fixed: spares matplotlib a bounding-box search on every redraw
        pad=4.0,
    )
    ax.set_xlabel(f"{_AXIS_NAME[wh]} (mm)", fontsize=8)
    ax.set_ylabel(f"{_AXIS_NAME[wv]} (mm)", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.set_xlim(extent[0], extent[1])
    ax.set_ylim(extent[2], extent[3])
    ax.set_aspect("equal")
    return wash


def _draw_isodoses(
    ax: Axes, ov: np.ndarray, style: Style, norm: Normalize, extent: Sequence[float], up: float
) -> None:
    """Labelled isodose lines; ``up`` is the sign of the data y axis pointing up on screen."""
    n_fallback = 0
    finite = ov[np.isfinite(ov)]
    if finite.size == 0:
        return
    lo, hi = float(finite.min()), float(finite.max())
    data = np.where(np.isfinite(ov), ov, 0.0)
    for level, text in zip(style.isodose_levels, style.isodose_labels, strict=True):
        if not lo < level < hi:  # no line of this level on this slice
            continue
        colour = style.cmap(float(np.clip(norm(level), 0.0, 1.0)))
        halo = _halo(colour)
        cs = ax.contour(
            data, levels=[level], colors=[colour], linewidths=1.1, origin="upper", extent=extent
        )
        cs.set(path_effects=_stroke(2.4, halo))
        texts = cs.clabel([level], fmt={level: text}, inline=True, fontsize=7)
        for t in texts:
            t.set_path_effects(_stroke(2.0, halo))
            t.set_gid("isodose-label")
        if texts:
            continue
        # a short contour gets no inline label from matplotlib: write the label beside its
        # outermost point in a direction that turns with each such label, so nested short
        # contours (a small hot lesion) do not stack their labels
        verts = np.asarray(cs.get_paths()[0].vertices, dtype=float)
        if verts.size == 0:
            continue
        theta = math.radians(60.0 * n_fallback)
        n_fallback += 1
        c, s_ = math.cos(theta), math.sin(theta)
        p = verts[int(np.argmax(c * verts[:, 0] + s_ * up * verts[:, 1]))]
        ax.text(
            float(p[0]),
            float(p[1]),
            text,
            color=colour,
            fontsize=7,
            ha="left" if c > 0.3 else ("right" if c < -0.3 else "center"),
            va="bottom" if s_ > 0.3 else ("top" if s_ < -0.3 else "center"),
            gid="isodose-label",
            path_effects=_stroke(2.0, halo),
            clip_on=True,
        )


def _voi_handles(scene: Scene) -> list[Any]:
    from matplotlib.lines import Line2D

    return [Line2D([], [], color=c, lw=2.0, label=_plain_label(n)) for n, c in scene.colors.items()]


def _add_colorbar(fig: Figure, wash: Any, style: Style, cax: Axes) -> Any:
    cbar = fig.colorbar(wash, cax=cax)
    cbar.set_label(style.unit_label, fontsize=8)
    cbar.ax.tick_params(labelsize=7)
    cbar.ax.set_gid("colorbar")
    if style.scale == "log":
        from matplotlib.ticker import FuncFormatter

        cbar.ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    if style.scale == "linear" and style.threshold > 0:
        # the part of the scale that is not drawn (below the threshold), hatched
        cbar.ax.axhspan(
            0.0, min(style.threshold, style.vmax), facecolor="white", alpha=0.7, hatch="///"
        )
    low = style.threshold if style.scale == "log" else 0.0
    shown = [v for v in style.isodose_levels if low < v < style.vmax]
    if style.show_isodoses and shown:
        cbar.add_lines(shown, colors=["white"] * len(shown), linewidths=[1.0] * len(shown))
    return cbar


# layout of the plane figures, inches
_MARGIN_LEFT_IN = 0.62  # y tick labels and label of the first view
_GAP_IN = 0.78  # between views (tick labels and label of the next view)
_TOP_IN = 0.34  # view titles
_SUPTITLE_IN = 0.36
_BOTTOM_IN = 0.5  # x tick labels and label
_FOOTER_IN = 0.3
_CBAR_PAD_IN, _CBAR_W_IN, _CBAR_LABEL_IN = 0.15, 0.16, 0.78
_PANEL_HEIGHT_IN = 3.0
_LEGEND_ROW_IN = 0.165  # one legend entry at 8 pt


def plane_layout(
    scene: Scene,
    views: Sequence[str],
    *,
    legend: bool,
    title: bool,
    footer: bool,
    figsize: tuple[float, float] | None = None,
    panel_height_in: float = _PANEL_HEIGHT_IN,
) -> dict[str, Any]:
    """Figure size and axes rectangles (figure fractions) of a row of views (internal).

    A fixed layout (no layout engine) keeps the widget's redraws fast and maps pixels of the
    rendered image back to mm for clicks.
    """
    ov = scene.overlay
    aspects = []
    for v in views:
        pl = plane(ov, v)
        w = pl.n_cols * float(np.linalg.norm(pl.col_step_mm))
        h = pl.n_rows * float(np.linalg.norm(pl.row_step_mm))
        aspects.append(w / h)
    n = len(views)
    top = _TOP_IN + (_SUPTITLE_IN if title else 0.0)
    bottom = _BOTTOM_IN + (_FOOTER_IN if footer else 0.0)
    legend_w, legend_cols = 0.0, 1
    if legend and scene.masks:
        ph_guess = panel_height_in if figsize is None else float(figsize[1]) - top - bottom
        rows_fit = max(int((ph_guess - 0.25) / _LEGEND_ROW_IN), 1)
        legend_cols = math.ceil(len(scene.masks) / rows_fit)
        longest = max(len(name) for name in scene.masks)
        legend_w = legend_cols * min(max(0.6 + 0.07 * longest, 1.1), 2.6)
    fixed_w = _MARGIN_LEFT_IN + _GAP_IN * (n - 1) + _CBAR_PAD_IN + _CBAR_W_IN + _CBAR_LABEL_IN
    fixed_w += legend_w
    if figsize is None:
        ph = float(panel_height_in)
        width, height = fixed_w + ph * sum(aspects), top + ph + bottom
    else:
        width, height = (float(x) for x in figsize)
        ph = min(height - top - bottom, (width - fixed_w) / sum(aspects))
        if ph <= 0.5:
            raise InputDataError(
                f"figsize={figsize!r} is too small for {n} views with their labels; "
                "enlarge it or pass figsize=None"
            )
    used_w = fixed_w + ph * sum(aspects)
    x = _MARGIN_LEFT_IN + 0.5 * (width - used_w)
    y = bottom + 0.5 * (height - top - bottom - ph)
    rects = {}
    for v, asp in zip(views, aspects, strict=True):
        rects[v] = (x / width, y / height, asp * ph / width, ph / height)
        x += asp * ph + _GAP_IN
    x += _CBAR_PAD_IN - _GAP_IN
    cbar = (x / width, (y + 0.075 * ph) / height, _CBAR_W_IN / width, 0.85 * ph / height)
    x += _CBAR_W_IN + _CBAR_LABEL_IN
    return {
        "figsize": (width, height),
        "views": rects,
        "colorbar": cbar,
        "legend_anchor": (x / width, (y + ph) / height),
        "legend_cols": legend_cols,
    }


def render_planes(
    scene: Scene,
    style: Style,
    views: Sequence[str],
    cursor: Sequence[int],
    *,
    title: str | None = None,
    legend: bool = True,
    footer: bool = True,
    figsize: tuple[float, float] | None = None,
    dpi: float = 100.0,
    panel_height_in: float = _PANEL_HEIGHT_IN,
) -> tuple[Figure, dict[str, Axes]]:
    """A figure of ``views`` side by side with a colour bar, VOI legend and footer."""
    from matplotlib.ticker import MaxNLocator

    lay = plane_layout(
        scene,
        views,
        legend=legend,
        title=bool(title),
        footer=footer,
        figsize=figsize,
        panel_height_in=panel_height_in,
    )
    fig = new_figure(lay["figsize"], dpi=dpi)
    axes: dict[str, Axes] = {}
    wash = None
    for v in views:
        ax = fig.add_axes(lay["views"][v])
        wash = draw_plane(ax, scene, style, v, cursor)
        ax.xaxis.set_major_locator(MaxNLocator(5))
        ax.yaxis.set_major_locator(MaxNLocator(5))
        ax.set_gid(f"view-{v}")
        axes[v] = ax
    assert wash is not None  # at least one view (checked by callers)
    _add_colorbar(fig, wash, style, fig.add_axes(lay["colorbar"]))
    if legend and scene.masks:
        leg = fig.legend(
            handles=_voi_handles(scene),
            loc="upper left",
            bbox_to_anchor=lay["legend_anchor"],
            ncols=lay["legend_cols"],
            fontsize=8,
            frameon=False,
            title="VOI outlines",
            title_fontsize=8,
            borderaxespad=0.0,
        )
        leg.set_gid("voi-legend")
    if title:
        fig.suptitle(title, fontsize=11, y=1.0 - 0.08 / lay["figsize"][1], va="top")
    if footer:
        ov = scene.overlay
        p = ov.index_to_world(np.asarray(cursor, dtype=float))
        k, j, i = (int(c) for c in cursor)
        val = scene.values[k, j, i]
        fig.text(
            0.08 / lay["figsize"][0],
            0.06 / lay["figsize"][1],
            f"Planes through LPS ({p[0]:.1f}, {p[1]:.1f}, {p[2]:.1f}) mm, voxel [{k}, {j}, {i}]: "
            f"{val:.4g} {ov.unit}.  LPS: x to patient left, y to posterior, z to head.  "
            f"Not drawn below {style.threshold:.3g} {ov.unit}; {style.scale} colour scale.",
            fontsize=6.5,
            color="0.3",
            ha="left",
            va="bottom",
        )
    return fig, axes


def three_plane_figure(
    overlay: Volume,
    background: Volume | None = None,
    *,
    masks: Mapping[str, Volume] | None = None,
    isodoses: Sequence[float] | None = None,
    cursor_mm: Sequence[float] | None = None,
    title: str | None = None,
    cmap: str | Colormap | None = None,
    vmax: float | None = None,
    unit_label: str | None = None,
    threshold: float | None = None,
    scale: Literal["linear", "log"] = "linear",
    alpha: float | None = None,
    window: str | tuple[float, float] | None = None,
    isodose_reference: float | None = None,
    views: Sequence[View] = VIEWS,
    crosshair: bool = False,
    figsize: tuple[float, float] | None = None,
    dpi: float = 100.0,
) -> Figure:
    """Axial, coronal and sagittal planes of ``overlay`` fused on ``background``.

    Each view carries patient orientation letters on its four edges (R/L, A/P, H/F from the
    affine), mm axes (LPS) and its slice position in mm; one colour bar with the unit, VOI
    outlines with a legend, labelled isodose lines.

    Parameters
    ----------
    overlay
        Functional map drawn as a colour wash (dose in Gy, PET in Bq/mL, TIA, ...); its grid
        is the drawing grid.
    background
        Anatomical or functional image shown in grey (CT in HU, PET/SPECT), resampled onto the
        overlay grid (trilinear).
    masks
        ``{name: mask}`` on the overlay grid, drawn as outlines (level 0.5) with a legend.
    isodoses
        Isodose levels in the overlay's unit (``[2, 5, 10]`` Gy), or in % of
        ``isodose_reference`` when that is given; each line is labelled.
    cursor_mm
        LPS point (mm) that the three planes pass through (its nearest voxel). Default: per
        axis the slice with the largest overlay sum (through the bulk of the activity/dose).
    title
        Figure title.
    cmap
        Colour map of the wash (default :func:`dose_colormap`, perceptual inferno).
    vmax
        Top of the colour scale in the overlay's unit (default: the overlay maximum).
    unit_label
        Colour-bar label (default from the unit, e.g. ``"absorbed dose (Gy)"``).
    threshold
        Overlay values below it are not drawn (default 1 % of ``vmax``); the colour bar
        hatches the part below it.
    scale
        ``"linear"`` (colour scale 0..vmax) or ``"log"`` (threshold..vmax).
    alpha
        Wash opacity (default 0.5 over a background, 1 without).
    window
        Background display range: a CT preset of :data:`CT_WINDOWS` (default
        ``"soft tissue"`` for HU), ``"0..max"`` / ``"0..50 % max"`` (default for PET/SPECT),
        ``"SUV 0-5"``, or ``(low, high)`` in the background's unit.
    isodose_reference
        Reference value (overlay unit) making ``isodoses`` percentages.
    views
        Which views, in order.
    crosshair
        Draw the cursor lines.
    figsize, dpi
        Figure size (inches; default: 3 inch high views, width from their aspect) and
        resolution. The views keep their true aspect ratio inside ``figsize``.

    Returns
    -------
    matplotlib.figure.Figure
        Standalone (not managed by pyplot); ``figure_to_png(fig)`` gives PNG bytes.

    Raises
    ------
    GeometryMismatchError
        A mask is not on the overlay grid.
    InputDataError
        ``cursor_mm`` outside the grid, an unknown window preset or colour map, a bad level.
    """
    views = list(views)
    if not views or any(v not in _NORMAL for v in views):
        raise InputDataError(f"views={views!r}: give one or more of {', '.join(VIEWS)}")
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
        isodose_reference=isodose_reference,
        unit_label=unit_label,
        crosshair=crosshair,
    )
    cursor = default_cursor(scene) if cursor_mm is None else cursor_from_mm(overlay, cursor_mm)
    fig, _ = render_planes(scene, style, views, cursor, title=title, figsize=figsize, dpi=dpi)
    return fig


# ----------------------------------------------------------------------------- DVH
def draw_dvh(
    ax: Axes,
    dvhs: Mapping[str, DVH],
    *,
    unit: str | None = None,
    volume: Literal["percent", "ml"] = "percent",
    colors: Mapping[str, Any] | None = None,
) -> None:
    """Cumulative DVH curves of ``dvhs`` into ``ax``."""
    if volume not in ("percent", "ml"):
        raise InputDataError(f"volume={volume!r}; valid: 'percent', 'ml'")
    if not dvhs:
        raise InputDataError("dvhs is empty: pass {name: dosimetry.dvh(dose, mask)}")
    units = {getattr(h, "unit", "Gy") for h in dvhs.values()}
    if unit is None:
        if len(units) > 1:
            raise UnitError(f"the DVHs have different units {sorted(units)}; plot them separately")
        unit = units.pop()
    colors = dict(colors) if colors is not None else voi_colors(list(dvhs))
    x_max = 0.0
    for name, h in dvhs.items():
        edges = np.asarray(h.bin_edges_gy, dtype=float)
        y = np.asarray(h.cumulative_fraction) * 100.0 if volume == "percent" else h.cumulative_ml
        ax.plot(
            edges,
            y,
            color=colors.get(name),
            lw=1.6,
            label=f"{_plain_label(name)} (mean {h.mean_gy:.3g} {unit})",
        )
        x_max = max(x_max, float(h.max_gy))
    ax.set_xlabel(f"dose ({unit})")
    ax.set_ylabel("volume (%)" if volume == "percent" else "volume (mL)")
    if volume == "percent":
        ax.set_ylim(0.0, 102.0)
    else:
        ax.set_ylim(bottom=0.0)
    ax.set_xlim(0.0, x_max * 1.05 if x_max > 0 else 1.0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)


def dvh_figure(
    dvhs: Mapping[str, DVH],
    *,
    unit: str | None = None,
    volume: Literal["percent", "ml"] = "percent",
    title: str | None = None,
    colors: Mapping[str, Any] | None = None,
    figsize: tuple[float, float] = (6.4, 4.2),
    dpi: float = 100.0,
) -> Figure:
    """Cumulative dose-volume histograms.

    Parameters
    ----------
    dvhs
        ``{name: DVH}`` from :func:`dosimetry.dvh` (:class:`dosimetry.metrics.DVH`).
    unit
        Dose unit of the axis (default: the DVHs' unit, e.g. ``"Gy"`` or ``"Gy_RBE"``).
    volume
        ``"percent"`` of each VOI (default) or absolute ``"ml"``.
    title
        Axes title.
    colors
        ``{name: colour}``; default :func:`voi_colors` of the names (same order as the masks
        of :func:`three_plane_figure` gives the same colours).
    figsize, dpi
        Figure size (inches) and resolution.

    Returns
    -------
    matplotlib.figure.Figure
        One curve per VOI (volume receiving at least the dose), legend with the mean dose.
    """
    fig = new_figure(figsize, dpi=dpi, layout="constrained")
    ax = fig.subplots()
    draw_dvh(ax, dvhs, unit=unit, volume=volume, colors=colors)
    ax.set_title(title or "Cumulative dose-volume histograms", fontsize=10)
    return fig


# ----------------------------------------------------------------------------- TAC
def draw_tac(
    ax: Axes,
    fits: Mapping[str, TacFit],
    *,
    time_unit: str = "h",
    activity_unit: str = "MBq",
    yscale: Literal["linear", "log"] = "linear",
    t_max_s: float | None = None,
    colors: Mapping[str, Any] | None = None,
) -> None:
    """Measured points and fitted curves of ``fits`` into ``ax``."""
    if time_unit not in TIME_UNITS_S:
        raise UnitError(f"time_unit={time_unit!r}; valid: {', '.join(TIME_UNITS_S)}")
    if activity_unit not in ACTIVITY_UNITS_BQ:
        raise UnitError(f"activity_unit={activity_unit!r}; valid: {', '.join(ACTIVITY_UNITS_BQ)}")
    if yscale not in ("linear", "log"):
        raise InputDataError(f"yscale={yscale!r}; valid: 'linear', 'log'")
    if not fits:
        raise InputDataError("fits is empty: pass {name: dosimetry.fit_tac(...)}")
    ts, ab = TIME_UNITS_S[time_unit], ACTIVITY_UNITS_BQ[activity_unit]
    colors = dict(colors) if colors is not None else voi_colors(list(fits))
    t_end = max(float(np.max(f.times_s)) for f in fits.values()) * 1.5
    if t_max_s is not None:
        t_end = float(t_max_s)
    grid = np.linspace(0.0, t_end, 400)
    for name, fit in fits.items():
        c = colors.get(name)
        t = np.asarray(fit.times_s, dtype=float)
        a = np.asarray(fit.activities_bq, dtype=float)
        sig = None if fit.sigma_bq is None else np.asarray(fit.sigma_bq, dtype=float) / ab
        y_pts = a / ab
        y_fit = np.asarray(fit.predict(grid), dtype=float) / ab
        if yscale == "log":
            y_pts = np.where(y_pts > 0, y_pts, np.nan)
            y_fit = np.where(y_fit > 0, y_fit, np.nan)
        ax.errorbar(t / ts, y_pts, yerr=sig, fmt="o", color=c, ms=5, capsize=2, zorder=3)
        halves = fit.effective_half_lives_s()
        extra = f", T1/2,eff {halves[0] / 3600.0:.3g} h" if halves else ""
        # solid over the measured interval, dashed where the curve is the head/tail model
        inside = (grid >= t[0]) & (grid <= t[-1])
        ax.plot(
            grid / ts,
            np.where(inside, y_fit, np.nan),
            "-",
            color=c,
            lw=1.5,
            label=f"{_plain_label(name)} ({fit.model}{extra})",
        )
        ax.plot(grid / ts, np.where(inside, np.nan, y_fit), "--", color=c, lw=1.1)
    ax.set_yscale(yscale)
    ax.set_xlabel(f"time after administration ({time_unit})")
    ax.set_ylabel(f"activity ({activity_unit})")
    ax.set_xlim(0.0, t_end / ts)
    if yscale == "linear":
        ax.set_ylim(bottom=0.0)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)


def tac_figure(
    fits: Mapping[str, TacFit] | TacFit,
    *,
    time_unit: str = "h",
    activity_unit: str = "MBq",
    yscale: Literal["linear", "log"] = "linear",
    t_max_s: float | None = None,
    title: str | None = None,
    colors: Mapping[str, Any] | None = None,
    figsize: tuple[float, float] = (6.4, 4.2),
    dpi: float = 100.0,
) -> Figure:
    """Time-activity curves: measured points (with their uncertainty) and the fitted curve.

    Parameters
    ----------
    fits
        ``{name: TacFit}`` from :func:`dosimetry.fit_tac`, or one fit. The curve is
        ``fit.predict(t)`` including the head and tail used for the TIA; points carry
        ``fit.sigma_bq`` as error bars when known.
    time_unit, activity_unit
        Axis units (keys of :data:`dosimetry.units.TIME_UNITS_S` / ``ACTIVITY_UNITS_BQ``).
    yscale
        ``"linear"`` or ``"log"`` (a mono-exponential is a straight line).
    t_max_s
        End of the time axis (s); default 1.5 x the last measurement.
    title, colors, figsize, dpi
        Title, ``{name: colour}``, size (inches), resolution.

    Returns
    -------
    matplotlib.figure.Figure
    """
    if not isinstance(fits, Mapping):
        fits = {"VOI": fits}
    fig = new_figure(figsize, dpi=dpi, layout="constrained")
    ax = fig.subplots()
    draw_tac(
        ax,
        fits,
        time_unit=time_unit,
        activity_unit=activity_unit,
        yscale=yscale,
        t_max_s=t_max_s,
        colors=colors,
    )
    ax.set_title(title or "Time-activity curves and fits", fontsize=10)
    return fig


# ----------------------------------------------------------------------------- Bland-Altman
#: Coverage factor of the 95 % limits of agreement (normal distribution), as in
#: Bland JM, Altman DG. Statistical methods for assessing agreement between two methods of
#: clinical measurement. Lancet 1986;327(8476):307-310.
LOA_FACTOR = 1.96


def bland_altman_limits(
    reference: Sequence[float] | np.ndarray,
    test: Sequence[float] | np.ndarray,
    *,
    relative: bool = False,
    loa_factor: float = LOA_FACTOR,
) -> dict[str, Any]:
    """Bias and 95 % limits of agreement of ``test`` against ``reference``.

    Differences are ``test - reference`` (or ``100 (test - reference) / mean`` in % when
    ``relative``); bias is their mean, the limits ``bias -/+ loa_factor x SD`` (sample SD,
    n - 1), after Bland and Altman (1986).

    Returns
    -------
    dict
        ``mean`` and ``difference`` arrays, ``bias``, ``sd``, ``lower``, ``upper``, ``n``.

    References
    ----------
    Bland JM, Altman DG. Statistical methods for assessing agreement between two methods of
    clinical measurement. Lancet 1986;327(8476):307-310.

    Examples
    --------
    >>> r = bland_altman_limits([1.0, 2.0, 3.0], [1.5, 2.0, 3.5])
    >>> round(r["bias"], 6), round(r["sd"], 6)
    (0.333333, 0.288675)
    """
    ref = np.asarray(reference, dtype=float).ravel()
    tst = np.asarray(test, dtype=float).ravel()
    if ref.shape != tst.shape:
        raise InputDataError(
            f"reference and test must have the same length, got {ref.size} and {tst.size}"
        )
    if ref.size < 2:
        raise InputDataError(f"Bland-Altman needs at least 2 pairs, got {ref.size}")
    if not (np.all(np.isfinite(ref)) and np.all(np.isfinite(tst))):
        raise InputDataError("reference and test must be finite (no NaN/inf)")
    mean = 0.5 * (ref + tst)
    diff = tst - ref
    if relative:
        if np.any(mean == 0.0):
            raise InputDataError(
                "relative=True needs non-zero pair means; use relative=False for absolute "
                "differences"
            )
        diff = 100.0 * diff / mean
    bias = float(diff.mean())
    sd = float(diff.std(ddof=1))
    return {
        "mean": mean,
        "difference": diff,
        "bias": bias,
        "sd": sd,
        "lower": bias - loa_factor * sd,
        "upper": bias + loa_factor * sd,
        "n": int(ref.size),
    }


def bland_altman_figure(
    reference: Sequence[float] | np.ndarray,
    test: Sequence[float] | np.ndarray,
    labels: Sequence[str] | None = None,
    *,
    unit: str = "Gy",
    relative: bool = False,
    reference_name: str = "reference",
    test_name: str = "test",
    title: str | None = None,
    figsize: tuple[float, float] = (6.4, 4.2),
    dpi: float = 100.0,
) -> Figure:
    """Bland-Altman plot: difference against mean of paired values, bias and 95 % limits.

    Parameters
    ----------
    reference, test
        Paired values (e.g. measured and predicted dose), same length >= 2.
    labels
        One label per pair (VOI or patient), written beside its point.
    unit
        Unit of the values.
    relative
        Plot the difference in % of the pair mean.
    reference_name, test_name
        Names used on the axes (difference = test - reference).
    title, figsize, dpi
        Title, size (inches), resolution.

    Returns
    -------
    matplotlib.figure.Figure

    References
    ----------
    Bland JM, Altman DG. Lancet 1986;327(8476):307-310.
    """
    r = bland_altman_limits(reference, test, relative=relative)
    if labels is not None and len(labels) != r["n"]:
        raise InputDataError(f"labels has {len(labels)} entries for {r['n']} pairs")
    fig = new_figure(figsize, dpi=dpi, layout="constrained")
    ax = fig.subplots()
    ax.scatter(r["mean"], r["difference"], s=22, color="C0", zorder=3)
    if labels is not None:
        for x, y, text in zip(r["mean"], r["difference"], labels, strict=True):
            ax.annotate(str(text), (x, y), xytext=(4, 3), textcoords="offset points", fontsize=7)
    du = "%" if relative else unit
    lines = [
        (r["bias"], "-", f"bias {r['bias']:+.3g} {du}"),
        (r["upper"], "--", f"+{LOA_FACTOR:g} SD {r['upper']:+.3g} {du}"),
        (r["lower"], "--", f"-{LOA_FACTOR:g} SD {r['lower']:+.3g} {du}"),
    ]
    for y, ls, text in lines:
        ax.axhline(y, color="C3" if ls == "-" else "0.4", ls=ls, lw=1.1)
        ax.annotate(
            text,
            (1.0, y),
            xycoords=("axes fraction", "data"),
            xytext=(-4, 3),
            textcoords="offset points",
            ha="right",
            fontsize=7,
            gid="bland-altman-line",
        )
    ax.axhline(0.0, color="0.7", lw=0.8)
    ax.set_xlabel(f"mean of {reference_name} and {test_name} ({unit})")
    ax.set_ylabel(
        f"{test_name} - {reference_name} ({'% of mean' if relative else unit})",
    )
    ax.grid(alpha=0.3)
    ax.set_title(
        title or f"Bland-Altman: {test_name} vs {reference_name} (n = {r['n']})", fontsize=10
    )
    return fig
