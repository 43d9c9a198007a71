"""One mechanism for reliability guards: pure checks that return findings, and a policy.

A *check* is a pure function of numbers (an uptake time, a total activity, a dose) that
returns a :class:`~dosimetry.results.Finding` -- a stable ``code``, a ``level`` and a
message naming the value, the bound and how to override it -- or ``None`` when all is
well. Checks never raise and never log.

A workflow collects findings in a :class:`FindingLog`, which applies the user's
:class:`Policy` (in the manner of pydicom's IGNORE / WARN / RAISE validation modes):

* ``"error"`` findings (implausible input: a dose would be absurd) raise
  :class:`ImplausibleInputError` unless the user accepted that code (``accept=`` /
  ``--accept CODE`` / ``--accept-implausible``); an accepted one is recorded as such;
* ``"warning"`` findings are logged and recorded in the result (``policy="strict"``
  raises them instead);
* ``"info"`` findings are recorded.

Per-code actions (``{"negative_voxels": "raise"}``) override the defaults. The bounds live
in ``dosimetry/data/plausibility.csv`` with their citations; :func:`bound` reads them and
:func:`override_bounds` replaces them for a block of code (tests, special protocols).
"""

from __future__ import annotations

import contextlib
import contextvars
import csv
import difflib
import io
import logging
import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from functools import lru_cache
from importlib import resources
from types import MappingProxyType
from typing import Literal

from .errors import DosimetryError, InputDataError
from .results import Finding

__all__ = [
    "Action",
    "Policy",
    "FindingLog",
    "ImplausibleInputError",
    "Bound",
    "bound",
    "bounds_table",
    "override_bounds",
    "check_no_activity",
    "check_negative_voxels",
    "check_uptake_time",
    "check_spect_time",
    "check_fraction_in_fov",
    "check_suv_max",
    "check_administered_activity",
    "check_organ_dose",
    "check_decays_in_air",
    "check_plateau",
    "method_fallback",
    "check_grid_extent",
    "FINDING_CODES",
]

log = logging.getLogger(__name__)

Action = Literal["ignore", "record", "raise"]
_ACTIONS: tuple[str, ...] = ("ignore", "record", "raise")

#: Every finding code a workflow can emit, with what it checks (docs/reliability.md lists
#: them with their bounds). ``--accept`` and ``policy=`` are checked against this list, so
#: a typo in a code is refused instead of silently accepting nothing.
FINDING_CODES: Mapping[str, str] = MappingProxyType(
    {
        "activity_above_prescription": "planned activity above the largest within the limits",
        "administered_activity": "therapy activity per administration",
        "decays_in_air": "decays placed in air voxels",
        "fraction_in_fov": "fraction of the injected activity in the field of view",
        "heterogeneous_region": "VOI near lung/bone/air where the kernel method may be off",
        "lesions_given": "--lesions ignored because VOIs hold lesions",
        "method_fallback": "automatic change of dose method",
        "negative_voxels": "negative voxels clipped to 0",
        "no_activity": "emission image sums to zero or less",
        "no_uptake_relation": "no published uptake relation for an agent pair and organ",
        "no_whole_body_kinetics": "no sourced whole-body half-life for the agent",
        "organ_dose": "mean dose of one administration per VOI",
        "plateau": "uptake still changing between PET time points",
        "registration_worse": "time-point CTs less alike after the registration than before",
        "short_field_of_view": "an axis shorter than twice the electron reach",
        "spect_corrections": "SPECT without attenuation or scatter correction",
        "spect_dead_time": "early SPECT without a stated dead-time correction",
        "spect_nuclide": "SPECT header names another nuclide than the therapy",
        "spect_time": "SPECT acquisition time after the administration",
        "suv_max": "highest body-weight SUV of the PET",
        "too_few_slices": "fewer than 3 slices along an axis",
        "unknown_diagnostic_agent": "diagnostic agent not recognised",
        "uptake_time": "PET acquisition start after the injection",
        "voi_kinetics": "a VOI without a time-integrated activity, or with a fit that does not determine it",
        "voi_without_kinetics": "a VOI without organ or population kinetics",
        "voxel_fits_replaced": "voxel fits replaced by the trapezoidal rule",
    }
)


def _check_codes(codes: Iterable[str], what: str) -> None:
    """Refuse codes that no check emits (with close matches)."""
    unknown = [c for c in codes if c not in FINDING_CODES]
    if not unknown:
        return
    hints = []
    for c in unknown:
        close = difflib.get_close_matches(c, list(FINDING_CODES), n=3, cutoff=0.6)
        hints.append(f"{c!r}" + (f" (did you mean {', '.join(close)}?)" if close else ""))
    raise DosimetryError(
        f"{what}: unknown check code(s) {'; '.join(hints)}. Valid codes: "
        f"{', '.join(sorted(FINDING_CODES))} (docs/reliability.md)"
    )


class ImplausibleInputError(InputDataError):
    """An input would give an implausible result; the message names the override."""

    def __init__(self, finding: Finding):
        self.finding = finding
        text = finding.message
        if finding.override:
            end = "" if text.rstrip().endswith((".", "!", "?")) else "."
            text = f"{text}{end} If this is really intended: {finding.override}."
        super().__init__(text)


@dataclass(frozen=True)
class Policy:
    """What to do with findings: per level defaults and per-code actions.

    Attributes
    ----------
    warning
        Action for ``"warning"`` findings (``"record"``; ``"raise"`` in strict mode).
    error
        Action for ``"error"`` findings (``"raise"``).
    per_code
        Code -> action, overriding the level defaults (``"record"`` for an error code is
        how a user accepts an implausible input).
    """

    warning: Action = "record"
    error: Action = "raise"
    per_code: Mapping[str, Action] = field(default_factory=dict)

    @classmethod
    def of(
        cls,
        spec: Policy | str | Mapping[str, str] | None = None,
        *,
        accept: Iterable[str] | bool = (),
    ) -> Policy:
        """A policy from a user specification.

        Parameters
        ----------
        spec
            ``None`` or ``"record"`` (default), ``"strict"`` (warnings raise too), a
            mapping code -> ``"ignore"``/``"record"``/``"raise"``, or a Policy.
        accept
            Codes of error-level findings the user accepts (recorded, not raised), or
            ``True`` to accept every implausible input.
        """
        if isinstance(spec, Policy):
            base = spec
        elif spec is None or spec == "record":
            base = cls()
        elif spec == "strict":
            base = cls(warning="raise")
        elif isinstance(spec, Mapping):
            bad = {k: v for k, v in spec.items() if v not in _ACTIONS}
            if bad:
                raise DosimetryError(
                    f"policy actions must be one of {', '.join(_ACTIONS)}; got {bad}"
                )
            _check_codes(spec, "policy")
            base = cls(per_code=dict(spec))  # type: ignore[arg-type]
        else:
            raise DosimetryError(
                f"policy={spec!r}; valid: 'record', 'strict', or a mapping check code -> "
                f"one of {', '.join(_ACTIONS)}"
            )
        if accept is True:
            return replace(base, error="record")
        if accept is False:
            return base
        accepted = [accept] if isinstance(accept, str) else [str(c) for c in accept]
        _check_codes(accepted, "--accept (accept=)")
        codes = dict(base.per_code)
        for code in accepted:
            codes[code] = "record"
        return replace(base, per_code=codes)

    def action(self, finding: Finding) -> Action:
        """The action for one finding."""
        if finding.code in self.per_code:
            return self.per_code[finding.code]
        if finding.level == "error":
            return self.error
        if finding.level == "warning":
            return self.warning
        return "record"


class FindingLog:
    """Collects the findings of one workflow run under a policy.

    >>> findings = FindingLog(Policy.of("record"))
    >>> findings.add(check_uptake_time(2.0, "F-18-FDG"))
    Traceback (most recent call last):
    ...
    dosimetry.checks.ImplausibleInputError: ...
    >>> findings = FindingLog(Policy.of(accept=["uptake_time"]))
    >>> findings.add(check_uptake_time(2.0, "F-18-FDG"))
    >>> [(f.code, f.level, f.accepted) for f in findings]
    [('uptake_time', 'error', True)]
    """

    def __init__(self, policy: Policy | None = None):
        self.policy = policy or Policy()
        self._items: list[Finding] = []

    def add(self, finding: Finding | None) -> None:
        """Apply the policy to ``finding`` (``None`` is ignored)."""
        if finding is None:
            return
        action = self.policy.action(finding)
        if action == "raise":
            raise ImplausibleInputError(finding)
        if action == "ignore":
            log.debug("ignored by policy: [%s] %s", finding.code, finding.message)
            return
        if finding.level == "error":
            finding = replace(finding, accepted=True)
            log.warning("accepted implausible input [%s]: %s", finding.code, finding.message)
        elif finding.level == "warning":
            log.warning("[%s] %s", finding.code, finding.message)
        else:
            log.info("[%s] %s", finding.code, finding.message)
        self._items.append(finding)

    def extend(self, findings: Iterable[Finding | None]) -> None:
        """:meth:`add` each finding."""
        for f in findings:
            self.add(f)

    def __iter__(self) -> Iterator[Finding]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def as_tuple(self) -> tuple[Finding, ...]:
        """The recorded findings, in order."""
        return tuple(self._items)


# --------------------------------------------------------------------------------------
# bounds
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Bound:
    """Warning and error bounds of one check for one key (agent, nuclide, modality)."""

    check: str
    key: str
    warn_low: float
    warn_high: float
    error_low: float
    error_high: float
    unit: str
    citation: str


@lru_cache(maxsize=1)
def _table() -> Mapping[tuple[str, str], Bound]:
    text = resources.files("dosimetry").joinpath("data/plausibility.csv").read_text("utf-8")
    out: dict[tuple[str, str], Bound] = {}
    for row in csv.DictReader(io.StringIO(text)):
        b = Bound(
            check=row["check"].strip(),
            key=row["key"].strip(),
            warn_low=float(row["warn_low"]),
            warn_high=float(row["warn_high"]),
            error_low=float(row["error_low"]),
            error_high=float(row["error_high"]),
            unit=row["unit"].strip(),
            citation=row["citation"].strip(),
        )
        if not b.error_low <= b.warn_low <= b.warn_high <= b.error_high:
            raise DosimetryError(f"plausibility.csv row {b.check}/{b.key}: bounds out of order")
        out[(b.check, b.key)] = b
    return MappingProxyType(out)


_BOUND_OVERRIDES: contextvars.ContextVar[Mapping[tuple[str, str], Bound]] = contextvars.ContextVar(
    "dosimetry_bound_overrides", default=MappingProxyType({})
)


def bounds_table() -> list[Bound]:
    """Every bound (overrides applied), for documentation and reports."""
    merged = {**_table(), **_BOUND_OVERRIDES.get()}
    return [merged[k] for k in sorted(merged)]


def bound(check: str, key: str | None) -> Bound:
    """The bounds of ``check`` for ``key``, falling back to the ``default`` row."""
    merged = {**_table(), **_BOUND_OVERRIDES.get()}
    if key is not None and (check, key) in merged:
        return merged[(check, key)]
    if (check, "default") in merged:
        return merged[(check, "default")]
    raise DosimetryError(f"no plausibility bound for check {check!r} and key {key!r}")


@contextlib.contextmanager
def override_bounds(check: str, key: str, **values: float) -> Iterator[None]:
    """Replace bounds for a block of code, e.g. ``override_bounds("uptake_time",
    "F-18-FDG", warn_high=120)``."""
    base = bound(check, key)
    new = replace(base, key=key, citation="user override", **values)  # type: ignore[arg-type]
    merged = {**_BOUND_OVERRIDES.get(), (check, key): new}
    token = _BOUND_OVERRIDES.set(MappingProxyType(merged))
    try:
        yield
    finally:
        _BOUND_OVERRIDES.reset(token)


def _range_finding(
    code: str,
    b: Bound,
    value: float,
    what: str,
    shown: str,
    override: str,
) -> Finding | None:
    """Error outside [error_low, error_high], warning outside [warn_low, warn_high]."""
    if not math.isfinite(value):
        return Finding(code, "error", f"{what} is not a finite number ({shown})", override)
    if value < b.error_low or value > b.error_high:
        return Finding(
            code,
            "error",
            f"{what} {shown} is implausible: outside {b.error_low:g}-{b.error_high:g}"
            f"{'' if b.unit == '1' else ' ' + b.unit} (bounds for {b.key}: "
            "dosimetry/data/plausibility.csv, docs/reliability.md)",
            override,
        )
    if value < b.warn_low or value > b.warn_high:
        return Finding(
            code,
            "warning",
            f"{what} {shown} is outside the usual {b.warn_low:g}-{b.warn_high:g}"
            f"{'' if b.unit == '1' else ' ' + b.unit} ({b.key})",
            override,
        )
    return None


# --------------------------------------------------------------------------------------
# checks
# --------------------------------------------------------------------------------------
def check_no_activity(total: float, what: str) -> Finding | None:
    """Error when an emission image holds no activity (all zero, or a zero rescale)."""
    if not math.isfinite(total) or total <= 0.0:
        return Finding(
            "no_activity",
            "error",
            f"{what} holds no activity (sum of voxels {total:.3g}): an empty or all-zero "
            "image (RescaleSlope 0?) cannot give a dose",
            "--accept no_activity / accept=['no_activity']",
        )
    return None


def check_negative_voxels(
    n_negative: int, negative_sum: float, total: float, what: str
) -> Finding | None:
    """Info when noise left negative voxels that were clipped to 0; warning above 1 %."""
    if n_negative <= 0:
        return None
    share = negative_sum / total if total > 0 else math.inf
    level: Literal["info", "warning"] = "warning" if share > 0.01 else "info"
    return Finding(
        "negative_voxels",
        level,
        f"{what}: {n_negative} negative voxels (sum {negative_sum:.3g}, {100 * share:.2g} % of "
        "the positive total) set to 0",
        "",
    )


def check_uptake_time(minutes: float, agent: str | None) -> Finding | None:
    """Uptake time (acquisition start - injection) of a diagnostic PET against its window."""
    b = bound("uptake_time", agent)
    return _range_finding(
        "uptake_time",
        b,
        minutes,
        "PET uptake time (acquisition - injection)",
        f"{minutes:.4g} min",
        "check the injection date/time in the DICOM header, or --injection 'YYYY-MM-DD HH:MM' "
        "(injection_time=); --accept uptake_time (accept=['uptake_time'])",
    )


def check_spect_time(hours: float, nuclide: str, label: str) -> Finding | None:
    """Time of a post-therapy SPECT after administration."""
    b = bound("spect_time", nuclide)
    return _range_finding(
        "spect_time",
        b,
        hours,
        f"{label} time after administration",
        f"{hours:.4g} h",
        "check the administration date/time (--injection, injection_time=); --accept spect_time",
    )


def check_fraction_in_fov(
    fraction: float, modality: Literal["PET", "SPECT"], what: str
) -> Finding | None:
    """Fraction of the (decayed) injected activity found in the field of view."""
    b = bound("fraction_in_fov", modality)
    return _range_finding(
        "fraction_in_fov",
        b,
        fraction,
        f"{what}: fraction of the injected activity in the field of view",
        f"{fraction:.3g}",
        "check the units, RescaleSlope, injected activity and decay correction of the image "
        "(or the calibration factor of a SPECT); --accept fraction_in_fov",
    )


def check_suv_max(suv: float) -> Finding | None:
    """Highest body-weight SUV of a PET."""
    b = bound("suv_max", "PET")
    return _range_finding(
        "suv_max",
        b,
        suv,
        "highest SUV (body weight) in the PET",
        f"{suv:.4g}",
        "check Units (0054,1001) and RescaleSlope; --accept suv_max",
    )


def check_administered_activity(
    activity_bq: float, nuclide: str, option: str = "--activity"
) -> Finding | None:
    """Therapy activity per administration against the range for its nuclide."""
    b = bound("administered_activity", nuclide)
    shown = _format_bq(activity_bq)
    f = _range_finding(
        "administered_activity",
        replace(
            b,
            unit="Bq",
        ),
        activity_bq,
        f"administered {nuclide} activity per administration",
        shown,
        f"check {option} (value and unit, e.g. '7.4 GBq'); --accept administered_activity",
    )
    return f


def _format_bq(value: float) -> str:
    """``7.4e9`` -> ``"7.4 GBq"`` (3 significant digits, SI prefix so the number is >= 1)."""
    if not math.isfinite(value):
        return repr(value)
    for factor, unit in ((1e12, "TBq"), (1e9, "GBq"), (1e6, "MBq"), (1e3, "kBq")):
        if abs(value) >= factor:
            return f"{value / factor:.3g} {unit}"
    return f"{value:.3g} Bq"


def check_organ_dose(name: str, role: str, mean_gy: float, unit: str = "Gy") -> Finding | None:
    """Mean absorbed dose of one administration to one VOI (organ or lesion)."""
    b = bound("organ_mean_dose", "lesion" if role == "lesion" else "organ")
    return _range_finding(
        "organ_dose",
        b,
        mean_gy,
        f"mean dose to {name}",
        f"{mean_gy:.4g} {unit}",
        "check the activity, times and calibration; --accept organ_dose",
    )


def check_decays_in_air(
    fraction: float, n_voxels: int, threshold_g_per_ml: float
) -> Finding | None:
    """Decays that the emission image places in air voxels (no dose reported there)."""
    if n_voxels <= 0 or fraction <= 1e-3:
        return None
    return Finding(
        "decays_in_air",
        "warning" if fraction > 0.02 else "info",
        f"{100 * fraction:.2g} % of the decays lie in {n_voxels} air voxels (density below "
        f"{threshold_g_per_ml:g} g/mL): no dose is reported there",
        "parameter density_air_max_g_per_ml",
    )


def check_plateau(voi: str, change: float, tolerance: float, text: str) -> Finding | None:
    """Change of a VOI's uptake fraction between the last two PET time points."""
    if abs(change) <= tolerance:
        return None
    return Finding(
        "plateau",
        "warning",
        f"plateau assumption questionable for {voi}: {text} (tolerance {100 * tolerance:.0f} %)",
        "give measured half-lives (--half-life VOI=...h) or a later PET",
    )


def check_grid_extent(
    shape: tuple[int, ...], spacing_mm: tuple[float, ...], reach_mm: float, what: str
) -> Finding | None:
    """An emission image too thin for 3-D dosimetry: fewer than 3 slices along an axis is
    an error (a single slice has no neighbours to exchange dose with); an axis shorter than
    twice the kernel's electron reach (or 5 voxels) is a warning: dose from activity
    outside the field of view is missing near its edges."""
    for n in shape:
        if n < 3:
            return Finding(
                "too_few_slices",
                "error",
                f"{what} has only {n} slice(s) along one axis ({'x'.join(map(str, shape))}): "
                "voxel dosimetry needs a volume",
                "--accept too_few_slices",
            )
    short = [
        (n, sp) for n, sp in zip(shape, spacing_mm, strict=True) if n * sp < 2 * reach_mm or n < 5
    ]
    if short:
        n, sp = short[0]
        return Finding(
            "short_field_of_view",
            "warning",
            f"{what} covers only {n} x {sp:.3g} mm along one axis, less than twice the "
            f"dose kernel's electron reach ({reach_mm:.3g} mm) or 5 voxels: doses near its edges "
            "lack the contribution of activity outside the field of view",
            "",
        )
    return None


def method_fallback(requested: str, used: str, reason: str) -> Finding:
    """An automatic change of dose method (recorded, with the reason)."""
    return Finding(
        "method_fallback",
        "warning",
        f"dose method {requested!r} could not be used ({reason}); {used!r} was used instead",
        "--method to choose explicitly",
    )
