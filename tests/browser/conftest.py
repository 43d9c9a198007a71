"""Fixtures for the browser tests: Chromium, Playwright, one JupyterLab server per session.

The tests skip, with the reason, only when Chromium or Playwright for Python cannot be
found. ``$DOSIMETRY_SCREENSHOT_DIR`` chooses where screenshots go (default: a folder under
pytest's temporary directory); the path is printed either way.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ._lab import NOTEBOOK_DIR, LabServer, find_chromium, launch_chromium, start_lab


@pytest.fixture(scope="session")
def chromium_path() -> str:
    """Path of the Chromium executable (Debian package ``chromium``)."""
    path = find_chromium()
    if path is None:
        pytest.skip(
            "browser test skipped: no Chromium found (install Debian's `chromium` package, "
            "or set DOSIMETRY_CHROMIUM to the executable)"
        )
    return path


@pytest.fixture(scope="session")
def browser_context(chromium_path: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A Chromium context with a fresh profile, driven by Playwright for Python."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip(
            "browser test skipped: Playwright for Python is not installed "
            '(pip install -e ".[test]")'
        )
    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_playwright() as p:
        context = launch_chromium(p, chromium_path, profile)
        try:
            yield context
        finally:
            context.close()


@pytest.fixture(scope="session")
def screenshot_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Folder for the screenshots (printed so that CI logs show where they are)."""
    env = os.environ.get("DOSIMETRY_SCREENSHOT_DIR")
    path = Path(env) if env else tmp_path_factory.mktemp("browser-screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def lab_server(
    browser_context: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LabServer]:
    """``jupyter lab`` serving a temporary copy of ``notebooks/`` (the repo stays untouched).

    Depends on ``browser_context`` so that no server starts where the tests will skip.
    The server (process group) is stopped at the end of the session, failure or not.
    """
    base = tmp_path_factory.mktemp("jupyterlab")
    root = base / "root"
    shutil.copytree(NOTEBOOK_DIR, root / "notebooks", ignore=shutil.ignore_patterns(".*"))
    server = start_lab(root, base / "state")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def lab_page(browser_context: Any, lab_server: LabServer) -> Iterator[Any]:
    """A fresh page; its notebook's kernel is shut down afterwards."""
    page = browser_context.new_page()
    try:
        yield page
    finally:
        page.close()
        lab_server.shutdown_kernels()
