"""DICOM writing shared by the phantom studies: UIDs, file names, CT series, RTSTRUCT.

Everything written is a DICOM Part 10 file (128-byte preamble, ``DICM``, file meta
information, Explicit VR Little Endian). UIDs are derived deterministically from the seed
(``2.25.<uuid-like integer>`` form, DICOM PS3.5 B.2), so that a study is byte-for-byte
reproducible for a seed.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
from pydicom import dcmwrite
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.tag import Tag
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    UID,
    CTImageStorage,
    ExplicitVRLittleEndian,
    RTStructureSetStorage,
)

from ._torso import Structure

__all__ = [
    "PatientInfo",
    "UidFactory",
    "FileNamer",
    "SliceRef",
    "da",
    "tm",
    "dt",
    "new_dataset",
    "save",
    "write_ct_series",
    "write_rtstruct",
]

#: Detached Study Management SOP Class (retired); the value PS3.3 C.8.8.5 uses in
#: RT Referenced Study Sequence > Referenced SOP Class UID, as written by planning systems.
STUDY_COMPONENT_SOP_CLASS = "1.2.840.10008.3.1.2.3.1"

MANUFACTURER = "dosimetry phantoms"

CONTOUR_DATA = Tag(0x3006, 0x0050)


@dataclass(frozen=True)
class PatientInfo:
    """Patient attributes written into every file.

    Parameters
    ----------
    name, patient_id, sex, birth_date
        Patient's Name (PN), ID, Sex (M/F/O) and Birth Date (YYYYMMDD).
    weight_kg
        Patient's Weight (0010,1030), kg.
    height_m
        Patient's Size (0010,1020), metres.
    """

    name: str = "PHANTOM^TORSO"
    patient_id: str = "PHANTOM-0001"
    sex: str = "M"
    birth_date: str = "19560101"
    weight_kg: float = 80.0
    height_m: float = 1.78


class UidFactory:
    """Deterministic UIDs: the same ``(namespace, seed, key)`` always gives the same UID."""

    def __init__(self, namespace: str, seed: int):
        self._ns = namespace
        self._seed = int(seed)
        self._seen: set[str] = set()

    def __call__(self, key: str) -> str:
        digest = hashlib.sha256(f"{self._ns}|{self._seed}|{key}".encode()).digest()
        # a UUID-derived UID (PS3.5 B.2): 2.25 followed by a 128-bit integer
        uid = f"2.25.{int.from_bytes(digest[:16], 'big')}"
        if uid in self._seen:
            raise ValueError(f"UID key {key!r} used twice")
        self._seen.add(uid)
        return uid


class FileNamer:
    """Random hexadecimal file names (seeded), so that names never sort in slice order."""

    def __init__(self, folder: Path, rng: np.random.Generator, extension: str = ".dcm"):
        self.folder = folder
        self._rng = rng
        self._ext = extension
        self._used: set[str] = set()

    def __call__(self) -> Path:
        while True:
            name = "".join(f"{int(b):02x}" for b in self._rng.integers(0, 256, size=8))
            if name not in self._used:
                self._used.add(name)
                return self.folder / f"{name}{self._ext}"


@dataclass(frozen=True)
class SliceRef:
    """One written image slice: where it is and what it is."""

    path: Path
    sop_instance_uid: str
    sop_class_uid: str
    z_mm: float


def da(t: datetime) -> str:
    """DICOM DA (YYYYMMDD)."""
    return t.strftime("%Y%m%d")


def tm(t: datetime) -> str:
    """DICOM TM (HHMMSS.FFFFFF)."""
    return t.strftime("%H%M%S.%f")


def dt(t: datetime) -> str:
    """DICOM DT (YYYYMMDDHHMMSS.FFFFFF), no UTC offset (local time, like DA/TM)."""
    return t.strftime("%Y%m%d%H%M%S.%f")


def new_dataset(
    sop_class_uid: str,
    sop_instance_uid: str,
    *,
    patient: PatientInfo,
    study_uid: str,
    study_time: datetime,
    modality: str,
    series_uid: str,
    series_number: int,
    series_time: datetime,
    series_description: str,
    frame_of_reference_uid: str | None,
    content_time: datetime,
    include_weight: bool = True,
    include_content_time: bool = True,
) -> Dataset:
    """A dataset with file meta, SOP Common, Patient, General Study/Series/Equipment,
    and (when ``frame_of_reference_uid`` is given) Frame of Reference modules filled in."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(sop_class_uid)
    meta.MediaStorageSOPInstanceUID = UID(sop_instance_uid)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    meta.ImplementationVersionName = "DOSIM_PHANTOM"
    ds = Dataset()
    ds.file_meta = meta
    ds.preamble = b"\x00" * 128
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = sop_class_uid
    ds.SOPInstanceUID = sop_instance_uid
    ds.InstanceCreationDate = da(content_time)
    ds.InstanceCreationTime = tm(content_time)
    ds.StudyDate = da(study_time)
    ds.StudyTime = tm(study_time)
    ds.SeriesDate = da(series_time)
    ds.SeriesTime = tm(series_time)
    if include_content_time:
        ds.ContentDate = da(content_time)
        ds.ContentTime = tm(content_time)
    ds.AccessionNumber = ""
    ds.Modality = modality
    ds.Manufacturer = MANUFACTURER
    ds.InstitutionName = "Digital phantom"
    ds.ReferringPhysicianName = ""
    ds.StationName = "PHANTOM"
    ds.StudyDescription = "Digital torso phantom"
    ds.SeriesDescription = series_description
    ds.ManufacturerModelName = "torso"
    ds.SoftwareVersions = "1"
    ds.PatientName = patient.name
    ds.PatientID = patient.patient_id
    ds.PatientBirthDate = patient.birth_date
    ds.PatientSex = patient.sex
    ds.PatientAge = _age(patient.birth_date, study_time)
    if include_weight:
        ds.PatientSize = f"{patient.height_m:.2f}"
        ds.PatientWeight = f"{patient.weight_kg:.1f}"
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.StudyID = "1"
    ds.SeriesNumber = int(series_number)
    if frame_of_reference_uid is not None:
        ds.FrameOfReferenceUID = frame_of_reference_uid
        ds.PositionReferenceIndicator = ""
    return ds


def _age(birth_date: str, at: datetime) -> str:
    try:
        b = datetime.strptime(birth_date, "%Y%m%d")
    except ValueError:
        return ""
    years = at.year - b.year - ((at.month, at.day) < (b.month, b.day))
    return f"{max(years, 0):03d}Y"


def save(ds: Dataset, path: Path) -> None:
    """Write ``ds`` as a DICOM Part 10 file (Explicit VR Little Endian)."""
    dcmwrite(path, ds, enforce_file_format=True)


def image_plane(
    ds: Dataset, affine: np.ndarray, k: float, z_mm: float, thickness_mm: float
) -> None:
    """Image Plane module for slice ``k`` of an axial grid (position at row 0, column 0)."""
    pos = affine[:3, :3] @ np.array([k, 0.0, 0.0]) + affine[:3, 3]
    ds.ImagePositionPatient = [_ds(pos[0]), _ds(pos[1]), _ds(z_mm)]
    ds.ImageOrientationPatient = ["1", "0", "0", "0", "1", "0"]
    ds.PixelSpacing = [_ds(np.linalg.norm(affine[:3, 1])), _ds(np.linalg.norm(affine[:3, 2]))]
    ds.SliceThickness = _ds(thickness_mm)
    ds.SliceLocation = _ds(z_mm)


def _ds(v: float | np.floating) -> str:
    """Decimal string that round-trips ``v`` to ~1e-6 mm and fits the 16-char DS limit."""
    s = f"{float(v):.6f}".rstrip("0").rstrip(".")
    if s in ("-0", ""):
        s = "0"
    if len(s) > 16:
        s = f"{float(v):.10g}"
    return s


def pixel_module(ds: Dataset, array: np.ndarray, signed: bool) -> None:
    """Image Pixel module for a 16-bit monochrome frame (or stack of frames)."""
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = int(array.shape[-2])
    ds.Columns = int(array.shape[-1])
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1 if signed else 0
    dtype = "<i2" if signed else "<u2"
    ds.PixelData = np.ascontiguousarray(array, dtype=dtype).tobytes()


def slice_positions(
    affine: np.ndarray, n_slices: int, nonuniform_gap_mm: float = 0.0
) -> np.ndarray:
    """z (mm) of each slice; with ``nonuniform_gap_mm`` the upper half is moved up by it."""
    z = affine[2, 3] + np.linalg.norm(affine[:3, 0]) * np.arange(n_slices)
    if nonuniform_gap_mm:
        z = z.copy()
        z[n_slices // 2 :] += nonuniform_gap_mm
    return z


def write_ct_series(
    namer: FileNamer,
    uids: UidFactory,
    hu: np.ndarray,
    affine: np.ndarray,
    *,
    key: str,
    patient: PatientInfo,
    study_uid: str,
    study_time: datetime,
    series_time: datetime,
    series_number: int,
    frame_of_reference_uid: str,
    rng: np.random.Generator,
    description: str = "CT 2.0 mm",
    kvp: float = 120.0,
    drop_slice: bool = False,
    nonuniform_gap_mm: float = 0.0,
    include_weight: bool = True,
) -> tuple[str, list[SliceRef]]:
    """Write a CT Image Storage series, one file per slice; return (series UID, slices).

    Stored pixels are int16 ``HU + 1024`` with RescaleIntercept -1024 and RescaleSlope 1.
    ``InstanceNumber`` is a random permutation, so it does not give the slice order.
    The returned slices are in ascending z (a dropped slice is not listed).
    """
    n = hu.shape[0]
    series_uid = uids(f"{key}-series")
    z_all = slice_positions(affine, n, nonuniform_gap_mm)
    thickness = float(np.linalg.norm(affine[:3, 0]))
    instance_numbers = rng.permutation(n) + 1
    stored = np.clip(np.rint(hu + 1024.0), -32768, 32767).astype(np.int16)
    dropped = n // 2 + 1 if drop_slice else -1
    out: list[SliceRef] = []
    ds = new_dataset(
        CTImageStorage,
        uids(f"{key}-{0}"),
        patient=patient,
        study_uid=study_uid,
        study_time=study_time,
        modality="CT",
        series_uid=series_uid,
        series_number=series_number,
        series_time=series_time,
        series_description=description,
        frame_of_reference_uid=frame_of_reference_uid,
        content_time=series_time,
        include_weight=include_weight,
    )
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.AcquisitionDate = da(series_time)
    ds.AcquisitionTime = tm(series_time)
    ds.AcquisitionNumber = 1
    ds.PatientPosition = "HFS"
    ds.BodyPartExamined = "CHEST"
    ds.KVP = _ds(kvp)
    ds.ScanOptions = "HELICAL MODE"
    ds.ConvolutionKernel = "STANDARD"
    ds.RescaleIntercept = "-1024"
    ds.RescaleSlope = "1"
    ds.RescaleType = "HU"
    ds.WindowCenter = "40"
    ds.WindowWidth = "400"
    for k in range(n):
        if k == dropped:
            continue
        sop_uid = str(ds.SOPInstanceUID) if k == 0 else uids(f"{key}-{k}")
        ds.SOPInstanceUID = sop_uid
        ds.file_meta.MediaStorageSOPInstanceUID = UID(sop_uid)
        ds.InstanceNumber = int(instance_numbers[k])
        image_plane(ds, affine, k, float(z_all[k]), thickness)
        pixel_module(ds, stored[k], signed=True)
        path = namer()
        save(ds, path)
        out.append(SliceRef(path, sop_uid, CTImageStorage, float(z_all[k])))
    out.sort(key=lambda s: s.z_mm)
    return series_uid, out


def write_rtstruct(
    namer: FileNamer,
    uids: UidFactory,
    structures: Sequence[Structure],
    ct_slices: Sequence[SliceRef],
    *,
    key: str,
    patient: PatientInfo,
    study_uid: str,
    study_time: datetime,
    series_time: datetime,
    series_number: int,
    frame_of_reference_uid: str,
    ct_series_uid: str,
    shift_mm: tuple[float, float, float] = (0.0, 0.0, 0.0),
    include_weight: bool = True,
) -> tuple[Path, str]:
    """Write an RT Structure Set with one ROI per structure that has a ``roi_type``.

    Each ROI has one CLOSED_PLANAR contour on every CT slice plane that cuts its shape
    (contours whose smaller semi-axis is under 0.5 mm are left out). Polygons have the
    exact analytic cross-section area (see :func:`phantoms._geometry._ellipse_polygon`),
    with coordinates written to 0.001 mm. Returns (path, SOP instance UID).
    """
    sop_uid = uids(f"{key}-rtstruct")
    ds = new_dataset(
        RTStructureSetStorage,
        sop_uid,
        patient=patient,
        study_uid=study_uid,
        study_time=study_time,
        modality="RTSTRUCT",
        series_uid=uids(f"{key}-rtstruct-series"),
        series_number=series_number,
        series_time=series_time,
        series_description="Phantom ROIs (analytic)",
        frame_of_reference_uid=frame_of_reference_uid,
        content_time=series_time,
        include_weight=include_weight,
        include_content_time=False,
    )
    ds.OperatorsName = ""
    ds.InstanceNumber = 1
    ds.StructureSetLabel = "PHANTOM"
    ds.StructureSetName = "Analytic phantom ROIs"
    ds.StructureSetDate = da(series_time)
    ds.StructureSetTime = tm(series_time)
    ds.ApprovalStatus = "UNAPPROVED"

    contour_images = DicomSequence()
    for s in ct_slices:
        item = Dataset()
        item.ReferencedSOPClassUID = s.sop_class_uid
        item.ReferencedSOPInstanceUID = s.sop_instance_uid
        contour_images.append(item)
    rt_series = Dataset()
    rt_series.SeriesInstanceUID = ct_series_uid
    rt_series.ContourImageSequence = contour_images
    rt_study = Dataset()
    rt_study.ReferencedSOPClassUID = STUDY_COMPONENT_SOP_CLASS
    rt_study.ReferencedSOPInstanceUID = study_uid
    rt_study.RTReferencedSeriesSequence = DicomSequence([rt_series])
    ref_for = Dataset()
    ref_for.FrameOfReferenceUID = frame_of_reference_uid
    ref_for.RTReferencedStudySequence = DicomSequence([rt_study])
    ds.ReferencedFrameOfReferenceSequence = DicomSequence([ref_for])

    roi_seq, contour_seq, obs_seq = DicomSequence(), DicomSequence(), DicomSequence()
    number = 0
    for st in structures:
        if st.roi_type is None:
            continue
        number += 1
        shape = st.shape.shifted(shift_mm)
        roi = Dataset()
        roi.ROINumber = number
        roi.ReferencedFrameOfReferenceUID = frame_of_reference_uid
        roi.ROIName = st.name
        if st.description:
            roi.ROIDescription = st.description
        roi.ROIGenerationAlgorithm = "AUTOMATIC"
        roi_seq.append(roi)

        contours = DicomSequence()
        n_points = 128 if st.roi_type == "EXTERNAL" else (48 if st.roi_type == "GTV" else 96)
        for s in ct_slices:
            for poly in shape.cross_section(s.z_mm, n_points=n_points):
                if _min_half_width(poly) < 0.5:
                    continue
                c = Dataset()
                # the writer's encoding: the raw ContourData is then written as it is
                # instead of being parsed into numbers and encoded again (~10x faster)
                c.set_original_encoding(False, True, "iso8859")
                img = Dataset()
                img.ReferencedSOPClassUID = s.sop_class_uid
                img.ReferencedSOPInstanceUID = s.sop_instance_uid
                c.ContourImageSequence = DicomSequence([img])
                c.ContourGeometricType = "CLOSED_PLANAR"
                c.NumberOfContourPoints = int(poly.shape[0])
                pts = np.column_stack([poly, np.full(poly.shape[0], s.z_mm)])
                c[CONTOUR_DATA] = raw_ds(pts.ravel())
                contours.append(c)
        rc = Dataset()
        rc.ROIDisplayColor = list(st.color)
        rc.ReferencedROINumber = number
        rc.ContourSequence = contours
        contour_seq.append(rc)

        obs = Dataset()
        obs.ObservationNumber = number
        obs.ReferencedROINumber = number
        obs.RTROIInterpretedType = st.roi_type
        obs.ROIInterpreter = ""
        obs_seq.append(obs)
    ds.StructureSetROISequence = roi_seq
    ds.ROIContourSequence = contour_seq
    ds.RTROIObservationsSequence = obs_seq
    path = namer()
    save(ds, path)
    return path, sop_uid


def raw_ds(values: np.ndarray, fmt: str = "{:.3f}") -> RawDataElement:
    """Contour Data as an already-encoded DS element (fast for thousands of numbers)."""
    text = "\\".join(fmt.format(float(v)) for v in values).encode("ascii")
    if len(text) % 2:
        text += b" "
    return RawDataElement(CONTOUR_DATA, "DS", len(text), text, 0, False, True)


def _min_half_width(poly: np.ndarray) -> float:
    """Rough smaller semi-axis (mm) of a convex polygon: sqrt(area / pi) bounded by extent."""
    ext = poly.max(axis=0) - poly.min(axis=0)
    return float(min(ext) / 2.0) if np.all(np.isfinite(ext)) else math.nan
