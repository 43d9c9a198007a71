"""A patient folder as a :class:`Study`: the series found, and access to each of them.

>>> import dosimetry as ds                                  # doctest: +SKIP
>>> study = ds.load_study("patient_folder/")                # doctest: +SKIP
>>> print(study)                                            # doctest: +SKIP
>>> pet = study.pet()                                       # doctest: +SKIP
>>> conc = pet.activity_at_acquisition()  # Bq/mL at scan start  # doctest: +SKIP
"""

from __future__ import annotations

import html
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydicom.dataset import Dataset

from ..errors import DicomInputError
from ..volume import Volume
from .ct import CtSeries
from .discovery import ImageSeries, SeriesInfo, _read, scan_folder
from .pet import PetSeries
from .spect import SpectSeries

__all__ = ["Study", "load_study"]

log = logging.getLogger(__name__)

_NON_RECON_NM = {"TOMO", "GATED TOMO", "STATIC", "WHOLE BODY", "DYNAMIC", "GATED"}
_KNOWN_OVERRIDES = PetSeries.override_names | SpectSeries.override_names | CtSeries.override_names


def known_overrides() -> frozenset[str]:
    """Every header override a series of a study accepts (PET, SPECT or CT)."""
    return frozenset(_KNOWN_OVERRIDES)


def _image_type(info: SeriesInfo) -> list[str]:
    return [str(v).upper() for v in (info.first.get("ImageType") or [])]


class Study:
    """The DICOM series of one folder tree (several patients/studies allowed).

    Create with :func:`load_study`. Series are selected by modality with :meth:`pet`,
    :meth:`spect` and :meth:`ct` (by position in :meth:`series_table`'s per-modality
    index, by SeriesInstanceUID, or by exact SeriesDescription).

    Attributes
    ----------
    folder
        The folder that was read.
    series
        Every series found (:class:`~dosimetry.io.discovery.SeriesInfo`, headers only).
    skipped
        ``(path, reason)`` for files that were not used.
    overrides
        Study-wide overrides passed to every series that accepts them.
    """

    def __init__(
        self,
        folder: Path,
        series: list[SeriesInfo],
        skipped: list[tuple[Path, str]],
        overrides: Mapping[str, Any] | None = None,
    ):
        self.folder = Path(folder)
        self.series = list(series)
        self.skipped = list(skipped)
        overrides = dict(overrides or {})
        unknown = sorted(set(overrides) - _KNOWN_OVERRIDES)
        if unknown:
            raise DicomInputError(
                f"unknown override(s) {unknown}; valid: {', '.join(sorted(_KNOWN_OVERRIDES))}"
            )
        self.overrides = overrides

    # -- listing ------------------------------------------------------------------------------
    def _candidates(self, kind: str) -> list[SeriesInfo]:
        if kind == "PET":
            return [s for s in self.series if s.modality == "PT"]
        if kind == "SPECT":
            out = []
            for s in self.series:
                if s.modality != "NM":
                    continue
                it = _image_type(s)
                if len(it) > 2 and it[2] in _NON_RECON_NM:
                    continue
                out.append(s)
            return out
        if kind == "CT":
            return [
                s for s in self.series if s.modality == "CT" and "LOCALIZER" not in _image_type(s)
            ]
        if kind == "RTSTRUCT":
            return [s for s in self.series if s.modality == "RTSTRUCT"]
        if kind == "RTDOSE":
            return [s for s in self.series if s.modality == "RTDOSE"]
        if kind == "SEG":
            return [s for s in self.series if s.modality == "SEG"]
        raise ValueError(kind)

    def series_of(self, kind: str) -> list[SeriesInfo]:
        """The selectable series of one kind (``"PET"``, ``"SPECT"``, ``"CT"``,
        ``"RTSTRUCT"``, ``"RTDOSE"``, ``"SEG"``), in the order of their index."""
        if kind not in ("PET", "SPECT", "CT", "RTSTRUCT", "RTDOSE", "SEG"):
            raise DicomInputError(
                f"series kind {kind!r}; valid: PET, SPECT, CT, RTSTRUCT, RTDOSE, SEG"
            )
        return self._candidates(kind)

    def series_table(self) -> list[dict[str, Any]]:
        """One row per series: index (per modality), patient, study, modality, description,
        number of files, frame of reference, UIDs, folder."""
        rows = []
        counters: dict[str, int] = {}
        selectable = {
            id(s): kind
            for kind in ("PET", "SPECT", "CT", "RTSTRUCT", "RTDOSE", "SEG")
            for s in self._candidates(kind)
        }
        for s in self.series:
            kind = selectable.get(id(s))
            index: int | None = None
            if kind is not None:
                index = counters.get(kind, 0)
                counters[kind] = index + 1
            rows.append({"index": index, **s.row()})
        return rows

    _COLUMNS = (
        "index",
        "patient_id",
        "study_date",
        "modality",
        "series_number",
        "series_description",
        "n_files",
        "frame_of_reference_uid",
    )

    def __str__(self) -> str:
        rows = self.series_table()
        head = (
            f"Study at {self.folder}: {len(rows)} series, "
            f"{len({r['patient_id'] for r in rows})} patient(s), {len(self.skipped)} file(s) skipped"
        )
        if not rows:
            return head
        cells = [[self._fmt(r[c], c) for c in self._COLUMNS] for r in rows]
        widths = [max(len(c), *(len(x[i]) for x in cells)) for i, c in enumerate(self._COLUMNS)]
        lines = [head, "  ".join(c.ljust(w) for c, w in zip(self._COLUMNS, widths, strict=True))]
        lines += ["  ".join(x.ljust(w) for x, w in zip(row, widths, strict=True)) for row in cells]
        return "\n".join(lines)

    @staticmethod
    def _fmt(value: Any, column: str) -> str:
        from .._text import terminal

        if value is None:
            return "-"
        text = terminal(str(value))  # descriptions and names are untrusted header text
        if column == "frame_of_reference_uid" and len(text) > 16:
            return "..." + text[-13:]
        if len(text) > 40:
            return text[:37] + "..."
        return text

    def __repr__(self) -> str:
        return f"Study({str(self.folder)!r}, {len(self.series)} series)"

    def _repr_html_(self) -> str:
        rows = self.series_table()
        head = "".join(f"<th>{html.escape(c)}</th>" for c in self._COLUMNS)
        body = "".join(
            "<tr>"
            + "".join(f"<td>{html.escape(self._fmt(r[c], c))}</td>" for c in self._COLUMNS)
            + "</tr>"
            for r in rows
        )
        caption = html.escape(
            f"Study at {self.folder}: {len(rows)} series, {len(self.skipped)} file(s) skipped"
        )
        return f"<table><caption>{caption}</caption><tr>{head}</tr>{body}</table>"

    # -- selection ----------------------------------------------------------------------------
    def _found_summary(self) -> str:
        counts: dict[str, int] = {}
        for s in self.series:
            counts[s.modality or "?"] = counts.get(s.modality or "?", 0) + 1
        found = (
            ", ".join(f"{m} ({n} series)" for m, n in sorted(counts.items())) or "no DICOM series"
        )
        return f"found: {found}; {self._skipped_summary()}"

    def _skipped_summary(self, limit: int = 3) -> str:
        """``"2 file(s) skipped: a.dcm (the file is truncated ...); b.dcm (...)"``: the
        files that could not be read, with the reason (untrusted text made printable)."""
        from .._text import terminal

        n = len(self.skipped)
        if not n:
            return "0 file(s) skipped"
        shown = []
        for path, reason in self.skipped[:limit]:
            why = terminal(str(reason))
            why = why if len(why) <= 160 else why[:157] + "..."
            shown.append(f"{terminal(Path(path).name)} ({why})")
        more = f"; and {n - limit} more" if n > limit else ""
        return f"{n} file(s) skipped: {'; '.join(shown)}{more}"

    def _select(self, kind: str, index_or_uid: int | str | None, method: str) -> SeriesInfo:
        cands = self._candidates(kind)
        if not cands:
            raise DicomInputError(f"no {kind} series in {self.folder} ({self._found_summary()})")
        if index_or_uid is None:
            if len(cands) == 1:
                return cands[0]
            listing = "\n".join(
                f"  [{i}] {s.series_description!r} (series {s.series_number}, {len(s.files)} "
                f"files, patient {s.patient_id}, {s.study_date}) uid={s.series_instance_uid}"
                for i, s in enumerate(cands)
            )
            raise DicomInputError(
                f"{len(cands)} {kind} series in {self.folder}; choose one with "
                f"study.{method}(<index>) or study.{method}('<SeriesInstanceUID>'):\n{listing}"
            )
        if isinstance(index_or_uid, bool):
            raise DicomInputError(f"{method}({index_or_uid!r}): give an index or a UID")
        if isinstance(index_or_uid, int):
            if not -len(cands) <= index_or_uid < len(cands):
                raise DicomInputError(
                    f"{method}({index_or_uid}): there are {len(cands)} {kind} series (0..{len(cands) - 1})"
                )
            return cands[index_or_uid]
        key = str(index_or_uid)
        by_uid = [s for s in cands if s.series_instance_uid == key]
        if by_uid:
            if len(by_uid) > 1:
                raise DicomInputError(
                    f"{kind} series {key} spans {len(by_uid)} frames of reference; choose by index"
                )
            return by_uid[0]
        by_desc = [s for s in cands if s.series_description == key]
        if len(by_desc) == 1:
            return by_desc[0]
        if len(by_desc) > 1:
            raise DicomInputError(
                f"{len(by_desc)} {kind} series are described {key!r}; choose by index or UID"
            )
        raise DicomInputError(
            f"no {kind} series with SeriesInstanceUID or SeriesDescription {key!r} in "
            f"{self.folder}; {kind} series: "
            + "; ".join(
                f"[{i}] {s.series_description!r} {s.series_instance_uid}"
                for i, s in enumerate(cands)
            )
        )

    def _overrides_for(self, cls: type[ImageSeries], given: Mapping[str, Any]) -> dict[str, Any]:
        merged = {k: v for k, v in self.overrides.items() if k in cls.override_names}
        merged.update(given)
        return merged

    def pet(self, index_or_uid: int | str | None = None, **overrides: Any) -> PetSeries:
        """The PET series (index, SeriesInstanceUID or SeriesDescription when several).

        Keyword arguments are overrides, see :class:`~dosimetry.io.pet.PetSeries`.
        """
        info = self._select("PET", index_or_uid, "pet")
        return PetSeries(info, self._overrides_for(PetSeries, overrides))

    def spect(self, index_or_uid: int | str | None = None, **overrides: Any) -> SpectSeries:
        """The reconstructed SPECT (NM) series; overrides see
        :class:`~dosimetry.io.spect.SpectSeries`."""
        info = self._select("SPECT", index_or_uid, "spect")
        return SpectSeries(info, self._overrides_for(SpectSeries, overrides))

    def ct(self, index_or_uid: int | str | None = None, **overrides: Any) -> CtSeries:
        """The CT series (localizers excluded); overrides: ``allow_nonuniform``."""
        info = self._select("CT", index_or_uid, "ct")
        return CtSeries(info, self._overrides_for(CtSeries, overrides))

    # -- RT objects -----------------------------------------------------------------------------
    def _single_file(self, info: SeriesInfo, kind: str, index: int | None) -> Path:
        if len(info.files) == 1:
            return info.files[0]
        if index is None:
            raise DicomInputError(
                f"the {kind} series {info.series_instance_uid} has {len(info.files)} files "
                f"({', '.join(p.name for p in info.files)}); pass file_index=<0..{len(info.files) - 1}>"
            )
        return info.files[index]

    def rtstruct(
        self, index_or_uid: int | str | None = None, *, file_index: int | None = None
    ) -> Dataset:
        """The RTSTRUCT dataset (read in full)."""
        info = self._select("RTSTRUCT", index_or_uid, "rtstruct")
        path = self._single_file(info, "RTSTRUCT", file_index)
        try:
            return _read(path, headers_only=False)
        except Exception as exc:
            raise DicomInputError(f"cannot read the RTSTRUCT ({exc})", path=path) from exc

    def rtstructs(self) -> list[Dataset]:
        """Every RTSTRUCT file of the study, read in full."""
        return [_read(p, headers_only=False) for s in self._candidates("RTSTRUCT") for p in s.files]

    def external_roi_names(self) -> set[str]:
        """Names of RTSTRUCT ROIs whose RTROIInterpretedType is EXTERNAL (body outlines).

        Body outlines are the background of a kinetic model, not an organ. Unreadable
        RTSTRUCTs contribute nothing here (reading their masks reports the problem).
        """
        names: set[str] = set()
        for info in self._candidates("RTSTRUCT"):
            for path in info.files:
                try:
                    ds = _read(path, headers_only=False)
                except Exception as exc:  # reported where the masks are read
                    log.info("RTSTRUCT %s not read for ROI types: %s", path, exc)
                    continue
                numbers = set()
                for obs in getattr(ds, "RTROIObservationsSequence", []) or []:
                    kind = str(getattr(obs, "RTROIInterpretedType", "") or "").upper()
                    number = getattr(obs, "ReferencedROINumber", None)
                    if kind == "EXTERNAL" and number is not None:
                        try:
                            numbers.add(int(number))
                        except (TypeError, ValueError):
                            continue
                for roi in getattr(ds, "StructureSetROISequence", []) or []:
                    try:
                        number = int(roi.ROINumber)
                    except (AttributeError, TypeError, ValueError):
                        continue
                    if number in numbers:
                        names.add(str(getattr(roi, "ROIName", "")))
        return names

    def rtdose(
        self, index_or_uid: int | str | None = None, *, file_index: int | None = None
    ) -> Volume:
        """The RTDOSE as a dose Volume in Gy (via :func:`dosimetry.io.read_rtdose`)."""
        from .rtdose import read_rtdose

        info = self._select("RTDOSE", index_or_uid, "rtdose")
        return read_rtdose(self._single_file(info, "RTDOSE", file_index))

    def masks(
        self,
        grid: Volume | ImageSeries,
        names: list[str] | None = None,
        mode: Literal["binary", "fraction"] = "binary",
        *,
        rtstruct: int | str | None = None,
        seg: int | str | None = None,
    ) -> dict[str, Volume]:
        """Structures rasterised on ``grid``, from the RTSTRUCT (via
        :func:`dosimetry.io.rtstruct_to_masks`) or a DICOM SEG (via
        :func:`dosimetry.io.seg_to_masks`).

        Parameters
        ----------
        grid
            A Volume, or a series object whose :attr:`volume` defines the grid.
        names
            ROI / segment names to convert (default: all).
        mode
            ``"binary"`` or ``"fraction"`` (partial-volume fractions).
        rtstruct
            Which RTSTRUCT when there are several (index or SeriesInstanceUID).
        seg
            Use this SEG series instead (index or SeriesInstanceUID). Without ``rtstruct``
            and ``seg``, the RTSTRUCT is used, or the SEG when the study has no RTSTRUCT.
        """
        from .masks import rtstruct_to_masks, seg_to_masks

        volume = grid.volume if isinstance(grid, ImageSeries) else grid
        if not isinstance(volume, Volume):
            raise DicomInputError(
                f"grid must be a Volume or a series object, got {type(grid).__name__}"
            )
        use_seg = seg is not None or (
            rtstruct is None and not self._candidates("RTSTRUCT") and self._candidates("SEG")
        )
        if use_seg:
            info = self._select("SEG", seg, "masks(seg=...)")
            path = self._single_file(info, "SEG", None)
            return seg_to_masks(path, volume, names=names, mode=mode)
        info = self._select("RTSTRUCT", rtstruct, "masks(rtstruct=...)")
        path = self._single_file(info, "RTSTRUCT", None)
        return rtstruct_to_masks(path, volume, names=names, mode=mode)


def load_study(folder: str | Path, *, overrides: Mapping[str, Any] | None = None) -> Study:
    """Read the headers of every DICOM file under ``folder`` and group them into series.

    Parameters
    ----------
    folder
        Folder walked recursively (or one file). A DICOMDIR, when present, is checked
        against the files; non-DICOM files are skipped with a logged reason.
    overrides
        Study-wide overrides (e.g. ``{"patient_weight_kg": 72.0}``), applied to every
        series type that accepts them and recorded in each provenance.

    Returns
    -------
    Study

    Examples
    --------
    >>> from pathlib import Path
    >>> from pydicom.data import get_testdata_file
    >>> root = Path(get_testdata_file("DICOMDIR", download=False)).parent / "98892001"
    >>> study = load_study(root)
    >>> [(r["index"], r["series_description"], r["n_files"]) for r in study.series_table()]
    [(None, 'Scout', 2), (0, 'SmartScore - Gated 0.5 sec', 5)]
    >>> study.ct().volume.shape
    (5, 16, 16)
    """
    series, skipped = scan_folder(folder)
    return Study(Path(folder), series, skipped, overrides)
