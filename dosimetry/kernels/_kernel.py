"""The :class:`Kernel` type shared by the kernel library and the dose engine."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from ..errors import KernelError

__all__ = ["Kernel"]


@dataclass(frozen=True, eq=False)
class Kernel:
    """A voxel S-value kernel: absorbed dose to each target voxel per decay in the centre.

    Parameters
    ----------
    array
        ``(2n_k+1, 2n_j+1, 2n_i+1)`` float64 array in Gy/(Bq s) (= Gy per decay), indexed
        ``[slice, row, column]`` offsets from the source voxel, which is the centre element.
    voxel_mm
        (slice, row, column) voxel size in mm the kernel was integrated for.
    nuclide
        Canonical nuclide name (``"Lu-177"``); for a chain kernel the parent.
    medium
        ``"water"``, ``"soft tissue"``, ``"lung"``, ``"bone"``, ...
    density_g_per_ml
        Density of the medium the dose refers to.
    radius_mm
        Radius out to which target voxels were kept (the array is the bounding box).
    energy_fraction
        Fraction of the energy emitted per decay (all radiation classes represented in
        the kernel) that is absorbed inside the kernel's extent: truncation is visible.
        :attr:`dropped_fraction` is the rest.
    components
        Per radiation class arrays of the same shape (``"electron"``, ``"photon"``,
        ``"alpha"``, ...) that sum to ``array``.
    source
        Where the values come from (``"dpk"`` library build, ``"lanconelli2012"``, ...).
    library_version
        Version of the data set the kernel was built from.
    metadata
        Anything else worth recording (chain weights, settings, citation).
    """

    array: np.ndarray
    voxel_mm: tuple[float, float, float]
    nuclide: str
    medium: str
    density_g_per_ml: float
    radius_mm: float
    energy_fraction: float
    components: Mapping[str, np.ndarray] = field(default_factory=dict)
    source: str = "dpk"
    library_version: str = ""
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        a = np.ascontiguousarray(self.array, dtype=np.float64)
        if a.ndim != 3 or any(s % 2 == 0 for s in a.shape):
            raise KernelError(f"kernel array must be 3-D with odd sides, got shape {a.shape}")
        if not np.all(np.isfinite(a)):
            raise KernelError("kernel array contains NaN or infinite values")
        if np.any(a < 0):
            raise KernelError("kernel array contains negative values")
        vm = tuple(float(v) for v in self.voxel_mm)
        if len(vm) != 3 or any(v <= 0 for v in vm):
            raise KernelError(f"voxel_mm must be three positive numbers, got {self.voxel_mm!r}")
        for name, comp in self.components.items():
            if np.shape(comp) != a.shape:
                raise KernelError(
                    f"component {name!r} has shape {np.shape(comp)}, kernel has {a.shape}"
                )
        a.setflags(write=False)
        object.__setattr__(self, "array", a)
        object.__setattr__(self, "voxel_mm", vm)

    @property
    def shape(self) -> tuple[int, int, int]:
        s = self.array.shape
        return (int(s[0]), int(s[1]), int(s[2]))

    @property
    def half_width(self) -> tuple[int, int, int]:
        """Number of voxels from the centre to the edge along each axis."""
        return (self.shape[0] // 2, self.shape[1] // 2, self.shape[2] // 2)

    @property
    def voxel_mass_kg(self) -> float:
        """Mass of one voxel of the kernel's medium in kg."""
        return float(np.prod(self.voxel_mm)) * 1e-3 * self.density_g_per_ml * 1e-3

    def absorbed_energy_per_decay_j(self) -> float:
        """Energy absorbed in the kernel's extent per decay (J): sum(kernel x voxel mass)."""
        return float(self.array.sum() * self.voxel_mass_kg)

    @property
    def dropped_fraction(self) -> float:
        """Fraction of the energy emitted per decay that the kernel leaves out:
        ``1 - energy_fraction``.

        In an infinite medium of the kernel's material every emitted joule is absorbed
        somewhere (neutrinos are not part of the emitted energy), so this is the energy
        an infinite medium absorbs outside the kernel's extent. In a patient much of it
        would escape the body anyway: the dose it would add inside a body is smaller
        (docs/kernels.md, "Photon tail").
        """
        return 1.0 - float(self.energy_fraction)

    @cached_property
    def sha256(self) -> str:
        """Content hash over values, voxel size, nuclide, medium and source (computed
        once per kernel: the arrays are read-only)."""
        h = hashlib.sha256()
        h.update(self.array.tobytes())
        h.update(
            repr(
                (
                    self.voxel_mm,
                    self.nuclide,
                    self.medium,
                    self.density_g_per_ml,
                    self.source,
                    self.library_version,
                )
            ).encode()
        )
        return h.hexdigest()

    def __repr__(self) -> str:
        vm = ", ".join(f"{v:.4g}" for v in self.voxel_mm)
        return (
            f"Kernel({self.nuclide}, voxel_mm=({vm}), medium={self.medium!r}, shape={self.shape}, "
            f"energy_fraction={self.energy_fraction:.4f}, source={self.source!r})"
        )
