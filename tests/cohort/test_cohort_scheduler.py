"""A cohort on a cluster set up the way a real one is: a ``dask scheduler`` and a
``dask worker`` process started from the command line (free ports, a scheduler file in a
temporary folder, one thread), then shut down."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

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


@pytest.mark.slow
def test_cohort_on_a_scheduler_and_worker_started_from_the_command_line(pet_studies, tmp_path):
    from distributed import Client

    scheduler_file = tmp_path / "scheduler.json"
    env = {**os.environ, "NUMBA_NUM_THREADS": "1"}
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
            env=env,
        )
        with Client(scheduler_file=str(scheduler_file), timeout="30s") as c:
            c.wait_for_workers(1, timeout=START_TIMEOUT_S)
            (worker_address,) = c.scheduler_info()["workers"]
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
