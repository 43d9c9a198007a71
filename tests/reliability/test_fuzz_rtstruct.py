"""Property-based fuzzing of the RTSTRUCT reader and the polygon rasteriser (issue #15 §6).

A small structure set is cut out of the phantom's RTSTRUCT (four ROIs: an organ, two
lesions and one ROI without contours); Hypothesis deletes items and tags, replaces values by
arbitrary bytes under arbitrary value representations and ContourData by arbitrary floats
(NaN, infinities, 1e308, too few or a non-multiple-of-three number of values). The reader
must return masks on the grid with occupancies in [0, 1] or raise a
:class:`~dosimetry.errors.DosimetryError`. The rasteriser gets arbitrary polygons.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pydicom
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from pydicom.datadict import tag_for_keyword
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.tag import Tag

from dosimetry.errors import DosimetryError, InputDataError
from dosimetry.io import load_study
from dosimetry.io.masks import rasterize_polygons, rtstruct_to_masks

from .conftest import fuzz_settings

pytestmark = [
    # see test_fuzz_readers.py: pydicom's warnings about malformed text values
    pytest.mark.filterwarnings("ignore:.*Invalid value for VR:UserWarning"),
    pytest.mark.filterwarnings("ignore:.*is not valid for elements with a VR:UserWarning"),
    pytest.mark.filterwarnings("ignore:.*exceeds the maximum length:UserWarning"),
]

KEEP = ("liver", "lesion_1", "lesion_3", "lacrimal_left")


class _Quiet:
    """Holds a Dataset with a short repr (Hypothesis prints its test's arguments)."""

    def __init__(self, ds: Dataset):
        self.ds = ds

    def __repr__(self) -> str:
        return f"<RTSTRUCT with {len(self.ds.StructureSetROISequence)} ROIs>"


@pytest.fixture(scope="module")
def small_rtstruct(pet_ct_master: Any) -> _Quiet:
    d = pydicom.dcmread(pet_ct_master.rtstruct_path)
    keep = {int(r.ROINumber) for r in d.StructureSetROISequence if r.ROIName in KEEP}
    d.StructureSetROISequence = DicomSequence(
        [r for r in d.StructureSetROISequence if int(r.ROINumber) in keep]
    )
    d.ROIContourSequence = DicomSequence(
        [c for c in d.ROIContourSequence if int(c.ReferencedROINumber) in keep]
    )
    if "RTROIObservationsSequence" in d:
        d.RTROIObservationsSequence = DicomSequence(
            [o for o in d.RTROIObservationsSequence if int(o.ReferencedROINumber) in keep]
        )
    return _Quiet(d)


@pytest.fixture(scope="module")
def pet_grid(pet_ct_master: Any) -> Any:
    return load_study(pet_ct_master.folder).pet().activity_at_acquisition()


TARGETS = [
    "Modality", "SOPClassUID", "StructureSetROISequence", "ROIContourSequence",
    "ReferencedFrameOfReferenceSequence", "ss.ROINumber", "ss.ROIName",
    "ss.ReferencedFrameOfReferenceUID", "rc.ReferencedROINumber", "rc.ContourSequence",
    "c.ContourData", "c.ContourGeometricType", "c.NumberOfContourPoints",
]  # fmt: skip
_FLOATS = st.floats(allow_nan=True, allow_infinity=True, width=64)
_BYTES = st.one_of(
    st.binary(max_size=32),
    st.sampled_from([b"", b"abc", b"nan", b"1e308\\1e308\\1e308", b"1\\2", b"\\\\", b"-0"]),
)
_MUTATION = st.one_of(
    st.tuples(st.just("delete"), st.sampled_from(TARGETS), st.integers(0, 8), st.integers(0, 8)),
    st.tuples(
        st.just("raw"),
        st.sampled_from(TARGETS),
        st.integers(0, 8),
        st.integers(0, 8),
        st.sampled_from(["DS", "IS", "CS", "UI", "LO", "US", "SQ", "OB", "FD"]),
        _BYTES,
    ),
    st.tuples(
        st.just("points"),
        st.integers(0, 8),
        st.integers(0, 8),
        st.lists(_FLOATS, max_size=30),
    ),
    st.tuples(st.just("duplicate"), st.sampled_from(["ss", "rc"]), st.integers(0, 8)),
)


def _seq(d: Dataset, keyword: str) -> DicomSequence | None:
    """The sequence ``keyword`` of ``d`` if it (still) is one; an earlier mutation may have
    replaced it by something else, which the harness then leaves alone."""
    try:
        value = d.get(keyword)
    except Exception:
        return None
    if isinstance(value, DicomSequence) and all(isinstance(x, Dataset) for x in value):
        return value
    return None


def _item(d: Dataset, where: str, i: int, j: int) -> Dataset | None:
    if where == "ss":
        seq = _seq(d, "StructureSetROISequence")
        return seq[i % len(seq)] if seq else None
    rcs = _seq(d, "ROIContourSequence")
    if not rcs:
        return None
    rc = rcs[i % len(rcs)]
    if where == "rc":
        return rc
    cs = _seq(rc, "ContourSequence")
    return cs[j % len(cs)] if cs else None


def _mutate(d: Dataset, m: tuple[Any, ...]) -> None:
    kind = m[0]
    if kind == "duplicate":
        seq = _seq(d, "StructureSetROISequence" if m[1] == "ss" else "ROIContourSequence")
        if seq:
            seq.append(copy.deepcopy(seq[m[2] % len(seq)]))
        return
    if kind == "points":
        target = _item(d, "c", m[1], m[2])
        if target is not None:
            text = "\\".join(repr(float(v)) for v in m[3]).encode()
            tag = Tag(tag_for_keyword("ContourData"))
            text += b" " * (len(text) % 2)
            target[tag] = RawDataElement(tag, "DS", len(text), text, 0, False, True)
        return
    path = m[1]
    where, keyword = path.split(".", 1) if "." in path else ("", path)
    target = d if not where else _item(d, where, m[2], m[3])
    if target is None:
        return
    if kind == "delete":
        if keyword in target:
            del target[keyword]
        return
    vr, value = m[4], m[5]
    value += b" " * (len(value) % 2)
    tag = Tag(tag_for_keyword(keyword))
    target[tag] = RawDataElement(tag, vr, len(value), value, 0, False, True)


def _check(masks: dict[str, Any], grid: Any) -> None:
    for v in masks.values():
        assert v.shape == grid.shape
        a = np.asarray(v.array, dtype=float)
        assert np.all(np.isfinite(a)) and a.min() >= 0.0 and a.max() <= 1.0


def test_small_rtstruct_is_valid(small_rtstruct, pet_grid):
    masks = rtstruct_to_masks(small_rtstruct.ds, pet_grid, mode="fraction")
    assert set(masks) == {"liver", "lesion_1", "lesion_3"}  # lacrimal_left has no contours
    _check(masks, pet_grid)
    assert masks["liver"].array.sum() > 0


@fuzz_settings()
@given(
    mutations=st.lists(_MUTATION, min_size=1, max_size=4),
    mode=st.sampled_from(["binary", "fraction"]),
    by_name=st.booleans(),
)
# regressions found by fuzzing and by the attacks (see docs/reliability.md)
@example(mutations=[("delete", "rc.ReferencedROINumber", 0, 0)], mode="binary", by_name=False)
@example(mutations=[("points", 0, 0, [float("nan")] * 9)], mode="fraction", by_name=False)
@example(
    mutations=[("points", 0, 0, [1e308, 0, 0, 0, 1e308, 0, -1e308, 0, 0])],
    mode="binary",
    by_name=False,
)
@example(
    mutations=[("raw", "rc.ContourSequence", 0, 0, "DS", b"1.5")], mode="binary", by_name=False
)
@example(mutations=[("raw", "ss.ROINumber", 0, 0, "US", b"\x01")], mode="binary", by_name=True)
def test_fuzz_rtstruct_to_masks(small_rtstruct, pet_grid, mutations, mode, by_name):
    d = copy.deepcopy(small_rtstruct.ds)
    for m in mutations:
        _mutate(d, m)
    names = list(KEEP[:2]) if by_name else None
    try:
        masks = rtstruct_to_masks(d, pet_grid, names=names, mode=mode)
    except DosimetryError:
        return
    _check(masks, pet_grid)


_POLY = st.lists(
    st.tuples(
        st.floats(-40, 40, allow_nan=False) | _FLOATS, st.floats(-40, 40, allow_nan=False) | _FLOATS
    ),
    min_size=0,
    max_size=12,
)


@fuzz_settings()
@given(
    polygons=st.lists(_POLY, max_size=4),
    shape=st.tuples(st.integers(0, 24), st.integers(0, 24)),
    supersample=st.integers(-1, 8),
    origin=st.tuples(st.integers(-5, 5), st.integers(-5, 5)),
)
@example(
    polygons=[[(0.0, 0.0), (float("nan"), 1.0), (2.0, 2.0)]],
    shape=(4, 4),
    supersample=4,
    origin=(0, 0),
)
@example(
    polygons=[[(0.0, 0.0), (1e300, 1.0), (2.0, -1e300)]], shape=(4, 4), supersample=4, origin=(0, 0)
)
def test_fuzz_rasterize_polygons(polygons, shape, supersample, origin):
    arrays = [np.asarray(p, dtype=float).reshape(-1, 2) for p in polygons]
    try:
        out = rasterize_polygons(arrays, shape, supersample, origin)
    except InputDataError:
        return
    assert out.shape == shape and out.dtype == np.float32
    assert np.all(np.isfinite(out)) and (out.size == 0 or (out.min() >= 0 and out.max() <= 1))


def test_rasterizer_area_of_a_square_is_exact():
    """Oracle: a 4 x 4 pixel axis-aligned square whose edges lie on pixel borders covers
    exactly 16 pixels; a hole of 2 x 2 inside removes 4 (even-odd rule)."""
    sq = np.array([[-0.5, -0.5], [-0.5, 3.5], [3.5, 3.5], [3.5, -0.5]]) + 2.0
    hole = np.array([[0.5, 0.5], [0.5, 2.5], [2.5, 2.5], [2.5, 0.5]]) + 2.0
    assert rasterize_polygons([sq], (10, 10), 4).sum() == pytest.approx(16.0, abs=0)
    assert rasterize_polygons([sq, hole], (10, 10), 4).sum() == pytest.approx(12.0, abs=0)
