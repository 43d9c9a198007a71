"""The browser test's failure rules (``_checks.py``) on hand-made DOM snapshots (no browser)."""

from __future__ import annotations

from typing import Any

import pytest

from ._checks import (
    NO_IMAGE_MARK,
    NO_IMAGE_TAG,
    STDERR_MIME,
    CellSnapshot,
    OutputSnapshot,
    Problem,
    SliderResult,
    expects_image,
    find_problems,
    is_error_output,
    widget_failure,
)

TRACEBACK = (
    "---------------------------------------------------------------------------\n"
    "ZeroDivisionError                         Traceback (most recent call last)\n"
    "Cell In[3], line 1\n----> 1 1/0\n\nZeroDivisionError: division by zero"
)


def _code(source: str, tags: tuple[str, ...] = ()) -> dict[str, Any]:
    return {"cell_type": "code", "source": source, "metadata": {"tags": list(tags)}}


def _md() -> dict[str, Any]:
    return {"cell_type": "markdown", "source": "# title", "metadata": {}}


@pytest.mark.parametrize(
    "source",
    [
        "fig, ax = plt.subplots(1, 2)\nax[0].plot([1, 2])",
        "plt.show()",
        "plt.figure(figsize=(3, 3))",
        "fig = qa.figure()",
        "axes[0].imshow(img, origin='lower')",
        "slice_viewer(plan.dose, ct.volume)",
        "viewer.three_plane(dose)",
        "dvh_plot(dvhs)",
        "fused_slice(activity, ct.volume, index=3)",
        "three_plane_figure(result.dose, result.images['CT'], isodoses=[1, 2])",
        "tac_figure({n: fits[n] for n in shown}, yscale='log')",
        "bland_altman_figure(meas, pred, PAIRS)",
        "dvh_widget(plan.dose, masks, plan.density)",
    ],
)
def test_a_plotting_or_viewer_call_expects_an_image(source: str) -> None:
    assert expects_image(source)


@pytest.mark.parametrize(
    "source",
    [
        "print(f'{x:.2f}')",
        "# plt.show() is left out on purpose\nx = 1",
        "from dosimetry.viewer import slice_viewer",  # an import is not a call
        "figures = 3",
        "plot_count = 2",
        "png = figure_to_png(fig)",  # converts, shows nothing
        "from dosimetry.viewer import three_plane_figure, dvh_widget",
    ],
)
def test_code_without_a_plotting_call_expects_no_image(source: str) -> None:
    assert not expects_image(source)


def test_the_no_image_comment_or_tag_exempts_a_plotting_cell() -> None:
    source = "fig, ax = plt.subplots()\nplt.close(fig)"
    assert expects_image(source)
    assert not expects_image(f"{NO_IMAGE_MARK}\n{source}")
    assert not expects_image(source, tags=(NO_IMAGE_TAG,))


def test_a_traceback_or_error_line_on_stderr_is_an_error() -> None:
    assert is_error_output(OutputSnapshot(STDERR_MIME, TRACEBACK))
    assert is_error_output(OutputSnapshot(STDERR_MIME, "ValueError: activity must be > 0"))
    assert is_error_output(OutputSnapshot(STDERR_MIME, "ERROR:dosimetry.io:no CT found"))


def test_a_logged_warning_or_stdout_text_is_not_an_error() -> None:
    warning = "WARNING:dosimetry.planning:no population half-life for vertebral_column"
    assert not is_error_output(OutputSnapshot(STDERR_MIME, warning))
    assert not is_error_output(OutputSnapshot("application/vnd.jupyter.stdout", TRACEBACK))
    assert not is_error_output(OutputSnapshot("text/plain", "KeyError: shown as a value"))


@pytest.mark.parametrize(
    "text",
    [
        "Error displaying widget: model not found",
        "Error displaying widget",
        "Loading widget...",
        "Loading widget\u2026",
        "Failed to load model class 'XModel' from module 'nope'",
    ],
)
def test_widget_failure_messages_are_found(text: str) -> None:
    assert widget_failure(OutputSnapshot("", text)) is not None


def test_the_ipywidgets_error_view_is_a_widget_failure() -> None:
    assert widget_failure(OutputSnapshot("", "", error_widget=True)) == "ipywidgets error view"
    assert widget_failure(OutputSnapshot("", "slice 40 opacity 0.50")) is None


def _clean_run() -> tuple[list[dict[str, Any]], list[CellSnapshot]]:
    nb = [_md(), _code("x = 1"), _code("fig, ax = plt.subplots()"), _code("slice_viewer(dose)")]
    dom = [
        CellSnapshot("markdown", ""),
        CellSnapshot("code", "[1]:"),
        CellSnapshot("code", "[2]:", (OutputSnapshot("image/png", ""),), n_images=1),
        CellSnapshot("code", "[3]:", (OutputSnapshot("", "slice 4"),), n_images=1),
    ]
    return nb, dom


def test_a_clean_run_has_no_problems() -> None:
    nb, dom = _clean_run()
    assert find_problems(nb, dom, [SliderResult(3, 0, True)]) == []


def test_every_failure_kind_is_reported_at_its_cell() -> None:
    nb = [
        _md(),
        _code("fig, ax = plt.subplots()\nplt.close(fig)"),  # no image
        _code("fig, ax = plt.subplots()\nplt.close(fig)", tags=(NO_IMAGE_TAG,)),  # exempt
        _code("slice_viewer(dose)"),  # broken widget (and so no image)
        _code("1/0"),
        _code("print('never')"),
    ]
    dom = [
        CellSnapshot("markdown", ""),
        CellSnapshot("code", "[1]:"),
        CellSnapshot("code", "[2]:"),
        CellSnapshot("code", "[3]:", (OutputSnapshot("", "Error displaying widget"),)),
        CellSnapshot("code", "[4]:", (OutputSnapshot(STDERR_MIME, TRACEBACK),)),
        CellSnapshot("code", ""),
    ]
    found = find_problems(nb, dom, [SliderResult(3, 0, False, "img sources unchanged")])
    assert {(p.cell, p.kind) for p in found} == {
        (1, "missing image"),
        (3, "broken widget"),
        (3, "missing image"),
        (4, "error output"),
        (None, "cells not run"),
        (3, "slider does not change the image"),
    }
    error = next(p for p in found if p.kind == "error output")
    assert error.detail == "ZeroDivisionError: division by zero"


def test_a_cell_still_running_is_reported() -> None:
    nb, dom = _clean_run()
    dom[1] = CellSnapshot("code", "[*]:")
    assert [(p.cell, p.kind) for p in find_problems(nb, dom)] == [(1, "not finished")]


def test_a_cell_count_mismatch_stops_the_comparison() -> None:
    nb, dom = _clean_run()
    problems = find_problems(nb, dom[:-1])
    assert [p.kind for p in problems] == ["cell count"]
    assert str(problems[0]) == (
        "notebook: cell count: the notebook file has 4 cells, JupyterLab rendered 3"
    )


def test_problem_text_names_the_cell() -> None:
    assert str(Problem(4, "error output", "NameError: x")) == "cell 4: error output: NameError: x"
