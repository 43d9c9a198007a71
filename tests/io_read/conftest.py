"""Builders of small synthetic DICOM series for the reading tests.

Each builder writes real DICOM files (pydicom, explicit VR little endian) so that the
readers are exercised exactly as on scanner data. Values are chosen so that the expected
results can be computed by hand in each test.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import (
    CTImageStorage,
    ExplicitVRLittleEndian,
    NuclearMedicineImageStorage,
    PositronEmissionTomographyImageStorage,
    generate_uid,
)

F18_HALF_LIFE_S = 6586.2  # ICRP-107, also written by scanners in RadionuclideHalfLife


def da(t: datetime) -> str:
    return t.strftime("%Y%m%d")


def tm(t: datetime) -> str:
    return t.strftime("%H%M%S.%f")


def dt(t: datetime) -> str:
    return t.strftime("%Y%m%d%H%M%S.%f")


def base_dataset(sop_class: str, modality: str, **common: Any) -> Dataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = modality
    ds.PatientName = common.get("PatientName", "Phantom^Test")
    ds.PatientID = common.get("PatientID", "TEST001")
    ds.StudyInstanceUID = common["StudyInstanceUID"]
    ds.SeriesInstanceUID = common["SeriesInstanceUID"]
    ds.FrameOfReferenceUID = common["FrameOfReferenceUID"]
    ds.StudyDate = common.get("StudyDate", "20240301")
    ds.SeriesNumber = common.get("SeriesNumber", 1)
    ds.SeriesDescription = common.get("SeriesDescription", modality)
    return ds


def set_pixels(ds: Dataset, values: np.ndarray, *, signed: bool = True) -> None:
    arr = np.asarray(values)
    ds.Rows, ds.Columns = arr.shape[-2:]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1 if signed else 0
    ds.PixelData = arr.astype("<i2" if signed else "<u2").tobytes()


def save(ds: Dataset, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


class SeriesWriter:
    """Writes one single-frame-per-file series with shuffled random file names."""

    def __init__(self, folder: Path, seed: int = 0):
        self.folder = folder
        self.rng = random.Random(seed)

    def name(self) -> Path:
        return self.folder / f"{self.rng.getrandbits(40):010x}.dcm"


def write_pet_series(
    folder: Path,
    *,
    values_bqml: np.ndarray | None = None,
    n_slices: int = 4,
    shape: tuple[int, int] = (3, 4),
    spacing: tuple[float, float, float] = (3.0, 2.0, 2.5),
    origin: tuple[float, float, float] = (-10.0, -20.0, 100.0),
    iop: Sequence[float] = (1, 0, 0, 0, 1, 0),
    positions: Sequence[Sequence[float]] | None = None,
    series_time: datetime = datetime(2024, 3, 1, 10, 0, 0),
    injection_time: datetime | None = datetime(2024, 3, 1, 9, 0, 0),
    injection_as_datetime: bool = True,
    injected_activity_bq: float | None = 2.0e8,
    half_life_s: float | None = F18_HALF_LIFE_S,
    nuclide_code: tuple[str, str, str] | None = ("C-111A1", "SRT", "^18^Fluorine"),
    units: str | None = "BQML",
    decay_correction: str | None = "START",
    frame_duration_s: float = 120.0,
    frame_reference_s: Sequence[float] | None = None,
    decay_factors: bool = True,
    weight_kg: float | None = 75.0,
    height_m: float | None = 1.80,
    sex: str = "M",
    stored_scale: Callable[[int], float] | None = None,
    extra: Callable[[Dataset, int], None] | None = None,
    radiopharmaceutical: bool = True,
    seed: int = 0,
    **common: Any,
) -> list[Path]:
    """A PET series whose pixel values (after rescale) are ``stored_k = values * s_k``.

    ``values_bqml`` ([slice, row, col], default 1000 + 10 * index) is the truth in the
    stored unit; ``stored_scale(k)`` multiplies slice ``k`` (e.g. an encoded decay factor).
    Slice ``k`` lies at ``origin + k * spacing[0] * normal`` unless ``positions`` is given.
    """
    rows, cols = shape
    if values_bqml is None:
        values_bqml = 1000.0 + 10.0 * np.arange(n_slices * rows * cols, dtype=float).reshape(
            n_slices, rows, cols
        )
    n_slices = values_bqml.shape[0]
    common.setdefault("StudyInstanceUID", generate_uid())
    common.setdefault("SeriesInstanceUID", generate_uid())
    common.setdefault("FrameOfReferenceUID", generate_uid())
    iop = [float(v) for v in iop]
    normal = np.cross(iop[:3], iop[3:])
    writer = SeriesWriter(folder, seed)
    paths = []
    lam = math_log2() / half_life_s if half_life_s else 0.0
    for k in range(n_slices):
        ds = base_dataset(PositronEmissionTomographyImageStorage, "PT", **common)
        ds.SeriesDate = da(series_time)
        ds.SeriesTime = tm(series_time)
        ds.AcquisitionDate = da(series_time)
        ds.AcquisitionTime = tm(series_time)
        ds.InstanceNumber = n_slices - k  # deliberately opposite to the geometry
        if positions is None:
            pos = np.asarray(origin) + k * spacing[0] * normal
        else:
            pos = np.asarray(positions[k], dtype=float)
        ds.ImagePositionPatient = [f"{v:.6f}" for v in pos]
        ds.ImageOrientationPatient = [f"{v:.6f}" for v in iop]
        ds.PixelSpacing = [spacing[1], spacing[2]]
        ds.SliceThickness = spacing[0]
        if units is not None:
            ds.Units = units
        if decay_correction is not None:
            ds.DecayCorrection = decay_correction
        ds.CorrectedImage = ["DECY", "ATTN"] if decay_correction != "NONE" else ["ATTN"]
        ds.ActualFrameDuration = int(frame_duration_s * 1000)
        frt = frame_reference_s[k] if frame_reference_s is not None else frame_duration_s / 2.0
        ds.FrameReferenceTime = f"{frt * 1000.0:.3f}"
        if decay_factors and decay_correction in ("START", "ADMIN") and lam:
            ref = series_time if decay_correction == "START" else injection_time
            assert ref is not None
            t_frame = (series_time - ref).total_seconds() + frt
            ds.DecayFactor = f"{np.exp(lam * t_frame):.8f}"
        if weight_kg is not None:
            ds.PatientWeight = weight_kg
        if height_m is not None:
            ds.PatientSize = height_m
        ds.PatientSex = sex
        if radiopharmaceutical:
            item = Dataset()
            if injection_time is not None:
                if injection_as_datetime:
                    item.RadiopharmaceuticalStartDateTime = dt(injection_time)
                else:
                    item.RadiopharmaceuticalStartTime = tm(injection_time)
            if injected_activity_bq is not None:
                item.RadionuclideTotalDose = f"{injected_activity_bq:.6g}"
            if half_life_s is not None:
                item.RadionuclideHalfLife = half_life_s
            if nuclide_code is not None:
                code = Dataset()
                code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = nuclide_code
                item.RadionuclideCodeSequence = DicomSequence([code])
            ds.RadiopharmaceuticalInformationSequence = DicomSequence([item])
        target = values_bqml[k] * (stored_scale(k) if stored_scale else 1.0)
        slope = max(float(np.abs(target).max()), 1e-12) / 30000.0
        ints = np.rint(target / slope).astype(np.int16)
        ds.RescaleSlope = f"{slope:.10g}"
        ds.RescaleIntercept = 0
        set_pixels(ds, ints)
        if extra is not None:
            extra(ds, k)
        paths.append(save(ds, writer.name()))
    return paths


def math_log2() -> float:
    return float(np.log(2.0))


def stored_pet_values(paths: Sequence[Path]) -> dict[Path, np.ndarray]:
    """Rescaled values of each file, read with plain pydicom (the oracle)."""
    import pydicom

    out = {}
    for p in paths:
        ds = pydicom.dcmread(p)
        out[p] = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    return out


def write_ct_series(
    folder: Path,
    *,
    n_slices: int = 5,
    shape: tuple[int, int] = (4, 3),
    spacing: tuple[float, float, float] = (2.5, 0.8, 0.9),
    origin: tuple[float, float, float] = (-5.0, -6.0, -7.0),
    iop: Sequence[float] = (1, 0, 0, 0, 1, 0),
    positions: Sequence[Sequence[float]] | None = None,
    pixel_spacings: Sequence[Sequence[float]] | None = None,
    shapes: Sequence[tuple[int, int]] | None = None,
    iops: Sequence[Sequence[float]] | None = None,
    seed: int = 1,
    **common: Any,
) -> list[Path]:
    """A CT series; pixel value of slice k, row j, column i is ``100 k + 10 j + i`` HU."""
    common.setdefault("StudyInstanceUID", generate_uid())
    common.setdefault("SeriesInstanceUID", generate_uid())
    common.setdefault("FrameOfReferenceUID", generate_uid())
    writer = SeriesWriter(folder, seed)
    paths = []
    for k in range(n_slices):
        ds = base_dataset(CTImageStorage, "CT", **common)
        this_iop = [float(v) for v in (iops[k] if iops is not None else iop)]
        normal = np.cross(this_iop[:3], this_iop[3:])
        pos = (
            np.asarray(positions[k], dtype=float)
            if positions is not None
            else np.asarray(origin) + k * spacing[0] * normal
        )
        ds.ImagePositionPatient = [f"{v:.6f}" for v in pos]
        ds.ImageOrientationPatient = [f"{v:.8f}" for v in this_iop]
        ps = pixel_spacings[k] if pixel_spacings is not None else (spacing[1], spacing[2])
        ds.PixelSpacing = [ps[0], ps[1]]
        ds.SliceThickness = spacing[0]
        ds.InstanceNumber = k + 1
        ds.RescaleSlope = 1
        ds.RescaleIntercept = -1024
        ds.RescaleType = "HU"
        r, c = shapes[k] if shapes is not None else shape
        jj, ii = np.mgrid[0:r, 0:c]
        set_pixels(ds, 100 * k + 10 * jj + ii + 1024)
        paths.append(save(ds, writer.name()))
    return paths


def write_nm_recon(
    path: Path,
    counts: np.ndarray,
    *,
    ipp: Sequence[float] = (-20.0, -30.0, 50.0),
    iop: Sequence[float] = (1, 0, 0, 0, 1, 0),
    pixel_spacing: tuple[float, float] = (4.0, 4.0),
    spacing_between_slices: float | None = 4.0,
    slice_thickness: float | None = 4.0,
    slice_vector: Sequence[int] | None = None,
    units: str | None = None,
    acquisition_time: datetime = datetime(2024, 3, 2, 14, 0, 0),
    rotations: Sequence[tuple[float, int]] | None = ((20.0, 60),),
    window: tuple[str, float, float] | None = ("Lu177_208", 187.2, 228.8),
    image_type: str = "RECON TOMO",
    nuclide_meaning: str | None = "^177^Lutetium",
    injection_time: datetime | None = datetime(2024, 3, 1, 10, 0, 0),
    **common: Any,
) -> Path:
    """A reconstructed NM multi-frame object (frames = slices, ``counts`` [n, r, c])."""
    common.setdefault("StudyInstanceUID", generate_uid())
    common.setdefault("SeriesInstanceUID", generate_uid())
    common.setdefault("FrameOfReferenceUID", generate_uid())
    ds = base_dataset(NuclearMedicineImageStorage, "NM", **common)
    ds.ImageType = ["ORIGINAL", "PRIMARY", image_type, "EMISSION"]
    n = counts.shape[0]
    ds.NumberOfFrames = n
    ds.FrameIncrementPointer = 0x00540080  # SliceVector
    ds.SliceVector = list(slice_vector) if slice_vector is not None else list(range(1, n + 1))
    ds.NumberOfSlices = n
    det = Dataset()
    det.ImagePositionPatient = [f"{v:.4f}" for v in ipp]
    det.ImageOrientationPatient = [f"{v:.6f}" for v in iop]
    ds.DetectorInformationSequence = DicomSequence([det])
    ds.NumberOfDetectors = 1
    ds.PixelSpacing = list(pixel_spacing)
    if spacing_between_slices is not None:
        ds.SpacingBetweenSlices = spacing_between_slices
    if slice_thickness is not None:
        ds.SliceThickness = slice_thickness
    if units is not None:
        ds.Units = units
    ds.AcquisitionDate = da(acquisition_time)
    ds.AcquisitionTime = tm(acquisition_time)
    ds.SeriesDate = da(acquisition_time)
    ds.SeriesTime = tm(acquisition_time)
    if rotations is not None:
        items = []
        for frame_s, views in rotations:
            it = Dataset()
            it.ActualFrameDuration = int(frame_s * 1000)
            it.NumberOfFramesInRotation = views
            items.append(it)
        ds.RotationInformationSequence = DicomSequence(items)
    if window is not None:
        w = Dataset()
        w.EnergyWindowName = window[0]
        r = Dataset()
        r.EnergyWindowLowerLimit, r.EnergyWindowUpperLimit = window[1], window[2]
        w.EnergyWindowRangeSequence = DicomSequence([r])
        ds.EnergyWindowInformationSequence = DicomSequence([w])
        ds.NumberOfEnergyWindows = 1
    if nuclide_meaning is not None or injection_time is not None:
        item = Dataset()
        if nuclide_meaning is not None:
            code = Dataset()
            code.CodeValue, code.CodingSchemeDesignator = "C-145A4", "SRT"
            code.CodeMeaning = nuclide_meaning
            item.RadionuclideCodeSequence = DicomSequence([code])
        if injection_time is not None:
            item.RadiopharmaceuticalStartDateTime = dt(injection_time)
            item.RadionuclideTotalDose = "7400"  # MBq: the NM Isotope Module unit
        ds.RadiopharmaceuticalInformationSequence = DicomSequence([item])
    set_pixels(ds, counts.astype(np.uint16), signed=False)
    return save(ds, path)


@pytest.fixture
def ct5n_folder() -> Path:
    """pydicom's bundled 5-slice CT (file names descend while z ascends)."""
    from pydicom.data import get_testdata_file

    root = Path(get_testdata_file("DICOMDIR", download=False)).parent
    return root / "98892001" / "CT5N"


@pytest.fixture
def tcia_dir() -> Path:
    return Path(__file__).resolve().parents[1] / "data" / "tcia_pet"


def hours(h: float) -> timedelta:
    return timedelta(hours=h)
