"""heterogeneity_flags: interface fractions (exact, against an independent construction),
the error bands they imply, and the recommendation."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

import dosimetry as ds
from dosimetry.mc import heterogeneity_flags
from dosimetry.mc.heterogeneity import (
    INTERFACE_CLASSES,
    KERNEL_METHODS,
    csda_range_water_g_per_cm2,
    error_bands,
    max_electron_energy_mev,
)

V = 4.42


def _phantom():
    """Soft tissue, a lung block (x < 12) with a 3x3x3 soft-tissue lesion inside, a bone
    block (x >= 24); masks: the lesion, the lung voxels touching it, a soft-tissue block
    far from everything."""
    rho = np.full((20, 20, 32), 1.04)
    rho[:, :, :12] = 0.26
    rho[:, :, 24:] = 1.85
    lesion = np.zeros(rho.shape, bool)
    lesion[9:12, 9:12, 5:8] = True
    rho[lesion] = 1.04
    shell = ndimage.binary_dilation(lesion, np.ones((3, 3, 3), bool)) & ~lesion
    far = np.zeros(rho.shape, bool)
    far[8:12, 8:12, 16:19] = True
    vol = ds.Volume.from_spacing(rho, (V, V, V), unit="g/mL")
    masks = {
        n: vol.with_array(m, unit="1")
        for n, m in (("lesion", lesion), ("shell", shell), ("far", far))
    }
    return vol, masks, lesion


def test_tables():
    b = error_bands()
    assert set(b) == set(KERNEL_METHODS)
    for method in KERNEL_METHODS:
        assert set(b[method]) == set(INTERFACE_CLASSES)
        assert all(lo <= hi for lo, hi in b[method].values())
    # ESTAR (NIST SRD 124) water CSDA ranges: 0.5 MeV 0.1766 g/cm2, 2 MeV 0.9785 g/cm2
    assert csda_range_water_g_per_cm2(0.5) == pytest.approx(0.1766, rel=1e-3)
    assert csda_range_water_g_per_cm2(2.0) == pytest.approx(0.9785, rel=1e-3)
    # beta endpoints (tests/data/icrp107_energy_per_decay.csv): Lu-177 0.4978, Tl-209 1.94378
    assert max_electron_energy_mev("Lu-177") == pytest.approx(0.4978)
    assert max_electron_energy_mev("Ac-225", chain=True) >= 1.94378


def test_lu177_fractions_are_the_touching_voxels():
    """Lu-177's electrons (CSDA range 1.7 mm in soft tissue) reach only across a shared
    face at 4.42 mm: the voxels counted are those with a face neighbour of the other
    medium (6-connected dilation, computed independently)."""
    rho, masks, lesion = _phantom()
    flags = heterogeneity_flags(masks, rho, "Lu-177")
    lung = rho.array < 0.6
    face = ndimage.binary_dilation(lung, ndimage.generate_binary_structure(3, 1))
    expected = float((face & lesion).sum()) / lesion.sum()
    f = flags["lesion"]
    assert f.fraction_near["lung"] == pytest.approx(expected, abs=1e-12)
    # ESTAR 0.1766 g/cm2 at 0.5 MeV; the endpoint is 0.4978 MeV (0.6 % shorter)
    assert f.electron_range_mm == pytest.approx(10 * 0.1766 / 1.04, rel=1e-2)
    assert f.fraction_near["bone"] == 0.0
    assert flags["far"].fraction_near == {"air": 0.0, "lung": 0.0, "soft tissue": 0.0, "bone": 0.0}


def test_bands_and_recommendation():
    rho, masks, _ = _phantom()
    flags = heterogeneity_flags(masks, rho, "Y-90", photon_distance_mm=10.0)
    bands = error_bands("Y-90")
    far = flags["far"]
    # homogeneous soft tissue: the soft-tissue band of each method, nothing else
    for m in KERNEL_METHODS:
        assert far.class_fractions[m]["soft tissue"] == 1.0
        assert far.error_band[m] == pytest.approx(bands[m]["soft tissue"])
    assert far.fraction_near_photon == 0.0  # 4 voxels (17.7 mm) from lung and bone
    shell = flags["shell"]  # lung touching a soft-tissue lesion: the worst class
    for m in KERNEL_METHODS:
        assert shell.class_fractions[m]["lung next to soft tissue"] == 1.0
    assert shell.mc_recommended
    assert far.mc_recommended == (
        min(max(abs(x) for x in far.error_band[m]) for m in KERNEL_METHODS) > 0.10
    )
    with ds.parameters.override(mc_recommended_error_band=100.0):
        assert not heterogeneity_flags(masks, rho, "Y-90")["shell"].mc_recommended
    assert heterogeneity_flags(masks, rho, "Y-90", threshold=0.0)["far"].mc_recommended is (
        max(abs(x) for x in far.error_band[far.best_method]) > 0.0
    )


def test_bands_per_nuclide_and_the_envelope():
    """The phantom was run with Lu-177, Y-90 and Ac-225: their own bands lie inside the
    envelope used for other nuclides (and for unknown names)."""
    envelope = error_bands()
    assert error_bands("I-131") == envelope == error_bands(None)
    for nuc in ("Lu-177", "Y-90", "Ac-225"):
        own = error_bands(nuc)
        assert own != envelope
        for method, classes in own.items():
            for cls, (lo, hi) in classes.items():
                e_lo, e_hi = envelope[method][cls]
                assert e_lo <= lo <= hi <= e_hi, (nuc, method, cls)


def test_the_reach_box_changes_nothing():
    """The distance maps are computed on the VOIs' bounding box grown by the largest
    distance compared: a VOI's flags are the same alone (small box) and together with a
    VOI at the other end of the grid (box = whole grid), for a long-range nuclide too."""
    rho, masks, _ = _phantom()
    for nuclide, photon_mm in (("Lu-177", 10.0), ("Y-90", 30.0)):
        alone = heterogeneity_flags(
            {"lesion": masks["lesion"]}, rho, nuclide, photon_distance_mm=photon_mm
        )
        corner = np.zeros(rho.shape, bool)
        corner[-2:, -2:, -2:] = True
        both = heterogeneity_flags(
            {"lesion": masks["lesion"], "corner": rho.with_array(corner, unit="1")},
            rho,
            nuclide,
            photon_distance_mm=photon_mm,
        )
        assert alone["lesion"] == both["lesion"], nuclide
