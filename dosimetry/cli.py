"""Command-line interface: ``dosimetry demo|plan|spect|...``.

Thin by design: options come from one table shared with cohort manifests
(:mod:`dosimetry.workflows.options`), the work is done by a workflow, the output set is
written as a unit (:func:`dosimetry.workflows.save.write_into` inside an
:class:`~dosimetry.io.outputs.OutputSet`), and heavy modules are imported only when a
command runs.

Exit statuses (every command): 0 success; 2 a user or input error (one line naming the
problem and the option that fixes it, no traceback); 1 an unexpected internal error (one
line, plus "run with -v for details"; ``-v`` shows the traceback); 3 a batch that
finished with some of its studies failed; 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

__all__ = ["main", "build_parser", "EXIT_OK", "EXIT_INTERNAL", "EXIT_USER", "EXIT_PARTIAL"]

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_USER = 2
EXIT_PARTIAL = 3
EXIT_INTERRUPTED = 130

_EPILOG_PLAN = """examples:
  dosimetry plan patient/ --out plan-lu --activity "7.4 GBq"
  dosimetry plan patient/ --out plan-ac --therapy Ac-225-PSMA-617 --activity "8 MBq"
  dosimetry plan patient/ --out plan --activity "7.4 GBq" --pet 1 --masks totalseg/
  dosimetry plan patient/ --out first-look --activity "7.4 GBq" --body-only
  dosimetry plan patient/ --out plan --activity "7.4 GBq" --half-life kidney_left=40h --half-life 'lesion*=70h'
"""

_EPILOG_SPECT = """examples:
  dosimetry spect lu177-study/ --out spect-dose --calibration "9.1 cps/MBq"
  dosimetry spect tp1/ tp2/ tp3/ tp4/ --out spect-dose --calibration camera.json --injection "2026-12-01 10:00" --activity "7.4 GBq"
"""


def _progress(message: str) -> None:
    from ._text import terminal

    print(f"[{time.strftime('%H:%M:%S')}] {terminal(message)}", file=sys.stderr, flush=True)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for documentation and tests)."""
    from . import __version__
    from .workflows.options import add_options

    p = argparse.ArgumentParser(
        prog="dosimetry",
        description="Theranostics dosimetry workbench: PET/SPECT DICOM to absorbed-dose maps.",
    )
    p.add_argument("--version", action="version", version=f"dosimetry {__version__}")
    p.add_argument(
        "-v", "--verbose", action="store_true", help="log every step (INFO) and show tracebacks"
    )
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    d = sub.add_parser(
        "demo",
        help="run the whole pipeline on the built-in phantom patient",
        description=(
            "Generate a phantom patient's PET/CT (68Ga-PSMA-11 by default) as DICOM, read it "
            "back like a scanner export, project a therapy (177Lu-PSMA-617 by default), compute "
            "the absorbed-dose map and write DICOM RTDOSE, NIfTI, the dose table and the "
            "reports. The phantom study is written to OUT/phantom_study."
        ),
    )
    d.add_argument("--out", required=True, type=Path, help="output folder (new or empty)")
    d.add_argument(
        "--activity",
        default=None,
        help="planned administered activity with unit (default: 7.4 GBq for 177Lu, 8 MBq "
        "for 225Ac; stated in the report)",
    )
    d.add_argument(
        "--therapy",
        default="Lu-177-PSMA-617",
        help="therapy agent (default Lu-177-PSMA-617; also Ac-225-PSMA-617, Lu-177-DOTATATE)",
    )
    d.add_argument(
        "--tracer",
        default=None,
        help="phantom PET tracer (default: the agent's diagnostic partner, Ga-68-PSMA-11 or "
        "Ga-68-DOTATATE; also F-18-PSMA-1007)",
    )
    from .workflows.options import _method_choices

    d.add_argument(
        "--method", default="auto", choices=_method_choices(), help="dose method (see plan --help)"
    )
    d.add_argument("--seed", type=int, default=0, help="phantom noise seed (default 0)")
    d.add_argument(
        "--accept",
        action="append",
        default=None,
        metavar="CODE",
        help="accept one implausible input by its check code (e.g. administered_activity)",
    )
    d.add_argument(
        "--accept-implausible",
        action="store_true",
        help="accept every implausible input (the findings stay in the report)",
    )
    d.add_argument(
        "--overwrite", action="store_true", help="replace a previous output set in --out"
    )
    d.add_argument(
        "--anonymize", action="store_true", help="leave patient identifiers out of the reports"
    )

    r = sub.add_parser(
        "plan",
        help="177Lu/225Ac plan from a diagnostic PET study folder",
        description=(
            "Project a diagnostic PET study (68Ga/18F PSMA, DOTATATE) to a therapy agent and "
            "compute the absorbed-dose map: RTDOSE, NIfTI, dose table (Gy, Gy/GBq; Gy_RBE for "
            "225Ac), report.md and report.html in --out. The therapy name is checked before "
            "any DICOM is read."
        ),
        epilog=_EPILOG_PLAN,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    r.add_argument("study", type=Path, help="folder with the PET/CT DICOM (and RTSTRUCT/SEG)")
    r.add_argument("--out", required=True, type=Path, help="output folder (new or empty)")
    add_options(r, "plan")
    r.add_argument(
        "--overwrite", action="store_true", help="replace a previous output set in --out"
    )

    s = sub.add_parser(
        "spect",
        help="post-therapy 177Lu SPECT/CT dosimetry from one or several time points",
        description=(
            "Discover the NM/SPECT time points and their CTs (one folder, or one folder per "
            "time point), calibrate counts to activity, register every time point to the "
            "first CT, fit organ and voxel time-activity curves, integrate, compute the dose "
            "and write the same file set as plan."
        ),
        epilog=_EPILOG_SPECT,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    s.add_argument("study", type=Path, nargs="+", help="folder(s) with the SPECT/CT DICOM")
    s.add_argument("--out", required=True, type=Path, help="output folder (new or empty)")
    s.add_argument(
        "--activity",
        default=None,
        help="administered 177Lu activity with unit, when the header lacks it ('7.4 GBq')",
    )
    add_options(s, "spect")
    s.add_argument(
        "--overwrite", action="store_true", help="replace a previous output set in --out"
    )
    _add_diagnostic_parsers(sub)
    sub.add_parser(
        "warmup",
        help="compile the Numba kernels once (the first plan then starts fast)",
        description=(
            "Compile the dose-engine and voxel-fit kernels on tiny inputs and store them in "
            "Numba's cache (NUMBA_CACHE_DIR or __pycache__ beside the package), so that the "
            "first study does not pay the compile time. Run it once after installing."
        ),
    )
    _add_cohort_parser(sub)
    return p


def _add_diagnostic_parsers(sub: Any) -> None:
    """The ``diagnostic-dose`` and ``dispense`` sub-commands."""
    from .workflows.options import _method_choices

    g = sub.add_parser(
        "diagnostic-dose",
        help="the diagnostic PET's own dose to the patient (ICRP coefficients + voxel estimate)",
        description=(
            "Organ absorbed doses and effective dose of the diagnostic administration from "
            "ICRP Publication 106/128 coefficients (age row from the header, adult by default; "
            "the effective dose is a reference-person quantity), and a voxel dose estimate "
            "from the PET that counts the decays of the uptake period and after the scan. "
            "Writes diagnostic_dose.csv (row effective_dose_msv), the dose maps, table and "
            "reports."
        ),
    )
    g.add_argument("study", type=Path, help="folder with the PET/CT DICOM")
    g.add_argument("--out", required=True, type=Path, help="output folder (new or empty)")
    g.add_argument("--age", type=float, default=None, help="patient age in years (default: header)")
    g.add_argument(
        "--model",
        default="linear_uptake",
        choices=("linear_uptake", "instant_uptake"),
        help="voxel TIA model of the uptake period (default linear_uptake)",
    )
    g.add_argument("--method", default="auto", choices=_method_choices(), help="dose method")
    g.add_argument("--pet", default=None, help="PET series (index, UID or description)")
    g.add_argument(
        "--injection",
        default=None,
        metavar="DATETIME",
        help="injection date and time 'YYYY-MM-DD HH:MM' (overrides the header)",
    )
    g.add_argument(
        "--accept",
        action="append",
        default=None,
        metavar="CODE",
        help="accept one implausible input by its check code (e.g. uptake_time); repeatable",
    )
    g.add_argument(
        "--accept-implausible",
        action="store_true",
        help="accept every implausible input (the findings stay in the report)",
    )
    g.add_argument("--strict", action="store_true", help="treat warnings as errors")
    g.add_argument(
        "--anonymize", action="store_true", help="leave patient identifiers out of the reports"
    )
    g.add_argument(
        "--overwrite", action="store_true", help="replace a previous output set in --out"
    )

    q = sub.add_parser(
        "dispense",
        help="activity to draw (and the calibrator reading) for a prescribed activity",
        description=(
            "The activity of NUCLIDE to draw at --draw so that ACTIVITY remains at --injection "
            "(decay law, ICRP-107 half-life), and what a calibrator set for the nuclide reads "
            "(225Ac: daughters' ingrowth after purification; 177Lu: 177mLu impurity from the "
            "certificate ratio)."
        ),
        epilog="example: dosimetry dispense Lu-177 '7.4 GBq' --injection '2026-12-08 10:00' "
        "--draw '2026-12-08 08:30'",
    )
    q.add_argument("nuclide", help="F-18, Ga-68, Lu-177, Ac-225, ...")
    q.add_argument("activity", help="prescribed activity at injection, with unit ('7.4 GBq')")
    q.add_argument("--injection", required=True, help="injection time 'YYYY-MM-DD HH:MM'")
    q.add_argument("--draw", required=True, help="draw/measurement time 'YYYY-MM-DD HH:MM'")
    q.add_argument(
        "--lu177m-ratio", type=float, default=None, help="177mLu/177Lu activity ratio (certificate)"
    )
    q.add_argument("--lu177m-ratio-time", default=None, help="reference time of that ratio")
    q.add_argument(
        "--ac225-separation", default=None, help="time of the last purification of 225Ac"
    )
    q.add_argument("--json", action="store_true", help="print the result as JSON")


_EPILOG_COHORT = """manifest (CSV; YAML with the same keys also works):
  id,workflow,study,activity,method,calibration
  p01,plan,patients/p01/pet,7.4 GBq,,
  p02-c1,spect,patients/p02/c1,,,9.1 cps/MBq

examples:
  dosimetry cohort cohort.csv --out cohort-out
  dosimetry cohort cohort.yaml --out cohort-out --workers 2 --anonymize
  dosimetry cohort cohort.csv --out cohort-out --scheduler tcp://host:8786
  dosimetry cohort cohort.csv --out cohort-out --scheduler-file ~/scheduler.json
"""


def _add_cohort_parser(sub: Any) -> None:
    c = sub.add_parser(
        "cohort",
        help="run plan/spect over a cohort manifest on Dask (resumable)",
        description=(
            "Run every row of a cohort manifest (columns id, workflow, study and the options of "
            "that workflow, named like its long options with dashes as underscores) as one "
            "Dask task: OUT/<id>/ gets the same files as the single-study command, "
            "OUT/cohort_summary.csv one row per study and VOI. Complete studies are skipped, "
            "so a rerun finishes only what is missing. Exit status 0: all studies ok; 3: some "
            "failed (see the summary); 2: the manifest is unusable."
        ),
        epilog=_EPILOG_COHORT,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    c.add_argument("manifest", type=Path, help="cohort manifest (.csv or .yaml)")
    c.add_argument("--out", required=True, type=Path, help="cohort output folder")
    where = c.add_mutually_exclusive_group()
    where.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="address of an existing Dask scheduler (tcp://host:8786); default: a local "
        "cluster sized to this machine",
    )
    where.add_argument(
        "--scheduler-file", type=Path, metavar="FILE", help="scheduler file of an existing cluster"
    )
    c.add_argument(
        "--workers",
        type=int,
        help="worker processes of the local cluster (default: from the cores and the memory)",
    )
    c.add_argument(
        "--retries",
        type=int,
        default=2,
        help="runs again a study whose worker died (killed, out of memory), at most N times "
        "(default 2)",
    )
    c.add_argument(
        "--anonymize",
        action="store_true",
        help="leave patient identifiers out of the reports, and identifiers and study paths "
        "out of the summary",
    )
    c.add_argument(
        "--overwrite",
        action="store_true",
        help="recompute every study and replace its previous output set (default: skip "
        "complete ones)",
    )


# --------------------------------------------------------------------------------------
# commands
# --------------------------------------------------------------------------------------
def _finish(result: Any, outset: Any, staging: Path, files: dict[str, Path]) -> None:
    from .report.text import summary

    outset.metadata["result"] = {
        "kind": result.kind,
        "agent": result.agent,
        "method": result.method,
    }
    final = outset.commit()
    shown: dict[str, Path] = {}
    for label in (
        "RTDOSE",
        "NIfTI",
        "RTDOSE (BED)",
        "dose table",
        "prescription.json",
        "history.json",
        "report.html",
        "report.md",
    ):
        if label in files:
            shown[label] = final / Path(files[label]).relative_to(staging)
    print(summary(result, shown))


def _cmd_plan(args: argparse.Namespace) -> int:
    from .io import load_study
    from .io.outputs import OutputSet
    from .nuclides import parse_agent
    from .workflows import pet_plan
    from .workflows.options import from_args
    from .workflows.save import write_into

    kwargs = from_args(args, "plan")
    parse_agent(kwargs["therapy"])  # the therapy name is checked before DICOM is read
    study_dir = Path(args.study)
    if not study_dir.exists():
        raise FileNotFoundError(f"study folder {study_dir} does not exist")
    outset = OutputSet(
        args.out, overwrite=args.overwrite, input_dirs=[study_dir], metadata={"command": "plan"}
    )
    _progress(f"reading DICOM folder {study_dir}")
    study = load_study(study_dir, overrides=kwargs.pop("header_overrides", None))
    result = pet_plan.run(study, progress=_progress, **kwargs)
    staging = outset.begin()
    try:
        _progress(f"writing RTDOSE, NIfTI, the dose table and the reports to {args.out}")
        files = write_into(result, staging, anonymize=args.anonymize, input_dirs=[study_dir])
        _finish(result, outset, staging, files)
    except BaseException:
        outset.abort()
        raise
    return EXIT_OK


_DEMO_TRACER = {"PSMA-617": "Ga-68-PSMA-11", "DOTATATE": "Ga-68-DOTATATE"}
_DEMO_ACTIVITY = {"Lu-177": "7.4 GBq", "Ac-225": "8 MBq"}


def _cmd_demo(args: argparse.Namespace) -> int:
    import phantoms

    from .errors import InputDataError
    from .io import load_study
    from .io.outputs import OutputSet
    from .nuclides import parse_agent
    from .workflows import pet_plan
    from .workflows.save import write_into

    agent = parse_agent(args.therapy)
    tracer = args.tracer or _DEMO_TRACER.get(agent.ligand, "Ga-68-PSMA-11")
    activity = args.activity or _DEMO_ACTIVITY.get(agent.nuclide)
    if activity is None:
        raise InputDataError(f"--activity is needed for {agent.name} (e.g. --activity '100 MBq')")
    outset = OutputSet(args.out, overwrite=args.overwrite, metadata={"command": "demo"})
    staging = outset.begin()
    try:
        study_dir = staging / "phantom_study"
        _progress(f"generating the phantom patient ({tracer} PET/CT + RTSTRUCT) as DICOM")
        truth = phantoms.write_pet_ct_study(study_dir, seed=args.seed, tracer=tracer)
        study = load_study(study_dir)
        result = pet_plan.run(
            study,
            therapy=agent.name,
            activity=activity,
            method=args.method,
            accept=True if args.accept_implausible else (args.accept or ()),
            progress=_progress,
        )
        from .results import Assumption

        result = result.replace(
            assumptions=(
                *result.assumptions,
                Assumption(
                    "demo patient",
                    f"phantom, injected {truth.injected_activity_bq / 1e6:.0f} MBq {truth.tracer}, "
                    f"seed {args.seed}; administered activity {activity}",
                    "phantoms.write_pet_ct_study (dosimetry demo)",
                ),
            )
        )
        _progress(f"writing RTDOSE, NIfTI, the dose table and the reports to {args.out}")
        files = write_into(result, staging, anonymize=args.anonymize, input_dirs=[study_dir])
        _finish(result, outset, staging, files)
    except BaseException:
        outset.abort()
        raise
    return EXIT_OK


def _cmd_spect(args: argparse.Namespace) -> int:
    from .io.outputs import OutputSet
    from .workflows import spect
    from .workflows.options import from_args
    from .workflows.save import write_into

    kwargs = from_args(args, "spect")
    if args.activity is not None:
        kwargs["activity"] = args.activity
    folders = [Path(f) for f in args.study]
    for f in folders:
        if not f.exists():
            raise FileNotFoundError(f"study folder {f} does not exist")
    outset = OutputSet(
        args.out, overwrite=args.overwrite, input_dirs=folders, metadata={"command": "spect"}
    )
    result = spect.run_folder(
        folders if len(folders) > 1 else folders[0], progress=_progress, **kwargs
    )
    staging = outset.begin()
    try:
        files = write_into(result, staging, anonymize=args.anonymize, input_dirs=folders)
        _finish(result, outset, staging, files)
    except BaseException:
        outset.abort()
        raise
    return EXIT_OK


def _cmd_cohort(args: argparse.Namespace) -> int:
    from ._text import terminal
    from .workflows import cohort

    result = cohort.run(
        args.manifest,
        args.out,
        client=args.scheduler,
        scheduler_file=args.scheduler_file,
        workers=args.workers,
        retries=args.retries,
        anonymize=args.anonymize,
        overwrite=args.overwrite,
    )
    for o in result.failed:
        print(f"  {terminal(o.id)} (row {o.row}): {o.status}: {terminal(o.message)}")
    print(f"cohort: {result.describe()}")
    return EXIT_OK if result.all_ok else EXIT_PARTIAL


def _cmd_diagnostic(args: argparse.Namespace) -> int:
    from .io import load_study
    from .io.outputs import OutputSet
    from .workflows import diagnostic
    from .workflows.options import _series, parse_datetime
    from .workflows.save import write_into

    overrides = {} if args.injection is None else {"injection_time": parse_datetime(args.injection)}
    study_dir = Path(args.study)
    if not study_dir.exists():
        raise FileNotFoundError(f"study folder {study_dir} does not exist")
    outset = OutputSet(
        args.out,
        overwrite=args.overwrite,
        input_dirs=[study_dir],
        metadata={"command": "diagnostic-dose"},
    )
    study = load_study(study_dir)
    result = diagnostic.run(
        study,
        pet=None if args.pet is None else _series(args.pet),
        age_years=args.age,
        method=args.method,
        model=args.model,
        pet_overrides=overrides,
        policy="strict" if args.strict else None,
        accept=True if args.accept_implausible else (args.accept or ()),
        progress=_progress,
    )
    staging = outset.begin()
    try:
        files = write_into(result, staging, anonymize=args.anonymize, input_dirs=[study_dir])
        _finish(result, outset, staging, files)
        dd = result.details["diagnostic_dose"].dose
        if dd.effective_dose_msv is not None:
            print(f"effective dose (reference person): {dd.effective_dose_msv:.3g} mSv")
    except BaseException:
        outset.abort()
        raise
    return EXIT_OK


def _cmd_warmup(args: argparse.Namespace) -> int:
    from .warmup import warmup

    print(f"Numba kernels ready in {warmup():.1f} s")
    return EXIT_OK


def _cmd_dispense(args: argparse.Namespace) -> int:
    import json

    from .dispense import activity_to_draw
    from .report.blocks import format_activity
    from .units import parse_activity
    from .workflows.options import parse_datetime

    def when(text: str | None) -> Any:
        return None if text is None else parse_datetime(text)

    r = activity_to_draw(
        args.nuclide,
        parse_activity(args.activity, arg="ACTIVITY"),
        parse_datetime(args.injection),
        parse_datetime(args.draw),
        lu177m_ratio=args.lu177m_ratio,
        lu177m_ratio_time=when(args.lu177m_ratio_time),
        ac225_separation_time=when(args.ac225_separation),
    )
    if args.json:
        doc = {
            "nuclide": r.nuclide,
            "prescribed_activity_bq": r.prescribed_activity_bq,
            "injection_time": r.injection_time.isoformat(),
            "draw_time": r.draw_time.isoformat(),
            "draw_activity_bq": r.draw_activity_bq,
            "calibrator_reading_bq": r.calibrator_reading_bq,
            "decay_factor": r.decay_factor,
            "half_life_s": r.half_life_s,
            "impurities": r.impurity_activity_bq,
            "notes": list(r.notes),
        }
        print(json.dumps(doc, indent=2))
        return EXIT_OK
    print(
        f"draw {format_activity(r.draw_activity_bq)} of {r.nuclide} at "
        f"{r.draw_time:%Y-%m-%d %H:%M} for {format_activity(r.prescribed_activity_bq)} at "
        f"{r.injection_time:%Y-%m-%d %H:%M} (decay factor {r.decay_factor:.4f})"
    )
    print(f"calibrator reading: {format_activity(r.calibrator_reading_bq)}")
    for n in r.notes:
        print(f"- {n}")
    return EXIT_OK


_COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "demo": _cmd_demo,
    "plan": _cmd_plan,
    "spect": _cmd_spect,
    "cohort": _cmd_cohort,
    "diagnostic-dose": _cmd_diagnostic,
    "dispense": _cmd_dispense,
    "warmup": _cmd_warmup,
}


class _TerminalFormatter(logging.Formatter):
    """Log lines made inert for a terminal: ROI names and header text in a message lose
    their escape sequences, control characters and line breaks (``_text.terminal``)."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        from ._text import terminal

        return terminal(super().formatMessage(record))


def _error_line(exc: BaseException) -> str:
    from ._text import terminal
    from .workflows.options import cli_message

    return terminal(cli_message(str(exc)))


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``dosimetry`` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = logging.StreamHandler()
    handler.setFormatter(_TerminalFormatter("%(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, handlers=[handler])
    if args.command is None:
        parser.print_help()
        return EXIT_OK

    from .errors import DosimetryError

    try:
        return _COMMANDS[args.command](args)
    except KeyboardInterrupt:
        print("dosimetry: interrupted; no partial output was left", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (
        DosimetryError,
        FileNotFoundError,
        NotADirectoryError,
        IsADirectoryError,
        PermissionError,
    ) as exc:
        if args.verbose:
            traceback.print_exc()
        print(f"dosimetry: error: {_error_line(exc)}", file=sys.stderr)
        return EXIT_USER
    except MemoryError:
        print(
            "dosimetry: error: not enough memory for this study (run with -v for details); "
            "see docs/reliability.md for the memory budget",
            file=sys.stderr,
        )
        return EXIT_USER
    except Exception as exc:  # an internal error: one line, the traceback with -v
        if args.verbose:
            traceback.print_exc()
        print(
            f"dosimetry: internal error: {type(exc).__name__}: {_error_line(exc)} "
            "(run with -v for details)",
            file=sys.stderr,
        )
        return EXIT_INTERNAL


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
