"""A PET/CT study of the torso phantom written as DICOM, with its ground truth."""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import UID, PositronEmissionTomographyImageStorage
from scipy import ndimage

from dosimetry import Volume
from dosimetry.errors import OutputError

from ._dicom import (
    FileNamer,
    PatientInfo,
    SliceRef,
    UidFactory,
    _ds,
    da,
    image_plane,
    new_dataset,
    pixel_module,
    save,
    slice_positions,
    tm,
    write_ct_series,
    write_rtstruct,
)
from ._geometry import axial_affine
from ._nuclear import NUCLIDES, TRACERS, code_item, radiopharmaceutical_item
from ._raster import RegionRaster
from ._torso import TorsoPhantom, make_torso

__all__ = ["StudyTruth", "write_pet_ct_study", "PET_DEFECTS", "FWHM_TO_SIGMA"]

log = logging.getLogger(__name__)

#: Gaussian sigma = FWHM / (2 sqrt(2 ln 2)).
FWHM_TO_SIGMA = 1.0 / (2.0 * math.sqrt(2.0 * math.log(2.0)))

#: Private creator and elements of Philips PET images in Units CNTS: (7053,1000) SUV
#: scale factor and (7053,1009) activity concentration scale factor; Bq/mL =
#: (stored value x RescaleSlope + RescaleIntercept) x (7053,1009), SUVbw = (...) x (7053,1000).
PHILIPS_PRIVATE_CREATOR = "Philips PET Private Group"

#: Defects that :func:`write_pet_ct_study` can put into a study for negative tests.
PET_DEFECTS: dict[str, str] = {
    "ct_missing_slice": "one CT slice (index n//2 + 1) is not written",
    "pet_missing_slice": "one PET slice (index n//2 + 1) is not written",
    "ct_nonuniform_spacing": "CT slices of the upper half are moved up by half a spacing",
    "pet_nonuniform_spacing": "PET slices of the upper half are moved up by half a spacing",
    "missing_patient_weight": "PatientWeight and PatientSize are left out of every file",
    "rtstruct_other_frame_of_reference": "the RTSTRUCT refers to another FrameOfReferenceUID",
}

_UNITS = ("BQML", "CNTS", "GML")
_DECAY = ("START", "ADMIN", "NONE")


@dataclass(frozen=True, eq=False)
class StudyTruth:
    """What :func:`write_pet_ct_study` wrote, and the truth behind it.

    All activities are physical (not decay corrected) at the acquisition start
    (``acquisition_datetime`` = PET SeriesDate/SeriesTime) unless the name says otherwise.

    Attributes
    ----------
    folder
        The study folder.
    ct_paths, pet_paths
        Written CT / PET files in ascending z (file names are random).
    rtstruct_path
        The RT Structure Set file.
    study_instance_uid, frame_of_reference_uid
        Shared by all three series.
    ct_series_instance_uid, pet_series_instance_uid, rtstruct_sop_instance_uid
        Series / instance UIDs.
    ct_sop_instance_uids, pet_sop_instance_uids
        SOP instance UIDs in ascending z.
    tracer, nuclide
        E.g. ``"Ga-68-PSMA-11"`` and ``"Ga-68"``.
    half_life_s, positron_fraction
        Written RadionuclideHalfLife and RadionuclidePositronFraction.
    injection_datetime
        RadiopharmaceuticalStartDateTime.
    injected_activity_bq
        RadionuclideTotalDose (Bq at injection).
    acquisition_datetime
        PET series start = AcquisitionDateTime of the first bed = decay-correction
        reference of ``DecayCorrection START``.
    ct_datetime
        CT acquisition time.
    frame_duration_s
        ActualFrameDuration of each bed (s).
    bed_start_offsets_s
        Start of each bed after ``acquisition_datetime`` (s), beds ordered by ascending z.
    decay_factors
        DecayFactor (0054,1321) written for each bed (``None`` when DecayCorrection NONE).
    frame_reference_times_ms
        FrameReferenceTime (0054,1300) of each bed (ms after SeriesTime).
    pet_units, decay_correction
        Units (0054,1001) and DecayCorrection (0054,1102) written.
    activity_scale_bqml_per_cnts
        Philips (7053,1009) factor written when ``pet_units == "CNTS"``, else ``None``.
    patient
        Patient attributes written.
    suv
        Assumed SUV (body weight, g/mL) of each exclusive region.
    uptake_sources
        Region -> where its SUV comes from (the citation of :data:`phantoms.TRACERS`, a
        text starting with "not sourced", or "user override (suv=...)").
    region_activity_bq
        Activity (Bq) of each exclusive region of the phantom (sums to
        ``total_activity_in_phantom_bq``).
    organ_activity_bq
        Activity (Bq) inside each ROI's whole analytic shape (e.g. ``liver`` includes the
        liver lesion).
    organ_activity_at_injection_bq
        ``organ_activity_bq`` decay-corrected to the injection time.
    total_activity_in_phantom_bq
        Activity (Bq) in the whole phantom.
    fraction_in_phantom
        ``total_activity_in_phantom_bq`` / injected activity decayed to the acquisition.
    activity_outside_pet_fov_bq
        Part of the phantom's activity outside the PET field of view.
    activity_concentration
        True activity concentration (Bq/mL) on the PET grid before blur and noise;
        partial-volume voxels carry the right fraction.
    pet_expected_bqml
        The PET image a correct reader recovers from the files: Bq/mL at
        ``acquisition_datetime``, after rescale, unit conversion and undoing the
        decay correction (blurred, noisy, quantised).
    ct_expected_hu
        The CT numbers written (noise included, rounded), on the CT grid.
    density
        Mass density (g/mL) on the CT grid (phantom truth).
    masks_pet, masks_ct
        Inclusive ROI masks (unit ``"1"``) on the PET and CT grids.
    fwhm_mm
        Gaussian resolution applied (mm).
    defects
        Defects written on purpose (keys of :data:`PET_DEFECTS`).
    phantom
        The phantom.
    """

    folder: Path
    ct_paths: list[Path]
    pet_paths: list[Path]
    rtstruct_path: Path
    study_instance_uid: str
    frame_of_reference_uid: str
    ct_series_instance_uid: str
    pet_series_instance_uid: str
    rtstruct_sop_instance_uid: str
    ct_sop_instance_uids: list[str]
    pet_sop_instance_uids: list[str]
    tracer: str
    nuclide: str
    half_life_s: float
    positron_fraction: float
    injection_datetime: datetime
    injected_activity_bq: float
    acquisition_datetime: datetime
    ct_datetime: datetime
    frame_duration_s: float
    bed_start_offsets_s: list[float]
    decay_factors: list[float | None]
    frame_reference_times_ms: list[float]
    pet_units: str
    decay_correction: str
    activity_scale_bqml_per_cnts: float | None
    patient: PatientInfo
    suv: dict[str, float]
    uptake_sources: dict[str, str]
    region_activity_bq: dict[str, float]
    organ_activity_bq: dict[str, float]
    organ_activity_at_injection_bq: dict[str, float]
    total_activity_in_phantom_bq: float
    fraction_in_phantom: float
    activity_outside_pet_fov_bq: float
    activity_concentration: Volume
    pet_expected_bqml: Volume
    ct_expected_hu: Volume
    density: Volume
    masks_pet: dict[str, Volume]
    masks_ct: dict[str, Volume]
    fwhm_mm: float
    defects: tuple[str, ...] = ()
    phantom: TorsoPhantom | None = field(default=None, repr=False)

    @property
    def uptake_time_s(self) -> float:
        """Time from injection to acquisition start (s)."""
        return (self.acquisition_datetime - self.injection_datetime).total_seconds()

    @property
    def organ_fraction_injected(self) -> dict[str, float]:
        """Fraction of the injected activity in each ROI at the PET time, decay-corrected.

        ``organ_activity_at_injection_bq / injected_activity_bq`` (the biological
        fraction, "%IA / 100"); e.g. the kidneys of the default Ga-68-PSMA-11 study hold
        about 0.074 each.
        """
        a0 = self.injected_activity_bq
        return {k: v / a0 for k, v in self.organ_activity_at_injection_bq.items()}


def _check_folder(folder: Path) -> None:
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"folder={str(folder)!r} exists and is not a directory")
    if folder.exists() and any(folder.iterdir()):
        raise OutputError(
            f"folder={str(folder)!r} is not empty; write each phantom study into a new or "
            "empty folder so that no stale files mix with it"
        )
    folder.mkdir(parents=True, exist_ok=True)


def _check_defects(defects: Iterable[str], allowed: Mapping[str, str]) -> tuple[str, ...]:
    out = tuple(sorted(set(defects)))
    bad = [d for d in out if d not in allowed]
    if bad:
        raise ValueError(f"unknown defects {bad}; valid: {', '.join(allowed)}")
    return out


def _region_suv(
    phantom: TorsoPhantom, tracer_name: str, suv: Mapping[str, float] | None
) -> tuple[dict[str, float], dict[str, str]]:
    tr = TRACERS[tracer_name]
    out = dict(tr.suv)
    sources = {k: u.source for k, u in tr.uptake.items()}
    lesions = tr.lesion_uptake
    for i, name in enumerate(phantom.lesion_names):
        if lesions:
            u = lesions[min(i, len(lesions) - 1)]
            out[name], sources[name] = u.suv, u.source
    if suv:
        for k, v in suv.items():
            out[k] = float(v)
            sources[k] = f"user override (suv={float(v):g})"
    names = phantom.region_names[1:]
    missing = [n for n in names if n not in out]
    if missing:
        raise ValueError(f"no SUV for regions {missing}; give them in suv={{...}}")
    bad = {k: v for k, v in out.items() if not (math.isfinite(v) and v >= 0)}
    if bad:
        raise ValueError(f"SUV values must be finite and >= 0, got {bad}")
    return {n: out[n] for n in names}, {n: sources[n] for n in names}


def write_pet_ct_study(
    folder: str | Path,
    phantom: TorsoPhantom | None = None,
    *,
    seed: int = 0,
    tracer: str = "Ga-68-PSMA-11",
    injected_activity_bq: float | None = None,
    uptake_time_s: float = 3600.0,
    injection_datetime: datetime = datetime(2024, 3, 5, 9, 12, 30),
    frame_duration_s: float = 600.0,
    n_beds: int = 1,
    pet_units: str = "BQML",
    decay_correction: str = "START",
    pet_voxel_mm: tuple[float, float, float] = (4.0, 4.0, 4.0),
    pet_matrix: tuple[int, int] = (96, 96),
    fwhm_mm: float = 5.5,
    noise: bool = True,
    detected_fraction: float = 5e-4,
    ct_noise_hu: float = 10.0,
    patient: PatientInfo | None = None,
    suv: Mapping[str, float] | None = None,
    omit_radiopharmaceutical_sequence: bool = False,
    code_scheme: str = "SRT",
    pet_pixel_signed: bool = True,
    defects: Iterable[str] = (),
    file_extension: str = ".dcm",
) -> StudyTruth:
    """Write a realistic PET/CT study (CT, PET, RTSTRUCT) of the torso phantom.

    The PET shows the assumed uptake (a cited SUV per region, see
    :data:`phantoms._nuclear.TRACERS`) at ``uptake_time_s`` after injection, blurred with
    a Gaussian of ``fwhm_mm`` and with Poisson noise, on a grid coarser than the CT and
    in the same frame of reference. The distribution is static during the scan (physical
    decay only).

    What is written, per DICOM PS3.3:

    * CT Image Storage, one file per slice: int16 ``HU + 1024`` with RescaleIntercept
      -1024; image plane attributes; patient weight and size.
    * Positron Emission Tomography Image Storage, one file per slice: per-slice
      RescaleSlope (RescaleIntercept 0), Units, DecayCorrection, CorrectedImage,
      DecayFactor, FrameReferenceTime, ActualFrameDuration, Series/Acquisition
      date and time, RadiopharmaceuticalInformationSequence (radionuclide code, half-life,
      total dose in Bq, start date-time, positron fraction).
    * RT Structure Set Storage: one ROI per organ and lesion, CLOSED_PLANAR polygons on
      every CT slice plane that cuts the shape, referencing the CT instances.

    File names are random hexadecimal strings and InstanceNumber is a random
    permutation: readers must order slices by ImagePositionPatient along the normal.

    Decay-correction bookkeeping (C.8.9.1.1.?, C.8.9.4.1.5). With ``T`` the frame
    duration, ``lambda = ln 2 / T1/2``, ``t_b`` the start of the slice's bed after the
    series time, ``f = lambda T / (1 - exp(-lambda T))`` and ``C`` the true activity
    concentration at the series start:

    * FrameReferenceTime = ``t_b + ln(f) / lambda`` (time of the average activity,
      PS3.3 C.8.9.4.1.5 example 2), in ms after SeriesTime;
    * ``START``: stored ``C``; DecayFactor ``f exp(lambda t_b)``;
    * ``ADMIN``: stored ``C exp(lambda * uptake)``; DecayFactor ``f exp(lambda (t_b + uptake))``;
    * ``NONE``: stored ``C exp(-lambda t_b) / f`` (the frame-average concentration);
      no DecayFactor, no ``DECY`` in CorrectedImage.

    so that in every mode ``stored / DecayFactor`` is the frame-average concentration,
    and ``stored * exp(lambda * FrameReferenceTime)`` recovers ``C`` for ``NONE``.

    Parameters
    ----------
    folder
        New or empty folder to write into (created).
    phantom
        The anatomy; default :func:`phantoms.make_torso` with ``seed``. The CT is written
        on its truth grid.
    seed
        Seed of everything random: noise, file names, instance numbers, UIDs.
    tracer
        One of ``"Ga-68-PSMA-11"``, ``"F-18-PSMA-1007"``, ``"F-18-DCFPyL"``,
        ``"F-18-FDG"``, ``"Ga-68-DOTATATE"`` (keys of :data:`phantoms.TRACERS`).
    injected_activity_bq
        Activity at injection (Bq); default the tracer's ``default_activity_bq`` (150 MBq
        Ga-68-PSMA-11, 185 MBq Ga-68-DOTATATE, 250 MBq F-18-PSMA-1007 and FDG, 370 MBq
        F-18-DCFPyL).
    uptake_time_s
        Injection to PET series start (s).
    injection_datetime
        Radiopharmaceutical start date-time (local time, no time zone).
    frame_duration_s
        ActualFrameDuration of each bed (s).
    n_beds
        Number of bed positions (contiguous blocks of slices, ascending z, each acquired
        after the previous one, so AcquisitionTime differs between beds).
    pet_units
        ``"BQML"`` (Bq/mL), ``"CNTS"`` (Philips style: counts with the private
        activity-concentration scale factor (7053,1009) and SUV scale factor (7053,1000)),
        or ``"GML"`` (SUV body weight, g/mL; needs START or ADMIN).
    decay_correction
        ``"START"``, ``"ADMIN"`` or ``"NONE"``.
    pet_voxel_mm
        PET (slice, row, column) spacing (mm).
    pet_matrix
        PET (rows, columns).
    fwhm_mm
        Resolution (Gaussian FWHM, mm) of the PET image.
    noise
        Add Poisson noise (``False``: the blurred image exactly).
    detected_fraction
        Counts per decay in a voxel's own reconstruction (sets the noise level: 5e-4
        gives ~10-15 % voxel-to-voxel noise in the liver at the defaults).
    ct_noise_hu
        Standard deviation of the Gaussian CT noise (HU); 0 for exact CT numbers.
    patient
        Patient attributes (default 80 kg, 1.78 m).
    suv
        Override the assumed SUV of some regions, e.g. ``{"liver": 8.0}``.
    omit_radiopharmaceutical_sequence
        Leave RadiopharmaceuticalInformationSequence out of the PET files.
    code_scheme
        ``"SRT"`` (legacy codes, e.g. C-131A3, as most scanners write) or ``"SCT"``.
    pet_pixel_signed
        int16 (``True``) or uint16 PET pixels.
    defects
        Deliberate defects for negative tests; keys of :data:`PET_DEFECTS`.
    file_extension
        Extension of the file names (``""`` for none).

    Returns
    -------
    StudyTruth
        Paths, UIDs, times, activities and truth volumes.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     truth = write_pet_ct_study(d, make_torso(voxel_mm=4.0), seed=1)
    ...     n_ct, n_pet = len(truth.ct_paths), len(truth.pet_paths)
    >>> n_ct, n_pet, truth.pet_units, truth.decay_correction
    (103, 103, 'BQML', 'START')
    """
    folder = Path(folder)
    if tracer not in TRACERS:
        raise ValueError(f"tracer={tracer!r} is not known; valid: {', '.join(TRACERS)}")
    if pet_units not in _UNITS:
        raise ValueError(f"pet_units={pet_units!r}; valid: {', '.join(_UNITS)}")
    if decay_correction not in _DECAY:
        raise ValueError(f"decay_correction={decay_correction!r}; valid: {', '.join(_DECAY)}")
    if pet_units == "GML" and decay_correction == "NONE":
        raise ValueError(
            "pet_units='GML' (SUV) needs decay_correction 'START' or 'ADMIN': SUV is "
            "defined for decay-corrected images"
        )
    for name, v in (
        ("uptake_time_s", uptake_time_s),
        ("frame_duration_s", frame_duration_s),
        ("fwhm_mm", fwhm_mm),
        ("detected_fraction", detected_fraction),
    ):
        if not (math.isfinite(v) and v > 0):
            raise ValueError(f"{name} must be a positive finite number, got {v!r}")
    if not (math.isfinite(ct_noise_hu) and ct_noise_hu >= 0):
        raise ValueError(f"ct_noise_hu must be >= 0, got {ct_noise_hu!r}")
    if n_beds < 1:
        raise ValueError(f"n_beds must be >= 1, got {n_beds}")
    defects_t = _check_defects(defects, PET_DEFECTS)
    tr = TRACERS[tracer]
    nuc = NUCLIDES[tr.nuclide]
    a_inj = float(tr.default_activity_bq if injected_activity_bq is None else injected_activity_bq)
    if not (math.isfinite(a_inj) and a_inj > 0):
        raise ValueError(f"injected_activity_bq must be > 0, got {injected_activity_bq!r}")
    patient = PatientInfo() if patient is None else patient
    phantom = make_torso(seed) if phantom is None else phantom
    _check_folder(folder)

    rng = np.random.default_rng(seed)
    uids = UidFactory("pet-ct", seed)
    namer = FileNamer(folder, np.random.default_rng([seed, 7]), file_extension)
    lam = math.log(2.0) / nuc.half_life_s

    t_inj = injection_datetime
    t_pet = t_inj + timedelta(seconds=uptake_time_s)
    t_ct = t_pet - timedelta(seconds=300)
    t_study = t_ct - timedelta(seconds=120)
    a_start = a_inj * math.exp(-lam * uptake_time_s)
    weight_g = patient.weight_kg * 1000.0

    # --- grids -------------------------------------------------------------------------
    ct_aff = np.asarray(phantom.ct_hu.affine)
    ct_shape = phantom.ct_hu.shape
    ct_center = phantom.ct_hu.center_mm()
    sp = tuple(float(v) for v in pet_voxel_mm)
    nz = max(1, int(round(ct_shape[0] * np.linalg.norm(ct_aff[:3, 0]) / sp[0])))
    pet_shape = (nz, int(pet_matrix[0]), int(pet_matrix[1]))
    origin = (
        ct_center[0] - (pet_shape[2] - 1) / 2.0 * sp[2],
        ct_center[1] - (pet_shape[1] - 1) / 2.0 * sp[1],
        ct_center[2] - (pet_shape[0] - 1) / 2.0 * sp[0],
    )
    pet_aff = axial_affine((sp[0], sp[1], sp[2]), origin)
    voxel_ml = float(np.prod(sp) / 1000.0)

    # --- truth activity ----------------------------------------------------------------
    suv_r, suv_sources = _region_suv(phantom, tracer, suv)
    raster = RegionRaster(phantom, pet_aff, pet_shape, sub=2)
    vol_ml = raster.region_volume_ml()
    region_act = {n: suv_r[n] * a_start / weight_g * vol_ml[n] for n in suv_r}
    act_vox, outside = raster.distribute(region_act)
    conc_true = act_vox / voxel_ml
    organ_act = {
        roi: float(sum(f * region_act[r] for r, f in raster.roi_fractions(roi).items()))
        for roi in phantom.organ_names
    }
    total = float(sum(region_act.values()))

    # --- imaging: blur, beds, noise ------------------------------------------------------
    sigma = [fwhm_mm * FWHM_TO_SIGMA / s for s in sp]
    blurred = ndimage.gaussian_filter(conc_true, sigma, mode="nearest", truncate=4.0)
    bed_of_slice = (np.arange(nz) * n_beds) // nz
    bed_offsets = [b * frame_duration_s for b in range(n_beds)]
    f_frame = lam * frame_duration_s / -math.expm1(-lam * frame_duration_s)
    t_eff = -math.expm1(-lam * frame_duration_s) / lam
    t_ave = math.log(f_frame) / lam
    decay_bed = np.exp(-lam * np.asarray(bed_offsets))[bed_of_slice]
    if noise:
        scale = voxel_ml * detected_fraction * t_eff * decay_bed[:, None, None]
        counts = rng.poisson(np.clip(blurred, 0.0, None) * scale)
        c_start = counts / scale
    else:
        c_start = blurred

    # stored real values (before the unit conversion) and per-bed tags
    if decay_correction == "START":
        corr = np.ones(nz)
        dfac: list[float | None] = [f_frame * math.exp(lam * t) for t in bed_offsets]
    elif decay_correction == "ADMIN":
        corr = np.full(nz, math.exp(lam * uptake_time_s))
        dfac = [f_frame * math.exp(lam * (t + uptake_time_s)) for t in bed_offsets]
    else:
        corr = decay_bed / f_frame
        dfac = [None] * n_beds
    frt_ms = [1000.0 * (t + t_ave) for t in bed_offsets]
    dfac_str = [None if d is None else f"{d:.10g}" for d in dfac]
    frt_str = [f"{v:.6f}".rstrip("0").rstrip(".") for v in frt_ms]
    value_bqml = c_start * corr[:, None, None]

    weight_str = _ds(patient.weight_kg)
    a_ref = a_inj if decay_correction == "ADMIN" else a_start
    k_act = None
    k_act_str = ""
    if pet_units == "BQML":
        stored_real = value_bqml
        to_bqml = 1.0
    elif pet_units == "CNTS":
        k_act_str = f"{1.0 / (voxel_ml * detected_fraction * frame_duration_s):.10g}"
        k_act = float(k_act_str)
        stored_real = value_bqml / k_act
        to_bqml = k_act
    else:
        to_bqml = a_ref / (float(weight_str) * 1000.0)
        stored_real = value_bqml / to_bqml
    max_int = 32767 if pet_pixel_signed else 65535
    ints = np.zeros(pet_shape, dtype=np.int32)
    slopes: list[str] = []
    for k in range(nz):
        mx = float(stored_real[k].max())
        s_str = f"{(mx / max_int if mx > 0 else 1.0):.8g}"
        s_val = float(s_str)
        if np.rint(mx / s_val) > max_int:  # rounding of the slope string
            s_str = f"{s_val * (1 + 1e-7):.8g}"
            s_val = float(s_str)
        ints[k] = np.clip(np.rint(stored_real[k] / s_val), 0, max_int)
        slopes.append(s_str)
    slope_vals = np.array([float(s) for s in slopes])
    # what a reader must recover: Bq/mL at the series start
    undo = {
        "START": np.ones(nz),
        "ADMIN": np.full(nz, math.exp(-lam * uptake_time_s)),
        "NONE": np.exp(lam * np.asarray([float(frt_str[b]) / 1000.0 for b in bed_of_slice])),
    }[decay_correction]
    expected = ints * slope_vals[:, None, None] * to_bqml * undo[:, None, None]

    # --- CT ------------------------------------------------------------------------------
    ct_hu = phantom.ct_hu.array.astype(np.float64)
    if ct_noise_hu > 0:
        ct_hu = ct_hu + rng.normal(0.0, ct_noise_hu, size=ct_hu.shape)
    ct_stored = np.clip(np.rint(ct_hu + 1024.0), -32768, 32767)
    study_uid = uids("study")
    for_uid = uids("frame-of-reference")
    include_weight = "missing_patient_weight" not in defects_t
    ct_series_uid, ct_slices = write_ct_series(
        namer,
        uids,
        ct_stored - 1024.0,
        ct_aff,
        key="ct",
        patient=patient,
        study_uid=study_uid,
        study_time=t_study,
        series_time=t_ct,
        series_number=2,
        frame_of_reference_uid=for_uid,
        rng=rng,
        drop_slice="ct_missing_slice" in defects_t,
        nonuniform_gap_mm=(
            0.5 * float(np.linalg.norm(ct_aff[:3, 0]))
            if "ct_nonuniform_spacing" in defects_t
            else 0.0
        ),
        include_weight=include_weight,
    )

    # --- PET -----------------------------------------------------------------------------
    pet_series_uid = uids("pet-series")
    z_pet = slice_positions(
        pet_aff, nz, 0.5 * sp[0] if "pet_nonuniform_spacing" in defects_t else 0.0
    )
    dropped = nz // 2 + 1 if "pet_missing_slice" in defects_t else -1
    instance_numbers = rng.permutation(nz) + 1
    image_index = nz - np.arange(nz)  # 1 = most superior slice
    rp_seq = None
    if not omit_radiopharmaceutical_sequence:
        rp_seq = DicomSequence(
            [
                radiopharmaceutical_item(
                    nuc,
                    radiopharmaceutical=tr.radiopharmaceutical,
                    code=tr.code,
                    administration=t_inj,
                    total_dose=a_inj,
                    code_scheme=code_scheme,
                    positron_fraction=True,
                )
            ]
        )
    scheme_codes = {
        "SRT": (("F-10450", "SRT"), ("F-10340", "SRT"), ("F-10470", "SRT")),
        "SCT": (("102538003", "SCT"), ("40199007", "SCT"), ("102540008", "SCT")),
    }[code_scheme]
    ds = new_dataset(
        PositronEmissionTomographyImageStorage,
        uids("pet-0"),
        patient=patient,
        study_uid=study_uid,
        study_time=t_study,
        modality="PT",
        series_uid=pet_series_uid,
        series_number=3,
        series_time=t_pet,
        series_description=f"PET {tr.radiopharmaceutical} AC",
        frame_of_reference_uid=for_uid,
        content_time=t_pet + timedelta(seconds=n_beds * frame_duration_s + 120),
        include_weight=include_weight,
    )
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    ds.BodyPartExamined = "CHEST"
    ds.SeriesType = ["WHOLE BODY", "IMAGE"]
    ds.Units = pet_units
    ds.CountsSource = "EMISSION"
    ds.NumberOfSlices = nz
    ds.CorrectedImage = ["NORM", "DTIM", "ATTN", "SCAT", "RAN"] + (
        ["DECY"] if decay_correction != "NONE" else []
    )
    ds.RandomsCorrectionMethod = "DLYD"
    ds.AttenuationCorrectionMethod = "CTAC"
    ds.ScatterCorrectionMethod = "MODEL"
    ds.DecayCorrection = decay_correction
    ds.ReconstructionMethod = "OSEM"
    ds.ReconstructionDiameter = _ds(pet_shape[2] * sp[2])
    ds.ConvolutionKernel = f"GAUSSIAN {fwhm_mm:g} MM"
    ds.CollimatorType = "NONE"
    ds.AxialAcceptance = "27"
    ds.ActualFrameDuration = int(round(frame_duration_s * 1000.0))
    if rp_seq is not None:
        ds.RadiopharmaceuticalInformationSequence = rp_seq
    orient = code_item(scheme_codes[0][0], scheme_codes[0][1], "recumbent")
    orient.PatientOrientationModifierCodeSequence = DicomSequence(
        [code_item(scheme_codes[1][0], scheme_codes[1][1], "supine")]
    )
    ds.PatientOrientationCodeSequence = DicomSequence([orient])
    ds.PatientGantryRelationshipCodeSequence = DicomSequence(
        [code_item(scheme_codes[2][0], scheme_codes[2][1], "headfirst")]
    )
    ds.RescaleIntercept = "0"
    if pet_units == "CNTS":
        block = ds.private_block(0x7053, PHILIPS_PRIVATE_CREATOR, create=True)
        block.add_new(0x00, "DS", f"{k_act_to_suv(k_act, weight_str, a_ref):.10g}")
        block.add_new(0x09, "DS", k_act_str)
    pet_slices: list[SliceRef] = []
    for k in range(nz):
        if k == dropped:
            continue
        b = int(bed_of_slice[k])
        t_acq = t_pet + timedelta(seconds=bed_offsets[b])
        sop_uid = str(ds.SOPInstanceUID) if k == 0 else uids(f"pet-{k}")
        ds.SOPInstanceUID = sop_uid
        ds.file_meta.MediaStorageSOPInstanceUID = UID(sop_uid)
        ds.AcquisitionDate = da(t_acq)
        ds.AcquisitionTime = tm(t_acq)
        ds.InstanceNumber = int(instance_numbers[k])
        ds.ImageIndex = int(image_index[k])
        ds.FrameReferenceTime = frt_str[b]
        if dfac_str[b] is not None:
            ds.DecayFactor = dfac_str[b]
        image_plane(ds, pet_aff, k, float(z_pet[k]), sp[0])
        pixel_module(ds, ints[k], signed=pet_pixel_signed)
        ds.RescaleSlope = slopes[k]
        path = namer()
        save(ds, path)
        pet_slices.append(
            SliceRef(path, sop_uid, PositronEmissionTomographyImageStorage, float(z_pet[k]))
        )
    pet_slices.sort(key=lambda s: s.z_mm)

    # --- RTSTRUCT --------------------------------------------------------------------------
    rt_for = (
        uids("other-frame-of-reference")
        if "rtstruct_other_frame_of_reference" in defects_t
        else for_uid
    )
    rt_path, rt_uid = write_rtstruct(
        namer,
        uids,
        phantom.structures,
        ct_slices,
        key="pet-ct",
        patient=patient,
        study_uid=study_uid,
        study_time=t_study,
        series_time=t_pet + timedelta(seconds=3600),
        series_number=4,
        frame_of_reference_uid=rt_for,
        ct_series_uid=ct_series_uid,
        include_weight=include_weight,
    )

    # --- truth -----------------------------------------------------------------------------
    decay_to_inj = math.exp(lam * uptake_time_s)
    truth = StudyTruth(
        folder=folder,
        ct_paths=[s.path for s in ct_slices],
        pet_paths=[s.path for s in pet_slices],
        rtstruct_path=rt_path,
        study_instance_uid=study_uid,
        frame_of_reference_uid=for_uid,
        ct_series_instance_uid=ct_series_uid,
        pet_series_instance_uid=pet_series_uid,
        rtstruct_sop_instance_uid=rt_uid,
        ct_sop_instance_uids=[s.sop_instance_uid for s in ct_slices],
        pet_sop_instance_uids=[s.sop_instance_uid for s in pet_slices],
        tracer=tracer,
        nuclide=nuc.name,
        half_life_s=nuc.half_life_s,
        positron_fraction=nuc.positron_fraction,
        injection_datetime=t_inj,
        injected_activity_bq=a_inj,
        acquisition_datetime=t_pet,
        ct_datetime=t_ct,
        frame_duration_s=float(frame_duration_s),
        bed_start_offsets_s=[float(t) for t in bed_offsets],
        decay_factors=[None if d is None else float(d) for d in dfac_str],
        frame_reference_times_ms=[float(v) for v in frt_str],
        pet_units=pet_units,
        decay_correction=decay_correction,
        activity_scale_bqml_per_cnts=k_act,
        patient=patient,
        suv=suv_r,
        uptake_sources=suv_sources,
        region_activity_bq=region_act,
        organ_activity_bq=organ_act,
        organ_activity_at_injection_bq={k: v * decay_to_inj for k, v in organ_act.items()},
        total_activity_in_phantom_bq=total,
        fraction_in_phantom=total / a_start,
        activity_outside_pet_fov_bq=float(outside),
        activity_concentration=Volume(
            conc_true,
            pet_aff,
            "Bq/mL",
            frame_of_reference_uid=for_uid,
            reference_time=t_pet,
            provenance={"source": "phantom truth", "tracer": tracer},
        ),
        pet_expected_bqml=Volume(
            expected,
            pet_aff,
            "Bq/mL",
            frame_of_reference_uid=for_uid,
            reference_time=t_pet,
            provenance={"source": "phantom PET as written", "tracer": tracer},
        ),
        ct_expected_hu=Volume(ct_stored - 1024.0, ct_aff, "HU", frame_of_reference_uid=for_uid),
        density=phantom.density.with_array(phantom.density.array, frame_of_reference_uid=for_uid),
        masks_pet=phantom.mask_volumes(pet_aff, pet_shape, frame_of_reference_uid=for_uid),
        masks_ct={
            n: phantom.masks[n].with_array(phantom.masks[n].array, frame_of_reference_uid=for_uid)
            for n in phantom.organ_names
        },
        fwhm_mm=float(fwhm_mm),
        defects=defects_t,
        phantom=phantom,
    )
    log.info(
        "wrote PET/CT phantom study to %s: %d CT, %d PET slices, %.3g Bq in the phantom",
        folder,
        len(ct_slices),
        len(pet_slices),
        total,
    )
    return truth


def k_act_to_suv(k_act: float | None, weight_str: str, a_ref_bq: float) -> float:
    """Philips SUV scale factor (7053,1000) from the activity scale factor (7053,1009).

    SUVbw = Bq/mL x weight (g) / activity (Bq) at the decay-correction reference.
    """
    if k_act is None:
        raise ValueError("k_act is required")
    return k_act * float(weight_str) * 1000.0 / a_ref_bq
