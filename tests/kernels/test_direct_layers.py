"""method="vsv-density" against direct Monte Carlo across lung | soft tissue | bone.

The direct runs (``tests/kernels/data/direct_layers``, README there) transport each
nuclide's ICRP-107 emissions from a soft-tissue source voxel whose two opposite faces
touch lung and cortical bone. The tissue-class convolution (target voxel's class selects
the kernel, dose x rho_kernel / rho_voxel) is exact in a homogeneous medium and
approximate at interfaces; these tests hold what was measured (docs/dose.md has the
table): exact where the target lies in the source's medium, and better than ignoring the
heterogeneity for Y-90 in the voxels next to the interfaces, but not for Lu-177 in lung.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dosimetry.kernels.build import combine_direct_runs
from dosimetry.mc.validate import compare_layered, layered_table

DATA = Path(__file__).parent / "data" / "direct_layers"
FILES = sorted(DATA.glob("*.npz"))
CASES = {
    (name, voxel): sorted(DATA.glob(f"{name}_{voxel}mm_layers_s*.npz"))
    for name, voxel in (("Y-90", "4.8"), ("Y-90", "2.21"), ("Lu-177", "2.21"))
}


@pytest.fixture(autouse=True)
def _tmp_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DOSIMETRY_CACHE_DIR", str(tmp_path))


def _rows(case):
    return {r[0]: r for r in compare_layered(combine_direct_runs(CASES[case]))}


def test_runs_present_and_combined():
    assert all(len(fs) >= 5 for fs in CASES.values())
    info = combine_direct_runs(CASES[("Y-90", "4.8")])
    assert info["medium"] == "lung,soft tissue,bone"
    c = info["svalue"].shape[0] // 2
    assert info["density_x"][c - 1] == 0.26 and info["density_x"][c] == 1.04
    assert info["density_x"][c + 1] == 1.85
    # the mean of the parts has a smaller uncertainty than one part
    with np.load(CASES[("Y-90", "4.8")][0]) as d:
        one = d["rel_unc_transported"][c, c, c]
    assert info["sd"][c, c, c] / info["svalue"][c, c, c] < one


@pytest.mark.validation
@pytest.mark.parametrize("case", list(CASES), ids=lambda c: f"{c[0]}-{c[1]}mm")
def test_same_medium_as_the_source_is_exact(case):
    """Source voxel and its in-plane (soft-tissue) face neighbour: both methods within
    2.5 % of the direct run (measured 0.1-2.0 %), as in a homogeneous medium."""
    rows = _rows(case)
    for off in ((0, 0, 0), (0, 1, 0)):
        _, _, sd, het, hom = rows[off]
        assert abs(het) < 0.025 + 3 * sd
        assert het == pytest.approx(hom, abs=1e-9)


@pytest.mark.validation
@pytest.mark.parametrize("voxel", ["4.8", "2.21"])
def test_y90_interfaces_better_than_ignoring_them(voxel):
    """Y-90 face neighbours in lung and bone: the tissue-class kernels are closer to the
    direct run than the soft-tissue kernel (measured lung +3.9/+25.9 % vs -8.7/-27.5 %,
    bone -11.5/-27.9 % vs +17.5/+49.2 % at 2.21/4.8 mm)."""
    rows = _rows(("Y-90", voxel))
    for off in ((-1, 0, 0), (1, 0, 0)):
        _, _, _, het, hom = rows[off]
        assert abs(het) < abs(hom)


@pytest.mark.validation
def test_lu177_lung_neighbour_overestimated():
    """The documented limit: Lu-177's electrons start in soft tissue and lose most of
    their energy before the lung, but the lung kernel transports them as if emitted in
    lung: the lung face neighbour at 2.21 mm is ~3x the direct value (measured +189 %)."""
    _, _, _, het, hom = _rows(("Lu-177", "2.21"))[(-1, 0, 0)]
    assert 1.5 < het < 2.5
    assert -0.8 < hom < -0.5


@pytest.mark.validation
def test_docs_table_is_the_generated_one():
    docs = (Path(__file__).parents[2] / "docs" / "dose.md").read_text()
    assert layered_table(FILES) in docs
