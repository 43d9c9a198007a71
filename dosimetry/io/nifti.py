"""NIfTI / NRRD / MHA output and input of :class:`~dosimetry.Volume` with a JSON sidecar.

Files are written and read with SimpleITK (ITK). ITK works in DICOM LPS internally and
converts to NIfTI's RAS+ world on writing (negating x and y in the qform/sform) and back on
reading; NRRD and MHA files are written in LPS. The array axes map as
``Volume [slice, row, col]`` <-> ITK index ``(z, y, x)``.

The sidecar (``<stem>.json`` next to the image; ``dose.nii.gz`` -> ``dose.json``) records
what the image format cannot: the unit, the reference time (ISO 8601), the DICOM frame of
reference, the exact (float64) index -> LPS affine, the software version and the
provenance. :func:`read_nifti` takes the unit from it, and checks that the image's own
geometry agrees with the recorded affine (NIfTI stores it in float32).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk

from ..errors import DicomInputError, GeometryMismatchError, OutputError, UnitError
from ..units import VOLUME_UNITS
from ..volume import Volume
from ._atomic import PathLike, atomic_write_many
from ._uids import software_version
from .sitk import sitk_to_volume, volume_to_sitk

__all__ = ["write_nifti", "read_nifti", "sidecar_path"]

log = logging.getLogger(__name__)

_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".mha")
#: Largest corner distance (mm) between the image's geometry and the sidecar's affine for
#: the sidecar's float64 affine to be used (NIfTI holds float32: ~3e-5 mm at 500 mm).
SIDECAR_AFFINE_TOL_MM = 0.01


def _image_suffix(path: Path) -> str:
    name = path.name.lower()
    for s in _SUFFIXES:
        if name.endswith(s):
            return s
    raise OutputError(f"{path}: unsupported image file type; use one of {', '.join(_SUFFIXES)}")


def sidecar_path(path: PathLike) -> Path:
    """The JSON sidecar of an image file.

    >>> sidecar_path("out/dose.nii.gz").as_posix()
    'out/dose.json'
    """
    p = Path(path)
    suffix = _image_suffix(p)
    return p.with_name(p.name[: -len(suffix)] + ".json")


def _to_sitk(volume: Volume) -> sitk.Image:
    if volume.array.dtype == np.float16:
        volume = volume.with_array(volume.array.astype(np.float32))
    return volume_to_sitk(volume)


def _read_image(path: Path, unit: str) -> Volume:
    """Read a 3-D scalar image with SimpleITK (no sidecar handling)."""
    if not path.is_file():
        raise DicomInputError(f"image file {path} does not exist", path)
    try:
        img = sitk.ReadImage(str(path))
    except RuntimeError as exc:
        raise DicomInputError(f"cannot read image: {exc}", path) from exc
    if img.GetNumberOfComponentsPerPixel() != 1:
        raise DicomInputError(f"{path} holds vector pixels; a scalar image is needed", path)
    if img.GetDimension() == 4 and img.GetSize()[3] == 1:
        img = img[:, :, :, 0]
    if img.GetDimension() != 3:
        raise DicomInputError(f"{path} is {img.GetDimension()}-D; a 3-D image is needed", path)
    return sitk_to_volume(img, unit)


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple | set):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return _jsonable(obj.item())
    if isinstance(obj, datetime | date):
        return obj.isoformat()
    if isinstance(obj, float) and not math.isfinite(obj):
        return str(obj)
    if obj is None or isinstance(obj, bool | int | float | str):
        return obj
    return str(obj)


def write_nifti(
    volume: Volume,
    path: PathLike,
    *,
    sidecar: bool = True,
    overwrite: bool = False,
    input_dirs: Iterable[PathLike] = (),
) -> Path:
    """Write ``volume`` as NIfTI (``.nii``, ``.nii.gz``), NRRD or MHA, with a JSON sidecar.

    Parameters
    ----------
    volume
        Any Volume (dose in Gy, activity, masks: bool is stored as uint8).
    path
        Output image file; the suffix chooses the format.
    sidecar
        Also write ``<stem>.json`` with unit, reference time, frame of reference, affine
        and provenance (both files are checked before either is written).
    overwrite
        Replace existing files.
    input_dirs
        Folders the output must not be written into.

    Returns
    -------
    pathlib.Path
        The image file written.
    """
    target = Path(path)
    _image_suffix(target)
    img = _to_sitk(volume)

    def _write_image(tmp: Path) -> None:
        sitk.WriteImage(img, str(tmp), useCompression=target.name.lower().endswith(".gz"))

    items: list[tuple[PathLike, Any]] = [(target, _write_image)]
    if sidecar:
        meta = {
            "unit": volume.unit,
            "unit_description": VOLUME_UNITS.get(volume.unit, ""),
            "reference_time": None
            if volume.reference_time is None
            else volume.reference_time.isoformat(),
            "frame_of_reference_uid": volume.frame_of_reference_uid,
            "shape": list(volume.shape),
            "affine_lps": np.asarray(volume.affine).tolist(),
            "coordinates": "affine_lps maps (slice, row, column, 1) to DICOM LPS mm; NIfTI files "
            "store RAS+ (x, y negated), NRRD/MHA store LPS",
            "software": f"dosimetry {software_version()}",
            "created": datetime.now().astimezone().isoformat(timespec="seconds"),
            "provenance": _jsonable(dict(volume.provenance)),
        }
        text = json.dumps(meta, indent=2, allow_nan=False)
        items.append((sidecar_path(target), lambda tmp: tmp.write_text(text, encoding="utf-8")))
    written = atomic_write_many(items, overwrite=overwrite, input_dirs=input_dirs)
    return written[0]


def read_nifti(path: PathLike, *, unit: str | None = None) -> Volume:
    """Read an image written by :func:`write_nifti` (or any NIfTI/NRRD/MHA file).

    Parameters
    ----------
    path
        Image file.
    unit
        The values' unit. Taken from the JSON sidecar when there is one (a different
        ``unit`` is then an error); required when there is none.

    Returns
    -------
    Volume
        With unit, reference time, frame of reference and provenance from the sidecar.
    """
    p = Path(path)
    _image_suffix(p)
    from ._manifest import check_output_file

    check_output_file(p)
    side = sidecar_path(p)
    meta: dict[str, Any] = {}
    if side.is_file():
        try:
            meta = json.loads(side.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise DicomInputError(f"cannot read the sidecar {side}: {exc}", side) from exc
    side_unit = meta.get("unit")
    if side_unit is not None and unit is not None and side_unit != unit:
        raise UnitError(f"unit={unit!r} contradicts the sidecar {side}, which says {side_unit!r}")
    chosen = unit if unit is not None else side_unit
    if chosen is None:
        raise UnitError(
            f"{p} has no sidecar {side.name} naming its unit; pass unit= (one of "
            f"{', '.join(VOLUME_UNITS)})"
        )
    vol = _read_image(p, chosen)
    affine = vol.affine
    if "affine_lps" in meta:
        recorded = np.asarray(meta["affine_lps"], dtype=float)
        corners = np.array(
            [
                [k, j, i, 1.0]
                for k in (0, vol.shape[0] - 1)
                for j in (0, vol.shape[1] - 1)
                for i in (0, vol.shape[2] - 1)
            ]
        )
        if recorded.shape != (4, 4) or list(vol.shape) != list(meta.get("shape", vol.shape)):
            raise GeometryMismatchError(f"sidecar {side} does not describe {p} (shape/affine)")
        dist = np.linalg.norm((corners @ recorded.T - corners @ affine.T)[:, :3], axis=1).max()
        if dist > SIDECAR_AFFINE_TOL_MM:
            raise GeometryMismatchError(
                f"the geometry of {p} differs from its sidecar {side} by {dist:.3g} mm; the "
                "sidecar belongs to another image. Remove or fix it."
            )
        affine = recorded
    ref_time = meta.get("reference_time")
    return Volume(
        vol.array,
        affine,
        chosen,
        frame_of_reference_uid=meta.get("frame_of_reference_uid", vol.frame_of_reference_uid),
        reference_time=None if ref_time is None else datetime.fromisoformat(ref_time),
        provenance={**dict(meta.get("provenance") or {}), "read_from": str(p)},
    )
