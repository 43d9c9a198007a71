"""Markdown rendering of a report :class:`~dosimetry.report.blocks.Document`.

Every piece of text is escaped for Markdown (a ROI name cannot start a heading, close a
table cell or inject HTML). Figures are written as files beside the report when
``figure_dir`` is given, and linked by relative path.
"""

from __future__ import annotations

from pathlib import Path

from .blocks import Document, Figure, KeyValues, Paragraph, Table

__all__ = ["render_markdown"]


def _md(text: str) -> str:
    from .._text import escape_markdown

    return escape_markdown(str(text))


def _cell(text: str) -> str:
    return _md(text).replace("\n", " ")


def render_markdown(doc: Document, *, figure_links: bool = True) -> str:
    """The document as Markdown text (figures linked by their file names)."""
    lines = [f"# {_md(doc.title)}", "", _md(doc.subtitle), ""]
    for section in doc.sections:
        lines += [f"## {_md(section.title)}", ""]
        for block in section.blocks:
            if isinstance(block, Paragraph):
                prefix = "> " if block.kind != "plain" else ""
                lines += [prefix + _md(block.text), ""]
            elif isinstance(block, KeyValues):
                lines += [f"- {_md(k)}: {_md(v)}" for k, v in block.items] + [""]
            elif isinstance(block, Table):
                align = block.align or tuple("left" for _ in block.header)
                lines.append("| " + " | ".join(_cell(h) for h in block.header) + " |")
                lines.append("|" + "|".join("---:" if a == "right" else "---" for a in align) + "|")
                for row in block.rows:
                    lines.append("| " + " | ".join(_cell(c) for c in row) + " |")
                if block.caption:
                    lines += ["", f"*{_md(block.caption)}*"]
                lines.append("")
            elif isinstance(block, Figure):
                if figure_links:
                    lines += [f"![{_md(block.caption)}](figures/{block.name})", ""]
                else:
                    lines += [f"*Figure: {_md(block.caption)}*", ""]
    if doc.citations:
        lines += ["## References", ""]
        lines += [f"{i}. {_md(c)}" for i, c in enumerate(doc.citations, start=1)]
        lines.append("")
    return "\n".join(lines)


def figure_files(doc: Document) -> dict[str, bytes]:
    """``figures/<name>`` -> PNG bytes for the figures a Markdown report links."""
    figs = list(doc.figures) + [
        b for section in doc.sections for b in section.blocks if isinstance(b, Figure)
    ]
    return {str(Path("figures") / f.name): f.png for f in figs}
