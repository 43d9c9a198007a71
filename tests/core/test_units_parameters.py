"""Unit parsing and the cited parameter table."""

from __future__ import annotations

import pytest

import dosimetry as ds
from dosimetry import UnitError, units


def test_activity_conversions_follow_the_curie_definition():
    # 1 Ci = 3.7e10 Bq exactly (definition)
    assert units.parse_activity("1 Ci") == 3.7e10
    assert units.parse_activity("7.4 GBq") == pytest.approx(7.4e9, rel=1e-15)
    assert units.activity_to_bq(200, "mCi") == pytest.approx(7.4e9, rel=1e-15)
    assert units.bq_to_activity(7.4e9, "GBq") == pytest.approx(7.4, rel=1e-15)


def test_time_units():
    assert units.parse_duration("2 d") == 172800.0
    assert units.time_to_s(90, "min") == 5400.0
    assert units.s_to_time(7200, "h") == 2.0


@pytest.mark.parametrize("bad", ["7.4", "7.4 furlongs", "GBq", ""])
def test_bad_quantities_list_valid_units(bad):
    with pytest.raises(UnitError, match="GBq"):
        units.parse_activity(bad)


def test_bare_number_needs_a_unit():
    with pytest.raises(UnitError, match="has no unit"):
        units.parse_activity(7.4)  # type: ignore[arg-type]


def test_every_parameter_has_unit_and_citation():
    rows = ds.parameters.table()
    assert rows, "parameter table is empty"
    for p in rows:
        assert p.unit, p.name
        assert len(p.citation) > 10, p.name


def test_override_is_scoped():
    base = ds.parameters.get("rbe_alpha")
    with ds.parameters.override(rbe_alpha=3.5):
        assert ds.parameters.get("rbe_alpha") == 3.5
        assert ds.parameters.describe("rbe_alpha").citation == "user override"
    assert ds.parameters.get("rbe_alpha") == base
    assert ds.parameters.resolve(2.0, "rbe_alpha") == 2.0
    with pytest.raises(ds.DosimetryError, match="known parameters"):
        ds.parameters.get("no_such_parameter")


# --------------------------------------------------------------- case-sensitive prefixes
@pytest.mark.parametrize(
    ("text", "bq"),
    [
        ("8 mBq", 8e-3),  # millibecquerel, not megabecquerel (issue #15)
        ("8 MBq", 8e6),
        ("150 kBq", 1.5e5),
        ("7.4 GBq", 7.4e9),
        ("3 Bq", 3.0),
        ("1 TBq", 1e12),
        ("200 mCi", 7.4e9),
        ("5 uCi", 1.85e5),
        ("5 \u00b5Ci", 1.85e5),  # micro sign
        ("5 \u03bcCi", 1.85e5),  # Greek small mu
        ("1 Ci", 3.7e10),
        ("1e3MBq", 1e9),
        (".5 GBq", 5e8),
    ],
)
def test_activity_units_spelled_exactly(text, bq):
    # 1 Ci = 3.7e10 Bq exactly; SI prefixes k, M, G, T, m, u are exact powers of ten
    assert units.parse_activity(text) == pytest.approx(bq, rel=1e-15)


@pytest.mark.parametrize(
    "text", ["200 MCi", "7.4 gbq", "7.4 GBQ", "8 mbq", "8 MBQ", "1 bq", "2 ci"]
)
def test_activity_case_slips_refused_with_valid_spellings(text):
    with pytest.raises(UnitError) as e:
        units.parse_activity(text)
    msg = str(e.value)
    assert text in msg  # the argument as given
    assert "case-sensitive" in msg or "spelled exactly" in msg
    for valid in ("GBq", "MBq", "kBq", "mBq", "mCi", "uCi", "Ci"):
        assert valid in msg


def test_ambiguous_mbq_names_both_readings():
    with pytest.raises(UnitError, match="mBq or MBq"):
        units.parse_activity("8 mbq")
    with pytest.raises(UnitError, match="mCi"):
        units.activity_to_bq(200.0, "MCi")


def test_time_units_stay_case_insensitive():
    assert units.parse_duration("2 H") == 7200.0
    assert units.time_to_s(1.0, "D") == 86400.0


@pytest.mark.parametrize(
    ("bq", "text"),
    [
        (7.4e9, "7.40 GBq"),
        (8e6, "8.00 MBq"),
        (1.5e5, "150 kBq"),
        (12.34e6, "12.3 MBq"),
        (999.6e3, "1.00 MBq"),  # rounding moves it to the next prefix
        (999.4e3, "999 kBq"),
        (1.0, "1.00 Bq"),
        (0.5, "500 mBq"),
        (2.5e12, "2.50 TBq"),
        (-7.4e9, "-7.40 GBq"),
        (0.0, "0 Bq"),
    ],
)
def test_format_activity_prefix_keeps_number_in_1_to_1000(bq, text):
    assert units.format_activity(bq) == text


def test_format_activity_round_trips_through_parse():
    for bq in (7.4e9, 3.7e9, 1.85e5, 6.0e8, 250e6):
        back = units.parse_activity(units.format_activity(bq))
        assert back == pytest.approx(bq, rel=5e-3)  # three significant digits
    assert units.bq_to_activity(7.4e9, "GBq") == pytest.approx(7.4, rel=1e-15)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_format_activity_refuses_non_finite(bad):
    with pytest.raises(UnitError, match="finite"):
        units.format_activity(bad)
