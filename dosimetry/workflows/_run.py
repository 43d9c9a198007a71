"""The scaffolding every workflow shares: timing, progress, findings, assumptions, parameters.

A workflow opens one :class:`Run` and does its steps inside ``with run.active():``; the run
applies the caller's parameter snapshot (so a task on another process or a Dask worker
computes with the same values), turns floating-point errors into exceptions, collects
findings under the user's policy and assumptions in order, and hands the common fields
of the :class:`~dosimetry.results.WorkflowResult` to the workflow at the end.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import numpy as np

from .. import parameters as _parameters
from ..checks import FindingLog, Policy
from ..errors import InputDataError
from ..results import Assumption, Finding
from ..volume import Volume

__all__ = ["Run", "Progress", "parse_activity_arg", "quiet"]

log = logging.getLogger(__name__)

Progress = Callable[[str], None]


def quiet(_: str) -> None:
    """A progress callback that says nothing."""
    return None


class Run:
    """One workflow run.

    Parameters
    ----------
    kind
        The workflow's name (``"pet_plan"``).
    progress
        Callback receiving one line per step.
    policy, accept
        Findings policy (see :meth:`dosimetry.checks.Policy.of`).
    parameters
        Parameter values for this run (name -> value), applied with
        :func:`dosimetry.parameters.override` while the run is active; the result records
        the full snapshot.
    """

    def __init__(
        self,
        kind: str,
        *,
        progress: Progress | None = None,
        policy: Policy | str | Mapping[str, str] | None = None,
        accept: Iterable[str] | bool = (),
        parameters: Mapping[str, float] | None = None,
    ):
        self.kind = kind
        self._progress = progress or quiet
        self.findings = FindingLog(Policy.of(policy, accept=accept))
        self.assumptions: list[Assumption] = []
        self._parameters = {k: float(v) for k, v in (parameters or {}).items()}
        self._t0 = time.perf_counter()
        self._snapshot: dict[str, float] = {}

    def step(self, message: str) -> None:
        """Report a step to the progress callback (and the log)."""
        log.info("%s: %s", self.kind, message)
        self._progress(message)

    @contextlib.contextmanager
    def active(self) -> Iterator[Run]:
        """Parameters applied, floating-point errors raised (underflow ignored)."""
        with _parameters.override(**self._parameters), np.errstate(all="raise", under="ignore"):
            self._snapshot = _parameters.snapshot()
            yield self

    def assume(self, name: str, value: Any, source: str) -> None:
        """Record an assumption (value formatted; 4 significant digits for floats)."""
        self.assumptions.append(Assumption.of(name, value, source))

    def assume_kernel(self, dose: Volume) -> None:
        """Record the extent of the voxel S-value kernel a dose map was computed with (its
        provenance's ``kernel`` record) and the share of the emitted energy beyond it."""
        k = dose.provenance.get("kernel") if isinstance(dose.provenance, Mapping) else None
        if not isinstance(k, Mapping) or k.get("radius_mm") is None:
            return
        dropped = k.get("dropped_fraction")
        beyond = (
            f"; {100 * float(dropped):.1f} % of the emitted energy deposited beyond it in an "
            "infinite medium is not counted"
            if dropped is not None
            else ""
        )
        self.assume(
            "kernel extent",
            f"{float(k['radius_mm']):.0f} mm ({k.get('extent_rule') or 'explicit radius'})"
            + beyond,
            "parameters kernel_photon_tail_radius_mm, kernel_tail_dropped_fraction, "
            "kernel_max_half_width_voxels (docs/kernels.md, Photon tail)",
        )

    def add(self, finding: Finding | None) -> None:
        """A finding, under the run's policy (may raise ImplausibleInputError)."""
        self.findings.add(finding)

    def extend(self, findings: Iterable[Finding | None]) -> None:
        """Several findings, under the run's policy."""
        self.findings.extend(findings)

    def parameter(self, name: str) -> float:
        """A parameter's value in this run."""
        return _parameters.get(name)

    @property
    def elapsed_s(self) -> float:
        """Seconds since the run started."""
        return time.perf_counter() - self._t0

    def common(self) -> dict[str, Any]:
        """The fields every WorkflowResult takes from the run."""
        return {
            "assumptions": tuple(self.assumptions),
            "findings": self.findings.as_tuple(),
            "parameters": dict(self._snapshot or _parameters.snapshot()),
            "elapsed_s": self.elapsed_s,
        }


def parse_activity_arg(activity: str, option: str) -> float:
    """An administered activity with its unit (``"7.4 GBq"``) -> Bq.

    A bare number is refused at the workflow level (which unit would it be?), as are
    non-positive and non-finite amounts.
    """
    from ..units import parse_activity

    if isinstance(activity, bool) or not isinstance(activity, str):
        raise InputDataError(
            f"{option} needs an amount with its unit, e.g. '7.4 GBq' or '8 MBq'; got "
            f"{activity!r} (a bare number is not taken as Bq)"
        )
    bq = parse_activity(activity, arg=option)
    if not math.isfinite(bq) or bq <= 0:
        raise InputDataError(f"{option} must be a positive amount, got {activity!r}")
    return bq
