"""Studies written once per test session and shared by the phantom tests."""

from __future__ import annotations

import time

import pytest

import phantoms


@pytest.fixture(scope="session")
def small_torso() -> phantoms.TorsoPhantom:
    """A 4 mm torso: fast studies for header-semantics tests."""
    return phantoms.make_torso(voxel_mm=4.0)


@pytest.fixture(scope="session")
def pet_study(tmp_path_factory: pytest.TempPathFactory) -> tuple[phantoms.StudyTruth, float]:
    """The default Ga-68-PSMA-11 PET/CT study (seed 0) and its wall time (s)."""
    folder = tmp_path_factory.mktemp("pet") / "study"
    t0 = time.perf_counter()
    truth = phantoms.write_pet_ct_study(folder, seed=0)
    return truth, time.perf_counter() - t0


@pytest.fixture(scope="session")
def spect_study(tmp_path_factory: pytest.TempPathFactory) -> tuple[phantoms.SpectTruth, float]:
    """The default 4-time-point Lu-177 SPECT/CT study (seed 0) and its wall time (s)."""
    folder = tmp_path_factory.mktemp("spect") / "study"
    t0 = time.perf_counter()
    truth = phantoms.write_lu177_spect_study(folder, seed=0)
    return truth, time.perf_counter() - t0
