"""The HTML report opened in Chromium: no console error, every image decodes, nothing
fetched from anywhere (the file is self-contained), and the print layout renders."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dosimetry.cli import EXIT_OK, main


@pytest.fixture(scope="module")
def demo_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report") / "demo"
    assert main(["demo", "--out", str(out), "--method", "led"]) == EXIT_OK
    return out / "report.html"


@pytest.mark.browser
def test_report_opens_without_errors_and_is_self_contained(
    browser_context: Any, demo_report: Path, screenshot_dir: Path
) -> None:
    page = browser_context.new_page()
    errors: list[str] = []
    requests: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("request", lambda r: requests.append(r.url))
    try:
        page.goto(demo_report.as_uri(), wait_until="load")
        images = page.evaluate(
            "() => Array.from(document.images).map(i => [i.complete, i.naturalWidth])"
        )
        assert len(images) >= 3, images
        assert all(done and width > 0 for done, width in images), images
        text = page.inner_text("body")
        for heading in ("Assumptions", "kidney_left", "Heterogeneity"):
            assert heading in text, heading
        page.screenshot(path=str(screenshot_dir / "report_screen.png"), full_page=False)
        page.emulate_media(media="print")
        page.screenshot(path=str(screenshot_dir / "report_print.png"), full_page=False)
        print(f"[browser] report screenshots in {screenshot_dir}")
    finally:
        page.close()
    assert not errors, errors
    foreign = [u for u in requests if not u.startswith(("file:", "data:"))]
    assert not foreign, f"the report fetched {foreign}"
