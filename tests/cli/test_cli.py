"""The command line: outputs of demo/plan, exit statuses, messages that name the option."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from dosimetry.cli import EXIT_INTERNAL, EXIT_OK, EXIT_USER, main


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "out"
    rc = main(["demo", "--out", str(out), "--method", "led"])
    return rc, out


def _errors(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("dosimetry: ")]


def test_demo_writes_a_complete_set(demo):
    rc, out = demo
    assert rc == EXIT_OK
    names = {p.name for p in out.iterdir()}
    assert {
        "dose.dcm",
        "dose.nii.gz",
        "dose.json",
        "tia.nii.gz",
        "bed.dcm",
        "bed.nii.gz",
        "dose_table.csv",
        "report.md",
        "report.html",
        "manifest.json",
        "phantom_study",
        "figures",
    } <= names
    m = json.loads((out / "manifest.json").read_text())
    assert m["status"] == "complete" and m["result"]["kind"] == "pet_plan"
    assert "phantom_study" in m["folders"]
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") >= 3
    assert "Sensitivity to the assumed half-lives" in html and "kidney_left" in html
    # self-contained: no resource is fetched (citation text may contain addresses)
    for pattern in ('src="http', "src='http", 'href="http', "url(http", "<script", "<link"):
        assert pattern not in html, pattern


def test_second_demo_into_the_same_folder_is_refused(demo, capsys):
    rc, out = demo
    assert main(["demo", "--out", str(out)]) == EXIT_USER
    err = _errors(capsys.readouterr().err)
    assert len(err) == 1 and "--overwrite" in err[0]


def test_overwrite_never_deletes_a_user_file(demo, capsys, tmp_path):
    _, out = demo
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    (copy / "my_notes.txt").write_text("mine")
    assert main(["demo", "--out", str(copy), "--overwrite"]) == EXIT_USER
    assert "did not write" in capsys.readouterr().err
    assert (copy / "my_notes.txt").read_text() == "mine"
    # a user's file inside a sub-folder of the set, and a file of the set edited since
    for name, change in (
        ("phantom_study/my_notes.txt", None),
        ("report.md", "edited by hand"),
    ):
        again = tmp_path / f"copy_{name.replace('/', '_')}"
        shutil.copytree(out, again)
        (again / name).write_text(change or "mine")
        assert main(["demo", "--out", str(again), "--overwrite"]) == EXIT_USER
        err = capsys.readouterr().err
        assert "did not write" in err and name in err
        assert (again / name).read_text() == (change or "mine")
    # the untouched set is replaced
    clean = tmp_path / "clean"
    shutil.copytree(out, clean)
    assert main(["demo", "--out", str(clean), "--overwrite"]) == 0


def test_plan_errors_exit_2_with_one_line_and_no_output(demo, capsys, tmp_path):
    _, out = demo
    study = out / "phantom_study"
    o = tmp_path / "o"
    assert (
        main(["plan", str(study), "--out", str(o), "--activity", "1e30 GBq", "--method", "led"])
        == EXIT_USER
    )
    err = _errors(capsys.readouterr().err)
    assert len(err) == 1 and "--accept administered_activity" in err[0] and not o.exists()
    assert (
        main(
            [
                "plan",
                str(study),
                "--out",
                str(o),
                "--activity",
                "7.4 GBq",
                "--therapy",
                "Xx-999-FOO",
            ]
        )
        == EXIT_USER
    )
    assert "nuclide" in _errors(capsys.readouterr().err)[0]
    assert (
        main(["plan", str(study), "--out", str(study / "o"), "--activity", "7.4 GBq"]) == EXIT_USER
    )
    assert "inside the input folder" in capsys.readouterr().err and not (study / "o").exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["plan", str(empty), "--out", str(o), "--activity", "7.4 GBq"]) == EXIT_USER
    assert "empty" in _errors(capsys.readouterr().err)[0]
    assert main(["plan", str(study), "--out", str(o)]) == EXIT_USER  # no default activity
    assert "--activity is required" in _errors(capsys.readouterr().err)[0]


def test_internal_error_is_one_line_exit_1(monkeypatch, capsys, tmp_path):
    from dosimetry.workflows import pet_plan

    def boom(*a, **k):
        raise RuntimeError("unexpected")

    monkeypatch.setattr(pet_plan, "run", boom)
    study = tmp_path / "s"
    study.mkdir()
    monkeypatch.setattr("dosimetry.io.load_study", lambda folder: object())
    rc = main(["plan", str(study), "--out", str(tmp_path / "o"), "--activity", "7.4 GBq"])
    assert rc == EXIT_INTERNAL
    err = _errors(capsys.readouterr().err)
    assert len(err) == 1 and "run with -v for details" in err[0] and "Traceback" not in err[0]


def test_help_lists_agents_units_and_examples(capsys):
    with pytest.raises(SystemExit):
        main(["plan", "--help"])
    text = capsys.readouterr().out
    for word in (
        "Lu-177-PSMA-617",
        "Ac-225-PSMA-617",
        "Lu-177-DOTATATE",
        "GBq",
        "--half-life",
        "examples:",
        "--body-only",
        "--masks",
        "--pet",
    ):
        assert word in text, word


def test_console_script_runs():
    r = subprocess.run(
        [sys.executable, "-m", "dosimetry.cli", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert r.returncode == 0 and "demo" in r.stdout and "spect" in r.stdout


def test_warmup_compiles_the_kernels(capsys):
    assert main(["warmup"]) == EXIT_OK
    assert "Numba kernels ready" in capsys.readouterr().out


def test_plan_with_limits_prints_and_writes_the_prescription(demo, capsys, tmp_path):
    """`plan --limit`: the terminal shows the activity, what limits it and the decision-support
    line; prescription.json holds the same; the absorbed-dose limit's activity equals the
    closed form (L / (N d)) from the kidneys' doses in dose_table.csv (mass-weighted)."""
    import csv

    _, out = demo
    o = tmp_path / "rx"
    argv = ["plan", str(out / "phantom_study"), "--out", str(o), "--activity", "7.4 GBq"]
    argv += ["--method", "led", "--limit", "kidneys=23Gy", "--limit", "kidneys=BED:40Gy"]
    assert main([*argv, "--cycles", "2"]) == EXIT_OK
    text = capsys.readouterr().out
    assert "PRESCRIPTION (decision support for the treating physician" in text
    assert "limited by kidneys" in text and "prescription.json" in text
    rx = json.loads((o / "prescription.json").read_text())
    assert f"at most {rx['max_activity_bq'] / 1e9:.3g} GBq" in text
    with (o / "dose_table.csv").open() as f:
        rows = {r["name"]: r for r in csv.DictReader(f)}
    kid = [rows["kidney_left"], rows["kidney_right"]]
    mass = sum(float(r["mass_g"]) for r in kid)
    d_per_bq = sum(float(r["mass_g"]) * float(r["mean_gy"]) for r in kid) / mass / 7.4e9
    dose_lim = next(x for x in rx["limits"] if x["quantity"] == "absorbed_dose")
    assert dose_lim["max_activity_bq"] == pytest.approx(23.0 / (2 * d_per_bq), rel=2e-3)
    assert rx["max_activity_bq"] == pytest.approx(min(x["max_activity_bq"] for x in rx["limits"]))


@pytest.mark.parametrize(
    "command", ["demo", "plan", "spect", "cohort", "diagnostic-dose", "dispense", "warmup"]
)
def test_every_command_prints_its_help(command, capsys):
    """argparse %-formats help texts: a literal '%' (spect's '40%' lesion rule) broke
    `dosimetry spect --help` before."""
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    assert f"usage: dosimetry {command}" in capsys.readouterr().out


def test_plan_anonymize_leaves_identifiers_out_of_the_reports(demo, capsys, tmp_path):
    """--anonymize: the phantom's name, ID and birth date are in a normal report and in
    neither report (HTML, Markdown) nor the summary of an anonymised one."""
    _, out = demo
    ident = ("PHANTOM^TORSO", "PHANTOM-0001", "19560101")
    normal = (out / "report.html").read_text()
    assert all(x in normal for x in ident)
    o = tmp_path / "anon"
    argv = ["plan", str(out / "phantom_study"), "--out", str(o), "--activity", "7.4 GBq"]
    assert main([*argv, "--method", "led", "--anonymize"]) == EXIT_OK
    printed = capsys.readouterr().out
    for name in ("report.html", "report.md"):
        text = (o / name).read_text()
        assert not any(x in text for x in ident), name
    assert not any(x in printed for x in ident)
