"""Analytic shapes of the digital phantoms, in DICOM patient (LPS) millimetres.

Every shape can say which points lie inside it (for rasterising on any grid) and what
its cross-section with an axial plane ``z = const`` is (for RTSTRUCT contours). Shapes
are axis-aligned along the patient's superior axis (LPS ``z``) and may be rotated about it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = [
    "Ellipsoid",
    "EllipticCylinder",
    "StackedCylinders",
    "Shape",
    "polygon_area",
    "axial_affine",
    "axial_grid_axes",
]

#: Direction matrix of an axial head-first-supine grid: columns are the LPS unit vectors
#: of the slice (+z), row (+y) and column (+x) index axes.
AXIAL_DIRECTION = np.array([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])


def _rotate_xy(dx: np.ndarray, dy: np.ndarray, angle_deg: float) -> tuple[np.ndarray, np.ndarray]:
    """Coordinates in the shape's own frame (rotated by ``angle_deg`` about +z)."""
    if angle_deg == 0.0:
        return dx, dy
    c, s = math.cos(math.radians(angle_deg)), math.sin(math.radians(angle_deg))
    return c * dx + s * dy, -s * dx + c * dy


def _ellipse_polygon(
    cx: float, cy: float, a: float, b: float, angle_deg: float, n_points: int
) -> np.ndarray:
    """Vertices ``(n, 2)`` of a polygon whose area equals the ellipse's exactly.

    The vertices of a regular ``n``-gon inscribed in the unit circle enclose
    ``(n/2) sin(2 pi/n)`` instead of ``pi``; scaling the radius by the square root of the
    ratio makes the enclosed area equal to ``pi a b``, so that contour-derived volumes
    are unbiased.
    """
    t = 2.0 * np.pi * np.arange(n_points) / n_points
    k = math.sqrt(2.0 * math.pi / (n_points * math.sin(2.0 * math.pi / n_points)))
    u, v = k * a * np.cos(t), k * b * np.sin(t)
    c, s = math.cos(math.radians(angle_deg)), math.sin(math.radians(angle_deg))
    x = cx + c * u - s * v
    y = cy + s * u + c * v
    return np.stack([x, y], axis=1)


def polygon_area(xy: np.ndarray) -> float:
    """Unsigned area (mm^2) of a simple closed polygon with vertices ``(n, 2)`` (shoelace).

    >>> polygon_area(np.array([[0.0, 0.0], [2.0, 0.0], [2.0, 3.0], [0.0, 3.0]]))
    6.0
    """
    x, y = np.asarray(xy, dtype=float).T
    return float(abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2.0)


@dataclass(frozen=True)
class Ellipsoid:
    """Ellipsoid with semi-axes ``(a, b, c)`` mm along its own x, y and the LPS z axis.

    Parameters
    ----------
    center_mm
        LPS centre (mm).
    semi_axes_mm
        Semi-axes (mm) along the shape's x, y (after rotation) and LPS z.
    angle_deg
        Rotation about the LPS +z axis (degrees, counter-clockwise seen from +z).

    >>> e = Ellipsoid((0.0, 0.0, 0.0), (10.0, 10.0, 10.0))
    >>> round(e.volume_ml, 4)
    4.1888
    >>> round(e.cross_section_area_mm2(5.0), 3)  # pi * (100 - 25)
    235.619
    """

    center_mm: tuple[float, float, float]
    semi_axes_mm: tuple[float, float, float]
    angle_deg: float = 0.0

    @property
    def volume_ml(self) -> float:
        """Analytic volume in mL."""
        a, b, c = self.semi_axes_mm
        return 4.0 / 3.0 * math.pi * a * b * c / 1000.0

    def bounds_mm(self) -> tuple[np.ndarray, np.ndarray]:
        """Axis-aligned LPS bounding box ``(low, high)`` (mm)."""
        a, b, c = self.semi_axes_mm
        th = math.radians(self.angle_deg)
        ex = math.hypot(a * math.cos(th), b * math.sin(th))
        ey = math.hypot(a * math.sin(th), b * math.cos(th))
        ctr = np.asarray(self.center_mm, dtype=float)
        half = np.array([ex, ey, c])
        return ctr - half, ctr + half

    def contains(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        """Boolean array (broadcast of ``x, y, z``): point inside or on the surface."""
        cx, cy, cz = self.center_mm
        a, b, c = self.semi_axes_mm
        u, v = _rotate_xy(x - cx, y - cy, self.angle_deg)
        return (u / a) ** 2 + (v / b) ** 2 + ((z - cz) / c) ** 2 <= 1.0

    def _scale(self, z_mm: float) -> float:
        q = 1.0 - ((z_mm - self.center_mm[2]) / self.semi_axes_mm[2]) ** 2
        return math.sqrt(q) if q > 0.0 else 0.0

    def cross_section_area_mm2(self, z_mm: float) -> float:
        """Exact area (mm^2) of the section with the plane ``z = z_mm``."""
        s = self._scale(z_mm)
        return math.pi * self.semi_axes_mm[0] * self.semi_axes_mm[1] * s * s

    def cross_section(self, z_mm: float, n_points: int = 64) -> list[np.ndarray]:
        """Closed polygons ``(n, 2)`` (LPS x, y in mm) of the section at ``z = z_mm``.

        Empty when the plane misses the shape. The polygon encloses exactly
        :meth:`cross_section_area_mm2`.
        """
        s = self._scale(z_mm)
        if s <= 0.0:
            return []
        a, b, _ = self.semi_axes_mm
        return [
            _ellipse_polygon(
                self.center_mm[0], self.center_mm[1], a * s, b * s, self.angle_deg, n_points
            )
        ]

    def shifted(self, shift_mm: tuple[float, float, float]) -> Ellipsoid:
        """The same ellipsoid translated by ``shift_mm`` (LPS mm)."""
        c = tuple(float(p + d) for p, d in zip(self.center_mm, shift_mm, strict=True))
        return Ellipsoid((c[0], c[1], c[2]), self.semi_axes_mm, self.angle_deg)


@dataclass(frozen=True)
class EllipticCylinder:
    """Elliptic cylinder along LPS z between ``z_min_mm`` and ``z_max_mm``.

    >>> c = EllipticCylinder((0.0, 0.0), (20.0, 10.0), -50.0, 50.0)
    >>> round(c.volume_ml, 4)
    62.8319
    >>> c.cross_section(60.0)
    []
    """

    center_xy_mm: tuple[float, float]
    semi_axes_mm: tuple[float, float]
    z_min_mm: float
    z_max_mm: float
    angle_deg: float = 0.0

    @property
    def volume_ml(self) -> float:
        """Analytic volume in mL."""
        a, b = self.semi_axes_mm
        return math.pi * a * b * (self.z_max_mm - self.z_min_mm) / 1000.0

    def bounds_mm(self) -> tuple[np.ndarray, np.ndarray]:
        """Axis-aligned LPS bounding box ``(low, high)`` (mm)."""
        a, b = self.semi_axes_mm
        th = math.radians(self.angle_deg)
        ex = math.hypot(a * math.cos(th), b * math.sin(th))
        ey = math.hypot(a * math.sin(th), b * math.cos(th))
        cx, cy = self.center_xy_mm
        return (
            np.array([cx - ex, cy - ey, self.z_min_mm]),
            np.array([cx + ex, cy + ey, self.z_max_mm]),
        )

    def contains(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        """Boolean array (broadcast of ``x, y, z``): point inside or on the surface."""
        cx, cy = self.center_xy_mm
        a, b = self.semi_axes_mm
        u, v = _rotate_xy(x - cx, y - cy, self.angle_deg)
        return ((u / a) ** 2 + (v / b) ** 2 <= 1.0) & (z >= self.z_min_mm) & (z <= self.z_max_mm)

    def cross_section_area_mm2(self, z_mm: float) -> float:
        """Exact area (mm^2) of the section with the plane ``z = z_mm``."""
        if not self.z_min_mm <= z_mm <= self.z_max_mm:
            return 0.0
        return math.pi * self.semi_axes_mm[0] * self.semi_axes_mm[1]

    def cross_section(self, z_mm: float, n_points: int = 64) -> list[np.ndarray]:
        """Closed polygons ``(n, 2)`` (LPS x, y in mm) of the section at ``z = z_mm``."""
        if not self.z_min_mm <= z_mm <= self.z_max_mm:
            return []
        a, b = self.semi_axes_mm
        cx, cy = self.center_xy_mm
        return [_ellipse_polygon(cx, cy, a, b, self.angle_deg, n_points)]

    def shifted(self, shift_mm: tuple[float, float, float]) -> EllipticCylinder:
        """The same cylinder translated by ``shift_mm`` (LPS mm)."""
        dx, dy, dz = (float(s) for s in shift_mm)
        return EllipticCylinder(
            (self.center_xy_mm[0] + dx, self.center_xy_mm[1] + dy),
            self.semi_axes_mm,
            self.z_min_mm + dz,
            self.z_max_mm + dz,
            self.angle_deg,
        )


@dataclass(frozen=True)
class StackedCylinders:
    """Elliptic cylinders stacked along LPS z, touching end to end (e.g. torso, neck, head).

    The parts must be ordered by ``z`` with ``parts[i].z_max_mm == parts[i + 1].z_min_mm``:
    the union is then one solid whose axial sections are single ellipses, so that its
    RTSTRUCT contours never overlap. At a shared end plane the section is that of the
    part above (each part owns ``z_min <= z < z_max``; the last part also owns its top).

    >>> s = StackedCylinders((
    ...     EllipticCylinder((0.0, 0.0), (20.0, 10.0), 0.0, 10.0),
    ...     EllipticCylinder((0.0, 5.0), (10.0, 10.0), 10.0, 30.0),
    ... ))
    >>> round(s.volume_ml, 4)  # pi (200 * 10 + 100 * 20) / 1000
    12.5664
    >>> round(s.cross_section_area_mm2(10.0), 3)  # the upper part owns the joint
    314.159
    """

    parts: tuple[EllipticCylinder, ...]

    def __post_init__(self) -> None:
        if not self.parts:
            raise ValueError("StackedCylinders needs at least one part")
        for lo, hi in zip(self.parts, self.parts[1:], strict=False):
            if not math.isclose(lo.z_max_mm, hi.z_min_mm, abs_tol=1e-9):
                raise ValueError(
                    "StackedCylinders parts must touch end to end in ascending z: "
                    f"z_max={lo.z_max_mm} is followed by z_min={hi.z_min_mm}"
                )

    @property
    def volume_ml(self) -> float:
        """Analytic volume in mL (sum of the parts)."""
        return float(sum(p.volume_ml for p in self.parts))

    def bounds_mm(self) -> tuple[np.ndarray, np.ndarray]:
        """Axis-aligned LPS bounding box ``(low, high)`` (mm)."""
        lows, highs = zip(*(p.bounds_mm() for p in self.parts), strict=True)
        return np.min(lows, axis=0), np.max(highs, axis=0)

    def contains(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        """Boolean array (broadcast of ``x, y, z``): point inside any part."""
        out = self.parts[0].contains(x, y, z)
        for p in self.parts[1:]:
            out = out | p.contains(x, y, z)
        return out

    def _part_at(self, z_mm: float) -> EllipticCylinder | None:
        last = len(self.parts) - 1
        for i, p in enumerate(self.parts):
            if p.z_min_mm <= z_mm < p.z_max_mm or (i == last and z_mm == p.z_max_mm):
                return p
        return None

    def cross_section_area_mm2(self, z_mm: float) -> float:
        """Exact area (mm^2) of the section with the plane ``z = z_mm``."""
        p = self._part_at(z_mm)
        return 0.0 if p is None else p.cross_section_area_mm2(z_mm)

    def cross_section(self, z_mm: float, n_points: int = 64) -> list[np.ndarray]:
        """Closed polygon(s) of the section at ``z = z_mm`` (one ellipse, or none)."""
        p = self._part_at(z_mm)
        return [] if p is None else p.cross_section(z_mm, n_points)

    def shifted(self, shift_mm: tuple[float, float, float]) -> StackedCylinders:
        """The same stack translated by ``shift_mm`` (LPS mm)."""
        return StackedCylinders(tuple(p.shifted(shift_mm) for p in self.parts))


Shape = Ellipsoid | EllipticCylinder | StackedCylinders


def axial_affine(
    spacing_mm: tuple[float, float, float], origin_lps_mm: tuple[float, float, float]
) -> np.ndarray:
    """4x4 index->LPS affine of an axial grid.

    Parameters
    ----------
    spacing_mm
        (slice, row, column) spacing in mm: slice along +z, row along +y, column along +x.
    origin_lps_mm
        LPS position ``(x, y, z)`` of the centre of voxel ``[0, 0, 0]``.

    >>> axial_affine((3.0, 2.0, 1.0), (10.0, 20.0, 30.0)) @ [1, 1, 1, 1]
    array([11., 22., 33.,  1.])
    """
    a = np.eye(4)
    a[:3, :3] = AXIAL_DIRECTION * np.asarray(spacing_mm, dtype=float)[np.newaxis, :]
    a[:3, 3] = np.asarray(origin_lps_mm, dtype=float)
    return a


def axial_grid_axes(
    affine: np.ndarray, shape: tuple[int, int, int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """LPS coordinates ``(z[k], y[j], x[i])`` of voxel centres of an axial grid.

    The grid must be axial as built by :func:`axial_affine`: slice index along +z, row
    index along +y, column index along +x (head-first-supine axial geometry).
    """
    aff = np.asarray(affine, dtype=float)
    lin = aff[:3, :3]
    sp = np.linalg.norm(lin, axis=0)
    if not np.allclose(lin, AXIAL_DIRECTION * sp[np.newaxis, :], atol=1e-9):
        raise ValueError(
            "phantom grids must be axial with positive spacing (slice->+z, row->+y, "
            f"column->+x); got affine columns {lin.T.tolist()}"
        )
    z = aff[2, 3] + sp[0] * np.arange(shape[0])
    y = aff[1, 3] + sp[1] * np.arange(shape[1])
    x = aff[0, 3] + sp[2] * np.arange(shape[2])
    return z, y, x
