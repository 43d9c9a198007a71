"""One option table for the command line and cohort manifests."""

from __future__ import annotations

import argparse

import pytest

from dosimetry.errors import InputDataError
from dosimetry.workflows.options import (
    OPTIONS,
    add_options,
    cli_message,
    expand_half_lives,
    from_args,
    from_mapping,
    parse_datetime,
    parse_half_life,
    read_kinetics_file,
)


def test_cli_and_manifest_give_the_same_keywords(tmp_path):
    p = argparse.ArgumentParser()
    add_options(p, "plan")
    args = p.parse_args(
        [
            "--activity",
            "7.4 GBq",
            "--half-life",
            "kidney_left=40h",
            "--half-life",
            "lesion*=70 h",
            "--pet",
            "1",
            "--body-only",
            "--accept",
            "uptake_time",
        ]
    )
    a = from_args(args, "plan")
    m = from_mapping(
        {
            "activity": "7.4 GBq",
            "half_life": "kidney_left=40h;lesion*=70 h",
            "pet": "1",
            "body_only": "true",
            "accept": "uptake_time",
        },
        "plan",
    )
    assert a == m
    assert a["effective_half_life_s"] == {"kidney_left": 40 * 3600.0, "lesion*": 70 * 3600.0}
    assert a["pet"] == 1 and a["body_only"] is True and a["accept"] == ["uptake_time"]
    assert a["therapy"] == "Lu-177-PSMA-617"


def test_manifest_errors_name_the_columns():
    with pytest.raises(InputDataError, match="--activity is required"):
        from_mapping({"therapy": "Lu-177-PSMA-617"}, "plan")
    with pytest.raises(InputDataError, match="not options of plan"):
        from_mapping({"activity": "7.4 GBq", "colour": "red"}, "plan")
    with pytest.raises(InputDataError, match="yes/no"):
        from_mapping({"activity": "7.4 GBq", "body_only": "perhaps"}, "plan")


def test_half_life_parsing_and_patterns():
    assert parse_half_life("kidney=40h") == ("kidney", 40 * 3600.0)
    assert parse_half_life("lesion*=2.5 d") == ("lesion*", 2.5 * 86400.0)
    for bad in ("kidney", "kidney=40", "=40h", "kidney=-3h"):
        with pytest.raises(InputDataError):
            parse_half_life(bad)
    vois = ["lesion_1", "lesion_2", "kidney_left", "not_a_lesion"]
    got = expand_half_lives({"lesion*": 1.0, "lesion_2": 2.0}, vois)
    assert got == {"lesion_1": 1.0, "lesion_2": 2.0}  # the exact name wins; no fuzzy match
    with pytest.raises(InputDataError, match="matches no VOI"):
        expand_half_lives({"liver": 1.0}, vois)


def test_kinetics_file_and_datetime(tmp_path):
    f = tmp_path / "k.csv"
    f.write_text("voi,effective_half_life_h,source\nkidney_left,40,my fit\n")
    assert read_kinetics_file(f) == {"kidney_left": 40 * 3600.0}
    bad = tmp_path / "b.csv"
    bad.write_text("voi,t\nx,1\n")
    with pytest.raises(InputDataError, match="effective_half_life_h"):
        read_kinetics_file(bad)
    assert parse_datetime("2026-12-01 10:00").hour == 10
    with pytest.raises(InputDataError, match="YYYY-MM-DD"):
        parse_datetime("01/12/2026")


def test_errors_name_the_cli_option():
    msg = "give effective_half_life_s=... or injected_activity_bq=150e6, or overwrite=True"
    out = cli_message(msg)
    assert "--half-life" in out and "--injected-activity" in out and "--overwrite" in out
    assert "effective_half_life_s" not in out


def test_every_option_has_help_and_a_workflow():
    for o in OPTIONS:
        assert o.help and o.workflows and o.column == o.name.replace("-", "_")
