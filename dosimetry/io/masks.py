"""Masks in: DICOM RTSTRUCT contours, DICOM SEG and NIfTI label maps onto any image grid.

All readers return ``{name: Volume}`` with unit ``"1"`` on the requested grid: ``bool``
arrays in ``mode="binary"``, ``float32`` occupancy fractions in [0, 1] in
``mode="fraction"`` (the partial-volume weights used by :func:`dosimetry.metrics.dvh`).

Rasterising RTSTRUCT contours
-----------------------------
*In plane.* Each contour plane is rasterised on the grid slice geometry by point
sampling: every voxel is split into ``supersample x supersample`` sub-pixels whose centres are
tested against *all* contours of the ROI in that plane together with the even-odd
(crossing-parity) rule. A contour lying inside another one is therefore a hole, a contour
inside a hole is an island again, and overlapping contours cancel where they overlap — the
convention of DICOM viewers for inner contours (PS3.3 C.8.8.6 leaves the interpretation of
nested contours to the application; XOR is the common choice). The occupancy of a voxel is
the fraction of its sub-pixels inside.

*Through plane.* Each contour plane stands for a slab centred on it whose thickness is the
ROI's contour-plane spacing (median gap between its planes; the structure set's median
spacing for ROIs with fewer than three planes; the grid slice spacing when the whole
structure set has a single plane). Where neighbouring planes are closer, the slabs meet half
way. A gap larger than the spacing (structure absent on intermediate planes) stays empty.
A grid slice receives the overlap-weighted mean of the slabs it intersects (nearest-plane
rule, no shape interpolation): this keeps the ROI's volume equal to the contours' enclosed
volume ``sum(area x slab thickness)`` on any grid — fine CT grids, coarse PET/SPECT grids,
and grids whose slices fall between contour planes. In ``mode="binary"`` a voxel belongs to
the ROI when its occupancy is at least 0.5.

The contour planes must be parallel to the grid slices (within ``plane_tolerance_mm``):
contours drawn on axial CT fit any axial grid (CT, PET, SPECT) in the same frame of
reference; an oblique grid raises :class:`~dosimetry.errors.GeometryMismatchError`.
"""

from __future__ import annotations

import contextlib
import logging
import math
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.uid import RTStructureSetStorage, SegmentationStorage
from scipy import ndimage

from ..errors import DicomInputError, DosimetryError, GeometryMismatchError, InputDataError
from ..volume import Volume, check_grid_budget

__all__ = ["rtstruct_to_masks", "seg_to_masks", "read_label_map", "rasterize_polygons"]

log = logging.getLogger(__name__)

Mode = Literal["binary", "fraction"]

#: Largest |pixel index| a contour vertex may have (1e9 pixels, i.e. kilometres from any
#: grid): beyond it the rasteriser's float64 edge arithmetic and int64 sub-pixel indices
#: would lose exactness; such a vertex can only come from a corrupted ContourData.
MAX_CONTOUR_INDEX = 1e9


# ----------------------------------------------------------------------------- 2-D raster
def rasterize_polygons(
    polygons: Sequence[np.ndarray],
    shape: tuple[int, int],
    supersample: int = 4,
    origin: tuple[int, int] = (0, 0),
) -> np.ndarray:
    """Fractional even-odd coverage of pixels by a set of polygons.

    Parameters
    ----------
    polygons
        Closed polygons, each ``(n, 2)`` in continuous (row, column) pixel-index
        coordinates (pixel ``(j, i)`` covers ``[j - 0.5, j + 0.5] x [i - 0.5, i + 0.5]``).
        The last vertex connects back to the first.
    shape
        ``(n_rows, n_cols)`` of the output window.
    supersample
        Sub-pixels per axis.
    origin
        Pixel index of the window's first row and column.

    Returns
    -------
    numpy.ndarray
        ``float32`` array of ``shape``: fraction of each pixel's sub-pixel centres that lie
        inside an odd number of polygons.

    Examples
    --------
    A 2 x 2 pixel square with a 1-pixel square hole at its corner:

    >>> outer = np.array([[-0.5, -0.5], [-0.5, 1.5], [1.5, 1.5], [1.5, -0.5]])
    >>> hole = np.array([[-0.5, -0.5], [-0.5, 0.5], [0.5, 0.5], [0.5, -0.5]])
    >>> rasterize_polygons([outer, hole], (2, 2)).tolist()
    [[0.0, 1.0], [1.0, 1.0]]
    """
    s = int(supersample)
    if s < 1:
        raise InputDataError(f"supersample must be >= 1, got {supersample}")
    nj, ni = int(shape[0]), int(shape[1])
    if nj < 0 or ni < 0:
        raise InputDataError(f"shape must be two non-negative sizes, got {tuple(shape)}")
    check_grid_budget(
        (nj * s, ni * s + 1), what="rasterize_polygons: the supersampled window", bytes_per_voxel=1
    )
    n_rows, n_cols = nj * s, ni * s
    y0 = origin[0] - 0.5 + 0.5 / s  # centre of the first sub-row
    x0 = origin[1] - 0.5 + 0.5 / s
    toggle = np.zeros((n_rows, n_cols + 1), dtype=np.uint8)
    for poly in polygons:
        try:
            p = np.asarray(poly, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise InputDataError(f"a polygon is not an (n, 2) array of numbers ({exc})") from None
        if p.ndim != 2 or p.shape[0] < 3 or p.shape[1] != 2:
            continue
        if not np.all(np.isfinite(p)) or np.max(np.abs(p)) > MAX_CONTOUR_INDEX:
            raise InputDataError(
                "polygon vertices must be finite pixel coordinates within "
                f"+-{MAX_CONTOUR_INDEX:g} of the grid, got values up to {np.max(np.abs(p))!r}"
            )
        ya, xa = p[:, 0], p[:, 1]
        yb, xb = np.roll(ya, -1), np.roll(xa, -1)
        moving = ya != yb  # horizontal edges never cross a sub-row
        ya, xa, yb, xb = ya[moving], xa[moving], yb[moving], xb[moving]
        lo, hi = np.minimum(ya, yb), np.maximum(ya, yb)
        # sub-rows r with lo <= y_r < hi (half-open: a vertex is counted once)
        r0 = np.clip(np.ceil((lo - y0) * s), 0, n_rows).astype(np.int64)
        r1 = np.clip(np.ceil((hi - y0) * s), 0, n_rows).astype(np.int64)
        counts = r1 - r0
        keep = counts > 0
        if not np.any(keep):
            continue
        r0, counts = r0[keep], counts[keep]
        ya, xa, yb, xb = ya[keep], xa[keep], yb[keep], xb[keep]
        edge = np.repeat(np.arange(len(counts)), counts)
        first = np.repeat(np.cumsum(counts) - counts, counts)
        rows = np.repeat(r0, counts) + (np.arange(edge.size) - first)
        y = y0 + rows / s
        t = (y - ya[edge]) / (yb[edge] - ya[edge])
        x = xa[edge] + t * (xb[edge] - xa[edge])
        cols = np.clip(np.ceil((x - x0) * s), 0, n_cols).astype(np.int64)
        np.add.at(toggle, (rows, cols), 1)
    inside = np.cumsum(toggle, axis=1, dtype=np.uint8)[:, :n_cols] & 1
    frac = inside.reshape(nj, s, ni, s).sum(axis=(1, 3), dtype=np.int32)
    return (frac / float(s * s)).astype(np.float32)


# ----------------------------------------------------------------------------- RTSTRUCT
def _load(source: Any, what: str) -> tuple[Dataset, str | None]:
    if isinstance(source, Dataset):
        return source, getattr(source, "filename", None)
    from .discovery import _read

    try:
        return _read(Path(source), headers_only=False), str(source)
    except DicomInputError:
        raise
    except Exception as exc:
        raise DicomInputError(f"cannot read {what}: {exc}", path=source) from exc


@contextlib.contextmanager
def _decoding(path: str | None) -> Iterator[None]:
    """Turn pydicom's lazy decoding failures into :class:`DicomInputError`; log its warnings.

    The items of the ROI Contour Sequence are decoded when first accessed (see
    :func:`dosimetry.io.discovery._read`), so a malformed value surfaces here.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield
        except DosimetryError:
            raise
        except Exception as exc:  # pydicom raises many types on malformed values
            raise DicomInputError(
                f"the RT Structure Set cannot be decoded ({type(exc).__name__}: {exc})", path
            ) from exc
        finally:
            for w in caught:
                log.warning("%s: pydicom: %s", path, w.message)


def _roi_number(item: Dataset, keyword: str, path: str | None, where: str) -> int:
    """An ROI number (IS) of a structure-set item; missing or malformed is an error."""
    value = item.get(keyword)
    try:
        if value is None or value == "":
            raise ValueError
        f = float(value)
        if not f.is_integer():
            raise ValueError
        return int(f)
    except (TypeError, ValueError, OverflowError):
        raise DicomInputError(
            f"{where}: {keyword} is {'missing' if value in (None, '') else repr(value)}; every "
            "item needs an integer ROI number (PS3.3 C.8.8.5/C.8.8.6). The structure set is "
            "truncated or corrupted: export it again.",
            path,
            keyword,
        ) from None


def _auto_supersample(grid: Volume) -> int:
    """4 sub-pixels per axis for pixels up to 2 mm, up to 8 for coarser (PET/SPECT) pixels."""
    px = max(grid.spacing_mm[1], grid.spacing_mm[2])
    return int(min(8, max(4, math.ceil(px / 0.5))))


def _roi_tables(ds: Dataset, path: str | None) -> tuple[dict[int, dict[str, Any]], str | None]:
    if "StructureSetROISequence" not in ds:
        raise DicomInputError(
            "RTSTRUCT has no StructureSetROISequence", path, "StructureSetROISequence"
        )
    file_for = None
    for item in _items(ds, "ReferencedFrameOfReferenceSequence", path):
        file_for = str(item.get("FrameOfReferenceUID", "") or "") or file_for
    rois: dict[int, dict[str, Any]] = {}
    for k, item in enumerate(_items(ds, "StructureSetROISequence", path)):
        number = _roi_number(item, "ROINumber", path, f"StructureSetROISequence item {k + 1}")
        rois[number] = {
            "name": str(item.get("ROIName", "") or f"ROI {number}"),
            "for": str(item.get("ReferencedFrameOfReferenceUID", "") or "") or file_for,
            "contours": [],
        }
    for k, item in enumerate(_items(ds, "ROIContourSequence", path)):
        number = _roi_number(item, "ReferencedROINumber", path, f"ROIContourSequence item {k + 1}")
        if number not in rois:
            log.warning("%s: ROIContourSequence references unknown ROI number %d", path, number)
            continue
        rois[number]["contours"] = _items(item, "ContourSequence", path)
    return rois, file_for


def _items(ds: Dataset, keyword: str, path: str | None) -> list[Dataset]:
    """The items of sequence ``keyword`` (empty when absent); not a sequence is an error."""
    value = ds.get(keyword)
    if value is None or value == "":
        return []
    if not isinstance(value, Sequence) or isinstance(value, str | bytes):
        raise DicomInputError(
            f"{keyword} is not a sequence (value {str(value)[:40]!r}): corrupted structure set",
            path,
            keyword,
        )
    items = list(value)
    if not all(isinstance(it, Dataset) for it in items):
        raise DicomInputError(f"{keyword} holds items that are not datasets", path, keyword)
    return items


def _select(
    rois: Mapping[int, dict[str, Any]], names: Sequence[str] | None, path: str | None
) -> dict[str, int]:
    """Requested name -> ROI number."""
    available = [r["name"] for r in rois.values()]
    if names is None:
        out: dict[str, int] = {}
        for number, roi in rois.items():
            closed = [
                c for c in roi["contours"] if c.get("ContourGeometricType") == "CLOSED_PLANAR"
            ]
            if not closed:
                log.info("ROI %r has no CLOSED_PLANAR contours; skipped", roi["name"])
                continue
            key = roi["name"]
            if key in out:
                key = f"{roi['name']} (ROI {number})"
                log.warning(
                    "duplicate ROI name %r; ROI %d returned as %r", roi["name"], number, key
                )
            out[key] = number
        return out
    if isinstance(names, str):
        names = [names]
    out = {}
    for name in names:
        name = str(name)
        exact = [n for n, r in rois.items() if r["name"] == name]
        if not exact:
            exact = [
                n for n, r in rois.items() if r["name"].strip().lower() == name.strip().lower()
            ]
        if len(exact) != 1:
            why = "is not in" if not exact else "matches several ROIs of"
            raise DicomInputError(
                f"ROI name {name!r} {why} the structure set; available: {', '.join(available)}",
                path,
                "ROIName",
            )
        out[name] = exact[0]
    return out


def _contour_data(contour: Dataset, roi: str = "?", path: str | None = None) -> np.ndarray:
    """ContourData as float64, parsed straight from the raw DS bytes when possible (fast).

    A value that is not a finite number (text, NaN, infinity) is a
    :class:`DicomInputError` naming the ROI, the tag and the file.
    """
    if "ContourData" not in contour:
        return np.zeros(0)
    elem = contour.get_item("ContourData")
    raw = getattr(elem, "value", None)
    data: np.ndarray | None = None
    if isinstance(raw, bytes | bytearray):
        text = raw.decode("ascii", errors="replace").strip(" \0")
        try:
            data = np.array(text.split("\\"), dtype=np.float64) if text else np.zeros(0)
        except ValueError:
            data = None  # unusual formatting: let pydicom parse it
    if data is None:
        try:
            value = contour.ContourData
            values = value if isinstance(value, list | tuple | MultiValue) else [value]
            data = np.asarray([float(v) for v in values], dtype=np.float64)
        except Exception as exc:
            raise DicomInputError(
                f"ROI {roi!r}: ContourData is not a list of numbers ({type(exc).__name__}: "
                f"{str(exc)[:200]})",
                path,
                "ContourData",
            ) from None
    if not np.all(np.isfinite(data)):
        raise DicomInputError(
            f"ROI {roi!r}: ContourData holds NaN or infinite coordinates; the contour cannot "
            "be placed. Fix or remove this contour.",
            path,
            "ContourData",
        )
    return data


def _contour_planes(
    contours: Sequence[Dataset], grid: Volume, tol_mm: float, roi: str, path: str | None
) -> list[tuple[float, list[np.ndarray]]]:
    """Closed contours grouped by plane: [(k_continuous, [polygon (n,2) in (j,i)]), ...]."""
    sk = grid.spacing_mm[0]
    planes: list[tuple[float, list[np.ndarray]]] = []
    for c in contours:
        try:
            kind = c.get("ContourGeometricType")
        except Exception as exc:  # items of the ROI Contour Sequence are decoded lazily
            raise DicomInputError(
                f"ROI {roi!r}: a contour item cannot be decoded ({type(exc).__name__}: {exc})",
                path,
                "ContourGeometricType",
            ) from None
        if kind != "CLOSED_PLANAR":
            continue
        data = _contour_data(c, roi, path)
        if data.size < 9 or data.size % 3:
            log.warning("ROI %r: skipping a contour with %d coordinates", roi, data.size)
            continue
        with np.errstate(over="ignore", invalid="ignore"):
            idx = grid.world_to_index(data.reshape(-1, 3))
        if not np.all(np.isfinite(idx)) or float(np.max(np.abs(idx))) > MAX_CONTOUR_INDEX:
            raise DicomInputError(
                f"ROI {roi!r}: ContourData has coordinates up to "
                f"{float(np.max(np.abs(data))):.4g} mm, more than {MAX_CONTOUR_INDEX:g} voxels "
                "from the grid: a corrupted contour. Fix or remove it.",
                path,
                "ContourData",
            )
        spread_mm = float(np.ptp(idx[:, 0])) * sk
        if spread_mm > tol_mm:
            raise GeometryMismatchError(
                f"ROI {roi!r}: a contour spans {spread_mm:.3g} mm across the grid's slice axis; "
                "its plane is not parallel to the grid slices (oblique grid?). Rasterise onto "
                f"a grid in the contours' orientation, or raise plane_tolerance_mm={tol_mm}."
            )
        k = float(idx[:, 0].mean())
        for plane in planes:
            if abs(plane[0] - k) * sk <= tol_mm:
                plane[1].append(idx[:, 1:])
                break
        else:
            planes.append((k, [idx[:, 1:]]))
    planes.sort(key=lambda p: p[0])
    return planes


def _median_gap(positions: Sequence[float], tol: float) -> float | None:
    if len(positions) < 2:
        return None
    gaps = np.diff(np.sort(np.asarray(positions)))
    gaps = gaps[gaps > tol]
    return float(np.median(gaps)) if gaps.size else None


def _rasterize_roi(
    planes: list[tuple[float, list[np.ndarray]]],
    grid: Volume,
    spacing_k: float,
    supersample: int,
    mode: Mode,
) -> tuple[np.ndarray, bool]:
    """Mask of one ROI on ``grid`` (bool or float32 occupancy); also whether it was clipped.

    The occupancy is accumulated in the ROI's bounding box only, then placed in the grid.
    """
    nk, nj, ni = grid.shape
    clipped = False
    ks = [p[0] for p in planes]
    jobs = []
    for n, (k_c, polys) in enumerate(planes):
        lo = k_c - 0.5 * spacing_k
        hi = k_c + 0.5 * spacing_k
        if n > 0:
            lo = max(lo, 0.5 * (ks[n - 1] + k_c))
        if n + 1 < len(planes):
            hi = min(hi, 0.5 * (k_c + ks[n + 1]))
        pts = np.concatenate(polys)
        # clip before the integer cast (vertices far outside the grid are allowed)
        lo_ji = np.clip(np.floor(pts.min(axis=0) + 0.5), -1, [nj, ni])
        hi_ji = np.clip(np.floor(pts.max(axis=0) + 0.5), -1, [nj, ni])
        jmin, imin = lo_ji.astype(int)
        jmax, imax = hi_ji.astype(int)
        if lo < -0.5 or hi > nk - 0.5 or jmin < 0 or imin < 0 or jmax >= nj or imax >= ni:
            clipped = True
        j0, j1 = max(int(jmin), 0), min(int(jmax), nj - 1)
        i0, i1 = max(int(imin), 0), min(int(imax), ni - 1)
        k_first = max(int(math.floor(lo + 0.5)), 0)
        k_last = min(int(math.ceil(hi - 0.5)), nk - 1)
        if j1 < j0 or i1 < i0 or k_last < k_first:
            continue
        jobs.append((lo, hi, k_first, k_last, j0, j1, i0, i1, polys))
    out = np.zeros(grid.shape, dtype=bool if mode == "binary" else np.float32)
    if not jobs:
        return out, clipped
    bk0, bk1 = min(j[2] for j in jobs), max(j[3] for j in jobs)
    bj0, bj1 = min(j[4] for j in jobs), max(j[5] for j in jobs)
    bi0, bi1 = min(j[6] for j in jobs), max(j[7] for j in jobs)
    frac = np.zeros((bk1 - bk0 + 1, bj1 - bj0 + 1, bi1 - bi0 + 1), dtype=np.float32)
    for lo, hi, k_first, k_last, j0, j1, i0, i1, polys in jobs:
        f2 = rasterize_polygons(polys, (j1 - j0 + 1, i1 - i0 + 1), supersample, (j0, i0))
        for k in range(k_first, k_last + 1):
            w = min(hi, k + 0.5) - max(lo, k - 0.5)
            if w > 1e-9:
                frac[k - bk0, j0 - bj0 : j1 - bj0 + 1, i0 - bi0 : i1 - bi0 + 1] += (
                    np.float32(w) * f2
                )
    np.clip(frac, 0.0, 1.0, out=frac)
    box = (slice(bk0, bk1 + 1), slice(bj0, bj1 + 1), slice(bi0, bi1 + 1))
    out[box] = frac >= 0.5 if mode == "binary" else frac
    return out, clipped


def rtstruct_to_masks(
    rtstruct: str | Path | Dataset,
    grid: Volume,
    names: Sequence[str] | None = None,
    mode: Mode = "binary",
    supersample: int | None = None,
    *,
    plane_tolerance_mm: float = 0.5,
) -> dict[str, Volume]:
    """Rasterise RTSTRUCT CLOSED_PLANAR contours onto ``grid``.

    Parameters
    ----------
    rtstruct
        Path to the RT Structure Set file, or its pydicom Dataset.
    grid
        Target image (CT, PET, SPECT, dose): its shape, affine and frame of reference are
        used; its values are not.
    names
        ROI names to rasterise (exact match first, then case-insensitive); the dict keys are
        these names. Default: every ROI with closed contours.
    mode
        ``"binary"`` (bool, occupancy >= 0.5) or ``"fraction"`` (float32 occupancy in [0, 1]).
    supersample
        Sub-pixels per in-plane axis; default 4 for pixels up to 2 mm and up to 8 for
        coarser pixels (sub-pixels of at most 0.5 mm).
    plane_tolerance_mm
        How far (mm, along the slice axis) the points of one contour may stray from a common
        plane, and how close two contours must be to share a plane.

    Returns
    -------
    dict[str, Volume]
        One mask per ROI, unit ``"1"``, on ``grid``.

    Raises
    ------
    GeometryMismatchError
        The structure set refers to another frame of reference than ``grid`` (both named),
        or its contour planes are not parallel to the grid slices.
    DicomInputError
        Not an RTSTRUCT, or an unknown ROI name (the available names are listed).
    InputDataError
        A requested ROI has no closed contours.

    Notes
    -----
    See the module docstring for the in-plane (even-odd, supersampled) and through-plane
    (slab, nearest-plane) rules. ROIs reaching beyond the grid are clipped (logged, and
    ``provenance["clipped"]`` is True).
    """
    if mode not in ("binary", "fraction"):
        raise InputDataError(f"mode={mode!r}; valid: 'binary', 'fraction'")
    ds, path = _load(rtstruct, "RTSTRUCT")
    with _decoding(path):
        modality = ds.get("Modality")
        if str(ds.get("SOPClassUID", "")) != RTStructureSetStorage and modality != "RTSTRUCT":
            raise DicomInputError(
                f"not an RT Structure Set (Modality {modality!r})", path, "SOPClassUID"
            )
        rois, _ = _roi_tables(ds, path)
        selected = _select(rois, names, path)
    for key, number in selected.items():
        roi_for = rois[number]["for"]
        if (
            roi_for is not None
            and grid.frame_of_reference_uid is not None
            and roi_for != grid.frame_of_reference_uid
        ):
            raise GeometryMismatchError(
                f"RTSTRUCT ROI {key!r} refers to FrameOfReferenceUID {roi_for}, but the grid "
                f"has {grid.frame_of_reference_uid}: the contours belong to another image space. "
                "Use the image the structures were drawn on, or register the images first."
            )
    s = _auto_supersample(grid) if supersample is None else int(supersample)
    if s < 1:
        raise InputDataError(f"supersample must be >= 1, got {supersample}")
    sk = grid.spacing_mm[0]
    tol_k = plane_tolerance_mm / sk

    # nominal plane spacing of the whole structure set (fallback for ROIs with < 3 planes)
    all_planes: dict[int, list[tuple[float, list[np.ndarray]]]] = {}
    every_k: list[float] = []
    wanted = set(selected.values())
    for number, roi in rois.items():
        try:
            with _decoding(path):
                planes = _contour_planes(
                    roi["contours"], grid, plane_tolerance_mm, roi["name"], path
                )
        except GeometryMismatchError:
            if number in wanted:
                raise
            log.info("ROI %r (not requested) is not parallel to the grid; ignored", roi["name"])
            continue
        all_planes[number] = planes
        every_k.extend(p[0] for p in planes)
    uniq: list[float] = []
    for k in sorted(every_k):
        if not uniq or k - uniq[-1] > tol_k:
            uniq.append(k)
    set_gap = _median_gap(uniq, tol_k)

    out: dict[str, Volume] = {}
    for key, number in selected.items():
        roi = rois[number]
        planes = all_planes[number]
        if not planes:
            raise InputDataError(
                f"ROI {roi['name']!r} has no CLOSED_PLANAR contours (it may be a point or an "
                "empty ROI); it cannot be rasterised"
            )
        gap = _median_gap([p[0] for p in planes], tol_k) if len(planes) >= 3 else None
        if gap is None:
            gap = set_gap if set_gap is not None else 1.0
            if set_gap is None:
                log.info(
                    "ROI %r: single contour plane in the structure set; slab thickness set to "
                    "the grid slice spacing %.4g mm",
                    roi["name"],
                    sk,
                )
        array, clipped = _rasterize_roi(planes, grid, gap, s, mode)
        if clipped:
            log.warning("ROI %r extends beyond the grid; its mask is clipped", roi["name"])
        out[key] = Volume(
            array,
            grid.affine,
            "1",
            frame_of_reference_uid=grid.frame_of_reference_uid or roi["for"],
            provenance={
                "source": path,
                "rtstruct_sop_instance_uid": str(ds.get("SOPInstanceUID", "")),
                "roi_number": number,
                "roi_name": roi["name"],
                "mode": mode,
                "supersample": s,
                "plane_spacing_mm": gap * sk,
                "clipped": clipped,
            },
        )
    return out


# ----------------------------------------------------------------------------- SEG
def _to_grid(source: Volume, grid: Volume, mode: Mode) -> np.ndarray:
    """Occupancy of ``source`` (values in [0, 1]) on ``grid`` by sub-voxel point sampling.

    Each target voxel is split into ``n`` sub-voxels per axis (``n = ceil(2 x target /
    source spacing)``, 1 to 6) whose centres take the nearest source value; the occupancy
    is their mean (unbiased, never above 1). A finer target grid reduces to nearest
    neighbour.
    """
    if source.same_grid(grid, atol_mm=1e-4):
        frac = np.asarray(source.array, dtype=np.float32)
    else:
        src = np.asarray(source.array, dtype=np.float32)
        m = np.linalg.inv(source.affine) @ grid.affine
        ratio = np.array(grid.spacing_mm) / np.array(source.spacing_mm)
        n = np.clip(np.ceil(2.0 * ratio - 1e-9), 1, 6).astype(int)
        offsets = [(np.arange(k) + 0.5) / k - 0.5 for k in n]
        acc = np.zeros(grid.shape, dtype=np.float64)
        for dk in offsets[0]:
            for dj in offsets[1]:
                for di in offsets[2]:
                    shift = m[:3, :3] @ np.array([dk, dj, di]) + m[:3, 3]
                    acc += ndimage.affine_transform(
                        src,
                        m[:3, :3],
                        offset=shift,
                        output_shape=grid.shape,
                        order=0,
                        mode="constant",
                        cval=0.0,
                        prefilter=False,
                    )
        frac = (acc / float(np.prod(n))).astype(np.float32)
    return frac >= 0.5 if mode == "binary" else frac


def _hd_volume_to_volume(hvol: Any, frame_of_reference_uid: str | None) -> Volume:
    """highdicom Volume (array [slice, row, column], affine index -> LPS) to our Volume."""
    arr = np.asarray(hvol.array)
    if arr.ndim == 4:
        arr = arr[..., 0]
    return Volume(
        arr,
        np.asarray(hvol.affine, dtype=float),
        "1",
        frame_of_reference_uid=frame_of_reference_uid,
    )


def seg_to_masks(
    seg: str | Path | Dataset,
    grid: Volume,
    names: Sequence[str] | None = None,
    mode: Mode = "binary",
) -> dict[str, Volume]:
    """Masks from a DICOM Segmentation (SEG) object, on ``grid``.

    Parameters
    ----------
    seg
        Path to the SEG file or its Dataset (read with highdicom).
    grid
        Target image grid. When the SEG lies on another grid of the same frame of reference,
        each segment is mapped onto it by sub-voxel point sampling (occupancy = fraction of
        a target voxel's sub-voxel centres inside; nearest neighbour for a finer grid).
    names
        Segment labels to return (exact, then case-insensitive); default all segments.
    mode
        ``"binary"`` (occupancy >= 0.5) or ``"fraction"``.

    Returns
    -------
    dict[str, Volume]
        One mask per segment, keyed by SegmentLabel (or the requested name).

    Raises
    ------
    GeometryMismatchError
        Different frame of reference (both named), or frames that do not form a regular grid.
    DicomInputError
        Not a SEG object, or an unknown segment label (available labels listed).
    """
    import highdicom as hd

    if mode not in ("binary", "fraction"):
        raise ValueError(f"mode={mode!r}; valid: 'binary', 'fraction'")
    ds, path = _load(seg, "SEG")
    if str(ds.get("SOPClassUID", "")) != SegmentationStorage:
        raise DicomInputError(
            f"not a DICOM Segmentation (SOPClassUID {ds.get('SOPClassUID')!r})", path, "SOPClassUID"
        )
    seg_for = str(ds.get("FrameOfReferenceUID", "") or "") or None
    if (
        seg_for is not None
        and grid.frame_of_reference_uid is not None
        and seg_for != grid.frame_of_reference_uid
    ):
        raise GeometryMismatchError(
            f"SEG has FrameOfReferenceUID {seg_for}, but the grid has "
            f"{grid.frame_of_reference_uid}: the segmentation belongs to another image space."
        )
    hseg = hd.seg.Segmentation.from_dataset(ds, copy=False)
    labels = {
        int(item.SegmentNumber): str(item.get("SegmentLabel", f"Segment {int(item.SegmentNumber)}"))
        for item in ds.SegmentSequence
    }
    if names is None:
        wanted = {label: number for number, label in labels.items()}
    else:
        wanted = {}
        for name in [names] if isinstance(names, str) else names:
            hits = [n for n, lab in labels.items() if lab == name] or [
                n for n, lab in labels.items() if lab.strip().lower() == name.strip().lower()
            ]
            if len(hits) != 1:
                raise DicomInputError(
                    f"segment {name!r} is not in the SEG; available: {', '.join(labels.values())}",
                    path,
                    "SegmentLabel",
                )
            wanted[name] = hits[0]
    out: dict[str, Volume] = {}
    for key, number in wanted.items():
        try:
            hvol = hseg.get_volume(
                segment_numbers=[number], combine_segments=False, dtype=np.float32
            )
        except (ValueError, RuntimeError) as exc:
            raise GeometryMismatchError(
                f"SEG frames do not form a regular 3-D grid ({exc}); cannot map them onto the image"
            ) from exc
        src = _hd_volume_to_volume(hvol, seg_for)
        array = _to_grid(src, grid, mode)
        out[key] = Volume(
            array,
            grid.affine,
            "1",
            frame_of_reference_uid=grid.frame_of_reference_uid or seg_for,
            provenance={
                "source": path,
                "seg_sop_instance_uid": str(ds.get("SOPInstanceUID", "")),
                "segment_number": number,
                "segment_label": labels[number],
                "mode": mode,
            },
        )
    return out


# ----------------------------------------------------------------------------- label maps
def read_label_map(
    path: str | Path,
    reference: Volume,
    labels: Mapping[int, str] | None = None,
    *,
    mode: Mode = "binary",
    tolerance_mm: float | None = None,
    on_mismatch: Literal["error", "resample"] = "error",
) -> dict[str, Volume]:
    """Masks from a NIfTI (or NRRD/MHA) integer label map, e.g. TotalSegmentator output.

    Parameters
    ----------
    path
        Label image (``.nii``, ``.nii.gz``, ``.nrrd``, ``.mha``). NIfTI stores RAS+ world
        coordinates; SimpleITK/ITK converts them to LPS on reading (x and y negated), which
        the tests check against a header written byte by byte.
    reference
        The image the labels were drawn on (usually the CT). Its grid is compared with the
        label map's: every corner of the two grids must agree within ``tolerance_mm``.
    labels
        ``{value: name}``; default: every non-zero value present, named by its number.
        Requested values absent from the image are logged and left out.
    mode
        ``"binary"`` or ``"fraction"`` (fractions only differ from binary after resampling).
    tolerance_mm
        Allowed grid mismatch; default 0.1 x the smallest reference voxel spacing.
    on_mismatch
        ``"error"`` (default) raises :class:`GeometryMismatchError`; ``"resample"`` maps each
        label onto the reference grid by sub-voxel point sampling (as :func:`seg_to_masks`).

    Returns
    -------
    dict[str, Volume]
        One mask per label, on ``reference``'s grid, with its frame of reference.
    """
    from .nifti import _read_image

    lab = _read_image(Path(path), unit="1")
    arr = np.asarray(lab.array)
    if not np.issubdtype(arr.dtype, np.integer):
        if not np.all(np.isfinite(arr)) or not np.all(arr == np.rint(arr)):
            raise InputDataError(f"{path}: a label map must hold integer values")
        arr = arr.astype(np.int64)
    tol = 0.1 * min(reference.spacing_mm) if tolerance_mm is None else float(tolerance_mm)
    mismatch = _grid_mismatch_mm(lab, reference)
    if mismatch > tol:
        if on_mismatch != "resample":
            raise GeometryMismatchError(
                f"label map {path} is not on the reference grid: shape {lab.shape} vs "
                f"{reference.shape}, corners differ by up to {mismatch:.3g} mm (tolerance "
                f"{tol:.3g} mm); spacing {lab.spacing_mm} vs {reference.spacing_mm}. Check that "
                "the labels belong to this image, or pass on_mismatch='resample'."
            )
        log.info(
            "label map %s resampled onto the reference grid (mismatch %.3g mm)", path, mismatch
        )
    present = set(np.unique(arr).tolist()) - {0}
    if labels is None:
        wanted = {int(v): str(int(v)) for v in sorted(present)}
    else:
        wanted = {int(v): str(n) for v, n in labels.items()}
        absent = [n for v, n in wanted.items() if v not in present]
        if absent:
            log.info("%s: labels absent from the image: %s", path, ", ".join(absent))
        wanted = {v: n for v, n in wanted.items() if v in present}
    out: dict[str, Volume] = {}
    for value, name in wanted.items():
        m = arr == value
        if mismatch > tol:
            src = Volume(
                m, lab.affine, "1", frame_of_reference_uid=reference.frame_of_reference_uid
            )
            mask: np.ndarray = _to_grid(src, reference, mode)
        else:
            mask = m if mode == "binary" else m.astype(np.float32)
        out[name] = Volume(
            mask,
            reference.affine,
            "1",
            frame_of_reference_uid=reference.frame_of_reference_uid,
            provenance={"source": str(path), "label_value": value, "mode": mode},
        )
    return out


def _grid_mismatch_mm(a: Volume, b: Volume) -> float:
    """Largest distance (mm) between corresponding corners of two grids (inf if shapes differ)."""
    if a.shape != b.shape:
        return math.inf
    corners = np.array(
        [
            [k, j, i]
            for k in (0, a.shape[0] - 1)
            for j in (0, a.shape[1] - 1)
            for i in (0, a.shape[2] - 1)
        ],
        dtype=float,
    )
    return float(
        np.max(np.linalg.norm(a.index_to_world(corners) - b.index_to_world(corners), axis=1))
    )
