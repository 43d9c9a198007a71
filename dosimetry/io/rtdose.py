"""DICOM RT Dose: write a dose :class:`~dosimetry.Volume` as RT Dose Storage, read one back.

Quantisation
------------
RT Dose stores unsigned integers (``BitsAllocated`` 16 or 32) times ``DoseGridScaling`` (Gy).
The writer chooses the scaling so that the maximum dose maps to (just below) ``2**bits - 1``,
formats it as a Decimal String (at most 16 characters, 10 significant digits) and quantises
with the scaling *as written*, so the stored value is ``round(d / s) * s`` and the error of
every voxel is at most ``s / 2 = max / (2 * (2**bits - 1))`` in absolute terms. Relative to
the voxel value ``d`` this is ``max / (2 * (2**bits - 1) * d)``: with 32 bits it stays below
1e-4 for every voxel above ``1.2e-6 x max`` (and is 0 for zeros); with 16 bits only voxels
above ``7.6e-2 x max`` are guaranteed 1e-4 — use 32 bits (the default) for dosimetry.
Smaller values cannot be held to a relative tolerance by any linear integer encoding; their
absolute error stays below ``1.2e-10 x max``.

Units
-----
DICOM knows only ``DoseUnits`` GY (or RELATIVE) and ``DoseType`` PHYSICAL / EFFECTIVE / ERROR.
``"Gy"`` is written PHYSICAL; RBE-weighted, BED and EQD2 maps (``"Gy_RBE"``, ``"Gy_BED"``,
``"Gy_EQD2"``) are written EFFECTIVE; a dose-rate map (``"Gy/s"``) is written with DoseUnits GY
(the standard has no rate unit) and PHYSICAL. In every case the exact unit is recorded at the
start of ``DoseComment`` as ``[unit]`` and :func:`read_rtdose` restores it from there.

References
----------
DICOM PS3.3 2024, A.18 RT Dose IOD; C.8.8.3 RT Dose Module (Grid Frame Offset Vector C.8.8.3.2,
Dose Grid Scaling); C.7.6.6 Multi-frame Module.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileDataset
from pydicom.tag import Tag
from pydicom.uid import RTDoseStorage, RTPlanStorage

from ..errors import DicomInputError, GeometryMismatchError, InputDataError, OutputError, UnitError
from ..volume import Volume
from ._atomic import PathLike, atomic_write
from ._uids import (
    copy_patient_study,
    file_meta_for,
    format_ds,
    reference_dataset,
    set_common_writer_attributes,
)

__all__ = ["write_rtdose", "read_rtdose", "DOSE_UNITS"]

log = logging.getLogger(__name__)

#: Volume unit -> DICOM DoseType it is written with.
DOSE_UNITS: dict[str, str] = {
    "Gy": "PHYSICAL",
    "Gy/s": "PHYSICAL",
    "Gy_RBE": "EFFECTIVE",
    "Gy_BED": "EFFECTIVE",
    "Gy_EQD2": "EFFECTIVE",
}

# Summation types this writer supports. PLAN / MULTI_PLAN need a Referenced RT Plan
# Sequence (PS3.3 C.8.8.3 Type 1C; MULTI_PLAN two or more items); the per-fraction/beam
# types need fraction-group and beam references and RECORD a Referenced Treatment Record
# Sequence, none of which a radiopharmaceutical dose has. ADMINISTRATION extends the
# Defined Terms for the dose from one radiopharmaceutical administration.
_SUMMATION_NEEDS_PLAN = {"PLAN", "MULTI_PLAN"}
_SUMMATION_TYPES = ("PLAN", "MULTI_PLAN", "ADMINISTRATION")
RADIOPHARMACEUTICAL_SUMMATION = "ADMINISTRATION"

_UNIT_MARK = re.compile(r"^\[([^\]]+)\]")


def _plan_item(plan: Any) -> Dataset:
    """ReferencedRTPlanSequence item from a plan dataset, path or (class, instance) pair."""
    if isinstance(plan, tuple) and len(plan) == 2:
        class_uid, instance_uid = str(plan[0]), str(plan[1])
    else:
        ds: Dataset
        if isinstance(plan, str | Path):
            try:
                ds = pydicom.dcmread(plan, stop_before_pixels=True)
            except Exception as exc:
                raise DicomInputError(f"cannot read referenced_rt_plan: {exc}", path=plan) from exc
        elif isinstance(plan, Dataset):
            ds = plan
        else:
            raise DicomInputError(
                "referenced_rt_plan must be an RT Plan dataset, a path to one, or a "
                f"(SOPClassUID, SOPInstanceUID) tuple; got {type(plan).__name__}"
            )
        for kw in ("SOPClassUID", "SOPInstanceUID"):
            if kw not in ds:
                raise DicomInputError(
                    "referenced_rt_plan has no " + kw, tag=kw, path=getattr(ds, "filename", None)
                )
        class_uid, instance_uid = str(ds.SOPClassUID), str(ds.SOPInstanceUID)
    item = Dataset()
    item.ReferencedSOPClassUID = class_uid or RTPlanStorage
    item.ReferencedSOPInstanceUID = instance_uid
    return item


def _grid_geometry(dose: Volume) -> tuple[np.ndarray, dict[str, Any]]:
    """Array in frame order and the DICOM plane/frame geometry of ``dose``.

    The frames are ordered along the slice normal (row cosine x column cosine) so that the
    Grid Frame Offset Vector increases from 0; a grid whose slice axis points the other way
    is flipped (same voxels, same world positions).
    """
    a = dose.affine
    col_step, row_step, slice_step = a[:3, 2], a[:3, 1], a[:3, 0]
    sp_col, sp_row = float(np.linalg.norm(col_step)), float(np.linalg.norm(row_step))
    r, c = col_step / sp_col, row_step / sp_row
    if abs(float(r @ c)) > 1e-4:
        raise GeometryMismatchError(
            f"dose grid rows and columns are not orthogonal (cos = {float(r @ c):.3g}); "
            "RT Dose needs a rectangular pixel grid. Resample onto an orthogonal grid first."
        )
    n = np.cross(r, c)
    s = float(slice_step @ n)
    if np.linalg.norm(slice_step - s * n) > 1e-4 * abs(s):
        raise GeometryMismatchError(
            "the dose grid's slice axis is not perpendicular to its planes (sheared grid, e.g. "
            "gantry tilt); RT Dose cannot represent it. Resample onto an orthogonal grid first."
        )
    arr = np.asarray(dose.array)
    origin = a[:3, 3].copy()
    if s < 0:
        arr = arr[::-1]
        origin = origin + (arr.shape[0] - 1) * slice_step
        s = -s
    geo = {
        "ipp": origin,
        "iop": np.concatenate([r, c]),
        "pixel_spacing": (sp_row, sp_col),
        "offsets": np.arange(arr.shape[0]) * s,
        "slice_spacing": s,
    }
    return arr, geo


def _choose_scaling(max_gy: float, max_int: int) -> tuple[str, float]:
    """DoseGridScaling (DS text, value) mapping ``max_gy`` to at most ``max_int``."""
    if max_gy <= 0.0:
        return "1", 1.0
    target = max_gy / max_int
    bump = 1e-9
    for _ in range(40):
        text = format_ds(target * (1.0 + bump))
        value = float(text)
        if np.rint(max_gy / value) <= max_int:
            return text, value
        bump *= 2.0
    raise OutputError(f"cannot find a DoseGridScaling for a maximum dose of {max_gy!r} Gy")


def write_rtdose(
    dose: Volume,
    path: PathLike,
    reference: Any,
    *,
    dose_type: str | None = None,
    summation_type: str | None = None,
    comment: str | None = None,
    overwrite: bool = False,
    bits: int = 32,
    referenced_rt_plan: Any = None,
    series_description: str | None = None,
    series_number: int = 901,
    input_dirs: Iterable[PathLike] = (),
) -> Path:
    """Write ``dose`` as a DICOM RT Dose Storage file.

    Parameters
    ----------
    dose
        Dose map, unit one of ``"Gy"``, ``"Gy/s"``, ``"Gy_RBE"``, ``"Gy_BED"``,
        ``"Gy_EQD2"``; finite and non-negative everywhere.
    path
        Output file (e.g. ``"dose.dcm"``).
    reference
        Header of the image series (CT, PET, SPECT) the dose was computed from: a
        :class:`pydicom.Dataset`, a path to one of its files, or an object with a ``.header``
        Dataset. Patient, study and frame-of-reference attributes are copied from it.
    dose_type
        ``"PHYSICAL"`` or ``"EFFECTIVE"``; default follows the unit (see the module
        docstring). A value that contradicts the unit is an error.
    summation_type
        DoseSummationType. Default: ``"PLAN"`` when ``referenced_rt_plan`` is given, else
        ``"ADMINISTRATION"``. ``"PLAN"`` / ``"MULTI_PLAN"`` require ``referenced_rt_plan``
        (Type 1C Referenced RT Plan Sequence, PS3.3 C.8.8.3) and ``"RECORD"`` a treatment
        record, which a radiopharmaceutical dose does not have; ``"ADMINISTRATION"`` (dose
        from the complete decay of one administration) is an extension of the Defined
        Terms, which PS3.3 permits; validators report it as an unrecognised defined term
        (a warning, not an error).
    comment
        Free text appended to DoseComment after the ``[unit]`` mark (LO, 64 characters in all).
    overwrite
        Replace an existing file.
    bits
        32 (default) or 16 bits per voxel; see the module docstring for the quantisation error.
    referenced_rt_plan
        RT Plan dataset, path, or ``(SOPClassUID, SOPInstanceUID)``; a list of them for
        ``"MULTI_PLAN"``.
    series_description, series_number
        Of the new RT Dose series.
    input_dirs
        Folders the output must not be written into (the study's input folders).

    Returns
    -------
    pathlib.Path
        The file written.

    Raises
    ------
    InputDataError
        NaN, infinite or negative dose.
    UnitError
        Unit not a dose unit, or ``dose_type`` contradicting it.
    GeometryMismatchError
        Frame of reference of ``dose`` and ``reference`` differ, or the grid is not
        representable (sheared).
    OutputError
        The file exists (and ``overwrite`` is False) or lies inside an input folder.
    """
    if not isinstance(dose, Volume):
        raise InputDataError(f"dose must be a dosimetry.Volume, got {type(dose).__name__}")
    if dose.unit not in DOSE_UNITS:
        raise UnitError(
            f"dose.unit={dose.unit!r} cannot be written as RT Dose; valid: {', '.join(DOSE_UNITS)}"
        )
    default_type = DOSE_UNITS[dose.unit]
    dtype_req = default_type if dose_type is None else str(dose_type).upper()
    if dtype_req not in ("PHYSICAL", "EFFECTIVE"):
        raise UnitError(f"dose_type={dose_type!r}; valid: 'PHYSICAL', 'EFFECTIVE'")
    if dtype_req != default_type:
        raise UnitError(
            f"dose_type={dtype_req!r} contradicts dose.unit={dose.unit!r}, which is written as "
            f"{default_type} (DICOM PS3.3 C.8.8.3: EFFECTIVE = physical dose after correction "
            "for biological effect). Leave dose_type out or fix the unit."
        )
    if summation_type is None:
        summation_type = "PLAN" if referenced_rt_plan is not None else RADIOPHARMACEUTICAL_SUMMATION
    summation = str(summation_type).upper()
    if summation not in _SUMMATION_TYPES:
        raise OutputError(
            f"summation_type={summation_type!r}; supported: {', '.join(_SUMMATION_TYPES)}"
        )
    plans: list[Any] = []
    if referenced_rt_plan is not None:
        plans = (
            list(referenced_rt_plan)
            if isinstance(referenced_rt_plan, list)
            else [referenced_rt_plan]
        )
    if summation == "MULTI_PLAN" and len(plans) < 2:
        raise OutputError(
            "summation_type='MULTI_PLAN' requires a list of two or more RT Plans in "
            "referenced_rt_plan (PS3.3 C.8.8.3)"
        )
    if summation in _SUMMATION_NEEDS_PLAN and not plans:
        raise OutputError(
            f"summation_type={summation!r} requires referenced_rt_plan (DICOM Type 1C "
            "Referenced RT Plan Sequence). Pass the RT Plan, or leave summation_type out "
            f"(a dose without an RT Plan is written as {RADIOPHARMACEUTICAL_SUMMATION!r})."
        )
    if bits not in (16, 32):
        raise OutputError(f"bits={bits!r}; RT Dose allows 16 or 32")
    unit_mark = f"[{dose.unit}]"
    dose_comment = unit_mark if not comment else f"{unit_mark} {comment}"
    if len(dose_comment) > 64:
        raise OutputError(
            f"DoseComment {dose_comment!r} is {len(dose_comment)} characters; DICOM LO allows "
            f"64. Shorten comment to at most {64 - len(unit_mark) - 1} characters."
        )

    values = np.asarray(dose.array, dtype=np.float64)
    if not np.all(np.isfinite(values)):
        n_bad = int(np.count_nonzero(~np.isfinite(values)))
        raise InputDataError(f"dose contains {n_bad} NaN or infinite voxels; refusing to write")
    vmin = float(values.min())
    if vmin < 0.0:
        raise InputDataError(
            f"dose contains negative values (minimum {vmin:.3g} {dose.unit}); RT Dose stores "
            "non-negative doses. If these are FFT round-off, clip them explicitly "
            "(dose.with_array(np.clip(dose.array, 0, None))) before writing."
        )

    ref = reference_dataset(reference)
    ref_for = str(ref.get("FrameOfReferenceUID", "") or "") or None
    if (
        ref_for is not None
        and dose.frame_of_reference_uid is not None
        and ref_for != dose.frame_of_reference_uid
    ):
        raise GeometryMismatchError(
            f"dose has FrameOfReferenceUID {dose.frame_of_reference_uid} but the reference "
            f"image has {ref_for}: the dose does not lie in the reference image's space."
        )
    frame_of_reference = dose.frame_of_reference_uid or ref_for
    if frame_of_reference is None:
        raise DicomInputError(
            "neither the dose Volume nor the reference dataset carries a FrameOfReferenceUID; "
            "RT Dose requires one. Pass the header of the image the dose was computed on.",
            tag="FrameOfReferenceUID",
        )

    arr, geo = _grid_geometry(dose.with_array(values))
    max_int = (1 << bits) - 1
    scaling_text, scaling = _choose_scaling(float(arr.max()), max_int)
    pixels = np.clip(np.rint(arr / scaling), 0, max_int).astype(
        np.uint32 if bits == 32 else np.uint16
    )
    # quantisation error actually made (documented bound: scaling / 2)
    err = np.abs(pixels.astype(np.float64) * scaling - arr)
    vmax = float(arr.max())
    above = arr >= 1e-4 * vmax
    rel = float(np.max(err[above] / arr[above])) if vmax > 0 and np.any(above) else 0.0
    level = logging.WARNING if rel > 1e-4 else logging.INFO
    log.log(
        level,
        "RT Dose quantisation: max abs error %.3g %s (bound %.3g); max relative error %.3g for "
        "voxels above 1e-4 x max",
        float(err.max()),
        dose.unit,
        0.5 * scaling,
        rel,
    )

    ds = Dataset()
    copy_patient_study(ref, ds)
    set_common_writer_attributes(
        ds,
        sop_class_uid=RTDoseStorage,
        modality="RTDOSE",
        series_description=series_description,
        series_number=series_number,
        when=datetime.now(),
    )
    ds.ContentDate = ds.InstanceCreationDate
    ds.ContentTime = ds.InstanceCreationTime
    # Frame of Reference module
    ds.FrameOfReferenceUID = frame_of_reference
    ds.PositionReferenceIndicator = ref.get("PositionReferenceIndicator", "")
    # Image Plane module
    ds.ImagePositionPatient = [format_ds(float(v)) for v in geo["ipp"]]
    ds.ImageOrientationPatient = [format_ds(float(v)) for v in geo["iop"]]
    ds.PixelSpacing = [format_ds(v) for v in geo["pixel_spacing"]]
    ds.SliceThickness = format_ds(geo["slice_spacing"])
    # Image Pixel / Multi-frame / RT Dose modules
    n_frames, rows, cols = pixels.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = rows
    ds.Columns = cols
    ds.NumberOfFrames = n_frames
    ds.FrameIncrementPointer = Tag("GridFrameOffsetVector")
    ds.GridFrameOffsetVector = [format_ds(float(v)) for v in geo["offsets"]]
    ds.BitsAllocated = bits
    ds.BitsStored = bits
    ds.HighBit = bits - 1
    ds.PixelRepresentation = 0
    ds.DoseUnits = "GY"
    ds.DoseType = dtype_req
    ds.DoseSummationType = summation
    ds.DoseGridScaling = scaling_text
    ds.DoseComment = dose_comment
    if plans:
        ds.ReferencedRTPlanSequence = [_plan_item(p) for p in plans]
    prov = dict(dose.provenance)
    if prov:
        text = "provenance: " + "; ".join(f"{k}={v}" for k, v in prov.items())
        ds.ImageComments = text[:10240]
    ds.PixelData = pixels.astype(pixels.dtype.newbyteorder("<"), copy=False).tobytes()
    ds["PixelData"].VR = "OW"

    file_ds = FileDataset(str(path), ds, file_meta=file_meta_for(ds), preamble=b"\0" * 128)

    def _write(tmp: Path) -> None:
        file_ds.save_as(tmp, enforce_file_format=True)

    out = atomic_write(path, _write, overwrite=overwrite, input_dirs=input_dirs)
    log.info(
        "RT Dose %s: %d x %d x %d, max %.6g %s, DoseGridScaling %s",
        out,
        n_frames,
        rows,
        cols,
        float(arr.max()),
        dose.unit,
        scaling_text,
    )
    return out


def _req(ds: Dataset, kw: str, path: Any) -> Any:
    if kw not in ds or ds[kw].value in (None, "", []):
        raise DicomInputError(f"RT Dose lacks {kw}; the dose grid cannot be placed", path, kw)
    return ds[kw].value


def read_rtdose(source: PathLike | Dataset, *, unit: str | None = None) -> Volume:
    """Read an RT Dose file into a dose :class:`~dosimetry.Volume` (Gy).

    Parameters
    ----------
    source
        Path to the file or a pydicom Dataset.
    unit
        Override the unit (one of ``"Gy"``, ``"Gy/s"``, ``"Gy_RBE"``, ``"Gy_BED"``,
        ``"Gy_EQD2"``). By default it is taken from a ``[unit]`` mark at the start of
        DoseComment (written by :func:`write_rtdose`), else ``"Gy"`` for DoseType PHYSICAL;
        EFFECTIVE doses from other software need ``unit=``.

    Returns
    -------
    Volume
        Pixel values x DoseGridScaling, on the grid given by ImagePositionPatient,
        ImageOrientationPatient, PixelSpacing and GridFrameOffsetVector (relative offsets
        starting at 0, or absolute z positions for axial grids, PS3.3 C.8.8.3.2).
    """
    if isinstance(source, Dataset):
        ds, path = source, getattr(source, "filename", None)
    else:
        path = Path(source)
        from ._manifest import check_output_file

        check_output_file(path)
        try:
            ds = pydicom.dcmread(path)
        except Exception as exc:
            raise DicomInputError(f"cannot read RT Dose: {exc}", path=path) from exc
    if str(ds.get("SOPClassUID", "")) != RTDoseStorage and ds.get("Modality") != "RTDOSE":
        raise DicomInputError(
            f"not an RT Dose object (Modality {ds.get('Modality')!r}, "
            f"SOPClassUID {ds.get('SOPClassUID')!r})",
            path,
            "SOPClassUID",
        )
    dose_units = str(_req(ds, "DoseUnits", path)).upper()
    if dose_units != "GY":
        raise DicomInputError(
            f"DoseUnits is {dose_units!r}; only absolute doses (GY) can be read", path, "DoseUnits"
        )
    dose_type = str(ds.get("DoseType", "PHYSICAL")).upper()
    mark = _UNIT_MARK.match(str(ds.get("DoseComment", "") or ""))
    if unit is None:
        if mark and mark.group(1) in DOSE_UNITS:
            unit = mark.group(1)
        elif dose_type == "PHYSICAL":
            unit = "Gy"
        else:
            raise DicomInputError(
                f"DoseType is {dose_type!r} and DoseComment names no unit; pass "
                "unit='Gy_RBE' (or 'Gy_BED', 'Gy_EQD2') to say what the values are",
                path,
                "DoseType",
            )
    if unit not in DOSE_UNITS:
        raise UnitError(f"unit={unit!r}; valid: {', '.join(DOSE_UNITS)}")

    scaling = float(_req(ds, "DoseGridScaling", path))
    iop = np.array([float(v) for v in _req(ds, "ImageOrientationPatient", path)])
    ipp = np.array([float(v) for v in _req(ds, "ImagePositionPatient", path)])
    ps = [float(v) for v in _req(ds, "PixelSpacing", path)]
    rows, cols = int(_req(ds, "Rows", path)), int(_req(ds, "Columns", path))
    n_frames = int(ds.get("NumberOfFrames", 1) or 1)
    if iop.shape != (6,) or ipp.shape != (3,) or len(ps) != 2:
        raise DicomInputError(
            "malformed ImageOrientationPatient/ImagePositionPatient/PixelSpacing", path
        )
    r, c = iop[:3] / np.linalg.norm(iop[:3]), iop[3:] / np.linalg.norm(iop[3:])
    n = np.cross(r, c)

    step = _slice_step(ds, n_frames, ipp, iop, path)
    affine = np.eye(4)
    affine[:3, 0] = n * step
    affine[:3, 1] = c * ps[0]
    affine[:3, 2] = r * ps[1]
    affine[:3, 3] = ipp

    pixels = np.asarray(ds.pixel_array)
    if pixels.ndim == 2:
        pixels = pixels[np.newaxis]
    if pixels.shape != (n_frames, rows, cols):
        raise DicomInputError(
            f"pixel data shape {pixels.shape} does not match NumberOfFrames x Rows x Columns "
            f"= {(n_frames, rows, cols)}",
            path,
            "PixelData",
        )
    values = pixels.astype(np.float64) * scaling
    prov = {
        "source": str(path) if path is not None else None,
        "sop_instance_uid": str(ds.get("SOPInstanceUID", "")),
        "dose_type": dose_type,
        "dose_summation_type": str(ds.get("DoseSummationType", "")),
        "dose_grid_scaling": scaling,
    }
    return Volume(
        values,
        affine,
        unit,
        frame_of_reference_uid=str(ds.get("FrameOfReferenceUID", "") or "") or None,
        provenance=prov,
    )


def _slice_step(ds: Dataset, n_frames: int, ipp: np.ndarray, iop: np.ndarray, path: Any) -> float:
    """Uniform spacing (mm, signed along the normal) between frames."""
    gfov_raw = ds.get("GridFrameOffsetVector")
    if gfov_raw is None or n_frames == 1:
        if n_frames > 1:
            raise DicomInputError(
                "multi-frame RT Dose without GridFrameOffsetVector", path, "GridFrameOffsetVector"
            )
        thick = ds.get("SliceThickness")
        if thick in (None, ""):
            raise DicomInputError(
                "single-frame RT Dose without SliceThickness: its thickness is unknown",
                path,
                "SliceThickness",
            )
        return float(thick)
    gfov = np.array(
        [float(v) for v in (gfov_raw if isinstance(gfov_raw, Sequence) else [gfov_raw])]
    )
    if gfov.shape != (n_frames,):
        raise DicomInputError(
            f"GridFrameOffsetVector has {gfov.size} values for {n_frames} frames",
            path,
            "GridFrameOffsetVector",
        )
    if gfov[0] != 0.0:
        # absolute form: z coordinates, defined only for axial IOP (1,0,0,0,1,0)
        axial = np.allclose(iop, [1, 0, 0, 0, 1, 0], atol=1e-6)
        if not (axial and abs(gfov[0] - ipp[2]) < 1e-3):
            raise DicomInputError(
                f"GridFrameOffsetVector starts at {gfov[0]} (not 0), which is allowed only as "
                "absolute z positions of an axial grid whose first value equals "
                f"ImagePositionPatient z ({ipp[2]}); cannot place the frames",
                path,
                "GridFrameOffsetVector",
            )
    rel = gfov - gfov[0]
    steps = np.diff(rel)
    step = float(steps.mean())
    if step == 0.0 or np.max(np.abs(steps - step)) > 1e-3 * max(1.0, abs(step)):
        raise DicomInputError(
            f"GridFrameOffsetVector is not uniformly spaced (steps {steps.min():.4g}..."
            f"{steps.max():.4g} mm); non-uniform dose grids are not supported",
            path,
            "GridFrameOffsetVector",
        )
    return step
