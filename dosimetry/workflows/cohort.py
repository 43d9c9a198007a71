"""Cohorts: one clinical workflow over many studies, on Dask, resumable, with nothing lost.

A *manifest* (CSV or YAML) lists one row per run: ``id`` (the output sub-folder), ``workflow``
(``plan``, ``spect``; see :data:`dosimetry.workflows.options.WORKFLOWS`), ``study`` (a folder;
for ``spect`` several folders, one per time point, separated by ``;``) and one column per
option of that workflow, named like its command-line long option with dashes as underscores
(``activity``, ``therapy``, ``method``, ``calibration``, ``body_only``, ...; empty = default;
flags ``true``/``false``; repeatable options separated by ``;``). The columns are read by
:func:`dosimetry.workflows.options.from_mapping`, the same table the single-study commands
use, so a row behaves exactly like ``dosimetry plan``/``spect`` with those options. Relative
paths (studies, masks, kinetics and VOI-map files, calibration records) are relative to the
manifest's folder.

:func:`run` submits one Dask task per study (:func:`run_study`). A task reads its inputs from
their paths (nothing but the row is shipped to the worker, and only a small
:class:`StudyOutcome` comes back: no volume crosses the network), keeps one study in memory,
and writes ``OUT/<id>/`` -- the same files as the single-study command -- as a complete set
(:class:`dosimetry.io.outputs.OutputSet`: staging folder, ``manifest.json`` last, atomic
rename). Then:

* a study whose ``OUT/<id>/`` is already complete (:func:`dosimetry.io.outputs.is_complete`)
  is skipped, so a rerun after Ctrl-C or a crash finishes only what is missing;
* a study that fails records its error message (one line, no traceback) in the summary and
  its log ``OUT/<id>.log`` (steps, warnings, traceback), and the others go on;
* a worker killed mid-study (out of memory, node lost) leaves only a staging folder, removed
  by the next attempt, and the study is retried at most ``retries`` times;
* the parameter values of the caller (:func:`dosimetry.parameters.snapshot`) travel inside
  every task and are applied there, so a process worker computes with the same values.

By default the tasks run on an embedded ``dask.distributed.LocalCluster`` sized to the machine
(:func:`plan_cluster`: worker processes, one study at a time per worker, Numba/FFT/ITK threads
per study = usable cores / workers, memory limit per worker from the machine's memory and the
largest study's estimate); ``client=`` (a ``Client``, a scheduler address such as
``"tcp://host:8786"``) or ``scheduler_file=`` runs the same manifest on an existing cluster.

The summary ``OUT/cohort_summary.csv`` (and ``.parquet`` when pyarrow is installed), written
atomically, has one row per study and VOI (:data:`SUMMARY_COLUMNS`): the dose-table columns
(:data:`dosimetry.results.TABLE_COLUMNS`), the status (``ok``, ``failed``, ``skipped``; and
``interrupted`` for rows not run when the cohort was stopped), the message, the findings
(``code:level`` of every warning or error check, ``code:accepted`` when accepted), timing and
provenance (input hash, software version, kernel identity). With ``anonymize`` the patient
identifiers and the study paths are left out.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import importlib
import io
import logging
import math
import os
import re
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from distributed import WorkerPlugin

from .. import parameters as _parameters
from ..errors import DosimetryError, InputDataError
from ..results import TABLE_COLUMNS, WorkflowResult
from .options import OPTIONS, WORKFLOWS, _bool, cli_message, from_mapping

__all__ = [
    "run",
    "run_study",
    "read_cohort_manifest",
    "plan_cluster",
    "ClusterPlan",
    "CohortResult",
    "ManifestRow",
    "StudyTask",
    "StudyOutcome",
    "SUMMARY_COLUMNS",
    "SUMMARY_NAME",
    "STATUSES",
]

log = logging.getLogger(__name__)

#: File name of the cohort summary inside the output folder.
SUMMARY_NAME = "cohort_summary"

#: Status of a study in the summary.
STATUSES: tuple[str, ...] = ("ok", "failed", "skipped", "interrupted")

_LEAD_COLUMNS: tuple[str, ...] = (
    "id",
    "row",
    "workflow",
    "study",
    "status",
    "message",
    "findings",
    "agent",
    "nuclide",
    "method",
    "administered_activity_bq",
)
_TAIL_COLUMNS: tuple[str, ...] = (
    "elapsed_s",
    "compute_s",
    "write_s",
    "attempts",
    "worker",
    "worker_peak_rss_mb",
    "started",
    "input_sha256",
    "software",
    "kernel",
    "output",
    "log",
    "patient_id",
    "patient_name",
)
#: Columns of ``cohort_summary.csv``: study columns, the dose table's columns (``name`` is
#: the VOI), then timing and provenance. ``study``, ``patient_id`` and ``patient_name`` are
#: left out with ``anonymize``.
SUMMARY_COLUMNS: tuple[str, ...] = (*_LEAD_COLUMNS, *TABLE_COLUMNS, *_TAIL_COLUMNS)
_PRIVATE_COLUMNS = ("study", "patient_id", "patient_name")

#: An id names a folder: letters, digits, ``.``, ``_``, ``-``; not starting with ``.``.
_ID_PATTERN = re.compile(r"[A-Za-z0-9_\-][A-Za-z0-9_.\-]{0,127}")

#: Columns a workflow takes beside the shared option table (the single-study command adds
#: them to its own sub-parser): ``spect --activity``.
_EXTRA_COLUMNS: dict[str, tuple[str, ...]] = {"spect": ("activity",), "plan": ()}

#: Memory a worker needs for one study: the package with its compiled functions, plus a
#: multiple of the input files' size (decoded images, masks, TIA, dose, density and the
#: dose engine's work arrays). Project measurements (benchmarks/cohort.py and the issue's
#: whole-body runs: 2.5-3.9 GB per process), an estimate and not a bound: a worker that goes
#: beyond its limit is restarted and the study retried.
_STUDY_MEMORY_BASE_BYTES = 700e6
_STUDY_MEMORY_PER_INPUT_BYTE = 40.0
#: Share of the machine's memory given to the workers (the rest: client, scheduler, OS).
_MEMORY_SHARE = 0.85

#: Environment variables that size the thread pools of a worker process.
_THREAD_VARIABLES = (
    "NUMBA_NUM_THREADS",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS",
)

#: Dask settings of the embedded cluster's workers that keep their event loop from taking the
#: interpreter lock away from the study many times a second. A study is long (seconds to
#: minutes) and mostly Python between its compiled steps; with Dask's defaults the worker's
#: statistical profiler samples the study's thread every 10 ms and the event-loop health
#: check runs every 20 ms, and a study ran 20-30 % slower in a worker than in a plain process
#: (project measurement, benchmarks/README.md "cohort": figure rendering, 6 repetitions,
#: medians 6.5 s in a default worker, 5.1 s with these settings, 5.0 s in a plain process).
#: Without the profiler the dashboard's "Profile" page stays empty; a user who wants it
#: passes their own cluster (``client=``) and the same settings can be given to workers
#: started by hand (docs/cohort.md).
QUIET_WORKER_CONFIG: Mapping[str, Any] = {
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "1s",
    "distributed.admin.system-monitor.interval": "5s",
    "distributed.worker.memory.monitor-interval": "1s",
}

#: Variables of Dask's default ``distributed.nanny.pre-spawn-environ`` that the embedded
#: cluster leaves out. ``MALLOC_TRIM_THRESHOLD_`` (65536 in Dask's defaults, to hand freed
#: memory back to the system) also switches off glibc's adaptive mmap threshold, so every
#: NumPy array above 128 kB is mapped and unmapped again: 6-7 x the page faults and 10-25 %
#: more time for a study (project measurement, benchmarks/README.md "cohort"). A worker runs
#: one study at a time, so it runs with the allocator of the single-study command.
UNSET_WORKER_ENVIRON = ("MALLOC_TRIM_THRESHOLD_",)

Progress = Callable[["StudyOutcome"], None]


# --------------------------------------------------------------------------------------
# records
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ManifestRow:
    """One row of a cohort manifest, checked.

    Attributes
    ----------
    row
        Row number in the manifest (1 = the first study row).
    id
        Output sub-folder name.
    workflow
        Workflow name (``"plan"``, ``"spect"``).
    study
        Absolute study folder(s).
    options
        The row's option columns as written (text; YAML values as read).
    error
        Why the row cannot run (repeated id, unknown workflow, bad option), or ``None``.
    """

    row: int
    id: str
    workflow: str
    study: tuple[str, ...]
    options: Mapping[str, Any]
    error: str | None = None


@dataclass(frozen=True)
class StudyTask:
    """Everything a worker needs to run one study (plain values: pickled to the worker)."""

    id: str
    row: int
    workflow: str
    target: tuple[str, str]
    study: tuple[str, ...]
    options: Mapping[str, Any]
    out: str
    source: str
    parameters: Mapping[str, float]
    anonymize: bool = False
    figures: bool = True
    overwrite: bool = False
    attempt: int = 1


@dataclass(frozen=True)
class StudyOutcome:
    """What a task reports back: status, message, timing and the study's summary rows.

    ``rows`` are the dose-table rows (:meth:`dosimetry.results.DoseTable.csv_rows`, text
    as printed in ``dose_table.csv``); ``info`` the study-level columns of the summary.
    """

    id: str
    row: int
    status: str
    message: str = ""
    rows: tuple[Mapping[str, str], ...] = ()
    info: Mapping[str, str] = field(default_factory=dict)
    elapsed_s: float = 0.0
    attempts: int = 1

    @property
    def ok(self) -> bool:
        """True for ``ok`` and ``skipped`` (a complete output set exists)."""
        return self.status in ("ok", "skipped")


@dataclass(frozen=True)
class ClusterPlan:
    """How the embedded cluster is sized (see :func:`plan_cluster`).

    Attributes
    ----------
    n_workers
        Worker processes; each runs one study at a time (one Dask thread).
    threads_per_study
        Numba, FFT, OpenMP/BLAS and ITK threads inside one study (cores / workers).
    memory_limit_bytes
        Memory limit of each worker (Dask restarts a worker beyond it; the study is retried).
    study_memory_bytes
        Estimated peak memory of the largest study.
    cores, memory_bytes
        Usable cores and memory of the machine.
    """

    n_workers: int
    threads_per_study: int
    memory_limit_bytes: int
    study_memory_bytes: int
    cores: int
    memory_bytes: int

    def describe(self) -> str:
        """One line for logs and the terminal."""
        return (
            f"{self.n_workers} worker process(es) x 1 study, {self.threads_per_study} "
            f"thread(s) per study, {self.memory_limit_bytes / 1e9:.1f} GB per worker "
            f"(largest study ~{self.study_memory_bytes / 1e9:.1f} GB; machine: {self.cores} "
            f"cores, {self.memory_bytes / 1e9:.1f} GB)"
        )


@dataclass(frozen=True)
class CohortResult:
    """What :func:`run` returns.

    Attributes
    ----------
    out
        The cohort's output folder.
    outcomes
        One :class:`StudyOutcome` per manifest row, in manifest order.
    summary_csv, summary_parquet
        The summary files (Parquet only when pyarrow is installed).
    elapsed_s
        Wall time of the whole run.
    cluster
        Where it ran (the embedded cluster's plan, or the scheduler address).
    """

    out: Path
    outcomes: tuple[StudyOutcome, ...]
    summary_csv: Path
    summary_parquet: Path | None
    elapsed_s: float
    cluster: str

    def count(self, status: str) -> int:
        """Number of studies with ``status``."""
        return sum(1 for o in self.outcomes if o.status == status)

    @property
    def failed(self) -> tuple[StudyOutcome, ...]:
        """The studies that failed (or were not run because the cohort was interrupted)."""
        return tuple(o for o in self.outcomes if not o.ok)

    @property
    def all_ok(self) -> bool:
        """True when every study has a complete output set."""
        return not self.failed

    def rows(self) -> list[dict[str, str]]:
        """The summary rows (as written to ``cohort_summary.csv``)."""
        with self.summary_csv.open(encoding="utf-8", newline="") as f:
            return list(csv.DictReader(f))

    def to_dataframe(self) -> Any:
        """The summary as a ``pandas.DataFrame`` (numbers parsed; needs pandas)."""
        import pandas as pd

        return pd.read_csv(self.summary_csv, keep_default_na=False, na_values=[""])

    def describe(self) -> str:
        """One line: counts per status and where the summary is."""
        counts = ", ".join(f"{self.count(s)} {s}" for s in STATUSES if self.count(s))
        return (
            f"{len(self.outcomes)} studies: {counts or 'none'} in {self.elapsed_s:.0f} s; "
            f"summary {self.summary_csv}"
        )


# --------------------------------------------------------------------------------------
# the manifest
# --------------------------------------------------------------------------------------
def _text(value: Any) -> Any:
    """A manifest value as the option table reads it: text, bools and lists as they are."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return value
    if isinstance(value, list | tuple):
        return [str(v) for v in value]
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return str(value).strip()


def _read_rows(path: Path) -> list[dict[str, Any]]:
    suffix = path.suffix.lower()
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"cohort manifest {path} does not exist") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise InputDataError(
            f"cohort manifest {path}: cannot read it ({exc}); give a UTF-8 CSV or YAML file"
        ) from exc
    if suffix in (".yaml", ".yml"):
        yaml: Any = importlib.import_module("yaml")  # a dependency of dask

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise InputDataError(f"cohort manifest {path}: not valid YAML ({exc})") from exc
        defaults: Mapping[str, Any] = {}
        if isinstance(data, Mapping):
            defaults = data.get("defaults") or {}
            data = data.get("studies")
            if not isinstance(defaults, Mapping):
                raise InputDataError(
                    f"cohort manifest {path}: 'defaults' must be a mapping of option -> value"
                )
        if not isinstance(data, list) or not all(isinstance(r, Mapping) for r in data):
            raise InputDataError(
                f"cohort manifest {path}: expected a list of studies (mappings with id, "
                "workflow, study and options), or a mapping with 'studies' (and optional "
                "'defaults')"
            )
        return [{**defaults, **r} for r in data]
    if suffix not in (".csv", ".tsv", ".txt"):
        raise InputDataError(
            f"cohort manifest {path}: unknown format {suffix or '(no suffix)'}; give a .csv "
            "or a .yaml/.yml file"
        )
    reader = csv.DictReader(io.StringIO(text), delimiter="\t" if suffix == ".tsv" else ",")
    if reader.fieldnames is None:
        raise InputDataError(f"cohort manifest {path} is empty; the first line names the columns")
    rows = []
    for raw in reader:
        if None in raw:
            raise InputDataError(
                f"cohort manifest {path}, line {reader.line_num}: more values than columns "
                "(a value with a comma must be quoted)"
            )
        row = {str(k).strip(): (v or "").strip() for k, v in raw.items() if k is not None}
        if not any(row.values()) or str(row.get("id", "")).startswith("#"):
            continue  # blank and commented-out rows
        rows.append(row)
    return rows


def _path_columns() -> dict[str, bool]:
    """Option columns that name files: column -> whether the value may also be plain text."""
    out = {}
    for o in OPTIONS:
        meta = o.metavar or ""
        if "PATH" in meta or "FILE" in meta:
            out[o.column] = "|" in meta  # "FACTOR|FILE": text or a file
    return out


def _absolute(value: str, base: Path, *, maybe_text: bool) -> str:
    p = Path(value).expanduser()
    if p.is_absolute():
        return str(p)
    if maybe_text and not (base / p).exists() and p.suffix.lower() != ".json":
        return value  # e.g. a calibration factor '9.1 cps/MBq'
    return str((base / p).resolve())


def read_cohort_manifest(manifest: str | Path) -> list[ManifestRow]:
    """Read and check a cohort manifest (CSV or YAML).

    Whole-file problems (missing, unreadable, no ``id``/``workflow``/``study`` column, no
    row) raise :class:`~dosimetry.errors.InputDataError`; a problem of one row (repeated
    id, unknown workflow, bad option) is recorded in that row's ``error`` so that the other
    rows still run.

    Parameters
    ----------
    manifest
        Path of a ``.csv`` (``.tsv``) or ``.yaml``/``.yml`` file. A YAML manifest is a list
        of mappings, or a mapping with ``studies`` (the list) and ``defaults`` (option
        values for every row).

    Returns
    -------
    list[ManifestRow]
        One per study row, in order.
    """
    path = Path(manifest)
    if path.is_dir():
        raise InputDataError(f"cohort manifest {path} is a folder; give the CSV or YAML file")
    rows = _read_rows(path)
    if not rows:
        raise InputDataError(f"cohort manifest {path} lists no study")
    columns = set().union(*(r.keys() for r in rows))
    missing = [c for c in ("id", "workflow", "study") if c not in columns]
    if missing:
        raise InputDataError(
            f"cohort manifest {path}: no column {', '.join(missing)}; every manifest has the "
            "columns id, workflow and study, then one column per option (e.g. activity, "
            "method, calibration)"
        )
    base = path.resolve().parent
    paths = _path_columns()
    first: dict[str, int] = {}
    out = []
    for n, raw in enumerate(rows, start=1):
        values = {str(k): _text(v) for k, v in raw.items()}
        ident = str(values.pop("id", "") or "")
        workflow = str(values.pop("workflow", "") or "").strip().lower()
        study_value = values.pop("study", "")
        studies = study_value if isinstance(study_value, list) else str(study_value).split(";")
        study = tuple(
            _absolute(s.strip(), base, maybe_text=False) for s in studies if s and s.strip()
        )
        options = {k: v for k, v in values.items() if v not in ("", None, [])}
        for col, maybe_text in paths.items():
            if isinstance(options.get(col), str):
                options[col] = _absolute(options[col], base, maybe_text=maybe_text)
        error = _row_error(n, ident, workflow, study, options, first, path.name)
        if ident and ident not in first:
            first[ident] = n
        out.append(ManifestRow(n, ident, workflow, study, options, error))
    return out


def _row_error(
    n: int,
    ident: str,
    workflow: str,
    study: tuple[str, ...],
    options: Mapping[str, Any],
    first: Mapping[str, int],
    source: str,
) -> str | None:
    where = f"row {n}"
    if not ident:
        return f"{where}: the id is empty; each row needs an id (its output sub-folder name)"
    if not _ID_PATTERN.fullmatch(ident) or ident in (".", "..") or ident == SUMMARY_NAME:
        return (
            f"{where}: id {ident!r} is not a usable folder name; use letters, digits, '.', "
            f"'_' and '-' (not starting with '.', at most 128 characters, not {SUMMARY_NAME!r})"
        )
    if ident in first:
        return (
            f"{where}: id {ident!r} is repeated (first on row {first[ident]}); each row writes "
            f"OUT/<id>/, so ids must be unique: give this row its own id"
        )
    if workflow not in WORKFLOWS:
        return (
            f"{where} (id {ident}): workflow {workflow or '(empty)'!r} is unknown; valid: "
            f"{', '.join(sorted(WORKFLOWS))}"
        )
    if not study:
        return f"{where} (id {ident}): the study column is empty; give the study folder"
    if workflow == "plan" and len(study) > 1:
        return (
            f"{where} (id {ident}): plan reads one study folder, got {len(study)} (separated "
            "by ';'); give one folder per row"
        )
    try:
        _workflow_kwargs(workflow, options, f"{source} row {n} (id {ident})")
    except (DosimetryError, OSError) as exc:
        return f"{where} (id {ident}): {cli_message(str(exc))}"
    return None


def _workflow_kwargs(workflow: str, options: Mapping[str, Any], source: str) -> dict[str, Any]:
    """The row's options -> keyword arguments of the workflow (the CLI's conversion)."""
    extra = {k: options[k] for k in _EXTRA_COLUMNS.get(workflow, ()) if k in options}
    shared = {
        k: v for k, v in options.items() if k not in extra and k not in ("anonymize", "overwrite")
    }
    kwargs = from_mapping(shared, workflow, source)
    kwargs.update(extra)
    return kwargs


# --------------------------------------------------------------------------------------
# one study (runs on a worker)
# --------------------------------------------------------------------------------------
class _StudyLog(logging.Handler):
    """Collects this thread's step lines and package warnings for ``OUT/<id>.log``."""

    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.lines: list[str] = []
        self._thread = threading.get_ident()

    def line(self, text: str) -> None:
        self.lines.append(f"{datetime.now().strftime('%H:%M:%S')} {text}")

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread == self._thread:
            self.line(f"{record.levelname} {record.name}: {record.getMessage()}")

    @contextlib.contextmanager
    def attached(self) -> Iterator[_StudyLog]:
        logger = logging.getLogger("dosimetry")
        logger.addHandler(self)
        try:
            yield self
        finally:
            logger.removeHandler(self)


def _usable_cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def _limit_threads() -> None:
    """On a worker with several Dask threads, share the cores between the studies running
    side by side (Numba's threads are set per calling thread)."""
    try:
        from distributed import get_worker

        nthreads = get_worker().state.nthreads
    except (ImportError, ValueError, AttributeError):
        return
    import numba

    share = max(1, _usable_cores() // max(1, nthreads))
    numba.set_num_threads(min(int(getattr(numba.config, "NUMBA_NUM_THREADS", share)), share))


def _peak_rss_mb() -> str:
    """Peak resident memory of this (worker) process so far, in MB (empty where unknown)."""
    try:
        import resource
    except ImportError:  # not on Unix
        return ""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return f"{peak / 1e6 if sys.platform == 'darwin' else peak * 1024 / 1e6:.0f}"


def _worker_name() -> str:
    try:
        from distributed import get_worker

        return str(get_worker().address)
    except (ImportError, ValueError):
        return f"pid {os.getpid()}"


def _message(exc: BaseException) -> str:
    """One line for the summary: the project's message, or the exception's type and text."""
    from .._text import terminal

    text = cli_message(str(exc)).replace("\n", " ").strip()
    if isinstance(exc, DosimetryError | OSError):
        return terminal(text)
    if isinstance(exc, MemoryError):
        return "not enough memory for this study (see the log; fewer workers give each more)"
    return terminal(f"internal error: {type(exc).__name__}: {text} (traceback in the log)")


def _combined_hash(result: WorkflowResult) -> str:
    hashes = [i.sha256 for i in result.inputs if i.sha256]
    if not hashes:
        return ""
    return hashlib.sha256("\n".join(hashes).encode("ascii")).hexdigest()


def _kernel_identity(result: WorkflowResult) -> str:
    dose = result.provenance.get("dose") if isinstance(result.provenance, Mapping) else None
    kernel = dose.get("kernel") if isinstance(dose, Mapping) else None
    records = kernel if isinstance(kernel, list) else [kernel] if kernel else []
    parts = []
    for k in records:
        if not isinstance(k, Mapping):
            continue
        voxel = "x".join(f"{float(v):g}" for v in k.get("voxel_mm", ()))
        parts.append(
            " ".join(
                str(x)
                for x in (
                    k.get("source", ""),
                    k.get("library_version", ""),
                    k.get("nuclide", ""),
                    k.get("medium", ""),
                    f"{voxel}mm" if voxel else "",
                    f"sha256:{k.get('sha256', '')}" if k.get("sha256") else "",
                )
                if x
            )
        )
    return " | ".join(parts)


def _study_info(result: WorkflowResult) -> dict[str, str]:
    from .. import __version__
    from .._text import csv_cell

    activity = result.administered_activity_bq
    return {
        "agent": csv_cell(result.agent),
        "nuclide": result.nuclide,
        "method": result.method,
        "administered_activity_bq": "" if activity is None else f"{activity:.6g}",
        "input_sha256": _combined_hash(result),
        "software": f"dosimetry {__version__}",
        "kernel": csv_cell(_kernel_identity(result)),
        # the checks that spoke (code:level, accepted ones marked), for filtering a cohort
        "findings": "; ".join(
            f"{f.code}:{'accepted' if f.accepted else f.level}"
            for f in result.findings
            if f.level != "info"
        ),
        "patient_id": csv_cell(result.patient.get("id", "")),
        "patient_name": csv_cell(result.patient.get("name", "")),
    }


def _write_text_atomic(path: Path, text: str) -> None:
    tmp = path.parent / f".{path.name}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _skipped(task: StudyTask, folder: Path) -> StudyOutcome:
    """The outcome of a study whose complete output set exists: rows from its files."""
    from ..io.outputs import read_manifest

    manifest = read_manifest(folder) or {}
    cohort = manifest.get("cohort")
    recorded = cohort.get("info") if isinstance(cohort, Mapping) else None
    info = {str(k): str(v) for k, v in (recorded or {}).items()}
    rows: tuple[dict[str, str], ...] = ()
    table = folder / "dose_table.csv"
    if table.is_file():
        with table.open(encoding="utf-8", newline="") as f:
            rows = tuple(dict(r) for r in csv.DictReader(f))
    info.setdefault("software", str(manifest.get("software", "")))
    return StudyOutcome(
        task.id,
        task.row,
        "skipped",
        f"complete output set from {manifest.get('created', 'an earlier run')} kept",
        rows,
        info,
        0.0,
        0,
    )


def run_study(task: StudyTask) -> StudyOutcome:
    """Run one study of a cohort and write ``OUT/<id>/`` as a complete set (a Dask task).

    Never raises for a study's own problem: the outcome carries ``status="failed"`` and a
    one-line message, and ``OUT/<id>.log`` the steps, warnings and traceback.

    Parameters
    ----------
    task
        The study (see :class:`StudyTask`).

    Returns
    -------
    StudyOutcome
        ``ok`` (written), ``skipped`` (a complete set was there) or ``failed``.
    """
    from ..io.outputs import OutputSet, is_complete
    from .save import write_into

    t0 = time.perf_counter()
    started = datetime.now(UTC).isoformat(timespec="seconds")
    out = Path(task.out)
    folder = out / task.id
    log_path = out / f"{task.id}.log"
    info: dict[str, str] = {
        "worker": _worker_name(),
        "started": started,
        "output": str(folder),
        "log": str(log_path),
    }
    study_log = _StudyLog()
    study_log.line(
        f"cohort study {task.id} (manifest row {task.row}, attempt {task.attempt}): "
        f"{task.workflow} {'; '.join(task.study)} on {info['worker']}"
    )
    for key, value in sorted(task.options.items()):
        study_log.line(f"option {key} = {value}")
    compute_s = write_s = 0.0
    try:
        changed = {k: v for k, v in task.parameters.items() if _parameters.get(k) != v}
        for key, value in sorted(changed.items()):
            study_log.line(f"parameter {key} = {value:g} (from the caller's snapshot)")
        with study_log.attached(), _parameters.override(**task.parameters):
            if not task.overwrite and is_complete(folder):
                return _skipped(task, folder)
            kwargs = _workflow_kwargs(task.workflow, task.options, f"{task.source} row {task.row}")
            folders = [Path(s) for s in task.study]
            for f in folders:
                if not f.is_dir():
                    raise FileNotFoundError(f"study folder {f} does not exist (or is not a folder)")
            anonymize = task.anonymize or _bool(task.options.get("anonymize", False))
            outset = OutputSet(
                folder,
                overwrite=task.overwrite,
                input_dirs=folders,
                option=f"cohort output for id {task.id}",
                metadata={"command": "cohort"},
            )
            _limit_threads()
            module, name = task.target
            function = getattr(importlib.import_module(module), name)
            study: Any = folders[0] if len(folders) == 1 else folders
            t1 = time.perf_counter()
            result: WorkflowResult = function(study, progress=study_log.line, **kwargs)
            compute_s = time.perf_counter() - t1
            info.update(_study_info(result))
            t2 = time.perf_counter()
            staging = outset.begin()
            try:
                write_into(
                    result, staging, anonymize=anonymize, figures=task.figures, input_dirs=folders
                )
                kept = {
                    k: v for k, v in info.items() if not (anonymize and k.startswith("patient"))
                }
                outset.metadata["result"] = {
                    "kind": result.kind,
                    "agent": result.agent,
                    "method": result.method,
                }
                outset.metadata["cohort"] = {
                    "id": task.id,
                    "row": task.row,
                    "workflow": task.workflow,
                    "manifest": task.source,
                    "info": kept,
                }
                outset.commit()
            except BaseException:
                outset.abort()
                raise
            write_s = time.perf_counter() - t2
            rows = tuple(result.table.csv_rows())
            n_find = sum(1 for f in result.findings if f.level != "info")
            message = f"{n_find} finding(s): see the report" if n_find else ""
            study_log.line(f"done: {len(rows)} VOIs in {time.perf_counter() - t0:.1f} s")
            status = "ok"
    except Exception as exc:  # a study's failure is reported, never raised
        message = _message(exc)
        study_log.line(f"FAILED: {message}")
        study_log.lines.append(traceback.format_exc())
        rows = ()
        status = "failed"
    elapsed = time.perf_counter() - t0
    info.update(
        compute_s=f"{compute_s:.2f}",
        write_s=f"{write_s:.2f}",
        elapsed_s=f"{elapsed:.2f}",
        worker_peak_rss_mb=_peak_rss_mb(),
    )
    try:
        out.mkdir(parents=True, exist_ok=True)
        _write_text_atomic(log_path, "\n".join(study_log.lines) + "\n")
    except OSError as exc:
        log.warning("cannot write the log of study %s to %s: %s", task.id, log_path, exc)
        info["log"] = ""
    return StudyOutcome(task.id, task.row, status, message, rows, info, elapsed, task.attempt)


# --------------------------------------------------------------------------------------
# the cluster
# --------------------------------------------------------------------------------------
def _input_bytes(folders: Sequence[str]) -> int:
    total = 0
    for folder in folders:
        for dirpath, _, files in os.walk(folder):
            for name in files:
                with contextlib.suppress(OSError):
                    st = os.stat(os.path.join(dirpath, name), follow_symlinks=False)
                    total += st.st_size
    return total


def _machine_memory() -> int:
    from distributed.system import MEMORY_LIMIT  # cgroup- and rlimit-aware

    return int(MEMORY_LIMIT)


def plan_cluster(
    n_studies: int,
    largest_input_bytes: int = 0,
    *,
    workers: int | None = None,
    cores: int | None = None,
    memory_bytes: int | None = None,
) -> ClusterPlan:
    """Size the embedded cluster for a cohort.

    Workers: one per usable core, fewer when the machine's memory (85 %) does not hold that
    many copies of the largest study's estimate, never more than the studies to run. Each
    worker runs one study at a time; the study's Numba/FFT/ITK threads get the cores the
    workers leave (cores // workers), so the threads never outnumber the cores.

    Parameters
    ----------
    n_studies
        Studies to run.
    largest_input_bytes
        Size of the largest study's input files (bytes), for the memory estimate.
    workers
        Force this many workers (the memory check still warns).
    cores, memory_bytes
        The machine (default: usable cores of this process, memory limit of this process).

    Returns
    -------
    ClusterPlan
    """
    cores = cores or _usable_cores()
    memory = memory_bytes or _machine_memory()
    study = int(_STUDY_MEMORY_BASE_BYTES + _STUDY_MEMORY_PER_INPUT_BYTE * largest_input_bytes)
    budget = _MEMORY_SHARE * memory
    by_memory = max(1, int(budget // study))
    if workers is not None:
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise InputDataError(
                f"--workers (workers=) must be a positive integer, got {workers!r}"
            )
        n = workers
        if n > by_memory:
            log.warning(
                "%d workers x ~%.1f GB per study exceed %.0f %% of the memory (%.1f GB): "
                "workers may be restarted (and studies retried) when memory runs out",
                n,
                study / 1e9,
                100 * _MEMORY_SHARE,
                memory / 1e9,
            )
    else:
        n = max(1, min(cores, by_memory, max(1, n_studies)))
    limit = int(max(study, budget / n))
    return ClusterPlan(n, max(1, cores // n), limit, study, cores, memory)


class _PinCores(WorkerPlugin):
    """Pin each embedded worker process to its own cores (Linux), so that the FFT pool,
    Numba and ITK, which size themselves from the usable cores, stay on them."""

    name = "dosimetry-pin-cores"

    def __init__(self, cores_by_name: Mapping[str, Sequence[int]]):
        self.cores_by_name = {str(k): list(v) for k, v in cores_by_name.items()}

    def setup(self, worker: Any) -> None:
        cores = self.cores_by_name.get(str(worker.name))
        if not cores or not hasattr(os, "sched_setaffinity"):
            return
        with contextlib.suppress(OSError):
            for tid in os.listdir("/proc/self/task"):
                with contextlib.suppress(OSError):
                    os.sched_setaffinity(int(tid), cores)


def _worker_environ_names() -> set[str]:
    """Variables a Dask nanny may write into this process's environment when it starts a
    worker (its pre-spawn variables, the thread counts, ``PYTHONHASHSEED``)."""
    import dask

    spawn = dask.config.get("distributed.nanny.pre-spawn-environ", {}) or {}
    return {*_THREAD_VARIABLES, *UNSET_WORKER_ENVIRON, "PYTHONHASHSEED", *map(str, spawn)}


def _restore_environ(saved: Mapping[str, str | None]) -> None:
    """Put back this process's values of ``saved`` (a Dask nanny writes its pre-spawn
    variables into the parent's ``os.environ`` every time it starts a worker)."""
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def _embedded_cluster(plan: ClusterPlan) -> Any:
    import dask
    from distributed import LocalCluster

    threads = str(plan.threads_per_study)
    env = dict.fromkeys(_THREAD_VARIABLES, threads)
    spawn = dict(dask.config.get("distributed.nanny.pre-spawn-environ", {}) or {})
    # Libraries that size their pools when loaded (OpenMP, BLAS, ITK) get theirs before the
    # worker starts. NUMBA_NUM_THREADS only through ``env`` (set in the worker before it
    # imports Numba): the nanny also writes pre-spawn variables into this process's
    # environment, and Numba here refuses a NUMBA_NUM_THREADS that differs from the size of
    # its running thread pool.
    spawn.update({k: v for k, v in env.items() if k != "NUMBA_NUM_THREADS"})
    spawn.update(dict.fromkeys(UNSET_WORKER_ENVIRON))  # None: Dask does not set it
    with dask.config.set(
        {
            **QUIET_WORKER_CONFIG,
            # a killed worker fails its task at once; run() retries it (bounded)
            "distributed.scheduler.allowed-failures": 0,
            # a worker holds only the study it runs (no second one queued on it, which a
            # killed worker would take down too)
            "distributed.scheduler.worker-saturation": 1.0,
            "distributed.nanny.pre-spawn-environ": spawn,
        }
    ):
        cluster = LocalCluster(
            n_workers=plan.n_workers,
            threads_per_worker=1,
            processes=True,
            memory_limit=plan.memory_limit_bytes,
            # a free port (the HTTP server starts even without bokeh, and a busy :8787
            # would only give a warning); the link is printed
            dashboard_address=":0",
            silence_logs=logging.ERROR,
            env=env,
        )
    return cluster


def _pin_plugin(plan: ClusterPlan) -> _PinCores | None:
    if not hasattr(os, "sched_getaffinity"):
        return None
    usable = sorted(os.sched_getaffinity(0))
    k = plan.threads_per_study
    if plan.n_workers * k > len(usable) or plan.n_workers < 2:
        return None
    return _PinCores({str(i): usable[i * k : (i + 1) * k] for i in range(plan.n_workers)})


def _has_bokeh() -> bool:
    return importlib.util.find_spec("bokeh") is not None


def _check_workers(client: Any) -> None:
    """Every worker must run this version of the package (the same physics)."""
    from .. import __version__

    try:
        versions = client.run(_package_version)
    except Exception as exc:
        raise InputDataError(
            f"the Dask workers cannot run dosimetry ({type(exc).__name__}: {exc}); install "
            f"dosimetry {__version__} in the workers' environment"
        ) from exc
    if not versions:
        raise InputDataError(
            "the Dask cluster has no worker; start workers (dask worker SCHEDULER) first"
        )
    other = {a: v for a, v in versions.items() if v != __version__}
    if other:
        shown = ", ".join(f"{a}: {v}" for a, v in sorted(other.items())[:3])
        raise InputDataError(
            f"Dask workers run another dosimetry version ({shown}; here {__version__}): "
            "install the same version on every worker"
        )


#: How long a cohort waits for the first worker of an existing cluster (s), e.g. while a
#: batch system starts the worker jobs.
WAIT_FOR_WORKERS_S = 120.0


def _wait_for_a_worker(client: Any, bar: _Bar) -> None:
    if client.scheduler_info().get("workers"):
        return
    bar.note(f"waiting up to {WAIT_FOR_WORKERS_S:.0f} s for a Dask worker to join the scheduler")
    try:
        client.wait_for_workers(1, timeout=WAIT_FOR_WORKERS_S)
    except (TimeoutError, OSError) as exc:
        raise InputDataError(
            f"no Dask worker joined the scheduler in {WAIT_FOR_WORKERS_S:.0f} s; start workers "
            "('dask worker SCHEDULER_ADDRESS' or your batch system's jobs) and run again"
        ) from exc


def _package_version() -> str:
    from .. import __version__

    return __version__


# --------------------------------------------------------------------------------------
# the summary
# --------------------------------------------------------------------------------------
def _summary_rows(
    rows: Sequence[ManifestRow], outcomes: Sequence[StudyOutcome], anonymize: bool
) -> list[dict[str, str]]:
    from .._text import csv_cell

    out = []
    for r, o in zip(rows, outcomes, strict=True):
        base = dict.fromkeys(SUMMARY_COLUMNS, "")
        base.update({k: v for k, v in o.info.items() if k in base})
        base.update(
            id=csv_cell(r.id),
            row=str(r.row),
            workflow=csv_cell(r.workflow),
            study=csv_cell("; ".join(r.study)),
            status=o.status,
            message=csv_cell(o.message),
            attempts=str(o.attempts),
        )
        if anonymize:
            for k in _PRIVATE_COLUMNS:
                base.pop(k, None)
        for voi in o.rows or ({},):
            row = dict(base)
            row.update({k: v for k, v in voi.items() if k in TABLE_COLUMNS})
            out.append(row)
    return out


def _write_summary(
    out: Path, rows: list[dict[str, str]], anonymize: bool
) -> tuple[Path, Path | None]:
    columns = [c for c in SUMMARY_COLUMNS if not (anonymize and c in _PRIVATE_COLUMNS)]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n", extrasaction="ignore")
    w.writeheader()
    w.writerows(rows)
    csv_path = out / f"{SUMMARY_NAME}.csv"
    _write_text_atomic(csv_path, buf.getvalue())
    parquet = None
    if importlib.util.find_spec("pyarrow") is not None:
        parquet = _write_parquet(out / f"{SUMMARY_NAME}.parquet", rows, columns)
    return csv_path, parquet


_TEXT_COLUMNS = {
    "id",
    "workflow",
    "study",
    "status",
    "message",
    "findings",
    "agent",
    "nuclide",
    "method",
    "name",
    "organ",
    "role",
    "notes",
    "worker",
    "started",
    "input_sha256",
    "software",
    "kernel",
    "output",
    "log",
    "patient_id",
    "patient_name",
}


def _write_parquet(path: Path, rows: list[dict[str, str]], columns: list[str]) -> Path | None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    def number(v: str) -> float | None:
        try:
            x = float(v)
        except ValueError:
            return None
        return x if math.isfinite(x) else None

    data: dict[str, list[Any]] = {}
    for c in columns:
        values = [r.get(c, "") for r in rows]
        if c in _TEXT_COLUMNS:
            data[c] = values
        elif c in ("row", "attempts"):
            data[c] = [int(v) if v.strip().lstrip("-").isdigit() else None for v in values]
        else:
            data[c] = [number(v) for v in values]
    tmp = path.parent / f".{path.name}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        pq.write_table(pa.table(data), tmp)
        os.replace(tmp, path)
    except (OSError, pa.ArrowException) as exc:
        log.warning("the Parquet summary %s could not be written: %s", path, exc)
        return None
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return path


# --------------------------------------------------------------------------------------
# progress display
# --------------------------------------------------------------------------------------
def _in_jupyter() -> bool:
    shell = sys.modules.get("IPython")
    if shell is None:
        return False
    try:
        ip = shell.get_ipython()
    except AttributeError:
        return False
    return ip is not None and "IPKernelApp" in getattr(ip, "config", {})


class _Bar:
    """tqdm bar (a widget in JupyterLab, text on a terminal) fed with finished studies."""

    def __init__(self, total: int, show: bool):
        self._bar = None
        if show:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=total, unit="study", desc="cohort", file=sys.stderr)

    def note(self, text: str) -> None:
        log.info("%s", text)
        if self._bar is not None:
            from tqdm.auto import tqdm

            tqdm.write(text, file=sys.stderr)

    def update(self, outcome: StudyOutcome, counts: Mapping[str, int]) -> None:
        if self._bar is not None:
            self._bar.set_postfix({k: v for k, v in counts.items() if v}, refresh=False)
            self._bar.update(1)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


# --------------------------------------------------------------------------------------
# the cohort
# --------------------------------------------------------------------------------------
def _connect(client: Any, scheduler_file: str | Path | None) -> tuple[Any, bool]:
    from distributed import Client

    if client is not None and scheduler_file is not None:
        raise InputDataError("give client= (--scheduler) or scheduler_file=, not both")
    if scheduler_file is not None:
        p = Path(scheduler_file)
        if not p.is_file():
            raise FileNotFoundError(f"--scheduler-file {p} does not exist")
        return Client(scheduler_file=str(p), timeout="30s"), True
    if isinstance(client, str):
        try:
            return Client(client, timeout="30s"), True
        except OSError as exc:
            raise InputDataError(
                f"--scheduler {client}: no Dask scheduler answers there ({exc}); start one "
                "with 'dask scheduler' or leave --scheduler out to use this machine"
            ) from exc
    return client, False


def run(
    manifest: str | Path,
    out: str | Path,
    *,
    client: Any = None,
    scheduler_file: str | Path | None = None,
    workers: int | None = None,
    retries: int = 2,
    anonymize: bool = False,
    overwrite: bool = False,
    figures: bool = True,
    progress: bool | Progress | None = None,
) -> CohortResult:
    """Run every study of a cohort manifest on Dask; write ``OUT/<id>/`` and the summary.

    Parameters
    ----------
    manifest
        CSV or YAML manifest (see :func:`read_cohort_manifest` and the module docstring).
    out
        Cohort output folder (created): ``OUT/<id>/`` per study, ``OUT/<id>.log``,
        ``OUT/cohort_summary.csv`` (+ ``.parquet`` with pyarrow).
    client
        A ``distributed.Client``, or a scheduler address (``"tcp://host:8786"``), to run on
        an existing cluster; default an embedded ``LocalCluster`` (:func:`plan_cluster`),
        closed at the end.
    scheduler_file
        Scheduler file of an existing cluster (``dask scheduler --scheduler-file``).
    workers
        Worker processes of the embedded cluster (default: from cores and memory).
    retries
        How many times a study whose worker died (killed, out of memory) is run again.
    anonymize
        Leave patient identifiers out of the reports and the summary (and the study paths
        out of the summary).
    overwrite
        Recompute every study and replace its previous output set (default: a complete
        set is kept and the study skipped).
    figures
        Draw the report figures (as the single-study command does; ``False`` saves time).
    progress
        ``None``: a progress bar in JupyterLab or on a terminal, nothing otherwise; ``True``
        / ``False``: bar or not; a callable: called with each finished :class:`StudyOutcome`
        (in the client).

    Returns
    -------
    CohortResult

    Raises
    ------
    InputDataError
        The manifest as a whole is unusable, or the cluster cannot run the package.
    KeyboardInterrupt
        Interrupted: the summary lists what finished (the rest ``interrupted``); a rerun
        finishes only what is missing.
    """
    t0 = time.perf_counter()
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise InputDataError(f"--retries (retries=) must be an integer >= 0, got {retries!r}")
    rows = read_cohort_manifest(manifest)
    out_dir = Path(os.path.abspath(os.fspath(out)))
    if out_dir.exists() and not out_dir.is_dir():
        raise InputDataError(f"--out {out_dir} is a file; give a folder for the cohort")
    if client is not None or scheduler_file is not None:
        if workers is not None:
            raise InputDataError(
                "--workers sizes the embedded cluster; with --scheduler/--scheduler-file the "
                "existing cluster's workers run the studies: leave --workers out"
            )
    out_dir.mkdir(parents=True, exist_ok=True)
    source = Path(manifest).name
    snapshot = _parameters.snapshot()
    from ..io.outputs import is_complete

    outcomes: dict[int, StudyOutcome] = {}
    tasks: dict[int, StudyTask] = {}
    for r in rows:
        if r.error is not None:
            outcomes[r.row] = StudyOutcome(r.id, r.row, "failed", r.error, attempts=0)
            continue
        task = StudyTask(
            id=r.id,
            row=r.row,
            workflow=r.workflow,
            target=WORKFLOWS[r.workflow],
            study=r.study,
            options=dict(r.options),
            out=str(out_dir),
            source=source,
            parameters=snapshot,
            anonymize=anonymize,
            figures=figures,
            overwrite=overwrite,
        )
        if not overwrite and is_complete(out_dir / r.id):
            outcomes[r.row] = _skipped(task, out_dir / r.id)
        else:
            tasks[r.row] = task

    callback = progress if callable(progress) else None
    if progress is None:
        show = _in_jupyter() or sys.stderr.isatty()
    else:
        show = progress is True
    bar = _Bar(len(rows), show)
    counts = dict.fromkeys(STATUSES, 0)
    for o in outcomes.values():
        counts[o.status] += 1
        bar.update(o, counts)
        if callback is not None:
            callback(o)

    where = "nothing to run"
    saved_env = {k: os.environ.get(k) for k in _worker_environ_names()}
    own_cluster = None
    own_client = False
    dask_client = None
    interrupted = False
    # input size as the proxy of a study's cost: the largest go first, so that no worker
    # starts a long study while the others run out of work (longest processing time first)
    sizes = {row: _input_bytes(t.study) for row, t in tasks.items()}
    try:
        if tasks:
            dask_client, own_client = _connect(client, scheduler_file)
            if dask_client is None:
                largest = max(sizes.values())
                plan = plan_cluster(len(tasks), largest, workers=workers)
                where = f"embedded LocalCluster: {plan.describe()}"
                own_cluster = _embedded_cluster(plan)
                from distributed import Client

                dask_client = Client(own_cluster)
                own_client = True
                pin = _pin_plugin(plan)
                if pin is not None:
                    dask_client.register_plugin(pin)
            else:
                where = f"Dask scheduler {dask_client.scheduler.address}"
                _wait_for_a_worker(dask_client, bar)
            _check_workers(dask_client)
            bar.note(f"cohort: {len(tasks)} of {len(rows)} studies to run on {where}")
            if _has_bokeh() and dask_client.dashboard_link:
                bar.note(f"Dask dashboard: {dask_client.dashboard_link}")
            ordered_tasks = dict(sorted(tasks.items(), key=lambda kv: (-sizes[kv[0]], kv[0])))
            _execute(dask_client, ordered_tasks, outcomes, retries, bar, counts, callback)
    except KeyboardInterrupt:
        interrupted = True
        raise
    finally:
        # the workers stop first, so that no study is still being written while the
        # summary says what finished
        if own_client and dask_client is not None:
            with contextlib.suppress(Exception):
                dask_client.close()
        if own_cluster is not None:
            with contextlib.suppress(Exception):
                own_cluster.close()
        _restore_environ(saved_env)
        for r in rows:
            if r.row in outcomes:
                continue
            if r.row in tasks and is_complete(out_dir / r.id):
                # its worker committed the set after the interruption was asked for
                outcomes[r.row] = replace(
                    _skipped(tasks[r.row], out_dir / r.id),
                    status="ok",
                    message="finished while the cohort was being interrupted",
                    attempts=1,
                )
                continue
            outcomes[r.row] = StudyOutcome(
                r.id,
                r.row,
                "interrupted",
                "not finished: the cohort was interrupted; run it again to finish",
                attempts=0,
            )
        bar.close()
        ordered = tuple(outcomes[r.row] for r in rows)
        csv_path, parquet = _write_summary(
            out_dir, _summary_rows(rows, ordered, anonymize), anonymize
        )
        if interrupted:
            log.warning("cohort interrupted; summary of what finished in %s", csv_path)
    result = CohortResult(out_dir, ordered, csv_path, parquet, time.perf_counter() - t0, where)
    log.info("cohort: %s", result.describe())
    return result


def _execute(
    client: Any,
    tasks: Mapping[int, StudyTask],
    outcomes: dict[int, StudyOutcome],
    retries: int,
    bar: _Bar,
    counts: dict[str, int],
    callback: Progress | None,
) -> None:
    """Submit one task per study, collect outcomes, resubmit studies whose worker died."""
    from distributed import as_completed

    current = dict(tasks)
    futures: dict[Any, int] = {}

    def submit(task: StudyTask) -> Any:
        key = f"cohort-{task.id}-{task.attempt}-{uuid.uuid4().hex[:8]}"
        fut = client.submit(run_study, task, key=key, pure=False)
        futures[fut] = task.row
        return fut

    for task in current.values():
        submit(task)
    pending = as_completed(list(futures))
    try:
        for fut in pending:
            row = futures.pop(fut)
            task = current[row]
            try:
                outcome = fut.result()
            except Exception as exc:  # the worker died, or the task could not run at all
                if task.attempt <= retries:
                    log.warning(
                        "study %s: %s (%s); running it again (attempt %d of %d)",
                        task.id,
                        type(exc).__name__,
                        exc,
                        task.attempt + 1,
                        retries + 1,
                    )
                    current[row] = replace(task, attempt=task.attempt + 1)
                    pending.add(submit(current[row]))
                    continue
                outcome = StudyOutcome(
                    task.id,
                    task.row,
                    "failed",
                    f"the worker running this study died {task.attempt} time(s) "
                    f"({type(exc).__name__}); out of memory? run with fewer --workers, or "
                    "see the Dask worker logs",
                    attempts=task.attempt,
                )
            finally:
                fut.release()
            outcomes[row] = outcome
            counts[outcome.status] += 1
            bar.update(outcome, counts)
            if callback is not None:
                callback(outcome)
    except BaseException:
        with contextlib.suppress(Exception):
            client.cancel(list(futures))
        raise
