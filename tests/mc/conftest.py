"""Shared Monte Carlo runs of the tests under tests/mc (each run costs seconds: the
session-scoped fixtures run it once for every test that reads it)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from dosimetry.mc import MCResult, patient_dose
from dosimetry.mc.validate import SlabPhantom, slab_phantom

DATA = Path(__file__).parents[1] / "data"

#: histories of the CI-sized runs of the validation phantom (a few seconds each on 2 cores)
CI_HISTORIES = {"Lu-177": 300_000, "Y-90": 40_000, "Ac-225": 100_000}
CI_SEED = 7


@pytest.fixture(autouse=True)
def _tmp_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DOSIMETRY_CACHE_DIR", str(tmp_path))


@pytest.fixture(scope="session")
def slab() -> SlabPhantom:
    return slab_phantom()


def _slab_run(slab: SlabPhantom, nuclide: str) -> MCResult:
    return patient_dose(
        slab.tia,
        nuclide,
        density=slab.density,
        chain=nuclide == "Ac-225",
        histories=CI_HISTORIES[nuclide],
        batches=10,
        seed=CI_SEED,
        target_vois=slab.regions,
    )


@pytest.fixture(scope="session")
def slab_runs(slab) -> dict[str, MCResult]:
    """CI-sized runs (range rejection on, the default) of the validation phantom."""
    return {n: _slab_run(slab, n) for n in CI_HISTORIES}


@pytest.fixture(scope="session")
def icrp107() -> dict[str, dict[str, str]]:
    """ICRP-107 energies per decay summed independently of the code (tests/data)."""
    text = (DATA / "icrp107_energy_per_decay.csv").read_text()
    lines = [ln for ln in text.splitlines() if not ln.startswith("#")]
    return {r["nuclide"]: r for r in csv.DictReader(lines)}
