"""Shared by the literature-range tests: the published patient range of an organ and a
plan's mass-weighted organ dose per GBq."""

from __future__ import annotations

from collections.abc import Sequence

from dosimetry.kinetics import literature_doses


def patient_range(agent: str, organs: Sequence[str]) -> tuple[float, float]:
    """Lowest and highest patient value (the stated range, else mean ± 1.96 SD) over the
    independent cohorts of ``agent`` in any of ``organs``."""
    lows, highs = [], []
    for o in organs:
        for r in literature_doses(agent, o):
            if not r.independent_cohort:
                continue
            lo = r.low if r.low is not None else r.value_gy_per_gbq - 1.96 * (r.sd or 0.0)
            hi = r.high if r.high is not None else r.value_gy_per_gbq + 1.96 * (r.sd or 0.0)
            lows.append(min(lo, r.value_gy_per_gbq))
            highs.append(max(hi, r.value_gy_per_gbq))
    return min(lows), max(highs)


def organ_gy_per_gbq(result, organ: str) -> float:
    """Mass-weighted mean dose per GBq of the organ's non-lesion rows."""
    rows = [r for r in result.table if r.organ == organ and r.role != "lesion"]
    mean = sum(r.mass_g * r.dose.mean for r in rows) / sum(r.mass_g for r in rows)
    return result.table.per_activity(mean, "GBq")
