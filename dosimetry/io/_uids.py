"""Helpers shared by the DICOM writers: UIDs, identity, reference headers, DS formatting.

UIDs are generated under the ``2.25`` root from random UUIDs (ISO/IEC 9834-8, referenced by
DICOM PS3.5 Annex B.2), which needs no registered organisation root.
"""

from __future__ import annotations

import logging
import math
import uuid
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid

from .. import __version__ as _version
from ..errors import DicomInputError

__all__ = [
    "new_uid",
    "IMPLEMENTATION_CLASS_UID",
    "IMPLEMENTATION_VERSION_NAME",
    "software_version",
    "reference_dataset",
    "reference_datasets",
    "copy_patient_study",
    "set_common_writer_attributes",
    "file_meta_for",
    "format_ds",
    "dicom_datetime",
]

log = logging.getLogger(__name__)

#: Fixed implementation identity of this software (name-based UUID, ISO/IEC 9834-8).
IMPLEMENTATION_CLASS_UID = UID(
    "2.25." + str(uuid.uuid5(uuid.NAMESPACE_URL, "https://github.com/dosimetry-workbench").int)
)


def software_version() -> str:
    """Version string of the package (``dosimetry.__version__``)."""
    return str(_version)


#: ImplementationVersionName (SH, at most 16 characters).
IMPLEMENTATION_VERSION_NAME = ("DOSIMETRY_" + _version.replace(".", "_"))[:16]


def new_uid() -> UID:
    """A new globally unique UID under the 2.25 root.

    >>> new_uid().startswith("2.25.")
    True
    """
    return generate_uid(prefix=None)


def dicom_datetime(when: datetime | None = None) -> tuple[str, str]:
    """(DA, TM) strings for ``when`` (default: now, local time).

    >>> dicom_datetime(datetime(2024, 5, 6, 7, 8, 9))
    ('20240506', '070809')
    """
    t = datetime.now() if when is None else when
    return t.strftime("%Y%m%d"), t.strftime("%H%M%S")


def format_ds(value: float, *, significant: int = 10) -> str:
    """Format a float as a DICOM Decimal String (at most 16 characters).

    >>> format_ds(1.0e-5)
    '1e-05'
    >>> format_ds(-1.2345678901234e-100)
    '-1.23456789e-100'
    """
    if not math.isfinite(value):
        raise ValueError(f"cannot write {value!r} as a DICOM DS")
    for digits in range(significant, 0, -1):
        text = f"{value:.{digits}g}"
        if len(text) <= 16:
            return text
    raise ValueError(f"cannot fit {value!r} into a 16-character DICOM DS")


def reference_dataset(reference: Any, arg: str = "reference") -> Dataset:
    """The pydicom Dataset behind ``reference``.

    Accepts a :class:`pydicom.Dataset`, a path to a DICOM file (read without pixel data),
    a sequence of datasets (the first is used) or any object with a ``.header`` attribute
    holding a Dataset (e.g. a loaded series).
    """
    if isinstance(reference, Dataset):
        return reference
    if isinstance(reference, str | Path):
        try:
            return pydicom.dcmread(reference, stop_before_pixels=True)
        except Exception as exc:  # pydicom raises several types
            raise DicomInputError(f"cannot read {arg}: {exc}", path=reference) from exc
    header = getattr(reference, "header", None)
    if isinstance(header, Dataset):
        return header
    if isinstance(reference, Sequence) and reference and isinstance(reference[0], Dataset):
        return reference[0]
    raise DicomInputError(
        f"{arg} must be a pydicom Dataset of the image series the data lie on, a path to one "
        f"of its files, or an object with a .header Dataset; got {type(reference).__name__}"
    )


def reference_datasets(reference: Any, arg: str = "reference") -> list[Dataset]:
    """All datasets behind ``reference``.

    A sequence of datasets or paths, an object with ``.datasets`` / ``.headers`` (or
    ``.info.headers``, as a loaded image series has), or a single dataset/path.
    """
    if isinstance(reference, Dataset | str | Path):
        return [reference_dataset(reference, arg)]
    holders = [reference, getattr(reference, "info", None)]
    for holder in holders:
        for attr in ("datasets", "headers"):
            items = getattr(holder, attr, None)
            if isinstance(items, Sequence) and items and all(isinstance(d, Dataset) for d in items):
                return list(items)
    if isinstance(reference, Sequence) and reference:
        return [reference_dataset(r, arg) for r in reference]
    return [reference_dataset(reference, arg)]


# Patient, General Study and Patient Study module attributes copied from the reference.
_PATIENT_STUDY_KEYWORDS = (
    "SpecificCharacterSet",
    # Patient module (PS3.3 C.7.1.1)
    "PatientName",
    "PatientID",
    "IssuerOfPatientID",
    "PatientBirthDate",
    "PatientSex",
    "OtherPatientIDsSequence",
    "PatientIdentityRemoved",
    "DeidentificationMethod",
    "DeidentificationMethodCodeSequence",
    # General Study module (C.7.2.1)
    "StudyInstanceUID",
    "StudyDate",
    "StudyTime",
    "ReferringPhysicianName",
    "StudyID",
    "AccessionNumber",
    "StudyDescription",
    # Patient Study module (C.7.2.2)
    "PatientAge",
    "PatientSize",
    "PatientWeight",
)
_TYPE2 = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyDate",
    "StudyTime",
    "ReferringPhysicianName",
    "StudyID",
    "AccessionNumber",
)


def copy_patient_study(ref: Dataset, out: Dataset, source: str = "reference") -> None:
    """Copy the Patient / General Study / Patient Study attributes of ``ref`` into ``out``.

    StudyInstanceUID (Type 1) must be present in the reference; missing Type 2 attributes are
    written empty (allowed by PS3.3 for Type 2) and logged.
    """
    if "StudyInstanceUID" not in ref or not ref.StudyInstanceUID:
        raise DicomInputError(
            f"the {source} dataset has no StudyInstanceUID; the new object must join the "
            "reference image's study. Pass the header of the image series the data lie on.",
            tag="StudyInstanceUID",
        )
    for kw in _PATIENT_STUDY_KEYWORDS:
        if kw in ref:
            out[kw] = ref[kw]
    missing = [kw for kw in _TYPE2 if kw not in ref]
    for kw in missing:
        setattr(out, kw, "")
    if missing:
        log.info("%s lacks %s; written empty (Type 2)", source, ", ".join(missing))


def set_common_writer_attributes(
    ds: Dataset,
    *,
    sop_class_uid: str,
    modality: str,
    series_description: str | None,
    series_number: int,
    when: datetime | None = None,
) -> None:
    """SOP Common, RT/General Series and General Equipment attributes of a new instance."""
    da, tm = dicom_datetime(when)
    ds.SOPClassUID = sop_class_uid
    ds.SOPInstanceUID = new_uid()
    ds.InstanceCreationDate = da
    ds.InstanceCreationTime = tm
    ds.Modality = modality
    ds.SeriesInstanceUID = new_uid()
    ds.SeriesNumber = int(series_number)
    ds.SeriesDate = da
    ds.SeriesTime = tm
    if series_description:
        ds.SeriesDescription = str(series_description)[:64]
    ds.OperatorsName = ""
    ds.Manufacturer = "dosimetry (open-source theranostics dosimetry workbench)"[:64]
    ds.ManufacturerModelName = "dosimetry"
    ds.SoftwareVersions = software_version()
    ds.InstanceNumber = 1


def file_meta_for(ds: Dataset) -> FileMetaDataset:
    """File meta information (PS3.10) for ``ds`` in Explicit VR Little Endian."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = IMPLEMENTATION_CLASS_UID
    meta.ImplementationVersionName = IMPLEMENTATION_VERSION_NAME
    return meta
