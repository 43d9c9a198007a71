"""Public entry point :func:`vsv_kernel`: dose-point-kernel library or published tables."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import KernelError
from ..nuclides import Nuclide, decay_chain
from ..nuclides import nuclide as _nuclide
from ..units import MEV_TO_J
from ._dpk import BASIS_VERSION, MEDIA, csda_range_cm, range_scaling, range_scaling_table
from ._fold import COMPONENTS, NuclideDPK, nuclide_dpk, resolve_exclude
from ._integrate import (
    integrate_vsv_octants,
    mirror_octant,
    near_extent,
    near_offsets,
    radial_grid,
    shell_mean_geometric_factors,
)
from ._kernel import Kernel
from ._lanconelli import lanconelli_kernel

__all__ = [
    "vsv_kernel",
    "dose_point_kernel",
    "DosePointKernel",
    "MEDIA",
    "cache_dir",
    "geometry_table",
    "KERNEL_CACHE_MAX_BYTES",
]

_log = logging.getLogger(__name__)

SOURCES = ("dpk", "lanconelli2012")
_ALIASES = {
    "soft tissue": "soft tissue",
    "soft": "soft tissue",
    "tissue": "soft tissue",
    "soft_tissue": "soft tissue",
    "water": "water",
    "bone": "bone",
    "cortical bone": "bone",
    "lung": "lung",
}


def cache_dir() -> Path:
    """Disk cache: ``$DOSIMETRY_CACHE_DIR``, else ``$XDG_CACHE_HOME/dosimetry``, else
    ``~/.cache/dosimetry``."""
    env = os.environ.get("DOSIMETRY_CACHE_DIR")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "dosimetry"


def _voxel(voxel_mm: float | Sequence[float]) -> tuple[float, float, float]:
    vm = np.atleast_1d(np.asarray(voxel_mm, dtype=float)).ravel()
    if vm.size == 1:
        vm = np.repeat(vm, 3)
    if vm.size != 3 or not np.all(np.isfinite(vm)) or np.any(vm <= 0):
        raise KernelError(
            f"voxel_mm must be a positive number or three (slice, row, column), got {voxel_mm!r}"
        )
    return (float(vm[0]), float(vm[1]), float(vm[2]))


#: identity of the geometric-factor tables (bump when their computation changes)
GEOMETRY_VERSION = "g2"

#: The photon-tail rule of the default kernels is read from the parameter table at each
#: call (dosimetry/data/parameters.csv, with its sources; override with
#: ``ds.parameters.override(kernel_photon_tail_radius_mm=...)`` or per call with
#: ``vsv_kernel(..., radius_mm=...)``): where the electron range alone would leave out more
#: than ``kernel_tail_dropped_fraction`` (1 %) of the emitted energy (photon emitters), the
#: kernel reaches ``kernel_photon_tail_radius_mm`` (200 mm) from the source voxel, at most
#: ``kernel_max_half_width_voxels`` (100) voxels along any axis. Y-90, Sr-89, P-32, Er-169
#: and Ac-225 (chain or not) stay within their electron range (docs/kernels.md, "Photon
#: tail").

#: Kernels kept in memory by :func:`vsv_kernel` (besides the disk cache): at most 64, and
#: at most this many bytes of arrays (least recently used dropped first).
KERNEL_CACHE_MAX_BYTES = 1024**3


def _shape_key(vm: tuple[float, float, float]) -> tuple[float, float, float]:
    h = min(vm)
    return (round(vm[0] / h, 9), round(vm[1] / h, 9), round(vm[2] / h, 9))


@lru_cache(maxsize=16)
def geometry_table(shape: tuple[float, float, float]) -> np.ndarray:
    """Shell-mean geometric factors for a voxel of relative edge lengths ``shape``
    (smallest edge 1) on the shells of :func:`radial_grid` that reach a near target voxel.

    The table depends only on the voxel's shape (geometric factors scale with the voxel
    size), so every cubic voxel size shares one table. Computed once (seconds), then read
    from memory or from the disk cache (``cache_dir()/geometry``). Read-only.
    """
    u = radial_grid(near_extent(shape))
    n = int(np.searchsorted(u, near_extent(shape))) + 1
    u = u[: n + 1]
    key = json.dumps([GEOMETRY_VERSION, shape, u.size, float(u[-1])])
    digest = hashlib.sha256(key.encode()).hexdigest()[:24]
    path = cache_dir() / "geometry" / f"{digest}.npz"
    if path.exists():
        try:
            with np.load(path, allow_pickle=False) as z:
                g = np.array(z["g"])
                if g.shape == (len(near_offsets()), u.size - 1) and np.array_equal(z["u"], u):
                    g.setflags(write=False)
                    return g
        except (OSError, KeyError, ValueError):
            pass
        _log.warning("ignoring unreadable geometry cache file %s", path)
    g = shell_mean_geometric_factors(shape, u)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npz")
        np.savez_compressed(tmp, g=g, u=u)
        os.replace(tmp, path)
    except OSError as exc:  # a read-only home must not stop the calculation
        _log.warning("could not write geometry cache %s: %s", path, exc)
    g.setflags(write=False)
    return g


def vsv_kernel(
    nuclide: str,
    voxel_mm: float | Sequence[float],
    medium: str = "soft tissue",
    radius_mm: float | None = None,
    chain: bool = False,
    source: str = "dpk",
    exclude: Iterable[str] = (),
    *,
    photon_tail: bool = True,
) -> Kernel:
    """Voxel S-value kernel for ``nuclide`` at ``voxel_mm`` in ``medium``.

    Parameters
    ----------
    nuclide
        Nuclide name (``"Lu-177"``, ``"177Lu"``...), any ICRP-107 nuclide for ``"dpk"``.
    voxel_mm
        Voxel size in mm: a scalar (cubic) or (slice, row, column); non-cubic allowed.
    medium
        For ``"dpk"``: ``"soft tissue"`` (1.04 g/mL, default), ``"water"``, ``"bone"``
        (ICRP cortical bone, 1.85 g/mL) or ``"lung"`` (ICRU inflated lung, 0.26 g/mL); see
        :data:`dosimetry.kernels.MEDIA` and docs/kernels.md for how each is obtained. The
        Lanconelli tables have ``"soft tissue"`` and ``"bone"`` (ICRU compact bone).
    radius_mm
        Target voxels whose centre lies farther than this from the source centre are
        set to 0. ``None`` (default): the electron reach, i.e. the CSDA range of the most
        energetic electron emitted (in the medium) plus one voxel diagonal, at least 5
        voxels; and, with ``photon_tail`` (default) where that sphere leaves more than
        ``kernel_tail_dropped_fraction`` (1 %) of the emitted energy outside in an infinite
        medium (photon emitters such as Lu-177, I-131), ``kernel_photon_tail_radius_mm``
        (200 mm), at most ``kernel_max_half_width_voxels`` voxels along any axis. The
        energy left out is ``dropped_fraction`` (``1 - energy_fraction``); the rule
        that set the radius is ``metadata["extent"]``. For ``"lanconelli2012"`` the
        published 11^3 block.
    chain
        Add every radioactive progeny (:func:`dosimetry.decay_chain`, complete decay,
        daughters decaying in place) weighted by its decays per parent decay.
    source
        ``"dpk"`` (dose-point-kernel library, Monte Carlo basis folded with ICRP-107)
        or ``"lanconelli2012"`` (published table).
    exclude
        Kernel components (``"beta"``, ``"ce_auger"``, ``"photon"``, ``"alpha"``) or
        ICRP-107 classes (``"IE"``, ``"auger"``, ``"gamma"``...) to leave out.
    photon_tail
        With ``radius_mm=None``: extend photon emitters' kernels to
        ``kernel_photon_tail_radius_mm`` (default ``True``). ``False`` gives the electron
        reach only (the default before issue 19: a Lu-177 kernel at 4.8 mm is then
        11^3 voxels and holds 82 % of the emitted energy), e.g. for a quick look.

    Returns
    -------
    Kernel
        ``array`` in Gy/(Bq s) = Gy per decay; ``components`` per kernel component;
        ``energy_fraction`` = sum(kernel) x voxel mass / energy emitted per decay by the
        included classes, ``dropped_fraction`` = 1 - ``energy_fraction``.

    Raises
    ------
    KernelError
        Unknown source or medium, bad voxel size or radius, nuclides emitting radiation
        the library cannot transport (neutrons).

    References
    ----------
    ICRP Publication 107 (2008); see ``docs/kernels.md`` for the Monte Carlo basis
    (ompmc/EGSnrc), its validation against Lanconelli et al. 2012, and the photon tail.

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
    if source != "dpk":
        raise KernelError(f"source={source!r} is unknown; valid: {', '.join(SOURCES)}")
    med = _ALIASES.get(str(medium).strip().lower())
    if med is None:
        raise KernelError(
            f"medium={medium!r} is not available with source='dpk'; valid: "
            f"{', '.join(MEDIA)} (ICRU compact bone: source='lanconelli2012')"
        )
    vm = _voxel(voxel_mm)
    canonical = _nuclide(nuclide).name
    excl = tuple(sorted(resolve_exclude(exclude)))
    r = None if radius_mm is None else float(radius_mm)
    if r is not None and (not np.isfinite(r) or r <= 0):
        raise KernelError(
            f"radius_mm must be a positive number of mm (or None for the default extent), "
            f"got {radius_mm!r}"
        )
    tail = _tail_rule() if (r is None and photon_tail) else None
    return _cached(canonical, vm, med, r, bool(chain), excl, tail)


#: A default kernel's photon-tail rule: (radius mm, dropped-fraction threshold, cap of
#: the half-width in voxels); part of the cache keys.
TailRule = tuple[float, float, int]


def _tail_rule() -> TailRule:
    """The photon-tail rule now in force (module constants, read at each call)."""
    from .. import parameters

    radius = float(parameters.get("kernel_photon_tail_radius_mm"))
    drop = float(parameters.get("kernel_tail_dropped_fraction"))
    cap_value = float(parameters.get("kernel_max_half_width_voxels"))
    cap = int(cap_value) if np.isfinite(cap_value) else 0
    if not (np.isfinite(radius) and radius > 0 and 0 <= drop < 1 and cap >= 1 and cap == cap_value):
        raise KernelError(
            "the photon-tail parameters must be kernel_photon_tail_radius_mm > 0, "
            "0 <= kernel_tail_dropped_fraction < 1 and kernel_max_half_width_voxels a whole "
            f"number >= 1; got {radius!r}, {drop!r}, {cap_value!r} (ds.parameters.override)"
        )
    return (radius, drop, cap)


#: Version of the disk cache's file layout (octants since "o1"); part of the file name key.
_CACHE_FORMAT = "o1"

_CacheKey = tuple[
    str, tuple[float, float, float], str, float | None, bool, tuple[str, ...], TailRule | None
]


class _KernelMemo:
    """In-memory cache of built kernels: least recently used dropped first beyond
    ``max_entries`` kernels or :data:`KERNEL_CACHE_MAX_BYTES` bytes of arrays."""

    def __init__(self, max_entries: int = 64) -> None:
        self.max_entries = max_entries
        self._d: OrderedDict[_CacheKey, Kernel] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def nbytes(kernel: Kernel) -> int:
        return int(
            kernel.array.nbytes + sum(np.asarray(c).nbytes for c in kernel.components.values())
        )

    def get(self, key: _CacheKey) -> Kernel | None:
        with self._lock:
            k = self._d.get(key)
            if k is not None:
                self._d.move_to_end(key)
            return k

    def put(self, key: _CacheKey, kernel: Kernel) -> None:
        with self._lock:
            self._d[key] = kernel
            self._d.move_to_end(key)
            total = sum(self.nbytes(k) for k in self._d.values())
            while len(self._d) > 1 and (
                len(self._d) > self.max_entries or total > KERNEL_CACHE_MAX_BYTES
            ):
                _, old = self._d.popitem(last=False)
                total -= self.nbytes(old)

    def __len__(self) -> int:
        return len(self._d)

    def cache_clear(self) -> None:
        with self._lock:
            self._d.clear()


_MEMO = _KernelMemo()


def _cached(
    name: str,
    vm: tuple[float, float, float],
    med: str,
    radius_mm: float | None,
    chain: bool,
    exclude: tuple[str, ...],
    tail: TailRule | None = None,
) -> Kernel:
    """The kernel from memory, else from the disk cache, else built (and stored in both)."""
    mkey: _CacheKey = (name, vm, med, radius_mm, chain, exclude, tail)
    hit = _MEMO.get(mkey)
    if hit is not None:
        return hit
    kernel = _from_disk(mkey)
    if kernel is None:
        kernel = _build(name, vm, med, radius_mm, chain, frozenset(exclude), tail)
        _to_disk(mkey, kernel)
    _MEMO.put(mkey, kernel)
    return kernel


_cached.cache_clear = _MEMO.cache_clear  # type: ignore[attr-defined]


def _disk_path(mkey: _CacheKey) -> Path:
    name, vm, med, radius_mm, chain, exclude, tail = mkey
    key = json.dumps(
        [
            _library_version(med),
            GEOMETRY_VERSION,
            _CACHE_FORMAT,
            name,
            vm,
            med,
            radius_mm,
            chain,
            exclude,
            None if tail is None else list(tail),
        ]
    )
    digest = hashlib.sha256(key.encode()).hexdigest()[:24]
    return cache_dir() / "kernels" / f"{digest}.npz"


def _from_disk(mkey: _CacheKey) -> Kernel | None:
    name, vm, med = mkey[0], mkey[1], mkey[2]
    path = _disk_path(mkey)
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            comps = {c: mirror_octant(np.array(z[f"c_{c}"])) for c in meta["components"]}
            array = mirror_octant(np.array(z["array"]))
        return Kernel(
            array=array,
            voxel_mm=vm,
            nuclide=name,
            medium=med,
            density_g_per_ml=meta["density"],
            radius_mm=meta["radius_mm"],
            energy_fraction=meta["energy_fraction"],
            components=comps,
            source="dpk",
            library_version=_library_version(med),
            metadata=meta["metadata"],
        )
    except (OSError, KeyError, ValueError):
        _log.warning("ignoring unreadable kernel cache file %s", path)
        return None


def _octant(a: np.ndarray) -> np.ndarray:
    """Offsets >= 0 of a kernel symmetric under each axis flip (see ``mirror_octant``)."""
    h = [s // 2 for s in a.shape]
    return np.ascontiguousarray(a[h[0] :, h[1] :, h[2] :])


def _to_disk(mkey: _CacheKey, kernel: Kernel) -> None:
    """Store the kernel's octants (the library's kernels are symmetric under each axis
    flip, so an eighth of the values is the whole kernel)."""
    path = _disk_path(mkey)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = {
            "density": kernel.density_g_per_ml,
            "radius_mm": kernel.radius_mm,
            "energy_fraction": kernel.energy_fraction,
            "components": list(kernel.components),
            "metadata": dict(kernel.metadata),
        }
        arrays: dict[str, Any] = {f"c_{c}": _octant(a) for c, a in kernel.components.items()}
        tmp = path.with_suffix(".tmp.npz")
        np.savez_compressed(
            tmp, array=_octant(kernel.array), meta=np.array(json.dumps(meta)), **arrays
        )
        os.replace(tmp, path)
    except OSError as exc:  # a read-only home must not stop the calculation
        _log.warning("could not write kernel cache %s: %s", path, exc)


def _member_dpk(nuc: Nuclide, r_mm: np.ndarray, med: str, exclude: frozenset[str]) -> NuclideDPK:
    """A nuclide's DPK at radii ``r_mm`` in ``med`` (see ``cumulative_energy_mev``)."""
    return nuclide_dpk(nuc, np.asarray(r_mm, dtype=float) * 0.1, exclude, medium=med)


def _chain_weights(name: str, chain: bool) -> dict[str, float]:
    if not chain:
        return {name: 1.0}
    ch = decay_chain(name)
    return {m: float(w) for m, w in ch.decays_per_parent_decay.items() if w > 0}


@dataclass(frozen=True)
class DosePointKernel:
    """Energy absorbed around an isotropic point source of a nuclide, by radiation class.

    Attributes
    ----------
    nuclide, medium, density_g_per_ml
        What the kernel is for.
    r_mm
        Radii (mm), increasing, ``r_mm[0] == 0``.
    absorbed_j
        Per component (``"beta"``, ``"ce_auger"``, ``"photon"``, ``"alpha"``): energy (J)
        absorbed per decay inside the sphere of radius ``r_mm[k]``; ``[0]`` is the energy
        deposited at the source point (below the basis' lowest energies; alphas).
    emitted_j
        Per component: energy (J) emitted per decay.
    """

    nuclide: str
    medium: str
    density_g_per_ml: float
    r_mm: np.ndarray
    absorbed_j: dict[str, np.ndarray]
    emitted_j: dict[str, float]
    notes: tuple[str, ...] = field(default=())

    def absorbed_fraction(self, component: str | None = None) -> np.ndarray:
        """Fraction of the emitted energy (of one component, or all) absorbed within r."""
        keys = [component] if component is not None else list(self.absorbed_j)
        emitted = sum(self.emitted_j[k] for k in keys)
        total = np.sum([self.absorbed_j[k] for k in keys], axis=0)
        return np.asarray(total / emitted) if emitted > 0 else np.zeros_like(self.r_mm)

    def shell_dose_gy(self, component: str | None = None) -> np.ndarray:
        """Mean absorbed dose per decay (Gy) in each shell ``r_mm[k]..r_mm[k+1]``."""
        keys = [component] if component is not None else list(self.absorbed_j)
        cum = np.sum([self.absorbed_j[k] for k in keys], axis=0)
        vol_mm3 = 4.0 / 3.0 * np.pi * np.diff(self.r_mm**3)
        return np.asarray(np.diff(cum) / (vol_mm3 * 1e-6 * self.density_g_per_ml))


def dose_point_kernel(
    nuclide: str,
    r_mm: np.ndarray,
    medium: str = "water",
    chain: bool = False,
    exclude: Iterable[str] = (),
) -> DosePointKernel:
    """The dose-point kernel of ``nuclide`` that :func:`vsv_kernel` integrates.

    ICRP-107 emissions folded with the monoenergetic Monte Carlo basis (see
    ``docs/kernels.md``); in other media than water electron distances are scaled by
    rho x s (0.9905 in soft tissue, measured s(E) in bone and lung) and photons come from
    the medium's own basis (bone) or water's at distances x rho.

    Parameters
    ----------
    nuclide
        Any ICRP-107 nuclide name.
    r_mm
        Radii (mm), increasing from 0.
    medium
        ``"water"`` (default), ``"soft tissue"``, ``"bone"`` or ``"lung"``.
    chain
        Add the radioactive progeny weighted by decays per parent decay.
    exclude
        Components or ICRP-107 classes to leave out (as in :func:`vsv_kernel`).

    Returns
    -------
    DosePointKernel

    Examples
    --------
    >>> dpk = dose_point_kernel("Y-90", np.array([0.0, 2.0, 50.0]))
    >>> [round(float(f), 2) for f in dpk.absorbed_fraction("beta")]
    [0.0, 0.43, 1.0]
    """
    r = np.asarray(r_mm, dtype=float)
    if r.ndim != 1 or r.size < 2 or r[0] != 0 or np.any(np.diff(r) <= 0):
        raise KernelError("r_mm must be a 1-D increasing array of radii starting at 0")
    med = _ALIASES.get(str(medium).strip().lower())
    if med is None:
        raise KernelError(f"medium={medium!r} is not available; valid: {', '.join(MEDIA)}")
    name = _nuclide(nuclide).name
    excl = resolve_exclude(exclude)
    absorbed = {c: np.zeros(r.shape) for c in COMPONENTS}
    emitted = dict.fromkeys(COMPONENTS, 0.0)
    notes: list[str] = []
    for member, w in _chain_weights(name, chain).items():
        dpk = _member_dpk(_nuclide(member), r, med, excl)
        notes.extend(f"{member}: {t}" for t in dpk.notes)
        for c in COMPONENTS:
            absorbed[c] += w * dpk.cum_mev[c] * MEV_TO_J
            emitted[c] += w * dpk.emitted_mev[c] * MEV_TO_J
    return DosePointKernel(
        nuclide=name,
        medium=med,
        density_g_per_ml=MEDIA[med].density,
        r_mm=r,
        absorbed_j=absorbed,
        emitted_j=emitted,
        notes=tuple(notes),
    )


def _library_version(med: str) -> str:
    """The basis version, plus the medium's own run sets (bone, lung)."""
    m = MEDIA[med]
    extra = sorted({b for b in (m.photon_basis, m.scaling_basis) if b})
    return "+".join([BASIS_VERSION, *extra])


def _scaling_note(med: str) -> float | dict[str, list[float]]:
    """The electron range scaling of ``med``: a constant, or the measured s(E) table."""
    const = MEDIA[med].range_scaling
    if const is not None:
        return const
    e, s = range_scaling_table(med)
    return {"energy_mev": [float(v) for v in e], "s": [round(float(v), 5) for v in s]}


def _electron_reach_mm(
    members: dict[str, Nuclide], vm: tuple[float, float, float], med: str
) -> tuple[float, float]:
    """(CSDA range in ``med`` of the most energetic electron emitted by ``members``, mm;
    the default electron extent: that range plus one voxel diagonal, at least 5 voxels)."""
    e_max = 0.0
    for nuc in members.values():
        if nuc.beta_spectrum is not None:
            pos = nuc.beta_spectrum[nuc.beta_spectrum[:, 1] > 0]
            if pos.size:
                e_max = max(e_max, float(pos[:, 0].max()) + 0.01)
        for cls in ("IE", "auger", "beta-", "beta+"):
            ln = nuc.lines(cls)
            if ln.size:
                e_max = max(e_max, float(ln[:, 0].max()))
    rho = MEDIA[med].density
    e_top = max(e_max, 0.012)
    r_e_mm = float(csda_range_cm(e_top)) * 10.0 / (rho * range_scaling(med, e_top))
    diag = float(np.sqrt(sum(v * v for v in vm)))
    return r_e_mm, max(r_e_mm + diag, 5.0 * max(vm))


def _dropped_outside(
    members: dict[str, Nuclide],
    weights: dict[str, float],
    radius_mm: float,
    med: str,
    exclude: frozenset[str],
) -> float:
    """Share of the emitted energy (included classes) that an infinite medium absorbs
    outside the sphere of ``radius_mm`` around a point source (the dose-point kernel)."""
    absorbed = emitted = 0.0
    r = np.array([0.0, float(radius_mm)])
    for member, w in weights.items():
        dpk = _member_dpk(members[member], r, med, exclude)
        for comp in COMPONENTS:
            absorbed += w * float(dpk.cum_mev[comp][-1])
            emitted += w * float(dpk.emitted_mev[comp])
    return 1.0 - absorbed / emitted if emitted > 0 else 0.0


def _extent(
    members: dict[str, Nuclide],
    weights: dict[str, float],
    vm: tuple[float, float, float],
    med: str,
    radius_mm: float | None,
    exclude: frozenset[str],
    tail: TailRule | None,
) -> tuple[float, dict[str, Any]]:
    """The kernel's radius (mm) and how it was chosen (for ``metadata["extent"]``)."""
    r_e_mm, reach = _electron_reach_mm(members, vm, med)
    info: dict[str, Any] = {"electron_range_mm": r_e_mm, "electron_reach_mm": reach}
    if radius_mm is not None:
        info["rule"] = "given"
        return float(radius_mm), info
    if tail is None:
        info["rule"] = "electron reach"
        return reach, info
    tail_mm, max_drop, cap = tail
    drop = _dropped_outside(members, weights, reach, med, exclude)
    info["dropped_fraction_at_electron_reach"] = drop
    if drop <= max_drop:
        info["rule"] = f"electron reach (leaves {drop:.2%} <= {max_drop:.0%} outside)"
        return reach, info
    cap_mm = cap * min(vm)
    radius = max(reach, min(tail_mm, cap_mm))
    info["rule"] = f"photon tail {tail_mm:g} mm" + (
        f", capped at {cap} voxels ({cap_mm:g} mm)" if cap_mm < tail_mm else ""
    )
    info["photon_tail_rule"] = {
        "radius_mm": tail_mm,
        "dropped_fraction_threshold": max_drop,
        "max_half_width_voxels": cap,
    }
    return radius, info


def _build(
    name: str,
    vm: tuple[float, float, float],
    med: str,
    radius_mm: float | None,
    chain: bool,
    exclude: frozenset[str],
    tail: TailRule | None = None,
) -> Kernel:
    rho, rho_cite = MEDIA[med].density, MEDIA[med].citation
    weights = _chain_weights(name, chain)
    members = {m: _nuclide(m) for m in weights}
    radius, extent = _extent(members, weights, vm, med, radius_mm, exclude, tail)
    half = (
        int(np.ceil(radius / vm[0] - 1e-9)),
        int(np.ceil(radius / vm[1] - 1e-9)),
        int(np.ceil(radius / vm[2] - 1e-9)),
    )
    diag = float(np.sqrt(sum(v * v for v in vm)))
    # radial grid (mm in the medium): see radial_grid
    h_min = min(vm)
    r_far = float(np.sqrt(sum(((n + 1) * v) ** 2 for n, v in zip(half, vm, strict=True))))
    r_mm = radial_grid(r_far / h_min) * h_min
    # water-equivalent radii: electrons range-scaled by rho*s, photons by rho
    mass_kg = float(np.prod(vm)) * 1e-6 * rho
    g = geometry_table(_shape_key(vm))
    curves: list[np.ndarray] = []
    owner: list[str] = []
    emitted_by: dict[str, float] = {}
    notes: list[str] = []
    for member, w in weights.items():
        dpk = _member_dpk(members[member], r_mm, med, exclude)
        notes.extend(f"{member}: {t}" for t in dpk.notes)
        for comp in COMPONENTS:
            cum = dpk.cum_mev[comp]
            if not np.any(cum):
                continue
            curves.append(w * cum * MEV_TO_J)
            owner.append(comp)
            emitted_by[comp] = emitted_by.get(comp, 0.0) + w * dpk.emitted_mev[comp] * MEV_TO_J
    if not curves:
        raise KernelError(
            f"{name}: nothing left to build a kernel from (exclude={sorted(exclude)})"
        )
    # one pass over the geometry for every member and component (octants: offsets >= 0)
    octs = integrate_vsv_octants(
        r_mm, np.array(curves), vm, half, mass_kg, g, fine_mm=extent["electron_range_mm"] + diag
    )
    # crop to the sphere of the radius
    idx = [np.arange(0, n + 1) * v for n, v in zip(half, vm, strict=True)]
    d2 = idx[0][:, None, None] ** 2 + idx[1][None, :, None] ** 2 + idx[2][None, None, :] ** 2
    inside = d2 <= radius * radius * (1 + 1e-9)
    comp_oct: dict[str, np.ndarray] = {}
    for comp, o in zip(owner, octs, strict=True):
        comp_oct[comp] = comp_oct[comp] + o if comp in comp_oct else o
    comps = {
        c: mirror_octant(np.where(inside, np.clip(o, 0.0, None), 0.0)) for c, o in comp_oct.items()
    }
    total = sum(comps.values())
    assert isinstance(total, np.ndarray)
    emitted_j = float(sum(emitted_by.values()))
    fraction = float(total.sum() * mass_kg / emitted_j) if emitted_j > 0 else float("nan")
    by_comp = {
        c: float(a.sum() * mass_kg / emitted_by[c]) if emitted_by[c] > 0 else float("nan")
        for c, a in comps.items()
    }
    return Kernel(
        array=total,
        voxel_mm=vm,
        nuclide=name,
        medium=med,
        density_g_per_ml=rho,
        radius_mm=float(radius),
        energy_fraction=fraction,
        components=comps,
        source="dpk",
        library_version=_library_version(med),
        metadata={
            "chain_weights": weights,
            "excluded_classes": sorted(exclude),
            "density_citation": rho_cite,
            "electron_range_scaling": _scaling_note(med),
            "emitted_energy_j": emitted_j,
            "emitted_energy_j_by_component": emitted_by,
            "energy_fraction_by_component": by_comp,
            "extent": extent,
            "notes": notes,
            "basis": "ompmc (EGSnrc re-implementation) monoenergetic DPKs in water"
            + (" and bone (photons)" if MEDIA[med].photon_basis else "")
            + ", 521icru, ECUT 10 keV, PCUT 10 keV; see docs/kernels.md",
        },
    )
