"""Execute notebooks and keep only the outputs nbval should compare.

Usage: ``python tools/refresh_notebooks.py notebooks/01_quickstart.ipynb [...]``

Each notebook is run top to bottom in the current environment. Cells that start with
``# NBVAL_IGNORE_OUTPUT`` (figures, widgets, tables, timings) are stored without outputs;
the other cells keep their text output (stdout, stderr such as logged warnings, and
plain-text results), which nbval then
compares on every test run. Execution counts are renumbered 1, 2, ... and cell metadata
cleared so that a re-run produces a minimal diff.

A compared cell that also displays something (a figure, a widget, a logged warning shown as
a notice by ``dosimetry.viewer.notebook_logging``) cannot be stored without it and still pass
nbval: such cells are named on stderr and the exit status is 1. Mark them
``# NBVAL_IGNORE_OUTPUT`` and print what is compared in a cell of its own.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

KEEP_MIME = "text/plain"


def refresh(path: Path, timeout_s: int = 600) -> list[int]:
    """Execute ``path`` and store the compared outputs; returns the numbers of compared
    cells whose displayed outputs had to be dropped (nbval would fail on them)."""
    nb = nbformat.read(path, as_version=4)
    NotebookClient(
        nb,
        timeout=timeout_s,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    ).execute()
    count = 0
    dropped: list[int] = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        count += 1
        cell.execution_count = count  # nbval refuses outputs of cells marked as never run
        cell.metadata = {}
        if cell.source.lstrip().startswith("# NBVAL_IGNORE_OUTPUT"):
            cell.outputs = []
            continue
        kept = []
        for out in cell.outputs:
            if out.output_type == "stream":
                kept.append(out)
            elif out.output_type == "execute_result" and KEEP_MIME in out.data:
                out.data = {KEEP_MIME: out.data[KEEP_MIME]}
                out.metadata = {}
                out.execution_count = count
                kept.append(out)
            else:
                dropped.append(count)
        cell.outputs = kept
    nb.metadata.pop("widgets", None)  # saved widget state holds rendered figures
    nbformat.write(nb, path)
    return sorted(set(dropped))


def main(argv: list[str]) -> int:
    status = 0
    for name in argv:
        dropped = refresh(Path(name))
        print(f"refreshed {name}")
        if dropped:
            status = 1
            print(
                f"{name}: code cell(s) {dropped} display output that is not stored (figure, "
                "widget or logged notice): nbval will fail there; mark them "
                "# NBVAL_IGNORE_OUTPUT",
                file=sys.stderr,
            )
    return status


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
