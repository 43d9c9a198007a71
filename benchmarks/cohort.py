"""Benchmark: a cohort of phantom studies, serially in one process and on the embedded cluster.

``--n`` phantom studies (default 24; different seeds): half diagnostic PET/CT studies planned
for 7.4 GBq Lu-177-PSMA-617 (workflow ``plan``), half post-therapy Lu-177 SPECT/CT series
with 4 time points (24, 48, 96, 168 h; workflow ``spect`` with the phantom's calibration
factor). Sizes are reduced from the phantom's defaults so that the run fits a 2-core machine
in reasonable time (stated in the output): torso without head and neck on a 4 mm truth grid,
PET 64 x 64 at 6 mm, SPECT 80 x 80 at 4.8 mm. Every study does what the single-study command
does: the workflow (default dose method ``auto``), then the output set with the reports and
their figures.

In the same run, with the same manifest:

1. serial, 1 thread: one process that runs the studies one after the other with Numba,
   OpenMP/BLAS and ITK at 1 thread and the process pinned to one core (so the FFT pool has
   one thread too);
2. serial, default threads: the same in a process with the default thread counts;
3. cohort: :func:`dosimetry.cohort.run` on the embedded ``LocalCluster`` (its own sizing);
4. scheduler overhead: ``--noop`` empty tasks on a LocalCluster of the same size, per task.

Reported: throughput (studies per minute) and ratios, peak memory per process (serial) and
per worker (cohort: the largest peak resident memory a worker reported), the per-task
scheduler overhead against the mean study time, and the expected time on N machines.

Run: ``python benchmarks/cohort.py [--n 24] [--workdir DIR] [--keep]``
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

THREAD_VARIABLES = (
    "NUMBA_NUM_THREADS",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS",
)
CALIBRATION_CPS_PER_MBQ = 9.6  # the phantom's SPECT sensitivity (write_lu177_spect_study)


def write_studies(root: Path, n: int) -> Path:
    """Phantom studies and the cohort manifest; returns the manifest."""
    import phantoms

    torso = phantoms.make_torso(voxel_mm=4.0, head_and_neck=False)
    rows = ["id,workflow,study,activity,calibration"]
    for i in range(n):
        if i % 2 == 0:
            folder = root / f"pet{i:02d}"
            phantoms.write_pet_ct_study(
                folder, torso, seed=i, pet_matrix=(64, 64), pet_voxel_mm=(4.0, 6.0, 6.0)
            )
            rows.append(f"pet{i:02d},plan,{folder.name},7.4 GBq,")
        else:
            folder = root / f"spect{i:02d}"
            phantoms.write_lu177_spect_study(
                folder,
                phantom=torso,
                seed=i,
                spect_matrix=(80, 80),
                calibration_cps_per_mbq=CALIBRATION_CPS_PER_MBQ,
            )
            rows.append(f"spect{i:02d},spect,{folder.name},,{CALIBRATION_CPS_PER_MBQ} cps/MBq")
    manifest = root / "cohort.csv"
    manifest.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return manifest


def serial(manifest: Path, out: Path) -> dict[str, float]:
    """Run every manifest row in this process, one after the other (as the single-study
    command does: workflow, then the output set with reports and figures)."""
    import importlib
    import resource

    from dosimetry.workflows.cohort import _workflow_kwargs, read_cohort_manifest
    from dosimetry.workflows.options import WORKFLOWS
    from dosimetry.workflows.save import save

    times = []
    t0 = time.perf_counter()
    for row in read_cohort_manifest(manifest):
        t = time.perf_counter()
        module, name = WORKFLOWS[row.workflow]
        fn = getattr(importlib.import_module(module), name)
        kwargs = _workflow_kwargs(row.workflow, row.options, "benchmark")
        result = fn(row.study[0], **kwargs)
        save(result, out / row.id, input_dirs=[row.study[0]])
        times.append(time.perf_counter() - t)
    wall = time.perf_counter() - t0
    return {
        "wall_s": wall,
        "n": len(times),
        "mean_study_s": statistics.fmean(times),
        "first_study_s": times[0],
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def serial_in_child(manifest: Path, out: Path, one_thread: bool) -> dict[str, float]:
    env = dict(os.environ)
    for v in THREAD_VARIABLES:
        env.pop(v, None)
    if one_thread:
        env.update(dict.fromkeys(THREAD_VARIABLES, "1"))
    cmd = [sys.executable, __file__, "--serial", str(manifest), str(out)]
    if one_thread:
        cmd.append("--pin")
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"serial run failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def cohort_run(manifest: Path, out: Path) -> dict[str, float]:
    import dosimetry.cohort

    t0 = time.perf_counter()
    result = dosimetry.cohort.run(manifest, out, progress=False)
    wall = time.perf_counter() - t0
    rows = result.rows()
    per_study = {}
    for r in rows:
        per_study[r["id"]] = (float(r["elapsed_s"] or 0), float(r["worker_peak_rss_mb"] or 0))
    return {
        "wall_s": wall,
        "n": len(result.outcomes),
        "ok": result.count("ok"),
        "mean_study_s": statistics.fmean(v[0] for v in per_study.values()),
        "peak_rss_mb_per_worker": max(v[1] for v in per_study.values()),
        "cluster": result.cluster,
    }


def noop_overhead(n_workers: int, n_tasks: int) -> float:
    """Seconds of scheduling per task: empty tasks on a LocalCluster of the same size."""
    from distributed import Client, LocalCluster, wait

    with (
        LocalCluster(
            n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as cluster,
        Client(cluster) as client,
    ):
        wait([client.submit(int, i, pure=False) for i in range(2 * n_workers)])  # warm up
        t0 = time.perf_counter()
        wait([client.submit(int, i, pure=False) for i in range(n_tasks)])
        wall = time.perf_counter() - t0
    return wall * n_workers / n_tasks  # worker-seconds each task costs the cluster


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=24, help="number of studies (default 24)")
    p.add_argument("--workdir", type=Path, help="folder for studies and outputs (default: temp)")
    p.add_argument("--keep", action="store_true", help="keep the studies and outputs")
    p.add_argument("--noop", type=int, default=400, help="empty tasks for the overhead")
    p.add_argument("--serial", nargs=2, type=Path, help=argparse.SUPPRESS)
    p.add_argument("--pin", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()

    if args.serial:  # the child process of a serial run
        if args.pin and hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
        print(json.dumps(serial(*args.serial)))
        return

    root = args.workdir or Path(tempfile.mkdtemp(prefix="cohort-bench-"))
    root.mkdir(parents=True, exist_ok=True)
    print(f"# cohort benchmark: {args.n} studies in {root}")
    print(f"# {platform.platform()}, {os.cpu_count()} CPUs, load average {os.getloadavg()}")
    t = time.perf_counter()
    manifest = write_studies(root / "studies", args.n)
    print(f"phantom studies written in {time.perf_counter() - t:.0f} s (not counted)")

    runs = {}
    runs["serial, 1 thread"] = serial_in_child(manifest, root / "serial1", one_thread=True)
    runs["serial, default threads"] = serial_in_child(manifest, root / "serialN", one_thread=False)
    runs["cohort (embedded cluster)"] = cohort_run(manifest, root / "cohort")
    print(f"# cohort ran on: {runs['cohort (embedded cluster)']['cluster']}")

    base1 = runs["serial, 1 thread"]
    baseN = runs["serial, default threads"]
    print(
        "\n| run | wall (s) | studies/min | vs 1-thread serial | vs default serial | mean study (s) "
        "| peak memory (MB) |"
    )
    print("|---|---|---|---|---|---|---|")
    for name, r in runs.items():
        rate = 60.0 * r["n"] / r["wall_s"]
        mem = r.get("peak_rss_mb", r.get("peak_rss_mb_per_worker", float("nan")))
        print(
            f"| {name} | {r['wall_s']:.0f} | {rate:.2f} | {base1['wall_s'] / r['wall_s']:.2f}x | "
            f"{baseN['wall_s'] / r['wall_s']:.2f}x | {r['mean_study_s']:.1f} | {mem:.0f} |"
        )
    coh = runs["cohort (embedded cluster)"]
    n_workers = int(coh["cluster"].split("worker process")[0].split()[-1])
    overhead_s = noop_overhead(n_workers, args.noop)
    share = overhead_s / coh["mean_study_s"]
    print(
        f"\nscheduler overhead: {1e3 * overhead_s:.1f} ms per task ({args.noop} empty tasks on "
        f"{n_workers} workers) = {100 * share:.3f} % of a study ({coh['mean_study_s']:.1f} s)"
    )
    per_machine = 60.0 * coh["n"] / coh["wall_s"]
    print("expected throughput on N such machines (per-study cost x N, overhead included):")
    for n in (1, 4, 16, 64):
        print(f"  N={n:3d}: {per_machine * n / (1 + share):.1f} studies/min")
    ok = base1["wall_s"] / coh["wall_s"] >= 1.8 and coh["wall_s"] <= baseN["wall_s"]
    print(f"goal (>= 1.8x the 1-thread serial, never below the default serial): {ok}")
    if not args.keep and args.workdir is None:
        shutil.rmtree(root, ignore_errors=True)
    if not args.keep:
        return
    with (root / "cohort" / "cohort_summary.csv").open(encoding="utf-8") as f:
        print(f"summary rows: {sum(1 for _ in csv.DictReader(f))}")


if __name__ == "__main__":
    main()
