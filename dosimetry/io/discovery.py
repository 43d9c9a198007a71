"""Find DICOM series in a folder tree and read them as image stacks.

:func:`find_series` walks a folder (and checks a DICOMDIR when there is one), reads only
the headers (``stop_before_pixels``), skips what is not DICOM with a logged reason and
groups the instances by SeriesInstanceUID and FrameOfReferenceUID.

:class:`ImageSeries` is the common base of the PET, SPECT and CT series objects: it
knows the files, the UIDs and the provenance record, and turns the planes into a
:class:`~dosimetry.Volume` with the geometry of :mod:`dosimetry.io._geometry`.
"""

from __future__ import annotations

import copy
import io
import logging
import math
import os
import re
import stat
import sys
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.datadict import keyword_for_tag, tag_for_keyword
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.errors import InvalidDicomError
from pydicom.multival import MultiValue
from pydicom.tag import Tag
from pydicom.uid import (
    UID,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)

from ..errors import DicomInputError, IncompleteSeriesError
from ..volume import Volume, check_grid_budget
from ._geometry import Plane, StackGeometry, resample_stack, stack_planes

__all__ = ["SeriesInfo", "find_series", "scan_folder", "ImageSeries"]

log = logging.getLogger(__name__)

#: SOP Class UID of a DICOMDIR (Media Storage Directory Storage, PS3.4 Annex F).
MEDIA_STORAGE_DIRECTORY = "1.2.840.10008.1.3.10"
#: Enhanced multi-frame image SOP classes whose per-frame geometry is not read yet.
_ENHANCED_SOP_CLASSES = {
    "1.2.840.10008.5.1.4.1.1.2.1": "Enhanced CT Image Storage",
    "1.2.840.10008.5.1.4.1.1.130": "Enhanced PET Image Storage",
    "1.2.840.10008.5.1.4.1.1.128.1": "Legacy Converted Enhanced PET Image Storage",
    "1.2.840.10008.5.1.4.1.1.2.2": "Legacy Converted Enhanced CT Image Storage",
}


# ----------------------------------------------------------------------------- reading
#: Element tags left unconverted by :func:`_read`: pixel data (decoded by the series
#: readers) and ContourData (parsed from its raw bytes by :mod:`dosimetry.io.masks`, which
#: is much faster than pydicom's per-value conversion for large structure sets).
_KEEP_RAW = frozenset({0x7FE00010, 0x7FE00008, 0x7FE00009, 0x30060050})
#: Sequences whose items are not decoded here: the ROI Contour Sequence of an RTSTRUCT
#: (thousands of contour items; :mod:`dosimetry.io.masks` checks what it reads itself).
_NO_DESCEND = frozenset({0x30060039})
#: Transfer syntax of a dataset stored without File Meta Information, from the encoding
#: pydicom detected: (implicit VR, little endian) -> UID.
_RAW_TRANSFER_SYNTAX = {
    (True, True): ImplicitVRLittleEndian,
    (False, True): ExplicitVRLittleEndian,
    (False, False): ExplicitVRBigEndian,
}


def file_kind_problem(path: str | Path) -> str | None:
    """Why ``path`` must not be opened as a DICOM file, or ``None`` for a regular file.

    Only regular files are read (symbolic links are followed to regular files only):
    opening a named pipe (FIFO) blocks until something writes to it, and a socket or a
    device is not a file set member.

    >>> file_kind_problem(".")
    'not a regular file: a directory; only regular files are read'
    """
    p = Path(path)
    link = " (through a symbolic link)" if p.is_symlink() else ""
    try:
        st = os.stat(p)  # follows symbolic links
    except FileNotFoundError:
        return "broken symbolic link" if link else "the file does not exist"
    except OSError as exc:
        return f"cannot inspect the file ({type(exc).__name__}: {exc})"
    mode = st.st_mode
    if stat.S_ISREG(mode):
        return None
    kinds = (
        (stat.S_ISFIFO, "a named pipe (FIFO)"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISDIR, "a directory"),
    )
    kind = next((name for test, name in kinds if test(mode)), "not a regular file")
    return f"not a regular file: {kind}{link}; only regular files are read"


def _read(path: Path, *, headers_only: bool) -> Dataset:
    """Read one DICOM file robustly; every problem is a :class:`DicomInputError`.

    ``pydicom.dcmread`` with its warnings sent to the log, plus what pydicom leaves to the
    caller: only regular files are opened; a file without the 128-byte preamble and
    ``DICM`` prefix is read when it starts like a DICOM dataset (see
    :func:`_read_with_note`); a truncated element is an error (pydicom silently keeps the
    bytes it could read); every element is decoded here, so that a malformed value is an
    error naming its tag instead of an exception or a warning later.
    """
    return _read_with_note(path, headers_only=headers_only)[0]


def _read_with_note(path: Path, *, headers_only: bool) -> tuple[Dataset, str | None]:
    """:func:`_read`, and a note when the file had to be read without its preamble.

    Raises
    ------
    InvalidDicomError
        Not a DICOM file (no ``DICM`` prefix and not a raw dataset either).
    DicomInputError
        Not a regular file, unreadable, truncated, or an element that cannot be decoded.
    """
    path = Path(path)
    problem = file_kind_problem(path)
    if problem is not None:
        raise DicomInputError(problem, path=path)
    note = None
    ds: Dataset
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            try:
                ds = pydicom.dcmread(path, stop_before_pixels=headers_only)
            except InvalidDicomError:
                ds, note = _read_without_preamble(path, headers_only)
            _check_truncation(ds, path, headers_only)
            _decode_all(ds, path)
        except (InvalidDicomError, DicomInputError):
            raise
        except Exception as exc:  # pydicom raises many types on corrupted files
            raise DicomInputError(
                f"cannot read the file ({type(exc).__name__}: {exc})", path=path
            ) from exc
        finally:
            for w in caught:
                log.warning("%s: pydicom: %s", path, w.message)
    return ds, note


def _read_without_preamble(path: Path, headers_only: bool) -> tuple[Dataset, str]:
    """Read a file stored without the 128-byte preamble (and possibly without File Meta).

    Two layouts are accepted (PS3.10 7.1 requires the preamble, but such files exist):
    the ``DICM`` prefix at offset 0, and a bare dataset starting with a group 0002 or
    0008 element (as ACR-NEMA-style and some exported files do). Anything else is not
    DICOM. The transfer syntax of a bare dataset is the one pydicom detects.
    """
    with open(path, "rb") as f:
        head = f.read(8)
    if head[:4] == b"DICM":
        data = b"\0" * 128 + path.read_bytes()
        ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=headers_only)
        ds.filename = str(path)
        return ds, "read without the 128-byte preamble (the 'DICM' prefix starts the file)"
    if len(head) < 8 or head[:2] not in (b"\x02\x00", b"\x08\x00"):
        raise InvalidDicomError(
            "not a DICOM file (no 'DICM' prefix / file meta information, and it does not "
            "start like a DICOM dataset)"
        )
    ds = pydicom.dcmread(path, stop_before_pixels=headers_only, force=True)
    if "SOPClassUID" not in ds or not (
        "SeriesInstanceUID" in ds or "DirectoryRecordSequence" in ds
    ):
        raise InvalidDicomError(
            "no 'DICM' prefix; read as a bare dataset it has no SOPClassUID/"
            "SeriesInstanceUID, so it is not taken as a DICOM image or object"
        )
    meta = getattr(ds, "file_meta", None)
    if meta is None:
        meta = FileMetaDataset()
        ds.file_meta = meta
    if "TransferSyntaxUID" not in meta:
        implicit, little = ds.original_encoding
        ts = _RAW_TRANSFER_SYNTAX.get((bool(implicit), bool(little)))
        if ts is None:
            raise InvalidDicomError("no File Meta Information and an unknown encoding")
        meta.TransferSyntaxUID = ts
        return ds, f"read without preamble and File Meta Information (encoding: {ts.name})"
    return ds, "read without the 128-byte preamble and 'DICM' prefix"


def _check_truncation(ds: Dataset, path: Path, headers_only: bool) -> None:
    """Refuse a file whose last element is cut short (pydicom keeps the partial bytes)."""
    try:
        size = path.stat().st_size
    except OSError:  # pragma: no cover - the file was just read
        return
    end = 0
    for tag in list(ds.keys()):
        elem = ds.get_item(tag)
        length = getattr(elem, "length", None)
        value_tell = getattr(elem, "value_tell", None)
        if length is None or value_tell is None or getattr(elem, "is_undefined_length", False):
            continue
        if length == 0xFFFFFFFF:
            continue
        value = getattr(elem, "value", None)
        if isinstance(value, bytes | bytearray) and len(value) < length:
            raise DicomInputError(
                f"the file is truncated: element {Tag(tag)} declares {length} bytes at offset "
                f"{value_tell}, only {len(value)} are present (file size {size} bytes). "
                "Copy or export the file again.",
                path=path,
                tag=keyword_for_tag(tag) or str(Tag(tag)),
            )
        end = max(end, int(value_tell) + int(length))
    if not headers_only and 0 < size - end < 8:
        with open(path, "rb") as f:
            f.seek(end)
            rest = f.read()
        if rest.strip(b"\0"):
            raise DicomInputError(
                f"the file is truncated: {len(rest)} byte(s) after the last complete element "
                f"(offset {end} of {size}) are the start of an element cut short. Copy or "
                "export the file again.",
                path=path,
            )


#: Value representations whose decoding cannot raise in pydicom's lenient reading mode
#: (text: invalid values are kept as text, with a warning when they are first decoded).
#: Every other element (binary numbers, tags, sequences, and IS, whose decoding raises on
#: "inf") is decoded by :func:`_decode_all`.
_TEXT_VRS = frozenset(
    {"AE", "AS", "CS", "DA", "DS", "DT", "LO", "LT", "PN", "SH", "ST", "TM", "UC", "UI",
     "UR", "UT"}
)  # fmt: skip


def _decode_all(ds: Dataset, path: Path) -> None:
    """Decode the elements whose decoding can fail (binary values with a wrong length,
    sequences that do not parse), recursively, so that they fail here, naming the tag.

    Text values are left to be decoded when used (decoding every text element of every
    header would triple the time to scan a folder); they cannot raise, and the readers
    check the values they use (:func:`strict_float`, :func:`strict_int`, :func:`parse_da`).
    """

    def walk(d: Dataset, depth: int) -> None:
        if depth > 32:
            raise DicomInputError(
                "sequences nested more than 32 levels deep (corrupted file?)", path=path
            )
        for tag in list(d.keys()):
            if int(tag) in _KEEP_RAW or getattr(d.get_item(tag), "VR", None) in _TEXT_VRS:
                continue
            try:
                elem = d[tag]
            except Exception as exc:
                raise DicomInputError(
                    f"element {Tag(tag)} cannot be decoded ({type(exc).__name__}: {exc})",
                    path=path,
                    tag=keyword_for_tag(tag) or str(Tag(tag)),
                ) from exc
            if elem.VR == "SQ" and int(tag) not in _NO_DESCEND:
                for item in elem.value or []:
                    walk(item, depth + 1)

    walk(ds, 0)


# ----------------------------------------------------------------------------- times
_TM = re.compile(r"^(\d{2})(\d{2})?(\d{2})?(?:\.(\d{1,6}))?$")


def parse_tm(value: Any, *, path: str | Path | None = None, tag: str = "Time") -> time:
    """Parse a DICOM TM value (``HHMMSS.FFFFFF``, shorter forms, or ``HH:MM:SS``).

    >>> parse_tm("141700.5")
    datetime.time(14, 17, 0, 500000)
    """
    text = str(value).strip().replace(":", "")
    m = _TM.match(text)
    if not m:
        raise DicomInputError(f"{text!r} is not a DICOM time (HHMMSS.FFFFFF)", path=path, tag=tag)
    hh, mm, ss, frac = m.groups()
    try:
        return time(int(hh), int(mm or 0), min(int(ss or 0), 59), int((frac or "0").ljust(6, "0")))
    except ValueError as exc:
        raise DicomInputError(f"{text!r} is not a valid time: {exc}", path=path, tag=tag) from exc


#: Years accepted in DICOM dates of images and administrations. A sanity window, not a
#: published bound: no PET or SPECT image predates 1900, and the margin to the calendar's
#: limits (years 1 and 9999) keeps the date arithmetic of the readers in range.
DATE_YEAR_RANGE = (1900, 2999)


def parse_da(value: Any, *, path: str | Path | None = None, tag: str = "Date") -> date:
    """Parse a DICOM DA value (``YYYYMMDD``; ``YYYY.MM.DD`` accepted).

    Years outside :data:`DATE_YEAR_RANGE` are refused (a corrupted or placeholder date).

    >>> parse_da("19600614")
    datetime.date(1960, 6, 14)
    """
    text = str(value).strip().replace(".", "").replace("-", "")
    if not re.fullmatch(r"\d{8}", text):
        raise DicomInputError(f"{text!r} is not a DICOM date (YYYYMMDD)", path=path, tag=tag)
    try:
        d = date(int(text[:4]), int(text[4:6]), int(text[6:8]))
    except ValueError as exc:
        raise DicomInputError(f"{text!r} is not a valid date: {exc}", path=path, tag=tag) from exc
    lo, hi = DATE_YEAR_RANGE
    if not lo <= d.year <= hi:
        raise DicomInputError(
            f"{text!r}: year {d.year} is outside {lo}-{hi}, not a plausible date of an image or "
            "an administration (a placeholder or corrupted value). Pass the time explicitly "
            "(acquisition_time=..., injection_time=...)",
            path=path,
            tag=tag,
        )
    return d


def parse_dt(value: Any, *, path: str | Path | None = None, tag: str = "DateTime") -> datetime:
    """Parse a DICOM DT value (``YYYYMMDDHHMMSS.FFFFFF``, optional ``&ZZXX`` offset ignored).

    The offset from UTC, when present, is dropped: all times of a study are compared in
    the scanner's local time (as DA/TM values are).

    >>> parse_dt("20240102030405.25+0100")
    datetime.datetime(2024, 1, 2, 3, 4, 5, 250000)
    """
    text = re.split(r"[+-]", str(value).strip(), maxsplit=1)[0]
    if not re.fullmatch(r"\d{8}(\d{2}(\d{2}(\d{2}(\.\d{1,6})?)?)?)?", text):
        raise DicomInputError(
            f"{str(value)!r} is not a DICOM date-time (YYYYMMDDHHMMSS.FFFFFF)", path=path, tag=tag
        )
    d = parse_da(text[:8], path=path, tag=tag)
    t = parse_tm(text[8:], path=path, tag=tag) if len(text) > 8 else time(0)
    return datetime.combine(d, t)


def header_datetime(
    ds: Dataset, date_kw: str, time_kw: str, *, path: str | Path | None = None
) -> datetime | None:
    """``date_kw`` + ``time_kw`` of ``ds`` as a datetime, or ``None`` when either is empty."""
    d, t = ds.get(date_kw), ds.get(time_kw)
    if not d or not t:
        return None
    return datetime.combine(
        parse_da(d, path=path, tag=date_kw), parse_tm(t, path=path, tag=time_kw)
    )


def as_datetime(value: Any, name: str) -> datetime:
    """An override given as ``datetime`` or ISO-8601 string."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            pass
    raise DicomInputError(
        f"{name}={value!r} is not a datetime; give a datetime.datetime or an ISO string "
        "such as '2024-03-01T10:15:00'"
    )


# ----------------------------------------------------------------------------- series
@dataclass
class SeriesInfo:
    """The instances of one series found by :func:`find_series` (headers only).

    Attributes
    ----------
    series_instance_uid, frame_of_reference_uid, modality, sop_class_uid
        Identification of the series (FrameOfReferenceUID may be ``None``).
    files
        Paths of the instances, in the order they were found (not slice order).
    headers
        The header of each file, read with ``stop_before_pixels=True``.
    skipped_nearby
        ``(path, reason)`` of files skipped in the same folder(s) as this series' files
        (unreadable, truncated, not regular files, ...): named when the series turns out
        to be incomplete.
    dicomdir_missing
        ``(missing file, DICOMDIR)`` for files that a DICOMDIR lists under this series
        but that do not exist.
    notes
        How files were read when it was not the standard way (e.g. without preamble);
        copied into the provenance of the series.
    """

    series_instance_uid: str
    frame_of_reference_uid: str | None
    modality: str
    sop_class_uid: str
    files: list[Path] = field(default_factory=list)
    headers: list[Dataset] = field(default_factory=list)
    skipped_nearby: list[tuple[Path, str]] = field(default_factory=list)
    dicomdir_missing: list[tuple[Path, Path]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def first(self) -> Dataset:
        """Header of the first file found."""
        return self.headers[0]

    def _get(self, keyword: str) -> str:
        return str(self.first.get(keyword, "") or "")

    @property
    def patient_id(self) -> str:
        return self._get("PatientID")

    @property
    def patient_name(self) -> str:
        return self._get("PatientName")

    @property
    def study_instance_uid(self) -> str:
        return self._get("StudyInstanceUID")

    @property
    def study_date(self) -> str:
        return self._get("StudyDate")

    @property
    def study_description(self) -> str:
        return self._get("StudyDescription")

    @property
    def series_description(self) -> str:
        return self._get("SeriesDescription")

    @property
    def series_number(self) -> str:
        return self._get("SeriesNumber")

    @property
    def n_frames(self) -> int:
        """Total number of image frames (files x NumberOfFrames)."""
        return sum(_int_or(h.get("NumberOfFrames"), 1) for h in self.headers)

    def row(self) -> dict[str, Any]:
        """A summary dict for tables."""
        return {
            "patient_id": self.patient_id,
            "patient_name": self.patient_name,
            "study_date": self.study_date,
            "study_description": self.study_description,
            "study_instance_uid": self.study_instance_uid,
            "modality": self.modality,
            "series_number": self.series_number,
            "series_description": self.series_description,
            "n_files": len(self.files),
            "n_frames": self.n_frames,
            "frame_of_reference_uid": self.frame_of_reference_uid,
            "series_instance_uid": self.series_instance_uid,
            "sop_class": pydicom.uid.UID(self.sop_class_uid).name if self.sop_class_uid else "",
            "folder": str(_common_parent(self.files)),
        }

    def __repr__(self) -> str:
        return (
            f"SeriesInfo({self.modality}, {self.series_description!r}, {len(self.files)} files, "
            f"uid={self.series_instance_uid})"
        )


def _common_parent(paths: list[Path]) -> Path:
    if not paths:
        return Path()
    try:
        return Path(os.path.commonpath([str(p.parent) for p in paths]))
    except ValueError:
        return paths[0].parent


#: Identification attributes that grouping and series selection use as text.
_IDENTITY_KEYWORDS = ("SOPClassUID", "SOPInstanceUID", "SeriesInstanceUID", "Modality", "ImageType")


def _malformed_identity(ds: Dataset) -> str | None:
    """Why the file's identification attributes cannot be used (not text), or ``None``."""
    for kw in _IDENTITY_KEYWORDS:
        value = ds.get(kw)
        if value is None:
            continue
        values = list(value) if isinstance(value, MultiValue) else [value]
        if not all(isinstance(v, str) for v in values):
            return (
                f"{kw} ({keyword_tag(kw)}) is not text ({type(value).__name__} {value!r}): "
                "the file's identity is corrupted"
            )
    return None


def keyword_tag(keyword: str) -> str:
    """``"(0008,0008)"`` for ``"ImageType"``."""
    return str(Tag(tag_for_keyword(keyword) or 0))


def _cut_in_preamble(path: Path) -> bool:
    """True for an empty file or one holding only part of a zero preamble (< 132 bytes):
    what a DICOM file truncated before its 'DICM' prefix looks like."""
    try:
        if path.stat().st_size >= 132:
            return False
        return not path.read_bytes().strip(b"\0")
    except OSError:
        return True


def _int_or(value: Any, default: int) -> int:
    """``int(value)`` for display and counting; ``default`` when absent or malformed."""
    try:
        return int(value) if value not in (None, "") else default
    except (TypeError, ValueError):
        return default


def _iter_files(root: Path) -> Iterator[Path]:
    """Every entry below ``root`` that is not a directory (regular files, links, FIFOs,
    sockets, devices: the caller checks what each one is before opening it)."""
    if not root.is_dir():
        yield root
        return
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            yield Path(dirpath) / name


def _frame_of_reference(ds: Dataset) -> str | None:
    uid = ds.get("FrameOfReferenceUID")
    if uid:
        return str(uid)
    # RTSTRUCT keeps it in ReferencedFrameOfReferenceSequence
    try:
        seq = seq_items(ds, "ReferencedFrameOfReferenceSequence", None)
    except DicomInputError:  # malformed: no frame of reference for grouping
        return None
    if seq:
        uid = seq[0].get("FrameOfReferenceUID")
        if uid:
            return str(uid)
    return None


def _dicomdir_records(ds: Dataset) -> list[tuple[Dataset, str | None]]:
    """The directory records with a Referenced File ID, each with the SeriesInstanceUID of
    the SERIES record above it (``None`` when the hierarchy cannot be followed).

    The hierarchy is followed through the record offsets (PS3.10 8.5: Offset of the First
    Directory Record of the Root Directory Entity, Offset of the Next Directory Record,
    Offset of Referenced Lower-Level Directory Entity); records that cannot be reached that
    way are returned without a series.
    """
    records = list(ds.get("DirectoryRecordSequence") or [])
    by_offset: dict[int, Dataset] = {}
    for rec in records:
        tell = getattr(rec, "seq_item_tell", None)
        if isinstance(tell, int):
            by_offset[tell] = rec
    series_of: dict[int, str | None] = {}
    visited: set[int] = set()

    def sibling_chain(offset: Any) -> Iterator[Dataset]:
        while isinstance(offset, int) and offset in by_offset and offset not in visited:
            visited.add(offset)
            rec = by_offset[offset]
            yield rec
            offset = rec.get("OffsetOfTheNextDirectoryRecord")

    stack: list[tuple[Any, str | None]] = [
        (ds.get("OffsetOfTheFirstDirectoryRecordOfTheRootDirectoryEntity"), None)
    ]
    while stack:
        offset, series = stack.pop()
        for rec in sibling_chain(offset):
            uid = series
            if str(rec.get("DirectoryRecordType", "")).strip().upper() == "SERIES":
                uid = str(rec.get("SeriesInstanceUID", "") or "") or None
            series_of[id(rec)] = uid
            lower = rec.get("OffsetOfReferencedLowerLevelDirectoryEntity")
            if lower:
                stack.append((lower, uid))
    return [(rec, series_of.get(id(rec))) for rec in records if rec.get("ReferencedFileID")]


def _check_dicomdir(path: Path, ds: Dataset) -> list[tuple[Path, str | None]]:
    """Files referenced by a DICOMDIR that are missing: ``(file, SeriesInstanceUID or None)``.

    Each missing file is logged as a warning; the series it belongs to is refused on
    loading (an incomplete series, :class:`~dosimetry.errors.IncompleteSeriesError`).
    """
    missing: list[tuple[Path, str | None]] = []
    try:
        entries = _dicomdir_records(ds)
    except Exception as exc:  # a corrupted directory: the images are read from the tree anyway
        log.warning("%s: DICOMDIR records cannot be followed (%s)", path, exc)
        return missing
    for rec, series_uid in entries:
        file_id = rec.get("ReferencedFileID")
        parts = [file_id] if isinstance(file_id, str) else [str(x) for x in file_id]
        if len(parts) == 1 and "\\" in parts[0]:
            parts = parts[0].split("\\")
        target = path.parent.joinpath(*[x.strip() for x in parts])
        if not target.exists():
            missing.append((target, series_uid))
            log.warning(
                "%s: DICOMDIR references %s (series %s), which does not exist",
                path,
                target,
                series_uid or "unknown",
            )
    log.info("%s: DICOMDIR references %d file(s), %d missing", path, len(entries), len(missing))
    return missing


def scan_folder(folder: str | Path) -> tuple[list[SeriesInfo], list[tuple[Path, str]]]:
    """Walk ``folder`` and group the DICOM instances into series.

    Parameters
    ----------
    folder
        A folder (walked recursively) or a single file.

    Returns
    -------
    series
        One :class:`SeriesInfo` per (SeriesInstanceUID, FrameOfReferenceUID), sorted by
        patient, study date, modality and series number.
    skipped
        ``(path, reason)`` for every file that was not used (each is also logged: at
        WARNING level for files that look like damaged DICOM or are not regular files, at
        INFO level for other non-DICOM files, DICOMDIRs and duplicates).

    Notes
    -----
    Only regular files are opened (symbolic links are followed to regular files only), so
    a named pipe, socket or device in the folder never blocks the walk. Files without the
    DICOM preamble are read when they start like a DICOM dataset (the way they were read
    is recorded in :attr:`SeriesInfo.notes`).
    """
    root = Path(folder)
    if not root.exists():
        raise DicomInputError(f"folder {root} does not exist", path=root)
    problem = None if root.is_dir() else file_kind_problem(root)
    if problem is not None:
        raise DicomInputError(f"{problem}; give a folder or a DICOM file", path=root)
    groups: dict[tuple[str, str | None], SeriesInfo] = {}
    seen_sop: dict[str, Path] = {}
    skipped: list[tuple[Path, str]] = []
    nearby: list[tuple[Path, str]] = []
    dicomdir_missing: list[tuple[Path, str | None, Path]] = []

    def skip(p: Path, reason: str, *, suspect: bool) -> None:
        skipped.append((p, reason))
        if suspect:
            nearby.append((p, reason))
            log.warning("skipped %s: %s", p, reason)
        else:
            log.info("skipped %s: %s", p, reason)

    for path in _iter_files(root):
        problem = file_kind_problem(path)
        if problem is not None:
            skip(path, problem, suspect=True)
            continue
        try:
            ds, note = _read_with_note(path, headers_only=True)
        except InvalidDicomError as exc:
            reason = str(exc)
            if "'DICM' prefix is missing" in reason:
                reason = "not a DICOM file (no 'DICM' prefix / file meta information)"
            suspect = reason.startswith("no 'DICM' prefix") or _cut_in_preamble(path)
            skip(path, reason, suspect=suspect)
            continue
        except DicomInputError as exc:  # truncated, corrupted, unreadable
            skip(path, f"unreadable DICOM file: {exc.args[0]}", suspect=True)
            continue
        if note is not None:
            log.warning("%s: %s", path, note)
        malformed = _malformed_identity(ds)
        if malformed is not None:
            skip(path, malformed, suspect=True)
            continue
        sop_class = str(
            ds.get("SOPClassUID", "") or ds.file_meta.get("MediaStorageSOPClassUID", "")
        )
        if sop_class == MEDIA_STORAGE_DIRECTORY or "DirectoryRecordSequence" in ds:
            dicomdir_missing.extend((m, uid, path) for m, uid in _check_dicomdir(path, ds))
            skip(
                path,
                "DICOMDIR (used to cross-check the file set; images are read from the tree)",
                suspect=False,
            )
            continue
        series_uid = ds.get("SeriesInstanceUID")
        if not series_uid:
            skip(path, "no SeriesInstanceUID (truncated or not a composite object)", suspect=True)
            continue
        sop_uid = str(ds.get("SOPInstanceUID", "") or "")
        if sop_uid and sop_uid in seen_sop:
            skip(
                path,
                f"duplicate of {seen_sop[sop_uid]} (same SOPInstanceUID {sop_uid})",
                suspect=False,
            )
            continue
        if sop_uid:
            seen_sop[sop_uid] = path
        key = (str(series_uid), _frame_of_reference(ds))
        info = groups.get(key)
        if info is None:
            info = SeriesInfo(
                series_instance_uid=key[0],
                frame_of_reference_uid=key[1],
                modality=str(ds.get("Modality", "") or "").upper(),
                sop_class_uid=sop_class,
            )
            groups[key] = info
        info.files.append(path)
        info.headers.append(ds)
        if note is not None:
            info.notes.append(f"{path.name}: {note}")
    for info in groups.values():
        folders = {p.parent for p in info.files}
        info.skipped_nearby = [(p, r) for p, r in nearby if p.parent in folders]
        info.dicomdir_missing = [
            (m, d) for m, uid, d in dicomdir_missing if uid == info.series_instance_uid
        ]
    split = {uid for uid, _ in groups}
    for uid in split:
        fors = [k[1] for k in groups if k[0] == uid]
        if len(fors) > 1:
            log.warning(
                "series %s spans %d frames of reference %s: listed as separate series",
                uid,
                len(fors),
                fors,
            )
    series = sorted(
        groups.values(),
        key=lambda s: (
            s.patient_id,
            s.study_date,
            s.study_instance_uid,
            s.modality,
            _int_or_big(s.series_number),
            s.series_instance_uid,
        ),
    )
    log.info(
        "%s: %d series from %d files (%d skipped)",
        root,
        len(series),
        sum(len(s.files) for s in series),
        len(skipped),
    )
    return series, skipped


def _int_or_big(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        return 1 << 30


def find_series(folder: str | Path) -> list[SeriesInfo]:
    """Series found under ``folder`` (headers only, no pixel data read).

    Parameters
    ----------
    folder
        A folder walked recursively (a DICOMDIR in it is cross-checked), or one file.

    Returns
    -------
    list of SeriesInfo
        One entry per (SeriesInstanceUID, FrameOfReferenceUID); non-DICOM files are
        skipped with a logged reason (see :func:`scan_folder` for the list).

    Examples
    --------
    >>> from pydicom.data import get_testdata_file
    >>> from pathlib import Path
    >>> ct5n = Path(get_testdata_file("DICOMDIR", download=False)).parent / "98892001/CT5N"
    >>> [(s.modality, len(s.files)) for s in find_series(ct5n)]
    [('CT', 5)]
    """
    return scan_folder(folder)[0]


# ----------------------------------------------------------------------------- images
@dataclass(frozen=True)
class _Frame:
    """One image plane of a series: file index and frame index (None = single frame)."""

    file_index: int
    frame_index: int | None
    plane: Plane


def _floats(ds: Dataset, keyword: str, n: int, path: Path) -> tuple[float, ...]:
    value = ds.get(keyword)
    if value is None or value == "":
        raise DicomInputError(
            f"{keyword} is missing: the image cannot be placed in patient space",
            path=path,
            tag=keyword,
        )
    if isinstance(value, bytes | bytearray):
        value = value.decode("ascii", errors="replace")
    if isinstance(value, str):
        value = value.split("\\")
    try:
        vals = tuple(float(v) for v in (value if isinstance(value, Iterable) else [value]))
    except (TypeError, ValueError) as exc:
        raise DicomInputError(
            f"{keyword}={value!r} is not numeric", path=path, tag=keyword
        ) from exc
    if len(vals) != n:
        raise DicomInputError(
            f"{keyword} has {len(vals)} values, expected {n}", path=path, tag=keyword
        )
    return vals


def seq_items(ds: Dataset, keyword: str, path: str | Path | None) -> list[Dataset]:
    """The items of sequence ``keyword`` (``[]`` when absent or empty).

    A value that is not a sequence of datasets (e.g. the element was written with another
    value representation) is a :class:`DicomInputError` naming the tag.
    """
    value = ds.get(keyword)
    if value is None or value == "":
        return []
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        raise DicomInputError(
            f"{keyword} is not a sequence (value {str(value)[:40]!r})", path=path, tag=keyword
        )
    items = list(value)
    if not all(isinstance(it, Dataset) for it in items):
        raise DicomInputError(
            f"{keyword} holds items that are not datasets", path=path, tag=keyword
        )
    return items


def optional_float(ds: Dataset, keyword: str) -> float | None:
    """``float(ds.keyword)`` or ``None`` when absent or empty."""
    value = ds.get(keyword)
    if value is None or value == "":
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def strict_float(ds: Dataset, keyword: str, path: str | Path | None) -> float | None:
    """``float(ds.keyword)``; ``None`` when absent or empty, an error when malformed.

    Unlike :func:`optional_float`, a value that is present but is not one finite number
    (text, several values, NaN, infinity) is a :class:`DicomInputError` naming the tag.
    """
    value = ds.get(keyword)
    if value is None or value == "":
        return None
    try:
        f = float(value)
    except (TypeError, ValueError, OverflowError):
        raise DicomInputError(
            f"{keyword} = {value!r} is not a number", path=path, tag=keyword
        ) from None
    if not math.isfinite(f):
        raise DicomInputError(f"{keyword} = {value!r} is not finite", path=path, tag=keyword)
    return f


def strict_int(ds: Dataset, keyword: str, path: str | Path | None, default: int) -> int:
    """``int(ds.keyword)``; ``default`` when absent or empty, an error when malformed."""
    value = ds.get(keyword)
    if value is None or value == "":
        return default
    try:
        f = float(value)
        if not f.is_integer():
            raise ValueError
        return int(f)
    except (TypeError, ValueError, OverflowError):
        raise DicomInputError(
            f"{keyword} = {value!r} is not an integer", path=path, tag=keyword
        ) from None


def image_shape(ds: Dataset, path: str | Path | None) -> tuple[int, int]:
    """(Rows, Columns) of an image header; missing, zero or malformed is an error."""
    rows = strict_int(ds, "Rows", path, 0)
    cols = strict_int(ds, "Columns", path, 0)
    if rows <= 0 or cols <= 0:
        raise DicomInputError(
            f"Rows/Columns missing or not positive (Rows={ds.get('Rows')!r}, "
            f"Columns={ds.get('Columns')!r})",
            path=path,
            tag="Rows",
        )
    return rows, cols


def _positive_override(value: Any, name: str) -> float:
    try:
        f = float(value)
    except (TypeError, ValueError):
        raise DicomInputError(f"{name}={value!r} is not a number") from None
    if not (math.isfinite(f) and f > 0):
        raise DicomInputError(f"{name}={value!r} must be a positive finite number")
    return f


def _bare_message(exc: DicomInputError) -> str:
    """The message of ``exc`` without the 'file ...; tag ...: ' prefix it was built with."""
    text = str(exc.args[0]) if exc.args else ""
    prefix = []
    if exc.path is not None:
        prefix.append(f"file {exc.path}")
    if exc.tag is not None:
        prefix.append(f"tag {exc.tag}")
    head = f"{'; '.join(prefix)}: " if prefix else ""
    return text[len(head) :] if head and text.startswith(head) else text


class ImageSeries:
    """A DICOM image series read as a 3-D volume (base of PET, SPECT and CT series).

    Parameters
    ----------
    info
        The series as found by :func:`find_series`.
    overrides
        Values that replace or complete the header (see each subclass); every override
        used is recorded in :attr:`provenance`.

    Attributes
    ----------
    volume
        The image as stored, after Rescale Slope/Intercept, in the stored unit.
    header
        A copy of the first instance (slice order) without PixelData: the reference
        dataset for writers.
    files
        Paths in slice order.
    provenance
        Files, SOP instance UIDs, tags used, overrides applied and derivations.
    """

    modality_name = "image"
    #: dtype of :attr:`volume` (HU fit exactly in float32; activities use float64).
    _volume_dtype: type = np.float64
    #: Override names accepted by this series type.
    override_names: frozenset[str] = frozenset({"allow_nonuniform", "allow_incomplete"})
    #: The IOD module that makes RescaleSlope (and RescaleIntercept) Type 1 for this
    #: modality, or ``None`` where they are optional (absent = identity, recorded).
    _rescale_module: str | None = None
    #: Whether a missing RescaleIntercept is an error (else 0, recorded).
    _intercept_required: bool = False
    #: Output unit of the rescaled values, for messages.
    _rescaled_what: str = "the image values"

    def __init__(self, info: SeriesInfo, overrides: Mapping[str, Any] | None = None):
        if not info.files:
            raise DicomInputError(f"series {info.series_instance_uid} has no files")
        self._info = info
        overrides = dict(overrides or {})
        unknown = sorted(set(overrides) - self.override_names)
        if unknown:
            raise DicomInputError(
                f"unknown override(s) {unknown} for a {self.modality_name} series; valid: "
                f"{', '.join(sorted(self.override_names))}"
            )
        self._overrides = overrides
        self._tags_used: dict[str, Any] = {}
        self._derivations: list[str] = []
        self._overrides_applied: dict[str, Any] = {}
        for text in info.notes:
            self._note(text)

    # -- bookkeeping -------------------------------------------------------------------
    def _note(self, text: str) -> None:
        """Record (and log) a derivation."""
        if text not in self._derivations:
            self._derivations.append(text)
            log.info("%s %s: %s", self.modality_name, self.series_instance_uid, text)

    def _use_tag(self, keyword: str, value: Any) -> Any:
        self._tags_used[keyword] = value if isinstance(value, int | float | str) else str(value)
        return value

    def _override(self, name: str) -> Any:
        """The override ``name`` if given (recorded as applied), else ``None``."""
        if name in self._overrides and self._overrides[name] is not None:
            value = self._overrides[name]
            self._overrides_applied[name] = (
                value if isinstance(value, int | float | str) else str(value)
            )
            return value
        return None

    @property
    def info(self) -> SeriesInfo:
        """The discovery record (headers of every file, in the order found)."""
        return self._info

    @property
    def overrides(self) -> dict[str, Any]:
        """The overrides this series was created with."""
        return dict(self._overrides)

    @property
    def provenance(self) -> dict[str, Any]:
        """Where the values come from: files, SOP UIDs, tags used, overrides, derivations."""
        return {
            "modality": self._info.modality,
            "series_instance_uid": self.series_instance_uid,
            "study_instance_uid": self.study_instance_uid,
            "frame_of_reference_uid": self.frame_of_reference_uid,
            "files": [str(p) for p in self.files],
            "sop_instance_uids": list(self.sop_instance_uids),
            "tags_used": dict(self._tags_used),
            "overrides_applied": dict(self._overrides_applied),
            "derivations": list(self._derivations),
        }

    # -- identity ------------------------------------------------------------------------
    @property
    def series_instance_uid(self) -> str:
        return self._info.series_instance_uid

    @property
    def study_instance_uid(self) -> str:
        return self._info.study_instance_uid

    @property
    def frame_of_reference_uid(self) -> str | None:
        return self._info.frame_of_reference_uid

    @property
    def modality(self) -> str:
        return self._info.modality

    @property
    def series_description(self) -> str:
        return self._info.series_description

    # -- geometry ------------------------------------------------------------------------
    def _frames(self) -> list[_Frame]:
        """The image planes of the series (any order). Subclasses handle multi-frame."""
        frames = []
        for i, (path, ds) in enumerate(zip(self._info.files, self._info.headers, strict=True)):
            self._refuse_unsupported(path, ds)
            n = strict_int(ds, "NumberOfFrames", path, 1)
            if n > 1:
                raise DicomInputError(
                    f"multi-frame {self.modality_name} object ({n} frames) without a frame "
                    "geometry this reader understands",
                    path=path,
                    tag="NumberOfFrames",
                )
            frames.append(_Frame(i, None, self._plane(path, ds)))
        return frames

    @staticmethod
    def _refuse_unsupported(path: Path, ds: Dataset) -> None:
        sop = str(ds.get("SOPClassUID", ""))
        if sop in _ENHANCED_SOP_CLASSES or "PerFrameFunctionalGroupsSequence" in ds:
            name = _ENHANCED_SOP_CLASSES.get(sop, "enhanced multi-frame object")
            raise DicomInputError(
                f"{name}: per-frame functional-group geometry is not supported yet; convert "
                "the series to single-frame instances (e.g. dcmtk 'emf2sf') and load those",
                path=path,
                tag="PerFrameFunctionalGroupsSequence",
            )

    @staticmethod
    def _plane(path: Path, ds: Dataset, frame: int | None = None) -> Plane:
        ipp = _floats(ds, "ImagePositionPatient", 3, path)
        iop = _floats(ds, "ImageOrientationPatient", 6, path)
        ps = _floats(ds, "PixelSpacing", 2, path)
        rows, cols = image_shape(ds, path)
        src = str(path) if frame is None else f"{path} [frame {frame + 1}]"
        return Plane(ipp, iop, (ps[0], ps[1]), (rows, cols), src)  # type: ignore[arg-type]

    def _single_slice_spacing(self, ds: Dataset) -> tuple[float | None, str]:
        sbs = optional_float(ds, "SpacingBetweenSlices")
        if sbs is not None and sbs != 0:
            return abs(sbs), "SpacingBetweenSlices"
        st = optional_float(ds, "SliceThickness")
        if st is not None:
            return st, "SliceThickness"
        return None, "SliceThickness"

    @cached_property
    def _stack(self) -> tuple[list[_Frame], StackGeometry]:
        frames = self._frames()
        if not frames:
            raise DicomInputError(
                f"{self.modality_name} series {self.series_instance_uid} has no image planes",
                path=self._info.files[0],
            )
        self._check_complete(frames)
        allow: Any = self._override("allow_nonuniform") or False
        spacing, src = self._single_slice_spacing(self._info.headers[frames[0].file_index])
        try:
            geom = stack_planes(
                [f.plane for f in frames],
                single_slice_spacing_mm=spacing,
                single_slice_spacing_source=src,
                allow_nonuniform=allow,
                what=f"{self.modality_name} series {self.series_instance_uid}",
            )
        except DicomInputError as exc:
            extra = self._skipped_text()
            if not extra or exc.tag != "ImagePositionPatient":
                raise
            raise type(exc)(_bare_message(exc) + extra, path=exc.path, tag=exc.tag) from exc
        for d in geom.derivations:
            self._note(d)
        return [frames[i] for i in geom.order], geom

    # -- completeness ----------------------------------------------------------------------
    def _skipped_text(self) -> str:
        """Files skipped next to this series' files, for error messages ('' when none)."""
        items = self._info.skipped_nearby
        if not items:
            return ""
        shown = "; ".join(f"{p} ({reason})" for p, reason in items[:8])
        more = f"; and {len(items) - 8} more" if len(items) > 8 else ""
        return (
            f" {len(items)} file(s) in the series folder could not be used and may be the "
            f"missing ones: {shown}{more}."
        )

    def _incomplete(self, message: str, *, path: Any = None, tag: str | None = None) -> None:
        """Refuse an incomplete series, unless ``allow_incomplete=True`` was given."""
        if self._override("allow_incomplete"):
            self._note(f"incomplete series loaded on request (allow_incomplete=True): {message}")
            log.warning(
                "%s series %s loaded although incomplete (allow_incomplete=True): %s",
                self.modality_name,
                self.series_instance_uid,
                message,
            )
            return
        raise IncompleteSeriesError(
            f"{self.modality_name} series {self.series_instance_uid} is incomplete: {message}."
            f"{self._skipped_text()} Supply the complete series (copy or export it again); "
            "pass allow_incomplete=True only to load the partial series deliberately.",
            path=path,
            tag=tag,
        )

    def _check_complete(self, frames: list[_Frame]) -> None:
        """Refuse a series that lacks files its DICOMDIR lists (subclasses add their own
        header checks: NumberOfSlices, Image Index, Slice Vector)."""
        missing = self._info.dicomdir_missing
        if missing:
            names = ", ".join(str(m) for m, _ in missing[:10])
            more = f" and {len(missing) - 10} more" if len(missing) > 10 else ""
            self._incomplete(
                f"the DICOMDIR {missing[0][1]} lists {len(missing)} file(s) of this series "
                f"that do not exist: {names}{more}",
                path=missing[0][1],
                tag="DirectoryRecordSequence",
            )

    @property
    def geometry(self) -> StackGeometry:
        """Sorted slice geometry (order, affine, positions)."""
        return self._stack[1]

    def _sorted_frames(self) -> list[_Frame]:
        return self._stack[0]

    @property
    def files(self) -> list[Path]:
        """Files in slice order (each file once)."""
        out: list[Path] = []
        seen: set[int] = set()
        for f in self._sorted_frames():
            if f.file_index not in seen:
                seen.add(f.file_index)
                out.append(self._info.files[f.file_index])
        return out

    @property
    def sop_instance_uids(self) -> list[str]:
        """SOPInstanceUID of each file, in slice order."""
        hdr = {p: h for p, h in zip(self._info.files, self._info.headers, strict=True)}
        return [str(hdr[p].get("SOPInstanceUID", "")) for p in self.files]

    def slice_headers(self) -> list[Dataset]:
        """Header (no pixels) of the instance each output slice comes from, in slice order."""
        return [self._info.headers[f.file_index] for f in self._sorted_frames()]

    @property
    def header(self) -> Dataset:
        """Copy of the first instance in slice order, without pixel data."""
        ds = copy.deepcopy(self._info.headers[self._sorted_frames()[0].file_index])
        for kw in ("PixelData", "FloatPixelData", "DoubleFloatPixelData"):
            if kw in ds:
                del ds[kw]
        return ds

    # -- pixels ------------------------------------------------------------------------------
    def _read_pixels(self, path: Path) -> tuple[Dataset, np.ndarray]:
        try:
            ds = _read(path, headers_only=False)
        except DicomInputError:
            raise
        except Exception as exc:
            raise DicomInputError(
                f"cannot read the file ({type(exc).__name__}: {exc})", path=path
            ) from exc
        if not any(k in ds for k in ("PixelData", "FloatPixelData", "DoubleFloatPixelData")):
            raise DicomInputError(
                "the image has no PixelData (truncated file or a header-only object)",
                path=path,
                tag="PixelData",
            )
        if "ModalityLUTSequence" in ds:
            raise DicomInputError(
                "a Modality LUT Sequence instead of Rescale Slope/Intercept is not supported",
                path=path,
                tag="ModalityLUTSequence",
            )
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                arr: np.ndarray = np.asarray(ds.pixel_array)
            for w in caught:
                log.warning("%s: pydicom: %s", path, w.message)
        except Exception as exc:
            ts = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", "unknown")
            raise DicomInputError(
                f"cannot decode the pixel data (transfer syntax {ts}; {type(exc).__name__}: "
                f"{exc}). The file may be truncated, or a decoder plugin (pylibjpeg, gdcm) "
                "is needed for compressed data.",
                path=path,
                tag="PixelData",
            ) from exc
        return ds, arr

    def _rescale(self, path: Path, ds: Dataset) -> tuple[float, float]:
        """(RescaleSlope, RescaleIntercept) of one file, checked against the modality's rule.

        Type 1 modalities (PET, CT): a missing slope is an error naming the override
        ``assume_rescale_slope``; a slope that is not a positive normal float (zero,
        negative, denormal, NaN, text) is an error. Optional (NM): absent means identity.
        """
        slope = strict_float(ds, "RescaleSlope", path)
        intercept = strict_float(ds, "RescaleIntercept", path)
        if slope is None:
            if self._rescale_module is None:
                self._note(
                    f"RescaleSlope absent (optional for {self.modality_name}): stored values "
                    "used with slope 1"
                )
                slope = 1.0
            else:
                ov = self._override("assume_rescale_slope")
                if ov is None:
                    raise DicomInputError(
                        f"RescaleSlope is missing; it is required (Type 1) in the "
                        f"{self._rescale_module}, and without it {self._rescaled_what} are "
                        "unknown (it differs from slice to slice in most PET series). Export "
                        "the series again; pass assume_rescale_slope=<slope> only if you know "
                        "the slope of the images that lack it.",
                        path=path,
                        tag="RescaleSlope",
                    )
                slope = _positive_override(ov, "assume_rescale_slope")
                self._note(
                    f"RescaleSlope missing in {path.name}: {slope} used "
                    "(assume_rescale_slope override)"
                )
        if not (slope > 0 and slope >= sys.float_info.min):
            raise DicomInputError(
                f"RescaleSlope = {slope!r} is not a usable slope: it must be a positive number "
                f"(zero, negative and denormal values below {sys.float_info.min:.3g} would "
                f"turn {self._rescaled_what} into zeros or sign-flipped values)",
                path=path,
                tag="RescaleSlope",
            )
        if intercept is None:
            if self._intercept_required:
                ov = self._override("assume_rescale_intercept")
                if ov is None:
                    raise DicomInputError(
                        f"RescaleIntercept is missing; it is required (Type 1) in the "
                        f"{self._rescale_module}. Export the series again; pass "
                        "assume_rescale_intercept=<intercept> only if you know it.",
                        path=path,
                        tag="RescaleIntercept",
                    )
                try:
                    intercept = float(ov)
                except (TypeError, ValueError):
                    raise DicomInputError(
                        f"assume_rescale_intercept={ov!r} is not a number"
                    ) from None
                if not math.isfinite(intercept):
                    raise DicomInputError(f"assume_rescale_intercept={ov!r} is not finite")
                self._note(
                    f"RescaleIntercept missing in {path.name}: {intercept} used "
                    "(assume_rescale_intercept override)"
                )
            else:
                self._note(
                    f"RescaleIntercept absent in {path.name}: 0 used"
                    + (
                        " (always zero for PET images, PS3.3 C.8.9.4)"
                        if self._rescale_module
                        else ""
                    )
                )
                intercept = 0.0
        return slope, intercept

    @cached_property
    def _rescales(self) -> dict[int, tuple[float, float]]:
        """Checked (slope, intercept) of every file of the series, from the headers."""
        used = sorted({f.file_index for f in self._sorted_frames()})
        return {i: self._rescale(self._info.files[i], self._info.headers[i]) for i in used}

    def _check_pixel_bytes(self, i: int) -> None:
        """Compare the pixel data the header declares with the file size, before reading.

        For native (uncompressed) transfer syntaxes the file must hold at least
        Rows x Columns x NumberOfFrames x SamplesPerPixel x BitsAllocated / 8 bytes; a
        shorter file is truncated or its header is wrong (e.g. Rows = Columns = 65535).
        """
        path, h = self._info.files[i], self._info.headers[i]
        meta = getattr(h, "file_meta", None)
        ts = meta.get("TransferSyntaxUID") if meta is not None else None
        if ts is not None and UID(str(ts)).is_compressed:
            return
        bits = strict_int(h, "BitsAllocated", path, 0)
        if bits <= 0:
            return  # pydicom's decoder names the problem
        rows, cols = image_shape(h, path)
        n = rows * cols * strict_int(h, "NumberOfFrames", path, 1)
        n *= strict_int(h, "SamplesPerPixel", path, 1)
        declared = (n + 7) // 8 if bits == 1 else n * ((bits + 7) // 8)
        size = path.stat().st_size
        if size < declared:
            raise DicomInputError(
                f"the header declares {declared} bytes of pixel data (Rows {rows} x Columns "
                f"{cols} x NumberOfFrames x SamplesPerPixel x BitsAllocated {bits}), but the "
                f"whole file has {size} bytes: the file is truncated or Rows/Columns/"
                "NumberOfFrames/BitsAllocated are wrong",
                path=path,
                tag="PixelData",
            )

    def _raw_stack(self, dtype: type = np.float64) -> np.ndarray:
        """Stored values after Rescale, sorted ``[n, rows, cols]`` (before resampling)."""
        frames = self._sorted_frames()
        rows, cols = frames[0].plane.shape
        check_grid_budget(
            (len(frames), rows, cols),
            what=f"{self.modality_name} series {self.series_instance_uid} (slices x Rows x "
            f"Columns, Rows/Columns from {frames[0].plane.source})",
            bytes_per_voxel=np.dtype(dtype).itemsize,
        )
        rescales = self._rescales
        for i in rescales:
            self._check_pixel_bytes(i)
        out: np.ndarray = np.empty((len(frames), rows, cols), dtype=dtype)
        cache: dict[int, tuple[Dataset, np.ndarray]] = {}
        for k, fr in enumerate(frames):
            if fr.file_index not in cache:
                if fr.frame_index is not None:
                    cache.clear()  # keep one multi-frame file in memory at a time
                cache[fr.file_index] = self._read_pixels(self._info.files[fr.file_index])
            ds, arr = cache[fr.file_index]
            img = arr if fr.frame_index is None else self._frame_pixels(ds, arr, fr)
            if img.shape != (rows, cols):
                raise DicomInputError(
                    f"pixel array has shape {img.shape}, Rows/Columns say {(rows, cols)}",
                    path=self._info.files[fr.file_index],
                    tag="PixelData",
                )
            slope, intercept = rescales[fr.file_index]
            with np.errstate(over="ignore", invalid="ignore"):
                out[k] = img * slope + intercept
            if fr.frame_index is None:
                cache.pop(fr.file_index, None)
        if not np.all(np.isfinite(out)):
            k = int(np.nonzero(~np.isfinite(out).reshape(len(frames), -1).all(axis=1))[0][0])
            fr = frames[k]
            raise DicomInputError(
                f"{self.modality_name} series {self.series_instance_uid} contains NaN or "
                "infinite pixel values (after RescaleSlope/RescaleIntercept "
                f"{rescales[fr.file_index]})",
                path=self._info.files[fr.file_index],
                tag="PixelData",
            )
        return out

    @staticmethod
    def _frame_pixels(ds: Dataset, arr: np.ndarray, fr: _Frame) -> np.ndarray:
        if arr.ndim == 2:
            if fr.frame_index not in (0, None):
                raise DicomInputError(
                    f"frame {fr.frame_index} requested from a single-frame pixel array",
                    tag="NumberOfFrames",
                )
            return arr
        return arr[fr.frame_index]

    def _make_volume(
        self,
        raw: np.ndarray,
        unit: str,
        *,
        reference_time: datetime | None = None,
        dtype: type = np.float64,
        extra: Mapping[str, Any] | None = None,
    ) -> Volume:
        geom = self.geometry
        arr: np.ndarray = resample_stack(raw, geom).astype(dtype, copy=False)
        prov = self.provenance
        if extra:
            prov.update(extra)
        return Volume(
            np.ascontiguousarray(arr),
            geom.affine,
            unit,
            frame_of_reference_uid=self.frame_of_reference_uid,
            reference_time=reference_time,
            provenance=prov,
        )

    def _stored_unit(self) -> str:
        return "1"

    @cached_property
    def volume(self) -> Volume:
        """The image as stored (after Rescale Slope/Intercept), in the stored unit."""
        return self._make_volume(
            self._raw_stack(self._volume_dtype),
            self._stored_unit(),
            dtype=self._volume_dtype,
            extra=self._volume_extra(),
        )

    def _volume_extra(self) -> dict[str, Any]:
        """Extra provenance of :attr:`volume` (e.g. the DICOM unit as stored)."""
        return {}

    # -- display -------------------------------------------------------------------------------
    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.series_description!r}, {len(self._info.files)} files, "
            f"uid={self.series_instance_uid})"
        )
