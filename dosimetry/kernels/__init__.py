"""Voxel S-value kernels: the published tables and the dose-point-kernel library.

:func:`vsv_kernel` returns a :class:`Kernel` (absorbed dose per decay, Gy/(Bq s), per
target-voxel offset) for a nuclide, voxel size and medium, either from the published
Lanconelli 2012 database (``source="lanconelli2012"``) or from the dose-point-kernel
library (``source="dpk"``); :func:`dose_point_kernel` gives the radial kernel behind it.
"""

from ._dpk import MEDIA, Medium, csda_range_cm
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
    "csda_range_cm",
    "electron_reach_mm",
]


def electron_reach_mm(nuclide: str) -> float:
    """CSDA range in water (mm) of the most energetic electron a nuclide emits (beta
    spectrum endpoint or the highest conversion/Auger line; NIST ESTAR ranges): how far its
    non-photon dose reaches.

    >>> 1.5 < electron_reach_mm("Lu-177") < 2.5
    True
    """
    import numpy as np

    from ..nuclides import ELECTRON_CLASSES
    from ..nuclides import nuclide as get_nuclide

    n = get_nuclide(nuclide)
    e_max = 0.0
    if n.beta_spectrum is not None and len(n.beta_spectrum):
        e_max = float(np.max(n.beta_spectrum[:, 0]))
    for cls in ELECTRON_CLASSES:
        lines = n.emissions.get(cls)
        if lines is not None and len(lines) and cls not in ("beta-", "beta+"):
            e_max = max(e_max, float(np.max(lines[:, 0])))
    if e_max <= 0:
        return 0.0
    return float(csda_range_cm(e_max)) * 10.0
