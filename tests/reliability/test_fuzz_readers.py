"""Property-based fuzzing of the DICOM readers (issue #15 section 6).

Small valid series (three PET and three CT slices, one reconstructed NM volume) are cut out
of the phantom's study; Hypothesis mutates copies of them -- tags deleted or replaced by
arbitrary bytes under arbitrary value representations, element lengths rewritten, files
truncated or overwritten, pixel data cut, padded or re-declared -- and the readers must
either work (finite values) or raise a :class:`~dosimetry.errors.DosimetryError`; any other
exception, a warning escaping as an error, or a changed input file fails the property.

Every failure found becomes an ``@example`` (kept next to the strategy) so that it is run
on every CI pass, whatever the profile.
"""

from __future__ import annotations

import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from pydicom.datadict import tag_for_keyword
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.tag import Tag

from dosimetry.errors import DosimetryError
from dosimetry.io import load_study

from .conftest import fuzz_settings, tree_hashes

pytestmark = [
    # pydicom decodes text values lazily and warns (UserWarning) about malformed ones when
    # they are first used; that is pydicom's lenient reading reporting, not a failure of
    # the readers, which check every value they use. Numerical warnings stay errors.
    pytest.mark.filterwarnings("ignore:.*Invalid value for VR:UserWarning"),
    pytest.mark.filterwarnings("ignore:.*is not valid for elements with a VR:UserWarning"),
    pytest.mark.filterwarnings("ignore:.*exceeds the maximum length:UserWarning"),
]

# ----------------------------------------------------------------------------- base files
PET_KEYWORDS = [
    "Rows", "Columns", "PixelSpacing", "ImagePositionPatient", "ImageOrientationPatient",
    "RescaleSlope", "RescaleIntercept", "Units", "DecayCorrection", "DecayFactor",
    "CorrectedImage", "FrameReferenceTime", "ActualFrameDuration", "SeriesDate", "SeriesTime",
    "AcquisitionDate", "AcquisitionTime", "NumberOfSlices", "ImageIndex", "NumberOfFrames",
    "BitsAllocated", "BitsStored", "HighBit", "PixelRepresentation", "SamplesPerPixel",
    "SliceThickness", "PatientWeight", "PatientSize", "SeriesType", "Modality",
    "SeriesInstanceUID", "SOPInstanceUID", "FrameOfReferenceUID", "SOPClassUID",
    "RadiopharmaceuticalInformationSequence", "rp.RadionuclideHalfLife",
    "rp.RadionuclideTotalDose", "rp.RadiopharmaceuticalStartDateTime",
    "rp.RadionuclideCodeSequence", "PhotometricInterpretation", "SpacingBetweenSlices",
]  # fmt: skip
NM_KEYWORDS = [
    "Rows", "Columns", "PixelSpacing", "NumberOfFrames", "NumberOfSlices", "SliceVector",
    "SpacingBetweenSlices", "SliceThickness", "DetectorInformationSequence",
    "det.ImagePositionPatient", "det.ImageOrientationPatient", "RescaleSlope",
    "RescaleIntercept", "Units", "DecayCorrection", "ImageType", "AcquisitionDate",
    "AcquisitionTime", "RotationInformationSequence", "rot.ActualFrameDuration",
    "rot.NumberOfFramesInRotation", "EnergyWindowInformationSequence", "BitsAllocated",
    "PixelRepresentation", "rp.RadiopharmaceuticalStartDateTime", "rp.RadionuclideTotalDose",
    "DetectorVector", "FrameIncrementPointer",
]  # fmt: skip
_PARENTS = {
    "rp": "RadiopharmaceuticalInformationSequence",
    "det": "DetectorInformationSequence",
    "rot": "RotationInformationSequence",
}
_LONG_VRS = {"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "UC", "UN", "UR", "UT", "SV", "UV"}


@pytest.fixture(scope="module")
def pet_ct_base(tmp_path_factory: pytest.TempPathFactory, pet_ct_master: Any) -> Path:
    """Three consecutive PET and CT slices of the phantom, made complete series again."""
    folder = tmp_path_factory.mktemp("fuzz_base")
    pet = pet_ct_master.pet_paths[10:13]
    for k, p in enumerate(pet):
        d = pydicom.dcmread(p)
        d.NumberOfSlices = 3
        d.ImageIndex = 3 - k  # the phantom numbers from the most superior slice
        d.save_as(folder / f"pet{k}.dcm")
    for k, p in enumerate(pet_ct_master.ct_paths[20:23]):
        shutil.copy(p, folder / f"ct{k}.dcm")
    return folder


@pytest.fixture(scope="module")
def nm_base(tmp_path_factory: pytest.TempPathFactory, spect_master: Any) -> Path:
    folder = tmp_path_factory.mktemp("fuzz_nm")
    for p in spect_master.folder.rglob("*"):
        if p.is_file() and pydicom.dcmread(p, stop_before_pixels=True).Modality == "NM":
            shutil.copy(p, folder / "nm.dcm")
    return folder


# ----------------------------------------------------------------------------- mutations
_VALUES = st.one_of(
    st.sampled_from(
        [
            b"",
            b"0",
            b"-1",
            b"1e308",
            b"-1e308",
            b"1e-310",
            b"nan",
            b"inf",
            b"-inf",
            b"abc",
            b"1\\2",
            b"\\",
            b"65535",
            b"4294967295",
            b"20240229",
            b"00000000",
            b"99999999",
            b"18000101",
            b"246060",
            b"1e2\\1e2",
            b"0\\0\\0\\0\\0\\0",
            b"1\\0\\0\\1\\0\\0",
            b"\xff\xfe\x00\x01",
            b"\x00" * 8,
        ]
    ),  # fmt: skip
    st.binary(max_size=24),
    st.from_regex(rb"\A[-+0-9.eE\\ ]{0,18}\Z"),
)
_VRS = st.sampled_from(
    ["DS", "IS", "US", "UL", "SS", "FL", "FD", "CS", "LO", "SQ", "OB", "UN", "AT", "DA", "TM"]
)


def _tag_mutation(keywords: list[str], n_files: int) -> st.SearchStrategy[tuple[Any, ...]]:
    return st.tuples(
        st.just("tag"),
        st.integers(0, n_files - 1),
        st.sampled_from(keywords),
        st.sampled_from(["delete", "raw", "raw"]),
        _VRS,
        _VALUES,
    )


def _byte_mutation(n_files: int) -> st.SearchStrategy[tuple[Any, ...]]:
    return st.one_of(
        st.tuples(st.just("truncate"), st.integers(0, n_files - 1), st.floats(0.0, 1.0)),
        st.tuples(
            st.just("overwrite"),
            st.integers(0, n_files - 1),
            st.floats(0.0, 1.0),
            st.binary(min_size=1, max_size=8),
        ),
        st.tuples(
            st.just("length"),
            st.integers(0, n_files - 1),
            st.integers(0, 400),
            st.integers(0, 2**32 - 1),
        ),
    )


def _pixel_mutation(n_files: int) -> st.SearchStrategy[tuple[Any, ...]]:
    return st.tuples(
        st.just("pixels"),
        st.integers(0, n_files - 1),
        st.sampled_from(["cut", "extend", "garbage", "bits"]),
        st.integers(0, 2**16),
    )


def _mutations(keywords: list[str], n_files: int) -> st.SearchStrategy[list[tuple[Any, ...]]]:
    one = st.one_of(
        _tag_mutation(keywords, n_files), _byte_mutation(n_files), _pixel_mutation(n_files)
    )
    return st.lists(one, min_size=1, max_size=3)


def _set_raw(d: Dataset, keyword: str, vr: str, value: bytes) -> None:
    if "." in keyword:
        parent, keyword = keyword.split(".", 1)
        seq = d.get(_PARENTS[parent])
        if not seq:
            return
        d = seq[0]
    tag = Tag(tag_for_keyword(keyword))
    if len(value) % 2:
        value += b" "
    d[tag] = RawDataElement(tag, vr, len(value), value, 0, False, True)


def _delete(d: Dataset, keyword: str) -> None:
    if "." in keyword:
        parent, keyword = keyword.split(".", 1)
        seq = d.get(_PARENTS[parent])
        if not seq:
            return
        d = seq[0]
    if keyword in d:
        del d[keyword]


def _apply(files: list[Path], mutations: list[tuple[Any, ...]]) -> None:
    """Apply the mutations in order (dataset-level ones through pydicom, the rest on bytes)."""
    for m in mutations:
        kind, i = m[0], m[1]
        path = files[i]
        if kind in ("tag", "pixels"):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    d = pydicom.dcmread(path, force=True)
            except Exception:  # an earlier byte mutation broke it: leave it broken
                continue
            if kind == "tag":
                _, _, keyword, action, vr, value = m
                if action == "delete":
                    _delete(d, keyword)
                else:
                    _set_raw(d, keyword, vr, value)
            else:
                _, _, how, n = m
                if "PixelData" not in d or not isinstance(d.PixelData, bytes):
                    continue
                data = d.PixelData
                if how == "cut":
                    d.PixelData = data[: (n % max(len(data), 1)) & ~1]
                elif how == "extend":
                    d.PixelData = data + b"\x00" * ((n % 512) * 2)
                elif how == "garbage":
                    d.PixelData = np.random.default_rng(n).bytes(len(data))
                else:
                    bits = [1, 8, 12, 16, 32, 64][n % 6]
                    d.BitsAllocated = bits
                    d.BitsStored = min(bits, 16)
                    d.HighBit = min(bits, 16) - 1
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    d.save_as(path)
            except Exception:  # pydicom refuses to write this value: keep the file as it was
                continue
            continue
        data = bytearray(path.read_bytes())
        if kind == "truncate":
            path.write_bytes(bytes(data[: int(m[2] * len(data))]))
        elif kind == "overwrite":
            at = int(m[2] * max(len(data) - 1, 0))
            patch = m[3]
            data[at : at + len(patch)] = patch
            path.write_bytes(bytes(data))
        elif kind == "length":
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    d = pydicom.dcmread(path, stop_before_pixels=True, force=True)
                elems = [d.get_item(t) for t in d.keys()]
            except Exception:
                continue
            elems = [e for e in elems if getattr(e, "value_tell", None)]
            if not elems:
                continue
            e = elems[m[2] % len(elems)]
            if e.VR in _LONG_VRS:
                data[e.value_tell - 4 : e.value_tell] = int(m[3]).to_bytes(4, "little")
            else:
                data[e.value_tell - 2 : e.value_tell] = int(m[3] % 65536).to_bytes(2, "little")
            path.write_bytes(bytes(data))


def _check_readers_pet_ct(folder: Path) -> None:
    before = tree_hashes(folder)
    try:
        study = load_study(folder)
        str(study)
        study._repr_html_()
        for kind in ("pet", "ct"):
            try:
                series = getattr(study, kind)()
                if kind == "pet":
                    act = series.activity_at_acquisition()
                    assert np.all(np.isfinite(act.array))
                    assert act.unit == "Bq/mL"
                    series.suv()
                else:
                    vol = series.volume
                    assert np.all(np.isfinite(vol.array)) and vol.unit == "HU"
            except DosimetryError:
                pass
    except DosimetryError:
        pass
    assert tree_hashes(folder) == before, "an input file was changed"


# ----------------------------------------------------------------------------- properties
def test_base_series_are_valid(pet_ct_base, nm_base):
    study = load_study(pet_ct_base)
    assert study.pet().activity_at_acquisition().shape == (3, 24, 24)
    assert study.ct().volume.shape[0] == 3
    act = load_study(nm_base).spect().activity_at_acquisition(calibration_cps_per_mbq=9.6)
    assert np.all(np.isfinite(act.array)) and act.shape[0] == 40


@fuzz_settings()
@given(mutations=_mutations(PET_KEYWORDS, 6))
# regressions found by fuzzing (kept explicit; see docs/reliability.md)
@example(mutations=[("tag", 0, "RescaleSlope", "raw", "DS", b"1e-310")])
@example(mutations=[("tag", 1, "FrameReferenceTime", "raw", "DS", b"1e308")])
@example(mutations=[("tag", 0, "SeriesDate", "raw", "DA", b"00010101")])
@example(mutations=[("tag", 2, "Rows", "raw", "US", b"\x01")])
@example(mutations=[("tag", 0, "rp.RadionuclideHalfLife", "raw", "DS", b"1e-300")])
@example(mutations=[("pixels", 1, "bits", 0)])
@example(mutations=[("length", 0, 30, 2**32 - 2)])
def test_fuzz_pet_ct_readers(pet_ct_base, mutations):
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "s"
        shutil.copytree(pet_ct_base, folder)
        files = sorted(folder.glob("pet*.dcm")) + sorted(folder.glob("ct*.dcm"))
        # mutation file indices 0-2 are PET, 3-5 CT (keywords are PET/CT ones)
        _apply(files, mutations)
        _check_readers_pet_ct(folder)


@fuzz_settings()
@given(mutations=_mutations(NM_KEYWORDS, 1))
@example(mutations=[("tag", 0, "SliceVector", "raw", "US", b"\x00\x00")])
@example(mutations=[("tag", 0, "SpacingBetweenSlices", "raw", "DS", b"1e308")])
@example(mutations=[("tag", 0, "det.ImageOrientationPatient", "raw", "DS", b"0\\0\\0\\0\\0\\0")])
@example(mutations=[("tag", 0, "rot.ActualFrameDuration", "raw", "IS", b"1e-320")])
@example(mutations=[("tag", 0, "RotationInformationSequence", "raw", "US", b"1e308")])
@example(mutations=[("tag", 0, "RotationInformationSequence", "raw", "DS", b"-1")])
@example(mutations=[("tag", 0, "Rows", "raw", "DS", b"1e308")])
@example(mutations=[("tag", 0, "ImageType", "raw", "DS", b"1")])
@example(mutations=[("tag", 0, "DetectorVector", "raw", "SQ", b"4294967295")])
def test_fuzz_spect_reader(nm_base, mutations):
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "s"
        shutil.copytree(nm_base, folder)
        _apply([folder / "nm.dcm"], mutations)
        before = tree_hashes(folder)
        try:
            spect = load_study(folder).spect()
            vol = spect.volume
            assert np.all(np.isfinite(vol.array))
            act = spect.activity_at_acquisition(calibration_cps_per_mbq=9.6)
            assert np.all(np.isfinite(act.array))
        except DosimetryError:
            pass
        assert tree_hashes(folder) == before
