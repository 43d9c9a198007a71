"""Absorbed dose (and dose rate) from time-integrated activity (or activity) maps.

Three methods share one entry point, :func:`absorbed_dose`:

``"led"``
    Local energy deposition: every non-penetrating emission (electrons, alphas, recoils)
    deposits its energy in the source voxel; photons escape unless ``include_photons``
    says otherwise. Needs only the nuclide's ICRP-107 energies, no kernel.
``"vsv"``
    Homogeneous voxel S-value convolution (MIRD Pamphlet 17) with the kernel of
    :func:`dosimetry.vsv_kernel` for the map's voxel size (or a kernel the caller passes).
``"vsv-density"``
    Convolution with tissue-class kernels (lung / soft tissue / bone, chosen per target
    voxel from the density map; multiple-VSV idea of Lee et al. 2018) and the dose scaled by
    ``rho_kernel / rho_voxel`` (Dieudonne et al. 2013). See :mod:`dosimetry.engine.density`
    for the limits of this approximation.

Alpha emitters: the alpha and recoil energy is always deposited in the source voxel; with
``weighting="rbe"`` that part is multiplied by the RBE (default ``rbe_alpha`` from the
parameter table, MIRD Pamphlet 22) and electrons/photons by ``rbe_electron``.

References
----------
Bolch WE, Bouchet LG, Robertson JS, et al. MIRD Pamphlet No. 17: the dosimetry of
nonuniform activity distributions - radionuclide S values at the voxel level.
J Nucl Med 1999;40:11S-36S.

Sgouros G, Roeske JC, McDevitt MR, et al. MIRD Pamphlet No. 22 (abridged): radiobiology
and dosimetry of alpha-particle emitters for targeted radionuclide therapy.
J Nucl Med 2010;51:311-328.

Dieudonne A, Hobbs RF, Lebtahi R, et al. Study of the impact of tissue density
heterogeneities on 3-dimensional abdominal dosimetry: comparison between dose kernel
convolution and direct Monte Carlo methods. J Nucl Med 2013;54:236-243.

Lee MS, Kim JH, Paeng JC, et al. Whole-body voxel-based personalized dosimetry: the
multiple voxel S-value approach for heterogeneous media with nonuniform activity
distributions. J Nucl Med 2018;59:1133-1139.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from . import parameters
from .errors import GeometryMismatchError, InputDataError, KernelError, NuclideError, UnitError
from .kernels import Kernel
from .units import MEV_TO_J
from .volume import Volume

if TYPE_CHECKING:  # the engine (Numba) is imported when first used
    from .engine.convolve import MapScan

__all__ = [
    "DoseMethod",
    "absorbed_dose",
    "absorbed_dose_many",
    "dose_rate",
    "dose_rate_many",
    "local_energy_per_decay_j",
    "EnergyPerDecay",
]

log = logging.getLogger(__name__)

Method = Literal["led", "vsv", "vsv-density", "mc"]
Weighting = Literal["physical", "rbe"]
_ALPHA_COMPONENTS: tuple[str, ...] = ("alpha", "alpha recoil", "alpha+recoil")

#: input unit -> (output unit physical, output unit RBE-weighted or None if not representable)
_TIA_UNITS: dict[str, tuple[str, str | None]] = {
    "Bq s": ("Gy", "Gy_RBE"),
    "Bq s/Bq": ("Gy/Bq", None),
}
_ACTIVITY_UNITS: dict[str, tuple[str, str | None]] = {
    "Bq": ("Gy/s", None),
}


@dataclass(frozen=True)
class EnergyPerDecay:
    """Mean energy emitted per decay of a nuclide (or an equilibrium chain), in J.

    Attributes
    ----------
    electron_j
        beta-, beta+, internal conversion and Auger electrons.
    photon_j
        gamma, X-rays, annihilation photons.
    alpha_j
        Alpha particles and their recoiling nuclei.
    members
        ``(nuclide, decays per parent decay)`` pairs that were summed.
    """

    electron_j: float
    photon_j: float
    alpha_j: float
    members: tuple[tuple[str, float], ...]

    @property
    def nonpenetrating_j(self) -> float:
        """Electrons + alphas + recoils (J)."""
        return self.electron_j + self.alpha_j


def local_energy_per_decay_j(nuclide: str, chain: bool = False) -> EnergyPerDecay:
    """Energy per decay by radiation group from ICRP-107, optionally over the chain.

    Parameters
    ----------
    nuclide
        Nuclide name (``"Lu-177"``, ``"225Ac"``, ...).
    chain
        Add the progeny in equilibrium with the parent: every daughter whose half-life is
        shorter than the parent's is counted with (product of) its branching fractions per
        parent decay, as if it decayed where the parent did (in-situ decay). Daughters
        that live longer than the parent, or are stable, end the walk.

    Returns
    -------
    EnergyPerDecay

    References
    ----------
    ICRP Publication 107 (2008), Ann. ICRP 38(3). Sgouros et al., MIRD Pamphlet 22 (2010)
    for the in-situ equilibrium assumption of 225Ac progeny.

    Examples
    --------
    >>> e = local_energy_per_decay_j("Lu-177")
    >>> round(e.electron_j / 1.602176634e-13, 4)  # MeV
    0.1479
    """
    from .nuclides import nuclide as get_nuclide

    parent = get_nuclide(nuclide)
    weights: dict[str, float] = {parent.name: 1.0}
    if chain:
        stack: list[tuple[str, float]] = [(parent.name, 1.0)]
        while stack:
            name, w = stack.pop()
            for daughter, branch, _mode in get_nuclide(name).progeny:
                try:
                    d = get_nuclide(daughter)
                except NuclideError:
                    continue  # stable or not in ICRP-107: deposits nothing
                if not np.isfinite(d.half_life_s) or d.half_life_s >= parent.half_life_s:
                    log.info(
                        "chain of %s stops at %s (half-life %.4g s not shorter than the parent's)",
                        parent.name,
                        d.name,
                        d.half_life_s,
                    )
                    continue
                weights[d.name] = weights.get(d.name, 0.0) + w * branch
                stack.append((d.name, w * branch))
    e = p = a = 0.0
    for name, w in weights.items():
        n = get_nuclide(name)
        e += w * n.energy_per_decay_mev("electron")
        p += w * n.energy_per_decay_mev("photon")
        a += w * n.energy_per_decay_mev("alpha+recoil")
    return EnergyPerDecay(e * MEV_TO_J, p * MEV_TO_J, a * MEV_TO_J, tuple(weights.items()))


# --------------------------------------------------------------------------------------
# validation helpers
# --------------------------------------------------------------------------------------
def _check_values(volume: Volume, name: str) -> tuple[np.ndarray, MapScan | None]:
    """The volume's array after checking it is real, finite and non-negative, and the
    engine's scan of it (:func:`dosimetry.engine.scan_map`, the same pass; ``None`` for
    arrays the scan does not take), so the convolution does not read it again."""
    from .engine.convolve import count_invalid, scan_map

    arr = volume.array
    if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
        raise InputDataError(f"{name}.array must be real numbers, got dtype {arr.dtype}")
    scan = None
    if arr.ndim == 3 and arr.dtype in (np.float32, np.float64):
        scan = scan_map(arr)
        n_bad, n_neg = scan.nonfinite, scan.negative
    else:
        n_bad, n_neg = count_invalid(arr)
    if n_bad:
        first = tuple(int(i) for i in np.argwhere(~np.isfinite(arr))[0])
        raise InputDataError(
            f"{name} contains {n_bad} NaN or infinite value(s) (first at index "
            f"{first}); fix or mask them before computing dose."
        )
    if n_neg:
        first = tuple(int(i) for i in np.argwhere(arr < 0)[0])
        raise InputDataError(
            f"{name} contains {n_neg} negative value(s) (min {float(arr.min()):.4g} "
            f"at index {first}); activity cannot be negative. Clip noise explicitly "
            f"(e.g. {name}.with_array(np.clip({name}.array, 0, None))) if that is intended."
        )
    return arr, scan


def _check_density(density: Volume, ref: Volume) -> np.ndarray:
    if density.unit != "g/mL":
        raise UnitError(
            f"density has unit {density.unit!r}, expected 'g/mL'. Convert CT numbers to "
            "density first (a HU->density calibration)."
        )
    ref.check_same_grid(density, name="density")
    rho = np.asarray(density.array, dtype=np.float64)
    if not np.all(np.isfinite(rho)) or np.any(rho <= 0):
        raise InputDataError(
            "density must be finite and > 0 g/mL in every voxel (air is ~0.0012 g/mL); "
            f"got min {float(np.nanmin(rho)):.4g}."
        )
    return rho


def _photon_fraction(include_photons: bool | float | None, method: str) -> float:
    if include_photons is None:
        return 0.0 if method == "led" else 1.0
    if isinstance(include_photons, bool):
        return 1.0 if include_photons else 0.0
    f = float(include_photons)
    if method != "led":
        raise InputDataError(
            f"include_photons={include_photons!r}: a fraction is only meaningful for "
            "method='led'; for kernel methods pass True (kernel's photon part) or False."
        )
    if not 0.0 <= f <= 1.0:
        raise InputDataError(f"include_photons must be a bool or a fraction in [0, 1], got {f}")
    return f


class DoseMethod(StrEnum):
    """The dose methods (the command line builds its choices from this enum)."""

    LED = "led"
    VSV = "vsv"
    VSV_DENSITY = "vsv-density"
    MC = "mc"

    @classmethod
    def parse(cls, value: str | DoseMethod) -> DoseMethod:
        """The method named ``value``; the error lists the valid names."""
        try:
            return cls(value)
        except ValueError:
            raise InputDataError(
                f"method={value!r}; valid: {', '.join(m.value for m in cls)}"
            ) from None


@dataclass(frozen=True, eq=False)
class _DoseRequest:
    """Every argument of a dose call, validated once (see :func:`_request`)."""

    method: DoseMethod
    nuclide: str
    energies: EnergyPerDecay
    kernel: Kernel | Mapping[str, Kernel] | None
    density: Volume | None
    weighting: str
    rbe_alpha: float
    rbe_electron: float
    rbe_given: bool
    f_photon: float
    chain: bool
    path: str
    dtype: str
    workers: int | None
    mc: Mapping[str, Any]

    @property
    def w_alpha(self) -> float:
        """Weight of the alpha (and recoil) energy: the RBE when weighting is ``"rbe"``."""
        return self.rbe_alpha if self.weighting == "rbe" else 1.0

    @property
    def w_other(self) -> float:
        """Weight of electron and photon energy."""
        return self.rbe_electron if self.weighting == "rbe" else 1.0


@dataclass(frozen=True, eq=False)
class _Precomputed:
    """What :func:`absorbed_dose_many` already did for one map: the checked values with
    the engine's scan of them and, for the shared-kernel path, the convolution."""

    checked: tuple[np.ndarray, MapScan | None]
    convolution: tuple[np.ndarray, str] | None = None


def _request(
    nuclide: str,
    method: str | DoseMethod,
    *,
    kernel: Kernel | Mapping[str, Kernel] | None,
    density: Volume | None,
    rbe: float | None,
    weighting: str,
    include_photons: bool | float | None,
    chain: bool,
    path: str,
    dtype: str,
    workers: int | None,
    mc: Mapping[str, Any] | None = None,
) -> _DoseRequest:
    """Validate the arguments of a dose call once (the public functions' shared checks)."""
    m = DoseMethod.parse(method)
    if weighting not in ("physical", "rbe"):
        raise InputDataError(f"weighting={weighting!r}; valid: 'physical', 'rbe'")
    if dtype not in ("float64", "float32"):
        raise InputDataError(f"dtype={dtype!r}; valid: 'float64', 'float32'")
    rbe_alpha = parameters.resolve(rbe, "rbe_alpha")
    if rbe_alpha < 0 or not np.isfinite(rbe_alpha):
        raise InputDataError(f"rbe must be finite and >= 0, got {rbe!r}")
    if m is DoseMethod.LED and kernel is not None:
        raise InputDataError("kernel is not used by method='led'; omit it or use 'vsv'")
    if m is not DoseMethod.MC and mc:
        raise InputDataError("mc= options are only used by method='mc'")
    return _DoseRequest(
        method=m,
        nuclide=nuclide,
        energies=local_energy_per_decay_j(nuclide, chain=chain),
        kernel=kernel,
        density=density,
        weighting=weighting,
        rbe_alpha=rbe_alpha,
        rbe_electron=parameters.get("rbe_electron"),
        rbe_given=rbe is not None,
        f_photon=_photon_fraction(include_photons, m.value),
        chain=chain,
        path=path,
        dtype=dtype,
        workers=workers,
        mc=dict(mc or {}),
    )


# --------------------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------------------
def absorbed_dose(
    tia: Volume,
    nuclide: str,
    method: Method = "led",
    *,
    kernel: Kernel | Mapping[str, Kernel] | None = None,
    density: Volume | None = None,
    rbe: float | None = None,
    weighting: Weighting = "physical",
    include_photons: bool | float | None = None,
    chain: bool = False,
    path: str = "auto",
    dtype: str = "float64",
    workers: int | None = None,
    mc: Mapping[str, Any] | None = None,
) -> Volume:
    """Absorbed dose map from a time-integrated activity map.

    Parameters
    ----------
    tia
        Time-integrated activity per voxel, unit ``"Bq s"`` (result in Gy) or
        ``"Bq s/Bq"`` (per administered activity; result in Gy/Bq). Finite, >= 0.
    nuclide
        Nuclide whose decays the map counts (``"Lu-177"``, ``"Ac-225"``, ...).
    method
        ``"led"``, ``"vsv"``, ``"vsv-density"`` or ``"mc"`` (see the module docstring;
        :class:`DoseMethod`).
    kernel
        ``"vsv"``: a :class:`~dosimetry.kernels.Kernel` for ``tia``'s voxel size
        (default ``dosimetry.vsv_kernel(nuclide, tia.spacing_mm, medium="soft tissue",
        chain=chain)``). ``"vsv-density"``: one kernel for every tissue class, or a
        mapping ``{"lung": k, "soft tissue": k, "bone": k}`` (default: the library's kernel
        of each class present). Ignored by ``"led"`` (an error if given).
    density
        Mass density (g/mL) on ``tia``'s grid. ``"led"``: voxel masses (default: the
        soft-tissue density ``density_soft_tissue_g_per_ml`` everywhere).
        ``"vsv-density"``: required. ``"vsv"``: not allowed (homogeneous by definition).
        With a density map, voxels less dense than ``density_air_max_g_per_ml`` (0.05
        g/mL, -950 HU) are air: their dose is set to 0 and the fraction of decays in them
        is recorded in the provenance (``source_fraction_in_air``; warned above 0.1 %).
    rbe
        RBE applied to the alpha (and recoil) dose when ``weighting="rbe"``; default
        ``rbe_alpha`` of the parameter table (5, MIRD Pamphlet 22).
    weighting
        ``"physical"`` (Gy) or ``"rbe"`` (Gy_RBE: alpha part x ``rbe``, electrons and
        photons x ``rbe_electron``).
    include_photons
        ``"led"``: False (default; photons leave the voxel), True (all photon energy is
        deposited locally: an upper bound) or a fraction in [0, 1] absorbed locally.
        Kernel methods: True (default) uses the kernel's photon part, False drops it
        (needs a kernel with components).
    chain
        Include progeny decaying in equilibrium with the parent (see
        :func:`local_energy_per_decay_j`); passed to ``vsv_kernel``.
    path
        Convolution path: ``"auto"``, ``"fft"`` or ``"direct"`` (see
        :func:`dosimetry.engine.convolve`).
    dtype
        ``"float64"`` or ``"float32"``: precision of the convolution arithmetic (FFT
        transforms, direct-path sums) and of the returned array (LED computes in float64
        and casts). float32 carries an error of ~1e-6 x the peak dose: use float64 where
        far-field doses matter.
    workers
        Threads for ``scipy.fft``; ``None`` uses all cores.
    mc
        ``method="mc"`` only: options of :func:`dosimetry.mc.patient_dose` (``histories``,
        ``target_uncertainty``, ``seed``, ``client``, ...).

    Returns
    -------
    Volume
        On ``tia``'s grid, unit ``"Gy"``, ``"Gy_RBE"`` or ``"Gy/Bq"``, float64 (or float32
        when ``dtype="float32"``), with a provenance record (method, nuclide, energies,
        kernel identity and hash, convolution path, parameters used).

    Raises
    ------
    UnitError
        ``tia`` is not in Bq s (or Bq s/Bq); ``density`` not in g/mL.
    InputDataError
        NaN, infinite or negative values; non-positive densities.
    GeometryMismatchError
        ``density`` or the kernel does not match ``tia``'s grid.

    References
    ----------
    MIRD Pamphlet 17 (Bolch et al. 1999); MIRD Pamphlet 22 (Sgouros et al. 2010);
    Dieudonne et al. J Nucl Med 2013;54:236-243; Lee et al. J Nucl Med 2018;59:1133-1139.

    Examples
    --------
    >>> import numpy as np
    >>> import dosimetry as ds
    >>> tia = ds.Volume.from_spacing(np.full((2, 2, 2), 1e9), (4.0, 4.0, 4.0), unit="Bq s")
    >>> d = ds.absorbed_dose(tia, "Lu-177", method="led")
    >>> d.unit, round(float(d.array[0, 0, 0]), 4)
    ('Gy', 0.3561)
    """
    if tia.unit not in _TIA_UNITS:
        hint = " For an activity map (Bq) use dosimetry.dose_rate." if tia.unit == "Bq" else ""
        raise UnitError(
            f"tia has unit {tia.unit!r}; absorbed_dose needs time-integrated activity per "
            f"voxel in 'Bq s' (or 'Bq s/Bq').{hint}"
        )
    req = _request(
        nuclide,
        method,
        kernel=kernel,
        density=density,
        rbe=rbe,
        weighting=weighting,
        include_photons=include_photons,
        chain=chain,
        path=path,
        dtype=dtype,
        workers=workers,
        mc=mc,
    )
    return _dose(tia, "tia", _TIA_UNITS[tia.unit], req)


def dose_rate(
    activity: Volume,
    nuclide: str,
    method: Method = "led",
    *,
    kernel: Kernel | Mapping[str, Kernel] | None = None,
    density: Volume | None = None,
    rbe: float | None = None,
    weighting: Weighting = "physical",
    include_photons: bool | float | None = None,
    chain: bool = False,
    path: str = "auto",
    dtype: str = "float64",
    workers: int | None = None,
) -> Volume:
    """Absorbed dose-rate map (Gy/s) from an activity map (Bq per voxel).

    Same methods and arguments as :func:`absorbed_dose`; ``activity`` must have unit
    ``"Bq"`` (for ``"Bq/mL"`` multiply by ``activity.voxel_volume_ml`` first).
    RBE weighting is not available for rates (there is no ``Gy_RBE/s`` unit).

    Examples
    --------
    >>> import numpy as np
    >>> import dosimetry as ds
    >>> a = ds.Volume.from_spacing(np.full((2, 2, 2), 1e6), (4.0, 4.0, 4.0), unit="Bq")
    >>> r = ds.dose_rate(a, "Lu-177")
    >>> r.unit, f"{float(r.array[0, 0, 0]):.4e}"
    ('Gy/s', '3.5607e-04')
    """
    if activity.unit not in _ACTIVITY_UNITS:
        hint = (
            " Convert with activity.with_array(activity.array * activity.voxel_volume_ml, "
            "unit='Bq')."
            if activity.unit == "Bq/mL"
            else ""
        )
        raise UnitError(
            f"activity has unit {activity.unit!r}; dose_rate needs activity per voxel in "
            f"'Bq'.{hint}"
        )
    req = _request(
        nuclide,
        method,
        kernel=kernel,
        density=density,
        rbe=rbe,
        weighting=weighting,
        include_photons=include_photons,
        chain=chain,
        path=path,
        dtype=dtype,
        workers=workers,
    )
    return _dose(activity, "activity", _ACTIVITY_UNITS[activity.unit], req)


def absorbed_dose_many(
    tias: Sequence[Volume],
    nuclide: str,
    method: Method = "vsv",
    *,
    kernel: Kernel | Mapping[str, Kernel] | None = None,
    density: Volume | None = None,
    rbe: float | None = None,
    weighting: Weighting = "physical",
    include_photons: bool | float | None = None,
    chain: bool = False,
    path: str = "auto",
    dtype: str = "float64",
    workers: int | None = None,
    stack: bool = False,
) -> list[Volume]:
    """:func:`absorbed_dose` of several maps on one grid (time points, bootstrap replicas).

    Each result equals ``absorbed_dose(tia, nuclide, method, ...)`` for that map (to
    rounding: the FFT lengths come from the union of the maps' non-zero bounding boxes).
    With ``method="vsv"`` the kernel is resolved (default ``vsv_kernel``), checked,
    hashed and transformed once, and the maps are convolved together by
    :func:`dosimetry.engine.convolve_many` (path chosen per map; ``stack`` as there).
    Other methods are computed map by map (``"vsv-density"`` reuses the cached kernel
    spectra of each tissue class across the maps).

    Parameters
    ----------
    tias
        Non-empty sequence of TIA Volumes on one grid (same shape, affine and frame of
        reference), each in ``"Bq s"`` or ``"Bq s/Bq"``.
    nuclide, method, kernel, density, rbe, weighting, include_photons, chain, path, dtype, workers
        As for :func:`absorbed_dose` (applied to every map). Note the default
        ``method="vsv"`` here.
    stack
        Transform the FFT-path maps together (True) or one at a time (False, default:
        less memory, and measured as fast); see :func:`dosimetry.engine.convolve_many`.

    Returns
    -------
    list of Volume
        One dose Volume per input, in order.

    Raises
    ------
    InputDataError
        Empty sequence; any error :func:`absorbed_dose` raises for one of the maps.
    GeometryMismatchError
        The maps are not on one grid.

    References
    ----------
    MIRD Pamphlet 17 (Bolch et al. 1999).

    Examples
    --------
    >>> import numpy as np
    >>> import dosimetry as ds
    >>> a = np.zeros((9, 9, 9)); a[4, 4, 4] = 1e9
    >>> tias = [ds.Volume.from_spacing(a * f, (4.8, 4.8, 4.8), unit="Bq s") for f in (1, 0.5)]
    >>> k = ds.vsv_kernel("Lu-177", (4.8, 4.8, 4.8), source="lanconelli2012")
    >>> from dosimetry.dose import absorbed_dose_many
    >>> d = absorbed_dose_many(tias, "Lu-177", kernel=k)
    >>> bool(np.allclose(d[1].array, 0.5 * d[0].array))
    True
    """
    for v in tias:
        _require_unit(v, "tia", _TIA_UNITS, "absorbed_dose")
    req = _request(
        nuclide,
        method,
        kernel=kernel,
        density=density,
        rbe=rbe,
        weighting=weighting,
        include_photons=include_photons,
        chain=chain,
        path=path,
        dtype=dtype,
        workers=workers,
    )
    return _dose_many(tias, "tia", _TIA_UNITS, req, stack=stack)


def dose_rate_many(
    activities: Sequence[Volume],
    nuclide: str,
    method: Method = "vsv",
    *,
    kernel: Kernel | Mapping[str, Kernel] | None = None,
    density: Volume | None = None,
    include_photons: bool | float | None = None,
    chain: bool = False,
    path: str = "auto",
    dtype: str = "float64",
    workers: int | None = None,
    stack: bool = False,
) -> list[Volume]:
    """:func:`dose_rate` of several activity maps on one grid (the time points of a study).

    Same sharing and guarantees as :func:`absorbed_dose_many`: each result equals
    ``dose_rate(activity, ...)`` for that map; with ``method="vsv"`` the kernel spectrum
    is computed once and the maps are convolved together
    (:func:`dosimetry.engine.convolve_many`).

    Parameters
    ----------
    activities
        Non-empty sequence of activity Volumes (``"Bq"`` per voxel) on one grid.
    nuclide, method, kernel, density, include_photons, chain, path, dtype, workers, stack
        As for :func:`absorbed_dose_many`.

    Returns
    -------
    list of Volume
        One dose-rate Volume (Gy/s) per input, in order.

    References
    ----------
    MIRD Pamphlet 17 (Bolch et al. 1999).
    """
    for v in activities:
        _require_unit(v, "activity", _ACTIVITY_UNITS, "dose_rate")
    req = _request(
        nuclide,
        method,
        kernel=kernel,
        density=density,
        rbe=None,
        weighting="physical",
        include_photons=include_photons,
        chain=chain,
        path=path,
        dtype=dtype,
        workers=workers,
    )
    return _dose_many(activities, "activity", _ACTIVITY_UNITS, req, stack=stack)


# --------------------------------------------------------------------------------------
# implementation: one request, one dispatch table
# --------------------------------------------------------------------------------------
def _require_unit(v: Volume, name: str, units: Mapping[str, Any], single: str) -> None:
    if not isinstance(v, Volume):
        raise InputDataError(f"each {name} must be a dosimetry.Volume, got {type(v).__name__}")
    if v.unit not in units:
        raise UnitError(
            f"{name} has unit {v.unit!r}; {single} needs {', '.join(repr(u) for u in units)} "
            f"(see dosimetry.{single})."
        )


def _dose_many(
    sources: Sequence[Volume],
    name: str,
    units: Mapping[str, tuple[str, str | None]],
    req: _DoseRequest,
    *,
    stack: bool,
) -> list[Volume]:
    """Several maps on one grid; the shared-kernel VSV path convolves them together."""
    from .engine import convolve_many

    sources = list(sources)
    if not sources:
        raise InputDataError(f"at least one {name} Volume is needed")
    for i, v in enumerate(sources[1:], start=1):
        sources[0].check_same_grid(v, name=f"{name}[{i}]")
    shared = None
    if req.method is DoseMethod.VSV and req.density is None:
        if req.kernel is not None and not isinstance(req.kernel, Mapping):
            shared = req.kernel
        elif req.kernel is None:
            shared = _default_kernel(req.nuclide, sources[0], "soft tissue", req.chain)
    if shared is None:
        # other methods (or argument errors, reported by the single-map function)
        return [_dose(v, name, units[v.unit], req) for v in sources]
    _check_kernel(shared, req.energies, sources[0])
    arr, key, _ = _convolution_array(shared, req.energies, req.f_photon > 0)
    checked = [_check_values(v, name) for v in sources]
    if req.path not in ("auto", "fft", "direct"):
        raise InputDataError(f"path={req.path!r}; valid: 'auto', 'fft', 'direct'")
    info: dict[str, Any] = {}
    scans = [c[1] for c in checked if c[1] is not None]  # the engine's pass, made here
    convs = convolve_many(
        [c[0] for c in checked],
        arr,
        req.path,
        req.dtype,
        req.workers,
        key=key,
        stack=stack,
        info=info,
        scans=scans if len(scans) == len(checked) else None,
    )
    req_shared = _with_kernel(req, shared)
    return [
        _dose(v, name, units[v.unit], req_shared, _Precomputed(ch, (c, p)))
        for v, c, p, ch in zip(sources, convs, info["paths"], checked, strict=True)
    ]


def _with_kernel(req: _DoseRequest, kernel: Kernel) -> _DoseRequest:
    from dataclasses import replace

    return replace(req, kernel=kernel)


#: A dose method: (values, source, request, precomputed) -> (dose array, provenance,
#: whether the array is the engine's checked result untouched since).
_MethodFn = Callable[
    [np.ndarray, Volume, _DoseRequest, "_Precomputed | None", "MapScan | None"],
    tuple[np.ndarray, dict[str, Any], bool],
]


def _dose(
    source: Volume,
    name: str,
    units_out: tuple[str, str | None],
    req: _DoseRequest,
    pre: _Precomputed | None = None,
) -> Volume:
    """Check the map, run the method of the request, assemble and check the result."""
    unit_out = units_out[0] if req.weighting == "physical" else units_out[1]
    if unit_out is None:
        raise UnitError(
            f"weighting='rbe' is not available for a {name} in {source.unit!r} (no RBE-weighted "
            "unit for it); compute the physical result or use a TIA in 'Bq s'."
        )
    values, scan = _check_values(source, name) if pre is None else pre.checked
    energies = req.energies
    prov: dict[str, Any] = {
        "quantity": "absorbed dose" if name == "tia" else "absorbed dose rate",
        "method": req.method.value,
        "nuclide": energies.members[0][0],
        "chain_members": [list(m) for m in energies.members],
        "weighting": req.weighting,
        "source_unit": source.unit,
        "source_provenance": dict(source.provenance),
        "dosimetry_version": _version(),
        "energy_per_decay_mev": {
            "electron": energies.electron_j / MEV_TO_J,
            "photon": energies.photon_j / MEV_TO_J,
            "alpha+recoil": energies.alpha_j / MEV_TO_J,
        },
    }
    if req.weighting == "rbe":
        prov["rbe_alpha"] = req.rbe_alpha
        prov["rbe_electron"] = req.rbe_electron
        prov["rbe_alpha_source"] = (
            "user" if req.rbe_given else parameters.describe("rbe_alpha").citation
        )
    out, mprov, engine_checked = _METHODS[req.method](values, source, req, pre, scan)
    prov.update(mprov)
    if req.density is not None and req.method in (DoseMethod.LED, DoseMethod.VSV_DENSITY):
        _blank_air(out, values, req.density.array, prov)
    out = out.astype(np.float32 if req.dtype == "float32" else np.float64, copy=False)
    from .engine.convolve import count_invalid

    # the engine checked its result while writing it; anything done to it since (scaling,
    # alpha term, density correction) is checked here
    if not engine_checked and count_invalid(out)[0]:
        raise InputDataError(
            "the dose computation produced non-finite values; check the density map and kernel"
        )
    result = source.with_array(out, unit=unit_out, provenance=prov)
    if log.isEnabledFor(logging.INFO):  # the sum is a pass over the map
        log.info(
            "%s (%s, %s): total %.6g %s x voxel",
            prov["quantity"],
            req.method.value,
            prov["nuclide"],
            float(out.sum()),
            unit_out,
        )
    return result


def _led(
    values: np.ndarray,
    source: Volume,
    req: _DoseRequest,
    pre: _Precomputed | None,
    scan: MapScan | None,
) -> tuple[np.ndarray, dict[str, Any], bool]:
    """Local energy deposition."""
    from .engine.led import local_dose

    e = req.energies
    prov: dict[str, Any] = {}
    if req.density is None:
        rho: float | np.ndarray = parameters.get("density_soft_tissue_g_per_ml")
        prov["density_g_per_ml"] = rho
        prov["density_source"] = parameters.describe("density_soft_tissue_g_per_ml").citation
    else:
        rho = _check_density(req.density, source)
        prov["density_source"] = "density volume"
    e_local = req.w_other * (e.electron_j + req.f_photon * e.photon_j) + req.w_alpha * e.alpha_j
    prov["photon_fraction_local"] = req.f_photon
    prov["energy_absorbed_locally_mev"] = (
        e.nonpenetrating_j + req.f_photon * e.photon_j
    ) / MEV_TO_J
    return local_dose(values, e_local, source.voxel_volume_ml, rho), prov, False


def _vsv(
    values: np.ndarray,
    source: Volume,
    req: _DoseRequest,
    pre: _Precomputed | None,
    scan: MapScan | None,
) -> tuple[np.ndarray, dict[str, Any], bool]:
    """Homogeneous voxel S-value convolution."""
    from .engine import convolve
    from .engine.led import local_dose

    if req.density is not None:
        raise InputDataError(
            "method='vsv' is homogeneous (the kernel's medium everywhere) and takes no "
            "density map; use method='vsv-density' to correct for density."
        )
    if isinstance(req.kernel, Mapping):
        raise InputDataError("method='vsv' takes one Kernel, not a mapping of kernels")
    k = (
        req.kernel
        if req.kernel is not None
        else _default_kernel(req.nuclide, source, "soft tissue", req.chain)
    )
    _check_kernel(k, req.energies, source)
    arr, key, removed = _convolution_array(k, req.energies, req.f_photon > 0)
    if pre is not None and pre.convolution is not None:  # convolve_many's result (a new array)
        dose, chosen = pre.convolution
    else:
        info: dict[str, Any] = {}
        dose = convolve(
            values, arr, req.path, req.dtype, req.workers, key=key, info=info, scan=scan
        )
        chosen = info["path"]
    untouched = True
    if req.w_other != 1.0:
        dose *= req.w_other
        untouched = False
    if req.energies.alpha_j > 0:
        dose += local_dose(
            values, req.w_alpha * req.energies.alpha_j, source.voxel_volume_ml, k.density_g_per_ml
        )
        untouched = False
    prov = {
        "convolution_dtype": req.dtype,
        "kernel": _kernel_record(k, removed),
        "convolution_path": chosen,
    }
    return dose, prov, untouched


def _vsv_density(
    values: np.ndarray,
    source: Volume,
    req: _DoseRequest,
    pre: _Precomputed | None,
    scan: MapScan | None,
) -> tuple[np.ndarray, dict[str, Any], bool]:
    """Tissue-class kernels with the rho_kernel / rho_voxel correction."""
    from .engine import convolve
    from .engine.density import TISSUE_CLASSES, density_scale, tissue_classes
    from .engine.led import local_dose

    if req.density is None:
        raise InputDataError(
            "method='vsv-density' needs density= (a g/mL Volume on the map's grid, e.g. from "
            "the CT's HU->density calibration)"
        )
    density = _check_density(req.density, source)
    classes = tissue_classes(density)
    dose = np.zeros(values.shape, dtype=np.float64)
    records: dict[str, Any] = {}
    paths: dict[str, str] = {}
    for c in (int(c) for c in np.unique(classes)):
        medium = TISSUE_CLASSES[c]
        if isinstance(req.kernel, Kernel):
            k = req.kernel
        elif isinstance(req.kernel, Mapping):
            if medium not in req.kernel:
                raise KernelError(
                    f"the density map has {medium!r} voxels but kernel= has no {medium!r} entry "
                    f"(keys: {', '.join(req.kernel)}); add one or pass a single Kernel."
                )
            k = req.kernel[medium]
        else:
            k = _default_kernel(req.nuclide, source, medium, req.chain)
        _check_kernel(k, req.energies, source)
        arr, key, removed = _convolution_array(k, req.energies, req.f_photon > 0)
        info: dict[str, Any] = {}
        conv = convolve(
            values, arr, req.path, req.dtype, req.workers, key=key, info=info, scan=scan
        )
        mask = classes == c
        dose[mask] = density_scale(conv[mask], k.density_g_per_ml, density[mask])
        records[medium] = _kernel_record(k, removed)
        paths[medium] = info["path"]
    dose *= req.w_other
    if req.energies.alpha_j > 0:
        dose += local_dose(
            values, req.w_alpha * req.energies.alpha_j, source.voxel_volume_ml, density
        )
    prov = {
        "convolution_dtype": req.dtype,
        "kernels": records,
        "convolution_path": paths,
        "tissue_class_bounds_g_per_ml": {
            "lung_max": parameters.get("density_class_lung_max_g_per_ml"),
            "bone_min": parameters.get("density_class_bone_min_g_per_ml"),
        },
        "density_correction": "dose x rho_kernel / rho_voxel (Dieudonne et al. 2013)",
    }
    return dose, prov, False


def _mc(
    values: np.ndarray,
    source: Volume,
    req: _DoseRequest,
    pre: _Precomputed | None,
    scan: MapScan | None,
) -> tuple[np.ndarray, dict[str, Any], bool]:
    """Patient Monte Carlo (:func:`dosimetry.mc.patient_dose`, the optional ``[mc]`` extra)."""
    if req.kernel is not None:
        raise InputDataError("kernel is not used by method='mc'; omit it")
    try:
        from .mc import patient_dose
    except ImportError as exc:  # pragma: no cover - the package ships dosimetry.mc
        raise KernelError(f"method='mc' is not available: {exc}") from exc
    tia = source if source.unit in _TIA_UNITS else None
    if tia is None:
        raise UnitError("method='mc' computes absorbed dose from a TIA map ('Bq s'), not rates")
    res = patient_dose(tia, req.nuclide, density=req.density, chain=req.chain, **req.mc)
    dose = np.asarray(res.dose.array, dtype=np.float64)
    if req.weighting == "rbe":
        alpha = np.asarray(res.alpha_dose.array, dtype=np.float64)
        dose = req.w_other * (dose - alpha) + req.w_alpha * alpha
    prov = {"mc": dict(res.provenance)}
    return dose.copy(), prov, False


_METHODS: dict[DoseMethod, _MethodFn] = {
    DoseMethod.LED: _led,
    DoseMethod.VSV: _vsv,
    DoseMethod.VSV_DENSITY: _vsv_density,
    DoseMethod.MC: _mc,
}


def _blank_air(out: np.ndarray, values: np.ndarray, rho: np.ndarray, prov: dict[str, Any]) -> None:
    """Set the dose of air voxels (density below ``density_air_max_g_per_ml``) to 0, in
    place, and record how many there are and the fraction of the map's decays in them.

    Energy per voxel mass, and the rho_kernel/rho_voxel correction, grow without bound
    as the density goes to that of air (0.0012 g/mL): PET or SPECT counts spilled into
    air around the body or in bowel gas would show as doses hundreds of times the
    tissue dose. No dose is reported there instead.
    """
    thr = parameters.get("density_air_max_g_per_ml")
    air = rho < thr
    n_air = int(np.count_nonzero(air))
    total = float(values.sum())
    frac = float(values[air].sum()) / total if (n_air and total > 0) else 0.0
    prov["air_density_max_g_per_ml"] = thr
    prov["air_voxels"] = n_air
    prov["source_fraction_in_air"] = frac
    if n_air:
        out[air] = 0.0
    if frac > 1e-3:
        log.warning(
            "%.2g %% of the map's decays lie in %d air voxels (density < %g g/mL): no dose is "
            "reported there (parameter density_air_max_g_per_ml)",
            100 * frac,
            n_air,
            thr,
        )


def _version() -> str:
    from . import __version__

    return str(__version__)


def _require_grid(kernel: Kernel, source: Volume) -> None:
    if not np.allclose(kernel.voxel_mm, source.spacing_mm, rtol=1e-4, atol=0.0):
        raise GeometryMismatchError(
            f"kernel voxel_mm={kernel.voxel_mm} does not match the map's spacing_mm="
            f"{source.spacing_mm}. Build the kernel for this voxel size "
            "(dosimetry.vsv_kernel(nuclide, volume.spacing_mm)) or resample the map."
        )


_PHOTON_COMPONENTS: tuple[str, ...] = ("photon", "gamma", "X", "annihilation")


def _default_kernel(nuclide: str, source: Volume, medium: str, chain: bool) -> Kernel:
    from .kernels import vsv_kernel

    try:
        return vsv_kernel(nuclide, source.spacing_mm, medium=medium, chain=chain)
    except KernelError as exc:
        raise KernelError(
            f"no default kernel for {nuclide} at voxel_mm={source.spacing_mm} in {medium!r}: "
            f"{exc}. Pass one explicitly, e.g. kernel=dosimetry.vsv_kernel({nuclide!r}, "
            f"{source.spacing_mm[0]:g}, medium={medium!r}, source='lanconelli2012') where the "
            "published table covers the voxel size."
        ) from exc


def _convolution_array(
    kernel: Kernel, energies: EnergyPerDecay, include_photons: bool
) -> tuple[np.ndarray, str, list[str]]:
    """Kernel array without its alpha part (deposited locally) and optionally photons."""
    arr = np.array(kernel.array, dtype=np.float64)
    removed: list[str] = []
    comps = dict(kernel.components)
    alpha_keys = [k for k in comps if k in _ALPHA_COMPONENTS]
    if alpha_keys:
        for k in alpha_keys:
            arr -= comps[k]
        removed += alpha_keys
    elif energies.alpha_j > 0 and not comps:
        raise KernelError(
            f"{kernel!r} has no per-class components, so its alpha part cannot be separated "
            "for local deposition and RBE weighting. Use a kernel with components "
            "(source='dpk') or method='led'."
        )
    if not include_photons:
        photon_keys = [k for k in comps if k in _PHOTON_COMPONENTS]
        if not photon_keys and energies.photon_j > 0:
            raise KernelError(
                f"include_photons=False needs a kernel with per-class components; {kernel!r} "
                "has none. Use a kernel with components or keep the photons."
            )
        for k in photon_keys:
            arr -= comps[k]
        removed += photon_keys
    np.maximum(arr, 0.0, out=arr)  # rounding of the subtraction
    key = kernel.sha256 if not removed else f"{kernel.sha256}-minus-{'+'.join(sorted(removed))}"
    return arr, key, removed


def _check_kernel(kernel: Kernel, energies: EnergyPerDecay, source: Volume) -> None:
    if not isinstance(kernel, Kernel):
        raise KernelError(f"kernel must be a dosimetry.Kernel, got {type(kernel).__name__}")
    if kernel.nuclide != energies.members[0][0]:
        raise KernelError(
            f"kernel is for {kernel.nuclide}, the map counts decays of {energies.members[0][0]}"
        )
    _require_grid(kernel, source)


def _kernel_record(kernel: Kernel, removed: list[str]) -> dict[str, Any]:
    return {
        "nuclide": kernel.nuclide,
        "medium": kernel.medium,
        "density_g_per_ml": kernel.density_g_per_ml,
        "voxel_mm": list(kernel.voxel_mm),
        "shape": list(kernel.shape),
        "radius_mm": kernel.radius_mm,
        "energy_fraction": kernel.energy_fraction,
        "dropped_fraction": kernel.dropped_fraction,
        "extent_rule": (kernel.metadata.get("extent") or {}).get("rule"),
        "source": kernel.source,
        "library_version": kernel.library_version,
        "sha256": kernel.sha256,
        "components_removed": removed,
    }
