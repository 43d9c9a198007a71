"""Phantom PET/CT studies shared by the cohort tests (small grids: a few seconds each)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import phantoms


def write_small_pet_study(folder: Path, seed: int) -> Path:
    """The torso phantom without head and neck on a 4 mm truth grid, PET 64 x 64 at 6 mm."""
    torso = phantoms.make_torso(voxel_mm=4.0, head_and_neck=False)
    phantoms.write_pet_ct_study(
        folder, torso, seed=seed, pet_matrix=(64, 64), pet_voxel_mm=(4.0, 6.0, 6.0)
    )
    return folder


@pytest.fixture(scope="session")
def pet_studies(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two phantom PET/CT studies (seeds 0 and 1) and a corrupt copy of the first (one PET
    file truncated), in one folder."""
    root = tmp_path_factory.mktemp("cohort-studies")
    s0 = write_small_pet_study(root / "s0", seed=0)
    s1 = write_small_pet_study(root / "s1", seed=1)
    corrupt = root / "corrupt"
    shutil.copytree(s0, corrupt)
    import pydicom

    for p in sorted(corrupt.iterdir()):
        ds = pydicom.dcmread(p, stop_before_pixels=True)
        if ds.Modality == "PT":
            p.write_bytes(p.read_bytes()[:600])  # a transfer cut short
            break
    return {"s0": s0, "s1": s1, "corrupt": corrupt, "root": root}
