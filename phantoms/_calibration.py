"""Calibration acquisitions for quantitative Lu-177 SPECT, written as DICOM with their truth.

* :func:`write_calibration_cylinder` -- a uniform cylinder of known activity (assayed at a
  stated time), acquired and reconstructed like a patient: the input of a camera
  sensitivity (cps/MBq) calibration; the truth carries the sensitivity used.
* :func:`write_sphere_phantom` -- NEMA/IEC-like hot spheres (inner diameters 10, 13, 17,
  22, 28 and 37 mm, the sphere set of the NEMA NU 2 / IEC 61675-1 body phantom) in a warm
  cylindrical background: the input of recovery-coefficient measurements.

Both are reconstructed SPECT images (NM Image Storage, ``RECON TOMO``, counts) written with
the NM writer of :mod:`phantoms._spect`: the true activity distribution (voxel
occupancy by supersampling), integrated over the acquisition with physical decay, times the
sensitivity, blurred with an isotropic Gaussian of ``fwhm_mm`` (as the patient phantom),
with Poisson noise. The RadiopharmaceuticalInformationSequence carries the assayed
activity (RadionuclideTotalDose, MBq) and its reference time
(RadiopharmaceuticalStartDateTime), so that a reader finds everything the calibration
needs in the files. Simplifications: a cylinder instead of the IEC body phantom's D-shaped
section, no sphere walls, the resolution independent of the position.

Every acquisition is a deterministic function of its arguments (``seed`` included).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
from pydicom import dcmread
from scipy import ndimage

from dosimetry import Volume

from ._dicom import FileNamer, PatientInfo, UidFactory, save
from ._geometry import axial_affine
from ._nuclear import NUCLIDES, radiopharmaceutical_item
from ._pet import FWHM_TO_SIGMA, _check_folder
from ._spect import _write_nm

__all__ = [
    "CalibrationAcquisition",
    "CylinderTruth",
    "SpherePhantomTruth",
    "IEC_SPHERE_DIAMETERS_MM",
    "write_calibration_cylinder",
    "write_sphere_phantom",
]

log = logging.getLogger(__name__)

#: Inner diameters (mm) of the six fillable spheres of the NEMA NU 2 / IEC 61675-1 body
#: phantom.
IEC_SPHERE_DIAMETERS_MM: tuple[float, ...] = (10.0, 13.0, 17.0, 22.0, 28.0, 37.0)

_PATIENT = PatientInfo(name="PHANTOM^CALIBRATION", patient_id="CAL-0001")


@dataclass(frozen=True, eq=False)
class CalibrationAcquisition:
    """What one calibration acquisition wrote, and the truth behind it.

    Attributes
    ----------
    folder, nm_paths, series_instance_uid
        Where the NM file(s) are and their series.
    nuclide, half_life_s
        ``"Lu-177"`` and its physical half-life (s).
    activity_bq, assay_datetime
        Total activity in the phantom (Bq) at its assay time (written as
        RadionuclideTotalDose in MBq and RadiopharmaceuticalStartDateTime).
    acquisition_datetime, scan_duration_s
        Start of the acquisition and its duration (s).
    activity_at_acquisition_bq
        Total activity at the acquisition start (Bq).
    cps_per_mbq
        Sensitivity used to make the counts (reconstructed counts per second of acquisition
        per MBq): the value a calibration must recover.
    fwhm_mm
        Gaussian resolution (mm).
    expected_counts, total_counts
        Counts before noise (``S x 1e-6 x activity x T_eff``, ``T_eff = (1 - exp(-lambda
        T)) / lambda``) and as written (sum of the stored values).
    activity
        True activity (Bq per voxel) at the acquisition start on the SPECT grid, before
        blur and noise.
    """

    folder: Path
    nm_paths: list[Path]
    series_instance_uid: str
    nuclide: str
    half_life_s: float
    activity_bq: float
    assay_datetime: datetime
    acquisition_datetime: datetime
    scan_duration_s: float
    activity_at_acquisition_bq: float
    cps_per_mbq: float
    fwhm_mm: float
    expected_counts: float
    total_counts: int
    activity: Volume


@dataclass(frozen=True, eq=False)
class CylinderTruth(CalibrationAcquisition):
    """:func:`write_calibration_cylinder`: adds the cylinder's geometry.

    Attributes
    ----------
    diameter_mm, length_mm, volume_ml
        Inner size of the cylinder; its axis is the patient z axis through ``center_mm``.
    center_mm
        Cylinder centre (LPS mm).
    concentration_bq_per_ml
        Activity concentration at the acquisition start (Bq/mL).
    mask
        Fraction of each SPECT voxel inside the cylinder.
    """

    diameter_mm: float = 0.0
    length_mm: float = 0.0
    volume_ml: float = 0.0
    center_mm: tuple[float, float, float] = (0.0, 0.0, 0.0)
    concentration_bq_per_ml: float = 0.0
    mask: Volume | None = None


@dataclass(frozen=True, eq=False)
class SpherePhantomTruth(CalibrationAcquisition):
    """:func:`write_sphere_phantom`: adds the spheres and the background.

    Attributes
    ----------
    sphere_names
        ``"sphere_10mm"``, ... in the order of ``sphere_diameters_mm``.
    sphere_diameters_mm, sphere_volumes_ml, sphere_centers_mm
        Inner diameter (mm), volume ``pi d^3 / 6`` (mL) and centre (LPS mm) of each sphere.
    sphere_concentration_bq_per_ml, background_concentration_bq_per_ml
        Concentrations at the acquisition start (Bq/mL).
    background_diameter_mm, background_length_mm
        The cylinder holding the background (axis along z through the grid centre).
    sphere_masks
        Fraction of each SPECT voxel inside each sphere.
    expected_mean_bq_per_ml
        Mean over each sphere mask of the noise-free blurred image converted back to Bq/mL
        at the acquisition start (what a correct reader and VOI average give without
        noise); divided by the sphere concentration this is the recovery the phantom
        implies.
    """

    sphere_names: tuple[str, ...] = ()
    sphere_diameters_mm: tuple[float, ...] = ()
    sphere_volumes_ml: tuple[float, ...] = ()
    sphere_centers_mm: tuple[tuple[float, float, float], ...] = ()
    sphere_concentration_bq_per_ml: float = 0.0
    background_concentration_bq_per_ml: float = 0.0
    background_diameter_mm: float = 0.0
    background_length_mm: float = 0.0
    sphere_masks: dict[str, Volume] | None = None
    expected_mean_bq_per_ml: dict[str, float] | None = None


# --------------------------------------------------------------------------------------
def _check_positive(**values: float) -> None:
    for name, v in values.items():
        if not (isinstance(v, int | float) and math.isfinite(v) and v > 0):
            raise ValueError(f"{name} must be a positive finite number, got {v!r}")


def _grid(
    voxel_mm: float, matrix: tuple[int, int], n_slices: int
) -> tuple[tuple[int, int, int], np.ndarray]:
    """Axial grid centred on the LPS origin."""
    shape = (int(n_slices), int(matrix[0]), int(matrix[1]))
    sp = float(voxel_mm)
    aff = axial_affine(
        (sp, sp, sp),
        (-(shape[2] - 1) / 2.0 * sp, -(shape[1] - 1) / 2.0 * sp, -(shape[0] - 1) / 2.0 * sp),
    )
    return shape, aff


def _axis_centres(aff: np.ndarray, shape: tuple[int, int, int]) -> list[np.ndarray]:
    """World coordinate (mm) of the voxel centres along z (slices), y (rows), x (columns)."""
    return [aff[a, 3] + aff[a, 2 - a] * np.arange(shape[2 - a]) for a in (2, 1, 0)]


def _spacings(aff: np.ndarray) -> tuple[float, float, float]:
    """Voxel size (mm) along z, y, x of an axial grid."""
    return float(abs(aff[2, 0])), float(abs(aff[1, 1])), float(abs(aff[0, 2]))


def _cylinder_fraction(
    aff: np.ndarray,
    shape: tuple[int, int, int],
    diameter_mm: float,
    length_mm: float,
    sub: int,
) -> np.ndarray:
    """Fraction of each voxel inside a z-axis cylinder centred at the origin: in-plane by
    ``sub x sub`` sub-pixels, along z exactly."""
    zc, yc, xc = _axis_centres(aff, shape)
    sp_z, sp_y, sp_x = _spacings(aff)
    off = (np.arange(sub) + 0.5) / sub - 0.5
    ys = (yc[:, None] + off[None, :] * sp_y).ravel()
    xs = (xc[:, None] + off[None, :] * sp_x).ravel()
    inside = (ys[:, None] ** 2 + xs[None, :] ** 2) <= (diameter_mm / 2.0) ** 2
    disk = inside.reshape(shape[1], sub, shape[2], sub).mean(axis=(1, 3))
    lo = np.maximum(zc - sp_z / 2.0, -length_mm / 2.0)
    hi = np.minimum(zc + sp_z / 2.0, length_mm / 2.0)
    axial = np.clip(hi - lo, 0.0, None) / sp_z
    return axial[:, None, None] * disk[None, :, :]


def _sphere_fraction(
    aff: np.ndarray,
    shape: tuple[int, int, int],
    center_mm: tuple[float, float, float],
    diameter_mm: float,
    sub: int,
) -> np.ndarray:
    """Fraction of each voxel inside a sphere, by ``sub^3`` sub-voxel points in its box."""
    out = np.zeros(shape)
    axes = _axis_centres(aff, shape)  # z, y, x
    sps = _spacings(aff)
    c_zyx = (center_mm[2], center_mm[1], center_mm[0])
    r = diameter_mm / 2.0
    off = (np.arange(sub) + 0.5) / sub - 0.5
    sel = []
    pts = []
    for ax, sp, c in zip(axes, sps, c_zyx, strict=True):
        idx = np.flatnonzero(np.abs(ax - c) <= r + sp)
        if idx.size == 0:
            raise ValueError(f"a sphere at {center_mm} mm lies outside the SPECT grid")
        sel.append(slice(int(idx[0]), int(idx[-1]) + 1))
        pts.append((ax[idx][:, None] + off[None, :] * sp).ravel() - c)
    d2 = pts[0][:, None, None] ** 2 + pts[1][None, :, None] ** 2 + pts[2][None, None, :] ** 2
    n = [s.stop - s.start for s in sel]
    frac = (d2 <= r * r).reshape(n[0], sub, n[1], sub, n[2], sub).mean(axis=(1, 3, 5))
    out[sel[0], sel[1], sel[2]] = frac
    return out


def _quantise(counts: np.ndarray) -> tuple[np.ndarray, str]:
    """Stored integers and RescaleSlope text: slope 1 while the counts fit in 16 bits."""
    top = float(counts.max())
    if top <= 65535 and np.all(counts == np.rint(counts)):
        return counts.astype(np.int64), "1"
    slope = top / 65535.0 if top > 0 else 1.0
    text = f"{slope:.8g}"
    while top > 0 and np.rint(top / float(text)) > 65535:
        slope *= 1.0 + 1e-7
        text = f"{slope:.8g}"
    return np.clip(np.rint(counts / float(text)), 0, 65535).astype(np.int64), text


def _acquire(
    folder: Path,
    *,
    key: str,
    description: str,
    activity_vox: np.ndarray,
    aff: np.ndarray,
    nuclide: str,
    activity_bq: float,
    assay_datetime: datetime,
    acquisition_datetime: datetime,
    cps_per_mbq: float,
    fwhm_mm: float,
    noise: bool,
    n_projections: int,
    n_heads: int,
    time_per_projection_s: float,
    seed: int,
    code_scheme: str,
) -> tuple[dict[str, object], np.ndarray]:
    """Counts from the activity at the acquisition start, written as one NM series.

    Returns the common truth fields and the noise-free blurred counts."""
    if nuclide not in NUCLIDES or nuclide != "Lu-177":
        raise ValueError(f"nuclide={nuclide!r}; the SPECT calibration phantoms write 'Lu-177'")
    if n_projections < n_heads or n_projections % n_heads:
        raise ValueError(
            f"n_projections ({n_projections}) must be a positive multiple of n_heads ({n_heads})"
        )
    nuc = NUCLIDES[nuclide]
    lam = math.log(2.0) / nuc.half_life_s
    views = n_projections // n_heads
    scan_s = views * time_per_projection_s
    t_eff = -math.expm1(-lam * scan_s) / lam
    cf = cps_per_mbq * 1e-6  # counts per (Bq s)
    sp = float(np.linalg.norm(aff[:3, 0]))
    expected = ndimage.gaussian_filter(
        activity_vox * t_eff * cf, fwhm_mm * FWHM_TO_SIGMA / sp, mode="constant", truncate=4.0
    )
    lost = 1.0 - float(expected.sum()) / float(activity_vox.sum() * t_eff * cf)
    if lost > 1e-4:
        raise ValueError(
            f"{100 * lost:.2g} % of the counts are blurred out of the field of view; enlarge "
            "spect_matrix or n_slices"
        )
    rng = np.random.default_rng(seed)
    counts = rng.poisson(expected).astype(np.float64) if noise else expected
    ints, slope = _quantise(counts)
    uids = UidFactory(f"calibration-{key}", seed)
    namer = FileNamer(folder, np.random.default_rng([seed, 17]), ".dcm")
    rp = radiopharmaceutical_item(
        nuc,
        radiopharmaceutical=f"{nuclide} calibration source",
        code=None,
        administration=assay_datetime,
        total_dose=activity_bq / 1e6,
        code_scheme=code_scheme,
        positron_fraction=False,
    )
    for kw in (
        "RadionuclideHalfLife",
        "RadiopharmaceuticalRoute",
        "AdministrationRouteCodeSequence",
    ):
        if kw in rp:
            delattr(rp, kw)
    series_uid = uids("series")
    paths = _write_nm(
        namer,
        uids,
        ints,
        aff,
        key=key,
        multiframe=True,
        patient=_PATIENT,
        study_uid=uids("study"),
        study_time=acquisition_datetime - timedelta(seconds=300),
        series_uid=series_uid,
        series_number=1,
        acq_time=acquisition_datetime,
        frame_of_reference_uid=uids("for"),
        rp_item=rp,
        units="counts",
        slope_str=slope,
        views_per_head=views,
        n_heads=n_heads,
        time_per_projection_s=time_per_projection_s,
        fwhm_mm=fwhm_mm,
        total_counts=int(round(float(counts.sum()))),
        code_scheme=code_scheme,
        day=0.0,
    )
    for p in paths:  # describe the series as what it is
        ds = dcmread(p)
        ds.SeriesDescription = description
        ds.BodyPartExamined = "PHANTOM"
        save(ds, p)
    a0 = activity_bq * math.exp(-lam * (acquisition_datetime - assay_datetime).total_seconds())
    common: dict[str, object] = {
        "folder": folder,
        "nm_paths": paths,
        "series_instance_uid": series_uid,
        "nuclide": nuclide,
        "half_life_s": nuc.half_life_s,
        "activity_bq": float(activity_bq),
        "assay_datetime": assay_datetime,
        "acquisition_datetime": acquisition_datetime,
        "scan_duration_s": float(scan_s),
        "activity_at_acquisition_bq": a0,
        "cps_per_mbq": float(cps_per_mbq),
        "fwhm_mm": float(fwhm_mm),
        "expected_counts": float(activity_vox.sum() * t_eff * cf),
        "total_counts": int(round(float(ints.sum() * float(slope)))),
        "activity": Volume(
            activity_vox,
            aff,
            "Bq",
            reference_time=acquisition_datetime,
            provenance={"source": "phantom truth", "phantom": key},
        ),
    }
    return common, expected / (cf * t_eff)


def _slices_for(length_mm: float, voxel_mm: float, fwhm_mm: float) -> int:
    """Slices covering ``length_mm`` with three FWHM to spare at each end."""
    return int(math.ceil((length_mm + 6.0 * fwhm_mm) / voxel_mm)) + 1


def write_calibration_cylinder(
    folder: str | Path,
    *,
    activity_bq: float = 300e6,
    assay_datetime: datetime = datetime(2024, 4, 1, 9, 0, 0),
    acquisition_datetime: datetime = datetime(2024, 4, 1, 11, 0, 0),
    nuclide: str = "Lu-177",
    diameter_mm: float = 200.0,
    length_mm: float = 200.0,
    cps_per_mbq: float = 9.6,
    fwhm_mm: float = 11.0,
    voxel_mm: float = 4.7952,
    matrix: tuple[int, int] = (128, 128),
    n_slices: int | None = None,
    noise: bool = True,
    n_projections: int = 120,
    n_heads: int = 2,
    time_per_projection_s: float = 20.0,
    seed: int = 0,
    code_scheme: str = "SRT",
) -> CylinderTruth:
    """Write a reconstructed SPECT of a uniform cylinder of known activity.

    Parameters
    ----------
    folder
        New or empty folder (created).
    activity_bq, assay_datetime
        Activity filled into the cylinder (Bq) and when it was assayed.
    acquisition_datetime
        Start of the SPECT acquisition.
    nuclide
        ``"Lu-177"``.
    diameter_mm, length_mm
        Inner size of the cylinder (phantom choices; axis along the patient z axis).
    cps_per_mbq
        Sensitivity used to make counts (the value a calibration must recover).
    fwhm_mm
        Gaussian resolution (mm).
    voxel_mm, matrix, n_slices
        Cubic voxel size, (rows, columns) and slices (default: the length plus three FWHM
        at each end).
    noise
        Poisson noise on the counts.
    n_projections, n_heads, time_per_projection_s
        Acquisition: the scan lasts ``n_projections / n_heads * time_per_projection_s``.
    seed
        Seed of noise, names and UIDs.
    code_scheme
        ``"SRT"`` or ``"SCT"`` codes.

    Returns
    -------
    CylinderTruth

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     truth = write_calibration_cylinder(d, noise=False)
    >>> round(truth.volume_ml), truth.cps_per_mbq, len(truth.nm_paths)
    (6283, 9.6, 1)
    """
    _check_positive(
        activity_bq=activity_bq,
        diameter_mm=diameter_mm,
        length_mm=length_mm,
        cps_per_mbq=cps_per_mbq,
        fwhm_mm=fwhm_mm,
        voxel_mm=voxel_mm,
        time_per_projection_s=time_per_projection_s,
    )
    folder = Path(folder)
    nz = _slices_for(length_mm, voxel_mm, fwhm_mm) if n_slices is None else int(n_slices)
    shape, aff = _grid(voxel_mm, matrix, nz)
    frac = _cylinder_fraction(aff, shape, diameter_mm, length_mm, sub=8)
    _check_folder(folder)
    nuc = NUCLIDES.get(nuclide)
    if nuc is None:
        raise ValueError(f"nuclide={nuclide!r}; the SPECT calibration phantoms write 'Lu-177'")
    lam = math.log(2.0) / nuc.half_life_s
    a0 = activity_bq * math.exp(-lam * (acquisition_datetime - assay_datetime).total_seconds())
    act = a0 * frac / float(frac.sum())
    common, _ = _acquire(
        folder,
        key="cylinder",
        description=f"Calibration cylinder {nuclide} {diameter_mm:g}x{length_mm:g} mm",
        activity_vox=act,
        aff=aff,
        nuclide=nuclide,
        activity_bq=activity_bq,
        assay_datetime=assay_datetime,
        acquisition_datetime=acquisition_datetime,
        cps_per_mbq=cps_per_mbq,
        fwhm_mm=fwhm_mm,
        noise=noise,
        n_projections=n_projections,
        n_heads=n_heads,
        time_per_projection_s=time_per_projection_s,
        seed=seed,
        code_scheme=code_scheme,
    )
    volume_ml = math.pi * (diameter_mm / 2.0) ** 2 * length_mm / 1000.0
    log.info("wrote a %s calibration cylinder (%.0f MBq) to %s", nuclide, activity_bq / 1e6, folder)
    return CylinderTruth(
        **common,  # type: ignore[arg-type]
        diameter_mm=float(diameter_mm),
        length_mm=float(length_mm),
        volume_ml=volume_ml,
        center_mm=(0.0, 0.0, 0.0),
        concentration_bq_per_ml=a0 / volume_ml,
        mask=Volume(frac, aff, "1"),
    )


def write_sphere_phantom(
    folder: str | Path,
    *,
    sphere_diameters_mm: Sequence[float] = IEC_SPHERE_DIAMETERS_MM,
    sphere_concentration_bq_per_ml: float = 1.0e6,
    background_concentration_bq_per_ml: float = 0.125e6,
    assay_datetime: datetime = datetime(2024, 4, 1, 9, 0, 0),
    acquisition_datetime: datetime = datetime(2024, 4, 1, 11, 0, 0),
    nuclide: str = "Lu-177",
    ring_radius_mm: float = 60.0,
    background_diameter_mm: float = 220.0,
    background_length_mm: float = 180.0,
    cps_per_mbq: float = 9.6,
    fwhm_mm: float = 11.0,
    voxel_mm: float = 4.7952,
    matrix: tuple[int, int] = (128, 128),
    n_slices: int | None = None,
    noise: bool = True,
    n_projections: int = 120,
    n_heads: int = 2,
    time_per_projection_s: float = 20.0,
    seed: int = 0,
    code_scheme: str = "SRT",
) -> SpherePhantomTruth:
    """Write a reconstructed SPECT of hot spheres in a warm cylinder (NEMA/IEC-like).

    The spheres' centres lie on a ring of ``ring_radius_mm`` around the cylinder axis in
    its central transverse plane, evenly spaced. Concentrations are stated at
    ``assay_datetime`` and decay to the acquisition.

    Parameters
    ----------
    folder
        New or empty folder (created).
    sphere_diameters_mm
        Inner diameters (mm); default the NEMA/IEC set :data:`IEC_SPHERE_DIAMETERS_MM`.
    sphere_concentration_bq_per_ml, background_concentration_bq_per_ml
        Concentrations at ``assay_datetime`` (Bq/mL); default 8:1 (phantom choice; 0 for
        spheres in cold water).
    assay_datetime, acquisition_datetime
        Reference time of the concentrations and start of the acquisition.
    nuclide
        ``"Lu-177"``.
    ring_radius_mm, background_diameter_mm, background_length_mm
        Layout (phantom choices).
    cps_per_mbq, fwhm_mm, voxel_mm, matrix, n_slices, noise, n_projections, n_heads,
    time_per_projection_s, seed, code_scheme
        As for :func:`write_calibration_cylinder`.

    Returns
    -------
    SpherePhantomTruth
    """
    _check_positive(
        sphere_concentration_bq_per_ml=sphere_concentration_bq_per_ml,
        ring_radius_mm=ring_radius_mm,
        background_diameter_mm=background_diameter_mm,
        background_length_mm=background_length_mm,
        cps_per_mbq=cps_per_mbq,
        fwhm_mm=fwhm_mm,
        voxel_mm=voxel_mm,
        time_per_projection_s=time_per_projection_s,
    )
    if not (
        math.isfinite(background_concentration_bq_per_ml)
        and 0 <= background_concentration_bq_per_ml < sphere_concentration_bq_per_ml
    ):
        raise ValueError(
            "background_concentration_bq_per_ml must be >= 0 and below the sphere "
            f"concentration, got {background_concentration_bq_per_ml!r}"
        )
    diam = [float(d) for d in sphere_diameters_mm]
    if not diam or any(not (math.isfinite(d) and d > 0) for d in diam):
        raise ValueError(f"sphere_diameters_mm must be positive, got {sphere_diameters_mm!r}")
    n = len(diam)
    angles = [2.0 * math.pi * k / n for k in range(n)]
    centres = [(ring_radius_mm * math.cos(a), ring_radius_mm * math.sin(a), 0.0) for a in angles]
    for c, d in zip(centres, diam, strict=True):
        if (
            math.hypot(c[0], c[1]) + d / 2.0 > background_diameter_mm / 2.0
            or d > background_length_mm
        ):
            raise ValueError(f"the {d:g} mm sphere does not fit inside the background cylinder")
    for i in range(n):
        for j in range(i + 1, n):
            gap = math.dist(centres[i], centres[j]) - (diam[i] + diam[j]) / 2.0
            if gap <= 0:
                raise ValueError("spheres overlap: increase ring_radius_mm")
    folder = Path(folder)
    nz = _slices_for(background_length_mm, voxel_mm, fwhm_mm) if n_slices is None else int(n_slices)
    shape, aff = _grid(voxel_mm, matrix, nz)
    bg = _cylinder_fraction(aff, shape, background_diameter_mm, background_length_mm, sub=6)
    spheres = [
        _sphere_fraction(aff, shape, c, d, sub=6) for c, d in zip(centres, diam, strict=True)
    ]
    _check_folder(folder)
    nuc = NUCLIDES.get(nuclide)
    if nuc is None:
        raise ValueError(f"nuclide={nuclide!r}; the SPECT calibration phantoms write 'Lu-177'")
    lam = math.log(2.0) / nuc.half_life_s
    decay = math.exp(-lam * (acquisition_datetime - assay_datetime).total_seconds())
    c_s = sphere_concentration_bq_per_ml * decay
    c_b = background_concentration_bq_per_ml * decay
    voxel_ml = float(voxel_mm) ** 3 / 1000.0
    all_spheres = np.sum(spheres, axis=0)
    act = voxel_ml * (c_b * (bg - all_spheres) + c_s * all_spheres)
    vols = [math.pi * d**3 / 6.0 / 1000.0 for d in diam]
    v_bg = math.pi * (background_diameter_mm / 2.0) ** 2 * background_length_mm / 1000.0
    total_at_assay = sphere_concentration_bq_per_ml * sum(
        vols
    ) + background_concentration_bq_per_ml * (v_bg - sum(vols))
    common, expected_bq = _acquire(
        folder,
        key="spheres",
        description=f"Sphere phantom {nuclide} {n} spheres",
        activity_vox=act,
        aff=aff,
        nuclide=nuclide,
        activity_bq=total_at_assay,
        assay_datetime=assay_datetime,
        acquisition_datetime=acquisition_datetime,
        cps_per_mbq=cps_per_mbq,
        fwhm_mm=fwhm_mm,
        noise=noise,
        n_projections=n_projections,
        n_heads=n_heads,
        time_per_projection_s=time_per_projection_s,
        seed=seed,
        code_scheme=code_scheme,
    )
    names = tuple(f"sphere_{d:g}mm" for d in diam)
    masks = {nm: Volume(m, aff, "1") for nm, m in zip(names, spheres, strict=True)}
    expected_mean = {
        nm: float(np.sum(expected_bq * m) / np.sum(m)) / voxel_ml
        for nm, m in zip(names, spheres, strict=True)
    }
    log.info("wrote a %d-sphere %s phantom to %s", n, nuclide, folder)
    return SpherePhantomTruth(
        **common,  # type: ignore[arg-type]
        sphere_names=names,
        sphere_diameters_mm=tuple(diam),
        sphere_volumes_ml=tuple(vols),
        sphere_centers_mm=tuple(centres),
        sphere_concentration_bq_per_ml=c_s,
        background_concentration_bq_per_ml=c_b,
        background_diameter_mm=float(background_diameter_mm),
        background_length_mm=float(background_length_mm),
        sphere_masks=masks,
        expected_mean_bq_per_ml=expected_mean,
    )
