"""Multi-time-point post-therapy Lu-177 SPECT/CT of the torso phantom, with ground truth."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.tag import Tag
from pydicom.uid import NuclearMedicineImageStorage
from scipy import ndimage

from dosimetry import Volume

from ._dicom import (
    FileNamer,
    PatientInfo,
    UidFactory,
    _ds,
    da,
    new_dataset,
    pixel_module,
    save,
    tm,
    write_ct_series,
    write_rtstruct,
)
from ._geometry import axial_affine
from ._kinetics import LU177_PSMA617_KINETICS, LU177_PSMA617_LESION, TimeActivityCurve
from ._nuclear import NUCLIDES, code_item, radiopharmaceutical_item
from ._pet import FWHM_TO_SIGMA, _check_folder
from ._raster import RegionRaster
from ._torso import AIR_HU, TorsoPhantom, make_torso

__all__ = ["SpectTimePoint", "SpectTruth", "write_lu177_spect_study", "LU177_PHOTOPEAK_KEV"]

log = logging.getLogger(__name__)

#: Lu-177 photopeak used for imaging: 208.366 keV (yield 0.11 per decay, ICRP-107) with a
#: 20 % window (187.5-229.2 keV).
LU177_PHOTOPEAK_KEV = 208.366
_WINDOW = (LU177_PHOTOPEAK_KEV * 0.9, LU177_PHOTOPEAK_KEV * 1.1)

_AGENTS = {"Lu-177-PSMA-617": "Lu-177 PSMA-617"}
_SPECT_UNITS = ("counts", "BQML")


@dataclass(frozen=True, eq=False)
class SpectTimePoint:
    """One SPECT/CT session of :func:`write_lu177_spect_study` and its truth.

    Attributes
    ----------
    time_h
        Nominal time of the SPECT start after administration (h).
    acquisition_datetime
        NM AcquisitionDate/Time (start of the SPECT acquisition).
    ct_datetime
        CT acquisition time (after the SPECT).
    scan_duration_s
        SPECT acquisition duration (s): NumberOfFramesInRotation x ActualFrameDuration of
        the RotationInformationSequence (the heads acquire simultaneously).
    shift_mm
        Translation (LPS mm) of the anatomy in this session's frame of reference relative
        to the phantom's nominal position; a point ``p`` of this session corresponds to
        ``p - shift_mm + time_points[0].shift_mm`` in the first session.
    frame_of_reference_uid, study_instance_uid
        Shared by this session's CT and NM (and, for the first session, the RTSTRUCT).
    nm_series_instance_uid, ct_series_instance_uid
        Series UIDs.
    nm_paths
        NM file(s): one multi-frame file, or one file per slice in ascending z.
    ct_paths
        CT files in ascending z.
    activity
        True activity (Bq per voxel) at ``acquisition_datetime`` on the SPECT grid, before
        blur and noise.
    expected_activity
        What a correct reader recovers from the NM file (Bq per voxel, blurred, noisy,
        quantised): the activity at the scan start assuming physical decay during the
        scan, ``counts / (calibration x T_eff)`` with ``T_eff = (1 - exp(-lambda T)) /
        lambda`` (``T`` the scan duration; ``T_eff`` is 0.07 % below ``T`` for a 20 min
        Lu-177 scan), or Bq/mL x voxel volume.
    region_activity_bq, organ_activity_bq
        True activity (Bq) at ``acquisition_datetime`` of each exclusive region / inside
        each ROI shape.
    organ_mean_activity_during_scan_bq
        Mean over the scan of the true ROI activity (what counts measure).
    masks
        Inclusive ROI masks on the SPECT grid of this session.
    ct_expected_hu
        CT numbers written (noise included).
    total_counts
        Sum of the reconstructed counts (CountsAccumulated).
    """

    time_h: float
    acquisition_datetime: datetime
    ct_datetime: datetime
    scan_duration_s: float
    shift_mm: tuple[float, float, float]
    frame_of_reference_uid: str
    study_instance_uid: str
    nm_series_instance_uid: str
    ct_series_instance_uid: str
    nm_paths: list[Path]
    ct_paths: list[Path]
    activity: Volume
    expected_activity: Volume
    region_activity_bq: dict[str, float]
    organ_activity_bq: dict[str, float]
    organ_mean_activity_during_scan_bq: dict[str, float]
    masks: dict[str, Volume]
    ct_expected_hu: Volume
    total_counts: int


@dataclass(frozen=True, eq=False)
class SpectTruth:
    """What :func:`write_lu177_spect_study` wrote, and the truth behind it.

    Attributes
    ----------
    folder
        The study folder (all sessions in one flat folder, random file names).
    agent, nuclide, half_life_s
        ``"Lu-177-PSMA-617"``, ``"Lu-177"``, physical half-life (s).
    administration_datetime, administered_activity_bq
        RadiopharmaceuticalStartDateTime; activity administered (Bq). Note that the NM
        files carry RadionuclideTotalDose in MBq (PS3.3 C.8.4.10).
    units
        ``"counts"`` or ``"BQML"``.
    calibration_cps_per_mbq
        System sensitivity used to make counts (cps/MBq); not written to the files.
    fwhm_mm
        Gaussian resolution of the SPECT images (mm).
    n_projections, time_per_projection_s, n_heads
        Acquisition: total projections, seconds per projection, detector heads.
    time_points
        One :class:`SpectTimePoint` per session, in time order.
    rtstruct_path, rtstruct_sop_instance_uid
        RT Structure Set on the first session's CT.
    kinetics
        Region -> :class:`~phantoms._kinetics.TimeActivityCurve` (fractions of the
        administered activity).
    region_tia_bq_s, organ_tia_bq_s
        Time-integrated activity (Bq s, 0 to infinity, analytic) of each exclusive region
        and inside each ROI shape.
    tia
        True TIA (Bq s per voxel) on the SPECT grid of the first session.
    masks_ct
        Inclusive ROI masks on the first session's CT grid (the RTSTRUCT's grid).
    patient, phantom
        Patient attributes and the phantom.
    """

    folder: Path
    agent: str
    nuclide: str
    half_life_s: float
    administration_datetime: datetime
    administered_activity_bq: float
    units: str
    calibration_cps_per_mbq: float
    fwhm_mm: float
    n_projections: int
    time_per_projection_s: float
    n_heads: int
    time_points: list[SpectTimePoint]
    rtstruct_path: Path
    rtstruct_sop_instance_uid: str
    kinetics: dict[str, TimeActivityCurve]
    region_tia_bq_s: dict[str, float]
    organ_tia_bq_s: dict[str, float]
    tia: Volume
    masks_ct: dict[str, Volume]
    patient: PatientInfo
    phantom: TorsoPhantom | None = field(default=None, repr=False)


def _kinetics(
    phantom: TorsoPhantom, overrides: Mapping[str, TimeActivityCurve] | None
) -> dict[str, TimeActivityCurve]:
    out: dict[str, TimeActivityCurve] = dict(LU177_PSMA617_KINETICS)
    for name in phantom.lesion_names:
        out[name] = LU177_PSMA617_LESION.scaled(phantom.analytic_volume_ml(name))
    if overrides:
        out.update(overrides)
    names = phantom.region_names[1:]
    missing = [n for n in names if n not in out]
    if missing:
        raise ValueError(f"no time-activity curve for regions {missing}; give kinetics={{...}}")
    half_life_p = NUCLIDES["Lu-177"].half_life_s
    for n in names:
        if max(out[n].half_lives_s) > half_life_p * (1 + 1e-9):
            raise ValueError(
                f"region {n!r}: an effective half-life {max(out[n].half_lives_s) / 3600:.4g} h "
                f"exceeds the Lu-177 physical half-life {half_life_p / 3600:.4g} h"
            )
    return {n: out[n] for n in names}


def write_lu177_spect_study(
    folder: str | Path,
    times_h: Sequence[float] = (24.0, 48.0, 96.0, 168.0),
    *,
    phantom: TorsoPhantom | None = None,
    seed: int = 0,
    administered_activity_bq: float = 7.4e9,
    agent: str = "Lu-177-PSMA-617",
    administration_datetime: datetime = datetime(2024, 4, 2, 10, 30, 0),
    units: str = "counts",
    calibration_cps_per_mbq: float = 9.6,
    multiframe: bool = True,
    shifts_mm: Sequence[tuple[float, float, float]] | None = None,
    spect_voxel_mm: float = 4.7952,
    spect_matrix: tuple[int, int] = (128, 128),
    n_spect_slices: int | None = None,
    fwhm_mm: float = 11.0,
    noise: bool = True,
    n_projections: int = 120,
    n_heads: int = 2,
    time_per_projection_s: float = 20.0,
    ct_slice_mm: float = 4.0,
    ct_noise_hu: float = 10.0,
    kinetics: Mapping[str, TimeActivityCurve] | None = None,
    patient: PatientInfo | None = None,
    code_scheme: str = "SRT",
    file_extension: str = ".dcm",
) -> SpectTruth:
    """Write a post-therapy Lu-177 SPECT/CT series of sessions of the torso phantom.

    For each time point: a CT (the same anatomy, optionally translated by ``shifts_mm``,
    in its own frame of reference) and a reconstructed SPECT image (NM Image Storage,
    ImageType ``ORIGINAL\\PRIMARY\\RECON TOMO\\EMISSION``). The first session also gets
    an RTSTRUCT on its CT. The SPECT shows the true activity (region time-activity curves,
    :mod:`phantoms._kinetics`) integrated over the scan, times the calibration factor,
    blurred with a Gaussian of ``fwhm_mm``, with Poisson noise.

    NM attributes written (PS3.3 C.8.4): NumberOfFrames with FrameIncrementPointer ->
    SliceVector, NumberOfSlices, PixelSpacing, SliceThickness, SpacingBetweenSlices,
    DetectorInformationSequence (ImagePositionPatient of the first frame,
    ImageOrientationPatient), RotationInformationSequence (NumberOfFramesInRotation,
    ActualFrameDuration in ms per projection, AngularStep, ScanArc), EnergyWindowInformation
    Sequence (20 % window at 208 keV), RadiopharmaceuticalInformationSequence
    (RadionuclideTotalDose in MBq, as the NM Isotope Module specifies), CountsAccumulated.
    Frame ``k`` lies at ``ImagePositionPatient + k * SpacingBetweenSlices * n`` with
    ``n`` the row x column direction cross product (+z).

    ``units="counts"``: uint16 counts (a RescaleSlope appears only if the counts exceed
    65535); the reader needs the calibration factor (not in the files) and the scan
    duration. ``units="BQML"``: Units (0054,1001) BQML with RescaleSlope and a
    RealWorldValueMappingSequence (UCUM Bq/ml), values = activity concentration at the
    scan start (counts corrected for physical decay during the scan; ``DECY`` in
    CorrectedImage).

    Parameters
    ----------
    folder
        New or empty folder (created).
    times_h
        SPECT start times after administration (h), increasing.
    phantom
        Anatomy; default :func:`phantoms.make_torso` with ``seed``.
    seed
        Seed of noise, names, UIDs.
    administered_activity_bq
        Administered Lu-177 activity (Bq).
    agent
        ``"Lu-177-PSMA-617"``.
    administration_datetime
        Start of the administration.
    units
        ``"counts"`` or ``"BQML"``.
    calibration_cps_per_mbq
        SPECT sensitivity (counts per second per MBq in the reconstruction).
    multiframe
        One multi-frame NM file per session (default) or one single-frame file per slice.
    shifts_mm
        Per session LPS translation of the anatomy (mm), for registration tests; default
        no shift.
    spect_voxel_mm
        Cubic SPECT voxel size (mm).
    spect_matrix
        SPECT (rows, columns).
    n_spect_slices
        Number of SPECT slices (centred on the phantom's CT grid); default enough to
        cover the phantom along z with one ``fwhm_mm`` to spare at each end, so that the
        blur loses no counts (91 for the default phantom with head and neck, a two-bed
        acquisition; at least 72).
    fwhm_mm
        SPECT resolution (Gaussian FWHM, mm).
    noise
        Add Poisson noise to the counts.
    n_projections, n_heads, time_per_projection_s
        Acquisition: total projections over 360 degrees, detector heads, seconds per
        projection; the scan lasts ``n_projections / n_heads * time_per_projection_s``.
    ct_slice_mm
        CT slice spacing (mm); in-plane the phantom's truth grid.
    ct_noise_hu
        CT noise (HU, Gaussian sigma).
    kinetics
        Override region curves (fractions of the administered activity).
    patient
        Patient attributes.
    code_scheme
        ``"SRT"`` or ``"SCT"`` codes.
    file_extension
        File name extension.

    Returns
    -------
    SpectTruth

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     truth = write_lu177_spect_study(d, (24.0, 96.0), phantom=make_torso(voxel_mm=4.0))
    >>> [tp.time_h for tp in truth.time_points], len(truth.time_points[0].nm_paths)
    ([24.0, 96.0], 1)
    """
    folder = Path(folder)
    if agent not in _AGENTS:
        raise ValueError(f"agent={agent!r}; valid: {', '.join(_AGENTS)}")
    if units not in _SPECT_UNITS:
        raise ValueError(f"units={units!r}; valid: {', '.join(_SPECT_UNITS)}")
    times = [float(t) for t in times_h]
    if (
        not times
        or any(not (math.isfinite(t) and t > 0) for t in times)
        or any(b <= a for a, b in zip(times, times[1:], strict=False))
    ):
        raise ValueError(f"times_h must be positive and strictly increasing, got {times_h!r}")
    for name, v in (
        ("administered_activity_bq", administered_activity_bq),
        ("calibration_cps_per_mbq", calibration_cps_per_mbq),
        ("fwhm_mm", fwhm_mm),
        ("spect_voxel_mm", spect_voxel_mm),
        ("time_per_projection_s", time_per_projection_s),
        ("ct_slice_mm", ct_slice_mm),
    ):
        if not (math.isfinite(v) and v > 0):
            raise ValueError(f"{name} must be a positive finite number, got {v!r}")
    if n_projections < n_heads or n_projections % n_heads:
        raise ValueError(
            f"n_projections ({n_projections}) must be a positive multiple of n_heads ({n_heads})"
        )
    shifts = [(0.0, 0.0, 0.0)] * len(times) if shifts_mm is None else list(shifts_mm)
    if len(shifts) != len(times):
        raise ValueError(f"shifts_mm needs {len(times)} entries (one per time point)")
    shifts = [(float(s[0]), float(s[1]), float(s[2])) for s in shifts]
    patient = PatientInfo() if patient is None else patient
    phantom = make_torso(seed) if phantom is None else phantom
    tacs = _kinetics(phantom, kinetics)
    nuc = NUCLIDES["Lu-177"]
    _check_folder(folder)

    rng = np.random.default_rng(seed)
    uids = UidFactory("lu177-spect", seed)
    namer = FileNamer(folder, np.random.default_rng([seed, 11]), file_extension)
    a_adm = float(administered_activity_bq)
    views_per_head = n_projections // n_heads
    scan_s = views_per_head * time_per_projection_s
    lam_p = math.log(2.0) / nuc.half_life_s
    # counts / (cf * t_eff) is the activity at the scan start if only physical decay acts
    t_eff = -math.expm1(-lam_p * scan_s) / lam_p
    cf = calibration_cps_per_mbq * 1e-6  # counts per (Bq s)

    # grids
    sp = float(spect_voxel_mm)
    ctr = phantom.ct_hu.center_mm()
    if n_spect_slices is None:
        lo, hi = phantom.bounds_mm()
        half = max(hi[2] - ctr[2], ctr[2] - lo[2]) + float(fwhm_mm)
        n_spect_slices = max(72, int(math.ceil(2.0 * half / sp - 1e-9)))
    if int(n_spect_slices) < 1:
        raise ValueError(f"n_spect_slices must be >= 1, got {n_spect_slices}")
    shape = (int(n_spect_slices), int(spect_matrix[0]), int(spect_matrix[1]))
    spect_aff = axial_affine(
        (sp, sp, sp),
        (
            ctr[0] - (shape[2] - 1) / 2.0 * sp,
            ctr[1] - (shape[1] - 1) / 2.0 * sp,
            ctr[2] - (shape[0] - 1) / 2.0 * sp,
        ),
    )
    voxel_ml = sp**3 / 1000.0
    ph_aff = np.asarray(phantom.ct_hu.affine)
    ph_sp = np.linalg.norm(ph_aff[:3, :3], axis=0)
    n_ct = max(1, int(round(phantom.ct_hu.shape[0] * ph_sp[0] / ct_slice_mm)))
    ct_shape = (n_ct, phantom.ct_hu.shape[1], phantom.ct_hu.shape[2])
    ct_aff = axial_affine(
        (ct_slice_mm, ph_sp[1], ph_sp[2]),
        (ph_aff[0, 3], ph_aff[1, 3], ctr[2] - (n_ct - 1) / 2.0 * ct_slice_mm),
    )
    hu_lut = np.array([AIR_HU, *(s.hu for s in phantom.structures)])

    study_uid = uids("study")
    rp_item = radiopharmaceutical_item(
        nuc,
        radiopharmaceutical=_AGENTS[agent],
        code=None,
        administration=administration_datetime,
        total_dose=a_adm / 1e6,
        code_scheme=code_scheme,
        positron_fraction=False,
    )
    del rp_item.RadionuclideHalfLife  # not an attribute of the NM Isotope Module

    time_points: list[SpectTimePoint] = []
    rt_path: Path | None = None
    rt_uid = ""
    masks_ct: dict[str, Volume] = {}
    raster0: RegionRaster | None = None
    for i, (t_h, shift) in enumerate(zip(times, shifts, strict=True)):
        t0 = administration_datetime + timedelta(seconds=round(t_h * 3600.0))
        t0_s = (t0 - administration_datetime).total_seconds()
        t_ct = t0 + timedelta(seconds=scan_s + 120.0)
        for_uid = uids(f"for-{i}")
        raster = RegionRaster(phantom, spect_aff, shape, sub=2, shift_mm=shift)
        if i == 0:
            raster0 = raster
        region_act = {n: a_adm * float(tacs[n].fraction(t0_s)) for n in tacs}
        region_int = {n: a_adm * tacs[n].integral_s(t0_s, t0_s + scan_s) for n in tacs}
        act_vox, _ = raster.distribute(region_act)
        int_vox, _ = raster.distribute(region_int)
        expected_counts = ndimage.gaussian_filter(
            int_vox * cf, fwhm_mm * FWHM_TO_SIGMA / sp, mode="constant", truncate=4.0
        )
        counts = rng.poisson(expected_counts).astype(np.float64) if noise else expected_counts
        if units == "counts":
            stored_real = counts
            to_bq = 1.0 / (cf * t_eff)
        else:
            stored_real = counts / (cf * t_eff) / voxel_ml
            to_bq = voxel_ml
        mx = float(stored_real.max())
        if units == "counts" and mx <= 65535 and noise:
            slope_str, ints = "1", stored_real.astype(np.int64)
        else:
            slope_str = f"{(mx / 65535.0 if mx > 0 else 1.0):.8g}"
            if mx > 0 and np.rint(mx / float(slope_str)) > 65535:
                slope_str = f"{float(slope_str) * (1 + 1e-7):.8g}"
            ints = np.clip(np.rint(stored_real / float(slope_str)), 0, 65535).astype(np.int64)
        expected = ints * float(slope_str) * to_bq
        fractions = {roi: raster.roi_fractions(roi) for roi in phantom.organ_names}

        def per_roi(amounts: Mapping[str, float], fr=fractions) -> dict[str, float]:
            return {roi: float(sum(f * amounts[r] for r, f in fr[roi].items())) for roi in fr}

        # CT of this session
        labels = phantom.rasterize_labels(ct_aff, ct_shape, shift)
        ct_hu = hu_lut[labels]
        if ct_noise_hu > 0:
            ct_hu = ct_hu + rng.normal(0.0, ct_noise_hu, size=ct_hu.shape)
        ct_stored = np.clip(np.rint(ct_hu + 1024.0), -32768, 32767) - 1024.0
        ct_series_uid, ct_slices = write_ct_series(
            namer,
            uids,
            ct_stored,
            ct_aff,
            key=f"ct-{i}",
            patient=patient,
            study_uid=study_uid,
            study_time=t0 - timedelta(seconds=300),
            series_time=t_ct,
            series_number=100 * (i + 1) + 2,
            frame_of_reference_uid=for_uid,
            rng=rng,
            description=f"CT low dose {ct_slice_mm:g} mm day {t_h / 24:.0f}",
            kvp=130.0,
        )
        nm_series_uid = uids(f"nm-series-{i}")
        nm_paths = _write_nm(
            namer,
            uids,
            ints,
            spect_aff,
            key=f"nm-{i}",
            multiframe=multiframe,
            patient=patient,
            study_uid=study_uid,
            study_time=t0 - timedelta(seconds=300),
            series_uid=nm_series_uid,
            series_number=100 * (i + 1) + 1,
            acq_time=t0,
            frame_of_reference_uid=for_uid,
            rp_item=rp_item,
            units=units,
            slope_str=slope_str,
            views_per_head=views_per_head,
            n_heads=n_heads,
            time_per_projection_s=time_per_projection_s,
            fwhm_mm=fwhm_mm,
            total_counts=int(ints.sum()) if units == "counts" else int(round(counts.sum())),
            code_scheme=code_scheme,
            day=t_h / 24.0,
        )
        if i == 0:
            rt_path, rt_uid = write_rtstruct(
                namer,
                uids,
                phantom.structures,
                ct_slices,
                key="spect-ct-0",
                patient=patient,
                study_uid=study_uid,
                study_time=t0 - timedelta(seconds=300),
                series_time=t_ct + timedelta(seconds=1800),
                series_number=104,
                frame_of_reference_uid=for_uid,
                ct_series_uid=ct_series_uid,
                shift_mm=shift,
            )
            masks_ct = phantom.mask_volumes(
                ct_aff, ct_shape, shift_mm=shift, frame_of_reference_uid=for_uid
            )
        time_points.append(
            SpectTimePoint(
                time_h=t_h,
                acquisition_datetime=t0,
                ct_datetime=t_ct,
                scan_duration_s=float(scan_s),
                shift_mm=shift,
                frame_of_reference_uid=for_uid,
                study_instance_uid=study_uid,
                nm_series_instance_uid=nm_series_uid,
                ct_series_instance_uid=ct_series_uid,
                nm_paths=nm_paths,
                ct_paths=[s.path for s in ct_slices],
                activity=Volume(
                    act_vox,
                    spect_aff,
                    "Bq",
                    frame_of_reference_uid=for_uid,
                    reference_time=t0,
                    provenance={"source": "phantom truth", "agent": agent},
                ),
                expected_activity=Volume(
                    expected,
                    spect_aff,
                    "Bq",
                    frame_of_reference_uid=for_uid,
                    reference_time=t0,
                    provenance={"source": "phantom SPECT as written", "units": units},
                ),
                region_activity_bq=region_act,
                organ_activity_bq=per_roi(region_act),
                organ_mean_activity_during_scan_bq={
                    k: v / scan_s for k, v in per_roi(region_int).items()
                },
                masks=phantom.mask_volumes(
                    spect_aff, shape, shift_mm=shift, frame_of_reference_uid=for_uid
                ),
                ct_expected_hu=Volume(ct_stored, ct_aff, "HU", frame_of_reference_uid=for_uid),
                total_counts=int(round(counts.sum())),
            )
        )

    if raster0 is None or rt_path is None:  # pragma: no cover - times_h is non-empty
        raise RuntimeError("no time point was written")
    region_tia = {n: a_adm * tacs[n].integral_s() for n in tacs}
    tia_vox, _ = raster0.distribute(region_tia)
    organ_tia = {
        roi: float(sum(f * region_tia[r] for r, f in raster0.roi_fractions(roi).items()))
        for roi in phantom.organ_names
    }
    log.info("wrote %d Lu-177 SPECT/CT sessions to %s", len(times), folder)
    return SpectTruth(
        folder=folder,
        agent=agent,
        nuclide=nuc.name,
        half_life_s=nuc.half_life_s,
        administration_datetime=administration_datetime,
        administered_activity_bq=a_adm,
        units=units,
        calibration_cps_per_mbq=float(calibration_cps_per_mbq),
        fwhm_mm=float(fwhm_mm),
        n_projections=int(n_projections),
        time_per_projection_s=float(time_per_projection_s),
        n_heads=int(n_heads),
        time_points=time_points,
        rtstruct_path=rt_path,
        rtstruct_sop_instance_uid=rt_uid,
        kinetics=tacs,
        region_tia_bq_s=region_tia,
        organ_tia_bq_s=organ_tia,
        tia=Volume(
            tia_vox,
            spect_aff,
            "Bq s",
            frame_of_reference_uid=time_points[0].frame_of_reference_uid,
            provenance={"source": "phantom truth (analytic TIA)", "agent": agent},
        ),
        masks_ct=masks_ct,
        patient=patient,
        phantom=phantom,
    )


def _write_nm(
    namer: FileNamer,
    uids: UidFactory,
    ints: np.ndarray,
    affine: np.ndarray,
    *,
    key: str,
    multiframe: bool,
    patient: PatientInfo,
    study_uid: str,
    study_time: datetime,
    series_uid: str,
    series_number: int,
    acq_time: datetime,
    frame_of_reference_uid: str,
    rp_item: Dataset,
    units: str,
    slope_str: str,
    views_per_head: int,
    n_heads: int,
    time_per_projection_s: float,
    fwhm_mm: float,
    total_counts: int,
    code_scheme: str,
    day: float,
) -> list[Path]:
    """Write the reconstructed SPECT as NM Image Storage; return paths (ascending z)."""
    nz = ints.shape[0]
    sp = float(np.linalg.norm(affine[:3, 0]))
    groups = [list(range(nz))] if multiframe else [[k] for k in range(nz)]
    paths: list[Path] = []
    for g, frames in enumerate(groups):
        sop_uid = uids(f"{key}-{g}")
        ds = new_dataset(
            NuclearMedicineImageStorage,
            sop_uid,
            patient=patient,
            study_uid=study_uid,
            study_time=study_time,
            modality="NM",
            series_uid=series_uid,
            series_number=series_number,
            series_time=acq_time,
            series_description=f"SPECT Lu-177 recon day {day:.0f}",
            frame_of_reference_uid=frame_of_reference_uid,
            content_time=acq_time + timedelta(seconds=views_per_head * time_per_projection_s + 600),
        )
        ds.ImageType = ["ORIGINAL", "PRIMARY", "RECON TOMO", "EMISSION"]
        ds.AcquisitionDate = da(acq_time)
        ds.AcquisitionTime = tm(acq_time)
        ds.InstanceNumber = g + 1
        ds.LossyImageCompression = "00"
        ds.BodyPartExamined = "CHEST"
        ds.CountsAccumulated = total_counts
        ds.AcquisitionTerminationCondition = "TIME"
        # DTIM: the phantom simulates no count losses, so there is nothing left to correct
        ds.CorrectedImage = ["UNIF", "COR", "DTIM", "ATTN", "SCAT"] + (
            ["DECY"] if units == "BQML" else []
        )
        ds.NumberOfFrames = len(frames)
        ds.FrameIncrementPointer = Tag(0x0054, 0x0080)
        # a single-frame file is a one-slice RECON TOMO image placed by its position
        ds.SliceVector = list(range(1, len(frames) + 1))
        ds.NumberOfSlices = len(frames)
        ds.PixelSpacing = [_ds(np.linalg.norm(affine[:3, 1])), _ds(np.linalg.norm(affine[:3, 2]))]
        ds.SliceThickness = _ds(sp)
        ds.SpacingBetweenSlices = _ds(sp)
        ds.ReconstructionDiameter = _ds(ints.shape[2] * np.linalg.norm(affine[:3, 2]))
        ds.ConvolutionKernel = f"OSEM GAUSS {fwhm_mm:g}"
        ds.NumberOfEnergyWindows = 1
        window = Dataset()
        rng_item = Dataset()
        rng_item.EnergyWindowLowerLimit = _ds(round(_WINDOW[0], 3))
        rng_item.EnergyWindowUpperLimit = _ds(round(_WINDOW[1], 3))
        window.EnergyWindowRangeSequence = DicomSequence([rng_item])
        window.EnergyWindowName = "Lu177_208keV"
        ds.EnergyWindowInformationSequence = DicomSequence([window])
        ds.RadiopharmaceuticalInformationSequence = DicomSequence([rp_item])
        ds.NumberOfDetectors = 1
        det = Dataset()
        det.CollimatorGridName = "MELP"
        det.CollimatorType = "PARA"
        pos = affine[:3, :3] @ np.array([frames[0], 0.0, 0.0]) + affine[:3, 3]
        det.ImagePositionPatient = [_ds(v) for v in pos]
        det.ImageOrientationPatient = ["1", "0", "0", "0", "1", "0"]
        ds.DetectorInformationSequence = DicomSequence([det])
        ds.NumberOfRotations = 1
        rot = Dataset()
        rot.StartAngle = "0"
        rot.AngularStep = _ds(360.0 / (views_per_head * n_heads))
        rot.RotationDirection = "CW"
        rot.ScanArc = _ds(360.0 / n_heads)
        rot.ActualFrameDuration = int(round(time_per_projection_s * 1000.0))
        rot.NumberOfFramesInRotation = views_per_head
        ds.RotationInformationSequence = DicomSequence([rot])
        orient = code_item(
            *(("F-10450", "SRT") if code_scheme == "SRT" else ("102538003", "SCT")), "recumbent"
        )
        orient.PatientOrientationModifierCodeSequence = DicomSequence(
            [
                code_item(
                    *(("F-10340", "SRT") if code_scheme == "SRT" else ("40199007", "SCT")), "supine"
                )
            ]
        )
        ds.PatientOrientationCodeSequence = DicomSequence([orient])
        ds.PatientGantryRelationshipCodeSequence = DicomSequence(
            [
                code_item(
                    *(("F-10470", "SRT") if code_scheme == "SRT" else ("102540008", "SCT")),
                    "headfirst",
                )
            ]
        )
        pixel_module(ds, ints[frames], signed=False)
        if units == "BQML" or slope_str != "1":
            ds.RescaleIntercept = "0"
            ds.RescaleSlope = slope_str
        if units == "BQML":
            ds.Units = "BQML"
            rwv = Dataset()
            rwv.LUTExplanation = "Activity concentration"
            rwv.LUTLabel = "BQML"
            rwv.MeasurementUnitsCodeSequence = DicomSequence(
                [code_item("Bq/ml", "UCUM", "Becquerels/milliliter")]
            )
            rwv.RealWorldValueFirstValueMapped = 0
            rwv.RealWorldValueLastValueMapped = 65535
            rwv.RealWorldValueIntercept = 0.0
            rwv.RealWorldValueSlope = float(slope_str)
            ds.RealWorldValueMappingSequence = DicomSequence([rwv])
        path = namer()
        save(ds, path)
        paths.append(path)
    return paths
