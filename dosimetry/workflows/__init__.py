"""Clinical workflows: one module per job, each a plain function returning a
:class:`~dosimetry.results.WorkflowResult`.

* :mod:`~dosimetry.workflows.pet_plan` -- diagnostic PET -> planned ¹⁷⁷Lu / ²²⁵Ac therapy;
* :mod:`~dosimetry.workflows.spect` -- post-therapy ¹⁷⁷Lu SPECT/CT time series -> dose.

A new clinical job goes in a new module here: a function that reads its inputs, records
its steps in a :class:`~dosimetry.workflows._run.Run` (findings, assumptions, timing) and
returns a WorkflowResult; the CLI, the reports, the output writer and the cohort runner
then handle it without change. Names are imported lazily.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY: dict[str, str] = {
    "plan_from_pet": "dosimetry.workflows.pet_plan:run",
    "plan_from_folder": "dosimetry.workflows.pet_plan:run_folder",
    "spect_dosimetry": "dosimetry.workflows.spect:run",
    "spect_from_folder": "dosimetry.workflows.spect:run_folder",
    "save": "dosimetry.workflows.save:save",
}

__all__ = [*_LAZY, "pet_plan", "spect"]


def __getattr__(name: str) -> Any:
    if name in ("pet_plan", "spect", "options", "cohort"):
        module = importlib.import_module(f"dosimetry.workflows.{name}")
        globals()[name] = module
        return module
    if name in _LAZY:
        mod, attr = _LAZY[name].split(":")
        value = getattr(importlib.import_module(mod), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'dosimetry.workflows' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY) | {"pet_plan", "spect"})
