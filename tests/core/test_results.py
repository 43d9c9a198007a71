"""The result records: the dose table's CSV schema, per-activity values, immutability."""

from __future__ import annotations

import csv
import dataclasses
import io
import math

import numpy as np
import pytest

from dosimetry.results import (
    TABLE_COLUMNS,
    Assumption,
    DoseStats,
    DoseTable,
    VoiDose,
    WorkflowResult,
)
from dosimetry.volume import Volume


def _stats(mean, unit="Gy"):
    return DoseStats(unit, mean, 0.0, 2 * mean, 1.5 * mean, mean, 0.8 * mean, 0.2 * mean)


def _table():
    rows = (
        VoiDose(
            "kidney_left", "kidneys", "organ", 150.0, 156.0, _stats(4.0), tia_bq_s=1e12, mean_u=0.4
        ),
        VoiDose(
            '=HYPERLINK("x")', None, "other", 1.0, 1.0, _stats(1.0), dose_rbe=_stats(5.0, "Gy_RBE")
        ),
    )
    return DoseTable(rows, administered_activity_bq=7.4e9, convention="test")


def test_csv_has_one_schema_and_neutralises_formulas():
    text = _table().to_csv()
    reader = csv.DictReader(io.StringIO(text))
    assert tuple(reader.fieldnames) == TABLE_COLUMNS
    rows = list(reader)
    assert rows[0]["mean_gy"] == "4" and float(rows[0]["mean_gy_per_gbq"]) == pytest.approx(4 / 7.4)
    assert float(rows[0]["mean_gy_ci95_low"]) == pytest.approx(4 - 1.96 * 0.4)
    assert rows[0]["mean_gy_rbe"] == ""  # not an alpha emitter: empty, same column set
    assert rows[1]["name"].startswith("'=")  # formula injection neutralised
    assert float(rows[1]["mean_gy_rbe_per_gbq"]) == pytest.approx(5 / 7.4)


def test_per_activity_units_and_missing_activity():
    t = _table()
    assert t.per_activity(4.0, "GBq") == pytest.approx(4 / 7.4)
    assert t.per_activity(4.0, "MBq") == pytest.approx(4 / 7400)
    assert math.isnan(DoseTable(t.rows).per_activity(4.0))
    assert t.row("kidney_left").organ == "kidneys"
    with pytest.raises(KeyError, match="kidney_left"):
        t.row("nope")


def test_dose_stats_from_metrics_row():
    row = {
        "unit": "Gy",
        "mean_gy": 1.0,
        "min_gy": 0.0,
        "max_gy": 3.0,
        "d2_gy": 2.5,
        "d50_gy": 1.0,
        "d70_gy": 0.8,
        "d98_gy": 0.1,
        "v2gy": 0.25,
        "v20gy": 0.0,
    }
    s = DoseStats.from_row(row)
    assert s.v == {2.0: 0.25, 20.0: 0.0} and s.d70 == 0.8


def test_result_is_frozen_and_replace_copies():
    vol = Volume.from_spacing(np.zeros((2, 2, 2)), (1.0, 1.0, 1.0), unit="Gy")
    r = WorkflowResult(
        "pet_plan", "t", "Lu-177-PSMA-617", "Lu-177", 7.4e9, "led", (), {}, None, vol, _table()
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.method = "vsv"  # type: ignore[misc]
    r2 = r.replace(assumptions=(Assumption.of("x", 1.23456, "user"),))
    assert r2.assumptions[0].value == "1.235" and r.assumptions == ()
    with pytest.raises(TypeError, match="no field"):
        r.replace(nope=1)
