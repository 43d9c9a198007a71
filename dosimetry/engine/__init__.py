"""Dose engine: local deposition, exact linear convolution (Numba direct / FFT), density.

Array-level building blocks behind :func:`dosimetry.absorbed_dose`:

* :func:`convolve`: ``"same"``-size linear convolution with a centred kernel, by the
  direct Numba path or the FFT path (cached kernel spectra), chosen automatically;
  :func:`convolve_many`: several maps of one grid (time points), one kernel;
  :func:`scan_map`: their validating pass over a map, for callers that validate first.
* :func:`local_dose`: local energy deposition.
* :func:`clear_spectrum_cache`, :func:`spectrum_cache_info`: the kernel-spectrum cache;
  :func:`release_workspace`: the FFT path's work array kept between calls.
"""

from .convolve import MapScan, choose_path, convolve, convolve_many, kernel_key, scan_map
from .fft import clear_spectrum_cache, release_workspace, spectrum_cache_info
from .led import local_dose, voxel_mass_kg

__all__ = [
    "convolve",
    "convolve_many",
    "choose_path",
    "kernel_key",
    "scan_map",
    "MapScan",
    "clear_spectrum_cache",
    "spectrum_cache_info",
    "release_workspace",
    "local_dose",
    "voxel_mass_kg",
]
