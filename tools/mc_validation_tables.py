"""Validation tables of the patient Monte Carlo for docs/dose.md (markdown to stdout).

    python tools/mc_validation_tables.py homogeneous   # vs the kernel library and Lanconelli 2012
    python tools/mc_validation_tables.py layers        # vs the builder's direct layered runs

``homogeneous``: one source voxel (4.42 mm) in 21^3 voxels of soft tissue, Lu-177 (all
emissions, and without conversion/Auger electrons for the database) and Y-90, 1e6 / 2e5
histories, compared offset by offset (symmetric equivalents averaged) with
``dosimetry.vsv_kernel`` and ``dosimetry.kernels.lanconelli_kernel``. ``layers``: the
geometry of ``tests/kernels/data/direct_layers`` through ``patient_dose`` (range rejection
on and off). Seeds fixed; run times depend on the machine.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

import numpy as np

import dosimetry as ds
from dosimetry.kernels import lanconelli_kernel
from dosimetry.kernels.build import combine_direct_runs
from dosimetry.mc import patient_dose

ROOT = Path(__file__).resolve().parents[1]
OFFSETS = ((0, 0, 0), (0, 0, 1), (0, 1, 1), (1, 1, 1), (0, 0, 2))


def _equivalents(off):
    out = set()
    for perm in itertools.permutations(off):
        for signs in itertools.product((1, -1), repeat=3):
            out.add(tuple(s * q for s, q in zip(signs, perm, strict=True)))
    return sorted(out)


def homogeneous() -> str:
    v, n = 4.42, 21
    c = n // 2
    tia = np.zeros((n, n, n))
    tia[c, c, c] = 1.0
    vol = ds.Volume.from_spacing(tia, (v, v, v), unit="Bq s")
    head = "| nuclide | emissions | reference | histories | " + " | ".join(
        "(" + ",".join(map(str, o)) + ")" for o in OFFSETS
    )
    lines = [head + " |", "|" + "---|" * (len(OFFSETS) + 4)]
    for nuc, hist, exclude in (
        ("Lu-177", 1_000_000, ()),
        ("Lu-177", 1_000_000, ("ce_auger",)),
        ("Y-90", 200_000, ()),
    ):
        r = patient_dose(vol, nuc, histories=hist, batches=10, seed=2, exclude=exclude)
        mc = {}
        for off in OFFSETS:
            eq = _equivalents(off)
            idx = tuple(np.array([c + e[a] for e in eq]) for a in range(3))
            mc[off] = (
                float(r.dose.array[idx].mean()),
                float(np.sqrt(np.sum(r.uncertainty.array[idx] ** 2))) / len(eq),
            )
        refs = []
        if not exclude:
            refs.append(("library", ds.vsv_kernel(nuc, v, medium="soft tissue").array))
        if exclude or nuc == "Y-90":
            refs.append(("Lanconelli 2012", lanconelli_kernel(nuc, v).array))
        for name, ref in refs:
            k = ref.shape[0] // 2
            cells = []
            for off in OFFSETS:
                val, sd = mc[off]
                rv = ref[k + off[0], k + off[1], k + off[2]]
                star = "" if off == (0, 0, 0) or rv >= 1e-3 * ref[k, k, k] else "*"
                cells.append(f"{100 * (val / rv - 1):+.1f} ± {100 * sd / val:.1f}{star}")
            em = "all" if not exclude else "no CE/Auger"
            lines.append(
                f"| {nuc} | {em} | {name} | {hist / 1e6:g} M | " + " | ".join(cells) + " |"
            )
    return "\n".join(lines)


def layers() -> str:
    data = ROOT / "tests" / "kernels" / "data" / "direct_layers"
    keys = {"self": (0, 0, 0), "lung face": (-1, 0, 0), "bone face": (1, 0, 0)}
    lines = [
        "| nuclide | voxel (mm) | range rejection | histories | "
        + " | ".join(keys)
        + " | in-plane face |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for nuc, voxel, n, hist in (("Lu-177", "2.21", 41, 1_000_000), ("Y-90", "4.8", 25, 150_000)):
        ref = combine_direct_runs(sorted(data.glob(f"{nuc}_{voxel}mm_layers_s*.npz")))
        v = float(voxel)
        c = n // 2
        x = np.arange(n) - c
        rho = np.where(x < 0, 0.26, np.where(x > 0, 1.85, 1.04))[:, None, None] * np.ones((n,) * 3)
        tia = np.zeros((n,) * 3)
        tia[c, c, c] = 1.0
        rc = ref["svalue"].shape[0] // 2

        def values(s, sd, cc):
            out = {
                k: (s[cc + o[0], cc + o[1], cc + o[2]], sd[cc + o[0], cc + o[1], cc + o[2]])
                for k, o in keys.items()
            }
            plane = [(cc, cc + 1, cc), (cc, cc - 1, cc), (cc, cc, cc + 1), (cc, cc, cc - 1)]
            out["in-plane"] = (
                float(np.mean([s[i] for i in plane])),
                float(np.sqrt(np.sum([sd[i] ** 2 for i in plane]))) / 4,
            )
            return out

        theirs = values(ref["svalue"], ref["sd"], rc)
        for rr in (True, False):
            r = patient_dose(
                ds.Volume.from_spacing(tia, (v,) * 3, unit="Bq s"),
                nuc,
                density=ds.Volume.from_spacing(rho, (v,) * 3, unit="g/mL"),
                histories=hist,
                batches=10,
                seed=5,
                range_rejection=rr,
            )
            ours = values(r.dose.array, r.uncertainty.array, c)
            cells = [
                f"{100 * (ours[k][0] / theirs[k][0] - 1):+.1f} ± "
                f"{100 * np.hypot(ours[k][1] / ours[k][0], theirs[k][1] / theirs[k][0]):.1f}"
                for k in ours
            ]
            lines.append(
                f"| {nuc} | {voxel} | {'on' if rr else 'off'} | {hist / 1e6:g} M | "
                + " | ".join(cells)
                + " |"
            )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("table", choices=("homogeneous", "layers"))
    args = ap.parse_args()
    print(homogeneous() if args.table == "homogeneous" else layers())
    sys.stdout.flush()


if __name__ == "__main__":
    main()
