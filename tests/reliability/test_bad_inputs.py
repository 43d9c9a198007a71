"""Bad-input suite of the input layer (issue #15, sections 2, 3 and 6).

Each class of malformed or contradictory input is generated from the phantom's DICOM and
must be refused by :func:`dosimetry.load_study` or the series readers with a
:class:`~dosimetry.errors.DosimetryError` whose message names the problem (tag, file,
override), never another exception type, and without changing the input files.
"""

from __future__ import annotations

import math
import os
import shutil
import socket
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from pydicom.datadict import tag_for_keyword
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.tag import Tag

import dosimetry as ds
from dosimetry.errors import (
    DicomInputError,
    DosimetryError,
    IncompleteSeriesError,
    InputDataError,
)
from dosimetry.io import load_study

from .conftest import copy_study, refused, relocated, rewrite, tree_hashes


def _raw(d: Dataset, keyword: str, vr: str, value: bytes) -> None:
    """Put an arbitrary (possibly invalid) value into ``d`` as raw bytes."""
    tag = Tag(tag_for_keyword(keyword))
    if len(value) % 2:
        value += b" "
    d[tag] = RawDataElement(tag, vr, len(value), value, 0, False, True)


@pytest.fixture
def pet_copy(tmp_path: Path, pet_ct_master: Any) -> tuple[Path, list[Path], Any]:
    """A fresh copy of the PET/CT study: (folder, PET files in ascending z, truth)."""
    folder, _ = copy_study(pet_ct_master, tmp_path / "study")
    return folder, relocated(pet_ct_master.pet_paths, pet_ct_master, folder), pet_ct_master


@pytest.fixture(scope="module")
def master_activity(pet_ct_master: Any) -> Any:
    """The PET activity Volume of the untouched master study (Bq/mL at acquisition)."""
    return load_study(pet_ct_master.folder).pet().activity_at_acquisition()


@pytest.fixture
def reference_activity(master_activity: Any) -> np.ndarray:
    return master_activity.array


def _unchanged(folder: Path, before: dict[str, str]) -> None:
    assert tree_hashes(folder) == before, "an input file was changed"


def _pet_values(folder: Path, **overrides: Any) -> Any:
    return load_study(folder).pet(**overrides).activity_at_acquisition()


# ------------------------------------------------------------------------------ headers
def test_pet_rescale_slope_missing_in_one_slice(pet_copy, reference_activity):
    folder, pet, _ = pet_copy
    victim = pet[len(pet) // 2]
    slope = float(pydicom.dcmread(victim, stop_before_pixels=True).RescaleSlope)
    rewrite(victim, lambda d: delattr(d, "RescaleSlope"))
    before = tree_hashes(folder)
    err = refused(lambda: _pet_values(folder), "RescaleSlope", "assume_rescale_slope", "Type 1")
    assert isinstance(err, DicomInputError)
    assert err.tag == "RescaleSlope" and err.path == victim
    # the override, with the slope the file had, gives the original values back exactly
    act = _pet_values(folder, assume_rescale_slope=slope)
    np.testing.assert_array_equal(act.array, reference_activity)
    assert act.provenance["overrides_applied"]["assume_rescale_slope"] == slope
    _unchanged(folder, before)


def test_pet_rescale_slope_missing_everywhere(pet_copy):
    folder, pet, _ = pet_copy
    for p in pet:
        rewrite(p, lambda d: delattr(d, "RescaleSlope"))
    before = tree_hashes(folder)
    err = refused(lambda: _pet_values(folder), "RescaleSlope", "PET Image Module")
    assert err.path in pet
    _unchanged(folder, before)


@pytest.mark.parametrize("value", [b"0", b"-1.5", b"1e-310", b"abc", b"nan", b"inf"])
def test_pet_rescale_slope_unusable(pet_copy, value):
    folder, pet, _ = pet_copy
    rewrite(pet[3], lambda d: _raw(d, "RescaleSlope", "DS", value))
    before = tree_hashes(folder)
    err = refused(lambda: _pet_values(folder), "RescaleSlope")
    assert err.tag == "RescaleSlope" and err.path == pet[3]
    _unchanged(folder, before)


def test_pet_decay_none_with_decay_factor_and_decy(pet_copy):
    """The issue's example: DecayCorrection NONE, DecayFactor 1.052, CorrectedImage DECY."""
    folder, pet, _ = pet_copy

    def change(d: Dataset) -> None:
        d.DecayCorrection = "NONE"
        d.DecayFactor = "1.052"

    for p in pet:
        rewrite(p, change)
    before = tree_hashes(folder)
    err = refused(lambda: _pet_values(folder), "NONE", "DECY", "decay_correction=")
    assert err.tag == "CorrectedImage"
    _unchanged(folder, before)


def test_pet_decay_none_with_decay_factor(pet_copy):
    folder, pet, _ = pet_copy

    def change(d: Dataset) -> None:
        d.DecayCorrection = "NONE"
        d.CorrectedImage = [v for v in d.CorrectedImage if v != "DECY"]
        d.DecayFactor = "1.052"

    for p in pet:
        rewrite(p, change)
    err = refused(lambda: _pet_values(folder), "NONE", "DecayFactor is 1.052")
    assert err.tag == "DecayFactor"


def test_pet_decay_start_without_decy(pet_copy):
    folder, pet, _ = pet_copy
    for p in pet:
        rewrite(p, lambda d: setattr(d, "CorrectedImage", ["ATTN", "SCAT"]))
    err = refused(lambda: _pet_values(folder), "START", "does not list DECY")
    assert err.tag == "CorrectedImage"


def test_pet_decay_factor_missing_in_one_slice_and_everywhere(pet_copy, reference_activity):
    folder, pet, _ = pet_copy
    rewrite(pet[-1], lambda d: delattr(d, "DecayFactor"))
    err = refused(lambda: _pet_values(folder), "DecayFactor is missing in 1 of", "Type 1C")
    assert err.path == pet[-1] and err.tag == "DecayFactor"
    for p in pet[:-1]:
        rewrite(p, lambda d: delattr(d, "DecayFactor"))
    refused(lambda: _pet_values(folder), "every image", "decay_correction='START'")
    # the user states the correction: accepted, values unchanged (START: factor 1)
    act = _pet_values(folder, decay_correction="START")
    np.testing.assert_array_equal(act.array, reference_activity)


@pytest.mark.parametrize(
    ("mode", "changes", "injection", "needles"),
    [  # regressions: date arithmetic overflowed, a decay factor underflowed to 0 (division)
        (
            "START",
            {"SeriesDate": "00010101", "SeriesTime": "000000"},
            None,
            ("'00010101': year 1 is outside 1900-2999", "SeriesDate"),
        ),
        ("ADMIN", {}, "99991231235959", ("year 9999 is outside", "injection_time=")),
        ("ADMIN", {}, "29000101000000", ("DecayFactor", "disagrees with DecayCorrection=ADMIN")),
    ],
)
def test_pet_absurd_dates_refused(pet_copy, mode, changes, injection, needles):
    folder, pet, _ = pet_copy

    def change(d: Dataset) -> None:
        d.DecayCorrection = mode
        for k, v in changes.items():
            setattr(d, k, v)
        if injection is not None:
            d.RadiopharmaceuticalInformationSequence[0].RadiopharmaceuticalStartDateTime = injection

    for p in pet:
        rewrite(p, change)
    refused(lambda: _pet_values(folder), *needles)


def test_pet_series_attributes_must_agree(pet_copy):
    folder, pet, _ = pet_copy
    rewrite(pet[2], lambda d: setattr(d, "Units", "CNTS"))
    err = refused(lambda: _pet_values(folder), "Units differs", "'BQML'", "'CNTS'")
    assert err.tag == "Units"


# ------------------------------------------------------------------------ completeness
@pytest.mark.parametrize(("which", "where"), [(0, "end"), (-1, "start"), (10, "inside")])
def test_pet_slice_missing_first_last_middle(pet_copy, which, where):
    """ImageIndex 1 is the most superior slice in the phantom, so the first file in
    ascending z is the last slice index ('end') and the last file the first ('start')."""
    folder, pet, truth = pet_copy
    n = len(pet)
    gone = pet[which]
    gone.unlink()
    before = tree_hashes(folder)
    err = refused(
        lambda: _pet_values(folder),
        f"NumberOfSlices (0054,0081) is {n}",
        "1 missing slice(s)",
        where,
        "allow_incomplete=True",
    )
    assert isinstance(err, IncompleteSeriesError) and err.tag == "ImageIndex"
    # on request: loaded (a gap inside also needs the stack resampled across it)
    extra = {"allow_nonuniform": "resample"} if where == "inside" else {}
    act = _pet_values(folder, allow_incomplete=True, **extra)
    assert act.shape[0] == (n if where == "inside" else n - 1)
    assert any("allow_incomplete" in d for d in act.provenance["derivations"])
    _unchanged(folder, before)


def test_pet_missing_slice_without_index_tags_caught_by_geometry(pet_copy):
    folder, pet, _ = pet_copy

    def strip(d: Dataset) -> None:
        del d.NumberOfSlices
        del d.ImageIndex

    for p in pet:
        rewrite(p, strip)
    pet[10].unlink()
    err = refused(lambda: _pet_values(folder), "missing slice", "allow_nonuniform")
    assert err.tag == "ImagePositionPatient"


def test_dicomdir_naming_a_missing_file(tmp_path, pet_ct_master):
    from pydicom.fileset import FileSet

    fs = FileSet()
    for p in pet_ct_master.pet_paths:
        fs.add(p)
    out = tmp_path / "media"
    out.mkdir()
    fs.write(out)
    written = sorted(p for p in out.rglob("*") if p.is_file() and p.name != "DICOMDIR")
    assert len(written) == len(pet_ct_master.pet_paths)
    victim = written[5]
    victim.unlink()
    before = tree_hashes(out)
    err = refused(lambda: _pet_values(out, allow_incomplete=False), "DICOMDIR", str(victim))
    assert isinstance(err, IncompleteSeriesError) and err.tag == "DirectoryRecordSequence"
    assert err.path == out / "DICOMDIR"
    _unchanged(out, before)


@pytest.mark.parametrize("cut", [100, 700, "pixels"])
def test_truncated_pet_file_named(pet_copy, cut):
    folder, pet, _ = pet_copy
    victim = pet[0]
    data = victim.read_bytes()
    n = len(data) - 333 if cut == "pixels" else int(cut)
    victim.write_bytes(data[:n])
    before = tree_hashes(folder)
    study = load_study(folder)
    err = refused(lambda: study.pet().activity_at_acquisition(), str(victim))
    if cut == "pixels":  # header complete: the pixel read names the file and the cause
        assert err.path == victim and "truncated" in str(err)
    else:  # header unreadable: skipped, and named as a possible missing slice
        assert isinstance(err, IncompleteSeriesError)
        assert any(p == victim for p, _ in study.skipped)
    _unchanged(folder, before)


def test_truncation_inside_an_element_is_an_error(pet_copy):
    """pydicom keeps the bytes of an element cut short; the reader refuses the file."""
    folder, pet, _ = pet_copy
    victim = pet[4]
    raw = pydicom.dcmread(victim, stop_before_pixels=True)
    elem = raw.get_item(Tag(tag_for_keyword("RadiopharmaceuticalInformationSequence")))
    cut = elem.value_tell + 10  # inside the sequence value
    victim.write_bytes(victim.read_bytes()[:cut])
    study = load_study(folder)
    reason = dict(study.skipped)[victim]
    assert "truncated" in reason and "RadiopharmaceuticalInformationSequence" in reason


def test_files_without_preamble_are_read(pet_copy, reference_activity):
    folder, pet, _ = pet_copy
    # (a) the 128-byte preamble removed, 'DICM' kept at offset 0
    a = pet[1]
    a.write_bytes(a.read_bytes()[128:])
    # (b) a bare dataset: no preamble, no File Meta (its explicit VR little endian encoding)
    b = pet[2]
    d = pydicom.dcmread(b)
    del d.file_meta
    d.preamble = None
    fp = pydicom.filebase.DicomBytesIO()
    pydicom.filewriter.write_dataset(fp, d)
    b.write_bytes(fp.getvalue())
    before = tree_hashes(folder)
    study = load_study(folder)
    assert a in study.pet().files and b in study.pet().files
    act = study.pet().activity_at_acquisition()
    np.testing.assert_array_equal(act.array, reference_activity)
    notes = " ".join(act.provenance["derivations"])
    assert "without the 128-byte preamble" in notes
    assert "without preamble and File Meta Information (encoding: Explicit VR Little" in notes
    _unchanged(folder, before)


# ------------------------------------------------------------------------ not regular files
def _load_with_timeout(folder: Path, seconds: float = 60.0) -> Any:
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["study"] = load_study(folder)
        except BaseException as exc:  # reported below
            box["error"] = exc

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(seconds)
    assert not t.is_alive(), "load_study blocked on a special file"
    if "error" in box:
        raise box["error"]
    return box["study"]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs (POSIX)")
def test_fifo_socket_device_and_links_do_not_hang(pet_copy, tmp_path, reference_activity):
    folder, pet, _ = pet_copy
    fifo = folder / "pipe.dcm"
    os.mkfifo(fifo)
    sock_path = folder / "s.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        try:
            sock.bind(str(sock_path))
        except OSError:  # socket paths are limited to ~104 bytes (macOS temp folders)
            sock_path = None
        os.symlink("/dev/null", folder / "null.dcm")
        os.symlink(fifo, folder / "to_pipe.dcm")
        os.symlink(folder / "nowhere.dcm", folder / "broken.dcm")
        outside = tmp_path / "outside.dcm"
        shutil.move(pet[7], outside)
        os.symlink(outside, pet[7])  # a link to a regular file is followed
        study = _load_with_timeout(folder)
    finally:
        sock.close()
    reasons = {p.name: r for p, r in study.skipped}
    assert "named pipe" in reasons["pipe.dcm"]
    assert sock_path is None or "socket" in reasons["s.sock"]
    assert "character device" in reasons["null.dcm"] and "symbolic link" in reasons["null.dcm"]
    assert "named pipe" in reasons["to_pipe.dcm"]
    assert "broken symbolic link" in reasons["broken.dcm"]
    act = study.pet().activity_at_acquisition()
    np.testing.assert_array_equal(act.array, reference_activity)
    # a special file given directly is refused, not opened
    refused(lambda: load_study(fifo), "named pipe")
    refused(lambda: ds.io.discovery._read(fifo, headers_only=True), "only regular files")


# ------------------------------------------------------------------------------ sizes
def test_rows_columns_65535_refused_before_allocation(pet_copy):
    folder, pet, _ = pet_copy

    def change(d: Dataset) -> None:
        d.Rows = 65535
        d.Columns = 65535

    for p in pet:
        rewrite(p, change)
    before = tree_hashes(folder)
    # budget check first: 26 x 65535^2 voxels is beyond max_grid_voxels
    refused(lambda: _pet_values(folder), "max_grid_voxels", "65535")
    # with the budget raised, the pixel-data size check still refuses before allocating
    with ds.parameters.override(max_grid_voxels=1e12):
        err = refused(lambda: _pet_values(folder), "declares", "bytes of pixel data")
    assert err.tag == "PixelData" and err.path in pet
    _unchanged(folder, before)


def test_pixel_spacing_1e6_names_the_tag(pet_copy):
    folder, pet, _ = pet_copy
    for p in pet:
        rewrite(p, lambda d: setattr(d, "PixelSpacing", ["1e-6", "1e-6"]))
    err = refused(lambda: _pet_values(folder), "PixelSpacing", "1e-06")
    assert err.tag == "PixelSpacing"


def test_memory_budget_for_readers_and_resample(pet_ct_master):
    study = load_study(pet_ct_master.folder)
    pet = study.pet()
    with ds.parameters.override(max_grid_voxels=1000):
        refused(lambda: pet.activity_at_acquisition(), "max_grid_voxels", "GiB")
    act = pet.activity_at_acquisition()
    ct = study.ct().volume
    with ds.parameters.override(max_grid_voxels=act.array.size - 1):
        err = refused(lambda: ds.resample(ct, act, "concentration"), "max_grid_voxels")
    assert isinstance(err, InputDataError)
    with pytest.raises(InputDataError, match=r"2\.7e\+13 voxels"):
        ds.volume.check_grid_budget((30000, 30000, 30000), what="a 0.01 mm grid")


# ------------------------------------------------------------------------------ RTSTRUCT
@pytest.fixture
def rt_copy(tmp_path: Path, pet_ct_master: Any, master_activity: Any) -> tuple[Path, Path, Any]:
    folder, _ = copy_study(pet_ct_master, tmp_path / "study")
    rt = relocated([pet_ct_master.rtstruct_path], pet_ct_master, folder)[0]
    return folder, rt, master_activity


def test_truncated_rtstruct(rt_copy):
    folder, rt, grid = rt_copy
    data = rt.read_bytes()
    rt.write_bytes(data[: len(data) // 2])
    before = tree_hashes(folder)
    study = load_study(folder)
    if study._candidates("RTSTRUCT"):  # header still readable: refused when rasterised
        err = refused(lambda: study.masks(grid), str(rt), "truncated")
    else:
        err = refused(lambda: study.masks(grid), "no RTSTRUCT")
        assert any(p == rt for p, _ in study.skipped)
    assert isinstance(err, DosimetryError)
    _unchanged(folder, before)


@pytest.mark.parametrize("keyword", ["ReferencedROINumber", "ROINumber"])
def test_rtstruct_missing_roi_numbers(rt_copy, keyword):
    folder, rt, grid = rt_copy

    def change(d: Dataset) -> None:
        seq = (
            d.ROIContourSequence if keyword == "ReferencedROINumber" else d.StructureSetROISequence
        )
        del seq[1][keyword]

    rewrite(rt, change)
    err = refused(lambda: load_study(folder).masks(grid), keyword, "item 2")
    assert err.tag == keyword and err.path == rt


@pytest.mark.parametrize(
    "value", [b"12.5\\abc\\3.0", b"nan\\1\\2\\3\\4\\5\\6\\7\\8", b"1\\2\\inf\\4\\5\\6\\7\\8\\9"]
)
def test_rtstruct_contour_data_not_numbers(rt_copy, value):
    folder, rt, grid = rt_copy
    d = pydicom.dcmread(rt)
    roi_number = int(d.ROIContourSequence[0].ReferencedROINumber)
    name = next(r.ROIName for r in d.StructureSetROISequence if int(r.ROINumber) == roi_number)
    _raw(d.ROIContourSequence[0].ContourSequence[0], "ContourData", "DS", value)
    d.save_as(rt)
    err = refused(lambda: load_study(folder).masks(grid, names=[name]), "ContourData", name)
    assert err.tag == "ContourData"


def test_rtstruct_absurd_coordinates(rt_copy):
    folder, rt, grid = rt_copy
    d = pydicom.dcmread(rt)
    _raw(
        d.ROIContourSequence[0].ContourSequence[0],
        "ContourData",
        "DS",
        b"1e300\\0\\0\\0\\1e300\\0\\-1e300\\0\\0",
    )
    d.save_as(rt)
    refused(lambda: load_study(folder).masks(grid), "ContourData", "voxels from the grid")


# ------------------------------------------------------------------------------ SPECT
@pytest.fixture
def nm_copy(tmp_path: Path, spect_master: Any) -> tuple[Path, Path]:
    folder, _ = copy_study(spect_master, tmp_path / "spect")
    nm = next(
        p
        for p in folder.rglob("*")
        if p.is_file() and pydicom.dcmread(p, stop_before_pixels=True).Modality == "NM"
    )
    return folder, nm


def _spect(folder: Path, **kw: Any) -> Any:
    return load_study(folder).spect(**kw).activity_at_acquisition(calibration_cps_per_mbq=9.6)


def test_spect_fewer_frames_than_number_of_slices(nm_copy):
    folder, nm = nm_copy
    n = int(pydicom.dcmread(nm, stop_before_pixels=True).NumberOfFrames)
    rewrite(nm, lambda d: setattr(d, "NumberOfSlices", n + 3))
    before = tree_hashes(folder)
    err = refused(
        lambda: _spect(folder), f"NumberOfSlices (0054,0081) is {n + 3}", "3 missing slice(s)"
    )
    assert isinstance(err, IncompleteSeriesError) and err.path == nm
    assert _spect(folder, allow_incomplete=True).shape[0] == n
    _unchanged(folder, before)


def test_spect_slice_vector_length_and_pixel_truncation(nm_copy):
    folder, nm = nm_copy
    rewrite(nm, lambda d: setattr(d, "SliceVector", list(d.SliceVector)[:-1]))
    err = refused(lambda: _spect(folder), "SliceVector has")
    assert err.tag == "SliceVector"
    rewrite(nm, lambda d: setattr(d, "SliceVector", list(range(1, int(d.NumberOfFrames) + 1))))
    data = nm.read_bytes()
    nm.write_bytes(data[: len(data) - 5000])
    err = refused(lambda: _spect(folder), str(nm))
    assert err.path == nm


def test_spect_without_rescale_slope_uses_stored_values(nm_copy):
    """NM: Rescale Slope is optional; absent means the stored counts (recorded)."""
    folder, nm = nm_copy

    def drop(d: Dataset) -> None:
        del d.RescaleSlope
        if "RescaleIntercept" in d:
            del d.RescaleIntercept

    rewrite(nm, drop)
    spect = load_study(folder).spect()
    vol = spect.volume
    raw = pydicom.dcmread(nm).pixel_array.astype(float)
    np.testing.assert_array_equal(np.sort(vol.array.ravel()), np.sort(raw.ravel()))
    assert any("RescaleSlope absent" in d for d in spect.provenance["derivations"])
    assert math.isfinite(float(vol.array.sum()))
