"""Dose engine: local deposition, exact linear convolution (Numba direct / FFT), density.

Array-level building blocks behind :func:`dosimetry.absorbed_dose`; no ``Volume`` here
except in the public wrappers' documentation.
"""

from .led import local_dose, voxel_mass_kg

__all__ = ["local_dose", "voxel_mass_kg"]
