"""The one table of workflow options: the command line and cohort manifests both read it.

Each :class:`Option` names its command-line long option (``--half-life``), the manifest
column (``half_life``: dashes become underscores), the workflow keyword it feeds
(``effective_half_life_s``), how its text is converted, and which workflows take it.
:func:`add_options` builds an ``argparse`` sub-parser from the table, :func:`from_args`
and :func:`from_mapping` (a manifest row) turn values into the workflow's keyword
arguments -- the same conversion both ways, so a cohort row behaves exactly like the
single-study command.
"""

from __future__ import annotations

import argparse
import csv
import fnmatch
import io
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from ..errors import InputDataError

__all__ = [
    "Option",
    "OPTIONS",
    "WORKFLOWS",
    "add_options",
    "from_args",
    "from_mapping",
    "option_for_keyword",
    "cli_message",
    "parse_half_life",
    "parse_datetime",
    "expand_half_lives",
    "read_kinetics_file",
]

#: workflow name -> (module, function) it runs
WORKFLOWS: dict[str, tuple[str, str]] = {
    "plan": ("dosimetry.workflows.pet_plan", "run_folder"),
    "spect": ("dosimetry.workflows.spect", "run_folder"),
}


def parse_half_life(text: str) -> tuple[str, float]:
    """``"kidney_left=40h"`` / ``"lesion*=70 h"`` -> (VOI name or pattern, seconds)."""
    from ..units import parse_duration

    if "=" not in text:
        raise InputDataError(
            f"--half-life {text!r}: write VOI=DURATION, e.g. --half-life kidney_left=40h "
            "(a pattern such as 'lesion*=70h' applies to every matching VOI)"
        )
    voi, value = text.split("=", 1)
    voi = voi.strip()
    value = value.strip()
    m = re.fullmatch(r"([0-9.eE+\-]+)\s*([A-Za-z]+)", value)
    if not voi or not m:
        raise InputDataError(
            f"--half-life {text!r}: write VOI=DURATION with a unit, e.g. kidney_left=40h"
        )
    seconds = parse_duration(f"{m.group(1)} {m.group(2)}", arg="--half-life")
    if not math.isfinite(seconds) or seconds <= 0:
        raise InputDataError(f"--half-life {text!r}: the half-life must be positive")
    return voi, seconds


def expand_half_lives(
    spec: Mapping[str, float] | None, voi_names: Iterable[str]
) -> dict[str, float] | None:
    """Apply exact names and shell patterns (``lesion*``) of a half-life spec to VOIs;
    an exact name wins over a pattern. A name or pattern that matches no VOI is an error."""
    if not spec:
        return None
    names = list(voi_names)
    out: dict[str, float] = {}
    for key, value in spec.items():
        if any(ch in key for ch in "*?["):
            hits = [n for n in names if fnmatch.fnmatchcase(n, key)]
        else:
            hits = [key] if key in names else []
        if not hits:
            raise InputDataError(
                f"--half-life {key}: matches no VOI; VOIs: {', '.join(names) or 'none'}"
            )
        for n in hits:
            if n not in out or not any(ch in key for ch in "*?["):
                out[n] = float(value)
    return out


def parse_datetime(text: str) -> datetime:
    """``"2026-12-01 10:00"`` (or ISO 8601 with ``T``, seconds optional) -> datetime."""
    t = str(text).strip()
    for fmt in ("%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"):
        try:
            return datetime.strptime(t, fmt)
        except ValueError:
            continue
    raise InputDataError(f"date and time {text!r}: write 'YYYY-MM-DD HH:MM' (24 h clock)")


def read_kinetics_file(path: str | Path) -> dict[str, float]:
    """Per-VOI effective half-lives from a CSV (columns ``voi`` and
    ``effective_half_life_h``, optional ``source``) or a YAML/JSON mapping ``{voi: "40 h"}``."""
    from ..units import parse_duration

    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputDataError(f"--kinetics: cannot read {p}: {exc}") from exc
    out: dict[str, float] = {}
    if p.suffix.lower() in (".yaml", ".yml", ".json"):
        data: Any
        if p.suffix.lower() == ".json":
            import json

            data = json.loads(text)
        else:
            try:
                import yaml
            except ImportError as exc:
                raise InputDataError(
                    "--kinetics: reading YAML needs PyYAML (pip install pyyaml); or give a CSV "
                    "with columns voi,effective_half_life_h"
                ) from exc
            data = yaml.safe_load(text)
        if not isinstance(data, Mapping):
            raise InputDataError(f"--kinetics {p}: expected a mapping VOI -> half-life")
        for voi, value in data.items():
            v = value if isinstance(value, str) else f"{value} h"
            out[str(voi)] = parse_duration(v, arg="--kinetics")
        return out
    reader = csv.DictReader(io.StringIO(text))
    if reader.fieldnames is None or not {"voi", "effective_half_life_h"} <= set(reader.fieldnames):
        raise InputDataError(
            f"--kinetics {p}: the first line must name the columns voi,effective_half_life_h"
            "[,source]"
        )
    for row in reader:
        voi = (row.get("voi") or "").strip()
        if not voi:
            continue
        try:
            hours = float(row["effective_half_life_h"])
        except ValueError as exc:
            raise InputDataError(f"--kinetics {p}: {voi}: not a number of hours") from exc
        if not math.isfinite(hours) or hours <= 0:
            raise InputDataError(f"--kinetics {p}: {voi}: the half-life must be positive")
        out[voi] = hours * 3600.0
    return out


def _header_value(key: str, text: str) -> Any:
    """One ``--header KEY=VALUE`` value converted to what the readers take."""
    from ..units import parse_activity, parse_duration

    t = str(text).strip()
    if key in ("acquisition_time", "injection_time"):
        return parse_datetime(t)
    if key == "allow_incomplete":
        return _bool(t)
    if key == "allow_nonuniform":
        return "resample" if t.lower() == "resample" else _bool(t)
    if key == "injected_activity_bq":
        return parse_activity(t, arg=f"--header {key}")
    if key in ("half_life_s", "acquisition_duration_s"):
        return parse_duration(t, arg=f"--header {key}") if not _is_number(t) else _float(t)
    if key in ("decay_correction", "patient_sex"):
        return t.upper()
    if key in ("nuclide", "energy_window"):
        return t
    return _float(t)  # weights, heights, slopes, intercepts, unit scales


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def parse_header_override(text: str) -> tuple[str, Any]:
    """``"decay_correction=START"`` -> ``("decay_correction", "START")``: a header value of
    the study's series stated by the user (the readers' overrides, recorded in the
    provenance).

    >>> parse_header_override("injection_time=2024-03-05 09:12")
    ('injection_time', datetime.datetime(2024, 3, 5, 9, 12))
    >>> parse_header_override("allow_incomplete=yes")
    ('allow_incomplete', True)
    """
    from ..io.study import known_overrides

    key, sep, value = str(text).partition("=")
    key = key.strip()
    known = known_overrides()
    if not sep or key not in known:
        raise InputDataError(
            f"--header {text!r}: write KEY=VALUE with KEY one of {', '.join(sorted(known))}"
        )
    return key, _header_value(key, value)


def _series(text: str) -> int | str:
    t = str(text).strip()
    return int(t) if re.fullmatch(r"-?\d+", t) else t


def _bool(text: str | bool) -> bool:
    if isinstance(text, bool):
        return text
    t = str(text).strip().lower()
    if t in ("true", "yes", "1", "on"):
        return True
    if t in ("false", "no", "0", "off", ""):
        return False
    raise InputDataError(f"{text!r} is not a yes/no value; write true or false")


def _float(text: str) -> float:
    try:
        v = float(text)
    except ValueError as exc:
        raise InputDataError(f"{text!r} is not a number") from exc
    if not math.isfinite(v):
        raise InputDataError(f"{text!r} is not a finite number")
    return v


@dataclass(frozen=True)
class Option:
    """One option of the command line and of cohort manifests."""

    name: str
    keyword: str
    help: str
    workflows: tuple[str, ...]
    convert: Callable[[str], Any] | None = None
    required: bool = False
    repeat: bool = False
    flag: bool = False
    metavar: str | None = None
    choices: tuple[str, ...] | None = None
    default: Any = None

    @property
    def column(self) -> str:
        """The manifest column: the long option with dashes as underscores."""
        return self.name.replace("-", "_")

    @property
    def flag_text(self) -> str:
        """``--name``."""
        return f"--{self.name}"


def _method_choices() -> tuple[str, ...]:
    from ..dose import DoseMethod

    return ("auto", *(m.value for m in DoseMethod))


_THERAPY_HELP = (
    "therapy agent: Lu-177-PSMA-617, Ac-225-PSMA-617 (Gy and Gy_RBE) or Lu-177-DOTATATE; any "
    "spelling such as 177Lu-PSMA-617 or [225Ac]Ac-PSMA-617 (default: Lu-177-PSMA-617)"
)

OPTIONS: tuple[Option, ...] = (
    Option(
        "therapy",
        "therapy",
        _THERAPY_HELP,
        ("plan", "spect"),
        default="Lu-177-PSMA-617",
        metavar="AGENT",
    ),
    Option(
        "activity",
        "activity",
        "planned administered activity per administration, with its unit, e.g. '7.4 GBq' "
        "(177Lu) or '8 MBq' (225Ac); units: Bq, kBq, MBq, GBq, TBq, uCi, mCi, Ci",
        ("plan",),
        required=True,
        metavar="AMOUNT",
    ),
    Option(
        "method",
        "method",
        "dose method: auto (vsv when a kernel exists for the voxel size, else led), led "
        "(local deposition), vsv (voxel S-values in soft tissue), vsv-density (lung/soft "
        "tissue/bone kernels and density scaling from the CT), mc (patient Monte Carlo on "
        "the CT; the [mc] extra)",
        ("plan", "spect"),
        default="auto",
        choices=None,  # filled from DoseMethod when the parser is built
    ),
    Option(
        "mc-uncertainty",
        "mc_target_uncertainty",
        "--method mc: stop when every organ and lesion mean has this relative standard "
        "uncertainty (default 0.01)",
        ("plan", "spect"),
        convert=_float,
        metavar="FRACTION",
    ),
    Option(
        "mc-time-budget",
        "mc_time_budget_s",
        "--method mc: stop after this many seconds of transport at the latest",
        ("plan", "spect"),
        convert=_float,
        metavar="SECONDS",
    ),
    Option(
        "mc-seed",
        "mc_seed",
        "--method mc: random seed (default 0; a run is reproducible with its seed)",
        ("plan", "spect"),
        convert=lambda t: int(_float(t)),
        metavar="SEED",
    ),
    Option(
        "pet",
        "pet",
        "which PET series when the study has several: index as listed in the error, "
        "SeriesInstanceUID or SeriesDescription",
        ("plan",),
        convert=_series,
        metavar="SERIES",
    ),
    Option(
        "ct",
        "ct",
        "which CT series (index, UID or description)",
        ("plan",),
        convert=_series,
        metavar="SERIES",
    ),
    Option(
        "masks",
        "masks",
        "VOIs from a file or folder instead of the study's RTSTRUCT: an RTSTRUCT, a DICOM SEG, a "
        "NIfTI label map (with a label table <stem>.json or .csv beside it) or a folder of "
        "one-organ NIfTI masks named after the VOI (kidney_left.nii.gz, ...)",
        ("plan", "spect"),
        metavar="PATH",
    ),
    Option(
        "body-only",
        "body_only",
        "no organ VOIs: body outline from the CT and whole-body kinetics (a first look)",
        ("plan",),
        flag=True,
    ),
    Option(
        "half-life",
        "effective_half_life_s",
        "effective half-life of a VOI, e.g. kidney_left=40h; a pattern such as 'lesion*=70h' "
        "applies to every matching VOI (repeatable; spect: for a single time point)",
        ("plan", "spect"),
        convert=parse_half_life,
        repeat=True,
        metavar="VOI=DURATION",
    ),
    Option(
        "kinetics",
        "kinetics_file",
        "per-VOI effective half-lives from a CSV (voi,effective_half_life_h[,source]) or YAML "
        "(spect: for a single time point)",
        ("plan", "spect"),
        metavar="FILE",
    ),
    Option(
        "voi-map",
        "voi_map_file",
        "VOI name -> organ table (CSV voi,organ[,role]) consulted before the built-in alias table",
        ("plan", "spect"),
        metavar="FILE",
    ),
    Option(
        "rbe",
        "rbe",
        "RBE of alpha particles for the RBE-weighted dose (default: the cited table value, 5)",
        ("plan", "spect"),
        convert=_float,
        metavar="RBE",
    ),
    Option(
        "injected-activity",
        "injected_activity",
        "override the diagnostic injected activity of the PET header, with unit ('150 MBq')",
        ("plan",),
        metavar="AMOUNT",
    ),
    Option(
        "injection",
        "injection",
        "administration date and time 'YYYY-MM-DD HH:MM' (overrides the header)",
        ("plan", "spect"),
        convert=parse_datetime,
        metavar="DATETIME",
    ),
    Option(
        "calibration",
        "calibration",
        "SPECT camera sensitivity, e.g. '9.1 cps/MBq', or a calibration record file (JSON) "
        "made by dosimetry.calibration",
        ("spect",),
        required=True,
        metavar="FACTOR|FILE",
    ),
    Option(
        "fwhm",
        "fwhm_mm",
        "SPECT system resolution (FWHM, mm) for the partial-volume correction of VOI values "
        "(geometric transfer matrix, Rousset 1998)",
        ("spect",),
        convert=lambda t: _float(str(t).lower().removesuffix("mm").strip()),
        metavar="MM",
    ),
    Option(
        "pvc",
        "pvc",
        "partial-volume correction of VOI values: auto (GTM when the resolution is known, "
        "recovery coefficients for lesions with --recovery), gtm or none",
        ("spect",),
        choices=("auto", "gtm", "none"),
        default="auto",
    ),
    Option(
        "recovery",
        "recovery",
        "recovery-curve record (JSON, from a sphere-phantom measurement with "
        "dosimetry.calibration) applied to lesion VOIs",
        ("spect",),
        metavar="FILE",
    ),
    Option(
        "lesions",
        "lesions",
        "delineate lesions when the VOIs have none: '40%' of the local maximum or "
        "'level:VALUE' (Bq/mL) on the first time point",
        ("spect",),
        metavar="RULE",
    ),
    Option(
        "registration",
        "registration",
        "time-point alignment: rigid (CT-driven, default), deformable or none",
        ("spect",),
        choices=("rigid", "deformable", "none"),
        default="rigid",
    ),
    Option(
        "spect",
        "spect",
        "which NM/SPECT series to use (repeatable; default: every reconstructed series)",
        ("spect",),
        convert=_series,
        repeat=True,
        metavar="SERIES",
    ),
    Option(
        "shared-biodistribution",
        "shared_biodistribution",
        "do not apply the agent-pair uptake relations: the therapy agent is assumed to reach "
        "the diagnostic agent's fractions of injected activity everywhere",
        ("plan",),
        flag=True,
    ),
    Option(
        "blood",
        "blood",
        "blood samples (CSV: time and activity concentration columns, units in the headers, "
        "e.g. 'time [h],concentration [kBq/mL]') for the blood-based red-marrow dose "
        "(EANM 2010) of the administration of --activity (spect: of the imaged cycle), "
        "reported beside the image-based marrow VOI; a red_marrow limit uses the larger of "
        "the two",
        ("plan", "spect"),
        metavar="FILE",
    ),
    Option(
        "limit",
        "limits",
        "organ-at-risk limit on the treatment total, e.g. kidneys=23Gy, kidneys=BED:40Gy, "
        "red_marrow=2Gy, kidneys=EQD2:28Gy (repeatable): writes prescription.json with the "
        "largest activity per administration (decision support, not an order)",
        ("plan", "spect"),
        repeat=True,
        metavar="ORGAN=LIMIT",
    ),
    Option(
        "prescribe",
        "prescribe",
        "prescribe with the cited default limits (kidneys 23 Gy and BED 28/40 Gy, red marrow "
        "2 Gy) when no --limit is given",
        ("plan", "spect"),
        flag=True,
    ),
    Option(
        "cycles",
        "cycles",
        "planned identical cycles for the prescription (default 1)",
        ("plan", "spect"),
        convert=lambda t: int(_float(t)),
        metavar="N",
    ),
    Option(
        "history",
        "history",
        "treatment history JSON of earlier cycles (read, never modified; the updated history "
        "is written to the output folder as history.json)",
        ("plan", "spect"),
        metavar="FILE",
    ),
    Option(
        "limit-bound",
        "limit_bound",
        "apply limits to the VOI mean (mean) or to mean + 1.96 x its standard uncertainty (upper)",
        ("plan", "spect"),
        choices=("mean", "upper"),
        default="mean",
    ),
    Option(
        "renal-risk-factors",
        "renal_risk_factors",
        "which default renal BED limit applies: yes (28 Gy, conservative default) or no (40 Gy)",
        ("plan", "spect"),
        convert=_bool,
        metavar="yes|no",
    ),
    Option(
        "lq",
        "lq",
        "alpha/beta (Gy) and repair half-time (h) of an organ for BED where the table has no "
        "sourced value, e.g. liver=2.5/1.5 (repeatable)",
        ("plan", "spect"),
        repeat=True,
        metavar="ORGAN=AB/TREP",
    ),
    Option(
        "header",
        "header_overrides",
        "state a header value of the study's series where the DICOM lacks it or is wrong, "
        "e.g. decay_correction=START, assume_rescale_slope=1, allow_incomplete=yes, "
        "acquisition_time='2024-03-05 10:12', patient_weight_kg=82, half_life_s=109.77min "
        "(repeatable; applied to every series that has that value; recorded in the report)",
        ("plan", "spect"),
        convert=parse_header_override,
        repeat=True,
        metavar="KEY=VALUE",
    ),
    Option(
        "accept",
        "accept",
        "accept one implausible input by its check code (e.g. uptake_time); repeatable",
        ("plan", "spect"),
        repeat=True,
        metavar="CODE",
    ),
    Option(
        "accept-implausible",
        "accept_implausible",
        "accept every implausible input (the findings stay in the report)",
        ("plan", "spect"),
        flag=True,
    ),
    Option(
        "strict",
        "strict",
        "treat warnings as errors (e.g. for a validation run)",
        ("plan", "spect"),
        flag=True,
    ),
    Option(
        "anonymize",
        "anonymize",
        "leave patient identifiers and series UIDs out of the reports",
        ("plan", "spect"),
        flag=True,
    ),
)


def option_for_keyword(keyword: str) -> Option | None:
    """The option that feeds a workflow keyword."""
    return next((o for o in OPTIONS if o.keyword == keyword), None)


#: Python keywords in error messages -> the option a command-line user types instead
_KEYWORD_TO_OPTION: dict[str, str] = {
    "effective_half_life_s": "--half-life VOI=DURATION",
    "biological_half_life_s": "--half-life VOI=DURATION",
    "injected_activity_bq": "--injected-activity",
    "injection_time": "--injection",
    "therapy_nuclide": "--therapy",
    "overwrite": "--overwrite",
    "accept": "--accept",
    "masks": "--masks",
    "voi_map": "--voi-map",
    "calibration_cps_per_mbq": "--calibration",
    "activity": "--activity",
    "method": "--method",
    **{
        k: f"--header {k}=VALUE"
        for k in (
            "acquisition_time",
            "allow_incomplete",
            "allow_nonuniform",
            "assume_rescale_intercept",
            "assume_rescale_slope",
            "decay_correction",
            "half_life_s",
            "nuclide",
            "patient_height_m",
            "patient_sex",
            "patient_weight_kg",
            "units_scale_bq_per_ml",
            "acquisition_duration_s",
            "energy_window",
        )
    },
}


def cli_message(text: str) -> str:
    """A project error message with Python keywords (``injected_activity_bq=...``)
    replaced by the command-line options that do the same.

    A keyword is replaced only as a word of its own (not the end of an option such as
    ``--injected-activity=``), and an option the replacement names twice in a row is
    named once.

    >>> cli_message("--activity (activity=)='8 MBq' is refused; --accept x (accept=['x'])")
    "--activity='8 MBq' is refused; --accept x"
    >>> cli_message("--injected-activity='150 mbq': unknown unit")
    "--injected-activity='150 mbq': unknown unit"
    """

    def repl(m: re.Match[str]) -> str:
        return _KEYWORD_TO_OPTION[m.group(1)]

    pattern = (
        r"(?<![\w-])("
        + "|".join(map(re.escape, _KEYWORD_TO_OPTION))
        + r")=(?:\.\.\.|True|\S*?)(?=[\s,;)]|$)"
    )
    out = re.sub(pattern, repl, text)
    # series selection in Study's messages: study.pet(<index>) -> --pet INDEX
    out = re.sub(
        r"study\.(pet|ct|spect)\(<index>\) or study\.\1\('<SeriesInstanceUID>'\)",
        lambda m: f"--{m.group(1)} INDEX (or its SeriesInstanceUID or SeriesDescription)",
        out,
    )
    # "--accept x (--accept)" / "--accept x / --accept": the option once
    return re.sub(r"(--[a-z][\w-]*)([^()/;]{0,60}?)(?: \(\1\)| / \1(?![\w-]))", r"\1\2", out)


def add_options(parser: argparse.ArgumentParser, workflow: str) -> None:
    """Add the options of ``workflow`` to an argparse parser."""
    for opt in OPTIONS:
        if workflow not in opt.workflows:
            continue
        # argparse formats help with %-style: a literal % (e.g. '40%') must be doubled
        kw: dict[str, Any] = {"help": opt.help.replace("%", "%%"), "dest": opt.column}
        if opt.flag:
            kw["action"] = "store_true"
        else:
            if opt.metavar:
                kw["metavar"] = opt.metavar
            if opt.repeat:
                kw["action"] = "append"
            if opt.name == "method":
                kw["choices"] = _method_choices()
            elif opt.choices:
                kw["choices"] = opt.choices
            if opt.default is not None:
                kw["default"] = opt.default
                kw["help"] += f" (default: {opt.default})" if "default" not in opt.help else ""
        parser.add_argument(opt.flag_text, **kw)


def _converted(opt: Option, value: Any) -> Any:
    if opt.flag:
        return _bool(value)
    if opt.repeat:
        items = value if isinstance(value, list | tuple) else [v for v in str(value).split(";")]
        items = [str(v).strip() for v in items if str(v).strip()]
        return [opt.convert(v) if opt.convert else v for v in items]
    return opt.convert(str(value)) if opt.convert else value


def _collect(values: Mapping[str, Any], workflow: str, source: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for opt in OPTIONS:
        if workflow not in opt.workflows:
            continue
        raw = values.get(opt.column)
        if raw is None or (isinstance(raw, str) and raw.strip() == ""):
            if opt.required:
                raise InputDataError(
                    f"{opt.flag_text} is required for {workflow} ({source}); {opt.help}"
                )
            if opt.default is not None:
                out[opt.column] = opt.default
            continue
        out[opt.column] = _converted(opt, raw)
    return out


def to_workflow_kwargs(values: Mapping[str, Any], workflow: str) -> dict[str, Any]:
    """Option values (converted) -> keyword arguments of the workflow function."""
    from ..voi import VoiMap

    kw: dict[str, Any] = {}
    half: dict[str, float] = {}
    if values.get("kinetics"):
        half.update(read_kinetics_file(values["kinetics"]))
    for voi, seconds in values.get("half_life") or []:
        half[voi] = seconds
    if half:
        kw["effective_half_life_s"] = half
    if values.get("voi_map"):
        kw["voi_map"] = VoiMap.from_file(values["voi_map"])
    accept: list[str] | bool = list(values.get("accept") or [])
    if values.get("accept_implausible"):
        accept = True
    kw["accept"] = accept
    if values.get("strict"):
        kw["policy"] = "strict"
    overrides: dict[str, Any] = {}
    if values.get("injected_activity"):
        from ..units import parse_activity

        overrides["injected_activity_bq"] = parse_activity(
            values["injected_activity"], arg="--injected-activity"
        )
    if values.get("injection") is not None:
        overrides["injection_time"] = values["injection"]
    mc = {
        key: values[col]
        for col, key in (
            ("mc_uncertainty", "target_uncertainty"),
            ("mc_time_budget", "time_budget_s"),
            ("mc_seed", "seed"),
        )
        if values.get(col) is not None
    }
    if mc:
        if values.get("method") != "mc":
            raise InputDataError("--mc-uncertainty/--mc-time-budget/--mc-seed need --method mc")
        kw["mc"] = mc
    if values.get("shared_biodistribution"):
        kw["uptake_relations"] = False
    if values.get("lq"):
        from .prescription import parse_lq

        kw["lq"] = dict(parse_lq(t) for t in values["lq"])
    shared = (
        "limit",
        "prescribe",
        "cycles",
        "history",
        "limit_bound",
        "renal_risk_factors",
        "blood",
    )
    simple = {
        "plan": (
            "therapy",
            "activity",
            "method",
            "pet",
            "ct",
            "masks",
            "body_only",
            "rbe",
            *shared,
        ),
        "spect": (
            "therapy",
            "method",
            "masks",
            "rbe",
            "calibration",
            "spect",
            "fwhm",
            "pvc",
            "recovery",
            "lesions",
            "registration",
            *shared,
        ),
    }[workflow]
    rename = {"limit": "limits", "fwhm": "fwhm_mm"}
    for key in simple:
        if key in values and values[key] is not None and values[key] is not False:
            kw[rename.get(key, key)] = values[key]
    if overrides:
        kw["pet_overrides" if workflow == "plan" else "overrides"] = overrides
    if values.get("header"):
        kw["header_overrides"] = dict(values["header"])
    return kw


def from_args(args: argparse.Namespace, workflow: str) -> dict[str, Any]:
    """Workflow keyword arguments from parsed command-line arguments."""
    return to_workflow_kwargs(_collect(vars(args), workflow, "command line"), workflow)


def from_mapping(row: Mapping[str, Any], workflow: str, source: str = "manifest") -> dict[str, Any]:
    """Workflow keyword arguments from a manifest row (column = option with underscores;
    flags ``true``/``false``; repeatable options separated by ``;``). Unknown columns are
    an error naming the valid ones."""
    known = {o.column for o in OPTIONS if workflow in o.workflows}
    unknown = sorted(k for k in row if k not in known and row[k] not in (None, ""))
    if unknown:
        raise InputDataError(
            f"{source}: column(s) {', '.join(unknown)} are not options of {workflow}; valid: "
            f"{', '.join(sorted(known))}"
        )
    return to_workflow_kwargs(_collect(row, workflow, source), workflow)


def options_for(workflow: str) -> Sequence[Option]:
    """The options of one workflow, in table order."""
    return [o for o in OPTIONS if workflow in o.workflows]
