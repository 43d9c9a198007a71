"""Safe output: atomic writes, no silent overwrite, never inside an input folder.

Every writer in :mod:`dosimetry.io` goes through :func:`atomic_write`:

1. the target path is checked first (:func:`check_output_path`): it must not lie inside
   any of the folders given as ``input_dirs`` (the study's input folders are never
   written to), and an existing file is only replaced when ``overwrite=True``;
2. the content is written to a temporary file in the target folder (same file system),
   flushed to disk, and then moved onto the target name with :func:`os.replace`, which
   is atomic on POSIX and Windows. A reader therefore sees either the old file or the
   complete new file, never a partial one, and a failed write leaves nothing behind.

>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> p = atomic_write(d / "a.txt", lambda tmp: tmp.write_text("x"))
>>> p.read_text()
'x'
>>> atomic_write(d / "a.txt", lambda tmp: tmp.write_text("y"))
Traceback (most recent call last):
...
dosimetry.errors.OutputError: ...a.txt already exists; pass overwrite=True to replace it
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from ..errors import OutputError

__all__ = [
    "check_output_path",
    "atomic_write",
    "atomic_write_many",
    "write_text_atomic",
    "PathLike",
]

log = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]

# Multi-part suffixes that must survive in the temporary name so that writers which
# choose the format from the file name (SimpleITK) pick the right one.
_MULTI_SUFFIXES = (".nii.gz", ".tar.gz")


def _suffix(path: Path) -> str:
    name = path.name.lower()
    for s in _MULTI_SUFFIXES:
        if name.endswith(s):
            return path.name[-len(s) :]
    return path.suffix


def check_output_path(
    path: PathLike, *, overwrite: bool = False, input_dirs: Iterable[PathLike] = ()
) -> Path:
    """Validate an output path without writing anything.

    Parameters
    ----------
    path
        The file to be written.
    overwrite
        Allow replacing an existing file.
    input_dirs
        Folders that hold the study's input data; writing anywhere inside them is refused.

    Returns
    -------
    pathlib.Path
        The absolute target path.

    Raises
    ------
    OutputError
        The path is a folder, lies inside an input folder, or exists and ``overwrite`` is
        False.
    """
    target = Path(path).expanduser().absolute()
    resolved = target.resolve()
    for d in input_dirs:
        din = Path(d).expanduser().resolve()
        if resolved == din or resolved.is_relative_to(din):
            raise OutputError(
                f"refusing to write {target}: it is inside the input folder {din}. "
                "Choose an output path outside the study's input folders."
            )
    if target.is_dir():
        raise OutputError(f"output path {target} is a folder; give a file name")
    if target.exists() and not overwrite:
        raise OutputError(f"{target} already exists; pass overwrite=True to replace it")
    return target


def atomic_write(
    path: PathLike,
    writer: Callable[[Path], object],
    *,
    overwrite: bool = False,
    input_dirs: Iterable[PathLike] = (),
) -> Path:
    """Write a file atomically through ``writer(temporary_path)``.

    Parameters
    ----------
    path
        Target file. Its folder is created when missing (after the checks pass).
    writer
        Called once with a temporary path in the target folder (same suffix as ``path``);
        it must create that file.
    overwrite, input_dirs
        See :func:`check_output_path`.

    Returns
    -------
    pathlib.Path
        The absolute path written.
    """
    return atomic_write_many([(path, writer)], overwrite=overwrite, input_dirs=input_dirs)[0]


def atomic_write_many(
    items: Sequence[tuple[PathLike, Callable[[Path], object]]],
    *,
    overwrite: bool = False,
    input_dirs: Iterable[PathLike] = (),
) -> list[Path]:
    """Write several files (e.g. an image and its JSON sidecar) all-or-nothing as far as possible.

    All targets are checked before anything is written, all temporary files are written
    next, and only when every writer succeeded are they moved into place.
    """
    dirs = list(input_dirs)
    targets = [check_output_path(p, overwrite=overwrite, input_dirs=dirs) for p, _ in items]
    if len({str(t) for t in targets}) != len(targets):
        raise OutputError(f"the same output path is given twice: {[str(t) for t in targets]}")
    temps: list[Path] = []
    try:
        for target, (_, writer) in zip(targets, items, strict=True):
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp_name = tempfile.mkstemp(
                prefix=f".{target.name}.", suffix=f".tmp{_suffix(target)}", dir=target.parent
            )
            os.close(fd)
            tmp = Path(tmp_name)
            temps.append(tmp)
            writer(tmp)
            if not tmp.is_file() or tmp.stat().st_size == 0:
                raise OutputError(f"writing {target} produced no data")
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
        # re-check just before the move: a file may have appeared meanwhile
        for target in targets:
            if target.exists() and not overwrite:
                raise OutputError(f"{target} already exists; pass overwrite=True to replace it")
        for tmp, target in zip(temps, targets, strict=True):
            os.replace(tmp, target)
            log.info("wrote %s", target)
    finally:
        for tmp in temps:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
    return targets


def write_text_atomic(
    path: PathLike,
    text: str,
    *,
    overwrite: bool = False,
    input_dirs: Iterable[PathLike] = (),
    encoding: str = "utf-8",
) -> Path:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_write` for the policy)."""
    return atomic_write(
        path,
        lambda tmp: tmp.write_text(text, encoding=encoding),
        overwrite=overwrite,
        input_dirs=input_dirs,
    )
