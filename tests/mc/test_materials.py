"""Density and label maps -> ompmc media and densities (exact tier)."""

from __future__ import annotations

import numpy as np
import pytest

import dosimetry as ds
from dosimetry.errors import GeometryMismatchError, InputDataError, UnitError
from dosimetry.mc import classify_density, mc_phantom, media


def _vol(a, unit):
    return ds.Volume.from_spacing(np.asarray(a).reshape(1, 1, -1), (2.0, 2.0, 2.0), unit=unit)


def test_media_table_names_pegs_media_of_the_bundled_data():
    import ompmc

    names = {m.name: m.pegs_medium for m in media()}
    assert names == {
        "air": "AIR521ICRU",
        "lung": "LUNG521ICRU",
        "soft tissue": "ICRUTISSUE521ICRU",
        "bone": "ICRPBONE521ICRU",
        "water": "H2O521ICRU",
    }
    pegs = (ompmc.data_path() / "pegs4" / "521icru.pegs4dat").read_text(errors="replace")
    for p in names.values():
        assert f"MEDIUM={p} " in pegs


def test_density_classes_use_the_shared_parameters():
    """Bounds are the rows shared with vsv-density: air < 0.05 <= lung < 0.6 <= soft
    tissue < 1.3 <= bone, each bound belonging to the denser class."""
    rho = np.array([0.0012, 0.0499, 0.05, 0.26, 0.599, 0.6, 1.04, 1.299, 1.3, 1.92])
    assert classify_density(rho).tolist() == [0, 0, 1, 1, 1, 2, 2, 2, 3, 3]
    with ds.parameters.override(density_class_bone_min_g_per_ml=1.1):
        assert classify_density(np.array([1.2]))[0] == 3


def test_phantom_from_density_keeps_the_voxel_density():
    rho = [0.0012, 0.3, 1.04, 1.5]
    ph = mc_phantom(_vol(np.zeros(4), "Bq s"), density=_vol(rho, "g/mL"))
    assert ph.source == "density"
    assert [m.name for m in ph.media] == ["air", "lung", "soft tissue", "bone"]
    assert ph.material_index.ravel().tolist() == [1, 2, 3, 4]
    assert ph.density_g_per_ml.ravel().tolist() == rho
    assert ph.labels().ravel().tolist() == [0, 1, 2, 3]


def test_phantom_from_labels_with_and_without_density():
    ref = _vol(np.zeros(3), "Bq s")
    ph = mc_phantom(ref, materials=_vol([3, 3, 1], "1"))
    assert [m.name for m in ph.media] == ["lung", "bone"]
    assert ph.material_index.ravel().tolist() == [2, 2, 1]
    assert ph.density_g_per_ml.ravel().tolist() == [1.85, 1.85, 0.26]  # nominal
    both = mc_phantom(ref, density=_vol([1.6, 1.7, 0.3], "g/mL"), materials=_vol([3, 3, 1], "1"))
    assert both.source == "labels+density"
    assert both.density_g_per_ml.ravel().tolist() == [1.6, 1.7, 0.3]
    own = mc_phantom(ref, materials=_vol([7, 9, 9], "1"), material_labels={7: "water", 9: "air"})
    assert [m.name for m in own.media] == ["air", "water"]
    assert own.material_index.ravel().tolist() == [2, 1, 1]


def test_default_is_soft_tissue():
    ph = mc_phantom(_vol(np.zeros(2), "Bq s"))
    assert ph.source == "default soft tissue" and ph.media[0].pegs_medium == "ICRUTISSUE521ICRU"
    assert np.all(ph.density_g_per_ml == ds.parameters.get("density_soft_tissue_g_per_ml"))


def test_refusals():
    ref = _vol(np.zeros(3), "Bq s")
    with pytest.raises(UnitError, match="hu_to_density"):
        mc_phantom(ref, density=_vol([0.0, 0.0, 0.0], "HU"))
    with pytest.raises(InputDataError, match="finite and > 0"):
        mc_phantom(ref, density=_vol([1.0, 0.0, 1.0], "g/mL"))
    with pytest.raises(InputDataError, match="name no medium"):
        mc_phantom(ref, materials=_vol([2, 8, 2], "1"))
    with pytest.raises(InputDataError, match="integer labels"):
        mc_phantom(ref, materials=_vol([2.5, 2, 2], "1"))
    other = ds.Volume.from_spacing(np.ones((1, 1, 3)), (3.0, 2.0, 2.0), unit="g/mL")
    with pytest.raises(GeometryMismatchError):
        mc_phantom(ref, density=other)
