"""A plan workflow whose Dask worker process is killed (SIGKILL) once, while the study's
output set is being written: the dose maps are in the staging folder, the table not yet.

Imported by the workers of the embedded cluster (tests/cohort is put on their path). Which
call dies: the first one to create the marker file named by ``$DOSIMETRY_TEST_KILL_MARKER``.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

from dosimetry.results import DoseTable, WorkflowResult
from dosimetry.workflows import pet_plan

MARKER_ENV = "DOSIMETRY_TEST_KILL_MARKER"


class DyingTable(DoseTable):
    """A dose table whose CSV rendering kills the process the first time."""

    def to_csv(self) -> str:
        marker = os.environ.get(MARKER_ENV)
        if marker:
            try:
                fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                pass
            else:
                os.write(fd, str(os.getpid()).encode())
                os.close(fd)
                os.kill(os.getpid(), signal.SIGKILL)
        return super().to_csv()


def run_folder(folder: str | Path, **kwargs: Any) -> WorkflowResult:
    result = pet_plan.run_folder(folder, **kwargs)
    t = result.table
    return result.replace(table=DyingTable(t.rows, t.administered_activity_bq, t.convention))
