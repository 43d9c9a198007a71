"""PET reading: units, decay-correction semantics (PS3.3 C.8.9), injection data, SUV.

Expected values are computed in the tests from the header values with the exponential
decay law and the ICRP-107 half-life (radioactivedecay), never from the reader itself.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import numpy as np
import pydicom
import pytest
import radioactivedecay as rd

from dosimetry.errors import DicomInputError, IncompleteSeriesError
from dosimetry.io import load_study
from dosimetry.io.pet import canonical_nuclide, nuclide_from_half_life

from .conftest import F18_HALF_LIFE_S, stored_pet_values, write_pet_series

T_F18 = rd.Nuclide("F-18").half_life("s")  # ICRP-107
LAM = math.log(2.0) / T_F18


def _dicom_dt(date: str, time: str) -> datetime:
    return datetime.strptime(date + time.split(".")[0], "%Y%m%d%H%M%S") + timedelta(
        microseconds=int((time.split(".") + ["0"])[1].ljust(6, "0")[:6])
    )


# ------------------------------------------------------------------------- real data
def test_tcia_slice_1_start_semantics_and_suv(tcia_dir):
    path = tcia_dir / "tcia_pet_1.dcm"
    ds = pydicom.dcmread(path)
    # one slice (ImageIndex 60) of a 324-slice WHOLE BODY series: refused as incomplete
    # unless asked for deliberately (issue #15: no partial series loads silently)
    with pytest.raises(IncompleteSeriesError, match=r"323 missing slice\(s\)") as e:
        _ = load_study(path).pet().volume
    assert e.value.tag == "ImageIndex" and e.value.path == path
    pet = load_study(path).pet(allow_incomplete=True)
    assert pet.nuclide == "F-18"
    assert pet.half_life_s == pytest.approx(T_F18, rel=1e-6)  # header agrees with ICRP-107
    t_series = _dicom_dt(ds.SeriesDate, ds.SeriesTime)
    assert pet.acquisition_time == t_series
    assert pet.reference_time == t_series
    # The header itself says where its decay correction points: PS3.3 C.8.9.1.1.5
    # t_ref = SeriesDateTime + FrameReferenceTime - ln(DecayFactor) / lambda.
    t_ref = float(ds.FrameReferenceTime) / 1000.0 - math.log(float(ds.DecayFactor)) / LAM
    assert abs(t_ref) < 1.0  # seconds from the series time: START = series start
    act = pet.activity_at_acquisition()
    stored = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    np.testing.assert_array_equal(act.array[0], stored)  # START: factor exactly 1
    assert act.unit == "Bq/mL" and act.reference_time == t_series
    # SUVbw by hand: C * W / (A * 2^(-dt / T)), injection 14:17:00 on the series date
    inj = datetime(1960, 6, 14, 14, 17, 0)
    assert pet.injection_time == inj
    dt_s = (t_series - inj).total_seconds()
    a_acq = float(ds.RadiopharmaceuticalInformationSequence[0].RadionuclideTotalDose) * 2 ** (
        -dt_s / T_F18
    )
    suv = pet.suv()
    np.testing.assert_allclose(
        suv.array[0], stored * float(ds.PatientWeight) * 1000.0 / a_acq, rtol=1e-9
    )
    assert suv.unit == "g/mL SUV"
    assert any("SeriesDate" in d for d in pet.provenance["derivations"])
    assert act.provenance["sop_instance_uids"] == [ds.SOPInstanceUID]


def test_tcia_slice_2_injection_at_series_time_dynamic_frame(tcia_dir):
    """Second slice: injection time == series time (0.109 s apart, same day, no midnight
    crossing); a DYNAMIC frame 16 min into the series, decay corrected to the series start."""
    path = tcia_dir / "tcia_pet_2.dcm"
    ds = pydicom.dcmread(path)
    # one slice of one time frame of a DYNAMIC series (111 slices per frame)
    with pytest.raises(IncompleteSeriesError, match=r"110 missing slice\(s\)"):
        _ = load_study(path).pet().volume
    pet = load_study(path).pet(allow_incomplete=True)
    t_series = _dicom_dt(ds.SeriesDate, ds.SeriesTime)
    t_frame = _dicom_dt(ds.AcquisitionDate, ds.AcquisitionTime)
    assert (t_frame - t_series).total_seconds() == pytest.approx(960.0, abs=0.01)
    assert pet.injection_time == datetime(1960, 1, 14, 11, 19, 59)
    assert pet.acquisition_time == t_series  # the series start, not this frame's start
    t_ref = float(ds.FrameReferenceTime) / 1000.0 - math.log(float(ds.DecayFactor)) / LAM
    assert abs(t_ref) < 2.0  # DecayFactor points at the series start
    act = pet.activity_at_acquisition()
    stored = ds.pixel_array * float(ds.RescaleSlope)
    np.testing.assert_array_equal(act.array[0], stored)
    a = float(ds.RadiopharmaceuticalInformationSequence[0].RadionuclideTotalDose)
    suv = pet.suv().array[0]
    np.testing.assert_allclose(
        suv, stored * float(ds.PatientWeight) * 1000 / (a * 2 ** (-0.109 / T_F18)), rtol=1e-9
    )


# ------------------------------------------------------------------- decay round trips
SERIES_T = datetime(2024, 3, 1, 10, 0, 0)
INJ_T = datetime(2024, 3, 1, 8, 45, 0)


def test_admin_round_trip(tmp_path):
    """Truth C0 at the acquisition start; ADMIN images store C0 decay-corrected back to
    the injection, C0 * exp(+lambda dt)."""
    dt_s = (SERIES_T - INJ_T).total_seconds()
    c0 = 5000.0 + 100.0 * np.arange(3 * 2 * 3).reshape(3, 2, 3)
    paths = write_pet_series(
        tmp_path,
        values_bqml=c0,
        shape=(2, 3),
        decay_correction="ADMIN",
        series_time=SERIES_T,
        injection_time=INJ_T,
        stored_scale=lambda k: math.exp(LAM * dt_s),
    )
    pet = load_study(tmp_path).pet()
    assert pet.reference_time == INJ_T
    act = pet.activity_at_acquisition()
    oracle = stored_pet_values(paths)
    for k, p in enumerate(pet.files):
        np.testing.assert_allclose(act.array[k], oracle[p] * 2 ** (-dt_s / T_F18), rtol=1e-12)
    np.testing.assert_allclose(act.array, c0, rtol=1e-4)  # int16 quantisation of stored values
    assert act.reference_time == SERIES_T
    assert any("ADMIN" in d for d in act.provenance["derivations"])


def test_none_multibed_round_trip_with_frame_reference_times(tmp_path):
    """Two beds not decay corrected: each slice holds the activity at its own frame
    reference time (FrameReferenceTime, ms after the series time)."""
    frt = [60.0, 60.0, 240.0, 240.0]
    c0 = np.full((4, 2, 2), 8000.0)
    write_pet_series(
        tmp_path,
        values_bqml=c0,
        shape=(2, 2),
        decay_correction="NONE",
        frame_reference_s=frt,
        stored_scale=lambda k: math.exp(-LAM * frt[k]),
    )
    pet = load_study(tmp_path).pet()
    assert pet.reference_time is None
    act = pet.activity_at_acquisition()
    np.testing.assert_allclose(act.array, c0, rtol=1e-4)
    np.testing.assert_allclose(
        act.provenance["slice_factors"], [math.exp(LAM * t) for t in frt], rtol=1e-9
    )


def test_none_without_frame_reference_time_uses_decay_averaged_time(tmp_path):
    """No FrameReferenceTime: values are frame averages of C0 exp(-lambda t) over
    [t_a, t_a + T] (t_a from AcquisitionTime), i.e. C0 exp(-lambda t_a)(1 - exp(-lambda T))/(lambda T)."""
    t_a = [0.0, 0.0, 300.0]
    T = 300.0

    def strip(ds, k):
        del ds.FrameReferenceTime
        t = SERIES_T + timedelta(seconds=t_a[k])
        ds.AcquisitionTime = t.strftime("%H%M%S.%f")

    c0 = np.full((3, 2, 2), 10000.0)
    write_pet_series(
        tmp_path,
        values_bqml=c0,
        shape=(2, 2),
        decay_correction="NONE",
        frame_duration_s=T,
        extra=strip,
        stored_scale=lambda k: math.exp(-LAM * t_a[k]) * -math.expm1(-LAM * T) / (LAM * T),
    )
    act = load_study(tmp_path).pet().activity_at_acquisition()
    np.testing.assert_allclose(act.array, c0, rtol=1e-4)
    assert any("decay-averaged" in d for d in act.provenance["derivations"])


def test_gml_round_trip_and_suv_identity(tmp_path):
    suv_true = np.array([[[1.0, 2.5], [4.0, 0.5]]] * 2)
    paths = write_pet_series(
        tmp_path,
        values_bqml=suv_true,
        shape=(2, 2),
        units="GML",
        series_time=SERIES_T,
        injection_time=INJ_T,
        injected_activity_bq=3.0e8,
        weight_kg=80.0,
    )
    pet = load_study(tmp_path).pet()
    assert pet.volume.unit == "g/mL SUV"
    act = pet.activity_at_acquisition()
    dt_s = (SERIES_T - INJ_T).total_seconds()
    oracle = stored_pet_values(paths)
    for k, p in enumerate(pet.files):
        expect = oracle[p] * 3.0e8 * 2 ** (-dt_s / T_F18) / 80000.0
        np.testing.assert_allclose(act.array[k], expect, rtol=1e-9)
        np.testing.assert_allclose(pet.suv().array[k], oracle[p], rtol=1e-9)


def test_philips_cnts_scale_factor(tmp_path):
    def philips(ds, k):
        block = ds.private_block(0x7053, "Philips PET Private Group", create=True)
        block.add_new(0x00, "DS", "0.001")  # SUV scale factor (not used for Bq/mL)
        block.add_new(0x09, "DS", f"{0.5 + k:.1f}")  # activity concentration scale factor

    paths = write_pet_series(tmp_path, n_slices=2, units="CNTS", extra=philips)
    pet = load_study(tmp_path).pet()
    assert pet.volume.unit == "counts"
    act = pet.activity_at_acquisition()
    oracle = stored_pet_values(paths)
    for k, p in enumerate(pet.files):
        np.testing.assert_allclose(act.array[k], oracle[p] * (0.5 + k), rtol=1e-12)


def test_cnts_without_factor_and_unknown_units(tmp_path):
    write_pet_series(tmp_path / "c", n_slices=2, units="CNTS")
    with pytest.raises(DicomInputError, match="units_scale_bq_per_ml") as e:
        load_study(tmp_path / "c").pet().activity_at_acquisition()
    assert e.value.tag == "Units"
    paths = write_pet_series(tmp_path / "p", n_slices=2, units="PROPCNTS")
    with pytest.raises(DicomInputError, match="PROPCNTS.*units_scale_bq_per_ml") as e:
        load_study(tmp_path / "p").pet().activity_at_acquisition()
    assert e.value.tag == "Units"
    stored = load_study(tmp_path / "p").pet().volume
    assert stored.unit == "1" and stored.provenance["stored_units"] == "PROPCNTS"
    pet = load_study(tmp_path / "p").pet(units_scale_bq_per_ml=37.0)
    act = pet.activity_at_acquisition()
    oracle = stored_pet_values(paths)
    np.testing.assert_allclose(act.array[0], oracle[pet.files[0]] * 37.0, rtol=1e-12)
    assert act.provenance["overrides_applied"] == {"units_scale_bq_per_ml": 37.0}


# ---------------------------------------------------------------------- injection data
def test_missing_radiopharmaceutical_sequence(tmp_path):
    paths = write_pet_series(tmp_path, n_slices=2, radiopharmaceutical=False)
    pet = load_study(tmp_path).pet()
    act = pet.activity_at_acquisition()  # START: no injection data needed
    np.testing.assert_allclose(act.array[0], stored_pet_values(paths)[pet.files[0]], rtol=0)
    with pytest.raises(DicomInputError, match="injected_activity_bq") as e:
        pet.suv()
    assert e.value.tag == "RadiopharmaceuticalInformationSequence"
    assert e.value.path is not None
    pet = load_study(tmp_path).pet(
        injected_activity_bq=2e8, injection_time="2024-03-01T09:00:00", nuclide="18F"
    )
    suv = pet.suv()
    dt_s = 3600.0
    np.testing.assert_allclose(
        suv.array[0],
        stored_pet_values(paths)[pet.files[0]] * 75000.0 / (2e8 * 2 ** (-dt_s / T_F18)),
        rtol=1e-9,
    )
    applied = suv.provenance["overrides_applied"]
    assert applied["injected_activity_bq"] == 2e8 and applied["nuclide"] == "18F"
    assert applied["injection_time"] == "2024-03-01T09:00:00"


def test_implausible_activity_is_an_error_not_a_guess(tmp_path):
    write_pet_series(tmp_path, n_slices=2, injected_activity_bq=370.0)  # MBq in the Bq field
    pet = load_study(tmp_path).pet()
    with pytest.raises(DicomInputError, match="injected_activity_bq") as e:
        _ = pet.injected_activity_bq
    assert e.value.tag == "RadionuclideTotalDose"
    assert load_study(tmp_path).pet(injected_activity_bq=3.7e8).injected_activity_bq == 3.7e8


def test_start_time_only_midnight_crossing(tmp_path):
    series = datetime(2024, 3, 2, 0, 30, 0)
    inj = datetime(2024, 3, 1, 23, 30, 0)
    write_pet_series(
        tmp_path,
        n_slices=2,
        series_time=series,
        injection_time=inj,
        injection_as_datetime=False,
        decay_correction="ADMIN",
    )
    pet = load_study(tmp_path).pet()
    assert pet.injection_time == inj
    assert any("midnight" in d for d in pet.provenance["derivations"])
    # ADMIN -> acquisition: x 2^(-1 h / T)
    act = pet.activity_at_acquisition()
    oracle = stored_pet_values(pet.files)
    np.testing.assert_allclose(
        act.array[0], oracle[pet.files[0]] * 2 ** (-3600.0 / T_F18), rtol=1e-12
    )


def test_start_time_only_injection_just_after_series_start(tmp_path):
    inj = SERIES_T + timedelta(seconds=30)  # dynamic scan started before the injection
    write_pet_series(
        tmp_path, n_slices=2, series_time=SERIES_T, injection_time=inj, injection_as_datetime=False
    )
    assert load_study(tmp_path).pet().injection_time == inj


def test_start_time_only_refused_for_long_lived_nuclide(tmp_path):
    t_zr = rd.Nuclide("Zr-89").half_life("s")
    write_pet_series(
        tmp_path,
        n_slices=2,
        injection_as_datetime=False,
        half_life_s=t_zr,
        nuclide_code=("C-168A4", "SRT", "^89^Zirconium"),
    )
    pet = load_study(tmp_path).pet()
    assert pet.nuclide == "Zr-89"
    with pytest.raises(DicomInputError, match="injection_time") as e:
        _ = pet.injection_time
    assert e.value.tag == "RadiopharmaceuticalStartDateTime"


def test_decay_factor_inconsistent_with_decay_correction(tmp_path):
    """Images written as ADMIN (DecayFactor to the injection) but labelled START."""
    lam = math.log(2) / F18_HALF_LIFE_S

    def lie(ds, k):
        ds.DecayCorrection = "START"
        ds.DecayFactor = f"{math.exp(lam * (3600.0 + 60.0)):.8f}"

    write_pet_series(tmp_path, n_slices=2, decay_correction="ADMIN", extra=lie)
    with pytest.raises(DicomInputError, match="DecayFactor") as e:
        load_study(tmp_path).pet().activity_at_acquisition()
    assert e.value.tag == "DecayFactor"
    act = load_study(tmp_path).pet(decay_correction="ADMIN").activity_at_acquisition()
    assert act.provenance["overrides_applied"] == {"decay_correction": "ADMIN"}


def test_series_time_after_acquisition_time_refused(tmp_path):
    def earlier(ds, k):
        ds.AcquisitionTime = "093000.000000"  # before SeriesTime 10:00 (re-processed series)

    write_pet_series(tmp_path, n_slices=2, extra=earlier)
    with pytest.raises(DicomInputError, match="acquisition_time") as e:
        load_study(tmp_path).pet().activity_at_acquisition()
    assert e.value.tag == "SeriesTime"
    pet = load_study(tmp_path).pet(acquisition_time=datetime(2024, 3, 1, 9, 30))
    assert pet.activity_at_acquisition().reference_time == datetime(2024, 3, 1, 9, 30)


def test_series_time_after_acquisition_time_ge_private_scan_datetime(tmp_path):
    def ge(ds, k):
        ds.AcquisitionTime = "093000.000000"
        block = ds.private_block(0x0009, "GEMS_PETD_01", create=True)
        block.add_new(0x0D, "DT", "20240301093000.00")  # GE scan date-time

    paths = write_pet_series(tmp_path, n_slices=2, extra=ge)
    pet = load_study(tmp_path).pet()
    assert pet.acquisition_time == datetime(2024, 3, 1, 9, 30)
    act = pet.activity_at_acquisition()  # START: values refer to the GE scan start
    np.testing.assert_array_equal(act.array[0], stored_pet_values(paths)[pet.files[0]])
    assert act.reference_time == datetime(2024, 3, 1, 9, 30)
    assert any("GE private" in d for d in pet.provenance["derivations"])


# ---------------------------------------------------------------------------- SUV kinds
def test_suv_lbm_bsa_against_published_formulas(tmp_path):
    write_pet_series(tmp_path, n_slices=2, weight_kg=75.0, height_m=1.80, sex="M")
    pet = load_study(tmp_path).pet()
    bw = pet.suv("bw").array
    w, h = 75.0, 1.80
    # Janmahasatian et al. 2005, male: 9270 W / (6680 + 216 BMI)
    lbm_j = 9270 * w / (6680 + 216 * w / h**2)
    np.testing.assert_allclose(pet.suv("lbm").array, bw * lbm_j / w, rtol=1e-12)
    # James 1976 (PERCIST), male: 1.10 W - 128 (W / H_cm)^2
    lbm_james = 1.10 * w - 128 * (w / 180.0) ** 2
    np.testing.assert_allclose(
        pet.suv("lbm", lbm_formula="james").array, bw * lbm_james / w, rtol=1e-12
    )
    # Du Bois 1916: BSA = 0.007184 W^0.425 H_cm^0.725 m^2; SUVbsa in cm^2/mL
    bsa_cm2 = 0.007184 * w**0.425 * 180.0**0.725 * 1e4
    suv_bsa = pet.suv("bsa")
    np.testing.assert_allclose(suv_bsa.array, bw * bsa_cm2 / (w * 1000), rtol=1e-12)
    assert suv_bsa.provenance["suv_unit"] == "cm2/mL"


def test_missing_weight_and_height_named(tmp_path):
    write_pet_series(tmp_path, n_slices=2, weight_kg=None, height_m=None)
    pet = load_study(tmp_path).pet()
    with pytest.raises(DicomInputError, match="patient_weight_kg") as e:
        pet.suv()
    assert e.value.tag == "PatientWeight"
    pet = load_study(tmp_path).pet(patient_weight_kg=70.0)
    pet.suv()
    with pytest.raises(DicomInputError, match="patient_height_m") as e:
        pet.suv("lbm")
    assert e.value.tag == "PatientSize"


# ---------------------------------------------------------------------------- nuclides
def test_nuclide_from_code_meaning_and_half_life(tmp_path):
    t_ga = rd.Nuclide("Ga-68").half_life("s")
    write_pet_series(
        tmp_path / "code", n_slices=2, half_life_s=t_ga, nuclide_code=("C-131A3", "SRT", "x")
    )
    assert load_study(tmp_path / "code").pet().nuclide == "Ga-68"
    write_pet_series(tmp_path / "hl", n_slices=2, half_life_s=4080.0, nuclide_code=None)
    pet = load_study(tmp_path / "hl").pet()
    assert pet.nuclide == "Ga-68"  # 4080 s is 0.4 % from the ICRP-107 67.71 min
    assert pet.half_life_s == 4080.0  # the value the scanner used is the one undone
    write_pet_series(tmp_path / "bad", n_slices=2, half_life_s=t_ga)  # code says F-18
    with pytest.raises(DicomInputError, match="does not match F-18") as e:
        _ = load_study(tmp_path / "bad").pet().nuclide
    assert e.value.tag == "RadionuclideHalfLife"


def test_canonical_names_and_half_life_matching():
    assert canonical_nuclide("F^18^[^18^Fluorine]") == "F-18"
    assert canonical_nuclide("Lutetium-177") == "Lu-177"
    assert canonical_nuclide("Ga68") == "Ga-68"
    assert canonical_nuclide("nonsense") is None
    assert nuclide_from_half_life(rd.Nuclide("Lu-177").half_life("s")) == ["Lu-177"]
    # Zr-89 and Ga-67 half-lives are 0.2 % apart: ambiguous
    assert sorted(nuclide_from_half_life(rd.Nuclide("Zr-89").half_life("s"))) == [
        "Ga-67",
        "Zr-89",
    ]
