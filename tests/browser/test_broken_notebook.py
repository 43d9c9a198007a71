"""The browser test finds real faults: a notebook made to fail, run in JupyterLab.

The notebook is written into the server's temporary root (never into ``notebooks/``). It
holds one cell per fault the test must catch, plus controls that must pass: a plotting
cell tagged as showing nothing, a logged warning, and a viewer whose slider works.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ._checks import NO_IMAGE_MARK, find_problems
from ._lab import LabServer, run_notebook

_CELLS: list[tuple[str, str, tuple[str, ...]]] = [
    ("markdown", "# Deliberately broken notebook (browser self-test)", ()),
    (
        "code",
        "import sys\n"
        "import ipywidgets as w\nimport matplotlib.pyplot as plt\nimport numpy as np\n"
        "from IPython.display import display",
        (),
    ),
    # 2: a widget view whose model does not exist -> "Error displaying widget"
    (
        "code",
        "display({'application/vnd.jupyter.widget-view+json': {'model_id': '0' * 32,\n"
        "         'version_major': 2, 'version_minor': 0}, 'text/plain': 'gone'}, raw=True)",
        (),
    ),
    # 3: draws but shows nothing -> missing image
    ("code", "fig, ax = plt.subplots()\nax.plot([0, 1])\nplt.close(fig)", ()),
    # 4: the same, marked as showing nothing on purpose: no problem
    ("code", f"{NO_IMAGE_MARK}\nfig, ax = plt.subplots()\nplt.close(fig)", ()),
    # 5: a viewer whose slider does not change the image -> slider problem
    (
        "code",
        "out = w.Output()\nstuck = w.IntSlider(min=0, max=10, value=5)\nwith out:\n"
        "    fig, ax = plt.subplots(figsize=(2, 2))\n    ax.imshow(np.eye(4))\n    plt.show()\n"
        "w.VBox([stuck, out])",
        (),
    ),
    # 6: a viewer whose slider works: no problem
    (
        "code",
        "out2 = w.Output()\ns2 = w.IntSlider(min=0, max=5, value=2, continuous_update=False)\n"
        "def draw(*_):\n    with out2:\n        out2.clear_output(wait=True)\n"
        "        fig, ax = plt.subplots(figsize=(2, 2))\n"
        "        ax.imshow(np.eye(6)[s2.value:])\n        plt.show()\n"
        "s2.observe(draw, names='value')\ndraw()\nw.VBox([s2, out2])",
        (),
    ),
    # 7: a logged warning on stderr: no problem
    ("code", "print('WARNING:demo:an expected warning', file=sys.stderr)", ()),
    # 8: an exception -> error output; Run All stops here
    ("code", "1 / 0", ()),
    # 9: never reached -> cells not run
    ("code", "print('never')", ()),
]


def _notebook() -> dict[str, Any]:
    cells = []
    for kind, source, tags in _CELLS:
        cell: dict[str, Any] = {"cell_type": kind, "metadata": {"tags": list(tags)}}
        cell["source"] = source
        if kind == "code":
            cell.update(execution_count=None, outputs=[])
        cells.append(cell)
    return {
        "cells": cells,
        "metadata": {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


@pytest.mark.browser
@pytest.mark.slow
def test_the_browser_test_catches_each_fault(
    lab_server: LabServer, lab_page: Any, screenshot_dir: Path
) -> None:
    nb = _notebook()
    folder = lab_server.root_dir / "browser-selftest"
    folder.mkdir(exist_ok=True)
    (folder / "broken.ipynb").write_text(json.dumps(nb))
    shots = screenshot_dir / "browser-selftest"
    run = run_notebook(
        lab_page,
        lab_server,
        "browser-selftest/broken.ipynb",
        shots,
        timeout_s=120.0,
        slider_wait_s=8.0,  # the stuck slider waits this long for nothing
    )
    assert not run.timed_out
    found = {(p.cell, p.kind) for p in find_problems(nb["cells"], run.cells, run.sliders)}
    assert found == {
        (2, "broken widget"),
        (3, "missing image"),
        (5, "slider does not change the image"),
        (8, "error output"),
        (None, "cells not run"),
    }, f"screenshots in {shots}"
    # the working viewer (cell 6) was moved and changed; the stuck one (cell 5) did not
    assert {(s.cell, s.changed) for s in run.sliders} == {(5, False), (6, True)}
