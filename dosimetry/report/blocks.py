"""The content of a report as format-neutral blocks, built from a WorkflowResult.

:func:`document` turns a :class:`~dosimetry.results.WorkflowResult` into a
:class:`Document`: sections of paragraphs, key-value lists, tables and figures. The
Markdown and HTML renderers only format these blocks (and escape every piece of text
that came from the input, such as ROI names and patient names), so both reports always
show the same content. Citations are collected once and numbered; assumption rows refer
to them by number.

This module depends on the result types (and, for figures, on the viewer's static figure
functions) only -- never on a workflow.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from ..results import WorkflowResult

__all__ = [
    "Document",
    "Section",
    "Paragraph",
    "KeyValues",
    "Table",
    "Figure",
    "document",
    "format_activity",
]

Align = Literal["left", "right"]


@dataclass(frozen=True)
class Paragraph:
    """Text; ``untrusted`` text is escaped by the renderers (so is all other text)."""

    text: str
    kind: Literal["plain", "note", "warning"] = "plain"


@dataclass(frozen=True)
class KeyValues:
    """A list of ``(label, value)`` pairs."""

    items: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Table:
    """A table: header, rows of strings, column alignment."""

    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    align: tuple[Align, ...] = ()
    caption: str = ""


@dataclass(frozen=True)
class Figure:
    """A PNG image with its caption (rendered inline in HTML, as a file link in Markdown)."""

    png: bytes
    caption: str
    name: str


Block = Paragraph | KeyValues | Table | Figure


@dataclass(frozen=True)
class Section:
    """A titled group of blocks (one printed page break before each in HTML)."""

    title: str
    blocks: tuple[Block, ...]


@dataclass(frozen=True)
class Document:
    """A whole report."""

    title: str
    subtitle: str
    sections: tuple[Section, ...]
    citations: tuple[str, ...] = ()
    figures: tuple[Figure, ...] = field(default_factory=tuple)


def format_activity(value_bq: float | None) -> str:
    """``7.4e9`` -> ``"7.40 GBq"``, ``8e6`` -> ``"8.00 MBq"`` (prefix so the number >= 1)."""
    if value_bq is None or not math.isfinite(value_bq):
        return "-"
    for factor, unit in ((1e12, "TBq"), (1e9, "GBq"), (1e6, "MBq"), (1e3, "kBq")):
        if abs(value_bq) >= factor:
            return f"{value_bq / factor:.2f} {unit}"
    return f"{value_bq:.3g} Bq"


def _g(x: float | None, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-"
    return f"{x:.{digits}g}"


def _f(x: float | None, decimals: int = 2) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-"
    return f"{x:.{decimals}f}"


class _Citations:
    """Collects citation texts once, in order of first use, and returns their numbers."""

    def __init__(self) -> None:
        self._items: list[str] = []

    def ref(self, text: str) -> str:
        text = text.strip()
        if not text:
            return ""
        if text not in self._items:
            self._items.append(text)
        return f"[{self._items.index(text) + 1}]"

    @property
    def items(self) -> tuple[str, ...]:
        return tuple(self._items)


# sources that are short conventions rather than literature: shown inline, not numbered
_INLINE_SOURCES = (
    "user",
    "ICRP-107",
    "modelling assumption",
    "planning convention",
    "automatic choice",
    "sensitivity analysis",
    "within tolerance",
    "exceeds tolerance",
)


def _source_cell(source: str, cites: _Citations) -> str:
    s = source.strip()
    if not s or len(s) <= 40 or s.startswith(_INLINE_SOURCES):
        return s
    return cites.ref(s)


# --------------------------------------------------------------------------------------
# sections
# --------------------------------------------------------------------------------------
def _summary(result: WorkflowResult, anonymize: bool) -> Section:
    from .. import __version__

    items: list[tuple[str, str]] = []
    if not anonymize and result.patient:
        p = result.patient
        for label, key in (
            ("Patient name", "name"),
            ("Patient ID", "id"),
            ("Birth date", "birth_date"),
            ("Sex", "sex"),
            ("Weight (kg)", "weight_kg"),
        ):
            if key in p:
                items.append((label, p[key]))
    elif anonymize:
        items.append(("Patient", "identifiers left out (anonymised report)"))
    items += [
        ("Workflow", result.kind),
        ("Agent", f"{result.agent} ({result.nuclide})"),
        ("Administered activity", format_activity(result.administered_activity_bq)),
        ("Dose method", result.method),
    ]
    if result.dose is not None:
        items.append(
            (
                "Dose grid",
                f"{'x'.join(map(str, result.dose.shape))} voxels of "
                f"{', '.join(f'{s:.3f}' for s in result.dose.spacing_mm)} mm",
            )
        )
    items += [
        ("Software", f"dosimetry {__version__}"),
        ("Computed in", f"{result.elapsed_s:.1f} s"),
    ]
    hashes = sorted({i.sha256 for i in result.inputs if i.sha256})
    if hashes:
        import hashlib

        combined = hashlib.sha256("".join(hashes).encode()).hexdigest()
        items.append(("Input hash (SHA-256 of the input files)", combined[:32]))
    return Section("Summary", (KeyValues(tuple(items)),))


def _inputs(result: WorkflowResult, anonymize: bool) -> Section:
    header = (
        "role",
        "modality",
        "description",
        "files",
        "nuclide",
        "injected",
        "injection",
        "acquisition",
        "series UID",
        "user overrides",
    )
    rows = []
    for i in result.inputs:
        rows.append(
            (
                i.role,
                i.modality,
                i.description,
                str(i.n_files) if i.n_files else "-",
                i.nuclide or "-",
                format_activity(i.injected_activity_bq) if i.injected_activity_bq else "-",
                _time(i.injection_time),
                _time(i.acquisition_time),
                "-" if anonymize or not i.series_instance_uid else i.series_instance_uid,
                "; ".join(f"{k}={v}" for k, v in i.overrides) or "-",
            )
        )
    return Section("Inputs", (Table(header, tuple(rows)),))


def _time(t: datetime | None) -> str:
    return "-" if t is None else t.isoformat(sep=" ", timespec="minutes")


def _kernel_items(prov: Mapping[str, Any]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []

    def rec_text(rec: Mapping[str, Any]) -> str:
        ef = rec.get("energy_fraction")
        return (
            f"{rec.get('nuclide')} in {rec.get('medium')} ({rec.get('density_g_per_ml')} g/mL), "
            f"voxel {rec.get('voxel_mm')} mm, shape {rec.get('shape')}, "
            f"{rec.get('source')} {rec.get('library_version')}, energy held "
            f"{_g(ef)} (dropped {_g(1 - ef) if isinstance(ef, float) else '-'}), "
            f"sha256 {str(rec.get('sha256'))[:16]}"
        )

    if isinstance(prov.get("kernel"), Mapping):
        out.append(("Kernel", rec_text(prov["kernel"])))
    for medium, rec in dict(prov.get("kernels", {}) or {}).items():
        if isinstance(rec, Mapping):
            out.append((f"Kernel ({medium})", rec_text(rec)))
    if "convolution_path" in prov:
        out.append(("Convolution path", str(prov["convolution_path"])))
    if "convolution_dtype" in prov:
        out.append(("Convolution precision", str(prov["convolution_dtype"])))
    if "density_correction" in prov:
        out.append(("Density correction", str(prov["density_correction"])))
    if "air_voxels" in prov:
        out.append(
            (
                "Air voxels (no dose reported)",
                f"{prov['air_voxels']} voxels, {100 * float(prov.get('source_fraction_in_air', 0)):.2g} % of the decays",
            )
        )
    if isinstance(prov.get("mc"), Mapping):
        mc = prov["mc"]
        out.append(
            (
                "Monte Carlo",
                ", ".join(f"{k} {v}" for k, v in mc.items() if not isinstance(v, Mapping)),
            )
        )
    return out


def _method(result: WorkflowResult) -> Section:
    prov = result.dose.provenance if result.dose is not None else {}
    items = [("Dose method", result.method)]
    items += [(k, v) for k, v in _kernel_items(prov)]
    items += _mc_items(prov)
    return Section("Method", (KeyValues(tuple(items)),))


def _mc_items(prov: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Monte Carlo run: code, transport settings, media, histories, stopping rule, seed."""
    if prov.get("method") != "mc":
        return []
    out = [("Transport", f"{prov.get('code', '?')} {prov.get('ompmc_version', '')}".strip())]
    t = prov.get("transport")
    if isinstance(t, Mapping):
        out.append(
            (
                "Transport settings",
                f"cross sections {t.get('pegs')}, electron cut-off {t.get('ecut_total_mev')} "
                f"MeV total energy, photon cut-off {t.get('pcut_mev')} MeV, range rejection "
                f"{'on' if t.get('range_rejection') else 'off'}",
            )
        )
    media = prov.get("media")
    if isinstance(media, Mapping):
        out.append(("Media", ", ".join(str(v) for v in media.values())))
    out.append(("Histories", f"{int(prov.get('histories', 0)):,} in {prov.get('batches')} batches"))
    rule = prov.get("stopping_rule")
    if isinstance(rule, Mapping):
        achieved = rule.get("achieved")
        worst = ""
        if isinstance(achieved, Mapping) and achieved:
            name, rel = max(achieved.items(), key=lambda kv: float(kv[1]))
            worst = f"; largest VOI-mean uncertainty reached {100 * float(rel):.1f} % ({name})"
        out.append(
            (
                "Stopping rule",
                f"{rule.get('kind')} target {100 * float(rule.get('target_uncertainty', 0)):.1f} %"
                f" (stopped: {rule.get('stopped_because')}){worst}",
            )
        )
    out.append(("Seed", str(prov.get("seed"))))
    if prov.get("elapsed_s") is not None:
        out.append(("Transport time", f"{float(prov['elapsed_s']):.0f} s"))
    return out


def _table(result: WorkflowResult) -> Section:
    t = result.table
    alpha = result.is_alpha
    per_unit = "MBq" if alpha else "GBq"
    header = [
        "VOI",
        "organ",
        "volume (mL)",
        "TIA (MBq h)",
        "mean (Gy)",
        "u (Gy)",
        "95 % interval (Gy)",
        "D2 (Gy)",
        "D50 (Gy)",
        "D98 (Gy)",
        f"mean (Gy/{per_unit})",
    ]
    if alpha:
        header += ["mean (Gy_RBE)", "max (Gy_RBE)", f"mean (Gy_RBE/{per_unit})"]
    header += ["BED (Gy)", "EQD2 (Gy)", "notes"]
    rows = []
    for r in t:
        u = r.mean_u
        ci = "-"
        if u is not None and math.isfinite(u):
            ci = f"{_f(max(r.dose.mean - 1.96 * u, 0.0))}-{_f(r.dose.mean + 1.96 * u)}"
        row = [
            r.name,
            r.organ or "-",
            _f(r.volume_ml, 1),
            _g(r.tia_bq_s / 3.6e9 if r.tia_bq_s is not None else None, 4),
            _f(r.dose.mean),
            _f(u),
            ci,
            _f(r.dose.d2),
            _f(r.dose.d50),
            _f(r.dose.d98),
            _g(t.per_activity(r.dose.mean, per_unit)),
        ]
        if alpha:
            rb = r.dose_rbe
            row += [
                _f(rb.mean if rb else None),
                _f(rb.max if rb else None),
                _g(t.per_activity(rb.mean, per_unit) if rb else None),
            ]
        row += [_f(r.bed_gy), _f(r.eqd2_gy), r.notes]
        rows.append(tuple(row))
    rights: list[Align] = ["right"] * (len(header) - 3)
    align: tuple[Align, ...] = ("left", "left", *rights, "left")
    blocks: list[Block] = [
        Table(tuple(header), tuple(rows), align, caption=t.convention),
    ]
    if alpha:
        blocks.append(
            Paragraph(
                "Gy_RBE: alpha-particle dose x RBE (see the assumptions) plus electron and "
                "photon dose; per-activity columns per MBq for this alpha emitter (the CSV "
                "keeps Gy/GBq for every nuclide)."
            )
        )
    return Section("Absorbed dose per VOI", tuple(blocks))


def _sensitivity(result: WorkflowResult) -> Section | None:
    if not result.sensitivity:
        return None
    rows = []
    by_name = {r.name: r for r in result.table}
    for s in result.sensitivity:
        mean = by_name[s.voi].dose.mean if s.voi in by_name else None
        rows.append(
            (
                s.voi,
                s.half_life_kind,
                _g(s.half_life_s / 3600.0, 4),
                f"{100 * s.relative_change_minus:+.1f} %",
                f"{100 * s.relative_change_plus:+.1f} %",
                _f(mean * (1 + s.relative_change_minus) if mean is not None else None),
                _f(mean * (1 + s.relative_change_plus) if mean is not None else None),
            )
        )
    change = result.sensitivity[0].change
    header = (
        "VOI",
        "half-life (form given)",
        "value (h)",
        f"TIA at -{100 * change:.0f} %",
        f"TIA at +{100 * change:.0f} %",
        f"mean dose at -{100 * change:.0f} % (Gy)",
        f"mean dose at +{100 * change:.0f} % (Gy)",
    )
    note = Paragraph(
        f"Each assumed half-life scaled by 1 -/+ {change:g}; the VOI's TIA changes as shown, "
        "and its mean dose in proportion (the self-dose part; cross-fire from neighbours is "
        "not re-computed)."
    )
    return Section(
        "Sensitivity to the assumed half-lives",
        (
            note,
            Table(
                header, tuple(rows), ("left", "left", "right", "right", "right", "right", "right")
            ),
        ),
    )


def _assumptions(result: WorkflowResult, cites: _Citations) -> Section:
    rows = tuple((a.name, a.value, _source_cell(a.source, cites)) for a in result.assumptions)
    return Section(
        "Assumptions", (Table(("assumption", "value", "source"), rows, ("left", "left", "left")),)
    )


def _findings(result: WorkflowResult) -> Section:
    if not result.findings:
        return Section("Checks", (Paragraph("Every plausibility check passed."),))
    rows = tuple(
        (
            f.code,
            f.level + (" (accepted by the user)" if f.accepted else ""),
            f.message,
            f.override,
        )
        for f in result.findings
    )
    return Section(
        "Checks",
        (
            Table(
                ("check", "level", "finding", "how to change it"),
                rows,
                ("left", "left", "left", "left"),
            ),
        ),
    )


def _files(files: Mapping[str, Path], out: Path | None) -> Section | None:
    if not files:
        return None
    items = []
    for label, path in files.items():
        p = Path(path)
        if out is not None:
            try:
                p = p.relative_to(out)
            except ValueError:
                p = Path(p.name)
        items.append((label, p.as_posix()))
    return Section("Files", (KeyValues(tuple(items)),))


def _figures(result: WorkflowResult, *, dpi: float) -> tuple[Figure, ...]:
    """The report's figures: fused images in three planes, DVHs, TAC fits."""
    from .figures import result_figures

    return tuple(
        Figure(png, caption, name) for png, caption, name in result_figures(result, dpi=dpi)
    )


def _extra_sections(result: WorkflowResult, cites: _Citations) -> list[Section]:
    """Sections for workflow details that carry their own report blocks."""
    out = []
    for key, detail in result.details.items():
        blocks_fn = getattr(detail, "report_blocks", None)
        if callable(blocks_fn):
            title, blocks = blocks_fn()
            out.append(Section(str(title), tuple(blocks)))
        elif key == "decision_support":
            out.append(Section("Decision support", (Paragraph(str(detail), "warning"),)))
    return out


def document(
    result: WorkflowResult,
    *,
    files: Mapping[str, Path] | None = None,
    out: Path | None = None,
    anonymize: bool = False,
    figures: bool = True,
    dpi: float = 90.0,
) -> Document:
    """The report of ``result`` as blocks.

    Parameters
    ----------
    result
        Any workflow result.
    files
        Output files to list (paths shown relative to ``out``).
    out
        The output folder (for relative paths).
    anonymize
        Leave out patient identifiers and series UIDs.
    figures
        Render the figures (matplotlib); off for a text-only report.
    dpi
        Figure resolution.
    """
    cites = _Citations()
    sections: list[Section] = [_summary(result, anonymize)]
    figs = _figures(result, dpi=dpi) if figures else ()
    if figs:
        sections.append(Section("Images", tuple(figs)))
    sections += [_table(result)]
    sections += _extra_sections(result, cites)
    sens = _sensitivity(result)
    if sens is not None:
        sections.append(sens)
    sections += [
        _inputs(result, anonymize),
        _method(result),
        _findings(result),
        _assumptions(result, cites),
    ]
    f = _files(files or {}, out)
    if f is not None:
        sections.append(f)
    title = f"Dosimetry: {result.agent}"
    if result.administered_activity_bq:
        title += f", {format_activity(result.administered_activity_bq)}"
    subtitle = f"{result.title}. Generated {datetime.now().isoformat(sep=' ', timespec='seconds')}."
    return Document(title, subtitle, tuple(sections), cites.items, tuple(figs))


def table_rows(table: Table) -> Sequence[tuple[str, ...]]:
    """The rows of a table (for tests)."""
    return table.rows
