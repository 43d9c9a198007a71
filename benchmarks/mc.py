"""Benchmark of the patient Monte Carlo (``dosimetry.mc.patient_dose``; not a test).

A whole-body Lu-177 SPECT-like TIA on a 4.42 mm grid (default 128 x 128 x 250: the
anthropomorphic phantom of ``phantoms.make_torso`` with its head and neck, air around it;
CT densities from the phantom), TIA per organ from a PSMA-like kinetics table below,
blurred with a 10 mm FWHM Gaussian as a SPECT reconstruction would leave it. Measures

1. histories per second (fixed histories, wall time of the whole call: process start-up,
   sampling, transport, combination);
2. time to a 1 % relative standard uncertainty of every organ and lesion mean
   (``target_vois``: kidneys, liver, spleen, parotids, submandibular glands, red marrow,
   the four lesions);
3. time to a 2 % mean voxel uncertainty in the kidneys (``target_kind="voxel"``).

Each is repeated ``--repeats`` times with different seeds; medians are printed. Besides
the wall time, the CPU time the worker processes spent (sampling + transport,
``provenance["worker_cpu_s"]``) gives a per-core rate that a loaded machine does not
distort, and from it the transport time on two otherwise idle cores (worker CPU time / 2;
process start-up and the main process's combination not included). Run::

    python benchmarks/mc.py [--repeats 3] [--workers 2] [--shape 250 128 128]
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import statistics
import time
from typing import Any

import numpy as np
from scipy import ndimage

#: TIA per voxel (relative, "Bq s") of each region: a PSMA-like pattern (kidneys, salivary
#: glands and lesions high, liver and spleen moderate, background low). Design values of
#: the benchmark, not patient kinetics.
UPTAKE: dict[str, float] = {
    "body": 1.0,
    "soft_tissue": 1.0,
    "liver": 8.0,
    "spleen": 6.0,
    "kidney_right": 40.0,
    "kidney_left": 40.0,
    "parotid_right": 30.0,
    "parotid_left": 30.0,
    "submandibular_right": 30.0,
    "submandibular_left": 30.0,
    "lacrimal_right": 20.0,
    "lacrimal_left": 20.0,
    "red_marrow": 1.5,
    "vertebral_column": 1.5,
    "lung_right": 0.5,
    "lung_left": 0.5,
    "lesion_1": 80.0,
    "lesion_2": 80.0,
    "lesion_3": 80.0,
    "lesion_4": 80.0,
}
TARGETS = (
    "kidney_right",
    "kidney_left",
    "liver",
    "spleen",
    "parotid_right",
    "parotid_left",
    "submandibular_right",
    "submandibular_left",
    "red_marrow",
    "lesion_1",
    "lesion_2",
    "lesion_3",
    "lesion_4",
)


def whole_body(shape: tuple[int, int, int], voxel_mm: float = 4.42) -> dict[str, Any]:
    """TIA (Bq s, total 1e12 decays), density and target masks on a ``shape`` grid."""
    import dosimetry as ds
    from phantoms import make_torso

    fov = tuple(n * voxel_mm for n in shape)
    ph = make_torso(voxel_mm=voxel_mm, fov_mm=fov)  # type: ignore[arg-type]
    labels = ph.labels.array
    tia = np.zeros(labels.shape)
    for i, name in enumerate(ph.region_names):
        if i and name in UPTAKE:
            tia[labels == i] = UPTAKE[name]
    sigma = 10.0 / 2.3548 / voxel_mm
    tia = ndimage.gaussian_filter(tia, sigma) * (ph.density.array > 0.05)
    tia *= 1e12 / tia.sum()
    vol = ph.labels.with_array(tia, unit="Bq s")
    masks = {n: ph.masks[n] for n in TARGETS if n in ph.masks and ph.masks[n].array.any()}
    kidneys = ph.masks["kidney_right"].array | ph.masks["kidney_left"].array
    return {
        "tia": vol,
        "density": ph.density,
        "masks": masks,
        "kidneys": {"kidneys": ph.labels.with_array(kidneys, unit="1")},
        "ds": ds,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--shape", type=int, nargs=3, default=(250, 128, 128))
    ap.add_argument("--histories", type=int, default=2_000_000, help="for the rate")
    ap.add_argument("--skip-voxel", action="store_true", help="skip the kidney voxel target")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    from dosimetry.mc import patient_dose

    t0 = time.perf_counter()
    case = whole_body(tuple(args.shape))
    print(f"phantom {tuple(args.shape)} built in {time.perf_counter() - t0:.1f} s")
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.1f} at start"
    )
    common = {"density": case["density"], "workers": args.workers}
    runs: dict[str, list[tuple[float, int, float]]] = {"rate": [], "mean": [], "voxel": []}
    u_final: dict[str, float] = {}
    for rep in range(args.repeats):
        r = patient_dose(case["tia"], "Lu-177", histories=args.histories, seed=100 + rep, **common)
        runs["rate"].append((r.elapsed_s, r.histories, r.provenance["worker_cpu_s"]))
        print(f"[{rep}] fixed histories: {_line(runs['rate'][-1])}")
        r = patient_dose(
            case["tia"],
            "Lu-177",
            target_vois=case["masks"],
            target_uncertainty=0.01,
            seed=200 + rep,
            **common,
        )
        runs["mean"].append((r.elapsed_s, r.histories, r.provenance["worker_cpu_s"]))
        u_final = dict(r.voi_relative_uncertainty)
        print(
            f"[{rep}] 1 % on {len(case['masks'])} organ/lesion means "
            f"({r.provenance['stopping_rule']['stopped_because']}): {_line(runs['mean'][-1])}"
        )
        if not args.skip_voxel:
            r = patient_dose(
                case["tia"],
                "Lu-177",
                target_vois=case["kidneys"],
                target_uncertainty=0.02,
                target_kind="voxel",
                seed=300 + rep,
                **common,
            )
            runs["voxel"].append((r.elapsed_s, r.histories, r.provenance["worker_cpu_s"]))
            print(f"[{rep}] 2 % mean voxel uncertainty in the kidneys: {_line(runs['voxel'][-1])}")
    med = statistics.median
    print()
    print(
        "| quantity (Lu-177, medians) | wall time | histories | histories/s | per worker CPU s | 2 idle cores (transport) |"
    )
    print("|---|---|---|---|---|---|")
    names = {
        "rate": f"fixed {args.histories:.3g} histories",
        "mean": "1 % on organ and lesion means",
        "voxel": "2 % mean voxel uncertainty, kidneys",
    }
    for key, rows in runs.items():
        if not rows:
            continue
        wall = med(x[0] for x in rows)
        n = med(x[1] for x in rows)
        cpu = med(x[2] for x in rows)
        print(
            f"| {names[key]} | {wall:.0f} s | {n:.3g} | {n / wall:.3g} | {n / cpu:.3g} | "
            f"{cpu / 2:.0f} s |"
        )
    print()
    print(
        "last run's VOI uncertainties: "
        + ", ".join(f"{k} {100 * v:.2f} %" for k, v in u_final.items())
    )


def _line(row: tuple[float, int, float]) -> str:
    wall, n, cpu = row
    return (
        f"{wall:.1f} s, {n:.3g} histories, {n / wall:.3g} histories/s, "
        f"{n / cpu:.3g} per worker CPU second"
    )


if __name__ == "__main__":
    main()
