"""Validation of the dpk kernels against Lanconelli et al. 2012 (independent GATE MC).

Criteria of the project: our kernel without conversion/Auger electrons (the database's
source terms lack them) within 3 % in the source voxel and 7 % in the face/edge/corner
neighbours where those are above 1e-3 of the self value. Nothing is tuned to the database.
Measured deviations that exceed the criterion are marked xfail (strict) with the measured
value, so that a change shows up; the energy-budget test below shows where the self-voxel
shortfall comes from (docs/kernels.md has the table and the analysis).
"""

from __future__ import annotations

import numpy as np
import pytest

import dosimetry as ds
from dosimetry.kernels import lanconelli_kernel
from dosimetry.units import MEV_TO_J

NUCLIDES = ("Sr-89", "Y-90", "I-131", "Sm-153", "Lu-177", "Re-186", "Re-188")
SIZES = (3.00, 4.80, 6.00)
# measured self-voxel ratios beyond 3 % (docs/kernels.md): I-131 0.961-0.963,
# Lu-177 0.963-0.965, Sm-153 0.969 at 4.8 mm: the database deposits 4.5-6.8 keV per decay
# more in the source voxel than ICRP-107's beta spectra carry (test_energy_budget)
SELF_FAILS = {(n, v) for n in ("I-131", "Lu-177") for v in SIZES} | {("Sm-153", 4.80)}
NEIGHBOURS = ((0, 0, 1), (0, 1, 1), (1, 1, 1))
# measured 1.073: Sr-89's database kernel is more compact than ours (self +4 keV, block
# -0.9 keV per decay); a 0.65 % shorter electron range in tissue moves this value by -1.9 %
NEIGH_FAILS = {("Sr-89", 4.8, (1, 1, 1))}


@pytest.fixture(autouse=True)
def _tmp_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DOSIMETRY_CACHE_DIR", str(tmp_path))


def _pair(name, v, radius_mm=None):
    ours = ds.vsv_kernel(name, v, exclude=("ce_auger",), radius_mm=radius_mm).array
    ref = lanconelli_kernel(name, v).array
    return ours, ours.shape[0] // 2, ref, ref.shape[0] // 2


@pytest.mark.validation
@pytest.mark.parametrize("v", SIZES)
@pytest.mark.parametrize("name", NUCLIDES)
def test_self_voxel(name, v, request):
    if (name, v) in SELF_FAILS:
        request.applymarker(
            pytest.mark.xfail(strict=True, reason="measured 3.1-3.9 % low: database energy excess")
        )
    ours, c, ref, cr = _pair(name, v)
    assert ours[c, c, c] == pytest.approx(ref[cr, cr, cr], rel=0.03)  # vs Lanconelli 2012


@pytest.mark.validation
@pytest.mark.parametrize("v", SIZES)
@pytest.mark.parametrize("name", NUCLIDES)
def test_neighbours(name, v):
    ours, c, ref, cr = _pair(name, v)
    checked = 0
    for o in NEIGHBOURS:
        r = ref[cr + o[0], cr + o[1], cr + o[2]]
        if r < 1e-3 * ref[cr, cr, cr]:
            continue
        ratio = ours[c + o[0], c + o[1], c + o[2]] / r
        if (name, v, o) in NEIGH_FAILS:
            assert 1.07 < ratio < 1.08  # the documented exceedance, measured 1.073
            continue
        checked += 1
        assert ratio == pytest.approx(1.0, abs=0.07), o  # vs Lanconelli 2012
    assert checked >= 1


@pytest.mark.validation
@pytest.mark.parametrize("name", ("I-131", "Sm-153", "Lu-177"))
def test_energy_budget_explains_self_voxel_shortfall(name):
    """Where our source voxel is more than 3 % low, the database holds that much more energy
    per decay in its whole 11^3 block too (neighbours agree), while our kernel holds
    ICRP-107's beta energy: the difference is in the source terms, not in the transport
    or the voxel integration."""
    v = 4.8
    radius = 5.0 * np.sqrt(3.0) * v * 1.001
    ours, c, ref, cr = _pair(name, v, radius_mm=radius)
    block = ours[c - 5 : c + 6, c - 5 : c + 6, c - 5 : c + 6]
    kev = v**3 * 1e-6 * 1.04 / MEV_TO_J * 1e3
    self_excess = (ref[cr, cr, cr] - ours[c, c, c]) * kev
    block_excess = (ref.sum() - block.sum()) * kev
    assert self_excess > 4.0  # keV per decay
    assert block_excess == pytest.approx(self_excess, abs=1.0)
    beta = ds.vsv_kernel(name, v, exclude=("ce_auger", "photon"), radius_mm=radius)
    e_beta = ds.nuclide(name).energy_per_decay_j("beta-")
    assert beta.absorbed_energy_per_decay_j() / e_beta == pytest.approx(1.0, abs=0.005)
