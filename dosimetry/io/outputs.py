"""Complete-or-nothing output sets: every file of a result, then ``manifest.json``, moved
into place as a unit.

An :class:`OutputSet` is checked before anything is computed (:meth:`OutputSet.check`):
the folder must not be a file, lie under a file, be a symbolic link, lie inside an input
folder or contain one, or sit in a folder we cannot write; an existing non-empty folder is refused unless
``overwrite``, and even then only when everything in it is listed in its own
``manifest.json`` (a previous run's complete set) -- a user's unrelated file is never
deleted. A refused path leaves nothing behind (no empty folder is created).

The files are written into a staging folder beside the target
(``.<name>.partial-<id>``, marked as ours), ``manifest.json`` (files, sizes, SHA-256
hashes, software version, status) is written last, and the staging folder replaces the
target with two renames. After any interruption the target holds the previous complete
set or nothing: Ctrl-C removes the staging folder, and stale staging folders left by a
killed process are removed by the next run. Files and folders get the permissions the
user's umask allows (not the 0600 of temporary files).

:func:`write_result` writes the files of a :class:`~dosimetry.results.WorkflowResult`
into a folder (the staging folder); rendered documents (reports) are passed in as text,
so this module does not depend on the report renderers.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..errors import OutputError
from ..results import WorkflowResult
from ._manifest import MANIFEST, _sha256, check_output_file, read_manifest

__all__ = [
    "OutputSet",
    "write_result",
    "write_documents",
    "read_manifest",
    "is_complete",
    "check_output_file",
    "MANIFEST",
]

log = logging.getLogger(__name__)

_MARKER = ".dosimetry-staging"
_STAGING_INFIX = ".partial-"
_OLD_INFIX = ".replaced-"


def _umask() -> int:
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)  # no portable read-only query; restore at once
    os.umask(mask)
    return mask


def _apply_umask(root: Path) -> None:
    """Give files 0666 and folders 0777 minus the umask (temporary files are 0600)."""
    mask = _umask()
    for dirpath, dirnames, filenames in os.walk(root):
        os.chmod(dirpath, 0o777 & ~mask)
        for d in dirnames:
            os.chmod(os.path.join(dirpath, d), 0o777 & ~mask)
        for f in filenames:
            os.chmod(os.path.join(dirpath, f), 0o666 & ~mask)


def is_complete(folder: str | Path, *, verify_hashes: bool = False) -> bool:
    """True when ``folder`` holds a complete output set: its manifest says so and every
    file it lists exists with the recorded size (and hash, with ``verify_hashes``)."""
    m = read_manifest(folder)
    if not m or m.get("status") != "complete":
        return False
    root = Path(folder)
    for rec in m.get("files", []):
        p = root / rec["path"]
        if not p.is_file() or p.stat().st_size != rec["size"]:
            return False
        if verify_hashes and _sha256(p) != rec["sha256"]:
            return False
    return True


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.relative_to(folder)
        return True
    except ValueError:
        return False


class OutputSet:
    """One output folder written as a unit (see the module docstring).

    Parameters
    ----------
    out
        The output folder.
    overwrite
        Replace a previous complete set written by this program (never other files).
    input_dirs
        Folders holding the inputs: the output may not lie inside them.
    option
        The option or keyword that named the folder (for messages).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> with OutputSet(root / "out") as staging:
    ...     _ = (staging / "a.txt").write_text("x")
    >>> sorted(p.name for p in (root / "out").iterdir())
    ['a.txt', 'manifest.json']
    >>> is_complete(root / "out")
    True
    """

    def __init__(
        self,
        out: str | Path,
        *,
        overwrite: bool = False,
        input_dirs: Iterable[str | Path] = (),
        option: str = "--out",
        metadata: Mapping[str, Any] | None = None,
    ):
        self.out = Path(os.path.abspath(os.fspath(out)))
        self.overwrite = overwrite
        self.input_dirs = tuple(Path(os.path.realpath(os.fspath(d))) for d in input_dirs)
        self.option = option
        self.metadata: dict[str, Any] = dict(metadata or {})
        self.staging: Path | None = None
        self._created_parents: list[Path] = []
        self.check()

    # -- before computing --------------------------------------------------------------
    def check(self) -> None:
        """Refuse an unusable output folder before anything is computed or created."""
        out, opt = self.out, self.option
        if out.is_symlink():
            raise OutputError(
                f"{opt} {out} is a symbolic link; give the real folder (links are refused so "
                "that a replaced output set cannot land somewhere unexpected)"
            )
        for parent in [out, *out.parents]:
            if parent.exists() and not parent.is_dir():
                raise OutputError(f"{opt} {out}: {parent} is a file, not a folder")
            if parent.exists():
                break
        real = Path(os.path.realpath(out))
        for d in self.input_dirs:
            if _inside(real, d):
                raise OutputError(
                    f"{opt} {out} lies inside the input folder {d}; the study folder is never "
                    "written to: choose an output folder outside it"
                )
            if _inside(d, real):
                raise OutputError(
                    f"{opt} {out} contains the input folder {d}; writing the output set there "
                    "would replace the study: choose an output folder outside it"
                )
        parent = (
            next(p for p in out.parents if p.exists()) if not out.parent.exists() else out.parent
        )
        if not os.access(parent, os.W_OK | os.X_OK):
            raise OutputError(f"{opt} {out}: the folder {parent} is not writable")
        if out.exists():
            entries = [p.name for p in out.iterdir()]
            if entries:
                if not self.overwrite:
                    raise OutputError(
                        f"{opt} {out} exists and is not empty ({len(entries)} entries); choose "
                        "a new folder, or pass --overwrite (overwrite=True) to replace a "
                        "previous result written by this program"
                    )
                foreign = self._foreign_files()
                if foreign:
                    raise OutputError(
                        f"{opt} {out} holds files this program did not write or that were "
                        f"changed since ({', '.join(foreign[:5])}"
                        f"{' ...' if len(foreign) > 5 else ''}); --overwrite only replaces a "
                        "previous output set as it was written: move them or choose another "
                        "folder"
                    )
            if not os.access(out, os.W_OK | os.X_OK):
                raise OutputError(f"{opt} {out} is not writable")
        self._clean_stale()

    def _foreign_files(self) -> list[str]:
        """Paths under the output folder (sub-folders included) that the previous set's
        manifest does not list with the same size and SHA-256: a user's file, or one of
        ours edited since. Links and special files are always foreign. Empty folders are
        not files and are ignored."""
        m = read_manifest(self.out)
        listed = {
            str(rec["path"]): rec for rec in (m or {}).get("files", []) if isinstance(rec, dict)
        }
        foreign: list[str] = []
        for root, dirs, names in os.walk(self.out, followlinks=False):
            base = Path(root)
            for d in list(dirs):
                if (base / d).is_symlink():
                    foreign.append((base / d).relative_to(self.out).as_posix())
                    dirs.remove(d)
            for n in names:
                p = base / n
                rel = p.relative_to(self.out).as_posix()
                if rel == MANIFEST and base == self.out:
                    continue
                rec = listed.get(rel)
                if rec is None or p.is_symlink() or not p.is_file():
                    foreign.append(rel)
                elif p.stat().st_size != rec.get("size") or _sha256(p) != rec.get("sha256"):
                    foreign.append(rel)
        return sorted(foreign)

    def _clean_stale(self) -> None:
        """Remove staging folders of earlier runs that were killed (marked as ours)."""
        parent = self.out.parent
        if not parent.is_dir():
            return
        prefixes = (f".{self.out.name}{_STAGING_INFIX}", f".{self.out.name}{_OLD_INFIX}")
        for p in parent.iterdir():
            if p.name.startswith(prefixes) and (p / _MARKER).is_file():
                owner = (p / _MARKER).read_text(encoding="utf-8", errors="replace").strip()
                if owner.isdigit() and _alive(int(owner)) and int(owner) != os.getpid():
                    continue  # a concurrent run's staging folder
                log.info("removing a stale partial output %s", p)
                shutil.rmtree(p, ignore_errors=True)

    # -- writing ---------------------------------------------------------------------------
    def begin(self) -> Path:
        """Create and return the staging folder."""
        missing = [p for p in self.out.parents if not p.exists()]
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self._created_parents = missing  # removed again by abort() when left empty
        staging = self.out.parent / f".{self.out.name}{_STAGING_INFIX}{uuid.uuid4().hex[:12]}"
        staging.mkdir()
        (staging / _MARKER).write_text(str(os.getpid()), encoding="utf-8")
        self.staging = staging
        return staging

    def commit(self, status: str = "complete") -> Path:
        """Write ``manifest.json`` last and move the set into place; returns the folder."""
        if self.staging is None:
            raise OutputError("OutputSet.commit() before begin()")
        staging = self.staging
        files = []
        folders = set()
        for p in sorted(staging.rglob("*")):
            if p.is_file() and p != staging / _MARKER:
                rel = p.relative_to(staging)
                if len(rel.parts) > 1:
                    folders.add(rel.parts[0])
                files.append(
                    {"path": rel.as_posix(), "size": p.stat().st_size, "sha256": _sha256(p)}
                )
        from .. import __version__

        manifest = {
            "format": "dosimetry-output/1",
            "status": status,
            "software": f"dosimetry {__version__}",
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "files": files,
            "folders": sorted(folders),
            **self.metadata,
        }
        (staging / MANIFEST).write_text(
            json.dumps(manifest, indent=2, default=str), encoding="utf-8"
        )
        _apply_umask(staging)
        # The staging folder keeps its marker until the swap, so that a process killed while
        # hashing or writing the manifest leaves a folder the next run recognises as stale.
        old = None
        try:
            if self.out.exists():
                old = self.out.parent / f".{self.out.name}{_OLD_INFIX}{uuid.uuid4().hex[:12]}"
                os.replace(self.out, old)
                (old / _MARKER).write_text(str(os.getpid()), encoding="utf-8")
            (staging / _MARKER).unlink()
            os.replace(staging, self.out)
        except BaseException:
            # interrupted between the two renames: put the previous set back
            if old is not None and old.is_dir() and not self.out.exists():
                os.replace(old, self.out)
                (self.out / _MARKER).unlink(missing_ok=True)
            raise
        self.staging = None
        self._created_parents = []
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        return self.out

    def abort(self) -> None:
        """Remove the staging folder, and the parent folders :meth:`begin` created when they
        are empty (nothing of the new set remains)."""
        if self.staging is not None:
            shutil.rmtree(self.staging, ignore_errors=True)
            self.staging = None
        for p in self._created_parents:  # innermost first
            try:
                p.rmdir()
            except OSError:
                break  # not empty (or gone): leave it and its parents
        self._created_parents = []

    def __enter__(self) -> Path:
        return self.begin()

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def write_result(
    result: WorkflowResult,
    folder: str | Path,
    *,
    documents: Mapping[str, str | bytes] | None = None,
    input_dirs: Iterable[str | Path] = (),
) -> dict[str, Path]:
    """Write a result's files into ``folder`` (an :class:`OutputSet` staging folder).

    Files: ``dose.dcm`` (RTDOSE on the dose grid, referencing the study and frame of
    reference of ``result.reference``) and ``dose.nii.gz`` (+ JSON sidecar); for alpha
    emitters ``dose_rbe.dcm`` / ``dose_rbe.nii.gz``; the voxel BED map ``bed.dcm`` (unit
    Gy_BED, DoseType EFFECTIVE) / ``bed.nii.gz`` when the result has one (see
    :func:`dosimetry.workflows.prescription.bed_volume`); ``dose_uncertainty.nii.gz`` when the
    result has one; ``tia.nii.gz``; ``dose_table.csv``; and each of ``documents``
    (file name -> text or bytes, e.g. the rendered reports).

    Returns
    -------
    dict[str, Path]
        Label -> path of every file written.
    """
    from .nifti import write_nifti
    from .rtdose import write_rtdose

    root = Path(folder)
    root.mkdir(parents=True, exist_ok=True)
    kw: dict[str, Any] = {"input_dirs": tuple(input_dirs)}
    files: dict[str, Path] = {}
    if result.dose is not None:
        comment = result.agent
        if result.administered_activity_bq:
            from ..units import bq_to_activity

            comment = f"{result.agent} {bq_to_activity(result.administered_activity_bq, 'GBq'):.4g} GBq, {result.method}"
        if result.reference is not None:
            files["RTDOSE"] = write_rtdose(
                result.dose, root / "dose.dcm", reference=result.reference, comment=comment, **kw
            )
        files["NIfTI"] = write_nifti(result.dose, root / "dose.nii.gz", **kw)
    for vol, stem, what in (
        (result.dose_rbe, "dose_rbe", "RBE-weighted"),
        (result.bed, "bed", "BED"),
    ):
        if vol is None:
            continue
        if result.reference is not None:
            files[f"RTDOSE ({what})"] = write_rtdose(
                vol,
                root / f"{stem}.dcm",
                reference=result.reference,
                comment=f"{result.agent} {what}",
                **kw,
            )
        files[f"NIfTI ({what})"] = write_nifti(vol, root / f"{stem}.nii.gz", **kw)
    if result.dose_uncertainty is not None:
        files["dose uncertainty"] = write_nifti(
            result.dose_uncertainty, root / "dose_uncertainty.nii.gz", **kw
        )
    if result.tia is not None:
        files["TIA"] = write_nifti(result.tia, root / "tia.nii.gz", **kw)
    table = root / "dose_table.csv"
    table.write_text(result.table.to_csv(), encoding="utf-8")
    files["dose table"] = table
    files.update(write_documents(root, documents or {}))
    return files


def write_documents(folder: str | Path, documents: Mapping[str, str | bytes]) -> dict[str, Path]:
    """Write ``documents`` (relative path -> text or bytes) into ``folder``; paths may name
    sub-folders (``figures/dvh.png``) but not leave the folder."""
    root = Path(folder)
    files: dict[str, Path] = {}
    for name, content in documents.items():
        rel = Path(name)
        if rel.is_absolute() or ".." in rel.parts or rel.name in (MANIFEST, _MARKER):
            raise OutputError(f"document name {name!r} must be a relative path inside the output")
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            p.write_bytes(content)
        else:
            p.write_text(content, encoding="utf-8")
        files[name] = p
    return files


@contextlib.contextmanager
def _timed(label: str) -> Iterator[None]:
    t0 = time.perf_counter()
    yield
    log.info("%s in %.2f s", label, time.perf_counter() - t0)
