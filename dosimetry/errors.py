"""Exceptions raised by the workbench.

Every exception subclasses :class:`ValueError` (bad input is a value problem) and
carries a message that names the argument, the rule, the value received and the fix.
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "DosimetryError",
    "UnitError",
    "GeometryMismatchError",
    "DicomInputError",
    "NuclideError",
    "KernelError",
    "InputDataError",
    "OutputError",
    "IncompleteSeriesError",
]


class DosimetryError(ValueError):
    """Base class of all errors raised by :mod:`dosimetry`."""


class UnitError(DosimetryError):
    """A unit string is unknown or a quantity has the wrong unit."""


class GeometryMismatchError(DosimetryError):
    """Two volumes (or a volume and a kernel) are not on compatible grids."""


class NuclideError(DosimetryError):
    """A nuclide name is unknown or its data are incomplete."""


class KernelError(DosimetryError):
    """A dose kernel cannot be built or does not fit the request."""


class InputDataError(DosimetryError):
    """Numerical input is invalid: NaN, negative activity, empty arrays, ..."""


class OutputError(DosimetryError):
    """An output cannot be written (exists, inside the input folder, ...)."""


class DicomInputError(DosimetryError):
    """A DICOM file is unreadable, incomplete or inconsistent.

    Parameters
    ----------
    message
        What is wrong and how to fix it (name the override argument).
    path
        The offending file, when there is one.
    tag
        The DICOM keyword (e.g. ``"RadiopharmaceuticalInformationSequence"``).
    """

    def __init__(self, message: str, path: str | Path | None = None, tag: str | None = None):
        self.path = None if path is None else Path(path)
        self.tag = tag
        prefix = []
        if path is not None:
            prefix.append(f"file {self.path}")
        if tag is not None:
            prefix.append(f"tag {tag}")
        full = f"{'; '.join(prefix)}: {message}" if prefix else message
        super().__init__(full)


class IncompleteSeriesError(DicomInputError):
    """An image series lacks slices or frames its own header (or a DICOMDIR) says it has.

    Raised with the file and tag that tell (``NumberOfSlices``, ``ImageIndex``,
    ``SliceVector``, ``DirectoryRecordSequence``) and the missing items named in the message.
    """
