"""Cohorts on the embedded Dask cluster: the issue's acceptance manifest (good rows equal to
single runs, bad rows reported, exit status 3), an interrupted run finished by a rerun that
recomputes nothing, and a worker killed while writing (no partial output, retried)."""

from __future__ import annotations

import csv
import logging
import math
import os
from pathlib import Path

import pytest

from dosimetry.cli import EXIT_PARTIAL, main
from dosimetry.io.outputs import is_complete, read_manifest
from dosimetry.results import TABLE_COLUMNS
from dosimetry.workflows import cohort, options, pet_plan

HERE = Path(__file__).resolve().parent


def _read(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def _same_to_printed_precision(a: list[dict[str, str]], b: list[dict[str, str]]) -> None:
    """Tables equal as printed (6 significant digits): text exactly, numbers within one
    unit of the 6th digit (Numba reductions with another thread count may move the last
    printed digit)."""
    assert [r["name"] for r in a] == [r["name"] for r in b]
    for ra, rb in zip(a, b, strict=True):
        for col in TABLE_COLUMNS:
            x, y = ra[col], rb[col]
            try:
                fx, fy = float(x), float(y)
            except ValueError:
                assert x == y, (ra["name"], col, x, y)
                continue
            assert math.isclose(fx, fy, rel_tol=1e-5, abs_tol=1e-300), (ra["name"], col, x, y)


@pytest.fixture(scope="module")
def acceptance(pet_studies, tmp_path_factory):
    """Six rows: three good studies (s0 twice at two activities, s1), one corrupt study, one
    repeated id, one bad option; run with the command, then run again."""
    root = tmp_path_factory.mktemp("cohort-accept")
    m = root / "cohort.csv"
    rel = Path("..") / pet_studies["root"].name  # relative to the manifest's folder
    m.write_text(
        "id,workflow,study,activity,method,half_life\n"
        f"p1,plan,{pet_studies['s0']},7.4 GBq,led,\n"
        f"p2,plan,{pet_studies['s1']},7.4 GBq,led,\n"
        f"p3,plan,{rel / 's0'},3.7 GBq,led,\n"
        f"bad,plan,{pet_studies['corrupt']},7.4 GBq,led,\n"
        f"p2,plan,{pet_studies['s0']},7.4 GBq,led,\n"
        f"opt,plan,{pet_studies['s0']},7.4 GBq,led,kidney_left:40h\n",
        encoding="utf-8",
    )
    out = root / "out"
    notes: list[str] = []
    handler = logging.Handler(logging.INFO)
    handler.emit = lambda record: notes.append(record.getMessage())  # type: ignore[method-assign]
    logger = logging.getLogger("dosimetry.workflows.cohort")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        rc = main(["cohort", str(m), "--out", str(out), "--workers", "2"])
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    return {"rc": rc, "manifest": m, "out": out, "notes": notes}


def test_acceptance_exit_3_outputs_and_summary(acceptance, capsys):
    out = acceptance["out"]
    assert acceptance["rc"] == EXIT_PARTIAL
    # the embedded cluster's dashboard (bokeh is a dependency) is linked
    assert any(n.startswith("Dask dashboard: http") for n in acceptance["notes"]), acceptance[
        "notes"
    ]
    for ident in ("p1", "p2", "p3"):
        assert is_complete(out / ident, verify_hashes=True), ident
        names = {p.name for p in (out / ident).iterdir()}
        # the same files as a single `dosimetry plan`
        assert {"dose.dcm", "dose.nii.gz", "tia.nii.gz", "dose_table.csv", "report.md"} <= names
        assert {"report.html", "figures", "manifest.json"} <= names
        assert read_manifest(out / ident)["cohort"]["id"] == ident
    assert not (out / "bad").exists() and not (out / "opt").exists()
    assert not [p for p in out.iterdir() if ".partial-" in p.name]
    rows = _read(out / "cohort_summary.csv")
    by_status: dict[str, set[str]] = {}
    for r in rows:
        by_status.setdefault(r["status"], set()).add(f"{r['id']}:{r['row']}")
    assert by_status == {"ok": {"p1:1", "p2:2", "p3:3"}, "failed": {"bad:4", "p2:5", "opt:6"}}
    msg = {r["row"]: r["message"] for r in rows if r["status"] == "failed"}
    assert "truncated" in msg["4"].lower() or "unreadable" in msg["4"].lower(), msg["4"]
    assert "Traceback" not in msg["4"] and "\n" not in msg["4"]
    assert "id 'p2' is repeated (first on row 2)" in msg["5"]
    assert "--half-life" in msg["6"] and "VOI=DURATION" in msg["6"]
    assert "Traceback" in (out / "bad.log").read_text()  # the details are in the log
    ok = [r for r in rows if r["status"] == "ok"]
    assert {r["name"] for r in ok if r["id"] == "p1"} >= {"kidney_left", "liver", "lesion_1"}
    for r in ok:
        assert len(r["input_sha256"]) == 64 and r["software"].startswith("dosimetry ")
        assert r["patient_id"] and float(r["elapsed_s"]) > 0 and r["attempts"] == "1"
        assert r["administered_activity_bq"] in ("7.4e+09", "3.7e+09")
        # the findings column: registered check codes with their level
        from dosimetry.checks import FINDING_CODES

        assert "findings" in r

        for item in filter(None, r["findings"].split("; ")):
            code, level = item.split(":")
            assert code in FINDING_CODES and level in ("warning", "error", "accepted"), item


def test_good_rows_equal_single_runs(acceptance, pet_studies):
    out = acceptance["out"]
    single = pet_plan.run_folder(
        pet_studies["s1"], therapy="Lu-177-PSMA-617", activity="7.4 GBq", method="led"
    )
    expect = list(csv.DictReader(single.table.to_csv().splitlines()))
    _same_to_printed_precision(_read(out / "p2" / "dose_table.csv"), expect)
    summary = [r for r in _read(out / "cohort_summary.csv") if r["id"] == "p2" and r["row"] == "2"]
    _same_to_printed_precision(summary, expect)
    single0 = pet_plan.run_folder(
        pet_studies["s0"], therapy="Lu-177-PSMA-617", activity="3.7 GBq", method="led"
    )
    expect0 = list(csv.DictReader(single0.table.to_csv().splitlines()))
    _same_to_printed_precision(_read(out / "p3" / "dose_table.csv"), expect0)


def test_rerun_recomputes_nothing_that_is_complete(acceptance, capsys):
    out = acceptance["out"]
    before = {i: (out / i / "manifest.json").stat().st_mtime_ns for i in ("p1", "p2", "p3")}
    table = (out / "cohort_summary.csv").read_text()
    rc = main(["cohort", str(acceptance["manifest"]), "--out", str(out), "--workers", "1"])
    assert rc == EXIT_PARTIAL  # the bad rows fail again
    after = {i: (out / i / "manifest.json").stat().st_mtime_ns for i in ("p1", "p2", "p3")}
    assert after == before
    rows = _read(out / "cohort_summary.csv")
    assert {r["id"] for r in rows if r["status"] == "skipped"} == {"p1", "p2", "p3"}
    # the skipped rows carry the same table as the first run's summary
    first = [r for r in csv.DictReader(table.splitlines()) if r["status"] == "ok"]
    again = [r for r in rows if r["status"] == "skipped"]
    for col in (*TABLE_COLUMNS, "id", "input_sha256", "patient_id"):
        assert [r[col] for r in first] == [r[col] for r in again], col


@pytest.mark.slow
def test_interrupted_then_killed_worker_then_rerun(pet_studies, tmp_path, monkeypatch):
    """Ctrl-C after the first study; the rerun skips it, and the worker writing one of the
    other studies is killed: that study leaves no partial output and is retried."""
    env_before = {k: os.environ.get(k) for k in cohort._worker_environ_names()}
    m = tmp_path / "cohort.yaml"
    m.write_text(
        "defaults: {workflow: plan, method: led}\n"
        "studies:\n"
        f"  - {{id: a, study: {pet_studies['s0']}, activity: 7.4 GBq}}\n"
        f"  - {{id: b, study: {pet_studies['s1']}, activity: 7.4 GBq}}\n"
        f"  - {{id: c, study: {pet_studies['s1']}, activity: 2 GBq}}\n",
        encoding="utf-8",
    )
    out = tmp_path / "out"
    seen = []

    def stop_after_first(outcome: cohort.StudyOutcome) -> None:
        seen.append(outcome)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        cohort.run(m, out, workers=1, figures=False, progress=stop_after_first)
    (done,) = seen
    assert done.status == "ok" and is_complete(out / done.id)
    statuses = {r["id"]: r["status"] for r in _read(out / "cohort_summary.csv")}
    assert statuses[done.id] == "ok"
    others = sorted({"a", "b", "c"} - {done.id})
    # a study its worker committed while the interruption was being handled is a whole set
    # and says ok; every other one left nothing in its place (the staging is a dot-folder)
    finished = [i for i in others if is_complete(out / i, verify_hashes=True)]
    to_run = [i for i in others if i not in finished]
    assert to_run, "the interruption stopped nothing"
    for ident in finished:
        assert statuses[ident] == "ok"
    for ident in to_run:
        assert statuses[ident] == "interrupted" and not (out / ident).exists()
    stamp = (out / done.id / "manifest.json").stat().st_mtime_ns

    # the rerun: every first attempt to write a study kills its worker process once
    marker = tmp_path / "killed"
    monkeypatch.setenv("DOSIMETRY_TEST_KILL_MARKER", str(marker))
    monkeypatch.syspath_prepend(str(HERE))
    monkeypatch.setenv("PYTHONPATH", str(HERE))
    monkeypatch.setitem(options.WORKFLOWS, "plan", ("cohort_killer", "run_folder"))
    result = cohort.run(m, out, workers=2, figures=False, retries=1)
    assert marker.exists()  # a worker was killed while writing
    by_id = {o.id: o for o in result.outcomes}
    assert by_id[done.id].status == "skipped"
    assert (out / done.id / "manifest.json").stat().st_mtime_ns == stamp
    assert [by_id[i].status for i in finished] == ["skipped"] * len(finished)
    assert [by_id[i].status for i in to_run] == ["ok"] * len(to_run)
    assert sorted(by_id[i].attempts for i in to_run) == ([1, 2] if len(to_run) == 2 else [2])
    for ident in others:
        assert is_complete(out / ident, verify_hashes=True)
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]  # no staging left
    assert result.all_ok
    # the workers' settings never stay in this process's environment (a Dask nanny writes
    # its pre-spawn variables there at every worker start: Numba here then refused to run,
    # and processes started later inherited Dask's MALLOC_TRIM_THRESHOLD_)
    assert "MALLOC_TRIM_THRESHOLD_" in cohort._worker_environ_names()
    assert {k: os.environ.get(k) for k in cohort._worker_environ_names()} == env_before


@pytest.mark.slow
def test_a_spect_row_equals_its_single_run(pet_studies, tmp_path):
    """A post-therapy SPECT/CT study (4 time points) as a cohort row beside a PET plan: its
    summary rows equal `spect.run_folder` on the same study with the same options."""
    import phantoms
    from dosimetry.workflows import spect

    torso = phantoms.make_torso(voxel_mm=4.0, head_and_neck=False)
    folder = tmp_path / "spect0"
    phantoms.write_lu177_spect_study(
        folder, phantom=torso, seed=2, spect_matrix=(80, 80), calibration_cps_per_mbq=9.6
    )
    m = tmp_path / "cohort.csv"
    m.write_text(
        "id,workflow,study,activity,calibration,method,pvc\n"
        f"pet,plan,{pet_studies['s0']},7.4 GBq,,led,\n"
        f"sp,spect,{folder},,9.6 cps/MBq,led,none\n",
        encoding="utf-8",
    )
    out = tmp_path / "out"
    result = cohort.run(m, out, workers=2, figures=False, progress=False)
    assert result.all_ok, [o.message for o in result.outcomes]
    got = {r["name"]: r for r in _read(out / "cohort_summary.csv") if r["id"] == "sp"}
    assert got and {r["workflow"] for r in got.values()} == {"spect"}
    single = spect.run_folder(folder, calibration="9.6 cps/MBq", method="led", pvc="none")
    for row in single.table.csv_rows():
        assert float(got[row["name"]]["mean_gy"]) == pytest.approx(
            float(row["mean_gy"]), rel=1e-5
        ), row["name"]


@pytest.mark.slow
def test_sigint_to_the_cohort_command_then_rerun(pet_studies, tmp_path):
    """A real Ctrl-C (SIGINT) to a running `dosimetry cohort` process once a study is
    complete: exit status 130, a summary that says what finished, nothing partial left;
    the rerun finishes only what is missing."""
    import signal
    import subprocess
    import sys
    import time

    m = tmp_path / "cohort.csv"
    m.write_text(
        "id,workflow,study,activity,method\n"
        + "".join(
            f"s{i},plan,{pet_studies['s0' if i % 2 else 's1']},{5 + i} GBq,led\n" for i in range(4)
        ),
        encoding="utf-8",
    )
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "dosimetry.cli", "cohort", str(m), "--out", str(out)]
    # SIGINT back to its default in the child: a test run started in the background
    # inherits SIGINT ignored, and Python then installs no KeyboardInterrupt handler
    proc = subprocess.Popen(
        [*cmd, "--workers", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and proc.poll() is None:
            if any(is_complete(out / f"s{i}") for i in range(4)):
                break
            time.sleep(0.2)
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err.decode()[-2000:]
    assert b"interrupted" in err
    rows = _read(out / "cohort_summary.csv")
    status = {r["id"]: r["status"] for r in rows}
    done = sorted(i for i, s in status.items() if s == "ok")
    assert done and "interrupted" in status.values()
    for ident, s in status.items():
        # a complete set or nothing in its place (a killed worker's staging is a dot-folder)
        assert is_complete(out / ident) == (s == "ok") == (out / ident).exists(), ident
    stamps = {i: (out / i / "manifest.json").stat().st_mtime_ns for i in done}
    rerun = subprocess.run(cmd, capture_output=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr.decode()[-2000:]
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]  # stale staging cleaned
    again = {r["id"]: r["status"] for r in _read(out / "cohort_summary.csv")}
    assert all(again[i] == "skipped" for i in done)
    assert all(again[i] == "ok" for i in status if i not in done)
    assert all((out / i / "manifest.json").stat().st_mtime_ns == t for i, t in stamps.items())
