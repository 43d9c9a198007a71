"""Public entry point :func:`vsv_kernel`."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ..errors import KernelError
from ._kernel import Kernel
from ._lanconelli import lanconelli_kernel

__all__ = ["vsv_kernel"]

SOURCES = ("dpk", "lanconelli2012")


def vsv_kernel(
    nuclide: str,
    voxel_mm: float | Sequence[float],
    medium: str = "soft tissue",
    radius_mm: float | None = None,
    chain: bool = False,
    source: str = "dpk",
    exclude: Iterable[str] = (),
) -> Kernel:
    """Voxel S-value kernel for ``nuclide`` at ``voxel_mm`` in ``medium``.

    Parameters
    ----------
    nuclide
        Nuclide name (``"Lu-177"``, ``"177Lu"``...).
    voxel_mm
        Voxel size in mm: a scalar (cubic) or (slice, row, column).
    medium
        ``"soft tissue"`` (default), ``"bone"``, ...
    radius_mm
        Radius of the kernel's extent; ``None`` = the source's default.
    chain
        Add every progeny weighted by its decays per parent decay (``source="dpk"`` only).
    source
        ``"dpk"`` (dose-point-kernel library) or ``"lanconelli2012"`` (published table).
    exclude
        ICRP-107 radiation classes to leave out (``source="dpk"`` only).

    Returns
    -------
    Kernel
        Array in Gy/(Bq s) with the fraction of emitted energy it holds.

    Examples
    --------
    >>> k = vsv_kernel("Lu-177", 4.8, source="lanconelli2012")
    >>> k.shape
    (11, 11, 11)
    """
    if source == "lanconelli2012":
        if chain:
            raise KernelError("chain=True is not available with source='lanconelli2012'")
        if tuple(exclude):
            raise KernelError(
                "exclude is not available with source='lanconelli2012' (the published "
                "values are not split by radiation class)"
            )
        return lanconelli_kernel(nuclide, voxel_mm, medium=medium, radius_mm=radius_mm)
    if source == "dpk":
        raise KernelError("source='dpk': the dose-point-kernel library is not built yet")
    raise KernelError(f"source={source!r} is unknown; valid: {', '.join(SOURCES)}")
