"""Each notebook's compared outputs are the same with 1 and 2 Numba threads and a cold cache.

The main ``pytest`` run already checks every notebook once under nbval (``--nbval`` in
``addopts``, ``notebooks`` in ``testpaths``). This test runs the selected notebooks again,
each in a child ``pytest --nbval`` with ``NUMBA_NUM_THREADS`` set to 1, then 2, each time
with an empty ``NUMBA_CACHE_DIR`` (Numba compiles afresh). The voxel S-value kernel cache
(``DOSIMETRY_CACHE_DIR``) is a fresh folder shared by the runs of this module: empty for a
notebook's 1-thread run, filled by it for the 2-thread run, so both cache states are seen.
nbval compares each run with the stored outputs, so a printed number that moves with the
thread count (``prange`` reductions are not bit-reproducible) or with the cache state
fails here.

Which notebooks: all of them, unless a notebook's metadata says
``"dosimetry": {"stability_check": false}`` (for a notebook whose compared outputs cannot
move with threads or caches, to save CI time). Which thread counts: :func:`_thread_counts`
(1 by default; the main nbval pass is the multi-thread run). See ``tests/README.md``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))

#: Child run limit (s): a notebook runs in < 60 s; a cold Numba cache adds compile time.
CHILD_TIMEOUT_S = 900


def _thread_counts() -> list[int]:
    """Thread counts of the child runs: ``$DOSIMETRY_STABILITY_THREADS`` (e.g. ``"1,2"``),
    by default 1 only -- the main nbval pass of the same ``pytest`` run is the run with
    every core (2 on CI, Numba's default), so together the notebook is checked with 1 and
    2 threads, cold and warm caches, at half the cost. On a one-core machine the default
    adds a 2-thread child run, so that two thread counts are still compared."""
    text = os.environ.get("DOSIMETRY_STABILITY_THREADS", "").strip()
    if text:
        return [int(t) for t in text.split(",") if t.strip()]
    return [1] if (os.cpu_count() or 1) >= 2 else [1, 2]


THREADS = _thread_counts()


def stability_checked(notebook: Path) -> bool:
    """Whether ``notebook`` takes part (metadata ``dosimetry.stability_check``, default True)."""
    meta = json.loads(notebook.read_text(encoding="utf-8")).get("metadata", {})
    return bool(meta.get("dosimetry", {}).get("stability_check", True))


SELECTED = [nb for nb in NOTEBOOKS if stability_checked(nb)]


def nbval_command(notebook: Path) -> list[str]:
    """A child pytest that runs only ``notebook`` under nbval.

    ``-o addopts=`` drops the project's ``addopts`` (doctests of the package, ``--nbval`` on
    the test paths), so the child collects the one notebook and nothing else; the rest of
    the project's pytest configuration (``filterwarnings = error``) still applies.
    """
    return [
        sys.executable,
        "-m",
        "pytest",
        "-o",
        "addopts=",
        "-p",
        "no:cacheprovider",
        "--nbval",
        "--nbval-current-env",
        "-q",
        "-rf",
        "--color=no",  # nbval too: plain text in the failure message
        str(notebook),
    ]


@pytest.fixture(scope="module")
def kernel_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Kernel cache shared by this module's runs: cold for the first, warm after."""
    return tmp_path_factory.mktemp("dosimetry-cache")


@pytest.mark.notebook
@pytest.mark.slow
@pytest.mark.parametrize("threads", THREADS, ids=[f"threads{t}" for t in THREADS])
@pytest.mark.parametrize("notebook", SELECTED, ids=[nb.stem for nb in SELECTED])
def test_notebook_outputs_do_not_depend_on_threads_or_cache(
    notebook: Path,
    threads: int,
    tmp_path: Path,
    kernel_cache: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    numba_cache = tmp_path / "numba-cache"
    numba_cache.mkdir()
    env = os.environ.copy()
    env.update(
        NUMBA_NUM_THREADS=str(threads),
        NUMBA_CACHE_DIR=str(numba_cache),
        DOSIMETRY_CACHE_DIR=str(kernel_cache),
    )
    env.pop("NUMBA_DISABLE_JIT", None)  # the point is the compiled, threaded code
    t0 = time.monotonic()
    proc = subprocess.run(
        nbval_command(notebook),
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT_S,
    )
    with capsys.disabled():
        print(f"\n[stability] {notebook.name}, {threads} thread(s): {time.monotonic() - t0:.0f} s")
    assert proc.returncode == 0, (
        f"{notebook.name} fails nbval with NUMBA_NUM_THREADS={threads} and an empty Numba cache "
        f"(exit {proc.returncode}); a compared output moved. End of the child run:\n"
        + (proc.stdout + proc.stderr)[-6000:]
    )


def test_the_metadata_opt_out_is_read(tmp_path: Path) -> None:
    def _write(name: str, metadata: dict[str, object]) -> Path:
        path = tmp_path / name
        path.write_text(json.dumps({"cells": [], "metadata": metadata, "nbformat": 4}))
        return path

    assert stability_checked(_write("default.ipynb", {}))
    assert stability_checked(_write("on.ipynb", {"dosimetry": {"stability_check": True}}))
    assert not stability_checked(_write("off.ipynb", {"dosimetry": {"stability_check": False}}))


@pytest.mark.slow
@pytest.mark.skipif(not NOTEBOOKS, reason="no notebooks in notebooks/")
def test_the_child_run_collects_only_the_notebook() -> None:
    """No recursion: the child collects the notebook's cells, not tests/ or the package."""
    proc = subprocess.run(
        [*nbval_command(NOTEBOOKS[0]), "--collect-only"],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    items = [line for line in proc.stdout.splitlines() if "::" in line]
    assert items and all(line.startswith(f"notebooks/{NOTEBOOKS[0].name}::") for line in items)
