"""Reports of any workflow result: Markdown (``report.md``) and self-contained HTML
(``report.html``), from the same content blocks.

.. code-block:: python

    from dosimetry.report import render

    docs = render(result, files=written, out=out_folder)  # {"report.md": ..., "report.html": ...}

The package depends on the result types and the viewer's figure functions only, never on
a workflow; see :mod:`dosimetry.report.blocks` for what a report contains.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..results import WorkflowResult

__all__ = ["render", "render_markdown", "render_html", "document"]


def document(result: WorkflowResult, **kwargs: Any) -> Any:
    """The report's content blocks (see :func:`dosimetry.report.blocks.document`)."""
    from .blocks import document as _document

    return _document(result, **kwargs)


def render_markdown(result: WorkflowResult, **kwargs: Any) -> str:
    """The Markdown report of ``result`` (figures as links to ``figures/*.png``)."""
    from .markdown import render_markdown as _md

    return _md(document(result, **kwargs))


def render_html(result: WorkflowResult, **kwargs: Any) -> str:
    """The self-contained HTML report of ``result``."""
    from .html import render_html as _html

    return _html(document(result, **kwargs))


def render(
    result: WorkflowResult,
    *,
    files: Mapping[str, Path] | None = None,
    out: Path | None = None,
    anonymize: bool = False,
    figures: bool = True,
) -> dict[str, str | bytes]:
    """Every report document of ``result``: ``report.md``, ``report.html`` and the figure
    files the Markdown links (``figures/*.png``); file name -> content."""
    from .blocks import document as _document
    from .html import render_html as _html
    from .markdown import figure_files
    from .markdown import render_markdown as _md

    doc = _document(result, files=files, out=out, anonymize=anonymize, figures=figures)
    out_docs: dict[str, str | bytes] = {"report.md": _md(doc), "report.html": _html(doc)}
    out_docs.update(figure_files(doc))
    return out_docs
