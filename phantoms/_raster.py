"""Distribute per-region quantities (Bq, Bq s, counts) of a phantom over an image grid.

Each voxel of the target grid is divided into ``sub**3`` sub-voxels; the phantom's
exclusive region map is painted at the sub-voxel centres over the whole phantom (also
where it extends beyond the target field of view). A region's amount is split equally
among its sub-voxels and summed back per target voxel, so that

* the sum over the target grid equals the sum of the region amounts (minus whatever lies
  outside the field of view, reported separately), exactly, and
* partial-volume voxels at organ boundaries carry the right fraction.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from ._geometry import axial_affine, axial_grid_axes
from ._torso import TorsoPhantom, _paint, _shape_mask

__all__ = ["RegionRaster"]


class RegionRaster:
    """A phantom's regions painted on the sub-voxels of a target axial grid.

    Parameters
    ----------
    phantom
        The torso phantom.
    affine, shape
        Target axial grid (see :func:`phantoms._geometry.axial_affine`).
    sub
        Sub-voxels per axis (>= 1).
    shift_mm
        Translation (LPS mm) applied to the anatomy.
    """

    def __init__(
        self,
        phantom: TorsoPhantom,
        affine: np.ndarray,
        shape: tuple[int, int, int],
        sub: int = 2,
        shift_mm: tuple[float, float, float] = (0.0, 0.0, 0.0),
    ):
        if sub < 1:
            raise ValueError(f"sub must be >= 1, got {sub}")
        self.phantom = phantom
        self.shape = shape
        self.sub = int(sub)
        self.shift_mm = shift_mm
        z, y, x = axial_grid_axes(affine, shape)
        sp = np.linalg.norm(np.asarray(affine)[:3, :3], axis=0)  # (slice, row, col)
        lo, hi = phantom.bounds_mm()
        lo = lo + np.asarray(shift_mm)
        hi = hi + np.asarray(shift_mm)
        # target index range (possibly outside [0, n)) whose voxels may touch the phantom
        ranges = []
        for ax0, spacing, lo_v, hi_v in (
            (z[0], sp[0], lo[2], hi[2]),
            (y[0], sp[1], lo[1], hi[1]),
            (x[0], sp[2], lo[0], hi[0]),
        ):
            i0 = math.floor((lo_v - ax0) / spacing - 0.5) - 1
            i1 = math.ceil((hi_v - ax0) / spacing + 0.5) + 1
            ranges.append((i0, i1))
        self._ranges = ranges
        fine_axes = []
        for (i0, i1), ax0, spacing in zip(ranges, (z[0], y[0], x[0]), sp, strict=True):
            idx = np.arange(i0, i1)
            offs = ((np.arange(sub) + 0.5) / sub - 0.5) * spacing
            fine_axes.append((ax0 + spacing * idx[:, None] + offs[None, :]).ravel())
        self.fine_labels = _paint(
            phantom.structures, fine_axes[0], fine_axes[1], fine_axes[2], shift_mm
        )
        self._fine_axes = fine_axes
        self.fine_voxel_ml = float(np.prod(sp / sub) / 1000.0)
        self.region_counts = np.bincount(
            self.fine_labels.ravel(), minlength=len(phantom.structures) + 1
        )
        self.fine_affine = axial_affine(
            (sp[0] / sub, sp[1] / sub, sp[2] / sub),
            (fine_axes[2][0], fine_axes[1][0], fine_axes[0][0]),
        )

    # ------------------------------------------------------------------------------
    def region_volume_ml(self) -> dict[str, float]:
        """Volume (mL) of each exclusive region on the sub-voxel grid."""
        names = self.phantom.region_names
        return {
            names[i]: float(self.region_counts[i] * self.fine_voxel_ml)
            for i in range(1, len(names))
        }

    def _lut(self, amounts: Mapping[str, float]) -> np.ndarray:
        names = self.phantom.region_names
        unknown = set(amounts) - set(names[1:])
        if unknown:
            raise KeyError(f"unknown regions {sorted(unknown)}; known: {names[1:]}")
        lut = np.zeros(len(names), dtype=np.float64)
        for i, n in enumerate(names):
            if i == 0 or n not in amounts:
                continue
            if self.region_counts[i] == 0:
                if amounts[n] != 0:
                    raise ValueError(f"region {n!r} has no voxels on this grid")
                continue
            lut[i] = float(amounts[n]) / float(self.region_counts[i])
        return lut

    def distribute(self, amounts: Mapping[str, float]) -> tuple[np.ndarray, float]:
        """Per-voxel sums of the region ``amounts`` on the target grid.

        Returns
        -------
        array
            float64 array of the target shape (amount per voxel).
        outside
            Total amount that falls outside the target field of view.
        """
        lut = self._lut(amounts)
        fine = lut[self.fine_labels]
        s = self.sub
        (z0, z1), (y0, y1), (x0, x1) = self._ranges
        blocks = fine.reshape(z1 - z0, s, y1 - y0, s, x1 - x0, s).sum(axis=(1, 3, 5))
        out = np.zeros(self.shape, dtype=np.float64)
        nz, ny, nx = self.shape
        tz = slice(max(z0, 0), min(z1, nz))
        ty = slice(max(y0, 0), min(y1, ny))
        tx = slice(max(x0, 0), min(x1, nx))
        if tz.stop > tz.start and ty.stop > ty.start and tx.stop > tx.start:
            out[tz, ty, tx] = blocks[
                tz.start - z0 : tz.stop - z0,
                ty.start - y0 : ty.stop - y0,
                tx.start - x0 : tx.stop - x0,
            ]
        total = float(sum(amounts.values()))
        return out, total - float(out.sum())

    def roi_fractions(self, roi_name: str) -> dict[str, float]:
        """Fraction of each exclusive region's sub-voxels that lie inside ROI ``roi_name``.

        The amount of any region-wise quantity inside the whole ROI shape is
        ``sum(fraction[r] * amount[r])``.
        """
        shape = self.phantom.structure(roi_name).shape.shifted(self.shift_mm)
        inside = _shape_mask(shape, *self._fine_axes)
        counts = np.bincount(self.fine_labels[inside], minlength=self.region_counts.size)
        names = self.phantom.region_names
        return {
            names[i]: float(counts[i] / self.region_counts[i])
            for i in range(1, len(names))
            if counts[i] > 0
        }
