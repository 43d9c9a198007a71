"""The manifest of an output set: reading it, and checking a file against it.

Kept apart from :mod:`dosimetry.io.outputs` (which writes sets with the image writers) so
that the readers (:mod:`dosimetry.io.rtdose`, :mod:`dosimetry.io.nifti`) can check a file
without importing the writers.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

__all__ = ["MANIFEST", "read_manifest", "check_output_file"]

MANIFEST = "manifest.json"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_manifest(folder: str | Path) -> dict[str, Any] | None:
    """The ``manifest.json`` of an output folder, or ``None`` when absent or unreadable."""
    p = Path(folder) / MANIFEST
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def check_output_file(path: str | Path) -> None:
    """Refuse to read a file of an output set that is not the file the set describes.

    When ``path`` lies in a folder written by this program (a ``manifest.json`` of format
    ``dosimetry-output/1`` in its folder or up to two folders above) and the manifest lists
    it, the set must be complete and the file must have the recorded size and SHA-256. A
    file the manifest does not list, or outside any output set, is not checked.

    Raises
    ------
    InputDataError
        The set is not complete, or the file was changed since it was written.
    """
    from ..errors import InputDataError

    p = Path(path).absolute()
    for root in list(p.parents)[:3]:
        m = read_manifest(root)
        if not m or m.get("format") != "dosimetry-output/1":
            continue
        rel = p.relative_to(root).as_posix()
        rec = next(
            (r for r in m.get("files", []) if isinstance(r, dict) and r.get("path") == rel),
            None,
        )
        if rec is None:
            return
        if m.get("status") != "complete":
            raise InputDataError(
                f"{p}: its output set ({root / MANIFEST}) has status {m.get('status')!r}, not "
                "complete: the run that wrote it did not finish; run it again"
            )
        if (
            not p.is_file()
            or p.stat().st_size != rec.get("size")
            or _sha256(p) != rec.get("sha256")
        ):
            raise InputDataError(
                f"{p} was changed after the program wrote it (size or SHA-256 differ from "
                f"{root / MANIFEST}): it is no longer the result that set describes; run "
                "again, or copy the file out of the output folder if the change is intended"
            )
        return
