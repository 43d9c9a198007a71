"""Heterogeneity flags of a workflow's VOIs (issue 19 section 2): how much of each VOI lies
within one electron range of a lung, bone or air interface, the estimated error band of the
kernel method used there, and whether patient Monte Carlo (``--method mc``) is recommended.

The flags come from :func:`dosimetry.mc.heterogeneity_flags` (the project's Monte Carlo
comparisons of each method by interface class, ``dosimetry/data/mc_kernel_error_bands.csv``);
this module puts them where the physicist reads results: two columns and a note in the dose
table, a finding, and a report section.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from ..results import DoseTable, Finding
from ..volume import Volume
from ._run import Run

__all__ = ["HeterogeneityReport", "flag_table", "method_terms"]

#: Kernel methods the bands describe (Monte Carlo needs no band: it transports in the media).
_KERNEL_METHODS = ("led", "vsv", "vsv-density")


@dataclass(frozen=True)
class HeterogeneityReport:
    """The flags of one result, for the report (``result.details["heterogeneity"]``).

    Attributes
    ----------
    method
        The dose method of the result.
    flags
        ``{voi: HeterogeneityFlag}`` (see :class:`dosimetry.mc.HeterogeneityFlag`).
    threshold
        Relative error band above which Monte Carlo is recommended.
    """

    method: str
    flags: Mapping[str, Any]
    threshold: float

    @property
    def recommended(self) -> tuple[str, ...]:
        """VOIs whose band for the method used exceeds the threshold."""
        return tuple(
            name for name, f in self.flags.items() if _band_width(f, self.method) > self.threshold
        )

    def report_blocks(self) -> tuple[str, list[Any]]:
        """Title and blocks: one row per VOI near an interface."""
        from ..report.blocks import Paragraph, Table

        rows = []
        for name, f in self.flags.items():
            near = {k: v for k, v in f.fraction_near.items() if v > 0}
            if not near and f.fraction_near_photon <= 0:
                continue
            band = f.error_band.get(self.method)
            rows.append(
                (
                    name,
                    ", ".join(f"{k} {100 * v:.0f} %" for k, v in sorted(near.items())) or "-",
                    f"{100 * f.fraction_near_photon:.0f} %",
                    "-" if band is None else f"{100 * band[0]:+.0f} to {100 * band[1]:+.0f} %",
                    f.best_method,
                    "yes" if name in self.recommended else "no",
                )
            )
        text = (
            f"Share of each VOI within one electron range of another medium (lung, bone, soft "
            f"tissue, air; from the CT density) and within {_photon_mm(self.flags):g} mm of any "
            f"interface, and the estimated error of the {self.method} mean dose there, from the "
            "project's Monte Carlo comparisons by interface class (an estimate from one "
            "phantom, not a bound; docs/dose.md). Monte Carlo (--method mc) is recommended "
            f"where the band exceeds {100 * self.threshold:.0f} %."
        )
        if self.method not in _KERNEL_METHODS:
            text = (
                "Dose by patient Monte Carlo in the CT's media: the kernel error bands below "
                "are shown for comparison only. " + text
            )
        if not rows:
            return "Heterogeneity", [Paragraph(text), Paragraph("No VOI lies near an interface.")]
        header = (
            "VOI",
            "within one electron range of",
            "near an interface (photons)",
            f"{self.method} error band",
            "best kernel method",
            "Monte Carlo recommended",
        )
        return "Heterogeneity", [Paragraph(text), Table(header, tuple(rows))]


def _band_width(flag: Any, method: str) -> float:
    band = flag.error_band.get(method)
    if band is None:
        return 0.0
    return max(abs(band[0]), abs(band[1]))


def _advice(flag: Any, threshold: float) -> str:
    """``--method vsv-density`` where that kernel method is within the threshold (bone),
    else patient Monte Carlo."""
    if not flag.mc_recommended and _band_width(flag, flag.best_method) <= threshold:
        return f"--method {flag.best_method} (or mc)"
    return "Monte Carlo recommended (--method mc)"


def _photon_mm(flags: Mapping[str, Any]) -> float:
    return float(next(iter(flags.values())).photon_distance_mm) if flags else 0.0


def flag_table(
    run: Run,
    table: DoseTable,
    vois: Mapping[str, Volume],
    density: Volume | None,
    nuclide: str,
    *,
    chain: bool,
    method: str,
) -> tuple[DoseTable, HeterogeneityReport | None]:
    """The table with the heterogeneity columns (``interface_fraction``,
    ``method_error_low``/``_high``) and notes, the finding for VOIs where Monte Carlo is
    recommended, and the report section; unchanged without a CT (said in an assumption)."""
    if density is None:
        run.assume(
            "heterogeneity",
            "not assessed: no CT density (soft tissue assumed everywhere)",
            "no CT",
        )
        return table, None
    from .. import parameters
    from ..mc.heterogeneity import heterogeneity_flags

    names = [r.name for r in table if r.role in ("organ", "lesion") and r.name in vois]
    if not names:
        return table, None
    flags = heterogeneity_flags({n: vois[n] for n in names}, density, nuclide, chain=chain)
    report = HeterogeneityReport(method, flags, parameters.get("mc_recommended_error_band"))
    recommended = set(report.recommended) if method in _KERNEL_METHODS else set()
    rows = []
    for r in table:
        f = flags.get(r.name)
        if f is None:
            rows.append(r)
            continue
        extra = dict(r.extra)
        extra["interface_fraction"] = max(f.fraction_near.values(), default=0.0)
        band = f.error_band.get(method) if method in _KERNEL_METHODS else None
        if band is not None:
            extra["method_error_low"], extra["method_error_high"] = band
        notes = r.notes
        if r.name in recommended:
            lo, hi = band if band is not None else (0.0, 0.0)
            add = (
                f"{method} error band {100 * lo:+.0f} to {100 * hi:+.0f} % here: "
                f"{_advice(f, report.threshold)}"
            )
            notes = f"{notes}; {add}" if notes else add
        rows.append(replace(r, extra=extra, notes=notes))
    if recommended:
        advice = sorted({_advice(flags[n], report.threshold) for n in recommended})
        run.add(
            Finding(
                "heterogeneous_region",
                "warning",
                f"VOI(s) {', '.join(sorted(recommended))} lie in or near lung, bone or air "
                f"where the {method} mean dose may be off by more than "
                f"{100 * report.threshold:.0f} % (estimated from the project's Monte Carlo "
                "comparisons; see the report's Heterogeneity section)",
                "; ".join(advice),
            )
        )
    return replace(table, rows=tuple(rows)), report


def method_terms(
    run: Run, method: str, voi: str, dose: Volume, report: HeterogeneityReport | None
) -> list[Any]:
    """The dose method's terms of a VOI's uncertainty budget.

    Monte Carlo: the batch standard error of the VOI mean that the run reached
    (``dose.provenance["stopping_rule"]["achieved"]``) and the transport term
    ``mc_transport_relative_sd``. Kernel methods: ``dose_method_relative_sd`` (soft tissue);
    for a VOI whose heterogeneity band for the method is wider, the band's half-width taken
    as a rectangular distribution (standard uncertainty w / sqrt(3); JCGM 100:2008, GUM,
    section 4.3.7) -- the bias is not corrected, it is carried as uncertainty.
    """
    from ..uncertainty import Term

    if method == "mc":
        terms = []
        rule = dose.provenance.get("stopping_rule")
        achieved = rule.get("achieved", {}) if isinstance(rule, Mapping) else {}
        rel = achieved.get(voi) if isinstance(achieved, Mapping) else None
        if rel is not None:
            terms.append(
                Term(
                    "Monte Carlo statistics",
                    float(rel),
                    1.0,
                    "batch standard error of the VOI mean (dosimetry.mc.patient_dose)",
                )
            )
        terms.append(
            Term(
                "Monte Carlo transport",
                run.parameter("mc_transport_relative_sd"),
                1.0,
                _citation("mc_transport_relative_sd"),
            )
        )
        return terms
    base = run.parameter("dose_method_relative_sd")
    flag = report.flags.get(voi) if report is not None else None
    width = _band_width(flag, method) if flag is not None else 0.0
    if width / 3**0.5 > base:
        lo, hi = flag.error_band[method]  # type: ignore[union-attr]
        return [
            Term(
                f"dose method ({method}) near an interface",
                width / 3**0.5,
                1.0,
                f"heterogeneity band {100 * lo:+.0f} to {100 * hi:+.0f} % as a rectangular "
                "distribution of half-width max(|band|) (JCGM 100:2008 GUM 4.3.7; docs/dose.md)",
            )
        ]
    return [Term(f"dose method ({method})", base, 1.0, _citation("dose_method_relative_sd"))]


def _citation(name: str) -> str:
    from .. import parameters

    return parameters.describe(name).citation
