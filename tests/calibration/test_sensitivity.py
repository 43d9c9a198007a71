"""Camera sensitivity from a uniform-cylinder acquisition written as DICOM."""

from __future__ import annotations

import math
from datetime import datetime

import numpy as np
import pytest

import dosimetry as ds
from dosimetry.calibration import parse_calibration, sensitivity_from_acquisition
from dosimetry.errors import InputDataError, UnitError
from phantoms import write_calibration_cylinder

ASSAY = datetime(2024, 4, 1, 9, 0, 0)
SCAN = datetime(2024, 4, 2, 9, 0, 0)  # one day later: 10 % decay, so it must be corrected


@pytest.fixture(scope="module")
def cylinder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cylinder")
    truth = write_calibration_cylinder(
        folder, activity_bq=250e6, assay_datetime=ASSAY, acquisition_datetime=SCAN, seed=4
    )
    return truth, ds.load_study(folder).spect()


def test_cylinder_gives_the_true_sensitivity(cylinder, tmp_path):
    truth, spect = cylinder
    rec = sensitivity_from_acquisition(
        spect.volume,
        activity=spect.injected_activity_bq,  # RadionuclideTotalDose (MBq in NM files)
        activity_reference_time=spect.injection_time,
        acquisition_start=spect.acquisition_time,
        acquisition_duration_s=spect.acquisition_duration_s,
        nuclide=spect.nuclide,
        activity_relative_sd=0.02,
        source_geometry="uniform cylinder",
    )
    # Poisson noise of 2.4e6 counts: 0.07 %; the brief asks for 2 %
    assert rec.cps_per_mbq == pytest.approx(truth.cps_per_mbq, rel=0.005)
    assert rec.nuclide == "Lu-177" and rec.date.startswith("2024-04-02T09:00")
    assert rec.details["activity_at_acquisition_start_bq"] == pytest.approx(
        truth.activity_at_acquisition_bq, rel=1e-9
    )
    # uncertainty: counting statistics and the 2 % assay in quadrature
    rel = math.hypot(1 / math.sqrt(rec.details["counts"]), 0.02)
    assert rec.cps_per_mbq_sd == pytest.approx(rec.cps_per_mbq * rel, rel=1e-12)
    # the record feeds the reader: counts -> Bq recovers the activity in the field of view
    back = parse_calibration(rec.save(tmp_path / "cal.json"))
    act = spect.activity_at_acquisition(calibration_cps_per_mbq=back.cps_per_mbq)
    total = float(act.array.sum()) * act.voxel_volume_ml
    assert total == pytest.approx(truth.activity_at_acquisition_bq, rel=0.005)


def test_without_decay_correction_the_factor_is_wrong(cylinder):
    """Guard that the test above can fail: the assay is a day old (10 % decay)."""
    truth, spect = cylinder
    rec = sensitivity_from_acquisition(
        spect.volume,
        activity=truth.activity_bq,
        activity_reference_time=SCAN,  # pretends the assay was at the scan start
        acquisition_start=SCAN,
        acquisition_duration_s=spect.acquisition_duration_s,
        nuclide="Lu-177",
    )
    assert rec.cps_per_mbq / truth.cps_per_mbq < 0.92


def test_count_rate_voi_and_errors(cylinder):
    truth, spect = cylinder
    counts = spect.volume
    dur = spect.acquisition_duration_s
    kw = dict(
        activity=f"{truth.activity_bq / 1e6} MBq",
        activity_reference_time=ASSAY,
        acquisition_start=SCAN,
        acquisition_duration_s=dur,
        nuclide="Lu-177",
    )
    rate = counts.with_array(counts.array / dur, unit="counts/s")
    a = sensitivity_from_acquisition(counts, **kw)
    b = sensitivity_from_acquisition(rate, **kw)
    assert b.cps_per_mbq == pytest.approx(a.cps_per_mbq, rel=1e-12)
    assert "not stated" in a.method
    # a VOI on the cylinder itself misses the counts blurred out of it (11 mm FWHM)
    tight = sensitivity_from_acquisition(
        counts, voi=truth.mask.with_array(truth.mask.array > 0.5), **kw
    )
    assert tight.cps_per_mbq < 0.99 * a.cps_per_mbq
    with pytest.raises(UnitError, match="counts"):
        sensitivity_from_acquisition(counts.with_array(counts.array, unit="Bq/mL"), **kw)
    with pytest.raises(InputDataError, match="empty"):
        sensitivity_from_acquisition(
            counts, voi=counts.with_array(np.zeros(counts.shape), unit="1"), **kw
        )
