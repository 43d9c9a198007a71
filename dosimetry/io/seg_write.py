"""Masks out as a DICOM Segmentation (SEG) object, built with highdicom.

The masks must lie on the grid of the reference image series (one frame per source image);
binary masks give a BINARY segmentation, fractional masks a FRACTIONAL one of type
OCCUPANCY (fraction of the voxel occupied, 8-bit).

References
----------
DICOM PS3.3 2024, A.51 Segmentation IOD; C.8.20 Segmentation modules.
Herrmann MD et al. Implementing the DICOM standard for digital pathology. J Pathol Inform
2018;9:37 (highdicom).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from pydicom.dataset import Dataset

from ..errors import DicomInputError, GeometryMismatchError, InputDataError
from ..volume import Volume
from ._atomic import PathLike, atomic_write
from ._uids import new_uid, software_version
from ._uids import reference_datasets as _reference_datasets

__all__ = ["write_seg", "series_grid"]

log = logging.getLogger(__name__)


def series_grid(datasets: list[Dataset]) -> tuple[list[Dataset], np.ndarray]:
    """Sort single-frame image datasets along their normal and build the index -> LPS affine.

    Returns the sorted datasets and the 4x4 affine (``[slice, row, column]`` convention).
    """
    if not datasets:
        raise DicomInputError("reference_datasets is empty")
    for kw in ("ImageOrientationPatient", "ImagePositionPatient", "PixelSpacing"):
        missing = [str(getattr(d, "filename", "?")) for d in datasets if kw not in d]
        if missing:
            raise DicomInputError(f"reference image(s) lack {kw}: {missing[:3]}", tag=kw)
    iop = np.array([float(v) for v in datasets[0].ImageOrientationPatient])
    r, c = iop[:3], iop[3:]
    n = np.cross(r, c)
    pos = np.array([[float(v) for v in d.ImagePositionPatient] for d in datasets])
    order = np.argsort(pos @ n, kind="stable")
    sorted_ds = [datasets[i] for i in order]
    z = (pos @ n)[order]
    ps = [float(v) for v in datasets[0].PixelSpacing]
    affine = np.eye(4)
    affine[:3, 1] = c * ps[0]
    affine[:3, 2] = r * ps[1]
    affine[:3, 3] = pos[order[0]]
    if len(datasets) > 1:
        steps = np.diff(z)
        if np.any(steps <= 1e-6) or np.ptp(steps) > 0.01 * float(np.median(steps)):
            raise GeometryMismatchError(
                "reference images are not a uniformly spaced stack (duplicates or gaps)"
            )
        affine[:3, 0] = (pos[order[-1]] - pos[order[0]]) / (len(datasets) - 1)
    else:
        affine[:3, 0] = n * float(datasets[0].get("SliceThickness", 1.0) or 1.0)
    return sorted_ds, affine


def write_seg(
    masks: Mapping[str, Volume],
    path: PathLike,
    reference_datasets: Any,
    *,
    series_description: str | None = "dosimetry segmentation",
    series_number: int = 903,
    categories: Mapping[str, tuple[Any, Any]] | None = None,
    algorithm: tuple[str, Any] | None = None,
    overwrite: bool = False,
    input_dirs: Iterable[PathLike] = (),
) -> Path:
    """Write masks as a DICOM SEG that references the image series they were drawn on.

    Parameters
    ----------
    masks
        ``{segment label: mask}`` on the reference series' grid; all bool (BINARY SEG) or
        any fractional (FRACTIONAL SEG, OCCUPANCY).
    path
        Output file.
    reference_datasets
        The source image series: list of its datasets (headers suffice), or an object with
        ``.info.headers`` / ``.headers``.
    series_description, series_number
        Of the new SEG series.
    categories
        ``{label: (segmented property category, segmented property type)}`` as pydicom
        ``Code``s; default SCT 85756007 "Tissue" for both (generic).
    algorithm
        ``(name, family Code from CID 7162)`` for AUTOMATIC segments; default MANUAL.
    overwrite, input_dirs
        Output policy.

    Returns
    -------
    pathlib.Path
        The file written.
    """
    import highdicom as hd
    from pydicom.sr.codedict import codes

    if not masks:
        raise InputDataError("masks is empty: nothing to write")
    refs = _reference_datasets(reference_datasets, "reference_datasets")
    sorted_refs, affine = series_grid(refs)
    ref_for = str(sorted_refs[0].get("FrameOfReferenceUID", "") or "") or None
    grid = Volume(
        np.zeros(
            (len(sorted_refs), int(sorted_refs[0].Rows), int(sorted_refs[0].Columns)), np.uint8
        ),
        affine,
        "1",
        frame_of_reference_uid=ref_for,
    )
    stack = []
    fractional = False
    for name, m in masks.items():
        if not isinstance(m, Volume):
            raise InputDataError(f"mask {name!r} must be a dosimetry.Volume")
        grid.check_same_grid(m, name=f"mask {name!r}", atol_mm=1e-2)
        a = np.asarray(m.array)
        if a.dtype != bool:
            a = a.astype(np.float32)
            if not np.all(np.isfinite(a)) or a.min() < 0 or a.max() > 1:
                raise InputDataError(f"mask {name!r} must hold values in [0, 1]")
            fractional = fractional or bool(np.any((a > 0) & (a < 1)))
        stack.append(a)
    pixel = np.stack(stack, axis=-1)
    if fractional:
        pixel = pixel.astype(np.float32)
    else:
        pixel = pixel.astype(bool)
    if not np.any(pixel):
        raise InputDataError("all masks are empty; a SEG needs at least one segmented voxel")

    default_code = codes.SCT.Tissue
    descriptions = []
    for number, name in enumerate(masks, start=1):
        cat, typ = (categories or {}).get(name, (default_code, default_code))
        if algorithm is None:
            desc = hd.seg.SegmentDescription(
                segment_number=number,
                segment_label=str(name)[:64],
                segmented_property_category=cat,
                segmented_property_type=typ,
                algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL,
            )
        else:
            desc = hd.seg.SegmentDescription(
                segment_number=number,
                segment_label=str(name)[:64],
                segmented_property_category=cat,
                segmented_property_type=typ,
                algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
                algorithm_identification=hd.AlgorithmIdentificationSequence(
                    name=algorithm[0], family=algorithm[1], version=software_version()
                ),
            )
        descriptions.append(desc)
    seg = hd.seg.Segmentation(
        source_images=sorted_refs,
        pixel_array=pixel,
        segmentation_type=(
            hd.seg.SegmentationTypeValues.FRACTIONAL
            if fractional
            else hd.seg.SegmentationTypeValues.BINARY
        ),
        fractional_type=hd.seg.SegmentationFractionalTypeValues.OCCUPANCY,
        segment_descriptions=descriptions,
        series_instance_uid=new_uid(),
        series_number=series_number,
        sop_instance_uid=new_uid(),
        instance_number=1,
        manufacturer="dosimetry (open-source theranostics dosimetry workbench)",
        manufacturer_model_name="dosimetry",
        software_versions=software_version(),
        device_serial_number="0",
        series_description=series_description,
        omit_empty_frames=False,
    )
    return atomic_write(
        path,
        lambda tmp: seg.save_as(tmp, enforce_file_format=True),
        overwrite=overwrite,
        input_dirs=input_dirs,
    )
