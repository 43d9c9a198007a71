"""The optional-dependency helper and the lightness of ``import dosimetry.mc``."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import dosimetry as ds
from dosimetry._optional import OptionalDependencyError, import_optional_dependency
from dosimetry.errors import DosimetryError


def test_missing_module_names_feature_and_install_command():
    with pytest.raises(OptionalDependencyError) as info:
        import_optional_dependency("no_such_module_xyz", "method='mc'", "mc")
    msg = str(info.value)
    assert "method='mc'" in msg and "pip install 'dosimetry[mc]'" in msg
    assert "no_such_module_xyz" in msg
    # a project error (CLI: one line, exit 2) that `except ImportError` also catches
    assert isinstance(info.value, DosimetryError) and isinstance(info.value, ImportError)
    assert isinstance(info.value.__cause__, ImportError)


def test_present_module_is_returned():
    assert import_optional_dependency("numpy", "the engine", "core") is np


def test_import_does_not_load_ompmc_or_dask():
    code = (
        "import sys, dosimetry, dosimetry.mc, dosimetry.mc.validate, dosimetry.kernels.build; "
        "bad = [m for m in ('ompmc', 'dask', 'distributed', 'dosimetry.dose', 'dosimetry.io') "
        "if m in sys.modules]; print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_patient_dose_without_ompmc_says_how_to_install(monkeypatch):
    """Checked in this process before any worker starts (sys.modules entry None = absent)."""
    from dosimetry.mc import patient_dose

    monkeypatch.setitem(sys.modules, "ompmc", None)
    tia = ds.Volume.from_spacing(np.ones((3, 3, 3)), (4.0, 4.0, 4.0), unit="Bq s")
    with pytest.raises(OptionalDependencyError, match=r"pip install 'dosimetry\[mc\]'"):
        patient_dose(tia, "Lu-177", histories=100, batches=2)
