"""CT-driven registration of SPECT/CT (or PET/CT) time points with SimpleITK.

Each later time point's CT is registered to the reference CT (rigid Euler 3-D, optionally
refined by a B-spline: ``method="deformable"``); the resulting transform then carries that
time point's nuclear medicine (NM) volume onto the reference grid with
:func:`apply_registration`, respecting what the values are:

* ``"concentration"`` (Bq/mL, Gy, HU): linear interpolation at the reference voxel centres;
* ``"extensive"`` (Bq, Bq s per voxel): converted to a concentration, resampled, converted
  back with the reference voxel volume; the totals before and after are compared and
  recorded (activity leaving the field of view or interpolation smoothing changes them);
* ``"mask"``: nearest neighbour.

The transform follows the ITK convention: it maps points of the fixed (reference) space to
the moving space, so a moving image whose anatomy is shifted by ``+d`` mm yields a
translation of ``+d``.

How :func:`register_ct` is made fast (a whole-body CT pair of 304 x 150 x 320 voxels in
about a second; the numbers are in ``benchmarks/README.md``, section "registration"):

* both CTs are first binned (block averages, which also anti-alias) to a *working grid*
  of about ``working_voxel_mm`` (4 mm by default, the size of a SPECT voxel);
* a coarse translation search (FFT cross-correlation of the two body outlines' edge
  images on an 8 mm grid) starts the optimizer near the answer, whatever the shift and
  the fields of view;
* a two-level pyramid (8 mm, then 4 mm smoothed by 2 mm) built by block averaging;
* both CTs are cropped to their bodies (plus a margin of air) before the pyramid;
* the metric is evaluated only inside a body mask of the fixed CT (HU above
  ``body_threshold_hu``, largest connected component, holes filled, dilated by one working
  voxel), on random points (``sampling_fraction`` of the body voxels, at least
  ``min_samples``) with a fixed seed, with image gradients by finite differences at those
  points rather than gradient images of the whole grid;
* the optimizer is a regular-step gradient descent with parameter scales from the physical
  shift of the voxels, and stops at ``min_step_mm`` (0.002 mm by default);
* results are kept in a :class:`RegistrationCache` keyed by a hash of both working
  images (values and geometry) and of the settings, so that re-running a study does not
  register again (``cache=``).

Each :class:`Registration` carries a similarity check for QA: the normalised
cross-correlation (NCC) of the fixed CT and the moving CT inside the fixed body mask on the
working grid, without the transform (``ncc_before``) and with it (``ncc_after``), and the
mutual information of the same voxel pairs.

Volumes cross to SimpleITK through :func:`dosimetry.io.volume_to_sitk` /
:func:`dosimetry.io.sitk_to_volume` (both LPS millimetres).

References
----------
Mattes D, Haynor DR, Vesselle H, Lewellen TK, Eubank W. PET-CT image registration in the
chest using free-form deformations. IEEE Trans Med Imaging 2003;22:120-128 (Mattes mutual
information; B-spline free-form deformation).

Lowekamp BC, Chen DT, Ibáñez L, Blezek D. The design of SimpleITK. Front Neuroinform
2013;7:45.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from .errors import InputDataError, UnitError
from .volume import Volume

if TYPE_CHECKING:
    import SimpleITK as sitk
    from matplotlib.figure import Figure

__all__ = [
    "Registration",
    "RegistrationCache",
    "register_ct",
    "apply_registration",
    "registration_qa",
    "RegistrationQA",
    "default_registration_cache",
]

log = logging.getLogger(__name__)

#: Bumped whenever the registration itself or the cached record changes, so that stale
#: folder-cache entries are never returned.
CACHE_FORMAT_VERSION = 1

#: Default working-grid spacing (mm). A design choice, not a physical constant: the size of
#: a typical Lu-177 SPECT voxel (4.8 mm here), so the CT is not registered more finely than
#: the images it carries; measured to recover known shifts to < 0.1 mm on the whole-body phantom
#: (benchmarks/README.md, "registration").
DEFAULT_WORKING_VOXEL_MM = 4.0

#: Default body threshold (HU) of the metric mask. A design value, not from a publication:
#: between air (-1000 HU) and adipose tissue (about -100 HU), so the skin outline is found
#: on any calibrated CT; lungs (about -800 HU) are inside the outline once holes are filled.
DEFAULT_BODY_THRESHOLD_HU = -500.0

#: CT number used outside a resampled CT's field of view: air (-1000 HU by the definition
#: of the Hounsfield scale).
AIR_HU = -1000.0

#: Bins per axis of the joint histogram behind the QA mutual information (a design value:
#: 64 bins of about 30 HU over a -1000..+1000 HU range).
QA_HISTOGRAM_BINS = 64

_METHODS = {"rigid": "rigid", "deformable": "deformable", "bspline": "deformable"}
_METRICS = ("mattes", "mean_squares")
_INITIALIZATIONS = ("search", "geometry", "moments", "identity")

#: Regular-step gradient descent: the step is multiplied by this factor whenever the
#: gradient direction turns by more than 90 degrees (a design value: 0.5 stopped before
#: small rotations had converged on the test phantoms; 0.7 recovered them to < 0.2 deg).
RELAXATION_FACTOR = 0.7

#: Grid spacing (mm) of the coarse translation search of ``initialization="search"``
#: (a design value: twice the default working grid).
SEARCH_VOXEL_MM = 8.0


@dataclass(frozen=True)
class Registration:
    """A CT-to-CT registration result.

    Attributes
    ----------
    transform
        SimpleITK transform mapping fixed-space points (LPS mm) to moving space: an
        ``Euler3DTransform`` (rigid) or a ``CompositeTransform`` (rigid, then B-spline).
    fixed
        The fixed (reference) CT Volume.
    method, metric
        ``"rigid"`` or ``"deformable"``; ``"mattes"`` or ``"mean_squares"``.
    metric_value
        The optimizer's final metric value at the finest level (lower is better for both
        metrics in SimpleITK).
    translation_mm, rotation_deg
        The rigid part: translation (LPS mm) about :attr:`center_mm` and Euler angles
        (degrees, about x, y, z; ITK's Z-X-Y composition).
    stop_condition
        The optimizer's stop description.
    provenance
        ``{"registration": {...}}``: the settings, frames of reference, cache key and
        whether the result came from the cache.
    center_mm
        Centre of rotation (LPS mm) of the rigid part.
    ncc_before, ncc_after
        Normalised cross-correlation of the fixed CT and the moving CT inside the fixed
        body mask on the working grid, without (identity) and with the transform; 1 is a
        perfect linear match.
    mi_before, mi_after
        Mutual information (nats; higher is better) of the same voxel pairs, from a
        joint histogram of :data:`QA_HISTOGRAM_BINS` x :data:`QA_HISTOGRAM_BINS` bins.
    working_spacing_mm
        (slice, row, column) spacing (mm) of the finest grid the metric was evaluated on.
    elapsed_s
        Wall time of the registration (s) when it was computed (a cache hit repeats it).
    cache_hit
        True when this result was taken from a :class:`RegistrationCache`.
    """

    transform: Any
    fixed: Volume
    method: str
    metric: str
    metric_value: float
    translation_mm: tuple[float, float, float]
    rotation_deg: tuple[float, float, float]
    stop_condition: str = ""
    provenance: dict[str, Any] = field(default_factory=dict)
    center_mm: tuple[float, float, float] = (math.nan, math.nan, math.nan)
    ncc_before: float = math.nan
    ncc_after: float = math.nan
    mi_before: float = math.nan
    mi_after: float = math.nan
    working_spacing_mm: tuple[float, float, float] | None = None
    elapsed_s: float = 0.0
    cache_hit: bool = False

    @property
    def similarity(self) -> dict[str, float]:
        """The QA similarity numbers as a plain dict (for tables and reports)."""
        return {
            "ncc_before": self.ncc_before,
            "ncc_after": self.ncc_after,
            "mi_before": self.mi_before,
            "mi_after": self.mi_after,
        }

    def apply(
        self,
        volume: Volume,
        reference: Volume,
        quantity: Literal["concentration", "extensive", "mask"] = "concentration",
    ) -> Volume:
        """Shorthand for :func:`apply_registration`."""
        return apply_registration(self, volume, reference, quantity)


# --------------------------------------------------------------------------------------
# cache


@dataclass(frozen=True)
class _Entry:
    """What the cache keeps of a registration: everything except the fixed Volume."""

    transform: Any
    fields: dict[str, Any]


class RegistrationCache:
    """Registration results kept in memory (least recently used first out), and
    optionally in a folder so that another process or a later session finds them.

    Keys are hashes of both CTs on the working grid (values and geometry) and of every
    setting that changes the result (see :func:`register_ct`), so a hit is the same
    registration problem. A hit returns the stored transform (a copy: changing it does
    not change the cache) and the stored numbers.

    Parameters
    ----------
    folder
        Optional folder: each entry is written as ``<key>.tfm`` (the transform, ITK text
        format, parameters round-trip exactly) and ``<key>.json`` (the numbers).
    max_entries
        In-memory entries kept (each holds a transform and a few numbers, not the CTs).

    Attributes
    ----------
    hits, misses
        Counters of :meth:`get` outcomes.
    """

    def __init__(self, folder: str | Path | None = None, *, max_entries: int = 64) -> None:
        if int(max_entries) < 1:
            raise InputDataError(
                f"max_entries must be >= 1, got {max_entries!r}; use cache=None to disable caching"
            )
        self.folder = None if folder is None else Path(folder)
        self.max_entries = int(max_entries)
        self._mem: OrderedDict[str, _Entry] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._mem)

    def __repr__(self) -> str:
        return (
            f"RegistrationCache(folder={self.folder!r}, entries={len(self)}, "
            f"hits={self.hits}, misses={self.misses})"
        )

    def clear(self) -> None:
        """Forget the in-memory entries (the folder, if any, is left as it is)."""
        with self._lock:
            self._mem.clear()

    def get(self, key: str) -> _Entry | None:
        """The entry for ``key`` (memory first, then the folder), or None."""
        with self._lock:
            entry = self._mem.get(key)
            if entry is not None:
                self._mem.move_to_end(key)
        if entry is None and self.folder is not None:
            entry = self._read(key)
            if entry is not None:
                self._remember(key, entry)
        with self._lock:
            if entry is None:
                self.misses += 1
            else:
                self.hits += 1
        return entry

    def put(self, key: str, entry: _Entry) -> None:
        """Store ``entry`` in memory and, with a folder, on disk."""
        self._remember(key, entry)
        if self.folder is not None:
            self._write(key, entry)

    def _remember(self, key: str, entry: _Entry) -> None:
        with self._lock:
            self._mem[key] = entry
            self._mem.move_to_end(key)
            while len(self._mem) > self.max_entries:
                self._mem.popitem(last=False)

    def _paths(self, key: str) -> tuple[Path, Path]:
        assert self.folder is not None  # callers check
        return self.folder / f"{key}.json", self.folder / f"{key}.tfm"

    def _write(self, key: str, entry: _Entry) -> None:
        import SimpleITK as sitk

        jpath, tpath = self._paths(key)
        try:
            jpath.parent.mkdir(parents=True, exist_ok=True)
            tmp_t = tpath.with_name(f".{tpath.name}.{os.getpid()}.tmp.tfm")
            sitk.WriteTransform(entry.transform, str(tmp_t))
            os.replace(tmp_t, tpath)
            tmp_j = jpath.with_name(f".{jpath.name}.{os.getpid()}.tmp")
            tmp_j.write_text(
                json.dumps({"key": key, "format": CACHE_FORMAT_VERSION, **entry.fields}),
                encoding="utf-8",
            )
            os.replace(tmp_j, jpath)
        except (OSError, RuntimeError) as exc:  # a cache that cannot write is not fatal
            log.warning("registration cache: could not write %s (%s)", jpath, exc)

    def _read(self, key: str) -> _Entry | None:
        import SimpleITK as sitk

        jpath, tpath = self._paths(key)
        if not (jpath.is_file() and tpath.is_file()):
            return None
        try:
            fields = json.loads(jpath.read_text(encoding="utf-8"))
            if fields.pop("key", None) != key or fields.pop("format", None) != (
                CACHE_FORMAT_VERSION
            ):
                return None
            transform = sitk.ReadTransform(str(tpath))
        except (OSError, ValueError, RuntimeError) as exc:
            log.warning("registration cache: ignoring unreadable entry %s (%s)", jpath, exc)
            return None
        return _Entry(transform=_downcast(transform), fields=fields)


_DEFAULT_CACHE = RegistrationCache()


def default_registration_cache() -> RegistrationCache:
    """The process-wide in-memory cache that ``register_ct(..., cache=True)`` uses."""
    return _DEFAULT_CACHE


def _resolve_cache(cache: RegistrationCache | str | Path | bool | None) -> RegistrationCache | None:
    if cache is None or cache is False:
        return None
    if cache is True:
        return _DEFAULT_CACHE
    if isinstance(cache, RegistrationCache):
        return cache
    if isinstance(cache, str | Path):
        return RegistrationCache(cache)
    raise InputDataError(
        f"cache={cache!r}; valid: True (the process-wide cache), None/False (no cache), a "
        "RegistrationCache, or a folder path"
    )


def _downcast(transform: Any) -> Any:
    """A transform read back from a file as its concrete SimpleITK class."""
    import SimpleITK as sitk

    name = transform.GetName()
    if name == "Euler3DTransform":
        return sitk.Euler3DTransform(transform)
    if name == "CompositeTransform":
        return sitk.CompositeTransform(transform)
    return transform


def _copy_transform(transform: Any) -> Any:
    return _downcast(transform.__class__(transform))


# --------------------------------------------------------------------------------------
# working images


def _to_sitk_float(volume: Volume) -> sitk.Image:
    """A float32 SimpleITK image of the Volume (one copy of the data)."""
    from .io.sitk import volume_to_sitk

    return volume_to_sitk(volume.with_array(np.asarray(volume.array, dtype=np.float32)))


def _bin_factors(spacing_xyz: tuple[float, ...], working_voxel_mm: float | None) -> list[int]:
    if working_voxel_mm is None:
        return [1, 1, 1]
    return [max(1, int(round(float(working_voxel_mm) / s))) for s in spacing_xyz]


def _working_image(volume: Volume, working_voxel_mm: float | None) -> sitk.Image:
    """The CT as float32, block-averaged to about ``working_voxel_mm`` per axis."""
    import SimpleITK as sitk

    from .io.sitk import volume_to_sitk

    floating = np.issubdtype(np.asarray(volume.array).dtype, np.floating)
    # a float CT is binned in its own precision (no full-size conversion pass), then cast
    img = volume_to_sitk(volume) if floating else _to_sitk_float(volume)
    factors = _bin_factors(img.GetSpacing(), working_voxel_mm)
    factors = [min(f, n) for f, n in zip(factors, img.GetSize(), strict=True)]
    if any(f > 1 for f in factors):
        img = sitk.BinShrink(img, factors)
    if img.GetPixelID() != sitk.sitkFloat32:
        img = sitk.Cast(img, sitk.sitkFloat32)
    return img


def _body_mask(image: sitk.Image, threshold_hu: float | None) -> tuple[sitk.Image | None, int]:
    """Body outline of a working CT: threshold, largest component, holes filled, dilated
    by one voxel, on the image's grid cropped to the body plus two voxels; and its voxel
    count. (None, all voxels) when disabled or when the threshold finds no body."""
    import SimpleITK as sitk

    n_all = int(np.prod(image.GetSize()))
    if threshold_hu is None:
        return None, n_all
    m = sitk.BinaryThreshold(
        image, lowerThreshold=float(threshold_hu), upperThreshold=3.0e38, insideValue=1
    )
    labels = sitk.RelabelComponent(sitk.ConnectedComponent(m), sortByObjectSize=True)
    body = sitk.BinaryThreshold(labels, 1, 1, 1, 0)
    body = _crop(body, sitk.GetArrayViewFromImage(body).astype(bool), 2)
    body = sitk.BinaryFillhole(body)
    body = sitk.BinaryDilate(body, [1, 1, 1])
    n = int(np.count_nonzero(sitk.GetArrayViewFromImage(body)))
    if n < 64:
        log.warning(
            "register_ct: the fixed CT has %d voxels above body_threshold_hu=%g on the working "
            "grid; registering without a body mask (check the CT is in HU)",
            n,
            threshold_hu,
        )
        return None, n_all
    return body, n


def _crop(image: sitk.Image, inside: np.ndarray, margin: int) -> sitk.Image:
    """``image`` cropped to the bounding box of ``inside`` ([z, y, x] bool) plus
    ``margin`` voxels (geometry kept); the image itself when ``inside`` is empty."""
    import SimpleITK as sitk

    if not inside.any():
        return image
    lo, hi = [], []
    for axis in range(3):
        other = tuple(a for a in range(3) if a != axis)
        hits = np.flatnonzero(inside.any(axis=other))
        lo.append(max(0, int(hits[0]) - margin))
        hi.append(min(inside.shape[axis] - 1, int(hits[-1]) + margin))
    index = [lo[2], lo[1], lo[0]]  # x, y, z
    size = [hi[2] - lo[2] + 1, hi[1] - lo[1] + 1, hi[0] - lo[0] + 1]
    return sitk.RegionOfInterest(image, size, index)


def _image_digest(h: Any, image: sitk.Image) -> None:
    import SimpleITK as sitk

    geom = (image.GetSize(), image.GetSpacing(), image.GetOrigin(), image.GetDirection())
    h.update(repr(geom).encode())
    h.update(np.ascontiguousarray(sitk.GetArrayViewFromImage(image)).tobytes())


def _cache_key(fixed: sitk.Image, moving: sitk.Image, settings: dict[str, Any]) -> str:
    import SimpleITK as sitk

    h = hashlib.blake2b(digest_size=20)
    h.update(
        f"dosimetry.registration/{CACHE_FORMAT_VERSION}/{sitk.Version.VersionString()}".encode()
    )
    h.update(json.dumps(settings, sort_keys=True).encode())
    _image_digest(h, fixed)
    _image_digest(h, moving)
    return h.hexdigest()


# --------------------------------------------------------------------------------------
# registration


def _check_positive(name: str, value: float) -> None:
    if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
        raise InputDataError(f"{name} must be a positive finite number, got {value!r}")


def _available_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def register_ct(
    fixed_ct: Volume,
    moving_ct: Volume,
    *,
    method: Literal["rigid", "deformable", "bspline"] = "rigid",
    metric: Literal["mattes", "mean_squares"] = "mattes",
    histogram_bins: int = 50,
    sampling_fraction: float = 0.05,
    min_samples: int = 20000,
    shrink_factors: tuple[int, ...] = (2, 1),
    smoothing_sigmas_mm: tuple[float, ...] = (0.0, 2.0),
    iterations: int = 100,
    bspline_mesh_size: int | tuple[int, int, int] = 4,
    bspline_iterations: int = 50,
    seed: int = 42,
    working_voxel_mm: float | None = DEFAULT_WORKING_VOXEL_MM,
    body_threshold_hu: float | None = DEFAULT_BODY_THRESHOLD_HU,
    initialization: Literal["search", "geometry", "moments", "identity"] = "search",
    learning_rate_mm: float = 2.0,
    min_step_mm: float = 0.002,
    threads: int | None = None,
    cache: RegistrationCache | str | Path | bool | None = True,
) -> Registration:
    """Register ``moving_ct`` to ``fixed_ct`` (rigid, optionally + B-spline).

    Parameters
    ----------
    fixed_ct, moving_ct
        CT Volumes (``"HU"``; any grid). The fixed one defines the reference space.
    method
        ``"rigid"`` (Euler 3-D, 6 parameters) or ``"deformable"`` (rigid, then a B-spline
        free-form deformation with ``bspline_mesh_size`` control-point intervals per axis
        over the fixed body, L-BFGS-B, at most ``bspline_iterations`` iterations on the
        finest level). ``"bspline"`` is accepted as the earlier name of ``"deformable"``.
    metric
        ``"mattes"`` (Mattes mutual information, robust to HU calibration differences) or
        ``"mean_squares"`` (same scanner and protocol).
    histogram_bins
        Mattes histogram bins.
    sampling_fraction, min_samples
        Fraction (0, 1] of the body-mask voxels of each level at which the metric is
        evaluated, drawn at random with ``seed``, raised so that the working grid gives at
        least ``min_samples`` samples (every voxel of a small image).
    shrink_factors, smoothing_sigmas_mm
        Multi-resolution pyramid on the *working grid*, coarse to fine: each level is the
        working grid smoothed by a Gaussian of that sigma (mm, 0: none) and then
        block-averaged by that factor. The default ``(2, 1)``, ``(0.0, 2.0)`` is an 8 mm
        level, then the 4 mm working grid smoothed by 2 mm (which keeps the metric smooth
        in the shift on sharp CT edges; it does not bias a registration because both
        images are smoothed alike).
    iterations
        Maximum optimizer iterations per level (rigid stage).
    bspline_mesh_size, bspline_iterations
        B-spline control-point intervals (one int, or one per x, y, z) and L-BFGS-B
        iterations (``method="deformable"`` only).
    seed
        Seed of the metric's random sampling (results are reproducible).
    working_voxel_mm
        Spacing (mm) the CTs are block-averaged to before registering (per axis, by the
        nearest integer factor, never below the CT's own spacing). ``None`` registers on
        the CT's own grid (slow for whole-body CTs).
    body_threshold_hu
        The metric is evaluated inside the fixed CT's body (voxels above this CT number,
        largest connected component, holes filled, dilated by one working voxel).
        ``None``: everywhere, air included.
    initialization
        Starting transform: ``"search"`` (default: centre of rotation at the fixed image
        centre, translation from an FFT cross-correlation of the two bodies' edge images
        on an 8 mm grid, so shifts of several centimetres and different fields of view
        are found), ``"geometry"`` (the earlier default: translation = moving image
        centre - fixed image centre; failed on shifts of 40 and 60 mm in
        ``benchmarks/registration.py``), ``"moments"`` (centres of the two body masks, which
        is also the centre of rotation; fails when a field of view cuts the body) or
        ``"identity"`` (no translation). :attr:`Registration.translation_mm` is about
        :attr:`Registration.center_mm`.
    learning_rate_mm, min_step_mm
        Regular-step gradient descent: first and smallest step, as the largest voxel
        displacement (mm) a step causes (scales from the physical shift).
    threads
        Threads of the registration; default: the cores this process may use.
    cache
        ``True`` (default): the process-wide :func:`default_registration_cache`;
        a :class:`RegistrationCache` (e.g. one per study, optionally with a folder);
        a folder path (a new folder-backed cache); ``None``/``False``: always register.

    Returns
    -------
    Registration
        With the transform, the rigid parameters, the similarity QA numbers and, in
        ``provenance["registration"]``, the settings, the cache key and ``cache_hit``.

    Raises
    ------
    UnitError
        When the Volumes are not CT numbers.
    InputDataError
        Unknown ``method``/``metric``/``initialization``, mismatched pyramid settings or
        out-of-range numbers.

    Notes
    -----
    The working grid and the body mask make the registration fast without losing
    accuracy: on the whole-body phantom (304 x 150 x 320 voxels of 2 x 2 x 4 mm) known
    shifts are recovered to within 0.1 mm (``benchmarks/registration.py``).
    """
    import SimpleITK as sitk

    for name, v in (("fixed_ct", fixed_ct), ("moving_ct", moving_ct)):
        if v.unit != "HU":
            raise UnitError(
                f"{name} must be a CT in 'HU', got unit {v.unit!r}; convert it to Hounsfield "
                "units first"
            )
    if method not in _METHODS:
        raise InputDataError(f"method={method!r}; valid: 'rigid', 'deformable' ('bspline')")
    kind = _METHODS[method]
    if metric not in _METRICS:
        raise InputDataError(f"metric={metric!r}; valid: 'mattes', 'mean_squares'")
    if initialization not in _INITIALIZATIONS:
        raise InputDataError(
            f"initialization={initialization!r}; valid: 'geometry', 'moments', 'identity'"
        )
    if not shrink_factors or len(shrink_factors) != len(smoothing_sigmas_mm):
        raise InputDataError(
            f"shrink_factors {tuple(shrink_factors)} and smoothing_sigmas_mm "
            f"{tuple(smoothing_sigmas_mm)} must be non-empty and of equal length (one per level)"
        )
    if any(int(f) < 1 for f in shrink_factors) or any(s < 0 for s in smoothing_sigmas_mm):
        raise InputDataError(
            f"shrink_factors must be >= 1 and smoothing_sigmas_mm >= 0, got "
            f"{tuple(shrink_factors)}, {tuple(smoothing_sigmas_mm)}"
        )
    if not (0.0 < float(sampling_fraction) <= 1.0):
        raise InputDataError(f"sampling_fraction must be in (0, 1], got {sampling_fraction!r}")
    for name, value in (
        ("min_samples", min_samples),
        ("learning_rate_mm", learning_rate_mm),
        ("min_step_mm", min_step_mm),
        ("iterations", iterations),
        ("histogram_bins", histogram_bins),
    ):
        _check_positive(name, value)
    if working_voxel_mm is not None:
        _check_positive("working_voxel_mm", working_voxel_mm)
    mesh = (
        (int(bspline_mesh_size),) * 3
        if isinstance(bspline_mesh_size, int | np.integer)
        else tuple(int(m) for m in bspline_mesh_size)
    )
    if len(mesh) != 3 or min(mesh) < 1:
        raise InputDataError(
            f"bspline_mesh_size must be a positive int or three, got {bspline_mesh_size!r}"
        )
    n_threads = _available_cores() if threads is None else int(threads)
    if n_threads < 1:
        raise InputDataError(f"threads must be >= 1, got {threads!r}")
    store = _resolve_cache(cache)

    settings: dict[str, Any] = {
        "method": kind,
        "metric": metric,
        "histogram_bins": int(histogram_bins),
        "sampling_fraction": float(sampling_fraction),
        "min_samples": int(min_samples),
        "shrink_factors": [int(f) for f in shrink_factors],
        "smoothing_sigmas_mm": [float(s) for s in smoothing_sigmas_mm],
        "iterations": int(iterations),
        "seed": int(seed),
        "working_voxel_mm": None if working_voxel_mm is None else float(working_voxel_mm),
        "body_threshold_hu": None if body_threshold_hu is None else float(body_threshold_hu),
        "initialization": initialization,
        "learning_rate_mm": float(learning_rate_mm),
        "min_step_mm": float(min_step_mm),
    }
    if kind == "deformable":
        settings["bspline_mesh_size"] = list(mesh)
        settings["bspline_iterations"] = int(bspline_iterations)

    t0 = time.perf_counter()
    fixed = _working_image(fixed_ct, working_voxel_mm)
    moving = _working_image(moving_ct, working_voxel_mm)
    key = _cache_key(fixed, moving, settings) if store is not None else ""
    entry = store.get(key) if store is not None else None
    hit = entry is not None
    if entry is None:
        entry = _run_registration(fixed, moving, settings, mesh, int(bspline_iterations), n_threads)
        if store is not None:
            store.put(key, entry)
    else:
        log.info("register_ct: cache hit %s (registration not repeated)", key[:12])
    f = entry.fields
    info = {
        **settings,
        "fixed_frame_of_reference_uid": fixed_ct.frame_of_reference_uid,
        "moving_frame_of_reference_uid": moving_ct.frame_of_reference_uid,
        "working_spacing_mm": f["working_spacing_mm"],
        "mask_voxels": f["mask_voxels"],
        "sampling_fraction_used": f["sampling_fraction_used"],
        "cache_key": key or None,
        "cache_hit": hit,
        "ncc_before": f["ncc_before"],
        "ncc_after": f["ncc_after"],
        "simpleitk_version": sitk.Version.VersionString(),
    }
    if not hit:
        log.info(
            "register_ct (%s, %s): translation %s mm, rotation %s deg, NCC %.4f -> %.4f in "
            "the body, %.2f s (%s)",
            kind,
            metric,
            np.round(f["translation_mm"], 2),
            np.round(f["rotation_deg"], 3),
            f["ncc_before"],
            f["ncc_after"],
            time.perf_counter() - t0,
            f["stop_condition"],
        )
    return Registration(
        transform=_copy_transform(entry.transform),
        fixed=fixed_ct,
        method=kind,
        metric=metric,
        metric_value=float(f["metric_value"]),
        translation_mm=_triple(f["translation_mm"]),
        rotation_deg=_triple(f["rotation_deg"]),
        stop_condition=str(f["stop_condition"]),
        provenance={"registration": info},
        center_mm=_triple(f["center_mm"]),
        ncc_before=float(f["ncc_before"]),
        ncc_after=float(f["ncc_after"]),
        mi_before=float(f["mi_before"]),
        mi_after=float(f["mi_after"]),
        working_spacing_mm=_triple(f["working_spacing_mm"]),
        elapsed_s=float(f["elapsed_s"]),
        cache_hit=hit,
    )


def _triple(values: Any) -> tuple[float, float, float]:
    a, b, c = (float(v) for v in values)
    return (a, b, c)


def _configure(
    reg: sitk.ImageRegistrationMethod,
    settings: dict[str, Any],
    mask: sitk.Image | None,
    fraction: float,
    threads: int,
) -> None:
    import SimpleITK as sitk

    if settings["metric"] == "mattes":
        reg.SetMetricAsMattesMutualInformation(numberOfHistogramBins=settings["histogram_bins"])
    else:
        reg.SetMetricAsMeanSquares()
    # random points (off the voxel centres) even at a fraction of 1: samples on the grid
    # make the metric of piecewise-constant images stepwise in the shift
    reg.SetMetricSamplingStrategy(reg.RANDOM)
    reg.SetMetricSamplingPercentage(fraction, settings["seed"])
    if mask is not None:
        reg.SetMetricFixedMask(mask)
    # image gradients by finite differences at the sample points, not gradient images of
    # the whole grid (the pyramid's smoothing keeps them well behaved on sharp CT edges)
    reg.MetricUseFixedImageGradientFilterOff()
    reg.MetricUseMovingImageGradientFilterOff()
    reg.SetInterpolator(sitk.sitkLinear)
    reg.SetNumberOfThreads(int(threads))


def _coarse_feature(
    image: sitk.Image, direction: tuple[float, ...], spacing_mm: float, threshold_hu: float | None
) -> tuple[np.ndarray, np.ndarray]:
    """The CT on a coarse grid with the given direction covering its whole extent, as
    (feature array [z, y, x], origin xyz): HU + 1000 clipped to [0, 2000] inside the
    largest component above ``threshold_hu`` (the body; a separate couch drops out), 0
    elsewhere."""
    import SimpleITK as sitk

    d = np.asarray(direction, dtype=float).reshape(3, 3)
    size = np.asarray(image.GetSize())
    corners = np.array(
        [
            image.TransformContinuousIndexToPhysicalPoint([float(v) for v in c])
            for c in np.stack(np.meshgrid(*[[-0.5, n - 0.5] for n in size]), -1).reshape(-1, 3)
        ]
    )
    local = corners @ d  # coordinates along the direction axes
    lo, hi = local.min(axis=0), local.max(axis=0)
    n = [int(math.ceil((h - lo_) / spacing_mm)) + 1 for lo_, h in zip(lo, hi, strict=True)]
    origin = d @ lo
    coarse = sitk.Resample(
        image,
        n,
        sitk.Transform(3, sitk.sitkIdentity),
        sitk.sitkLinear,
        [float(v) for v in origin],
        [float(spacing_mm)] * 3,
        [float(v) for v in d.ravel()],
        AIR_HU,
        sitk.sitkFloat32,
    )
    hu = np.clip(sitk.GetArrayFromImage(coarse), AIR_HU, 1000.0)
    feature = np.sqrt(sum(g * g for g in np.gradient(hu)))
    if threshold_hu is not None:
        body = sitk.BinaryThreshold(coarse, float(threshold_hu), 3.0e38, 1, 0)
        labels = sitk.RelabelComponent(sitk.ConnectedComponent(body), sortByObjectSize=True)
        body = sitk.BinaryDilate(sitk.BinaryThreshold(labels, 1, 1, 1, 0), [1, 1, 1])
        feature = feature * sitk.GetArrayFromImage(body)
    return feature, origin


def _translation_search(
    fixed: sitk.Image, moving: sitk.Image, threshold_hu: float | None, spacing_mm: float
) -> np.ndarray:
    """Translation (LPS mm) that maximises the cross-correlation of the two coarse body
    images (FFT, zero-padded: any shift, any overlap), to the nearest ``spacing_mm``."""
    direction = fixed.GetDirection()
    f, of = _coarse_feature(fixed, direction, spacing_mm, threshold_hu)
    m, om = _coarse_feature(moving, direction, spacing_mm, threshold_hu)
    from scipy import fft

    shape = [fft.next_fast_len(a + b - 1, real=True) for a, b in zip(f.shape, m.shape, strict=True)]
    axes = (0, 1, 2)
    f32, m32 = f.astype(np.float32), m.astype(np.float32)
    spectrum = np.conj(fft.rfftn(f32, shape, axes=axes)) * fft.rfftn(m32, shape, axes=axes)
    corr = fft.irfftn(spectrum, shape, axes=axes)  # corr[k] = sum_i f[i] m[i + k] (mod shape)
    k = np.array(np.unravel_index(int(np.argmax(corr)), corr.shape))
    k = np.where(k >= np.asarray(m.shape), k - np.asarray(shape), k)  # negative offsets
    d = np.asarray(direction, dtype=float).reshape(3, 3)
    offset_xyz = k[::-1].astype(float) * spacing_mm
    return np.asarray(om - of + d @ offset_xyz)


def _level_image(image: sitk.Image, factor: int, sigma_mm: float) -> sitk.Image:
    """One pyramid level: Gaussian smoothing (sigma in mm, if > 0), then block averages
    of ``factor`` voxels per axis."""
    import SimpleITK as sitk

    if sigma_mm > 0:
        image = sitk.SmoothingRecursiveGaussian(image, float(sigma_mm))
    if factor > 1:
        factors = [min(int(factor), n) for n in image.GetSize()]
        image = sitk.BinShrink(image, factors)
    return image


def _initial_transform(
    fixed: sitk.Image,
    moving: sitk.Image,
    mask: sitk.Image | None,
    how: str,
    threshold_hu: float | None,
    search_images: tuple[sitk.Image, sitk.Image] | None = None,
) -> sitk.Euler3DTransform:
    """The starting rigid transform; the centre of rotation is the centre of ``fixed``
    except for ``"moments"``. ``search_images`` (the CTs cropped to the bodies) are
    used by the translation search."""
    import SimpleITK as sitk

    if how == "moments":
        mm = _body_mask(moving, threshold_hu)[0] if mask is not None else None
        fm = mask if mask is not None else fixed
        mv = mm if mm is not None else moving
        init = sitk.CenteredTransformInitializer(
            sitk.Cast(fm, sitk.sitkFloat32),
            sitk.Cast(mv, sitk.sitkFloat32),
            sitk.Euler3DTransform(),
            sitk.CenteredTransformInitializerFilter.MOMENTS,
        )
        return sitk.Euler3DTransform(init)
    init = sitk.CenteredTransformInitializer(
        fixed,
        moving,
        sitk.Euler3DTransform(),
        sitk.CenteredTransformInitializerFilter.GEOMETRY,
    )
    euler = sitk.Euler3DTransform(init)
    if how == "identity":
        euler.SetTranslation((0.0, 0.0, 0.0))
    elif how == "search":
        fs, ms = search_images if search_images is not None else (fixed, moving)
        spacing = max(SEARCH_VOXEL_MM, *fixed.GetSpacing(), *moving.GetSpacing())
        t = _translation_search(fs, ms, threshold_hu, spacing)
        euler.SetTranslation(tuple(float(v) for v in t))
    return euler


def _run_registration(
    fixed: sitk.Image,
    moving: sitk.Image,
    settings: dict[str, Any],
    mesh: tuple[int, int, int],
    bspline_iterations: int,
    threads: int,
) -> _Entry:
    """The registration itself, on the working images; everything the cache stores."""
    import SimpleITK as sitk

    t0 = time.perf_counter()
    mask, n_domain = _body_mask(fixed, settings["body_threshold_hu"])
    fraction = min(1.0, max(settings["sampling_fraction"], settings["min_samples"] / n_domain))
    threshold = settings["body_threshold_hu"]
    if mask is not None:
        # the fixed CT cropped to its body (the metric's domain), the moving CT to what
        # lies above the threshold plus a margin of air
        corner = fixed.TransformPhysicalPointToIndex(mask.GetOrigin())
        fixed_c = sitk.RegionOfInterest(fixed, mask.GetSize(), corner)
        moving_c = _crop(moving, sitk.GetArrayViewFromImage(moving) > threshold, 4)
    else:
        fixed_c, moving_c = fixed, moving
    euler = _initial_transform(
        fixed, moving, mask, settings["initialization"], threshold, (fixed_c, moving_c)
    )
    fixed, moving = fixed_c, moving_c
    stops = []
    value = math.nan
    levels = list(zip(settings["shrink_factors"], settings["smoothing_sigmas_mm"], strict=True))
    for i, (factor, sigma) in enumerate(levels):
        fixed_l = _level_image(fixed, factor, sigma)
        moving_l = _level_image(moving, factor, sigma)
        reg = sitk.ImageRegistrationMethod()
        _configure(reg, settings, mask, fraction, threads)
        reg.SetOptimizerAsRegularStepGradientDescent(
            learningRate=settings["learning_rate_mm"],
            minStep=settings["min_step_mm"],
            numberOfIterations=settings["iterations"],
            relaxationFactor=RELAXATION_FACTOR,
            gradientMagnitudeTolerance=1e-8,
        )
        reg.SetOptimizerScalesFromPhysicalShift()
        reg.SetInitialTransform(euler, inPlace=True)
        reg.Execute(fixed_l, moving_l)
        stops.append(f"level {i} (x{factor}): {reg.GetOptimizerStopConditionDescription()}")
        value = float(reg.GetMetricValue())
    stop = "; ".join(stops)
    transform: Any = sitk.Euler3DTransform(euler)
    if settings["method"] == "deformable":
        bsp = sitk.BSplineTransformInitializer(fixed_l, list(mesh))
        reg2 = sitk.ImageRegistrationMethod()
        _configure(reg2, settings, mask, fraction, threads)
        reg2.SetOptimizerAsLBFGSB(
            gradientConvergenceTolerance=1e-5,
            numberOfIterations=int(bspline_iterations),
            maximumNumberOfCorrections=5,
            maximumNumberOfFunctionEvaluations=4 * int(bspline_iterations),
            costFunctionConvergenceFactor=1e7,
        )
        reg2.SetMovingInitialTransform(transform)
        reg2.SetInitialTransform(bsp, inPlace=True)
        reg2.Execute(fixed_l, moving_l)
        stop = f"rigid: {stop}; bspline: {reg2.GetOptimizerStopConditionDescription()}"
        value = float(reg2.GetMetricValue())
        comp = sitk.CompositeTransform(transform)
        comp.AddTransform(bsp)
        transform = comp
    elapsed = time.perf_counter() - t0
    identity = sitk.Transform(3, sitk.sitkIdentity)
    ncc_before, mi_before = _similarity(fixed, moving, identity, mask, QA_HISTOGRAM_BINS)
    ncc_after, mi_after = _similarity(fixed, moving, transform, mask, QA_HISTOGRAM_BINS)
    angles = (euler.GetAngleX(), euler.GetAngleY(), euler.GetAngleZ())
    sx, sy, sz = fixed.GetSpacing()
    fields = {
        "method": settings["method"],
        "metric": settings["metric"],
        "metric_value": value,
        "translation_mm": [float(v) for v in euler.GetTranslation()],
        "rotation_deg": [float(math.degrees(a)) for a in angles],
        "center_mm": [float(v) for v in euler.GetCenter()],
        "stop_condition": stop,
        "ncc_before": ncc_before,
        "ncc_after": ncc_after,
        "mi_before": mi_before,
        "mi_after": mi_after,
        "working_spacing_mm": [float(sz), float(sy), float(sx)],
        "mask_voxels": int(n_domain) if mask is not None else 0,
        "sampling_fraction_used": fraction,
        "elapsed_s": elapsed,
    }
    return _Entry(transform=transform, fields=fields)


def _resample_like(image: sitk.Image, like: sitk.Image, transform: Any, default: float) -> Any:
    import SimpleITK as sitk

    return sitk.Resample(image, like, transform, sitk.sitkLinear, float(default), sitk.sitkFloat32)


def _similarity(
    fixed: sitk.Image, moving: sitk.Image, transform: Any, mask: sitk.Image | None, bins: int
) -> tuple[float, float]:
    """(NCC, MI in nats) of the fixed image and the moving image resampled by
    ``transform``, inside ``mask`` (everywhere without one), over the voxels that the
    transform maps inside the moving image. MI from a ``bins`` x ``bins`` joint
    histogram over the intensity range of both images."""
    import SimpleITK as sitk

    moved = sitk.GetArrayFromImage(_resample_like(moving, fixed, transform, math.nan))
    f = sitk.GetArrayViewFromImage(fixed)
    sel = np.isfinite(moved)
    if mask is not None:
        sel &= sitk.GetArrayViewFromImage(mask).astype(bool)
    a = np.asarray(f[sel], dtype=np.float64)
    b = np.asarray(moved[sel], dtype=np.float64)
    if a.size < 2:
        return math.nan, math.nan
    lo = min(float(a.min()), float(b.min()))
    hi = max(float(a.max()), float(b.max()))
    joint, _, _ = np.histogram2d(a, b, bins=int(bins), range=[[lo, hi + 1e-6], [lo, hi + 1e-6]])
    p = joint / joint.sum()
    px = p.sum(axis=1, keepdims=True)
    py = p.sum(axis=0, keepdims=True)
    nz = p > 0
    mi = float(np.sum(p[nz] * np.log(p[nz] / (px @ py)[nz])))
    a = a - a.mean()
    b = b - b.mean()
    den = math.sqrt(float(np.dot(a, a)) * float(np.dot(b, b)))
    ncc = float(np.dot(a, b) / den) if den > 0 else math.nan
    return ncc, mi


# --------------------------------------------------------------------------------------
# applying a registration


def _resample(
    image: sitk.Image, reference: Volume, transform: Any, nearest: bool, default: float = 0.0
) -> np.ndarray:
    import SimpleITK as sitk

    size = [int(n) for n in reference.shape[::-1]]
    spacing = [float(s) for s in reference.spacing_mm[::-1]]
    origin = [float(v) for v in reference.origin_mm]
    direction = [float(v) for v in reference.direction[:, ::-1].ravel()]
    out = sitk.Resample(
        image,
        size,
        transform,
        sitk.sitkNearestNeighbor if nearest else sitk.sitkLinear,
        origin,
        spacing,
        direction,
        float(default),
        sitk.sitkFloat64,
    )
    return sitk.GetArrayFromImage(out)


def apply_registration(
    registration: Registration,
    volume: Volume,
    reference: Volume,
    quantity: Literal["concentration", "extensive", "mask"] = "concentration",
    *,
    total_tolerance: float = 0.01,
) -> Volume:
    """Carry ``volume`` (in the moving CT's space) onto ``reference``'s grid.

    Parameters
    ----------
    registration
        From :func:`register_ct` (moving = the CT acquired with ``volume``).
    volume
        The NM (or other) Volume of the moving time point.
    reference
        Target grid in the fixed space (typically the reference time point's SPECT).
    quantity
        ``"concentration"``, ``"extensive"`` or ``"mask"`` (see module docstring).
    total_tolerance
        For ``"extensive"``: relative change of the total above which a warning is logged
        (the change is always recorded in the provenance).

    Returns
    -------
    Volume
        On ``reference``'s grid, with ``volume``'s unit and ``reference``'s frame of
        reference; ``provenance["registration"]`` records the transform parameters and,
        for extensive quantities, the totals before and after. Outside the moving
        volume's field of view the values are 0.
    """
    import SimpleITK as sitk

    from .io.sitk import volume_to_sitk

    if quantity not in ("concentration", "extensive", "mask"):
        raise InputDataError(f"quantity={quantity!r}; valid: 'concentration', 'extensive', 'mask'")
    if quantity == "extensive" and volume.unit not in ("Bq", "Bq s"):
        raise UnitError(
            f"quantity='extensive' expects 'Bq' or 'Bq s' per voxel, got {volume.unit!r}"
        )
    if quantity == "concentration" and volume.unit in ("Bq", "Bq s"):
        raise UnitError(
            f"{volume.unit!r} is extensive (per voxel): use quantity='extensive' so that the "
            "total is conserved"
        )
    arr = np.asarray(volume.array, dtype=np.float64)
    info: dict[str, Any] = {
        **registration.provenance.get("registration", {}),
        "translation_mm": registration.translation_mm,
        "rotation_deg": registration.rotation_deg,
        "quantity": quantity,
    }
    if quantity == "extensive":
        density = volume.with_array(arr / volume.voxel_volume_ml, unit="Bq/mL")
        img = volume_to_sitk(density)
        out = _resample(img, reference, registration.transform, nearest=False)
        out = out * reference.voxel_volume_ml
        before, after = float(arr.sum()), float(out.sum())
        rel = (after - before) / before if before != 0 else 0.0
        info.update(total_before=before, total_after=after, total_relative_change=rel)
        if abs(rel) > total_tolerance:
            log.warning(
                "apply_registration: total changed by %.2f %% (%.6g -> %.6g): activity outside "
                "the reference field of view or resolution loss",
                100 * rel,
                before,
                after,
            )
    else:
        img = sitk.Cast(volume_to_sitk(volume.with_array(arr)), sitk.sitkFloat64)
        out = _resample(img, reference, registration.transform, nearest=quantity == "mask")
        if volume.array.dtype == bool:
            out = out > 0.5
    return Volume(
        out,
        reference.affine,
        volume.unit,
        frame_of_reference_uid=reference.frame_of_reference_uid,
        reference_time=volume.reference_time,
        provenance={**dict(volume.provenance), "registration": info},
    )


# --------------------------------------------------------------------------------------
# QA


@dataclass(frozen=True)
class RegistrationQA:
    """Arrays for a visual registration check on one fixed-space slice.

    Attributes
    ----------
    fixed, moved, unregistered
        2-D slices (HU) of the fixed CT, the registered moving CT and the moving CT
        resampled without the transform (identity), all on the fixed grid (air, -1000 HU,
        outside the moving CT's field of view).
    checkerboard
        Alternating blocks of ``fixed`` and ``moved``.
    edges_fixed, edges_moved
        Boolean edge maps (gradient magnitude above ``edge_threshold`` HU per voxel).
    mean_abs_diff_hu_before, mean_abs_diff_hu_after
        Mean |fixed - moving| (HU) over the fixed CT's body voxels (HU > -500) that lie
        inside the moving CT's field of view, in 3-D on the registration's working grid,
        without and with the registration.
    axis, index
        Which slice: axis 0 (axial), 1 (coronal) or 2 (sagittal) and its index.
    edge_threshold
        Gradient threshold of the edge maps (HU per voxel).
    ncc_before, ncc_after
        The registration's similarity numbers (:attr:`Registration.ncc_before` / after).
    """

    fixed: np.ndarray
    moved: np.ndarray
    unregistered: np.ndarray
    checkerboard: np.ndarray
    edges_fixed: np.ndarray
    edges_moved: np.ndarray
    mean_abs_diff_hu_before: float
    mean_abs_diff_hu_after: float
    axis: int
    index: int
    edge_threshold: float = 100.0
    ncc_before: float = math.nan
    ncc_after: float = math.nan

    def figure(self) -> Figure:
        """A matplotlib Figure (no pyplot state): checkerboard and edge overlays
        before/after, with the similarity numbers in the title."""
        from matplotlib.figure import Figure

        fig = Figure(figsize=(12, 4), layout="constrained")
        axes = fig.subplots(1, 3)
        kw = {"cmap": "gray", "vmin": -400, "vmax": 600, "origin": "upper"}
        axes[0].imshow(self.checkerboard, **kw)
        axes[0].set_title("checkerboard fixed / registered")
        for ax, moving, title in (
            (axes[1], self.unregistered, "edges before (green fixed, magenta moving)"),
            (axes[2], self.moved, "edges after"),
        ):
            ax.imshow(self.fixed, **kw)
            em = _edges(moving, self.edge_threshold)
            if self.edges_fixed.any():
                ax.contour(self.edges_fixed, levels=[0.5], colors="lime", linewidths=0.6)
            if em.any():
                ax.contour(em, levels=[0.5], colors="magenta", linewidths=0.6)
            ax.set_title(title, fontsize=9)
        for ax in axes:
            ax.set_axis_off()
        title = (
            f"mean |HU difference| in body: {self.mean_abs_diff_hu_before:.1f} -> "
            f"{self.mean_abs_diff_hu_after:.1f}"
        )
        if math.isfinite(self.ncc_before) and math.isfinite(self.ncc_after):
            title += f"; NCC in body: {self.ncc_before:.3f} -> {self.ncc_after:.3f}"
        fig.suptitle(title)
        return fig


def _edges(slice2d: np.ndarray, thr: float) -> np.ndarray:
    gy, gx = np.gradient(np.asarray(slice2d, dtype=float))
    return np.hypot(gx, gy) > thr


def _slice_reference(volume: Volume, axis: int, index: int) -> Volume:
    """A one-voxel-thick Volume: slice ``index`` of ``volume`` along ``axis``."""
    aff = np.array(volume.affine)
    aff[:3, 3] = aff[:3, 3] + aff[:3, axis] * index
    shape = list(volume.shape)
    shape[axis] = 1
    return Volume(np.zeros(shape, dtype=np.float32), aff, "1")


def registration_qa(
    registration: Registration,
    moving_ct: Volume,
    *,
    axis: int = 0,
    index: int | None = None,
    block_voxels: int = 8,
    edge_threshold_hu_per_voxel: float = 100.0,
) -> RegistrationQA:
    """QA arrays (and a figure via :meth:`RegistrationQA.figure`) for a registration.

    Only the displayed slice is resampled at full resolution; the 3-D mean HU differences
    are computed on the registration's working grid.

    Parameters
    ----------
    registration
        From :func:`register_ct`.
    moving_ct
        The moving CT that was registered.
    axis, index
        Slice orientation (0 axial, 1 coronal, 2 sagittal) and index (default: middle).
    block_voxels
        Checkerboard block size.
    edge_threshold_hu_per_voxel
        Gradient threshold for the edge maps.
    """
    import SimpleITK as sitk

    fixed = registration.fixed
    if axis not in (0, 1, 2):
        raise InputDataError(f"axis must be 0, 1 or 2, got {axis!r}")
    if int(block_voxels) < 1:
        raise InputDataError(f"block_voxels must be >= 1, got {block_voxels!r}")
    n = fixed.shape[axis]
    idx = n // 2 if index is None else int(index)
    if not 0 <= idx < n:
        raise InputDataError(f"index {idx} outside 0..{n - 1} for axis {axis}")
    identity = sitk.Transform(3, sitk.sitkIdentity)
    img = _to_sitk_float(moving_ct)
    plane = _slice_reference(fixed, axis, idx)
    ms = np.take(_resample(img, plane, registration.transform, False, AIR_HU), 0, axis=axis)
    us = np.take(_resample(img, plane, identity, False, AIR_HU), 0, axis=axis)
    fs = np.take(np.asarray(fixed.array, dtype=float), idx, axis=axis)

    # 3-D differences on the working grid of the registration
    spacing = registration.working_spacing_mm
    working = None if spacing is None else max(spacing)
    fw = _working_image(fixed, working)
    mw = _working_image(moving_ct, working)
    f3 = sitk.GetArrayViewFromImage(fw)
    body = f3 > DEFAULT_BODY_THRESHOLD_HU
    diffs = []
    for tr in (identity, registration.transform):
        m3 = sitk.GetArrayFromImage(_resample_like(mw, fw, tr, math.nan))
        sel = body & np.isfinite(m3)
        diffs.append(
            float(np.mean(np.abs(m3[sel] - f3[sel]), dtype=np.float64)) if sel.any() else math.nan
        )
    r, c = np.indices(fs.shape)
    board = ((r // block_voxels + c // block_voxels) % 2).astype(bool)
    return RegistrationQA(
        fixed=fs,
        moved=ms,
        unregistered=us,
        checkerboard=np.where(board, fs, ms),
        edges_fixed=_edges(fs, edge_threshold_hu_per_voxel),
        edges_moved=_edges(ms, edge_threshold_hu_per_voxel),
        mean_abs_diff_hu_before=diffs[0],
        mean_abs_diff_hu_after=diffs[1],
        axis=axis,
        index=idx,
        edge_threshold=float(edge_threshold_hu_per_voxel),
        ncc_before=registration.ncc_before,
        ncc_after=registration.ncc_after,
    )
