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
MEDIA = ("soft tissue", "bone")
# measured self-voxel ratios beyond 3 % (docs/kernels.md): I-131 0.961-0.965,
# Lu-177 0.963-0.966 (both media), Sm-153 0.969 at 4.8 mm in soft tissue: the database
# deposits 4.5-6.8 keV per decay more in the source voxel than ICRP-107's beta spectra
# carry (test_energy_budget)
SELF_FAILS = {(m, n, v) for m in MEDIA for n in ("I-131", "Lu-177") for v in SIZES} | {
    ("soft tissue", "Sm-153", 4.80)
}
NEIGHBOURS = ((0, 0, 1), (0, 1, 1), (1, 1, 1))
# measured ratios beyond 7 %, asserted to stay within 0.01 of the measured value:
# * Sr-89: the database's kernel is more compact than ours (soft tissue 4.8 mm: self
#   +4 keV, block -0.9 keV per decay); a 0.65 % shorter electron range in tissue moves
#   the soft-tissue value by -1.9 %.
# * Sm-153 in bone: these offsets are 60-99 % photon dose (40-47 keV X rays, 103 keV
#   gamma), absorbed mostly by the photoelectric effect, which grows steeply with the
#   calcium content: our bone is ICRP cortical bone (Ca 21.0 % by mass, ompmc's PEGS
#   data), the database's ICRU compact bone (Ca 14.7 %); bone/soft-tissue photon dose at
#   these offsets is 2.6-3.6 in our kernels. Direct Monte Carlo in our bone agrees with
#   the library (tests/kernels/test_direct_vsv.py).
NEIGH_FAILS = {
    ("soft tissue", "Sr-89", 4.8, (1, 1, 1)): 1.073,
    ("bone", "Sr-89", 3.0, (1, 1, 1)): 1.086,
    ("bone", "Sm-153", 3.0, (0, 1, 1)): 1.125,
    ("bone", "Sm-153", 4.8, (0, 1, 1)): 1.166,
    ("bone", "Sm-153", 6.0, (0, 1, 1)): 1.158,
    ("bone", "Sm-153", 6.0, (1, 1, 1)): 1.138,
}


@pytest.fixture(autouse=True)
def _tmp_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DOSIMETRY_CACHE_DIR", str(tmp_path))


def _pair(name, v, radius_mm=None, medium="soft tissue"):
    ours = ds.vsv_kernel(name, v, medium=medium, exclude=("ce_auger",), radius_mm=radius_mm).array
    ref = lanconelli_kernel(name, v, medium=medium).array
    return ours, ours.shape[0] // 2, ref, ref.shape[0] // 2


@pytest.mark.validation
@pytest.mark.parametrize("medium", MEDIA)
@pytest.mark.parametrize("v", SIZES)
@pytest.mark.parametrize("name", NUCLIDES)
def test_self_voxel(name, v, medium, request):
    if (medium, name, v) in SELF_FAILS:
        request.applymarker(
            pytest.mark.xfail(strict=True, reason="measured 3.1-3.9 % low: database energy excess")
        )
    ours, c, ref, cr = _pair(name, v, medium=medium)
    assert ours[c, c, c] == pytest.approx(ref[cr, cr, cr], rel=0.03)  # vs Lanconelli 2012


@pytest.mark.validation
@pytest.mark.parametrize("medium", MEDIA)
@pytest.mark.parametrize("v", SIZES)
@pytest.mark.parametrize("name", NUCLIDES)
def test_neighbours(name, v, medium):
    ours, c, ref, cr = _pair(name, v, medium=medium)
    checked = 0
    for o in NEIGHBOURS:
        r = ref[cr + o[0], cr + o[1], cr + o[2]]
        if r < 1e-3 * ref[cr, cr, cr]:
            continue
        ratio = ours[c + o[0], c + o[1], c + o[2]] / r
        measured = NEIGH_FAILS.get((medium, name, v, o))
        if measured is not None:
            assert abs(ratio - measured) < 0.01  # the documented exceedance
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


@pytest.mark.validation
@pytest.mark.parametrize("medium", MEDIA)
def test_docs_table_is_the_generated_one(medium):
    """docs/kernels.md holds the table that ``python -m dosimetry.kernels.validate`` prints."""
    from pathlib import Path

    from dosimetry.kernels.validate import markdown

    docs = (Path(__file__).parents[2] / "docs" / "kernels.md").read_text()
    table = markdown(medium)
    assert table.split("\n\n")[0] in docs
