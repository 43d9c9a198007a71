"""The README's Python example and commands stay true."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


@pytest.mark.slow
def test_readme_python_example_runs(tmp_path, capsys):
    block = re.search(r"```python\n(.*?)```", README, re.S)
    assert block, "README has no python example"
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        exec(compile(block.group(1), "README.md", "exec"), {})
    finally:
        os.chdir(cwd)
    out = capsys.readouterr().out
    assert "kidney_left" in out and " Gy" in out
    assert (tmp_path / "plan-output" / "dose.dcm").is_file()
    # the Python example and the CLI give the same numbers for the same patient
    import csv

    from dosimetry.cli import main

    assert (
        main(
            [
                "plan",
                str(tmp_path / "patient"),
                "--out",
                str(tmp_path / "cli"),
                "--activity",
                "7.4 GBq",
            ]
        )
        == 0
    )
    tables = []
    for folder in ("plan-output", "cli"):
        with (tmp_path / folder / "dose_table.csv").open() as f:
            tables.append({r["name"]: float(r["mean_gy"]) for r in csv.DictReader(f)})
    assert tables[0].keys() == tables[1].keys()
    for name, value in tables[0].items():
        assert tables[1][name] == pytest.approx(value, rel=1e-9), name


def test_readme_commands_match_the_project():
    assert 'pip install -e ".[test]"' in README
    assert "\npytest " in README
    assert "dosimetry demo --out demo-output" in README
    ci = (ROOT / ".ci" / "run").read_text()
    assert 'pip install -q -e ".[test]"' in ci and "\npytest" in ci


def test_every_readme_command_line_parses():
    """Each `dosimetry ...` line of the README is accepted by the command's parser (options
    and choices exist as written; nothing is run)."""
    import shlex

    from dosimetry.cli import build_parser

    parser = build_parser()
    lines = [
        line.split("  #")[0].strip()
        for line in README.splitlines()
        if line.startswith("dosimetry ") and "--help" not in line
    ]
    assert len(lines) >= 10
    for line in lines:
        args = shlex.split(line, comments=True)[1:]
        try:
            parser.parse_args(args)
        except SystemExit as exc:  # argparse exits on an unknown option or a bad choice
            raise AssertionError(f"README line does not parse: {line}") from exc
