"""Study access to RTSTRUCT, RTDOSE and masks (real dicompyler-core example case)."""

from __future__ import annotations

import gzip
import importlib.util
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest

from dosimetry.errors import DicomInputError
from dosimetry.io import load_study

DATA = Path(__file__).resolve().parents[1] / "data" / "dicompyler"

needs_rtdose = pytest.mark.skipif(
    importlib.util.find_spec("dosimetry.io.rtdose") is None,
    reason="dosimetry.io.rtdose (RTDOSE reader) is not available",
)
needs_masks = pytest.mark.skipif(
    importlib.util.find_spec("dosimetry.io.masks") is None,
    reason="dosimetry.io.masks (RTSTRUCT rasteriser) is not available",
)


@pytest.fixture
def rt_folder(tmp_path) -> Path:
    shutil.copy(DATA / "rtss.dcm", tmp_path / "rtss.dcm")
    shutil.copy(DATA / "ct.0.dcm", tmp_path / "ct.0.dcm")
    with gzip.open(DATA / "rtdose.dcm.gz", "rb") as src, open(tmp_path / "rtdose.dcm", "wb") as dst:
        shutil.copyfileobj(src, dst)
    return tmp_path


def test_rtstruct_dataset(rt_folder):
    study = load_study(rt_folder)
    ds = study.rtstruct()
    assert ds.Modality == "RTSTRUCT"
    assert len(ds.StructureSetROISequence) == 10
    assert [d.Modality for d in study.rtstructs()] == ["RTSTRUCT"]
    with pytest.raises(DicomInputError, match="no RTDOSE series"):
        load_study(rt_folder / "rtss.dcm").rtdose()


@needs_rtdose
def test_rtdose_volume_in_gy(rt_folder):
    dose = load_study(rt_folder).rtdose()
    ds = pydicom.dcmread(rt_folder / "rtdose.dcm")
    assert dose.unit == "Gy"
    assert dose.shape == (int(ds.NumberOfFrames), int(ds.Rows), int(ds.Columns))
    # maximum dose = max stored value x DoseGridScaling (PS3.3 C.8.8.3)
    assert dose.array.max() == pytest.approx(
        float(ds.pixel_array.max()) * float(ds.DoseGridScaling), rel=1e-6
    )


@needs_rtdose
@needs_masks
def test_masks_on_the_dose_grid(rt_folder):
    study = load_study(rt_folder)
    dose = study.rtdose()
    names = [r.ROIName for r in study.rtstruct().StructureSetROISequence]
    target = names[0]
    masks = study.masks(grid=dose, names=[target])
    assert list(masks) == [target]
    m = masks[target]
    assert m.same_grid(dose)
    assert m.array.dtype == bool and m.array.any()
    frac = study.masks(grid=dose, names=[target], mode="fraction")[target]
    assert 0.0 <= float(frac.array.min()) and float(frac.array.max()) <= 1.0
    # the binary mask is the >= 0.5 occupancy of the fractional one
    np.testing.assert_array_equal(m.array, frac.array >= 0.5)
