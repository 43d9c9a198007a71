"""Volume <-> SimpleITK.Image.

SimpleITK and :class:`~dosimetry.Volume` both work in DICOM patient (LPS) millimetres;
they differ in axis order. ``sitk.GetArrayFromImage`` returns ``[z, y, x]`` with ``x``
the fastest (column) index, which is exactly the Volume's ``[slice, row, column]``.
The SimpleITK geometry is therefore:

* spacing ``(column, row, slice)`` = ``volume.spacing_mm[::-1]``;
* origin = ``volume.origin_mm`` (centre of voxel ``[0, 0, 0]``);
* direction: the 3x3 matrix whose columns are the unit vectors of the x (column), y (row)
  and z (slice) index axes = ``volume.direction[:, ::-1]``, flattened row-major.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import GeometryMismatchError
from ..volume import Volume

if TYPE_CHECKING:
    import SimpleITK as sitk

__all__ = ["volume_to_sitk", "sitk_to_volume"]


def volume_to_sitk(volume: Volume) -> sitk.Image:
    """A SimpleITK image with the Volume's values and geometry.

    Boolean arrays become ``uint8``. The unit is stored in the image's metadata under
    ``"unit"``.

    >>> import numpy as np
    >>> from dosimetry import Volume
    >>> img = volume_to_sitk(Volume.from_spacing(np.zeros((2, 3, 4)), (3.0, 2.0, 1.0)))
    >>> img.GetSize(), img.GetSpacing()
    ((4, 3, 2), (1.0, 2.0, 3.0))
    """
    import SimpleITK as sitk

    arr = volume.array
    if arr.dtype == bool:
        arr = arr.astype(np.uint8)
    img = sitk.GetImageFromArray(np.ascontiguousarray(arr))
    img.SetSpacing(tuple(float(s) for s in volume.spacing_mm[::-1]))
    img.SetOrigin(tuple(float(v) for v in volume.origin_mm))
    img.SetDirection(tuple(float(v) for v in volume.direction[:, ::-1].ravel()))
    img.SetMetaData("unit", volume.unit)
    if volume.frame_of_reference_uid:
        img.SetMetaData("frame_of_reference_uid", volume.frame_of_reference_uid)
    return img


def sitk_to_volume(
    image: sitk.Image,
    unit: str | None = None,
    *,
    frame_of_reference_uid: str | None = None,
    reference_time: datetime | None = None,
    provenance: dict[str, Any] | None = None,
) -> Volume:
    """A Volume from a 3-D scalar SimpleITK image (LPS geometry kept).

    Parameters
    ----------
    image
        3-D, one component per pixel.
    unit
        The Volume unit; default: the image's ``"unit"`` metadata, else ``"1"``.
    frame_of_reference_uid
        Default: the image's ``"frame_of_reference_uid"`` metadata, else ``None``.
    """
    import SimpleITK as sitk

    if image.GetDimension() != 3:
        raise GeometryMismatchError(
            f"sitk_to_volume needs a 3-D image, got {image.GetDimension()}-D"
        )
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise GeometryMismatchError(
            f"sitk_to_volume needs a scalar image, got "
            f"{image.GetNumberOfComponentsPerPixel()} components per pixel"
        )
    arr = sitk.GetArrayFromImage(image)  # [z, y, x] = [slice, row, column]
    d_xyz = np.array(image.GetDirection(), dtype=float).reshape(3, 3)
    direction = d_xyz[:, ::-1]  # columns: slice, row, column axes
    spacing = tuple(float(s) for s in image.GetSpacing()[::-1])
    if unit is None:
        unit = image.GetMetaData("unit") if image.HasMetaDataKey("unit") else "1"
    if frame_of_reference_uid is None and image.HasMetaDataKey("frame_of_reference_uid"):
        frame_of_reference_uid = image.GetMetaData("frame_of_reference_uid")
    return Volume.from_spacing(
        arr,
        spacing,  # type: ignore[arg-type]
        tuple(float(v) for v in image.GetOrigin()),  # type: ignore[arg-type]
        direction,
        unit=unit,
        frame_of_reference_uid=frame_of_reference_uid,
        reference_time=reference_time,
        provenance=dict(provenance or {}),
    )
