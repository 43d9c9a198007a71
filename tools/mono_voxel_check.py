"""Monoenergetic electrons uniform in one water voxel: VSVs scored by ompmc in a voxel
grid (optionally split into finer geometry voxels) against the library's dose-point
kernel at that energy integrated over the same voxels.

This isolates the DPK -> VSV route (basis run at one energy, shell conversion, geometric
factors) from spectrum folding and energy interpolation; used to trace the Lu-177 tail
excess of docs/kernels.md to the geometry dependence of ompmc's electron transport.
Needs the [mc] extra (ompmc); one ompmc calculation per process.

    python tools/mono_voxel_check.py run --energy 0.4941099995671707 --voxel-mm 1.0 \\
        --subdivide 6 --histories 400000 --seed 1 --out e494_sub6_s1.npz
    python tools/mono_voxel_check.py compare e494_sub6_s*.npz
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
from pathlib import Path

import numpy as np

from dosimetry.kernels import build
from dosimetry.kernels._dpk import csda_range_cm, cumulative_energy_mev
from dosimetry.kernels._integrate import integrate_vsv
from dosimetry.kernels._vsv import _shape_key, geometry_table, radial_grid

HALF_N = 4


def run(energy: float, voxel_mm: float, subdivide: int, n: int, seed: int, out: Path) -> None:
    import ompmc

    v_cm = voxel_mm / 10.0
    b = build.direct_vsv_bounds(v_cm, HALF_N, 15.0, 12, subdivide)
    shape = (b.size - 1,) * 3
    geo = ompmc.Geometry(
        b,
        b,
        b,
        [build.SETTINGS["medium"]],
        np.asfortranarray(np.ones(shape)),
        np.asfortranarray(np.ones(shape, dtype=np.int32)),
    )
    rng = np.random.default_rng(seed)
    rec = np.zeros(n, build._PHSP_DTYPE)
    w = rng.uniform(-1.0, 1.0, n)
    phi = rng.uniform(0.0, 2.0 * np.pi, n)
    sin_t = np.sqrt(1.0 - w * w)
    rec["type"] = np.where(w < 0, -2, 2)  # electrons; sign of the type = sign of w
    rec["e"] = -energy
    for ax in ("x", "y", "z"):
        rec[ax] = rng.uniform(-v_cm / 2, v_cm / 2, n)
    rec["u"] = sin_t * np.cos(phi)
    rec["v"] = sin_t * np.sin(phi)
    rec["wt"] = 1.0
    s = build.SETTINGS
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "src"
        build._write_phsp_records(base, rec, f"{energy} MeV electrons in a {voxel_mm} mm voxel")
        physics = build.physics_settings(s, (int(s["base_seed"]) % 30000 + 1, seed), tmp)
        edep, _, _ = ompmc.calc_forward_phsp(
            geo,
            ompmc.PhaseSpaceSource(str(base), order="replay"),
            physics,
            n_histories=n,
            n_batches=10,
            output_dose=False,
        )
    k = subdivide
    m = 2 * HALF_N + 1
    sl = slice(12, 12 + m * k)
    e = np.asarray(edep, dtype=float)[sl, sl, sl].reshape(m, k, m, k, m, k).sum(axis=(1, 3, 5))
    np.savez_compressed(
        out, edep_mev=e, energy_mev=energy, voxel_mm=voxel_mm, subdivide=k, histories=n, seed=seed
    )


def _symmetric_mean(a: np.ndarray, c: int, off: tuple[int, int, int]) -> float:
    idx = {
        tuple(c + sg * q for sg, q in zip(signs, perm, strict=True))
        for perm in set(itertools.permutations(off))
        for signs in itertools.product((1, -1), repeat=3)
    }
    return float(np.mean([a[i] for i in idx]))


def compare(files: list[Path]) -> None:
    with np.load(files[0]) as d0:
        energy, v, k = float(d0["energy_mev"]), float(d0["voxel_mm"]), int(d0["subdivide"])
    direct = np.mean([np.load(f)["edep_mev"] for f in files], axis=0)
    vm = (v, v, v)
    r_mm = radial_grid(np.sqrt(3.0) * (HALF_N + 1)) * v
    cum = cumulative_energy_mev("electron", energy, r_mm * 0.1)
    fine = float(csda_range_cm(energy)) * 10.0 + np.sqrt(3.0) * v
    lib = integrate_vsv(r_mm, cum, vm, (HALF_N,) * 3, 1.0, geometry_table(_shape_key(vm)), fine)
    c = direct.shape[0] // 2
    print(f"{energy:.4g} MeV electrons, {v} mm voxels, geometry split {k}^3, {len(files)} runs")
    for off in ((0, 0, 0), (0, 0, 1), (0, 1, 1), (1, 1, 1), (0, 0, 2), (0, 1, 2)):
        a = _symmetric_mean(direct, c, off)
        b = _symmetric_mean(lib, HALF_N, off)
        print(f"  {off}: direct {a:.4e} MeV, library / direct - 1 = {100 * (b / a - 1):+.2f} %")


def main() -> None:
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--energy", type=float, required=True)
    r.add_argument("--voxel-mm", type=float, required=True)
    r.add_argument("--subdivide", type=int, default=1)
    r.add_argument("--histories", type=int, required=True)
    r.add_argument("--seed", type=int, required=True)
    r.add_argument("--out", type=Path, required=True)
    c = sub.add_parser("compare")
    c.add_argument("files", type=Path, nargs="+")
    a = ap.parse_args()
    if a.cmd == "run":
        run(a.energy, a.voxel_mm, a.subdivide, a.histories, a.seed, a.out)
    else:
        compare(a.files)


if __name__ == "__main__":
    main()
