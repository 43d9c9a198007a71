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
