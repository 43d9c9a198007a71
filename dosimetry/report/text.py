"""A short plain-text summary of a result for the terminal (what the CLI prints).

Untrusted text (VOI names) is stripped of control characters and escape sequences.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from ..results import WorkflowResult
from .blocks import format_activity

__all__ = ["summary"]


def summary(result: WorkflowResult, files: Mapping[str, Path] | None = None) -> str:
    """Agent, activity, method, grid, the VOI table and the findings, as text."""
    from .._text import terminal

    alpha = result.is_alpha
    per = "MBq" if alpha else "GBq"
    lines = [
        f"{terminal(result.agent)}: {format_activity(result.administered_activity_bq)}, dose by "
        f"{result.method.upper()}"
        + (
            f" on a {'x'.join(map(str, result.dose.shape))} grid "
            f"({', '.join(f'{s:.2f}' for s in result.dose.spacing_mm)} mm)"
            if result.dose is not None
            else ""
        ),
        f"{'VOI':<20s}{'volume mL':>11s}{'mean Gy':>10s}{'max Gy':>10s}{'Gy/' + per:>10s}"
        + (f"{'mean Gy_RBE':>13s}" if alpha else ""),
    ]
    for row in result.table:
        line = (
            f"{terminal(row.name)[:19]:<20s}{row.volume_ml:>11.1f}{row.dose.mean:>10.2f}"
            f"{row.dose.max:>10.2f}{result.table.per_activity(row.dose.mean, per):>10.3g}"
        )
        if alpha and row.dose_rbe is not None:
            line += f"{row.dose_rbe.mean:>13.2f}"
        lines.append(line)
    for detail in result.details.values():
        more = getattr(detail, "summary_lines", None)
        if callable(more):
            lines += [terminal(str(x)) for x in more()]
    for f in result.findings:
        flag = "accepted" if f.accepted else f.level
        lines.append(f"[{flag}] {terminal(f.message)}")
    for label, path in (files or {}).items():
        lines.append(f"{label}: {terminal(str(path))}")
    lines.append(f"done in {result.elapsed_s:.1f} s")
    return "\n".join(lines)
