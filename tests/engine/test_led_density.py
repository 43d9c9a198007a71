"""Array-level LED and density helpers (hand calculations)."""

from __future__ import annotations

import numpy as np
import pytest

from dosimetry import InputDataError, parameters
from dosimetry.engine import local_dose, voxel_mass_kg
from dosimetry.engine.density import density_scale, tissue_classes


def test_local_dose_hand_value_and_mass():
    # 2e6 decays x 0.5 MeV in 2 mL of water (2 g): 2e6 * 0.5 * 1.602e-13 J / 2e-3 kg
    d = local_dose(np.full((1, 1, 2), 2e6), 0.5 * 1.602176634e-13, 2.0, 1.0)
    assert d[0, 0, 0] == pytest.approx(2e6 * 0.5 * 1.602176634e-13 / 2e-3, rel=1e-14)
    assert float(voxel_mass_kg(1.04, 0.1)) == pytest.approx(1.04e-4, rel=1e-14)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"energy_per_decay_j": -1.0},
        {"energy_per_decay_j": np.nan},
        {"voxel_volume_ml": 0.0},
        {"density_g_per_ml": np.array([[[0.0]]])},
        {"density_g_per_ml": np.array([[[np.inf]]])},
    ],
)
def test_local_dose_refuses_bad_arguments(kwargs):
    args = {
        "energy_per_decay_j": 1e-13,
        "voxel_volume_ml": 1.0,
        "density_g_per_ml": 1.0,
    }
    args.update(kwargs)
    with pytest.raises(InputDataError):
        local_dose(np.ones((1, 1, 1)), **args)


def test_tissue_classes_boundaries_and_override():
    rho = np.array([0.1, 0.5999, 0.6, 1.04, 1.2999, 1.3, 1.92])
    assert tissue_classes(rho).tolist() == [0, 0, 1, 1, 1, 2, 2]
    with parameters.override(density_class_bone_min_g_per_ml=1.1):
        assert tissue_classes(rho).tolist() == [0, 0, 1, 1, 2, 2, 2]
    assert tissue_classes(rho, lung_max_g_per_ml=0.05).tolist() == [1, 1, 1, 1, 1, 2, 2]
    with pytest.raises(InputDataError, match="lung_max"):
        tissue_classes(rho, lung_max_g_per_ml=1.5, bone_min_g_per_ml=1.3)


def test_density_scale():
    np.testing.assert_allclose(
        density_scale(np.array([1.0, 2.0]), 1.04, np.array([0.26, 2.08])), [4.0, 1.0]
    )
    with pytest.raises(InputDataError):
        density_scale(np.array([1.0]), 1.0, np.array([0.0]))
