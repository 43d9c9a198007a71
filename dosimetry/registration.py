"""CT-driven registration of SPECT/CT (or PET/CT) time points with SimpleITK.

Each later time point's CT is registered to the reference CT (rigid Euler 3-D, optionally
refined by a B-spline); the resulting transform then carries that time point's nuclear
medicine (NM) volume onto the reference grid with :func:`apply_registration`, respecting
what the values are:

* ``"concentration"`` (Bq/mL, Gy, HU): linear interpolation at the reference voxel centres;
* ``"extensive"`` (Bq, Bq s per voxel): converted to a concentration, resampled, converted
  back with the reference voxel volume; the totals before and after are compared and
  recorded (activity leaving the field of view or interpolation smoothing changes them);
* ``"mask"``: nearest neighbour.

The transform follows the ITK convention: it maps points of the fixed (reference) space to
the moving space, so a moving image whose anatomy is shifted by ``+d`` mm yields a
translation of ``+d``.

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

import logging
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from .errors import InputDataError, UnitError
from .volume import Volume

if TYPE_CHECKING:
    import SimpleITK as sitk
    from matplotlib.figure import Figure

__all__ = [
    "Registration",
    "register_ct",
    "apply_registration",
    "registration_qa",
    "RegistrationQA",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Registration:
    """A CT-to-CT registration result.

    Attributes
    ----------
    transform
        SimpleITK transform mapping fixed-space points (LPS mm) to moving space.
    fixed
        The fixed (reference) CT Volume.
    method, metric
        ``"rigid"`` or ``"bspline"``; ``"mattes"`` or ``"mean_squares"``.
    metric_value
        Final metric value (lower is better for both metrics in SimpleITK).
    translation_mm, rotation_deg
        The rigid part: translation (LPS mm) and Euler angles (degrees, about x, y, z).
    stop_condition
        The optimizer's stop description.
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

    def apply(
        self,
        volume: Volume,
        reference: Volume,
        quantity: Literal["concentration", "extensive", "mask"] = "concentration",
    ) -> Volume:
        """Shorthand for :func:`apply_registration`."""
        return apply_registration(self, volume, reference, quantity)


def _to_sitk_float(volume: Volume) -> sitk.Image:
    import SimpleITK as sitk

    from .io.sitk import volume_to_sitk

    return sitk.Cast(volume_to_sitk(volume), sitk.sitkFloat32)


def register_ct(
    fixed_ct: Volume,
    moving_ct: Volume,
    *,
    method: Literal["rigid", "bspline"] = "rigid",
    metric: Literal["mattes", "mean_squares"] = "mattes",
    histogram_bins: int = 50,
    sampling_fraction: float = 0.25,
    shrink_factors: tuple[int, ...] = (4, 2, 1),
    smoothing_sigmas_mm: tuple[float, ...] = (4.0, 2.0, 0.0),
    iterations: int = 200,
    bspline_mesh_size: int = 4,
    seed: int = 42,
) -> Registration:
    """Register ``moving_ct`` to ``fixed_ct`` (rigid, optionally + B-spline).

    Parameters
    ----------
    fixed_ct, moving_ct
        CT Volumes (``"HU"``; any grid). The fixed one defines the reference space.
    method
        ``"rigid"`` (Euler 3-D, 6 parameters) or ``"bspline"`` (rigid, then a B-spline
        free-form deformation with ``bspline_mesh_size`` control points per axis).
    metric
        ``"mattes"`` (Mattes mutual information, robust to HU calibration differences) or
        ``"mean_squares"`` (same scanner and protocol).
    histogram_bins, sampling_fraction, seed
        Mattes histogram bins and the random sampling fraction of fixed voxels (fixed
        seed for reproducibility).
    shrink_factors, smoothing_sigmas_mm
        Multi-resolution pyramid.
    iterations
        Optimizer iterations per level.

    Returns
    -------
    Registration

    Raises
    ------
    UnitError
        When the Volumes are not CT numbers.
    InputDataError
        Unknown ``method``/``metric`` or mismatched pyramid settings.
    """
    import SimpleITK as sitk

    for name, v in (("fixed_ct", fixed_ct), ("moving_ct", moving_ct)):
        if v.unit != "HU":
            raise UnitError(f"{name} must be a CT in 'HU', got unit {v.unit!r}")
    if method not in ("rigid", "bspline"):
        raise InputDataError(f"method={method!r}; valid: 'rigid', 'bspline'")
    if metric not in ("mattes", "mean_squares"):
        raise InputDataError(f"metric={metric!r}; valid: 'mattes', 'mean_squares'")
    if len(shrink_factors) != len(smoothing_sigmas_mm):
        raise InputDataError("shrink_factors and smoothing_sigmas_mm must have equal length")

    fixed = _to_sitk_float(fixed_ct)
    moving = _to_sitk_float(moving_ct)

    def configure(reg: sitk.ImageRegistrationMethod) -> None:
        if metric == "mattes":
            reg.SetMetricAsMattesMutualInformation(numberOfHistogramBins=int(histogram_bins))
        else:
            reg.SetMetricAsMeanSquares()
        reg.SetMetricSamplingStrategy(reg.RANDOM)
        reg.SetMetricSamplingPercentage(float(sampling_fraction), int(seed))
        reg.SetInterpolator(sitk.sitkLinear)
        reg.SetShrinkFactorsPerLevel(list(shrink_factors))
        reg.SetSmoothingSigmasPerLevel(list(smoothing_sigmas_mm))
        reg.SmoothingSigmasAreSpecifiedInPhysicalUnitsOn()

    init = sitk.CenteredTransformInitializer(
        fixed,
        moving,
        sitk.Euler3DTransform(),
        sitk.CenteredTransformInitializerFilter.GEOMETRY,
    )
    reg = sitk.ImageRegistrationMethod()
    configure(reg)
    reg.SetOptimizerAsRegularStepGradientDescent(
        learningRate=2.0,
        minStep=1e-4,
        numberOfIterations=int(iterations),
        relaxationFactor=0.5,
        gradientMagnitudeTolerance=1e-8,
    )
    reg.SetOptimizerScalesFromPhysicalShift()
    reg.SetInitialTransform(init, inPlace=False)
    rigid = reg.Execute(fixed, moving)
    stop = reg.GetOptimizerStopConditionDescription()
    value = float(reg.GetMetricValue())
    euler = sitk.Euler3DTransform(sitk.CompositeTransform(rigid).GetNthTransform(0))
    transform: sitk.Transform = rigid
    if method == "bspline":
        mesh = [int(bspline_mesh_size)] * 3
        bsp = sitk.BSplineTransformInitializer(fixed, mesh)
        reg2 = sitk.ImageRegistrationMethod()
        configure(reg2)
        reg2.SetOptimizerAsLBFGSB(
            gradientConvergenceTolerance=1e-5,
            numberOfIterations=int(iterations),
            maximumNumberOfCorrections=5,
            maximumNumberOfFunctionEvaluations=1000,
            costFunctionConvergenceFactor=1e7,
        )
        reg2.SetMovingInitialTransform(rigid)
        reg2.SetInitialTransform(bsp, inPlace=True)
        reg2.Execute(fixed, moving)
        stop = f"rigid: {stop}; bspline: {reg2.GetOptimizerStopConditionDescription()}"
        value = float(reg2.GetMetricValue())
        comp = sitk.CompositeTransform(rigid)
        comp.AddTransform(bsp)
        transform = comp
    angles = (euler.GetAngleX(), euler.GetAngleY(), euler.GetAngleZ())
    log.info(
        "register_ct (%s, %s): translation %s mm, rotation %s deg, metric %.4g (%s)",
        method,
        metric,
        np.round(euler.GetTranslation(), 2),
        np.round(np.degrees(angles), 3),
        value,
        stop,
    )
    return Registration(
        transform=transform,
        fixed=fixed_ct,
        method=method,
        metric=metric,
        metric_value=value,
        translation_mm=tuple(float(v) for v in euler.GetTranslation()),  # type: ignore[arg-type]
        rotation_deg=tuple(float(math.degrees(a)) for a in angles),  # type: ignore[arg-type]
        stop_condition=stop,
        provenance={
            "registration": {
                "method": method,
                "metric": metric,
                "fixed_frame_of_reference_uid": fixed_ct.frame_of_reference_uid,
                "moving_frame_of_reference_uid": moving_ct.frame_of_reference_uid,
            }
        },
    )


def _resample(image: sitk.Image, reference: Volume, transform: Any, nearest: bool) -> np.ndarray:
    import SimpleITK as sitk

    from .io.sitk import volume_to_sitk

    ref_img = volume_to_sitk(reference.with_array(np.zeros(reference.shape, np.float32)))
    out = sitk.Resample(
        image,
        ref_img,
        transform,
        sitk.sitkNearestNeighbor if nearest else sitk.sitkLinear,
        0.0,
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
        for extensive quantities, the totals before and after.
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
        img = sitk.Cast(volume_to_sitk(density), sitk.sitkFloat64)
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
        src = arr.astype(np.float64)
        img = sitk.Cast(volume_to_sitk(volume.with_array(src)), sitk.sitkFloat64)
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


@dataclass(frozen=True)
class RegistrationQA:
    """Arrays for a visual registration check on one fixed-space slice.

    Attributes
    ----------
    fixed, moved, unregistered
        2-D slices (HU) of the fixed CT, the registered moving CT and the moving CT
        resampled without the transform (identity), all on the fixed grid.
    checkerboard
        Alternating blocks of ``fixed`` and ``moved``.
    edges_fixed, edges_moved
        Boolean edge maps (gradient magnitude above ``edge_threshold_hu_per_mm``).
    mean_abs_diff_hu_before, mean_abs_diff_hu_after
        Mean |fixed - moving| (HU) over the fixed CT's body voxels (HU > -500), in 3-D,
        without and with the registration.
    axis, index
        Which slice: axis 0 (axial), 1 (coronal) or 2 (sagittal) and its index.
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

    def figure(self) -> Figure:
        """Matplotlib figure: checkerboard and edge overlays before/after."""
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, 3, figsize=(12, 4))
        kw = {"cmap": "gray", "vmin": -400, "vmax": 600, "origin": "upper"}
        axes[0].imshow(self.checkerboard, **kw)
        axes[0].set_title("checkerboard fixed / registered")
        for ax, moving, title in (
            (axes[1], self.unregistered, "edges before"),
            (axes[2], self.moved, "edges after"),
        ):
            ax.imshow(self.fixed, **kw)
            em = _edges(moving, self.edge_threshold)
            ax.contour(self.edges_fixed, levels=[0.5], colors="lime", linewidths=0.6)
            ax.contour(em, levels=[0.5], colors="magenta", linewidths=0.6)
            ax.set_title(title)
        for ax in axes:
            ax.set_axis_off()
        fig.suptitle(
            f"mean |HU difference| in body: {self.mean_abs_diff_hu_before:.1f} -> "
            f"{self.mean_abs_diff_hu_after:.1f}"
        )
        fig.tight_layout()
        return fig


def _edges(slice2d: np.ndarray, thr: float) -> np.ndarray:
    gy, gx = np.gradient(np.asarray(slice2d, dtype=float))
    return np.hypot(gx, gy) > thr


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
    img = _to_sitk_float(moving_ct)
    moved = _resample(img, fixed, registration.transform, nearest=False)
    ident = _resample(img, fixed, sitk.Transform(3, sitk.sitkIdentity), nearest=False)
    f = np.asarray(fixed.array, dtype=float)
    body = f > -500.0
    before = float(np.mean(np.abs(ident[body] - f[body]))) if body.any() else math.nan
    after = float(np.mean(np.abs(moved[body] - f[body]))) if body.any() else math.nan
    n = fixed.shape[axis]
    idx = n // 2 if index is None else int(index)
    if not 0 <= idx < n:
        raise InputDataError(f"index {idx} outside 0..{n - 1} for axis {axis}")
    fs = np.take(f, idx, axis=axis)
    ms = np.take(moved, idx, axis=axis)
    us = np.take(ident, idx, axis=axis)
    r, c = np.indices(fs.shape)
    board = ((r // block_voxels + c // block_voxels) % 2).astype(bool)
    return RegistrationQA(
        fixed=fs,
        moved=ms,
        unregistered=us,
        checkerboard=np.where(board, fs, ms),
        edges_fixed=_edges(fs, edge_threshold_hu_per_voxel),
        edges_moved=_edges(ms, edge_threshold_hu_per_voxel),
        mean_abs_diff_hu_before=before,
        mean_abs_diff_hu_after=after,
        axis=axis,
        index=idx,
        edge_threshold=float(edge_threshold_hu_per_voxel),
    )
