"""Save a workflow result as one complete output set (files, reports, manifest).

:func:`save` is what ``dosimetry plan``/``spect``/``demo`` do after computing: the result's
files (:func:`dosimetry.io.outputs.write_result`), its reports
(:func:`dosimetry.report.render`) and ``manifest.json`` are written into a staging folder
and moved into place as a unit (:class:`dosimetry.io.outputs.OutputSet`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ..io.outputs import OutputSet, write_documents, write_result
from ..results import WorkflowResult

__all__ = ["save", "write_into"]


def write_into(
    result: WorkflowResult,
    folder: Path,
    *,
    anonymize: bool = False,
    figures: bool = True,
    input_dirs: Iterable[str | Path] = (),
    extra_documents: Mapping[str, str | bytes] | None = None,
) -> dict[str, Path]:
    """Write the result's files and reports into ``folder`` (a staging folder)."""
    from ..report import render

    files = write_result(result, folder, input_dirs=input_dirs)
    for detail in result.details.values():
        out_fn = getattr(detail, "output_files", None)
        if callable(out_fn):
            files.update(write_documents(folder, out_fn()))
    if extra_documents:
        files.update(write_documents(folder, extra_documents))
    listed = dict(files)
    listed["report (Markdown)"] = folder / "report.md"
    listed["report (HTML)"] = folder / "report.html"
    docs = render(result, files=listed, out=folder, anonymize=anonymize, figures=figures)
    files.update(write_documents(folder, docs))
    return files


def save(
    result: WorkflowResult,
    out: str | Path,
    *,
    overwrite: bool = False,
    anonymize: bool = False,
    figures: bool = True,
    input_dirs: Iterable[str | Path] = (),
    extra_documents: Mapping[str, str | bytes] | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``result`` to the folder ``out`` as a complete set; returns the folder.

    The folder is checked first (it must be new or empty, or hold a previous set of this
    program with ``overwrite``; never inside an input folder), and nothing is left in it if
    writing fails.
    """
    meta = {"result": {"kind": result.kind, "agent": result.agent, "method": result.method}}
    meta.update(dict(metadata or {}))
    outset = OutputSet(out, overwrite=overwrite, input_dirs=input_dirs, metadata=meta)
    with outset as staging:
        write_into(
            result,
            staging,
            anonymize=anonymize,
            figures=figures,
            input_dirs=input_dirs,
            extra_documents=extra_documents,
        )
    return outset.out
