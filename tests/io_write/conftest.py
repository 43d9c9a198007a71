"""Shared fixtures for the writer / mask tests."""

from __future__ import annotations

import gzip
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

from dosimetry import Volume

DICOMPYLER = Path(__file__).resolve().parents[1] / "data" / "dicompyler"

#: Direction matrix (columns: slice, row, column axes in LPS) of an axial head-first grid.
AXIAL = np.array([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])


@pytest.fixture(scope="session")
def ct_header() -> Dataset:
    """Header of the real dicompyler CT slice (patient/study/frame of reference)."""
    return pydicom.dcmread(DICOMPYLER / "ct.0.dcm", stop_before_pixels=True)


@pytest.fixture(scope="session")
def dicompyler_dose_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The dicompyler RT Dose, decompressed into a temporary folder."""
    out = tmp_path_factory.mktemp("dicompyler") / "rtdose.dcm"
    with gzip.open(DICOMPYLER / "rtdose.dcm.gz", "rb") as src, open(out, "wb") as dst:
        shutil.copyfileobj(src, dst)
    return out


def axial_volume(
    array: np.ndarray,
    spacing_mm: tuple[float, float, float],
    origin_mm: tuple[float, float, float],
    unit: str,
    frame_of_reference_uid: str | None,
) -> Volume:
    return Volume.from_spacing(
        array,
        spacing_mm,
        origin_mm,
        direction=AXIAL,
        unit=unit,
        frame_of_reference_uid=frame_of_reference_uid,
    )


@pytest.fixture
def make_axial() -> Callable[..., Volume]:
    return axial_volume


def synthetic_ct_series(
    shape: tuple[int, int, int],
    spacing_mm: tuple[float, float, float],
    origin_mm: tuple[float, float, float],
    frame_of_reference_uid: str,
    study_uid: str | None = None,
) -> list[Dataset]:
    """A minimal axial CT series (one dataset per slice, pixel data included).

    ``spacing_mm`` is (slice, row, column); ``origin_mm`` the LPS position of voxel [0, 0, 0].
    """
    study_uid = study_uid or generate_uid()
    series_uid = generate_uid()
    nk, nj, ni = shape
    out = []
    for k in range(nk):
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.SOPClassUID = CTImageStorage
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.Modality = "CT"
        ds.PatientName = "Phantom^Sphere"
        ds.PatientID = "PH001"
        ds.PatientBirthDate = ""
        ds.PatientSex = "O"
        ds.StudyInstanceUID = study_uid
        ds.StudyDate = "20240101"
        ds.StudyTime = "120000"
        ds.StudyID = "1"
        ds.AccessionNumber = ""
        ds.ReferringPhysicianName = ""
        ds.SeriesInstanceUID = series_uid
        ds.SeriesNumber = 1
        ds.InstanceNumber = k + 1
        ds.FrameOfReferenceUID = frame_of_reference_uid
        ds.PositionReferenceIndicator = ""
        ds.Manufacturer = "test"
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.ImagePositionPatient = [origin_mm[0], origin_mm[1], origin_mm[2] + k * spacing_mm[0]]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.PixelSpacing = [spacing_mm[1], spacing_mm[2]]
        ds.SliceThickness = spacing_mm[0]
        ds.Rows, ds.Columns = nj, ni
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.BitsAllocated = 16
        ds.BitsStored = 16
        ds.HighBit = 15
        ds.PixelRepresentation = 1
        ds.RescaleIntercept = 0
        ds.RescaleSlope = 1
        ds.RescaleType = "HU"
        ds.KVP = 120
        ds.AcquisitionNumber = 1
        ds.PatientPosition = "HFS"
        ds.PixelData = np.zeros((nj, ni), dtype="<i2").tobytes()
        out.append(ds)
    return out


@pytest.fixture
def make_ct_series() -> Callable[..., list[Dataset]]:
    return synthetic_ct_series


def rtstruct_dataset(
    rois: dict[str, list[np.ndarray]], frame_of_reference_uid: str, study_uid: str | None = None
) -> Dataset:
    """A minimal RT Structure Set holding CLOSED_PLANAR contours ((n, 3) LPS mm arrays)."""
    ds = Dataset()
    ds.SOPClassUID = pydicom.uid.RTStructureSetStorage
    ds.SOPInstanceUID = generate_uid()
    ds.Modality = "RTSTRUCT"
    ds.StudyInstanceUID = study_uid or generate_uid()
    ref_for = Dataset()
    ref_for.FrameOfReferenceUID = frame_of_reference_uid
    ds.ReferencedFrameOfReferenceSequence = [ref_for]
    ds.StructureSetROISequence = []
    ds.ROIContourSequence = []
    for number, (name, contours) in enumerate(rois.items(), start=1):
        roi = Dataset()
        roi.ROINumber = number
        roi.ReferencedFrameOfReferenceUID = frame_of_reference_uid
        roi.ROIName = name
        roi.ROIGenerationAlgorithm = "MANUAL"
        ds.StructureSetROISequence.append(roi)
        rc = Dataset()
        rc.ReferencedROINumber = number
        rc.ContourSequence = []
        for pts in contours:
            c = Dataset()
            c.ContourGeometricType = "CLOSED_PLANAR"
            c.NumberOfContourPoints = len(pts)
            c.ContourData = [f"{v:.6f}" for v in np.asarray(pts, dtype=float).ravel()]
            rc.ContourSequence.append(c)
        ds.ROIContourSequence.append(rc)
    return ds


@pytest.fixture
def make_rtstruct() -> Callable[..., Dataset]:
    return rtstruct_dataset


def circle(center_xy: tuple[float, float], radius: float, z: float, n: int = 180) -> np.ndarray:
    """Closed polygon (n, 3) approximating a circle in the axial plane z."""
    t = np.linspace(0.0, 2.0 * np.pi, n, endpoint=False)
    return np.column_stack(
        [center_xy[0] + radius * np.cos(t), center_xy[1] + radius * np.sin(t), np.full(n, z)]
    )


def polygon_area(pts: np.ndarray) -> float:
    """Shoelace area (mm^2) of an axial polygon."""
    x, y = pts[:, 0], pts[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))
