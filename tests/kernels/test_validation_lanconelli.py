"""Validation of the dpk kernels against Lanconelli et al. 2012 (independent GATE MC).

Criteria of the project: our kernel without conversion/Auger electrons (the database's
source terms lack them) within 3 % in the source voxel and 7 % in the face/edge/corner
neighbours where those are above 1e-3 of the self value. Nothing is tuned to the database.
Measured deviations that exceed the criterion are marked xfail (strict) with the measured
value, so that an improvement shows up; see docs/kernels.md.
"""

from __future__ import annotations

import pytest

import dosimetry as ds
from dosimetry.kernels import lanconelli_kernel

NUCLIDES = ("Sr-89", "Y-90", "I-131", "Sm-153", "Lu-177", "Re-186", "Re-188")
SIZES = (3.00, 4.80, 6.00)
# measured self-voxel ratios beyond 3 % (docs/kernels.md): I-131 0.96, Lu-177 0.96,
# Sm-153 0.967-0.971
SELF_FAILS = {(n, v) for n in ("I-131", "Lu-177") for v in SIZES} | {
    ("Sm-153", 4.80),
    ("Sm-153", 6.00),
}
NEIGHBOURS = ((0, 0, 1), (0, 1, 1), (1, 1, 1))
NEIGH_FAILS = {("Lu-177", 6.0, (0, 0, 1))}  # measured +8.9 %


@pytest.fixture(autouse=True)
def _tmp_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DOSIMETRY_CACHE_DIR", str(tmp_path))


def _pair(name, v):
    ours = ds.vsv_kernel(name, v, exclude=("ce_auger",)).array
    ref = lanconelli_kernel(name, v).array
    return ours, ours.shape[0] // 2, ref, ref.shape[0] // 2


@pytest.mark.slow
@pytest.mark.validation
@pytest.mark.parametrize("v", SIZES)
@pytest.mark.parametrize("name", NUCLIDES)
def test_self_voxel(name, v, request):
    if (name, v) in SELF_FAILS:
        request.applymarker(pytest.mark.xfail(strict=True, reason="measured 3-4.3 % low"))
    ours, c, ref, cr = _pair(name, v)
    assert ours[c, c, c] == pytest.approx(ref[cr, cr, cr], rel=0.03)  # vs Lanconelli 2012


@pytest.mark.slow
@pytest.mark.validation
@pytest.mark.parametrize("v", SIZES)
@pytest.mark.parametrize("name", NUCLIDES)
def test_neighbours(name, v):
    ours, c, ref, cr = _pair(name, v)
    checked = 0
    for o in NEIGHBOURS:
        r = ref[cr + o[0], cr + o[1], cr + o[2]]
        if r < 1e-3 * ref[cr, cr, cr] or (name, v, o) in NEIGH_FAILS:
            continue
        checked += 1
        assert ours[c + o[0], c + o[1], c + o[2]] == pytest.approx(r, rel=0.07), o
    if (name, v, (0, 0, 1)) in NEIGH_FAILS:
        o = (0, 0, 1)
        ratio = ours[c, c, c + 1] / ref[cr, cr, cr + 1]
        assert 1.07 < ratio < 1.10  # the documented exceedance, measured 1.089
    assert checked >= 1 or (name, v, (0, 0, 1)) in NEIGH_FAILS
