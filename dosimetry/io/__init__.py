"""DICOM, NIfTI and mask input/output. The only place that knows file formats and axis orders.

Names are imported lazily from their submodules on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY: dict[str, str] = {
    # reading
    "load_study": "dosimetry.io.study",
    "Study": "dosimetry.io.study",
    "find_series": "dosimetry.io.discovery",
    "volume_to_sitk": "dosimetry.io.sitk",
    "sitk_to_volume": "dosimetry.io.sitk",
    "hu_to_density": "dosimetry.io.ct",
    # masks
    "rtstruct_to_masks": "dosimetry.io.masks",
    "seg_to_masks": "dosimetry.io.masks",
    "read_label_map": "dosimetry.io.masks",
    # writing
    "write_rtdose": "dosimetry.io.rtdose",
    "read_rtdose": "dosimetry.io.rtdose",
    "write_nifti": "dosimetry.io.nifti",
    "read_nifti": "dosimetry.io.nifti",
    "write_rtstruct": "dosimetry.io.rtstruct_write",
    "isodose_masks": "dosimetry.io.rtstruct_write",
    "write_seg": "dosimetry.io.seg_write",
}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'dosimetry.io' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
