"""Cohort manifests (CSV and YAML), row checks, cluster sizing and the command's exit
statuses for unusable manifests: no Dask cluster is started here."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from dosimetry.cli import EXIT_PARTIAL, EXIT_USER, main
from dosimetry.errors import InputDataError
from dosimetry.results import TABLE_COLUMNS
from dosimetry.workflows import cohort


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def _errors(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("dosimetry: ")]


def test_csv_rows_relative_paths_flags_and_repeated_options(tmp_path):
    (tmp_path / "pet").mkdir()
    (tmp_path / "masks").mkdir()
    m = _write(
        tmp_path / "cohort.csv",
        "id,workflow,study,activity,body_only,half_life,masks,calibration\n"
        "p01,plan,pet,7.4 GBq,true,kidney_left=40h;lesion*=70h,masks,\n"
        "\n"
        "#p02,plan,pet,7.4 GBq,,,,\n"
        "s01,SPECT,tp1;tp2,,,,,9.1 cps/MBq\n"
        "s02,spect,/abs/tp1,,,,,camera.json\n",
    )
    rows = cohort.read_cohort_manifest(m)
    assert [r.id for r in rows] == ["p01", "s01", "s02"]  # blank and '#' rows skipped
    assert [r.row for r in rows] == [1, 2, 3]
    assert all(r.error is None for r in rows), [r.error for r in rows]
    p01, s01, s02 = rows
    assert p01.study == (str((tmp_path / "pet").resolve()),)
    assert p01.options["masks"] == str((tmp_path / "masks").resolve())
    assert p01.options["body_only"] == "true"
    assert s01.workflow == "spect"
    assert s01.study == (str((tmp_path / "tp1").resolve()), str((tmp_path / "tp2").resolve()))
    assert s01.options["calibration"] == "9.1 cps/MBq"  # a factor stays text
    assert s02.options["calibration"] == str((tmp_path / "camera.json").resolve())
    assert s02.study == ("/abs/tp1",)
    # the same conversion as the command line
    kw = cohort._workflow_kwargs("plan", p01.options, "test")
    assert kw["body_only"] is True and kw["activity"] == "7.4 GBq"
    assert kw["effective_half_life_s"] == {"kidney_left": 40 * 3600.0, "lesion*": 70 * 3600.0}


def test_yaml_list_and_mapping_with_defaults(tmp_path):
    m = _write(
        tmp_path / "cohort.yaml",
        "defaults:\n"
        "  method: led\n"
        "  calibration: 9.1 cps/MBq\n"
        "studies:\n"
        "  - {id: a, workflow: spect, study: [tp1, tp2], activity: 7.4 GBq}\n"
        "  - {id: b, workflow: spect, study: tp3, method: vsv, accept_implausible: true}\n",
    )
    a, b = cohort.read_cohort_manifest(m)
    assert a.error is None and b.error is None, (a.error, b.error)
    assert len(a.study) == 2 and a.options["method"] == "led"
    assert a.options["activity"] == "7.4 GBq"  # spect --activity, beside the shared table
    assert b.options["method"] == "vsv" and b.options["accept_implausible"] is True
    kw = cohort._workflow_kwargs("spect", a.options, "test")
    assert kw["activity"] == "7.4 GBq" and kw["calibration"] == "9.1 cps/MBq"
    plain = _write(tmp_path / "list.yml", "- {id: c, workflow: plan, study: x, activity: 1 GBq}\n")
    (c,) = cohort.read_cohort_manifest(plain)
    assert c.error is None and c.options["activity"] == "1 GBq"


def test_row_errors_name_the_row_the_problem_and_the_fix(tmp_path):
    m = _write(
        tmp_path / "cohort.csv",
        "id,workflow,study,activity,half_life,colour\n"
        "p01,plan,pet,7.4 GBq,,\n"
        "p01,plan,pet,3.7 GBq,,\n"
        "p02,pet,pet,7.4 GBq,,\n"
        "../p03,plan,pet,7.4 GBq,,\n"
        "p04,plan,,7.4 GBq,,\n"
        "p05,plan,pet,7.4 GBq,kidney_left:40h,\n"
        "p06,plan,pet,,,\n"
        "p07,plan,pet,7.4 GBq,,blue\n"
        "p08,plan,a;b,7.4 GBq,,\n",
    )
    rows = cohort.read_cohort_manifest(m)
    errors = {r.row: r.error for r in rows}
    assert errors[1] is None
    assert "id 'p01' is repeated (first on row 1)" in errors[2]
    assert "workflow 'pet' is unknown; valid: plan, spect" in errors[3]
    assert "is not a usable folder name" in errors[4]
    assert "study column is empty" in errors[5]
    assert "row 6" in errors[6] and "VOI=DURATION" in errors[6]
    assert "--activity is required" in errors[7]
    assert "colour" in errors[8] and "not options of plan" in errors[8]
    assert "plan reads one study folder" in errors[9]


@pytest.mark.parametrize(
    ("name", "text", "match"),
    [
        ("empty.csv", "", "empty"),
        ("header.csv", "id,workflow,study\n", "lists no study"),
        ("nostudy.csv", "id,workflow\np,plan\n", "no column study"),
        ("cohort.xlsx", "id,workflow,study\n", "unknown format"),
        ("bad.yaml", "studies: {a: 1}\n", "expected a list of studies"),
        ("extra.csv", "id,workflow,study\np,plan,x,y\n", "more values than columns"),
    ],
)
def test_unusable_manifests_are_refused(tmp_path, name, text, match):
    with pytest.raises(InputDataError, match=match):
        cohort.read_cohort_manifest(_write(tmp_path / name, text))


def test_plan_cluster_fills_the_cores_within_the_memory():
    small = cohort.plan_cluster(24, 3_000_000, cores=2, memory_bytes=24 * 10**9)
    assert (small.n_workers, small.threads_per_study) == (2, 1)
    assert small.memory_limit_bytes >= small.study_memory_bytes
    assert small.n_workers * small.memory_limit_bytes <= 0.85 * 24 * 10**9 + 1
    one = cohort.plan_cluster(1, 3_000_000, cores=16, memory_bytes=64 * 10**9)
    assert (one.n_workers, one.threads_per_study) == (1, 16)  # one study: all the cores
    # whole-body studies (~100 MB of DICOM) on 16 cores and 16 GB: memory decides
    big = cohort.plan_cluster(100, 100_000_000, cores=16, memory_bytes=16 * 10**9)
    assert big.n_workers == int(0.85 * 16e9 // big.study_memory_bytes) < 16
    assert big.threads_per_study == 16 // big.n_workers
    assert big.n_workers * big.threads_per_study <= 16
    forced = cohort.plan_cluster(10, 0, workers=3, cores=2, memory_bytes=24 * 10**9)
    assert forced.n_workers == 3 and forced.threads_per_study == 1
    with pytest.raises(InputDataError, match="--workers"):
        cohort.plan_cluster(10, 0, workers=0)
    assert "worker process(es)" in small.describe()


def test_command_exit_2_for_an_unusable_manifest(tmp_path, capsys):
    assert (
        main(["cohort", str(tmp_path / "missing.csv"), "--out", str(tmp_path / "o")]) == EXIT_USER
    )
    err = _errors(capsys.readouterr().err)
    assert len(err) == 1 and "missing.csv does not exist" in err[0]
    m = _write(tmp_path / "c.csv", "id,study\na,x\n")
    assert main(["cohort", str(m), "--out", str(tmp_path / "o")]) == EXIT_USER
    err = _errors(capsys.readouterr().err)
    assert len(err) == 1 and "no column workflow" in err[0]
    assert not (tmp_path / "o").exists()  # nothing written for a refused manifest
    m = _write(tmp_path / "ok.csv", "id,workflow,study,activity\na,plan,x,1 GBq\n")
    args = ["cohort", str(m), "--out", str(tmp_path / "o"), "--scheduler", "tcp://127.0.0.1:9"]
    assert main([*args, "--workers", "2"]) == EXIT_USER
    assert "leave --workers out" in _errors(capsys.readouterr().err)[0]


def test_rows_that_cannot_run_fail_with_their_message_and_exit_3(tmp_path, capsys):
    """No row can run: no cluster is started, the summary lists each row's reason."""
    m = _write(
        tmp_path / "c.csv",
        "id,workflow,study,activity\na,plan,x,\nb,nope,x,1 GBq\nb,plan,x,1 GBq\n",
    )
    out = tmp_path / "out"
    assert main(["cohort", str(m), "--out", str(out), "--anonymize"]) == EXIT_PARTIAL
    printed = capsys.readouterr().out
    assert "a (row 1): failed: row 1 (id a): --activity is required" in printed
    assert "3 failed" in printed
    with (out / "cohort_summary.csv").open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
        columns = reader.fieldnames or []
    assert [r["status"] for r in rows] == ["failed"] * 3
    assert "workflow 'nope' is unknown" in rows[1]["message"]
    assert "repeated" in rows[2]["message"]
    # anonymised: no patient identifiers and no study paths; the dose-table columns are there
    assert not {"study", "patient_id", "patient_name"} & set(columns)
    assert set(TABLE_COLUMNS) <= set(columns) and {"id", "status", "message"} <= set(columns)
    assert sorted(p.name for p in out.iterdir()) == ["cohort_summary.csv"]
