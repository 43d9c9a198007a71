"""Input records and mask files for workflows: what was read, and masks from any file.

* :func:`input_record` -- the identity of a series (UIDs, description, times, a hash of
  its files) as a :class:`dosimetry.results.InputRecord`;
* :func:`load_masks` -- masks from an RTSTRUCT file, a DICOM SEG, a NIfTI label map with a
  label table, or a folder of one-organ NIfTI masks (the TotalSegmentator layout:
  ``kidney_left.nii.gz``, ...), on a given grid.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from ..errors import DicomInputError, InputDataError
from ..results import InputRecord
from ..volume import Volume

__all__ = [
    "input_record",
    "files_sha256",
    "load_masks",
    "radiopharmaceutical_name",
    "patient_record",
    "NIFTI_SUFFIXES",
]

log = logging.getLogger(__name__)

NIFTI_SUFFIXES = (".nii.gz", ".nii")


def files_sha256(paths: Iterable[str | Path]) -> str:
    """SHA-256 over the content of ``paths`` in sorted order (name and bytes of each)."""
    h = hashlib.sha256()
    for p in sorted(Path(x) for x in paths):
        h.update(p.name.encode("utf-8", "replace"))
        with p.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def _optional(obj: Any, attr: str) -> Any:
    """An attribute that may be missing from the header (``None`` then)."""
    try:
        return getattr(obj, attr)
    except Exception:  # a missing tag raises DicomInputError: here it is only not recorded
        return None


def input_record(series: Any, role: str) -> InputRecord:
    """The identity of one series (a :class:`~dosimetry.io.discovery.ImageSeries`).

    Injected activity, injection and acquisition times are recorded when the header (or
    an override) has them; a missing one is left empty here (the readers raise where
    the value is needed).
    """
    files = list(getattr(series, "files", []) or [])
    nuclide = _optional(series, "nuclide") if role != "CT" else None
    return InputRecord(
        role=role,
        modality=str(_optional(series, "modality") or ""),
        series_instance_uid=_optional(series, "series_instance_uid"),
        study_instance_uid=_optional(series, "study_instance_uid"),
        frame_of_reference_uid=_optional(series, "frame_of_reference_uid"),
        description=str(_optional(series, "series_description") or ""),
        n_files=len(files),
        nuclide=nuclide,
        injected_activity_bq=_optional(series, "injected_activity_bq") if nuclide else None,
        injection_time=_optional(series, "injection_time") if nuclide else None,
        acquisition_time=_optional(series, "acquisition_time") if role != "CT" else None,
        sha256=files_sha256(files) if files else None,
        overrides=_override_pairs(series),
    )


def _override_pairs(series: Any) -> tuple[tuple[str, str], ...]:
    """The user's header overrides of a series, as text (``None`` values left out)."""
    ov = getattr(series, "overrides", None)
    if not isinstance(ov, Mapping):
        return ()
    out = []
    for k, v in sorted(ov.items()):
        if v is None:
            continue
        text = v.isoformat(sep=" ", timespec="seconds") if isinstance(v, datetime) else str(v)
        out.append((str(k), text))
    return tuple(out)


def _nifti_stem(path: Path) -> str | None:
    name = path.name
    for suffix in NIFTI_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return None


def _label_table(path: Path) -> dict[int, str] | None:
    """``{value: name}`` from a file beside a label map: ``<stem>.json`` (``{"1": "liver"}``)
    or ``<stem>.csv`` / ``.tsv`` / ``.txt`` (two columns: value, name)."""
    stem = _nifti_stem(path) or path.stem
    for suffix in (".json", ".csv", ".tsv", ".txt"):
        cand = path.with_name(stem + suffix)
        if not cand.is_file():
            continue
        try:
            if suffix == ".json":
                raw = json.loads(cand.read_text(encoding="utf-8"))
                if not isinstance(raw, Mapping):
                    raise InputDataError(f"{cand}: a label table must map values to names")
                return {int(k): str(v) for k, v in raw.items()}
            text = cand.read_text(encoding="utf-8")
            dialect = "excel-tab" if suffix == ".tsv" or "\t" in text else "excel"
            rows = [r for r in csv.reader(text.splitlines(), dialect=dialect) if r]
            out: dict[int, str] = {}
            for row in rows:
                if len(row) < 2:
                    continue
                try:
                    out[int(row[0])] = row[1].strip()
                except ValueError:  # a header row
                    continue
            return out
        except (OSError, ValueError) as exc:
            raise InputDataError(
                f"cannot read the label table {cand}: {exc}. Write one 'value,name' pair per "
                'line (or a JSON object {"1": "liver"}).'
            ) from exc
    return None


def load_masks(
    path: str | Path,
    grid: Volume,
    *,
    mode: Literal["binary", "fraction"] = "fraction",
    labels: Mapping[int, str] | None = None,
    option: str = "masks",
) -> dict[str, Volume]:
    """Masks from a file or folder, on ``grid``.

    Parameters
    ----------
    path
        An RTSTRUCT file, a DICOM SEG file, a NIfTI label map (values named by
        ``labels`` or by a label table beside it, ``<stem>.json`` / ``.csv``), or a folder
        of one-organ NIfTI masks whose file stems are the VOI names (empty masks are left
        out and logged).
    grid
        The dose grid; masks are resampled onto it (NIfTI masks by sub-voxel sampling;
        NIfTI carries no frame of reference, so the masks are taken to be in the grid's
        patient coordinates).
    mode
        ``"binary"`` or ``"fraction"`` (partial-volume occupancy).
    labels
        ``{value: name}`` for a label map.
    option
        Name of the option or keyword the path came from (for error messages).

    Returns
    -------
    dict[str, Volume]
        VOI name -> mask on ``grid``.
    """
    from .masks import read_label_map, rtstruct_to_masks, seg_to_masks

    p = Path(path)
    if not p.exists():
        raise InputDataError(f"{option}: {p} does not exist")
    if p.is_dir():
        files = sorted(f for f in p.iterdir() if f.is_file() and _nifti_stem(f))
        if not files:
            raise InputDataError(
                f"{option}: the folder {p} holds no NIfTI masks (*.nii, *.nii.gz); give one file "
                "per VOI named after it (kidney_left.nii.gz, ...), a label map, an RTSTRUCT or a SEG"
            )
        out: dict[str, Volume] = {}
        empty = []
        for f in files:
            name = _nifti_stem(f) or f.name
            got = read_label_map(f, grid, labels=None, mode=mode, on_mismatch="resample")
            if not got:
                empty.append(name)
                continue
            if len(got) > 1:
                raise InputDataError(
                    f"{option}: {f} holds {len(got)} labels; a folder of masks needs one organ "
                    "per file (use the label map itself with a label table instead)"
                )
            mask = next(iter(got.values()))
            if not mask.array.any():
                empty.append(name)
                continue
            out[name] = mask.with_array(mask.array, unit="1", provenance={"source": str(f)})
        if empty:
            log.info("masks without voxels on the grid, left out: %s", ", ".join(empty))
        if not out:
            raise InputDataError(f"{option}: every mask in {p} is empty on the dose grid")
        return out
    if _nifti_stem(p):
        table = dict(labels) if labels is not None else _label_table(p)
        masks = read_label_map(p, grid, labels=table, mode=mode, on_mismatch="resample")
        masks = {k: v for k, v in masks.items() if v.array.any()}
        if not masks:
            raise InputDataError(f"{option}: the label map {p} has no labels on the dose grid")
        return masks
    try:
        import pydicom

        ds = pydicom.dcmread(p, stop_before_pixels=True, force=True)
        modality = str(getattr(ds, "Modality", "") or "")
    except Exception as exc:
        raise DicomInputError(
            f"{option}: cannot read {p} as DICOM or NIfTI ({exc}); give an RTSTRUCT, a SEG, a "
            "NIfTI label map or a folder of NIfTI masks",
            path=p,
        ) from exc
    if modality == "RTSTRUCT":
        return rtstruct_to_masks(p, grid, mode=mode)
    if modality == "SEG":
        return seg_to_masks(p, grid, mode=mode)
    raise DicomInputError(
        f"{option}: {p} is a DICOM {modality or 'object without Modality'}, not an RTSTRUCT or SEG",
        path=p,
        tag="Modality",
    )


def radiopharmaceutical_name(series: Any) -> str | None:
    """The radiopharmaceutical named in a PET/NM header (0018,0031), or its code meaning.

    Used to choose plausibility bounds and uptake relations; ``None`` when the header has
    neither (the caller then says so).
    """
    try:
        header = series.header
    except Exception:
        return None
    seq = header.get("RadiopharmaceuticalInformationSequence") if header is not None else None
    if not seq:
        return None
    item = seq[0]
    text = str(item.get("Radiopharmaceutical", "") or "").strip()
    if text:
        return text
    codes = item.get("RadiopharmaceuticalCodeSequence")
    if codes:
        meaning = str(codes[0].get("CodeMeaning", "") or "").strip()
        return meaning or None
    return None


def patient_record(series: Any) -> dict[str, str]:
    """Patient identifiers from a series header (name, id, birth date, sex, weight): text as
    found, empty fields left out. Reports escape them and can leave them out (anonymise)."""
    try:
        header = series.header
    except Exception:
        return {}
    out: dict[str, str] = {}
    for key, tag in (
        ("name", "PatientName"),
        ("id", "PatientID"),
        ("birth_date", "PatientBirthDate"),
        ("sex", "PatientSex"),
        ("weight_kg", "PatientWeight"),
        ("age", "PatientAge"),
    ):
        value = header.get(tag) if header is not None else None
        if value not in (None, ""):
            out[key] = str(value)
    return out
