"""pyproject.toml is the one source of dependencies; environment.yml must mirror it."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _name(spec: str) -> str:
    return re.split(r"[<>=!~ \[]", spec.strip(), maxsplit=1)[0].lower().replace("_", "-")


def test_environment_yml_lists_the_same_packages_as_pyproject():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    required = {_name(d) for d in pyproject["project"]["dependencies"]}
    env_names: set[str] = set()
    for line in (ROOT / "environment.yml").read_text().splitlines():
        m = re.match(r"^\s*-\s+([A-Za-z0-9_.\-]+[^#]*)$", line)
        if not m or line.strip().endswith(":"):
            continue
        spec = m.group(1).strip()
        if spec.startswith("-e") or spec in ("pip", "conda-forge"):
            continue
        env_names.add(_name(spec))
    env_names -= {"python", "pip"}
    assert env_names == required, (
        f"only in environment.yml: {sorted(env_names - required)}; "
        f"only in pyproject.toml: {sorted(required - env_names)}"
    )


def test_required_packages_are_declared():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    required = {_name(d) for d in pyproject["project"]["dependencies"]}
    for pkg in (
        "jupyterlab",
        "numpy",
        "scipy",
        "pydicom",
        "simpleitk",
        "numba",
        "ipywidgets",
        "nbval",
    ):
        assert pkg in required, pkg


def test_console_script_and_license():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert pyproject["project"]["scripts"]["dosimetry"] == "dosimetry.cli:main"
    assert (ROOT / "LICENSE").is_file()
