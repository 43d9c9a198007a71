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
4. two plain processes (no Dask), 1 thread each, pinned to their own cores, the studies
   dealt out alternately largest first: what the machine allows without a scheduler;
5. scheduler overhead: ``--noop`` empty tasks on a LocalCluster of the same size, per task;
6. worker overhead (``--worker-overhead K``): the same studies in a plain process, in a
   one-thread Dask worker with Dask's default settings and in one set up as the embedded
   cluster sets up its workers (:data:`dosimetry.workflows.cohort.QUIET_WORKER_CONFIG`,
   no ``MALLOC_TRIM_THRESHOLD_``), K interleaved repetitions.

Reported: throughput (studies per minute) and ratios, peak memory per process (serial) and
per worker (cohort: the largest peak resident memory a worker reported), the per-task
scheduler overhead against the mean study time, and the expected time on N machines.

Run: ``python benchmarks/cohort.py [--n 24] [--repeat 3] [--workdir DIR] [--keep]
[--worker-overhead 5]``
"""

from __future__ import annotations

import argparse
import contextlib
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
from collections.abc import Callable
from pathlib import Path
from typing import Any

THREAD_VARIABLES = (
    "NUMBA_NUM_THREADS",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS",
)
CALIBRATION_CPS_PER_MBQ = 9.6  # the phantom's SPECT sensitivity (write_lu177_spect_study)


def _usable_cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


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


def serial(manifest: Path, out: Path, only: list[str] | None = None) -> dict[str, Any]:
    """Run every manifest row (or the rows ``only`` names, in that order) in this process,
    one after the other (as the single-study command does: workflow, then the output set
    with reports and figures)."""
    import importlib
    import resource

    from dosimetry.workflows.cohort import _workflow_kwargs, read_cohort_manifest
    from dosimetry.workflows.options import WORKFLOWS
    from dosimetry.workflows.save import save

    rows = read_cohort_manifest(manifest)
    if only is not None:
        by_id = {r.id: r for r in rows}
        rows = [by_id[i] for i in only]
    times = []
    t0 = time.perf_counter()
    for row in rows:
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
        "times_s": times,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def worker_overhead(manifest: Path, root: Path, repeats: int) -> dict[str, list[float]]:
    """The same studies in a plain process, in a one-thread Dask worker with Dask's default
    settings and in one set up as the embedded cluster sets up its workers (quiet event
    loop, no ``MALLOC_TRIM_THRESHOLD_``), interleaved, ``repeats`` times; seconds for the
    studies after a warm-up study, as measured inside the process."""
    import dask
    from distributed import Client, LocalCluster

    from dosimetry.workflows import cohort

    ids = [r.id for r in cohort.read_cohort_manifest(manifest)]
    pets = [i for i in ids if i.startswith("pet")]
    spects = [i for i in ids if i.startswith("spect")]
    only = [pets[0], *spects[:1], *pets[1:3]]  # a warm-up study, then the measured ones
    one = dict.fromkeys(THREAD_VARIABLES, "1")
    names = ("plain process", "Dask worker, Dask's defaults", "Dask worker, embedded cluster's")
    times: dict[str, list[float]] = {k: [] for k in names}
    for rep in range(repeats):
        for name in names:
            out = root / f"overhead-{rep}"
            saved = {k: os.environ.get(k) for k in cohort._worker_environ_names()}
            if name == names[0]:
                env = {**os.environ, **one}
                cmd = [sys.executable, __file__, "--serial", str(manifest), str(out), "--pin"]
                cmd += ["--only", *only]
                done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
                per = json.loads(done.stdout.strip().splitlines()[-1])["times_s"]
            else:
                if name == names[1]:
                    spawn = dict(dask.config.get("distributed.nanny.pre-spawn-environ"))
                    spawn.update({k: v for k, v in one.items() if k != "NUMBA_NUM_THREADS"})
                    with dask.config.set({"distributed.nanny.pre-spawn-environ": spawn}):
                        cluster = LocalCluster(
                            n_workers=1,
                            threads_per_worker=1,
                            processes=True,
                            dashboard_address=":0",
                            env=one,
                        )
                else:
                    plan = cohort.plan_cluster(1, 0, workers=1, cores=1)
                    cluster = cohort._embedded_cluster(plan)
                try:
                    with Client(cluster) as client:
                        per = client.submit(
                            _pinned_serial, manifest, out, only, pure=False
                        ).result()
                finally:
                    cluster.close()
                    cohort._restore_environ(saved)
            times[name].append(sum(per[1:]))
            shutil.rmtree(out, ignore_errors=True)
    return times


def _pinned_serial(manifest: Path, out: Path, only: list[str]) -> list[float]:
    """The studies ``only`` one after the other in this process, every thread of it pinned
    to one core (a plain process, or a Dask worker); their times (s)."""
    if hasattr(os, "sched_setaffinity"):
        core = {min(os.sched_getaffinity(0))}
        for tid in os.listdir("/proc/self/task"):
            with contextlib.suppress(OSError):
                os.sched_setaffinity(int(tid), core)
    shutil.rmtree(out, ignore_errors=True)
    return list(serial(manifest, out, only)["times_s"])


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


def two_plain_processes(manifest: Path, out: Path) -> dict[str, float]:
    """The machine's own limit without Dask: two plain processes side by side, 1 thread
    each, each pinned to its own core, the studies dealt out largest input first (the
    cohort's order) alternately; wall from the start of both to the end of the last."""
    from dosimetry.workflows.cohort import _input_bytes, read_cohort_manifest

    rows = read_cohort_manifest(manifest)
    rows.sort(key=lambda r: -_input_bytes(r.study))
    env = {**os.environ, **dict.fromkeys(THREAD_VARIABLES, "1")}
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else [0, 1]
    procs = []
    t0 = time.perf_counter()
    for k in range(2):
        ids = [r.id for r in rows[k::2]]
        cmd = [sys.executable, __file__, "--serial", str(manifest), str(out / f"p{k}")]
        cmd += ["--core", str(cores[k % len(cores)]), "--only", *ids]
        procs.append(subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True))
    outs = [p.communicate()[0] for p in procs]
    wall = time.perf_counter() - t0
    if any(p.returncode for p in procs):
        raise SystemExit("a plain process failed")
    results = [json.loads(o.strip().splitlines()[-1]) for o in outs]
    times = [t for r in results for t in r["times_s"]]
    return {
        "wall_s": wall,
        "n": len(times),
        "mean_study_s": statistics.fmean(times),
        "peak_rss_mb": max(r["peak_rss_mb"] for r in results),
    }


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

    from dosimetry.workflows.cohort import _restore_environ, _worker_environ_names

    saved = {k: os.environ.get(k) for k in _worker_environ_names()}
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
    _restore_environ(saved)  # the nanny wrote Dask's pre-spawn variables here
    return wall * n_workers / n_tasks  # worker-seconds each task costs the cluster


def _median_run(values: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median wall time (the lower middle one for an even count)."""
    ordered = sorted(values, key=lambda r: r["wall_s"])
    return ordered[(len(ordered) - 1) // 2]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=24, help="number of studies (default 24)")
    p.add_argument("--workdir", type=Path, help="folder for studies and outputs (default: temp)")
    p.add_argument("--keep", action="store_true", help="keep the studies and outputs")
    p.add_argument("--noop", type=int, default=400, help="empty tasks for the overhead")
    p.add_argument(
        "--repeat",
        type=int,
        default=1,
        metavar="R",
        help="repetitions of the 1-thread serial, cohort and two-process runs (default 1)",
    )
    p.add_argument(
        "--worker-overhead",
        type=int,
        default=5,
        metavar="K",
        help="repetitions of the plain-process / Dask-worker comparison (0: skip; default 5)",
    )
    p.add_argument("--serial", nargs=2, type=Path, help=argparse.SUPPRESS)
    p.add_argument("--only", nargs="+", help=argparse.SUPPRESS)
    p.add_argument("--pin", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--core", type=int, help=argparse.SUPPRESS)
    args = p.parse_args()

    if args.serial:  # the child process of a serial run
        if args.pin and hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
        if args.core is not None and hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(0, {args.core})
        print(json.dumps(serial(*args.serial, only=args.only)))
        return

    root = args.workdir or Path(tempfile.mkdtemp(prefix="cohort-bench-"))
    root.mkdir(parents=True, exist_ok=True)
    print(f"# cohort benchmark: {args.n} studies in {root}")
    print(f"# {platform.platform()}, {os.cpu_count()} CPUs, load average {os.getloadavg()}")
    t = time.perf_counter()
    manifest = write_studies(root / "studies", args.n)
    print(f"phantom studies written in {time.perf_counter() - t:.0f} s (not counted)")

    # the phases that decide the goal are repeated, interleaved (the machine is shared: the
    # same phase can differ by 10-20 % from one minute to the next); medians are compared
    trials: dict[str, list[dict[str, Any]]] = {}

    def once(name: str, fn: Callable[[], dict[str, Any]], folder: Path) -> None:
        shutil.rmtree(folder, ignore_errors=True)
        trials.setdefault(name, []).append(fn())

    for rep in range(args.repeat):
        once(
            "serial, 1 thread",
            lambda: serial_in_child(manifest, root / "serial1", one_thread=True),
            root / "serial1",
        )
        if rep == 0:
            once(
                "serial, default threads",
                lambda: serial_in_child(manifest, root / "serialN", one_thread=False),
                root / "serialN",
            )
        once(
            "cohort (embedded cluster)",
            lambda: cohort_run(manifest, root / "cohort"),
            root / "cohort",
        )
        if _usable_cores() >= 2:
            once(
                "two plain processes (no Dask)",
                lambda: two_plain_processes(manifest, root / "two"),
                root / "two",
            )
    runs = {name: _median_run(values) for name, values in trials.items()}
    print(f"# cohort ran on: {runs['cohort (embedded cluster)']['cluster']}")

    base1 = runs["serial, 1 thread"]
    baseN = runs["serial, default threads"]
    print(
        f"\n{args.repeat} repetition(s), interleaved; wall: median (all runs)\n\n"
        "| run | wall (s) | studies/min | vs 1-thread serial | vs default serial | mean study (s) "
        "| peak memory (MB) |"
    )
    print("|---|---|---|---|---|---|---|")
    for name, r in runs.items():
        rate = 60.0 * r["n"] / r["wall_s"]
        mem = r.get("peak_rss_mb", r.get("peak_rss_mb_per_worker", float("nan")))
        walls = ", ".join(f"{t['wall_s']:.0f}" for t in trials[name])
        print(
            f"| {name} | {r['wall_s']:.0f} ({walls}) | {rate:.2f} | "
            f"{base1['wall_s'] / r['wall_s']:.2f}x | {baseN['wall_s'] / r['wall_s']:.2f}x | "
            f"{r['mean_study_s']:.1f} | {mem:.0f} |"
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
    if args.worker_overhead > 0:
        over = worker_overhead(manifest, root, args.worker_overhead)
        plain = statistics.median(over["plain process"])
        print(
            f"\nthe same 3 studies (1 SPECT, 2 PET; after a warm-up study), 1 thread, pinned, "
            f"{args.worker_overhead} interleaved repetitions, median (all) in s:"
        )
        for name, values in over.items():
            med = statistics.median(values)
            shown = ", ".join(f"{v:.1f}" for v in values)
            print(f"  {name}: {med:.1f} ({shown}) = {med / plain:.2f}x the plain process")
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
