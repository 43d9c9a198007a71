"""Voxel S-value kernels: the published tables and the dose-point-kernel library.

:func:`vsv_kernel` returns a :class:`Kernel` (absorbed dose per decay, Gy/(Bq s), per
target-voxel offset) for a nuclide, voxel size and medium, either from the published
Lanconelli 2012 database (``source="lanconelli2012"``) or from the dose-point-kernel
library (``source="dpk"``).
"""

from ._kernel import Kernel
from ._lanconelli import lanconelli_available, lanconelli_kernel
from ._vsv import vsv_kernel

__all__ = ["Kernel", "vsv_kernel", "lanconelli_available", "lanconelli_kernel"]
