"""Reconstructed SPECT (NM multi-frame) geometry and calibration to Bq/mL."""

from __future__ import annotations

import math
from datetime import datetime

import numpy as np
import pydicom
import pytest
import radioactivedecay as rd

from dosimetry.errors import DicomInputError
from dosimetry.io import load_study

from .conftest import write_nm_recon

T_LU = rd.Nuclide("Lu-177").half_life("s")  # ICRP-107


def _counts(n=5, r=3, c=4):
    return (10 * np.arange(n * r * c).reshape(n, r, c) + 7).astype(np.uint16)


def test_multiframe_geometry_signed_spacing_and_slice_vector(tmp_path):
    counts = _counts()
    write_nm_recon(tmp_path / "pos.dcm", counts, ipp=(-20, -30, 50), spacing_between_slices=4.0)
    v = load_study(tmp_path / "pos.dcm").spect().volume
    assert v.shape == (5, 3, 4) and v.unit == "counts"
    np.testing.assert_array_equal(v.array, counts)  # exact, frames in slice order
    # first voxel at the Detector Information IPP, slices along +normal (+z here)
    np.testing.assert_allclose(v.origin_mm, [-20, -30, 50], atol=1e-9)
    np.testing.assert_allclose(v.affine[:3, 0], [0, 0, 4.0], atol=1e-12)
    np.testing.assert_allclose(v.affine[:3, 1], [0, 4.0, 0], atol=1e-12)
    np.testing.assert_allclose(v.affine[:3, 2], [4.0, 0, 0], atol=1e-12)

    # negative SpacingBetweenSlices: slices stacked against the normal (PS3.3 C.8.4.15)
    write_nm_recon(tmp_path / "neg.dcm", counts, ipp=(-20, -30, 50), spacing_between_slices=-4.0)
    v = load_study(tmp_path / "neg.dcm").spect().volume
    # sorted along +normal: the last stored frame (z = 50 - 16) comes first
    np.testing.assert_array_equal(v.array, counts[::-1])
    np.testing.assert_allclose(v.origin_mm, [-20, -30, 34], atol=1e-9)

    # SliceVector gives each frame's slice number
    sv = [3, 1, 2, 5, 4]
    write_nm_recon(tmp_path / "sv.dcm", counts, slice_vector=sv)
    v = load_study(tmp_path / "sv.dcm").spect().volume
    for f, k in enumerate(sv):
        np.testing.assert_array_equal(v.array[k - 1], counts[f])


def test_counts_to_bq_per_ml_by_hand(tmp_path):
    counts = _counts()
    acq = datetime(2024, 3, 2, 14, 0, 0)
    write_nm_recon(
        tmp_path / "a.dcm",
        counts,
        pixel_spacing=(4.0, 4.0),
        spacing_between_slices=4.0,
        rotations=((20.0, 60),),  # 60 views x 20 s = 1200 s
        acquisition_time=acq,
    )
    spect = load_study(tmp_path / "a.dcm").spect()
    with pytest.raises(DicomInputError, match="calibration_cps_per_mbq") as e:
        spect.activity_at_acquisition()
    assert e.value.tag == "Units"
    cf = 9.36  # cps/MBq
    act = spect.activity_at_acquisition(calibration_cps_per_mbq=cf)
    t = 1200.0
    voxel_ml = 4.0 * 4.0 * 4.0 / 1000.0
    lam_t = math.log(2) / T_LU * t
    decay = lam_t / (1 - math.exp(-lam_t))  # mean over the scan -> value at its start
    expect = counts / (t * cf) * 1e6 / voxel_ml * decay
    np.testing.assert_allclose(act.array, expect, rtol=1e-12)
    assert act.unit == "Bq/mL" and act.reference_time == acq
    assert spect.nuclide == "Lu-177"
    assert act.provenance["acquisition_duration_s"] == t
    # total activity: sum of counts / (T * CF) in MBq
    assert act.total() == pytest.approx(counts.sum() / (t * cf) * 1e6 * decay, rel=1e-12)


def test_duration_missing_needs_override(tmp_path):
    write_nm_recon(tmp_path / "a.dcm", _counts(), rotations=None)
    spect = load_study(tmp_path / "a.dcm").spect()
    with pytest.raises(DicomInputError, match="acquisition_duration_s") as e:
        spect.activity_at_acquisition(calibration_cps_per_mbq=10.0)
    assert e.value.tag == "RotationInformationSequence"
    spect = load_study(tmp_path / "a.dcm").spect(acquisition_duration_s=900.0)
    act = spect.activity_at_acquisition(calibration_cps_per_mbq=10.0)
    assert act.provenance["overrides_applied"]["acquisition_duration_s"] == 900.0


def test_two_rotations_sum(tmp_path):
    write_nm_recon(tmp_path / "a.dcm", _counts(), rotations=((15.0, 32), (20.0, 32)))
    assert load_study(tmp_path / "a.dcm").spect().acquisition_duration_s == 15 * 32 + 20 * 32


def test_bqml_start_as_stored_and_mean_over_scan_corrected(tmp_path):
    values = _counts()
    write_nm_recon(tmp_path / "s.dcm", values, units="BQML")
    ds = pydicom.dcmread(tmp_path / "s.dcm")
    ds.DecayCorrection = "START"
    ds.save_as(tmp_path / "s.dcm")
    spect = load_study(tmp_path / "s.dcm").spect()
    np.testing.assert_array_equal(spect.activity_at_acquisition().array, values)
    with pytest.raises(DicomInputError, match="already in Bq/mL"):
        spect.activity_at_acquisition(calibration_cps_per_mbq=5.0)
    # no DecayCorrection: mean concentration over the 1200 s scan -> value at its start
    write_nm_recon(tmp_path / "m.dcm", values, units="BQML")
    act = load_study(tmp_path / "m.dcm").spect().activity_at_acquisition()
    lam_t = math.log(2) / T_LU * 1200.0
    np.testing.assert_allclose(act.array, values * lam_t / -math.expm1(-lam_t), rtol=1e-12)


def test_total_dose_is_mbq_in_nm(tmp_path):
    write_nm_recon(tmp_path / "a.dcm", _counts())
    spect = load_study(tmp_path / "a.dcm").spect()
    assert spect.injected_activity_bq == 7.4e9  # 7400 MBq (PS3.3 C.8.4.10.1.7)
    assert spect.injection_time == datetime(2024, 3, 1, 10, 0, 0)


def test_energy_windows_choose_or_refuse(tmp_path):
    common = {
        "StudyInstanceUID": "1.2.3.1",
        "SeriesInstanceUID": "1.2.3.2",
        "FrameOfReferenceUID": "1.2.3.3",
    }
    a, b = _counts(), _counts() + 1000
    write_nm_recon(tmp_path / "peak.dcm", a, window=("EM_208", 187.2, 228.8), **common)
    write_nm_recon(tmp_path / "low.dcm", b, window=("SC_170", 150.0, 187.0), **common)
    study = load_study(tmp_path)
    with pytest.raises(DicomInputError, match="energy_window") as e:
        _ = study.spect().volume
    assert "EM_208" in str(e.value) and "SC_170" in str(e.value)
    np.testing.assert_array_equal(study.spect(energy_window=208.0).volume.array, a)
    np.testing.assert_array_equal(study.spect(energy_window="sc_170").volume.array, b)
    with pytest.raises(DicomInputError, match="selects 0"):
        _ = study.spect(energy_window=300.0).volume


def test_projections_not_selectable_and_refused(tmp_path):
    write_nm_recon(tmp_path / "p" / "tomo.dcm", _counts(), image_type="TOMO")
    study = load_study(tmp_path / "p")
    with pytest.raises(DicomInputError, match="no SPECT series"):
        study.spect()
