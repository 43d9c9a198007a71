"""Voxel S-values of the dpk library against voxel S-values scored directly by Monte Carlo.

The direct runs (``tests/kernels/data/direct_vsv``, README there) transport each
nuclide's ICRP-107 emissions with ompmc in a grid of water voxels, the source uniform in
the central voxel, with the physics settings of the basis; they do not use the
dose-point-kernel basis, its shell conversion, interpolation, range scaling or geometric
factors. Runs in water, soft tissue (ICRU four-component tissue at 1.04 g/cm3) and bone
(ICRP cortical bone, 1.85 g/cm3). The kernel of :func:`dosimetry.vsv_kernel` in the run's
medium is compared offset by offset;
the direct values are averaged over the 6-48 symmetric equivalents of each offset.

Criteria (stated before the comparison): self voxel within 3 %, other offsets within 5 %
where the direct value is above 1e-3 of the self value, each widened by three standard
deviations of the direct run (from its 10 batches). Offsets below 1e-3 of the self value
are reported in docs/kernels.md but not tested. The one measured exceedance is listed in
``KNOWN_OUTSIDE`` (nothing was tuned to these runs).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dosimetry.kernels.build import (
    _sample_linear_pdf,
    compare_direct_vsv,
    direct_vsv_values,
    emission_table,
    sample_decay_particles,
)

DATA = Path(__file__).parent / "data" / "direct_vsv"
FILES = sorted(DATA.glob("*.npz"))
TOL_SELF = 0.03
TOL_NEIGHBOUR = 0.05
REL_FLOOR = 1e-3


@pytest.fixture(autouse=True)
def _tmp_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DOSIMETRY_CACHE_DIR", str(tmp_path))


def _run_id(f: Path) -> tuple[str, float, str]:
    with np.load(f) as d:
        med = str(d["medium"]) if "medium" in d.files else "water"
        return str(d["nuclide"]), float(d["voxel_mm"]), med


def test_direct_runs_present():
    names = {_run_id(f) for f in FILES}
    assert {("Lu-177", 2.21, "water"), ("Y-90", 2.21, "water")} <= names
    assert {("Lu-177", 2.21, "soft tissue"), ("Y-90", 2.21, "soft tissue")} <= names
    assert {("Lu-177", 4.8, "bone"), ("Y-90", 4.8, "bone")} <= names


def test_symmetric_average_of_a_single_voxel_run():
    """The self value of a direct run is its central voxel; a face value is the mean of
    its six face voxels (checked on the stored array itself)."""
    d = np.load(FILES[0])
    s = d["svalue_gy_per_decay"]
    c = s.shape[0] // 2
    v = direct_vsv_values(FILES[0])
    assert v[(0, 0, 0)][0] == pytest.approx(s[c, c, c], rel=1e-12)
    faces = [s[c + 1, c, c], s[c - 1, c, c], s[c, c + 1, c], s[c, c - 1, c], s[c, c, c + 1]]
    faces.append(s[c, c, c - 1])
    assert v[(0, 0, 1)][0] == pytest.approx(np.mean(faces), rel=1e-12)


#: measured beyond the criterion (docs/kernels.md), kept visible: the set of failing
#: (run, offset) must equal this one exactly, so that a change either way shows up.
#: Lu-177 at 1.00 mm, corner (1,1,1) at 1.1e-3 of the self value: library +6.5 % (sd 0.4 %)
KNOWN_OUTSIDE = {("Lu-177_1.00mm", (1, 1, 1))}


@pytest.mark.validation
@pytest.mark.parametrize("path", FILES, ids=[f.stem for f in FILES])
def test_library_matches_direct_monte_carlo(path):
    outside = set()
    for off, _, sd, dev, rel in compare_direct_vsv(path):
        tol = TOL_SELF if off == (0, 0, 0) else TOL_NEIGHBOUR
        if (off == (0, 0, 0) or rel >= REL_FLOOR) and abs(dev) > tol + 3 * sd:
            outside.add((path.stem, off))
    assert outside == {k for k in KNOWN_OUTSIDE if k[0] == path.stem}


@pytest.mark.parametrize("name", ["Lu-177", "Y-90"])
def test_sampled_emissions_carry_icrp107_energy(name):
    """The direct runs' source: energy per decay (transported + local) equals ICRP-107's
    electron and photon energy per decay, and the beta part its mean beta energy."""
    from dosimetry.nuclides import nuclide

    nuc = nuclide(name)
    table = emission_table(name)
    rec, y_t, local_mev = sample_decay_particles(table, 400_000, 0.221, seed=7)
    e = -rec["e"].astype(float)
    per_decay = y_t * float(e.mean()) + local_mev
    icrp = sum(nuc.energy_per_decay_mev(c) for c in ("beta-", "IE", "auger", "gamma", "X"))
    sd = y_t * float(e.std()) / np.sqrt(e.size)
    assert abs(per_decay - icrp) <= 4 * sd + 1e-3 * icrp
    # positions uniform in the voxel, directions unit vectors with w's sign in the type
    assert np.all(np.abs(rec["x"]) <= 0.1105) and np.all(np.abs(rec["z"]) <= 0.1105)
    u, v = rec["u"].astype(float), rec["v"].astype(float)
    assert np.all(u * u + v * v <= 1.0 + 1e-6)
    assert abs(float(np.mean(np.sign(rec["type"])))) < 0.01


def test_linear_pdf_sampling_matches_analytic_moments():
    """A triangular density 2x on [0, 1] (mean 2/3, second moment 1/2), tabulated coarsely."""
    rng = np.random.default_rng(3)
    x = _sample_linear_pdf(rng, np.array([0.0, 0.3, 1.0]), np.array([0.0, 0.6, 2.0]), 400_000)
    assert x.min() >= 0.0 and x.max() <= 1.0
    assert abs(x.mean() - 2 / 3) < 4 * np.sqrt(1 / 18 / x.size)
    assert abs(np.mean(x * x) - 0.5) < 0.003


@pytest.mark.validation
def test_docs_table_is_the_generated_one():
    """docs/kernels.md holds the table of ``build direct-vsv-table`` over these runs."""
    from dosimetry.kernels.build import direct_vsv_table

    docs = (Path(__file__).parents[2] / "docs" / "kernels.md").read_text()
    assert direct_vsv_table(FILES) in docs
