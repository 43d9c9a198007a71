"""The published Lanconelli et al. (2012) voxel S-value database as kernels.

The database gives Monte Carlo (GATE/Geant4) voxel S-values for seven beta emitters
(Sr-89, Y-90, I-131, Sm-153, Lu-177, Re-186, Re-188), 13 cubic voxel sizes from 2.21 to
9.28 mm, in ICRP soft tissue and ICRU compact bone, on the 6x6x6 octant of offsets 0..5.
The full kernel is obtained by reflecting the octant (the kernel is symmetric under sign
changes of each offset; the table is also symmetric under permutations of the axes).

The tissue densities are those of the two media the database was computed for: soft
tissue 1.04 g/cm3 (ICRP) and compact bone 1.85 g/cm3 (ICRU). They are consistent with the
table itself: for Sr-89 (a pure beta emitter whose electrons stop well inside the
11-voxel cube) sum(S) x voxel volume x rho reproduces the ICRP-107 beta energy per decay
with rho = 1.044 (soft) and 1.856 (bone) g/cm3 at 4.80 mm.

References
----------
Lanconelli N, Pacilio M, Lo Meo S, Botta F, Di Dia A, Torres Aroche LA, Coca Perez MA,
Cremonesi M. A free database of radionuclide voxel S values for the dosimetry of nonuniform
activity distributions. Phys Med Biol 2012;57:517-533.

ICRU Report 44 (1989), Tissue Substitutes in Radiation Dosimetry and Measurement
(compact bone, 1.85 g/cm3); ICRP Publication 23 (1975) (soft tissue).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from functools import cache
from importlib import resources

import numpy as np

from ..errors import KernelError
from ..nuclides import normalize_name
from ..nuclides import nuclide as _nuclide
from ..units import MEV_TO_J
from ._kernel import Kernel

__all__ = [
    "LANCONELLI_VERSION",
    "LANCONELLI_CITATION",
    "LANCONELLI_MEDIA",
    "lanconelli_available",
    "lanconelli_octant",
    "lanconelli_kernel",
]

LANCONELLI_VERSION = "lanconelli2012"
LANCONELLI_CITATION = (
    "Lanconelli N, Pacilio M, Lo Meo S, et al. A free database of radionuclide voxel S values "
    "for the dosimetry of nonuniform activity distributions. Phys Med Biol 2012;57:517-533."
)
#: medium name -> (table label, density g/mL, citation of the density)
LANCONELLI_MEDIA: dict[str, tuple[str, float, str]] = {
    "soft tissue": ("soft", 1.04, "ICRP soft tissue, 1.04 g/cm3 (ICRP Publication 23)"),
    "bone": ("bone", 1.85, "ICRU compact bone, 1.85 g/cm3 (ICRU Report 44)"),
}
_MEDIUM_ALIASES = {
    "soft tissue": "soft tissue",
    "soft": "soft tissue",
    "tissue": "soft tissue",
    "soft_tissue": "soft tissue",
    "bone": "bone",
    "compact bone": "bone",
    "bone compact": "bone",
    "cortical bone": "bone",
}
#: ICRP-107 classes whose energy the database's source terms represent (its sources lack
#: the conversion and Auger electrons; see the module docstring of dosimetry.kernels).
LANCONELLI_CLASSES: tuple[str, ...] = ("beta-", "gamma", "X")
_MGY_PER_MBQ_S = 1e-9  # mGy/(MBq s) -> Gy/(Bq s)
_TOL_MM = 0.006  # voxel sizes in the table are given to 0.01 mm


@cache
def _table() -> dict[tuple[str, float, str], np.ndarray]:
    text = (
        resources.files("dosimetry.kernels")
        .joinpath("data/lanconelli2012/vsv.csv")
        .read_text("utf-8")
    )
    lines = (ln for ln in io.StringIO(text) if not ln.startswith("#"))
    out: dict[tuple[str, float, str], np.ndarray] = {}
    names: dict[str, str] = {}  # file spelling -> canonical name, looked up once each
    for row in csv.DictReader(lines):
        raw = row["nuclide"]
        if raw not in names:
            names[raw] = normalize_name(raw)
        key = (names[raw], float(row["voxel_mm"]), row["tissue"])
        oct_ = out.get(key)
        if oct_ is None:
            oct_ = out[key] = np.full((6, 6, 6), np.nan)
        oct_[int(row["i"]), int(row["j"]), int(row["k"])] = (
            float(row["S_mGy_per_MBq_s"]) * _MGY_PER_MBQ_S
        )
    for key, arr in out.items():
        if np.isnan(arr).any():  # pragma: no cover - data integrity
            raise KernelError(f"Lanconelli 2012 table incomplete for {key}")
        arr.setflags(write=False)
    return out


def lanconelli_available() -> dict[str, tuple[float, ...]]:
    """Nuclides of the Lanconelli 2012 database and their voxel sizes (mm).

    >>> lanconelli_available()["Lu-177"][:3]
    (2.21, 2.33, 2.4)
    """
    out: dict[str, set[float]] = {}
    for name, v, _ in _table():
        out.setdefault(name, set()).add(v)
    return {k: tuple(sorted(v)) for k, v in sorted(out.items())}


def _medium(medium: str) -> str:
    key = _MEDIUM_ALIASES.get(str(medium).strip().lower())
    if key is None:
        raise KernelError(
            f"medium={medium!r} is not in the Lanconelli 2012 database; it has "
            f"{', '.join(repr(m) for m in LANCONELLI_MEDIA)}. Use source='dpk' for other media."
        )
    return key


def _cubic_voxel(voxel_mm: float | Sequence[float]) -> float:
    vm = np.atleast_1d(np.asarray(voxel_mm, dtype=float)).ravel()
    if vm.size not in (1, 3) or not np.all(np.isfinite(vm)) or np.any(vm <= 0):
        raise KernelError(f"voxel_mm must be a positive number or three, got {voxel_mm!r}")
    if np.ptp(vm) > _TOL_MM:
        raise KernelError(
            f"the Lanconelli 2012 database has cubic voxels only, got voxel_mm={tuple(vm)}; "
            "use source='dpk' for non-cubic voxels"
        )
    return float(vm.mean())


def lanconelli_octant(name: str, voxel_mm: float, medium: str = "soft tissue") -> np.ndarray:
    """The published 6x6x6 octant (offsets 0..5) in Gy/(Bq s), read-only.

    Parameters
    ----------
    name
        Nuclide (any spelling accepted by :func:`dosimetry.nuclide`).
    voxel_mm
        Cubic voxel side in mm; must be one of the 13 sizes of the database (+-0.006 mm).
    medium
        ``"soft tissue"`` or ``"bone"`` (compact bone).

    Raises
    ------
    KernelError
        Nuclide, voxel size or medium not in the database (the error lists what is).
    """
    canonical = normalize_name(name)
    med = _medium(medium)
    v = _cubic_voxel(voxel_mm)
    avail = lanconelli_available()
    if canonical not in avail:
        raise KernelError(
            f"{canonical} is not in the Lanconelli 2012 database; it has "
            f"{', '.join(avail)}. Use source='dpk' for any ICRP-107 nuclide."
        )
    sizes = avail[canonical]
    match = [s for s in sizes if abs(s - v) <= _TOL_MM]
    if not match:
        raise KernelError(
            f"voxel_mm={v:g} is not in the Lanconelli 2012 database for {canonical}; "
            f"available sizes (mm): {', '.join(f'{s:.2f}' for s in sizes)}. "
            "Use source='dpk' for any voxel size."
        )
    return _table()[(canonical, match[0], LANCONELLI_MEDIA[med][0])]


def _reflect(octant: np.ndarray) -> np.ndarray:
    """Full (2n-1)^3 kernel from the octant of offsets 0..n-1 by sign reflection."""
    a = octant
    for ax in range(3):
        mirrored = np.flip(np.take(a, np.arange(1, a.shape[ax]), axis=ax), axis=ax)
        a = np.concatenate([mirrored, a], axis=ax)
    return np.ascontiguousarray(a)


def lanconelli_kernel(
    name: str,
    voxel_mm: float | Sequence[float],
    medium: str = "soft tissue",
    radius_mm: float | None = None,
) -> Kernel:
    """Kernel from the published Lanconelli 2012 voxel S-values (11x11x11).

    Parameters
    ----------
    name
        One of Sr-89, Y-90, I-131, Sm-153, Lu-177, Re-186, Re-188.
    voxel_mm
        Cubic voxel side (mm), one of 2.21, 2.33, 2.40, 3.00, 3.59, 3.90, 4.00, 4.42, 4.80,
        5.00, 6.00, 6.80, 9.28 (a scalar or three equal values).
    medium
        ``"soft tissue"`` (1.04 g/mL) or ``"bone"`` (compact bone, 1.85 g/mL).
    radius_mm
        Keep only target voxels whose centre lies within this distance of the source
        centre (others set to 0). ``None`` keeps the whole published cube. A radius beyond
        the published extent (5 voxels along an axis) is an error.

    Returns
    -------
    Kernel
        ``energy_fraction`` = sum(S) x voxel mass / E, where E is the ICRP-107 energy per
        decay of the classes the database's source terms represent (beta-, gamma, X; its
        sources lack conversion and Auger electrons). It is the fraction *of those classes'*
        energy absorbed in the published cube.

    References
    ----------
    Lanconelli N et al. Phys Med Biol 2012;57:517-533.

    Examples
    --------
    >>> k = lanconelli_kernel("177Lu", 4.8)
    >>> k.shape, f"{k.array[5, 5, 5]:.3e}"
    ((11, 11, 11), '1.780e-10')
    """
    octant = lanconelli_octant(name, _cubic_voxel(voxel_mm), medium)
    canonical = normalize_name(name)
    v = _cubic_voxel(voxel_mm)
    med = _medium(medium)
    label, rho, rho_cite = LANCONELLI_MEDIA[med]
    full = _reflect(np.asarray(octant))
    n = octant.shape[0] - 1
    max_radius = n * v
    if radius_mm is not None:
        r = float(radius_mm)
        if not np.isfinite(r) or r <= 0:
            raise KernelError(f"radius_mm must be positive, got {radius_mm!r}")
        if r > max_radius + 1e-9:
            raise KernelError(
                f"radius_mm={r:g} exceeds the published extent of the Lanconelli 2012 table "
                f"({n} voxels = {max_radius:g} mm along each axis); use source='dpk' for "
                "larger kernels"
            )
        idx = np.arange(-n, n + 1) * v
        d2 = idx[:, None, None] ** 2 + idx[None, :, None] ** 2 + idx[None, None, :] ** 2
        full = np.where(d2 <= r * r + 1e-9, full, 0.0)
        radius = r
    else:
        radius = float(np.sqrt(3.0) * max_radius)
    nuc = _nuclide(canonical)
    emitted_j = sum(nuc.energy_per_decay_mev(c) for c in LANCONELLI_CLASSES) * MEV_TO_J
    mass_kg = v**3 * 1e-3 * rho * 1e-3
    fraction = float(full.sum() * mass_kg / emitted_j) if emitted_j > 0 else float("nan")
    return Kernel(
        array=full,
        voxel_mm=(v, v, v),
        nuclide=canonical,
        medium=med,
        density_g_per_ml=rho,
        radius_mm=radius,
        energy_fraction=fraction,
        components={},
        source="lanconelli2012",
        library_version=LANCONELLI_VERSION,
        metadata={
            "citation": LANCONELLI_CITATION,
            "table_medium": label,
            "density_citation": rho_cite,
            "energy_fraction_of_classes": LANCONELLI_CLASSES,
            "note": (
                "energy_fraction refers to the ICRP-107 beta-, gamma and X energy per decay; "
                "the database's source terms lack conversion and Auger electrons, so the "
                "kernel holds none of their energy. No per-class components are published."
            ),
        },
    )
