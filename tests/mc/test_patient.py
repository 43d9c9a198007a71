"""patient_dose: geometry from the affine, reproducibility, chain members, stopping rule,
a real Dask client and a Dask worker, energy conservation. Real ompmc transport, small problems."""

from __future__ import annotations

import functools
import logging

import numpy as np
import pytest

import dosimetry as ds
from dosimetry.errors import GeometryMismatchError, InputDataError, NuclideError, UnitError
from dosimetry.mc import patient, patient_dose
from dosimetry.units import MEV_TO_J
from dosimetry.volume import affine_from_geometry

SPACING = (3.0, 4.0, 5.0)  # anisotropic: a wrong axis mapping shows in the neighbours


def _small(direction=None, origin=(0.0, 0.0, 0.0)):
    """9 x 11 x 13 voxels: bone slab at high slice index, lung slab at low column index,
    source in two voxels. Returns (tia, density, source index)."""
    tia = np.zeros((9, 11, 13))
    tia[4, 5, 6] = 3e6
    tia[3, 5, 6] = 1e6
    rho = np.full(tia.shape, 1.04)
    rho[6:, :, :] = 1.85
    rho[:, :, :4] = 0.26
    aff = affine_from_geometry(SPACING, origin, direction)
    return ds.Volume(tia, aff, "Bq s"), ds.Volume(rho, aff, "g/mL")


@pytest.fixture(scope="module")
def base_run():
    tia, rho = _small()
    return patient_dose(tia, "Y-90", density=rho, histories=10_000, batches=10, seed=3, workers=2)


def test_flipped_affine_is_the_same_transport(base_run):
    """Axes reversed in LPS (and another origin): the transport runs in the grid's own
    frame, so the same seed gives the same arrays bit for bit; that also shows the run
    is reproducible."""
    tia, rho = _small(direction=np.diag([-1.0, 1.0, -1.0]), origin=(100.0, -40.0, 250.0))
    r = patient_dose(tia, "Y-90", density=rho, histories=10_000, batches=10, seed=3, workers=1)
    assert np.array_equal(r.dose.array, base_run.dose.array)
    assert np.array_equal(r.uncertainty.array, base_run.uncertainty.array)
    assert np.array_equal(r.dose.affine, tia.affine)  # result on the input's grid
    assert r.dose.unit == "Gy" and r.histories == 10_000


def test_other_seed_differs(base_run):
    tia, rho = _small()
    r = patient_dose(tia, "Y-90", density=rho, histories=10_000, batches=10, seed=4, workers=1)
    assert not np.array_equal(r.dose.array, base_run.dose.array)


def test_permuted_axes_give_the_same_world_dose(base_run):
    """The same object stored with its axes permuted (array transposed, affine columns
    permuted): dose at each world voxel agrees where it is above 1 % of the maximum,
    as a whole (mean z^2) and voxel by voxel (the anisotropic voxels and
    slabs make a mis-mapped axis fail)."""
    tia, rho = _small()
    perm = (2, 0, 1)
    aff = np.eye(4)
    aff[:3, :3] = tia.affine[:3, :3][:, perm]
    t2 = ds.Volume(tia.array.transpose(perm), aff, "Bq s")
    d2 = ds.Volume(rho.array.transpose(perm), aff, "g/mL")
    r = patient_dose(t2, "Y-90", density=d2, histories=10_000, batches=10, seed=9, workers=1)
    back = np.argsort(perm)
    dose = r.dose.array.transpose(back)
    sd = r.uncertainty.array.transpose(back)
    d0, s0 = base_run.dose.array, base_run.uncertainty.array
    sel = d0 > 0.01 * d0.max()
    assert sel.sum() > 20
    z = (dose[sel] - d0[sel]) / np.sqrt(sd[sel] ** 2 + s0[sel] ** 2)
    # z of two independent runs (sd from 10 batches each: t-like tails); a mis-mapped axis
    # puts whole rows of voxels tens of sd apart
    assert np.mean(z**2) < 2.0 and np.abs(z).max() < 5.0
    # where the axes differ most: neighbours of the hot voxel along slices (3 mm) and columns (5 mm)
    assert d0[5, 5, 6] > 1.5 * d0[4, 5, 7]


def test_sheared_grid_is_refused():
    tia, _ = _small()
    aff = np.array(tia.affine)
    aff[0, 1] = 1.0  # rows lean along x
    with pytest.raises(GeometryMismatchError, match="orthogonal"):
        patient_dose(ds.Volume(tia.array, aff, "Bq s"), "Y-90", histories=100, batches=2)


def test_input_refusals():
    tia, rho = _small()
    with pytest.raises(UnitError, match="Bq s"):
        patient_dose(tia.with_array(tia.array, unit="Bq"), "Y-90", histories=100)
    with pytest.raises(InputDataError, match="negative"):
        patient_dose(tia.with_array(-tia.array), "Y-90", histories=100)
    with pytest.raises(InputDataError, match="0 everywhere"):
        patient_dose(tia.with_array(0 * tia.array), "Y-90", histories=100)
    with pytest.raises(InputDataError, match="batches must be >= 2"):
        patient_dose(tia, "Y-90", histories=100, batches=1)
    with pytest.raises(InputDataError, match="chain=True"):
        patient_dose(tia, "Ac-225", member_tia={"Bi-213": tia}, histories=100)
    with pytest.raises(NuclideError, match="not a member"):
        patient_dose(tia, "Ac-225", chain=True, member_tia={"Lu-177": tia}, histories=100)
    with pytest.raises(InputDataError, match="empty"):
        patient_dose(tia, "Y-90", target_vois={"x": tia.with_array(0 * tia.array, unit="1")})


def test_tia_per_administered_activity_gives_gy_per_bq():
    tia, rho = _small()
    per_bq = tia.with_array(tia.array / 1e9, unit="Bq s/Bq")
    r = patient_dose(per_bq, "Lu-177", density=rho, histories=2000, batches=2, seed=3, workers=1)
    assert r.dose.unit == "Gy/Bq" and r.uncertainty.unit == "Gy/Bq"


def test_chain_members_from_their_own_maps():
    """Ac-225 chain: (1) giving every member the map it has in situ reproduces the default
    bit for bit; (2) Bi-213 moved to another voxel takes its alpha dose (and Po-213's,
    which follows it) there: the alpha dose of each voxel equals ICRP-107 alpha + recoil
    energy x decays / mass exactly (tests/data sums; no transport involved)."""
    tia = np.zeros((7, 7, 7))
    tia[3, 3, 3] = 1e5
    vol = ds.Volume.from_spacing(tia, (4.0, 4.0, 4.0), unit="Bq s")
    kw = {"chain": True, "histories": 4000, "batches": 2, "seed": 1, "workers": 1}
    base = patient_dose(vol, "Ac-225", **kw)
    expected = {  # decays per parent decay from the branching of tests/data (ICRP-107)
        "Fr-221": 1.0,
        "At-217": 1.0,
        "Bi-213": 0.99988,
        "Po-213": 0.99988 * 0.9791,
        "Tl-209": 0.99988 * 0.0209,
        "Pb-209": 0.99988,
    }
    members = {m["nuclide"]: m["decays"] for m in base.provenance["members"]}
    for name, f in expected.items():
        assert members[name] == pytest.approx(1e5 * f, rel=1e-4)
    maps = patient._member_maps(vol, tia, "Ac-225", True, None)
    given = {m: vol.with_array(a) for m, a, _ in maps[1:]}
    same = patient_dose(vol, "Ac-225", member_tia=given, **kw)
    assert np.array_equal(same.dose.array, base.dose.array)
    assert {m["map"] for m in same.provenance["members"][1:]} == {"member_tia"}

    bi = np.zeros_like(tia)
    bi[1, 3, 3] = 2e5
    moved = patient_dose(vol, "Ac-225", member_tia={"Bi-213": vol.with_array(bi)}, **kw)
    mass_kg = 1.04 * 0.064 * 1e-3  # default soft tissue, 4 mm voxels
    e_alpha = {  # MeV per decay, alpha + recoil (tests/data/icrp107_energy_per_decay.csv)
        "Ac-225": 5.787177 + 0.104813,
        "Fr-221": 6.303608 + 0.116271,
        "At-217": 7.067997 + 0.132818,
        "Bi-213": 0.122183 + 0.002340,
        "Po-213": 8.376543 + 0.160421,
    }
    at_source = 1e5 * (e_alpha["Ac-225"] + e_alpha["Fr-221"] + e_alpha["At-217"])
    at_bi = 2e5 * (e_alpha["Bi-213"] + 0.9791 * e_alpha["Po-213"])
    a = moved.alpha_dose.array
    assert a[3, 3, 3] == pytest.approx(at_source * MEV_TO_J / mass_kg, rel=1e-5)
    assert a[1, 3, 3] == pytest.approx(at_bi * MEV_TO_J / mass_kg, rel=1e-5)
    assert np.count_nonzero(a) == 2
    assert moved.dose.array[1, 3, 3] > a[1, 3, 3]  # + Bi-213/Pb-209 betas


def test_target_rule_runs_rounds_until_reached(monkeypatch):
    """A tiny pilot forces further rounds; the rule stops when the VOI mean reaches 0.2 %."""
    monkeypatch.setattr(patient, "PILOT_HISTORIES", 400)
    monkeypatch.setattr(patient, "MIN_HISTORIES_PER_BATCH", 100)
    tia, rho = _small()
    voi = tia.with_array(tia.array > 0, unit="1")
    seen = []
    r = patient_dose(
        tia,
        "Lu-177",
        density=rho,
        target_vois={"hot": voi},
        target_uncertainty=0.002,
        batches=4,
        workers=2,
        progress=seen.append,
    )
    rule = r.provenance["stopping_rule"]
    assert rule["stopped_because"] == "target reached"
    assert r.voi_relative_uncertainty["hot"] <= 0.002
    assert len(r.provenance["histories_per_batch_by_round"]) >= 2
    assert any("hot" in s and "%" in s for s in seen)
    assert r.voi_mean_dose["hot"] == pytest.approx(
        float(np.sum(voi.array * rho.array * r.dose.array) / np.sum(voi.array * rho.array)),
        rel=1e-12,
    )


def test_history_cap_and_time_budget_stop(monkeypatch):
    monkeypatch.setattr(patient, "PILOT_HISTORIES", 2000)
    monkeypatch.setattr(patient, "MIN_HISTORIES_PER_BATCH", 100)
    tia, rho = _small()
    voi = {"hot": tia.with_array(tia.array > 0, unit="1")}
    kw = {"density": rho, "target_vois": voi, "target_uncertainty": 1e-7, "batches": 2}
    capped = patient_dose(tia, "Lu-177", max_histories=6000, workers=1, **kw)
    assert capped.provenance["stopping_rule"]["stopped_because"] == "max_histories reached"
    assert 6000 <= capped.histories <= 6000 + 2 * 2
    timed = patient_dose(tia, "Lu-177", time_budget_s=8.0, workers=1, **kw)
    assert timed.provenance["stopping_rule"]["stopped_because"] == "time budget"
    assert (
        timed.histories >= 2000
    )  # the pilot always runs (a loaded machine may spend the budget on it)


@pytest.fixture(scope="module")
def dask_client():
    """A real Dask scheduler with two worker processes (daemonic, one OpenMP thread each),
    as a cohort runs them."""
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        silence_logs=logging.ERROR,
        env={"OMP_NUM_THREADS": "1"},
    )
    client = distributed.Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


def test_client_runs_the_same_batches(base_run, dask_client):
    tia, rho = _small()
    r = patient_dose(
        tia, "Y-90", density=rho, histories=10_000, batches=10, seed=3, client=dask_client
    )
    assert np.array_equal(r.dose.array, base_run.dose.array)
    assert r.provenance["workers"] == "dask client"


def test_inside_a_dask_worker_the_batches_run_in_that_process(base_run, dask_client):
    """A cohort study with --method mc runs in a Dask worker, a daemonic process that may
    not start the local worker pool: the batches run in the worker itself, same seeds, same
    dose."""
    tia, rho = _small()
    # workers= would be read by Client.submit itself: bound with partial
    job = functools.partial(
        patient_dose, tia, "Y-90", density=rho, histories=10_000, batches=10, seed=3, workers=2
    )
    fut = dask_client.submit(job, pure=False)
    r = fut.result(timeout=300)
    assert r.provenance["in_process"] is True and r.provenance["workers"] == 1
    assert np.array_equal(r.dose.array, base_run.dose.array)


@pytest.mark.parametrize("name", ["Lu-177", "Y-90", "Ac-225"])
def test_energy_conservation(name, slab, slab_runs, icrp107):
    """Sum of dose x mass (the returned map and the phantom's densities) + the energy the
    transport saw leave the phantom = ICRP-107 energy emitted (tests/data sums x decays;
    for Ac-225 the chain with its branching) within 0.5 %. Air voxels (dose not reported)
    hold < 1e-4 of the energy."""
    r = slab_runs[name]
    mass_kg = slab.density.array * slab.tia.voxel_volume_ml * 1e-3
    deposited_j = float(np.sum(r.dose.array * mass_kg))
    escaped_j = r.provenance["energy_balance_j"]["escaped"]

    def total(n):
        row = icrp107[n]
        keys = ("E_electron_total_MeV", "E_photon_total_MeV", "E_alpha_MeV", "E_alpha_recoil_MeV")
        return sum(float(row[k]) for k in keys)

    if name == "Ac-225":
        w = {"Ac-225": 1, "Fr-221": 1, "At-217": 1, "Bi-213": 0.99988}
        w.update({"Po-213": 0.99988 * 0.9791, "Tl-209": 0.99988 * 0.0209, "Pb-209": 0.99988})
        per_decay = sum(f * total(n) for n, f in w.items())
    else:
        per_decay = total(name)
    emitted_j = float(slab.tia.array.sum()) * per_decay * MEV_TO_J
    assert (deposited_j + escaped_j) / emitted_j == pytest.approx(1.0, abs=0.005)
    assert 0 < escaped_j < emitted_j
    assert r.uncertainty.array.max() > 0


def test_absorbed_dose_method_mc_is_the_patient_transport(base_run):
    """ds.absorbed_dose(..., method="mc") runs patient_dose with the request's density and
    the mc= settings: the same seed gives the same dose map, with the MC provenance."""
    tia, rho = _small()
    dose = ds.absorbed_dose(
        tia,
        "Y-90",
        method="mc",
        density=rho,
        mc={"histories": 10_000, "batches": 10, "seed": 3, "workers": 2},
    )
    assert dose.unit == "Gy" and dose.same_grid(tia)
    np.testing.assert_allclose(dose.array, base_run.dose.array, rtol=1e-12, atol=0.0)
    assert dose.provenance["mc"]["histories"] == base_run.histories
