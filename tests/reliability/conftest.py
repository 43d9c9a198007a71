"""Shared pieces of the bad-input suite: small phantom studies, mutation and hashing.

The studies are written once per test session by the phantom writers (small grids so that
each load takes a fraction of a second) and copied for every test that mutates them; no
patient-like file is stored in the repository.

Hypothesis settings: ``HYPOTHESIS_PROFILE=ci`` (default: few examples, derandomized, so CI
is reproducible and fast) or ``HYPOTHESIS_PROFILE=long`` (many random examples, the
example database kept) -- see ``docs/reliability.md``. ``HYPOTHESIS_MAX_EXAMPLES=<n>``
overrides the number of examples of either profile.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pydicom
import pytest
from hypothesis import HealthCheck, settings
from pydicom.dataset import Dataset

import phantoms
from dosimetry.errors import DosimetryError

#: Profiles of the property-based tests; chosen with the HYPOTHESIS_PROFILE variable.
FUZZ_PROFILES: dict[str, dict[str, Any]] = {
    "ci": {
        "max_examples": 25,
        "deadline": 5000,  # ms per example; a generous bound for a shared 2-core runner
        "derandomize": True,
        "database": None,
    },
    "long": {"max_examples": 2000, "deadline": None, "derandomize": False},
}


def fuzz_settings(**overrides: Any) -> settings:
    """``hypothesis.settings`` of the active profile (``HYPOTHESIS_PROFILE``, default ``ci``)."""
    name = os.environ.get("HYPOTHESIS_PROFILE", "ci")
    if name not in FUZZ_PROFILES:
        raise ValueError(f"HYPOTHESIS_PROFILE={name!r}; valid: {', '.join(FUZZ_PROFILES)}")
    kw = dict(FUZZ_PROFILES[name])
    kw.update(overrides)
    if os.environ.get("HYPOTHESIS_MAX_EXAMPLES"):
        kw["max_examples"] = int(os.environ["HYPOTHESIS_MAX_EXAMPLES"])
    return settings(suppress_health_check=[HealthCheck.too_slow], **kw)


# ----------------------------------------------------------------------------- studies
@pytest.fixture(scope="session")
def tiny_torso() -> Any:
    return phantoms.make_torso(voxel_mm=8.0)


@pytest.fixture(scope="session")
def pet_ct_master(tmp_path_factory: pytest.TempPathFactory, tiny_torso: Any) -> Any:
    """A small PET/CT/RTSTRUCT study (PET 16 mm voxels, 24 x 24), written once."""
    folder = tmp_path_factory.mktemp("pet_ct_master") / "study"
    return phantoms.write_pet_ct_study(
        folder,
        tiny_torso,
        seed=3,
        pet_matrix=(24, 24),
        pet_voxel_mm=(16.0, 16.0, 16.0),
        noise=False,
    )


@pytest.fixture(scope="session")
def spect_master(tmp_path_factory: pytest.TempPathFactory, tiny_torso: Any) -> Any:
    """A small Lu-177 SPECT/CT study (one time point, one multi-frame NM file)."""
    folder = tmp_path_factory.mktemp("spect_master") / "study"
    return phantoms.write_lu177_spect_study(
        folder,
        times_h=(24.0,),
        phantom=tiny_torso,
        seed=5,
        spect_voxel_mm=8.0,
        spect_matrix=(40, 40),
        n_spect_slices=40,
        noise=False,
        ct_slice_mm=8.0,
    )


def copy_study(truth: Any, dest: Path) -> tuple[Path, dict[str, Path]]:
    """Copy a master study to ``dest``; map each original file name to its copy."""
    shutil.copytree(truth.folder, dest)
    return dest, {p.name: dest / p.relative_to(truth.folder) for p in truth.folder.rglob("*")}


def relocated(paths: list[Path], truth: Any, dest: Path) -> list[Path]:
    """``paths`` of the master study as paths inside the copy at ``dest``."""
    return [dest / Path(p).relative_to(truth.folder) for p in paths]


# ----------------------------------------------------------------------------- mutation
def rewrite(path: Path, change: Callable[[Dataset], None]) -> None:
    """Read ``path`` with pydicom, apply ``change`` and write it back (same encoding)."""
    ds = pydicom.dcmread(path)
    change(ds)
    ds.save_as(path)


def tree_hashes(folder: Path) -> dict[str, str]:
    """SHA-256 of every regular file under ``folder`` (relative path -> hex digest)."""
    out = {}
    for p in sorted(folder.rglob("*")):
        if p.is_file() and not p.is_symlink():
            out[str(p.relative_to(folder))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def refused(call: Callable[[], Any], *needles: str) -> DosimetryError:
    """Run ``call``; it must raise a DosimetryError whose message holds every needle."""
    with pytest.raises(DosimetryError) as e:
        call()
    msg = str(e.value)
    for needle in needles:
        assert needle in msg, f"{needle!r} not in the message: {msg}"
    return e.value
