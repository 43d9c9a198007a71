"""The heterogeneous validation phantom: CI-sized runs against the long reference.

Reference: ``tests/mc/data/slab_reference`` (README there): full transport (no range
rejection) of :func:`dosimetry.mc.validate.slab_phantom` (4.42 mm voxels; lung with a
2 cm soft-tissue lesion, a vertebra at 1.5 g/mL with a bone metastasis, a kidney, soft
tissue, air) for Lu-177, Y-90 and Ac-225 with its chain, in independent parts with their
own seeds, 30-100 times the histories of the runs here. The runs here use the default
range rejection, so the comparison also validates that variance reduction against full
transport. Criteria as the issue states them: every region mean within 3 combined
standard deviations (CI runs); the six regions of the issue within 3 % when the run is
taken to 1 % (slow).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from dosimetry.mc import patient_dose
from dosimetry.mc.validate import REGIONS, combine_parts

REF = Path(__file__).parent / "data" / "slab_reference"

#: the regions of the issue's acceptance criterion
ACCEPTANCE = ("lung lesion", "lung shell", "bone metastasis", "normal bone", "kidney", "background")


def _reference(nuclide: str) -> tuple[dict[str, tuple[float, float]], int]:
    parts = [json.loads(f.read_text()) for f in sorted(REF.glob(f"{nuclide}_part*.json"))]
    assert parts, f"no reference parts for {nuclide} in {REF}"
    assert all(not p["range_rejection"] for p in parts)
    return combine_parts(parts), sum(int(p["histories"]["n"]) for p in parts)


@pytest.mark.validation
@pytest.mark.parametrize("nuclide", ["Lu-177", "Y-90", "Ac-225"])
def test_ci_run_agrees_with_the_reference(nuclide, slab_runs):
    ref, n_ref = _reference(nuclide)
    r = slab_runs[nuclide]
    assert n_ref >= 20 * r.histories
    assert r.provenance["transport"]["range_rejection"] is True
    for region in REGIONS:
        mean = r.voi_mean_dose[region]
        sd = mean * r.voi_relative_uncertainty[region]
        ref_mean, ref_sd = ref[region]
        z = (mean - ref_mean) / math.hypot(sd, ref_sd)
        assert abs(z) <= 3.0, (region, mean / ref_mean - 1, sd / mean, ref_sd / ref_mean)


@pytest.mark.slow
@pytest.mark.validation
@pytest.mark.parametrize("nuclide", ["Lu-177", "Y-90"])
def test_regions_within_3_percent_at_1_percent_uncertainty(nuclide, slab):
    """patient_dose run to 1 % on the six regions of the issue (its own stopping rule)
    agrees with the reference within 3 % in each."""
    ref, _ = _reference(nuclide)
    vois = {k: slab.regions[k] for k in ACCEPTANCE}
    r = patient_dose(
        slab.tia,
        nuclide,
        density=slab.density,
        target_vois=vois,
        target_uncertainty=0.01,
        seed=11,
    )
    assert r.provenance["stopping_rule"]["stopped_because"] == "target reached"
    for region in ACCEPTANCE:
        assert r.voi_relative_uncertainty[region] <= 0.01
        dev = r.voi_mean_dose[region] / ref[region][0] - 1
        assert abs(dev) <= 0.03, (region, dev, ref[region][1] / ref[region][0])


@pytest.mark.validation
@pytest.mark.parametrize("nuclide", ["Lu-177", "Y-90"])
def test_default_vsv_within_2_percent_of_mc_in_homogeneous_soft_tissue(nuclide, slab):
    """#19 acceptance: the default ``vsv`` kernel (photon tail included) against the full
    transport reference in the phantom's kidney (soft tissue, away from lung, bone and air):
    within 2 %. (Its ``background`` region, two voxels from the interfaces, is +3.1 % for
    Lu-177: photons escape a finite body that the infinite-medium kernel keeps;
    docs/dose.md.)"""
    import dosimetry as ds
    from dosimetry.mc.validate import region_means

    ref, _ = _reference(nuclide)
    dose = ds.absorbed_dose(slab.tia, nuclide, method="vsv")
    got = region_means(dose, {"kidney": slab.regions["kidney"]}, slab.density)["kidney"]
    assert abs(got / ref["kidney"][0] - 1) <= 0.02, got / ref["kidney"][0] - 1
