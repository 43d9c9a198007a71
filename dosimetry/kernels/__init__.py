"""Voxel S-value kernels: the published tables and the dose-point-kernel library.

:func:`vsv_kernel` returns a :class:`Kernel` (absorbed dose per decay, Gy/(Bq s), per
target-voxel offset) for a nuclide, voxel size and medium, either from the published
Lanconelli 2012 database (``source="lanconelli2012"``) or from the dose-point-kernel
library (``source="dpk"``); :func:`dose_point_kernel` gives the radial kernel behind it.
"""

from ._dpk import MEDIA, Medium
from ._kernel import Kernel
from ._lanconelli import lanconelli_available, lanconelli_kernel
from ._vsv import DosePointKernel, dose_point_kernel, vsv_kernel

__all__ = [
    "Kernel",
    "MEDIA",
    "Medium",
    "vsv_kernel",
    "dose_point_kernel",
    "DosePointKernel",
    "lanconelli_available",
    "lanconelli_kernel",
]
