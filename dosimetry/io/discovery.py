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
import logging
import os
import re
import warnings
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from ..errors import DicomInputError
from ..volume import Volume
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
def _read(path: Path, *, headers_only: bool) -> Dataset:
    """``pydicom.dcmread`` with pydicom's warnings about the file sent to the log."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = pydicom.dcmread(path, stop_before_pixels=headers_only)
    for w in caught:
        log.warning("%s: pydicom: %s", path, w.message)
    return ds


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


def parse_da(value: Any, *, path: str | Path | None = None, tag: str = "Date") -> date:
    """Parse a DICOM DA value (``YYYYMMDD``; ``YYYY.MM.DD`` accepted).

    >>> parse_da("19600614")
    datetime.date(1960, 6, 14)
    """
    text = str(value).strip().replace(".", "").replace("-", "")
    if not re.fullmatch(r"\d{8}", text):
        raise DicomInputError(f"{text!r} is not a DICOM date (YYYYMMDD)", path=path, tag=tag)
    try:
        return date(int(text[:4]), int(text[4:6]), int(text[6:8]))
    except ValueError as exc:
        raise DicomInputError(f"{text!r} is not a valid date: {exc}", path=path, tag=tag) from exc


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
    """

    series_instance_uid: str
    frame_of_reference_uid: str | None
    modality: str
    sop_class_uid: str
    files: list[Path] = field(default_factory=list)
    headers: list[Dataset] = field(default_factory=list)

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
        return sum(int(h.get("NumberOfFrames", 1) or 1) for h in self.headers)

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


def _iter_files(root: Path) -> Iterator[Path]:
    if root.is_file():
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
    seq = ds.get("ReferencedFrameOfReferenceSequence")
    if seq:
        uid = seq[0].get("FrameOfReferenceUID")
        if uid:
            return str(uid)
    return None


def _check_dicomdir(path: Path, ds: Dataset) -> None:
    """Log the DICOMDIR's referenced files that are missing (PS3.10 directory records)."""
    records = ds.get("DirectoryRecordSequence") or []
    referenced = []
    for rec in records:
        file_id = rec.get("ReferencedFileID")
        if not file_id:
            continue
        parts = [file_id] if isinstance(file_id, str) else [str(x) for x in file_id]
        if len(parts) == 1 and "\\" in parts[0]:
            parts = parts[0].split("\\")
        referenced.append(path.parent.joinpath(*parts))
    missing = [p for p in referenced if not p.exists()]
    log.info("%s: DICOMDIR references %d file(s)", path, len(referenced))
    for m in missing:
        log.warning("%s: DICOMDIR references %s, which does not exist", path, m)


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
        ``(path, reason)`` for every file that was not used (each is also logged).
    """
    root = Path(folder)
    if not root.exists():
        raise DicomInputError(f"folder {root} does not exist", path=root)
    groups: dict[tuple[str, str | None], SeriesInfo] = {}
    seen_sop: dict[str, Path] = {}
    skipped: list[tuple[Path, str]] = []

    def skip(p: Path, reason: str) -> None:
        skipped.append((p, reason))
        log.info("skipped %s: %s", p, reason)

    for path in _iter_files(root):
        try:
            ds = _read(path, headers_only=True)
        except InvalidDicomError:
            skip(path, "not a DICOM file (no 'DICM' prefix / file meta information)")
            continue
        except Exception as exc:  # truncated or corrupted header
            skip(path, f"unreadable DICOM header ({type(exc).__name__}: {exc})")
            continue
        sop_class = str(
            ds.get("SOPClassUID", "") or ds.file_meta.get("MediaStorageSOPClassUID", "")
        )
        if sop_class == MEDIA_STORAGE_DIRECTORY or "DirectoryRecordSequence" in ds:
            _check_dicomdir(path, ds)
            skip(path, "DICOMDIR (used to cross-check the file set; images are read from the tree)")
            continue
        series_uid = ds.get("SeriesInstanceUID")
        if not series_uid:
            skip(path, "no SeriesInstanceUID (truncated or not a composite object)")
            continue
        sop_uid = str(ds.get("SOPInstanceUID", "") or "")
        if sop_uid and sop_uid in seen_sop:
            skip(path, f"duplicate of {seen_sop[sop_uid]} (same SOPInstanceUID {sop_uid})")
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


def optional_float(ds: Dataset, keyword: str) -> float | None:
    """``float(ds.keyword)`` or ``None`` when absent or empty."""
    value = ds.get(keyword)
    if value is None or value == "":
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


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
    override_names: frozenset[str] = frozenset({"allow_nonuniform"})

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
            n = int(ds.get("NumberOfFrames", 1) or 1)
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
        rows, cols = ds.get("Rows"), ds.get("Columns")
        if not rows or not cols:
            raise DicomInputError("Rows/Columns missing or zero", path=path, tag="Rows")
        src = str(path) if frame is None else f"{path} [frame {frame + 1}]"
        return Plane(ipp, iop, (ps[0], ps[1]), (int(rows), int(cols)), src)  # type: ignore[arg-type]

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
        allow: Any = self._override("allow_nonuniform") or False
        spacing, src = self._single_slice_spacing(self._info.headers[frames[0].file_index])
        geom = stack_planes(
            [f.plane for f in frames],
            single_slice_spacing_mm=spacing,
            single_slice_spacing_source=src,
            allow_nonuniform=allow,
            what=f"{self.modality_name} series {self.series_instance_uid}",
        )
        for d in geom.derivations:
            self._note(d)
        return [frames[i] for i in geom.order], geom

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

    @staticmethod
    def _rescale(ds: Dataset) -> tuple[float, float]:
        slope = optional_float(ds, "RescaleSlope")
        intercept = optional_float(ds, "RescaleIntercept")
        return (1.0 if slope is None else slope), (0.0 if intercept is None else intercept)

    def _raw_stack(self, dtype: type = np.float64) -> np.ndarray:
        """Stored values after Rescale, sorted ``[n, rows, cols]`` (before resampling)."""
        frames = self._sorted_frames()
        rows, cols = frames[0].plane.shape
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
            slope, intercept = self._rescale(ds)
            out[k] = img * slope + intercept
            if fr.frame_index is None:
                cache.pop(fr.file_index, None)
        if not np.all(np.isfinite(out)):
            raise DicomInputError(
                f"{self.modality_name} series {self.series_instance_uid} contains NaN or "
                "infinite pixel values",
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
