"""patient_dose across lung | soft tissue | bone against the kernel builder's direct runs.

The direct runs (``tests/kernels/data/direct_layers``, README there: 4-30 M histories,
full transport) were made by another code path: the builder's own grid (a 30 cm cube with
geometrically growing outer voxels), source sampler (one voxel, positions centred on 0)
and media assignment. Here the same problem goes through ``patient_dose``: a regular
grid whose density map (lung 0.26 | soft tissue 1.04 | bone 1.85 g/mL) selects the media
by density class, a TIA of one voxel, the default range rejection. Agreement within
3 combined standard deviations + 1 % at the source voxel, its face neighbours in lung and
bone and its in-plane faces checks the geometry, the source sampling, the media map and
the dose scaling of the patient path. The 1 %: the builder scales the beta spectrum with
the trapezoidal rule on E p (+0.3 % beta energy; dosimetry.mc uses the exact moments),
and this grid stops at 6-9 cm where the direct runs' cube continues to 15 cm (photon
backscatter).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import dosimetry as ds
from dosimetry.kernels.build import combine_direct_runs
from dosimetry.mc import patient_dose

DATA = Path(__file__).parents[1] / "kernels" / "data" / "direct_layers"
#: (nuclide, voxel as in the file names, grid voxels per axis, histories of the CI run)
CASES = [("Lu-177", "2.21", 41, 300_000), ("Y-90", "4.8", 25, 30_000)]
OFFSETS = {"self": (0, 0, 0), "lung face": (-1, 0, 0), "bone face": (1, 0, 0)}


def _values(s, sd, c):
    out = {
        k: (s[c + o[0], c + o[1], c + o[2]], sd[c + o[0], c + o[1], c + o[2]])
        for k, o in OFFSETS.items()
    }
    plane = [(c, c + 1, c), (c, c - 1, c), (c, c, c + 1), (c, c, c - 1)]
    out["in-plane face"] = (
        float(np.mean([s[i] for i in plane])),
        float(np.sqrt(np.sum([sd[i] ** 2 for i in plane]))) / 4,
    )
    return out


@pytest.mark.validation
@pytest.mark.parametrize(("nuclide", "voxel", "n", "histories"), CASES, ids=[c[0] for c in CASES])
def test_patient_path_matches_the_direct_layered_runs(nuclide, voxel, n, histories):
    ref = combine_direct_runs(sorted(DATA.glob(f"{nuclide}_{voxel}mm_layers_s*.npz")))
    v = float(voxel)
    c = n // 2
    x = np.arange(n) - c
    rho = np.where(x < 0, 0.26, np.where(x > 0, 1.85, 1.04))[:, None, None] * np.ones((n, n, n))
    tia = np.zeros((n, n, n))
    tia[c, c, c] = 1.0e6
    r = patient_dose(
        ds.Volume.from_spacing(tia, (v, v, v), unit="Bq s"),
        nuclide,
        density=ds.Volume.from_spacing(rho, (v, v, v), unit="g/mL"),
        histories=histories,
        batches=10,
        seed=5,
    )
    assert r.provenance["media"] == {1: "LUNG521ICRU", 2: "ICRUTISSUE521ICRU", 3: "ICRPBONE521ICRU"}
    ours = _values(r.dose.array / 1e6, r.uncertainty.array / 1e6, c)
    rc = ref["svalue"].shape[0] // 2
    theirs = _values(ref["svalue"], ref["sd"], rc)
    for key, (val, sd) in ours.items():
        ref_val, ref_sd = theirs[key]
        tol = 3 * np.hypot(sd, ref_sd) + 0.01 * ref_val
        assert abs(val - ref_val) <= tol, (key, val / ref_val - 1, sd / val, ref_sd / ref_val)
