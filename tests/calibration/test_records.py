"""Calibration records: JSON round trips, versions, and parse_calibration."""

from __future__ import annotations

import json
import math

import pytest

from dosimetry.calibration import (
    SCHEMA_VERSION,
    CalibrationRecord,
    RecoveryCurve,
    apply_recovery,
    parse_calibration,
)
from dosimetry.errors import InputDataError, OutputError, UnitError


def _record() -> CalibrationRecord:
    return CalibrationRecord(
        cps_per_mbq=9.61,
        cps_per_mbq_sd=0.19,
        nuclide="Lu-177",
        date="2024-04-02T09:00:00",
        camera="SPECT/CT 1",
        collimator="MELP",
        energy_window="208 keV 20 %",
        source_geometry="uniform cylinder 6283 mL",
        method="test",
        details={"counts": 3.1e6},
    )


def test_record_round_trip(tmp_path):
    rec = _record()
    path = rec.save(tmp_path / "cal.json")
    data = json.loads(path.read_text())
    assert data["schema"] == "dosimetry.calibration" and data["version"] == SCHEMA_VERSION
    assert CalibrationRecord.load(path) == rec
    with pytest.raises(OutputError, match="overwrite"):
        rec.save(path)
    rec.save(path, overwrite=True)
    assert parse_calibration(str(path)) == rec  # by path text
    assert parse_calibration(path).cps_per_mbq == 9.61
    assert "9.61 +/- 0.19 cps/MBq" in rec.summary()


def test_record_refuses_newer_versions_and_other_kinds(tmp_path):
    data = _record().to_dict()
    data["version"] = SCHEMA_VERSION + 1
    p = tmp_path / "new.json"
    p.write_text(json.dumps(data))
    with pytest.raises(InputDataError, match="version"):
        CalibrationRecord.load(p)
    curve = RecoveryCurve("table", {}, {}, (1.0, 10.0), (0.5, 0.8))
    q = curve.save(tmp_path / "rc.json")
    with pytest.raises(InputDataError, match="recovery-curve"):
        CalibrationRecord.load(q)
    (tmp_path / "x.json").write_text("{}")
    with pytest.raises(InputDataError, match="not a dosimetry calibration record"):
        CalibrationRecord.load(tmp_path / "x.json")
    with pytest.raises(InputDataError, match="does not exist"):
        parse_calibration(str(tmp_path / "missing.json"))


def test_parse_calibration_text():
    assert parse_calibration("9.1 cps/MBq").cps_per_mbq == 9.1
    assert parse_calibration("0.0091 cps/kBq").cps_per_mbq == pytest.approx(9.1, rel=1e-12)
    assert parse_calibration("9.1e-6 counts/s/Bq").cps_per_mbq == pytest.approx(9.1, rel=1e-12)
    assert parse_calibration("9100 cts/s per GBq").cps_per_mbq == pytest.approx(9.1, rel=1e-12)
    rec = parse_calibration("9.1 +/- 0.3 cps/MBq")
    assert rec.cps_per_mbq_sd == pytest.approx(0.3, rel=1e-12)
    assert math.isnan(parse_calibration("9.1 cps/MBq").cps_per_mbq_sd)
    assert "stated by the user" in rec.method
    with pytest.raises(UnitError, match="no unit"):
        parse_calibration(9.1)  # type: ignore[arg-type]
    with pytest.raises(UnitError, match="cps/MBq"):
        parse_calibration("9.1")
    with pytest.raises(UnitError, match="cps/MBq"):
        parse_calibration("9.1 Bq/cps")
    with pytest.raises(InputDataError, match="positive"):
        parse_calibration("0 cps/MBq")


def test_recovery_curve_round_trip_and_table(tmp_path):
    curve = RecoveryCurve(
        "gaussian-sphere",
        {"fwhm_mm": 11.5, "rc_max": 1.0},
        {"fwhm_mm": 0.2, "rc_max": math.nan},
        (0.52, 26.5),
        (0.15, 0.68),
        nuclide="Lu-177",
    )
    back = RecoveryCurve.load(curve.save(tmp_path / "rc.json"))
    assert back.parameters == curve.parameters and back.rc == curve.rc
    assert math.isnan(back.parameter_sd["rc_max"])
    assert float(back(5.0)) == pytest.approx(float(curve(5.0)), rel=1e-15)
    table = RecoveryCurve("table", {}, {}, (1.0, 100.0), (0.4, 0.9))
    # linear in log(volume): 10 mL lies half way
    assert float(table(10.0)) == pytest.approx(0.65, rel=1e-12)
    assert float(table(1000.0)) == 0.9  # clamped, no extrapolation


def test_apply_recovery(caplog):
    table = RecoveryCurve("table", {}, {}, (1.0, 100.0), (0.4, 0.9), source_geometry="spheres")
    r = apply_recovery(80.0, 10.0, table)
    assert r.rc == pytest.approx(0.65, rel=1e-12)
    assert r.corrected_activity_bq == pytest.approx(80.0 / 0.65, rel=1e-12)
    assert not r.extrapolated and "2 spheres" in r.source
    # with a background B: C = B + (A/V - B) / RC
    rb = apply_recovery(80.0, 10.0, table, background_bq_per_ml=2.0)
    assert rb.corrected_activity_bq == pytest.approx((2.0 + (8.0 - 2.0) / 0.65) * 10.0, rel=1e-12)
    r2 = apply_recovery(80.0, 0.2, table)
    assert r2.extrapolated and "outside the measured spheres" in caplog.text
    with pytest.raises(InputDataError, match="voi_volume_ml"):
        apply_recovery(80.0, 0.0, table)
