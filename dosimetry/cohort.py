"""Cohorts: ``dosimetry.cohort.run(manifest, out)`` runs one workflow over many studies on Dask.

The names of :mod:`dosimetry.workflows.cohort`, where the documentation lives, under a
short path::

    import dosimetry.cohort

    result = dosimetry.cohort.run("cohort.csv", "cohort-out")
    print(result.describe())
"""

from __future__ import annotations

from .workflows.cohort import (
    STATUSES,
    SUMMARY_COLUMNS,
    SUMMARY_NAME,
    ClusterPlan,
    CohortResult,
    ManifestRow,
    StudyOutcome,
    StudyTask,
    plan_cluster,
    read_cohort_manifest,
    run,
    run_study,
)

__all__ = [
    "run",
    "run_study",
    "read_cohort_manifest",
    "plan_cluster",
    "ClusterPlan",
    "CohortResult",
    "ManifestRow",
    "StudyTask",
    "StudyOutcome",
    "SUMMARY_COLUMNS",
    "SUMMARY_NAME",
    "STATUSES",
]
