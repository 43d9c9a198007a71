"""The one image type: a scalar 3-D array on a regular grid in DICOM patient (LPS) space.

Index order is ``[slice, row, column]`` = ``(k, j, i)``. The 4x4 ``affine`` maps a
homogeneous index vector ``(k, j, i, 1)`` to LPS millimetres::

    x_lps = affine @ [k, j, i, 1]

so ``affine[:3, 0]`` is the slice step (slice normal x slice spacing), ``affine[:3, 1]``
the step between rows (DICOM column direction cosine x PixelSpacing[0]) and
``affine[:3, 2]`` the step between columns (row direction cosine x PixelSpacing[1]).
Spacing, origin and direction are derived from the affine, never stored.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import numpy as np

from . import parameters
from .errors import GeometryMismatchError, InputDataError, UnitError
from .units import VOLUME_UNITS

__all__ = ["Volume", "resample", "affine_from_geometry", "check_grid_budget"]

log = logging.getLogger(__name__)

Quantity = Literal["mask", "concentration", "extensive", "label"]


def affine_from_geometry(
    spacing_mm: tuple[float, float, float] | np.ndarray,
    origin_mm: tuple[float, float, float] | np.ndarray = (0.0, 0.0, 0.0),
    direction: np.ndarray | None = None,
) -> np.ndarray:
    """Build the 4x4 index->LPS affine from spacing, origin and direction.

    Parameters
    ----------
    spacing_mm
        (slice, row, column) spacing in mm, all > 0.
    origin_mm
        LPS position (mm) of the centre of voxel ``[0, 0, 0]``.
    direction
        3x3 matrix whose columns are the unit vectors of the slice, row and column
        index axes in LPS. Identity when omitted, i.e. slice axis along +L (x), rows along
        +P (y), columns along +S (z). An axial DICOM series read by :mod:`dosimetry.io`
        has the slice axis along +/-S instead: pass its direction explicitly.

    >>> affine_from_geometry((3.0, 2.0, 2.0))[:3, :3].diagonal().tolist()
    [3.0, 2.0, 2.0]
    """
    sp = np.asarray(spacing_mm, dtype=float)
    if sp.shape != (3,) or not np.all(np.isfinite(sp)) or np.any(sp <= 0):
        raise GeometryMismatchError(
            f"spacing_mm must be three positive finite numbers, got {spacing_mm!r}"
        )
    d = np.eye(3) if direction is None else np.asarray(direction, dtype=float)
    a = np.eye(4)
    a[:3, :3] = d * sp[np.newaxis, :]
    a[:3, 3] = np.asarray(origin_mm, dtype=float)
    return a


def check_grid_budget(
    shape: Sequence[float],
    *,
    what: str = "grid",
    bytes_per_voxel: int = 8,
    max_voxels: float | None = None,
) -> int:
    """Refuse a grid larger than the memory budget, before anything is allocated.

    Parameters
    ----------
    shape
        Dimensions of the grid to allocate (any number of axes; non-negative whole
        numbers, which may be given as floats when they come from a computation).
    what
        Name of the grid in the message (e.g. ``"PET series 1.2.3 (Rows x Columns x slices)"``).
    bytes_per_voxel
        Size of one element of the array about to be allocated (for the message).
    max_voxels
        Budget in voxels; default the cited, overridable parameter ``max_grid_voxels``
        (``dosimetry/data/parameters.csv``; ``dosimetry.parameters.override(max_grid_voxels=...)``).

    Returns
    -------
    int
        The number of voxels (exact integer product).

    Raises
    ------
    InputDataError
        A negative dimension, or more voxels than the budget (the message gives the shape,
        the size in GiB, the budget and how to raise it).

    >>> check_grid_budget((80, 96, 96))
    737280
    """
    dims = [int(n) for n in shape]
    if any(n < 0 for n in dims):
        raise InputDataError(f"{what}: negative dimension in shape {tuple(dims)}")
    n_vox = math.prod(dims)
    budget = parameters.get("max_grid_voxels") if max_voxels is None else float(max_voxels)
    if n_vox > budget:
        big = n_vox > 10**300  # beyond float range: format the digits count instead
        count = f"~1e{len(str(n_vox)) - 1}" if big else f"{n_vox:.4g}"
        gib = "an astronomical" if big else f"{n_vox * bytes_per_voxel / 2.0**30:.3g} GiB"
        raise InputDataError(
            f"{what}: a grid of shape {tuple(dims)} has {count} voxels "
            f"({gib} at {bytes_per_voxel} bytes per voxel), more than the memory "
            f"budget max_grid_voxels = {budget:.4g}. Check the grid (a wrong Rows/Columns, "
            "PixelSpacing or voxel size?); if it is right, raise the budget with "
            "dosimetry.parameters.override(max_grid_voxels=...)."
        )
    return n_vox


@dataclass(frozen=True, eq=False)
class Volume:
    """Scalar 3-D image on a regular grid in DICOM patient (LPS) space.

    Parameters
    ----------
    array
        Values, shape ``(n_slice, n_row, n_col)``.
    affine
        4x4 matrix: ``(slice, row, col, 1)`` index -> LPS mm (see module docstring).
    unit
        One of :data:`dosimetry.units.VOLUME_UNITS` (``"Bq/mL"``, ``"Bq s"``, ``"Gy"``, ...).
    frame_of_reference_uid
        DICOM FrameOfReferenceUID of the space the affine refers to, when known.
    reference_time
        The time the values refer to (activity at acquisition, decay-correction reference).
    provenance
        Free-form record of where the values came from (files, UIDs, calibration, ...).

    Examples
    --------
    >>> import numpy as np
    >>> v = Volume.from_spacing(np.zeros((4, 5, 6)), (3.0, 2.0, 2.0), unit="Bq/mL")
    >>> v.spacing_mm
    (3.0, 2.0, 2.0)
    >>> v.voxel_volume_ml
    0.012
    """

    array: np.ndarray
    affine: np.ndarray
    unit: str
    frame_of_reference_uid: str | None = None
    reference_time: datetime | None = None
    provenance: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        arr = np.asarray(self.array)
        if arr.ndim != 3:
            raise GeometryMismatchError(
                f"Volume.array must be 3-D [slice, row, column], got shape {arr.shape}"
            )
        if arr.size == 0:
            raise InputDataError(f"Volume.array is empty (shape {arr.shape})")
        aff = np.asarray(self.affine, dtype=float)
        if aff.shape != (4, 4):
            raise GeometryMismatchError(f"Volume.affine must be 4x4, got shape {aff.shape}")
        if not np.all(np.isfinite(aff)):
            raise GeometryMismatchError("Volume.affine contains NaN or infinite values")
        if not np.allclose(aff[3], [0.0, 0.0, 0.0, 1.0]):
            raise GeometryMismatchError(f"Volume.affine last row must be [0,0,0,1], got {aff[3]}")
        if abs(np.linalg.det(aff[:3, :3])) < 1e-9:
            raise GeometryMismatchError(
                "Volume.affine is singular (zero spacing or collinear axes); "
                f"columns: {aff[:3, :3].T.tolist()}"
            )
        if self.unit not in VOLUME_UNITS:
            raise UnitError(
                f"Volume.unit={self.unit!r} is not a known unit; valid: {', '.join(VOLUME_UNITS)}"
            )
        aff = aff.copy()
        aff.setflags(write=False)
        object.__setattr__(self, "array", arr)
        object.__setattr__(self, "affine", aff)

    # -- construction ---------------------------------------------------------------
    @classmethod
    def from_spacing(
        cls,
        array: np.ndarray,
        spacing_mm: tuple[float, float, float],
        origin_mm: tuple[float, float, float] = (0.0, 0.0, 0.0),
        direction: np.ndarray | None = None,
        unit: str = "1",
        **kwargs: Any,
    ) -> Volume:
        """Create a Volume from spacing/origin/direction instead of an affine."""
        return cls(
            np.asarray(array),
            affine_from_geometry(spacing_mm, origin_mm, direction),
            unit,
            **kwargs,
        )

    def with_array(self, array: np.ndarray, unit: str | None = None, **changes: Any) -> Volume:
        """Same grid, new values (and optionally a new unit or other fields)."""
        array = np.asarray(array)
        if array.shape != self.shape:
            raise GeometryMismatchError(
                f"with_array: new array has shape {array.shape}, the grid has {self.shape}"
            )
        fields: dict[str, Any] = {
            "frame_of_reference_uid": self.frame_of_reference_uid,
            "reference_time": self.reference_time,
            "provenance": self.provenance,
        }
        fields.update(changes)
        return Volume(array, self.affine, self.unit if unit is None else unit, **fields)

    # -- derived geometry -------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, int, int]:
        s = self.array.shape
        return (int(s[0]), int(s[1]), int(s[2]))

    @property
    def spacing_mm(self) -> tuple[float, float, float]:
        """(slice, row, column) spacing in mm, from the affine's column norms."""
        n = np.linalg.norm(self.affine[:3, :3], axis=0)
        return (float(n[0]), float(n[1]), float(n[2]))

    @property
    def origin_mm(self) -> np.ndarray:
        """LPS position (mm) of the centre of voxel [0, 0, 0]."""
        return np.array(self.affine[:3, 3])

    @property
    def direction(self) -> np.ndarray:
        """3x3 matrix of unit column vectors: slice, row and column index axes in LPS."""
        return self.affine[:3, :3] / np.array(self.spacing_mm)[np.newaxis, :]

    @property
    def voxel_volume_ml(self) -> float:
        """Volume of one voxel in mL (cm^3)."""
        return float(abs(np.linalg.det(self.affine[:3, :3])) / 1000.0)

    def index_to_world(self, index: np.ndarray) -> np.ndarray:
        """LPS mm of index triples ``(..., 3)`` in (slice, row, column) order."""
        idx = np.asarray(index, dtype=float)
        return idx @ self.affine[:3, :3].T + self.affine[:3, 3]

    def world_to_index(self, xyz: np.ndarray) -> np.ndarray:
        """Continuous (slice, row, column) indices of LPS points ``(..., 3)``."""
        inv = np.linalg.inv(self.affine)
        p = np.asarray(xyz, dtype=float)
        return p @ inv[:3, :3].T + inv[:3, 3]

    def center_mm(self) -> np.ndarray:
        """LPS position of the geometric centre of the grid."""
        return self.index_to_world((np.array(self.shape) - 1) / 2.0)

    # -- comparisons -------------------------------------------------------------------
    def same_grid(self, other: Volume, atol_mm: float = 1e-3) -> bool:
        """True when ``other`` has the same shape and affine (within ``atol_mm``) in the same
        frame of reference (:meth:`same_frame`): the predicate agrees with
        :meth:`check_same_grid`."""
        return (
            self.shape == other.shape
            and bool(np.allclose(self.affine, other.affine, rtol=0.0, atol=atol_mm))
            and self.same_frame(other)
        )

    def same_frame(self, other: Volume) -> bool:
        """False only when both frames of reference are known and differ."""
        a, b = self.frame_of_reference_uid, other.frame_of_reference_uid
        return a is None or b is None or a == b

    def check_same_grid(self, other: Volume, name: str = "other", atol_mm: float = 1e-3) -> None:
        """Raise :class:`GeometryMismatchError` unless ``other`` lies on this grid."""
        if self.shape != other.shape:
            raise GeometryMismatchError(
                f"{name} has shape {other.shape}, expected {self.shape}. "
                "Resample first with dosimetry.resample(volume, reference, quantity=...)."
            )
        if not np.allclose(self.affine, other.affine, rtol=0.0, atol=atol_mm):
            raise GeometryMismatchError(
                f"{name} is on a different grid: spacing {other.spacing_mm} vs {self.spacing_mm}, "
                f"origin {other.origin_mm.tolist()} vs {self.origin_mm.tolist()}. "
                "Resample first with dosimetry.resample(volume, reference, quantity=...)."
            )
        if not self.same_frame(other):
            raise GeometryMismatchError(
                f"{name} has FrameOfReferenceUID {other.frame_of_reference_uid}, expected "
                f"{self.frame_of_reference_uid}: the images are not registered."
            )

    # -- statistics --------------------------------------------------------------------
    def total(self) -> float:
        """Sum of an extensive quantity, or integral (x mL) of a concentration."""
        if self.unit in ("Bq/mL", "1/mL"):
            return float(self.array.sum(dtype=np.float64) * self.voxel_volume_ml)
        return float(self.array.sum(dtype=np.float64))

    def __repr__(self) -> str:
        sp = ", ".join(f"{s:.4g}" for s in self.spacing_mm)
        return (
            f"Volume(shape={self.shape}, spacing_mm=({sp}), unit={self.unit!r}, "
            f"dtype={self.array.dtype})"
        )


def resample(
    volume: Volume,
    reference: Volume,
    quantity: Quantity,
    *,
    fill_value: float = 0.0,
    supersample: int | None = None,
) -> Volume:
    """Resample ``volume`` onto ``reference``'s grid, respecting what the quantity is.

    Parameters
    ----------
    volume
        The image to resample.
    reference
        Its grid (shape, affine, frame of reference) is the target.
    quantity
        ``"mask"``/``"label"``: nearest neighbour. ``"concentration"`` (Bq/mL, Gy, HU,
        g/mL, ...): trilinear interpolation at target voxel centres. ``"extensive"``
        (Bq, Bq s per voxel): each source voxel is split into ``n^3`` sub-voxels whose
        content is deposited in the target voxel containing their centre, so the total
        inside the target field of view is conserved exactly (checked; content outside
        the target grid is reported in the log).
    fill_value
        Value outside the source grid (concentration / mask).
    supersample
        Sub-voxels per axis for extensive quantities; default is chosen so that sub-voxels
        are no larger than half the target spacing (at most 8).

    Returns
    -------
    Volume
        On ``reference``'s grid, with ``volume``'s unit and frame of reference.
    """
    if not volume.same_frame(reference):
        raise GeometryMismatchError(
            f"cannot resample between frames of reference {volume.frame_of_reference_uid} and "
            f"{reference.frame_of_reference_uid}: register the images first."
        )
    if quantity not in ("mask", "label", "concentration", "extensive"):
        raise ValueError(
            f"quantity={quantity!r}; valid: 'mask', 'label', 'concentration', 'extensive'"
        )
    if volume.same_grid(reference, atol_mm=1e-6):
        return volume.with_array(volume.array.copy())
    check_grid_budget(reference.shape, what="resample: the reference grid (the output)")
    if quantity == "extensive":
        out = _resample_extensive(volume, reference, supersample)
    else:
        # target index -> source index: inv(A_src) @ A_ref
        m = np.linalg.inv(volume.affine) @ reference.affine
        order = 0 if quantity in ("mask", "label") else 1
        src = volume.array
        if src.dtype == bool:
            src = src.astype(np.uint8)
        from scipy import ndimage  # imported here: `import dosimetry` stays light

        out = ndimage.affine_transform(
            src.astype(np.float64) if order == 1 else src,
            m[:3, :3],
            offset=m[:3, 3],
            output_shape=reference.shape,
            order=order,
            mode="constant",
            cval=fill_value,
            prefilter=False,
        )
        if volume.array.dtype == bool:
            out = out.astype(bool)
    return Volume(
        out,
        reference.affine,
        volume.unit,
        frame_of_reference_uid=volume.frame_of_reference_uid or reference.frame_of_reference_uid,
        reference_time=volume.reference_time,
        provenance={**dict(volume.provenance), "resampled_as": quantity},
    )


def _resample_extensive(volume: Volume, reference: Volume, supersample: int | None) -> np.ndarray:
    src_sp = np.array(volume.spacing_mm)
    ref_sp = np.array(reference.spacing_mm)
    if supersample is None:
        n_axis = np.clip(np.ceil(2.0 * src_sp / ref_sp), 1, 8).astype(int)
    else:
        if supersample < 1:
            raise ValueError(f"supersample must be >= 1, got {supersample}")
        n_axis = np.array([supersample] * 3)
    out = np.zeros(reference.shape, dtype=np.float64)
    values = volume.array.astype(np.float64)
    nz = np.nonzero(values)
    if len(nz[0]) == 0:
        return out
    vals = values[nz]
    idx = np.stack(nz, axis=-1).astype(float)
    m = np.linalg.inv(reference.affine) @ volume.affine
    weight = 1.0 / float(np.prod(n_axis))
    offs = [(np.arange(n) + 0.5) / n - 0.5 for n in n_axis]
    shape = np.array(reference.shape)
    for dk in offs[0]:
        for dj in offs[1]:
            for di in offs[2]:
                sub = idx + np.array([dk, dj, di])
                t = np.rint(sub @ m[:3, :3].T + m[:3, 3]).astype(np.int64)
                inside = np.all((t >= 0) & (t < shape), axis=1)
                tt = t[inside]
                np.add.at(out, (tt[:, 0], tt[:, 1], tt[:, 2]), vals[inside] * weight)
    total_in, total_out = float(values.sum()), float(out.sum())
    if total_in != 0 and abs(total_out - total_in) > 1e-9 * abs(total_in):
        log.info(
            "extensive resample: %.6g of %.6g (%.3f %%) lies outside the target grid",
            total_in - total_out,
            total_in,
            100.0 * (total_in - total_out) / total_in,
        )
    return out
