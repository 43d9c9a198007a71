"""What the browser test calls a failure, as pure functions of a DOM snapshot.

The browser driver (``_lab.py``) reads the rendered notebook into plain data
(:class:`CellSnapshot`, :class:`SliderResult`); the rules below turn that data into
:class:`Problem` records. Keeping the rules free of the browser lets them be unit-tested
(``test_checks.py``) on hand-made snapshots.

Rules
-----
1. **Error output.** A code cell output rendered as stderr
   (``data-mime-type="application/vnd.jupyter.stderr"``, which is how JupyterLab renders
   both ``error`` outputs and the stderr stream) that holds a ``Traceback``, a line starting
   ``SomethingError:`` / ``SomethingException:``, or a logging line at ``ERROR:`` /
   ``CRITICAL:`` level. Logged warnings (``WARNING:...``) are not failures.
2. **Broken widget.** Any output whose text says ``Error displaying widget``,
   ``Loading widget...`` (still loading when the kernel went idle), ``Failed to load model
   class``, ``Failed to load view class`` or ``Failed to create view``, or that holds
   ipywidgets' error view (class ``jupyter-widgets-error-widget``).
3. **Missing image.** A code cell whose source (comments ignored) matches
   :data:`IMAGE_CALL` — a pyplot figure call (``plt.show(``, ``plt.subplots(``,
   ``plt.figure(``, ``plt.imshow(``), any ``.figure(`` or ``.imshow(`` call, or a call of a
   viewer function (``viewer.<name>(``, ``<name>_viewer(``, ``<name>_plot(``,
   ``<name>_figure(`` such as ``three_plane_figure(``, ``<name>_widget(`` such as
   ``dvh_widget(``, ``fused_slice(``) — must show at least one image: an ``img``, a ``canvas`` or an inline
   ``svg`` in its outputs (a widget counts only through the image it shows). A cell that
   draws on purpose without showing opts out with a ``# BROWSER_NO_IMAGE`` comment line
   (:data:`NO_IMAGE_MARK`) or the cell tag ``browser-no-image`` (:data:`NO_IMAGE_TAG`).
4. **Cell not run.** A code cell still showing ``[*]`` (running or queued) after the kernel
   went idle, or without an execution count (Run All stops at the first error, so this
   follows rule 1 there; alone it means the run never reached the cell).
5. **Viewer slider.** In every widget output that shows an image and has a slider, moving
   the first slider must change the image shown (compared as ``img`` sources, else as
   screenshot bytes).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

#: Comment line that exempts a cell from rule 3 (it calls a plotting function but shows
#: nothing on purpose). A comment, like ``# NBVAL_IGNORE_OUTPUT``, because
#: ``tools/refresh_notebooks.py`` clears cell metadata (tags).
NO_IMAGE_MARK = "# BROWSER_NO_IMAGE"
#: Cell tag with the same effect, for notebooks edited in JupyterLab's tag editor.
NO_IMAGE_TAG = "browser-no-image"

#: A call that should leave a picture in the cell's output (rule 3).
IMAGE_CALL = re.compile(
    r"\bplt\.(?:show|subplots|subplot_mosaic|figure|imshow)\s*\("
    r"|\.figure\s*\("
    r"|\.imshow\s*\("
    r"|\bviewer\.\w+\s*\("
    r"|\b\w*_viewer\s*\("
    r"|\b\w+_plot\s*\("
    r"|\bfused_slice\s*\("
    r"|\b\w+_figure\s*\("
    r"|\b\w+_widget\s*\("
)

STDERR_MIME = "application/vnd.jupyter.stderr"

_ERROR_LINE = re.compile(r"^(?:\w+(?:Error|Exception)\b.*:|(?:ERROR|CRITICAL):)", re.MULTILINE)
_WIDGET_FAILURES = (
    "Error displaying widget",
    "Loading widget...",
    "Loading widget\u2026",
    "Failed to load model class",
    "Failed to load view class",
    "Failed to create view",
)
_PROMPT_NUMBER = re.compile(r"\[\s*(\d+)\s*\]")


@dataclass(frozen=True)
class OutputSnapshot:
    """One rendered output node (``.jp-OutputArea-output``), nested ones included.

    Attributes
    ----------
    mime : str
        Its ``data-mime-type`` attribute (empty for a widget view).
    text : str
        Its visible text (``innerText``), truncated by the driver.
    error_widget : bool
        Whether it holds ipywidgets' error view (``.jupyter-widgets-error-widget``).
    """

    mime: str
    text: str
    error_widget: bool = False


@dataclass(frozen=True)
class CellSnapshot:
    """One notebook cell as rendered in JupyterLab.

    Attributes
    ----------
    cell_type : str
        ``"code"``, ``"markdown"`` or ``"raw"``.
    prompt : str
        Input prompt text, e.g. ``"[3]:"``, ``"[*]:"`` or ``""`` (never run).
    outputs : tuple of OutputSnapshot
        Every output node in the cell, widget-nested outputs included, in DOM order.
    n_images : int
        Number of ``img``, ``canvas`` and inline ``svg`` pictures in the cell's outputs.
    """

    cell_type: str
    prompt: str
    outputs: tuple[OutputSnapshot, ...] = ()
    n_images: int = 0


@dataclass(frozen=True)
class SliderResult:
    """Outcome of moving the first slider of one widget output.

    Attributes
    ----------
    cell : int
        Cell index in the notebook (0-based, markdown cells counted).
    widget : int
        Index of the widget output within the cell.
    changed : bool
        Whether the displayed image changed after the slider moved.
    detail : str
        What was compared (for the failure message).
    """

    cell: int
    widget: int
    changed: bool
    detail: str = ""


@dataclass(frozen=True)
class Problem:
    """One failure found in a notebook run in the browser."""

    cell: int | None
    kind: str
    detail: str = field(default="")

    def __str__(self) -> str:
        where = "notebook" if self.cell is None else f"cell {self.cell}"
        return f"{where}: {self.kind}" + (f": {self.detail}" if self.detail else "")


def cell_source(cell: Mapping[str, Any]) -> str:
    """Source of a notebook-JSON cell as one string (nbformat stores a str or a list)."""
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else str(src)


def cell_tags(cell: Mapping[str, Any]) -> tuple[str, ...]:
    """Tags of a notebook-JSON cell (``metadata.tags``), empty when none."""
    return tuple(cell.get("metadata", {}).get("tags", ()))


def expects_image(source: str, tags: Sequence[str] = ()) -> bool:
    """Whether rule 3 requires a picture from a code cell.

    Parameters
    ----------
    source : str
        The cell's source code. Comment text (after ``#``) is ignored, except that a
        :data:`NO_IMAGE_MARK` line exempts the cell.
    tags : sequence of str
        The cell's tags; :data:`NO_IMAGE_TAG` exempts the cell.

    Returns
    -------
    bool
        True when the code calls a plotting or viewer function (:data:`IMAGE_CALL`).
    """
    if NO_IMAGE_TAG in tags or any(line.strip() == NO_IMAGE_MARK for line in source.splitlines()):
        return False
    code = "\n".join(line.split("#", 1)[0] for line in source.splitlines())
    return IMAGE_CALL.search(code) is not None


def is_error_output(out: OutputSnapshot) -> bool:
    """Rule 1: a stderr/error output that reports an error (not a logged warning)."""
    if out.mime != STDERR_MIME:
        return False
    return "Traceback" in out.text or _ERROR_LINE.search(out.text) is not None


def widget_failure(out: OutputSnapshot) -> str | None:
    """Rule 2: the widget failure message shown by an output, or None."""
    if out.error_widget:
        return "ipywidgets error view"
    for message in _WIDGET_FAILURES:
        if message in out.text:
            return message
    return None


def _first_line_with(text: str, needle: re.Pattern[str] | str) -> str:
    lines = text.strip().splitlines()
    for line in lines:
        if (needle in line) if isinstance(needle, str) else needle.search(line):
            return line.strip()[:300]
    return lines[-1].strip()[:300] if lines else ""


def find_problems(
    nb_cells: Sequence[Mapping[str, Any]],
    dom_cells: Sequence[CellSnapshot],
    sliders: Sequence[SliderResult] = (),
) -> list[Problem]:
    """Apply rules 1-5 to one notebook run in the browser.

    Parameters
    ----------
    nb_cells : sequence of mapping
        The ``cells`` list of the notebook JSON (sources and tags).
    dom_cells : sequence of CellSnapshot
        The cells as rendered, in the same order (one per notebook cell).
    sliders : sequence of SliderResult
        Results of the slider moves made by the driver.

    Returns
    -------
    list of Problem
        Empty when the notebook passed.
    """
    problems: list[Problem] = []
    if len(nb_cells) != len(dom_cells):
        problems.append(
            Problem(
                None,
                "cell count",
                f"the notebook file has {len(nb_cells)} cells, JupyterLab rendered {len(dom_cells)}",
            )
        )
        return problems
    not_run: list[int] = []
    for i, (nb_cell, dom) in enumerate(zip(nb_cells, dom_cells, strict=True)):
        if dom.cell_type != "code":
            continue
        if "*" in dom.prompt:
            problems.append(Problem(i, "not finished", f"prompt {dom.prompt!r}"))
        elif not _PROMPT_NUMBER.search(dom.prompt):
            not_run.append(i)
        for out in dom.outputs:
            if is_error_output(out):
                problems.append(Problem(i, "error output", _first_line_with(out.text, _ERROR_LINE)))
            failure = widget_failure(out)
            if failure is not None:
                problems.append(Problem(i, "broken widget", failure))
        if (
            _PROMPT_NUMBER.search(dom.prompt)
            and expects_image(cell_source(nb_cell), cell_tags(nb_cell))
            and dom.n_images == 0
        ):
            first = cell_source(nb_cell).strip().splitlines()[:1]
            problems.append(
                Problem(
                    i,
                    "missing image",
                    f"source calls a plotting/viewer function ({first[0][:80] if first else ''!r}) "
                    f"but no img/canvas/svg was shown; add a line {NO_IMAGE_MARK!r} if intended",
                )
            )
    if not_run:
        problems.append(
            Problem(None, "cells not run", f"code cells {not_run} have no execution count")
        )
    for s in sliders:
        if not s.changed:
            problems.append(
                Problem(
                    s.cell, "slider does not change the image", f"widget {s.widget}: {s.detail}"
                )
            )
    return problems
