"""Build the monoenergetic dose-point-kernel basis with the ompmc Monte Carlo code.

Run once to produce the package data (needs the ``[mc]`` extra, ``pip install ompmc``)::

    python -m dosimetry.kernels.build run  --raw RAWDIR --workers 16 --deadline-s 420
    python -m dosimetry.kernels.build pack --raw RAWDIR --out dosimetry/kernels/data/dpk_ompmc_v2

``run --medium bone|lung`` builds the run sets of those media (:func:`medium_settings`:
bone photons on the whole grid, electron/positron runs that fix the range scaling).
``direct-vsv`` (check runs, not part of the basis) scores the voxel S-values of a nuclide
directly in a voxel grid of one medium, or of lung | soft tissue | bone layers
(``--layers``); see :func:`run_direct_vsv` and ``direct-vsv-table``. The comparison of
the layered runs with the dose methods (which needs :mod:`dosimetry.dose`) lives in
:mod:`dosimetry.mc.validate` (``python -m dosimetry.mc.validate layered-table``), so
that ``kernels`` never imports ``dose``.

``run`` transports isotropic point sources of electrons, positrons and photons in water,
one energy per process (the ompmc engine keeps global state and prints to stdout), and
writes one ``.npz`` per (particle, energy) with the energy deposited per history in each
ring x slab of an r-z cylinder around the source. It is resumable (finished files are
skipped) and reproducible (each task's seeds are derived from its index; settings and
seeds are written to ``RAWDIR/manifest.json``). ``pack`` converts the cylinder bins to
spherical shells (energy-conserving MLEM deconvolution, see
:func:`dosimetry.kernels._pack.cylinder_to_shells`) and writes the basis ``basis.npz`` +
``manifest.json``.

ompmc settings (measured to matter; see docs/kernels.md): PEGS data ``521icru``, ECUT
0.521 MeV total (10 keV kinetic), PCUT 0.01 MeV, no photon splitting; scoring bins for
electrons of R_CSDA/20 out to 1.2 R_CSDA, then geometrically growing bins out to 40 cm so
that the bremsstrahlung tail is kept; photon bins of 0.5 mm out to 1 cm then geometric
to 40 cm; phantom 80 cm across. The source is an IAEA phase-space file whose particles
start at the origin with isotropic directions.

The ompmc driving code (physics settings, media, emission tables, decay sampling, the
phase-space writer) is shared with the patient Monte Carlo in :mod:`dosimetry.mc`;
``ompmc`` is imported only when a run starts (``dosimetry.mc.import_ompmc``: a missing
package is an :class:`~dosimetry._optional.OptionalDependencyError` that names the
install command). Errors are project exceptions; progress goes to the
``dosimetry.kernels.build`` logger (the command line shows it at INFO).

References
----------
Doerner E. ompMC: OpenMP parallel Monte Carlo photon and electron transport (an EGSnrc
re-implementation), https://github.com/e0404/ompMC (GPL-3.0).

Kawrakow I, Rogers DWO et al. The EGSnrc code system. NRCC Report PIRS-701.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import KernelError, OutputError
from ..mc import (
    DIRECT_LOCAL_BELOW_MEV,
    OMPMC_MEDIA,
    PHSP_DTYPE,
    emission_table,
    import_ompmc,
    physics_settings,
    sample_decay_particles,
    sample_linear_pdf,
    write_phsp_records,
)
from ..units import MEV_TO_J

__all__ = [
    "DIRECT_LOCAL_BELOW_MEV",
    "OMPMC_MEDIA",
    "SETTINGS",
    "combine_direct_runs",
    "compare_direct_vsv",
    "direct_vsv_table",
    "emission_table",
    "energy_grid",
    "medium_settings",
    "physics_settings",
    "run_direct_vsv",
    "sample_decay_particles",
    "scoring_grid",
    "tasks",
]

log = logging.getLogger(__name__)

#: the shared phase-space dtype, writer and spectrum sampler under their earlier names
_PHSP_DTYPE = PHSP_DTYPE
_write_phsp_records = write_phsp_records
_sample_linear_pdf = sample_linear_pdf

#: Everything that defines the Monte Carlo runs (run set ``basis_version``). Changing
#: anything but adding grids needs a new run set name and a new BASIS_VERSION (``_dpk``).
#: dpk_ompmc_v2 = the 68 runs of v1 (same seeds) + photons at the geometric midpoints of
#: the photon grid (interpolation between 26 photon energies was up to 5 % off at 60 keV).
SETTINGS: dict[str, Any] = {
    "basis_version": "dpk_ompmc_v2",
    "code": "ompmc",
    "pegs": "521icru",
    "medium": "H2O521ICRU",
    "density_g_per_cm3": 1.0,
    "ecut_total_mev": 0.521,
    "pcut_mev": 0.01,
    "n_split": 1,
    "n_batches": 10,
    "phantom_radius_cm": 40.0,
    "phantom_half_length_cm": 40.0,
    "electron_core_bins": 24,  # bins of R_CSDA/20 out to 1.2 R_CSDA
    "electron_core_extent_rcsda": 1.2,
    "tail_bins": 24,
    "photon_core_bin_cm": 0.05,
    "photon_core_extent_cm": 1.0,
    "photon_tail_bins": 30,
    "phsp_particles": 200000,
    "base_seed": 20240611,
    # particle -> (E_min MeV, E_max MeV, number of energies, histories per energy)
    "grid": {
        "electron": [0.012, 4.0, 26, 600000],
        "positron": [0.015, 4.0, 16, 300000],
        "photon": [0.010, 4.0, 26, 1200000],
        # geometric midpoints of the "photon" grid (added in v2; seeds continue the count)
        "photon_mid": [0.010, 4.0, 26, 1200000],
    },
}
_CODES = {"photon": 1, "electron": 2, "positron": 3}

#: energies (MeV) of the water grids at which the bone and lung bases check the electron
#: range scaling (indices into energy_grid("electron") / energy_grid("positron"))
_E_CHECK = (4, 9, 13, 17, 21, 23)
_P_CHECK = (10,)
#: lung photon energies (indices into energy_grid("photon")) that check density scaling
_PH_LUNG = (3, 6, 9, 12, 15, 18, 21)


def medium_settings(medium: str) -> dict[str, Any]:
    """Run set of the basis of another medium (``"bone"`` or ``"lung"``).

    Both keep the water basis' physics (:data:`SETTINGS`); lengths of the scoring grid are
    scaled by 1 / density (bins of equal mass thickness). Bone: photons on the whole
    water grid (26 energies + midpoints; photon kernels are not range-scalable in bone,
    whose photoelectric cross sections differ from water's), electrons and positrons at a
    few energies to measure the electron range scaling. Lung: a phantom 3 m across
    (39 g/cm2), photons and electrons at a few energies to check density / range scaling.
    """
    if medium not in ("bone", "lung"):
        raise KernelError(
            f"medium must be 'bone' or 'lung' (water: the default run set), got {medium!r}"
        )
    pegs_medium, rho = OMPMC_MEDIA[medium]
    s = json.loads(json.dumps(SETTINGS))
    s["basis_version"] = f"dpk_ompmc_{medium}_v1"
    s["medium"] = pegs_medium
    s["density_g_per_cm3"] = rho
    s["length_scale"] = 1.0 / rho
    s["phantom_radius_cm"] = s["phantom_half_length_cm"] = 40.0 if medium == "bone" else 150.0
    e_el = energy_grid("electron")
    e_po = energy_grid("positron")
    s["grid"] = {
        "electron": {"energies": [float(e_el[i]) for i in _E_CHECK], "histories": 600000},
        "positron": {"energies": [float(e_po[i]) for i in _P_CHECK], "histories": 300000},
    }
    if medium == "bone":
        s["grid"]["photon"] = list(SETTINGS["grid"]["photon"])
        s["grid"]["photon_mid"] = list(SETTINGS["grid"]["photon_mid"])
    else:
        e_ph = energy_grid("photon")
        s["grid"]["photon"] = {"energies": [float(e_ph[i]) for i in _PH_LUNG], "histories": 1200000}
    return s


def energy_grid(particle: str, settings: dict[str, Any] | None = None) -> np.ndarray:
    """Log-spaced kinetic energies (MeV) of one grid of the basis (``settings["grid"]``
    key; a key ending in ``_mid`` gives the geometric midpoints of that grid)."""
    s = settings or SETTINGS
    spec = s["grid"][particle]
    if isinstance(spec, dict):  # explicit energies
        return np.asarray(spec["energies"], dtype=float)
    e_min, e_max, n, _ = spec
    g = np.geomspace(e_min, e_max, int(n))
    if particle.endswith("_mid"):
        return np.asarray(np.sqrt(g[1:] * g[:-1]))
    return g


def tasks(settings: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """All (particle, energy) runs with their histories and seeds."""
    s = settings or SETTINGS
    out = []
    idx = 0
    for grid in ("electron", "positron", "photon", "photon_mid"):
        if grid not in s["grid"]:
            continue
        particle = grid.removesuffix("_mid")
        spec = s["grid"][grid]
        n_hist = int(spec["histories"] if isinstance(spec, dict) else spec[3])
        for e in energy_grid(grid, s):
            idx += 1
            out.append(
                {
                    "particle": particle,
                    "energy_mev": float(e),
                    "histories": n_hist,
                    "seeds": [int(s["base_seed"]) % 30000 + 1, idx],
                    "file": f"{particle}_{e:.6f}MeV.npz",
                }
            )
    return out


def _csda_cm(energy_mev: float) -> float:
    from ._dpk import csda_range_cm

    return float(csda_range_cm(energy_mev))


def scoring_grid(
    particle: str, energy_mev: float, settings: dict[str, Any] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Ring and slab boundaries (cm) of the r-z scoring cylinder for one run.

    The central slab straddles the source plane z = 0 (the source is never on a boundary).
    """
    s = settings or SETTINGS
    r_out = float(s["phantom_radius_cm"])
    z_out = float(s["phantom_half_length_cm"])
    scale = float(s.get("length_scale", 1.0))  # 1 / density: bins of equal mass thickness
    if particle == "photon":
        h = float(s["photon_core_bin_cm"]) * scale
        core = float(s["photon_core_extent_cm"]) * scale
        n_tail = int(s["photon_tail_bins"])
    else:
        rc = _csda_cm(energy_mev) * scale
        core = float(s["electron_core_extent_rcsda"]) * rc
        h = core / int(s["electron_core_bins"])
        n_tail = int(s["tail_bins"])
    n_core = int(round(core / h))
    r_core = np.arange(n_core + 1) * h
    r_tail = np.geomspace(r_core[-1], r_out, n_tail + 1)[1:]
    r_bounds = np.concatenate([r_core, r_tail])
    z_core = (np.arange(n_core) + 0.5) * h
    z_tail = np.geomspace(z_core[-1], z_out, n_tail + 1)[1:]
    z_pos = np.concatenate([z_core, z_tail])
    z_bounds = np.concatenate([-z_pos[::-1], z_pos])
    return r_bounds, z_bounds


def _write_phsp(base: Path, code: int, energy_mev: float, n: int, seed: int) -> None:
    """IAEA phase-space pair: n particles at the origin with isotropic directions."""
    rng = np.random.default_rng(seed)
    w = rng.uniform(-1.0, 1.0, n)
    phi = rng.uniform(0.0, 2.0 * np.pi, n)
    sin_t = np.sqrt(1.0 - w * w)
    rec = np.zeros(n, _PHSP_DTYPE)
    rec["type"] = np.where(w < 0, -code, code)  # sign of the type = sign of w
    rec["e"] = -energy_mev  # negative energy: every particle starts a new history
    rec["u"] = sin_t * np.cos(phi)
    rec["v"] = sin_t * np.sin(phi)
    rec["wt"] = 1.0
    _write_phsp_records(base, rec, "isotropic point source at the origin")


def run_one(task: dict[str, Any], out_file: Path, settings: dict[str, Any] | None = None) -> None:
    """Transport one (particle, energy) task with ompmc and write its raw r-z result."""
    ompmc = import_ompmc()

    s = settings or SETTINGS
    particle, energy = task["particle"], float(task["energy_mev"])
    r_b, z_b = scoring_grid(particle, energy, s)
    geo = ompmc.CylinderGeometry(r_b, z_b, s["medium"], float(s["density_g_per_cm3"]))
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "src"
        n_phsp = min(int(s["phsp_particles"]), int(task["histories"]))
        _write_phsp(base, _CODES[particle], energy, n_phsp, int(task["seeds"][1]))
        physics = physics_settings(s, (int(task["seeds"][0]), int(task["seeds"][1])), tmp)
        t0 = time.perf_counter()
        edep, unc, summary = ompmc.calc_radial(
            geo,
            ompmc.PhaseSpaceSource(str(base), order="random"),
            None,
            physics,
            n_histories=int(task["histories"]),
            n_batches=int(s["n_batches"]),
            output_dose=False,
        )
        wall = time.perf_counter() - t0
    tmp_out = out_file.with_suffix(".part.npz")
    np.savez_compressed(
        tmp_out,
        edep_mev=np.asarray(edep, dtype=np.float64),
        rel_unc=np.asarray(unc, dtype=np.float64),
        r_bounds_cm=r_b,
        z_bounds_cm=z_b,
        particle=particle,
        energy_mev=energy,
        histories=int(summary.n_histories),
        energy_fraction_in_phantom=float(summary.energy_fraction),
        wall_s=wall,
        seeds=np.asarray(task["seeds"]),
        ompmc_version=str(ompmc.__version__),
    )
    os.replace(tmp_out, out_file)


def _task_cost(t: dict[str, Any]) -> float:
    """Relative run time: ~ histories x energy^0.7 (electrons/positrons), photons ~ 1/8."""
    f = 0.125 if t["particle"] == "photon" else 1.0
    return float(t["histories"] * t["energy_mev"] ** 0.7 * f)


def run_all(
    raw: Path,
    workers: int,
    deadline_s: float,
    scale: float = 1.0,
    medium: str = "water",
    list_only: bool = False,
) -> list[str]:
    """Run every missing task, at most ``workers`` processes at a time (resumable).

    ``medium``: ``"water"`` (the basis, :data:`SETTINGS`) or ``"bone"`` / ``"lung"``
    (:func:`medium_settings`). ``list_only``: write the manifest and return one line per
    missing task, ``<relative cost> TAB <command>``, for an external scheduler (e.g.
    ``sort -rn | cut -f2 | xargs -P N``) that shares the cores between run sets (the
    command line prints them). Otherwise returns one status line per task (also logged).

    Raises
    ------
    OutputError
        ``raw`` holds a manifest written with other settings.
    """
    raw.mkdir(parents=True, exist_ok=True)
    base = SETTINGS if medium == "water" else medium_settings(medium)
    settings = json.loads(json.dumps(base))
    for p, spec in settings["grid"].items():
        if isinstance(spec, dict):
            spec["histories"] = max(1000, int(spec["histories"] * scale))
        else:
            settings["grid"][p][3] = max(1000, int(spec[3] * scale))
    manifest = raw / "manifest.json"
    if manifest.exists():
        info = json.loads(manifest.read_text())
        old = info["settings"]
        same = {k: v for k, v in old.items() if k not in ("grid", "basis_version")} == {
            k: v for k, v in settings.items() if k not in ("grid", "basis_version")
        } and all(settings["grid"].get(k) == v for k, v in old["grid"].items())
        if not same:
            raise OutputError(f"{manifest} was written with other settings; use a new --raw folder")
        if old != settings:  # grids were added: the earlier runs keep their seeds
            info["settings"] = settings
            manifest.write_text(json.dumps(info, indent=1))
    else:
        version = str(import_ompmc().__version__)
        manifest.write_text(json.dumps({"settings": settings, "ompmc_version": version}, indent=1))
    todo = [t for t in tasks(settings) if not (raw / t["file"]).exists()]
    todo.sort(key=_task_cost, reverse=True)  # longest first
    if list_only:
        lines = []
        for t in todo:
            cmd = f"{sys.executable} -m dosimetry.kernels.build one --raw {raw} --file {t['file']}"
            lines.append(f"{_task_cost(t):.0f}\t{cmd}")
        return lines
    t_start = time.monotonic()
    env = dict(os.environ, OMP_NUM_THREADS="1")

    def launch(t: dict[str, Any]) -> str:
        if time.monotonic() - t_start > deadline_s:
            return f"skipped (deadline) {t['file']}"
        cmd = [sys.executable, "-m", "dosimetry.kernels.build", "one", "--raw", str(raw)]
        cmd += ["--file", t["file"]]
        res = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        if res.returncode != 0:
            return f"FAILED {t['file']}: {res.stderr[-2000:]}"
        return f"done {t['file']} ({time.monotonic() - t_start:.0f} s)"

    status = []
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for msg in pool.map(launch, todo):
            (log.error if msg.startswith("FAILED") else log.info)("%s", msg)
            status.append(msg)
    return status


def run_direct(
    raw: Path, particle: str, energies_mev: list[float], histories: int, seed_base: int = 1000
) -> None:
    """Check runs at energies off the basis grid (same settings and scoring as the basis).

    Writes ``RAWDIR/<particle>_<E>MeV.npz`` like :func:`run_one`, one process per energy
    (the ompmc engine keeps global state); resumable (finished files are skipped). Used to
    measure the interpolation error of the energy basis against direct runs.
    """
    raw.mkdir(parents=True, exist_ok=True)
    if particle not in _CODES:
        raise KernelError(f"particle must be one of {', '.join(_CODES)}, got {particle!r}")
    for i, e in enumerate(energies_mev):
        out = raw / f"{particle}_{e:.6f}MeV.npz"
        if out.exists():
            log.info("exists %s", out.name)
            continue
        task = {
            "particle": particle,
            "energy_mev": float(e),
            "histories": int(histories),
            "seeds": [int(SETTINGS["base_seed"]) % 30000 + 1, int(seed_base) + i],
            "file": out.name,
        }
        t0 = time.monotonic()
        cmd = [
            sys.executable,
            "-c",
            f"from dosimetry.kernels.build import run_one; "
            f"from pathlib import Path; run_one({task!r}, Path({str(out)!r}))",
        ]
        env = dict(os.environ, OMP_NUM_THREADS="1")
        res = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        if res.returncode != 0:
            log.error("FAILED %s: %s", out.name, res.stderr[-2000:])
            continue
        log.info("done %s (%.0f s)", out.name, time.monotonic() - t0)


def direct_vsv_bounds(
    voxel_cm: float, half_n: int, outer_cm: float, n_outer: int, subdivide: int = 1
) -> np.ndarray:
    """Voxel boundaries (cm) along one axis: ``2 half_n + 1`` voxels of ``voxel_cm``
    centred on 0 (each split into ``subdivide`` equal parts), then ``n_outer``
    geometrically growing voxels out to ``outer_cm``."""
    n_in = (2 * half_n + 1) * int(subdivide)
    inner = np.linspace(-(half_n + 0.5) * voxel_cm, (half_n + 0.5) * voxel_cm, n_in + 1)
    tail = np.geomspace(inner[-1], outer_cm, n_outer + 1)[1:]
    return np.concatenate([-tail[::-1], inner, tail])


def run_direct_vsv(
    name: str,
    voxel_mm: float,
    histories: int,
    out_file: Path,
    seeds: tuple[int, int],
    half_n: int = 4,
    n_batches: int = 10,
    subdivide: int = 1,
    medium: str = "water",
    layers: tuple[str, str, str] | None = None,
) -> None:
    """Voxel S-values of ``name`` scored directly in a voxel grid of ``medium`` (check run).

    A grid of ``(2 half_n + 1)^3`` voxels of ``voxel_mm`` sits in a cube of the same
    medium 30 cm across (``medium``: a key of :data:`OMPMC_MEDIA`; water 1.0 g/cm3 by
    default) (geometrically growing voxels outside the grid, so that
    photons scatter back as in an infinite medium). The source is uniform in the central
    voxel (:func:`sample_decay_particles`), one particle per history, transported with the
    basis' physics settings (:data:`SETTINGS`: 521icru, ECUT 0.521 MeV, PCUT 0.01 MeV, no
    splitting) by ``ompmc.calc_forward_phsp``. Writes the S-values (Gy per decay) of the
    grid, their relative statistical uncertainty from the ``n_batches`` batches, and the
    run's parameters to ``out_file`` (``.npz``).

    ``subdivide`` > 1 splits every grid voxel into ``subdivide^3`` geometry voxels (the
    scores are summed back): ompmc's electron steps stop at geometry boundaries, so this
    tests how the result depends on the subdivision. The uncertainty of a summed voxel
    combines its parts as independent.

    ``layers`` = (medium for x < 0, medium of the source plane x = 0, medium for x > 0),
    keys of :data:`OMPMC_MEDIA`: a heterogeneous check (two interfaces at the source
    voxel's faces, e.g. lung | soft tissue | bone) instead of the homogeneous ``medium``;
    S-values are per the mass of each target voxel in its own medium.
    """
    s = SETTINGS
    names = (medium, medium, medium) if layers is None else tuple(layers)
    for m in names:
        if m not in OMPMC_MEDIA:
            raise KernelError(f"medium must be one of {', '.join(OMPMC_MEDIA)}, got {m!r}")
    media = sorted(set(names), key=names.index)
    pegs_list = [OMPMC_MEDIA[m][0] for m in media]
    v_cm = float(voxel_mm) / 10.0
    table = emission_table(name)
    if table["beta_code"] != 2 or table["alpha_energy_per_decay_mev"] > 0:
        raise KernelError(
            f"direct-vsv handles beta-minus nuclides only ({table['nuclide']} emits "
            "positrons, alphas or no beta particles); use dosimetry.mc.patient_dose"
        )
    ompmc = import_ompmc()
    k = int(subdivide)
    b = direct_vsv_bounds(v_cm, half_n, 15.0, 12, k)
    shape = (b.size - 1,) * 3
    centres = 0.5 * (b[1:] + b[:-1])
    layer = np.where(centres < -0.5 * v_cm, 0, np.where(centres > 0.5 * v_cm, 2, 1))
    idx_x = np.array([media.index(names[i]) for i in layer])  # per x voxel
    rho_x = np.array([OMPMC_MEDIA[names[i]][1] for i in layer])
    med_idx = np.broadcast_to((idx_x + 1)[:, None, None], shape).astype(np.int32)
    geo = ompmc.Geometry(
        b,
        b,
        b,
        pegs_list,
        np.asfortranarray(np.broadcast_to(rho_x[:, None, None], shape).astype(float)),
        np.asfortranarray(med_idx),
    )
    pegs_medium, rho = OMPMC_MEDIA[names[1]]
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "src"
        rec, y_t, local_mev = sample_decay_particles(table, int(histories), v_cm, int(seeds[1]))
        _write_phsp_records(base, rec, f"{table['nuclide']} uniform in a {voxel_mm} mm voxel")
        physics = physics_settings(s, (int(seeds[0]), int(seeds[1])), tmp)
        t0 = time.perf_counter()
        edep, unc, summary = ompmc.calc_forward_phsp(
            geo,
            ompmc.PhaseSpaceSource(str(base), order="replay"),
            physics,
            n_histories=int(histories),
            n_batches=int(n_batches),
            output_dose=False,
        )
        wall = time.perf_counter() - t0
    i0 = 12  # outer voxels on each side
    n = 2 * half_n + 1
    sl = slice(i0, i0 + n * k)
    e_fine = np.asarray(edep, dtype=np.float64)[sl, sl, sl]  # MeV per particle, axes x, y, z
    v_fine = (e_fine * np.asarray(unc, dtype=np.float64)[sl, sl, sl]) ** 2
    e_grid = e_fine.reshape(n, k, n, k, n, k).sum(axis=(1, 3, 5))
    sd_grid = np.sqrt(v_fine.reshape(n, k, n, k, n, k).sum(axis=(1, 3, 5)))
    u_grid = np.divide(sd_grid, e_grid, out=np.ones_like(e_grid), where=e_grid > 0)
    rho_grid = rho_x[sl][::k]  # density of each grid voxel along x
    mass_kg = rho_grid[:, None, None] * v_cm**3 * 1e-3
    svalue = e_grid * y_t * MEV_TO_J / mass_kg
    local_gy = local_mev * MEV_TO_J / (rho * v_cm**3 * 1e-3)
    svalue_total = svalue.copy()
    svalue_total[half_n, half_n, half_n] += local_gy
    tmp_out = out_file.with_suffix(".part.npz")
    np.savez_compressed(
        tmp_out,
        svalue_gy_per_decay=svalue_total,
        svalue_transported_gy_per_decay=svalue,
        rel_unc_transported=u_grid,
        local_gy_per_decay=local_gy,
        particles_per_decay=y_t,
        voxel_mm=float(voxel_mm),
        nuclide=table["nuclide"],
        medium=medium if layers is None else ",".join(names),
        pegs_medium=pegs_medium,
        density_g_per_cm3=rho,
        density_x_g_per_cm3=rho_grid,
        histories=int(summary.n_histories),
        n_batches=int(n_batches),
        subdivide=k,
        seeds=np.asarray(seeds),
        energy_fraction_in_phantom=float(summary.energy_fraction),
        wall_s=wall,
        ompmc_version=str(ompmc.__version__),
        settings=json.dumps({k: v for k, v in s.items() if k != "grid"}),
    )
    os.replace(tmp_out, out_file)


#: offsets (i <= j <= k, up to 3) of the direct-run comparison
DIRECT_OFFSETS: tuple[tuple[int, int, int], ...] = tuple(
    (i, j, k) for i in range(4) for j in range(i, 4) for k in range(j, 4) if (i, j, k) != (3, 3, 3)
)


def _equivalents(off: tuple[int, int, int]) -> list[tuple[int, ...]]:
    out = set()
    for perm in itertools.permutations(off):
        for signs in itertools.product((1, -1), repeat=3):
            out.add(tuple(sg * q for sg, q in zip(signs, perm, strict=True)))
    return sorted(out)


def direct_vsv_values(path: Path) -> dict[tuple[int, int, int], tuple[float, float]]:
    """Direct S-value (Gy per decay) and its relative 1 sd per offset of a direct run,
    averaged over the symmetric equivalents of the offset (6-48 voxels).

    The sd combines the batch uncertainties of the equivalent voxels as independent; the
    locally deposited energy (emissions below the cut-offs) has no uncertainty.
    """
    with np.load(path) as d:
        s = np.array(d["svalue_gy_per_decay"])
        st = np.array(d["svalue_transported_gy_per_decay"])
        u = np.array(d["rel_unc_transported"])
    c = s.shape[0] // 2
    out = {}
    for off in DIRECT_OFFSETS:
        eq = _equivalents(off)
        idx = tuple(np.array([c + e[a] for e in eq]) for a in range(3))
        mean = float(s[idx].mean())
        sd = float(np.sqrt(np.sum((st[idx] * u[idx]) ** 2))) / len(eq)
        out[off] = (mean, sd / mean if mean > 0 else float("inf"))
    return out


def compare_direct_vsv(path: Path) -> list[tuple[tuple[int, int, int], float, float, float, float]]:
    """Rows (offset, direct Gy/decay, its relative sd, library / direct - 1, direct / self)
    comparing a direct run with ``vsv_kernel(nuclide, voxel, medium=<the run's medium>)``."""
    from ._vsv import vsv_kernel

    with np.load(path) as d:
        name, voxel = str(d["nuclide"]), float(d["voxel_mm"])
        medium = str(d["medium"]) if "medium" in d.files else "water"
    k = vsv_kernel(name, voxel, medium=medium).array
    c = k.shape[0] // 2
    ref = direct_vsv_values(path)
    self_gy = ref[(0, 0, 0)][0]
    rows = []
    for off in DIRECT_OFFSETS:
        ours = float(k[c + off[0], c + off[1], c + off[2]]) if max(off) <= c else 0.0
        val, sd = ref[off]
        rows.append((off, val, sd, ours / val - 1.0, val / self_gy))
    return rows


def direct_vsv_table(files: list[Path], floor: float = 1e-3) -> str:
    """Markdown table of :func:`compare_direct_vsv` for the runs ``files`` (docs/kernels.md):
    library / direct - 1 and the direct run's 1 sd in % per offset; ``*`` marks offsets
    whose direct value is below ``floor`` times the self value."""
    key = [(0, 0, 0), (0, 0, 1), (0, 1, 1), (1, 1, 1), (0, 0, 2), (0, 1, 2), (1, 1, 2), (0, 0, 3)]

    def name(o: tuple[int, int, int]) -> str:
        return "(" + ",".join(map(str, o)) + ")"

    lines = [
        "| nuclide | medium | voxel (mm) | geometry voxels per voxel | histories | "
        + " | ".join(map(name, key))
        + " | largest tested |",
        "|" + "---|" * (len(key) + 6),
    ]
    runs = []
    for f in files:
        with np.load(f) as d:
            sub = int(d["subdivide"]) if "subdivide" in d.files else 1
            med = str(d["medium"]) if "medium" in d.files else "water"
            runs.append((str(d["nuclide"]), med, float(d["voxel_mm"]), sub, int(d["histories"]), f))
    for nuc, med, voxel, sub, hist, f in sorted(runs):
        rows = {r[0]: r for r in compare_direct_vsv(f)}
        cells = []
        for o in key:
            _, _, sd, dev, rel = rows[o]
            star = "" if (o == (0, 0, 0) or rel >= floor) else "*"
            cells.append(f"{100 * dev:+.1f} ± {100 * sd:.2f}{star}")
        tested = [r for r in rows.values() if r[0] == (0, 0, 0) or r[4] >= floor]
        worst = max(tested, key=lambda r: abs(r[3]))
        lines.append(
            f"| {nuc} | {med} | {voxel:.2f} | {sub**3} | {hist / 1e6:g} M | "
            + " | ".join(cells)
            + f" | {100 * worst[3]:+.1f} % at {name(worst[0])} |"
        )
    return "\n".join(lines)


def combine_direct_runs(files: list[Path]) -> dict[str, Any]:
    """Mean S-values of direct runs of one case split over seeds (equal histories), with
    the standard deviation of the mean (batch uncertainties combined as independent)."""
    svals, sds = [], []
    info: dict[str, Any] = {}
    for f in files:
        with np.load(f) as d:
            svals.append(np.array(d["svalue_gy_per_decay"]))
            sds.append(
                np.array(d["svalue_transported_gy_per_decay"]) * np.array(d["rel_unc_transported"])
            )
            info = {
                "nuclide": str(d["nuclide"]),
                "voxel_mm": float(d["voxel_mm"]),
                "medium": str(d["medium"]),
                "density_x": np.array(d["density_x_g_per_cm3"]),
                "histories": info.get("histories", 0) + int(d["histories"]),
            }
    if not svals:
        raise KernelError("combine_direct_runs: no files given")
    info["svalue"] = np.mean(svals, axis=0)
    info["sd"] = np.sqrt(np.sum(np.square(sds), axis=0)) / len(files)
    info["parts"] = len(files)
    return info


def _main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m dosimetry.kernels.build")
    sub = ap.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("run", help="run the Monte Carlo tasks (resumable)")
    a.add_argument("--raw", type=Path, required=True)
    a.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    a.add_argument("--deadline-s", type=float, default=float("inf"))
    a.add_argument("--scale", type=float, default=1.0, help="history-count factor (tests)")
    a.add_argument("--medium", default="water", choices=("water", "bone", "lung"))
    a.add_argument("--list", action="store_true", help="print the missing tasks, run nothing")
    b = sub.add_parser("one", help="run one task (internal)")
    b.add_argument("--raw", type=Path, required=True)
    b.add_argument("--file", required=True)
    d = sub.add_parser("direct", help="check runs at energies off the basis grid")
    d.add_argument("--raw", type=Path, required=True)
    d.add_argument("--particle", required=True)
    d.add_argument("--energies", type=float, nargs="+", required=True, help="MeV")
    d.add_argument("--histories", type=int, required=True)
    d.add_argument("--seed-base", type=int, default=1000)
    v = sub.add_parser("direct-vsv", help="voxel S-values scored directly in a voxel grid")
    v.add_argument("--nuclide", required=True)
    v.add_argument("--voxel-mm", type=float, required=True)
    v.add_argument("--histories", type=int, required=True)
    v.add_argument("--seeds", type=int, nargs=2, required=True)
    v.add_argument("--half-n", type=int, default=4, help="grid of 2 half_n + 1 voxels per axis")
    v.add_argument("--subdivide", type=int, default=1, help="geometry voxels per grid edge")
    v.add_argument("--out", type=Path, required=True)
    v.add_argument(
        "--medium",
        default="water",
        type=lambda m: m.replace("_", " "),
        choices=tuple(OMPMC_MEDIA),
        help="water, soft_tissue, bone or lung",
    )
    v.add_argument(
        "--layers",
        default=None,
        help="heterogeneous check: media for x<0, the source plane, x>0 (comma-separated)",
    )
    t = sub.add_parser("direct-vsv-table", help="compare direct runs with vsv_kernel (markdown)")
    t.add_argument("files", type=Path, nargs="+")
    c = sub.add_parser("pack", help="convert raw runs to the shipped basis")
    c.add_argument("--raw", type=Path, required=True)
    c.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.cmd == "run":
        lines = run_all(args.raw, args.workers, args.deadline_s, args.scale, args.medium, args.list)
        if args.list:
            print("\n".join(lines))
    elif args.cmd == "direct":
        run_direct(args.raw, args.particle, args.energies, args.histories, args.seed_base)
    elif args.cmd == "direct-vsv":
        run_direct_vsv(
            args.nuclide,
            args.voxel_mm,
            args.histories,
            args.out,
            tuple(args.seeds),
            args.half_n,
            subdivide=args.subdivide,
            medium=args.medium,
            layers=None
            if args.layers is None
            else tuple(m.replace("_", " ") for m in args.layers.split(",")),
        )
    elif args.cmd == "direct-vsv-table":
        print(direct_vsv_table(list(args.files)))
    elif args.cmd == "one":
        settings = json.loads((args.raw / "manifest.json").read_text())["settings"]
        task = next(t for t in tasks(settings) if t["file"] == args.file)
        run_one(task, args.raw / args.file, settings)
    else:
        from ._pack import pack

        pack(args.raw, args.out)


def _cli(argv: list[str] | None = None) -> None:
    """``_main`` with project errors as a one-line message and exit code 2."""
    from ..errors import DosimetryError

    try:
        _main(argv)
    except DosimetryError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    _cli()
