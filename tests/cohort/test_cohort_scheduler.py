"""A cohort on a cluster set up the way a real one is: a ``dask scheduler`` and a
``dask worker`` process started from the command line (free ports, a scheduler file in a
temporary folder, one thread, the Dask configuration file the documentation gives for such
workers), then shut down; and the embedded cluster's workers run with those settings."""

from __future__ import annotations

import csv
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from dosimetry.cli import EXIT_OK, main
from dosimetry.io.outputs import is_complete

#: Seconds to wait for the scheduler file, the worker and the shutdown.
START_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 30.0


def _dask_command() -> list[str]:
    exe = Path(sys.executable).with_name("dask")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "dask"]


def _stop(proc: subprocess.Popen[bytes]) -> int | None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)  # what Ctrl-C does: the dask CLI closes cleanly
        try:
            proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=STOP_TIMEOUT_S)
            return None
    return proc.returncode


def _worker_settings(dask_worker: Any) -> dict[str, object]:
    """The worker's event-loop settings and whether its profiler runs (on the worker, which
    cannot import this test module: it travels by value, see ``_by_value``)."""
    import dask

    from dosimetry.workflows.cohort import QUIET_WORKER_CONFIG

    values: dict[str, object] = {k: dask.config.get(k) for k in QUIET_WORKER_CONFIG}
    values["profiler running"] = any("profile" in k for k in dask_worker.periodic_callbacks)
    return values


@pytest.fixture
def _by_value():
    """Send this module's functions to the workers by value (they cannot import it)."""
    import cloudpickle

    module = sys.modules[__name__]
    cloudpickle.register_pickle_by_value(module)
    yield
    cloudpickle.unregister_pickle_by_value(module)


def _quiet_settings() -> dict[str, object]:
    from dosimetry.workflows.cohort import QUIET_WORKER_CONFIG

    return {**QUIET_WORKER_CONFIG, "profiler running": False}


@pytest.mark.slow
def test_cohort_on_a_scheduler_and_worker_started_from_the_command_line(
    pet_studies, tmp_path, _by_value
):
    from distributed import Client

    scheduler_file = tmp_path / "scheduler.json"
    env = {**os.environ, "NUMBA_NUM_THREADS": "1"}
    # the worker reads the Dask configuration file docs/cohort.md gives for hand-started
    # workers (quiet event loop, no MALLOC_TRIM_THRESHOLD_ from the nanny)
    doc = (Path(__file__).resolve().parents[2] / "docs" / "cohort.md").read_text("utf-8")
    (block,) = [b for b in re.findall(r"```yaml\n(.*?)```", doc, re.S) if "pre-spawn" in b]
    (tmp_path / "dask-config").mkdir()
    (tmp_path / "dask-config" / "dosimetry-workers.yaml").write_text(block, encoding="utf-8")
    worker_env = {k: v for k, v in env.items() if k != "MALLOC_TRIM_THRESHOLD_"}
    worker_env["DASK_CONFIG"] = str(tmp_path / "dask-config")
    dask = _dask_command()
    logs = (tmp_path / "scheduler.log").open("wb"), (tmp_path / "worker.log").open("wb")
    scheduler = subprocess.Popen(
        [*dask, "scheduler", "--scheduler-file", str(scheduler_file), "--host", "127.0.0.1"]
        + ["--port", "0", "--no-dashboard"],
        stdout=logs[0],
        stderr=subprocess.STDOUT,
        env=env,
    )
    worker = None
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not scheduler_file.exists() and time.monotonic() < deadline:
            assert scheduler.poll() is None, (tmp_path / "scheduler.log").read_text()
            time.sleep(0.2)
        assert scheduler_file.exists(), "the scheduler wrote no scheduler file"
        worker = subprocess.Popen(
            [*dask, "worker", "--scheduler-file", str(scheduler_file), "--nthreads", "1"]
            + ["--nworkers", "1", "--memory-limit", "4GB", "--no-dashboard"]
            + ["--host", "127.0.0.1"],
            stdout=logs[1],
            stderr=subprocess.STDOUT,
            env=worker_env,
        )
        with Client(scheduler_file=str(scheduler_file), timeout="30s") as c:
            c.wait_for_workers(1, timeout=START_TIMEOUT_S)
            (worker_address,) = c.scheduler_info()["workers"]
            # the documented settings reach the worker
            assert c.run(_worker_settings) == {worker_address: _quiet_settings()}
            (environ,) = c.run(lambda: dict(os.environ)).values()
            assert "MALLOC_TRIM_THRESHOLD_" not in environ
        m = tmp_path / "cohort.csv"
        m.write_text(
            f"id,workflow,study,activity,method\nx1,plan,{pet_studies['s1']},7.4 GBq,led\n",
            encoding="utf-8",
        )
        out = tmp_path / "out"
        rc = main(["cohort", str(m), "--out", str(out), "--scheduler-file", str(scheduler_file)])
        assert rc == EXIT_OK
        assert is_complete(out / "x1", verify_hashes=True)
        with (out / "cohort_summary.csv").open(encoding="utf-8", newline="") as f:
            rows = list(csv.DictReader(f))
        assert {r["status"] for r in rows} == {"ok"} and {r["worker"] for r in rows} == {
            worker_address
        }
    finally:
        codes = [_stop(p) for p in (worker, scheduler) if p is not None]
        for f in logs:
            f.close()
    assert None not in codes, "a dask process had to be killed"
    assert worker is not None and worker.returncode is not None


def test_the_embedded_cluster_runs_quiet_workers(_by_value):
    """The embedded cluster's workers run without the profiler and with the slow event-loop
    checks (a study ran 20-30 % slower in a default worker), and this process's Dask
    configuration is left as it was."""
    import dask
    from distributed import Client

    from dosimetry.workflows import cohort

    before = {k: dask.config.get(k, None) for k in cohort.QUIET_WORKER_CONFIG}
    saved_env = {k: os.environ.get(k) for k in cohort._worker_environ_names()}
    cluster = cohort._embedded_cluster(cohort.plan_cluster(1, 0))
    try:
        with Client(cluster) as c:
            assert list(c.run(_worker_settings).values()) == [_quiet_settings()]
            # Dask's default MALLOC_TRIM_THRESHOLD_ (it switches off glibc's adaptive mmap
            # threshold: every large NumPy array is mapped anew) is not given to the worker
            assert "MALLOC_TRIM_THRESHOLD_" in dask.config.get(
                "distributed.nanny.pre-spawn-environ"
            )
            worker_env = list(c.run(lambda: dict(os.environ)).values())[0]
            assert worker_env.get("MALLOC_TRIM_THRESHOLD_") == saved_env["MALLOC_TRIM_THRESHOLD_"]
    finally:
        cluster.close()
        cohort._restore_environ(saved_env)
    assert {k: dask.config.get(k, None) for k in cohort.QUIET_WORKER_CONFIG} == before
