"""Voxel-wise curve fitting kernels (Numba), the public face of ``engine._numba_fit``.

:func:`dosimetry.kinetics.fit_voxels` is their typed wrapper; the kernels take contiguous
arrays only (see ``_numba_fit`` for the model equations and the status codes).
"""

from __future__ import annotations

from ._numba_fit import (
    STATUS_DEGENERATE,
    STATUS_EMPTY,
    STATUS_NO_START,
    STATUS_NOT_CONVERGED,
    STATUS_OK,
    fit_biexp_uptake_voxels,
    fit_mono_voxels,
)

__all__ = [
    "fit_mono_voxels",
    "fit_biexp_uptake_voxels",
    "STATUS_OK",
    "STATUS_EMPTY",
    "STATUS_NOT_CONVERGED",
    "STATUS_DEGENERATE",
    "STATUS_NO_START",
]
