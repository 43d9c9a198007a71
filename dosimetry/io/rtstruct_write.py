"""Masks out as a DICOM RT Structure Set (e.g. VOIs, isodose volumes for a planning system).

Contours are the exact outlines of the mask's voxels in each slice: the boundary between
inside and outside voxels is traced along voxel edges into closed polygons (collinear
vertices dropped). Holes become separate inner contours, so a viewer filling contours with
the even-odd rule — and :func:`dosimetry.io.rtstruct_to_masks` — reproduces the mask voxel
for voxel on its own grid. Fractional masks are thresholded at 0.5 first.

References
----------
DICOM PS3.3 2024, A.19 RT Structure Set IOD; C.8.8.5 Structure Set, C.8.8.6 ROI Contour,
C.8.8.8 RT ROI Observations modules.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from pydicom.dataset import Dataset, FileDataset
from pydicom.uid import RTStructureSetStorage

from ..errors import GeometryMismatchError, InputDataError
from ..volume import Volume
from ._atomic import PathLike, atomic_write
from ._uids import (
    copy_patient_study,
    file_meta_for,
    format_ds,
    reference_datasets,
    set_common_writer_attributes,
)

__all__ = ["write_rtstruct", "isodose_masks", "mask_outlines"]

log = logging.getLogger(__name__)

_PALETTE = (
    (255, 0, 0),
    (0, 200, 0),
    (0, 0, 255),
    (255, 200, 0),
    (255, 0, 255),
    (0, 200, 200),
    (255, 128, 0),
    (128, 0, 255),
)

# Study Component Management SOP class, referenced from RTReferencedStudySequence
# (PS3.3 C.8.8.5: the retired Detached Study Management class UID is the one in use).
_STUDY_SOP_CLASS = "1.2.840.10008.3.1.2.3.1"


def mask_outlines(mask2d: np.ndarray) -> list[np.ndarray]:
    """Closed polygons along the voxel edges separating inside from outside pixels.

    Parameters
    ----------
    mask2d
        Boolean ``(rows, cols)`` image.

    Returns
    -------
    list of numpy.ndarray
        Each ``(n, 2)`` in continuous (row, column) index coordinates: pixel ``(j, i)``
        spans ``[j - 0.5, j + 0.5] x [i - 0.5, i + 0.5]``. Outer boundaries and hole
        boundaries alike; filled with the even-odd rule they give back ``mask2d`` exactly.

    Examples
    --------
    >>> m = np.zeros((3, 3), bool); m[1, 1] = True
    >>> mask_outlines(m)[0].tolist()
    [[0.5, 0.5], [0.5, 1.5], [1.5, 1.5], [1.5, 0.5]]
    """
    m = np.pad(np.asarray(mask2d, dtype=bool), 1)
    nc = m.shape[1] + 1  # corners per row of the padded image
    inside = m[1:-1, 1:-1]
    rows, cols = np.nonzero(inside)
    if rows.size == 0:
        return []
    jr, ic = rows + 1, cols + 1  # padded indices
    starts: list[np.ndarray] = []
    ends: list[np.ndarray] = []

    def corner(r: np.ndarray, c: np.ndarray) -> np.ndarray:
        return r * nc + c

    # clockwise on screen (row down, column right), inside on the right-hand side
    sel = ~m[jr - 1, ic]  # top
    starts.append(corner(jr[sel], ic[sel]))
    ends.append(corner(jr[sel], ic[sel] + 1))
    sel = ~m[jr, ic + 1]  # right
    starts.append(corner(jr[sel], ic[sel] + 1))
    ends.append(corner(jr[sel] + 1, ic[sel] + 1))
    sel = ~m[jr + 1, ic]  # bottom
    starts.append(corner(jr[sel] + 1, ic[sel] + 1))
    ends.append(corner(jr[sel] + 1, ic[sel]))
    sel = ~m[jr, ic - 1]  # left
    starts.append(corner(jr[sel] + 1, ic[sel]))
    ends.append(corner(jr[sel], ic[sel]))
    s = np.concatenate(starts)
    e = np.concatenate(ends)
    order = np.argsort(s, kind="stable")
    s_sorted = s[order]
    # outgoing edges per start vertex (1, or 2 at a saddle where pixels touch diagonally)
    out: dict[int, list[int]] = {}
    for idx, v in zip(order.tolist(), s_sorted.tolist(), strict=True):
        out.setdefault(v, []).append(idx)
    used = np.zeros(s.size, dtype=bool)
    polys: list[np.ndarray] = []
    for first in range(s.size):
        if used[first]:
            continue
        loop = [int(s[first])]
        edge = first
        while True:
            used[edge] = True
            v = int(e[edge])
            if v == loop[0]:
                break
            cands = [k for k in out[v] if not used[k]]
            if not cands:  # cannot happen: every corner has as many edges in as out
                raise RuntimeError("mask_outlines: open boundary")
            if len(cands) > 1:
                # saddle: turn right (keeps diagonal neighbours as separate loops)
                din = np.array(divmod(v, nc)) - np.array(divmod(loop[-1], nc))
                best = cands[0]
                for k in cands:
                    dout = np.array(divmod(int(e[k]), nc)) - np.array(divmod(v, nc))
                    cross = din[0] * dout[1] - din[1] * dout[0]
                    if cross < 0:
                        best = k
                edge = best
            else:
                edge = cands[0]
            loop.append(v)
        pts = np.array([divmod(v, nc) for v in loop], dtype=float)
        # drop collinear vertices
        prev, nxt = np.roll(pts, 1, axis=0), np.roll(pts, -1, axis=0)
        turn = (pts[:, 0] - prev[:, 0]) * (nxt[:, 1] - pts[:, 1]) - (pts[:, 1] - prev[:, 1]) * (
            nxt[:, 0] - pts[:, 0]
        )
        pts = pts[turn != 0]
        # padded corner (r, c) is at continuous index (r - 1 - 0.5, c - 1 - 0.5)
        polys.append(pts - 1.5)
    return polys


def isodose_masks(
    dose: Volume, levels: Sequence[float], *, name_format: str = "Isodose {level:g} {unit}"
) -> dict[str, Volume]:
    """Threshold VOIs ``dose >= level`` for each level (in the dose's unit).

    >>> import numpy as np
    >>> from dosimetry import Volume
    >>> d = Volume.from_spacing(np.arange(4.0).reshape(1, 2, 2), (1.0, 1.0, 1.0), unit="Gy")
    >>> {k: int(v.array.sum()) for k, v in isodose_masks(d, [2.0]).items()}
    {'Isodose 2 Gy': 2}
    """
    d = np.asarray(dose.array)
    if not np.all(np.isfinite(d)):
        raise InputDataError("dose contains NaN or infinite values")
    out = {}
    for level in levels:
        name = name_format.format(level=level, unit=dose.unit)
        out[name] = Volume(
            d >= level,
            dose.affine,
            "1",
            frame_of_reference_uid=dose.frame_of_reference_uid,
            provenance={"isodose_level": float(level), "unit": dose.unit},
        )
    return out


def _contour_image_index(refs: list[Dataset]) -> list[tuple[np.ndarray, np.ndarray, Dataset]]:
    """(normal, position, dataset) of each reference image that has a plane geometry."""
    out = []
    for ds in refs:
        if (
            "ImageOrientationPatient" in ds
            and "ImagePositionPatient" in ds
            and "SOPInstanceUID" in ds
        ):
            iop = np.array([float(v) for v in ds.ImageOrientationPatient])
            n = np.cross(iop[:3], iop[3:])
            out.append(
                (n / np.linalg.norm(n), np.array([float(v) for v in ds.ImagePositionPatient]), ds)
            )
    return out


def write_rtstruct(
    masks: Mapping[str, Volume],
    path: PathLike,
    reference: Any,
    *,
    structure_set_label: str = "dosimetry VOIs",
    series_description: str | None = None,
    series_number: int = 902,
    colors: Mapping[str, tuple[int, int, int]] | None = None,
    interpreted_types: Mapping[str, str] | None = None,
    generation_algorithm: str = "AUTOMATIC",
    overwrite: bool = False,
    input_dirs: Iterable[PathLike] = (),
) -> Path:
    """Write masks as an RT Structure Set of CLOSED_PLANAR contours.

    Parameters
    ----------
    masks
        ``{ROI name: mask}``; bool or fractional (thresholded at 0.5) masks, each on any grid
        in the reference's frame of reference. Contours are drawn in each mask's slices.
    path
        Output file.
    reference
        The image series the structures belong to: a list of its datasets (then each contour
        references the image in its plane), one dataset, a path, or an object with
        ``.header`` / ``.info.headers``. Patient, study and frame of reference come from it.
    structure_set_label
        StructureSetLabel (SH, 16 characters at most).
    series_description, series_number
        Of the new RTSTRUCT series.
    colors
        ROI display colours (RGB 0-255) by name; default a fixed palette.
    interpreted_types
        RTROIInterpretedType by name (e.g. ``"ORGAN"``, ``"GTV"``); default empty (Type 2).
    generation_algorithm
        ROIGenerationAlgorithm: ``"AUTOMATIC"``, ``"SEMIAUTOMATIC"`` or ``"MANUAL"``.
    overwrite, input_dirs
        Output policy (see :mod:`dosimetry.io._atomic`).

    Returns
    -------
    pathlib.Path
        The file written.
    """
    if not masks:
        raise InputDataError("masks is empty: nothing to write")
    if generation_algorithm not in ("AUTOMATIC", "SEMIAUTOMATIC", "MANUAL"):
        raise InputDataError(
            f"generation_algorithm={generation_algorithm!r}; valid: AUTOMATIC, SEMIAUTOMATIC, MANUAL"
        )
    refs = reference_datasets(reference)
    ref = refs[0]
    ref_for = str(ref.get("FrameOfReferenceUID", "") or "") or None
    for name, m in masks.items():
        if not isinstance(m, Volume):
            raise InputDataError(f"mask {name!r} must be a dosimetry.Volume")
        if m.frame_of_reference_uid and ref_for and m.frame_of_reference_uid != ref_for:
            raise GeometryMismatchError(
                f"mask {name!r} has FrameOfReferenceUID {m.frame_of_reference_uid}, the reference "
                f"image {ref_for}: the structures would be placed in the wrong space"
            )
    frame_of_reference = ref_for or next(
        (m.frame_of_reference_uid for m in masks.values() if m.frame_of_reference_uid), None
    )
    if frame_of_reference is None:
        raise GeometryMismatchError(
            "neither the reference dataset nor the masks carry a FrameOfReferenceUID; an RT "
            "Structure Set needs one"
        )
    planes = _contour_image_index(refs)

    ds = Dataset()
    copy_patient_study(ref, ds)
    set_common_writer_attributes(
        ds,
        sop_class_uid=RTStructureSetStorage,
        modality="RTSTRUCT",
        series_description=series_description,
        series_number=series_number,
        when=datetime.now(),
    )
    # Frame of Reference module (part of the RT Structure Set IOD in current editions)
    ds.FrameOfReferenceUID = frame_of_reference
    ds.PositionReferenceIndicator = ref.get("PositionReferenceIndicator", "")
    ds.StructureSetLabel = structure_set_label[:16]
    ds.StructureSetDate = ds.InstanceCreationDate
    ds.StructureSetTime = ds.InstanceCreationTime

    ref_item = Dataset()
    ref_item.FrameOfReferenceUID = frame_of_reference
    if planes:
        study_item = Dataset()
        study_item.ReferencedSOPClassUID = _STUDY_SOP_CLASS
        study_item.ReferencedSOPInstanceUID = ref.StudyInstanceUID
        series_item = Dataset()
        series_item.SeriesInstanceUID = ref.get("SeriesInstanceUID", "")
        series_item.ContourImageSequence = []
        for _, _, rds in planes:
            img = Dataset()
            img.ReferencedSOPClassUID = rds.SOPClassUID
            img.ReferencedSOPInstanceUID = rds.SOPInstanceUID
            series_item.ContourImageSequence.append(img)
        study_item.RTReferencedSeriesSequence = [series_item]
        ref_item.RTReferencedStudySequence = [study_item]
    ds.ReferencedFrameOfReferenceSequence = [ref_item]

    ds.StructureSetROISequence = []
    ds.ROIContourSequence = []
    ds.RTROIObservationsSequence = []
    for number, (name, mask) in enumerate(masks.items(), start=1):
        roi = Dataset()
        roi.ROINumber = number
        roi.ReferencedFrameOfReferenceUID = frame_of_reference
        roi.ROIName = str(name)[:64]
        roi.ROIGenerationAlgorithm = generation_algorithm
        ds.StructureSetROISequence.append(roi)

        rc = Dataset()
        rc.ReferencedROINumber = number
        color = (colors or {}).get(name, _PALETTE[(number - 1) % len(_PALETTE)])
        rc.ROIDisplayColor = [int(c) for c in color]
        contours = _mask_contours(mask, planes)
        if contours:
            rc.ContourSequence = contours
        else:
            log.warning("mask %r is empty; its ROI is written without contours", name)
        ds.ROIContourSequence.append(rc)

        obs = Dataset()
        obs.ObservationNumber = number
        obs.ReferencedROINumber = number
        obs.RTROIInterpretedType = (interpreted_types or {}).get(name, "")
        obs.ROIInterpreter = ""
        ds.RTROIObservationsSequence.append(obs)

    file_ds = FileDataset(str(path), ds, file_meta=file_meta_for(ds), preamble=b"\0" * 128)
    return atomic_write(
        path,
        lambda tmp: file_ds.save_as(tmp, enforce_file_format=True),
        overwrite=overwrite,
        input_dirs=input_dirs,
    )


def _mask_contours(
    mask: Volume, planes: list[tuple[np.ndarray, np.ndarray, Dataset]]
) -> list[Dataset]:
    arr = np.asarray(mask.array)
    binary = arr if arr.dtype == bool else arr.astype(np.float64) >= 0.5
    out: list[Dataset] = []
    spacing_k = mask.spacing_mm[0]
    for k in np.nonzero(binary.any(axis=(1, 2)))[0]:
        for poly in mask_outlines(binary[k]):
            idx = np.column_stack([np.full(len(poly), float(k)), poly])
            world = mask.index_to_world(idx)
            c = Dataset()
            c.ContourGeometricType = "CLOSED_PLANAR"
            c.NumberOfContourPoints = len(world)
            c.ContourData = [format_ds(float(v)) for v in world.ravel()]
            for normal, pos, rds in planes:
                if abs(float((world[0] - pos) @ normal)) < 0.25 * spacing_k:
                    img = Dataset()
                    img.ReferencedSOPClassUID = rds.SOPClassUID
                    img.ReferencedSOPInstanceUID = rds.SOPInstanceUID
                    c.ContourImageSequence = [img]
                    break
            out.append(c)
    return out
