"""Every notebook in ``notebooks/`` runs in JupyterLab in headless Chromium without a fault.

Run All Cells from the menu, wait for the kernel to go idle, then fail on the rules in
``_checks.py``: error outputs and tracebacks, broken widgets, plotting cells without an
image, viewer sliders that do not change the image. Screenshots of each notebook and each
widget go to the folder printed at the start (``$DOSIMETRY_SCREENSHOT_DIR`` to choose it).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from ._checks import find_problems
from ._lab import DEFAULT_NOTEBOOK_TIMEOUT_S, NOTEBOOK_DIR, LabServer, run_notebook

NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))


def _timeout_s() -> float:
    return float(os.environ.get("DOSIMETRY_BROWSER_TIMEOUT_S", DEFAULT_NOTEBOOK_TIMEOUT_S))


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_clean_in_jupyterlab(
    notebook: Path,
    lab_server: LabServer,
    lab_page: Any,
    screenshot_dir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    shots = screenshot_dir / notebook.stem
    with capsys.disabled():
        print(f"\n[browser] {notebook.name}: screenshots in {shots}")
    run = run_notebook(
        lab_page, lab_server, f"notebooks/{notebook.name}", shots, timeout_s=_timeout_s()
    )
    with capsys.disabled():
        print(
            f"[browser] {notebook.name}: {run.elapsed_s:.0f} s, "
            f"{len(run.sliders)} slider(s) moved, {len(run.screenshots)} screenshot(s)"
        )
    assert not run.timed_out, (
        f"{notebook.name}: kernel still busy {_timeout_s():.0f} s after Run All Cells "
        f"(DOSIMETRY_BROWSER_TIMEOUT_S raises the limit); screenshots in {shots}"
    )
    # the served copy (made when the server started) is what JupyterLab rendered
    served = lab_server.root_dir / "notebooks" / notebook.name
    cells = json.loads(served.read_text(encoding="utf-8"))["cells"]
    problems = find_problems(cells, run.cells, run.sliders)
    assert not problems, (
        f"{notebook.name} in JupyterLab: "
        + "; ".join(str(p) for p in problems)
        + f". Screenshots and console log in {shots}"
    )
