"""Drive JupyterLab in headless Chromium: start the server, run a notebook through the UI.

Nothing here imports Playwright at module level: the module is imported by pytest's
doctest collection on machines without it, and the fixtures in ``conftest.py`` skip the
browser tests there.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._checks import CellSnapshot, OutputSnapshot, SliderResult

REPO_ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK_DIR = REPO_ROOT / "notebooks"

#: Where Debian's ``chromium`` package puts the browser; ``$DOSIMETRY_CHROMIUM`` overrides.
CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")

#: Chromium flags: headless, no sandbox (root in a container), no network of its own.
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)

#: JupyterLab user settings written into a fresh settings folder for the test server:
#: every cell attached to the DOM (the checks read all of them), no news or update checks
#: (no network), no autosave.
LAB_SETTINGS: dict[str, dict[str, Any]] = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
    "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
}

#: Per-notebook limit (s) for "Run All Cells" to finish; ``$DOSIMETRY_BROWSER_TIMEOUT_S``
#: overrides. Notebooks are meant to run in < 60 s on 2 cores; the browser and the
#: server share those cores.
DEFAULT_NOTEBOOK_TIMEOUT_S = 240.0


def find_chromium() -> str | None:
    """Path of a Chromium executable, or None.

    ``$DOSIMETRY_CHROMIUM`` first, then :data:`CHROMIUM_CANDIDATES`, then ``chromium`` /
    ``chromium-browser`` on ``PATH``.
    """
    env = os.environ.get("DOSIMETRY_CHROMIUM")
    if env:
        return env if os.access(env, os.X_OK) else None
    for path in CHROMIUM_CANDIDATES:
        if os.access(path, os.X_OK):
            return path
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LabServer:
    """A running ``jupyter lab`` (own process group) serving ``root_dir``."""

    base_url: str
    token: str
    root_dir: Path
    log_path: Path
    process: subprocess.Popen[bytes]

    def notebook_url(self, relpath: str, workspace: str) -> str:
        """URL that opens ``relpath`` alone in a fresh workspace (``?reset``)."""
        return f"{self.base_url}lab/workspaces/{workspace}/tree/{relpath}?reset&token={self.token}"

    def api(self, method: str, path: str, timeout_s: float = 10.0) -> Any:
        """Call the server's REST API; returns the decoded JSON body (None when empty)."""
        req = urllib.request.Request(
            self.base_url + path.lstrip("/"),
            method=method,
            headers={"Authorization": f"token {self.token}"},
        )
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:
            body = resp.read()
        return json.loads(body) if body else None

    def kernel_states(self) -> list[str]:
        """Execution state (``idle``, ``busy``, ``starting``...) of every running kernel.

        ``["unavailable"]`` when the server answers with an error: listing kernels while
        one is starting can fail with HTTP 500 (seen once); callers poll again.
        """
        try:
            kernels = self.api("GET", "api/kernels")
        except urllib.error.HTTPError:
            return ["unavailable"]
        return [str(k.get("execution_state")) for k in kernels]

    def shutdown_kernels(self) -> None:
        """Shut down every kernel (between notebooks, so they do not compete for CPU)."""
        for k in self.api("GET", "api/kernels"):
            try:
                self.api("DELETE", f"api/kernels/{k['id']}", timeout_s=30.0)
            except urllib.error.URLError:
                pass

    def log_tail(self, n_chars: int = 3000) -> str:
        """End of the server log, for failure messages."""
        try:
            return self.log_path.read_text(errors="replace")[-n_chars:]
        except OSError:
            return ""

    def stop(self, timeout_s: float = 20.0) -> None:
        """Stop the server and its kernels: SIGTERM to the process group, then SIGKILL."""
        if self.process.poll() is not None:
            return
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                return
            try:
                self.process.wait(timeout=timeout_s)
                break
            except subprocess.TimeoutExpired:
                continue
        # Kernels run in their own process groups (jupyter_client starts them with a new
        # session); the server shuts them down on SIGTERM. Reap the group in case it did not.
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def start_lab(root_dir: Path, state_dir: Path, *, timeout_s: float = 120.0) -> LabServer:
    """Start ``jupyter lab`` headless on a free port with a random token.

    Parameters
    ----------
    root_dir : Path
        Folder served (the notebooks' working copy).
    state_dir : Path
        Empty folder for the server's config, data, runtime, settings and workspaces,
        so that the user's own Jupyter set-up neither leaks in nor gets written.
    timeout_s : float
        How long to wait for ``/api/status`` to answer (s).

    Returns
    -------
    LabServer
        The running server; call :meth:`LabServer.stop` when done.
    """
    settings = state_dir / "user-settings"
    for rel, values in LAB_SETTINGS.items():
        path = settings / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    for sub in ("config", "data", "runtime", "workspaces"):
        (state_dir / sub).mkdir(parents=True, exist_ok=True)

    env = os.environ.copy()
    env.pop("MPLBACKEND", None)  # the kernel must use the inline backend to show figures
    env.update(
        JUPYTER_CONFIG_DIR=str(state_dir / "config"),
        JUPYTER_DATA_DIR=str(state_dir / "data"),
        JUPYTER_RUNTIME_DIR=str(state_dir / "runtime"),
        JUPYTER_PLATFORM_DIRS="1",
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH", "")])),
    )
    port = free_port()
    token = secrets.token_hex(16)
    cmd = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--ServerApp.open_browser=False",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root_dir}",
        f"--LabApp.user_settings_dir={settings}",
        f"--LabApp.workspaces_dir={state_dir / 'workspaces'}",
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.handlers.announcements.NeverCheckForUpdate",
        "--LabApp.extension_manager=readonly",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    log_path = state_dir / "jupyter-lab.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            cmd,
            cwd=root_dir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = LabServer(f"http://127.0.0.1:{port}/", token, root_dir, log_path, process)
    deadline = time.monotonic() + timeout_s
    while True:
        if process.poll() is not None:
            raise RuntimeError(
                f"jupyter lab exited with code {process.returncode} before answering; "
                f"log {log_path}:\n{server.log_tail()}"
            )
        try:
            server.api("GET", "api/status", timeout_s=2.0)
            return server
        except (urllib.error.URLError, ConnectionError, OSError):
            pass
        if time.monotonic() > deadline:
            server.stop()
            raise RuntimeError(
                f"jupyter lab did not answer on port {port} within {timeout_s:.0f} s; "
                f"log {log_path}:\n{server.log_tail()}"
            )
        time.sleep(0.5)


# --- the browser side -------------------------------------------------------------------

_PANEL = ".jp-NotebookPanel:not(.lm-mod-hidden)"

#: Reads every cell of the visible notebook into plain data (see _checks.CellSnapshot) and
#: marks each top-level widget output with ``data-browser-test-widget="<cell>-<k>"``.
_SNAPSHOT_JS = """
(panelSel) => {
  const panel = document.querySelector(panelSel);
  if (!panel) return null;
  const cells = Array.from(panel.querySelectorAll('.jp-Notebook .jp-Cell'));
  return cells.map((cell, i) => {
    const type = cell.classList.contains('jp-CodeCell') ? 'code'
      : cell.classList.contains('jp-MarkdownCell') ? 'markdown' : 'raw';
    const promptEl = cell.querySelector('.jp-InputArea-prompt, .jp-InputPrompt');
    const outs = Array.from(cell.querySelectorAll('.jp-OutputArea-output')).map(o => ({
      mime: o.getAttribute('data-mime-type') || '',
      text: (o.innerText || o.textContent || '').slice(0, 20000),
      error_widget: !!o.querySelector('.jupyter-widgets-error-widget')
        || o.classList.contains('jupyter-widgets-error-widget'),
    }));
    const pics = cell.querySelectorAll(
      '.jp-OutputArea-output img, .jp-OutputArea-output canvas, .jp-RenderedSVG svg');
    let k = 0;
    for (const o of cell.querySelectorAll('.jp-OutputArea-output')) {
      const nested = o.parentElement && o.parentElement.closest('.jupyter-widgets');
      if (!nested && o.querySelector('.jupyter-widgets')) {
        o.setAttribute('data-browser-test-widget', i + '-' + k);
        k += 1;
      }
    }
    return {cell_type: type, prompt: promptEl ? promptEl.textContent.trim() : '',
            outputs: outs, n_images: pics.length};
  });
}
"""

_PROMPTS_JS = """
(panelSel) => Array.from(document.querySelectorAll(panelSel + ' .jp-Notebook .jp-CodeCell'))
  .map(c => { const p = c.querySelector('.jp-InputArea-prompt, .jp-InputPrompt');
              return p ? p.textContent.trim() : ''; })
"""

_SLIDER = "input[type=range], [role=slider]"


@dataclass
class NotebookRun:
    """What the browser saw of one notebook run (input to :func:`_checks.find_problems`)."""

    cells: list[CellSnapshot]
    sliders: list[SliderResult] = field(default_factory=list)
    screenshots: list[Path] = field(default_factory=list)
    console: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0
    timed_out: bool = False


def launch_chromium(playwright: Any, executable: str, user_data_dir: Path) -> Any:
    """Launch Chromium at ``executable`` with a fresh profile; returns a browser context."""
    return playwright.chromium.launch_persistent_context(
        str(user_data_dir),
        executable_path=executable,
        headless=True,
        args=list(CHROMIUM_ARGS),
        viewport={"width": 1400, "height": 900},
    )


def _wait_until(predicate: Any, timeout_s: float, interval_s: float = 0.5) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval_s)
    return bool(predicate())


def _all_idle(server: LabServer) -> bool:
    states = server.kernel_states()
    return bool(states) and all(s == "idle" for s in states)


def _snapshot(page: Any) -> list[CellSnapshot]:
    raw = page.evaluate(_SNAPSHOT_JS, _PANEL) or []
    return [
        CellSnapshot(
            cell_type=c["cell_type"],
            prompt=c["prompt"],
            outputs=tuple(OutputSnapshot(**o) for o in c["outputs"]),
            n_images=int(c["n_images"]),
        )
        for c in raw
    ]


def _image_key(widget: Any) -> tuple[str, ...]:
    return tuple(widget.locator("img").evaluate_all("els => els.map(e => e.src)"))


def _move_slider(
    server: LabServer, widget: Any, tag: str, shots: Path, run: NotebookRun, wait_s: float
) -> SliderResult:
    cell, k = (int(x) for x in tag.split("-"))
    slider = widget.locator(_SLIDER).first
    before_png = widget.screenshot(path=str(shots / f"widget-cell{cell:02d}-{k}-before.png"))
    before_src = _image_key(widget)
    run.screenshots.append(shots / f"widget-cell{cell:02d}-{k}-before.png")
    value = slider.get_attribute("aria-valuenow") or slider.input_value()
    maximum = slider.get_attribute("aria-valuemax") or slider.get_attribute("max")
    key = "ArrowLeft" if maximum is not None and float(value) >= float(maximum) else "ArrowRight"
    slider.focus()
    for _ in range(3):
        slider.press(key)
        time.sleep(0.1)
    moved = slider.get_attribute("aria-valuenow") or slider.input_value()

    def _changed() -> bool:
        if not _all_idle(server):
            return False
        src = _image_key(widget)
        return bool(src) and src != before_src

    changed = _wait_until(_changed, wait_s)
    if changed:  # let the queued redraws finish: same image for 2 s, kernel idle
        last: list[tuple[str, ...]] = [_image_key(widget)]

        def _settled() -> bool:
            src = _image_key(widget)
            same = src == last[0] and _all_idle(server)
            last[0] = src
            return same

        _wait_until(_settled, 20.0, 2.0)
    after_path = shots / f"widget-cell{cell:02d}-{k}-after.png"
    after_png = widget.screenshot(path=str(after_path))
    run.screenshots.append(after_path)
    if not changed and not before_src:  # no <img> (e.g. a canvas): compare pixels
        changed = after_png != before_png
    detail = (
        f"slider {value} -> {moved} ({key} x3); "
        f"{'img sources' if before_src else 'screenshots'} unchanged after {wait_s:.0f} s"
    )
    return SliderResult(cell, k, changed, detail)


def run_notebook(
    page: Any,
    server: LabServer,
    relpath: str,
    shots: Path,
    *,
    timeout_s: float = DEFAULT_NOTEBOOK_TIMEOUT_S,
    slider_wait_s: float = 30.0,
) -> NotebookRun:
    """Open ``relpath`` in JupyterLab, Run All Cells from the menu, and read the result.

    Parameters
    ----------
    page : playwright.sync_api.Page
        A fresh page.
    server : LabServer
        The server serving the notebook.
    relpath : str
        Notebook path relative to the server's root.
    shots : Path
        Folder for this notebook's screenshots (created).
    timeout_s : float
        Limit for the kernel to go idle after Run All Cells (s).
    slider_wait_s : float
        How long a viewer may take to redraw after its slider moved (s).

    Returns
    -------
    NotebookRun
        DOM snapshot, slider results, screenshots and browser console messages.
    """
    shots.mkdir(parents=True, exist_ok=True)
    console: list[str] = []
    page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
    page.on("pageerror", lambda e: console.append(f"pageerror: {e}"))
    t0 = time.monotonic()
    page.goto(server.notebook_url(relpath, f"t{secrets.token_hex(4)}"))
    page.wait_for_selector(f"{_PANEL} .jp-Notebook .jp-Cell", timeout=60_000)
    if not _wait_until(lambda: _all_idle(server), 60.0):
        raise RuntimeError(f"{relpath}: kernel not idle 60 s after opening: {server.log_tail()}")
    page.keyboard.press("Control+b")  # hide the file browser: more room for the notebook

    # Run > Run All Cells, as a user would.
    page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
    page.locator(".lm-Menu-itemLabel").get_by_text("Run All Cells", exact=True).click()

    def _started() -> bool:
        return any(p for p in page.evaluate(_PROMPTS_JS, _PANEL))

    def _finished() -> bool:
        prompts = page.evaluate(_PROMPTS_JS, _PANEL)
        return not any("*" in p for p in prompts) and _all_idle(server)

    def _finished_for_a_second() -> bool:  # idle between two queued cells is not the end
        if not _finished():
            return False
        time.sleep(1.0)
        return _finished()

    timed_out = not (
        _wait_until(_started, 30.0) and _wait_until(_finished_for_a_second, timeout_s, 1.0)
    )
    # widgets render after the kernel is idle; give "Loading widget..." a moment to go
    _wait_until(
        lambda: "Loading widget" not in (page.locator(_PANEL).inner_text() or ""), 15.0, 0.5
    )
    run = NotebookRun(cells=_snapshot(page), console=console, timed_out=timed_out)

    # the whole notebook in one picture: a viewport as tall as the notebook
    height = page.evaluate(
        "(s) => { const n = document.querySelector(s + ' .jp-WindowedPanel-outer')"
        " || document.querySelector(s + ' .jp-Notebook'); return n ? n.scrollHeight : 900; }",
        _PANEL,
    )
    page.set_viewport_size({"width": 1400, "height": int(min(max(height + 250, 900), 16000))})
    page.evaluate(
        "(s) => document.querySelectorAll(s + ' .jp-WindowedPanel-outer')"
        ".forEach(n => { n.scrollTop = 0; })",
        _PANEL,
    )
    time.sleep(0.5)
    page.screenshot(path=str(shots / "notebook.png"), full_page=True)
    run.screenshots.append(shots / "notebook.png")

    if not timed_out:
        for widget in page.locator("[data-browser-test-widget]").all():
            tag = widget.get_attribute("data-browser-test-widget") or "0-0"
            if widget.locator(_SLIDER).count() and widget.locator("img, canvas").count():
                run.sliders.append(_move_slider(server, widget, tag, shots, run, slider_wait_s))
            else:
                path = shots / f"widget-cell{int(tag.split('-')[0]):02d}-{tag.split('-')[1]}.png"
                widget.screenshot(path=str(path))
                run.screenshots.append(path)
    run.elapsed_s = time.monotonic() - t0
    (shots / "console.log").write_text("\n".join(console) + "\n")
    return run
