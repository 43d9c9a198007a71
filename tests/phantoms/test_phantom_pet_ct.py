"""The PET/CT phantom study: DICOM validity, geometry, decay bookkeeping, ground truth."""

from __future__ import annotations

import hashlib
import math
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.uid import (
    CTImageStorage,
    ExplicitVRLittleEndian,
    PositronEmissionTomographyImageStorage,
    RTStructureSetStorage,
)
from scipy import ndimage

import phantoms
from phantoms._geometry import Ellipsoid, StackedCylinders, polygon_area

DATA = Path(__file__).resolve().parents[1] / "data"
GA68_HALF_LIFE_S = 67.71 * 60.0  # ICRP Publication 107


def folder_size_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.iterdir()) / 1e6


def read(path: Path, pixels: bool = True) -> pydicom.Dataset:
    return pydicom.dcmread(path, stop_before_pixels=not pixels)


def sorted_by_position(paths: list[Path]) -> list[pydicom.Dataset]:
    """Order slices along the normal of ImageOrientationPatient, as a reader must."""
    dss = [read(p) for p in paths]
    iop = np.array(dss[0].ImageOrientationPatient, dtype=float)
    normal = np.cross(iop[:3], iop[3:])
    return sorted(dss, key=lambda d: float(np.dot(normal, np.array(d.ImagePositionPatient))))


# -- files -------------------------------------------------------------------------------


def test_every_file_is_part10_with_the_right_sop_class(pet_study) -> None:
    truth, _ = pet_study
    files = sorted(truth.folder.iterdir())
    assert len(files) == len(truth.ct_paths) + len(truth.pet_paths) + 1
    expected = {"CT": CTImageStorage, "PT": PositronEmissionTomographyImageStorage}
    expected["RTSTRUCT"] = RTStructureSetStorage
    for p in files:
        raw = p.read_bytes()
        assert raw[128:132] == b"DICM", p
        ds = pydicom.dcmread(p, stop_before_pixels=True)
        assert ds.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
        assert ds.SOPClassUID == expected[ds.Modality]
        assert ds.file_meta.MediaStorageSOPClassUID == ds.SOPClassUID
        assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
    # 412 mm long phantom (torso, neck and head): 206 CT slices of 2 mm, 103 PET of 4 mm
    assert (len(truth.ct_paths), len(truth.pet_paths)) == (206, 103)


def test_size_and_speed(pet_study) -> None:
    truth, wall_s = pet_study
    assert folder_size_mb(truth.folder) < 30.0
    # the budget is 5 s on a developer machine; allow for a loaded CI runner
    assert wall_s < 20.0


def test_names_and_instance_numbers_do_not_give_the_slice_order(pet_study) -> None:
    truth, _ = pet_study
    for paths in (truth.ct_paths, truth.pet_paths):
        names = [p.name for p in paths]  # paths are in ascending z
        assert names != sorted(names) and names != sorted(names, reverse=True)
        inst = [int(read(p, False).InstanceNumber) for p in paths]
        assert sorted(inst) == list(range(1, len(paths) + 1))
        assert inst != sorted(inst) and inst != sorted(inst, reverse=True)


def test_geometry_and_frame_of_reference(pet_study) -> None:
    truth, _ = pet_study
    ct = sorted_by_position(truth.ct_paths)
    pet = sorted_by_position(truth.pet_paths)
    rt = read(truth.rtstruct_path)
    for series, vol in ((ct, truth.ct_expected_hu), (pet, truth.pet_expected_bqml)):
        z = np.array([float(d.ImagePositionPatient[2]) for d in series])
        assert np.all(np.diff(z) > 0)
        assert np.allclose(np.diff(z), vol.spacing_mm[0], atol=1e-6)
        first = np.array(series[0].ImagePositionPatient, dtype=float)
        assert np.allclose(first, vol.origin_mm, atol=1e-5)
        assert [float(v) for v in series[0].PixelSpacing] == list(vol.spacing_mm[1:])
        assert {d.SeriesInstanceUID for d in series} == {series[0].SeriesInstanceUID}
    fors = {d.FrameOfReferenceUID for d in ct + pet}
    fors.add(rt.ReferencedFrameOfReferenceSequence[0].FrameOfReferenceUID)
    fors.add(rt.FrameOfReferenceUID)
    fors |= {r.ReferencedFrameOfReferenceUID for r in rt.StructureSetROISequence}
    assert fors == {truth.frame_of_reference_uid}
    studies = {d.StudyInstanceUID for d in ct + pet} | {rt.StudyInstanceUID}
    assert studies == {truth.study_instance_uid}
    # PET is coarser than CT and covers the same axial range
    assert pet[0].PixelSpacing[0] > ct[0].PixelSpacing[0]
    assert len({d.SeriesInstanceUID for d in ct + pet}) == 2


def test_ct_pixels_decode_to_the_written_hounsfield_units(pet_study) -> None:
    truth, _ = pet_study
    ct = sorted_by_position(truth.ct_paths)
    hu = np.stack([d.pixel_array * float(d.RescaleSlope) + float(d.RescaleIntercept) for d in ct])
    assert ct[0].pixel_array.dtype == np.int16
    assert np.array_equal(hu, truth.ct_expected_hu.array)
    # noise-free truth vs written CT: sigma 10 HU
    diff = hu - truth.phantom.ct_hu.array
    assert abs(diff.mean()) < 0.1 and 9.5 < diff.std() < 10.5
    d = ct[0]
    assert (d.PatientWeight, d.PatientSize, d.PatientSex) == (80.0, 1.78, "M")


# -- PET header and values -----------------------------------------------------------------


def test_pet_header_is_complete(pet_study) -> None:
    truth, _ = pet_study
    d = read(truth.pet_paths[10], False)
    assert d.Modality == "PT" and d.Units == "BQML" and d.DecayCorrection == "START"
    assert {"DECY", "ATTN"} <= set(d.CorrectedImage)
    assert d.SeriesType == ["WHOLE BODY", "IMAGE"]
    assert d.SeriesTime == d.AcquisitionTime and d.SeriesDate == d.AcquisitionDate
    assert float(d.RescaleIntercept) == 0.0
    assert int(d.ActualFrameDuration) == 600000
    rp = d.RadiopharmaceuticalInformationSequence[0]
    code = rp.RadionuclideCodeSequence[0]
    assert (code.CodeValue, code.CodingSchemeDesignator) == ("C-131A3", "SRT")
    assert float(rp.RadionuclideHalfLife) == pytest.approx(GA68_HALF_LIFE_S)
    assert float(rp.RadionuclideTotalDose) == 150e6
    assert float(rp.RadionuclidePositronFraction) == pytest.approx(0.8891)
    assert rp.RadiopharmaceuticalStartDateTime.startswith("20240305091230")
    assert rp.RadiopharmaceuticalStartTime.startswith("091230")
    assert d.SeriesTime.startswith("101230")  # 60 min uptake
    assert rp.Radiopharmaceutical == "Ga-68 PSMA-11"


def test_pet_header_has_what_a_real_scanner_writes(tmp_path) -> None:
    """Every PET attribute of a real TCIA F-18 image (Siemens) that a reader may use."""
    real = pydicom.dcmread(DATA / "tcia_pet" / "tcia_pet_1.dcm", stop_before_pixels=True)
    wanted = [
        "Units",
        "DecayCorrection",
        "CorrectedImage",
        "ActualFrameDuration",
        "SeriesTime",
        "AcquisitionTime",
        "PatientWeight",
        "RescaleSlope",
        "RescaleIntercept",
        "SliceThickness",
        "NumberOfSlices",
        "ImagePositionPatient",
        "ImageOrientationPatient",
        "PixelSpacing",
        "FrameOfReferenceUID",
    ]
    rp_wanted = [
        "RadiopharmaceuticalStartTime",
        "RadionuclideTotalDose",
        "RadionuclideHalfLife",
        "RadionuclidePositronFraction",
        "RadionuclideCodeSequence",
    ]
    assert all(k in real for k in wanted)
    assert all(k in real.RadiopharmaceuticalInformationSequence[0] for k in rp_wanted)
    # the real file codes F-18 as C-111A1 (SNOMED-RT), as our F-18 tracers do
    assert real.RadiopharmaceuticalInformationSequence[0].RadionuclideCodeSequence[0].CodeValue == (
        phantoms.NUCLIDES["F-18"].code_srt
    )
    truth = phantoms.write_pet_ct_study(
        tmp_path / "s", phantoms.make_torso(voxel_mm=4.0), tracer="F-18-FDG", noise=False
    )
    ours = read(truth.pet_paths[0], False)
    assert all(k in ours for k in wanted)
    assert all(k in ours.RadiopharmaceuticalInformationSequence[0] for k in rp_wanted)
    assert float(ours.RadiopharmaceuticalInformationSequence[0].RadionuclideHalfLife) == (
        pytest.approx(float(real.RadiopharmaceuticalInformationSequence[0].RadionuclideHalfLife))
    )


def test_pet_pixels_decode_to_the_expected_image(pet_study) -> None:
    truth, _ = pet_study
    pet = sorted_by_position(truth.pet_paths)
    val = np.stack([d.pixel_array * float(d.RescaleSlope) for d in pet])
    assert np.allclose(val, truth.pet_expected_bqml.array, rtol=1e-12, atol=0)
    slopes = {d.RescaleSlope for d in pet}
    assert len(slopes) > 10  # per-slice slopes
    assert all(d.pixel_array.max() == 32767 for d in pet if d.pixel_array.max() > 0)


def test_liver_suv_and_poisson_noise(pet_study) -> None:
    """Independent formulas: SUVbw = C W / (A0 2^(-t/T)); Poisson variance = mean / scale."""
    truth, _ = pet_study
    d = read(truth.pet_paths[0], False)
    rp = d.RadiopharmaceuticalInformationSequence[0]
    a_start = float(rp.RadionuclideTotalDose) * 2.0 ** (-3600.0 / float(rp.RadionuclideHalfLife))
    w_g = float(d.PatientWeight) * 1000.0
    liver = truth.masks_pet["liver"].array & ~truth.masks_pet["lesion_1"].array
    deep = ndimage.binary_erosion(liver, iterations=3)
    assert deep.sum() > 100
    true_c = truth.activity_concentration.array[deep]
    assert np.allclose(true_c * w_g / a_start, 5.4, rtol=1e-9)  # cited liver SUVmean
    img = truth.pet_expected_bqml.array[deep]
    n = img.size
    assert img.mean() == pytest.approx(true_c.mean(), rel=4 * img.std() / img.mean() / n**0.5)
    # Poisson: var(C) = C / (V eps T_eff), T_eff = (1 - exp(-lam T)) / lam
    lam = math.log(2) / GA68_HALF_LIFE_S
    scale = 0.064 * 5e-4 * (1 - math.exp(-lam * 600.0)) / lam
    assert img.var() == pytest.approx(true_c.mean() / scale, rel=0.25)


# -- ground-truth bookkeeping ----------------------------------------------------------------


def test_activity_bookkeeping(pet_study) -> None:
    truth, _ = pet_study
    conc = truth.activity_concentration
    assert conc.unit == "Bq/mL" and conc.reference_time == truth.acquisition_datetime
    total = sum(truth.region_activity_bq.values())
    assert total == pytest.approx(truth.total_activity_in_phantom_bq, rel=1e-12)
    assert conc.total() == pytest.approx(total, rel=1e-9)
    assert truth.activity_outside_pet_fov_bq == pytest.approx(0.0, abs=1e-6 * total)
    # ROIs without lesions equal their regions; ROIs with a lesion inside add it
    for roi in ("kidney_left", "kidney_right", "spleen", "lung_left"):
        assert truth.organ_activity_bq[roi] == pytest.approx(truth.region_activity_bq[roi])
    assert truth.organ_activity_bq["liver"] == pytest.approx(
        truth.region_activity_bq["liver"] + truth.region_activity_bq["lesion_1"], rel=1e-9
    )
    assert truth.organ_activity_bq["body"] == pytest.approx(total, rel=1e-9)
    # concentration x volume: A = SUV x A(t) / W x V_region, V from the 2 mm sub-grid
    a_start = truth.injected_activity_bq * 2.0 ** (-truth.uptake_time_s / truth.half_life_s)
    vol_kidney = truth.region_activity_bq["kidney_left"] / (41.7 * a_start / 80000.0)
    analytic = truth.phantom.analytic_volume_ml("kidney_left")
    assert vol_kidney == pytest.approx(analytic, rel=0.02)
    # decay to injection time
    f = 2.0 ** (3600.0 / GA68_HALF_LIFE_S)
    for roi, a in truth.organ_activity_bq.items():
        assert truth.organ_activity_at_injection_bq[roi] == pytest.approx(a * f, rel=1e-12)
    assert truth.fraction_in_phantom == pytest.approx(total / a_start)
    assert 0.2 < truth.fraction_in_phantom < 0.5
    # masks on the PET grid have the analytic volume
    vml = conc.voxel_volume_ml
    assert truth.masks_pet["liver"].array.sum() * vml == pytest.approx(
        truth.phantom.analytic_volume_ml("liver"), rel=0.03
    )


def test_blur_preserves_activity_and_has_the_stated_resolution(small_torso, tmp_path) -> None:
    truth = phantoms.write_pet_ct_study(tmp_path / "s", small_torso, noise=False, fwhm_mm=6.0)
    img, true = truth.pet_expected_bqml, truth.activity_concentration
    # quantisation (1/32767 of each slice maximum) and the axial edges
    assert img.total() == pytest.approx(true.total(), rel=2e-3)
    # the blurred 30 mm lesion peaks below its true concentration (partial volume)
    lesion = truth.masks_pet["lesion_1"].array
    assert img.array[lesion].max() < true.array[lesion].max()
    # an isolated point response has the stated FWHM: blur a delta through the same filter
    delta = np.zeros((31, 31, 31))
    delta[15, 15, 15] = 1.0
    from phantoms._pet import FWHM_TO_SIGMA

    prof = ndimage.gaussian_filter(delta, 6.0 * FWHM_TO_SIGMA / 4.0)[15, 15]
    x = (np.arange(31) - 15) * 4.0
    sigma = math.sqrt(np.sum(prof * x**2) / prof.sum())
    assert 2.0 * math.sqrt(2.0 * math.log(2.0)) * sigma == pytest.approx(6.0, rel=0.02)


# -- decay correction semantics -----------------------------------------------------------


@pytest.mark.parametrize("mode", ["START", "ADMIN", "NONE"])
def test_decay_correction_bookkeeping(small_torso, tmp_path, mode) -> None:
    """PS3.3: stored / DecayFactor is the frame-average concentration in every mode."""
    truth = phantoms.write_pet_ct_study(
        tmp_path / "s", small_torso, noise=False, decay_correction=mode, n_beds=2
    )
    pet = sorted_by_position(truth.pet_paths)
    d0 = pet[0]
    lam = math.log(2) / float(d0.RadiopharmaceuticalInformationSequence[0].RadionuclideHalfLife)
    t_frame = int(d0.ActualFrameDuration) / 1000.0
    f = lam * t_frame / (1.0 - math.exp(-lam * t_frame))  # average -> start of frame
    uptake = 3600.0
    c_start = truth.activity_concentration.array  # truth at the series start
    blurred_truth = truth.pet_expected_bqml.array
    for k, d in enumerate(pet):
        stored = d.pixel_array * float(d.RescaleSlope)
        t_b = truth.bed_start_offsets_s[(2 * k) // len(pet)]  # beds: contiguous slice blocks
        assert float(d.FrameReferenceTime) / 1000.0 == pytest.approx(t_b + math.log(f) / lam)
        acq = d.AcquisitionTime
        assert acq.startswith("101230" if t_b == 0 else "102230")
        frame_avg = blurred_truth[k] * math.exp(-lam * t_b) / f
        if mode == "NONE":
            assert "DecayFactor" not in d and "DECY" not in d.CorrectedImage
            assert np.allclose(stored, frame_avg, rtol=1e-9)
            assert np.allclose(
                stored * math.exp(lam * float(d.FrameReferenceTime) / 1000.0),
                blurred_truth[k],
                rtol=1e-9,
            )
        else:
            dfac = float(d.DecayFactor)
            expected = f * math.exp(lam * (t_b + (uptake if mode == "ADMIN" else 0.0)))
            assert dfac == pytest.approx(expected, rel=1e-9)
            assert np.allclose(stored / dfac, frame_avg, rtol=1e-9)
    # and the noise-free written image is the blurred truth within quantisation
    assert truth.pet_expected_bqml.total() == pytest.approx(c_start.sum() * 0.064, rel=2e-3)


def test_cnts_units_with_philips_scale_factors(small_torso, tmp_path) -> None:
    truth = phantoms.write_pet_ct_study(tmp_path / "s", small_torso, pet_units="CNTS")
    pet = sorted_by_position(truth.pet_paths)
    d = pet[20]
    assert d.Units == "CNTS"
    block = d.private_block(0x7053, "Philips PET Private Group")
    act_scale = float(block[0x09].value)
    suv_scale = float(block[0x00].value)
    assert act_scale == truth.activity_scale_bqml_per_cnts
    bqml = np.stack([p.pixel_array * float(p.RescaleSlope) * act_scale for p in pet])
    assert np.allclose(bqml, truth.pet_expected_bqml.array, rtol=1e-12)
    # SUV factor = activity factor x weight / (injected activity decayed to series start)
    a_start = 150e6 * 2.0 ** (-3600.0 / GA68_HALF_LIFE_S)
    assert suv_scale == pytest.approx(act_scale * 80000.0 / a_start, rel=1e-9)


def test_gml_units_are_suv(small_torso, tmp_path) -> None:
    truth = phantoms.write_pet_ct_study(tmp_path / "s", small_torso, pet_units="GML", noise=False)
    pet = sorted_by_position(truth.pet_paths)
    suv = np.stack([p.pixel_array * float(p.RescaleSlope) for p in pet])
    a_start = 150e6 * 2.0 ** (-3600.0 / GA68_HALF_LIFE_S)
    assert np.allclose(suv * a_start / 80000.0, truth.pet_expected_bqml.array, rtol=1e-9)
    kidney = ndimage.binary_erosion(truth.masks_pet["kidney_left"].array, iterations=2)
    assert np.median(suv[kidney]) == pytest.approx(41.7, rel=0.1)
    with pytest.raises(ValueError, match="GML"):
        phantoms.write_pet_ct_study(
            tmp_path / "t", small_torso, pet_units="GML", decay_correction="NONE"
        )


def test_other_tracers_and_code_schemes(small_torso, tmp_path) -> None:
    truth = phantoms.write_pet_ct_study(
        tmp_path / "s", small_torso, tracer="F-18-PSMA-1007", code_scheme="SCT"
    )
    rp = read(truth.pet_paths[0], False).RadiopharmaceuticalInformationSequence[0]
    assert rp.RadionuclideCodeSequence[0].CodeValue == "77004003"
    assert rp.RadionuclideCodeSequence[0].CodingSchemeDesignator == "SCT"
    assert rp.RadiopharmaceuticalCodeSequence[0].CodeValue == "126758"
    assert float(rp.RadionuclideHalfLife) == pytest.approx(109.77 * 60)
    assert float(rp.RadionuclideTotalDose) == 250e6
    assert truth.suv["liver"] == 11.8  # median SUVmean, Trägårdh et al. 2025


def test_omit_radiopharmaceutical_sequence(small_torso, tmp_path) -> None:
    truth = phantoms.write_pet_ct_study(
        tmp_path / "s", small_torso, omit_radiopharmaceutical_sequence=True
    )
    assert all(
        "RadiopharmaceuticalInformationSequence" not in read(p, False) for p in truth.pet_paths
    )


def test_defects(small_torso, tmp_path) -> None:
    truth = phantoms.write_pet_ct_study(
        tmp_path / "s",
        small_torso,
        defects=[
            "ct_missing_slice",
            "pet_nonuniform_spacing",
            "missing_patient_weight",
            "rtstruct_other_frame_of_reference",
        ],
    )
    n_ct = small_torso.ct_hu.shape[0]
    assert len(truth.ct_paths) == n_ct - 1
    z_ct = np.diff([float(read(p, False).ImagePositionPatient[2]) for p in truth.ct_paths])
    assert z_ct.max() == pytest.approx(2 * z_ct.min())
    z_pet = np.diff([float(read(p, False).ImagePositionPatient[2]) for p in truth.pet_paths])
    assert z_pet.max() == pytest.approx(1.5 * z_pet.min())
    assert all("PatientWeight" not in read(p, False) for p in truth.pet_paths[:3])
    rt = read(truth.rtstruct_path, False)
    assert rt.ReferencedFrameOfReferenceSequence[0].FrameOfReferenceUID != (
        truth.frame_of_reference_uid
    )
    t2 = phantoms.write_pet_ct_study(tmp_path / "t", small_torso, defects=["pet_missing_slice"])
    assert len(t2.pet_paths) == t2.pet_expected_bqml.shape[0] - 1
    with pytest.raises(ValueError, match="unknown defects"):
        phantoms.write_pet_ct_study(tmp_path / "u", small_torso, defects=["bad"])


def test_bad_arguments_and_non_empty_folder(small_torso, tmp_path) -> None:
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x.dcm").write_bytes(b"x")
    with pytest.raises(phantoms_errors().OutputError, match="not empty"):
        phantoms.write_pet_ct_study(tmp_path / "full", small_torso)
    for kwargs, match in (
        ({"tracer": "Tc-99m"}, "tracer"),
        ({"pet_units": "SUV"}, "pet_units"),
        ({"decay_correction": "END"}, "decay_correction"),
        ({"uptake_time_s": -1.0}, "uptake_time_s"),
        ({"injected_activity_bq": 0.0}, "injected_activity_bq"),
        ({"suv": {"liver": -1.0}}, "SUV"),
    ):
        with pytest.raises(ValueError, match=match):
            phantoms.write_pet_ct_study(tmp_path / "e", small_torso, **kwargs)


def phantoms_errors():
    import dosimetry.errors

    return dosimetry.errors


# -- RTSTRUCT ------------------------------------------------------------------------------


def test_rtstruct_contours_lie_on_ct_planes_with_analytic_areas(pet_study) -> None:
    truth, _ = pet_study
    rt = read(truth.rtstruct_path)
    ct_z = {
        truth.ct_sop_instance_uids[i]: float(read(p, False).ImagePositionPatient[2])
        for i, p in enumerate(truth.ct_paths)
    }
    refs = rt.ReferencedFrameOfReferenceSequence[0].RTReferencedStudySequence[0]
    series = refs.RTReferencedSeriesSequence[0]
    assert series.SeriesInstanceUID == truth.ct_series_instance_uid
    assert {c.ReferencedSOPInstanceUID for c in series.ContourImageSequence} == set(ct_z)
    names = {r.ROINumber: r.ROIName for r in rt.StructureSetROISequence}
    assert list(names.values()) == truth.phantom.organ_names
    types = {o.ReferencedROINumber: o.RTROIInterpretedType for o in rt.RTROIObservationsSequence}
    assert types[1] == "EXTERNAL" and {types[n] for n in names if n > 1} <= {"ORGAN", "GTV"}
    n_checked = 0
    for rc in rt.ROIContourSequence:
        name = names[rc.ReferencedROINumber]
        shape = truth.phantom.structure(name).shape
        for c in rc.ContourSequence:
            assert c.ContourGeometricType == "CLOSED_PLANAR"
            pts = np.array(c.ContourData, dtype=float).reshape(-1, 3)
            assert len(pts) == int(c.NumberOfContourPoints)
            ref = c.ContourImageSequence[0].ReferencedSOPInstanceUID
            assert np.all(pts[:, 2] == ct_z[ref])  # on the referenced CT slice plane
            # analytic section: pi a b (1 - (dz/c)^2) for ellipsoids, pi a b for cylinders
            if isinstance(shape, Ellipsoid):
                a, b, cz = shape.semi_axes_mm
                area = math.pi * a * b * (1.0 - ((ct_z[ref] - shape.center_mm[2]) / cz) ** 2)
            elif isinstance(shape, StackedCylinders):  # body: torso, neck, head
                (part,) = [p for p in shape.parts if p.z_min_mm <= ct_z[ref] < p.z_max_mm]
                area = math.pi * part.semi_axes_mm[0] * part.semi_axes_mm[1]
            else:
                area = math.pi * shape.semi_axes_mm[0] * shape.semi_axes_mm[1]
            # coordinates are written to 0.001 mm
            assert polygon_area(pts[:, :2]) == pytest.approx(area, rel=1e-4, abs=0.05)
            n_checked += 1
    assert n_checked > 300
    # the 8 mm lesion appears on the 4 slices within 4 mm of its centre (2 mm slices)
    lesion4 = next(
        rc for rc in rt.ROIContourSequence if names[rc.ReferencedROINumber] == "lesion_4"
    )
    assert len(lesion4.ContourSequence) == 4


# -- determinism and validators ------------------------------------------------------------


def _digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()}


@pytest.mark.slow
def test_seed_determinism(small_torso, tmp_path) -> None:
    a = phantoms.write_pet_ct_study(tmp_path / "a", small_torso, seed=5)
    b = phantoms.write_pet_ct_study(tmp_path / "b", small_torso, seed=5)
    c = phantoms.write_pet_ct_study(tmp_path / "c", small_torso, seed=6)
    assert _digest(a.folder) == _digest(b.folder)
    assert a.study_instance_uid == b.study_instance_uid != c.study_instance_uid
    assert not np.array_equal(a.pet_expected_bqml.array, c.pet_expected_bqml.array)
    assert set(_digest(a.folder)) != set(_digest(c.folder))


def test_dciodvfy_finds_no_errors(pet_study, spect_study) -> None:
    if shutil.which("dciodvfy") is None:
        pytest.skip("dciodvfy (Debian package dicom3tools) is not installed")
    truth, _ = pet_study
    spect, _ = spect_study
    files = [
        truth.ct_paths[5],
        truth.pet_paths[5],
        truth.rtstruct_path,
        spect.time_points[0].nm_paths[0],
        spect.rtstruct_path,
    ]
    for f in files:
        out = subprocess.run(["dciodvfy", str(f)], capture_output=True, text=True, check=False)
        errors = [ln for ln in (out.stdout + out.stderr).splitlines() if ln.startswith("Error")]
        assert errors == [], (f, errors)
