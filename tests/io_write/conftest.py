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
