"""Slice geometry from DICOM: sort planes, check the stack, build the Volume affine.

A series of 2-D image planes (one per file, or one per frame of a multi-frame object)
becomes a 3-D :class:`~dosimetry.Volume` only when the planes are parallel, share one
pixel grid, and are stacked along their common normal at a uniform step. This module
checks all of that and refuses anything else with an error that names the files.

Conventions (see :mod:`dosimetry.volume`): the array is ``[slice, row, column]``;

* ``affine[:3, 0]`` = slice normal x slice spacing, the normal being
  ``cross(IOP[0:3], IOP[3:6])`` (row direction cosine x column direction cosine);
* ``affine[:3, 1]`` = column direction cosine ``IOP[3:6]`` x ``PixelSpacing[0]``
  (the step from one row to the next);
* ``affine[:3, 2]`` = row direction cosine ``IOP[0:3]`` x ``PixelSpacing[1]``
  (the step from one column to the next);
* origin = ImagePositionPatient of the first plane after sorting.

Planes are sorted by the projection of ImagePositionPatient on the slice normal, never
by file name, InstanceNumber or SliceLocation (PS3.3 C.7.6.2.1.1: the position and
orientation attributes are the ones that locate the image in the patient).

Tolerances
----------
ORIENTATION_ATOL
    1e-4 on direction cosines: planes whose cosines differ more are "mixed orientations".
SPACING_RTOL
    0.01: the gaps between consecutive planes must all lie within 1 % of their median,
    else the stack has missing slices or a non-uniform spacing.
DUPLICATE_ATOL_MM
    1e-3 mm: two planes closer than this along the normal are duplicates.
TILT_ATOL_MM, TILT_RTOL
    The in-plane drift of a plane's position from the normal line through the first
    plane must stay below ``TILT_ATOL_MM + TILT_RTOL * distance`` (0.01 mm + 0.1 %),
    else the stack is sheared (gantry tilt).
MIN_VOXEL_VOLUME_MM3
    1e-9 mm^3: a smaller voxel (e.g. PixelSpacing 1e-6 mm) makes the affine singular for
    :class:`dosimetry.Volume`; it is refused here with the tag that causes it.

Values so large that the arithmetic overflows (positions or spacings near 1e308) are
refused naming the tag; the output grid of a resampled stack is checked against the
memory budget ``max_grid_voxels`` before it is allocated.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from ..errors import DicomInputError, InputDataError
from ..volume import check_grid_budget

__all__ = [
    "Plane",
    "StackGeometry",
    "stack_planes",
    "resample_stack",
    "ORIENTATION_ATOL",
    "SPACING_RTOL",
    "DUPLICATE_ATOL_MM",
    "TILT_ATOL_MM",
    "TILT_RTOL",
    "MIN_VOXEL_VOLUME_MM3",
]

log = logging.getLogger(__name__)

ORIENTATION_ATOL = 1e-4
SPACING_RTOL = 0.01
DUPLICATE_ATOL_MM = 1e-3
TILT_ATOL_MM = 0.01
TILT_RTOL = 1e-3
PIXEL_SPACING_RTOL = 1e-4
MIN_VOXEL_VOLUME_MM3 = 1e-9

NonUniform = Literal[False, "resample"]


@dataclass(frozen=True)
class Plane:
    """One 2-D image plane: where it lies and what its pixel grid is.

    Parameters
    ----------
    position_mm
        ImagePositionPatient: LPS mm of the centre of the first transmitted pixel.
    orientation
        ImageOrientationPatient: row direction cosine (3) then column direction cosine (3).
    pixel_spacing_mm
        PixelSpacing: (distance between rows, distance between columns) in mm.
    shape
        (Rows, Columns).
    source
        A label for messages: the file (and frame) the plane comes from.
    """

    position_mm: tuple[float, float, float]
    orientation: tuple[float, float, float, float, float, float]
    pixel_spacing_mm: tuple[float, float]
    shape: tuple[int, int]
    source: str


@dataclass(frozen=True)
class StackGeometry:
    """Result of :func:`stack_planes`.

    Attributes
    ----------
    order
        Indices into the input planes, in slice order (increasing along the normal).
    affine
        4x4 index -> LPS affine of the output grid (after resampling, if any).
    positions_mm
        Projection of each sorted plane's position on the normal (mm).
    target_positions_mm
        Projections of the output slices when the stack must be resampled to a uniform
        spacing (``allow_nonuniform="resample"``), else ``None``.
    derivations
        Human-readable notes on what was derived and how (for the provenance record).
    """

    order: list[int]
    affine: np.ndarray
    positions_mm: np.ndarray
    target_positions_mm: np.ndarray | None = None
    derivations: list[str] = field(default_factory=list)

    @property
    def n_slices(self) -> int:
        """Number of slices of the output grid."""
        if self.target_positions_mm is not None:
            return int(len(self.target_positions_mm))
        return len(self.order)


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def stack_planes(
    planes: Sequence[Plane],
    *,
    single_slice_spacing_mm: float | None = None,
    single_slice_spacing_source: str = "SpacingBetweenSlices",
    allow_nonuniform: NonUniform = False,
    what: str = "series",
) -> StackGeometry:
    """Sort image planes along their normal, check the stack and build the affine.

    Parameters
    ----------
    planes
        The planes of one series (any order).
    single_slice_spacing_mm
        Slice spacing (mm) to use when the series has a single plane (no gap to measure);
        typically SpacingBetweenSlices or SliceThickness. Ignored for several planes.
    single_slice_spacing_source
        Where ``single_slice_spacing_mm`` came from (for messages and provenance).
    allow_nonuniform
        ``False`` (default): a non-uniform spacing or a missing slice is an error.
        ``"resample"``: the stack is resampled, by linear interpolation along the normal,
        to a uniform spacing equal to the median gap (:func:`resample_stack`).
    what
        Name of the series in messages.

    Returns
    -------
    StackGeometry

    Raises
    ------
    DicomInputError
        Mixed matrix sizes, pixel spacings or orientations; non-orthonormal orientation;
        zero or missing spacing; duplicate positions; gantry tilt; non-uniform spacing.

    Examples
    --------
    >>> p = [Plane((0.0, 0.0, z), (1, 0, 0, 0, 1, 0), (2.0, 2.0), (4, 4), f"f{z}")
    ...      for z in (6.0, 0.0, 3.0)]
    >>> g = stack_planes(p)
    >>> g.order
    [1, 2, 0]
    >>> g.affine[:3, 0].tolist()
    [0.0, 0.0, 3.0]
    """
    try:
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            return _stack_planes(
                planes, single_slice_spacing_mm, single_slice_spacing_source, allow_nonuniform, what
            )
    except FloatingPointError as exc:
        raise DicomInputError(
            f"{what}: the slice geometry overflows floating-point arithmetic ({exc}); "
            "ImagePositionPatient, PixelSpacing or the slice spacing hold absurd values",
            path=planes[0].source if planes else None,
            tag="ImagePositionPatient",
        ) from None


def _check_voxel(
    pixel_spacing: np.ndarray, slice_spacing: float, source: str, slice_source: str, what: str
) -> None:
    """Refuse a voxel too small (singular affine) or too large (overflow), by tag."""
    area = float(pixel_spacing[0]) * float(pixel_spacing[1])
    vol = area * float(slice_spacing)
    if not np.isfinite(vol):
        raise DicomInputError(
            f"{what}: voxel of {tuple(pixel_spacing.tolist())} x {slice_spacing} mm is too large "
            "to compute with",
            path=source,
            tag="PixelSpacing",
        )
    if vol < MIN_VOXEL_VOLUME_MM3:
        small_pixels = area < MIN_VOXEL_VOLUME_MM3 ** (2.0 / 3.0)
        tag = "PixelSpacing" if small_pixels else slice_source
        raise DicomInputError(
            f"{what}: the voxel PixelSpacing {tuple(pixel_spacing.tolist())} mm x slice spacing "
            f"{slice_spacing:.6g} mm has a volume of {vol:.3g} mm^3, below "
            f"{MIN_VOXEL_VOLUME_MM3:g} mm^3: {tag} is not a real voxel size (the grid would "
            "be singular). Check the header.",
            path=source,
            tag=tag,
        )


def _stack_planes(
    planes: Sequence[Plane],
    single_slice_spacing_mm: float | None,
    single_slice_spacing_source: str,
    allow_nonuniform: NonUniform,
    what: str,
) -> StackGeometry:
    if len(planes) == 0:
        raise DicomInputError(f"{what}: no image planes to stack")
    if allow_nonuniform not in (False, "resample"):
        raise DicomInputError(
            f"allow_nonuniform={allow_nonuniform!r}; valid values: False, 'resample'"
        )
    first = planes[0]
    # -- one pixel grid --------------------------------------------------------------
    shapes = {p.shape for p in planes}
    if len(shapes) > 1:
        by_shape = {s: next(p.source for p in planes if p.shape == s) for s in shapes}
        raise DicomInputError(
            f"{what} mixes image matrices (Rows, Columns): "
            + "; ".join(f"{s} e.g. in {src}" for s, src in by_shape.items())
            + ". Split the series or remove the odd files.",
            tag="Rows",
        )
    ps0 = np.asarray(first.pixel_spacing_mm, dtype=float)
    if ps0.shape != (2,) or not np.all(np.isfinite(ps0)) or np.any(ps0 <= 0):
        raise DicomInputError(
            f"PixelSpacing must be two positive numbers, got {first.pixel_spacing_mm!r}",
            path=first.source,
            tag="PixelSpacing",
        )
    for p in planes[1:]:
        ps = np.asarray(p.pixel_spacing_mm, dtype=float)
        if not np.allclose(ps, ps0, rtol=PIXEL_SPACING_RTOL, atol=0.0):
            raise DicomInputError(
                f"{what} mixes pixel spacings: {tuple(ps0)} in {first.source} and "
                f"{tuple(ps)} in {p.source}",
                path=p.source,
                tag="PixelSpacing",
            )
    # -- one orientation -----------------------------------------------------------
    iop0 = np.asarray(first.orientation, dtype=float)
    if iop0.shape != (6,) or not np.all(np.isfinite(iop0)):
        raise DicomInputError(
            f"ImageOrientationPatient must be six numbers, got {first.orientation!r}",
            path=first.source,
            tag="ImageOrientationPatient",
        )
    for p in planes[1:]:
        iop = np.asarray(p.orientation, dtype=float)
        if not np.allclose(iop, iop0, rtol=0.0, atol=ORIENTATION_ATOL):
            raise DicomInputError(
                f"{what} mixes image orientations: {iop0.tolist()} in {first.source} and "
                f"{iop.tolist()} in {p.source} (tolerance {ORIENTATION_ATOL} on the "
                "direction cosines). Only parallel planes form a volume.",
                path=p.source,
                tag="ImageOrientationPatient",
            )
    row_dir, col_dir = iop0[:3], iop0[3:]
    nr, nc = np.linalg.norm(row_dir), np.linalg.norm(col_dir)
    if abs(nr - 1) > 1e-3 or abs(nc - 1) > 1e-3 or abs(float(row_dir @ col_dir)) > 1e-3:
        raise DicomInputError(
            f"ImageOrientationPatient {iop0.tolist()} is not two orthogonal unit vectors",
            path=first.source,
            tag="ImageOrientationPatient",
        )
    row_dir, col_dir = _unit(row_dir), _unit(col_dir)
    normal = _unit(np.cross(row_dir, col_dir))

    # -- sort along the normal -------------------------------------------------------
    for p in planes:
        xyz = np.asarray(p.position_mm, dtype=float)
        if xyz.shape != (3,) or not np.all(np.isfinite(xyz)):
            raise DicomInputError(
                f"ImagePositionPatient must be three finite numbers, got {p.position_mm!r}",
                path=p.source,
                tag="ImagePositionPatient",
            )
    pos = np.array([np.asarray(p.position_mm, dtype=float) for p in planes])
    proj = pos @ normal
    order = [int(i) for i in np.argsort(proj, kind="stable")]
    d = proj[order]
    derivations = [
        "slices sorted by the projection of ImagePositionPatient on the normal "
        "cross(IOP[0:3], IOP[3:6])"
    ]

    if len(planes) == 1:
        if single_slice_spacing_mm is None:
            raise DicomInputError(
                f"{what} has a single plane and neither SpacingBetweenSlices nor "
                "SliceThickness: the slice spacing is unknown.",
                path=first.source,
                tag="SliceThickness",
            )
        s = float(single_slice_spacing_mm)
        if not np.isfinite(s) or s <= 0:
            raise DicomInputError(
                f"{single_slice_spacing_source} = {single_slice_spacing_mm!r} is not a "
                "positive slice spacing",
                path=first.source,
                tag=single_slice_spacing_source,
            )
        _check_voxel(ps0, s, first.source, single_slice_spacing_source, what)
        derivations.append(f"single plane: slice spacing {s} mm from {single_slice_spacing_source}")
        return StackGeometry(
            order, _affine(normal, col_dir, row_dir, ps0, s, pos[order[0]]), d, None, derivations
        )

    gaps = np.diff(d)
    # duplicates
    dup = np.nonzero(gaps < DUPLICATE_ATOL_MM)[0]
    if len(dup):
        i = int(dup[0])
        a, b = planes[order[i]].source, planes[order[i + 1]].source
        raise DicomInputError(
            f"{what} has {len(dup)} duplicate slice position(s) along the normal, e.g. "
            f"{a} and {b} both at {d[i]:.4f} mm. A dynamic or gated series (several time "
            "frames at the same positions), or two copies of the same slice, cannot be "
            "stacked into one volume: select one frame or remove the copies.",
            path=b,
            tag="ImagePositionPatient",
        )
    # gantry tilt / shear: positions must lie on the normal line through the first one
    rel = pos[order] - pos[order[0]]
    along = rel @ normal
    perp = np.linalg.norm(rel - along[:, None] * normal[None, :], axis=1)
    limit = TILT_ATOL_MM + TILT_RTOL * np.abs(along)
    bad = np.nonzero(perp > limit)[0]
    if len(bad):
        k = int(bad[np.argmax(perp[bad] / np.maximum(np.abs(along[bad]), 1e-9))])
        angle = float(np.degrees(np.arctan2(perp[k], abs(along[k]))))
        raise DicomInputError(
            f"{what}: slice positions do not lie along the slice normal (gantry tilt or "
            f"sheared stack): {planes[order[k]].source} is displaced {perp[k]:.3f} mm "
            f"in-plane over {along[k]:.3f} mm along the normal (~{angle:.2f} degrees). "
            "Resample the series to an orthogonal grid (e.g. with the scanner software) "
            "before dosimetry.",
            path=planes[order[k]].source,
            tag="ImagePositionPatient",
        )
    median = float(np.median(gaps))
    dev = np.abs(gaps - median)
    uniform = bool(np.all(dev <= SPACING_RTOL * median))
    if uniform:
        spacing = float((d[-1] - d[0]) / (len(d) - 1))
        _check_voxel(ps0, spacing, first.source, "ImagePositionPatient", what)
        derivations.append(
            f"slice spacing {spacing:.6g} mm from the slice positions ({len(d)} slices)"
        )
        return StackGeometry(
            order,
            _affine(normal, col_dir, row_dir, ps0, spacing, pos[order[0]]),
            d,
            None,
            derivations,
        )
    worst = int(np.argmax(dev))
    detail = (
        f"{what}: slice spacing is not uniform: median gap {median:.4g} mm, but the gap "
        f"between {planes[order[worst]].source} and {planes[order[worst + 1]].source} is "
        f"{gaps[worst]:.4g} mm (tolerance {SPACING_RTOL:.0%} of the median); gaps range "
        f"{gaps.min():.4g}-{gaps.max():.4g} mm"
    )
    n_missing = int(np.sum(np.round(gaps / median) - 1).clip(0))
    if n_missing and np.allclose(gaps / median, np.round(gaps / median), atol=SPACING_RTOL):
        detail += f" (looks like {n_missing} missing slice(s))"
    if allow_nonuniform != "resample":
        raise DicomInputError(
            detail + ". Pass allow_nonuniform='resample' to interpolate linearly to a "
            "uniform spacing, or supply the complete series.",
            path=planes[order[worst + 1]].source,
            tag="ImagePositionPatient",
        )
    _check_voxel(ps0, median, first.source, "ImagePositionPatient", what)
    n_float = float(np.floor((d[-1] - d[0]) / median + 1e-6)) + 1.0
    try:
        check_grid_budget(
            (min(n_float, 2.0**62), *first.shape),
            what=f"{what}: the stack resampled to a uniform spacing of {median:.6g} mm "
            "(allow_nonuniform='resample')",
        )
    except InputDataError as exc:
        raise DicomInputError(str(exc), path=first.source, tag="ImagePositionPatient") from None
    n_out = int(n_float)
    target = d[0] + median * np.arange(n_out)
    derivations.append(
        detail + f"; resampled by linear interpolation along the normal to {n_out} slices "
        f"at {median:.6g} mm (allow_nonuniform='resample')"
    )
    log.info("%s", derivations[-1])
    return StackGeometry(
        order,
        _affine(normal, col_dir, row_dir, ps0, median, pos[order[0]]),
        d,
        target,
        derivations,
    )


def _affine(
    normal: np.ndarray,
    col_dir: np.ndarray,
    row_dir: np.ndarray,
    pixel_spacing: np.ndarray,
    slice_spacing: float,
    origin: np.ndarray,
) -> np.ndarray:
    a = np.eye(4)
    a[:3, 0] = normal * slice_spacing
    a[:3, 1] = col_dir * pixel_spacing[0]
    a[:3, 2] = row_dir * pixel_spacing[1]
    a[:3, 3] = origin
    return a


def resample_stack(stack: np.ndarray, geometry: StackGeometry) -> np.ndarray:
    """Interpolate a sorted stack ``[n, rows, cols]`` to the uniform target positions.

    Linear interpolation along the normal between the two nearest measured planes (an
    intensive quantity is assumed: concentration, HU). Returns ``stack`` unchanged when
    the geometry needs no resampling.

    >>> import numpy as np
    >>> p = [Plane((0.0, 0.0, z), (1, 0, 0, 0, 1, 0), (1.0, 1.0), (1, 1), str(z))
    ...      for z in (0.0, 2.0, 4.0, 8.0)]
    >>> g = stack_planes(p, allow_nonuniform="resample")
    >>> resample_stack(np.array([0.0, 2.0, 4.0, 8.0]).reshape(4, 1, 1), g).ravel().tolist()
    [0.0, 2.0, 4.0, 6.0, 8.0]
    """
    if geometry.target_positions_mm is None:
        return stack
    d = geometry.positions_mm
    f = np.interp(geometry.target_positions_mm, d, np.arange(len(d), dtype=float))
    i0 = np.clip(np.floor(f).astype(int), 0, len(d) - 1)
    i1 = np.clip(i0 + 1, 0, len(d) - 1)
    w = (f - i0)[:, None, None]
    s = stack.astype(np.float64, copy=False)
    return (1.0 - w) * s[i0] + w * s[i1]
