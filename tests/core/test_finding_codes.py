"""Every finding code the package emits is in ``checks.FINDING_CODES`` (which ``--accept``
is checked against), and an unknown code is refused with its close matches."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import dosimetry as ds
from dosimetry.checks import FINDING_CODES, Policy
from dosimetry.cli import EXIT_USER, main

PACKAGE = Path(ds.__file__).parent


def _emitted_codes() -> set[str]:
    codes = set()
    for path in PACKAGE.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        for m in re.finditer(r"\b(?:Finding|_range_finding)\(\s*\"([a-z_0-9]+)\"", text):
            codes.add(m.group(1))
        for m in re.finditer(r"\bcode=\"([a-z_0-9]+)\"", text):
            codes.add(m.group(1))
    return codes


def test_every_emitted_code_is_registered():
    emitted = _emitted_codes()
    assert len(emitted) >= 15  # the scan finds the checks
    assert emitted <= set(FINDING_CODES), sorted(emitted - set(FINDING_CODES))


def test_every_registered_code_is_documented():
    doc = (PACKAGE.parent / "docs" / "reliability.md").read_text(encoding="utf-8")
    missing = [c for c in FINDING_CODES if f"`{c}`" not in doc]
    assert not missing, missing


def test_unknown_accept_code_is_refused_with_a_suggestion():
    with pytest.raises(ds.DosimetryError, match=r"uptake_tim.*did you mean uptake_time"):
        Policy.of(accept=["uptake_tim"])
    with pytest.raises(ds.DosimetryError, match="unknown check code"):
        Policy.of({"no_such_check": "ignore"})
    assert Policy.of(accept="uptake_time").per_code == {"uptake_time": "record"}


def test_cli_refuses_an_unknown_accept_code_before_reading(tmp_path, capsys):
    rc = main(["demo", "--out", str(tmp_path / "o"), "--accept", "fraction_in_view"])
    assert rc == EXIT_USER
    err = capsys.readouterr().err
    assert "fraction_in_view" in err and "fraction_in_fov" in err
    assert not (tmp_path / "o").exists()
