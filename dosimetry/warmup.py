"""Compile the Numba kernels ahead of the first study (``dosimetry warmup``).

The engine's kernels are ``@njit(cache=True)``: the first call in a fresh environment
compiles them (seconds) and stores the machine code in Numba's cache, after which every
process loads them in milliseconds. :func:`warmup` makes those first calls on tiny inputs
for every specialisation a plan or a SPECT study uses (map scan, direct and FFT
convolution in float32 and float64, local deposition, voxel fits), so that the compile cost
is paid once, where the user expects to wait (the README's set-up), not in the first plan.
"""

from __future__ import annotations

import time

import numpy as np

__all__ = ["warmup"]


def warmup() -> float:
    """Compile (or load from Numba's cache) the kernels of the dose and fit paths.

    Returns
    -------
    float
        Seconds it took (small when the cache was already warm).
    """
    t0 = time.perf_counter()
    from .engine import convolve, local_dose, scan_map
    from .kinetics import fit_voxels
    from .volume import Volume

    rng = np.random.default_rng(0)
    kernel = np.zeros((5, 5, 5))
    kernel[2, 2, 2] = 1.0
    kernel[1:4, 1:4, 1:4] += 0.01
    for dtype in ("float64", "float32"):
        values = rng.random((12, 12, 12)).astype(dtype)
        scan_map(values)
        for path in ("direct", "fft"):
            convolve(values, kernel, path, dtype)
    local_dose(rng.random((4, 4, 4)), 1e-14, 0.064, 1.04)
    times = [24.0, 48.0, 96.0, 168.0]
    vols = [
        Volume.from_spacing(np.full((3, 3, 3), 1e6 * np.exp(-t / 60.0)), (4.0, 4.0, 4.0), unit="Bq")
        for t in times
    ]
    fit_voxels(vols, times, "mono", nuclide="Lu-177")
    fit_voxels(vols, times, "biexp-uptake", nuclide="Lu-177")
    return time.perf_counter() - t0
