"""Theranostics dosimetry workbench.

PET/SPECT DICOM in, absorbed-dose maps (Gy, Gy_RBE) out::

    import dosimetry as ds
    study = ds.load_study("patient_folder/")
    ...

Public names are imported lazily so that ``import dosimetry`` stays fast and the CLI
starts quickly; see ``__all__`` for what is available.
"""

from __future__ import annotations

import importlib
from typing import Any

from . import errors, parameters, units
from .errors import (
    DicomInputError,
    DosimetryError,
    GeometryMismatchError,
    InputDataError,
    KernelError,
    NuclideError,
    OutputError,
    UnitError,
)
from .volume import Volume, resample

__version__ = "0.1.0"

# public name -> module that defines it (imported on first access)
_LAZY: dict[str, str] = {
    "nuclide": "dosimetry.nuclides",
    "Nuclide": "dosimetry.nuclides",
    "decay_chain": "dosimetry.nuclides",
    "theranostic_pair": "dosimetry.nuclides",
    "Kernel": "dosimetry.kernels",
    "vsv_kernel": "dosimetry.kernels",
    "dose_point_kernel": "dosimetry.kernels",
    "DosePointKernel": "dosimetry.kernels",
    "absorbed_dose": "dosimetry.dose",
    "dose_rate": "dosimetry.dose",
    "absorbed_dose_many": "dosimetry.dose",
    "dose_rate_many": "dosimetry.dose",
    "load_study": "dosimetry.io",
    "write_rtdose": "dosimetry.io",
    "write_nifti": "dosimetry.io",
    "read_nifti": "dosimetry.io",
    "dose_statistics": "dosimetry.metrics",
    "dvh": "dosimetry.metrics",
    "fit_tac": "dosimetry.kinetics",
    "stp_tia": "dosimetry.kinetics",
    "fit_voxels": "dosimetry.kinetics",
    "project_tia": "dosimetry.kinetics.projection",
    "ProjectionResult": "dosimetry.kinetics.projection",
    "PetFrame": "dosimetry.kinetics.projection",
    "register_ct": "dosimetry.registration",
    "apply_registration": "dosimetry.registration",
    "registration_qa": "dosimetry.registration",
    "population_effective_half_life_s": "dosimetry.kinetics",
    "TacFit": "dosimetry.kinetics",
    "VoxelFitResult": "dosimetry.kinetics",
    "DVH": "dosimetry.metrics",
    "bed": "dosimetry.metrics",
    "eqd2": "dosimetry.metrics",
    "geud": "dosimetry.metrics",
    "DecayChain": "dosimetry.nuclides",
    "TheranosticPair": "dosimetry.nuclides",
    "theranostic_pairs": "dosimetry.nuclides",
    "hu_to_density": "dosimetry.io",
    "find_series": "dosimetry.io",
    "read_rtdose": "dosimetry.io",
}

# submodules reachable as attributes (``ds.io``, ``ds.workflows``) without an explicit import
_SUBMODULES = {
    "io",
    "workflows",
    "cohort",
    "results",
    "checks",
    "voi",
    "kinetics",
    "registration",
    "metrics",
    "engine",
    "kernels",
    "nuclides",
    "dose",
    "viewer",
    "report",
    "mc",
    "parameters",
    "units",
    "uncertainty",
    "calibration",
    "pvc",
    "segmentation",
    "radiobiology",
    "limits",
    "dispense",
    "diagnostic",
    "marrow",
    "warmup",
}

__all__ = [
    "__version__",
    "Volume",
    "resample",
    "errors",
    "parameters",
    "units",
    "DosimetryError",
    "DicomInputError",
    "GeometryMismatchError",
    "InputDataError",
    "KernelError",
    "NuclideError",
    "OutputError",
    "UnitError",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        module = importlib.import_module(f"dosimetry.{name}")
        globals()[name] = module
        return module
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'dosimetry' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY) | _SUBMODULES)
